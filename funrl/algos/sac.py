"""Soft Actor-Critic as ``init`` + ``update``: continuous (Haarnoja et al., 2018, v2) and
discrete (Christodoulou, 2019, ``Config(discrete=True)``).

One ``update`` interleaves acting and learning at a fixed ratio, every step a unit::

    collect  train_freq times: one step of num_envs envs, the transitions added to the
             replay buffer (uniform random actions while env steps < learning_starts)
    learn    gradient_steps times: sample a batch; soft-Q step on the twin critics; policy
             step through the updated critics; temperature step; Polyak target update
    finish   episode statistics

so one update takes ``num_envs * train_freq`` env steps and ``gradient_steps`` gradient
steps (the update-to-data ratio is their quotient).  Before learning starts the learn unit
still runs on a placeholder batch and its result is discarded with ``torch.where``: the
arithmetic is the same every update, so members of a vmapped population stay in lockstep.

Continuous actions: a tanh-squashed Gaussian in ``[-1, 1]`` (the env stack rescales to the
env's bounds), twin critics ``Q(s, a)``, target entropy ``-target_entropy_scale * act_dim``.
Discrete actions: a categorical policy, twin critics ``Q(s, .)``, exact expectations over
actions, target entropy ``target_entropy_scale * log(A)``.

The off-policy plumbing (replay collection unit, Polyak averaging, sampling with a
placeholder before learning) is shared with :mod:`funrl.algos.td3` and :mod:`funrl.algos.ddpg`.

Example::

    >>> import funrl
    >>> from funrl.algos import sac
    >>> cfg = sac.Config(env="Pendulum-v1", num_envs=2, batch_size=8, learning_starts=8,
    ...                  buffer_size=64, hidden=(16,))
    >>> algo = sac.make(cfg)
    >>> hp = sac.HParams.create()
    >>> state = algo.init(funrl.random.key(0), hp)
    >>> for _ in range(5):
    ...     state, metrics = algo.update(state, hp)
    >>> int(state.global_step), bool(metrics["critic_loss"].isfinite())
    (10, True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from funrl import buffers, collectors, losses, optim, tree
from funrl import distributions as D
from funrl import nn as fnn
from funrl import random as R
from funrl.algos.common import (
    Algo,
    EnvStack,
    check_hparams_fields,
    episode_metrics,
    hparams_from_kwargs,
    make_env_stack,
    remaker,
)
from funrl.algos.units import UnitTransform, eager
from funrl.collectors import CollectorState
from funrl.envs.spaces import Box, Discrete
from funrl.losses._checks import is_concrete

__all__ = [
    "Config",
    "DiscreteHParams",
    "HParams",
    "TrainState",
    "make",
    "sample_batch",
    "soft_update",
]


# --------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class Config:
    """Static off-policy settings (changing one means a new ``make`` and a recompile).

    Attributes:
      env: a registered env id (``funrl.envs.registered()``).
      discrete: discrete SAC (needs a ``Discrete`` action space); else continuous (``Box``).
      num_envs: parallel envs; one collector step takes ``num_envs`` env steps.
      train_freq: collector steps per update.
      gradient_steps: gradient steps per update (UTD ratio ``gradient_steps /
        (num_envs * train_freq)``).
      buffer_size: replay capacity in transitions.  Every add writes the buffer out of
        place (pure state: the whole buffer is copied, ~36 bytes per transition for
        Pendulum), so keep it near the number of steps you will take.
      batch_size: transitions per gradient step.
      learning_starts: env steps (over all envs) of uniform random actions before the
        first gradient step.
      total_timesteps: training length in env steps (sets ``num_updates``).
      hidden, activation: actor and critic MLPs (separate networks).
      autotune: learn the temperature; else it stays ``HParams.alpha``.
    """

    env: str = "Pendulum-v1"
    discrete: bool = False
    num_envs: int = 1
    train_freq: int = 1
    gradient_steps: int = 1
    buffer_size: int = 100_000
    batch_size: int = 256
    learning_starts: int = 5_000
    total_timesteps: int = 100_000
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    autotune: bool = True

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.train_freq

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)

    def validate(self) -> None:
        validate_offpolicy_config(self)


def validate_offpolicy_config(config: Any) -> None:
    """Shared checks of off-policy Configs; ``ValueError`` names the field."""
    for name in ("num_envs", "train_freq", "gradient_steps", "buffer_size", "batch_size"):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive int, got {v!r}")
    for name in ("learning_starts", "total_timesteps"):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{type(config).__name__}.{name} must be an int >= 0, got {v!r}")
    if config.buffer_size < max(config.batch_size, config.num_envs):
        raise ValueError(
            f"buffer_size ({config.buffer_size}) must be >= batch_size ({config.batch_size}) "
            f"and >= num_envs ({config.num_envs})"
        )
    if not all(isinstance(h, int) and h > 0 for h in config.hidden):
        raise ValueError(f"hidden must be positive ints, got {config.hidden!r}")


# --------------------------------------------------------------------------- hparams

_DEFAULTS = dict(
    actor_lr=3e-4,
    critic_lr=1e-3,
    alpha_lr=1e-3,
    gamma=0.99,
    tau=0.005,
    alpha=1.0,
    target_entropy_scale=1.0,
)


@tree.struct
class HParams(tree.Struct):
    """Sweepable SAC hyperparameters, each a 0-d float tensor (vmap adds a member dim).

    Attributes:
      actor_lr, critic_lr, alpha_lr: Adam learning rates (policy, twin critics, log-alpha).
      gamma: discount; tau: Polyak rate of the target critics (``1`` copies).
      alpha: the initial temperature with ``Config.autotune``, else the fixed one.
      target_entropy_scale: continuous: target entropy ``-scale * act_dim``; discrete:
        ``scale * log(A)`` (default 0.89 in :class:`DiscreteHParams`).
    """

    actor_lr: torch.Tensor
    critic_lr: torch.Tensor
    alpha_lr: torch.Tensor
    gamma: torch.Tensor
    tau: torch.Tensor
    alpha: torch.Tensor
    target_entropy_scale: torch.Tensor

    @classmethod
    def create(cls, **overrides: Any) -> HParams:
        """Defaults (CleanRL's continuous SAC) with ``overrides`` applied."""
        return hparams_from_kwargs(cls, dict(_DEFAULTS), overrides)

    def check(self) -> None:
        """Eager range checks; ``ValueError`` names the field and the allowed range."""
        check_hparams_fields(
            self,
            positive=("actor_lr", "critic_lr", "alpha_lr", "alpha", "tau"),
            unit=("gamma", "tau"),
            nonnegative=("target_entropy_scale",),
        )


@tree.struct
class DiscreteHParams(HParams):
    """:class:`HParams` with discrete SAC's defaults (target entropy ``0.89 log A``, lr 3e-4)."""

    @classmethod
    def create(cls, **overrides: Any) -> DiscreteHParams:
        defaults = {**_DEFAULTS, "critic_lr": 3e-4, "alpha_lr": 3e-4, "target_entropy_scale": 0.89}
        return hparams_from_kwargs(cls, defaults, overrides)


@tree.struct
class TrainState(tree.Struct):
    """Everything SAC carries between updates (a pytree of tensors).

    Attributes:
      params: ``actor``, ``critic`` (twin, leading dim 2) and ``log_alpha`` (0-d).
      target_params: ``critic``.
      opt_state: ``actor``, ``critic``, ``alpha``.
      buffer: the replay buffer (``obs``, ``action``, ``reward``, ``next_obs``, ``terminated``).
      collector: env state, current obs and the collector's key.
      global_step: env steps taken over all envs (0-d int64).
      grad_step: gradient steps taken (masked ones, before learning starts, not counted).
      key: the learner's key.
    """

    params: dict[str, Any]
    target_params: dict[str, Any]
    opt_state: dict[str, Any]
    buffer: buffers.ReplayState
    collector: CollectorState
    env_params: Any
    global_step: torch.Tensor
    grad_step: torch.Tensor
    key: torch.Tensor


# --------------------------------------------------------------------------- shared plumbing


def soft_update(target: Any, online: Any, tau: torch.Tensor | float) -> Any:
    """Polyak averaging ``tau * online + (1 - tau) * target`` leaf by leaf.

    The form of optax's ``incremental_update`` and SB3's ``polyak_update``; ``tau = 1``
    copies ``online`` exactly (a hard target update).

    Args:
      target, online: pytrees of float tensors with the same structure.
      tau: 0-d rate in ``[0, 1]``; ``1`` copies ``online``.

    Example::

        >>> import torch
        >>> soft_update({"w": torch.zeros(2)}, {"w": torch.ones(2)}, 0.25)["w"].tolist()
        [0.25, 0.25]
    """
    return tree.map(lambda t, o: tau * o + (1 - tau) * t, target, online)


def contiguous(x: Any) -> Any:
    """Every tensor leaf of ``x`` (1-d or more) cloned into row-major strides.

    Compiled units guard on input strides: an expanded leaf (stride 0) from an env reset, or
    a transposed gradient layout carried into Adam's moments, would make the second call
    recompile.  ``Tensor.contiguous`` is not enough (it keeps the strides of size-1 dims,
    which the guards compare, and a compiled graph may lay an output out differently from
    what tracing saw), so units return explicit row-major clones (a cheap copy of small
    networks' parameters).
    """

    def fix(t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.ndim < 1:
            return t.contiguous() if isinstance(t, torch.Tensor) else t
        return t.clone(memory_format=torch.contiguous_format)

    return tree.map(fix, x)


def learning_mask(state: Any, config: Any) -> torch.Tensor:
    """0-d bool: gradient steps count (``global_step >= learning_starts`` and a full batch)."""
    return (state.global_step >= config.learning_starts) & buffers.can_sample(
        state.buffer, config.batch_size
    )


def sample_batch(
    buffer: buffers.ReplayState, key: torch.Tensor, batch_size: int, learning: torch.Tensor
) -> Any:
    """A replay batch, or a placeholder batch (any slots, to be discarded) while not ``learning``.

    The placeholder samples as if the buffer were full, so the eager "too few filled slots"
    check of :func:`funrl.buffers.sample` does not fire while the result is masked out.
    """
    cap = buffers.capacity_of(buffer)
    size = torch.where(learning, buffer.size, torch.full_like(buffer.size, cap))
    return buffers.sample(buffers.ReplayState(buffer.data, buffer.pos, size), key, batch_size)


def mask_metrics(
    metrics: dict[str, torch.Tensor], learning: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``metrics`` with NaN where ``learning`` is False (a discarded gradient step)."""
    return {
        k: torch.where(learning, v, torch.full_like(v, float("nan"))) for k, v in metrics.items()
    }


def example_transition(stack: EnvStack) -> dict[str, torch.Tensor]:
    """One zero transition shaped as the buffer stores it (no batch dim)."""
    space = stack.action_space
    if isinstance(space, Discrete):
        action = torch.zeros((), dtype=torch.int64)
    else:
        action = torch.zeros(space.shape, dtype=torch.float32)
    obs = torch.zeros(stack.obs_dim, dtype=torch.float32)
    return {
        "obs": obs,
        "action": action,
        "reward": torch.zeros(()),
        "next_obs": obs.clone(),
        "terminated": torch.zeros((), dtype=torch.bool),
    }


def make_collect(
    stack: EnvStack,
    policy: Callable[
        [Any, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]
    ],
    policy_params: Callable[[Any, Any], Any],
) -> Callable[[Any, Any], tuple[Any, dict[str, torch.Tensor]]]:
    """The collect unit ``collect(state, hp) -> (state, info)``: one step of every env, its
    transitions added to ``state.buffer``, ``state.global_step`` advanced by ``num_envs``.

    ``policy(pp, obs, key) -> (action, extras)`` with ``pp = policy_params(state, hp)``;
    ``info`` holds the step's ``episode_done``, ``episode_return`` and ``episode_length``.
    """
    env_step = collectors.make_step(stack.env, policy)

    def collect(state: Any, hp: Any) -> tuple[Any, dict[str, torch.Tensor]]:
        carry, tr = env_step(state.collector, policy_params(state, hp), state.env_params)
        data = {
            "obs": tr.obs,
            "action": tr.action,
            "reward": tr.reward.to(torch.float32),
            "next_obs": tr.next_obs,
            "terminated": tr.terminated,
        }
        num_envs = tr.reward.shape[0]
        state = state.replace(
            collector=carry,
            buffer=buffers.add(state.buffer, data),
            global_step=state.global_step + num_envs,
        )
        info = {k: tr.info[k] for k in ("episode_done", "episode_return", "episode_length")}
        return state, info

    return collect


def check_action_space(stack: EnvStack, discrete: bool, algo: str) -> None:
    """``ValueError`` unless the env's action space is ``Discrete`` (``discrete``) or a 1-d ``Box``."""
    space = stack.action_space
    if discrete and not isinstance(space, Discrete):
        raise ValueError(f"{algo} (discrete) needs a Discrete action space, got {space}")
    if not discrete and not (isinstance(space, Box) and len(space.shape) == 1):
        hint = "; use sac.Config(discrete=True) for discrete SAC" if algo == "SAC" else ""
        raise ValueError(f"{algo} (continuous) needs a 1-d Box action space, got {space}{hint}")


def check_hparams_if_concrete(hp: Any) -> None:
    """``hp.check()`` when its values can be read (eager, not vmapped, not traced)."""
    if is_concrete(tree.leaves(hp)[0]):
        hp.check()


def offpolicy_update(
    config: Any,
    u_collect: Callable[..., Any],
    u_stack: Callable[..., Any],
    u_learns: Callable[[int], Callable[..., Any]],
    u_finish: Callable[..., Any],
) -> Callable[[Any, Any], tuple[Any, dict[str, torch.Tensor]]]:
    """The host loop of one update: ``train_freq`` collect units, then ``gradient_steps``
    learn units (``u_learns(j)`` is the unit for gradient step ``j`` of the update), then finish.

    Learn metrics are averaged over the update's gradient steps, ignoring NaN (steps that
    were masked out or did not take that step); all-NaN stays NaN."""

    def update(state: Any, hp: Any) -> tuple[Any, dict[str, torch.Tensor]]:
        infos = []
        for _ in range(config.train_freq):
            state, info = u_collect(state, hp)
            infos.append(info)
        learn_metrics = []
        for j in range(config.gradient_steps):
            state, m = u_learns(j)(state, hp)
            learn_metrics.append(m)
        state, metrics = u_finish(state, u_stack(infos), hp)
        metrics = dict(metrics)
        metrics.update(tree.map(lambda *xs: torch.stack(xs).nanmean(0), *learn_metrics))
        return state, metrics

    return update


def finish_unit(
    state: Any, infos: dict[str, torch.Tensor], hp: Any
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Episode statistics over the update's collector steps (``infos`` ``[train_freq, E]``)."""
    return state, episode_metrics(infos)


# --------------------------------------------------------------------------- networks


class Networks(NamedTuple):
    actor: fnn.Model
    critic: fnn.Model


def _networks(config: Config, stack: EnvStack) -> Networks:
    h, act, obs_dim = config.hidden, config.activation, stack.obs_dim
    space = stack.action_space
    if config.discrete:
        actor = fnn.categorical_policy(obs_dim, space.n, h, act)
        critic = fnn.ensemble(fnn.q_net(obs_dim, space.n, h, activation=act), 2)
    else:
        act_dim = space.shape[0]
        actor = fnn.tanh_gaussian_policy(obs_dim, act_dim, h, activation=act)
        critic = fnn.ensemble(fnn.continuous_q_net(obs_dim, act_dim, h, act), 2)
    return Networks(actor, critic)


def _tanh_normal(out: tuple[torch.Tensor, torch.Tensor]) -> D.TanhNormal:
    mean, log_std = out
    return D.TanhNormal(mean, torch.exp(log_std))


# --------------------------------------------------------------------------- losses


def _critic_loss_fn(
    nets: Networks,
    config: Config,
    state: TrainState,
    b: dict[str, torch.Tensor],
    key: torch.Tensor,
    hp: HParams,
    alpha: torch.Tensor,
) -> Callable[[Any], Any]:
    """``critic_params -> (loss, diagnostics)``: the soft-Q loss of the twin critics on ``b``.

    Target: ``r + gamma (1 - term) E_{a' ~ pi(s')}[min_e Q'_e(s', a') - alpha log pi(a'|s')]``,
    one sample of ``a'`` (continuous) or the exact expectation (discrete).
    """
    p, target = state.params, state.target_params["critic"]
    pi_next = nets.actor.apply(p["actor"], b["next_obs"])
    if config.discrete:
        logp_next = torch.log_softmax(pi_next, -1).detach()
        q_next = nets.critic.apply(target, b["next_obs"]).min(0).values.detach()
        return lambda cp: losses.sac_discrete_critic_loss(
            nets.critic.apply(cp, b["obs"]),
            b["action"],
            b["reward"],
            b["terminated"],
            hp.gamma,
            q_next,
            logp_next.exp(),
            logp_next,
            alpha,
        )
    a_next, logp = _tanh_normal(pi_next).sample_and_log_prob(key)
    q_next = nets.critic.apply(target, b["next_obs"], a_next).min(0).values.detach()
    return lambda cp: losses.sac_critic_loss(
        nets.critic.apply(cp, b["obs"], b["action"]),
        b["reward"],
        b["terminated"],
        hp.gamma,
        q_next,
        logp.detach(),
        alpha,
    )


def _actor_loss_fn(
    nets: Networks,
    config: Config,
    critic: Any,
    obs: torch.Tensor,
    key: torch.Tensor,
    alpha: torch.Tensor,
) -> Callable[[Any], Any]:
    """``actor_params -> (loss, (diagnostics, logp))``: ``E_s[alpha log pi(a|s) - min_e Q_e(s, a)]``
    with a reparameterised ``a`` (continuous) or the exact expectation (discrete)."""
    if config.discrete:
        q = nets.critic.apply(critic, obs).min(0).values.detach()

        def discrete(ap: Any) -> Any:
            logp = torch.log_softmax(nets.actor.apply(ap, obs), -1)
            loss, m = losses.sac_discrete_actor_loss(logp.exp(), logp, q, alpha)
            return loss, (m, logp.detach())

        return discrete

    def continuous(ap: Any) -> Any:
        a, logp = _tanh_normal(nets.actor.apply(ap, obs)).sample_and_log_prob(key)
        loss, m = losses.sac_actor_loss(
            logp, nets.critic.apply(critic, obs, a).min(0).values, alpha
        )
        return loss, (m, logp.detach())

    return continuous


def _temperature_loss_fn(
    config: Config, logp: torch.Tensor, target_entropy: torch.Tensor
) -> Callable[[Any], Any]:
    """``log_alpha -> (loss, diagnostics)``: ``-log_alpha * sg(log pi + target_entropy)``."""
    if config.discrete:
        return lambda la: losses.sac_discrete_temperature_loss(la, logp.exp(), logp, target_entropy)
    return lambda la: losses.sac_temperature_loss(la, logp, target_entropy)


def make(config: Config, *, units: UnitTransform = eager, name: str = "sac") -> Algo:
    """Build SAC's pure functions for ``config`` (continuous, or discrete when ``config.discrete``).

    Args:
      config: static settings.
      units: how each compute unit is transformed (``funrl.algos.units``).
      name: the algorithm's name in logs.

    Returns:
      :class:`funrl.algos.common.Algo`; ``init(key, hp)``, ``update(state, hp)``,
      ``act(act_params, obs, key=None, deterministic=True)`` (actions in ``[-1, 1]`` for
      continuous envs: the env stack rescales them) and ``act_params(state)``.

    Raises:
      ValueError: a bad config, or an action space that does not fit ``config.discrete``.
    """
    config.validate()
    stack = make_env_stack(
        config.env, config.num_envs, "categorical" if config.discrete else "tanh_gaussian"
    )
    check_action_space(stack, config.discrete, "SAC")
    nets = _networks(config, stack)
    space = stack.action_space
    if config.discrete:
        num_actions = int(space.n)
        base_entropy = math.log(num_actions)
    else:
        act_dim = int(space.shape[0])
        base_entropy = -float(act_dim)
    opt = optim.adam(3e-4)
    hp_cls = DiscreteHParams if config.discrete else HParams

    def policy(pp: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> Any:
        k_pi, k_rand = R.split(key)
        out = nets.actor.apply(pp["actor"], obs)
        if config.discrete:
            a_pi = D.Categorical(out).sample(k_pi)
            a_rand = R.randint(k_rand, 0, num_actions, a_pi.shape)
        else:
            a_pi = _tanh_normal(out).sample(k_pi)
            a_rand = R.uniform(k_rand, a_pi.shape, low=-1.0, high=1.0)
        return torch.where(pp["random"], a_rand, a_pi), {}

    def policy_params(state: TrainState, hp: HParams) -> dict[str, Any]:
        return {
            "actor": state.params["actor"],
            "random": state.global_step < config.learning_starts,
        }

    def init(key: torch.Tensor, hp: HParams) -> TrainState:
        check_hparams_if_concrete(hp)
        k_actor, k_critic, k_env, k_state = R.split(key, 4)
        critic = nets.critic.init(k_critic)
        params = {
            "actor": nets.actor.init(k_actor),
            "critic": critic,
            "log_alpha": torch.log(hp.alpha.to(torch.float32)),
        }
        opt_state = {
            "actor": optim.set_hparams(opt.init(params["actor"]), lr=hp.actor_lr),
            "critic": optim.set_hparams(opt.init(critic), lr=hp.critic_lr),
            "alpha": optim.set_hparams(opt.init(params["log_alpha"]), lr=hp.alpha_lr),
        }
        zero = torch.zeros((), dtype=torch.int64)
        state = TrainState(
            params=params,
            target_params={"critic": tree.map(torch.clone, critic)},
            opt_state=opt_state,
            buffer=buffers.init(example_transition(stack), config.buffer_size),
            collector=collectors.init(stack.env, stack.env_params, k_env),
            env_params=stack.env_params,
            global_step=zero,
            grad_step=zero.clone(),
            key=k_state,
        )
        return contiguous(state)

    def step(
        name: str, grads: Any, state: TrainState, params: Any, lr: torch.Tensor
    ) -> tuple[Any, Any]:
        opt_state = optim.set_hparams(state.opt_state[name], lr=lr)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state

    def learn(state: TrainState, hp: HParams) -> tuple[TrainState, dict[str, torch.Tensor]]:
        k_sample, k_next, k_pi, k_state = R.split(state.key, 4)
        learning = learning_mask(state, config)
        b = sample_batch(state.buffer, k_sample, config.batch_size, learning)
        p = state.params
        alpha = torch.exp(p["log_alpha"]).detach() if config.autotune else hp.alpha
        grad = lambda f, x: torch.func.grad_and_value(f, has_aux=True)(x)  # noqa: E731

        g, (critic_loss, m_critic) = grad(
            _critic_loss_fn(nets, config, state, b, k_next, hp, alpha), p["critic"]
        )
        critic, opt_critic = step("critic", g, state, p["critic"], hp.critic_lr)
        g, (actor_loss, (m_actor, logp)) = grad(
            _actor_loss_fn(nets, config, critic, b["obs"], k_pi, alpha), p["actor"]
        )
        actor, opt_actor = step("actor", g, state, p["actor"], hp.actor_lr)
        log_alpha, opt_alpha = p["log_alpha"], state.opt_state["alpha"]
        if config.autotune:
            target_entropy = hp.target_entropy_scale * base_entropy
            g, _ = grad(_temperature_loss_fn(config, logp, target_entropy), log_alpha)
            log_alpha, opt_alpha = step("alpha", g, state, log_alpha, hp.alpha_lr)

        new = (
            {"actor": actor, "critic": critic, "log_alpha": log_alpha},
            {"critic": soft_update(state.target_params["critic"], critic, hp.tau)},
            {"actor": opt_actor, "critic": opt_critic, "alpha": opt_alpha},
        )
        kept = (p, state.target_params, state.opt_state)
        params, target_params, opt_state = contiguous(tree.where(learning, new, kept))
        metrics = {
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "q_mean": m_critic["q_mean"],
            "td_error_abs_mean": m_critic["td_error_abs_mean"],
            "entropy": m_actor["entropy"],
            "alpha": alpha.detach() * torch.ones(()),
        }
        state = state.replace(
            params=params,
            target_params=target_params,
            opt_state=opt_state,
            grad_step=state.grad_step + learning.to(torch.int64),
            key=k_state,
        )
        return state, mask_metrics(metrics, learning)

    u_collect = units(make_collect(stack, policy, policy_params), "collect")
    u_learn = units(learn, "learn")
    update = offpolicy_update(
        config,
        u_collect,
        units(tree.stack, "stack"),
        lambda j: u_learn,
        units(finish_unit, "finish"),
    )

    def act_params(state: TrainState) -> dict[str, Any]:
        return {"actor": state.params["actor"]}

    def act(
        params: dict[str, Any],
        obs: torch.Tensor,
        key: torch.Tensor | None = None,
        deterministic: bool = True,
    ) -> torch.Tensor:
        out = nets.actor.apply(params["actor"], obs)
        dist: Any = D.Categorical(out) if config.discrete else _tanh_normal(out)
        if deterministic or key is None:
            return dist.mode()
        return dist.sample(key)

    return Algo(
        name=name,
        config=config,
        init=units(init, "init"),
        update=update,
        act=act,
        act_params=act_params,
        env_stack=stack,
        hparams_cls=hp_cls,
        steps_per_update=config.steps_per_update,
        networks=nets,
        optimizer=opt,
        remake=remaker(make, config, {"units": units, "name": name}),
    )
