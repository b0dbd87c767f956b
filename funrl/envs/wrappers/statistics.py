"""Wrappers that keep statistics: episode returns, observation and reward normalisation (see :mod:`funrl.envs.wrappers`)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Space
from funrl.envs.wrappers.core import (
    RunningMoments,
    Wrapper,
    moments_init,
    moments_update,
)


# ---- statistics ---------------------------------------------------------------------
@tree.struct
class EpisodeStatisticsState:
    inner: Any
    episode_return: Tensor
    episode_length: Tensor


class EpisodeStatistics(Wrapper):
    """Running episode return and length, reported in ``info`` for logging.

    ``info["episode_return"]`` (float32) and ``info["episode_length"]`` (int64), both at
    ``batch_shape``, hold the sums *including* this step; where ``info["episode_done"]``
    (``terminated | truncated``) is True they are the finished episode's totals, e.g.
    ``info["episode_return"][info["episode_done"]].mean()``.  Both reset after a done.
    """

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        obs, inner = self.env.reset(key, params)
        zeros = torch.zeros(self.batch_shape, device=obs.device)
        length = torch.zeros(self.batch_shape, dtype=torch.int64, device=obs.device)
        return obs, EpisodeStatisticsState(inner, zeros, length)

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        obs, inner, reward, term, trunc, info = self.env.step(key, state.inner, action, params)
        ret = state.episode_return + reward.to(state.episode_return.dtype)
        length = state.episode_length + 1
        done = term | trunc
        info = dict(info)
        info["episode_return"], info["episode_length"], info["episode_done"] = ret, length, done
        state = EpisodeStatisticsState(
            inner, torch.where(done, torch.zeros_like(ret), ret), torch.where(done, 0, length)
        )
        return obs, state, reward, term, trunc, info


@tree.struct
class NormalizeObservationState:
    inner: Any
    moments: RunningMoments


class NormalizeObservation(Wrapper):
    """Observations normalised by running moments: ``(o - mean) / sqrt(var + epsilon)``.

    The moments are updated (see :func:`moments_update`) with every observation returned
    by ``reset`` and ``step`` (the post-reset obs, as Gymnasium), over all batch dims, and
    the *updated* moments normalise both ``obs`` and ``info["final_observation"]``.

    Args:
      env: the inner env (observations ``[*batch_shape, *obs_shape]``).
      epsilon: added to the variance.
      update: False freezes the moments (evaluation): see :meth:`frozen` and
        :meth:`reset_with_moments` to evaluate with a training run's statistics.
      dtype: dtype of the moments (float64 default; float32 on devices without float64).
    """

    def __init__(
        self,
        env: Environment,
        epsilon: float = 1e-8,
        update: bool = True,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(env)
        self.epsilon, self.update, self.dtype = float(epsilon), bool(update), dtype

    def frozen(self) -> NormalizeObservation:
        """The same wrapper with ``update=False`` (same state structure)."""
        return NormalizeObservation(self.env, self.epsilon, update=False, dtype=self.dtype)

    def normalize(self, obs: Tensor, moments: RunningMoments) -> Tensor:
        std = torch.sqrt(moments.var + self.epsilon)
        return ((obs - moments.mean) / std).to(obs.dtype)

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        return self.reset_with_moments(key, params, None)

    def reset_with_moments(
        self, key: Tensor, params: Any, moments: RunningMoments | None
    ) -> tuple[Tensor, Any]:
        """``reset`` starting from given ``moments`` (``None``: fresh ones)."""
        obs, inner = self.env.reset(key, params)
        if moments is None:
            moments = moments_init(tuple(obs.shape[self._nb() :]), self.dtype, obs.device)
        if self.update:
            moments = moments_update(moments, obs, self._nb())
        return self.normalize(obs, moments), NormalizeObservationState(inner, moments)

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        obs, inner, reward, term, trunc, info = self.env.step(key, state.inner, action, params)
        m = moments_update(state.moments, obs, self._nb()) if self.update else state.moments
        info = dict(info)
        info["final_observation"] = self.normalize(info["final_observation"], m)
        return (
            self.normalize(obs, m),
            NormalizeObservationState(inner, m),
            reward,
            term,
            trunc,
            info,
        )

    def observation_space(self, params: Any) -> Space:
        s = self.env.observation_space(params)
        return Box(-math.inf, math.inf, s.shape)


@tree.struct
class ScaleRewardState:
    inner: Any
    discounted_return: Tensor
    moments: RunningMoments


class ScaleReward(Wrapper):
    """Rewards divided by the running std of the discounted return (Gymnasium NormalizeReward).

    ``G_t = gamma G_{t-1} + r_t`` with ``G`` reset to 0 after every ``terminated |
    truncated`` (as SB3 ``VecNormalize``; Gymnasium's single-env wrapper resets only on
    ``terminated`` and one step late); the moments of ``G_t`` are updated over all batch
    dims and ``r'_t = r_t / sqrt(var(G) + epsilon)`` uses the updated variance.
    """

    def __init__(
        self,
        env: Environment,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        update: bool = True,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(env)
        self.gamma, self.epsilon, self.update, self.dtype = (
            float(gamma),
            float(epsilon),
            update,
            dtype,
        )

    def reset(self, key: Tensor, params: Any = None) -> tuple[Tensor, Any]:
        obs, inner = self.env.reset(key, params)
        ret = torch.zeros(self.batch_shape, dtype=self.dtype, device=obs.device)
        return obs, ScaleRewardState(inner, ret, moments_init((), self.dtype, obs.device))

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        obs, inner, reward, term, trunc, info = self.env.step(key, state.inner, action, params)
        g = state.discounted_return * self.gamma + reward.to(self.dtype)
        m = moments_update(state.moments, g, self._nb()) if self.update else state.moments
        scaled = (reward / torch.sqrt(m.var + self.epsilon)).to(reward.dtype)
        g = torch.where(term | trunc, torch.zeros_like(g), g)
        return obs, ScaleRewardState(inner, g, m), scaled, term, trunc, info
