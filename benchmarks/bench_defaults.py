"""The default CLI run of every algorithm: `funrl train ALGO` (its default env and preset),
each in a fresh process, wall time and final evaluation against the preset's threshold.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_defaults.py            # warm cache
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_defaults.py --cold     # fresh cache

By default each run is done twice and the second is reported (the first fills inductor's
on-disk cache: "warm cache"); ``--cold`` gives every run a new empty
``TORCHINDUCTOR_CACHE_DIR`` and reports the one run.  1 torch thread per process.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALGOS = ("ppo", "a2c", "dqn", "sac", "td3", "ddpg")


def _one(algo: str, seed: int, cache: str | None) -> tuple[float, float, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FUNRL_THREADS": "1"}
    if cache is not None:
        env["TORCHINDUCTOR_CACHE_DIR"] = cache
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "funrl", "train", algo, "--seed", str(seed), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*cmd, "--out", f"{out}/run"], env=env, capture_output=True, text=True, cwd=ROOT
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{algo}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    ret = float(re.search(r"mean return (-?[\d.]+|nan)", proc.stdout).group(1))
    header = proc.stdout.splitlines()[0]
    env_id = re.search(r": \w+ on (\S+)", header).group(1)
    return wall, ret, env_id


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algos", default=",".join(ALGOS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cold", action="store_true", help="a fresh inductor cache per run")
    args = p.parse_args()
    from funrl import presets  # plain data, no torch

    rows = []
    for algo in args.algos.split(","):
        if args.cold:
            with tempfile.TemporaryDirectory() as cache:
                wall, ret, env_id = _one(algo, args.seed, cache)
        else:
            _one(algo, args.seed, None)  # fills the cache
            wall, ret, env_id = _one(algo, args.seed, None)
        threshold = presets.load(algo, env_id).threshold
        ok = threshold is not None and ret >= threshold
        rows.append((algo, env_id, wall, ret, threshold, ok))
        print(
            f"{algo:5s} {env_id:14s} {wall:6.1f} s  eval {ret:8.1f}  threshold {threshold}",
            flush=True,
        )
    cache = "cold (fresh TORCHINDUCTOR_CACHE_DIR)" if args.cold else "warm"
    print(f"\n`funrl train ALGO` (default env, preset, seed {args.seed}), whole process, "
          f"1 thread, {cache} cache:\n")  # fmt: skip
    print("| algo | env | wall s | final eval | threshold | < 2 min and reached |")
    print("|---|---|---|---|---|---|")
    for algo, env_id, wall, ret, threshold, ok in rows:
        verdict = "yes" if ok and wall < 120 else "no"
        print(f"| {algo} | {env_id} | {wall:.1f} | {ret:.1f} | {threshold:g} | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
