"""VecEnv: agreement with a loop over members, batched params, checks, compile."""

from __future__ import annotations

import pytest
import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment
from funrl.envs.spaces import Box, Discrete
from funrl.envs.vector import VecEnv, batch_shape, is_tracing
from funrl.testing import assert_trees_close, check_transforms


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
    """1-D noisy random walk: action 0/1 moves -/+ step_size; ends at |pos| >= bound or t = max_t."""

    name = "Walk"

    def __init__(self, noisy: bool = True) -> None:
        self.noisy = noisy  # noisy=False: no draws at all (cheap to compile)

    def default_params(self) -> WalkParams:
        return WalkParams(torch.tensor(1.0), torch.tensor(3.0), torch.tensor(6))

    def _obs(self, s: WalkState) -> torch.Tensor:
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


def _rollout(env, key, params, actions):
    obs, state = env.reset(key, params)
    outs = [obs]
    for t, a in enumerate(actions):
        obs, state, r, te, tr, info = env.step(R.fold_in(key, t + 1), state, a, params)
        outs.append((obs, r, te, tr, info))
    return outs, state


def test_reset_step_equal_member_loop():
    env, n = Walk(), 5
    venv = VecEnv(env, n)
    key = R.key(0)
    p = env.default_params()
    obs, state = venv.reset(key, p)
    assert obs.shape == (n, 2) and state.pos.shape == (n,)
    keys = R.split(key, n)
    for i in range(n):
        o_i, s_i = env.reset(keys[i], p)
        assert_trees_close((o_i, s_i), (obs[i], tree.index(state, i)), rtol=0, atol=0)
    acts = R.randint(R.key(1), 0, 2, (12, n))
    states_i = [tree.index(state, i) for i in range(n)]
    for t in range(12):
        k = R.fold_in(key, t)
        out = venv.step(k, state, acts[t], p)
        ks = R.split(k, n)
        for i in range(n):
            ref = env.step(ks[i], states_i[i], acts[t, i], p)
            got = tree.map(lambda x, i=i: x[i], (out[0], out[1], out[2], out[3], out[4], out[5]))
            assert_trees_close(got, ref, rtol=0, atol=0)
            states_i[i] = ref[1]
        state = out[1]
    # auto-reset happened in some members (max_t = 6 < 12 steps)
    assert bool((state.t < 12).all())


def test_batched_params_domain_randomisation():
    env, n = Walk(), 3
    venv = VecEnv(env, n, batched_params=True)
    p = venv.default_params()
    assert p.step_size.shape == (n,)
    p = p.replace(step_size=torch.tensor([0.0, 1.0, 2.0]))
    _obs, s = venv.reset(R.key(0), p)
    obs2, s2, *_ = venv.step(R.key(1), s, torch.ones(n, dtype=torch.int64), p)
    for i in range(n):
        ref = env.step(R.split(R.key(1), n)[i], tree.index(s, i), torch.tensor(1), tree.index(p, i))
        assert torch.equal(ref[0], obs2[i])
    # larger step size -> larger move (noise is 0.1 * N(0,1), small against the gaps)
    d = s2.pos - s.pos
    assert float(d[0]) < float(d[1]) < float(d[2])


def test_spaces_and_batch_shape():
    venv = VecEnv(Walk(), 4)
    assert venv.num_envs == 4 and venv.batch_shape == (4,) and batch_shape(Walk()) == ()
    assert venv.action_space(venv.default_params()) == Discrete(2)
    assert venv.observation_space(None).shape == (2,)
    assert venv.num_actions == 2
    nested = VecEnv(VecEnv(Walk(), 2), 3)
    obs, _ = nested.reset(R.key(0))
    assert nested.batch_shape == (3, 2) and obs.shape == (3, 2, 2)


