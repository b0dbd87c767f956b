"""Losses as plain functions: ``loss_fn(...) -> (loss, diagnostics)``.

Every loss takes a flat batch (leading dim ``N``; time and envs flattened) and 0-d
tensor hyperparameters (floats accepted), returns a 0-d loss to minimise and a dict of
detached diagnostics, and composes with ``torch.func.grad``, ``vmap`` and
``torch.compile``. Conventions shared by all of them:

* squared errors are **half** squared errors, ``0.5 * (x - y)**2`` (rlax's ``l2_loss``);
* bootstrap targets, advantages, old log-probabilities and temperatures are detached
  inside the loss (each docstring says which arguments are stop-gradient);
* ``terminated_t`` (not truncation) cuts the bootstrap; ``gamma`` is the discount the
  caller wants applied (``gamma**n`` for n-step);
* entry checks raise ``ValueError``/``TypeError`` naming the argument; checks on values
  are skipped under ``torch.compile`` tracing and on vmap-batched tensors.

Example::

    >>> import torch
    >>> from funrl import losses
    >>> logp = torch.tensor([-0.7, -1.2], requires_grad=True)
    >>> loss, diag = losses.ppo_clip_loss(logp, logp.detach(), torch.tensor([1.0, -1.0]), 0.2)
    >>> loss.backward()
    >>> logp.grad.tolist()
    [-0.5, 0.5]
"""

from funrl.losses.actor_critic import ddpg_actor_loss, ddpg_critic_loss
from funrl.losses.policy import (
    adapt_kl_beta,
    entropy_loss,
    policy_gradient_loss,
    ppo_clip_loss,
    ppo_kl_penalty_loss,
)
from funrl.losses.q_learning import double_q_learning_loss, huber_loss, q_learning_loss
from funrl.losses.sac import (
    sac_actor_loss,
    sac_critic_loss,
    sac_discrete_actor_loss,
    sac_discrete_critic_loss,
    sac_discrete_temperature_loss,
    sac_temperature_loss,
)
from funrl.losses.value import explained_variance, td_lambda_value_loss, value_loss

__all__ = [
    "adapt_kl_beta",
    "ddpg_actor_loss",
    "ddpg_critic_loss",
    "double_q_learning_loss",
    "entropy_loss",
    "explained_variance",
    "huber_loss",
    "policy_gradient_loss",
    "ppo_clip_loss",
    "ppo_kl_penalty_loss",
    "q_learning_loss",
    "sac_actor_loss",
    "sac_critic_loss",
    "sac_discrete_actor_loss",
    "sac_discrete_critic_loss",
    "sac_discrete_temperature_loss",
    "sac_temperature_loss",
    "td_lambda_value_loss",
    "value_loss",
]
