"""Deep Deterministic Policy Gradient (Lillicrap et al., 2016) as ``init`` + ``update``.

DDPG as the TD3 paper's "our DDPG" baseline: one critic, a deterministic tanh actor,
Gaussian exploration noise (not Ornstein-Uhlenbeck), Polyak target networks, and an actor
step after every critic step.  It is :mod:`funrl.algos.td3`'s update with one critic, no
target policy smoothing and ``policy_delay=1`` (see that module for the unit layout)::

    collect  train_freq times: clip(mu(s) + N(0, exploration_noise), -1, 1) per env
             (uniform random actions while env steps < learning_starts), into the buffer
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
from typing import Any

import torch

from funrl import tree
from funrl.algos import td3
from funrl.algos.common import Algo, check_hparams_fields, hparams_from_kwargs
from funrl.algos.td3 import TrainState
from funrl.algos.units import UnitTransform, eager

__all__ = ["Config", "HParams", "TrainState", "make"]


@dataclasses.dataclass(frozen=True)
class Config(td3.Config):
    """TD3's Config with DDPG's defaults: an actor step after every critic step.

    See :class:`funrl.algos.td3.Config` for every field (``policy_delay > 1`` gives a
    delayed DDPG).
    """

    policy_delay: int = 1


@tree.struct
class HParams(tree.Struct):
    """Sweepable DDPG hyperparameters, each a 0-d float tensor.

    Attributes:
      actor_lr, critic_lr: Adam learning rates.
      gamma: discount; tau: Polyak rate of the target networks.
      exploration_noise: std of the Gaussian noise added to actions while collecting.
    """

    actor_lr: torch.Tensor
    critic_lr: torch.Tensor
    gamma: torch.Tensor
    tau: torch.Tensor
    exploration_noise: torch.Tensor

    @classmethod
    def create(cls, **overrides: Any) -> HParams:
        """Defaults (CleanRL's DDPG) with ``overrides`` applied."""
        defaults = dict(actor_lr=3e-4, critic_lr=3e-4, gamma=0.99, tau=0.005, exploration_noise=0.1)
        return hparams_from_kwargs(cls, defaults, overrides)

    def check(self) -> None:
        """Eager range checks; ``ValueError`` names the field and the allowed range."""
        check_hparams_fields(
            self,
            positive=("actor_lr", "critic_lr", "tau"),
            unit=("gamma", "tau"),
            nonnegative=("exploration_noise",),
        )


def make(config: Config, *, units: UnitTransform = eager, name: str = "ddpg") -> Algo:
    """Build DDPG's pure functions for ``config`` (see :func:`funrl.algos.td3.make`).

    Raises:
      ValueError: a bad config, or an env without a 1-d ``Box`` action space.
    """
    return td3.make_deterministic(
        config, units=units, name=name, twin=False, smoothing=False, hparams_cls=HParams
    )
