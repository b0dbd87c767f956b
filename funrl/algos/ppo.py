"""Proximal Policy Optimization (Schulman et al., 2017) as ``init`` + ``update``.

Everything PPO computes is in this file; one ``update`` is::

    collect   num_steps collector steps over num_envs envs       (collectors.make_step)
    prepare   values of next obs, advantages (GAE by default), flatten, shuffle
    learn     update_epochs x num_minibatches steps of the loss  (ppo_loss by default)

Static settings live in :class:`Config` (closed over by :func:`make`); every float a
user may sweep lives in :class:`HParams` as a 0-d tensor, so a population vmaps over it
and changing it never recompiles.  Variants are compositions: pass your own
``networks``, ``advantage_fn``, ``loss_fn`` or ``optimizer`` to :func:`make`
(examples/ppo_variants.py).  ``advantage_fn`` sees the current parameters; with
``Config.recompute_advantages`` it runs on every minibatch (whole env trajectories), so an
off-policy correction such as V-trace sees the policy as it changes
(examples/ppo_vtrace.py).

``Config(use_sde=True)`` explores with gSDE (Raffin et al., 2022; SB3's ``use_sde``): the
action noise is ``features(s) @ W`` with one exploration matrix ``W`` per env, drawn at the
start of every rollout and every ``sde_sample_freq`` steps (:class:`SDETrainState`,
:class:`funrl.distributions.GSDE`), smooth within an episode instead of independent per
step, which is what rl-zoo's PPO and A2C presets use on Pendulum and MountainCarContinuous.

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
import math
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import torch

from funrl import autodiff, collectors, losses, optim, returns, tree
from funrl import distributions as D
from funrl import nn as fnn
from funrl import random as R
from funrl.algos import common
from funrl.algos.common import Algo, hparam
from funrl.algos.units import UnitTransform, eager
from funrl.collectors import CollectorState, Transition
from funrl.envs.spaces import Box, Discrete
from funrl.envs.thread_vector import check_vectorization

__all__ = [
    "OPTIMIZER_HPARAMS",
    "Batch",
    "Config",
    "HParams",
    "Networks",
    "SDETrainState",
    "TrainState",
    "default_networks",
    "entropy_of",
    "features",
    "gae_advantages",
    "make",
    "minibatch_terms",
    "ppo_loss",
]


@dataclasses.dataclass(frozen=True)
class Config(common.PresetConfig):
    """Static PPO settings (changing one means a new ``make`` and a recompile).

    Attributes:
      env: a registered env id (``funrl.envs.registered()``).
      num_envs, num_steps: rollout size per update is ``num_envs * num_steps``.
      num_minibatches, update_epochs: the learning phase of one update.
      total_timesteps: training length (sets the number of updates and LR annealing).
      hidden, activation: the default actor and critic MLPs (separate networks).
      policy: ``"auto"`` (categorical for Discrete, gaussian for Box), ``"categorical"``,
        ``"gaussian"`` (state-independent log-std, actions clipped by the env) or
        ``"tanh_gaussian"`` (squashed to [-1, 1], rescaled to the env's bounds).
      normalize_obs, normalize_reward: running-statistics env wrappers.
      anneal_lr: linear learning-rate decay to 0 over ``total_timesteps``.
      normalize_advantages: per minibatch.
      clip_value: PPO value clipping with ``clip_eps``.
      orthogonal_init: orthogonal init (gains sqrt(2), 0.01 policy, 1 value) vs torch's.
      recompute_advantages: call ``advantage_fn`` on every minibatch with the current
        parameters (minibatches are then whole env trajectories: ``num_envs`` must be
        divisible by ``num_minibatches``); default: once per rollout, before learning.
      encoder: for image observations, the encoder before each MLP: ``"auto"``,
        ``"minatar"``, ``"nature"`` or ``"impala"`` (:func:`funrl.algos.common.image_encoder`).
      share_encoder: for image observations, one encoder whose features both the actor's
        and the critic's MLP take (``Networks.trunk``; CleanRL's and SB3's Atari PPO),
        instead of one encoder each: half the convolutions per step.
      log_std_init: the default Gaussian (or gSDE) actor's initial log-std.
      use_sde: explore with gSDE (Box actions): the default actor becomes
        :func:`funrl.nn.gsde_policy` (its ``log_std`` a ``[features, act_dim]`` matrix), the
        distribution :class:`funrl.distributions.GSDE` (``policy="tanh_gaussian"``:
        ``TanhGSDE``) and the state an :class:`SDETrainState`.
      sde_sample_freq: with ``use_sde``, redraw each env's exploration matrix every this
        many collector steps; ``-1``: once per rollout (SB3's meaning).
      host_vectorization: how a host env's ``num_envs`` members step (``gym:``, ``atari:``
        and ``dmc:`` ids): ``"sync"`` one after another, ``"thread"`` in shards at once on
        threads (:class:`funrl.envs.thread_vector.ThreadVectorEnv`: the same trajectories,
        faster only where a GIL-free simulator step dominates, e.g. MuJoCo's Humanoid, on
        free cores) or ``"async"`` in subprocesses.  Pure torch envs take only ``"sync"``.
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
    recompute_advantages: bool = False
    encoder: str = "auto"
    share_encoder: bool = False
    log_std_init: float = 0.0
    use_sde: bool = False
    sde_sample_freq: int = -1
    host_vectorization: str = "sync"

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.batch_size)

    @property
    def sde_period(self) -> int:
        """Collector steps between two draws of the gSDE matrices (each rollout starts
        with one)."""
        return self.num_steps if self.sde_sample_freq == -1 else self.sde_sample_freq

    def validate(self) -> None:
        name = type(self).__name__
        check_vectorization(f"{name}.", self.host_vectorization, "host_vectorization")
        for f in ("num_envs", "num_steps", "num_minibatches", "update_epochs", "total_timesteps"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}.{f} must be a positive int, got {v!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps ({self.batch_size}) must be divisible by "
                f"num_minibatches ({self.num_minibatches})"
            )
        if self.recompute_advantages and self.num_envs % self.num_minibatches:
            raise ValueError(
                f"{name}.recompute_advantages: num_envs ({self.num_envs}) must be divisible by "
                f"num_minibatches ({self.num_minibatches}) (minibatches are whole trajectories)"
            )
        if self.encoder not in common.ENCODERS:
            raise ValueError(
                f"{name}.encoder must be one of {', '.join(common.ENCODERS)}, got {self.encoder!r}"
            )
        if self.policy not in ("auto", "categorical", "gaussian", "tanh_gaussian"):
            raise ValueError(
                f"{name}.policy must be one of auto, categorical, gaussian, tanh_gaussian; "
                f"got {self.policy!r}"
            )
        if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in self.hidden):
            raise ValueError(f"{name}.hidden must be positive ints, got {self.hidden!r}")
        freq = self.sde_sample_freq
        if isinstance(freq, bool) or not isinstance(freq, int) or not (freq == -1 or freq > 0):
            raise ValueError(f"{name}.sde_sample_freq must be -1 or a positive int, got {freq!r}")
        if self.use_sde and not self.hidden:
            raise ValueError(f"{name}.use_sde needs a hidden layer (gSDE's features)")


