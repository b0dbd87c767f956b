"""The provided parts of the env contract: auto-reset, flags, check_action, and spaces."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import vmap

import funrl.random as R
from funrl import tree
from funrl.envs.base import Environment
from funrl.envs.spaces import Box, Discrete
from funrl.testing import check_transforms


@tree.struct
class WalkParams:
    goal: torch.Tensor  # terminate when pos >= goal
    max_steps: torch.Tensor  # truncate when time >= max_steps


@tree.struct
class WalkState:
    pos: torch.Tensor
    time: torch.Tensor


class Walk(Environment):
    """Toy env: ``pos`` starts in ``[0, 1)`` (a cheap function of the key, no hashing, so
    compiling it stays fast); action 1 adds 1, action 0 adds 0."""

    name = "Walk"

    def default_params(self) -> WalkParams:
        return WalkParams(goal=torch.tensor(3.0), max_steps=torch.tensor(4))

    def reset_env(self, key, params):
        pos = torch.remainder(key[1], 997).to(torch.float32) / 997.0
        state = WalkState(pos=pos, time=torch.zeros((), dtype=torch.int64, device=key.device))
        return state.pos.reshape(1), state

    def step_env(self, key, state, action, params):
        new = WalkState(pos=state.pos + action.to(torch.float32), time=state.time + 1)
        terminated = new.pos >= params.goal
        truncated = new.time >= params.max_steps
        return new.pos.reshape(1), new, new.pos * 10, terminated, truncated, {"pos": new.pos}

    def observation_space(self, params):
        return Box(0.0, math.inf, (1,))

    def action_space(self, params):
        return Discrete(2)


class ContinuousWalk(Walk):
    def action_space(self, params):
        return Box(-1.0, 1.0, (2,))


def walk(env, state, actions, seed=0):
    out = []
    for t, a in enumerate(actions):
        o = env.step(R.fold_in(R.key(seed), t), state, torch.tensor(a))
        state = o[1]
        out.append(o)
    return out


def test_no_reset_while_running() -> None:
    env = Walk()
    obs, state = env.reset(R.key(0))
    obs1, state1, r, te, tr, info = env.step(R.key(1), state, torch.tensor(1))
    assert not te and not tr
    assert torch.equal(obs1, info["final_observation"]) and torch.equal(obs1, obs + 1)
    assert int(state1.time) == 1 and float(r) == pytest.approx(10 * float(obs1[0]))
    assert set(info) == {"pos", "final_observation"}  # the env's info is kept


def test_auto_reset_on_termination_keeps_final_observation() -> None:
    env = Walk()
    _, state = env.reset(R.key(0))
    steps = walk(env, state, [1, 1, 1])
    obs, st, r, te, tr, info = steps[-1]
    assert bool(te) and not bool(tr)
    pos_before = float(steps[1][1].pos)
    assert float(info["final_observation"][0]) == pytest.approx(pos_before + 1)
    assert float(r) == pytest.approx(10 * (pos_before + 1))  # reward of the real transition
    # the returned obs/state are a fresh episode, drawn from the second half of split(key)
    key = R.fold_in(R.key(0), 2)
    obs_re, state_re = env.reset_env(R.split(key)[1], env.default_params())
    assert torch.equal(obs, obs_re) and tree.all_equal(st, state_re)
    assert int(st.time) == 0 and 0.0 <= float(obs[0]) < 1.0


def test_truncation_is_separate_from_termination() -> None:
    env = Walk()
    _, state = env.reset(R.key(0))
    flags = [(bool(o[3]), bool(o[4])) for o in walk(env, state, [0, 0, 0, 0])]
    assert flags == [(False, False)] * 3 + [(False, True)]  # time limit only: not terminated
    # both at once: the goal is reached on the last allowed step
    flags = [(bool(o[3]), bool(o[4])) for o in walk(env, state, [0, 1, 1, 1])]
    assert flags == [(False, False)] * 3 + [(True, True)]


def test_vmapped_step_resets_only_finished_members() -> None:
    env = Walk()
    params = env.default_params()
    keys = R.split(R.key(3), 4)
    _, state = vmap(env.reset, in_dims=(0, None))(keys, params)
    state = state.replace(pos=torch.tensor([0.5, 2.5, 2.5, 0.5]), time=torch.tensor([0, 0, 3, 3]))
    action = torch.tensor([1, 1, 0, 0])
    obs, st, _r, te, tr, info = vmap(env.step, in_dims=(0, 0, 0, None))(keys, state, action, params)
    assert te.tolist() == [False, True, False, False]
    assert tr.tolist() == [False, False, True, True]
    assert info["final_observation"][:, 0].tolist() == [1.5, 3.5, 2.5, 0.5]
    assert st.time.tolist() == [1, 0, 0, 0]  # members 1-3 were reset
    assert obs[0, 0] == 1.5 and bool((obs[1:, 0] < 1.0).all())
    for i in range(4):  # each member as if alone
        single = env.step(keys[i], tree.index(state, i), action[i], params)
        torch.testing.assert_close(single[0], obs[i])


class KeyedWalk(Walk):
    """Walk whose step reports the key it was given."""

    def step_env(self, key, state, action, params):
        obs, new, r, te, tr, info = super().step_env(key, state, action, params)
        return obs, new, r, te, tr, {**info, "key": key}


def test_step_env_and_reset_get_the_two_halves_of_split() -> None:
    env = KeyedWalk()
    _, state = env.reset(R.key(0))
    key = R.key(9)
    info = env.step(key, state, torch.tensor(1))[5]
    assert torch.equal(info["key"], R.split(key)[0])  # the reset key: see test above
    keys = R.split(R.key(1), 3)  # and per member under vmap
    _, states = vmap(env.reset, in_dims=(0, None))(keys, env.default_params())
    infos = vmap(env.step, in_dims=(0, 0, None))(keys, states, torch.tensor(0))[5]
    assert torch.equal(infos["key"], R.split(keys)[:, 0])


def test_step_and_reset_pass_the_battery() -> None:
    env = Walk()
    keys = R.split(R.key(4), 3)
    _, state = vmap(env.reset, in_dims=(0, None))(keys, env.default_params())
    state = state.replace(pos=torch.tensor([0.5, 2.5, 2.5]), time=torch.tensor([0, 0, 3]))
    # members=0: compile only vmap(step); the key split (Threefry) makes each compile ~10 s
    out = check_transforms(env.step, keys, state, torch.tensor([1, 1, 0]), members=0)
    assert out[3].tolist() == [False, True, False] and out[4].tolist() == [False, False, True]


def test_bad_key_is_rejected() -> None:
    env = Walk()
    with pytest.raises(TypeError, match="key"):
        env.reset(torch.zeros(2))
    _, state = env.reset(R.key(0))
    with pytest.raises(TypeError, match="key"):
        env.step(3, state, torch.tensor(1))


def test_check_action_discrete() -> None:
    env = Walk()
    env.check_action(torch.tensor(1))
    env.check_action(torch.tensor([0, 1, 1]))  # a batch
    with pytest.raises(TypeError, match="integer"):
        env.check_action(torch.tensor(1.0))
    with pytest.raises(TypeError, match="integer"):
        env.check_action(torch.tensor(True))
    with pytest.raises(ValueError, match="outside"):
        env.check_action(torch.tensor(2))
    with pytest.raises(ValueError, match="outside"):
        env.check_action(torch.tensor([0, -1]))
    assert env.num_actions == 2


def test_check_action_box() -> None:
    env = ContinuousWalk()
    env.check_action(torch.zeros(2))
    env.check_action(torch.zeros(5, 2))
    with pytest.raises(TypeError, match="float"):
        env.check_action(torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="shape"):
        env.check_action(torch.zeros(3))
    with pytest.raises(TypeError, match="continuous"):
        _ = env.num_actions


def test_discrete_space() -> None:
    space = Discrete(3)
    draws = space.sample(R.split(R.key(0), 3000))
    assert draws.dtype == torch.int64 and draws.shape == (3000,)
    assert set(draws.unique().tolist()) == {0, 1, 2}
    counts = torch.bincount(draws, minlength=3).double()
    assert float((counts / 3000 - 1 / 3).abs().max()) < 0.04
    assert bool(space.contains(draws).all())
    assert space.contains(torch.tensor([-1, 0, 2, 3])).tolist() == [False, True, True, False]
    assert not bool(space.contains(torch.tensor(1.0)))
    shifted = Discrete(2, start=5)
    assert set(shifted.sample(R.split(R.key(1), 200)).unique().tolist()) == {5, 6}
    assert shifted.contains(torch.tensor([4, 5, 6, 7])).tolist() == [False, True, True, False]
    assert space == Discrete(3) and space != Discrete(4) and repr(shifted) == "Discrete(2, start=5)"
    with pytest.raises(ValueError, match="positive"):
        Discrete(0)


def test_box_space_bounded() -> None:
    box = Box(low=[-1.0, 0.0], high=[1.0, 10.0])
    assert box.shape == (2,) and box.dtype == torch.float32
    x = box.sample(R.split(R.key(0), 5000))
    assert x.shape == (5000, 2)
    assert bool(box.contains(x).all())
    assert abs(float(x[:, 0].mean())) < 0.05 and abs(float(x[:, 1].mean()) - 5) < 0.2
    assert box.contains(torch.tensor([[0.0, 5.0], [1.5, 5.0], [0.0, -0.1]])).tolist() == [
        True,
        False,
        False,
    ]
    assert not bool(box.contains(torch.zeros(3)))  # wrong shape
    assert torch.equal(box.sample(R.key(1)), box.sample(R.key(1)))  # keyed, deterministic
    with pytest.raises(ValueError, match="low must be <= high"):
        Box(1.0, 0.0, (1,))


def test_box_space_unbounded_and_half_bounded() -> None:
    box = Box(low=[-math.inf, 0.0, -math.inf], high=[math.inf, math.inf, 2.0])
    x = box.sample(R.split(R.key(2), 5000))
    assert bool(torch.isfinite(x).all())
    assert abs(float(x[:, 0].mean())) < 0.1 and abs(float(x[:, 0].std()) - 1) < 0.05  # normal
    assert float(x[:, 1].min()) >= 0.0 and abs(float(x[:, 1].mean()) - 1) < 0.1  # 0 + Exp(1)
    assert float(x[:, 2].max()) <= 2.0 and abs(float(x[:, 2].mean()) - 1) < 0.1  # 2 - Exp(1)
    assert bool(box.contains(x).all())
