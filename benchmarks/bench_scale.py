"""Scaling on one machine: threads vs processes, on a quiet machine and beside a busy core.

    python benchmarks/bench_scale.py [--members 32] [--updates 12] [--what population dp]

``population``: a 32-member PPO CartPole population (64 envs x 16 steps each, compiled),
trained by ``python -m funrl.distributed population`` as

* 1 process x 1 thread, 1 process x 2 threads, 1 process x ``--threads auto``,
* 2 processes x 1 thread (``--nproc 2``: torch.distributed, gloo, 16 members each),

each once on a quiet machine and once while another process spins on one core
(``python -c "while True: pass"``).  Figures are the run's steady env-steps/s (every
member's steps, first two updates left out), as the CLI reports them.

``dp``: PPO CartPole (compiled) data-parallel over 2 processes vs 1 process, the same
global batch (e.g. 16 envs on 1 rank, 8 on each of 2) and the same updates, so the same
env steps; 3 seeds each, run in pairs (seed s on 1 process, then on 2) so that each
pair shares the machine's speed of the moment, with the pair-by-pair ratios and their
median, and the final evaluation beside the speed.  Two configs: the CartPole
preset (1,024 steps and 16 small gradient steps per update: bound by the latency of
gloo's all-reduce, one per gradient step) and a large one (128 envs x 128 steps, a
256 x 256 network: 16k steps per update).

Every run is a fresh process with its own inductor cache warm from earlier runs (run the
script twice for warm figures).  The machine's cores and load are printed first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def busy_core(on: bool) -> Iterator[None]:
    """A process spinning on one core for the block (nothing when ``on`` is False)."""
    if not on:
        yield
        return
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        yield
    finally:
        spin.kill()
        spin.wait()


def distributed(args: list[str], out: Path) -> dict:
    """Run ``python -m funrl.distributed ARGS --out OUT``; its summary.json."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("OMP_NUM_THREADS", None)  # --threads decides
    cmd = [sys.executable, "-m", "funrl.distributed", *args, "--quiet", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads((out / "summary.json").read_text())


def population(members: int, updates: int, tmp: Path) -> None:
    base = ["population", "ppo", "--population", str(members), "--updates", str(updates)]
    base += ["--no-preset", "--set", "num_envs=64", "--set", "num_steps=16", "--seed", "0"]
    settings = [
        ("1 process x 1 thread", ["--threads", "1"]),
        ("1 process x 2 threads", ["--threads", "2"]),
        ("1 process x auto threads", ["--threads", "auto"]),
        ("2 processes x 1 thread", ["--threads", "1", "--nproc", "2"]),
    ]
    rows = []
    for name, extra in settings:
        figures = []
        for busy in (False, True):
            out = tmp / f"pop-{len(rows)}-{busy}"
            with busy_core(busy):
                s = distributed(base + extra, out)
            figures.append((s["steady_steps_per_s"], s.get("threads")))
        rows.append((name, figures))
    one = rows[0][1][0][0]
    print(f"\nPPO CartPole population of {members} (64 envs x 16 steps each), {updates} updates")
    print("setting                    quiet env-steps/s (x 1 thread)   busy core env-steps/s")
    for name, ((quiet, tq), (busy, tb)) in rows:
        auto = f" [{tq} / {tb} threads]" if "auto" in name else ""
        print(f"{name:26} {quiet:>12,.0f} ({quiet / one:4.2f}x)        {busy:>12,.0f}{auto}")


#: data-parallel configs: (name, --set fields but num_envs, global num_envs, updates)
DP_CONFIGS = {
    "preset": ([], 16, 97),  # ppo's CartPole preset: 16 x 64 steps, 100k steps
    "large": (["num_steps=128", "hidden=256,256"], 128, 16),  # 16k steps per update
}


def data_parallel(configs: list[str], seeds: int, tmp: Path) -> None:
    for name in configs:
        sets, envs, updates = DP_CONFIGS[name]
        rates: dict[int, list[float]] = {1: [], 2: []}
        evals: dict[int, list[float]] = {1: [], 2: []}
        # Interleaved (seed s on 1 process, then on 2): the machine's speed drifts by
        # 10-20% over minutes, and each pair shares its minute.
        for seed in range(seeds):
            for nproc in (1, 2):
                args = ["dataparallel", "ppo", "--updates", str(updates), "--seed", str(seed)]
                args += ["--set", f"num_envs={envs // nproc}", "--threads", "1"]
                args += ["--eval-episodes", "10"]
                for field in sets:
                    args += ["--set", field]
                if nproc > 1:
                    args += ["--nproc", str(nproc)]
                s = distributed(args, tmp / f"dp-{name}-{nproc}-{seed}")
                rates[nproc].append(s["steady_steps_per_s"])
                evals[nproc].append(s["eval_return"])
        ratios = [b / a for a, b in zip(rates[1], rates[2])]
        what = " ".join(sets) or "the preset"
        print(f"\nPPO CartPole data-parallel ({what}), {envs} envs in all, {updates} updates")
        print(
            "processes  envs/rank  steady env-steps/s per seed (median)       final eval per seed"
        )
        for nproc in (1, 2):
            per = ", ".join(f"{r:,.0f}" for r in rates[nproc])
            ev = ", ".join(f"{e:.1f}" for e in evals[nproc])
            med = statistics.median(rates[nproc])
            print(f"{nproc:9} {envs // nproc:10}  {per} ({med:,.0f})   {ev}")
        print(
            "2 / 1 process, pair by pair: "
            + ", ".join(f"{r:.2f}x" for r in ratios)
            + f"; median {statistics.median(ratios):.2f}x"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--members", type=int, default=32)
    ap.add_argument("--updates", type=int, default=12)
    ap.add_argument("--dp", nargs="+", default=list(DP_CONFIGS), choices=list(DP_CONFIGS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--what", nargs="+", default=["population", "dp"])
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from funrl import runtime

    print(
        f"{len(runtime.usable_cores())} usable cores, {runtime.free_cores(0.5)} free now, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as d:
        if "population" in args.what:
            population(args.members, args.updates, Path(d))
        if "dp" in args.what:
            data_parallel(args.dp, args.seeds, Path(d))


if __name__ == "__main__":
    main()
