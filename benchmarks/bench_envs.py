"""Random-action CartPole-v1 env-steps/s: Gymnasium, its SyncVectorEnv, funrl, gymnax.

Not a test.  One run of each, side by side:

* Gymnasium, one env (``gymnasium.make``, reset when done);
* ``gymnasium.vector.SyncVectorEnv`` with 8 and 64 envs (auto-reset inside);
* funrl ``CartPole`` vmapped over 1, 64, 1024, 4096 envs: eager, and one
  ``funrl.compile``'d step called from a Python loop; compile time is reported apart;
* gymnax (JAX; jit + vmap + scan) when it is importable, else skipped.

funrl and gymnax do the same work per step (gymnax's own benchmark loop): one carried
key is split three ways (next key, actions, envs), ``randint`` draws the ``n`` actions
from one key, ``split`` gives each env its own key, and the vmapped ``env.step`` steps
and auto-resets every env (both libraries compute the reset state for every env and
select it where the episode ended).  gymnax runs 100 such steps in one ``jit``'d
``lax.scan``; funrl calls its compiled step from a Python loop (DESIGN.md: never unroll
long loops into one graph), so the Python call overhead (~25 us) counts against funrl.

Ratios are against SyncVectorEnv(64).  The thread count is set (default 2) and printed;
the gymnax subprocess gets the same count through ``XLA_FLAGS``.

Usage::

    .venv/bin/python benchmarks/bench_envs.py            # full
    .venv/bin/python benchmarks/bench_envs.py --quick    # shorter runs, fewer sizes
    .venv/bin/python benchmarks/bench_envs.py --threads 1 --sizes 64 1024

gymnax from a separate environment (it needs no torch), in the same table::

    .venv/bin/python benchmarks/bench_envs.py --gymnax-python /path/to/jax-venv/bin/python
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Row = tuple[str, float, str]  # (name, steps per second, note)


def _timed(fn: Callable[[], int], min_seconds: float) -> float:
    """Steps/s of ``fn`` (which returns how many env-steps it did), repeated for a while."""
    steps, t0 = 0, time.perf_counter()
    while True:
        steps += fn()
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return steps / dt


def stepping(fn: Callable[..., Any], key: Any, state: Any, iters: int, n: int) -> Callable[[], int]:
    """``run() -> env steps``: ``iters`` calls of ``fn(key, state) -> (key, state, ...)``
    over ``n`` envs, carrying key and state from one ``run`` to the next (for :func:`_timed`)."""
    carry = {"key": key, "state": state}

    def run() -> int:
        k, s = carry["key"], carry["state"]
        for _ in range(iters):
            k, s, *_ = fn(k, s)
        carry["key"], carry["state"] = k, s
        return iters * n

    return run


def bench_gymnasium(seconds: float) -> list[Row]:
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def run() -> int:
        for _ in range(1000):
            _, _, te, tr, _ = env.step(int(rng.integers(2)))
            if te or tr:
                env.reset()
        return 1000

    rows = [("gymnasium 1 env", _timed(run, seconds), "gym.make")]
    for n in (8, 64):
        venv = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n)])
        venv.reset(seed=0)

        def run_vec(venv=venv, n=n) -> int:
            for _ in range(100):
                venv.step(rng.integers(0, 2, size=n))
            return 100 * n

        rows.append((f"gymnasium SyncVectorEnv({n})", _timed(run_vec, seconds), ""))
        venv.close()
    return rows


def bench_funrl(sizes: list[int], seconds: float, compile_: bool) -> list[Row]:
    import torch
    from torch.func import vmap

    import funrl
    import funrl.random as R
    from funrl.envs.classic_control import CartPole

    env = CartPole()
    params = env.default_params()
    rows: list[Row] = []
    for n in sizes:

        def step(key: torch.Tensor, state, n=n):
            """All ``n`` envs: random actions, then step (auto-reset); carry the next key."""
            key, k_act, k_step = R.split(key, 3)
            actions = R.randint(k_act, 0, 2, (n,))
            obs, state, reward, terminated, truncated, _ = vmap(env.step, in_dims=(0, 0, 0, None))(
                R.split(k_step, n), state, actions, params
            )
            return key, state, obs, reward, terminated, truncated

        key0 = R.key(0)
        _, state0 = vmap(env.reset, in_dims=(0, None))(R.split(R.key(1), n), params)
        iters = max(10, 20000 // n)

        rows.append(
            (f"funrl eager vmap({n})", _timed(stepping(step, key0, state0, iters, n), seconds), "")
        )
        if compile_:
            cstep = funrl.compile(step)
            t0 = time.perf_counter()
            k, s, *_ = cstep(key0, state0)
            # The carried key comes back as a strided view (a slice of split's [3, 2]):
            # dynamo specialises once more on the second call.  Both count as compile time.
            k, s, *_ = cstep(k, s)
            compile_s = time.perf_counter() - t0
            rate = _timed(stepping(cstep, k, s, iters, n), seconds)
            rows.append((f"funrl compiled vmap({n})", rate, f"compile {compile_s:.1f} s"))
    return rows


def bench_gymnax(
    sizes: list[int], seconds: float, scan_len: int, env_id: str = "CartPole-v1"
) -> list[Row]:
    """gymnax's ``env_id`` (uniform random actions over its action space) at ``sizes``."""
    if importlib.util.find_spec("gymnax") is None or importlib.util.find_spec("jax") is None:
        return [("gymnax", float("nan"), "skipped: gymnax/jax not importable")]
    import gymnax
    import jax

    env, params = gymnax.make(env_id)
    num_actions = env.action_space(params).n
    rows: list[Row] = []
    for n in sizes:
        # the observation is carried, so XLA computes it every step as funrl does (were it
        # unused, XLA would drop it: 10.7 M vs 3.5 M steps/s for MinAtar Breakout)
        def body(carry, _, n=n):
            key, state, _obs = carry
            key, k_act, k_step = jax.random.split(key, 3)
            actions = jax.random.randint(k_act, (n,), 0, num_actions)
            out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_step, n), state, actions, params
            )  # (obs, state, reward, done, info) or, in gymnax 1.x, with terminated/truncated
            return (key, out[1], out[0]), out[2].sum()

        @jax.jit
        def rollout(key, state, obs, body=body):
            (key, state, obs), _ = jax.lax.scan(body, (key, state, obs), None, length=scan_len)
            return key, state, obs

        key = jax.random.PRNGKey(0)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), params)
        t0 = time.perf_counter()
        jax.block_until_ready(rollout(key, state, obs))
        compile_s = time.perf_counter() - t0
        carry = {"key": key, "state": state, "obs": obs}

        def run(carry=carry, rollout=rollout, n=n) -> int:
            carry["key"], carry["state"], carry["obs"] = jax.block_until_ready(
                rollout(carry["key"], carry["state"], carry["obs"])
            )
            return scan_len * n

        note = f"jit+vmap+scan({scan_len}), compile {compile_s:.1f} s"
        rows.append((f"gymnax vmap({n})", _timed(run, seconds), note))
    return rows


