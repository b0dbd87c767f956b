"""MinAtar Freeway against the ``minatar`` package (1.0.15), transition by transition.

As for Breakout (tests/envs/test_minatar.py): a batch of funrl envs (vmap) and one
``minatar.Environment("freeway")`` per member run in lockstep with the same actions, and
after every step the observations, rewards, terminations and every internal field must
be equal.  Randomness is synchronised: minatar's numpy generator is replaced per step by
one that returns funrl's draws for that step (car speeds after a crossing), and its
sticky probability is set to 1 where funrl repeated the previous action, else 0.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np
import pytest
import torch
from torch.func import vmap

import funrl.random as R
from funrl import tree
from funrl.compiling import compile as funrl_compile
from funrl.envs import VecEnv, make
from funrl.envs.minatar import FREEWAY_ACTION_SET, Freeway, FreewayParams, FreewayState
from funrl.envs.minatar.freeway import car_speeds
from funrl.envs.spaces import Box, Discrete
from funrl.testing import assert_trees_close

if os.environ.get("CI"):
    minatar = importlib.import_module("minatar")  # CI installs funrl[minatar]: never skip
else:
    minatar = pytest.importorskip("minatar")

ENV = Freeway()


def params(sticky: float = 0.0) -> FreewayParams:
    return FreewayParams(sticky_action_prob=torch.tensor(sticky, dtype=torch.float32))


class Draws:
    """A stand-in for minatar's ``np.random.RandomState`` that returns given speeds."""

    def __init__(self, speeds: np.ndarray) -> None:
        self.speeds = speeds

    def randint(self, low: int, high: int, size: int) -> np.ndarray:
        return np.abs(self.speeds)

    def rand(self, size: int) -> np.ndarray:
        return np.where(self.speeds > 0, 0.75, 0.25)


def to_minatar(m: Any, s: FreewayState) -> None:
    e = m.env
    e.pos, e.move_timer = int(s.pos), int(s.move_timer)
    e.terminate_timer, e.terminal = int(s.terminate_timer), False
    e.cars = [
        [int(s.cars_x[i]), i + 1, int(s.cars_timer[i]), int(s.cars_speed[i])] for i in range(8)
    ]
    m.last_action = FREEWAY_ACTION_SET[int(s.last_action)]


def fields(m: Any) -> list[int]:
    e = m.env
    cars = [v for car in e.cars for v in (car[0], car[2], car[3])]
    return [e.pos, e.move_timer, e.terminate_timer, FREEWAY_ACTION_SET.index(m.last_action), *cars]


def funrl_fields(s: FreewayState) -> np.ndarray:
    cars = torch.stack([s.cars_x, s.cars_timer, s.cars_speed], -1).flatten(-2)
    head = torch.stack([s.pos, s.move_timer, s.terminate_timer, s.last_action], -1)
    return torch.cat([head, cars], -1).numpy()


def run_lockstep(n: int, steps: int, sticky: float, seed: int) -> dict[str, int]:
    """``n`` envs for ``steps`` steps from states spread over the episode (timers near the
    end included), a policy that goes up with probability 0.8 (many crossings and hits)."""
    p = params(sticky)
    k_start, k_run = R.split(R.key(seed))
    _, state = vmap(ENV.reset_env, in_dims=(0, None))(R.split(k_start, n), p)
    late = torch.arange(n) % 4 == 0  # a quarter of them start 30-60 steps from the end
    state = state.replace(
        terminate_timer=torch.where(late, 30 + torch.arange(n) % 31, state.terminate_timer)
    )
    ms = [minatar.Environment("freeway", sticky_action_prob=0.0) for _ in range(n)]
    for i, m in enumerate(ms):
        to_minatar(m, tree.index(state, i))
    step_env = vmap(ENV.step_env, in_dims=(0, 0, 0, None))
    reset_env = vmap(ENV.reset_env, in_dims=(0, None))
    counts = {"reward": 0, "terminated": 0, "hit": 0, "sticky": 0}
    for t in range(steps):
        k_act, k_step = R.split(R.fold_in(k_run, t))
        up = R.bernoulli(k_act, torch.tensor(0.8), (n,))
        action = torch.where(up, 1, R.randint(R.fold_in(k_act, 1), 0, 3, (n,)))
        keys = R.split(k_step, n)
        both = R.split(keys, 2)
        k_s, k_r = both[:, 0], both[:, 1]
        obs, new, reward, term, trunc, _ = step_env(k_s, state, action, p)
        speeds = vmap(lambda k: car_speeds(R.split(k)[1]))(k_s).numpy()
        m_obs, m_rew, m_term = [], [], []
        for i, m in enumerate(ms):
            stuck = int(new.last_action[i]) != int(action[i])
            counts["sticky"] += stuck
            m.sticky_action_prob = 1.0 if stuck else 0.0
            m.env.random = Draws(speeds[i])
            before = m.env.pos
            r, te = m.act(FREEWAY_ACTION_SET[int(action[i])])
            counts["hit"] += int(m.env.pos == 9 and before not in (9, 0) and r == 0)
            m_obs.append(m.state())
            m_rew.append(r)
            m_term.append(te)
        msg = f"step {t}"
        np.testing.assert_array_equal(obs.numpy(), np.stack(m_obs).astype(np.float32), msg)
        np.testing.assert_array_equal(reward.numpy(), np.array(m_rew, np.float32), msg)
        np.testing.assert_array_equal(term.numpy(), np.array(m_term), msg)
        np.testing.assert_array_equal(funrl_fields(new), np.array([fields(m) for m in ms]), msg)
        assert not trunc.any()
        counts["reward"] += int(reward.sum())
        counts["terminated"] += int(term.sum())
        _, fresh = reset_env(k_r, p)
        state = tree.where(term, fresh, new)
        for i in np.flatnonzero(term.numpy()):
            to_minatar(ms[i], tree.index(state, int(i)))
    return counts


