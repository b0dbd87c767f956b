"""Where a 32-member PPO population's compiled update spends its time, against the
matmul peak of this core at the learn step's own shapes.

    OMP_NUM_THREADS=1 python benchmarks/profile_population_learn.py [--members 32] [--threads 1]

The population is bench_population.py's (PPO CartPole, 64 envs x 16 steps per member,
4 epochs x 4 minibatches, 64 x 64 actor and critic), compiled with
``units.population(compile=True)``.  The script

1. times each compute unit of a steady update (collect x 16, stack, prepare, learn x 16,
   finish) by wrapping the compiled units with timers,
2. counts the learn step's matmul FLOPs from the network shapes (forward, and the two
   matmuls of each layer's backward: 3x the forward),
3. times the same matmuls alone (``torch.bmm`` over members, fastest of several runs)
   to get this core's peak at those shapes,

and prints the learn step's achieved GFLOP/s, its fraction of that peak, and the time
left over for everything that is not a matmul (activations, the PPO loss, Adam over
every parameter, the gradient norm, minibatch gathers).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections import defaultdict
from typing import Any

import torch


def _layer_shapes(
    obs: int, hidden: tuple[int, ...], outs: tuple[int, ...]
) -> list[tuple[int, int]]:
    """(in, out) of every linear layer of an actor and a critic MLP."""
    shapes = []
    for out in outs:
        sizes = [obs, *hidden, out]
        shapes += list(itertools.pairwise(sizes))
    return shapes


def matmul_peak(members: int, rows: int, shapes: list[tuple[int, int]], repeat: int = 50) -> float:
    """GFLOP/s of the learn step's matmuls run alone: for every layer, the forward
    ``[P, B, in] @ [P, in, out]`` and the backward's two (grad input, grad weight)."""
    ops = []
    for i, o in shapes:
        x, w, g = (
            torch.randn(members, rows, i),
            torch.randn(members, i, o),
            torch.randn(members, rows, o),
        )
        ops += [(x, w), (g, w.transpose(1, 2).contiguous()), (x.transpose(1, 2).contiguous(), g)]
    flops = sum(2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2] for a, b in ops)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for a, b in ops:
            torch.bmm(a, b)
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--members", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--updates", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import funrl
    from funrl import population as pop
    from funrl import tree
    from funrl.algos import ppo, units

    P = args.members
    cfg = ppo.Config(env="CartPole-v1", num_envs=64, num_steps=16, total_timesteps=1024 * 100)
    timers: dict[str, list[float]] = defaultdict(list)

    def timed(transform: Any) -> Any:
        def wrap(fn: Any, name: str) -> Any:
            inner = transform(fn, name)
            if name in ("init", "stack"):
                return inner

            def run(*a: Any) -> Any:
                t0 = time.perf_counter()
                out = inner(*a)
                timers[name].append(time.perf_counter() - t0)
                return out

            return run

        wrap.vmaps = True  # type: ignore[attr-defined]
        return wrap

    algo = ppo.make(cfg, units=timed(units.population(compile=True)))
    hps = pop.hparams(ppo.HParams, P, lr=torch.logspace(-3.5, -2.5, P))
    keys = pop.member_keys(funrl.random.key(0), P)
    state = tree.contiguous(algo.init(keys, hps))
    t0 = time.perf_counter()
    state, _ = algo.update(state, hps)  # compiles
    print(f"first update (compiles): {time.perf_counter() - t0:.1f} s")
    timers.clear()
    walls = []
    for _ in range(args.updates):
        t0 = time.perf_counter()
        state, _ = algo.update(state, hps)
        walls.append(time.perf_counter() - t0)
    n = args.updates
    wall = statistics.median(walls)
    print(f"\n{P} members, {args.threads} thread(s): steady update {wall * 1e3:.1f} ms "
          f"({P * cfg.batch_size / wall:,.0f} env-steps/s)")  # fmt: skip
    print("unit       calls/update   ms/update   share")
    for name, ts in timers.items():
        per = sum(ts) / n
        print(f"{name:10} {len(ts) // n:>12} {per * 1e3:>11.1f} {per / wall:7.0%}")
    learn_s = sum(timers["learn"]) / len(timers["learn"])
    rows = cfg.batch_size // cfg.num_minibatches
    shapes = _layer_shapes(4, tuple(cfg.hidden), (2, 1))
    flops = 3 * sum(2 * P * rows * i * o for i, o in shapes)
    achieved = flops / learn_s / 1e9
    peak = matmul_peak(P, rows, shapes)
    mm_s = flops / (peak * 1e9)
    print(f"\nlearn step: {learn_s * 1e3:.2f} ms, {flops / 1e6:.0f} MFLOP of matmuls "
          f"({P} x {rows} rows, layers {shapes}): {achieved:.1f} GFLOP/s")  # fmt: skip
    print(f"the same matmuls alone (torch.bmm): {peak:.1f} GFLOP/s -> learn step at "
          f"{achieved / peak:.0%} of that peak")  # fmt: skip
    print(f"at that peak its matmuls take {mm_s * 1e3:.2f} ms; the other "
          f"{(learn_s - mm_s) * 1e3:.2f} ms ({(learn_s - mm_s) / learn_s:.0%}) are "
          "everything else: activations, loss, Adam over every parameter, grad norm, gathers")  # fmt: skip


if __name__ == "__main__":
    main()
