"""MinAtar SpaceInvaders against the ``minatar`` package (1.0.15), transition by transition.

As for Breakout and Freeway: a batch of funrl envs (vmap) and one
``minatar.Environment("space_invaders")`` per member run in lockstep with the same
actions, and after every step the observations, rewards, terminations and every internal
field must be equal.  The game has no randomness of its own; sticky actions are
synchronised by setting minatar's sticky probability to 1 where funrl repeated the
previous action, else 0.  Runs start from random states (aliens anywhere, low rows
included, every timer and the wave speed at random) as well as from resets, so the rare
branches (an alien block stepping down off the bottom row, the last alien moving every
step, a cleared wave) are reached within a short run; the test counts them.
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
from funrl.envs.minatar import (
    SPACE_INVADERS_ACTION_SET,
    SpaceInvaders,
    SpaceInvadersParams,
    SpaceInvadersState,
)
from funrl.envs.spaces import Box, Discrete
from funrl.testing import assert_trees_close

if os.environ.get("CI"):
    minatar = importlib.import_module("minatar")  # CI installs funrl[minatar]: never skip
else:
    minatar = pytest.importorskip("minatar")

ENV = SpaceInvaders()
MAPS = ("aliens", "bullets", "enemy_bullets")
SCALARS = (
    "pos",
    "alien_dir",
    "move_interval",
    "move_timer",
    "shot_timer",
    "alien_shot_timer",
    "ramp_index",
)
# funrl field -> minatar Env attribute
MINATAR_NAMES = {
    "pos": "pos",
    "aliens": "alien_map",
    "bullets": "f_bullet_map",
    "enemy_bullets": "e_bullet_map",
    "alien_dir": "alien_dir",
    "move_interval": "enemy_move_interval",
    "move_timer": "alien_move_timer",
    "shot_timer": "shot_timer",
    "alien_shot_timer": "alien_shot_timer",
    "ramp_index": "ramp_index",
}


def params(sticky: float = 0.0, max_steps: int = 1000) -> SpaceInvadersParams:
    return SpaceInvadersParams(
        sticky_action_prob=torch.tensor(sticky, dtype=torch.float32),
        max_steps=torch.tensor(max_steps, dtype=torch.int64),
    )


def random_states(n: int, seed: int) -> SpaceInvadersState:
    """``n`` states that a game could be in or close to: a random subset of aliens in a
    block whose top row is 0-6 (so it may reach the bottom row soon), a few bullets of
    each kind, every timer and the wave speed anywhere in its range; some keep a single
    alien (it moves every step), some have no aliens near the cannon's column."""
    g = torch.Generator().manual_seed(seed)

    def ints(lo: int, hi: int) -> torch.Tensor:
        return torch.randint(lo, hi, (n,), generator=g)

    idx = torch.arange(10)
    top, left = ints(0, 7), ints(0, 5)
    block = (
        (idx[:, None] >= top[:, None, None])
        & (idx[:, None] < top[:, None, None] + 4)
        & (idx[None, :] >= left[:, None, None])
        & (idx[None, :] < left[:, None, None] + 6)
    )
    aliens = block & (torch.rand((n, 10, 10), generator=g) < 0.7)
    single = torch.arange(n) % 6 == 1
    first = torch.zeros((n, 100), dtype=torch.bool)
    first[torch.arange(n), (aliens.flatten(1).float() + 1e-3).argmax(1)] = True
    aliens = torch.where(single[:, None, None], first.view(n, 10, 10), aliens)
    aliens = aliens | (~aliens.flatten(1).any(1))[:, None, None] & first.view(n, 10, 10)
    # a gap of three columns around the cannon, aliens on both sides, about to fire and
    # not to move: the nearest column is a tie, and minatar picks the left one
    pos = ints(0, 10)
    gap = torch.arange(n) % 6 == 3
    near = ((idx[None, :] - pos[:, None]).abs() <= 1)[:, None, :] & gap[:, None, None]
    aliens = torch.where((aliens & ~near).flatten(1).any(1)[:, None, None], aliens & ~near, aliens)
    interval = ints(6, 13)
    # a bullet right under every other lone alien, which stays put one more step: a
    # cleared wave; the others live on, moving every step
    shot = single & (torch.arange(n) % 12 == 1)
    below = torch.roll(aliens, 1, dims=1) & (idx[:, None] > 0) & shot[:, None, None]
    move_timer = torch.minimum(ints(0, 13), interval)
    return SpaceInvadersState(
        pos=pos,
        aliens=aliens.to(torch.int32),
        bullets=((torch.rand((n, 10, 10), generator=g) < 0.05) | below).to(torch.int32),
        enemy_bullets=(torch.rand((n, 10, 10), generator=g) < 0.05).to(torch.int32),
        alien_dir=torch.where(ints(0, 2) == 1, 1, -1),
        move_interval=interval,
        move_timer=torch.where(shot | gap, move_timer.clamp(min=1), move_timer),
        shot_timer=ints(0, 6),
        alien_shot_timer=torch.where(gap, 0, ints(0, 11)),
        ramp_index=12 - interval,
        last_action=ints(0, 4),
        time=torch.zeros(n, dtype=torch.int64),
    )