@tree.struct
class HParams(common.HParams):
    """Sweepable PPO hyperparameters, each a 0-d float tensor (vmap adds a member dim).

    Defaults are CleanRL's/PureJaxRL's CartPole settings.

    Attributes:
      lr: the default optimizer's learning rate (annealed linearly to 0 when
        ``Config.anneal_lr``); see :data:`OPTIMIZER_HPARAMS`.
      gamma: discount; gae_lambda: GAE lambda.
      clip_eps: surrogate (and value, when ``Config.clip_value``) clip range.
      vf_coef, ent_coef: weights of the value loss and the entropy bonus.
      max_grad_norm: the default optimizer's global gradient-norm clip.
    """

    lr: torch.Tensor = hparam(2.5e-3, low=0.0, low_open=True)
    gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)
    gae_lambda: torch.Tensor = hparam(0.95, low=0.0, high=1.0)
    clip_eps: torch.Tensor = hparam(0.2, low=0.0, low_open=True)
    vf_coef: torch.Tensor = hparam(0.5, low=0.0)
    ent_coef: torch.Tensor = hparam(0.01, low=0.0)
    max_grad_norm: torch.Tensor = hparam(0.5, low=0.0, low_open=True)


#: The default optimizer's hyperparameters set from HParams (optimizer name -> field).
OPTIMIZER_HPARAMS: common.OptimizerHParams = {"lr": "lr", "max_norm": "max_grad_norm"}


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
class SDETrainState(TrainState):
    """:class:`TrainState` plus ``sde_noise``, every env's gSDE exploration matrix as
    standard normals ``[num_envs, F, act_dim]`` (``Config.use_sde``; the matrix is
    ``exp(log_std) * sde_noise``): the one the last rollout ended with."""

    sde_noise: torch.Tensor


