"""One compiled DQN update on Atari Breakout (4 env steps and one gradient step), timed.

    OMP_NUM_THREADS=1 python benchmarks/bench_dqn_atari_update.py [--eps 0.01] [--storage uint8] [--eager]

The settings are ``bench_atari.py``'s DQN row (one ALE env, batch 32, Nature CNN, buffer
10k, learning from step 1,000) with epsilon fixed at ``--eps`` from the start (1.0: every
step explores, as early in a run; 0.01: the rest of a run) and the replay's
``--storage`` (``obs_storage``).  After learning starts it times ``--rounds`` blocks of
``--updates`` updates and prints ms per update for each, so two checkouts compare
with ``benchmarks/ab.py`` (which alternates them on the same machine)::

    python benchmarks/ab.py --base REV --rounds 2 -- benchmarks/bench_dqn_atari_update.py --eps 1.0

Not a test; one thread.
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_atari import DQN_SETTINGS  # the same DQN row, so the two scripts agree

import funrl
from funrl.algos import dqn, units
from funrl.envs import atari


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--eps", type=float, default=0.01, help="epsilon, fixed")
    p.add_argument("--storage", default="float32", choices=["float32", "uint8"])
    p.add_argument("--env", default="atari:Breakout")
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--eager", action="store_true", help="eager units instead of compiled")
    args = p.parse_args()
    torch.set_num_threads(1)
    settings = {**DQN_SETTINGS, "obs_storage": args.storage}
    config = dqn.Config(env=args.env, total_timesteps=10_000_000, **settings)
    algo = dqn.make(config, units=units.eager if args.eager else units.compiled)
    hp = dqn.HParams.create(**{**atari.DQN_HPARAMS, "eps_start": args.eps, "eps_end": args.eps})
    state = algo.init(funrl.random.key(0), hp)
    for _ in range(config.learning_starts // config.steps_per_update + 5):
        state, _ = algo.update(state, hp)
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.updates):
            state, _ = algo.update(state, hp)
        times.append((time.perf_counter() - t0) / args.updates * 1e3)
    shown = ", ".join(f"{t:.1f}" for t in times)
    mode = "eager" if args.eager else "compiled"
    print(f"{args.env} {mode} eps {args.eps} {args.storage}: ms per update {shown} (median "
          f"{sorted(times)[len(times) // 2]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
