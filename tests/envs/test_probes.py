"""Probe envs: their known rewards, values and optimal policies, and the transforms."""

from __future__ import annotations

import os

import pytest
import torch
from torch.func import vmap

import funrl.random as R
from funrl import tree
from funrl.envs.probes import (
    ActionReward,
    ConstantReward,
    ContinuousActionReward,
    ObservationReward,
    ProbeParams,
    TwoStepDiscount,
)
from funrl.envs.spaces import Box, Discrete
from funrl.testing import check_transforms

N = 4000


def batch_reset(env, n: int = N, seed: int = 0):
    return vmap(env.reset, in_dims=(0, None))(R.split(R.key(seed), n), env.default_params())


def batch_step(env, state, action, seed: int = 1):
    n = action.shape[0]
    return vmap(env.step, in_dims=(0, 0, 0, None))(
        R.split(R.key(seed), n), state, action, env.default_params()
    )


def zeros_action(n: int = N) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.int64)


def test_constant_reward() -> None:
    env = ConstantReward()
    obs, state = batch_reset(env)
    assert obs.shape == (N, 1) and obs.dtype == torch.float32
    assert torch.equal(obs, torch.zeros(N, 1))
    _obs2, _, reward, term, trunc, info = batch_step(env, state, zeros_action())
    assert torch.equal(reward, torch.ones(N))  # V = 1
    assert term.all() and not trunc.any()
    assert torch.equal(info["final_observation"], torch.zeros(N, 1))
    assert env.action_space(env.default_params()) == Discrete(1)


def test_observation_reward() -> None:
    env = ObservationReward()
    obs, state = batch_reset(env)
    assert set(obs.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(obs.mean())) < 4 / N**0.5  # fair coin: 4 standard deviations
    _, _, reward, term, _, info = batch_step(env, state, zeros_action())
    assert torch.equal(reward, obs[:, 0])  # V(obs) = obs
    assert torch.equal(info["final_observation"], obs)
    assert term.all()


def test_action_reward_optimal_policy() -> None:
    env = ActionReward()
    obs, state = batch_reset(env)
    best = (obs[:, 0] > 0).long()
    r_best = batch_step(env, state, best)[2]
    r_worst = batch_step(env, state, 1 - best)[2]
    r_rand = batch_step(env, state, R.randint(R.key(5), 0, 2, (N,)))[2]
    assert torch.equal(r_best, torch.ones(N))  # V* = 1
    assert torch.equal(r_worst, -torch.ones(N))
    assert abs(float(r_rand.mean())) < 4 / N**0.5  # uniform policy: V = 0
    # hand-computed: obs +1 wants action 1, obs -1 wants action 0
    _, s = ActionReward().reset(R.key(0))
    want = 1 if float(s.value) > 0 else 0
    assert float(env.step(R.key(1), s, torch.tensor(want))[2]) == 1.0
    assert float(env.step(R.key(1), s, torch.tensor(1 - want))[2]) == -1.0
    assert env.num_actions == 2


def test_continuous_action_reward() -> None:
    env = ContinuousActionReward()
    obs, state = batch_reset(env)
    assert obs.min() >= -1.0 and obs.max() < 1.0 and abs(float(obs.mean())) < 0.05
    best = 0.5 * obs
    r_best = batch_step(env, state, best)[2]
    assert torch.equal(r_best, torch.zeros(N))  # V* = 0 at a* = obs / 2
    a = R.uniform(R.key(3), (N, 1), low=-1.0, high=1.0)
    r = batch_step(env, state, a)[2]
    torch.testing.assert_close(r, -((a - 0.5 * obs) ** 2)[:, 0])
    assert (r <= 0).all() and (r < 0).any()
    # hand-computed: obs 0.5 -> a* = 0.25; a = 1 gives -(0.75)^2
    _, s = env.reset(R.key(0))
    s = s.replace(value=torch.tensor(0.5))
    assert float(env.step(R.key(1), s, torch.tensor([1.0]))[2]) == -0.5625
    space = env.action_space(env.default_params())
    assert isinstance(space, Box) and space.shape == (1,)


