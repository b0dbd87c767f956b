"""Eager PPO CartPole: time per update and per compute unit, one thread.

    OMP_NUM_THREADS=1 python benchmarks/bench_eager.py

The CartPole-v1 preset (16 envs x 64 steps) built with every unit timed: 5 updates to
warm up, then 10 timed ones.  Prints env-steps/s and, per unit, calls per update and
microseconds per call.  What ``--compile off`` and ``--compile auto``'s eager stretch
run at; ``python benchmarks/ab.py --base REV -- benchmarks/bench_eager.py`` compares two
checkouts.
"""

from __future__ import annotations

import collections
import time

import torch

torch.set_num_threads(1)

from funrl import random as R  # noqa: E402
from funrl.algos import ppo  # noqa: E402

times: dict[str, float] = collections.defaultdict(float)
counts: collections.Counter[str] = collections.Counter()


def timed(fn, name):  # a unit transform that times each unit
    def run(*args):
        t0 = time.perf_counter()
        out = fn(*args)
        times[name] += time.perf_counter() - t0
        counts[name] += 1
        return out

    return run


def main() -> None:
    algo = ppo.make(ppo.Config.preset("CartPole-v1"), units=timed)
    hp = ppo.HParams.preset("CartPole-v1")
    state = algo.init(R.key(0), hp)
    for _ in range(5):
        state, _ = algo.update(state, hp)
    times.clear()
    counts.clear()
    t0 = time.perf_counter()
    for _ in range(10):
        state, _ = algo.update(state, hp)
    total = time.perf_counter() - t0
    print(
        f"eager PPO CartPole, 1 thread: {total / 10 * 1e3:.1f} ms per update, "
        f"{10 * algo.steps_per_update / total:,.0f} env-steps/s"
    )
    for name, t in times.items():
        print(
            f"  {name:<8} {counts[name] // 10:>3} calls/update  {t / counts[name] * 1e6:>7.0f} us/call"
        )


if __name__ == "__main__":
    main()
