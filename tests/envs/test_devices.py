"""Devices without a GPU: every env keeps its tensors on the key's device, params may stay on the CPU.

On CUDA, an op given tensors on two devices fails (``Expected all tensors to be on the same
device``) unless it is an elementwise TensorIterator op and the odd ones out are 0-d CPU
tensors, which it reads as scalars (``x * p.tau``, ``torch.where(c, p.a, -p.a)``,
``torch.minimum(x, p.hi)``).  ``torch.clamp(x, p.lo, p.hi)``, ``stack``/``cat`` and
indexing are not among them: ``Acrobot`` failed on an H100 with CPU params and CUDA keys.

Here the CUDA side is played by the ``meta`` device (shapes only, no values) and
:class:`DeviceMixes` watches every ATen op (below vmap, so it sees the physical tensors a
kernel would) for mixes that CUDA would reject.  Every registered env and the wrappers run
reset + step eagerly, under ``vmap`` and in a ``VecEnv`` (batched params too), with
CPU params and meta keys, states and actions; the outputs must all be on ``meta``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.func import vmap
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import funrl.random as R
from funrl import tree
from funrl.envs import (
    EpisodeStatistics,
    FrameStack,
    NormalizeObservation,
    ScaleReward,
    StickyActions,
    TimeLimit,
    VecEnv,
    checked,
    make,
    registered,
)
from funrl.envs.classic_control import Acrobot, Pendulum
from funrl.envs.spaces import Discrete
from funrl.envs.wrappers import ClipAction, ClipObservation, FlattenObservation, RescaleAction

IDS = registered()
META = torch.device("meta")

# ATen ops that accept 0-d CPU tensors next to CUDA tensors: TensorIterator binary /
# comparison ops (``allow_cpu_scalars``) and ``where`` (pytorch#87022).  Kept short on
# purpose: an op missing here is flagged, and the fix (``p.to(x.device)`` or one of these
# ops) is harmless.
CPU_SCALAR_OK = {
    "add",
    "sub",
    "rsub",
    "mul",
    "div",
    "remainder",
    "fmod",
    "pow",
    "maximum",
    "minimum",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "where",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "logical_and",
    "logical_or",
    "logical_xor",
}
MOVES = {"_to_copy", "copy_"}  # explicit device moves


class DeviceMixes(TorchDispatchMode):
    """Records every ATen call whose tensors sit on devices that CUDA would not mix."""

    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        tensors = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
        if len({t.device for t in tensors}) > 1:
            name = func.overloadpacket.__name__
            cpu = [t for t in tensors if t.device.type == "cpu"]
            scalars = all(t.ndim == 0 for t in cpu)
            if name not in MOVES and not (scalars and name in CPU_SCALAR_OK):
                got = ", ".join(f"{t.device.type}{list(t.shape)}" for t in tensors)
                self.bad.append(f"{func}({got})")
        return func(*args, **kwargs)


def _action(space: Any, batch: tuple[int, ...] = ()) -> torch.Tensor:
    return torch.zeros((*batch, *space.shape), dtype=space.dtype, device=META)


def _run(env: Any, params: Any, batch: tuple[int, ...] = ()) -> tuple[list[str], Any]:
    """reset + two steps of ``env`` with meta keys, CPU params; ``(bad ops, outputs)``."""
    space = env.action_space(env.default_params())
    mode = DeviceMixes()
    with mode:
        obs, state = env.reset(R.key(0, device=META), params)
        out1 = env.step(R.key(1, device=META), state, _action(space, batch), params)
        out2 = env.step(R.key(2, device=META), out1[1], _action(space, batch), params)
    return mode.bad, (obs, state, out1, out2)


def _assert_on_meta(outputs: Any) -> None:
    devices = {x.device.type for x in tree.leaves(outputs) if isinstance(x, torch.Tensor)}
    assert devices == {"meta"}, devices


def test_the_checker_sees_the_h100_failure() -> None:
    """``torch.clamp`` with 0-d CPU bounds: the op that failed on CUDA is flagged here."""
    x, p = torch.zeros(3, device=META), torch.tensor(1.0)
    with DeviceMixes() as mode:
        torch.clamp(x, -p, p)
        with pytest.raises(RuntimeError):  # meta refuses this one itself, as CUDA does
            torch.stack([x[0], p])
        torch.minimum(torch.maximum(x, -p), p)  # fine: read as scalars
        torch.where(x > 0, p, -p)
    assert len(mode.bad) == 2 and "clamp" in mode.bad[0] and "stack" in mode.bad[1]


@pytest.mark.parametrize("env_id", IDS)
def test_env_runs_with_cpu_params_and_device_keys(env_id: str) -> None:
    env, params = make(env_id)
    assert all(x.device.type == "cpu" for x in tree.leaves(params))
    bad, out = _run(env, params)
    assert not bad, bad
    _assert_on_meta(out)


@pytest.mark.parametrize("env_id", IDS)
def test_vmapped_env_runs_with_cpu_params_and_device_keys(env_id: str) -> None:
    env, params = make(env_id)
    space = env.action_space(params)
    keys = R.split(R.key(0, device=META), 3)
    with DeviceMixes() as mode:
        obs, state = vmap(env.reset, in_dims=(0, None), randomness="error")(keys, params)
        step = vmap(env.step, in_dims=(0, 0, 0, None), randomness="error")
        out = step(keys, state, _action(space, (3,)), params)
    assert not mode.bad, mode.bad
    _assert_on_meta((obs, state, out))


@pytest.mark.parametrize("env_id", IDS)
def test_vec_env_moves_batched_cpu_params_to_the_key_device(env_id: str) -> None:
    env, _ = make(env_id)
    venv = VecEnv(env, 3, batched_params=True)
    params = venv.default_params()  # leaves [3] on the CPU: not scalars, must move
    bad, out = _run(venv, params, (3,))
    assert not bad, bad
    _assert_on_meta(out)
    bad, out = _run(VecEnv(env, 3), env.default_params(), (3,))
    assert not bad, bad
    _assert_on_meta(out)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: NormalizeObservation(EpisodeStatistics(VecEnv(e, 2))),
        lambda e: ScaleReward(FrameStack(VecEnv(TimeLimit(e, 3), 2), 2)),
        lambda e: StickyActions(ClipObservation(FlattenObservation(VecEnv(e, 2)), -1.0, 1.0)),
        lambda e: checked(VecEnv(e, 2)),
    ],
    ids=["normalize", "scale-framestack-timelimit", "sticky-clipobs-flatten", "checked"],
)
@pytest.mark.parametrize("env_id", ["Acrobot-v1", "CartPole-v1"])
def test_wrappers_keep_tensors_on_the_key_device(wrap: Any, env_id: str) -> None:
    env, params = make(env_id)
    bad, out = _run(wrap(env), params, (2,))
    assert not bad, bad
    _assert_on_meta(out)


def test_action_wrappers_keep_tensors_on_the_key_device() -> None:
    env = Pendulum()
    params = env.default_params()
    for wrapped in (ClipAction(VecEnv(env, 2)), RescaleAction(VecEnv(env, 2))):
        bad, out = _run(wrapped, params, (2,))
        assert not bad, bad
        _assert_on_meta(out)


def test_params_may_live_on_the_device_too() -> None:
    """Params on the key's device (the fast path on a GPU) and a discrete check space."""
    env = Acrobot()
    params = tree.map(lambda x: x.to(META), env.default_params())
    assert isinstance(env.action_space(env.default_params()), Discrete)
    with DeviceMixes() as mode:
        _, state = env.reset(R.key(0, device=META), params)
        out = env.step(R.key(1, device=META), state, _action(Discrete(3)), params)
    assert not mode.bad
    _assert_on_meta(out)
