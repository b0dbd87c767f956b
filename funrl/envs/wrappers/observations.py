"""Observation and reward maps: frame stacking, flattening, clipping, reward transforms (see :mod:`funrl.envs.wrappers`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Space
from funrl.envs.wrappers.core import (
    Wrapper,
    _box,
)


# ---- observations -------------------------------------------------------------------
@tree.struct
class FrameStackState:
    inner: Any
    frames: Tensor


class FrameStack(Wrapper):
    """The last ``n`` observations stacked on a new axis: obs ``[*batch_shape, n, *obs_shape]``.

    After a reset the stack holds ``n`` copies of the first observation (Gymnasium's
    ``FrameStackObservation(padding_type="reset")``); ``final_observation`` is the stack
    ending in the inner pre-reset observation.
    """

    def __init__(self, env: Environment, n: int) -> None:
        super().__init__(env)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{self.name}: n must be a positive int, got {n!r}")
        self.n = n

    def _repeat(self, obs: Tensor) -> Tensor:
        return torch.stack([obs] * self.n, dim=self._nb())

    def _push(self, frames: Tensor, obs: Tensor) -> Tensor:
        old = frames.narrow(self._nb(), 1, self.n - 1)
        return torch.cat([old, obs.unsqueeze(self._nb())], dim=self._nb())

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        obs, inner = self.env.reset(key, params)
        frames = self._repeat(obs)
        return frames, FrameStackState(inner, frames)

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        obs, inner, reward, term, trunc, info = self.env.step(key, state.inner, action, params)
        done = term | trunc
        frames = tree.where(done, self._repeat(obs), self._push(state.frames, obs))
        info = dict(info)
        info["final_observation"] = self._push(state.frames, info["final_observation"])
        return frames, FrameStackState(inner, frames), reward, term, trunc, info

    def observation_space(self, params: Any) -> Space:
        s = _box(self.env.observation_space(params), self.name, "observation")
        rep = (self.n,) + (1,) * len(s.shape)
        return Box(s.low.repeat(rep), s.high.repeat(rep), (self.n, *s.shape), s.dtype)


class _ObservationMap(Wrapper):
    """A stateless map applied to ``obs`` and ``info["final_observation"]`` alike."""

    def transform(self, obs: Tensor) -> Tensor:
        raise NotImplementedError

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        obs, state = self.env.reset(key, params)
        return self.transform(obs), state

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        obs, state, reward, term, trunc, info = self.env.step(key, state, action, params)
        info = dict(info)
        info["final_observation"] = self.transform(info["final_observation"])
        return self.transform(obs), state, reward, term, trunc, info


class FlattenObservation(_ObservationMap):
    """Observations ``[*batch_shape, *obs_shape]`` reshaped to ``[*batch_shape, prod(obs_shape)]``."""

    def transform(self, obs: Tensor) -> Tensor:
        nb = self._nb()
        return obs.reshape(*obs.shape[:nb], math.prod(obs.shape[nb:]))

    def observation_space(self, params: Any) -> Space:
        s = _box(self.env.observation_space(params), self.name, "observation")
        return Box(s.low.flatten(), s.high.flatten(), (math.prod(s.shape),), s.dtype)


class ClipObservation(_ObservationMap):
    """Observations clamped elementwise to ``[low, high]`` (floats or broadcastable tensors)."""

    def __init__(self, env: Environment, low: float | Tensor, high: float | Tensor) -> None:
        super().__init__(env)
        self.low, self.high = torch.as_tensor(low), torch.as_tensor(high)
        if bool((self.low > self.high).any()):
            raise ValueError(f"{self.name}: low must be <= high")

    def transform(self, obs: Tensor) -> Tensor:
        lo, hi = self.low.to(obs.device, obs.dtype), self.high.to(obs.device, obs.dtype)
        return torch.clamp(obs, lo, hi)

    def observation_space(self, params: Any) -> Space:
        s = _box(self.env.observation_space(params), self.name, "observation")
        return Box(
            torch.clamp(s.low, min=self.low), torch.clamp(s.high, max=self.high), s.shape, s.dtype
        )


class TransformReward(Wrapper):
    """``reward' = fn(reward)`` with ``fn`` a pure, elementwise torch function (e.g. ``torch.sign``)."""

    def __init__(self, env: Environment, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__(env)
        self.fn = fn

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        obs, state, reward, term, trunc, info = self.env.step(key, state, action, params)
        return obs, state, self.fn(reward), term, trunc, info
