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

from funrl.envs.wrappers.actions import (
    ClipAction,
    RescaleAction,
    StickyActions,
    TimeLimit,
)
from funrl.envs.wrappers.checked import (
    Checked,
    checked,
)
from funrl.envs.wrappers.core import (
    RunningMoments,
    Wrapper,
    moments_init,
    moments_update,
)
from funrl.envs.wrappers.observations import (
    ClipObservation,
    FlattenObservation,
    FrameStack,
    TransformReward,
)
from funrl.envs.wrappers.statistics import (
    EpisodeStatistics,
    NormalizeObservation,
    ScaleReward,
)

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
