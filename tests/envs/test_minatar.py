"""MinAtar Breakout against the ``minatar`` package (1.0.15), transition by transition.

How the reference comparison works: funrl steps a batch of environments at once (vmap); a
Python loop keeps one ``minatar.Environment("breakout")`` per member in lockstep, driven
with the same actions (funrl's ``Discrete(3)`` mapped through ``MINIMAL_ACTION_SET``).
After every step the observations (funrl's float32 vs minatar's bool ``state()``),
rewards, termination flags *and* every internal field (ball, direction, paddle, bricks,
strike flag, trail, last action) must be equal, exactly.  Where an episode ends, funrl
auto-resets and the minatar env is set to funrl's new start state (which must be one of
minatar's start states).  Sticky actions are synchronised: minatar's sticky probability
is set, per step, to 1 where funrl repeated the previous action and to 0 elsewhere.

``minatar`` is an optional dependency (``pip install funrl[minatar]``): without it this
module is skipped, except in CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters
from torch.func import vmap

import funrl.random as R
from funrl import tree
from funrl.compiling import compile as funrl_compile
from funrl.envs import VecEnv, make
from funrl.envs.minatar import MINIMAL_ACTION_SET, Breakout, BreakoutParams, BreakoutState
from funrl.envs.spaces import Box, Discrete
from funrl.testing import assert_trees_close

if os.environ.get("CI"):
    minatar = importlib.import_module("minatar")  # CI installs funrl[minatar]: never skip
else:
    minatar = pytest.importorskip("minatar")

ENV = Breakout()
FIELDS = ("ball_x", "ball_y", "ball_dir", "pos", "strike", "last_x", "last_y", "last_action")
START_STATES = {  # (ball_x, ball_dir) of minatar's two start states; the rest is fixed
    (0, 2),
    (9, 3),
}


def make_params(sticky: float = 0.0, max_steps: int = 10**9) -> BreakoutParams:
    return BreakoutParams(
        sticky_action_prob=torch.tensor(sticky, dtype=torch.float32),
        max_steps=torch.tensor(max_steps, dtype=torch.int64),
    )


# ---- conversions between a minatar env and a funrl state -------------------------------


def minatar_env(seed: int = 0) -> Any:
    m = minatar.Environment("breakout", sticky_action_prob=0.0)
    m.seed(seed)
    m.reset()
    return m


def to_minatar(m: Any, state: BreakoutState) -> None:
    """Set minatar env ``m`` to the unbatched funrl ``state`` (``time`` has no counterpart)."""
    e = m.env
    e.ball_x, e.ball_y = int(state.ball_x), int(state.ball_y)
    e.ball_dir, e.pos = int(state.ball_dir), int(state.pos)
    e.last_x, e.last_y = int(state.last_x), int(state.last_y)
    e.strike = bool(state.strike)
    e.brick_map = state.brick_map.numpy().astype(np.float64)  # minatar's dtype
    e.terminal = False
    m.last_action = MINIMAL_ACTION_SET[int(state.last_action)]


def from_minatar(m: Any, time: int = 0) -> BreakoutState:
    """The funrl state of minatar env ``m`` (``time`` given: minatar does not count steps)."""
    e = m.env

    def i64(v: Any) -> torch.Tensor:
        return torch.tensor(int(v), dtype=torch.int64)

    return BreakoutState(
        ball_x=i64(e.ball_x),
        ball_y=i64(e.ball_y),
        ball_dir=i64(e.ball_dir),
        pos=i64(e.pos),
        brick_map=torch.from_numpy(e.brick_map != 0).to(torch.int32),
        strike=torch.tensor(bool(e.strike)),
        last_x=i64(e.last_x),
        last_y=i64(e.last_y),
        last_action=i64(MINIMAL_ACTION_SET.index(m.last_action)),
        time=i64(time),
    )


def fields_of(ms: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``([n, len(FIELDS)] int64, [n, 10, 10] bool)``: the internal state of minatar envs."""
    rows = [
        (
            e.ball_x,
            e.ball_y,
            e.ball_dir,
            e.pos,
            e.strike,
            e.last_x,
            e.last_y,
            MINIMAL_ACTION_SET.index(m.last_action),
        )
        for m in ms
        for e in (m.env,)
    ]
    return np.array(rows, dtype=np.int64), np.stack([m.env.brick_map != 0 for m in ms])


def funrl_fields(state: BreakoutState) -> tuple[np.ndarray, np.ndarray]:
    """The same for a batched funrl state."""
    cols = [getattr(state, f).to(torch.int64) for f in FIELDS]
    return torch.stack(cols, -1).numpy(), state.brick_map.numpy()


