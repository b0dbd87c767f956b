"""A PPO CartPole population of 64 on 1 vs 2 processes (torchrun, gloo, one thread each).

Each run is ``torchrun --standalone --nproc-per-node W -m funrl.distributed population ppo``
with a small config; every rank vmaps its shard of the population (32 members each on 2
ranks).  Throughput is the population's env steps per second after ``--warmup`` updates,
measured on the slowest rank's clock (the job is done when its last rank is), so process
start-up, compilation and the final evaluation are excluded; the wall column includes them.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_distributed.py [--updates 12] [--compile]

The machine's load average is printed before and after: on a shared machine the ratio
is only meaningful when the load stays below the number of cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETS = ["num_envs=8", "num_steps=32", "num_minibatches=2", "update_epochs=2", "hidden=32,32"]


def run(world: int, args: argparse.Namespace, out: Path) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={world}",
        "-m",
        "funrl.distributed",
        "population",
        "ppo",
        "--population",
        str(args.population),
        "--updates",
        str(args.updates),
        "--eval-episodes",
        "1",
        "--threads",
        "1",
        "--quiet",
        "--timeout",
        "600",
        "--out",
        str(out),
        *[x for s in SETS for x in ("--set", s)],
    ]
    cmd.append("--compile" if args.compile else "--no-compile")  # funrl compiles by default
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    return {
        "steps_per_s": summary["steady_steps_per_s"],
        "train_s": summary["train_time_s"],
        "wall_s": wall,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--updates", type=int, default=12)
    p.add_argument("--compile", action="store_true", help="compile each vmapped unit")
    p.add_argument("--worlds", default="1,2", help="process counts to compare")
    args = p.parse_args()
    print(
        f"config: population {args.population}, {', '.join(SETS)}, {args.updates} updates, "
        f"compile={args.compile}, gloo, 1 thread/process, {os.cpu_count()} cores"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in (int(x) for x in args.worlds.split(",")):
            results[w] = run(w, args, Path(tmp) / f"w{w}")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base = next(iter(results.values()))["steps_per_s"]
    print(f"{'processes':>9} {'steps/s (steady)':>17} {'ratio':>6} {'train s':>8} {'wall s':>7}")
    for w, r in results.items():
        print(
            f"{w:>9} {r['steps_per_s']:>17,.0f} {r['steps_per_s'] / base:>6.2f} "
            f"{r['train_s']:>8.1f} {r['wall_s']:>7.1f}"
        )


if __name__ == "__main__":
    main()
