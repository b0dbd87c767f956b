"""DQN on CartPole-v1: funrl (compiled units) against stable-baselines3, seeds 0-4.

Runs on ONE CPU thread (``torch.set_num_threads(1)``), everything in one process, one
run after the other.  funrl trains with the config below until a 10-episode deterministic
evaluation reaches 475 (checked every ``--eval-every`` env steps) or ``--steps`` run out;
SB3 trains ``DQN("MlpPolicy", "CartPole-v1")`` with its defaults for 50k steps and is
evaluated once (10 episodes, deterministic) at the end.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dqn.py [--seeds 0,1,2,3,4] [--no-sb3]

Columns: ``reached@`` env steps at the first evaluation >= 475 (``-`` if never),
``@50k`` the evaluation at ~50k env steps (or the first >= 475, if earlier; SB3: its one
evaluation after 50k steps), ``final`` the last evaluation, ``train sps`` env steps per second of training (updates
only: no evaluation, no compilation; SB3's ``learn`` wall time including its own
overheads), ``compile`` the first update's extra time, ``wall`` the run's total time
(to the target for funrl; compile and evaluations included).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import funrl
from funrl.algos import dqn
from funrl.algos.units import compiled
from funrl.train import make_evaluate

torch.set_num_threads(1)

CONFIG = dqn.Config(
    env="CartPole-v1",
    num_envs=64,
    train_freq=4,  # 256 env steps per update ...
    gradient_steps=64,  # ... and 64 gradient steps: 1 per 4 env steps, SB3's default ratio
    learn_steps_per_call=8,  # 8 gradient steps per compiled call (less host overhead)
    collect_steps_per_call=4,  # the 4 collector steps in one compiled call
    buffer_size=100_000,
    batch_size=32,  # SB3's default batch
    learning_starts=1_000,
    target_update_interval=64,  # hard copy once per update
    total_timesteps=150_000,  # sets the epsilon schedule (decayed over the first 24k)
    hidden=(64, 64),
    double_q=True,
    n_step=3,
)
HPARAMS = dict(lr=2.3e-3, exploration_fraction=0.16, eps_end=0.04, gamma=0.99)


def run_funrl(seed: int, steps: int, eval_every: int) -> dict[str, float]:
    algo = dqn.make(CONFIG, units=compiled)
    evaluate = make_evaluate(algo, 10, compile=True)
    hp = dqn.HParams.create(**HPARAMS)
    key_init, key_eval = funrl.random.split(funrl.random.key(seed))
    t_start = time.perf_counter()
    state = funrl.tree.contiguous(algo.init(key_init, hp))  # one compile per unit
    train_time, compile_time, reached, final, env_steps = 0.0, 0.0, None, float("nan"), 0
    at_50k: float | None = None
    per_update = max(1, eval_every // algo.steps_per_update)
    for i in range(max(1, steps // algo.steps_per_update)):
        t0 = time.perf_counter()
        state, _ = algo.update(state, hp)
        dt = time.perf_counter() - t0
        env_steps += algo.steps_per_update
        if i == 0:
            first = dt
        else:
            train_time += dt
            if i == 1:
                compile_time = max(0.0, first - dt)
        if (i + 1) % per_update == 0:
            rets = evaluate(state, funrl.random.fold_in(key_eval, i))
            final = float(rets.mean())
            if at_50k is None and (env_steps >= 50_000 or final >= 475):
                at_50k = final  # the evaluation at ~50k steps (or the target, if earlier)
            if final >= 475:
                reached = env_steps
                break
    sps = (env_steps - algo.steps_per_update) / max(train_time, 1e-9)
    wall = time.perf_counter() - t_start
    return dict(
        reached=reached,
        final=final,
        sps=sps,
        compile=compile_time,
        wall=wall,
        steps=env_steps,
        at_50k=final if at_50k is None else at_50k,
    )


def run_sb3(seed: int, steps: int) -> dict[str, float] | None:
    try:
        from stable_baselines3 import DQN
        from stable_baselines3.common.evaluation import evaluate_policy
    except ImportError:
        return None
    t0 = time.perf_counter()
    model = DQN("MlpPolicy", "CartPole-v1", seed=seed, device="cpu", verbose=0)
    t1 = time.perf_counter()
    model.learn(total_timesteps=steps)
    train = time.perf_counter() - t1
    mean, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=10, deterministic=True)
    reached = steps if mean >= 475 else None
    return dict(
        reached=reached,
        final=float(mean),
        sps=steps / train,
        compile=0.0,
        wall=time.perf_counter() - t0,
        steps=steps,
        at_50k=float(mean),
    )


def row(name: str, seed: int, r: dict[str, float]) -> str:
    reached = f"{r['reached']:,}" if r["reached"] else "-"
    return (
        f"{name:12} {seed:>4} {reached:>9} {r['at_50k']:>7.1f} {r['final']:>7.1f} "
        f"{r['sps']:>10.0f} {r['compile']:>8.1f} {r['wall']:>8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--steps", type=int, default=150_000, help="funrl step budget per seed")
    parser.add_argument(
        "--eval-every", type=int, default=10_240, help="funrl env steps between evals"
    )
    parser.add_argument("--sb3-steps", type=int, default=50_000)
    parser.add_argument("--no-sb3", action="store_true")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"funrl config: {CONFIG}\nfunrl hparams: {HPARAMS}")
    print(
        f"{'impl':12} {'seed':>4} {'reached@':>9} {'@50k':>7} {'final':>7} {'train sps':>10} "
        f"{'compile':>8} {'wall':>8}"
    )
    ours = []
    for seed in seeds:
        r = run_funrl(seed, args.steps, args.eval_every)
        ours.append(r)
        print(row("funrl dqn", seed, r), flush=True)
    theirs = []
    if not args.no_sb3:
        for seed in seeds:
            r = run_sb3(seed, args.sb3_steps)
            if r is None:
                print("stable-baselines3 not installed: skipped")
                break
            theirs.append(r)
            print(row("sb3 dqn", seed, r), flush=True)
    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
    reached = [r["reached"] for r in ours if r["reached"]]
    print(
        f"\nfunrl: {len(reached)}/{len(ours)} seeds reached 475; median reached@ "
        f"{statistics.median(reached) if reached else float('nan'):,.0f} env steps; "
        f"median wall {med(ours, 'wall'):.1f} s; median train sps {med(ours, 'sps'):.0f}"
    )
    if theirs:
        print(
            f"sb3 (defaults, {args.sb3_steps:,} steps): median final {med(theirs, 'final'):.1f}; "
            f"median train sps {med(theirs, 'sps'):.0f}; "
            f"train-sps ratio funrl/sb3 {med(ours, 'sps') / med(theirs, 'sps'):.2f}"
        )


if __name__ == "__main__":
    main()
