"""Pieces every algorithm shares: the ``Algo`` record, env stacks, HParams, optimizer
tables, make-time checks of parts, metrics."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import torch

from funrl import optim, tree
from funrl import random as R
from funrl.collectors import CollectorState, is_host
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
from funrl.envs.wrappers.statistics import ScaleRewardState

__all__ = [
    "Algo",
    "EnvStack",
    "HParams",
    "OptimizerHParams",
    "PresetConfig",
    "acting",
    "check_hparams_cls",
    "check_hparams_if_concrete",
    "check_part",
    "check_units",
    "episode_metrics",
    "example_params",
    "expect_loss",
    "expect_shape",
    "hparam",
    "image_encoder",
    "make_env_stack",
    "network_step",
    "normalize_obs_for_act",
    "remaker",
    "require_flat_obs",
    "resolve_optimizer",
    "resolve_optimizers",
    "restart_episodes",
    "set_optimizer_hparams",
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


def acting(
    greedy: Callable[[Any, torch.Tensor], torch.Tensor],
    explore: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor],
) -> Callable[..., torch.Tensor]:
    """``Algo.act``: ``act(params, obs, key=None, deterministic=True)`` is
    ``greedy(params, obs)``, or ``explore(params, obs, key)`` with a key and
    ``deterministic=False``."""

    def act(
        params: Any, obs: torch.Tensor, key: torch.Tensor | None = None, deterministic: bool = True
    ) -> torch.Tensor:
        if deterministic or key is None:
            return greedy(params, obs)
        return explore(params, obs, key)

    return act


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
      env: ``[VecEnv] -> EpisodeStatistics -> [ScaleReward] -> [NormalizeObservation]``;
        over a host env (``"gym:<id>"``) a Gymnasium vector env takes ``VecEnv``'s place.
      env_params: the base env's default params (``None`` for a host env).
      eval_env: the base env with the same action wrappers, unnormalised observations
        (``act`` normalises with the training statistics).
      obs_shape: one observation's shape: ``(obs_dim,)``, or ``(H, W, C)`` / ``(C, H, W)``
        for images (the default networks then put an image encoder first).
      action_space: the base env's action space.
      normalizer: the ``NormalizeObservation`` wrapper, if any.
      vector: ``vector(n)``: ``n`` evaluation envs as one batched env (default: a
        ``VecEnv`` of ``eval_env``; for a host env a new Gymnasium vector env with the
        action wrapper).
    """

    env: Environment
    env_params: Any
    eval_env: Environment
    obs_shape: tuple[int, ...]
    action_space: Any
    normalizer: NormalizeObservation | None
    vector: Callable[[int], Environment] | None = None

    @property
    def obs_dim(self) -> int:
        """The flat observation size, ``prod(obs_shape)``."""
        return math.prod(self.obs_shape)

    @property
    def images(self) -> bool:
        """Whether observations are images (3-d): networks need an encoder."""
        return len(self.obs_shape) == 3

    @property
    def host(self) -> bool:
        """Whether the env is a host env (a Gymnasium bridge): it steps outside torch, so
        an algorithm compiles only its pure parts around it and cannot vmap it."""
        return is_host(self.env)

    def obs_moments(self, env_state: Any) -> Any:
        """The running observation moments in ``env_state`` (``None`` without normalisation)."""
        return env_state.moments if self.normalizer is not None else None

    def eval_vector(self, n: int) -> Environment:
        """``n`` copies of :attr:`eval_env` as one batched env (see :attr:`vector`)."""
        return self.vector(n) if self.vector is not None else VecEnv(self.eval_env, n)

    def restart(self, key: torch.Tensor, env_state: Any) -> tuple[torch.Tensor, Any]:
        """``(obs, env_state)``: new episodes from ``key``, keeping ``env_state``'s running
        statistics (observation and reward normalisation moments).

        What a resumed run does with a host env, whose simulator a checkpoint cannot
        restore: the episodes that were running are lost, the learned statistics are not.
        """
        if self.normalizer is not None:  # the outermost wrapper
            obs, fresh = self.normalizer.reset_with_moments(key, self.env_params, env_state.moments)
        else:
            obs, fresh = self.env.reset(key, self.env_params)
        return obs, _keep_reward_moments(fresh, env_state)


