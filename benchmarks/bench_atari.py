"""Atari Breakout training throughput: funrl's PPO and DQN through EnvPool and through
ALE's Gymnasium vector env, against stable-baselines3 on ALE, one thread, one run.

Not a test.  Rows (env steps per second; the same thread count everywhere):

* ``env only``: random actions, no learning: EnvPool's ``Breakout-v5`` (8 envs, C++,
  the same preprocessing as funrl's ``atari:`` envs) and ALE through a Gymnasium
  ``SyncVectorEnv`` of 8 with funrl's wrappers (``funrl.envs.atari.gym_env``).  What the
  simulator costs: it bounds every library on that env.  ``ALE ThreadVectorEnv``: the same
  8 envs in :class:`funrl.envs.thread_vector.ThreadVectorEnv` (one shard per core; ALE
  releases the GIL while it emulates).
* ``PPO``: CleanRL's ``ppo_atari.py`` settings (``funrl.envs.atari.PPO_CONFIG``: 8 envs x
  128 steps, 4 minibatches, 4 epochs, one Nature CNN shared by actor and critic).  funrl compiles its units (``act``,
  advantages, the learn step) and is timed over updates after the first; SB3's ``PPO``
  (``CnnPolicy``, ``make_atari_env`` + ``VecFrameStack(4)``, ``n_steps=128``,
  ``batch_size=256``, ``n_epochs=4``) after one warm-up rollout.
* ``DQN``: one env, a gradient step (batch 32, Nature CNN) every 4 env steps, timed once
  learning has started (``learning_starts`` 1000, buffer 10k to fit the machine); SB3's
  ``DQN`` with the same numbers.  Two phases: ``eps 1.0`` is the start of a 10M-step run
  (epsilon still ~1: SB3 draws a random action without running its network, funrl's
  pure epsilon-greedy step always runs it), ``eps 0.01`` the other ~90% of the run
  (epsilon at its final value from the start, both libraries run the network each step).

SB3 is optional (``pip install --no-deps --target /tmp/sb3lib stable-baselines3`` and
``PYTHONPATH=/tmp/sb3lib``); EnvPool needs the ``envpool`` extra; missing rows say so.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/sb3lib .venv/bin/python benchmarks/bench_atari.py
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import Any

import numpy as np
import torch

import funrl
from funrl.algos import dqn, ppo, units
from funrl.envs import atari

Row = tuple[str, float | None, str]
DQN_SETTINGS = dict(
    num_envs=1, buffer_size=10_000, batch_size=32, learning_starts=1_000, train_freq=4,
    target_update_interval=250, hidden=(), loss="mse", encoder="nature", obs_storage="uint8",
)  # fmt: skip


def envpool_only(steps: int) -> float | None:
    if importlib.util.find_spec("envpool") is None:
        return None
    from funrl.envs.envpool_bridge import EnvPoolEnv

    env = EnvPoolEnv("Breakout-v5", 8)._pool  # the raw pool, numpy in and out
    env.reset()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps // 8):
        env.step(rng.integers(0, 4, 8))
    return steps / (time.perf_counter() - t0)


def ale_only(steps: int, threads: bool = False) -> float:
    import gymnasium as gym

    from funrl.envs.thread_vector import ThreadVectorEnv

    cls = ThreadVectorEnv if threads else gym.vector.SyncVectorEnv
    env = cls([lambda: atari.gym_env("Breakout")] * 8)
    env.reset(seed=0)
    env.action_space.seed(0)
    t0 = time.perf_counter()
    for _ in range(steps // 8):
        env.step(env.action_space.sample())
    env.close()
    return steps / (time.perf_counter() - t0)


def funrl_ppo(
    env: str, updates: int, share: bool = True, vectorization: str = "sync"
) -> tuple[float, float]:
    settings = {**atari.PPO_CONFIG, "share_encoder": share, "host_vectorization": vectorization}
    config = ppo.Config(env=env, encoder="nature", **settings)
    algo = ppo.make(config, units=units.compiled)
    hp = ppo.HParams.create(**atari.PPO_HPARAMS)
    state = algo.init(funrl.random.key(0), hp)
    t0 = time.perf_counter()
    state, _ = algo.update(state, hp)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(updates):
        state, _ = algo.update(state, hp)
    return updates * config.batch_size / (time.perf_counter() - t0), first


def funrl_dqn(env: str, steps: int, eps: float | None = None) -> tuple[float, float]:
    """Steady env steps/s and the time to the first gradient step; ``eps``: epsilon
    fixed at that value from the start (default: the Atari schedule from 1.0)."""
    config = dqn.Config(env=env, total_timesteps=10_000_000, **DQN_SETTINGS)
    algo = dqn.make(config, units=units.compiled)
    fixed = {} if eps is None else {"eps_start": eps, "eps_end": eps}
    hp = dqn.HParams.create(**{**atari.DQN_HPARAMS, **fixed})
    state = algo.init(funrl.random.key(0), hp)
    per_update = config.steps_per_update
    t0 = time.perf_counter()
    for _ in range(config.learning_starts // per_update + 1):  # then the first gradient step
        state, _ = algo.update(state, hp)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps // per_update):
        state, _ = algo.update(state, hp)
    return steps // per_update * per_update / (time.perf_counter() - t0), first


def sb3_env(n: int) -> Any:
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    return VecFrameStack(make_atari_env("BreakoutNoFrameskip-v4", n_envs=n, seed=0), 4)


def sb3_ppo(updates: int) -> float | None:
    try:
        from stable_baselines3 import PPO
    except ImportError:
        return None
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    model = PPO("CnnPolicy", sb3_env(8), n_steps=128, batch_size=256, n_epochs=4,
                learning_rate=2.5e-4, clip_range=0.1, ent_coef=0.01, device="cpu", seed=0,
                verbose=0)  # fmt: skip
    model.learn(1024)  # warm-up: one rollout and update
    t0 = time.perf_counter()
    model.learn(updates * 1024, reset_num_timesteps=False)
    return updates * 1024 / (time.perf_counter() - t0)


def sb3_dqn(steps: int, eps: float | None = None) -> float | None:
    try:
        from stable_baselines3 import DQN
    except ImportError:
        return None
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    fixed = {} if eps is None else {"exploration_initial_eps": eps, "exploration_final_eps": eps}
    model = DQN("CnnPolicy", sb3_env(1), buffer_size=10_000, learning_starts=1_000,
                batch_size=32, train_freq=4, target_update_interval=1000, learning_rate=1e-4,
                optimize_memory_usage=False, device="cpu", seed=0, verbose=0,
                **fixed)  # fmt: skip
    model.learn(1_004)
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ppo-updates", type=int, default=2)
    p.add_argument("--dqn-steps", type=int, default=2000)
    p.add_argument("--env-steps", type=int, default=4000)
    p.add_argument("--rows", nargs="+", default=["env", "ppo", "dqn"], help="which rows")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), Breakout")
    pool = importlib.util.find_spec("envpool") is not None
    rows: list[Row] = []
    if "env" in args.rows:
        rows.append(("env only: EnvPool Breakout-v5 (8)", envpool_only(args.env_steps), ""))
        rows.append(("env only: ALE SyncVectorEnv (8)", ale_only(args.env_steps), ""))
        rows.append(("env only: ALE ThreadVectorEnv (8)", ale_only(args.env_steps, True), ""))
    for name, env in (("EnvPool", "envpool:Breakout-v5"), ("ALE", "atari:Breakout")):
        if "ppo" not in args.rows:
            break
        if name == "EnvPool" and not pool:
            rows.append((f"funrl PPO, {name}", None, "envpool not installed"))
            continue
        sps, first = funrl_ppo(env, args.ppo_updates)
        rows.append((f"funrl PPO, {name}", sps, f"first update {first:.1f} s"))
    if "ppo" in args.rows:
        sps, first = funrl_ppo("atari:Breakout", args.ppo_updates, vectorization="thread")
        rows.append(("funrl PPO, ALE, threads", sps, "host_vectorization='thread'"))
        sps, first = funrl_ppo("atari:Breakout", args.ppo_updates, share=False)
        rows.append(("funrl PPO, ALE, 2 encoders", sps, "actor and critic a CNN each"))
        rows.append(("SB3 PPO, ALE", sb3_ppo(args.ppo_updates), ""))
    for eps, phase in ((None, "eps 1.0"), (0.01, "eps 0.01")):
        if "dqn" not in args.rows:
            break
        for name, env in (("EnvPool", "envpool:Breakout-v5"), ("ALE", "atari:Breakout")):
            if name == "EnvPool" and not pool:
                rows.append((f"funrl DQN, {name}, {phase}", None, "envpool not installed"))
                continue
            sps, first = funrl_dqn(env, args.dqn_steps, eps)
            note = f"to the first gradient step {first:.1f} s"
            rows.append((f"funrl DQN, {name}, {phase}", sps, note))
        rows.append((f"SB3 DQN, ALE, {phase}", sb3_dqn(args.dqn_steps, eps), ""))

    def group(name: str) -> str | None:  # the SB3 row a row compares with
        if not name.startswith(("funrl", "SB3")):
            return None
        parts = name.split(", ")
        phase = [f", {q}" for q in parts[2:] if q.startswith("eps")]
        return parts[0].split()[1] + "".join(phase)

    ref = {group(n): r for n, r, _ in rows if n.startswith("SB3")}
    print(f"{'row':<38}{'env steps/s':>13}{'vs SB3':>9}  note")
    for name, rate, note in rows:
        base = ref.get(group(name))
        ratio = f"{rate / base:.2f}x" if rate and base else "-"
        shown = f"{rate:,.0f}" if rate else "-"
        print(f"{name:<38}{shown:>13}{ratio:>9}  {note or ('skipped' if rate is None else '')}")


if __name__ == "__main__":
    main()
