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
  policy runs on the other's observations (the best a pipelined collector could do).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_env_overlap.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_env_overlap.py --env HalfCheetah-v5
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
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
        logits = net(torch.as_tensor(obs, dtype=torch.float32))
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


def measure(env_id: str, num_envs: int, steps: int) -> list[tuple[str, float]]:
    rows = []
    sync = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync")
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

    full = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="async")
    obs, _ = full.reset(seed=0)
    act = policy(obs)
    rows.append(("async env", per_step_us(lambda: full.step(act), steps)))
    full.close()

    half = num_envs // 2
    a = gym.make_vec(env_id, num_envs=half, vectorization_mode="async")
    b = gym.make_vec(env_id, num_envs=num_envs - half, vectorization_mode="async")
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
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", nargs="+", default=["CartPole-v1", "HalfCheetah-v5"])
    p.add_argument("--envs", type=int, default=8, help="envs per collector step (even)")
    p.add_argument("--steps", type=int, default=2000, help="timed collector steps per row")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}; {args.envs} envs, {args.steps} steps per row")  # fmt: skip
    print(f"{'env':<16} {'row':<24} {'us/step':>8} {'env steps/s':>12} {'vs sync+policy':>15}")
    for env_id in args.env:
        rows = measure(env_id, args.envs, args.steps)
        base = dict(rows)["sync env + policy"]
        for name, us in rows:
            print(f"{env_id:<16} {name:<24} {us:>8.0f} {args.envs / us * 1e6:>12,.0f} "
                  f"{base / us:>14.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