def restart_episodes(stack: EnvStack, state: Any) -> Any:
    """``state`` (any algorithm's TrainState) with its collector on new episodes where
    the env is a host env (:meth:`EnvStack.restart`; keys from the collector's key), else
    ``state`` itself: what resuming a checkpoint does, since a host env's simulator is not
    in the checkpoint.  A state with per-episode parts of its own (TD3's OU noise, DQN's
    n-step window) defines ``episodes_restarted() -> state``, called here too."""
    if not stack.host:
        return state
    carry = state.collector
    k_reset, k_carry = R.split(carry.key)
    obs, env_state = stack.restart(k_reset, carry.env_state)
    state = state.replace(collector=tree.contiguous(CollectorState(env_state, obs, k_carry)))
    restarted = getattr(state, "episodes_restarted", None)
    return restarted() if restarted is not None else state


def _keep_reward_moments(fresh: Any, saved: Any) -> Any:
    """``fresh`` (a chain of wrapper states) with ``ScaleReward``'s moments from ``saved``."""
    if isinstance(fresh, ScaleRewardState) and isinstance(saved, ScaleRewardState):
        return dataclasses.replace(fresh, moments=saved.moments)
    if not (
        dataclasses.is_dataclass(fresh) and hasattr(fresh, "inner") and hasattr(saved, "inner")
    ):
        return fresh  # the innermost env's state (a tensor, or a pytree of them)
    return dataclasses.replace(fresh, inner=_keep_reward_moments(fresh.inner, saved.inner))  # type: ignore[type-var]


def make_env_stack(
    env_id: str,
    num_envs: int,
    policy: str = "auto",
    normalize_obs: bool = False,
    normalize_reward: bool = False,
    reward_gamma: float = 0.99,
    *,
    vectorization: str = "sync",
) -> EnvStack:
    """Build the standard training stack for ``env_id``.

    ``vectorization`` (a Config's ``host_vectorization``) is how a Gymnasium host env's
    members step (:mod:`funrl.envs.thread_vector`); pure envs and EnvPool take ``"sync"``.

    Continuous actions: ``policy="tanh_gaussian"`` (or ``"deterministic"``) rescales
    [-1, 1] to the env's bounds; other continuous policies are clipped to the bounds.
    ``reward_gamma`` is the discount of the running return that ``ScaleReward`` divides by.
    """
    base, env_params = make_env(env_id)
    host = is_host(base)
    if vectorization != "sync" and (not host or env_id.startswith("envpool:")):
        what = "EnvPool batches its envs itself" if host else "it is a pure torch env (VecEnv)"
        raise ValueError(
            f"{env_id}: host_vectorization={vectorization!r} applies to Gymnasium host envs "
            f"(gym:, atari:, dmc:), and {what}: use 'sync'"
        )
    space = base.action_space(env_params)
    obs_space = base.observation_space(env_params)
    if not isinstance(obs_space, Box) or len(obs_space.shape) not in (1, 3):
        raise ValueError(
            f"{env_id}: the algorithms take flat (1-d) or image (3-d) Box observations, got "
            f"{obs_space} (shape {tuple(obs_space.shape)}); register the env wrapped in "
            "FlattenObservation (discrete and dict observations are not supported yet)"
        )
    if isinstance(space, Box):
        wrap: Callable[[Environment], Environment] = (
            RescaleAction if policy in ("tanh_gaussian", "deterministic") else ClipAction
        )
    elif isinstance(space, Discrete):
        wrap = _unwrapped
    else:
        raise ValueError(f"{env_id}: unsupported action space {space}")
    single = wrap(base)
    vector: Callable[[int], Environment] | None = None
    if host:  # a Gymnasium vector env of n members takes VecEnv's place
        atari = env_id.startswith(("atari:", "envpool:"))  # envpool: only Atari uses it
        extra: dict[str, Any] = {"evaluation": True} if atari else {}
        if vectorization != "sync":
            extra["vectorization"] = vectorization

        def vector(n: int) -> Environment:  # evaluation envs (Atari: whole, unclipped games)
            return wrap(make_env(env_id, num_envs=n, **extra)[0])

        batched = vector(num_envs)
    else:
        batched = VecEnv(single, num_envs)
    env: Environment = EpisodeStatistics(batched)
    if normalize_reward:
        env = ScaleReward(env, gamma=reward_gamma)
    normalizer = None
    if normalize_obs:
        normalizer = NormalizeObservation(env)
        env = normalizer
    obs_shape = tuple(int(n) for n in obs_space.shape)
    return EnvStack(env, env_params, single, obs_shape, space, normalizer, vector)


def _unwrapped(env: Environment) -> Environment:
    return env


ENCODERS = ("auto", "minatar", "nature", "impala")