def test_two_step_discount() -> None:
    env = TwoStepDiscount()
    gamma = 0.9
    obs0, s = env.reset(R.key(0))
    obs1, s, r1, te1, tr1, _info1 = env.step(R.key(1), s, torch.tensor(0))
    obs2, s, r2, te2, tr2, info2 = env.step(R.key(2), s, torch.tensor(0))
    assert obs0.tolist() == [0.0] and obs1.tolist() == [1.0]
    assert (float(r1), bool(te1), bool(tr1)) == (0.0, False, False)
    assert (float(r2), bool(te2), bool(tr2)) == (1.0, True, False)
    assert info2["final_observation"].tolist() == [1.0]
    assert obs2.tolist() == [0.0] and int(s.time) == 0  # auto-reset
    # the discounted return from the first observation is gamma, from the second 1
    assert float(r1) + gamma * float(r2) == pytest.approx(gamma)
    # batched: the same, for every member
    _obs, state = batch_reset(env, 8)
    out1 = batch_step(env, state, zeros_action(8))
    out2 = batch_step(env, out1[1], zeros_action(8))
    assert torch.equal(out1[2], torch.zeros(8)) and torch.equal(out2[2], torch.ones(8))
    assert not out1[3].any() and out2[3].all()


@pytest.mark.parametrize(
    "env", [ConstantReward(), ObservationReward(), ActionReward(), TwoStepDiscount()]
)
def test_discrete_probes_reject_bad_actions(env) -> None:
    _, s = env.reset(R.key(0))
    with pytest.raises(TypeError, match="integer"):
        env.step(R.key(1), s, torch.tensor(0.0))
    with pytest.raises(ValueError, match="0-d"):
        env.step(R.key(1), s, torch.tensor([0]))


def test_continuous_probe_rejects_bad_actions() -> None:
    env = ContinuousActionReward()
    _, s = env.reset(R.key(0))
    with pytest.raises(TypeError, match="floating"):
        env.step(R.key(1), s, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"shape \[1\]"):
        env.step(R.key(1), s, torch.tensor(0.0))


def test_observations_in_space() -> None:
    for env in [ConstantReward(), ObservationReward(), ActionReward(), ContinuousActionReward()]:
        obs, state = batch_reset(env, 256)
        space = env.observation_space(env.default_params())
        assert bool(space.contains(obs).all()), env.name
    env = TwoStepDiscount()
    obs, state = batch_reset(env, 4)
    out = batch_step(env, state, zeros_action(4))
    assert bool(env.observation_space(ProbeParams()).contains(out[0]).all())


def test_probe_params_is_an_empty_pytree() -> None:
    assert tree.leaves(ConstantReward().default_params()) == []


PROBES = [ConstantReward(), ObservationReward(), ActionReward(), TwoStepDiscount()]
FULL_COMPILE = bool(os.environ.get("FUNRL_FULL_COMPILE"))


def _all_probes(key: torch.Tensor, a_disc: torch.Tensor, a_cont: torch.Tensor) -> list:
    """reset + step of every probe."""
    cont = ContinuousActionReward()
    keys = R.split(key, 2 * len(PROBES) + 2)
    out = []
    for i, env in enumerate([*PROBES, cont]):
        obs, state = env.reset(keys[2 * i])
        action = a_cont if env is cont else a_disc
        out.append((obs, env.step(keys[2 * i + 1], state, action)))
    return out


def test_eager_matches_vmap() -> None:
    keys = R.split(R.key(7), 3)
    check_transforms(_all_probes, keys, zeros_action(3), R.uniform(R.key(8), (3, 1)), compile=False)


def test_step_env_compiles() -> None:
    """Every probe's own ``step_env`` (no key hashing: compiling Threefry is the slow part)."""
    envs = [*PROBES, ContinuousActionReward()]
    key, params = R.key(0), ProbeParams()

    def fn(states: list, a_disc: torch.Tensor, a_cont: torch.Tensor) -> list:
        return [
            env.step_env(key, s, a_cont if env.discrete is False else a_disc, params)
            for env, s in zip(envs, states)
        ]

    states = [batch_reset(env, 3, seed=9)[1] for env in envs]
    check_transforms(fn, states, zeros_action(3), R.uniform(R.key(8), (3, 1)), members=1)


@pytest.mark.skipif(not FULL_COMPILE, reason="set FUNRL_FULL_COMPILE=1 (slow)")
def test_full_battery() -> None:
    keys = R.split(R.key(7), 3)
    check_transforms(_all_probes, keys, zeros_action(3), R.uniform(R.key(8), (3, 1)), members=1)
