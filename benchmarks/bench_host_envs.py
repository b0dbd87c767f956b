"""Training on a host env (a Gymnasium env through the bridge): env-steps/s of funrl's
compiled PPO and SAC against stable-baselines3 on the same env, one thread, one run.

Rows, per env:

* ``env only``: the Gymnasium vector env stepping random actions (numpy in, numpy out):
  what the simulator costs; it bounds every library.
* ``funrl PPO`` / ``SB3 PPO``: 8 envs x 256 steps per update, 10 epochs of 32
  minibatches (SB3's defaults, the same on both sides: ``PPO_SETTINGS``), 64x64 networks.  funrl compiles its units (the policy ``act``, advantage estimation and
  the learn step) and is timed over updates after the first (compilation reported apart).
* ``funrl SAC`` / ``SB3 SAC``: one env, one 256-sample gradient step per env step,
  256x256 networks (SB3's defaults), timed after ``learning_starts``.
* ``funrl PPO, torch env``: the same PPO on funrl's own CartPole (no bridge), for the
  host path's overhead (CartPole rows only).
* ``..., threads`` rows: the same env and PPO with the 8 envs in a
  :class:`funrl.envs.thread_vector.ThreadVectorEnv` (``host_vectorization="thread"``, one
  shard per core): the simulator's steps run on up to that many threads at once, while
  torch keeps its one thread.

SB3 is optional: install it next to funrl without its dependencies (it would pull another
torch), e.g. ``pip install --no-deps --target /tmp/sb3lib stable-baselines3`` and run with
``PYTHONPATH=/tmp/sb3lib``; without it its rows are skipped.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/sb3lib .venv/bin/python benchmarks/bench_host_envs.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_host_envs.py --envs CartPole-v1
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch

import funrl
from funrl.algos import ppo, sac, units

# SB3's PPO defaults for the minibatch phase, matched on both sides.
PPO_SETTINGS = dict(num_envs=8, num_steps=256, num_minibatches=32, update_epochs=10)


def load() -> str:
    try:
        return f"load {os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover
        return "load ?"


def env_only(env_id: str, num_envs: int, steps: int, threads: bool = False) -> float:
    import gymnasium as gym

    from funrl.envs.thread_vector import ThreadVectorEnv

    if threads:
        env: Any = ThreadVectorEnv([lambda: gym.make(env_id)] * num_envs)
    else:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync")
    env.reset(seed=0)
    env.action_space.seed(0)
    t0 = time.perf_counter()
    for _ in range(steps // num_envs):
        env.step(env.action_space.sample())
    env.close()
    return steps / (time.perf_counter() - t0)


def timed_updates(algo: Any, hp: Any, updates: int) -> tuple[float, float]:
    """(seconds of the first update, seconds per later update)."""
    state = algo.init(funrl.random.key(0), hp)
    t0 = time.perf_counter()
    state, _ = algo.update(state, hp)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(updates):
        state, _ = algo.update(state, hp)
    return first, (time.perf_counter() - t0) / updates


def funrl_ppo(env: str, updates: int, vectorization: str = "sync") -> tuple[float, float]:
    config = ppo.Config(env=env, hidden=(64, 64), host_vectorization=vectorization,
                        **PPO_SETTINGS)  # fmt: skip
    algo = ppo.make(config, units=units.compiled)
    first, per = timed_updates(algo, ppo.HParams.create(), updates)
    return config.batch_size / per, first


def funrl_sac(env: str, steps: int) -> tuple[float, float]:
    config = sac.Config(env=env, num_envs=1, learning_starts=256, batch_size=256)
    algo = sac.make(config, units=units.compiled)
    hp = sac.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    t0 = time.perf_counter()
    for _ in range(config.learning_starts + 1):  # random steps, then the first learning one
        state, _ = algo.update(state, hp)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, _ = algo.update(state, hp)
    return steps / (time.perf_counter() - t0), first


def sb3_ppo(env_id: str, steps: int) -> float | None:
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
    except ImportError:
        return None
    s = PPO_SETTINGS
    venv = make_vec_env(env_id, n_envs=s["num_envs"], seed=0)
    batch = s["num_envs"] * s["num_steps"] // s["num_minibatches"]
    model = PPO("MlpPolicy", venv, n_steps=s["num_steps"], batch_size=batch,
                n_epochs=s["update_epochs"], device="cpu", seed=0, verbose=0)  # fmt: skip
    model.learn(s["num_envs"] * s["num_steps"])  # warm-up: one rollout and update
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t0)


def sb3_sac(env_id: str, steps: int) -> float | None:
    try:
        from stable_baselines3 import SAC
    except ImportError:
        return None
    model = SAC("MlpPolicy", env_id, learning_starts=256, device="cpu", seed=0, verbose=0)
    model.learn(257)
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", default="CartPole-v1,HalfCheetah-v5")
    p.add_argument("--ppo-updates", type=int, default=4)
    p.add_argument("--sac-steps", type=int, default=1000)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {load()}")
    print(f"{'env':<16} {'row':<24} {'steps/s':>9} {'vs SB3':>7} {'first update s':>15}")
    for env_id in args.envs.split(","):
        discrete = env_id == "CartPole-v1"
        n = PPO_SETTINGS["num_envs"] * PPO_SETTINGS["num_steps"]
        rows: list[tuple[str, float | None, float | None]] = []
        rows.append((f"env only ({PPO_SETTINGS['num_envs']} envs)", env_only(env_id, 8, n), None))
        rows.append(("env only (8, threads)", env_only(env_id, 8, n, threads=True), None))
        sps, first = funrl_ppo(f"gym:{env_id}", args.ppo_updates)
        rows.append(("funrl PPO (compiled)", sps, first))
        sps, first = funrl_ppo(f"gym:{env_id}", args.ppo_updates, "thread")
        rows.append(("funrl PPO, threads", sps, first))
        if discrete:
            sps_t, first_t = funrl_ppo(env_id, args.ppo_updates)
            rows.append(("funrl PPO, torch env", sps_t, first_t))
        rows.append(("SB3 PPO", sb3_ppo(env_id, args.ppo_updates * n), None))
        if not discrete:
            rows.append(("env only (1 env)", env_only(env_id, 1, 2000), None))
            sps, first = funrl_sac(f"gym:{env_id}", args.sac_steps)
            rows.append(("funrl SAC (compiled)", sps, first))
            rows.append(("SB3 SAC", sb3_sac(env_id, args.sac_steps), None))
        peers = {r[0].split()[1]: r[1] for r in rows if r[0].startswith("SB3")}
        for name, sps_, first_ in rows:
            if sps_ is None:
                print(f"{env_id:<16} {name:<24} {'(not installed)':>9}")
                continue
            algo = name.split()[1] if name.startswith("funrl") else ""
            ref = peers.get(algo)
            ratio = f"{sps_ / ref:.2f}x" if ref else ""
            first_s = f"{first_:.1f}" if first_ is not None else ""
            print(f"{env_id:<16} {name:<24} {sps_:>9,.0f} {ratio:>7} {first_s:>15}")
    print(load())


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
