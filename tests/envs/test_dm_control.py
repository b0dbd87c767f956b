"""DeepMind Control Suite tasks through the bridge (funrl.envs.dm_control), and PPO on one."""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np
import pytest
import torch

import funrl
from funrl.algos import ppo, sac

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("dm_control") is None and not os.environ.get("CI"),
        reason="dm-control not installed (pip install 'funrl[dm-control]'; CI installs it)",
    ),
    pytest.mark.filterwarnings("ignore::UserWarning"),  # glfw: no display
]


def test_observations_rewards_and_time_limit_equal_dm_control():
    from dm_control import suite

    from funrl.envs.dm_control import DMCGymEnv

    ref = suite.load("cartpole", "swingup")
    env = DMCGymEnv("cartpole", "swingup")
    assert [k for k, _ in env.observation_keys] == ["position", "velocity"]
    obs, _ = env.reset(seed=3)
    ref.task._random = np.random.RandomState(3)
    ts = ref.reset()
    flat = lambda o: np.concatenate([o["position"], o["velocity"]]).astype(np.float32)  # noqa: E731
    np.testing.assert_array_equal(obs, flat(ts.observation))
    rng = np.random.default_rng(0)
    for t in range(1000):
        a = rng.uniform(-1, 1, 1)
        obs, reward, terminated, truncated, _ = env.step(a)
        ts = ref.step(a)
        np.testing.assert_array_equal(obs, flat(ts.observation))
        assert reward == pytest.approx(ts.reward, abs=0) and not terminated
        assert truncated == (t == 999)  # the suite's 1000-step limit is a truncation


def test_bridge_batches_and_seeds():
    env, params = funrl.make("dmc:cartpole-swingup", num_envs=3)
    assert params is None and env.is_host_bridge and env.observation_space().shape == (5,)
    a, _ = env.reset(funrl.random.key(0))
    b, _ = env.reset(funrl.random.key(0))
    c, _ = env.reset(funrl.random.key(1))
    assert torch.equal(a, b) and not torch.equal(a, c)  # the key seeds the episodes
    with pytest.raises(ValueError, match=r"unknown DM Control task 'cartpole-swingupp'"):
        funrl.make("dmc:cartpole-swingupp")


def test_thread_vectorization_steps_the_same_tasks():
    from funrl.envs.thread_vector import ThreadVectorEnv

    rollouts = []
    for vectorization in ("sync", "thread"):
        env, _ = funrl.make("dmc:cartpole-swingup", num_envs=3, vectorization=vectorization)
        assert isinstance(env.gym_env, ThreadVectorEnv) == (vectorization == "thread")
        obs, state = env.reset(funrl.random.key(5))
        out = [obs]
        for t in range(30):
            action = torch.full((3, 1), math.sin(t / 5))
            obs, state, reward, *_ = env.step(funrl.random.key(0), state, action)
            out += [obs, reward]
        env.close()
        rollouts.append(out)
    for a, b in zip(*rollouts, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("mod", [ppo, sac])
def test_algorithms_train_on_a_suite_task(mod):
    if mod is ppo:
        config = ppo.Config(env="dmc:cartpole-swingup", num_envs=2, num_steps=8, hidden=(16,))
    else:
        config = sac.Config(env="dmc:cartpole-swingup", num_envs=2, batch_size=8,
                            learning_starts=8, buffer_size=64, hidden=(16,))  # fmt: skip
    algo = mod.make(config)
    hp = mod.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    for _ in range(6):
        state, metrics = algo.update(state, hp)
    assert all(math.isfinite(float(v)) or k.startswith("episode") for k, v in metrics.items())
    action = algo.act(algo.act_params(state), torch.zeros(4, 5))
    assert action.shape == (4, 1)
