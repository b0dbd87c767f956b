"""Time to result: whole ``funrl train`` processes, from launch to a trained, evaluated agent.

    python benchmarks/bench_startup.py [--steps 200000] [--debug-steps 20000]
                                       [--rejax-python PATH]

Runs, one process at a time (OMP_NUM_THREADS=1, ``--threads 1``), PPO on CartPole-v1:

* compiled with a cold inductor cache (a fresh ``TORCHINDUCTOR_CACHE_DIR``),
* compiled again with that cache warm,
* eager (``--no-compile``),

for the main job (``--steps``) and a short debugging run (``--debug-steps``), and prints
each one's wall time, the part before the first update finished (compile/warm-up, from
the run's summary.json) and the final evaluation.  ``--rejax-python`` adds rejax's PPO
(benchmarks/peer_rejax_ppo.py, a Python with rejax installed) to the table for scale.
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

HERE = Path(__file__).resolve().parent


def _funrl(steps: int, compile: bool, cache: str, out: Path) -> dict[str, float]:
    cmd = [sys.executable, "-m", "funrl", "train", "ppo", "--env", "CartPole-v1", "--quiet"]
    cmd += ["--total-steps", str(steps), "--threads", "1", "--out", str(out)]
    cmd += [] if compile else ["--no-compile"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_CACHE_DIR": cache}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    return {
        "wall_s": wall,
        "compile_s": summary["compile_time_s"],
        "train_s": summary["wall_time_s"],
        "eval_return": summary["eval_return"],
    }


def _rejax(python: str) -> dict[str, float] | None:
    t0 = time.perf_counter()
    run = subprocess.run(
        [python, str(HERE / "peer_rejax_ppo.py"), "--seeds", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if run.returncode != 0:
        print(f"rejax failed: {run.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return {"wall_s": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--debug-steps", type=int, default=20_000)
    p.add_argument("--rejax-python", default=None)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (args.steps, args.debug_steps):
            cache = tempfile.mkdtemp(dir=tmp)
            for label, compile in (("cold cache", True), ("warm cache", True), ("eager", False)):
                out = Path(tmp) / f"run-{steps}-{label.replace(' ', '-')}"
                rows.append((f"funrl {steps:,} steps, {label}", _funrl(steps, compile, cache, out)))
    if args.rejax_python:
        r = _rejax(args.rejax_python)
        if r is not None:
            rows.append(("rejax PPO to eval 475 (cold by nature)", r))
    print(f"{'run':<44} {'wall s':>7} {'compile s':>9} {'train s':>8} {'eval':>6}")
    for name, r in rows:
        print(
            f"{name:<44} {r['wall_s']:>7.1f} {r.get('compile_s', float('nan')):>9.1f} "
            f"{r.get('train_s', float('nan')):>8.1f} {r.get('eval_return', float('nan')):>6.1f}"
        )


if __name__ == "__main__":
    main()
