"""Compile time and speed of a compiled update under different inductor options.

    python benchmarks/bench_compile_options.py                        # funrl.compile's options
    python benchmarks/bench_compile_options.py null                   # inductor's defaults
    python benchmarks/bench_compile_options.py '{"realize_reads_threshold": 2}'
    python benchmarks/bench_compile_options.py '{"cpp_wrapper": false}' --merge --algo dqn

One process per setting; inductor's FX graph cache is off so every run compiles cold;
1 thread (torch.set_num_threads(1)).  ``--algo ppo`` (default): CartPole, 16 envs x 64
steps, default PPO config.  ``--algo dqn``: benchmarks/bench_dqn.py's config (256 env
steps and 64 gradient steps per update, learning from the first update).  The options
replace funrl's (``INDUCTOR_OPTIONS``), or are merged over them with ``--merge``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import torch
import torch._inductor.config as inductor_config

import funrl
from funrl.algos import dqn, ppo
from funrl.compiling import INDUCTOR_OPTIONS


def make(algo: str, units: object) -> tuple[object, object]:
    if algo == "ppo":
        return ppo.make(ppo.Config(num_envs=16, num_steps=64), units=units), ppo.HParams.create()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_dqn

    config = dataclasses.replace(bench_dqn.CONFIG, learning_starts=0)
    return dqn.make(config, units=units), dqn.HParams.create(**bench_dqn.HPARAMS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("options", nargs="?", help="inductor options as JSON (null: defaults)")
    parser.add_argument("--merge", action="store_true", help="merge over funrl's options")
    parser.add_argument("--algo", choices=("ppo", "dqn"), default="ppo")
    parser.add_argument("--updates", type=int, default=20, help="steady updates timed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    inductor_config.fx_graph_cache = False
    opts = INDUCTOR_OPTIONS if args.options is None else json.loads(args.options)
    if args.merge:
        opts = {**INDUCTOR_OPTIONS, **(opts or {})}

    def compiled(fn, name):
        if name == "stack":
            return fn
        return torch.compile(fn, dynamic=False, fullgraph=True, options=opts)

    algo, hp = make(args.algo, compiled)
    s = algo.init(funrl.random.key(0), hp)
    t = time.perf_counter()
    s, _ = algo.update(s, hp)
    first = time.perf_counter() - t
    s, _ = algo.update(s, hp)
    t = time.perf_counter()
    for _ in range(args.updates):
        s, _ = algo.update(s, hp)
    steady = (time.perf_counter() - t) / args.updates
    print(
        f"{args.algo}, options {opts}: first update {first:.1f} s; steady "
        f"{steady * 1000:.2f} ms/update = {algo.steps_per_update / steady:,.0f} env steps/s"
    )


if __name__ == "__main__":
    main()
