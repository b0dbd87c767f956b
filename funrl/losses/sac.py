"""Soft Actor-Critic losses: continuous (Haarnoja et al., 2018) and discrete (Christodoulou, 2019).

Temperature convention (as SB3 and CleanRL): the learnable parameter is
``log_alpha`` and ``alpha = exp(log_alpha)``. The critic and actor losses take ``alpha``
(a 0-d tensor, detached inside); the temperature losses take ``log_alpha`` and are
linear in it, :math:`-\\log\\alpha\\, \\mathrm{sg}(\\log\\pi + \\bar{\\mathcal H})` (SB3's
form; CleanRL differentiates :math:`-\\alpha(\\ldots)` instead: same sign of the
gradient, scaled by :math:`\\alpha`).

Critic losses are half squared errors summed over the critic ensemble (see
:mod:`funrl.losses.actor_critic`); the min over twin target critics is taken by the
caller (``q_t_target_min``).

Example::

    >>> import torch
    >>> from funrl.losses import sac_actor_loss
    >>> loss, d = sac_actor_loss(torch.tensor([-1.0, -3.0]), torch.tensor([1.0, 2.0]), 0.5)
    >>> float(loss), float(d["entropy"])
    (-2.5, 2.0)
"""

from __future__ import annotations

from torch import Tensor

from funrl.losses import _checks as C
from funrl.losses.actor_critic import check_critics, critic_regression

__all__ = [
    "sac_actor_loss",
    "sac_critic_loss",
    "sac_discrete_actor_loss",
    "sac_discrete_critic_loss",
    "sac_discrete_temperature_loss",
    "sac_temperature_loss",
]


def _alpha(alpha: Tensor | float, like: Tensor) -> Tensor:
    return C.hparam(alpha, "alpha", like, low=0.0).detach()


def _log_alpha(log_alpha: Tensor | float, like: Tensor) -> Tensor:
    return C.hparam(log_alpha, "log_alpha", like)


