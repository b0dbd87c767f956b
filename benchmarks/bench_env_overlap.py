"""Would stepping a host env in subprocesses, overlapped with the policy's compute, pay?
(issue 15: "overlap env stepping with compute where it pays (measure)").

A collector step on a host env is the simulator's step plus the policy's forward on the
new observations; the two are sequential for one batch of envs.  Overlap needs the envs
split in two halves: while half A steps (in Gymnasium's ``AsyncVectorEnv`` subprocesses),
the policy runs on half B's observations, then the other way round.  This script times,
per collector step of ``--envs`` envs (random actions come from a 64x64 MLP policy, eager,
one torch thread: the shape of funrl's PPO policy on these envs):

* ``sync env``: Gymnasium's ``SyncVectorEnv`` step alone (what funrl's bridge does now);
* ``policy``: the MLP forward and a Gaussian / categorical sample alone;
* ``sync env + policy``: the two in sequence (today's collector, less funrl's wrappers);
* ``async env``: ``AsyncVectorEnv`` step alone (one subprocess per env);
* ``async halves + policy``: two ``AsyncVectorEnv`` halves, each stepping while the
  policy runs on the other's observations (the best a pipelined collector could do);
* ``ThreadVectorEnv``: funrl's :class:`~funrl.envs.thread_vector.ThreadVectorEnv`, one
  shard per core stepped at once on threads of this process (no pipes, no pickling;
  pays only where the simulator releases the GIL);
* ``thread env``: two ``SyncVectorEnv`` halves stepped at once on two pool threads;
* ``thread halves + policy``: the pipeline of ``async halves + policy`` with each half
  stepped on a worker thread instead of in subprocesses.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_env_overlap.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_env_overlap.py --env HalfCheetah-v5
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_env_overlap.py --rounds 5 --steps 1000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_env_overlap.py --env atari:Breakout
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np
import torch


def make_policy(env: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A 64x64 tanh MLP on the observation, sampling an action of the env's space."""
    obs_dim = int(np.prod(env.single_observation_space.shape))
    space = env.single_action_space
    discrete = isinstance(space, gym.spaces.Discrete)
    out = int(space.n) if discrete else int(np.prod(space.shape))
    net = torch.nn.Sequential(
        torch.nn.Linear(obs_dim, 64), torch.nn.Tanh(),
        torch.nn.Linear(64, 64), torch.nn.Tanh(),
        torch.nn.Linear(64, out),
    )  # fmt: skip
    gen = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def policy(obs: np.ndarray) -> np.ndarray:
        logits = net(torch.as_tensor(obs, dtype=torch.float32).reshape(len(obs), -1))
        if discrete:
            return torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0].numpy()
        noise = torch.randn(logits.shape, generator=gen)
        return (logits + noise).clamp(-1.0, 1.0).numpy()

    return policy


def per_step_us(fn: Callable[[], None], steps: int) -> float:
    for _ in range(20):  # warm-up
        fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps * 1e6


def vector(env_id: str, num_envs: int, mode: str) -> Any:
    """``num_envs`` of ``env_id`` (a Gymnasium id, or ``atari:<game>``: funrl's ALE env
    with the standard preprocessing) in a ``mode`` vector env."""
    from funrl.envs import atari
    from funrl.envs.thread_vector import vector_env_class

    if env_id.startswith("atari:"):
        game = env_id[len("atari:") :]
        fns = [lambda: atari.gym_env(game)] * num_envs
    else:
        fns = [lambda: gym.make(env_id)] * num_envs
    return vector_env_class(mode)(fns)


