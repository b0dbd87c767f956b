"""Tune a preset with a vmapped sweep: every (hyperparameter point, seed) pair is one member
of one population, trained in one call.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/zoo/sweep.py ppo CartPole-v1 \\
        --grid lr=1e-3,2.5e-3 --grid ent_coef=0,0.01 --seeds 3
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/zoo/sweep.py dqn Acrobot-v1 \\
        --sample lr=log:1e-4:3e-3 --sample gamma=0.98:0.999 --points 8 --seeds 2

It starts from the preset (``funrl/presets/<algo>.toml``); ``--set name=value`` changes a
Config field (one population per Config: the network sizes, env counts and step budgets
are static) or an HParams field for every point.  Points are ranked by their worst seed,
then the mean of a ``--final-episodes`` (default 1,000) final evaluation, as ``funrl zoo``
judges a preset; the table and the command are appended to
``benchmarks/zoo/sweeps/<algo>-<env>.md`` (the record of how each preset was tuned).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from pathlib import Path

import torch

import funrl
from funrl import population as pop
from funrl import zoo
from funrl.arguments import parse_run

HERE = Path(__file__).resolve().parent


def _values(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _parse_axes(items: list[str], what: str) -> dict[str, str]:
    axes = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"sweep: {what} expects name=values, got {item!r}")
        name, spec = item.split("=", 1)
        axes[name.strip()] = spec.strip()
    return axes


def _points(args: argparse.Namespace, hp_names: set[str]) -> list[dict[str, float]]:
    grid = _parse_axes(args.grid or [], "--grid")
    space = _parse_axes(args.sample or [], "--sample")
    for name in [*grid, *space]:
        if name not in hp_names:
            raise SystemExit(
                f"sweep: {name!r} is not an HParams field ({', '.join(sorted(hp_names))})"
            )
    points: list[dict[str, float]] = [{}]
    if grid:
        names = list(grid)
        combos = itertools.product(*(_values(grid[n]) for n in names))
        points = [dict(zip(names, c)) for c in combos]
    if space:
        g = torch.Generator().manual_seed(args.sample_seed)
        sampled = []
        for base in points:
            for _ in range(args.points):
                p = dict(base)
                for name, spec in space.items():
                    log = spec.startswith("log:")
                    low, high = (float(x) for x in spec.removeprefix("log:").split(":"))
                    u = float(torch.rand((), generator=g, dtype=torch.float64))
                    if log:
                        p[name] = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
                    else:
                        p[name] = low + u * (high - low)
                sampled.append(p)
        points = sampled
    return points


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("algo")
    p.add_argument("env")
    p.add_argument("--grid", action="append", help="name=v1,v2,... (HParams field; repeatable)")
    p.add_argument(
        "--sample", action="append", help="name=low:high or name=log:low:high (random search)"
    )
    p.add_argument("--points", type=int, default=8, help="random points (with --sample)")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=3, help="seeds per point")
    p.add_argument("--set", action="append", default=[], help="name=value for every point")
    p.add_argument("--total-steps", type=int, default=None)
    p.add_argument(
        "--final-episodes",
        type=int,
        default=zoo.FINAL_EPISODES,
        help=f"final-evaluation episodes per member (default {zoo.FINAL_EPISODES}, as the zoo)",
    )
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--no-record", action="store_true", help="do not append to sweeps/")
    args = p.parse_args()
    torch.set_num_threads(1)
    # The preset, then --set and --total-steps: the same parsing and errors as funrl train.
    run = parse_run(
        argparse.Namespace(algo=args.algo, env=args.env, config=None, set=args.set,
                           total_steps=args.total_steps, imports=[], preset=True)
    )  # fmt: skip
    mod, cfg, hp_base = run.module, run.config, vars(run.hparams)
    points = _points(args, set(hp_base))
    members = [(i, s) for i in range(len(points)) for s in range(args.seeds)]
    cols = {
        name: [float(points[i].get(name, v)) for i, _ in members] for name, v in hp_base.items()
    }
    hps = pop.hparams(type(run.hparams), len(members), **cols)
    keys = torch.stack([funrl.random.key(s) for _, s in members])
    algo = mod.make(cfg)
    t0 = time.perf_counter()
    res = pop.train(algo, keys, hps, compile=not args.no_compile, progress=True)
    wall = time.perf_counter() - t0
    # judged as the zoo judges a preset: a long final evaluation, seed s from key(s)
    finals = pop.evaluate(algo, res.states, keys, num_episodes=args.final_episodes).tolist()
    rows = []
    for i, point in enumerate(points):
        f = [finals[m] for m, (j, _) in enumerate(members) if j == i]
        rows.append((min(f), statistics.fmean(f), point, f))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    names = sorted({n for pt in points for n in pt})
    lines = [
        f"| rank | {' | '.join(names)} | worst seed | mean | seeds |",
        f"|---|{'---|' * len(names)}---|---|---|",
    ]
    for rank, (worst, mean, point, f) in enumerate(rows, 1):
        vals = " | ".join(f"{point[n]:.4g}" for n in names)
        seeds = ", ".join(f"{x:.1f}" for x in f)
        lines.append(f"| {rank} | {vals} | {worst:.1f} | {mean:.1f} | {seeds} |")
    table = "\n".join(lines)
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/zoo/sweep.py " + " ".join(sys.argv[1:])
    text = (
        f"\n## {time.strftime('%Y-%m-%d %H:%M')}: {len(points)} points x {args.seeds} seeds "
        f"= {len(members)} members, {res.env_steps_per_member:,} env steps each, "
        f"{wall:.0f} s, final eval {args.final_episodes:,} episodes\n\n```\n{command}\n```\n\n{table}\n"
    )
    print(text)
    if not args.no_record:
        out = HERE / "sweeps" / f"{args.algo}-{args.env.replace(':', '_')}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists():
            out.write_text(f"# Sweeps: {args.algo} on {args.env}\n")
        with open(out, "a") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
