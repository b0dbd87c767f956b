"""Wrappers: hand-computed and numpy/gymnasium references, auto-reset, vmap/compile, composition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.wrappers.utils import RunningMeanStd
from hypothesis import given
from hypothesis import strategies as st

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment
from funrl.envs.spaces import Box, Discrete
from funrl.envs.vector import VecEnv
from funrl.envs.wrappers import (
    ClipAction,
    ClipObservation,
    EpisodeStatistics,
    FlattenObservation,
    FrameStack,
    NormalizeObservation,
    RescaleAction,
    ScaleReward,
    StickyActions,
    TimeLimit,
    TransformReward,
    checked,
    moments_init,
    moments_update,
)
from funrl.testing import assert_trees_close, check_transforms


# ---- toy envs -----------------------------------------------------------------------
@tree.struct
class WalkParams:
    step_size: torch.Tensor
    bound: torch.Tensor
    max_t: torch.Tensor


@tree.struct
class WalkState:
    pos: torch.Tensor
    t: torch.Tensor


class Walk(Environment):
    """1-D random walk, obs [pos, t]; ends at |pos| >= bound (terminated) or t = max_t."""

    name = "Walk"

    def __init__(self, noisy: bool = True, max_t: int = 6) -> None:
        self.noisy, self.max_t = noisy, max_t

    def default_params(self):
        return WalkParams(torch.tensor(1.0), torch.tensor(3.0), torch.tensor(self.max_t))

    def _obs(self, s):
        return torch.stack([s.pos, s.t.to(torch.float32)])

    def reset_env(self, key, params):
        pos = R.uniform(key, (), low=-0.5, high=0.5) if self.noisy else torch.tensor(0.25)
        s = WalkState(pos, torch.tensor(0))
        return self._obs(s), s

    def step_env(self, key, state, action, params):
        move = (2 * action - 1).to(torch.float32) * params.step_size
        if self.noisy:
            move = move + 0.1 * R.normal(key)
        s = WalkState(state.pos + move, state.t + 1)
        term = s.pos.abs() >= params.bound
        trunc = (s.t >= params.max_t) & ~term
        return self._obs(s), s, s.pos, term, trunc, {"pos": s.pos}

    def observation_space(self, params):
        return Box(-torch.inf, torch.inf, (2,))

    def action_space(self, params):
        return Discrete(2)


@tree.struct
class LineState:
    pos: torch.Tensor
    t: torch.Tensor


class Line(Environment):
    """Continuous actions in [-2, 2]^1; reward = the action the env received; 4-step episodes."""

    name = "Line"

    def default_params(self):
        return {"max_t": torch.tensor(4)}

    def reset_env(self, key, params):
        s = LineState(torch.zeros(1), torch.tensor(0))
        return s.pos, s

    def step_env(self, key, state, action, params):
        s = LineState(state.pos + action, state.t + 1)
        return s.pos, s, action[0], torch.tensor(False), s.t >= params["max_t"], {}

    def observation_space(self, params):
        return Box(-torch.inf, torch.inf, (1,))

    def action_space(self, params):
        return Box(-2.0, 2.0, (1,))


def _run(env, n_steps, seed=0, actions=None, params=None):
    """Eager rollout; returns the reset obs and a list of step outputs."""
    key = R.key(seed)
    obs, s = env.reset(key, params)
    outs = []
    for t in range(n_steps):
        a = (
            actions[t]
            if actions is not None
            else R.randint(R.fold_in(key, 1000 + t), 0, 2, env.batch_shape)
        )
        out = env.step(R.fold_in(key, t), s, a, params)
        outs.append(out)
        s = out[1]
    return obs, outs


def _check_vmap(env, pop=3, seed=7, action=None):
    """Population of wrapped envs: reset and a step agree eagerly and under vmap."""
    p = env.default_params()
    _obs, s = check_transforms(lambda k: env.reset(k, p), R.split(R.key(seed), pop), compile=False)
    if action is None:
        action = R.randint(R.key(seed + 1), 0, 2, (pop, *env.batch_shape))
    return check_transforms(
        lambda k, st, a: env.step(k, st, a, p),
        R.split(R.key(seed + 2), pop),
        s,
        action,
        compile=False,
    )


# ---- running moments ----------------------------------------------------------------
def test_moments_update_matches_gymnasium_running_mean_std():
    rng = np.random.default_rng(0)
    m = moments_init((3,))
    ref = RunningMeanStd(shape=(3,))
    for b in [5, 1, 7, 2]:
        x = rng.normal(size=(b, 3)) * 3 + 1
        m = moments_update(m, torch.as_tensor(x), 1)
        ref.update(x)
    m = moments_update(m, torch.as_tensor(x[0]), 0)  # no batch dim: one sample
    ref.update(x[:1])
    np.testing.assert_allclose(m.mean.numpy(), ref.mean, rtol=1e-12)
    np.testing.assert_allclose(m.var.numpy(), ref.var, rtol=1e-12)
    assert float(m.count) == pytest.approx(ref.count)
    check_transforms(
        lambda x: moments_update(moments_init((3,)), x, 1),
        torch.randn(2, 4, 3, dtype=torch.float64),
        compile=False,
    )


@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_moments_update_chunking_invariance(sizes, seed):
    """Merging chunks one by one equals merging their concatenation (and numpy's moments)."""
    x = torch.as_tensor(np.random.default_rng(seed).normal(size=(sum(sizes), 2)) * 2.0 - 1.0)
    m = moments_init((2,))
    for chunk in torch.split(x, sizes):
        m = moments_update(m, chunk, 1)
    whole = moments_update(moments_init((2,)), x, 1)
    assert_trees_close(m, whole, rtol=1e-10, atol=1e-12)
    n = len(x) + 1e-4
    np.testing.assert_allclose(m.mean.numpy(), x.numpy().sum(0) / n, rtol=1e-10, atol=1e-12)


# ---- statistics ---------------------------------------------------------------------
def test_episode_statistics_against_naive_loop():
    venv = VecEnv(Walk(), 4)
    env = EpisodeStatistics(venv)
    _, outs = _run(env, 30)
    _, raw = _run(venv, 30)
    ret, length = np.zeros(4), np.zeros(4, dtype=np.int64)
    n_done = 0
    for (o, _, r, te, tr, info), (o2, _, r2, *_rest) in zip(outs, raw):
        assert torch.equal(o, o2) and torch.equal(r, r2)
        ret, length = ret + r.numpy(), length + 1
        done = (te | tr).numpy()
        np.testing.assert_allclose(info["episode_return"].numpy(), ret, rtol=1e-6)
        np.testing.assert_array_equal(info["episode_length"].numpy(), length)
        np.testing.assert_array_equal(info["episode_done"].numpy(), done)
        ret[done], length[done] = 0.0, 0
        n_done += int(done.sum())
    assert n_done >= 4
    # per-env statistics: wrapping before or after vectorising is the same
    _, outs2 = _run(VecEnv(EpisodeStatistics(Walk()), 4), 30)
    assert_trees_close([o[5] for o in outs2], [o[5] for o in outs], rtol=0, atol=0)
    _check_vmap(EpisodeStatistics(Walk()))


def test_normalize_observation_against_numpy_and_final_obs():
    venv = VecEnv(Walk(), 4)
    env = NormalizeObservation(venv)
    _obs0, outs = _run(env, 25)
    raw0, raw = _run(venv, 25)
    seen = [raw0.double().numpy()]
    for (o, s, _r, te, tr, info), (ro, *_x, rinfo) in zip(outs, raw):
        seen.append(ro.double().numpy())
        allx = np.concatenate(seen)
        n = len(allx) + 1e-4
        mean = allx.sum(0) / n
        var = ((allx - mean) ** 2).sum(0) / n + (
            1e-4 * mean**2 + 1e-4
        ) / n  # prior N(0, 1), count 1e-4
        np.testing.assert_allclose(s.moments.mean.numpy(), mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s.moments.var.numpy(), var, rtol=1e-9)
        std = np.sqrt(var + 1e-8)
        np.testing.assert_allclose(o.numpy(), (ro.numpy() - mean) / std, rtol=1e-5, atol=1e-5)
        fo = rinfo["final_observation"].double().numpy()
        np.testing.assert_allclose(
            info["final_observation"].numpy(), (fo - mean) / std, rtol=1e-5, atol=1e-5
        )
        done = te | tr
        assert torch.equal(o[~done], info["final_observation"][~done])
    assert not bool((outs[-1][3] | outs[-1][4]).all())
    # frozen: statistics carried over and never updated
    frozen = env.frozen()
    m = outs[-1][1].moments
    o, s = frozen.reset_with_moments(R.key(3), None, m)
    _o2, s2, *_ = frozen.step(R.key(4), s, torch.ones(4, dtype=torch.int64))
    assert_trees_close(s2.moments, m, rtol=0, atol=0)
    _check_vmap(NormalizeObservation(Walk()))


def test_scale_reward_against_numpy_loop():
    gamma, eps = 0.9, 1e-8
    venv = VecEnv(Walk(), 3)
    env = ScaleReward(venv, gamma=gamma, epsilon=eps)
    _, outs = _run(env, 30)
    _, raw = _run(venv, 30)
    g = np.zeros(3)
    rms = RunningMeanStd(shape=())
    for (_o, s, r, te, tr, _i), (_ro, _rs, rr, *_x) in zip(outs, raw):
        rr = rr.double().numpy()
        g = g * gamma + rr
        rms.update(g)
        np.testing.assert_allclose(r.numpy(), rr / np.sqrt(rms.var + eps), rtol=1e-5)
        g[(te | tr).numpy()] = 0.0
        np.testing.assert_allclose(s.discounted_return.numpy(), g, rtol=1e-9)
    _check_vmap(ScaleReward(Walk(), gamma=gamma))


# ---- actions ------------------------------------------------------------------------
def test_clip_and_rescale_action():
    env = ClipAction(Line())
    _, s = env.reset(R.key(0))
    _, _, r, *_ = env.step(R.key(1), s, torch.tensor([5.0]))
    assert float(r) == 2.0
    assert env.action_space(None).shape == (1,) and not bool(
        torch.isfinite(env.action_space(None).high).all()
    )
    env = RescaleAction(Line(), 0.0, 1.0)
    assert env.action_space(None) == Box(0.0, 1.0, (1,))
    for a, want in [(0.0, -2.0), (0.25, -1.0), (1.0, 2.0), (3.0, 2.0)]:
        assert float(env.step(R.key(1), s, torch.tensor([a]))[2]) == want
    venv = RescaleAction(VecEnv(Line(), 2))
    _, vs = venv.reset(R.key(0))
    assert venv.step(R.key(1), vs, torch.tensor([[-1.0], [0.5]]))[2].tolist() == [-2.0, 1.0]
    with pytest.raises(TypeError, match="needs a Box action space"):
        ClipAction(Walk())
    _check_vmap(RescaleAction(Line()), action=torch.tensor([[0.5], [-1.0], [1.0]]))


def test_sticky_actions():
    venv = VecEnv(Line(), 3)
    # p = 1: the previous action (0 at episode start) is always repeated
    env = StickyActions(venv, p=1.0)
    _, outs = _run(env, 5, actions=[torch.full((3, 1), 1.5)] * 5)
    assert all(torch.equal(o[2], torch.zeros(3)) for o in outs)
    # p = 0: the env gets every action, with key split(key)[1]
    env = StickyActions(venv, p=0.0)
    _obs, s = env.reset(R.key(0))
    a = torch.tensor([[1.0], [-1.0], [0.5]])
    out = env.step(R.key(1), s, a)
    ref = venv.step(R.split(R.key(1))[1], s.inner, a)
    assert_trees_close(out[0], ref[0], rtol=0, atol=0)
    # p = 0.5, by hand: repeat where bernoulli(split(key)[0]) else the new action
    env = StickyActions(venv, p=0.5)
    _, s = env.reset(R.key(0))
    prev = torch.zeros(3, 1)
    for t in range(8):
        k = R.fold_in(R.key(5), t)
        a = R.uniform(R.fold_in(R.key(6), t), (3, 1), low=-2.0, high=2.0)
        _, s, r, te, tr, _ = env.step(k, s, a)
        rep = R.bernoulli(R.split(k)[0], 0.5, (3,))
        taken = torch.where(rep[:, None], prev, a)
        assert torch.equal(r, taken[:, 0])
        prev = torch.where((te | tr)[:, None], torch.zeros_like(taken), taken)
    _check_vmap(StickyActions(Line(), 0.5), action=torch.ones(3, 1))


# ---- time ---------------------------------------------------------------------------
def test_time_limit_truncates_and_resets():
    inner = Walk(noisy=False, max_t=100)
    p = inner.default_params().replace(bound=torch.tensor(100.0))
    env = TimeLimit(inner, 3)
    obs, s = env.reset(R.key(0), p)
    ones = torch.tensor(1)
    ts, truncs = [], []
    for t in range(7):
        obs, s, _r, te, tr, info = env.step(R.key(t), s, ones, p)
        ts.append(float(obs[1]))
        truncs.append(bool(tr))
        assert not bool(te)
        if bool(tr):
            assert float(info["final_observation"][1]) == 3.0
            assert obs.tolist() == [0.25, 0.0]
    assert truncs == [False, False, True, False, False, True, False]
    assert ts == [1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 1.0]
    # inner termination before the limit resets the counter
    env2 = TimeLimit(Walk(noisy=False, max_t=100), 5)
    _, s = env2.reset(R.key(0))
    for t in range(3):  # pos 0.25 -> 1.25 -> 2.25 -> 3.25 (terminates at bound 3)
        _, s, _r, te, tr, _ = env2.step(R.key(t), s, ones)
    assert bool(te) and not bool(tr) and int(s.t) == 0
    # vectorised: same as vectorising the wrapped env
    a = [torch.ones(2, dtype=torch.int64)] * 7
    _, outs_a = _run(TimeLimit(VecEnv(inner, 2), 3), 7, actions=a, params=p)
    assert [o[4].tolist() for o in outs_a][2] == [True, True]
    _check_vmap(TimeLimit(Walk(), 2))


# ---- observations -------------------------------------------------------------------
def test_frame_stack_contents():
    env = FrameStack(Walk(noisy=False, max_t=3), 3)
    obs, s = env.reset(R.key(0))
    assert obs.shape == (3, 2) and torch.equal(obs, torch.tensor([[0.25, 0.0]] * 3))
    ones = torch.tensor(1)
    obs, s, *_ = env.step(R.key(1), s, ones)
    assert torch.equal(obs, torch.tensor([[0.25, 0.0], [0.25, 0.0], [1.25, 1.0]]))
    obs, s, *_ = env.step(R.key(2), s, ones)
    obs, s, _r, _te, tr, info = env.step(R.key(3), s, torch.tensor(0))  # t = 3: truncated
    assert bool(tr)
    assert torch.equal(
        info["final_observation"], torch.tensor([[1.25, 1.0], [2.25, 2.0], [1.25, 3.0]])
    )
    assert torch.equal(obs, torch.tensor([[0.25, 0.0]] * 3))
    assert env.observation_space(None).shape == (3, 2)
    venv = FlattenObservation(FrameStack(VecEnv(Walk(), 2), 4))
    obs, s = venv.reset(R.key(0))
    assert obs.shape == (2, 8) and venv.observation_space(None).shape == (8,)
    _, _, _, _, _, info = venv.step(R.key(1), s, torch.ones(2, dtype=torch.int64))
    assert info["final_observation"].shape == (2, 8)
    _check_vmap(FrameStack(Walk(), 2))
    _check_vmap(FlattenObservation(Walk()))


def test_clip_observation_and_transform_reward():
    env = TransformReward(ClipObservation(Walk(noisy=False), -1.0, 1.0), torch.sign)
    obs, s = env.reset(R.key(0))
    obs, s, r, _te, _tr, info = env.step(R.key(1), s, torch.tensor(1))
    assert obs.tolist() == [1.0, 1.0] and float(r) == 1.0
    assert info["final_observation"].tolist() == [1.0, 1.0]
    assert env.observation_space(None) == Box(-1.0, 1.0, (2,))
    _check_vmap(env)


# ---- composition, compile, validation -----------------------------------------------
def _stack(inner):
    return NormalizeObservation(EpisodeStatistics(ScaleReward(FrameStack(TimeLimit(inner, 4), 2))))


def test_composition_nests_state_and_keeps_auto_reset():
    env = _stack(VecEnv(Walk(), 3))
    obs, s = env.reset(R.key(0))
    assert obs.shape == (3, 2, 2)
    inner_state = s.inner.inner.inner.inner.inner  # Norm > EpStats > Scale > Frames > TimeLimit
    assert inner_state.pos.shape == (3,)
    _, outs = _run(env, 12)
    dones = torch.stack([o[3] | o[4] for o in outs])
    lengths = torch.stack([o[5]["episode_length"] for o in outs])
    assert bool((lengths[dones] <= 4).all()) and bool(dones.any())
    assert bool((lengths <= 4).all())
    _check_vmap(_stack(Walk()))


def test_compiled_stack_matches_eager():
    """One compiled step of a deep stack over a VecEnv (fullgraph) equals eager."""
    env = _stack(VecEnv(Walk(noisy=False), 3))
    env = ClipObservation(FlattenObservation(env), -5.0, 5.0)
    cstep = torch.compile(env.step, fullgraph=True, dynamic=False)
    _, s_e = env.reset(R.key(0))
    s_c = s_e
    for t in range(6):
        a = torch.tensor([t % 2, 1, 0])
        out_e = env.step(R.key(t), s_e, a)
        out_c = cstep(R.key(t), s_c, a)
        assert_trees_close(out_c, out_e, rtol=1e-5, atol=1e-6)
        s_e, s_c = out_e[1], out_c[1]


def test_checked_errors():
    env = checked(VecEnv(Walk(), 2))
    _obs, s = env.reset(R.key(0))
    good = torch.zeros(2, dtype=torch.int64)
    env.step(R.key(1), s, good)
    with pytest.raises(ValueError, match=r"action has shape \(3,\), expected \(2,\)"):
        env.step(R.key(1), s, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="integer tensor"):
        env.step(R.key(1), s, torch.zeros(2))
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step(R.key(1), s, torch.tensor([0, 5]))
    with pytest.raises(
        ValueError, match=r"state.*t is torch.float32\[2\], expected torch.int64\[2\]"
    ):
        env.step(R.key(1), s.replace(t=s.t.float()), good)
    with pytest.raises(ValueError, match="params has structure"):
        env.step(R.key(1), s, good, {"bound": torch.tensor(1.0)})
    with pytest.raises(ValueError, match=r"params.*bound is torch.float32\[3\]"):
        env.reset(R.key(0), Walk().default_params().replace(bound=torch.ones(3)))
    with pytest.raises(TypeError, match="funrl key"):
        env.reset(torch.zeros(2))
    cenv = checked(Line())
    _, cs = cenv.reset(R.key(0))
    with pytest.raises(ValueError, match="outside Box"):
        cenv.step(R.key(1), cs, torch.tensor([2.5]))
    with pytest.raises(ValueError, match="NaN"):
        checked(Line(), box_bounds=False).step(R.key(1), cs, torch.tensor([float("nan")]))
    checked(Line(), box_bounds=False).step(R.key(1), cs, torch.tensor([2.5]))
    # skipped under vmap (values unreadable) but the result is unchanged
    _check_vmap(checked(Walk()))


def test_classic_control_wrapped_if_available():
    cc = pytest.importorskip("funrl.envs.classic_control")
    env = EpisodeStatistics(RescaleAction(VecEnv(cc.Pendulum(), 2)))
    obs, s = env.reset(R.key(0))
    assert obs.shape == (2, 3)
    total = torch.zeros(2)
    for t in range(200):  # Pendulum truncates at 200 steps
        obs, s, r, te, _tr, info = env.step(R.key(t), s, torch.full((2, 1), 1.0))
        total = total + r
    assert info["episode_done"].tolist() == [True, True] and not bool(te.any())
    assert info["episode_length"].tolist() == [200, 200]
    torch.testing.assert_close(info["episode_return"], total)
    env = NormalizeObservation(FrameStack(VecEnv(cc.CartPole(), 2), 4))
    obs, s = env.reset(R.key(0))
    assert obs.shape == (2, 4, 4)
