"""A/B: run one benchmark script on two checkouts of funrl, alternately, on this machine.

    python benchmarks/ab.py --base REV [--rounds 2] -- benchmarks/bench_dqn.py --seeds 0,1 --no-sb3

``REV`` is checked out into a temporary git worktree; each round runs the benchmark there
and then in this checkout (``PYTHONPATH`` set to each, ``OMP_NUM_THREADS=1``, the same
interpreter), so both see the same machine load in turn.  Give a script, not ``-m module``:
``python -m`` puts the working folder (this checkout) first on ``sys.path``.  Every run's output is kept under
``--out`` (default ``runs/ab-<time>``) and its last ``--tail`` lines are printed, labelled,
for the side-by-side table in ``benchmarks/RESULTS.md``.  The benchmark script is taken
from this checkout for both sides (so both run the same measurement).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(label: str, checkout: Path, cmd: list[str], out: Path, tail: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    out.write_text(proc.stdout + proc.stderr)
    print(f"==== {label} ({checkout}), {wall:.0f} s, exit {proc.returncode}: {out}")
    print("\n".join(proc.stdout.rstrip().splitlines()[-tail:]), flush=True)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tail", type=int, default=12, help="lines of each run's output to show")
    ap.add_argument("--out", default=None)
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- script.py [args]")
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("give the benchmark command after --")
    if cmd[0].startswith("-"):  # `-m funrl ...` would import this checkout's funrl on both
        ap.error("give a script path after -- (python -m puts the working folder, this "
                 "checkout, first on sys.path, so both sides would run this checkout)")  # fmt: skip
    out = Path(args.out or ROOT / "runs" / f"ab-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.base],
                       cwd=ROOT, check=True)  # fmt: skip
        try:
            for r in range(args.rounds):
                run(
                    f"base {args.base} round {r + 1}",
                    base,
                    cmd,
                    out / f"base-{r + 1}.txt",
                    args.tail,
                )
                run(f"head round {r + 1}", ROOT, cmd, out / f"head-{r + 1}.txt", args.tail)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False
            )


if __name__ == "__main__":
    main()
