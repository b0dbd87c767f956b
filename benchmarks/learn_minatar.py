"""PPO on a MinAtar game in torch (Breakout by default; ``--game``): 5 seeds as one vmapped,
compiled population, final evaluation per seed, and the learning curve (mean and spread)
as PNG.

Settings: PureJaxRL's / gymnax-blines' MinAtar PPO (64 envs x 128 steps, 8 minibatches,
4 epochs, lr 5e-4 annealed, clip 0.2, entropy 0.01, GAE 0.95, gamma 0.99) with MinAtar's
CNN (one 3x3 convolution of 16 channels) and a 64-unit hidden layer, one thread.
Random play (Breakout) scores ~0.5 per episode; ``--random-episodes N`` measures it for
the chosen game.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learn_minatar.py --steps 1500000 \\
        --out runs/minatar-breakout-ppo
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learn_minatar.py --game asterix \
        --steps 500000 --out runs/minatar-asterix-ppo
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

import funrl
from funrl import population as pop
from funrl.algos import ppo

GAMES = {
    "asterix": "MinAtar-Asterix-v1",
    "breakout": "MinAtar-Breakout-v1",
    "freeway": "MinAtar-Freeway-v1",
    "seaquest": "MinAtar-Seaquest-v1",
    "space_invaders": "MinAtar-SpaceInvaders-v1",
}


def random_return(env_id: str, episodes: int) -> float:
    """Mean undiscounted return of uniformly random actions over ``episodes`` episodes
    (default params: sticky actions, the time limit), 256 envs at a time."""
    from funrl.envs import EpisodeStatistics, VecEnv

    env, params = funrl.make(env_id)
    n = 256
    venv = VecEnv(EpisodeStatistics(env), n)
    actions = env.action_space(params).n
    key = funrl.random.key(12345)
    _, state = venv.reset(key, params)
    returns: list[float] = []
    step = funrl.compile(venv.step)
    t = 0
    while len(returns) < episodes:
        k_act, k_step = funrl.random.split(funrl.random.fold_in(key, t))
        action = funrl.random.randint(k_act, 0, actions, (n,))
        _, state, _, _, _, info = step(k_step, state, action, params)
        returns += info["episode_return"][info["episode_done"]].tolist()
        t += 1
    return statistics.mean(returns[:episodes])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1_500_000, help="env steps per seed")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default="runs/minatar-breakout-ppo")
    p.add_argument("--game", default="breakout", choices=sorted(GAMES))
    p.add_argument("--random-episodes", type=int, default=0, help="also score random play")
    args = p.parse_args()
    env_id = GAMES[args.game]
    if args.random_episodes:
        print(f"random play: {random_return(env_id, args.random_episodes):.2f} per episode")
    config = ppo.Config(
        env=env_id, num_envs=64, num_steps=128, num_minibatches=8,
        update_epochs=4, total_timesteps=args.steps, hidden=(64,), activation="relu",
    )  # fmt: skip
    algo = ppo.make(config)
    keys = torch.stack([funrl.random.key(s) for s in range(args.seeds)])
    hp = ppo.HParams.create(lr=5e-4, clip_eps=0.2, ent_coef=0.01, gae_lambda=0.95)
    hps = funrl.tree.map(lambda x: torch.stack([x] * args.seeds), hp)
    t0 = time.perf_counter()
    result = pop.train(algo, keys, hps, num_updates=config.num_updates, eval_every=20,
                       eval_episodes=20, out_dir=args.out, progress=True)  # fmt: skip
    wall = time.perf_counter() - t0
    finals = [float(x) for x in result.eval_returns]
    print(f"{args.seeds} seeds x {config.num_updates * config.batch_size:,} env steps, "
          f"{wall:.0f} s wall, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")  # fmt: skip
    print("final evaluation (20 episodes, deterministic) per seed: "
          + ", ".join(f"{r:.1f}" for r in finals))  # fmt: skip
    mean, sd = statistics.mean(finals), statistics.pstdev(finals)
    print(f"mean {mean:.1f} +- {sd:.1f} (min {min(finals):.1f}, max {max(finals):.1f})")
    Path(args.out, "result.json").write_text(json.dumps(dict(
        steps_per_seed=config.num_updates * config.batch_size, seeds=args.seeds,
        final=finals, mean=mean, sd=sd, wall_s=wall,
    ), indent=1))  # fmt: skip
    try:
        from funrl import plot

        png = Path(args.out, "curve.png")
        plot.plot_runs([args.out], png)
        print(f"curve: {png}")
    except Exception as e:  # matplotlib missing, ...
        print(f"no plot: {e}")
    assert all(math.isfinite(r) for r in finals)


if __name__ == "__main__":
    main()
