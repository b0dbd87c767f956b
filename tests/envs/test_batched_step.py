"""Envs that set ``step_env_batched``: ``step_env`` on a batch equals its vmap bit for bit,
and an eager ``VecEnv`` (which then skips ``vmap``) steps exactly as the vmapped path."""

import inspect

import pytest
import torch
from torch.func import vmap

import funrl
import funrl.envs as E
import funrl.random as R
from funrl import tree
from funrl.envs.base import Environment
from funrl.envs.classic_control import (
    Acrobot,
    CartPole,
    MountainCar,
    MountainCarContinuous,
    Pendulum,
)
from funrl.envs.spaces import Box, Discrete
from funrl.envs.vector import VecEnv, _declares_batched_step
from funrl.envs.wrappers import ClipAction, RescaleAction

ENVS = {
    "cartpole": lambda: CartPole(),
    "cartpole-f64-sutton-barto": lambda: CartPole(torch.float64, sutton_barto_reward=True),
    "acrobot": lambda: Acrobot(),
    "acrobot-nips-noise": lambda: Acrobot(torch.float64, book_or_nips="nips", torque_noise=True),
    "mountaincar": lambda: MountainCar(),
    "mountaincar-f64": lambda: MountainCar(torch.float64),
    "mountaincar-continuous": lambda: MountainCarContinuous(),
    "pendulum": lambda: Pendulum(),
    "pendulum-f64": lambda: Pendulum(torch.float64, g=9.81),
}


def _actions(space, key, n):
    if isinstance(space, Discrete):
        return R.randint(key, 0, space.n, (n,))
    assert isinstance(space, Box)
    # beyond the bounds too: the envs clip
    return R.uniform(key, (n, *space.shape), dtype=space.dtype, low=-3.0, high=3.0)


def _scattered_states(env, params, n, key):
    """``n`` states from resets, each pushed away from the start (terminations, clips)."""
    k_reset, k_noise = R.split(key)
    _, state = vmap(env.reset_env, in_dims=(0, None))(R.split(k_reset, n), params)
    leaves, spec = tree.flatten(state)
    keys = R.split(k_noise, len(leaves))
    scale = torch.logspace(-2, 1, n, dtype=torch.float64)  # member i: noise of scale[i]
    out = []
    for k, x in zip(keys, leaves, strict=True):
        if x.dtype.is_floating_point:
            noise = R.normal(k, tuple(x.shape), dtype=x.dtype)
            x = x + noise * scale.to(x.dtype).reshape(n, *(1,) * (x.dim() - 1))
        else:  # step counters: some at the time limit
            x = x + R.randint(k, 0, 1200, tuple(x.shape), dtype=x.dtype)
        out.append(x)
    return tree.unflatten(out, spec)


def _assert_same(a, b):
    la, sa = tree.flatten(a)
    lb, sb = tree.flatten(b)
    assert sa == sb
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape, (x.dtype, y.dtype, x.shape, y.shape)
        assert torch.equal(x, y)


@pytest.mark.parametrize("name", sorted(ENVS))
def test_batched_step_env_equals_its_vmap(name):
    env = ENVS[name]()
    assert _declares_batched_step(env)
    params = env.default_params()
    n = 33
    ends = []
    for seed in range(4):
        k_state, k_step, k_act = R.split(R.key(seed), 3)
        state = _scattered_states(env, params, n, k_state)
        keys = R.split(k_step, n)
        action = _actions(env.action_space(params), k_act, n)
        batched = env.step_env(keys, state, action, params)
        vmapped = vmap(env.step_env, in_dims=(0, 0, 0, None))(keys, state, action, params)
        _assert_same(batched, vmapped)
        ends.append(batched[3])
        assert bool(batched[4].any()) and bool((~batched[4]).any())  # truncated
    terminated = torch.cat(ends)
    if "pendulum" not in name:  # the scattered states end some episodes, not all
        assert bool(terminated.any()) and bool((~terminated).any())


WRAPPED = {
    **ENVS,
    "pendulum-rescaled-clipped": lambda: ClipAction(RescaleAction(Pendulum(), -0.5, 2.0)),
}


@pytest.mark.parametrize(
    "name", ["cartpole", "acrobot-nips-noise", "pendulum-f64", "pendulum-rescaled-clipped"]
)
def test_eager_vecenv_skips_vmap_and_steps_as_before(name):
    def run(fast):
        venv = VecEnv(WRAPPED[name](), 8)
        assert venv._batched_step  # the action-only wrappers keep the fast path
        venv._batched_step = fast
        params = venv.default_params()
        obs, state = venv.reset(R.key(1), params)
        out = [obs, state]
        for t in range(300):  # CartPole and Acrobot episodes end (auto-reset) in this span
            k_act, k_step = R.split(R.fold_in(R.key(2), t))
            action = _actions(venv.action_space(params), k_act, 8)
            obs, state, *rest = venv.step(k_step, state, action, params)
            out.append((obs, state, rest))
        return out

    _assert_same(run(True), run(False))


def test_the_promise_is_not_inherited_by_an_overridden_step_env():
    class Shifted(CartPole):
        def step_env(self, key, state, action, params):
            return super().step_env(key, state, action, params)

    class Renamed(CartPole):  # step_env not overridden: still CartPole's
        name = "Renamed"

    assert not _declares_batched_step(Shifted())
    assert _declares_batched_step(Renamed())
    assert not _declares_batched_step(funrl.make("MinAtar-Breakout-v1")[0])


def test_every_declaring_env_is_covered():
    declaring = {
        cls
        for _, module in inspect.getmembers(E, inspect.ismodule)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Environment) and cls.__dict__.get("step_env_batched", False)
    }
    covered = {type(make()) for make in ENVS.values()}
    assert declaring <= covered, declaring - covered
    assert {CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum} <= declaring