def image_encoder(where: str, encoder: str, obs_shape: tuple[int, ...]) -> Any:
    """The image encoder a Config's ``encoder`` names, for observations ``obs_shape``.

    ``"auto"``: MinAtar's CNN for small frames (10x10), else the Nature CNN.  Channels come
    last when the last dim is the smallest (MinAtar's ``(10, 10, 4)``), else first
    (Atari's frame stack ``(4, 84, 84)``).
    """
    from funrl import nn as fnn

    if encoder not in ENCODERS:
        raise ValueError(f"{where}: encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    channels_last = obs_shape[-1] < obs_shape[0]
    h, w = obs_shape[:2] if channels_last else obs_shape[1:]
    if encoder == "auto":
        encoder = "minatar" if max(h, w) <= 16 else "nature"
    make: dict[str, Callable[..., Any]] = {
        "minatar": fnn.minatar_cnn,
        "nature": fnn.nature_cnn,
        "impala": fnn.impala_cnn,
    }
    try:
        return make[encoder](obs_shape, channels_last=channels_last)
    except RuntimeError as e:  # a frame too small for the encoder's convolutions
        raise ValueError(f"{where}: the {encoder} encoder cannot take {obs_shape}: {e}") from None


def require_flat_obs(where: str, stack: EnvStack, networks: Any) -> None:
    """``ValueError`` for image observations with an algorithm's default (MLP) networks."""
    if stack.images and networks is None:
        raise ValueError(
            f"{where}: image observations {stack.obs_shape} need networks= with an image "
            "encoder (funrl.nn.encoded); the default networks are MLPs"
        )


def env_action(stack: EnvStack, action: torch.Tensor) -> torch.Tensor:
    """``action`` from ``algo.act`` as the base env receives it: a continuous policy acts
    in [-1, 1] (rescaled to the env's bounds) or unbounded (clipped to them), as the
    training and evaluation envs' action wrapper does; discrete actions are unchanged."""
    to_env = getattr(stack.eval_env, "env_action", None)
    return to_env(action) if to_env is not None else action


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


# --------------------------------------------------------------------------- hparams


def hparam(
    default: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """An :class:`HParams` field: its default and its allowed range (checked by ``check``).

    ``low``/``high`` bound the value (``None``: unbounded), inclusive unless
    ``low_open``/``high_open``.  Every value must also be finite.

    Example::

        >>> import torch
        >>> from funrl import tree
        >>> @tree.struct
        ... class MyHParams(HParams):
        ...     lr: torch.Tensor = hparam(3e-4, low=0.0, low_open=True)
        ...     gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)
        >>> hp = MyHParams.create(gamma=0.9)
        >>> float(hp.lr), float(hp.gamma)
        (0.0003000000142492354, 0.8999999761581421)
    """
    bounds = (low, high, low_open, high_open)
    return dataclasses.field(default=default, metadata={_RANGE: bounds})


_RANGE = "funrl_hparam_range"


def _as_hparam(cls: Any, name: str, v: Any) -> torch.Tensor:
    if isinstance(v, bool) or not isinstance(v, (int, float, torch.Tensor)):
        raise TypeError(f"{cls.__name__}.{name} must be a number or tensor, got {type(v).__name__}")
    t = torch.as_tensor(v)
    return t if t.dtype.is_floating_point else t.to(torch.float32)


class PresetConfig:
    """Mixin of every algorithm's ``Config``: :meth:`preset`."""

    @classmethod
    def preset(cls, env: str, **overrides: Any) -> Any:
        """This Config from the tuned preset for ``env`` (``funrl/presets/<algo>.toml``),
        with ``overrides``; ``ValueError`` if there is none (naming those that exist)."""
        from funrl import presets

        return presets.config_for(cls, env, overrides)


class HParams(tree.Struct):
    """Base of every algorithm's sweepable hyperparameters: 0-d float tensors (a population
    adds a leading member dim), declared as ``@tree.struct`` fields with :func:`hparam`.

    ``create(**overrides)`` fills in the declared defaults; ``check()`` enforces each field's
    declared range.  Extend an algorithm's HParams by subclassing it and adding fields with
    :func:`hparam` defaults (decorate the subclass with ``@tree.struct`` too): ``create``
    and ``check`` cover the new fields without being rewritten.
    """

    def __post_init__(self) -> None:  # numbers given to the constructor become tensors
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if not isinstance(v, torch.Tensor):
                object.__setattr__(self, f.name, _as_hparam(type(self), f.name, v))

    @classmethod
    def create(cls, **overrides: Any) -> Any:
        """The declared defaults with ``overrides`` applied; each value a float tensor.

        Raises ``ValueError`` naming unknown fields (and listing the valid ones), and
        ``TypeError`` for a value that is not a number or tensor.
        """
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ValueError(
                f"{cls.__name__}: unknown field(s) {unknown}; valid fields: {sorted(names)}"
            )
        missing = [
            f.name
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.name not in overrides and f.default is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"{cls.__name__}: no default for field(s) {missing}; pass them")
        values = {
            f.name: overrides.get(f.name, f.default)
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        }
        return cls(**{n: _as_hparam(cls, n, v) for n, v in values.items()})

    @classmethod
    def preset(cls, env: str, **overrides: Any) -> Any:
        """``create`` from the tuned preset for ``env`` (``funrl/presets/<algo>.toml``) with
        ``overrides``; ``ValueError`` if there is none (naming those that exist)."""
        from funrl import presets

        return presets.hparams_for(cls, env, overrides)

    def check(self) -> None:
        """Eager range checks (any leading population dims): ``ValueError`` names the field,
        the bad values and the allowed range; ``TypeError`` a field that is not a float tensor.
        """
        name = type(self).__name__
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if not isinstance(v, torch.Tensor) or not v.dtype.is_floating_point:
                raise TypeError(f"{name}.{f.name} must be a float tensor, got {type(v).__name__}")
            low, high, low_open, high_open = f.metadata.get(_RANGE, (None, None, False, False))
            finite = torch.isfinite(v)
            ok = finite.clone()
            if low is not None:
                ok &= v > low if low_open else v >= low
            if high is not None:
                ok &= v < high if high_open else v <= high
            if not bool(ok.all()):
                bad = v[~ok].tolist() if v.ndim else v.item()
                allowed = _describe(f) if bool(finite.all()) else "finite"
                raise ValueError(f"{name}.{f.name} must be {allowed}, got {bad}")


def _describe(f: dataclasses.Field[Any]) -> str:
    low, high, low_open, high_open = f.metadata.get(_RANGE, (None, None, False, False))
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def check_hparams_if_concrete(hp: Any) -> None:
    """``hp.check()`` when its values can be read (eager, not vmapped, not traced)."""
    if tree.is_concrete(tree.leaves(hp)[0]):
        hp.check()


def check_hparams_cls(where: str, hparams_cls: Any, needed: Iterable[str]) -> None:
    """``TypeError``/``ValueError`` unless ``hparams_cls`` is an HParams struct with the fields
    the algorithm's parts read (``needed``)."""
    if not (isinstance(hparams_cls, type) and dataclasses.is_dataclass(hparams_cls)):
        raise TypeError(
            f"{where}: hparams_cls must be an @tree.struct HParams class, got {hparams_cls!r}"
        )
    have = {f.name for f in dataclasses.fields(hparams_cls)}
    missing = sorted(set(needed) - have)
    if missing:
        raise ValueError(
            f"{where}: hparams_cls {hparams_cls.__name__} lacks field(s) {missing} that the "
            "algorithm reads; add them as funrl.algos.hparam fields (subclass the algorithm's "
            "HParams)"
        )


# --------------------------------------------------------------------------- optimizers

#: ``{optimizer hyperparameter: HParams field}``: which HParams field sets each named
#: hyperparameter of an optimizer's state (``funrl.optim.set_hparams``).
OptimizerHParams = Mapping[str, str]


def resolve_optimizer(
    where: str,
    optimizer: Any,
    table: OptimizerHParams | None,
    default: Callable[[], Any],
    default_table: OptimizerHParams,
) -> tuple[Any, dict[str, str]]:
    """The optimizer and its HParams table for ``make``.

    No ``optimizer``: ``default()`` with ``default_table`` (or ``table``).  A user's
    ``optimizer`` is used with its own values: only what ``table`` names (default none) is
    set from HParams.  ``ValueError`` when the table names a hyperparameter the optimizer
    does not have.
    """
    if optimizer is None:
        opt, tbl = default(), dict(default_table if table is None else table)
    else:
        if not isinstance(optimizer, optim.GradientTransformation):
            raise TypeError(
                f"{where}: optimizer must be a funrl.optim.GradientTransformation, "
                f"got {type(optimizer).__name__}"
            )
        opt, tbl = optimizer, dict(table or {})
    have = optim.hparams(opt.init({"w": torch.zeros(1)}))
    unknown = sorted(set(tbl) - set(have))
    if unknown:
        raise ValueError(
            f"{where}: optimizer_hparams maps {unknown}, but the optimizer's hyperparameters "
            f"are {sorted(have)}"
        )
    return opt, tbl


def resolve_optimizers(
    where: str,
    optimizer: Any,
    tables: Mapping[str, OptimizerHParams] | None,
    default: Callable[[], Any],
    default_tables: Mapping[str, OptimizerHParams],
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """:func:`resolve_optimizer` per network (the keys of ``default_tables``).

    ``optimizer``: ``None``, one transformation for every network, or a dict per network;
    ``tables``: ``None`` or a table per network.
    """
    if isinstance(optimizer, dict):
        unknown = sorted(set(optimizer) - set(default_tables))
        if unknown:
            raise ValueError(
                f"{where}: optimizer has networks {unknown}; expected {sorted(default_tables)}"
            )
    opts, out = {}, {}
    for net, default_table in default_tables.items():
        given = optimizer.get(net) if isinstance(optimizer, dict) else optimizer
        table = None if tables is None else tables.get(net, {})
        opts[net], out[net] = resolve_optimizer(
            f"{where} ({net})", given, table, default, default_table
        )
    return opts, out


def network_step(
    opts: Mapping[str, Any], tables: Mapping[str, OptimizerHParams]
) -> Callable[..., tuple[Any, Any]]:
    """``step(net, grads, state, params, hp) -> (params, opt_state)``: one step of network
    ``net``'s optimizer (state ``state.opt_state[net]``), its hyperparameters from ``hp``."""

    def step(net: str, grads: Any, state: Any, params: Any, hp: Any) -> tuple[Any, Any]:
        opt_state = set_optimizer_hparams(state.opt_state[net], tables[net], hp)
        updates, opt_state = opts[net].update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state

    return step


def check_anneal_lr(where: str, anneal_lr: bool, table: OptimizerHParams) -> None:
    """``ValueError`` when ``Config.anneal_lr`` is set but the optimizer's hyperparameter
    table maps no ``lr`` (there is nothing to anneal)."""
    if anneal_lr and "lr" not in table:
        raise ValueError(
            f"{where}: Config.anneal_lr anneals the optimizer's lr from HParams.lr, but "
            "optimizer_hparams maps no 'lr'; pass optimizer_hparams={'lr': 'lr', ...} or "
            "Config(anneal_lr=False) (and put a schedule in your optimizer)"
        )


def set_optimizer_hparams(
    opt_state: Any, table: OptimizerHParams, hp: Any, **values: torch.Tensor
) -> Any:
    """``opt_state`` with each hyperparameter in ``table`` set from its HParams field;
    ``values`` (e.g. an annealed ``lr``) replace the field's value for those names."""
    if not table:
        return opt_state
    return optim.set_hparams(
        opt_state, **{k: values[k] if k in values else getattr(hp, f) for k, f in table.items()}
    )


# --------------------------------------------------------------------------- part checks


def check_units(where: str, units: Any, stack: EnvStack, env_id: str) -> None:
    """``ValueError`` for a population (vmapping) unit transform over a host env."""
    if stack.host and getattr(units, "vmaps", False):
        raise ValueError(
            f"{where}: {env_id} is a host env (its simulator steps outside torch), which "
            "cannot be vmapped over a population; train its members one at a time "
            "(funrl.train) or use a torch env (funrl list)"
        )


def check_part(where: str, part: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on example inputs at ``make`` time; any failure becomes a ``ValueError``
    naming the part (a wrong signature, a field the HParams class lacks, a shape mismatch)."""
    try:
        return fn(*args)
    except Exception as e:
        raise ValueError(
            f"{where}: {part} failed on example inputs: {type(e).__name__}: {e}"
        ) from e


def example_params(where: str, nets: Any) -> dict[str, Any]:
    """Params of every ``funrl.nn.Model`` field of a ``Networks`` record, from a fixed key
    (for make-time checks); a failing ``init`` becomes a ``ValueError`` naming the network."""
    models = {n: m for n, m in nets._asdict().items() if hasattr(m, "init") and hasattr(m, "apply")}
    keys = R.split(R.key(0), max(len(models), 1))
    return {
        n: check_part(where, f"networks.{n}.init", m.init, keys[i])
        for i, (n, m) in enumerate(models.items())
    }


def expect_shape(where: str, what: str, x: Any, shape: tuple[int, ...]) -> None:
    """``ValueError`` unless ``x`` is a float tensor of ``shape``."""
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != shape:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{where}: {what} must have shape {shape}, got {got}")


def expect_loss(where: str, part: str, out: Any) -> tuple[torch.Tensor, Any]:
    """``(loss, aux)`` from a loss part's output; ``ValueError`` unless the loss is 0-d."""
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(f"{where}: {part} must return (loss, aux), got {type(out).__name__}")
    loss, aux = out
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0 or not loss.is_floating_point():
        got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"{where}: {part} must return a 0-d float loss, got {got}")
    return loss, aux
