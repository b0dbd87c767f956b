"""ThreadVectorEnv: the same trajectories and infos as Gymnasium's SyncVectorEnv, with the
shards stepped on separate threads."""

from __future__ import annotations

import importlib.util
import os
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from funrl import random as R
from funrl.envs.gym_bridge import GymnasiumEnv
from funrl.envs.registry import make
from funrl.envs.thread_vector import ThreadVectorEnv, default_threads

SAME, NEXT = gym.vector.AutoresetMode.SAME_STEP, gym.vector.AutoresetMode.NEXT_STEP
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None


def _assert_tree_equal(a, b, where="info"):
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for k in a:
            _assert_tree_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_tree_equal(x, y, f"{where}[{i}]")
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs {b}"
        if a.dtype == object:  # final_info entries of members that did not end: None
            assert [x is None for x in a.ravel()] == [y is None for y in b.ravel()], where
            for x, y in zip(a.ravel(), b.ravel(), strict=True):
                if x is not None:
                    _assert_tree_equal(x, y, where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)


def _lockstep(env_id, n, num_threads, mode, steps, seed=3, make_kwargs=None):
    fns = [lambda: gym.make(env_id, **(make_kwargs or {}))] * n
    ref = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    env = ThreadVectorEnv(fns, num_threads=num_threads, autoreset_mode=mode)
    assert env.num_envs == n and len(env.shards) == min(num_threads, n)
    assert env.observation_space == ref.observation_space
    assert env.action_space == ref.action_space
    assert env.metadata["autoreset_mode"] == mode
    _assert_tree_equal(env.reset(seed=seed), ref.reset(seed=seed), "reset")
    ref.action_space.seed(seed)
    ends = 0
    for t in range(steps):
        action = ref.action_space.sample()
        got, want = env.step(action), ref.step(action)
        _assert_tree_equal(got, want, f"step {t}")
        ends += int(np.logical_or(want[2], want[3]).sum())
    env.close()
    ref.close()
    return ends


@pytest.mark.parametrize("mode", [SAME, NEXT])
@pytest.mark.parametrize("num_threads", [2, 3])
def test_cartpole_matches_sync_vector_env(mode, num_threads):
    # 5 members in uneven shards; random actions end ~10 episodes per member in 200 steps
    assert _lockstep("CartPole-v1", 5, num_threads, mode, 200) > 20


def test_pendulum_continuous_actions_and_truncation():
    assert _lockstep("Pendulum-v1", 3, 2, SAME, 210) == 3  # every member truncated at 200


@pytest.mark.skipif(not HAS_MUJOCO and not os.environ.get("CI"), reason="mujoco not installed")
@pytest.mark.parametrize("env_id", ["InvertedPendulum-v5", "HalfCheetah-v5"])
def test_mujoco_matches_sync_vector_env(env_id):
    ends = _lockstep(env_id, 4, 2, SAME, 120)
    assert ends > 0 if env_id == "InvertedPendulum-v5" else ends == 0


def test_reset_mask_and_seed_lists_match_sync_vector_env():
    fns = [lambda: gym.make("CartPole-v1")] * 4
    ref = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    env = ThreadVectorEnv(fns, num_threads=2, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    seeds = [7, 3, 9, 11]
    _assert_tree_equal(env.reset(seed=seeds), ref.reset(seed=seeds))
    for _ in range(3):
        _assert_tree_equal(env.step(np.array([0, 1, 1, 0])), ref.step(np.array([0, 1, 1, 0])))
    mask = np.array([False, True, False, True])
    options = {"reset_mask": mask}
    _assert_tree_equal(env.reset(seed=5, options=options), ref.reset(seed=5, options=options))
    env.close()
    ref.close()


def test_shards_step_on_their_own_threads():
    seen: dict[int, set[int]] = {}

    class Recorder(gym.Wrapper):
        def __init__(self, env, index):
            super().__init__(env)
            self.index = index

        def step(self, action):
            seen.setdefault(self.index, set()).add(threading.get_ident())
            return self.env.step(action)

    fns = [lambda i=i: Recorder(gym.make("CartPole-v1"), i) for i in range(4)]
    env = ThreadVectorEnv(fns, num_threads=2, autoreset_mode=SAME)
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.zeros(4, dtype=np.int64))
    env.close()
    assert seen[0] == seen[1] == {threading.get_ident()}  # the first shard: this thread
    assert len(seen[2]) == 1 and seen[2] == seen[3] and seen[2] != seen[0]  # one worker


def test_a_failing_member_raises_after_every_shard_has_finished():
    finished = []

    class Slow(gym.Wrapper):
        def step(self, action):
            time.sleep(0.05)
            finished.append(action)
            return self.env.step(action)

    class Broken(gym.Wrapper):
        def step(self, action):
            raise RuntimeError("simulator failed")

    fns = [lambda: Broken(gym.make("CartPole-v1")), lambda: Slow(gym.make("CartPole-v1"))]
    env = ThreadVectorEnv(fns, num_threads=2, autoreset_mode=SAME)
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="simulator failed"):
        env.step(np.array([0, 1]))
    assert finished == [1]  # the worker's shard had finished its step when the error came
    env.close()


def test_errors_name_the_argument():
    fns = [lambda: gym.make("CartPole-v1")] * 2
    with pytest.raises(ValueError, match="env_fns must hold at least one"):
        ThreadVectorEnv([])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="num_threads must be a positive int"):
            ThreadVectorEnv(fns, num_threads=bad)
    env = ThreadVectorEnv(fns, num_threads=8)
    assert env.num_threads == 2  # at most one shard per member
    with pytest.raises(ValueError, match="seed must have 2 entries"):
        env.reset(seed=[1, 2, 3])
    with pytest.raises(TypeError, match="seed must be an int"):
        env.reset(seed=1.5)
    with pytest.raises(ValueError, match=r"reset_mask'\] must be a bool array of shape \(2,\)"):
        env.reset(options={"reset_mask": np.array([True])})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions must have leading dim 2"):
        env.step(np.zeros(3, dtype=np.int64))
    env.close()
    assert 1 <= default_threads(64) <= (os.cpu_count() or 1) and default_threads(1) == 1


def test_default_threads_counts_only_free_cores(monkeypatch):
    from funrl import runtime

    monkeypatch.setattr(runtime, "free_cores", lambda: 1)  # the other core is busy
    assert default_threads(8) == 1
    monkeypatch.setattr(runtime, "free_cores", lambda: 4)
    assert default_threads(8) == 4 and default_threads(3) == 3 and default_threads(0) == 1


def test_bridge_and_registry_take_thread_vectorization():
    with GymnasiumEnv("CartPole-v1", num_envs=3, vectorization="thread") as env:
        assert isinstance(env.gym_env, ThreadVectorEnv)
        assert env.autoreset_mode == SAME
        got = _bridge_rollout(env)
    with GymnasiumEnv("CartPole-v1", num_envs=3) as env:
        want = _bridge_rollout(env)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)
    env, _ = make("gym:CartPole-v1", num_envs=2, vectorization="thread")
    assert isinstance(env.gym_env, ThreadVectorEnv)
    env.close()
    with pytest.raises(ValueError, match="vectorization must be one of 'sync', 'async', 'thread'"):
        make("gym:CartPole-v1", num_envs=2, vectorization="threads")


def _bridge_rollout(env, steps=60):
    obs, state = env.reset(R.key(4))
    out = [obs]
    for t in range(steps):
        action = torch.tensor([t % 2, (t // 3) % 2, 1])
        obs, state, r, te, tr, info = env.step(R.key(0), state, action)
        out += [obs, r, te, tr, info["final_observation"]]
    return out
