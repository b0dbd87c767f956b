"""Twin Delayed DDPG (Fujimoto et al., 2018) as ``init`` + ``update``.

One ``update`` (the loop of :mod:`funrl.algos.offpolicy`)::

    collect  train_freq times: one step of num_envs envs with a deterministic tanh actor
             plus Gaussian (or Ornstein-Uhlenbeck) exploration noise (uniform random
             actions while env steps < learning_starts), transitions added to the
             replay buffer
    learn    gradient_steps times: sample a batch; critic step towards
             r + gamma (1 - term) min_e Q'_e(s', clip(mu'(s') + clip(noise), -1, 1));
             every policy_delay-th critic step also the actor step (maximise Q_1(s, mu(s)))
             and the Polyak update of the target actor and critics
    finish   episode statistics

Actions live in ``[-1, 1]`` (the env stack rescales them to the env's bounds), so the
noise scales (``exploration_noise``, ``policy_noise``, ``noise_clip``) are fractions of
the half-range, as in the paper and CleanRL.  ``Config.action_noise = "ou"`` replaces the
Gaussian noise with temporally correlated Ornstein-Uhlenbeck noise (:func:`ou_noise`, as
SB3's ``OrnsteinUhlenbeckActionNoise``): a per-env noise state carried in the train state
(:class:`OUTrainState`) and reset to 0 where an episode ends, the exploration that lets a
deterministic actor find MountainCarContinuous's goal.  The delay counts gradient steps taken: when
``gradient_steps % policy_delay == 0`` each learn unit knows statically whether it steps
the actor; otherwise the actor step is computed every time and masked by the step counter.

Parts (:func:`make`): ``networks=Networks(actor=..., critic=...)`` (the critic a single
``Q(s, a) -> [...]`` or an ensemble ``-> [E, ...]``, e.g. layer-norm critics),
``critic_loss_fn`` / ``actor_loss_fn`` (signatures of :func:`critic_loss` /
:func:`actor_loss`), ``optimizer`` and ``optimizer_hparams``.  :mod:`funrl.algos.ddpg` is
this recipe with one critic, no target smoothing and no delay.

Example::

    >>> import torch, funrl
    >>> from funrl.algos import td3
    >>> algo = td3.make(td3.Config(num_critics=3, batch_size=16, learning_starts=16,
    ...                            buffer_size=64, hidden=(16,), gradient_steps=2))
    >>> state = algo.init(funrl.random.key(0), td3.HParams.create())
    >>> q = algo.networks.critic.apply(state.params["critic"], torch.zeros(5, 3), torch.zeros(5, 1))
    >>> q.shape  # three critics; the target takes their min
    torch.Size([3, 5])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from funrl import autodiff, losses, optim, tree
from funrl import nn as fnn
from funrl import random as R
from funrl.algos import common, offpolicy
from funrl.algos.common import Algo, hparam
from funrl.algos.units import UnitTransform, eager
from funrl.envs.spaces import Box

__all__ = [
    "OPTIMIZER_HPARAMS",
    "Config",
    "HParams",
    "Networks",
    "OUTrainState",
    "TrainState",
    "actor_loss",
    "bootstrap_critic_loss",
    "critic_loss",
    "default_networks",
    "make",
    "ou_noise",
]

TrainState = offpolicy.TrainState  # params and target_params: actor, critic

ACTION_NOISES = ("gaussian", "ou")


@tree.struct
class OUTrainState(offpolicy.TrainState):
    """:class:`funrl.algos.offpolicy.TrainState` plus ``noise``, every env's
    Ornstein-Uhlenbeck noise ``[num_envs, act_dim]`` (``Config.action_noise = "ou"``)."""

    noise: torch.Tensor

    def episodes_restarted(self) -> OUTrainState:
        """This state with the noise of every env back at 0: what resuming a host env's
        run does, whose episodes start afresh (:func:`funrl.algos.common.restart_episodes`)."""
        return self.replace(noise=torch.zeros_like(self.noise))


def ou_noise(
    noise: torch.Tensor,
    key: torch.Tensor,
    sigma: torch.Tensor | float,
    theta: float = 0.15,
    dt: float = 1e-2,
) -> torch.Tensor:
    """One step of the Ornstein-Uhlenbeck process around 0 (Euler-Maruyama)::

        noise + theta * (0 - noise) * dt + sigma * sqrt(dt) * N(0, 1)

    the update of SB3's ``OrnsteinUhlenbeckActionNoise`` (same ``theta``/``dt`` defaults),
    with the standard normals drawn from ``key`` (shape of ``noise``).  Pure: the caller
    carries the returned noise to the next step and resets it to 0 where an episode ends.

    Example::

        >>> import torch, funrl
        >>> n = ou_noise(torch.zeros(3), funrl.random.key(0), 0.5)
        >>> n.shape, bool((n.abs() < 0.5).all())  # one step moves sigma * sqrt(dt) = 0.05 std
        (torch.Size([3]), True)
    """
    z = R.normal(key, noise.shape, dtype=noise.dtype)
    return noise - theta * dt * noise + sigma * dt**0.5 * z


@dataclasses.dataclass(frozen=True)
class Config(offpolicy.Config):
    """Static TD3 settings (see :class:`funrl.algos.offpolicy.Config` for the shared ones).

    Attributes:
      env: a registered env id with a 1-d ``Box`` action space.
      policy_delay: one actor (and target) step per this many critic steps.
      num_critics: the default critic ensemble's size (2: TD3's twins; 1: one plain critic).
      learning_starts: env steps of uniform random actions before the first gradient step.
      action_noise: ``"gaussian"`` (independent ``N(0, exploration_noise)`` per step) or
        ``"ou"`` (Ornstein-Uhlenbeck noise with ``sigma = exploration_noise``,
        :func:`ou_noise`; the state becomes an :class:`OUTrainState`).  The OU process
        also advances while actions are uniform random (``learning_starts``), where SB3
        draws none, so it is mid-process, not at 0, when the actor takes over.
      ou_theta, ou_dt: the OU process's mean reversion and time step (SB3's defaults;
        ``ou_theta * ou_dt < 1``, or the process diverges).
    """

    env: str = "Pendulum-v1"
    learning_starts: int = 10_000
    policy_delay: int = 2
    num_critics: int = 2
    action_noise: str = "gaussian"
    ou_theta: float = 0.15
    ou_dt: float = 1e-2

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        for f in ("policy_delay", "num_critics"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}.{f} must be a positive int, got {v!r}")
        if self.action_noise not in ACTION_NOISES:
            raise ValueError(
                f"{name}.action_noise must be one of {', '.join(map(repr, ACTION_NOISES))}, "
                f"got {self.action_noise!r}"
            )
        for f in ("ou_theta", "ou_dt"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{name}.{f} must be a number > 0, got {v!r}")
        if not self.ou_theta * self.ou_dt < 1:
            raise ValueError(
                f"{name}.ou_theta * ou_dt must be < 1 (the OU process diverges), got "
                f"{self.ou_theta} * {self.ou_dt}"
            )


@tree.struct
class HParams(common.HParams):
    """Sweepable TD3 hyperparameters, each a 0-d float tensor.

    Attributes:
      actor_lr, critic_lr: Adam learning rates (:data:`OPTIMIZER_HPARAMS`).
      gamma: discount; tau: Polyak rate of the target networks.
      exploration_noise: std of the Gaussian noise added to actions while collecting (the
        OU process's ``sigma`` with ``Config.action_noise = "ou"``).
      policy_noise, noise_clip: target policy smoothing ``clip(N(0, policy_noise), +-noise_clip)``.
    """

    actor_lr: torch.Tensor = hparam(3e-4, low=0.0, low_open=True)
    critic_lr: torch.Tensor = hparam(3e-4, low=0.0, low_open=True)
    gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)
    tau: torch.Tensor = hparam(0.005, low=0.0, high=1.0, low_open=True)
    exploration_noise: torch.Tensor = hparam(0.1, low=0.0)
    policy_noise: torch.Tensor = hparam(0.2, low=0.0)
    noise_clip: torch.Tensor = hparam(0.5, low=0.0)


#: Per network, the optimizer hyperparameters set from HParams (name -> field).
OPTIMIZER_HPARAMS: dict[str, common.OptimizerHParams] = {
    "actor": {"lr": "actor_lr"},
    "critic": {"lr": "critic_lr"},
}


class Networks(NamedTuple):
    """TD3's networks.

    Attributes:
      actor: ``apply(params, obs [..., obs_dim]) -> action [..., act_dim]`` in ``[-1, 1]``.
      critic: ``apply(params, obs, action) -> q``: ``[...]`` for one critic, ``[E, ...]``
        for an ensemble (``funrl.nn.ensemble``); the target takes the min over ``E``.
    """

    actor: fnn.Model
    critic: fnn.Model


def default_networks(config: Config, obs_dim: int, act_dim: int) -> Networks:
    """A tanh actor and ``config.num_critics`` critics (``hidden``, ``activation``)."""
    h, activation = config.hidden, config.activation
    q = fnn.continuous_q_net(obs_dim, act_dim, h, activation)
    critic = fnn.ensemble(q, config.num_critics) if config.num_critics > 1 else q
    return Networks(fnn.deterministic_policy(obs_dim, act_dim, h, activation), critic)


def _min_q(q: torch.Tensor, batch_ndim: int) -> torch.Tensor:
    """The min over an ensemble dim, if ``q`` has one beyond the batch dims."""
    return q.min(0).values if q.ndim > batch_ndim else q


def bootstrap_critic_loss(
    nets: Networks,
    critic_params: Any,
    target_params: dict[str, Any],
    batch: dict[str, torch.Tensor],
    a_next: torch.Tensor,
    hp: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Regression of the critics towards ``r + gamma (1 - term) min_e Q'_e(s', a_next)``."""
    q_next = nets.critic.apply(target_params["critic"], batch["next_obs"], a_next)
    q_next = _min_q(q_next, batch["reward"].ndim).detach()
    q = nets.critic.apply(critic_params, batch["obs"], batch["action"])
    return losses.ddpg_critic_loss(q, batch["reward"], batch["terminated"], hp.gamma, q_next)


def critic_loss(
    nets: Networks,
    config: Config,
    critic_params: Any,
    params: dict[str, Any],
    target_params: dict[str, Any],
    batch: dict[str, torch.Tensor],
    key: torch.Tensor,
    hp: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """TD3's critic loss: :func:`bootstrap_critic_loss` at the target actor's action plus
    clipped noise (target policy smoothing, drawn with ``key``).

    ``batch``: ``obs, action, reward, next_obs, terminated`` ``[B, ...]``.  Returns
    ``(loss, 0-d metrics)``.
    """
    a_next = nets.actor.apply(target_params["actor"], batch["next_obs"])
    noise = torch.clamp(
        hp.policy_noise * R.normal(key, a_next.shape), -hp.noise_clip, hp.noise_clip
    )
    a_next = torch.clamp(a_next + noise, -1.0, 1.0)
    return bootstrap_critic_loss(nets, critic_params, target_params, batch, a_next, hp)


def actor_loss(
    nets: Networks,
    config: Config,
    actor_params: Any,
    critic_params: Any,
    obs: torch.Tensor,
    key: torch.Tensor,
    hp: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``-E_s[Q_1(s, mu(s))]`` through the first (or only) critic, just updated."""
    q = nets.critic.apply(critic_params, obs, nets.actor.apply(actor_params, obs))
    return losses.ddpg_actor_loss(q[0] if q.ndim > obs.ndim - 1 else q)


def make(
    config: Config,
    *,
    networks: Networks | None = None,
    critic_loss_fn: Callable[..., Any] | None = None,
    actor_loss_fn: Callable[..., Any] | None = None,
    optimizer: optim.GradientTransformation | dict[str, Any] | None = None,
    optimizer_hparams: dict[str, common.OptimizerHParams] | None = None,
    hparams_cls: type = HParams,
    units: UnitTransform = eager,
    name: str = "td3",
) -> Algo:
    """Build TD3's pure functions for ``config``.

    Args:
      config: static settings.
      networks: ``Networks(actor, critic)``; default :func:`default_networks`.
      critic_loss_fn: ``(nets, config, critic_params, params, target_params, batch, key,
        hp) -> (loss, metrics)``; default :func:`critic_loss`.
      actor_loss_fn: ``(nets, config, actor_params, critic_params, obs, key, hp) -> (loss,
        metrics)``; default :func:`actor_loss`.
      optimizer: one ``GradientTransformation`` for both networks, or a dict ``actor``,
        ``critic``; default Adam.
      optimizer_hparams: per network, which HParams field sets which optimizer
        hyperparameter; default :data:`OPTIMIZER_HPARAMS` for the default optimizer, none
        for yours.
      hparams_cls: :class:`HParams` or a subclass with the fields your parts read.
      units, name: as every algorithm's.

    Returns:
      :class:`funrl.algos.common.Algo`; ``act(act_params, obs, key=None,
      deterministic=True)`` gives ``mu(obs)`` in ``[-1, 1]`` (rescaled by the env stack),
      or with ``deterministic=False`` and a key, ``mu(obs)`` plus 0.1-std clipped noise.

    Raises:
      ValueError: a bad config, an env without a 1-d ``Box`` action space, or a part that
        fails on example inputs.
    """
    config.validate()
    parts = dict(networks=networks, critic_loss_fn=critic_loss_fn, actor_loss_fn=actor_loss_fn,
                 optimizer=optimizer, optimizer_hparams=optimizer_hparams,
                 hparams_cls=hparams_cls, units=units, name=name)  # fmt: skip
    where = f"{name}.make"
    stack = common.make_env_stack(
        config.env, config.num_envs, "deterministic", vectorization=config.host_vectorization
    )
    space = stack.action_space
    if not (isinstance(space, Box) and len(space.shape) == 1):
        raise ValueError(
            f"{where}: {name.upper()} (continuous) needs a 1-d Box action space, got {space}"
        )
    act_dim = int(space.shape[0])
    common.require_flat_obs(where, stack, networks)
    offpolicy.check_obs_storage(where, config, stack)
    nets = networks or default_networks(config, stack.obs_dim, act_dim)
    critic_loss_fn = critic_loss_fn or critic_loss
    actor_loss_fn = actor_loss_fn or actor_loss
    opts, tables = common.resolve_optimizers(
        where, optimizer, optimizer_hparams, lambda: optim.adam(3e-4), OPTIMIZER_HPARAMS
    )
    parts.update(optimizer=opts, optimizer_hparams=tables)  # remake keeps them
    needed = {"gamma", "tau", "exploration_noise"}
    common.check_hparams_cls(
        where, hparams_cls, needed.union(*(t.values() for t in tables.values()))
    )
    _check_parts(where, config, nets, critic_loss_fn, actor_loss_fn, stack, hparams_cls)
    delay = config.policy_delay
    ou = config.action_noise == "ou"

    def policy(pp: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> Any:
        k_noise, k_rand = R.split(key)
        mu = nets.actor.apply(pp["actor"], obs)
        extras = {}
        if ou:  # the OU state advances every step, also while acting at random
            noise = ou_noise(pp["ou"], k_noise, pp["sigma"], config.ou_theta, config.ou_dt)
            extras["ou"] = noise
        else:
            noise = pp["sigma"] * R.normal(k_noise, mu.shape)
        a_pi = torch.clamp(mu + noise, -1.0, 1.0)
        a_rand = R.uniform(k_rand, mu.shape, low=-1.0, high=1.0)
        return torch.where(pp["random"], a_rand, a_pi), extras

    def policy_params(state: Any, hp: Any) -> dict[str, Any]:
        pp = {
            "actor": state.params["actor"],
            "sigma": hp.exploration_noise,
            "random": state.global_step < config.learning_starts,
        }
        if ou:
            pp["ou"] = state.noise
        return pp

    def ou_rows(state: Any, tr: Any, hp: Any) -> tuple[Any, Any, None]:
        """Plain rows; the OU state moves on, back to 0 where an episode ended."""
        ended = (tr.terminated | tr.truncated)[..., None]
        noise = torch.where(ended, torch.zeros_like(tr.extras["ou"]), tr.extras["ou"])
        return offpolicy.plain_rows(state.replace(noise=noise), tr, hp)

    def init(key: torch.Tensor, hp: Any) -> Any:
        common.check_hparams_if_concrete(hp)
        k_actor, k_critic, k_env, k_state = R.split(key, 4)
        params = {"actor": nets.actor.init(k_actor), "critic": nets.critic.init(k_critic)}
        opt_state = {
            n: common.set_optimizer_hparams(opts[n].init(params[n]), tables[n], hp) for n in params
        }
        extra = {"noise": torch.zeros(config.num_envs, act_dim)} if ou else {}
        return offpolicy.new_state(
            OUTrainState if ou else TrainState,
            stack,
            params=params,
            target_params=tree.map(torch.clone, params),
            opt_state=opt_state,
            buffer=offpolicy.init_buffer(offpolicy.plain_example(stack), config),
            k_env=k_env,
            key=k_state,
            **extra,
        )

    step = common.network_step(opts, tables)

    def learn_step(
        state: Any, b: dict[str, torch.Tensor], keys: list, hp: Any, variant: str
    ) -> offpolicy.Step:
        """One critic step; the actor/target step ``"always"``, ``"never"`` or ``"masked"``."""
        (key,) = keys
        p = state.params
        grad = lambda f, x: autodiff.grad_and_value(f, has_aux=True)(x)  # noqa: E731
        g, (c_loss, m_critic) = grad(
            lambda cp: critic_loss_fn(nets, config, cp, p, state.target_params, b, key, hp),
            p["critic"],
        )
        new_critic, opt_critic = step("critic", g, state, p["critic"], hp)
        kept = (
            {"actor": p["actor"], "critic": new_critic},
            {"actor": state.opt_state["actor"], "critic": opt_critic},
            state.target_params,
        )
        metrics = {"critic_loss": c_loss.detach(), **m_critic}
        if variant == "never":
            metrics["actor_loss"] = torch.full_like(c_loss, float("nan"))
            return offpolicy.Step(kept[0], kept[2], kept[1], _scalars(metrics))
        g, (a_loss, _) = grad(
            lambda ap: actor_loss_fn(nets, config, ap, new_critic, b["obs"], key, hp), p["actor"]
        )
        new_actor, opt_actor = step("actor", g, state, p["actor"], hp)
        new_params = {"actor": new_actor, "critic": new_critic}
        stepped = (
            new_params,
            {"actor": opt_actor, "critic": opt_critic},
            offpolicy.soft_update(state.target_params, new_params, hp.tau),
        )
        a_loss = a_loss.detach()
        if variant == "masked":
            do_actor = state.grad_step % delay == 0
            stepped = tree.where(do_actor, stepped, kept)
            a_loss = torch.where(do_actor, a_loss, torch.full_like(a_loss, float("nan")))
        metrics["actor_loss"] = a_loss
        return offpolicy.Step(stepped[0], stepped[2], stepped[1], _scalars(metrics))

    static = config.gradient_steps % delay == 0
    update = offpolicy.make_update(
        config,
        stack,
        units,
        policy=policy,
        policy_params=policy_params,
        learn_step=learn_step,
        num_keys=1,
        to_rows=ou_rows if ou else offpolicy.plain_rows,
        step_variant=lambda j: ("always" if j % delay == 0 else "never") if static else "masked",
    )

    def act_params(state: Any) -> dict[str, Any]:
        return {"actor": state.params["actor"]}

    def noisy(params: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        mu = nets.actor.apply(params["actor"], obs)
        return torch.clamp(mu + 0.1 * R.normal(key, mu.shape), -1.0, 1.0)

    act = common.acting(lambda p, obs: nets.actor.apply(p["actor"], obs), noisy)

    return Algo(name=name, config=config, init=units(init, "init"), update=update, act=act,
                act_params=act_params, env_stack=stack, hparams_cls=hparams_cls,
                steps_per_update=config.steps_per_update, networks=nets, optimizer=opts,
                remake=common.remaker(make, config, parts))  # fmt: skip


def _scalars(metrics: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in metrics.items() if v.ndim == 0}


def _check_parts(
    where: str,
    config: Config,
    nets: Networks,
    critic_loss_fn: Callable[..., Any],
    actor_loss_fn: Callable[..., Any],
    stack: Any,
    hparams_cls: Any,
) -> None:
    """Run the networks and losses once on a batch of 2 example transitions."""
    if not isinstance(nets, Networks):
        raise TypeError(f"{where}: networks must be td3.Networks(actor, critic), got {nets!r}")
    params, key = common.example_params(where, nets), R.key(1)
    b = tree.stack([offpolicy.plain_example(stack)] * 2)
    act_shape = (2, *stack.action_space.shape)
    a = common.check_part(
        where, "networks.actor.apply", nets.actor.apply, params["actor"], b["obs"]
    )
    common.expect_shape(where, "networks.actor's actions for 2 observations", a, act_shape)
    b["action"] = torch.zeros(act_shape)
    q = common.check_part(
        where, "networks.critic.apply", nets.critic.apply, params["critic"], b["obs"], b["action"]
    )
    if not (isinstance(q, torch.Tensor) and q.ndim in (1, 2) and q.shape[-1] == 2):
        raise ValueError(
            f"{where}: networks.critic must give [2] or [E, 2] for 2 (obs, action) pairs, got {getattr(q, 'shape', q)}"
        )
    hp = hparams_cls.create()
    out = common.check_part(where, "critic_loss_fn", critic_loss_fn, nets, config, params["critic"],
                     params, params, b, key, hp)  # fmt: skip
    common.expect_loss(where, "critic_loss_fn", out)
    out = common.check_part(where, "actor_loss_fn", actor_loss_fn, nets, config, params["actor"],
                     params["critic"], b["obs"], key, hp)  # fmt: skip
    common.expect_loss(where, "actor_loss_fn", out)
