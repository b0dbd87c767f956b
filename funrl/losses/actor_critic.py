"""Deterministic actor-critic losses: DDPG (Lillicrap et al., 2016) and TD3 (Fujimoto et al., 2018).

The losses take the bootstrap value already computed: target-policy smoothing (TD3's
clipped noise on the target action) and the minimum over twin target critics are the
algorithm's job, so one critic loss serves DDPG, TD3 and their variants. Critic losses
use the half squared error (module doc of :mod:`funrl.losses.value`) and **sum** over
an ensemble of critics, so each critic gets the gradient it would get alone (SB3 and
CleanRL also sum; their ``F.mse_loss`` is twice our per-critic term).

Example::

    >>> import torch
    >>> from funrl.losses import ddpg_critic_loss, ddpg_actor_loss
    >>> q = torch.tensor([[1.0, 2.0], [1.5, 2.5]])          # [E=2 critics, N=2]
    >>> loss, d = ddpg_critic_loss(q, torch.ones(2), torch.tensor([False, True]), 0.5,
    ...                            torch.tensor([2.0, 9.0]))
    >>> float(loss)
    1.125
"""

from __future__ import annotations

from torch import Tensor

from funrl.losses import _checks as C

__all__ = ["ddpg_actor_loss", "ddpg_critic_loss"]


def check_critics(q_tm1: Tensor, n: int, ref: str) -> Tensor:
    """Return ``q_tm1`` as ``[E, N]`` (a ``[N]`` input becomes ``[1, N]``), checking shapes."""
    C.check_float(q_tm1, "q_tm1")
    if q_tm1.ndim not in (1, 2):
        raise ValueError(f"q_tm1 must have shape [N] or [E, N], got {list(q_tm1.shape)}")
    C.check_size(q_tm1, "q_tm1", q_tm1.ndim - 1, n, ref)
    return q_tm1 if q_tm1.ndim == 2 else q_tm1.unsqueeze(0)


def critic_regression(q: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Sum over critics of the mean half squared error of ``q [E, N]`` to ``target [N]``."""
    y = target.detach()
    td = y - q
    loss = (0.5 * td**2).mean(dim=-1).sum()
    diag = {
        "td_error_abs_mean": td.detach().abs().mean(),
        "q_mean": q.detach().mean(),
        "target_mean": y.mean(),
    }
    return loss, diag


def ddpg_critic_loss(
    q_tm1: Tensor,
    r_t: Tensor,
    terminated_t: Tensor,
    gamma: Tensor | float,
    q_t_target: Tensor,
) -> tuple[Tensor, dict[str, Tensor]]:
    """DDPG / TD3 critic loss.

    .. math::
        y_i = r_i + \\gamma (1 - \\mathrm{term}_i)\\, q'_i, \\quad
        L = \\sum_e \\frac1N \\sum_i \\tfrac12 (Q_e(s_i, a_i) - \\mathrm{sg}(y_i))^2

    Args:
      q_tm1: ``[N]`` (one critic) or ``[E, N]`` (an ensemble, e.g. TD3's twins) Q-values
        of the replayed state-action pairs.
      r_t: ``[N]`` rewards (n-step sums for n-step returns).
      terminated_t: ``[N]`` bool or 0/1 float: next state is terminal (not truncated).
      gamma: 0-d discount in ``[0, 1]`` (``gamma**n`` for n-step).
      q_t_target: ``[N]`` bootstrap value :math:`q'` at the next state: for DDPG
        :math:`Q'(s', \\mu'(s'))`, for TD3 :math:`\\min_e Q'_e(s', \\mu'(s') + \\text{noise})`;
        stop-gradient.

    Returns:
      ``(loss, {"td_error_abs_mean", "q_mean", "target_mean"})`` (detached, 0-d).

    Raises:
      ValueError: bad shapes or ``gamma`` outside ``[0, 1]``.

    Example::

        >>> import torch
        >>> loss, d = ddpg_critic_loss(torch.tensor([1.0]), torch.tensor([1.0]),
        ...                            torch.tensor([False]), 1.0, torch.tensor([2.0]))
        >>> float(loss), float(d["target_mean"])
        (2.0, 3.0)
    """
    n = C.check_vectors(("r_t", r_t), ("q_t_target", q_t_target))
    C.check_shape(terminated_t, "terminated_t", (n,))
    q = check_critics(q_tm1, n, "r_t")
    g = C.hparam(gamma, "gamma", r_t, low=0.0, high=1.0)
    target = r_t + g * C.not_done(terminated_t, "terminated_t", r_t) * q_t_target
    return critic_regression(q, target)


def ddpg_actor_loss(q_of_pi: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """DDPG / TD3 actor loss: maximise the critic's value of the actor's actions.

    .. math:: L = -\\frac1N \\sum_i Q(s_i, \\mu(s_i))

    Gradients flow through ``q_of_pi`` into the actor (freeze or ignore the critic's
    parameter gradients yourself, e.g. by differentiating only w.r.t. actor params).

    Args:
      q_of_pi: ``[N]`` critic values of the current actor's actions (TD3 uses critic 1).

    Returns:
      ``(loss, {"q_mean"})``.

    Example::

        >>> import torch
        >>> float(ddpg_actor_loss(torch.tensor([1.0, 3.0]))[0])
        -2.0
    """
    C.check_vectors(("q_of_pi", q_of_pi))
    q = q_of_pi.mean()
    return -q, {"q_mean": q.detach()}
