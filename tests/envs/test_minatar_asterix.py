"""MinAtar Asterix against the ``minatar`` package (1.0.15), transition by transition.

As for Breakout, Freeway and SpaceInvaders: a batch of funrl envs (vmap) and one
``minatar.Environment("asterix")`` per member run in lockstep with the same actions, and
after every step the observations, rewards, terminations and every internal field must
be equal.  Randomness is synchronised: minatar's numpy generator is replaced per step by
one that returns funrl's spawn draws for that step (side, kind, and the rank of the free
row taken), and its sticky probability is set to 1 where funrl repeated the previous
action, else 0.  Half the runs start from random states (entities anywhere, every timer,
speed and the ramp at random), so full rows, ramps and entities leaving the grid come
within a short run; the test counts them.
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
from funrl.envs.minatar import ASTERIX_ACTION_SET, Asterix, AsterixParams, AsterixState
from funrl.envs.minatar._planes import hit
from funrl.envs.minatar.asterix import spawn_draws
from funrl.envs.spaces import Box, Discrete
from funrl.testing import assert_trees_close

if os.environ.get("CI"):
    minatar = importlib.import_module("minatar")  # CI installs funrl[minatar]: never skip
else:
    minatar = pytest.importorskip("minatar")

ENV = Asterix()
SCALARS = (
    "player_x",
    "player_y",
    "spawn_speed",
    "spawn_timer",
    "move_speed",
    "move_timer",
    "ramp_timer",
    "ramp_index",
)


def params(sticky: float = 0.0, max_steps: int = 1000) -> AsterixParams:
    return AsterixParams(
        sticky_action_prob=torch.tensor(sticky, dtype=torch.float32),
        max_steps=torch.tensor(max_steps, dtype=torch.int64),
    )


class Draws:
    """A stand-in for minatar's ``np.random.RandomState`` that returns given spawn draws:
    ``rand()`` the side, then the kind; ``randint(n)`` the rank of the free row taken."""

    def __init__(self, right: bool, gold: bool, rank: int) -> None:
        self.uniforms = [0.25 if right else 0.75, 0.1 if gold else 0.9]
        self.rank = rank

    def rand(self) -> float:
        return self.uniforms.pop(0)

    def randint(self, n: int) -> int:
        assert 0 <= self.rank < n
        return self.rank


def random_states(n: int, seed: int) -> AsterixState:
    """``n`` states a game could be in: entities on about half the rows (all eight on
    some), anywhere, either way and of either kind; the player anywhere on rows 1-8;
    spawn and move speeds anywhere in their ranges (1 included: the ramp is over), their
    timers anywhere below them; the ramp timer often about to run out."""
    g = torch.Generator().manual_seed(seed)

    def ints(lo: int, hi: int, *shape: int) -> torch.Tensor:
        return torch.randint(lo, hi, (n, *shape), generator=g)

    full = (torch.arange(n) % 5 == 2)[:, None]
    alive = (ints(0, 2, 8) == 1) | full
    spawn_speed, move_speed = ints(1, 11), ints(1, 6)
    return AsterixState(
        player_x=ints(0, 10),
        player_y=ints(1, 9),
        alive=alive,
        right=(ints(0, 2, 8) == 1) & alive,
        gold=(ints(0, 3, 8) == 0) & alive,
        x=torch.where(alive, ints(0, 10, 8), 0),
        spawn_speed=spawn_speed,
        spawn_timer=torch.minimum(ints(0, 11), spawn_speed),
        move_speed=move_speed,
        move_timer=torch.minimum(ints(0, 6), move_speed),
        ramp_timer=torch.where(ints(0, 2) == 1, ints(-1, 3), ints(-1, 101)),
        ramp_index=ints(0, 12),
        last_action=ints(0, 5),
        time=torch.zeros(n, dtype=torch.int64),
    )


def to_minatar(m: Any, s: AsterixState) -> None:
    e = m.env
    for name in SCALARS:
        setattr(e, name, int(getattr(s, name)))
    e.entities = [
        [int(s.x[i]), i + 1, bool(s.right[i]), bool(s.gold[i])] if bool(s.alive[i]) else None
        for i in range(8)
    ]
    e.terminal = False
    m.last_action = ASTERIX_ACTION_SET[int(s.last_action)]


def check_fields(m: Any, s: AsterixState, msg: str) -> None:
    e = m.env
    for name in SCALARS:
        assert int(getattr(s, name)) == getattr(e, name), f"{msg} {name}"
    want = [(False, 0, False, False) if x is None else (True, x[0], x[2], x[3]) for x in e.entities]
    for i, x in enumerate(e.entities):
        assert x is None or x[1] == i + 1, f"{msg}: entity {i} on row {x[1]}"
    got = [(bool(s.alive[i]), int(s.x[i]), bool(s.right[i]), bool(s.gold[i])) for i in range(8)]
    assert got == want, f"{msg} entities"
    assert ASTERIX_ACTION_SET[int(s.last_action)] == m.last_action, msg


def run_lockstep(n: int, steps: int, sticky: float, seed: int) -> dict[str, int]:
    """``n`` envs, half from resets and half from random states, ``steps`` steps of
    uniform random actions."""
    p = params(sticky)
    _, fresh = vmap(ENV.reset_env, in_dims=(0, None))(R.split(R.key(seed), n), p)
    state = tree.where(torch.arange(n) % 2 == 1, random_states(n, seed), fresh)
    ms = [minatar.Environment("asterix", sticky_action_prob=0.0) for _ in range(n)]
    for i, m in enumerate(ms):
        to_minatar(m, tree.index(state, i))
    step_env = vmap(ENV.step_env, in_dims=(0, 0, 0, None))
    reset_env = vmap(ENV.reset_env, in_dims=(0, None))
    k_run = R.fold_in(R.key(seed), 1)
    names = ["reward", "terminated", "sticky", "spawn", "full", "ramp", "left_grid"]
    counts = dict.fromkeys(names, 0)
    for t in range(steps):
        k_act, k_step = R.split(R.fold_in(k_run, t))
        action = R.randint(k_act, 0, 5, (n,))
        keys = R.split(k_step, n)
        obs, new, reward, term, trunc, _ = step_env(keys, state, action, p)
        k_spawn = vmap(lambda k: R.split(k)[1])(keys)
        side, kind, slot = vmap(spawn_draws)(k_spawn, ~state.alive)
        m_obs, m_rew, m_term = [], [], []
        for i, m in enumerate(ms):
            stuck = int(new.last_action[i]) != int(action[i])
            counts["sticky"] += stuck
            m.sticky_action_prob = 1.0 if stuck else 0.0
            free = (~state.alive[i]).tolist()
            taken = slot[i].tolist()
            rank = sum(free[: taken.index(True)]) if any(taken) else -1
            e = m.env
            e.random = Draws(bool(side[i]), bool(kind[i]), rank)
            spawning, ramp_before = e.spawn_timer == 0, e.ramp_index
            counts["spawn"] += spawning
            counts["full"] += spawning and not any(free)
            alive_before = sum(x is not None for x in e.entities)
            r, te = m.act(ASTERIX_ACTION_SET[int(action[i])])
            counts["ramp"] += e.ramp_index != ramp_before
            alive_after = sum(x is not None for x in e.entities)
            counts["left_grid"] += alive_after + r < alive_before + (spawning and any(free))
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
    assert counts["reward"] >= 20 and counts["terminated"] >= 10, counts
    assert counts["spawn"] >= 200 and counts["full"] >= 3 and counts["ramp"] >= 5, counts
    assert counts["left_grid"] >= 20, counts


def test_lockstep_with_minatar_sticky_actions() -> None:
    counts = run_lockstep(n=16, steps=100, sticky=0.5, seed=2)
    assert counts["sticky"] >= 200 and counts["reward"] >= 5, counts


def test_spawn_draws_are_uniform() -> None:
    """Side 1/2, gold 1/3, and the row uniform over the free ones (here rows 2, 5, 6)."""
    free = torch.tensor([False, True, False, False, True, True, False, False])
    side, kind, slot = vmap(spawn_draws, in_dims=(0, None))(R.split(R.key(0), 30000), free)
    assert abs(side.float().mean() - 0.5) < 0.01 and abs(kind.float().mean() - 1 / 3) < 0.01
    assert (slot.sum(1) == 1).all() and not (slot & ~free).any()
    freq = slot.float().mean(0)[free]
    assert (freq - 1 / 3).abs().max() < 0.01, freq
    _, _, none = spawn_draws(R.key(1), torch.zeros(8, dtype=torch.bool))
    assert not none.any()


def test_reset_spaces_and_registry() -> None:
    env, p = make("MinAtar-Asterix-v1")
    assert isinstance(env, Asterix)
    o_space, a_space = env.observation_space(p), env.action_space(p)
    assert isinstance(o_space, Box) and o_space.shape == (10, 10, 4)
    assert isinstance(a_space, Discrete) and a_space.n == 5
    m = minatar.Environment("asterix")
    assert list(ASTERIX_ACTION_SET) == m.minimal_action_set()
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


def test_eager_vmap_and_compile_of_a_vec_env_step_agree() -> None:
    n = 10
    venv = VecEnv(ENV, n)
    p = params(sticky=0.5)
    state = random_states(n, seed=5)
    # env 0: gold right of the player, env 1: an enemy on it; both move into the player
    on = torch.tensor([True] + [False] * 7)
    for i, gold in ((0, True), (1, False)):
        state = tree.where(
            torch.arange(n) == i,
            state.replace(
                player_x=torch.full((n,), 4),
                player_y=torch.full((n,), 1),
                alive=on.expand(n, 8),
                right=torch.zeros(n, 8, dtype=torch.bool),
                gold=(on & gold).expand(n, 8),
                x=torch.where(on, 5, 0).expand(n, 8),
                move_timer=torch.zeros(n, dtype=torch.int64),
                spawn_timer=torch.ones(n, dtype=torch.int64),
                last_action=torch.zeros(n, dtype=torch.int64),
            ),
            state,
        )
    action = torch.tensor([0, 0, 1, 2, 3, 4, 0, 1, 2, 3])
    key = R.key(3)
    keys = R.split(key, n)
    eager = tree.stack([ENV.step(keys[i], tree.index(state, i), action[i], p) for i in range(n)])
    vmapped = venv.step(key, state, action, p)
    assert_trees_close(vmapped, eager, rtol=0, atol=0, what="vmap")
    got = funrl_compile(venv.step, fullgraph=True)(key, state, action, p)
    assert_trees_close(got, eager, rtol=0, atol=0, what="compile")
    assert float(eager[2][0]) == 1.0 and bool(eager[3][1])  # gold picked up, enemy met


def test_planes_hit_is_int32_equality() -> None:
    """``hit(u, v)`` (how Asterix's observation builds its planes without a bool tensor)
    is ``(u == v)`` as int32 0/1, broadcast, negative values included."""
    g = torch.Generator().manual_seed(0)
    u = torch.randint(-3, 12, (50, 1), generator=g)
    v = torch.randint(-3, 12, (1, 10), generator=g)
    got = hit(u, v)
    assert got.dtype == torch.int32 and got.shape == (50, 10)
    torch.testing.assert_close(got, (u == v).to(torch.int32), rtol=0, atol=0)
    assert 0 < int(got.sum()) < got.numel()
