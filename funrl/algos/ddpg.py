"""Deep Deterministic Policy Gradient (Lillicrap et al., 2016) as ``init`` + ``update``.

DDPG as the TD3 paper's "our DDPG" baseline: one critic, a deterministic tanh actor,
Gaussian exploration noise, Polyak target networks, and an actor step after every critic
step (``Config.action_noise = "ou"`` explores with the original paper's Ornstein-Uhlenbeck
noise instead, :func:`funrl.algos.td3.ou_noise`).  It is :mod:`funrl.algos.td3`'s recipe with one critic
(``Config.num_critics = 1``), no target policy smoothing (:func:`critic_loss`) and
``policy_delay=1``; :func:`make` takes the same parts as ``td3.make``::

    collect  train_freq times: clip(mu(s) + N(0, exploration_noise), -1, 1) per env (or
             OU noise of sigma exploration_noise; uniform random actions while env
             steps < learning_starts), into the buffer
    learn    gradient_steps times: critic step towards r + gamma (1 - term) Q'(s', mu'(s')),
             actor step maximising Q(s, mu(s)), Polyak update of both targets

Example::

    >>> import funrl
    >>> from funrl.algos import ddpg
    >>> cfg = ddpg.Config(env="Pendulum-v1", num_envs=2, batch_size=8, learning_starts=8,
    ...                   buffer_size=64, hidden=(16,))
    >>> algo = ddpg.make(cfg)
    >>> hp = ddpg.HParams.create()
    >>> state = algo.init(funrl.random.key(0), hp)
    >>> for _ in range(5):
    ...     state, metrics = algo.update(state, hp)
    >>> sorted(state.params), bool(metrics["actor_loss"].isfinite())
    (['actor', 'critic'], True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from funrl import optim, tree
from funrl.algos import common, td3
from funrl.algos.common import Algo, OptimizerHParams, hparam
from funrl.algos.td3 import Networks, OUTrainState, TrainState
from funrl.algos.units import UnitTransform, eager

__all__ = ["Config", "HParams", "Networks", "OUTrainState", "TrainState", "critic_loss", "make"]


@dataclasses.dataclass(frozen=True)
class Config(td3.Config):
    """TD3's Config with DDPG's defaults: one critic, an actor step after every critic step.

    See :class:`funrl.algos.td3.Config` for every field (``policy_delay > 1`` gives a
    delayed DDPG, ``num_critics = 2`` twin critics).
    """

    policy_delay: int = 1
    num_critics: int = 1


@tree.struct
class HParams(common.HParams):
    """Sweepable DDPG hyperparameters, each a 0-d float tensor.

    Attributes:
      actor_lr, critic_lr: Adam learning rates.
      gamma: discount; tau: Polyak rate of the target networks.
      exploration_noise: std of the Gaussian noise added to actions while collecting (the
        OU process's ``sigma`` with ``Config.action_noise = "ou"``).
    """

    actor_lr: torch.Tensor = hparam(3e-4, low=0.0, low_open=True)
    critic_lr: torch.Tensor = hparam(3e-4, low=0.0, low_open=True)
    gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)
    tau: torch.Tensor = hparam(0.005, low=0.0, high=1.0, low_open=True)
    exploration_noise: torch.Tensor = hparam(0.1, low=0.0)


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
    """DDPG's critic loss: regression towards ``r + gamma (1 - term) Q'(s', mu'(s'))``."""
    a_next = nets.actor.apply(target_params["actor"], batch["next_obs"])
    return td3.bootstrap_critic_loss(nets, critic_params, target_params, batch, a_next, hp)


def make(
    config: Config,
    *,
    networks: Networks | None = None,
    critic_loss_fn: Callable[..., Any] | None = None,
    actor_loss_fn: Callable[..., Any] | None = None,
    optimizer: optim.GradientTransformation | dict[str, Any] | None = None,
    optimizer_hparams: dict[str, OptimizerHParams] | None = None,
    hparams_cls: type = HParams,
    units: UnitTransform = eager,
    name: str = "ddpg",
) -> Algo:
    """Build DDPG's pure functions: ``td3.make`` with :func:`critic_loss` and DDPG's
    :class:`HParams` (every argument as in :func:`funrl.algos.td3.make`).

    Raises:
      ValueError: a bad config, an env without a 1-d ``Box`` action space, or a part that
        fails on example inputs.
    """
    return td3.make(
        config,
        networks=networks,
        critic_loss_fn=critic_loss_fn or critic_loss,
        actor_loss_fn=actor_loss_fn,
        optimizer=optimizer,
        optimizer_hparams=optimizer_hparams,
        hparams_cls=hparams_cls,
        units=units,
        name=name,
    )
