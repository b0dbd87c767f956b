"""Twin Delayed DDPG (Fujimoto et al., 2018) as ``init`` + ``update``.

One ``update`` interleaves acting and learning at a fixed ratio, every step a unit::

    collect  train_freq times: one step of num_envs envs with a deterministic tanh actor
             plus Gaussian exploration noise (uniform random actions while env steps <
             learning_starts), transitions added to the replay buffer
    learn    gradient_steps times: sample a batch; critic step towards
             r + gamma (1 - term) min_e Q'_e(s', clip(mu'(s') + clip(noise), -1, 1));
             every policy_delay-th step also the actor step (maximise Q_1(s, mu(s))) and
             the Polyak update of the target actor and critics
    finish   episode statistics

Actions live in ``[-1, 1]`` (the env stack rescales them to the env's bounds), so the
noise scales (``exploration_noise``, ``policy_noise``, ``noise_clip``) are fractions of
the half-range, as in the paper and CleanRL.  The delay is static: when
``gradient_steps % policy_delay == 0`` each learn unit knows whether it updates the actor;
otherwise the actor step is computed every time and masked by the step counter.

:mod:`funrl.algos.ddpg` is this module with one critic, no target smoothing and no delay.

Example::

    >>> import funrl
    >>> from funrl.algos import td3
    >>> cfg = td3.Config(env="Pendulum-v1", num_envs=2, batch_size=8, learning_starts=8,
    ...                  buffer_size=64, hidden=(16,))
    >>> algo = td3.make(cfg)
    >>> hp = td3.HParams.create()
    >>> state = algo.init(funrl.random.key(0), hp)
    >>> for _ in range(5):
    ...     state, metrics = algo.update(state, hp)
    >>> int(state.global_step), bool(metrics["critic_loss"].isfinite())
    (10, True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from funrl import buffers, collectors, losses, optim, tree
from funrl import nn as fnn
from funrl import random as R
from funrl.algos.common import (
    Algo,
    check_hparams_fields,
    hparams_from_kwargs,
    make_env_stack,
    remaker,
)
from funrl.algos.sac import (
    check_action_space,
    check_hparams_if_concrete,
    contiguous,
    example_transition,
    finish_unit,
    learning_mask,
    make_collect,
    mask_metrics,
    offpolicy_update,
    sample_batch,
    soft_update,
    validate_offpolicy_config,
)
from funrl.algos.units import UnitTransform, eager
from funrl.collectors import CollectorState

__all__ = ["Config", "HParams", "TrainState", "make"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Static TD3 settings (changing one means a new ``make`` and a recompile).

    Attributes:
      env: a registered env id with a 1-d ``Box`` action space.
      num_envs: parallel envs; one collector step takes ``num_envs`` env steps.
      train_freq: collector steps per update.
      gradient_steps: critic steps per update.
      policy_delay: one actor (and target) step per this many critic steps.
      buffer_size, batch_size: replay capacity and batch (see :class:`funrl.algos.sac.Config`).
      learning_starts: env steps of uniform random actions before the first gradient step.
      total_timesteps: training length in env steps (sets ``num_updates``).
      hidden, activation: actor and critic MLPs.
    """

    env: str = "Pendulum-v1"
    num_envs: int = 1
    train_freq: int = 1
    gradient_steps: int = 1
    policy_delay: int = 2
    buffer_size: int = 100_000
    batch_size: int = 256
    learning_starts: int = 10_000
    total_timesteps: int = 100_000
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.train_freq

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)

    def validate(self) -> None:
        validate_offpolicy_config(self)
        if (
            isinstance(self.policy_delay, bool)
            or not isinstance(self.policy_delay, int)
            or self.policy_delay < 1
        ):
            raise ValueError(
                f"{type(self).__name__}.policy_delay must be a positive int, got {self.policy_delay!r}"
            )


@tree.struct
class HParams(tree.Struct):
    """Sweepable TD3 hyperparameters, each a 0-d float tensor.

    Attributes:
      actor_lr, critic_lr: Adam learning rates.
      gamma: discount; tau: Polyak rate of the target networks.
      exploration_noise: std of the Gaussian noise added to actions while collecting.
      policy_noise, noise_clip: target policy smoothing ``clip(N(0, policy_noise), +-noise_clip)``.
    """

    actor_lr: torch.Tensor
    critic_lr: torch.Tensor
    gamma: torch.Tensor
    tau: torch.Tensor
    exploration_noise: torch.Tensor
    policy_noise: torch.Tensor
    noise_clip: torch.Tensor

    @classmethod
    def create(cls, **overrides: Any) -> HParams:
        """Defaults (the paper's and CleanRL's) with ``overrides`` applied."""
        defaults = dict(
            actor_lr=3e-4,
            critic_lr=3e-4,
            gamma=0.99,
            tau=0.005,
            exploration_noise=0.1,
            policy_noise=0.2,
            noise_clip=0.5,
        )
        return hparams_from_kwargs(cls, defaults, overrides)

    def check(self) -> None:
        """Eager range checks; ``ValueError`` names the field and the allowed range."""
        check_hparams_fields(
            self,
            positive=("actor_lr", "critic_lr", "tau"),
            unit=("gamma", "tau"),
            nonnegative=("exploration_noise", "policy_noise", "noise_clip"),
        )


