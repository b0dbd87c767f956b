"""Exported off-policy policies (``funrl.export.export_policy``) act as ``algo.act`` does.

DQN (greedy Q), SAC (the tanh-Gaussian's mode; and discrete SAC's most likely action),
TD3 and DDPG (the deterministic actor), each trained for a few updates so that learning has
moved the weights off their initial values.  The artifacts are loaded with
:func:`funrl.export.load_policy` here and, all together, in an interpreter where funrl
cannot be imported, and fed a batch of observations of another size than the traced one;
the actions are bit-identical to ``algo.act``'s mapped into the env's action bounds
(:func:`funrl.algos.common.env_action`: continuous policies act in [-1, 1]).
"""

from __future__ import annotations

import warnings

import pytest
import torch

import funrl.random as R
from funrl import export, tree
from funrl.algos import ddpg, dqn, sac, td3
from funrl.algos.common import env_action

from .test_export import _run_clean

_OFF = dict(num_envs=2, batch_size=16, learning_starts=16, buffer_size=64, hidden=(32,))
# name: (module, Config, updates); learning starts after 8 updates
CASES = {
    "dqn": (dqn, dqn.Config(**_OFF, train_freq=1), 12),
    "sac": (sac, sac.Config(env="Pendulum-v1", **_OFF), 12),
    "sac-discrete": (sac, sac.Config(env="CartPole-v1", discrete=True, **_OFF), 12),
    "td3": (td3, td3.Config(env="Pendulum-v1", **_OFF), 12),
    "ddpg": (ddpg, ddpg.Config(env="Pendulum-v1", **_OFF), 12),
}


def _trained(name):
    mod, config, updates = CASES[name]
    algo = mod.make(config)
    hp = algo.hparams_cls.create()
    start = algo.init(R.key(5), hp)
    state = start
    for _ in range(updates):
        state, _ = algo.update(state, hp)
    moved = algo.act_params(state)
    # learning happened: the exported weights are not the initial ones
    assert not tree.allclose(moved, tree.map(torch.clone, algo.act_params(algo.init(R.key(5), hp))))
    if name == "sac-discrete":
        # after a few steps its tiny output layer still picks action 0 everywhere; spread
        # the logits so that the greedy actions depend on the observation
        actor = dict(state.params["actor"])
        actor["2.weight"] = actor["2.weight"] + R.normal(R.key(6), actor["2.weight"].shape)
        state = state.replace(params={**state.params, "actor": actor})
    return algo, state


def _observations(algo, n=33):
    """``n`` reset observations plus wide noise (so that the greedy actions vary)."""
    stack = algo.env_stack
    obs, _ = torch.func.vmap(lambda k: stack.eval_env.reset(k, stack.env_params))(
        R.split(R.key(1), n)
    )
    return obs + 5.0 * R.normal(R.key(2), obs.shape)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{name: (algo, state, ExportedPolicy, obs)}`` for every case."""
    out = {}
    root = tmp_path_factory.mktemp("offpolicy_export")
    for name in CASES:
        algo, state = _trained(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no silent fallback to TorchScript
            art = export.export_policy(algo, state, root / f"{name}.pt2")
        out[name] = (algo, state, art, _observations(algo))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_policy_acts_like_algo_act(exported, name):
    algo, state, art, obs = exported[name]
    assert art.format == "torch.export" and art.fallback_reason is None
    want = env_action(algo.env_stack, algo.act(algo.act_params(state), obs))
    got = export.load_policy(art.path)(obs)
    assert got.dtype == want.dtype and got.shape == want.shape == (33, *art.meta["action_shape"])
    if want.dtype == torch.int64:  # greedy discrete actions
        assert torch.equal(got, want)
        assert art.meta["action_dtype"] == "torch.int64"
        assert len(set(want.tolist())) > 1  # not a constant policy: the check means something
    else:
        # the same aten ops on the same weights: bit-identical (measured), not just close
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert want.std() > 0  # not a constant policy
    assert art.meta["algo"] == algo.name and art.meta["obs_shape"] == list(obs.shape[1:])


def test_artifacts_run_without_funrl(exported, tmp_path):
    jobs = [("torch.export", art.path, obs) for _, _, art, obs in exported.values()]
    got = _run_clean(tmp_path, jobs)  # one interpreter that cannot import funrl
    for (algo, state, _, obs), actions in zip(exported.values(), got):
        want = env_action(algo.env_stack, algo.act(algo.act_params(state), obs))
        torch.testing.assert_close(actions, want, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["sac", "td3", "ddpg"])
def test_exported_continuous_actions_are_in_the_env_bounds(exported, name):
    """Pendulum-v1 torques are in [-2, 2]; the policies act in [-1, 1] and training
    rescales: the artifact must output what the env receives (twice the raw action)."""
    algo, state, art, obs = exported[name]
    raw = algo.act(algo.act_params(state), obs)
    got = export.load_policy(art.path)(obs)
    assert raw.abs().max() <= 1.0 and got.abs().max() <= 2.0
    torch.testing.assert_close(got, 2.0 * raw, rtol=0, atol=1e-6)
    assert got.abs().max() > raw.abs().max()
