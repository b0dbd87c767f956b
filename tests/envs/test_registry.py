"""Registry: make/register/registered, lazy built-ins, errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from funrl import random as R
from funrl.envs import registry
from funrl.envs.base import Environment
from funrl.envs.registry import make, register, registered
from funrl.envs.spaces import Discrete
from funrl.envs.vector import VecEnv
from funrl.testing import check_transforms

BUILTINS = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
    "funrl/ConstantReward-v0",
    "funrl/ObservationReward-v0",
    "funrl/ActionReward-v0",
    "funrl/ContinuousActionReward-v0",
    "funrl/TwoStepDiscount-v0",
]


class Coin(Environment):
    """One-step env: obs 0, reward = action, always terminated."""

    name = "Coin"

    def __init__(self, payout: float = 1.0) -> None:
        self.payout = payout

    def default_params(self):
        return {"payout": torch.tensor(self.payout)}

    def reset_env(self, key, params):
        return torch.zeros(1), torch.tensor(0)

    def step_env(self, key, state, action, params):
        r = action.to(torch.float32) * params["payout"]
        return torch.zeros(1), state + 1, r, torch.tensor(True), torch.tensor(False), {}

    def observation_space(self, params):
        raise NotImplementedError

    def action_space(self, params):
        return Discrete(2)


@pytest.fixture
def clean_registry():
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def test_builtins_registered_lazily():
    ids = registered()
    assert ids == sorted(ids)
    assert set(BUILTINS) <= set(ids)


def test_register_make_and_kwargs(clean_registry):
    register("test/Coin-v0", Coin)
    env, params = make("test/Coin-v0", payout=3.0)
    assert isinstance(env, Coin) and float(params["payout"]) == 3.0
    _, s = env.reset(R.key(0), params)
    assert float(env.step(R.key(1), s, torch.tensor(1), params)[2]) == 3.0
    venv, vparams = make("test/Coin-v0", num_envs=4)
    assert isinstance(venv, VecEnv) and venv.num_envs == 4
    obs, _ = venv.reset(R.key(0), vparams)
    assert obs.shape == (4, 1)
    # a factory may return (env, params)
    register("test/Coin-v1", lambda: (Coin(), {"payout": torch.tensor(-1.0)}))
    assert float(make("test/Coin-v1")[1]["payout"]) == -1.0
    check_transforms(
        lambda k: make("test/Coin-v0")[0].reset(k), R.split(R.key(0), 2), compile=False
    )


def test_duplicate_registration(clean_registry):
    register("test/Coin-v0", Coin)
    with pytest.raises(ValueError, match=r"already registered.*overwrite=True"):
        register("test/Coin-v0", Coin)
    register("test/Coin-v0", lambda: Coin(5.0), overwrite=True)
    assert float(make("test/Coin-v0")[1]["payout"]) == 5.0
    with pytest.raises(ValueError, match="reserved"):
        register("gym:Foo-v0", Coin)
    with pytest.raises(TypeError, match="callable"):
        register("test/X-v0", 3)  # type: ignore[arg-type]
    register("test/Bad-v0", lambda: "not an env")
    with pytest.raises(TypeError, match="not an Environment"):
        make("test/Bad-v0")


def test_unknown_id_suggests_close_names():
    with pytest.raises(
        ValueError, match=r"unknown env id 'CartPole-v0'.*did you mean 'CartPole-v1'"
    ):
        make("CartPole-v0")
    with pytest.raises(ValueError, match="unknown env id 'zzz'"):
        make("zzz")
    with pytest.raises(TypeError, match="env_id must be a str"):
        make(3)  # type: ignore[arg-type]


def test_gym_prefix_goes_through_bridge():
    from funrl.envs.gym_bridge import GymnasiumEnv

    env, params = make("gym:Pendulum-v1")
    assert isinstance(env, GymnasiumEnv) and params is None
    obs, _ = env.reset(R.key(0))
    assert obs.shape == (3,)
    env.close()
    env, _ = registry.make_gymnasium("CartPole-v1", num_envs=2)
    assert env.num_envs == 2
    env.close()


@pytest.mark.parametrize("env_id", BUILTINS)
def test_builtin_makes_and_steps(env_id):
    module = "funrl.envs.probes" if env_id.startswith("funrl/") else "funrl.envs.classic_control"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not written yet")
    env, params = make(env_id)
    obs, s = env.reset(R.key(0), params)
    a = env.action_space(params).sample(R.key(1))
    out = env.step(R.key(2), s, a, params)
    assert out[0].shape == obs.shape and out[2].shape == ()
    venv, vp = make(env_id, num_envs=3)
    obs, s = venv.reset(R.key(0), vp)
    assert obs.shape[0] == 3