def to_minatar(m: Any, s: SpaceInvadersState) -> None:
    e = m.env
    for name, attr in MINATAR_NAMES.items():
        v = getattr(s, name)
        setattr(e, attr, v.numpy().astype(np.float64) if name in MAPS else int(v))
    e.terminal = False
    m.last_action = SPACE_INVADERS_ACTION_SET[int(s.last_action)]


def check_fields(m: Any, s: SpaceInvadersState, msg: str) -> None:
    e = m.env
    for name in MAPS:
        got = getattr(s, name).numpy()
        np.testing.assert_array_equal(got, getattr(e, MINATAR_NAMES[name]) != 0, f"{msg} {name}")
    for name in SCALARS:
        assert int(getattr(s, name)) == getattr(e, MINATAR_NAMES[name]), f"{msg} {name}"
    assert SPACE_INVADERS_ACTION_SET[int(s.last_action)] == m.last_action, msg


def run_lockstep(n: int, steps: int, sticky: float, seed: int) -> dict[str, int]:
    """``n`` envs, half from resets and half from random states, for ``steps`` steps of a
    policy that fires half the time and otherwise moves at random."""
    p = params(sticky)
    _, fresh = vmap(ENV.reset_env, in_dims=(0, None))(R.split(R.key(seed), n), p)
    start = torch.arange(n) % 2 == 1
    state = tree.where(start, random_states(n, seed), fresh)
    ms = [minatar.Environment("space_invaders", sticky_action_prob=0.0) for _ in range(n)]
    for i, m in enumerate(ms):
        to_minatar(m, tree.index(state, i))
    step_env = vmap(ENV.step_env, in_dims=(0, 0, 0, None))
    reset_env = vmap(ENV.reset_env, in_dims=(0, None))
    k_run = R.fold_in(R.key(seed), 1)
    counts = dict.fromkeys(
        ["reward", "terminated", "sticky", "down", "cleared", "single", "fire"], 0
    )
    for t in range(steps):
        k_act, k_step = R.split(R.fold_in(k_run, t))
        fire = R.bernoulli(k_act, torch.tensor(0.5), (n,))
        action = torch.where(fire, 3, R.randint(R.fold_in(k_act, 1), 0, 3, (n,)))
        keys = R.split(k_step, n)
        obs, new, reward, term, trunc, _ = step_env(keys, state, action, p)
        m_obs, m_rew, m_term = [], [], []
        for i, m in enumerate(ms):
            stuck = int(new.last_action[i]) != int(action[i])
            counts["sticky"] += stuck
            m.sticky_action_prob = 1.0 if stuck else 0.0
            e = m.env
            dir_before, aliens_before = e.alien_dir, np.count_nonzero(e.alien_map)
            shot_before = e.shot_timer
            r, te = m.act(SPACE_INVADERS_ACTION_SET[int(action[i])])
            counts["down"] += int(e.alien_dir != dir_before)
            counts["cleared"] += int(aliens_before == r and r > 0)
            counts["single"] += int(aliens_before == 1 and e.alien_move_timer == 0)
            counts["fire"] += int(shot_before == 0 and e.shot_timer == 4)
            m_obs.append(m.state())
            m_rew.append(r)
            m_term.append(te)
            check_fields(m, tree.index(new, i), f"step {t} env {i}")
        msg = f"step {t}"
        np.testing.assert_array_equal(obs.numpy(), np.stack(m_obs).astype(np.float32), msg)
        np.testing.assert_array_equal(reward.numpy(), np.array(m_rew, np.float32), msg)
        np.testing.assert_array_equal(term.numpy(), np.array(m_term), msg)
        assert not trunc.any()
        counts["reward"] += int(reward.sum())
        counts["terminated"] += int(term.sum())
        _, fresh = reset_env(R.split(R.fold_in(k_step, 7), n), p)
        state = tree.where(term, fresh, new)
        for i in np.flatnonzero(term.numpy()):
            to_minatar(ms[i], tree.index(state, int(i)))
    return counts


