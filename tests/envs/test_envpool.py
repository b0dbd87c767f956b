"""The EnvPool bridge (``envpool:<task>``): funrl's host-env contract on EnvPool's pools.

Checked against EnvPool itself: one bridged env and one raw pool with the same seed and
options get the same actions; the bridge's observations must be the pool's, except that
after an episode ends the bridge returns the next episode's first observation in the same
step (the pool only on its next step, which it spends resetting).  Then the Atari
protocol options (training vs evaluation), the spaces, the errors, and PPO and DQN
updates through ``envpool:Breakout-v5``.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest
import torch

import funrl
import funrl.random as R
from funrl.envs.spaces import Box, Discrete

if os.environ.get("CI"):
    envpool = importlib.import_module("envpool")  # CI installs funrl[envpool]: never skip
else:
    envpool = pytest.importorskip("envpool")

from funrl.envs.envpool_bridge import ATARI_OPTIONS, EnvPoolEnv


def test_steps_match_a_raw_pool_with_same_step_resets() -> None:
    """Breakout with episodic life (a life lost ends an episode: many ends in 400 steps)."""
    env = EnvPoolEnv("Breakout-v5")
    obs, state = env.reset(R.key(3))
    seed = int(R.bits(R.key(3))) & 0x7FFFFFFF
    options = {**ATARI_OPTIONS, "episodic_life": True, "reward_clip": True}
    raw = envpool.make("Breakout-v5", env_type="gymnasium", num_envs=1, seed=seed, **options)
    raw_obs, _ = raw.reset()
    np.testing.assert_allclose(obs.numpy(), raw_obs[0] / 255, rtol=1e-6)
    rng = np.random.default_rng(0)
    ends = 0
    for t in range(400):
        a = int(rng.integers(0, 4))
        obs, state, reward, term, trunc, info = env.step(R.key(t), state, torch.tensor(a), None)
        assert int(state) == t + 1 and obs.shape == (4, 84, 84)
        r_obs, r_rew, r_term, r_trunc, _ = raw.step(np.array([a]))
        np.testing.assert_allclose(info["final_observation"].numpy(), r_obs[0] / 255, rtol=1e-6)
        assert float(reward) == float(r_rew[0]) and bool(term) == bool(r_term[0])
        assert bool(trunc) == bool(r_trunc[0])
        if term or trunc:  # the pool resets on its next step, whatever the action
            ends += 1
            r_obs, r_rew, r_term, _, _ = raw.step(np.array([0]))
            assert float(r_rew[0]) == 0.0 and not r_term[0]
            assert not torch.equal(obs, info["final_observation"])
        np.testing.assert_allclose(obs.numpy(), r_obs[0] / 255, rtol=1e-6)
    assert ends >= 5, ends
    env.close()


def test_a_batch_resets_only_the_finished_envs() -> None:
    env, params = funrl.make("envpool:Breakout-v5", num_envs=4)
    assert params is None and env.batch_shape == (4,)
    obs, state = env.reset(R.key(0))
    rng = np.random.default_rng(1)
    finished = 0
    for t in range(200):
        before = obs
        a = torch.as_tensor(rng.integers(0, 4, 4))
        obs, state, reward, term, trunc, info = env.step(R.key(t), state, a)
        done = term | trunc
        same = (obs == info["final_observation"]).flatten(1).all(1)
        assert torch.equal(same, ~done), (t, done, same)  # only finished envs jump
        assert reward.shape == (4,) and reward.dtype == torch.float32
        assert before.shape == obs.shape == (4, 4, 84, 84)
        finished += int(done.sum())
    assert finished >= 4
    env.close()


def test_atari_protocol_spaces_and_evaluation_options() -> None:
    env = EnvPoolEnv("Breakout-v5", 2)
    assert env.atari and env.observation_space() == Box(0.0, 1.0, (4, 84, 84), torch.float32)
    assert env.action_space() == Discrete(4)
    cfg = env._pool.spec.config
    assert cfg.episodic_life and cfg.reward_clip and cfg.repeat_action_probability == 0.25
    assert (cfg.noop_max, cfg.frame_skip, cfg.stack_num) == (30, 4, 4) and cfg.use_fire_reset
    ev = EnvPoolEnv("Breakout-v5", 2, evaluation=True)
    assert not ev._pool.spec.config.episodic_life and not ev._pool.spec.config.reward_clip
    obs, _ = env.reset(R.key(0))
    assert obs.dtype == torch.float32 and 0.0 <= float(obs.min()) and float(obs.max()) <= 1.0
    env.close()
    ev.close()


# EnvPool's CartPole space is float64; Gymnasium warns when it is cast to float32
GYM_CAST = pytest.mark.filterwarnings("ignore:.*precision lowered by casting:UserWarning")


@GYM_CAST
def test_other_tasks_keep_envpool_defaults() -> None:
    env, _ = funrl.make("envpool:CartPole-v1", num_envs=3)
    assert not env.atari and env.action_space() == Discrete(2)
    assert env.observation_space().shape == (4,)
    obs, state = env.reset(R.key(0))
    obs, state, reward, *_ = env.step(R.key(1), state, torch.tensor([0, 1, 0]))
    assert obs.shape == (3, 4) and obs.dtype == torch.float32 and reward.tolist() == [1.0] * 3
    env.close()


@GYM_CAST
def test_errors_name_the_problem(monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"unknown EnvPool task 'Breakout-v4'.*Breakout-v5"):
        funrl.make("envpool:Breakout-v4")
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        EnvPoolEnv("CartPole-v1", 0)
    env = EnvPoolEnv("CartPole-v1", 2)
    with pytest.raises(ValueError, match="not the live step"):
        env.step(R.key(0), torch.tensor(0), torch.tensor([0, 1]))  # before any reset
    _, state = env.reset(R.key(0))
    with pytest.raises(ValueError, match=r"action has shape \(3,\), expected \(2,\)"):
        env.step(R.key(0), state, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step(R.key(0), state, torch.tensor([0, 2]))
    with pytest.raises(TypeError, match="must be integer"):
        env.step(R.key(0), state, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="has no params"):
        env.reset(R.key(0), params=1)
    env.close()
    monkeypatch.setitem(sys.modules, "envpool", None)  # as if the extra were missing
    with pytest.raises(ValueError, match=r"pip install 'funrl\[envpool\]'"):
        funrl.make("envpool:CartPole-v1")


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_algorithms_train_through_envpool(algo, updates_finitely) -> None:
    extra = {"num_minibatches": 2} if algo == "ppo" else {"buffer_size": 64}
    updates_finitely(algo, "envpool:Breakout-v5", num_envs=2, hidden=(), **extra)
