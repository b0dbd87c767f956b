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
from typing import Any

import torch

from funrl import distributions as D
from funrl import losses, optim, tree
from funrl.algos import ppo
from funrl.algos.common import Algo, check_hparams_fields, hparams_from_kwargs
from funrl.algos.units import UnitTransform, eager

__all__ = ["Config", "HParams", "a2c_loss", "make"]


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
class HParams:
    """Sweepable A2C hyperparameters (0-d float tensors).

    Attributes:
      lr: RMSprop learning rate; alpha, eps: RMSprop smoothing and epsilon.
      gamma: discount; gae_lambda: 1.0 gives n-step returns (A2C), < 1 GAE.
      vf_coef, ent_coef: weights of the value loss and the entropy bonus.
      max_grad_norm: global gradient-norm clip.
    """

    lr: torch.Tensor
    alpha: torch.Tensor
    eps: torch.Tensor
    gamma: torch.Tensor
    gae_lambda: torch.Tensor
    vf_coef: torch.Tensor
    ent_coef: torch.Tensor
    max_grad_norm: torch.Tensor

    @classmethod
    def create(cls, **overrides: Any) -> HParams:
        """SB3's A2C defaults with ``overrides`` applied."""
        defaults = dict(
            lr=7e-4,
            alpha=0.99,
            eps=1e-5,
            gamma=0.99,
            gae_lambda=1.0,
            vf_coef=0.5,
            ent_coef=0.0,
            max_grad_norm=0.5,
        )
        return hparams_from_kwargs(cls, defaults, overrides)

    def check(self) -> None:
        check_hparams_fields(
            self,
            positive=("lr", "eps", "max_grad_norm"),
            unit=("gamma", "gae_lambda"),
            open_unit=("alpha",),
            nonnegative=("vf_coef", "ent_coef"),
        )


def a2c_loss(
    nets: ppo.Networks, config: Config, params: dict[str, Any], mb: dict[str, torch.Tensor], hp: Any
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Policy gradient + value regression - entropy bonus on the whole rollout."""
    dist = nets.distribution(nets.actor.apply(params["actor"], mb["obs"]))
    logp = dist.log_prob(mb["action"])
    v = nets.critic.apply(params["critic"], mb["obs"])
    adv = mb["advantage"]
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg, _ = losses.policy_gradient_loss(logp, adv)
    vl, v_diag = losses.value_loss(v, mb["target"])
    entropy = -logp if isinstance(dist, D.TanhNormal) else dist.entropy()
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


def make(config: Config, *, units: UnitTransform = eager) -> Algo:
    """A2C's pure functions: :func:`funrl.algos.ppo.make` with A2C's loss and RMSprop."""
    opt = optim.chain(optim.clip_by_global_norm(0.5), optim.rmsprop(7e-4, alpha=0.99, eps=1e-5))
    return ppo.make(config, units=units, loss_fn=a2c_loss, optimizer=opt, name="a2c")
