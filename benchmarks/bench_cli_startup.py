"""Wall time of quick ``funrl`` commands in fresh processes (what a user waits for).

    python benchmarks/bench_cli_startup.py [--repeat 5]

Prints the median of ``--repeat`` fresh runs of ``funrl --help``, ``--version``,
``list`` and ``train --help``, beside ``python -c pass`` and ``python -c "import torch"``
for scale.  One process at a time; OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "funrl --help": [sys.executable, "-m", "funrl", "--help"],
    "funrl --version": [sys.executable, "-m", "funrl", "--version"],
    "funrl list": [sys.executable, "-m", "funrl", "list"],
    "funrl train --help": [sys.executable, "-m", "funrl", "train", "--help"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"{'command':<28} {'median s':>9} {'min s':>7}")
    for name, cmd in COMMANDS.items():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - t0)
        print(f"{name:<28} {statistics.median(times):>9.3f} {min(times):>7.3f}")


if __name__ == "__main__":
    main()
