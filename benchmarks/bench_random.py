"""Cost of one funrl.random call, eager vs funrl.compile (Threefry-2x32-20 on int32 words).

    python benchmarks/bench_random.py [--threads 1]

Compares against torch's own stateful generator (torch.rand with a Generator) as a floor.
"""

from __future__ import annotations

import argparse
import time

import torch

import funrl
import funrl.random as R


def timeit(fn, reps: int) -> float:
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    k = R.key(0)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for n in (1, 4096, 1 << 20):
        reps = args.reps if n < (1 << 20) else 20
        f = lambda n=n: R.uniform(k, (n,))  # noqa: E731
        cf = funrl.compile(f)
        t0 = time.perf_counter()
        cf()
        compile_s = time.perf_counter() - t0
        eager = timeit(f, reps)
        comp = timeit(cf, reps)
        ref = timeit(lambda n=n: torch.rand(n, generator=gen), reps)
        rows.append((n, eager, comp, compile_s, ref))
    print(
        f"{'uniform(key,(n,))':>18} {'eager us':>10} {'compiled us':>12} {'compile s':>10} "
        f"{'torch.rand us':>14} {'eager/compiled':>15}"
    )
    for n, e, c, cs, r in rows:
        print(f"{n:>18} {e:>10.1f} {c:>12.1f} {cs:>10.1f} {r:>14.1f} {e / c:>15.1f}x")


if __name__ == "__main__":
    main()