def measure(env_id: str, num_envs: int, steps: int) -> list[tuple[str, float]]:
    rows = []
    sync = vector(env_id, num_envs, "sync")
    obs, _ = sync.reset(seed=0)
    policy = make_policy(sync)
    state = {"obs": obs, "act": policy(obs)}

    def sync_env() -> None:
        sync.step(state["act"])

    def policy_only() -> None:
        policy(state["obs"])

    def sync_both() -> None:
        state["obs"] = sync.step(policy(state["obs"]))[0]

    rows.append(("sync env", per_step_us(sync_env, steps)))
    rows.append(("policy", per_step_us(policy_only, steps)))
    rows.append(("sync env + policy", per_step_us(sync_both, steps)))
    sync.close()

    full = vector(env_id, num_envs, "async")
    obs, _ = full.reset(seed=0)
    act = policy(obs)
    rows.append(("async env", per_step_us(lambda: full.step(act), steps)))
    full.close()

    half = num_envs // 2
    a = vector(env_id, half, "async")
    b = vector(env_id, num_envs - half, "async")
    obs_a, _ = a.reset(seed=0)
    obs_b, _ = b.reset(seed=1)
    b.step_async(policy(obs_b))
    halves = {"obs_a": obs_a}

    def pipelined() -> None:
        a.step_async(policy(halves["obs_a"]))  # A steps ...
        obs_b = b.step_wait()[0]  # ... while B's result is read
        b.step_async(policy(obs_b))  # ... and the policy runs on it; then B steps
        halves["obs_a"] = a.step_wait()[0]  # ... while A's result is read

    rows.append(("async halves + policy", per_step_us(pipelined, steps)))
    b.step_wait()
    a.close()
    b.close()

    threaded = vector(env_id, num_envs, "thread")
    threaded.reset(seed=0)
    rows.append(("ThreadVectorEnv", per_step_us(lambda: threaded.step(act), steps)))
    threaded.close()

    a = vector(env_id, half, "sync")
    b = vector(env_id, num_envs - half, "sync")
    obs_a, _ = a.reset(seed=0)
    obs_b, _ = b.reset(seed=1)
    act_a, act_b = policy(obs_a), policy(obs_b)
    with ThreadPoolExecutor(max_workers=2) as pool:

        def threaded_env() -> None:
            done_a = pool.submit(a.step, act_a)
            done_b = pool.submit(b.step, act_b)
            done_a.result()
            done_b.result()

        rows.append(("thread env", per_step_us(threaded_env, steps)))
        threads = {"obs_a": obs_a, "b": pool.submit(b.step, policy(obs_b))}

        def thread_pipelined() -> None:
            stepping_a = pool.submit(a.step, policy(threads["obs_a"]))  # A steps ...
            obs_b = threads["b"].result()[0]  # ... while B's result is read
            threads["b"] = pool.submit(b.step, policy(obs_b))  # ... and B steps
            threads["obs_a"] = stepping_a.result()[0]

        rows.append(("thread halves + policy", per_step_us(thread_pipelined, steps)))
        threads["b"].result()
    a.close()
    b.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", nargs="+", default=["CartPole-v1", "HalfCheetah-v5"])
    p.add_argument("--envs", type=int, default=8, help="envs per collector step (even)")
    p.add_argument("--steps", type=int, default=2000, help="timed collector steps per row")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every row this many times, rounds interleaved; print the "
                        "median and the range")  # fmt: skip
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}; {args.envs} envs, {args.steps} steps per row, "
          f"{args.rounds} round(s)")  # fmt: skip
    print(f"{'env':<16} {'row':<24} {'us/step':>8} {'range':>11} {'env steps/s':>12} "
          f"{'vs sync+policy':>15}")  # fmt: skip
    for env_id in args.env:
        rounds = [dict(measure(env_id, args.envs, args.steps)) for _ in range(args.rounds)]
        base = float(np.median([r["sync env + policy"] for r in rounds]))
        for name in rounds[0]:
            times = [r[name] for r in rounds]
            us = float(np.median(times))
            spread = f"{min(times):.0f}-{max(times):.0f}" if len(times) > 1 else ""
            print(f"{env_id:<16} {name:<24} {us:>8.0f} {spread:>11} "
                  f"{args.envs / us * 1e6:>12,.0f} {base / us:>14.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
