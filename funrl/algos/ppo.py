"""Proximal Policy Optimization (Schulman et al., 2017) as ``init`` + ``update``.

Everything PPO computes is in this file; one ``update`` is::

    collect   num_steps collector steps over num_envs envs       (collectors.make_step)
    prepare   values of next obs, advantages (GAE by default), flatten, shuffle
    learn     update_epochs x num_minibatches steps of the loss  (ppo_loss by default)

Static settings live in :class:`Config` (closed over by :func:`make`); every float a
user may sweep lives in :class:`HParams` as a 0-d tensor, so a population vmaps over it
and changing it never recompiles.  Variants are compositions: pass your own
``advantage_fn`` or ``loss_fn`` to :func:`make` (examples/ppo_variants.py).

Example::

    >>> import funrl
    >>> from funrl.algos import ppo
    >>> algo = ppo.make(ppo.Config(env="CartPole-v1", num_envs=4, num_steps=8))
    >>> hp = ppo.HParams.create()
    >>> state = algo.init(funrl.random.key(0), hp)
    >>> state, metrics = algo.update(state, hp)
    >>> sorted(metrics)[:3]
    ['approx_kl', 'clip_fraction', 'entropy']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from funrl import collectors, losses, optim, returns, tree
from funrl import distributions as D
from funrl import nn as fnn
from funrl import random as R
from funrl.algos.common import (
    Algo,
    check_hparams_fields,
    episode_metrics,
    hparams_from_kwargs,
    make_env_stack,
    normalize_obs_for_act,
    remaker,
)
from funrl.algos.units import UnitTransform, eager
from funrl.collectors import CollectorState, Transition
from funrl.envs.spaces import Box, Discrete

__all__ = [
    "Batch",
    "Config",
    "HParams",
    "TrainState",
    "gae_advantages",
    "make",
    "ppo_loss",
]


@dataclasses.dataclass(frozen=True)
class Config:
    """Static PPO settings (changing one means a new ``make`` and a recompile).

    Attributes:
      env: a registered env id (``funrl.envs.registered()``).
      num_envs, num_steps: rollout size per update is ``num_envs * num_steps``.
      num_minibatches, update_epochs: the learning phase of one update.
      total_timesteps: training length (sets the number of updates and LR annealing).
      hidden, activation: actor and critic MLPs (separate networks).
      policy: ``"auto"`` (categorical for Discrete, gaussian for Box), ``"categorical"``,
        ``"gaussian"`` (state-independent log-std, actions clipped by the env) or
        ``"tanh_gaussian"`` (squashed to [-1, 1], rescaled to the env's bounds).
      normalize_obs, normalize_reward: running-statistics env wrappers.
      anneal_lr: linear learning-rate decay to 0 over ``total_timesteps``.
      normalize_advantages: per minibatch.
      clip_value: PPO value clipping with ``clip_eps``.
      orthogonal_init: orthogonal init (gains sqrt(2), 0.01 policy, 1 value) vs torch's.
    """

    env: str = "CartPole-v1"
    num_envs: int = 16
    num_steps: int = 64
    num_minibatches: int = 4
    update_epochs: int = 4
    total_timesteps: int = 200_000
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    policy: str = "auto"
    normalize_obs: bool = False
    normalize_reward: bool = False
    anneal_lr: bool = True
    normalize_advantages: bool = True
    clip_value: bool = True
    orthogonal_init: bool = True

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.batch_size)

    def validate(self) -> None:
        for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"Config.{name} must be a positive int, got {v!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps ({self.batch_size}) must be divisible by "
                f"num_minibatches ({self.num_minibatches})"
            )
        if self.policy not in ("auto", "categorical", "gaussian", "tanh_gaussian"):
            raise ValueError(
                f"Config.policy must be one of auto, categorical, gaussian, tanh_gaussian; "
                f"got {self.policy!r}"
            )


@tree.struct
class HParams:
    """Sweepable PPO hyperparameters, each a 0-d float tensor (vmap adds a member dim).

    Attributes:
      lr: Adam learning rate (annealed linearly to 0 when ``Config.anneal_lr``).
      gamma: discount; gae_lambda: GAE lambda.
      clip_eps: surrogate (and value, when ``Config.clip_value``) clip range.
      vf_coef, ent_coef: weights of the value loss and the entropy bonus.
      max_grad_norm: global gradient-norm clip.
    """

    lr: torch.Tensor
    gamma: torch.Tensor
    gae_lambda: torch.Tensor
    clip_eps: torch.Tensor
    vf_coef: torch.Tensor
    ent_coef: torch.Tensor
    max_grad_norm: torch.Tensor

    @classmethod
    def create(cls, **overrides: Any) -> HParams:
        """Defaults (CleanRL/PureJaxRL's CartPole settings) with ``overrides`` applied."""
        defaults = dict(
            lr=2.5e-3,
            gamma=0.99,
            gae_lambda=0.95,
            clip_eps=0.2,
            vf_coef=0.5,
            ent_coef=0.01,
            max_grad_norm=0.5,
        )
        return hparams_from_kwargs(cls, defaults, overrides)

    def check(self) -> None:
        """Eager range checks; ``ValueError`` names the field and the allowed range."""
        check_hparams_fields(
            self,
            positive=("lr", "clip_eps", "max_grad_norm"),
            unit=("gamma", "gae_lambda"),
            nonnegative=("vf_coef", "ent_coef"),
        )


@tree.struct
class TrainState(tree.Struct):
    """Everything PPO carries between updates (a pytree of tensors)."""

    params: dict[str, Any]
    opt_state: Any
    collector: CollectorState
    env_params: Any
    update_step: torch.Tensor
    key: torch.Tensor


@tree.struct
class Batch(tree.Struct):
    """A flattened rollout ready for minibatch learning.

    Attributes:
      data: ``obs``, ``action``, ``logp``, ``value``, ``advantage``, ``target``, each with
        leading dim ``num_envs * num_steps`` (a minibatch has the same keys).
      perms: ``[update_epochs, num_envs * num_steps]``: one shuffle per epoch.
      step: minibatch counter within this update (0-d int64).
    """

    data: dict[str, torch.Tensor]
    perms: torch.Tensor
    step: torch.Tensor


class Networks(NamedTuple):
    """The two networks and how the actor's output becomes a distribution."""

    actor: fnn.Model
    critic: fnn.Model
    distribution: Callable[[Any], Any]


def _networks(config: Config, obs_dim: int, action_space: Any) -> Networks:
    init = "orthogonal" if config.orthogonal_init else "default"
    h, act = config.hidden, config.activation
    critic = fnn.value_net(obs_dim, h, act, init=init)
    kind = config.policy
    if kind == "auto":
        kind = "categorical" if isinstance(action_space, Discrete) else "gaussian"
    if kind == "categorical":
        if not isinstance(action_space, Discrete):
            raise ValueError(
                f"policy 'categorical' needs a Discrete action space, got {action_space}"
            )
        actor = fnn.categorical_policy(obs_dim, action_space.n, h, act, init=init)
        return Networks(actor, critic, lambda out: D.Categorical(out))
    if not isinstance(action_space, Box):
        raise ValueError(f"policy {kind!r} needs a Box action space, got {action_space}")
    act_dim = action_space.shape[0]
    if kind == "gaussian":
        actor = fnn.gaussian_policy(obs_dim, act_dim, h, activation=act, init=init)
        return Networks(actor, critic, lambda out: D.DiagNormal(out[0], torch.exp(out[1])))
    actor = fnn.gaussian_policy(obs_dim, act_dim, h, activation=act, init=init)
    return Networks(actor, critic, lambda out: D.TanhNormal(out[0], torch.exp(out[1])))


# HParams field names of optimizer hyperparameters whose optimizer name differs.
_OPT_HPARAM_NAMES = {"max_norm": "max_grad_norm"}


def sync_optimizer_hparams(opt_state: Any, hp: Any, lr: torch.Tensor) -> Any:
    """``opt_state`` with every optimizer hyperparameter that ``hp`` has set from it.

    ``lr`` is given apart (it may be annealed); ``max_norm`` comes from ``max_grad_norm``.
    """
    values = {"lr": lr}
    for name in optim.hparams(opt_state):
        field = _OPT_HPARAM_NAMES.get(name, name)
        if name != "lr" and hasattr(hp, field):
            values[name] = getattr(hp, field)
    return optim.set_hparams(opt_state, **values)


def gae_advantages(
    traj: Transition, v_tp1: torch.Tensor, hp: HParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """The default advantage estimator: GAE; returns ``(advantages, value_targets)``.

    ``traj`` fields are ``[T, num_envs]``; ``traj.extras["value"]`` holds V(obs_t) and
    ``v_tp1`` V(true next obs_t).  Swap in any ``(traj, v_tp1, hp) -> (adv, target)``.
    """
    v_t = traj.extras["value"]
    adv = returns.gae(
        traj.reward, v_t, v_tp1, traj.terminated, traj.truncated, hp.gamma, hp.gae_lambda
    )
    return adv, adv + v_t


def ppo_loss(
    nets: Networks, config: Config, params: dict[str, Any], mb: dict[str, torch.Tensor], hp: HParams
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate + (clipped) value loss - entropy bonus, on one minibatch.

    ``mb`` holds ``obs``, ``action``, ``logp`` (behaviour), ``value`` (old), ``advantage``
    and ``target``, each ``[minibatch, ...]``.
    """
    dist = nets.distribution(nets.actor.apply(params["actor"], mb["obs"]))
    logp = dist.log_prob(mb["action"])
    v = nets.critic.apply(params["critic"], mb["obs"])
    adv = mb["advantage"]
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg, pg_diag = losses.ppo_clip_loss(logp, mb["logp"], adv, hp.clip_eps)
    if config.clip_value:
        vl, v_diag = losses.value_loss(v, mb["target"], mb["value"], hp.clip_eps)
    else:
        vl, v_diag = losses.value_loss(v, mb["target"])
    entropy = _entropy(dist, logp)
    el, _ = losses.entropy_loss(entropy)
    total = pg + hp.vf_coef * vl + hp.ent_coef * el
    metrics = {
        "loss": total,
        "policy_loss": pg,
        "value_loss": vl,
        "entropy": entropy.mean(),
        "approx_kl": pg_diag["approx_kl"],
        "clip_fraction": pg_diag["clip_fraction"],
        "explained_variance": v_diag["explained_variance"],
    }
    return total, metrics


def _entropy(dist: Any, logp: torch.Tensor) -> torch.Tensor:
    if isinstance(dist, D.TanhNormal):  # no closed form: the one-sample estimate -log p(a)
        return -logp
    return dist.entropy()


def make(
    config: Config,
    *,
    units: UnitTransform = eager,
    advantage_fn: Callable[[Transition, torch.Tensor, HParams], tuple[torch.Tensor, torch.Tensor]]
    | None = None,
    loss_fn: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]] | None = None,
    optimizer: optim.GradientTransformation | None = None,
    name: str = "ppo",
) -> Algo:
    """Build PPO's pure functions for ``config``.

    Args:
      config: static settings.
      units: how each compute unit is transformed (``funrl.algos.units``: eager,
        compiled, population).
      advantage_fn: ``(traj, v_tp1, hp) -> (advantages, targets)``; default
        :func:`gae_advantages`.
      loss_fn: ``(nets, config, params, minibatch, hp) -> (loss, metrics)``; default
        :func:`ppo_loss`.
      optimizer: default ``chain(clip_by_global_norm, adam(eps=1e-5))``; its ``lr`` and
        ``max_norm`` hyperparameters are set from ``hp.lr`` / ``hp.max_grad_norm``.
      name: the algorithm's name in logs.

    Returns:
      :class:`funrl.algos.common.Algo` with ``init(key, hp)``, ``update(state, hp)``,
      ``act(act_params, obs, key, deterministic)`` and ``act_params(state)``.
    """
    config.validate()
    parts = dict(
        units=units, advantage_fn=advantage_fn, loss_fn=loss_fn, optimizer=optimizer, name=name
    )
    advantage_fn = advantage_fn or gae_advantages
    loss_fn = loss_fn or ppo_loss
    stack = make_env_stack(
        config.env, config.num_envs, config.policy, config.normalize_obs, config.normalize_reward
    )
    nets = _networks(config, stack.obs_dim, stack.action_space)
    opt = optimizer or optim.chain(optim.clip_by_global_norm(0.5), optim.adam(2.5e-4, eps=1e-5))
    T, E, M = config.num_steps, config.update_epochs, config.num_minibatches

    def policy(params: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> Any:
        dist = nets.distribution(nets.actor.apply(params["actor"], obs))
        action = dist.sample(key)
        extras = {"logp": dist.log_prob(action), "value": nets.critic.apply(params["critic"], obs)}
        return action, extras

    env_step = collectors.make_step(stack.env, policy)

    def init(key: torch.Tensor, hp: HParams) -> TrainState:
        k_actor, k_critic, k_env, k_state = R.split(key, 4)
        params = {"actor": nets.actor.init(k_actor), "critic": nets.critic.init(k_critic)}
        opt_state = sync_optimizer_hparams(opt.init(params), hp, hp.lr)
        collector = collectors.init(stack.env, stack.env_params, k_env)
        return TrainState(
            params,
            opt_state,
            collector,
            stack.env_params,
            torch.zeros((), dtype=torch.int64),
            k_state,
        )

    def collect_step(
        collector: CollectorState, params: dict[str, Any], env_params: Any
    ) -> tuple[CollectorState, Transition]:
        # Only what acting needs crosses the unit boundary: fewer tensors to guard and pass.
        return env_step(collector, params, env_params)

    def prepare(state: TrainState, traj: Transition, hp: HParams) -> tuple[TrainState, Batch, Any]:
        v_tp1 = nets.critic.apply(state.params["critic"], traj.next_obs)
        adv, target = advantage_fn(traj, v_tp1, hp)
        k_perm, k_next = R.split(state.key)
        n = T * config.num_envs
        perms = torch.argsort(R.bits(k_perm, (E, n)), dim=-1)
        flat = lambda x: x.reshape(n, *x.shape[2:])  # noqa: E731
        data = {
            "obs": traj.obs,
            "action": traj.action,
            "logp": traj.extras["logp"],
            "value": traj.extras["value"],
            "advantage": adv,
            "target": target,
        }
        batch = Batch(tree.map(flat, data), perms, torch.zeros((), dtype=torch.int64))
        lr = hp.lr
        if config.anneal_lr:
            frac = 1.0 - state.update_step.to(hp.lr.dtype) / config.num_updates
            lr = hp.lr * torch.clamp(frac, min=0.0)
        opt_state = sync_optimizer_hparams(state.opt_state, hp, lr)
        state = state.replace(opt_state=opt_state, key=k_next)
        return state, batch, episode_metrics(traj.info)

    def learn_step(
        state: TrainState, batch: Batch, hp: HParams
    ) -> tuple[TrainState, Batch, dict[str, torch.Tensor]]:
        rows = batch.perms.reshape(E * M, -1)  # row e*M + m: minibatch m of epoch e
        idx = torch.index_select(rows, 0, batch.step.reshape(1))[0]
        minibatch = tree.map(lambda x: x[idx], batch.data)
        grad_fn = torch.func.grad(lambda p: loss_fn(nets, config, p, minibatch, hp), has_aux=True)
        grads, metrics = grad_fn(state.params)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        metrics["grad_norm"] = tree.global_norm(grads)
        return (
            state.replace(params=params, opt_state=opt_state),
            batch.replace(step=batch.step + 1),
            metrics,
        )

    def finish(state: TrainState, hp: HParams) -> TrainState:
        return state.replace(update_step=state.update_step + 1)

    u_collect = units(collect_step, "collect")
    u_stack = units(lambda trs: tree.stack(trs), "stack")
    u_prepare = units(prepare, "prepare")
    u_learn = units(learn_step, "learn")
    u_finish = units(finish, "finish")

    def update(state: TrainState, hp: HParams) -> tuple[TrainState, dict[str, torch.Tensor]]:
        transitions = []
        collector = state.collector
        for _ in range(T):
            collector, tr = u_collect(collector, state.params, state.env_params)
            transitions.append(tr)
        state = state.replace(collector=collector)
        state, batch, ep_metrics = u_prepare(state, u_stack(transitions), hp)
        learn_metrics = []
        for _ in range(E * M):
            state, batch, m = u_learn(state, batch, hp)
            learn_metrics.append(m)
        state = u_finish(state, hp)
        metrics = tree.map(lambda *xs: torch.stack(xs).mean(0), *learn_metrics)
        metrics.update(ep_metrics)
        return state, metrics

    def act_params(state: TrainState) -> dict[str, Any]:
        out = {"actor": state.params["actor"]}
        if stack.normalizer is not None:
            out["obs_norm"] = stack.obs_moments(state.collector.env_state)
        return out

    def act(
        params: dict[str, Any],
        obs: torch.Tensor,
        key: torch.Tensor | None = None,
        deterministic: bool = True,
    ) -> torch.Tensor:
        obs = normalize_obs_for_act(stack, params.get("obs_norm"), obs)
        dist = nets.distribution(nets.actor.apply(params["actor"], obs))
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
        hparams_cls=HParams,
        steps_per_update=config.batch_size,
        networks=nets,
        optimizer=opt,
        remake=remaker(make, config, parts),
    )