def _xla_env(threads: int) -> dict[str, str]:
    """The environment with XLA's CPU thread pools capped at ``threads``."""
    flags = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
    flags += f"intra_op_parallelism_threads={threads}"
    return {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()}


def gymnax_subprocess(
    python: str,
    sizes: list[int],
    seconds: float,
    scan_len: int,
    threads: int,
    env_id: str = "CartPole-v1",
) -> list[Row]:
    """Run the gymnax part under another interpreter (a venv with jax) and read its rows."""
    cmd = [python, __file__, "--only-gymnax", "--json", "--seconds", str(seconds)]
    cmd += ["--gymnax-env", env_id]
    cmd += ["--scan-len", str(scan_len), "--sizes", *map(str, sizes)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=_xla_env(threads))
    if out.returncode != 0:
        return [("gymnax", float("nan"), f"failed: {out.stderr.strip().splitlines()[-1:]}")]
    return [tuple(r) for r in json.loads(out.stdout.strip().splitlines()[-1])]  # type: ignore[misc]


def print_table(rows: list[Row], header: str) -> None:
    ref = next((r for name, r, _ in rows if name == "gymnasium SyncVectorEnv(64)"), None)
    print(header)
    print(f"{'implementation':<32}{'steps/s':>14}{'vs Sync(64)':>13}  note")
    for name, rate, note in rows:
        ratio = f"{rate / ref:.2f}x" if ref and rate == rate else "-"
        rate_s = f"{rate:,.0f}" if rate == rate else "-"
        print(f"{name:<32}{rate_s:>14}{ratio:>13}  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--quick", action="store_true", help="0.5 s per measurement, fewer sizes")
    ap.add_argument("--seconds", type=float, default=None, help="time per measurement")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="funrl/gymnax env counts")
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled funrl runs")
    ap.add_argument("--no-gymnax", action="store_true")
    ap.add_argument("--only-gymnax", action="store_true", help="run gymnax alone (no torch)")
    ap.add_argument("--json", action="store_true", help="with --only-gymnax: print JSON rows")
    ap.add_argument("--gymnax-python", default=None, help="python of a venv with gymnax + jax")
    ap.add_argument("--scan-len", type=int, default=100, help="gymnax steps per jitted call")
    ap.add_argument("--gymnax-env", default="CartPole-v1", help="with --only-gymnax: the env")
    args = ap.parse_args()
    seconds = args.seconds if args.seconds is not None else (0.5 if args.quick else 2.0)
    sizes = args.sizes or ([1, 64, 1024] if args.quick else [1, 64, 1024, 4096])

    if args.only_gymnax:
        rows = bench_gymnax(sizes, seconds, args.scan_len, args.gymnax_env)
        if args.json:
            print(json.dumps(rows))
        else:
            print_table(rows, "gymnax only")
        return
    import torch

    torch.set_num_threads(args.threads)
    header = (
        f"CartPole-v1, random actions; torch {torch.__version__}, "
        f"torch.get_num_threads()={torch.get_num_threads()}, {seconds} s per measurement"
    )
    rows = bench_gymnasium(seconds)
    rows += bench_funrl(sizes, seconds, compile_=not args.no_compile)
    if args.gymnax_python:
        rows += gymnax_subprocess(args.gymnax_python, sizes, seconds, args.scan_len, args.threads)
    elif not args.no_gymnax:
        os.environ.update(_xla_env(args.threads))  # before jax is imported
        rows += bench_gymnax(sizes, seconds, args.scan_len)
    print_table(rows, header)


if __name__ == "__main__":
    main()
