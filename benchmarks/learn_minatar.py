"""PPO on MinAtar Breakout (funrl's torch env): 5 seeds as one vmapped, compiled
population, final evaluation per seed, and the learning curve (mean and spread) as PNG.

Settings: PureJaxRL's / gymnax-blines' MinAtar PPO (64 envs x 128 steps, 8 minibatches,
4 epochs, lr 5e-4 annealed, clip 0.2, entropy 0.01, GAE 0.95, gamma 0.99) with MinAtar's
CNN (one 3x3 convolution of 16 channels) and a 64-unit hidden layer, one thread.
Random play scores ~0.5 per episode.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learn_minatar.py --steps 1500000 \\
        --out runs/minatar-breakout-ppo
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1_500_000, help="env steps per seed")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default="runs/minatar-breakout-ppo")
    args = p.parse_args()
    config = ppo.Config(
        env="MinAtar-Breakout-v1", num_envs=64, num_steps=128, num_minibatches=8,
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
