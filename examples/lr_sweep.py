"""A learning-rate sweep as ONE vmapped population: every member trains in the same call.

Each member has its own key and its own ``lr`` (a 0-d tensor in HParams, so the
population is a ``vmap`` over it, and a compiled population never recompiles for new
values).  Writes ``lr_sweep.png``: final return against learning rate, and the learning
curve of every member.

    python examples/lr_sweep.py [--quick] [--out lr_sweep.png]
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

import torch

import funrl
from funrl import population as pop
from funrl.algos import ppo


def draw(result: pop.PopulationResult, lrs: list[float], out: str) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed (pip install 'funrl[plot]'): no plot")
        return
    curves: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for row in result.history:
        if not math.isnan(row["episode_return"]):
            curves[row["member"]].append((row["update"], row["episode_return"]))
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(lrs, result.eval_returns.tolist(), "o-")
    left.set(
        xscale="log",
        xlabel="learning rate",
        ylabel="final eval return",
        title="return vs learning rate",
    )
    for member, pts in sorted(curves.items()):
        right.plot(*zip(*pts), label=f"lr={lrs[member]:.1e}")
    right.set(xlabel="update", ylabel="training episode return", title="over time")
    right.legend(fontsize="small")
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="lr_sweep.png")
    p.add_argument("--compile", action="store_true", help="compile the vmapped units")
    args = p.parse_args()
    torch.set_num_threads(1)

    size = 3 if args.quick else 8
    cfg = ppo.Config(
        env="CartPole-v1",
        num_envs=4 if args.quick else 16,
        num_steps=32,
        hidden=(16, 16) if args.quick else (64, 64),
        total_timesteps=100_000,
    )
    algo = ppo.make(cfg)
    lrs = torch.logspace(-4, -1.5, size)
    hps = pop.hparams(ppo.HParams, size, lr=lrs)
    keys = pop.member_keys(funrl.random.key(args.seed), size)
    result = pop.train(
        algo,
        keys,
        hps,
        num_updates=2 if args.quick else 150,
        compile=args.compile,
        progress=not args.quick,
        eval_episodes=5,
    )
    print(result.table)
    draw(result, lrs.tolist(), args.out)


if __name__ == "__main__":
    main()
