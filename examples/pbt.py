"""Population-based training beats fixed hyperparameters when they start out bad.

Every member starts with a learning rate far too small for CartPole.  With fixed
hyperparameters they all stay poor; with PBT (``pop.train(pbt=PBTConfig(...))``), every
few updates the worst members copy the best ones' state and perturb their ``lr`` up or
down, so the population climbs to a workable learning rate while it trains.  Writes
``pbt.png``: mean return over time for both, and PBT's learning rates over time.

    python examples/pbt.py [--quick] [--out pbt.png]
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

import torch

import funrl
from funrl import population as pop
from funrl.algos import ppo


def per_update(history: list[dict], column: str) -> tuple[list[int], list[list[float]]]:
    by_update: dict[int, list[float]] = defaultdict(list)
    for row in history:
        by_update[row["update"]].append(row[column])
    updates = sorted(by_update)
    return updates, [by_update[u] for u in updates]


def nanmean(v: list[float]) -> float:
    v = [x for x in v if not math.isnan(x)]
    return sum(v) / len(v) if v else math.nan


def draw(fixed: pop.PopulationResult, pbt: pop.PopulationResult, out: str) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed (pip install 'funrl[plot]'): no plot")
        return
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for name, res in (("fixed hyperparameters", fixed), ("PBT", pbt)):
        u, rets = per_update(res.history, "episode_return")
        left.plot(u, [nanmean(r) for r in rets], label=name)
    left.set(xlabel="update", ylabel="mean training episode return", title="population mean")
    left.legend()
    u, lrs = per_update(pbt.history, "hp.lr")
    for m in range(len(lrs[0])):
        right.plot(u, [lr[m] for lr in lrs], alpha=0.7)
    right.set(yscale="log", xlabel="update", ylabel="lr", title="PBT members' learning rates")
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="pbt.png")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="run eagerly")
    args = p.parse_args()
    torch.set_num_threads(1)

    size, updates = (4, 3) if args.quick else (8, 120)
    cfg = ppo.Config(
        env="CartPole-v1",
        num_envs=2 if args.quick else 16,
        num_steps=16 if args.quick else 32,
        hidden=(16, 16) if args.quick else (64, 64),
        anneal_lr=False,
    )
    algo = ppo.make(cfg)
    hps = pop.hparams(ppo.HParams, size, lr=1e-5)  # far too small for every member
    keys = pop.member_keys(funrl.random.key(args.seed), size)
    # --quick runs eagerly: 3 tiny updates do not pay back compiling the vmapped units
    compile_ = args.compile and not args.quick
    run = dict(num_updates=updates, compile=compile_, progress=not args.quick, eval_episodes=5)
    fixed = pop.train(algo, keys, hps, **run)
    config = pop.PBTConfig(
        interval=1 if args.quick else 8,
        fraction=0.25,
        perturb=("lr",),
        factors=(0.5, 2.0, 4.0),
        bounds={"lr": (1e-6, 3e-2)},
    )
    pbt = pop.train(algo, keys, hps, pbt=config, **run)
    print(f"fixed: mean final eval return {fixed.eval_returns.mean():.1f}")
    print(
        f"PBT:   mean final eval return {pbt.eval_returns.mean():.1f}; "
        f"final lrs {[f'{x:.1e}' for x in pbt.hparams.lr.tolist()]}"
    )
    draw(fixed, pbt, args.out)


if __name__ == "__main__":
    main()
