"""Replay throughput: funrl.buffers against a plain imperative torch ring, eager and compiled.

Runs on ONE CPU thread (``torch.set_num_threads(1)``).  Capacity 1e6 CartPole-sized
transitions (obs[4], action int64, reward, discount, next_obs[4]: ~44 MB), the buffer
full.  One "op" is one add of B rows plus one sample of 256 rows, for B = 256 (a batch) and
B = 8 (one step of 8 envs).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_buffers.py [--quick]

Rows:
  torch ring (in-place)        ``buf[idx] = x`` and ``buf[torch.randint(...)]``
  funrl add (pure)             ``buffers.add``: out-of-place, copies the whole buffer
  funrl add donate=True        ``buffers.add(..., donate=True)``: in-place index_put_
  funrl prioritized donate     ``prioritized_add(donate=True)`` + ``prioritized_sample``
                               (alpha 0.6, beta 0.4) + ``update_priorities(donate=True)``
                               of the sampled rows (what one PER learning step does)
Each in eager and compiled (``torch.compile(fullgraph=True)`` of add and of sample, the
torch ring's too); the ratio is time / time of the torch ring in the same mode.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from funrl import buffers as B
from funrl import random as R

torch.set_num_threads(1)
CAP = 1_000_000
SAMPLE = 256


def example() -> dict[str, torch.Tensor]:
    return {
        "obs": torch.zeros(4),
        "action": torch.zeros((), dtype=torch.int64),
        "reward": torch.zeros(()),
        "discount": torch.zeros(()),
        "next_obs": torch.zeros(4),
    }


def rows(b: int) -> dict[str, torch.Tensor]:
    return {k: torch.ones((b, *v.shape), dtype=v.dtype) for k, v in example().items()}


def timeit(fn: Callable[[], object], iters: int, repeats: int = 3) -> float:
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


def torch_ring(b: int, compiled: bool) -> Callable[[], object]:
    data = {k: torch.zeros((CAP, *v.shape), dtype=v.dtype) for k, v in example().items()}
    x = rows(b)
    gen = torch.Generator().manual_seed(0)
    pos = [0]

    def add(data: dict[str, torch.Tensor], idx: torch.Tensor, x: dict[str, torch.Tensor]) -> None:
        for k in data:
            data[k][idx] = x[k]

    def sample(data: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v[idx] for k, v in data.items()}

    if compiled:
        add = torch.compile(add, fullgraph=True, dynamic=False)
        sample = torch.compile(sample, fullgraph=True, dynamic=False)

    def op() -> object:
        idx = (pos[0] + torch.arange(b)) % CAP
        pos[0] = (pos[0] + b) % CAP
        add(data, idx, x)
        return sample(data, torch.randint(0, CAP, (SAMPLE,), generator=gen))

    return op


def full(state: Any) -> Any:
    return state.replace(size=torch.tensor(CAP))


def funrl_ring(b: int, compiled: bool, donate: bool) -> Callable[[], object]:
    box = [full(B.init(example(), CAP))]
    x = rows(b)
    key = [R.key(0)]
    add = lambda s, x: B.add(s, x, donate=donate)  # noqa: E731
    sample = lambda s, k: B.sample(s, k, SAMPLE)  # noqa: E731
    split = R.split
    if compiled:
        add = torch.compile(add, fullgraph=True, dynamic=False)
        sample = torch.compile(sample, fullgraph=True, dynamic=False)
        split = torch.compile(R.split, fullgraph=True, dynamic=False)

    def op() -> object:
        k, key[0] = split(key[0])
        box[0] = add(box[0], x)
        return sample(box[0], k)

    return op


def funrl_prioritized(b: int, compiled: bool) -> Callable[[], object]:
    s = full(B.prioritized_init(example(), CAP, alpha=0.6))
    g = torch.Generator().manual_seed(0)
    box = [B.update_priorities(s, torch.arange(CAP), torch.rand(CAP, generator=g) + 0.1)]
    x = rows(b)
    key = [R.key(0)]
    beta = torch.tensor(0.4)
    add = lambda s, x: B.prioritized_add(s, x, donate=True)  # noqa: E731
    sample = lambda s, k: B.prioritized_sample(s, k, SAMPLE, beta)  # noqa: E731
    update = lambda s, i, w: B.update_priorities(s, i, w + 0.1, donate=True)  # noqa: E731
    split = R.split
    if compiled:
        add = torch.compile(add, fullgraph=True, dynamic=False)
        sample = torch.compile(sample, fullgraph=True, dynamic=False)
        update = torch.compile(update, fullgraph=True, dynamic=False)
        split = torch.compile(R.split, fullgraph=True, dynamic=False)

    def op() -> object:
        k, key[0] = split(key[0])
        box[0] = add(box[0], x)
        out, idx, w = sample(box[0], k)
        box[0] = update(box[0], idx, w)
        return out

    return op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    iters = 5 if args.quick else 20
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, capacity {CAP:,}, sample {SAMPLE}"
    )
    print(f"{'mode':9} {'B':>4} {'implementation':30} {'us/op':>10} {'ops/s':>9} {'ratio':>7}")
    for compiled in (False, True):
        mode = "compiled" if compiled else "eager"
        for b in (256, 8):
            base = timeit(torch_ring(b, compiled), iters * 10)
            results = [
                ("torch ring (in-place)", base),
                ("funrl add (pure)", timeit(funrl_ring(b, compiled, False), iters)),
                ("funrl add donate=True", timeit(funrl_ring(b, compiled, True), iters * 10)),
                ("funrl prioritized donate", timeit(funrl_prioritized(b, compiled), iters * 10)),
            ]
            for name, t in results:
                print(f"{mode:9} {b:>4} {name:30} {t * 1e6:>10.1f} {1 / t:>9.0f} {t / base:>7.2f}")


if __name__ == "__main__":
    main()
