"""Atari through ALE with the standard preprocessing (funrl.envs.atari), and PPO on it."""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np
import pytest
import torch

import funrl
from funrl.algos import ppo
from funrl.envs import atari

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ale_py") is None and not os.environ.get("CI"),
    reason="ale-py not installed (pip install 'funrl[atari]'; CI installs it)",
)


def _chain(env):
    names = []
    while hasattr(env, "env"):
        names.append(type(env).__name__)
        env = env.env
    return names


def test_preprocessing_chain_training_and_evaluation():
    train = atari.gym_env("Breakout")
    names = _chain(train)
    assert names[:4] == ["FrameStackObservation", "TransformReward", "FireReset", "EpisodicLife"]
    assert "AtariPreprocessing" in names
    evaluation = atari.gym_env("Breakout", evaluation=True)
    names = _chain(evaluation)
    assert "TransformReward" not in names and "EpisodicLife" not in names
    assert "FireReset" in names
    obs, _ = train.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.float32
    assert 0.0 <= obs.min() and obs.max() <= 1.0
    train.close()
    evaluation.close()


def test_episodic_life_ends_the_episode_not_the_game():
    env = atari.gym_env("Breakout", repeat_action_probability=0.0)
    env.reset(seed=1)
    ale = env.unwrapped.ale
    rng = np.random.default_rng(0)
    for _ in range(5000):
        _, reward, terminated, _, _ = env.step(int(rng.integers(4)))
        assert reward in (0.0, 1.0)  # clipped (Breakout scores 1, 4 or 7 per brick)
        if terminated:
            break
    assert terminated and 0 < ale.lives() < 5  # a life lost, the game goes on
    lives = ale.lives()
    env.reset()
    assert ale.lives() == lives  # the next episode continues the same game
    env.close()


def test_registry_gives_a_batched_host_env_with_image_spaces():
    env, params = funrl.make("atari:Pong", num_envs=2)
    assert params is None and env.is_host_bridge and env.num_envs == 2
    assert env.observation_space().shape == (4, 84, 84)
    assert env.action_space().n == 6
    obs, state = env.reset(funrl.random.key(0))
    obs, state, reward, *_ = env.step(funrl.random.key(1), state, torch.tensor([0, 1]))
    assert obs.shape == (2, 4, 84, 84) and reward.shape == (2,)
    env.close()
    with pytest.raises(ValueError, match="unknown Atari game 'Breakoutt'; did you mean Breakout"):
        funrl.make("atari:Breakoutt")


def test_thread_vectorization_steps_the_same_games():
    from funrl.envs.thread_vector import ThreadVectorEnv

    rollouts = []
    for vectorization in ("sync", "thread"):
        env, _ = funrl.make("atari:Breakout", num_envs=3, vectorization=vectorization)
        obs, state = env.reset(funrl.random.key(2))
        out = [obs]
        for t in range(40):  # sticky actions draw from each game's seeded generator
            action = torch.tensor([t % 4, (t // 2) % 4, 1])
            obs, state, reward, term, trunc, _ = env.step(funrl.random.key(0), state, action)
            out += [obs, reward, term, trunc]
        assert isinstance(env.gym_env, ThreadVectorEnv) == (vectorization == "thread")
        env.close()
        rollouts.append(out)
    for a, b in zip(*rollouts, strict=True):
        assert torch.equal(a, b)


def test_ppo_trains_on_breakout_with_cleanrl_settings():
    config = ppo.Config(env="atari:Breakout", **{**atari.PPO_CONFIG, "num_envs": 2, "num_steps": 8})
    algo = ppo.make(config)
    assert algo.env_stack.obs_shape == (4, 84, 84) and algo.env_stack.host
    assert algo.networks.trunk is not None  # CleanRL's one Nature CNN for both heads
    state0 = algo.init(funrl.random.key(0), ppo.HParams.create(**atari.PPO_HPARAMS))
    assert state0.params["trunk"]["0.weight"].shape == (32, 4, 8, 8)  # its first conv
    assert not any(k.startswith("encoder.") for k in state0.params["actor"])
    hp = ppo.HParams.create(**atari.PPO_HPARAMS)
    state = algo.init(funrl.random.key(0), hp)
    state, metrics = algo.update(state, hp)
    assert math.isfinite(float(metrics["loss"])) and float(metrics["entropy"]) > 1.3
    action = algo.act(algo.act_params(state), torch.zeros(3, 4, 84, 84))
    assert action.shape == (3,)
