"""One action check for every env (``funrl.envs.base.validate_action``): messages name the env.

``step`` checks the action's structure (tensor, dtype kind, shape) for every env, also inside
``vmap``; value checks (a ``Discrete`` range, NaN, ``Box`` bounds) run only where values can
be read (``VecEnv.step`` eagerly, ``checked`` envs, ``check_action``).
"""

from __future__ import annotations

import re

import pytest
import torch
from torch._dynamo.testing import CompileCounter
from torch.func import vmap

import funrl.random as R
from funrl.envs import VecEnv, checked, make, registered
from funrl.envs.base import validate_action, values_readable
from funrl.envs.probes import ConstantReward
from funrl.envs.spaces import Box, Discrete

IDS = registered()


def _good_action(space, batch=()):
    return torch.zeros((*batch, *space.shape), dtype=space.dtype)


def _wrong_dtype(space, batch=()):
    dtype = torch.float32 if isinstance(space, Discrete) else torch.int64
    return torch.zeros((*batch, *space.shape), dtype=dtype)


@pytest.mark.parametrize("env_id", IDS)
def test_every_registered_env_rejects_a_bad_action_naming_the_env(env_id: str) -> None:
    env, params = make(env_id)
    space = env.action_space(params)
    _, state = env.reset(R.key(0), params)
    env.step(R.key(1), state, _good_action(space), params)
    name = re.escape(env.name)
    kind = "integer" if isinstance(space, Discrete) else "floating"
    with pytest.raises(TypeError, match=rf"^{name}\.step: action must be an? {kind} tensor"):
        env.step(R.key(1), state, _wrong_dtype(space), params)
    want = re.escape(str(tuple(space.shape)))
    with pytest.raises(ValueError, match=rf"^{name}\.step: action has shape .*expected {want}"):
        env.step(R.key(1), state, _good_action(space, (2,)), params)
    with pytest.raises(TypeError, match=rf"^{name}\.step: action must be .* got list"):
        env.step(R.key(1), state, [0], params)


@pytest.mark.parametrize("env_id", IDS)
def test_the_structural_check_also_runs_under_vmap(env_id: str) -> None:
    env, params = make(env_id)
    space = env.action_space(params)
    keys = R.split(R.key(0), 3)
    _, states = vmap(env.reset, in_dims=(0, None))(keys, params)
    step = vmap(env.step, in_dims=(0, 0, 0, None))
    step(keys, states, _good_action(space, (3,)), params)
    with pytest.raises(ValueError, match=rf"^{re.escape(env.name)}\.step: action has shape"):
        step(keys, states, _good_action(space, (3, 2)), params)
    with pytest.raises(TypeError, match=rf"^{re.escape(env.name)}\.step: action must be"):
        step(keys, states, _wrong_dtype(space, (3,)), params)


@pytest.mark.parametrize("env_id", IDS)
def test_vec_env_and_checked_name_the_env(env_id: str) -> None:
    env, params = make(env_id)
    space = env.action_space(params)
    venv = VecEnv(env, 2)
    _, states = venv.reset(R.key(0), params)
    with pytest.raises(TypeError, match=rf"^VecEnv\({re.escape(env.name)}, 2\)\.step: action"):
        venv.step(R.key(1), states, _wrong_dtype(space, (2,)), params)
    bad = _good_action(space, (2,))
    if isinstance(space, Discrete):
        bad = torch.tensor([0, space.start + space.n])
        with pytest.raises(ValueError, match=r"action\[1\] = \d+ is outside the action space"):
            venv.step(R.key(1), states, bad, params)
    else:
        bad = bad + space.high + 1.0
    cenv = checked(env)
    _, state = cenv.reset(R.key(0), params)
    with pytest.raises(ValueError, match=rf"^Checked\({re.escape(env.name)}\): action.* outside"):
        cenv.step(R.key(1), state, bad[1], params)


def test_validate_action_messages() -> None:
    d, b = Discrete(3), Box(-1.0, 1.0, (2,))
    validate_action(d, torch.tensor([0, 2]), "E")  # any batch by default
    validate_action(b, torch.zeros(4, 2, dtype=torch.float64), "E", batch_shape=(4,))
    with pytest.raises(TypeError, match=r"E: action must be an integer tensor for Discrete\(3\)"):
        validate_action(d, torch.tensor(True), "E")
    with pytest.raises(TypeError, match="a floating tensor for Box"):
        validate_action(b, torch.zeros(2, dtype=torch.int32), "E")
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(\*batch, 2\)"):
        validate_action(b, torch.zeros(3), "E")
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(4, 2\)$"):
        validate_action(b, torch.zeros(2), "E", batch_shape=(4,))
    with pytest.raises(ValueError, match=r"action\[1, 1\] = 3 is outside .*1 of 4 entries"):
        validate_action(d, torch.tensor([[0, 1], [2, 3]]), "E")
    with pytest.raises(ValueError, match=r"action\[0\] is NaN \(1 of 2"):
        validate_action(b, torch.tensor([float("nan"), 0.0]), "E", nan=True)
    validate_action(b, torch.tensor([5.0, 0.0]), "E")  # bounds are opt-in
    with pytest.raises(ValueError, match=r"action\[0\] = 5.0 is outside .*Box"):
        validate_action(b, torch.tensor([5.0, 0.0]), "E", bounds=True)
    # values are read only where they exist: not with values=False, not on meta, not in vmap
    validate_action(d, torch.tensor(7), "E", values=False)
    validate_action(d, torch.zeros((), dtype=torch.int64, device="meta"), "E")
    vmap(lambda a: validate_action(d, a, "E") or a)(torch.tensor([7, 8]))
    assert not values_readable(torch.zeros(1, device="meta"))


class _NoSpace(ConstantReward):
    def action_space(self, params):
        raise NotImplementedError


def test_an_env_without_an_action_space_is_not_checked() -> None:
    env = _NoSpace()
    _, state = env.reset(R.key(0))
    env.step(R.key(1), state, torch.tensor([[1.5]]))  # nothing to check against


def test_the_check_runs_while_compiling_and_never_recompiles() -> None:
    """The space is built eagerly (here by ``make``), so a compiled step reads it without
    changing the env: eager calls in between cost no recompile, and a bad action is still
    caught while tracing (as before the check was shared)."""
    counter = CompileCounter()
    env, params = make("CartPole-v1")
    _, state = env.reset(R.key(0), params)
    step = torch.compile(lambda k, s, a: env.step(k, s, a, params), backend=counter)
    good = torch.tensor(1)
    step(R.key(1), state, good)
    env.step(R.key(1), state, good, params)  # eager, in between
    step(R.key(2), state, good)
    assert counter.frame_count == 1
    with pytest.raises(ValueError, match=r"CartPole-v1\.step: action has shape \(1,\)"):
        step(R.key(1), state, torch.tensor([1]))


def test_the_space_is_never_built_while_tracing() -> None:
    env = ConstantReward()  # built directly: no make, VecEnv, wrapper or eager call yet
    check = torch.compile(lambda a: env._check_step_action(a) or a + 1, backend=CompileCounter())
    check(torch.tensor(0))
    assert env._static_action_space is None  # a traced step goes unchecked, env unchanged
    env.reset(R.key(0))
    assert env._static_action_space == Discrete(1)