def sac_critic_loss(
    q_tm1: Tensor,
    r_t: Tensor,
    terminated_t: Tensor,
    gamma: Tensor | float,
    q_t_target_min: Tensor,
    logp_t_next: Tensor,
    alpha: Tensor | float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """SAC soft Q loss (continuous actions).

    .. math::
        y_i = r_i + \\gamma (1 - \\mathrm{term}_i) \\big(\\min_e Q'_e(s'_i, a'_i) - \\alpha \\log\\pi(a'_i|s'_i)\\big),
        \\quad a'_i \\sim \\pi(\\cdot|s'_i)

    .. math:: L = \\sum_e \\frac1N \\sum_i \\tfrac12 (Q_e(s_i, a_i) - \\mathrm{sg}(y_i))^2

    Args:
      q_tm1: ``[E, N]`` (or ``[N]``) online critics' values of the replayed pairs.
      r_t: ``[N]`` rewards.
      terminated_t: ``[N]`` bool or 0/1 float: next state terminal (not truncated).
      gamma: 0-d discount in ``[0, 1]``.
      q_t_target_min: ``[N]`` min over target critics at ``(s', a')``; stop-gradient.
      logp_t_next: ``[N]`` :math:`\\log\\pi(a'|s')` of the freshly sampled ``a'``; stop-gradient.
      alpha: 0-d temperature ``>= 0`` (``exp(log_alpha)``); stop-gradient.

    Returns:
      ``(loss, {"td_error_abs_mean", "q_mean", "target_mean"})``.

    Example::

        >>> import torch
        >>> loss, d = sac_critic_loss(torch.tensor([[0.0], [1.0]]), torch.tensor([1.0]),
        ...     torch.tensor([False]), 1.0, torch.tensor([2.0]), torch.tensor([-2.0]), 0.5)
        >>> float(d["target_mean"]), float(loss)
        (4.0, 12.5)
    """
    n = C.check_vectors(
        ("r_t", r_t), ("q_t_target_min", q_t_target_min), ("logp_t_next", logp_t_next)
    )
    C.check_shape(terminated_t, "terminated_t", (n,))
    q = check_critics(q_tm1, n, "r_t")
    g = C.hparam(gamma, "gamma", r_t, low=0.0, high=1.0)
    a = _alpha(alpha, r_t)
    soft_v = q_t_target_min - a * logp_t_next
    target = r_t + g * C.not_done(terminated_t, "terminated_t", r_t) * soft_v
    return critic_regression(q, target)


def sac_actor_loss(
    logp_t: Tensor, q_min_t: Tensor, alpha: Tensor | float
) -> tuple[Tensor, dict[str, Tensor]]:
    """SAC policy loss (continuous actions, reparameterised samples).

    .. math:: L = \\frac1N \\sum_i \\alpha \\log\\pi(\\tilde a_i|s_i) - \\min_e Q_e(s_i, \\tilde a_i)

    Args:
      logp_t: ``[N]`` log-densities of reparameterised actions :math:`\\tilde a_i`
        (gradients flow into the actor).
      q_min_t: ``[N]`` min over online critics at :math:`(s_i, \\tilde a_i)` (gradients flow
        through the action into the actor).
      alpha: 0-d temperature ``>= 0``; stop-gradient.

    Returns:
      ``(loss, {"entropy", "q_mean"})`` where ``entropy = -mean(logp_t)``.

    Example::

        >>> import torch
        >>> float(sac_actor_loss(torch.tensor([-1.0]), torch.tensor([3.0]), 2.0)[0])
        -5.0
    """
    C.check_vectors(("logp_t", logp_t), ("q_min_t", q_min_t))
    a = _alpha(alpha, logp_t)
    loss = (a * logp_t - q_min_t).mean()
    return loss, {"entropy": -logp_t.detach().mean(), "q_mean": q_min_t.detach().mean()}


def sac_temperature_loss(
    log_alpha: Tensor | float, logp_t: Tensor, target_entropy: Tensor | float
) -> tuple[Tensor, dict[str, Tensor]]:
    """SAC automatic temperature loss (continuous actions).

    .. math:: L = -\\frac1N \\sum_i \\log\\alpha \\cdot \\mathrm{sg}(\\log\\pi(a_i|s_i) + \\bar{\\mathcal H})

    Its gradient w.r.t. ``log_alpha`` is ``-(mean(logp) + target_entropy)`` = entropy minus
    target: alpha grows when the policy's entropy falls below the target.

    Args:
      log_alpha: 0-d learnable log-temperature (gradients flow into it).
      logp_t: ``[N]`` log-densities of actions sampled from the current policy; stop-gradient.
      target_entropy: 0-d target entropy :math:`\\bar{\\mathcal H}` (commonly ``-action_dim``).

    Returns:
      ``(loss, {"alpha", "entropy"})`` with ``alpha = exp(log_alpha)`` (detached).

    Example::

        >>> import torch
        >>> float(sac_temperature_loss(torch.tensor(0.5), torch.tensor([1.0, 3.0]), -1.0)[0])
        -0.5
    """
    C.check_vectors(("logp_t", logp_t))
    la = _log_alpha(log_alpha, logp_t)
    h = C.hparam(target_entropy, "target_entropy", logp_t)
    loss = -(la * (logp_t + h).detach()).mean()
    return loss, {"alpha": la.detach().exp(), "entropy": -logp_t.detach().mean()}


def _check_discrete_policy(probs_t: Tensor, logp_t: Tensor, pname: str, lname: str) -> None:
    C.check_float(probs_t, pname)
    C.check_shape(probs_t, pname, ("N", "A"))
    C.check_float(logp_t, lname)
    C.check_shape(logp_t, lname, tuple(probs_t.shape))


def sac_discrete_critic_loss(
    q_tm1: Tensor,
    a_tm1: Tensor,
    r_t: Tensor,
    terminated_t: Tensor,
    gamma: Tensor | float,
    q_t_target_min: Tensor,
    probs_t_next: Tensor,
    logp_t_next: Tensor,
    alpha: Tensor | float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Discrete SAC soft Q loss (Christodoulou, 2019): exact expectation over next actions.

    .. math::
        y_i = r_i + \\gamma (1 - \\mathrm{term}_i) \\sum_a \\pi(a|s'_i)\\big(\\min_e Q'_e(s'_i, a) - \\alpha \\log\\pi(a|s'_i)\\big)

    .. math:: L = \\sum_e \\frac1N \\sum_i \\tfrac12 (Q_e(s_i, a_i) - \\mathrm{sg}(y_i))^2

    Args:
      q_tm1: ``[E, N, A]`` (or ``[N, A]``) online critics' Q-values at the replayed states.
      a_tm1: ``[N]`` integer actions taken.
      r_t: ``[N]`` rewards.
      terminated_t: ``[N]`` bool or 0/1 float: next state terminal (not truncated).
      gamma: 0-d discount in ``[0, 1]``.
      q_t_target_min: ``[N, A]`` min over target critics at the next states; stop-gradient.
      probs_t_next: ``[N, A]`` policy probabilities at the next states; stop-gradient.
      logp_t_next: ``[N, A]`` their logs (``log_softmax`` of the logits; finite); stop-gradient.
      alpha: 0-d temperature ``>= 0``; stop-gradient.

    Returns:
      ``(loss, {"td_error_abs_mean", "q_mean", "target_mean"})``.

    Example::

        >>> import torch
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> loss, d = sac_discrete_critic_loss(torch.zeros(1, 2), torch.tensor([0]), torch.tensor([0.0]),
        ...     torch.tensor([False]), 1.0, torch.tensor([[1.0, 3.0]]), p, p.log(), 0.0)
        >>> float(d["target_mean"]), float(loss)
        (2.0, 2.0)
    """
    C.check_float(q_tm1, "q_tm1")
    if q_tm1.ndim not in (2, 3):
        raise ValueError(f"q_tm1 must have shape [N, A] or [E, N, A], got {list(q_tm1.shape)}")
    q = q_tm1 if q_tm1.ndim == 3 else q_tm1.unsqueeze(0)
    n, num_actions = q.shape[1], q.shape[2]
    C.check_vectors(("r_t", r_t))
    C.check_size(r_t, "r_t", 0, n, "q_tm1's N dim")
    C.check_int(a_tm1, "a_tm1")
    C.check_shape(a_tm1, "a_tm1", (n,))
    C.check_shape(terminated_t, "terminated_t", (n,))
    for name, x in (
        ("q_t_target_min", q_t_target_min),
        ("probs_t_next", probs_t_next),
        ("logp_t_next", logp_t_next),
    ):
        C.check_float(x, name)
        C.check_shape(x, name, (n, num_actions))
    C.check_actions(a_tm1, "a_tm1", num_actions)
    g = C.hparam(gamma, "gamma", r_t, low=0.0, high=1.0)
    a = _alpha(alpha, r_t)
    soft_v = (probs_t_next * (q_t_target_min - a * logp_t_next)).sum(dim=-1)
    target = r_t + g * C.not_done(terminated_t, "terminated_t", r_t) * soft_v
    idx = a_tm1.long()[None, :, None].expand(q.shape[0], n, 1)
    q_a = q.gather(-1, idx).squeeze(-1)
    return critic_regression(q_a, target)


def sac_discrete_actor_loss(
    probs_t: Tensor, logp_t: Tensor, q_t: Tensor, alpha: Tensor | float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Discrete SAC policy loss: exact expectation over actions (Christodoulou, 2019).

    .. math:: L = \\frac1N \\sum_i \\sum_a \\pi(a|s_i)\\big(\\alpha \\log\\pi(a|s_i) - \\mathrm{sg}(Q(s_i, a))\\big)

    Note: CleanRL takes ``.mean()`` over both ``N`` and ``A`` (dividing by ``A`` too);
    this sums over actions, the true expectation.

    Args:
      probs_t: ``[N, A]`` policy probabilities (gradients flow).
      logp_t: ``[N, A]`` their logs (``log_softmax`` of the logits; gradients flow).
      q_t: ``[N, A]`` Q-values (min over online critics); stop-gradient.
      alpha: 0-d temperature ``>= 0``; stop-gradient.

    Returns:
      ``(loss, {"entropy", "q_mean"})``: mean policy entropy and mean expected Q.

    Example::

        >>> import torch
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> float(sac_discrete_actor_loss(p, p.log(), torch.tensor([[1.0, 3.0]]), 0.0)[0])
        -2.0
    """
    _check_discrete_policy(probs_t, logp_t, "probs_t", "logp_t")
    C.check_float(q_t, "q_t")
    C.check_shape(q_t, "q_t", tuple(probs_t.shape))
    a = _alpha(alpha, logp_t)
    q = q_t.detach()
    loss = (probs_t * (a * logp_t - q)).sum(dim=-1).mean()
    p = probs_t.detach()
    diag = {
        "entropy": -(p * logp_t.detach()).sum(dim=-1).mean(),
        "q_mean": (p * q).sum(dim=-1).mean(),
    }
    return loss, diag


def sac_discrete_temperature_loss(
    log_alpha: Tensor | float, probs_t: Tensor, logp_t: Tensor, target_entropy: Tensor | float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Discrete SAC temperature loss, using the exact policy entropy.

    .. math:: L = -\\frac1N \\sum_i \\log\\alpha \\cdot \\mathrm{sg}\\Big(\\sum_a \\pi(a|s_i)\\log\\pi(a|s_i) + \\bar{\\mathcal H}\\Big)

    Args:
      log_alpha: 0-d learnable log-temperature (gradients flow into it).
      probs_t: ``[N, A]`` policy probabilities; stop-gradient.
      logp_t: ``[N, A]`` their logs; stop-gradient.
      target_entropy: 0-d target entropy (e.g. ``0.89 * log(A)`` as in CleanRL, or
        ``0.98 * log(A)`` as in the paper).

    Returns:
      ``(loss, {"alpha", "entropy"})``.

    Example::

        >>> import torch
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> float(sac_discrete_temperature_loss(torch.tensor(1.0), p, p.log(), 1.0)[0])
        -0.3068528175354004
    """
    _check_discrete_policy(probs_t, logp_t, "probs_t", "logp_t")
    la = _log_alpha(log_alpha, logp_t)
    h = C.hparam(target_entropy, "target_entropy", logp_t)
    neg_entropy = (probs_t * logp_t).detach().sum(dim=-1)
    loss = -(la * (neg_entropy + h)).mean()
    return loss, {"alpha": la.detach().exp(), "entropy": -neg_entropy.mean()}