# ---- states ------------------------------------------------------------------------------


def broad_states(n: int, seed: int) -> BreakoutState:
    """``n`` states covering every branch: any ball cell on rows 0-8 and direction, any
    paddle (half of them with the ball about to reach the bottom near the paddle), brick
    maps from empty to dense anywhere on rows 0-8, strike on or off."""
    k = R.split(R.key(seed), 12)
    ball_x = R.randint(k[0], 0, 10, (n,))
    ball_dir = R.randint(k[1], 0, 4, (n,))
    near_bottom = R.bernoulli(k[2], 0.5, (n,))
    ball_y = torch.where(near_bottom, 8, R.randint(k[3], 0, 9, (n,)))
    ball_dir = torch.where(near_bottom, 2 + ball_dir % 2, ball_dir)
    offset = R.randint(k[4], -2, 3, (n,))
    pos = torch.where(near_bottom, (ball_x + offset).clamp(0, 9), R.randint(k[5], 0, 10, (n,)))
    density = torch.tensor([0.0, 0.03, 0.3, 0.7, 1.0])[R.randint(k[6], 0, 5, (n,))]
    # no bricks on the paddle's row: a ball passing a brick there (second hit in a row)
    # would leave the grid next step (an IndexError in minatar; never reached in play)
    bricks = R.uniform(k[7], (n, 10, 10)) < density[:, None, None]
    bricks[:, 9] = False
    return BreakoutState(
        ball_x=ball_x,
        ball_y=ball_y,
        ball_dir=ball_dir,
        pos=pos,
        brick_map=bricks.to(torch.int32),
        strike=R.bernoulli(k[8], 0.3, (n,)),
        last_x=R.randint(k[9], 0, 10, (n,)),
        last_y=R.randint(k[10], 0, 10, (n,)),
        last_action=R.randint(k[11], 0, 3, (n,)),
        time=torch.zeros(n, dtype=torch.int64),
    )


def sparse_start_states(n: int, seed: int) -> BreakoutState:
    """Start states whose wall has only 1-3 bricks left: new rows come soon."""
    k1, k2, k3 = R.split(R.key(seed), 3)
    _, state = vmap(ENV.reset, in_dims=(0, None))(R.split(k1, n), make_params())
    keep = R.uniform(k2, (n, 10, 10)) < R.uniform(k3, (n, 1, 1), low=0.01, high=0.1)
    return state.replace(brick_map=state.brick_map * keep)


@functools.cache
def minatar_start_states() -> list[BreakoutState]:
    """minatar's start states (as funrl states), from resets with seeds 0, 1, ... until
    200 resets found no new one."""
    found: dict[tuple, BreakoutState] = {}
    for seed in range(200):
        s = from_minatar(minatar_env(seed))
        found[(int(s.ball_x), int(s.ball_dir))] = s
    assert set(found) == START_STATES, set(found)
    return [found[k] for k in sorted(found)]


def tracking_policy(key: torch.Tensor, state: BreakoutState, eps: torch.Tensor) -> torch.Tensor:
    """Move the paddle under the ball's next column; a uniform action with probability eps."""
    dx = torch.where((state.ball_dir == 1) | (state.ball_dir == 2), 1, -1)
    target = (state.ball_x + dx).clamp(0, 9)
    track = torch.where(state.pos < target, 2, torch.where(state.pos > target, 1, 0))
    k1, k2 = R.split(key)
    n = eps.shape[0]
    return torch.where(R.uniform(k1, (n,)) < eps, R.randint(k2, 0, 3, (n,)), track)


# ---- reference: one step from broad states --------------------------------------------