def test_lockstep_with_minatar() -> None:
    counts = run_lockstep(n=32, steps=150, sticky=0.0, seed=1)
    assert counts["sticky"] == 0
    assert counts["reward"] >= 50 and counts["terminated"] >= 10 and counts["fire"] >= 200, counts
    assert counts["down"] >= 20 and counts["cleared"] >= 2 and counts["single"] >= 5, counts


def test_lockstep_with_minatar_sticky_actions() -> None:
    counts = run_lockstep(n=16, steps=100, sticky=0.5, seed=2)
    assert counts["sticky"] >= 200 and counts["reward"] >= 10, counts


def test_reset_spaces_and_registry() -> None:
    env, p = make("MinAtar-SpaceInvaders-v1")
    assert isinstance(env, SpaceInvaders)
    o_space, a_space = env.observation_space(p), env.action_space(p)
    assert isinstance(o_space, Box) and o_space.shape == (10, 10, 6)
    assert isinstance(a_space, Discrete) and a_space.n == 4
    m = minatar.Environment("space_invaders")
    assert list(SPACE_INVADERS_ACTION_SET) == m.minimal_action_set()
    assert list(m.state_shape()) == list(o_space.shape)
    obs, s = env.reset(R.key(0), p)
    check_fields(m, s, "reset")  # a fresh minatar env is in funrl's reset state
    np.testing.assert_array_equal(obs.numpy(), m.state().astype(np.float32))


def test_truncation_at_max_steps() -> None:
    p = params(max_steps=3)
    _, s = ENV.reset(R.key(0), p)
    for t in range(3):
        _, s, _, term, trunc, _ = ENV.step_env(R.key(t), s, torch.tensor(0), p)
        assert bool(trunc) == (t == 2) and not bool(term)


def test_maps_are_int32_and_bool_maps_step_the_same() -> None:
    """The state keeps its maps as int32 0/1 (inductor's fast path); a state that holds
    them as bool (saved before the change) steps to the same outputs."""
    _, state = ENV.reset(R.key(0), params())
    assert all(getattr(state, name).dtype == torch.int32 for name in MAPS)
    states = random_states(16, seed=7)
    action = R.randint(R.key(8), 0, 4, (16,))
    step = vmap(ENV.step, in_dims=(0, 0, 0, None))
    keys = R.split(R.key(9), 16)
    want = step(keys, states, action, params())
    old = states.replace(**{name: getattr(states, name) > 0 for name in MAPS})
    assert_trees_close(step(keys, old, action, params()), want, rtol=0, atol=0)


def test_eager_vmap_and_compile_of_a_vec_env_step_agree() -> None:
    n = 10
    venv = VecEnv(ENV, n)
    p = params(sticky=0.5)
    state = random_states(n, seed=5)
    enemy = state.enemy_bullets.clone()
    enemy[0, 8, int(state.pos[0])] = True  # falls on the cannon unless sticky moves it
    enemy[1, 8, int(state.pos[1])] = True
    state = state.replace(
        enemy_bullets=enemy,
        move_timer=torch.tensor([0, 0, 0, 1, 0, 2, 0, 0, 3, 0]),
        alien_shot_timer=torch.tensor([0, 1, 0, 0, 2, 0, 0, 5, 0, 0]),
    )
    action = torch.tensor([3, 3, 1, 2, 0, 3, 1, 2, 3, 0])
    key = R.key(3)
    keys = R.split(key, n)
    eager = tree.stack([ENV.step(keys[i], tree.index(state, i), action[i], p) for i in range(n)])
    vmapped = venv.step(key, state, action, p)
    assert_trees_close(vmapped, eager, rtol=0, atol=0, what="vmap")
    got = funrl_compile(venv.step, fullgraph=True)(key, state, action, p)
    assert_trees_close(got, eager, rtol=0, atol=0, what="compile")
    assert eager[2].sum() >= 1 and eager[3].any()  # an alien shot and a terminal step
