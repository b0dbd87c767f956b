"""Pieces every algorithm shares: the ``Algo`` record, env stacks, hparams, metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch

from funrl.envs.base import Environment
from funrl.envs.registry import make as make_env
from funrl.envs.spaces import Box, Discrete
from funrl.envs.vector import VecEnv
from funrl.envs.wrappers import (
    ClipAction,
    EpisodeStatistics,
    NormalizeObservation,
    RescaleAction,
    ScaleReward,
)

__all__ = [
    "Algo",
    "EnvStack",
    "check_hparams_fields",
    "episode_metrics",
    "hparams_from_kwargs",
    "make_env_stack",
    "normalize_obs_for_act",
    "remaker",
]


class Algo(NamedTuple):
    """An algorithm: pure ``init``/``update``/``act`` plus what the host loop needs.

    Attributes:
      name: e.g. ``"ppo"``.
      config: the static config it was made from.
      init: ``init(key, hparams) -> TrainState``.
      update: ``update(state, hparams) -> (TrainState, metrics)``: one iteration.
      act: ``act(act_params, obs, key=None, deterministic=True) -> action`` on raw env obs.
      act_params: ``act_params(state) -> pytree``: what ``act`` needs (policy params and
        observation-normalisation statistics), e.g. for export or evaluation.
      env_stack: the training env and its evaluation counterpart.
      hparams_cls: the HParams class (``create(**overrides)``, ``check()``).
      steps_per_update: env steps one ``update`` takes (over all envs).
      networks: the algorithm's networks (its ``Networks`` record of ``funrl.nn.Model``):
        read Q-values or logits with ``algo.networks.<name>.apply(state.params[...], obs)``.
      optimizer: the optimizer ``update`` steps with (a ``GradientTransformation``, or a
        dict of them, one per network).
      remake: ``remake(**parts) -> Algo``: the same algorithm with some of the parts that
        its ``make`` takes replaced (e.g. ``units=``, ``optimizer=``); the others stay.
    """

    name: str
    config: Any
    init: Callable[..., Any]
    update: Callable[..., Any]
    act: Callable[..., torch.Tensor]
    act_params: Callable[[Any], Any]
    env_stack: EnvStack
    hparams_cls: Any
    steps_per_update: int
    networks: Any
    optimizer: Any
    remake: Callable[..., Algo]

    def with_units(self, transform: Any) -> Algo:
        """The same algorithm with its compute units transformed (``funrl.algos.units``:
        ``compiled``, ``population(...)``), ``init`` included."""
        return self.remake(units=transform)


def remaker(make: Callable[..., Algo], config: Any, parts: dict[str, Any]) -> Callable[..., Algo]:
    """``Algo.remake``: ``make(config, **parts)`` with some ``parts`` replaced.

    Raises ``TypeError`` naming an unknown part and listing the known ones.
    """

    def remake(**changes: Any) -> Algo:
        unknown = sorted(set(changes) - set(parts))
        if unknown:
            raise TypeError(f"remake: unknown part(s) {unknown}; parts are {sorted(parts)}")
        return make(config, **{**parts, **changes})

    return remake


@dataclasses.dataclass(frozen=True)
class EnvStack:
    """The training env (vectorised and wrapped) and what algorithms need to know of it.

    Attributes:
      env: ``[VecEnv] -> EpisodeStatistics -> [ScaleReward] -> [NormalizeObservation]``.
      env_params: the base env's default params.
      eval_env: the base env with the same action wrappers, unnormalised observations
        (``act`` normalises with the training statistics).
      obs_dim: flat observation size.
      action_space: the base env's action space.
      normalizer: the ``NormalizeObservation`` wrapper, if any.
    """

    env: Environment
    env_params: Any
    eval_env: Environment
    obs_dim: int
    action_space: Any
    normalizer: NormalizeObservation | None

    def obs_moments(self, env_state: Any) -> Any:
        """The running observation moments in ``env_state`` (``None`` without normalisation)."""
        return env_state.moments if self.normalizer is not None else None


def make_env_stack(
    env_id: str,
    num_envs: int,
    policy: str = "auto",
    normalize_obs: bool = False,
    normalize_reward: bool = False,
    reward_gamma: float = 0.99,
) -> EnvStack:
    """Build the standard training stack for ``env_id``.

    Continuous actions: ``policy="tanh_gaussian"`` (or ``"deterministic"``) rescales
    [-1, 1] to the env's bounds; other continuous policies are clipped to the bounds.
    ``reward_gamma`` is the discount of the running return that ``ScaleReward`` divides by.
    """
    base, env_params = make_env(env_id)
    space = base.action_space(env_params)
    obs_space = base.observation_space(env_params)
    if len(obs_space.shape) != 1:
        raise ValueError(
            f"{env_id}: algorithms here need flat observations, got shape {obs_space.shape}; "
            "wrap the env in FlattenObservation"
        )
    single: Environment = base
    if isinstance(space, Box):
        single = (
            RescaleAction(base)
            if policy in ("tanh_gaussian", "deterministic")
            else ClipAction(base)
        )
    elif not isinstance(space, Discrete):
        raise ValueError(f"{env_id}: unsupported action space {space}")
    env: Environment = EpisodeStatistics(VecEnv(single, num_envs))
    if normalize_reward:
        env = ScaleReward(env, gamma=reward_gamma)
    normalizer = None
    if normalize_obs:
        normalizer = NormalizeObservation(env)
        env = normalizer
    return EnvStack(env, env_params, single, int(obs_space.shape[0]), space, normalizer)


def normalize_obs_for_act(stack: EnvStack, moments: Any, obs: torch.Tensor) -> torch.Tensor:
    """Raw env observations normalised as the training env normalised them."""
    if stack.normalizer is None or moments is None:
        return obs
    return stack.normalizer.normalize(obs, moments)


def episode_metrics(info: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean return/length of the episodes that finished in a rollout, and their count.

    ``info`` comes from ``EpisodeStatistics`` stacked over time (any leading dims).  With no
    finished episode the means are NaN (the host loop skips them).
    """
    done = info["episode_done"]
    n = done.sum()
    denom = torch.clamp(n, min=1).to(torch.float32)
    nan = torch.full((), float("nan"))
    ret = torch.where(done, info["episode_return"].to(torch.float32), 0.0).sum() / denom
    length = torch.where(done, info["episode_length"].to(torch.float32), 0.0).sum() / denom
    return {
        "episode_return": torch.where(n > 0, ret, nan),
        "episode_length": torch.where(n > 0, length, nan),
        "episodes": n.to(torch.float32),
    }