@tree.struct
class Batch(tree.Struct):
    """A rollout ready for minibatch learning.

    Attributes:
      data: once per rollout, ``obs``, ``action``, ``logp``, ``value``, ``advantage``,
        ``target`` with leading dim ``num_envs * num_steps``; with
        ``Config.recompute_advantages``, the trajectory fields ``[num_steps, num_envs, ...]``.
      perms: ``[update_epochs, n]``: one shuffle per epoch (of transitions, or of envs).
      step: minibatch counter within this update (0-d int64).
    """

    data: dict[str, torch.Tensor]
    perms: torch.Tensor
    step: torch.Tensor


class Networks(NamedTuple):
    """PPO's networks and how the actor's output becomes a distribution.

    Attributes:
      actor: ``apply(params, obs [..., obs_dim]) -> out``.
      critic: ``apply(params, obs [..., obs_dim]) -> v [...]``.
      distribution: ``out -> `` a ``funrl.distributions`` object (``sample``,
        ``log_prob``, ``entropy``, ``mode``).
      trunk: ``None``, or a network both heads share: ``actor`` and ``critic`` then take
        ``trunk.apply(params["trunk"], obs)`` instead of ``obs`` (computed once per
        batch, :func:`features`), and params hold ``"trunk"``, ``"actor"``, ``"critic"``.
    """

    actor: fnn.Model
    critic: fnn.Model
    distribution: Callable[[Any], Any]
    trunk: fnn.Model | None = None


def features(nets: Networks, params: dict[str, Any], obs: torch.Tensor) -> torch.Tensor:
    """What the actor and the critic take: ``obs``, or the shared trunk's features."""
    return obs if nets.trunk is None else nets.trunk.apply(params["trunk"], obs)


def default_networks(config: Config, obs_dim: int | tuple[int, ...], action_space: Any) -> Networks:
    """The actor, critic and distribution ``config`` describes.

    ``obs_dim``: the flat observation size, or an image observation's shape ``(H, W, C)``
    / ``(C, H, W)``: the actor and the critic then each put an image encoder
    (``config.encoder``, :func:`funrl.algos.common.image_encoder`) before their MLP, or
    share one (``config.share_encoder``: the ``trunk``).
    """
    image = isinstance(obs_dim, tuple) and len(obs_dim) == 3
    if config.share_encoder and not image:
        raise ValueError(
            f"{type(config).__name__}.share_encoder shares an image encoder, but "
            f"{config.env}'s observations are flat ({obs_dim} numbers); leave it False"
        )
    if isinstance(obs_dim, tuple) and len(obs_dim) == 3 and config.share_encoder:
        trunk = common.image_encoder("ppo", config.encoder, obs_dim)
        flat = dataclasses.replace(config, share_encoder=False)  # the heads: plain MLPs
        heads = default_networks(flat, trunk.features, action_space)
        return heads._replace(trunk=trunk)
    if isinstance(obs_dim, tuple) and len(obs_dim) == 3:
        actor_enc = common.image_encoder("ppo", config.encoder, obs_dim)
        critic_enc = common.image_encoder("ppo", config.encoder, obs_dim)
        heads = default_networks(config, actor_enc.features, action_space)
        return Networks(
            fnn.encoded(actor_enc, heads.actor),
            fnn.encoded(critic_enc, heads.critic),
            heads.distribution,
        )
    if isinstance(obs_dim, tuple):
        obs_dim = math.prod(obs_dim)
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
        if config.use_sde:
            raise ValueError(
                f"{type(config).__name__}.use_sde is for Box actions; {config.env} has "
                f"{action_space}"
            )
        actor = fnn.categorical_policy(obs_dim, action_space.n, h, act, init=init)
        return Networks(actor, critic, lambda out: D.Categorical(out))
    if not isinstance(action_space, Box):
        raise ValueError(f"policy {kind!r} needs a Box action space, got {action_space}")
    act_dim = action_space.shape[0]
    if config.use_sde:  # SB3: the mean unclipped, features detached (learn_features=False)
        actor = fnn.gsde_policy(obs_dim, act_dim, h, config.log_std_init, clip_mean=0.0,
                                activation=act, init=init, mean_gain=0.01)  # fmt: skip
        gsde = D.GSDE if kind == "gaussian" else D.TanhGSDE
        return Networks(actor, critic, lambda out: gsde(out[0], out[2].detach(), torch.exp(out[1])))
    actor = fnn.gaussian_policy(
        obs_dim, act_dim, h, log_std_init=config.log_std_init, activation=act, init=init
    )
    if kind == "gaussian":
        return Networks(actor, critic, lambda out: D.DiagNormal(out[0], torch.exp(out[1])))
    return Networks(actor, critic, lambda out: D.TanhNormal(out[0], torch.exp(out[1])))