def test_matches_minatar_on_broad_states() -> None:
    n = 3000
    state = broad_states(n, seed=1)
    action = R.randint(R.key(2), 0, 3, (n,))
    params = make_params()
    obs, new, reward, term, trunc, _ = vmap(ENV.step_env, in_dims=(0, 0, 0, None))(
        R.split(R.key(3), n), state, action, params
    )
    m = minatar_env()
    m_obs, m_rew, m_term, m_fields, m_bricks = [], [], [], [], []
    for i in range(n):
        to_minatar(m, tree.index(state, i))
        r, t = m.act(MINIMAL_ACTION_SET[int(action[i])])
        m_obs.append(m.state())
        m_rew.append(r)
        m_term.append(t)
        f, b = fields_of([m])
        m_fields.append(f[0])
        m_bricks.append(b[0])
    np.testing.assert_array_equal(obs.numpy(), np.stack(m_obs).astype(np.float32))
    np.testing.assert_array_equal(reward.numpy(), np.array(m_rew, dtype=np.float32))
    np.testing.assert_array_equal(term.numpy(), np.array(m_term))
    f_fields, f_bricks = funrl_fields(new)
    np.testing.assert_array_equal(f_fields, np.stack(m_fields))
    np.testing.assert_array_equal(f_bricks, np.stack(m_bricks))
    assert not trunc.any()
    assert obs.dtype == torch.float32 and reward.dtype == torch.float32
    # every branch of minatar's Env.act was taken many times
    s, b = state, state.brick_map
    had_bricks, has_bricks = b.flatten(1).any(1), new.brick_map.flatten(1).any(1)
    cover = {
        "brick broken": reward > 0,
        "second brick in a row passed": (new.strike & s.strike)
        & b.flatten(1).gather(1, (new.ball_y * 10 + new.ball_x)[:, None])[:, 0],
        "terminated": term,
        "straight paddle bounce": (s.ball_y == 8) & (new.ball_y == 8) & (s.ball_x == new.pos),
        "diagonal paddle bounce": (s.ball_y == 8) & (new.ball_y == 8) & (new.ball_x == new.pos),
        "new brick rows": ~had_bricks & has_bricks,
        "ceiling": (s.ball_y == 0) & (new.ball_y == 0),
        "side wall": (new.ball_x == s.ball_x) & ~term,
        "corner": (new.ball_x == s.ball_x) & (s.ball_y == 0) & (new.ball_y == 0),
    }
    counts = {name: int(mask.sum()) for name, mask in cover.items()}
    assert min(counts.values()) >= 5, counts


# ---- reference: long lockstep runs (with auto-reset) -------------------------------------


