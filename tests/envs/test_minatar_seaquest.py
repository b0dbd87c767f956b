"""MinAtar Seaquest against the ``minatar`` package (1.0.15), transition by transition.

As for the other MinAtar games: a batch of funrl envs (vmap) and one
``minatar.Environment("seaquest")`` per member run in lockstep with the same actions, and
after every step the observations, rewards, terminations and every internal field (each
entity list in its order) must be equal.  Randomness is synchronised: minatar's numpy
generator is replaced per step by one that returns funrl's spawn draws for that step,
and its sticky probability is set to 1 where funrl repeated the previous action, else 0.
Most runs start from random states (enemies, bullets, torpedoes and divers anywhere,
divers next to the submarine, six divers on board, little oxygen, any ramp), so hits,
pick-ups, surfacings and the spawn rules all come within a short run; the test counts
them.
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
from funrl.envs.minatar import SEAQUEST_ACTION_SET, Seaquest, SeaquestParams, SeaquestState
from funrl.envs.minatar.seaquest import (
    DIVER_SLOTS,
    ENEMY_SLOTS,
    TORPEDO_SLOTS,
    SeaquestEntities,
    diver_draws,
    enemy_draws,
)
from funrl.envs.spaces import Box, Discrete
from funrl.testing import assert_trees_close

if os.environ.get("CI"):
    minatar = importlib.import_module("minatar")  # CI installs funrl[minatar]: never skip
else:
    minatar = pytest.importorskip("minatar")

ENV = Seaquest()
SCALARS = (
    "sub_x",
    "sub_y",
    "oxygen",
    "diver_count",
    "e_spawn_speed",
    "e_spawn_timer",
    "d_spawn_timer",
    "move_speed",
    "ramp_index",
    "shot_timer",
)
FLAGS = ("sub_or", "surface")
LISTS = ("f_bullets", "e_bullets", "e_fish", "e_subs", "divers")


def params(sticky: float = 0.0, max_steps: int = 1000) -> SeaquestParams:
    return SeaquestParams(
        sticky_action_prob=torch.tensor(sticky, dtype=torch.float32),
        max_steps=torch.tensor(max_steps, dtype=torch.int64),
    )


class Draws:
    """A stand-in for minatar's ``np.random.RandomState`` that returns given spawn draws:
    ``rand()`` the sides and the kind, ``randint`` the rows, each in call order."""

    def __init__(self, uniforms: list[float], rows: list[int]) -> None:
        self.uniforms, self.rows = uniforms, rows

    def rand(self) -> float:
        return self.uniforms.pop(0)

    def randint(self, low: int, high: int) -> int:
        row = self.rows.pop(0)
        assert low <= row < high
        return row


def entities(rows: list[list[Any]], born: list[int], slots: list[int], n: int) -> SeaquestEntities:
    """minatar list entries ``[x, y, lr(, timer(, shot(, sub)))]`` stamped ``born`` in
    ``slots`` of ``n``."""
    cols = np.zeros((8, n), dtype=np.int64)
    for e, stamp, k in zip(rows, born, slots, strict=True):
        cols[0, k], cols[7, k] = 1, stamp
        cols[1 : 1 + len(e), k] = [int(v) for v in e]
    t = torch.from_numpy(cols)
    return SeaquestEntities(
        alive=t[0],
        x=t[1],
        y=t[2],
        right=t[3],
        timer=t[4],
        shot=t[5],
        sub=t[6],
        born=t[7],
    )


def packed(lists: dict[str, list[list[Any]]], rng: np.random.Generator | None = None) -> dict:
    """minatar's lists as :class:`SeaquestState` fields: entities in random slots (in
    order without ``rng``), fish and enemy submarines stamped alternately (each list's
    order kept), enemy bullets in slots no enemy holds."""

    def slots(count: int, n: int, taken: frozenset[int] = frozenset()) -> list[int]:
        free = [k for k in range(n) if k not in taken]
        return [int(k) for k in rng.permutation(free)[:count]] if rng else free[:count]

    fish, subs = lists.get("e_fish", []), lists.get("e_subs", [])
    enemy_slots = slots(len(fish) + len(subs), ENEMY_SLOTS)
    rows = [[*f, 0, False] for f in fish] + [[*e, True] for e in subs]
    born = [2 * i for i in range(len(fish))] + [2 * i + 1 for i in range(len(subs))]
    torps, divers = lists.get("f_bullets", []), lists.get("divers", [])
    bullets = lists.get("e_bullets", [])
    base = 2 * max(len(fish), len(subs))
    return dict(
        enemies=entities(rows, born, enemy_slots, ENEMY_SLOTS),
        e_bullets=entities(
            bullets,
            [0] * len(bullets),
            slots(len(bullets), ENEMY_SLOTS, frozenset(enemy_slots)),
            ENEMY_SLOTS,
        ),
        f_bullets=entities(
            torps,
            [base + i for i in range(len(torps))],
            slots(len(torps), TORPEDO_SLOTS),
            TORPEDO_SLOTS,
        ),
        divers=entities(
            divers,
            [base + 10 + i for i in range(len(divers))],
            slots(len(divers), DIVER_SLOTS),
            DIVER_SLOTS,
        ),
        births=torch.tensor(base + 20),
    )


def listed(s: SeaquestState) -> dict[str, list[list[Any]]]:
    """``s``'s entities as minatar's lists (in stamp order; enemy bullets sorted)."""

    def rows(e: SeaquestEntities, keep: torch.Tensor, width: int) -> list[list[Any]]:
        ks = sorted(np.flatnonzero((e.alive & keep).numpy()).tolist(), key=lambda k: int(e.born[k]))
        out = []
        for k in ks:
            row = [int(e.x[k]), int(e.y[k]), bool(e.right[k]), int(e.timer[k]), int(e.shot[k])]
            out.append(row[:width])
        return out

    yes = torch.ones((), dtype=torch.bool)
    return {
        "f_bullets": rows(s.f_bullets, yes, 3),
        "e_bullets": sorted(rows(s.e_bullets, yes, 3)),
        "e_fish": rows(s.enemies, 1 - s.enemies.sub, 4),
        "e_subs": rows(s.enemies, s.enemies.sub, 5),
        "divers": rows(s.divers, yes, 4),
    }


def pick(rng: np.random.Generator, *options: int) -> int:
    return options[int(rng.integers(len(options)))]


def random_state(rng: np.random.Generator) -> SeaquestState:
    """A state a game could be in: the submarine anywhere (facing the way its last turn
    left it), often surfaced, sometimes with six divers or almost no oxygen; each row's
    enemies heading one way (minatar's spawn rule); no two entities of a list equal in
    every field (see the module's deviations); divers often beside the submarine."""
    sub_or = bool(rng.random() < 0.5)
    sub_x = int(rng.integers(1, 10) if sub_or else rng.integers(0, 9))
    sub_y = pick(rng, 0, 0, int(rng.integers(1, 9)))
    move_speed = int(rng.integers(2, 6))
    spawn_speed = int(rng.integers(1, 21))
    heading = rng.random(9) < 0.5
    fish: list[list[Any]] = []
    subs: list[list[Any]] = []
    for _ in range(int(rng.integers(0, 16))):
        y = int(rng.integers(1, 9))
        x, timer = int(rng.integers(0, 10)), int(rng.integers(0, move_speed + 1))
        if rng.random() < 0.4:
            entry = [x, y, bool(heading[y]), timer, int(rng.integers(0, 11))]
            if entry not in subs:
                subs.append(entry)
        elif [x, y, bool(heading[y]), timer] not in fish:
            fish.append([x, y, bool(heading[y]), timer])
    divers: list[list[Any]] = []
    for _ in range(int(rng.integers(0, 3))):  # a game holds 2 at most
        near = rng.random() < 0.5 and sub_y > 0
        y = sub_y if near else int(rng.integers(1, 9))
        x = int(np.clip(sub_x + rng.integers(-1, 2), 0, 9)) if near else int(rng.integers(0, 10))
        entry = [x, y, bool(rng.random() < 0.5), int(rng.integers(0, 6))]
        if entry not in divers:
            divers.append(entry)
    torps = [
        [int(rng.integers(0, 10)), int(rng.integers(0, 9)), bool(rng.random() < 0.5)]
        for _ in range(int(rng.integers(0, 3)))
    ]
    bullets = [
        [int(rng.integers(0, 10)), int(rng.integers(1, 9)), bool(rng.random() < 0.5)]
        for _ in range(int(rng.integers(0, 8)))
    ]

    def i64(v: int) -> torch.Tensor:
        return torch.tensor(v, dtype=torch.int64)

    return SeaquestState(
        sub_x=i64(sub_x),
        sub_y=i64(sub_y),
        sub_or=torch.tensor(sub_or),
        oxygen=i64(pick(rng, int(rng.integers(0, 201)), int(rng.integers(0, 4)), 200)),
        diver_count=i64(pick(rng, int(rng.integers(-1, 7)), 6, 5)),
        e_spawn_speed=i64(spawn_speed),
        e_spawn_timer=i64(int(rng.integers(0, spawn_speed + 1))),
        d_spawn_timer=i64(pick(rng, int(rng.integers(0, 31)), int(rng.integers(0, 3)))),
        move_speed=i64(move_speed),
        ramp_index=i64(int(rng.integers(0, 20))),
        shot_timer=i64(int(rng.integers(0, 6))),
        surface=torch.tensor(sub_y == 0 and bool(rng.random() < 0.5)),
        **packed(
            dict(f_bullets=torps, e_bullets=bullets, e_fish=fish, e_subs=subs, divers=divers),
            rng,
        ),
        last_action=i64(int(rng.integers(0, 6))),
        time=i64(0),
    )


def to_minatar(m: Any, s: SeaquestState) -> None:
    e = m.env
    for name in SCALARS:
        setattr(e, name, int(getattr(s, name)))
    for name in FLAGS:
        setattr(e, name, bool(getattr(s, name)))
    for name, rows in listed(s).items():
        setattr(e, name, rows)
    e.terminal = False
    m.last_action = SEAQUEST_ACTION_SET[int(s.last_action)]


def check_fields(m: Any, s: SeaquestState, msg: str) -> None:
    e = m.env
    for name in SCALARS:
        assert int(getattr(s, name)) == getattr(e, name), f"{msg} {name}"
    for name in FLAGS:
        assert bool(getattr(s, name)) == getattr(e, name), f"{msg} {name}"
    got = listed(s)
    for name in LISTS:
        want = [list(x) for x in getattr(e, name)]
        want = sorted(want) if name == "e_bullets" else want  # their order decides nothing
        assert got[name] == want, f"{msg} {name}"
    assert SEAQUEST_ACTION_SET[int(s.last_action)] == m.last_action, msg


def run_lockstep(n: int, steps: int, sticky: float, seed: int) -> dict[str, int]:
    """``n`` envs, a quarter from resets and the rest from random states (a terminated
    env restarts the same way), ``steps`` steps of uniform random actions."""
    p = params(sticky)
    rng = np.random.default_rng(seed)
    fresh_members = torch.arange(n) % 4 == 0
    reset_env = vmap(ENV.reset_env, in_dims=(0, None))

    def restart(key: torch.Tensor, state: SeaquestState | None, where: torch.Tensor):
        _, fresh = reset_env(R.split(key, n), p)
        randoms = tree.stack([random_state(rng) for _ in range(n)])
        start = tree.where(fresh_members, fresh, randoms)
        return start if state is None else tree.where(where, start, state)

    state = restart(R.key(seed), None, torch.ones(n, dtype=torch.bool))
    ms = [minatar.Environment("seaquest", sticky_action_prob=0.0) for _ in range(n)]
    for i, m in enumerate(ms):
        to_minatar(m, tree.index(state, i))
    step_env = vmap(ENV.step_env, in_dims=(0, 0, 0, None))
    k_run = R.fold_in(R.key(seed), 1)
    names = ["reward", "bonus", "terminated", "sticky", "enemy_spawn", "clash", "diver_spawn"]
    names += ["hits", "pickups", "surfacings", "ramps", "enemy_shots", "oxygen_out"]
    counts = dict.fromkeys(names, 0)
    for t in range(steps):
        k_act, k_step = R.split(R.fold_in(k_run, t))
        action = R.randint(k_act, 0, 6, (n,))
        keys = R.split(k_step, n)
        obs, new, reward, term, trunc, _ = step_env(keys, state, action, p)
        e_side, e_sub, e_row = vmap(lambda k: enemy_draws(R.split(k, 3)[1]))(keys)
        d_side, d_row = vmap(lambda k: diver_draws(R.split(k, 3)[2]))(keys)
        m_obs, m_rew, m_term = [], [], []
        for i, m in enumerate(ms):
            stuck = int(new.last_action[i]) != int(action[i])
            counts["sticky"] += stuck
            m.sticky_action_prob = 1.0 if stuck else 0.0
            e = m.env
            uniforms: list[float] = []
            rows: list[int] = []
            if e.e_spawn_timer == 0:
                uniforms += [0.25 if e_side[i] else 0.75, 0.1 if e_sub[i] else 0.9]
                rows.append(int(e_row[i]))
                counts["enemy_spawn"] += 1
                y, lr = int(e_row[i]), bool(e_side[i])
                counts["clash"] += any(z[1] == y and z[2] != lr for z in e.e_subs + e.e_fish)
            if e.d_spawn_timer == 0:
                uniforms.append(0.25 if d_side[i] else 0.75)
                rows.append(int(d_row[i]))
                counts["diver_spawn"] += 1
            e.random = Draws(uniforms, rows)
            before = (len(e.e_fish) + len(e.e_subs), e.diver_count, e.ramp_index, e.oxygen)
            shots_before = len(e.e_bullets)
            r, te = m.act(SEAQUEST_ACTION_SET[int(action[i])])
            assert not e.random.uniforms and not e.random.rows, f"step {t} env {i}: draws"
            counts["enemy_shots"] += len(e.e_bullets) > shots_before
            counts["pickups"] += e.diver_count > before[1]
            counts["surfacings"] += e.surface and e.oxygen == 200 and before[3] != 200
            counts["ramps"] += e.ramp_index != before[2]
            bonus = before[1] == 6 and e.diver_count == -1
            counts["bonus"] += bonus
            counts["hits"] += int(r) - (before[3] * 10 // 200 if bonus else 0)  # torpedo hits
            counts["oxygen_out"] += before[3] <= 0
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
        state = restart(R.fold_in(k_step, 7), new, term)
        for j in np.flatnonzero(term.numpy()).tolist():
            to_minatar(ms[j], tree.index(state, j))
    return counts


def test_lockstep_with_minatar() -> None:
    counts = run_lockstep(n=32, steps=150, sticky=0.0, seed=1)
    assert counts["sticky"] == 0
    assert counts["reward"] >= 20 and counts["terminated"] >= 30, counts
    assert counts["hits"] >= 50 and counts["pickups"] >= 10 and counts["bonus"] >= 1, counts
    assert counts["surfacings"] >= 10 and counts["ramps"] >= 5 and counts["clash"] >= 3, counts
    assert counts["enemy_shots"] >= 20 and counts["oxygen_out"] >= 3, counts


def test_lockstep_with_minatar_sticky_actions() -> None:
    counts = run_lockstep(n=16, steps=100, sticky=0.5, seed=2)
    assert counts["sticky"] >= 200 and counts["reward"] >= 5, counts


def step_both(state: SeaquestState, action: int) -> SeaquestState:
    """One step of funrl and of minatar from ``state`` (no spawn due); both must agree."""
    p = params()
    m = minatar.Environment("seaquest", sticky_action_prob=0.0)
    to_minatar(m, state)
    m.env.random = Draws([], [])
    obs, new, reward, term, _, _ = ENV.step_env(R.key(0), state, torch.tensor(action), p)
    r, te = m.act(SEAQUEST_ACTION_SET[action])
    check_fields(m, new, "scenario")
    np.testing.assert_array_equal(obs.numpy(), m.state().astype(np.float32))
    assert (float(reward), bool(term)) == (r, te)
    return new


def scenario(**lists: list[list[Any]]) -> SeaquestState:
    """Submarine at column 4, row 3, facing right, five divers on board; no spawn due;
    the given minatar lists."""
    _, s = ENV.reset(R.key(0), params())
    s = s.replace(
        sub_x=torch.tensor(4),
        sub_y=torch.tensor(3),
        sub_or=torch.tensor(True),
        surface=torch.tensor(False),
        diver_count=torch.tensor(5),
        e_spawn_timer=torch.tensor(9),
        d_spawn_timer=torch.tensor(9),
    )
    return s.replace(**packed(lists))


def test_ties_resolve_in_minatars_list_order() -> None:
    """Where two entities compete, minatar's list order decides, and funrl's too."""
    # two divers on the submarine with room for one: the newer is taken
    s = step_both(scenario(divers=[[4, 3, True, 2], [4, 3, False, 3]]), 0)
    assert int(s.diver_count) == 6 and listed(s)["divers"] == [[4, 3, True, 1]]
    # a torpedo on a cell with two fish removes the older
    s = step_both(scenario(f_bullets=[[2, 6, True]], e_fish=[[3, 6, True, 3], [3, 6, True, 2]]), 0)
    assert listed(s)["e_fish"] == [[3, 6, True, 1]] and not s.f_bullets.alive.any()
    # two enemy submarines moving onto a torpedo: the newer is hit, the older fires
    subs = [[3, 6, True, 0, 0], [3, 6, True, 0, 7]]
    s = step_both(scenario(f_bullets=[[5, 6, False]], e_subs=subs), 0)
    assert listed(s)["e_subs"] == [[4, 6, True, 5, 10]] and int(s.e_bullets.alive.sum()) == 1
    # one enemy submarine moving onto two torpedoes: the older torpedo goes
    torps = [[3, 6, True], [5, 6, False]]
    s = step_both(scenario(f_bullets=torps, e_subs=[[3, 6, True, 0, 4]]), 0)
    assert listed(s)["f_bullets"] == [[4, 6, False]] and not s.enemies.alive.any()
    # an enemy submarine hit in the step its shot is due still fires
    s = step_both(scenario(f_bullets=[[5, 6, False]], e_subs=[[3, 6, True, 0, 0]]), 0)
    assert not s.enemies.alive.any() and listed(s)["e_bullets"] == [[5, 6, True]]


def test_spawn_draws_are_uniform() -> None:
    """Sides 1/2, enemy submarines 1/3 and rows uniform in 1-8."""
    keys = R.split(R.key(0), 40000)
    side, sub, row = vmap(enemy_draws)(keys)
    d_side, d_row = vmap(diver_draws)(keys)
    assert abs(side.float().mean() - 0.5) < 0.01 and abs(sub.float().mean() - 1 / 3) < 0.01
    assert abs(d_side.float().mean() - 0.5) < 0.01
    for r in (row, d_row):
        assert int(r.min()) == 1 and int(r.max()) == 8
        freq = torch.bincount(r, minlength=9)[1:].float() / len(r)
        assert (freq - 1 / 8).abs().max() < 0.01, freq


def test_reset_spaces_and_registry() -> None:
    env, p = make("MinAtar-Seaquest-v1")
    assert isinstance(env, Seaquest)
    o_space, a_space = env.observation_space(p), env.action_space(p)
    assert isinstance(o_space, Box) and o_space.shape == (10, 10, 10)
    assert isinstance(a_space, Discrete) and a_space.n == 6
    m = minatar.Environment("seaquest")
    assert list(SEAQUEST_ACTION_SET) == m.minimal_action_set()
    assert list(m.state_shape()) == list(o_space.shape)
    obs, s = env.reset(R.key(0), p)
    check_fields(m, s, "reset")  # a fresh minatar env is in funrl's reset state
    np.testing.assert_array_equal(obs.numpy(), m.state().astype(np.float32))


def test_six_divers_pay_for_the_oxygen_left_and_leave_minatars_count() -> None:
    """Surfacing with six divers and 137 oxygen pays 137 * 10 // 200 = 6 and leaves -1
    divers (minatar's count); the next surfacing then costs nothing and does not end
    the episode."""
    p = params()
    _, s = ENV.reset(R.key(0), p)
    s = s.replace(
        sub_y=torch.tensor(1),
        surface=torch.tensor(False),
        diver_count=torch.tensor(6),
        oxygen=torch.tensor(138),
        e_spawn_timer=torch.tensor(50),
        d_spawn_timer=torch.tensor(50),
    )
    up, down = torch.tensor(2), torch.tensor(4)
    _, s, r, term, _, _ = ENV.step_env(R.key(1), s, torch.tensor(0), p)
    assert int(s.oxygen) == 137 and float(r) == 0.0
    _, s, r, term, _, _ = ENV.step_env(R.key(2), s, up, p)
    assert float(r) == 6.0 and not bool(term) and int(s.diver_count) == -1
    assert int(s.oxygen) == 200 and int(s.ramp_index) == 1 and int(s.e_spawn_speed) == 19
    _, s, _, _, _, _ = ENV.step_env(R.key(3), s, down, p)
    obs, s, r, term, _, _ = ENV.step_env(R.key(4), s, up, p)
    assert not bool(term) and int(s.diver_count) == -2 and float(r) == 0.0
    assert float(obs[..., 8].sum()) == 0.0  # an empty diver gauge


def test_surfacing_without_divers_and_running_out_of_oxygen_terminate() -> None:
    p = params()
    _, s = ENV.reset(R.key(0), p)
    quiet = s.replace(e_spawn_timer=torch.tensor(50), d_spawn_timer=torch.tensor(50))
    dived = quiet.replace(sub_y=torch.tensor(1), surface=torch.tensor(False))
    *_, term, _, _ = ENV.step_env(R.key(1), dived, torch.tensor(2), p)
    assert bool(term)
    *_, term, _, _ = ENV.step_env(
        R.key(1), dived.replace(oxygen=torch.tensor(1)), torch.tensor(0), p
    )
    assert not bool(term)
    *_, term, _, _ = ENV.step_env(
        R.key(1), dived.replace(oxygen=torch.tensor(0)), torch.tensor(0), p
    )
    assert bool(term)


def test_truncation_at_max_steps() -> None:
    p = params(max_steps=3)
    _, s = ENV.reset(R.key(0), p)
    for t in range(3):
        _, s, _, term, trunc, _ = ENV.step_env(R.key(t), s, torch.tensor(0), p)
        assert bool(trunc) == (t == 2) and not bool(term)


def test_eager_vmap_and_compile_of_a_vec_env_step_agree() -> None:
    n = 12
    venv = VecEnv(ENV, n)
    p = params(sticky=0.5)
    rng = np.random.default_rng(5)
    state = tree.stack([random_state(rng) for _ in range(n)])
    action = torch.arange(n) % 6
    key = R.key(3)
    keys = R.split(key, n)
    eager = tree.stack([ENV.step(keys[i], tree.index(state, i), action[i], p) for i in range(n)])
    vmapped = venv.step(key, state, action, p)
    assert_trees_close(vmapped, eager, rtol=0, atol=0, what="vmap")
    got = funrl_compile(venv.step, fullgraph=True)(key, state, action, p)
    assert_trees_close(got, eager, rtol=0, atol=0, what="compile")


def test_state_flags_are_int64_and_a_bool_flagged_state_still_steps() -> None:
    """Since session 23 the entities' flags are int64; a state saved before, with bool
    flags, steps to the same result (and an int64-flagged state)."""
    _, fresh = ENV.reset(R.key(0), ENV.default_params())
    assert {fresh.enemies.alive.dtype, fresh.divers.right.dtype} == {torch.int64}
    rng = np.random.default_rng(11)
    p = params(sticky=0.0)
    for i in range(20):
        state = random_state(rng)
        old = state.replace(
            **{
                name: e.replace(alive=e.alive.bool(), right=e.right.bool(), sub=e.sub.bool())
                for name, e in [
                    ("f_bullets", state.f_bullets),
                    ("e_bullets", state.e_bullets),
                    ("enemies", state.enemies),
                    ("divers", state.divers),
                ]
            }
        )
        assert old.enemies.alive.dtype == torch.bool
        key, action = R.key(i), torch.tensor(i % 6)
        want = ENV.step(key, state, action, p)
        got = ENV.step(key, old, action, p)
        assert_trees_close(got, want, rtol=0, atol=0, what="bool-flagged state")
        assert got[1].enemies.alive.dtype == torch.int64