@tree.struct
class TrainState(tree.Struct):
    """Everything TD3/DDPG carries between updates (a pytree of tensors).

    Attributes:
      params, target_params: ``actor`` and ``critic`` (TD3: twin critics, leading dim 2).
      opt_state: ``actor``, ``critic``.
      buffer, collector, env_params, global_step, key: as :class:`funrl.algos.sac.TrainState`.
      grad_step: critic steps taken (masked ones, before learning starts, not counted);
        the actor steps when ``grad_step % policy_delay == 0`` before the critic step.
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


def make(config: Config, *, units: UnitTransform = eager, name: str = "td3") -> Algo:
    """Build TD3's pure functions for ``config``.

    Returns:
      :class:`funrl.algos.common.Algo`; ``act(act_params, obs, key=None,
      deterministic=True)`` gives ``mu(obs)`` in ``[-1, 1]`` (rescaled by the env stack),
      or with ``deterministic=False`` and a key, ``mu(obs)`` plus 0.1-std clipped noise.

    Raises:
      ValueError: a bad config, or an env without a 1-d ``Box`` action space.
    """
    return make_deterministic(
        config, units=units, name=name, twin=True, smoothing=True, hparams_cls=HParams
    )


def make_deterministic(
    config: Any, *, units: UnitTransform, name: str, twin: bool, smoothing: bool, hparams_cls: Any
) -> Algo:
    """TD3 (``twin=True, smoothing=True``) or DDPG (``False, False``) for ``config``.

    ``config`` needs TD3's fields (``policy_delay`` may be absent: then 1); hparams need
    ``actor_lr, critic_lr, gamma, tau, exploration_noise`` and, with ``smoothing``,
    ``policy_noise, noise_clip``.
    """
    config.validate()
    algo_name = name.upper()
    stack = make_env_stack(config.env, config.num_envs, "deterministic")
    check_action_space(stack, False, algo_name)
    act_dim, obs_dim = int(stack.action_space.shape[0]), stack.obs_dim
    h, activation = config.hidden, config.activation
    actor = fnn.deterministic_policy(obs_dim, act_dim, h, activation)
    q = fnn.continuous_q_net(obs_dim, act_dim, h, activation)
    critic = fnn.ensemble(q, 2) if twin else q
    opt = optim.adam(3e-4)
    delay = int(getattr(config, "policy_delay", 1))
    static_delay = config.gradient_steps % delay == 0

    def q_min(params: Any, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        v = critic.apply(params, obs, action)
        return v.min(0).values if twin else v

    def q_first(params: Any, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        v = critic.apply(params, obs, action)
        return v[0] if twin else v

    def policy(pp: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> Any:
        k_noise, k_rand = R.split(key)
        mu = actor.apply(pp["actor"], obs)
        a_pi = torch.clamp(mu + pp["noise"] * R.normal(k_noise, mu.shape), -1.0, 1.0)
        a_rand = R.uniform(k_rand, mu.shape, low=-1.0, high=1.0)
        return torch.where(pp["random"], a_rand, a_pi), {}

    def policy_params(state: TrainState, hp: Any) -> dict[str, Any]:
        return {
            "actor": state.params["actor"],
            "noise": hp.exploration_noise,
            "random": state.global_step < config.learning_starts,
        }

    def init(key: torch.Tensor, hp: Any) -> TrainState:
        check_hparams_if_concrete(hp)
        k_actor, k_critic, k_env, k_state = R.split(key, 4)
        params = {"actor": actor.init(k_actor), "critic": critic.init(k_critic)}
        opt_state = {
            "actor": optim.set_hparams(opt.init(params["actor"]), lr=hp.actor_lr),
            "critic": optim.set_hparams(opt.init(params["critic"]), lr=hp.critic_lr),
        }
        zero = torch.zeros((), dtype=torch.int64)
        state = TrainState(
            params=params,
            target_params=tree.map(torch.clone, params),
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

    def critic_loss_fn(
        state: TrainState, b: dict[str, torch.Tensor], key: torch.Tensor, hp: Any
    ) -> Any:
        target = state.target_params
        a_next = actor.apply(target["actor"], b["next_obs"])
        if smoothing:
            noise = torch.clamp(
                hp.policy_noise * R.normal(key, a_next.shape), -hp.noise_clip, hp.noise_clip
            )
            a_next = torch.clamp(a_next + noise, -1.0, 1.0)
        q_next = q_min(target["critic"], b["next_obs"], a_next).detach()
        return lambda cp: losses.ddpg_critic_loss(
            critic.apply(cp, b["obs"], b["action"]), b["reward"], b["terminated"], hp.gamma, q_next
        )

    def learn(
        state: TrainState, hp: Any, actor_mode: str
    ) -> tuple[TrainState, dict[str, torch.Tensor]]:
        """One critic step; the actor/target step is ``"always"``, ``"never"`` or ``"masked"``."""
        k_sample, k_noise, k_state = R.split(state.key, 3)
        learning = learning_mask(state, config)
        b = sample_batch(state.buffer, k_sample, config.batch_size, learning)
        p = state.params
        grad = lambda f, x: torch.func.grad_and_value(f, has_aux=True)(x)  # noqa: E731
        g, (critic_loss, m_critic) = grad(critic_loss_fn(state, b, k_noise, hp), p["critic"])
        new_critic, opt_critic = step("critic", g, state, p["critic"], hp.critic_lr)
        new_params = {"actor": p["actor"], "critic": new_critic}
        new_opt = {"actor": state.opt_state["actor"], "critic": opt_critic}
        new_target = state.target_params
        metrics = {
            "critic_loss": critic_loss.detach(),
            "q_mean": m_critic["q_mean"],
            "td_error_abs_mean": m_critic["td_error_abs_mean"],
        }
        if actor_mode == "never":
            metrics["actor_loss"] = torch.full_like(critic_loss, float("nan"))
        else:

            def actor_loss(ap: Any) -> Any:
                return losses.ddpg_actor_loss(
                    q_first(new_critic, b["obs"], actor.apply(ap, b["obs"]))
                )

            g, (a_loss, _) = grad(actor_loss, p["actor"])
            new_actor, opt_actor = step("actor", g, state, p["actor"], hp.actor_lr)
            stepped = (
                {"actor": new_actor, "critic": new_critic},
                {"actor": opt_actor, "critic": opt_critic},
                soft_update(
                    state.target_params, {"actor": new_actor, "critic": new_critic}, hp.tau
                ),
            )
            a_loss = a_loss.detach()
            if actor_mode == "masked":
                do_actor = state.grad_step % delay == 0
                stepped = tree.where(do_actor, stepped, (new_params, new_opt, new_target))
                a_loss = torch.where(do_actor, a_loss, torch.full_like(a_loss, float("nan")))
            new_params, new_opt, new_target = stepped
            metrics["actor_loss"] = a_loss
        new = (new_params, new_opt, new_target)
        kept = (p, state.opt_state, state.target_params)
        params, opt_state, target_params = contiguous(tree.where(learning, new, kept))
        state = state.replace(
            params=params,
            target_params=target_params,
            opt_state=opt_state,
            grad_step=state.grad_step + learning.to(torch.int64),
            key=k_state,
        )
        return state, mask_metrics(metrics, learning)

    u_collect = units(make_collect(stack, policy, policy_params), "collect")
    if static_delay:
        u_actor = units(lambda s, hp: learn(s, hp, "always"), "learn")
        u_critic = (
            units(lambda s, hp: learn(s, hp, "never"), "learn_critic") if delay > 1 else u_actor
        )
        pick = lambda j: u_actor if j % delay == 0 else u_critic  # noqa: E731
    else:
        u_masked = units(lambda s, hp: learn(s, hp, "masked"), "learn")
        pick = lambda j: u_masked  # noqa: E731
    update = offpolicy_update(
        config, u_collect, units(tree.stack, "stack"), pick, units(finish_unit, "finish")
    )

    def act_params(state: TrainState) -> dict[str, Any]:
        return {"actor": state.params["actor"]}

    def act(
        params: dict[str, Any],
        obs: torch.Tensor,
        key: torch.Tensor | None = None,
        deterministic: bool = True,
    ) -> torch.Tensor:
        mu = actor.apply(params["actor"], obs)
        if deterministic or key is None:
            return mu
        return torch.clamp(mu + 0.1 * R.normal(key, mu.shape), -1.0, 1.0)

    return Algo(
        name=name,
        config=config,
        init=units(init, "init"),
        update=update,
        act=act,
        act_params=act_params,
        env_stack=stack,
        hparams_cls=hparams_cls,
        steps_per_update=config.steps_per_update,
        networks=(actor, critic),
        optimizer=opt,
        remake=remaker(
            lambda c, **parts: make_deterministic(
                c, **parts, twin=twin, smoothing=smoothing, hparams_cls=hparams_cls
            ),
            config,
            {"units": units, "name": name},
        ),
    )