def gae_advantages(
    nets: Networks, config: Config, params: dict[str, Any], traj: Transition, hp: Any
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The default advantage estimator: GAE; returns ``(advantages, value_targets, metrics)``.

    ``traj`` fields are ``[T, n]`` (time first); ``traj.extras`` holds the behaviour
    policy's ``logp`` and the critic's ``value`` at collection time.  ``params`` are the
    current parameters (``critic`` values the true next observations).  Swap in any
    function with this signature.
    """
    v_t = traj.extras["value"]
    v_tp1 = nets.critic.apply(params["critic"], features(nets, params, traj.next_obs))
    adv = returns.gae(
        traj.reward, v_t, v_tp1, traj.terminated, traj.truncated, hp.gamma, hp.gae_lambda
    )
    return adv, adv + v_t, {}


def minibatch_terms(
    nets: Networks, config: Config, params: dict[str, Any], mb: dict[str, torch.Tensor]
) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dist, logp, v, adv)`` every actor-critic loss needs on minibatch ``mb``: the
    current policy, its log-probs of ``mb["action"]``, the critic's values and the
    advantages (normalised when ``config.normalize_advantages``)."""
    x = features(nets, params, mb["obs"])
    dist = nets.distribution(nets.actor.apply(params["actor"], x))
    logp = dist.log_prob(mb["action"])
    v = nets.critic.apply(params["critic"], x)
    adv = mb["advantage"]
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    return dist, logp, v, adv


def entropy_of(dist: Any, logp: torch.Tensor) -> torch.Tensor:
    """``dist``'s entropy; for a tanh-squashed Gaussian (no closed form) the one-sample
    estimate ``-log p(a)``."""
    if isinstance(dist, (D.TanhNormal, D.TanhGSDE)):
        return -logp
    return dist.entropy()


def ppo_loss(
    nets: Networks, config: Config, params: dict[str, Any], mb: dict[str, torch.Tensor], hp: Any
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate + (clipped) value loss - entropy bonus, on one minibatch.

    ``mb`` holds ``obs``, ``action``, ``logp`` (behaviour), ``value`` (old), ``advantage``
    and ``target``, each ``[minibatch, ...]``.
    """
    dist, logp, v, adv = minibatch_terms(nets, config, params, mb)
    pg, pg_diag = losses.ppo_clip_loss(logp, mb["logp"], adv, hp.clip_eps)
    if config.clip_value:
        vl, v_diag = losses.value_loss(v, mb["target"], mb["value"], hp.clip_eps)
    else:
        vl, v_diag = losses.value_loss(v, mb["target"])
    entropy = entropy_of(dist, logp)
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


_TRAJ = ("obs", "action", "reward", "terminated", "truncated", "next_obs")


def _trajectory(data: dict[str, torch.Tensor]) -> Transition:
    """The ``Transition`` (no info) of :class:`Batch` data kept as trajectories."""
    extras = {"logp": data["logp"], "value": data["value"]}
    d = data
    return Transition(d["obs"], d["action"], d["reward"], d["terminated"], d["truncated"],
                      d["next_obs"], extras, {})  # fmt: skip


def make(
    config: Config,
    *,
    networks: Networks | None = None,
    advantage_fn: Callable[..., tuple[torch.Tensor, torch.Tensor, dict]] | None = None,
    loss_fn: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]] | None = None,
    optimizer: optim.GradientTransformation | None = None,
    optimizer_hparams: common.OptimizerHParams | None = None,
    hparams_cls: type = HParams,
    units: UnitTransform = eager,
    name: str = "ppo",
) -> Algo:
    """Build PPO's pure functions for ``config``.

    Args:
      config: static settings.
      networks: :class:`Networks`; default :func:`default_networks`.
      advantage_fn: ``(nets, config, params, traj, hp) -> (advantages, targets, metrics)``
        on a ``[T, n]`` trajectory; default :func:`gae_advantages`.
      loss_fn: ``(nets, config, params, minibatch, hp) -> (loss, metrics)``; default
        :func:`ppo_loss`.
      optimizer: default ``chain(clip_by_global_norm, adam(eps=1e-5))``.
      optimizer_hparams: which HParams field sets which optimizer hyperparameter; default
        :data:`OPTIMIZER_HPARAMS` for the default optimizer, none for yours (its values
        are used as given; map ``lr`` to anneal it).
      hparams_cls: :class:`HParams` or a subclass with the fields your parts read.
      units: how each compute unit is transformed (``funrl.algos.units``: eager,
        compiled, population).
      name: the algorithm's name in logs.

    Returns:
      :class:`funrl.algos.common.Algo` with ``init(key, hp)``, ``update(state, hp)``,
      ``act(act_params, obs, key, deterministic)`` and ``act_params(state)``.

    Raises:
      ValueError: a bad config, or a part that fails on example inputs (wrong signature,
        output shape, a field ``hparams_cls`` lacks).
    """
    config.validate()
    parts = dict(networks=networks, advantage_fn=advantage_fn, loss_fn=loss_fn,
                 optimizer=optimizer, optimizer_hparams=optimizer_hparams,
                 hparams_cls=hparams_cls, units=units, name=name)  # fmt: skip
    where = f"{name}.make"
    advantage_fn = advantage_fn or gae_advantages
    loss_fn = loss_fn or ppo_loss
    stack = common.make_env_stack(
        config.env, config.num_envs, config.policy, config.normalize_obs, config.normalize_reward,
        vectorization=config.host_vectorization,
    )  # fmt: skip
    obs_in = stack.obs_shape if stack.images else stack.obs_dim
    nets = networks or default_networks(config, obs_in, stack.action_space)
    opt, table = common.resolve_optimizer(
        where,
        optimizer,
        optimizer_hparams,
        lambda: optim.chain(optim.clip_by_global_norm(0.5), optim.adam(2.5e-3, eps=1e-5)),
        OPTIMIZER_HPARAMS,
    )
    parts.update(optimizer=opt, optimizer_hparams=table)  # remake keeps them
    common.check_anneal_lr(where, config.anneal_lr, table)
    common.check_hparams_cls(where, hparams_cls, table.values())
    common.check_units(where, units, stack, config.env)
    sde_matrix = _check_parts(where, config, nets, advantage_fn, loss_fn, stack, hparams_cls)
    T, E, M = config.num_steps, config.update_epochs, config.num_minibatches
    per_minibatch = config.recompute_advantages
    sde = sde_matrix is not None

    def policy(params: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> Any:
        x = features(nets, params, obs)
        dist = nets.distribution(nets.actor.apply(params["actor"], x))
        extras = {}
        if sde:  # each env's matrix: redrawn at the steps params["redraw"] marks, else held
            fresh = R.normal(key, params["sde"].shape, dtype=params["sde"].dtype)
            eps = torch.where(params["redraw"], fresh.to(obs.device), params["sde"])
            action = dist.sample_with(eps)
            extras["sde"] = eps
        else:
            action = dist.sample(key)
        extras.update(logp=dist.log_prob(action), value=nets.critic.apply(params["critic"], x))
        return action, extras

    # Only what acting needs crosses the unit boundary: fewer tensors to guard and pass.
    u_collect = collectors.make_unit_step(stack.env, policy, units)

    def init(key: torch.Tensor, hp: Any) -> TrainState:
        k_actor, k_critic, k_env, k_state = R.split(key, 4)
        params = {"actor": nets.actor.init(k_actor), "critic": nets.critic.init(k_critic)}
        if nets.trunk is not None:  # its own key, leaving the heads' draws as they were
            params["trunk"] = nets.trunk.init(R.fold_in(k_actor, 1))
        opt_state = common.set_optimizer_hparams(opt.init(params), table, hp)
        collector = collectors.init(stack.env, stack.env_params, k_env)
        step = torch.zeros((), dtype=torch.int64, device=k_state.device)
        if sde_matrix is not None:  # each rollout starts with fresh matrices: zeros unused
            noise = torch.zeros(config.num_envs, *sde_matrix, device=k_state.device)
            return SDETrainState(
                params, opt_state, collector, stack.env_params, step, k_state, noise
            )
        return TrainState(params, opt_state, collector, stack.env_params, step, k_state)

    def prepare(
        state: TrainState, traj: Transition, hp: Any, horizon: torch.Tensor
    ) -> tuple[TrainState, Batch, Any]:
        k_perm, k_next = R.split(state.key)
        metrics = common.episode_metrics(traj.info)
        if per_minibatch:  # trajectories kept whole; shuffles of envs
            data = {f: getattr(traj, f) for f in _TRAJ}
            data.update(logp=traj.extras["logp"], value=traj.extras["value"])
            perms = torch.argsort(R.bits(k_perm, (E, config.num_envs)), dim=-1)
        else:
            adv, target, m_adv = advantage_fn(nets, config, state.params, traj, hp)
            metrics.update(m_adv)
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
            data = tree.map(flat, data)
        batch = Batch(data, perms, torch.zeros((), dtype=torch.int64, device=perms.device))
        lr = hp.lr if "lr" in table else None
        if config.anneal_lr:
            frac = 1.0 - state.update_step.to(hp.lr.dtype) / horizon.to(hp.lr.dtype)
            lr = hp.lr * torch.clamp(frac, min=0.0)
        values = {} if lr is None else {"lr": lr}
        opt_state = common.set_optimizer_hparams(state.opt_state, table, hp, **values)
        state = state.replace(opt_state=opt_state, key=k_next)
        return state, batch, metrics

    def minibatch_of(
        state: TrainState, batch: Batch, hp: Any
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        rows = batch.perms.reshape(E * M, -1)  # row e*M + m: minibatch m of epoch e
        idx = torch.index_select(rows, 0, batch.step.reshape(1))[0]
        if not per_minibatch:
            return tree.map(lambda x: x[idx], batch.data), {}
        traj = _trajectory(tree.map(lambda x: x[:, idx], batch.data))
        adv, target, m_adv = advantage_fn(nets, config, state.params, traj, hp)
        n = T * idx.shape[0]
        mb = {"obs": traj.obs, "action": traj.action, "logp": traj.extras["logp"],
              "value": traj.extras["value"], "advantage": adv, "target": target}  # fmt: skip
        return tree.map(lambda x: x.reshape(n, *x.shape[2:]), mb), m_adv

    def learn_step(
        state: TrainState, batch: Batch, hp: Any
    ) -> tuple[TrainState, Batch, dict[str, torch.Tensor]]:
        minibatch, m_adv = minibatch_of(state, batch, hp)
        grad_fn = autodiff.grad(lambda p: loss_fn(nets, config, p, minibatch, hp), has_aux=True)
        grads, metrics = grad_fn(state.params)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        metrics["grad_norm"] = tree.global_norm(grads)
        metrics.update(m_adv)
        return (
            state.replace(params=params, opt_state=opt_state),
            batch.replace(step=batch.step + 1),
            metrics,
        )

    def finish(state: TrainState, hp: Any) -> TrainState:
        return state.replace(update_step=state.update_step + 1)

    u_stack = units(lambda trs: tree.stack(trs), "stack")
    u_prepare = units(prepare, "prepare")
    u_learn = units(learn_step, "learn")
    u_finish = units(finish, "finish")

    def update(state: TrainState, hp: Any) -> tuple[TrainState, dict[str, torch.Tensor]]:
        transitions = []
        collector = state.collector
        if sde:
            redraw = torch.ones_like(state.update_step, dtype=torch.bool)
            hold, noise = ~redraw, cast(SDETrainState, state).sde_noise
        for t in range(T):
            if sde:
                flag = redraw if t % config.sde_period == 0 else hold
                pp = {**state.params, "sde": noise, "redraw": flag}
                collector, tr = u_collect(collector, pp, state.env_params)
                noise = tr.extras["sde"]  # carried to the next step, not kept in the batch
                tr = tr._replace(extras={k: v for k, v in tr.extras.items() if k != "sde"})
            else:
                collector, tr = u_collect(collector, state.params, state.env_params)
            transitions.append(tr)
        state = state.replace(collector=collector)
        if sde:
            state = state.replace(sde_noise=noise)
        # The annealing horizon is an input, not a constant of the compiled graph: a run
        # of another length reuses the compiled code (and inductor's cache) as is.
        horizon = torch.full_like(state.update_step, config.num_updates, dtype=torch.float32)
        state, batch, ep_metrics = u_prepare(state, u_stack(transitions), hp, horizon)
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
        if nets.trunk is not None:
            out["trunk"] = state.params["trunk"]
        if stack.normalizer is not None:
            out["obs_norm"] = stack.obs_moments(state.collector.env_state)
        return out

    def dist(params: dict[str, Any], obs: torch.Tensor) -> Any:  # on raw env observations
        obs = common.normalize_obs_for_act(stack, params.get("obs_norm"), obs)
        return nets.distribution(nets.actor.apply(params["actor"], features(nets, params, obs)))

    act = common.acting(lambda p, o: dist(p, o).mode(), lambda p, o, k: dist(p, o).sample(k))

    return Algo(name=name, config=config, init=units(init, "init"), update=update, act=act,
                act_params=act_params, env_stack=stack, hparams_cls=hparams_cls,
                steps_per_update=config.batch_size, networks=nets, optimizer=opt,
                remake=common.remaker(make, config, parts))  # fmt: skip


def _check_parts(
    where: str,
    config: Config,
    nets: Networks,
    advantage_fn: Callable[..., Any],
    loss_fn: Callable[..., Any],
    stack: Any,
    hparams_cls: Any,
) -> tuple[int, int] | None:
    """Act, estimate advantages and take the loss once on a 2 x 2 example rollout; with
    ``config.use_sde``, return the gSDE matrix shape ``(F, act_dim)``."""
    if not isinstance(nets, Networks):
        raise TypeError(f"{where}: networks must be ppo.Networks(actor, critic, distribution)")
    params, key = common.example_params(where, nets), R.key(1)
    obs = x = torch.zeros(2, 2, *stack.obs_shape)
    if nets.trunk is not None:  # the heads take the trunk's features
        trunk = nets.trunk.apply
        x = common.check_part(where, "networks.trunk.apply", trunk, params["trunk"], obs)
    out = common.check_part(where, "networks.actor.apply", nets.actor.apply, params["actor"], x)
    dist = common.check_part(where, "networks.distribution", nets.distribution, out)
    action = common.check_part(where, "the distribution's sample", dist.sample, key)
    sde_matrix = None
    if config.use_sde:
        std = getattr(dist, "std", None)
        if not (hasattr(dist, "sample_with") and isinstance(std, torch.Tensor) and std.ndim == 2):
            raise ValueError(
                f"{where}: with use_sde, networks.distribution must return a gSDE "
                "distribution (funrl.distributions.GSDE or TanhGSDE: sample_with(eps) and "
                f"std [F, act_dim]), got {type(dist).__name__}"
            )
        sde_matrix = (int(std.shape[0]), int(std.shape[1]))
    shape = (2, 2, *stack.action_space.shape)
    common.expect_shape(where, "actions sampled for obs [2, 2, *obs]", action.float(), shape)
    v = common.check_part(where, "networks.critic.apply", nets.critic.apply, params["critic"], x)
    common.expect_shape(where, "networks.critic's values for obs [2, 2, *obs]", v, (2, 2))
    z = torch.zeros(2, 2)
    never = torch.zeros(2, 2, dtype=torch.bool)
    traj = Transition(obs, action, z, never, never, obs, {"logp": z, "value": z}, {})
    hp = hparams_cls.create()
    out = common.check_part(where, "advantage_fn", advantage_fn, nets, config, params, traj, hp)
    if not (isinstance(out, tuple) and len(out) == 3 and isinstance(out[2], dict)):
        raise ValueError(f"{where}: advantage_fn must return (advantages, targets, metrics)")
    common.expect_shape(where, "advantage_fn's advantages for a [2, 2] rollout", out[0], (2, 2))
    common.expect_shape(where, "advantage_fn's targets for a [2, 2] rollout", out[1], (2, 2))
    mb = {"obs": obs[0], "action": action[0], "logp": z[0], "value": z[0],
          "advantage": z[0] + 1.0, "target": z[0]}  # fmt: skip
    out = common.check_part(where, "loss_fn", loss_fn, nets, config, params, mb, hp)
    _, aux = common.expect_loss(where, "loss_fn", out)
    if not isinstance(aux, dict):
        raise ValueError(f"{where}: loss_fn must return (loss, dict of metrics)")
    return sde_matrix
