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
``Config(use_sde=True)`` explores with gSDE instead (Raffin et al., 2022; SB3's
``use_sde``): the noise is ``features(s) @ W`` with one exploration matrix ``W`` per env,
redrawn every ``sde_sample_freq`` collector steps (:class:`SDETrainState`,
:class:`funrl.distributions.TanhGSDE`), the exploration that solves sparse-reward tasks such
as MountainCarContinuous.
Discrete actions: a categorical policy, twin critics ``Q(s, .)``, exact expectations over
actions, target entropy ``target_entropy_scale * log(A)``.

Parts (:func:`make`): ``networks=Networks(actor=..., critic=...)`` (the critic an
ensemble: REDQ's ten critics are ``funrl.nn.ensemble(q, 10)``), ``critic_loss_fn`` and
``actor_loss_fn`` (signatures of :func:`critic_loss` / :func:`actor_loss`, which see the
whole ensemble), ``optimizer`` and ``optimizer_hparams``.  The loop is
:mod:`funrl.algos.offpolicy`'s.

Example::

    >>> import funrl
    >>> from funrl.algos import sac
    >>> algo = sac.make(sac.Config(env="CartPole-v1", discrete=True, batch_size=8,
    ...                            learning_starts=4, buffer_size=32, hidden=(16,)))
    >>> hp = algo.hparams_cls.create()  # DiscreteHParams: target entropy 0.89 log 2
    >>> state = algo.init(funrl.random.key(0), hp)
    >>> for _ in range(10):
    ...     state, metrics = algo.update(state, hp)
    >>> int(state.grad_step), float(metrics["alpha"]) < 1.0  # 8 in the buffer from step 8
    (3, True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from funrl import autodiff, losses, optim, tree
from funrl import distributions as D
from funrl import nn as fnn
from funrl import random as R
from funrl.algos import common, offpolicy
from funrl.algos.common import Algo, hparam
from funrl.algos.units import UnitTransform, eager
from funrl.envs.spaces import Box, Discrete

__all__ = [
    "OPTIMIZER_HPARAMS",
    "Config",
    "DiscreteHParams",
    "HParams",
    "Networks",
    "SDETrainState",
    "TrainState",
    "actor_loss",
    "critic_loss",
    "default_networks",
    "make",
    "policy_dist",
]

TrainState = offpolicy.TrainState  # params: actor, critic (ensemble), log_alpha; targets: critic


@tree.struct
class SDETrainState(offpolicy.TrainState):
    """:class:`funrl.algos.offpolicy.TrainState` plus ``sde_noise``, every env's gSDE
    exploration matrix as standard normals ``[num_envs, F, act_dim]`` (``Config.use_sde``;
    the matrix is ``exp(log_std) * sde_noise``)."""

    sde_noise: torch.Tensor


@dataclasses.dataclass(frozen=True)
class Config(offpolicy.Config):
    """Static SAC settings (see :class:`funrl.algos.offpolicy.Config` for the shared ones).

    Attributes:
      env: a registered env id.
      discrete: discrete SAC (needs a ``Discrete`` action space); else continuous (``Box``).
      hidden, activation: the default actor and twin critics.
      autotune: learn the temperature; else it stays ``HParams.alpha``.
      use_sde: explore with gSDE (continuous only): the default actor becomes
        :func:`funrl.nn.gsde_policy` and the state an :class:`SDETrainState`.
      sde_sample_freq: with ``use_sde``, redraw each env's exploration matrix every this
        many collector steps; ``-1`` (SB3's default) every update (``train_freq`` steps).
      log_std_init: with ``use_sde``, the default actor's initial ``log_std`` (SB3: -3).
    """

    env: str = "Pendulum-v1"
    discrete: bool = False
    autotune: bool = True
    use_sde: bool = False
    sde_sample_freq: int = -1
    log_std_init: float = -3.0

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        f = self.sde_sample_freq
        if isinstance(f, bool) or not isinstance(f, int) or not (f == -1 or f >= 1):
            raise ValueError(f"{name}.sde_sample_freq must be -1 or a positive int, got {f!r}")
        if self.use_sde and self.discrete:
            raise ValueError(f"{name}.use_sde is for continuous actions; set discrete=False")
        if not math.isfinite(self.log_std_init):
            raise ValueError(f"{name}.log_std_init must be finite, got {self.log_std_init!r}")

    @property
    def sde_period(self) -> int:
        """Collector steps between two draws of the gSDE matrices."""
        return self.train_freq if self.sde_sample_freq == -1 else self.sde_sample_freq


@tree.struct
class HParams(common.HParams):
    """Sweepable SAC hyperparameters, each a 0-d float tensor (vmap adds a member dim).

    Attributes:
      actor_lr, critic_lr, alpha_lr: Adam learning rates (policy, critics, log-alpha), see
        :data:`OPTIMIZER_HPARAMS`.
      gamma: discount; tau: Polyak rate of the target critics (``1`` copies).
      alpha: the initial temperature with ``Config.autotune``, else the fixed one.
      target_entropy_scale: continuous: target entropy ``-scale * act_dim``; discrete:
        ``scale * log(A)`` (default 0.89 in :class:`DiscreteHParams`).
    """

    actor_lr: torch.Tensor = hparam(3e-4, low=0.0, low_open=True)
    critic_lr: torch.Tensor = hparam(1e-3, low=0.0, low_open=True)
    alpha_lr: torch.Tensor = hparam(1e-3, low=0.0, low_open=True)
    gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)
    tau: torch.Tensor = hparam(0.005, low=0.0, high=1.0, low_open=True)
    alpha: torch.Tensor = hparam(1.0, low=0.0, low_open=True)
    target_entropy_scale: torch.Tensor = hparam(1.0, low=0.0)


@tree.struct
class DiscreteHParams(HParams):
    """:class:`HParams` with discrete SAC's defaults (target entropy ``0.89 log A``, lr 3e-4)."""

    critic_lr: torch.Tensor = hparam(3e-4, low=0.0, low_open=True)
    alpha_lr: torch.Tensor = hparam(3e-4, low=0.0, low_open=True)
    target_entropy_scale: torch.Tensor = hparam(0.89, low=0.0)


#: Per network, the optimizer hyperparameters set from HParams (name -> field).
OPTIMIZER_HPARAMS: dict[str, common.OptimizerHParams] = {
    "actor": {"lr": "actor_lr"},
    "critic": {"lr": "critic_lr"},
    "alpha": {"lr": "alpha_lr"},
}


class Networks(NamedTuple):
    """SAC's networks.

    Attributes:
      actor: continuous ``apply(params, obs) -> (mean, log_std)`` (a tanh-squashed
        Gaussian; with ``Config.use_sde`` ``(mean, log_std [F, act_dim], features [..., F])``,
        see :func:`funrl.nn.gsde_policy`), discrete ``apply(params, obs) -> logits``.
      critic: an ensemble (leading dim ``E``, e.g. ``funrl.nn.ensemble(q, 2)``): continuous
        ``apply(params, obs, action) -> [E, ...]``, discrete ``apply(params, obs) ->
        [E, ..., num_actions]``.
    """

    actor: fnn.Model
    critic: fnn.Model


def default_networks(config: Config, obs_dim: int, action_space: Any) -> Networks:
    """Twin critics and the policy ``config`` describes (``hidden``, ``activation``)."""
    h, act = config.hidden, config.activation
    if config.discrete:
        actor = fnn.categorical_policy(obs_dim, action_space.n, h, act)
        critic = fnn.ensemble(fnn.q_net(obs_dim, action_space.n, h, activation=act), 2)
    else:
        act_dim = action_space.shape[0]
        if config.use_sde:
            actor = fnn.gsde_policy(obs_dim, act_dim, h, config.log_std_init, activation=act)
        else:
            actor = fnn.tanh_gaussian_policy(obs_dim, act_dim, h, activation=act)
        critic = fnn.ensemble(fnn.continuous_q_net(obs_dim, act_dim, h, act), 2)
    return Networks(actor, critic)


def _tanh_normal(out: tuple[torch.Tensor, torch.Tensor]) -> D.TanhNormal:
    mean, log_std = out
    return D.TanhNormal(mean, torch.exp(log_std))


def policy_dist(config: Config, out: Any) -> D.TanhNormal | D.TanhGSDE:
    """The continuous policy's distribution from the actor's output: a
    :class:`~funrl.distributions.TanhNormal`, or with ``config.use_sde`` a
    :class:`~funrl.distributions.TanhGSDE` (``sample_and_log_prob(key)`` draws one
    exploration matrix for the whole batch, as SB3 does per gradient step)."""
    if config.use_sde:
        mean, log_std, features = out
        return D.TanhGSDE(mean, features, torch.exp(log_std))
    return _tanh_normal(out)


def critic_loss(
    nets: Networks,
    config: Config,
    critic_params: Any,
    params: dict[str, Any],
    target_params: dict[str, Any],
    batch: dict[str, torch.Tensor],
    key: torch.Tensor,
    hp: Any,
    alpha: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The soft-Q loss of the critic ensemble (``critic_params``) on ``batch``.

    Target: ``r + gamma (1 - term) E_{a' ~ pi(s')}[min_e Q'_e(s', a') - alpha log pi(a'|s')]``
    with the current actor ``params["actor"]`` and the target critics
    ``target_params["critic"]``: one sample of ``a'`` drawn with ``key`` (continuous) or
    the exact expectation (discrete).  ``batch``: ``obs, action, reward, next_obs,
    terminated`` ``[B, ...]``.  Returns ``(loss, 0-d metrics)``.
    """
    target = target_params["critic"]
    pi_next = nets.actor.apply(params["actor"], batch["next_obs"])
    if config.discrete:
        logp_next = torch.log_softmax(pi_next, -1).detach()
        q_next = nets.critic.apply(target, batch["next_obs"]).min(0).values.detach()
        return losses.sac_discrete_critic_loss(
            nets.critic.apply(critic_params, batch["obs"]), batch["action"], batch["reward"],
            batch["terminated"], hp.gamma, q_next, logp_next.exp(), logp_next, alpha,
        )  # fmt: skip
    a_next, logp = policy_dist(config, pi_next).sample_and_log_prob(key)
    q_next = nets.critic.apply(target, batch["next_obs"], a_next).min(0).values.detach()
    return losses.sac_critic_loss(
        nets.critic.apply(critic_params, batch["obs"], batch["action"]), batch["reward"],
        batch["terminated"], hp.gamma, q_next, logp.detach(), alpha,
    )  # fmt: skip


def actor_loss(
    nets: Networks,
    config: Config,
    actor_params: Any,
    critic_params: Any,
    obs: torch.Tensor,
    key: torch.Tensor,
    hp: Any,
    alpha: torch.Tensor,
) -> tuple[torch.Tensor, tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """``E_s[alpha log pi(a|s) - min_e Q_e(s, a)]`` through the (just updated) critics.

    A reparameterised ``a`` drawn with ``key`` (continuous) or the exact expectation
    (discrete).  Returns ``(loss, (0-d metrics, logp))``: ``logp`` (detached; ``[B]``
    continuous, ``[B, A]`` discrete) feeds the temperature loss.
    """
    if config.discrete:
        q = nets.critic.apply(critic_params, obs).min(0).values.detach()
        logp = torch.log_softmax(nets.actor.apply(actor_params, obs), -1)
        loss, m = losses.sac_discrete_actor_loss(logp.exp(), logp, q, alpha)
        return loss, (m, logp.detach())
    a, logp = policy_dist(config, nets.actor.apply(actor_params, obs)).sample_and_log_prob(key)
    q = nets.critic.apply(critic_params, obs, a).min(0).values
    loss, m = losses.sac_actor_loss(logp, q, alpha)
    return loss, (m, logp.detach())


def _temperature_loss(config: Config, logp: torch.Tensor, target_entropy: Any) -> Callable:
    """``log_alpha -> (loss, diagnostics)``: ``-log_alpha * sg(log pi + target_entropy)``."""
    if config.discrete:
        return lambda la: losses.sac_discrete_temperature_loss(la, logp.exp(), logp, target_entropy)
    return lambda la: losses.sac_temperature_loss(la, logp, target_entropy)


def _scalars(*dicts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The 0-d entries of ``dicts``, later ones winning on a shared name."""
    return {k: v for d in dicts for k, v in d.items() if v.ndim == 0}


def make(
    config: Config,
    *,
    networks: Networks | None = None,
    critic_loss_fn: Callable[..., Any] | None = None,
    actor_loss_fn: Callable[..., Any] | None = None,
    optimizer: optim.GradientTransformation | dict[str, Any] | None = None,
    optimizer_hparams: dict[str, common.OptimizerHParams] | None = None,
    hparams_cls: type | None = None,
    units: UnitTransform = eager,
    name: str = "sac",
) -> Algo:
    """Build SAC's pure functions for ``config`` (continuous, or discrete when ``config.discrete``).

    Args:
      config: static settings.
      networks: ``Networks(actor, critic)``; default :func:`default_networks`.
      critic_loss_fn, actor_loss_fn: signatures of :func:`critic_loss` / :func:`actor_loss`
        (the defaults).
      optimizer: one ``GradientTransformation`` for every network, or a dict ``actor``,
        ``critic``, ``alpha``; default Adam.
      optimizer_hparams: per network, which HParams field sets which optimizer
        hyperparameter; default :data:`OPTIMIZER_HPARAMS` for the default optimizer, none
        for yours (its values are used as given).
      hparams_cls: default :class:`HParams` (:class:`DiscreteHParams` when discrete), or a
        subclass with the fields your parts read.
      units: how each compute unit runs (``funrl.algos.units``).
      name: the algorithm's name in logs.

    Returns:
      :class:`funrl.algos.common.Algo`; ``act(act_params, obs, key=None, deterministic=True)``
      (actions in ``[-1, 1]`` for continuous envs: the env stack rescales them).

    Raises:
      ValueError: a bad config, an action space that does not fit ``config.discrete``, or a
        part that fails on example inputs.
    """
    config.validate()
    parts = dict(networks=networks, critic_loss_fn=critic_loss_fn, actor_loss_fn=actor_loss_fn,
                 optimizer=optimizer, optimizer_hparams=optimizer_hparams,
                 hparams_cls=hparams_cls, units=units, name=name)  # fmt: skip
    where = f"{name}.make"
    stack = common.make_env_stack(
        config.env,
        config.num_envs,
        "categorical" if config.discrete else "tanh_gaussian",
        vectorization=config.host_vectorization,
    )
    _check_action_space(where, stack.action_space, config.discrete)
    space = stack.action_space
    common.require_flat_obs(where, stack, networks)
    nets = networks or default_networks(config, stack.obs_dim, space)
    offpolicy.check_obs_storage(where, config, stack)
    critic_loss_fn = critic_loss_fn or critic_loss
    actor_loss_fn = actor_loss_fn or actor_loss
    hparams_cls = hparams_cls or (DiscreteHParams if config.discrete else HParams)
    opts, tables = common.resolve_optimizers(
        where, optimizer, optimizer_hparams, lambda: optim.adam(3e-4), OPTIMIZER_HPARAMS
    )
    parts.update(optimizer=opts, optimizer_hparams=tables)  # remake keeps them
    needed = {"gamma", "tau", "alpha", "target_entropy_scale"}
    common.check_hparams_cls(
        where, hparams_cls, needed.union(*(t.values() for t in tables.values()))
    )
    sde_matrix = _check_parts(
        where, config, nets, critic_loss_fn, actor_loss_fn, stack, hparams_cls
    )
    if config.discrete:
        num_actions = int(space.n)
        base_entropy = math.log(num_actions)
    else:
        base_entropy = -float(space.shape[0])
    sde = sde_matrix is not None
    if sde_matrix is not None:
        sde_shape = (config.num_envs, *sde_matrix)

    def policy(pp: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> Any:
        k_pi, k_rand = R.split(key)
        out = nets.actor.apply(pp["actor"], obs)
        extras = {}
        if config.discrete:
            a_pi = D.Categorical(out).sample(k_pi)
            a_rand = R.randint(k_rand, 0, num_actions, a_pi.shape)
        elif sde:  # each env's matrix, redrawn every sde_period steps (also while random)
            fresh = R.normal(k_pi, pp["sde"].shape, dtype=pp["sde"].dtype).to(obs.device)
            eps = torch.where(pp["redraw"], fresh, pp["sde"])
            mean, log_std, features = out
            a_pi = D.TanhGSDE(mean, features, torch.exp(log_std)).sample_with(eps)
            a_rand = R.uniform(k_rand, a_pi.shape, low=-1.0, high=1.0)
            extras["sde"] = eps
        else:
            a_pi = _tanh_normal(out).sample(k_pi)
            a_rand = R.uniform(k_rand, a_pi.shape, low=-1.0, high=1.0)
        return torch.where(pp["random"], a_rand, a_pi), extras

    def policy_params(state: Any, hp: Any) -> dict[str, Any]:
        pp = {
            "actor": state.params["actor"],
            "random": state.global_step < config.learning_starts,
        }
        if sde:
            pp["sde"] = state.sde_noise
            pp["redraw"] = (state.global_step // config.num_envs) % config.sde_period == 0
        return pp

    def sde_rows(state: Any, tr: Any, hp: Any) -> tuple[Any, Any, None]:
        """Plain rows; the matrices drawn (or kept) this step carried to the next."""
        return offpolicy.plain_rows(state.replace(sde_noise=tr.extras["sde"]), tr, hp)

    def init(key: torch.Tensor, hp: Any) -> Any:
        common.check_hparams_if_concrete(hp)
        k_actor, k_critic, k_env, k_state = R.split(key, 4)
        critic = nets.critic.init(k_critic)
        params = {
            "actor": nets.actor.init(k_actor),
            "critic": critic,
            "log_alpha": torch.log(hp.alpha.to(torch.float32)),
        }
        opt_state = {
            n: common.set_optimizer_hparams(opts[n].init(params[p]), tables[n], hp)
            for n, p in (("actor", "actor"), ("critic", "critic"), ("alpha", "log_alpha"))
        }
        extra = {"sde_noise": torch.zeros(sde_shape)} if sde else {}
        return offpolicy.new_state(
            SDETrainState if sde else TrainState,
            stack,
            params=params,
            target_params={"critic": tree.map(torch.clone, critic)},
            opt_state=opt_state,
            buffer=offpolicy.init_buffer(offpolicy.plain_example(stack), config),
            k_env=k_env,
            key=k_state,
            **extra,
        )

    step = common.network_step(opts, tables)

    def learn_step(
        state: Any, b: dict[str, torch.Tensor], keys: list, hp: Any, variant: Any
    ) -> offpolicy.Step:
        k_next, k_pi = keys
        p = state.params
        alpha = torch.exp(p["log_alpha"]).detach() if config.autotune else hp.alpha
        grad = lambda f, x: autodiff.grad_and_value(f, has_aux=True)(x)  # noqa: E731
        g, (c_loss, m_critic) = grad(
            lambda cp: critic_loss_fn(
                nets, config, cp, p, state.target_params, b, k_next, hp, alpha
            ),
            p["critic"],
        )
        critic, opt_critic = step("critic", g, state, p["critic"], hp)
        g, (a_loss, (m_actor, logp)) = grad(
            lambda ap: actor_loss_fn(nets, config, ap, critic, b["obs"], k_pi, hp, alpha),
            p["actor"],
        )
        actor, opt_actor = step("actor", g, state, p["actor"], hp)
        log_alpha, opt_alpha = p["log_alpha"], state.opt_state["alpha"]
        if config.autotune:
            target_entropy = hp.target_entropy_scale * base_entropy
            g, _ = grad(_temperature_loss(config, logp, target_entropy), log_alpha)
            log_alpha, opt_alpha = step("alpha", g, state, log_alpha, hp)
        metrics = {
            "critic_loss": c_loss.detach(),
            "actor_loss": a_loss.detach(),
            **_scalars(m_actor, m_critic),
            "alpha": alpha.detach() * torch.ones(()),
        }
        return offpolicy.Step(
            {"actor": actor, "critic": critic, "log_alpha": log_alpha},
            {"critic": offpolicy.soft_update(state.target_params["critic"], critic, hp.tau)},
            {"actor": opt_actor, "critic": opt_critic, "alpha": opt_alpha},
            metrics,
        )

    update = offpolicy.make_update(
        config,
        stack,
        units,
        policy=policy,
        policy_params=policy_params,
        learn_step=learn_step,
        num_keys=2,
        to_rows=sde_rows if sde else offpolicy.plain_rows,
    )

    def act_params(state: Any) -> dict[str, Any]:
        return {"actor": state.params["actor"]}

    def dist(params: dict[str, Any], obs: torch.Tensor) -> Any:
        out = nets.actor.apply(params["actor"], obs)
        return D.Categorical(out) if config.discrete else policy_dist(config, out)

    act = common.acting(lambda p, o: dist(p, o).mode(), lambda p, o, k: dist(p, o).sample(k))

    return Algo(name=name, config=config, init=units(init, "init"), update=update, act=act,
                act_params=act_params, env_stack=stack, hparams_cls=hparams_cls,
                steps_per_update=config.steps_per_update, networks=nets, optimizer=opts,
                remake=common.remaker(make, config, parts))  # fmt: skip


def _check_action_space(where: str, space: Any, discrete: bool) -> None:
    if discrete and not isinstance(space, Discrete):
        raise ValueError(f"{where}: SAC (discrete) needs a Discrete action space, got {space}")
    if not discrete and not (isinstance(space, Box) and len(space.shape) == 1):
        raise ValueError(
            f"{where}: SAC (continuous) needs a 1-d Box action space, got {space}; "
            "use sac.Config(discrete=True) for discrete SAC"
        )


def _sde_matrix_shape(where: str, out: Any) -> tuple[int, int]:
    """``(F, act_dim)``: the gSDE actor's ``log_std`` shape (from its output ``out``),
    checked against its features."""
    mean, log_std, features = out
    act_dim = int(mean.shape[-1])
    if not (
        isinstance(log_std, torch.Tensor)
        and isinstance(features, torch.Tensor)
        and log_std.shape == (features.shape[-1], act_dim)
        and features.shape[:-1] == mean.shape[:-1]
    ):
        raise ValueError(
            f"{where}: with use_sde, networks.actor must return (mean [..., {act_dim}], "
            f"log_std [F, {act_dim}], features [..., F]), got shapes "
            f"{[tuple(getattr(x, 'shape', ())) for x in out]}"
        )
    return int(log_std.shape[0]), act_dim


def _check_parts(
    where: str,
    config: Config,
    nets: Networks,
    critic_loss_fn: Callable[..., Any],
    actor_loss_fn: Callable[..., Any],
    stack: Any,
    hparams_cls: Any,
) -> tuple[int, int] | None:
    """Run the networks and losses once on a batch of 2 example transitions; with
    ``config.use_sde``, return the gSDE matrix shape ``(F, act_dim)``."""
    sde_matrix = None
    if not isinstance(nets, Networks):
        raise TypeError(f"{where}: networks must be sac.Networks(actor, critic), got {nets!r}")
    params = {**common.example_params(where, nets), "log_alpha": torch.zeros(())}
    key = R.key(1)
    b = tree.stack([offpolicy.plain_example(stack)] * 2)
    space = stack.action_space
    if config.discrete:
        logits = common.check_part(
            where, "networks.actor.apply", nets.actor.apply, params["actor"], b["obs"]
        )
        common.expect_shape(
            where, "networks.actor's logits for 2 observations", logits, (2, int(space.n))
        )
        q = common.check_part(
            where, "networks.critic.apply", nets.critic.apply, params["critic"], b["obs"]
        )
        if not (isinstance(q, torch.Tensor) and q.ndim == 3 and q.shape[1:] == (2, int(space.n))):
            raise ValueError(
                f"{where}: networks.critic must be an ensemble giving [E, 2, {int(space.n)}] for 2 observations, got {getattr(q, 'shape', q)}"
            )
    else:
        b["action"] = torch.zeros(2, *space.shape)
        out = common.check_part(
            where, "networks.actor.apply", nets.actor.apply, params["actor"], b["obs"]
        )
        want = "(mean, log_std, features)" if config.use_sde else "(mean, log_std)"
        if not (isinstance(out, tuple) and len(out) == (3 if config.use_sde else 2)):
            got = f"a {len(out)}-tuple" if isinstance(out, tuple) else type(out).__name__
            raise ValueError(f"{where}: networks.actor must return {want}, got {got}")
        common.expect_shape(
            where, "networks.actor's mean for 2 observations", out[0], (2, *space.shape)
        )
        if config.use_sde:
            sde_matrix = _sde_matrix_shape(where, out)
        q = common.check_part(
            where,
            "networks.critic.apply",
            nets.critic.apply,
            params["critic"],
            b["obs"],
            b["action"],
        )
        if not (isinstance(q, torch.Tensor) and q.ndim == 2 and q.shape[1] == 2):
            raise ValueError(
                f"{where}: networks.critic must be an ensemble giving [E, 2] for 2 (obs, action) pairs, got {getattr(q, 'shape', q)}"
            )
    hp, alpha = hparams_cls.create(), torch.ones(())
    target = {"critic": params["critic"]}
    out = common.check_part(where, "critic_loss_fn", critic_loss_fn, nets, config, params["critic"],
                     params, target, b, key, hp, alpha)  # fmt: skip
    common.expect_loss(where, "critic_loss_fn", out)
    out = common.check_part(where, "actor_loss_fn", actor_loss_fn, nets, config, params["actor"],
                     params["critic"], b["obs"], key, hp, alpha)  # fmt: skip
    _, aux = common.expect_loss(where, "actor_loss_fn", out)
    if not (isinstance(aux, tuple) and len(aux) == 2 and isinstance(aux[0], dict)):
        raise ValueError(f"{where}: actor_loss_fn must return (loss, (metrics dict, logp))")
    return sde_matrix
