"""Pure environment wrappers: each is an Environment around another one (single or VecEnv).

A wrapper keeps ``reset(key, params)`` / ``step(key, state, action, params)`` and passes
``params`` through unchanged to the inner env.  A wrapper with its own dynamic state nests
it as ``XState(inner=<inner state>, ...)`` (a :func:`funrl.tree.struct`); a stateless one
(``ClipAction``, ``RescaleAction``, ``FlattenObservation``, ``ClipObservation``,
``TransformReward``, ``Checked``) returns the inner state unchanged.  Compose in any order::

    env = NormalizeObservation(EpisodeStatistics(VecEnv(TimeLimit(CartPole(), 100), 8)))

Auto-reset stays correct through every wrapper: the inner env already returns the first
obs of the new episode where ``terminated | truncated``; each wrapper applies its
observation transform to both ``obs`` and ``info["final_observation"]`` (with the same
statistics), and resets its own per-episode state (returns, counters, frames, previous
action) where the episode ended.  Wrapper state lives at ``env.batch_shape`` (``()``
for one env, ``[n]`` for a ``VecEnv``); running statistics (``NormalizeObservation``,
``ScaleReward``) are reduced over all batch dims, so on a ``VecEnv`` they are shared by all
members (as SB3 ``VecNormalize`` and Gymnasium's vector wrappers do).  Under an *outer*
``vmap`` each vmapped member keeps its own statistics.

Static settings (``gamma``, ``p``, ``max_steps``, bounds) are Python values fixed at
construction (changing them means a new wrapper and a recompile).  Spaces that depend on
``params`` are read once, from ``env.default_params()``, at construction.

Wrappers that never replace the inner state (all but ``TimeLimit``) also work eagerly
around the host-side :class:`funrl.envs.gym_bridge.GymnasiumEnv`.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.classic_control import CartPole
    >>> from funrl.envs.vector import VecEnv
    >>> from funrl.envs.wrappers import EpisodeStatistics, NormalizeObservation
    >>> env = NormalizeObservation(EpisodeStatistics(VecEnv(CartPole(), 4)))
    >>> obs, state = env.reset(R.key(0))
    >>> obs, state, r, term, trunc, info = env.step(R.key(1), state, torch.ones(4, dtype=torch.int64))
    >>> info["episode_return"].tolist(), info["episode_done"].tolist()
    ([1.0, 1.0, 1.0, 1.0], [False, False, False, False])
    >>> state.moments.mean.shape                     # shared by the 4 members
    torch.Size([4])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult, is_tracing, validate_action
from funrl.envs.spaces import Box, Space
from funrl.envs.vector import batch_shape

__all__ = [
    "Checked",
    "ClipAction",
    "ClipObservation",
    "EpisodeStatistics",
    "FlattenObservation",
    "FrameStack",
    "NormalizeObservation",
    "RescaleAction",
    "RunningMoments",
    "ScaleReward",
    "StickyActions",
    "TimeLimit",
    "TransformReward",
    "Wrapper",
    "checked",
    "moments_init",
    "moments_update",
]

Tensor = torch.Tensor


class Wrapper(Environment):
    """Base of all wrappers: spaces, params and ``batch_shape`` pass through to ``self.env``.

    Subclasses override ``reset`` and ``step`` (the inner env already auto-resets).
    """

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


# ---- actions ------------------------------------------------------------------------
class ClipAction(Wrapper):
    """Actions clamped to the inner ``Box`` bounds; the reported action space is unbounded."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self._space = _box(self._default_space("action"), self.name, "action")

    def action_space(self, params: Any) -> Space:
        return Box(-math.inf, math.inf, self._space.shape, self._space.dtype)

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        lo, hi = self._space.low.to(action.device), self._space.high.to(action.device)
        return self.env.step(key, state, torch.clamp(action, lo, hi), params)


class RescaleAction(Wrapper):
    """Actions in ``[min_action, max_action]`` mapped affinely onto the inner ``Box``.

    ``a_env = clip(low + (high - low) (a - min_action) / (max_action - min_action), low, high)``.
    """

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

    def step(self, key: Tensor, state: Any, action: Tensor, params: Any = None) -> StepResult:
        lo, hi = self._space.low.to(action.device), self._space.high.to(action.device)
        frac = (action - self.min_action) / (self.max_action - self.min_action)
        return self.env.step(key, state, torch.clamp(lo + (hi - lo) * frac, lo, hi), params)


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