def test_lockstep_with_minatar() -> None:
    counts = run_lockstep(n=32, steps=150, sticky=0.0, seed=1)
    assert counts["reward"] >= 30 and counts["terminated"] >= 8 and counts["hit"] >= 20, counts
    assert counts["sticky"] == 0


def test_lockstep_with_minatar_sticky_actions() -> None:
    counts = run_lockstep(n=16, steps=120, sticky=0.5, seed=2)
    assert counts["sticky"] >= 200 and counts["reward"] >= 5, counts


def test_reset_speeds_spaces_and_registry() -> None:
    env, p = make("MinAtar-Freeway-v1")
    assert isinstance(env, Freeway)
    o_space, a_space = env.observation_space(p), env.action_space(p)
    assert isinstance(o_space, Box) and o_space.shape == (10, 10, 7)
    assert isinstance(a_space, Discrete) and a_space.n == 3
    m = minatar.Environment("freeway")
    assert list(FREEWAY_ACTION_SET) == m.minimal_action_set()
    assert list(m.state_shape()) == list(o_space.shape)
    _, s = vmap(ENV.reset_env, in_dims=(0, None))(R.split(R.key(0), 4000), p)
    speed = s.cars_speed.flatten()
    values, freq = torch.unique(speed, return_counts=True)
    assert values.tolist() == [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]
    assert (freq.float() / speed.numel() - 0.1).abs().max() < 0.01  # uniform
    assert torch.equal(s.cars_timer, s.cars_speed.abs()) and (s.cars_x == 0).all()
    assert (s.pos == 9).all() and (s.move_timer == 3).all() and (s.terminate_timer == 2500).all()


def test_an_episode_lasts_2501_steps() -> None:
    """minatar's timer starts at 2,500 and the step that takes it below zero terminates:
    from a timer of 3, the fourth step (so 2,501 steps from a reset)."""
    p = params()
    _, s = ENV.reset(R.key(0), p)
    assert int(s.terminate_timer) == 2500
    s = s.replace(terminate_timer=torch.tensor(3))
    for t in range(4):
        _, s, _, term, trunc, _ = ENV.step_env(R.key(t), s, torch.tensor(0), p)
        assert bool(term) == (t == 3) and not bool(trunc)


def test_eager_vmap_and_compile_of_a_vec_env_step_agree() -> None:
    n = 8
    venv = VecEnv(ENV, n)
    p = params(sticky=0.5)
    _, state = venv.reset(R.key(1), p)
    state = state.replace(
        pos=torch.tensor([1, 1, 5, 9, 0 + 1, 3, 1, 2]),
        move_timer=torch.tensor([0, 0, 0, 0, 1, 0, 2, 0]),
        terminate_timer=torch.tensor([0, 5, 9, 0, 7, 3, 2, 1]),
    )
    action = torch.tensor([1, 1, 2, 0, 1, 2, 1, 0])
    key = R.key(3)
    keys = R.split(key, n)
    eager = tree.stack([ENV.step(keys[i], tree.index(state, i), action[i], p) for i in range(n)])
    vmapped = venv.step(key, state, action, p)
    assert_trees_close(vmapped, eager, rtol=0, atol=0, what="vmap")
    got = funrl_compile(venv.step, fullgraph=True)(key, state, action, p)
    assert_trees_close(got, eager, rtol=0, atol=0, what="compile")
    assert eager[2].sum() >= 1 and eager[3].any()  # a crossing and a terminal step
