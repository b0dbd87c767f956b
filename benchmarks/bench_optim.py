"""Adam update time: funrl.optim.adam against torch.optim.Adam, eager and compiled.

Runs on ONE CPU thread (``torch.set_num_threads(1)``) so numbers are comparable across
machines shared by several processes.  Times only the optimizer update (gradients are
fixed tensors), for a 4-64-64-2 MLP (~4.6k params, 6 tensors) and a ~1M-param MLP.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_optim.py [--quick]

Rows:
  torch Adam (default)      torch.optim.Adam(); on CPU torch picks the for-loop kernels
  torch Adam foreach=True   torch.optim.Adam(foreach=True)
  funrl adam (auto)         our update + apply_updates; torch._foreach_* eagerly
  funrl adam foreach=False  the per-leaf path (what vmap uses)
  ... compiled              torch.compile of ``opt.step`` / of our pure step (fullgraph)
  funrl vmap(32) compiled   a population of 32 members, each with its own lr, per member
The ratio column is time / time of ``torch Adam (default)`` in the same mode (eager rows
against eager torch, compiled rows against compiled torch).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

import torch

import funrl.random as R
from funrl import optim, tree

torch.set_num_threads(1)


def mlp_params(sizes: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    keys = R.split(R.key(seed), 2 * len(sizes))
    p = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        p[f"w{i}"] = R.normal(keys[2 * i], (a, b)) / a**0.5
        p[f"b{i}"] = R.normal(keys[2 * i + 1], (b,)) * 0.01
    return p


def timeit(fn: Callable[[], object], iters: int, repeats: int = 5) -> float:
    """Median seconds per call over ``repeats`` blocks of ``iters`` calls (after warm-up)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times)


def torch_adam(params, grads, foreach, compiled):
    ps = [p.clone().requires_grad_(True) for p in params.values()]
    for p, g in zip(ps, grads.values()):
        p.grad = g.clone()
    opt = torch.optim.Adam(ps, lr=1e-3, foreach=foreach)
    step = opt.step
    if compiled:
        step = torch.compile(opt.step)

    def run():
        with torch.no_grad():
            step()

    return run


def funrl_adam(params, grads, foreach, compiled):
    opt = optim.adam(1e-3, foreach=foreach)
    box = [params, opt.init(params)]

    def step(g, state, p):
        u, state = opt.update(g, state, p)
        return optim.apply_updates(p, u), state

    f = torch.compile(step, fullgraph=True, dynamic=False) if compiled else step

    def run():
        box[0], box[1] = f(grads, box[1], box[0])

    return run


def funrl_population(params, grads, n):
    opt = optim.adam(1e-3)
    pp = tree.map(lambda x: x.expand(n, *x.shape).clone(), params)
    gg = tree.map(lambda x: x.expand(n, *x.shape).clone(), grads)
    states = tree.stack([opt.init(params)] * n)
    states = optim.set_hparams(states, lr=torch.logspace(-4, -2, n, dtype=torch.float64))

    def step(g, state, p):
        u, state = opt.update(g, state, p)
        return optim.apply_updates(p, u), state

    f = torch.compile(torch.func.vmap(step), fullgraph=True, dynamic=False)
    box = [pp, states]

    def run():
        box[0], box[1] = f(gg, box[1], box[0])

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    args = ap.parse_args()
    scale = 0.2 if args.quick else 1.0
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()} (set to 1)")
    nets = {"mlp 4-64-64-2": [4, 64, 64, 2], "mlp 64-1024-896-64": [64, 1024, 896, 64]}
    header = f"{'net':<20} {'params':>8}  {'variant':<28} {'us/update':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for name, sizes in nets.items():
        params = mlp_params(sizes)
        grads = tree.map(lambda x: x * 0.01 + 0.001, params)
        n = tree.num_elements(params)
        iters = max(5, int((2000 if n < 1e5 else 40) * scale))
        rows = []
        for compiled in (False, True):
            mode = "compiled" if compiled else "eager"
            base = timeit(torch_adam(params, grads, None, compiled), iters)
            rows.append((f"torch Adam (default) {mode}", base, base))
            t = timeit(torch_adam(params, grads, True, compiled), iters)
            rows.append((f"torch Adam foreach {mode}", t, base))
            if not compiled:
                t = timeit(funrl_adam(params, grads, None, compiled), iters)
                rows.append(("funrl adam (auto) eager", t, base))
                t = timeit(funrl_adam(params, grads, False, compiled), iters)
                rows.append(("funrl adam per-leaf eager", t, base))
            else:
                t = timeit(funrl_adam(params, grads, None, compiled), iters)
                rows.append(("funrl adam compiled", t, base))
                if n < 1e5:
                    t = timeit(funrl_population(params, grads, 32), iters // 4) / 32
                    rows.append(("funrl vmap(32) compiled /mbr", t, base))
        for label, t, b in rows:
            print(f"{name:<20} {n:>8}  {label:<28} {t * 1e6:>10.1f} {t / b:>6.2f}")


if __name__ == "__main__":
    main()
