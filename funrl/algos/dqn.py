"""Deep Q-Networks (Mnih et al., 2015) and its common extensions, as ``init`` + ``update``.

One ``update`` (the loop of :mod:`funrl.algos.offpolicy`)::

    collect  train_freq times: epsilon-greedy step of num_envs envs (uniform random
             actions while env steps < learning_starts; eagerly, the Q-network runs
             only when some env acts greedily); each env's transition goes
             through an n-step window and the finished n-step transitions into the buffer
    learn    gradient_steps times: sample a batch (uniform or prioritized); one step on
             loss_fn (default: l(r + discount * Q'(s', argmax_a Q_sel(s', a)) - Q(s, a)));
             target update (Polyak with tau, every target_update_interval learning steps)
    finish   episode statistics and the current epsilon

Switches (:class:`Config`): ``double_q`` (select next actions with the online net),
``dueling`` (value + advantage head), ``prioritized`` (Schaul et al., 2016; |TD| + eps
priorities, IS weights with beta annealed to 1), ``n_step`` (n-step returns, bootstrap
``discount = gamma^k`` or 0 after termination), ``loss`` ("huber" or "mse").  Hard target
updates are ``tau = 1`` with ``target_update_interval > 1``; Polyak is ``tau < 1``.

Parts (:func:`make`): ``networks=Networks(q=...)`` (any ``funrl.nn.Model`` mapping
``[..., obs_dim]`` to ``[..., num_actions]``), ``loss_fn`` (same signature as
:func:`dqn_loss`: Munchausen-DQN is a loss), ``optimizer`` and ``optimizer_hparams``.

Example::

    >>> import torch, funrl
    >>> from funrl.algos import dqn
    >>> algo = dqn.make(dqn.Config(num_envs=2, batch_size=8, learning_starts=8, buffer_size=64,
    ...                            hidden=(16,), double_q=True))
    >>> hp = dqn.HParams.create(lr=3e-3)
    >>> state = algo.init(funrl.random.key(0), hp)
    >>> for _ in range(6):
    ...     state, metrics = algo.update(state, hp)
    >>> q = algo.networks.q.apply(state.params, torch.zeros(3, 4))  # Q-values of 3 states
    >>> int(state.global_step), q.shape, bool(metrics["loss"].isfinite())
    (48, torch.Size([3, 2]), True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from funrl import autodiff, buffers, losses, optim, tree
from funrl import nn as fnn
from funrl import random as R
from funrl.algos import common, offpolicy
from funrl.algos.common import Algo, hparam
from funrl.algos.units import UnitTransform, eager
from funrl.collectors import Transition
from funrl.envs.spaces import Discrete

__all__ = [
    "OPTIMIZER_HPARAMS",
    "Config",
    "HParams",
    "Networks",
    "TrainState",
    "default_networks",
    "dqn_loss",
    "epsilon",
    "make",
]


@dataclasses.dataclass(frozen=True)
class Config(offpolicy.Config):
    """Static DQN settings (see :class:`funrl.algos.offpolicy.Config` for the shared ones).

    Attributes:
      env: a registered env id with a ``Discrete`` action space and flat observations.
      target_update_interval: learning steps between target updates (Polyak with
        ``hp.tau``; ``tau = 1`` is a hard copy).
      hidden, activation, dueling: the default Q-network.
      double_q, prioritized, n_step, loss: the extensions (module docstring).
      anneal_lr: decay the optimizer's lr linearly from ``HParams.lr`` to 0 over
        ``total_timesteps`` env steps (SB3's ``linear_schedule``, rl-zoo's ``lin_<lr>``);
        needs ``lr`` in the optimizer's hyperparameter table.
      encoder: for image observations, the encoder before the Q-network's MLP
        (``"auto"``, ``"minatar"``, ``"nature"``, ``"impala"``;
        :func:`funrl.algos.common.image_encoder`).
    """

    env: str = "CartPole-v1"
    train_freq: int = 4
    batch_size: int = 64
    learning_starts: int = 1_000
    hidden: tuple[int, ...] = (64, 64)
    target_update_interval: int = 250
    dueling: bool = False
    double_q: bool = False
    prioritized: bool = False
    n_step: int = 1
    loss: str = "huber"
    encoder: str = "auto"
    anneal_lr: bool = False

    def validate(self) -> None:
        super().validate()
        for f in ("target_update_interval", "n_step"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"Config.{f} must be a positive int, got {v!r}")
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"Config.loss must be 'huber' or 'mse', got {self.loss!r}")
        if self.encoder not in common.ENCODERS:
            raise ValueError(
                f"Config.encoder must be one of {', '.join(common.ENCODERS)}, got {self.encoder!r}"
            )


@tree.struct
class HParams(common.HParams):
    """Sweepable DQN hyperparameters, each a 0-d float tensor.

    Attributes:
      lr: Adam learning rate; max_grad_norm: global gradient-norm clip (the default
        optimizer's, see :data:`OPTIMIZER_HPARAMS`).
      gamma: discount; tau: target update rate (1 = hard copy).
      eps_start, eps_end, exploration_fraction: epsilon decays linearly from ``eps_start``
        to ``eps_end`` over ``exploration_fraction * total_timesteps`` env steps.
      per_alpha, per_beta, per_eps: prioritized replay exponent, initial IS exponent
        (annealed linearly to 1 over training) and the priority floor ``|td| + per_eps``.
        ``per_alpha`` is read once by ``init`` (the sum-tree stores ``p^alpha``).
    """

    lr: torch.Tensor = hparam(1e-3, low=0.0, low_open=True)
    max_grad_norm: torch.Tensor = hparam(10.0, low=0.0, low_open=True)
    gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)
    tau: torch.Tensor = hparam(1.0, low=0.0, high=1.0, low_open=True)
    eps_start: torch.Tensor = hparam(1.0, low=0.0, high=1.0)
    eps_end: torch.Tensor = hparam(0.05, low=0.0, high=1.0)
    exploration_fraction: torch.Tensor = hparam(0.2, low=0.0, low_open=True)
    per_alpha: torch.Tensor = hparam(0.6, low=0.0)
    per_beta: torch.Tensor = hparam(0.4, low=0.0, high=1.0)
    per_eps: torch.Tensor = hparam(1e-6, low=0.0, low_open=True)


#: The default optimizer's hyperparameters set from HParams (optimizer name -> field).
OPTIMIZER_HPARAMS: common.OptimizerHParams = {"lr": "lr", "max_norm": "max_grad_norm"}


@tree.struct
class TrainState(offpolicy.TrainState):
    """:class:`funrl.algos.offpolicy.TrainState` plus ``nstep``, the last ``n_step``
    transitions of every env (``buffers.NStepState``); the buffer holds n-step transitions
    ``obs, action, reward, discount, next_obs``."""

    nstep: buffers.NStepState

    def episodes_restarted(self) -> TrainState:
        """This state with the window's newest step marked as an episode end (truncated):
        what resuming a host env's run does, whose episodes start afresh
        (:func:`funrl.algos.common.restart_episodes`).  The steps still in the window then
        become n-step transitions that stop, and bootstrap, where the old episode was cut,
        instead of running on into the new episode's first steps."""
        trunc = self.nstep.window["truncated"]
        cut = torch.cat([trunc[:-1], torch.ones_like(trunc[-1:])])
        window = {**self.nstep.window, "truncated": cut}
        return self.replace(nstep=self.nstep.replace(window=window))


class Networks(NamedTuple):
    """DQN's network: ``q.apply(params, obs [..., obs_dim]) -> [..., num_actions]``."""

    q: fnn.Model


def default_networks(config: Config, obs_dim: int | tuple[int, ...], num_actions: int) -> Networks:
    """The Q-network ``config`` describes (``hidden``, ``activation``, ``dueling``); for
    image observations (``obs_dim`` an ``(H, W, C)`` / ``(C, H, W)`` shape) an image encoder
    (``config.encoder``) comes first."""
    if isinstance(obs_dim, tuple) and len(obs_dim) == 3:
        enc = common.image_encoder("dqn", config.encoder, obs_dim)
        return Networks(fnn.encoded(enc, default_networks(config, enc.features, num_actions).q))
    if isinstance(obs_dim, tuple):
        obs_dim = math.prod(obs_dim)
    q = fnn.q_net(obs_dim, num_actions, config.hidden, config.dueling, config.activation)
    return Networks(q)


def epsilon(global_step: torch.Tensor, hp: Any, total_timesteps: int) -> torch.Tensor:
    """``eps_start + (eps_end - eps_start) * min(1, step / (fraction * total))``."""
    horizon = hp.exploration_fraction * total_timesteps
    frac = torch.clamp(global_step.to(hp.eps_start.dtype) / horizon, max=1.0)
    return hp.eps_start + (hp.eps_end - hp.eps_start) * frac


def dqn_loss(
    nets: Networks,
    config: Config,
    params: Any,
    target_params: Any,
    batch: dict[str, torch.Tensor],
    hp: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The default loss: (double) Q-learning on n-step transitions.

    ``batch`` holds ``obs``, ``action``, ``reward`` (n-step sums), ``discount`` (``gamma^k``,
    0 after termination) and ``next_obs``, each ``[B, ...]``, plus ``weights`` ``[B]`` with
    prioritized replay.  Returns ``(loss, aux)``: ``aux["td_error"]`` ``[B]`` (the new
    priorities come from it) and 0-d diagnostics (reported as metrics).
    """
    # n-step targets r + discount * v': the per-sample discount scales the target Q
    # (discount >= 0 commutes with max/argmax), the loss gets gamma = 1, no termination.
    q_tm1 = nets.q.apply(params, batch["obs"])
    q_t = nets.q.apply(target_params, batch["next_obs"]).detach() * batch["discount"][:, None]
    never = torch.zeros_like(batch["discount"], dtype=torch.bool)
    one = torch.ones_like(hp.gamma)
    kw: dict[str, Any] = {"loss": config.loss, "weights": batch.get("weights")}
    if config.double_q:
        sel = nets.q.apply(params, batch["next_obs"]).detach()
        return losses.double_q_learning_loss(
            q_tm1, batch["action"], batch["reward"], never, one, q_t, sel, **kw
        )
    return losses.q_learning_loss(q_tm1, batch["action"], batch["reward"], never, one, q_t, **kw)


def _example(obs_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    obs = torch.zeros(obs_shape)
    return {
        "obs": obs,
        "action": torch.zeros((), dtype=torch.int64),
        "reward": torch.zeros(()),
        "discount": torch.zeros(()),
        "next_obs": obs.clone(),
    }


def _needed_fields(config: Config, table: common.OptimizerHParams) -> set[str]:
    fields = {"gamma", "tau", "eps_start", "eps_end", "exploration_fraction", *table.values()}
    return fields | ({"per_alpha", "per_beta", "per_eps"} if config.prioritized else set())


def make(
    config: Config,
    *,
    networks: Networks | None = None,
    loss_fn: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]] | None = None,
    optimizer: optim.GradientTransformation | None = None,
    optimizer_hparams: common.OptimizerHParams | None = None,
    hparams_cls: type = HParams,
    units: UnitTransform = eager,
    name: str = "dqn",
) -> Algo:
    """Build DQN's pure functions for ``config``.

    Args:
      config: static settings.
      networks: ``Networks(q=...)``; default :func:`default_networks`.
      loss_fn: ``(nets, config, params, target_params, batch, hp) -> (loss, aux)`` with
        ``aux["td_error"]`` ``[B]`` under prioritized replay; default :func:`dqn_loss`.
      optimizer: default ``chain(clip_by_global_norm, adam)``.
      optimizer_hparams: which HParams field sets which optimizer hyperparameter; default
        :data:`OPTIMIZER_HPARAMS` for the default optimizer, none for yours (its values
        are used as given).
      hparams_cls: :class:`HParams` or a subclass with the fields your parts read.
      units: how each compute unit runs (``funrl.algos.units``).
      name: the algorithm's name in logs.

    Returns:
      :class:`funrl.algos.common.Algo`; ``act(act_params, obs, key=None,
      deterministic=True)`` gives ``argmax_a Q(obs, a)``, or with ``deterministic=False``
      and a key, epsilon-greedy actions with epsilon 0.05.

    Raises:
      ValueError: a bad config, an env without a ``Discrete`` action space, or a part that
        fails on example inputs (wrong signature, output shape, missing HParams field).
    """
    config.validate()
    parts = dict(networks=networks, loss_fn=loss_fn, optimizer=optimizer,
                 optimizer_hparams=optimizer_hparams, hparams_cls=hparams_cls, units=units,
                 name=name)  # fmt: skip
    where = f"{name}.make"
    stack = common.make_env_stack(
        config.env, config.num_envs, vectorization=config.host_vectorization
    )
    if not isinstance(stack.action_space, Discrete):
        raise ValueError(f"{where}: DQN needs a Discrete action space, {config.env} has "
                         f"{stack.action_space}")  # fmt: skip
    num_actions, E = int(stack.action_space.n), config.num_envs
    offpolicy.check_obs_storage(where, config, stack)
    nets = networks or default_networks(
        config, stack.obs_shape if stack.images else stack.obs_dim, num_actions
    )
    loss_fn = loss_fn or dqn_loss
    opt, table = common.resolve_optimizer(
        where,
        optimizer,
        optimizer_hparams,
        lambda: optim.chain(optim.clip_by_global_norm(10.0), optim.adam(1e-3)),
        OPTIMIZER_HPARAMS,
    )
    parts.update(optimizer=opt, optimizer_hparams=table)  # remake keeps them
    common.check_anneal_lr(where, config.anneal_lr, table)
    common.check_hparams_cls(where, hparams_cls, _needed_fields(config, table))
    _check_parts(where, config, nets, loss_fn, stack.obs_shape, num_actions, hparams_cls)

    def exploration(global_step: torch.Tensor, hp: Any) -> torch.Tensor:
        """Epsilon at ``global_step``: 1 (uniform actions) before learning starts."""
        eps = epsilon(global_step, hp, config.total_timesteps)
        return torch.where(global_step < config.learning_starts, torch.ones_like(eps), eps)

    obs_rank = len(stack.obs_shape)

    def eps_greedy(
        params: Any, obs: torch.Tensor, eps: torch.Tensor, key: torch.Tensor
    ) -> torch.Tensor:
        w = R.bits(key, (2, *obs.shape[: obs.dim() - obs_rank]))  # explore coin, random action
        explore = (w[0] >> 8).to(torch.float32) * (1.0 / 16777216.0) < eps
        uniform = w[1] % num_actions
        # When every env explores (always before learning starts, mostly while epsilon
        # is near 1) the Q-network's actions would all be discarded: eagerly, skip it.
        # Traced code computes both: a torch.cond saved the network at epsilon 1 but was
        # slower at epsilon 0.01, where a run spends most of its steps (RESULTS.md).
        if tree.is_concrete(explore) and bool(explore.all()):
            return uniform
        return torch.where(explore, uniform, nets.q.apply(params, obs).argmax(-1))

    def policy(pp: dict[str, Any], obs: torch.Tensor, key: torch.Tensor) -> Any:
        return eps_greedy(pp["q"], obs, pp["eps"], key), {}

    def policy_params(state: TrainState, hp: Any) -> dict[str, Any]:
        return {"q": state.params, "eps": exploration(state.global_step, hp)}

    def n_step_rows(state: TrainState, tr: Transition, hp: Any) -> tuple[Any, Any, Any]:
        tr = tr._replace(reward=tr.reward.to(torch.float32))
        nstep, out, valid = buffers.n_step_push(state.nstep, tr, hp.gamma)
        rows = {"obs": out.obs, "action": out.action, "reward": out.reward.to(torch.float32),
                "discount": out.discount.to(torch.float32), "next_obs": out.next_obs}  # fmt: skip
        return state.replace(nstep=nstep), rows, valid

    def init(key: torch.Tensor, hp: Any) -> TrainState:
        common.check_hparams_if_concrete(hp)
        k_q, k_env, k_state = R.split(key, 3)
        params = nets.q.init(k_q)
        obs = torch.zeros(E, *stack.obs_shape)
        first = Transition(
            obs, torch.zeros(E, dtype=torch.int64), torch.zeros(E), torch.zeros(E, dtype=torch.bool),
            torch.zeros(E, dtype=torch.bool), obs, {}, {},
        )  # fmt: skip
        return offpolicy.new_state(
            TrainState,
            stack,
            params=params,
            target_params=tree.map(torch.clone, params),
            opt_state=common.set_optimizer_hparams(opt.init(params), table, hp),
            buffer=offpolicy.init_buffer(
                _example(stack.obs_shape), config, hp.per_alpha if config.prioritized else None
            ),
            k_env=k_env,
            key=k_state,
            nstep=buffers.n_step_init(first, config.n_step),
        )

    def learn_step(
        state: TrainState, batch: dict[str, torch.Tensor], keys: list, hp: Any, variant: Any
    ) -> offpolicy.Step:
        grad_fn = autodiff.grad_and_value(
            lambda p: loss_fn(nets, config, p, state.target_params, batch, hp), has_aux=True
        )
        grads, (loss, aux) = grad_fn(state.params)
        values: dict[str, torch.Tensor] = {}
        if config.anneal_lr:  # SB3's progress_remaining: 1 - env steps / total_timesteps
            lr = getattr(hp, table["lr"])
            frac = 1.0 - state.global_step.to(lr.dtype) / config.total_timesteps
            values["lr"] = lr * torch.clamp(frac, min=0.0)
        opt_state = common.set_optimizer_hparams(state.opt_state, table, hp, **values)
        updates, opt_state = opt.update(grads, opt_state, state.params)
        params = optim.apply_updates(state.params, updates)
        do_target = (state.grad_step + 1) % config.target_update_interval == 0
        polyak = offpolicy.soft_update(state.target_params, params, hp.tau)
        target = tree.where(do_target, polyak, state.target_params)
        metrics = {"loss": loss.detach(), **{k: v for k, v in aux.items() if v.ndim == 0}}
        return offpolicy.Step(params, target, opt_state, metrics, aux.get("td_error"))

    update = offpolicy.make_update(
        config,
        stack,
        units,
        policy=policy,
        policy_params=policy_params,
        learn_step=learn_step,
        num_keys=0,
        to_rows=n_step_rows,
        prioritized=config.prioritized,
        finish_metrics=lambda s, hp: {"epsilon": exploration(s.global_step - E, hp)},
    )

    def act_params(state: TrainState) -> dict[str, Any]:
        return {"q": state.params}

    act = common.acting(
        lambda p, obs: nets.q.apply(p["q"], obs).argmax(-1),
        lambda p, obs, key: eps_greedy(p["q"], obs, torch.tensor(0.05), key),
    )

    return Algo(name=name, config=config, init=units(init, "init"), update=update, act=act,
                act_params=act_params, env_stack=stack, hparams_cls=hparams_cls,
                steps_per_update=config.steps_per_update, networks=nets, optimizer=opt,
                remake=common.remaker(make, config, parts))  # fmt: skip


def _check_parts(
    where: str,
    config: Config,
    nets: Networks,
    loss_fn: Callable[..., Any],
    obs_shape: tuple[int, ...],
    num_actions: int,
    hparams_cls: Any,
) -> None:
    """Run the network and the loss once on example inputs (``ValueError`` naming the part)."""
    if not isinstance(nets, Networks) or not isinstance(nets.q, fnn.Model):
        raise TypeError(f"{where}: networks must be dqn.Networks(q=<funrl.nn.Model>), got {nets!r}")
    params = common.example_params(where, nets)["q"]
    obs = torch.zeros(2, *obs_shape)
    q = common.check_part(where, "networks.q.apply", nets.q.apply, params, obs)
    what = f"networks.q's output for obs {list(obs.shape)}"
    common.expect_shape(where, what, q, (2, num_actions))
    batch = tree.stack([_example(obs_shape)] * 2)
    if config.prioritized:
        batch["weights"] = torch.ones(2)
    hp = hparams_cls.create()
    out = common.check_part(where, "loss_fn", loss_fn, nets, config, params, params, batch, hp)
    _, aux = common.expect_loss(where, "loss_fn", out)
    if not isinstance(aux, dict):
        raise ValueError(
            f"{where}: loss_fn must return (loss, dict of metrics), got {type(aux).__name__} aux"
        )
    if config.prioritized:
        common.expect_shape(
            where, "loss_fn's aux['td_error'] (prioritized replay)", aux.get("td_error"), (2,)
        )