def hparams_from_kwargs(cls: Any, defaults: dict[str, float], overrides: dict[str, Any]) -> Any:
    """``cls`` built from ``defaults`` updated by ``overrides``, every value a float32 tensor.

    Raises ``ValueError`` naming unknown fields and listing the valid ones.
    """
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(
            f"{cls.__name__}: unknown field(s) {unknown}; valid fields: {sorted(defaults)}"
        )
    values = {**defaults, **overrides}
    out = {}
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, torch.Tensor)):
            raise TypeError(
                f"{cls.__name__}.{name} must be a number or tensor, got {type(v).__name__}"
            )
        t = torch.as_tensor(v)
        out[name] = t.to(torch.float32) if not t.dtype.is_floating_point else t
    return cls(**out)


def check_hparams_fields(
    hp: Any,
    *,
    positive: Iterable[str] = (),
    unit: Iterable[str] = (),
    nonnegative: Iterable[str] = (),
    open_unit: Iterable[str] = (),
) -> None:
    """Eager checks of HParams values (any leading population dims).

    ``positive``: > 0; ``unit``: in [0, 1]; ``nonnegative``: >= 0; ``open_unit``: in [0, 1).
    Raises ``ValueError`` naming the field, the bad values and the allowed range.
    """
    name = type(hp).__name__

    def check(field: str, ok: Callable[[torch.Tensor], torch.Tensor], allowed: str) -> None:
        v = getattr(hp, field)
        if not isinstance(v, torch.Tensor) or not v.dtype.is_floating_point:
            raise TypeError(f"{name}.{field} must be a float tensor, got {type(v).__name__}")
        bad = ~ok(v) | torch.isnan(v)
        if bool(bad.any()):
            raise ValueError(
                f"{name}.{field} must be {allowed}, got {v[bad].tolist() if v.ndim else v.item()}"
            )

    for f in positive:
        check(f, lambda v: v > 0, "> 0")
    for f in unit:
        check(f, lambda v: (v >= 0) & (v <= 1), "in [0, 1]")
    for f in nonnegative:
        check(f, lambda v: v >= 0, ">= 0")
    for f in open_unit:
        check(f, lambda v: (v >= 0) & (v < 1), "in [0, 1)")
