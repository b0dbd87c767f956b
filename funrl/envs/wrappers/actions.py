"""Action wrappers (clip, rescale, sticky actions) and the time limit (see :mod:`funrl.envs.wrappers`)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Space
from funrl.envs.wrappers.core import (
    Wrapper,
    _box,
)


# ---- actions ------------------------------------------------------------------------
class ClipAction(Wrapper):
    """Actions clamped to the inner ``Box`` bounds; the reported action space is unbounded."""

    maps_actions_only = True  # step is the inner step of env_action(action)

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self._space = _box(self._default_space("action"), self.name, "action")

    def action_space(self, params: Any) -> Space:
        return Box(-math.inf, math.inf, self._space.shape, self._space.dtype)

    def env_action(self, action: Tensor) -> Tensor:
        """The action the inner env receives for ``action``."""
        lo, hi = self._space.low.to(action.device), self._space.high.to(action.device)
        return torch.clamp(action, lo, hi)

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        return self.env.step(key, state, self.env_action(action), params)


class RescaleAction(Wrapper):
    """Actions in ``[min_action, max_action]`` mapped affinely onto the inner ``Box``.

    ``a_env = clip(low + (high - low) (a - min_action) / (max_action - min_action), low, high)``.
    """

    maps_actions_only = True  # step is the inner step of env_action(action)

    def __init__(self, env: Environment, min_action: float = -1.0, max_action: float = 1.0) -> None:
        super().__init__(env)
        self._space = _box(self._default_space("action"), self.name, "action")
        if not (
            bool(torch.isfinite(self._space.low).all())
            and bool(torch.isfinite(self._space.high).all())
        ):
            raise ValueError(f"{self.name}: the inner action space {self._space} must be bounded")
        if not min_action < max_action:
            raise ValueError(
                f"{self.name}: need min_action < max_action, got {min_action}, {max_action}"
            )
        self.min_action, self.max_action = float(min_action), float(max_action)

    def action_space(self, params: Any) -> Space:
        return Box(self.min_action, self.max_action, self._space.shape, self._space.dtype)

    def env_action(self, action: Tensor) -> Tensor:
        """The action the inner env receives for ``action`` (in the inner ``Box``)."""
        lo, hi = self._space.low.to(action.device), self._space.high.to(action.device)
        frac = (action - self.min_action) / (self.max_action - self.min_action)
        return torch.clamp(lo + (hi - lo) * frac, lo, hi)

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        return self.env.step(key, state, self.env_action(action), params)


@tree.struct
class StickyActionsState:
    inner: Any
    prev_action: Tensor


class StickyActions(Wrapper):
    """With probability ``p`` the previous action is executed instead of the given one.

    The previous action starts at 0 (NOOP) on every new episode (ALE's sticky actions,
    Machado et al. 2018).  Randomness: ``k_sticky, k_env = split(key)``.
    """

    def __init__(self, env: Environment, p: float = 0.25) -> None:
        super().__init__(env)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{self.name}: p must be in [0, 1], got {p}")
        self.p = float(p)
        space = self._default_space("action")
        self._shape, self._dtype = tuple(space.shape), space.dtype

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        obs, inner = self.env.reset(key, params)
        prev = torch.zeros(self.batch_shape + self._shape, dtype=self._dtype, device=obs.device)
        return obs, StickyActionsState(inner, prev)

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        k_sticky, k_env = R.split(key)
        repeat = R.bernoulli(k_sticky, self.p, self.batch_shape)
        taken = tree.where(repeat, state.prev_action, action.to(self._dtype))
        obs, inner, reward, term, trunc, info = self.env.step(k_env, state.inner, taken, params)
        prev = tree.where(term | trunc, torch.zeros_like(taken), taken)
        return obs, StickyActionsState(inner, prev), reward, term, trunc, info


# ---- time ---------------------------------------------------------------------------
@tree.struct
class TimeLimitState:
    inner: Any
    t: Tensor


class TimeLimit(Wrapper):
    """Truncate every episode after ``max_steps`` steps (counter in the wrapper state).

    ``truncated' = truncated | (t + 1 >= max_steps)``; ``terminated`` is unchanged.  Where
    only the limit ended the episode the inner env is reset here (key ``split(key)[1]``)
    and ``info["final_observation"]`` keeps the inner pre-reset observation.
    """

    def __init__(self, env: Environment, max_steps: int) -> None:
        super().__init__(env)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"{self.name}: max_steps must be a positive int, got {max_steps!r}")
        self.max_steps = max_steps

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        obs, inner = self.env.reset(key, params)
        return obs, TimeLimitState(
            inner, torch.zeros(self.batch_shape, dtype=torch.int64, device=obs.device)
        )

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        k_step, k_reset = R.split(key)
        obs, inner, reward, term, trunc, info = self.env.step(k_step, state.inner, action, params)
        t = state.t + 1
        hit = t >= self.max_steps
        force = hit & ~(term | trunc)
        obs_re, inner_re = self.env.reset(k_reset, params)
        inner = tree.where(force, inner_re, inner)
        obs = tree.where(force, obs_re, obs)
        trunc = trunc | hit
        t = torch.where(term | trunc, torch.zeros_like(t), t)
        return obs, TimeLimitState(inner, t), reward, term, trunc, info
