"""Compile time and speed of a compiled PPO update under different inductor options.

    python benchmarks/bench_compile_options.py                        # funrl.compile's options
    python benchmarks/bench_compile_options.py null                   # inductor's defaults
    python benchmarks/bench_compile_options.py '{"realize_reads_threshold": 2}'

One process per setting; inductor's FX graph cache is off so every run compiles cold;
1 thread (torch.set_num_threads(1)).  CartPole, 16 envs x 64 steps, default PPO config.
"""

from __future__ import annotations

import json
import sys
import time

import torch
import torch._inductor.config as inductor_config

import funrl
from funrl.algos import ppo
from funrl.compiling import INDUCTOR_OPTIONS


def main() -> None:
    torch.set_num_threads(1)
    inductor_config.fx_graph_cache = False
    opts = INDUCTOR_OPTIONS if len(sys.argv) < 2 else json.loads(sys.argv[1])

    def compiled(fn, name):
        if name == "stack":
            return fn
        return torch.compile(fn, dynamic=False, fullgraph=True, options=opts)

    algo = ppo.make(ppo.Config(num_envs=16, num_steps=64), units=compiled)
    hp = ppo.HParams.create()
    s = algo.init(funrl.random.key(0), hp)
    t = time.perf_counter()
    s, _ = algo.update(s, hp)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(5):
        s, _ = algo.update(s, hp)
    steady = (time.perf_counter() - t) / 5
    print(
        f"options {opts}: first update {first:.1f} s; steady {steady * 1000:.0f} ms/update "
        f"= {1024 / steady:,.0f} env steps/s"
    )


if __name__ == "__main__":
    main()
