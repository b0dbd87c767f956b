"""``checked``: validate every reset and step of an env against its spaces (see :mod:`funrl.envs.wrappers`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult, is_tracing, validate_action
from funrl.envs.wrappers.core import (
    Wrapper,
)


# ---- validation ---------------------------------------------------------------------
def _check_like(x: Any, ref: Any, what: str, who: str) -> None:
    if tree.structure(x) != tree.structure(ref):
        raise ValueError(
            f"{who}: {what} has structure {tree.structure(x)}, expected {tree.structure(ref)}"
        )
    got, _ = torch.utils._pytree.tree_flatten_with_path(x)
    for (path, a), b in zip(got, tree.leaves(ref)):
        if isinstance(b, torch.Tensor) and (
            not isinstance(a, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype
        ):
            desc = f"{a.dtype}{list(a.shape)}" if isinstance(a, torch.Tensor) else type(a).__name__
            raise ValueError(
                f"{who}: {what}{torch.utils._pytree.keystr(path)} is {desc}, "
                f"expected {b.dtype}{list(b.shape)}"
            )


class Checked(Wrapper):
    """Validates every call eagerly, raising ``TypeError``/``ValueError`` that name the problem.

    Checks: the key; ``params`` against the structure, shapes and dtypes of
    ``default_params()``; ``state`` against the state ``reset`` returns; the action's
    dtype kind, shape (``[*batch_shape, *space.shape]``), range (``Discrete``), NaN and
    (``box_bounds=True``) ``Box`` bounds.  All checks are **skipped** under
    ``torch.compile`` and inside ``vmap``/``grad`` (values cannot be read there); use
    it at host entry points and in tests.  Construct with :func:`checked`.
    """

    def __init__(self, env: Environment, box_bounds: bool = True) -> None:
        super().__init__(env)
        self.box_bounds = box_bounds
        self._state_ref: Any = None

    def _check_params(self, params: Any) -> None:
        if params is not None:
            _check_like(params, self.env.default_params(), "params", self.name)

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        if is_tracing(key, params):
            return self.env.reset(key, params)
        R.check_key(key)
        self._check_params(params)
        obs, state = self.env.reset(key, params)
        self._state_ref = state
        return obs, state

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        if not is_tracing(key, state, action, params):
            R.check_key(key)
            self._check_params(params)
            if not self.is_host_bridge:
                if self._state_ref is None:
                    self._state_ref = self.env.reset(key, params)[1]  # on the key's device
                _check_like(state, self._state_ref, "state", self.name)
            self.check_action(action, params)
        return self.env.step(key, state, action, params)

    def check_action(self, action: Any, params: Any = None) -> None:
        space = self.action_space(self.default_params() if params is None else params)
        validate_action(
            space, action, self.name, batch_shape=self.batch_shape, nan=True, bounds=self.box_bounds
        )


def checked(env: Environment, box_bounds: bool = True) -> Checked:
    """``env`` with eager validation of keys, params, state and actions (see :class:`Checked`)."""
    return Checked(env, box_bounds=box_bounds)
