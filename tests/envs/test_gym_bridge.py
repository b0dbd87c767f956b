"""Gymnasium bridge: trajectories against Gymnasium itself (single, sync and async vector)."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
import torch

from funrl import random as R
from funrl.envs.gym_bridge import GymnasiumEnv, from_gymnasium_space
from funrl.envs.spaces import Box, Discrete
from funrl.envs.vector import VecEnv
from funrl.envs.wrappers import EpisodeStatistics, NormalizeObservation, checked


def _ref(env_id, seed, actions, **kwargs):
    """A plain Gymnasium env with a same-step reset: (obs0, [(obs, final, r, term, trunc)])."""
    e = gym.make(env_id, **kwargs)
    obs0, _ = e.reset(seed=seed)
    out = []
    for a in actions:
        o, r, te, tr, _ = e.step(a)
        final = o
        if te or tr:
            o, _ = e.reset()
        out.append((o, final, r, te, tr))
    e.close()
    return obs0, out


def _cartpole_actions(n_steps, n_envs=None, seed=0):
    rng = np.random.default_rng(seed)
    # mostly pushing right: episodes end (terminated) after ~10 steps
    a = (rng.random((n_steps,) if n_envs is None else (n_steps, n_envs)) < 0.85).astype(np.int64)
    return a


def test_single_cartpole_matches_gymnasium_with_auto_reset():
    key = R.key(3)
    seed = int(R.bits(key))
    acts = _cartpole_actions(40)
    obs0, ref = _ref("CartPole-v1", seed, acts)
    env = GymnasiumEnv("CartPole-v1")
    obs, state = env.reset(key)
    assert obs.dtype == torch.float32 and obs.shape == (4,)
    np.testing.assert_array_equal(obs.numpy(), obs0)
    n_term = 0
    for a, (ro, rf, rr, rte, rtr) in zip(acts, ref):
        obs, state, r, te, tr, info = env.step(R.key(0), state, torch.tensor(a))
        np.testing.assert_array_equal(obs.numpy(), ro)
        np.testing.assert_array_equal(info["final_observation"].numpy(), rf)
        assert (float(r), bool(te), bool(tr)) == (rr, rte, rtr)
        assert r.dtype == torch.float32 and te.dtype == torch.bool and te.shape == ()
        n_term += bool(te)
        if bool(te):
            assert not torch.equal(obs, info["final_observation"])
    assert n_term >= 2
    env.close()


def test_truncation_vs_termination_at_time_limit():
    env = GymnasiumEnv("Pendulum-v1")
    obs, s = env.reset(R.key(0))
    assert env.action_space() == Box(-2.0, 2.0, (1,))
    assert env.observation_space().shape == (3,)
    for t in range(200):
        obs, s, _r, te, tr, info = env.step(R.key(t), s, torch.tensor([0.5]))
        assert not bool(te)
        assert bool(tr) == (t == 199)
    assert not torch.equal(obs, info["final_observation"])
    # CartPole with a short limit: alternate actions never fall within 5 steps -> truncated
    env = GymnasiumEnv("CartPole-v1", max_episode_steps=5)
    _, s = env.reset(R.key(1))
    flags = []
    for t in range(10):
        _, s, _, te, tr, _ = env.step(R.key(t), s, torch.tensor(t % 2))
        flags.append((bool(te), bool(tr)))
    assert flags[4] == (False, True) and flags[9] == (False, True)
    assert all(f == (False, False) for i, f in enumerate(flags) if i not in (4, 9))


def _vector_check(env, key, n_steps=40):
    n = env.num_envs
    seed = int(R.bits(key))
    acts = _cartpole_actions(n_steps, n)
    refs = [_ref("CartPole-v1", seed + i, acts[:, i]) for i in range(n)]
    obs, state = env.reset(key)
    assert obs.shape == (n, 4) and env.batch_shape == (n,)
    for i in range(n):
        np.testing.assert_array_equal(obs[i].numpy(), refs[i][0])
    dones = 0
    for t in range(n_steps):
        obs, state, r, te, tr, info = env.step(R.key(0), state, torch.as_tensor(acts[t]))
        assert r.shape == (n,) and te.shape == (n,) and info["final_observation"].shape == (n, 4)
        for i in range(n):
            ro, rf, rr, rte, rtr = refs[i][1][t]
            np.testing.assert_array_equal(obs[i].numpy(), ro)
            np.testing.assert_array_equal(info["final_observation"][i].numpy(), rf)
            assert (float(r[i]), bool(te[i]), bool(tr[i])) == (rr, rte, rtr)
        dones += int((te | tr).sum())
    assert dones >= 4


def test_sync_vector_matches_single_envs():
    with GymnasiumEnv("CartPole-v1", num_envs=2) as env:
        assert env.autoreset_mode == gym.vector.AutoresetMode.SAME_STEP
        _vector_check(env, R.key(5))


def test_async_vector_matches_single_envs():
    with GymnasiumEnv("CartPole-v1", num_envs=2, vectorization="async") as env:
        assert isinstance(env.gym_env, gym.vector.AsyncVectorEnv)
        _vector_check(env, R.key(6), n_steps=30)


@pytest.mark.parametrize("cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_user_vector_env_next_step_mode_is_converted(cls):
    venv = cls([lambda: gym.make("CartPole-v1")] * 2)
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    with GymnasiumEnv(venv) as env:
        _vector_check(env, R.key(7))


def test_pendulum_vector_continuous_actions():
    with GymnasiumEnv("Pendulum-v1", num_envs=2) as env:
        obs, s = env.reset(R.key(0))
        for t in range(200):
            obs, s, _r, te, tr, _info = env.step(R.key(t), s, torch.full((2, 1), -1.0))
        assert tr.tolist() == [True, True] and te.tolist() == [False, False]
        assert obs.shape == (2, 3)


def test_seeding_determinism():
    def traj(key):
        env = GymnasiumEnv("CartPole-v1")
        obs, s = env.reset(key)
        out = [obs]
        for t in range(30):
            obs, s, *_ = env.step(R.key(t), s, torch.tensor(int(t % 3 != 0)))
            out.append(obs)
        return torch.stack(out)

    a, b, c = traj(R.key(11)), traj(R.key(11)), traj(R.key(12))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_space_conversion_and_errors():
    assert from_gymnasium_space(gym.spaces.Discrete(3, start=1)) == Discrete(3, start=1)
    box = from_gymnasium_space(gym.spaces.Box(-1.0, 2.0, (2, 3), dtype=np.float64))
    assert box.shape == (2, 3) and box.dtype == torch.float64
    with pytest.raises(TypeError, match="unsupported space"):
        from_gymnasium_space(gym.spaces.MultiBinary(3))
    env = GymnasiumEnv("CartPole-v1")
    assert env.action_space() == Discrete(2) and env.default_params() is None
    with pytest.raises(ValueError, match="not the live step -1"):  # never reset
        env.step(R.key(0), torch.tensor(0), torch.tensor(0))
    _, s0 = env.reset(R.key(0))
    _, s1, *_ = env.step(R.key(0), s0, torch.tensor(0))
    with pytest.raises(ValueError, match="stateful"):
        env.step(R.key(0), s0, torch.tensor(0))
    with pytest.raises(ValueError, match="not the live step 1"):
        env.step(R.key(0), torch.tensor(0.0), torch.tensor(0))  # not a step count
    with pytest.raises(ValueError, match=r"action has shape \(2,\), expected \(\)"):
        env.step(R.key(0), s1, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step(R.key(0), s1, torch.tensor(2))
    with pytest.raises(TypeError, match="must be integer"):
        env.step(R.key(0), s1, torch.tensor(1.0))
    with pytest.raises(ValueError, match="no params"):
        env.reset(R.key(0), {"a": 1})
    with pytest.raises(TypeError, match="cannot be vmapped"):
        VecEnv(env, 2)
    with pytest.raises(ValueError, match="vectorization"):
        GymnasiumEnv("CartPole-v1", num_envs=2, vectorization="threads")
    env.close()


def test_wrappers_around_bridge():
    with GymnasiumEnv("CartPole-v1", num_envs=2) as genv:
        env = checked(EpisodeStatistics(NormalizeObservation(genv)))
        obs, s = env.reset(R.key(0))
        total = torch.zeros(2)
        done_seen = False
        for t in range(30):
            obs, s, r, _te, _tr, info = env.step(R.key(t), s, torch.ones(2, dtype=torch.int64))
            total = total + r
            if bool(info["episode_done"].any()):
                d = info["episode_done"]
                assert torch.equal(info["episode_return"][d], total[d])
                total = torch.where(d, 0.0, total)
                done_seen = True
        assert done_seen and obs.shape == (2, 4)
        assert float(s.inner.moments.count) == pytest.approx(62, abs=1e-3)


def test_registry_gym_prefix():
    from funrl.envs.registry import make

    env, params = make("gym:CartPole-v1", num_envs=2)
    assert isinstance(env, GymnasiumEnv) and params is None and env.num_envs == 2
    env.close()


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="mujoco not installed")
def test_mujoco_half_cheetah(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT (deprecation warnings) to the cwd
    key = R.key(2)
    acts = np.tile(np.linspace(-1, 1, 6, dtype=np.float32), (20, 1))
    obs0, ref = _ref("HalfCheetah-v5", int(R.bits(key)), acts)
    with GymnasiumEnv("HalfCheetah-v5") as env:
        assert env.observation_space().shape == (17,) and env.action_space().shape == (6,)
        obs, s = env.reset(key)
        np.testing.assert_allclose(obs.numpy(), obs0.astype(np.float32))
        for a, (ro, _rf, rr, rte, rtr) in zip(acts, ref):
            obs, s, r, te, tr, _ = env.step(R.key(0), s, torch.as_tensor(a))
            np.testing.assert_allclose(obs.numpy(), ro.astype(np.float32))
            assert float(r) == pytest.approx(rr, rel=1e-6)
            assert (bool(te), bool(tr)) == (rte, rtr)