def test_bad_input_errors():
    venv = VecEnv(Walk(), 4)
    _obs, s = venv.reset(R.key(0))
    good = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"action.*leading batch dim of num_envs=4"):
        venv.step(R.key(1), s, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"state.*pos.*num_envs=4"):
        venv.step(R.key(1), tree.index(s, slice(0, 2)), good)
    with pytest.raises(ValueError, match="outside the action space"):
        venv.step(R.key(1), s, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(TypeError, match="integer tensor"):
        venv.step(R.key(1), s, torch.zeros(4))
    with pytest.raises(ValueError, match="params have structure"):
        venv.step(R.key(1), s, good, {"step_size": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="key must be one key"):
        venv.reset(R.split(R.key(0), 2))
    with pytest.raises(TypeError, match="funrl key"):
        venv.reset(torch.zeros(2))
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        VecEnv(Walk(), 0)
    with pytest.raises(TypeError, match="Environment"):
        VecEnv("CartPole-v1", 2)  # type: ignore[arg-type]
    bvenv = VecEnv(Walk(), 4, batched_params=True)
    with pytest.raises(ValueError, match=r"params.*step_size.*num_envs=4"):
        bvenv.reset(R.key(0), Walk().default_params())


def test_is_tracing():
    x = torch.ones(3)
    assert not is_tracing(x)
    flags = torch.func.vmap(lambda v: v * 0 + float(is_tracing(v)))(x)
    assert flags.tolist() == [1.0, 1.0, 1.0]


def test_transforms_population_vmap():
    """A population of VecEnvs (outer vmap) stepped from states where some members are done."""
    venv = VecEnv(Walk(), 3)
    p = venv.default_params()
    pop = 2
    _, s = torch.func.vmap(lambda k: venv.reset(k, p))(R.split(R.key(3), pop))
    s = s.replace(t=torch.tensor([[5, 0, 5], [0, 5, 0]]))  # t=5: the next step truncates
    acts = torch.tensor([[1, 0, 1], [0, 1, 1]])

    def step(key, state, action):
        return venv.step(key, state, action, p)

    # compile=False: compiling Threefry-heavy graphs costs minutes of CPU on a loaded
    # machine; the compiled path is covered by test_compiled_step_matches_eager.
    out = check_transforms(step, R.split(R.key(4), pop), s, acts, compile=False)
    obs, s2, _r, te, tr, info = out
    assert obs.shape == (pop, 3, 2) and info["final_observation"].shape == (pop, 3, 2)
    assert torch.equal(tr | te, torch.tensor([[True, False, True], [False, True, False]]))
    assert torch.equal(s2.t, torch.tensor([[0, 1, 0], [1, 0, 1]]))
    assert torch.equal(info["final_observation"][..., 1], torch.tensor([[6.0, 1, 6], [1, 6, 1]]))
    check_transforms(lambda k: venv.reset(k, p), R.split(R.key(5), pop), compile=False)


def test_compiled_step_matches_eager():
    """One compiled VecEnv step (fullgraph), called over auto-resets, equals eager."""
    venv = VecEnv(Walk(noisy=False), 4)
    p = venv.default_params()
    cstep = torch.compile(venv.step, fullgraph=True, dynamic=False)
    _, s_e = venv.reset(R.key(0), p)
    s_c = s_e
    acts = R.randint(R.key(1), 0, 2, (9, 4))
    for t in range(9):
        out_e = venv.step(R.fold_in(R.key(2), t), s_e, acts[t], p)
        out_c = cstep(R.fold_in(R.key(2), t), s_c, acts[t], p)
        assert_trees_close(out_c, out_e, rtol=0, atol=0)
        s_e, s_c = out_e[1], out_c[1]
    assert bool((s_e.t < 6).all())


def test_cartpole_vec_if_available():
    cc = pytest.importorskip("funrl.envs.classic_control")
    env = cc.CartPole()
    venv = VecEnv(env, 6)
    obs, s = venv.reset(R.key(0))
    assert obs.shape == (6, 4) and obs.dtype == torch.float32
    done_seen = torch.zeros(6, dtype=torch.bool)
    for t in range(60):
        a = R.randint(R.fold_in(R.key(1), t), 0, 2, (6,))
        obs, s, _r, te, tr, info = venv.step(R.fold_in(R.key(2), t), s, a)
        done = te | tr
        done_seen |= done
        # where not done obs == final_observation; where done they differ
        assert torch.equal(obs[~done], info["final_observation"][~done])
    assert bool(done_seen.any())


def _full_step(venv, key, state, action, params):
    """VecEnv.step without its eager fast path: the vmapped auto-resetting member step."""
    keys = R.split(key, venv.num_envs)
    pdim = 0 if venv.batched_params else None
    return torch.func.vmap(venv.env.step, in_dims=(0, 0, 0, pdim))(keys, state, action, params)


@pytest.mark.parametrize("batched", [False, True])
def test_eager_step_resets_only_when_done_and_is_bit_identical(batched, monkeypatch):
    """Eagerly the reset is computed only on steps where a member is done; every output
    equals the full vmapped step's bit for bit, episode ends included."""
    venv = VecEnv(Walk(), 5, batched_params=batched)
    params = venv.default_params()
    resets = []
    reset_env = Walk.reset_env
    monkeypatch.setattr(Walk, "reset_env", lambda *a: resets.append(1) or reset_env(*a))
    _, state = venv.reset(R.key(0), params)
    actions = R.randint(R.key(1), 0, 2, (40, 5))
    ends = 0
    for t in range(40):
        key = R.fold_in(R.key(2), t)
        resets.clear()
        got = venv.step(key, state, actions[t], params)
        did_reset = bool(resets)
        assert tree.all_equal(got, _full_step(venv, key, state, actions[t], params))
        done = bool((got[3] | got[4]).any())
        ends += done
        # the first step also resets (it checks the shortcut's dtypes); then only when done
        assert did_reset == (done or t == 0)
        state = got[1]
    assert list(venv._lazy_reset_exact.values()) == [True] and 5 < ends < 40
    assert got[0] is not got[5]["final_observation"]  # obs is a tensor of its own


class WidenedWalk(Walk):
    """reset_env's position is float64 while step_env's is float32: the auto-reset's where
    promotes to float64, so skipping it would return float32."""

    def reset_env(self, key, params):
        obs, s = super().reset_env(key, params)
        return obs, WalkState(s.pos.to(torch.float64), s.t)

    def step_env(self, key, state, action, params):
        obs, s, r, te, tr, info = super().step_env(key, state, action, params)
        return obs, WalkState(s.pos.to(torch.float32), s.t), r, te, tr, info


def test_eager_step_keeps_the_full_path_where_skipping_would_change_dtypes():
    venv = VecEnv(WidenedWalk(), 3)
    _, state = venv.reset(R.key(0))
    for t in range(8):
        key, a = R.fold_in(R.key(2), t), torch.ones(3, dtype=torch.int64)
        got = venv.step(key, state, a)
        assert tree.all_equal(got, _full_step(venv, key, state, a, venv.default_params()))
        assert got[1].pos.dtype == torch.float64
        state = got[1]
    assert list(venv._lazy_reset_exact.values()) == [False]


def test_vmapped_and_compiled_steps_take_the_full_path():
    venv = VecEnv(Walk(noisy=False), 2)
    _, state = venv.reset(R.key(0))
    a, p = torch.zeros(2, dtype=torch.int64), venv.default_params()
    assert venv._lazy_reset_chain(R.key(0), state, a, p) is not None
    seen = []
    torch.func.vmap(lambda k, x: seen.append(venv._lazy_reset_chain(k, state, x, p)) or x)(
        R.split(R.key(0), 2), torch.zeros(2, 2, dtype=torch.int64)
    )
    traced = torch.compile(lambda k, x: venv._lazy_reset_chain(k, state, x, p), backend="eager")
    assert seen == [None] and traced(R.key(0), a) is None


@pytest.mark.parametrize("batched", ["state", "params"])
def test_outer_vmap_over_state_or_params_alone(batched):
    """An outer vmap over only the state (or only the params: domain randomisation) while
    key and action are shared: the step cannot branch on ``done`` there."""
    venv = VecEnv(Walk(), 3)
    p = venv.default_params()
    _, state = venv.reset(R.key(0))
    a = torch.ones(3, dtype=torch.int64)
    if batched == "state":
        states = tree.stack([state, venv.reset(R.key(1))[1]])
        got = torch.func.vmap(venv.step, in_dims=(None, 0, None, None))(R.key(2), states, a, p)
        want = [venv.step(R.key(2), tree.index(states, i), a, p) for i in range(2)]
    else:
        ps = tree.stack([p, p.replace(bound=torch.tensor(0.5))])
        got = torch.func.vmap(venv.step, in_dims=(None, None, None, 0))(R.key(2), state, a, ps)
        want = [venv.step(R.key(2), state, a, tree.index(ps, i)) for i in range(2)]
    assert tree.all_equal(got, tree.stack(want))


def test_eager_step_through_action_only_wrappers():
    """RescaleAction / ClipAction only map the action: the fast path steps through them,
    bit-identical to the wrapped env's vmapped step (Pendulum truncates at step 200)."""
    from funrl.envs.classic_control import Pendulum
    from funrl.envs.wrappers import ClipAction, RescaleAction

    venv = VecEnv(ClipAction(RescaleAction(Pendulum(), -1.0, 1.0)), 3)
    _, state = venv.reset(R.key(0))
    p = venv.default_params()
    for t in range(205):
        key, a = R.fold_in(R.key(2), t), R.uniform(R.fold_in(R.key(3), t), (3, 1), low=-2, high=2)
        assert venv._lazy_reset_chain(key, state, a, p) is not None
        got = venv.step(key, state, a, p)
        if t in (0, 198, 199, 200):
            assert tree.all_equal(got, _full_step(venv, key, state, a, p))
        state = got[1]
