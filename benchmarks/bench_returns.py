"""GAE over a [T, B] rollout: backward-scan methods, eager vs torch.compile.

    python benchmarks/bench_returns.py [--threads 1] [--T 128 512 2048] [--B 1 64 4096]

Methods (all solve x_t = a_t + b_t x_{t+1} out of place, see funrl/returns.py):
  loop     one step at a time, list + torch.stack (the baseline)
  blocked  blocks of K ~ sqrt(T) steps side by side, then the block carries
  doubling recursive doubling (Hillis-Steele), log2(T) full-size steps
  default  funrl.returns.gae as shipped: doubling if T*B <= 65536, else blocked, except
           eagerly with B >= 2048, where it loops
Each row: best-of-reps time per call in ms, and compile time (first call, FX graph cache
off, inductor warmed up) in s.  The loop
is compiled only for T <= --compile-loop-max-T: it unrolls T steps (T=512 took ~97 s).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from funrl import returns as R


def gae_with(
    scan: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> Callable[..., torch.Tensor]:
    def fn(r, v, v_tp1, term, trunc, gamma, lam):
        delta = r + gamma * (~term).to(r.dtype) * v_tp1 - v
        return scan(delta, gamma * lam * (~(term | trunc)).to(r.dtype))

    return fn


def best_ms(fn: Callable[[], object], reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--T", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--B", type=int, nargs="+", default=[1, 64, 4096])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--compile-loop-max-T", type=int, default=128)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch._dynamo.config.recompile_limit = 256
    # Honest compile times: no inductor cache across shapes, and inductor warmed up once.
    torch._inductor.config.fx_graph_cache = False
    torch.compile(lambda x: x + 1, dynamic=False)(torch.ones(2))
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32, best of {args.reps}")
    methods = {
        "loop": gae_with(R._scan_loop),
        "blocked": gae_with(R._scan_blocked),
        "doubling": gae_with(R._scan_doubling),
        "default": R.gae,
    }
    print(f"{'T':>5} {'B':>5} {'method':>9} {'eager ms':>9} {'compiled ms':>12} {'compile s':>10}")
    for T in args.T:
        for B in args.B:
            g = torch.Generator().manual_seed(T * 7919 + B)
            r, v, vp = (torch.randn(T, B, generator=g) for _ in range(3))
            term = torch.rand(T, B, generator=g) < 0.02
            trunc = torch.rand(T, B, generator=g) < 0.01
            xs = (r, v, vp, term, trunc, torch.tensor(0.99), torch.tensor(0.95))
            ref = R._scan_loop(
                r + 0.99 * (~term).float() * vp - v, 0.99 * 0.95 * (~(term | trunc)).float()
            )
            for name, fn in methods.items():
                torch.testing.assert_close(fn(*xs), ref, rtol=1e-4, atol=1e-4)
                eager = best_ms(lambda fn=fn, xs=xs: fn(*xs), args.reps)
                comp, cs = float("nan"), float("nan")
                skip = name == "loop" and T > args.compile_loop_max_T
                if not args.no_compile and not skip:
                    torch._dynamo.reset()
                    cf = torch.compile(fn, fullgraph=True, dynamic=False)
                    t0 = time.perf_counter()
                    cf(*xs)
                    cs = time.perf_counter() - t0
                    comp = best_ms(lambda cf=cf, xs=xs: cf(*xs), args.reps)
                print(
                    f"{T:>5} {B:>5} {name:>9} {eager:>9.3f} {comp:>12.3f} {cs:>10.1f}", flush=True
                )


if __name__ == "__main__":
    main()
