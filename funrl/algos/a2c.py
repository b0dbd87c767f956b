"""Advantage Actor-Critic (Mnih et al., 2016; synchronous, as SB3's A2C) as init + update.

A2C is PPO's update with one epoch over one minibatch (the whole rollout), the plain
policy-gradient loss instead of the clipped surrogate, no value clipping, and RMSprop:
this file is that composition of :mod:`funrl.algos.ppo`'s parts.

Example::

    >>> import funrl
    >>> from funrl.algos import a2c
    >>> algo = a2c.make(a2c.Config(num_envs=4, num_steps=5))
    >>> hp = a2c.HParams.create()
    >>> state, metrics = algo.update(algo.init(funrl.random.key(0), hp), hp)
    >>> float(metrics["clip_fraction"])
    0.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from funrl import losses, optim, tree
from funrl.algos import common, ppo
from funrl.algos.common import Algo, OptimizerHParams, hparam
from funrl.algos.units import UnitTransform, eager

__all__ = ["OPTIMIZER_HPARAMS", "Config", "HParams", "a2c_loss", "make"]


@dataclasses.dataclass(frozen=True)
class Config(ppo.Config):
    """PPO's Config with A2C's defaults (SB3: 5 steps per env, 1 epoch, 1 minibatch).

    See :class:`funrl.algos.ppo.Config` for every field.
    """

    num_envs: int = 16
    num_steps: int = 5
    num_minibatches: int = 1
    update_epochs: int = 1
    anneal_lr: bool = False
    normalize_advantages: bool = False
    clip_value: bool = False


@tree.struct
class HParams(common.HParams):
    """Sweepable A2C hyperparameters (0-d float tensors); defaults are SB3's A2C.

    Attributes:
      lr: RMSprop learning rate; alpha, eps: RMSprop smoothing and epsilon (all three set
        the default optimizer, see :data:`OPTIMIZER_HPARAMS`).
      gamma: discount; gae_lambda: 1.0 gives n-step returns (A2C), < 1 GAE.
      vf_coef, ent_coef: weights of the value loss and the entropy bonus.
      max_grad_norm: global gradient-norm clip.
    """

    lr: torch.Tensor = hparam(7e-4, low=0.0, low_open=True)
    alpha: torch.Tensor = hparam(0.99, low=0.0, high=1.0, high_open=True)
    eps: torch.Tensor = hparam(1e-5, low=0.0, low_open=True)
    gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)
    gae_lambda: torch.Tensor = hparam(1.0, low=0.0, high=1.0)
    vf_coef: torch.Tensor = hparam(0.5, low=0.0)
    ent_coef: torch.Tensor = hparam(0.0, low=0.0)
    max_grad_norm: torch.Tensor = hparam(0.5, low=0.0, low_open=True)


#: The default optimizer's hyperparameters set from HParams (optimizer name -> field).
OPTIMIZER_HPARAMS: OptimizerHParams = {
    "lr": "lr",
    "alpha": "alpha",
    "eps": "eps",
    "max_norm": "max_grad_norm",
}


def a2c_loss(
    nets: ppo.Networks, config: Config, params: dict[str, Any], mb: dict[str, torch.Tensor], hp: Any
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Policy gradient + value regression - entropy bonus on the whole rollout."""
    dist, logp, v, adv = ppo.minibatch_terms(nets, config, params, mb)
    pg, _ = losses.policy_gradient_loss(logp, adv)
    vl, v_diag = losses.value_loss(v, mb["target"])
    entropy = ppo.entropy_of(dist, logp)
    el, _ = losses.entropy_loss(entropy)
    # SB3 weighs the value loss as vf_coef * MSE; value_loss is 0.5 * MSE.
    total = pg + 2.0 * hp.vf_coef * vl + hp.ent_coef * el
    log_ratio = logp.detach() - mb["logp"]
    metrics = {
        "loss": total,
        "policy_loss": pg,
        "value_loss": vl,
        "entropy": entropy.mean(),
        "approx_kl": ((torch.exp(log_ratio) - 1) - log_ratio).mean(),
        "clip_fraction": torch.zeros(()),
        "explained_variance": v_diag["explained_variance"],
    }
    return total, metrics


def make(
    config: Config,
    *,
    networks: ppo.Networks | None = None,
    advantage_fn: Callable[..., Any] | None = None,
    loss_fn: Callable[..., Any] | None = None,
    optimizer: optim.GradientTransformation | None = None,
    optimizer_hparams: OptimizerHParams | None = None,
    hparams_cls: type = HParams,
    units: UnitTransform = eager,
    name: str = "a2c",
) -> Algo:
    """A2C's pure functions: :func:`funrl.algos.ppo.make` with :func:`a2c_loss`, RMSprop
    and A2C's :class:`HParams` (every argument as in ``ppo.make``)."""
    if optimizer is None:
        optimizer = optim.chain(
            optim.clip_by_global_norm(0.5), optim.rmsprop(7e-4, alpha=0.99, eps=1e-5)
        )
        optimizer_hparams = OPTIMIZER_HPARAMS if optimizer_hparams is None else optimizer_hparams
    return ppo.make(
        config,
        networks=networks,
        advantage_fn=advantage_fn,
        loss_fn=loss_fn or a2c_loss,
        optimizer=optimizer,
        optimizer_hparams=optimizer_hparams,
        hparams_cls=hparams_cls,
        units=units,
        name=name,
    )
