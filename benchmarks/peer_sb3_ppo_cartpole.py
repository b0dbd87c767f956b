"""stable-baselines3 PPO on CartPole-v1 with rl-zoo's tuned hyperparameters, one process.

    OMP_NUM_THREADS=1 PYTHONPATH=/path/to/sb3 python benchmarks/peer_sb3_ppo_cartpole.py

rl-zoo's ``ppo.yml`` CartPole-v1 entry (8 envs x 32 steps, batch 256, 20 epochs, gamma
0.98, GAE 0.8, lr and clip range decayed linearly from 1e-3 and 0.2, no entropy bonus),
100,000 env steps, then 10 deterministic evaluation episodes.  One torch thread.  Prints
one JSON line: the final evaluation and the seconds spent in ``learn``; the caller times
the whole process.  For bench_startup.py's time-to-result table.
"""

from __future__ import annotations

import json
import time

import torch

torch.set_num_threads(1)

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402


def linear(start: float):  # rl-zoo's lin_<value> schedules
    return lambda progress_remaining: progress_remaining * start


def main() -> None:
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
        n_epochs=20, ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2),
        seed=0, device="cpu", verbose=0,
    )  # fmt: skip
    t0 = time.perf_counter()
    model.learn(total_timesteps=100_000)
    learn_s = time.perf_counter() - t0
    final, _ = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=1), 10)
    print(json.dumps({"eval_return": float(final), "learn_s": learn_s}))


if __name__ == "__main__":
    main()
