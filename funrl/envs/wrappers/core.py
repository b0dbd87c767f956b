"""The wrapper base class and running moments (see :mod:`funrl.envs.wrappers`)."""

from __future__ import annotations

import math
from typing import Any

import torch

from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Space
from funrl.envs.vector import batch_shape

Tensor = torch.Tensor


class Wrapper(Environment):
    """Base of all wrappers: spaces, params and ``batch_shape`` pass through to ``self.env``.

    Subclasses override ``reset`` and ``step`` (the inner env already auto-resets).  A
    subclass whose ``step`` is exactly ``self.env.step(key, state, self.env_action(action),
    params)``, and whose ``reset`` is the inner one, may set ``maps_actions_only = True``:
    ``VecEnv`` then steps through it on its eager fast path.
    """

    maps_actions_only: bool = False

    def __init__(self, env: Environment) -> None:
        if not isinstance(env, Environment):
            raise TypeError(f"{type(self).__name__}: env must be an Environment, got {env!r}")
        self.env = env
        self.name = f"{type(self).__name__}({env.name})"
        env.static_action_space()  # built eagerly, before a step is traced

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return batch_shape(self.env)

    @property
    def num_envs(self) -> int | None:
        return getattr(self.env, "num_envs", None)

    @property
    def is_host_bridge(self) -> bool:
        return bool(getattr(self.env, "is_host_bridge", False))

    @property
    def unwrapped(self) -> Environment:
        return getattr(self.env, "unwrapped", self.env)

    def default_params(self) -> Any:
        return self.env.default_params()

    def observation_space(self, params: Any) -> Space:
        return self.env.observation_space(params)

    def action_space(self, params: Any) -> Space:
        return self.env.action_space(params)

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        return self.env.reset(key, params)

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        return self.env.step(key, state, action, params)

    def reset_env(self, key: Tensor, params: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError("wrappers implement reset/step directly")

    def step_env(self, key: Tensor, state: Any, action: Tensor, params: Any) -> StepResult:
        raise NotImplementedError("wrappers implement reset/step directly")

    def _nb(self) -> int:
        return len(self.batch_shape)

    def _default_space(self, which: str) -> Space:
        p = self.env.default_params()
        return self.env.action_space(p) if which == "action" else self.env.observation_space(p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"


def _box(space: Space, who: str, what: str) -> Box:
    if not isinstance(space, Box):
        raise TypeError(f"{who}: needs a Box {what} space, got {space}")
    return space


# ---- running moments ----------------------------------------------------------------
@tree.struct
class RunningMoments:
    """Running mean/variance of samples shaped like ``mean`` (``count`` a 0-d tensor)."""

    mean: Tensor
    var: Tensor
    count: Tensor


def moments_init(
    shape: tuple[int, ...], dtype: torch.dtype = torch.float64, device: Any = None
) -> RunningMoments:
    """``mean = 0``, ``var = 1``, ``count = 1e-4`` (as Gymnasium's ``RunningMeanStd``)."""
    return RunningMoments(
        torch.zeros(shape, dtype=dtype, device=device),
        torch.ones(shape, dtype=dtype, device=device),
        torch.tensor(1e-4, dtype=dtype, device=device),
    )


def moments_update(m: RunningMoments, x: Tensor, num_batch_dims: int) -> RunningMoments:
    """Merge the samples ``x [*B, *m.mean.shape]`` (``B`` = ``num_batch_dims`` dims) into ``m``.

    Chan et al.'s parallel update with ``n_b = prod(B)`` (``n_b = 1`` for no batch dims):
    ``delta = mean_b - mean``, ``n = count + n_b``, ``mean' = mean + delta n_b / n``,
    ``var' = (var count + var_b n_b + delta^2 count n_b / n) / n``.
    """
    x = x.to(m.mean.dtype)
    nb = num_batch_dims
    if nb == 0:
        b_mean, b_var, b_count = x, torch.zeros_like(x), 1.0
    else:
        dims = tuple(range(nb))
        b_mean = x.mean(dim=dims)
        b_var = x.var(dim=dims, correction=0)
        b_count = float(math.prod(x.shape[:nb]))
    delta = b_mean - m.mean
    total = m.count + b_count
    mean = m.mean + delta * (b_count / total)
    m2 = m.var * m.count + b_var * b_count + delta.square() * (m.count * b_count / total)
    return RunningMoments(mean, m2 / total, total)