def run_lockstep(
    n: int, steps: int, sticky: float, seed: int, use_step_env: bool = False
) -> dict[str, int]:
    """Run ``n`` funrl envs and ``n`` minatar envs side by side for ``steps`` steps.

    The first half starts from walls with few bricks left (new rows soon), the rest from
    funrl's reset.  The policy tracks the ball with per-env epsilon in ``[0, 0.4)``, so
    some episodes are long and others end soon.  Members ``3k`` have a time limit of
    ``40 + 10 k`` steps, the rest none.  With ``use_step_env`` the test does the
    auto-reset itself (``step_env`` + ``reset_env``), so the executed action
    (``last_action``) can be read off the pre-reset state to synchronise sticky actions.
    """
    max_steps = torch.where(torch.arange(n) % 3 == 0, 40 + 10 * torch.arange(n) // 3, 10**9)
    params = BreakoutParams(
        sticky_action_prob=torch.full((n,), sticky, dtype=torch.float32), max_steps=max_steps
    )
    k_start, k_run, k_eps = R.split(R.key(seed), 3)
    _, fresh = vmap(ENV.reset)(R.split(k_start, n), params)
    sparse = sparse_start_states(n, seed + 1)
    state = tree.where(torch.arange(n) < n // 2, sparse, fresh)
    eps = R.uniform(k_eps, (n,), high=0.4)
    ms = [minatar_env(seed + i) for i in range(n)]
    for i, m in enumerate(ms):
        to_minatar(m, tree.index(state, i))
    step = vmap(ENV.step)
    step_env, reset_env = vmap(ENV.step_env), vmap(ENV.reset_env)
    counts = {"terminated": 0, "truncated": 0, "new rows": 0, "reward": 0, "sticky": 0}
    times = np.zeros(n, dtype=np.int64)
    for t in range(steps):
        k_act, k_step = R.split(R.fold_in(k_run, t))
        action = tracking_policy(k_act, state, eps)
        keys = R.split(k_step, n)
        if use_step_env:
            k_s, k_r = _two(keys)
            f_obs, pre, reward, term, trunc, _ = step_env(k_s, state, action, params)
            _, state_re = reset_env(k_r, params)
            new = tree.where(term | trunc, state_re, pre)
            executed = pre.last_action
        else:
            _, new, reward, term, trunc, info = step(keys, state, action, params)
            f_obs, pre, executed = info["final_observation"], None, action
        m_obs, m_rew, m_term = [], [], []
        for i, m in enumerate(ms):
            stuck = int(executed[i]) != int(action[i])
            m.sticky_action_prob = 1.0 if stuck else 0.0
            counts["sticky"] += stuck
            before = np.count_nonzero(m.env.brick_map)
            r, te = m.act(MINIMAL_ACTION_SET[int(action[i])])
            counts["new rows"] += np.count_nonzero(m.env.brick_map) > before
            m_obs.append(m.state())
            m_rew.append(r)
            m_term.append(te)
        times += 1
        msg = f"step {t}"
        np.testing.assert_array_equal(f_obs.numpy(), np.stack(m_obs).astype(np.float32), msg)
        np.testing.assert_array_equal(reward.numpy(), np.array(m_rew, np.float32), msg)
        np.testing.assert_array_equal(term.numpy(), np.array(m_term), msg)
        np.testing.assert_array_equal(trunc.numpy(), times >= max_steps.numpy(), msg)
        if pre is not None:
            m_fields, m_bricks = fields_of(ms)
            f_fields, f_bricks = funrl_fields(pre)
            np.testing.assert_array_equal(f_fields, m_fields, msg)
            np.testing.assert_array_equal(f_bricks, m_bricks, msg)
        done = (term | trunc).numpy()
        for i in np.flatnonzero(done):  # funrl auto-reset: one of minatar's start states
            s = tree.index(new, int(i))
            assert any(tree.all_equal(s, ref) for ref in minatar_start_states()), str(s)
            to_minatar(ms[i], s)
            times[i] = 0
        m_fields, m_bricks = fields_of(ms)
        f_fields, f_bricks = funrl_fields(new)
        np.testing.assert_array_equal(f_fields, m_fields, msg)
        np.testing.assert_array_equal(f_bricks, m_bricks, msg)
        np.testing.assert_array_equal(new.time.numpy(), times, msg)
        counts["terminated"] += int(term.sum())
        counts["truncated"] += int(trunc.sum())
        counts["reward"] += int(reward.sum())
        state = new
    return counts


def _two(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``split(k)`` of each key in ``keys [n, 2]``: two batches of keys ``[n, 2]``."""
    both = R.split(keys, 2)
    return both[:, 0], both[:, 1]


def test_lockstep_with_minatar() -> None:
    """64 envs x 400 steps (25,600 transitions), no sticky actions, with auto-reset."""
    counts = run_lockstep(n=64, steps=400, sticky=0.0, seed=10)
    assert counts["terminated"] >= 50 and counts["truncated"] >= 10, counts
    assert counts["new rows"] >= 10 and counts["reward"] >= 500, counts
    assert counts["sticky"] == 0


def test_lockstep_with_minatar_sticky_actions() -> None:
    """32 envs x 250 steps with sticky probability 0.5, minatar synchronised to funrl."""
    counts = run_lockstep(n=32, steps=250, sticky=0.5, seed=20, use_step_env=True)
    assert counts["terminated"] >= 20 and counts["sticky"] >= 500, counts


# ---- sticky actions -----------------------------------------------------------------------


def test_sticky_action_probability() -> None:
    n = 20000
    state = broad_states(n, seed=31)
    action = R.randint(R.key(32), 0, 3, (n,))
    keys = R.split(R.key(33), n)
    differs = action != state.last_action
    for p in (0.0, 0.1, 0.5, 1.0):
        _, new, *_ = vmap(ENV.step_env, in_dims=(0, 0, 0, None))(
            keys, state, action, make_params(p)
        )
        stuck = (new.last_action == state.last_action) & differs
        assert torch.equal(new.last_action[~differs], action[~differs])
        assert torch.equal(new.last_action[differs & ~stuck], action[differs & ~stuck])
        m = int(differs.sum())
        frac = float(stuck.sum()) / m
        assert abs(frac - p) <= 4 * (p * (1 - p) / m) ** 0.5 + 1e-12, (p, frac)
    # default: minatar's 0.1; at p = 1 the paddle never leaves its start column
    assert float(ENV.default_params().sticky_action_prob) == pytest.approx(0.1)
    _, s = ENV.reset(R.key(0))
    for t in range(5):
        _, s, *_ = ENV.step(R.key(t), s, torch.tensor(2), make_params(1.0))
        assert int(s.pos) == 4


# ---- reset distribution ------------------------------------------------------------------


def test_reset_distribution_matches_minatar() -> None:
    n = 4000
    obs, state = vmap(ENV.reset, in_dims=(0, None))(R.split(R.key(41), n), ENV.default_params())
    assert obs.shape == (n, 10, 10, 4) and obs.dtype == torch.float32
    assert bool(ENV.observation_space(ENV.default_params()).contains(obs).all())
    fields, bricks = funrl_fields(state)
    assert torch.equal(state.time, torch.zeros(n, dtype=torch.int64))
    # the set of start states is minatar's (which draws randint(2) from its own RNG)
    starts = {tuple(row) for row in fields.tolist()}
    refs = minatar_start_states()
    assert starts == {tuple(funrl_fields(tree.stack([r]))[0][0].tolist()) for r in refs}
    assert (bricks == refs[0].brick_map.numpy()).all()
    # each with probability 1/2 (minatar's randint(2))
    right = float((state.ball_x == 9).float().mean())
    assert abs(right - 0.5) < 4 * (0.25 / n) ** 0.5
    # the whole state and the observation of each start state are minatar's
    for ref in refs:
        i = int(torch.nonzero(state.ball_x == ref.ball_x)[0, 0])
        assert tree.all_equal(tree.index(state, i), ref)
        m = minatar_env()
        to_minatar(m, ref)
        np.testing.assert_array_equal(obs[i].numpy(), m.state().astype(np.float32))


# ---- spaces, registry, time limit ------------------------------------------------------


def test_spaces_registry_and_action_set() -> None:
    env, params = make("MinAtar-Breakout-v1")
    assert isinstance(env, Breakout) and env.name == "MinAtar-Breakout-v1"
    o_space, a_space = env.observation_space(params), env.action_space(params)
    assert isinstance(o_space, Box) and o_space.shape == (10, 10, 4)
    assert o_space.dtype == torch.float32
    assert torch.equal(o_space.low, torch.zeros(10, 10, 4))
    assert torch.equal(o_space.high, torch.ones(10, 10, 4))
    assert isinstance(a_space, Discrete) and a_space.n == 3 and env.num_actions == 3
    m = minatar.Environment("breakout")
    assert list(MINIMAL_ACTION_SET) == m.minimal_action_set()
    assert list(m.state_shape()) == list(o_space.shape)
    assert int(params.max_steps) == 1000


def test_time_limit_truncates_not_terminates() -> None:
    params = make_params(max_steps=7)
    _, s = ENV.reset(R.key(0), params)
    for t in range(7):
        # a perfect tracker: this start never terminates in 7 steps
        dx = 1 if int(s.ball_dir) in (1, 2) else -1
        target = min(9, max(0, int(s.ball_x) + dx))
        a = 2 if int(s.pos) < target else (1 if int(s.pos) > target else 0)
        _, s, _, term, trunc, _ = ENV.step(R.key(t), s, torch.tensor(a), params)
        assert not bool(term)
        assert bool(trunc) == (t == 6)
    assert int(s.time) == 0  # auto-reset


def test_wall_is_int32_and_a_bool_wall_steps_the_same() -> None:
    """The state keeps the wall as int32 0/1 (inductor's fast path); a state that holds it
    as bool (saved before the change) steps to the same outputs."""
    _, state = ENV.reset(R.key(60), make_params())
    assert state.brick_map.dtype == torch.int32
    states = broad_states(16, seed=61)
    action = R.randint(R.key(62), 0, 3, (16,))
    step = vmap(ENV.step, in_dims=(0, 0, 0, None))
    keys = R.split(R.key(63), 16)
    want = step(keys, states, action, make_params())
    got = step(keys, states.replace(brick_map=states.brick_map > 0), action, make_params())
    assert_trees_close(got, want, rtol=0, atol=0)


# ---- transforms: eager / vmap (VecEnv) / torch.compile -------------------------------------


def test_eager_vmap_and_compile_of_a_vec_env_step_agree() -> None:
    """Members stepped one by one, ``VecEnv(Breakout(), 8).step`` (vmap) and that step under
    ``torch.compile(fullgraph=True)`` (funrl.compile) agree bit for bit, sticky actions and
    auto-resets included."""
    n = 8
    venv = VecEnv(ENV, n)
    params = make_params(sticky=0.5, max_steps=5)
    state = broad_states(n, seed=51)
    state = state.replace(time=torch.tensor([0, 4, 0, 0, 4, 0, 0, 0]))  # two truncate
    action = R.randint(R.key(52), 0, 3, (n,))
    key = R.key(53)
    keys = R.split(key, n)
    eager = tree.stack(
        [ENV.step(keys[i], tree.index(state, i), action[i], params) for i in range(n)]
    )
    vmapped = venv.step(key, state, action, params)
    assert_trees_close(vmapped, eager, rtol=0, atol=0, what="vmap")
    graphs = counters["stats"]["unique_graphs"]
    compiled = funrl_compile(venv.step, fullgraph=True)
    got = compiled(key, state, action, params)
    assert_trees_close(got, eager, rtol=0, atol=0, what="compile")
    # a second step from the compiled step's own outputs: same graph, same as vmap
    got2 = compiled(R.key(54), got[1], action, params)
    assert_trees_close(got2, venv.step(R.key(54), got[1], action, params), rtol=0, atol=0)
    assert counters["stats"]["unique_graphs"] - graphs == 1
    done = eager[3] | eager[4]
    assert done.any() and not done.all() and eager[4].any()
