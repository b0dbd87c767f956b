"""State-value losses: (clipped) regression towards targets, TD(lambda), explained variance.

Convention: every squared-error loss in ``funrl.losses`` is **half** the squared error,
``0.5 * (v - target)**2`` (as rlax's ``l2_loss``), so its gradient is ``v - target``.
CleanRL's and SB3's ``F.mse_loss`` omit the 0.5, so their value loss is twice ours: to
reproduce their value-coefficient settings exactly, double the coefficient (with Adam a
constant scale barely matters). Targets are always stop-gradient.

Example::

    >>> import torch
    >>> from funrl.losses import value_loss
    >>> loss, diag = value_loss(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]))
    >>> float(loss)
    1.0
"""

from __future__ import annotations

import torch
from torch import Tensor

from funrl.losses import _checks as C

__all__ = ["explained_variance", "td_lambda_value_loss", "value_loss"]


def explained_variance(pred: Tensor, target: Tensor) -> Tensor:
    """Fraction of the target's variance explained by ``pred``.

    .. math:: \\mathrm{EV} = 1 - \\mathrm{Var}[y - \\hat y] / \\mathrm{Var}[y]

    1 is a perfect fit, 0 is no better than predicting the mean, negative is worse.
    Variances are population variances (``ddof=0``). Like SB3, returns ``nan`` when
    ``Var[y] == 0``. The result is detached.

    Args:
      pred: ``[N]`` predictions :math:`\\hat y`.
      target: ``[N]`` targets :math:`y`.

    Example::

        >>> import torch
        >>> float(explained_variance(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0])))
        1.0
    """
    C.check_vectors(("pred", pred), ("target", target))
    y, p = target.detach(), pred.detach()
    var_y = ((y - y.mean()) ** 2).mean()
    res = y - p
    var_res = ((res - res.mean()) ** 2).mean()
    nan = torch.full_like(var_y, float("nan"))
    return torch.where(var_y == 0, nan, 1.0 - var_res / torch.where(var_y == 0, 1.0, var_y))


def value_loss(
    v_t: Tensor,
    target_t: Tensor,
    v_old_t: Tensor | None = None,
    clip_eps: Tensor | float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Half mean squared error of a value function, with optional PPO value clipping.

    Unclipped (``v_old_t`` and ``clip_eps`` both ``None``):

    .. math:: L = \\frac1N \\sum_i \\tfrac12 (v_i - \\mathrm{sg}(y_i))^2

    Clipped (both given), as in the PPO reference implementation (openai/baselines):

    .. math::
        v^{clip}_i = v^{old}_i + \\mathrm{clip}(v_i - v^{old}_i, -\\epsilon, \\epsilon), \\quad
        L = \\frac1N \\sum_i \\tfrac12 \\max\\big((v_i - y_i)^2, (v^{clip}_i - y_i)^2\\big)

    Args:
      v_t: ``[N]`` value predictions (gradients flow through them).
      target_t: ``[N]`` regression targets (returns, GAE + V, ...); stop-gradient.
      v_old_t: optional ``[N]`` predictions of the value net that collected the data;
        stop-gradient.
      clip_eps: optional 0-d clip range ``>= 0`` (give it together with ``v_old_t``).

    Returns:
      ``(loss, diagnostics)``; diagnostics (detached): ``explained_variance``,
      ``value_mean``, and with clipping ``clip_fraction`` (fraction with
      :math:`|v - v^{old}| > \\epsilon`).

    Raises:
      ValueError: only one of ``v_old_t``/``clip_eps`` given, shapes differ, or
        ``clip_eps < 0``.

    Example::

        >>> import torch
        >>> v, y, v_old = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([1.0])
        >>> float(value_loss(v, y)[0]), float(value_loss(v, y, v_old, 0.5)[0])
        (2.0, 2.0)
    """
    if (v_old_t is None) != (clip_eps is None):
        raise ValueError(
            "value_loss: give both v_old_t and clip_eps (clipped) or neither (unclipped); "
            f"got v_old_t={'None' if v_old_t is None else 'tensor'}, clip_eps={clip_eps!r}"
        )
    C.check_vectors(("v_t", v_t), ("target_t", target_t))
    y = target_t.detach()
    sq = (v_t - y) ** 2
    diag = {
        "explained_variance": explained_variance(v_t, y),
        "value_mean": v_t.detach().mean(),
    }
    if v_old_t is None or clip_eps is None:
        return 0.5 * sq.mean(), diag
    C.check_vectors(("v_t", v_t), ("v_old_t", v_old_t))
    eps = C.hparam(clip_eps, "clip_eps", v_t, low=0.0)
    v_old = v_old_t.detach()
    delta = v_t - v_old
    v_clipped = v_old + torch.minimum(torch.maximum(delta, -eps), eps)
    loss = 0.5 * torch.maximum(sq, (v_clipped - y) ** 2).mean()
    diag["clip_fraction"] = (delta.detach().abs() > eps).to(v_t.dtype).mean()
    return loss, diag


def td_lambda_value_loss(v_t: Tensor, lambda_target_t: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """TD(lambda) value learning: regress :math:`V(s_t)` towards precomputed lambda-returns.

    .. math:: L = \\frac1N \\sum_i \\tfrac12 (\\mathrm{sg}(G^\\lambda_i) - v_i)^2

    Compute the targets with ``funrl.returns`` (TD(lambda) returns from the rewards,
    discounts and bootstrap values of a rollout); they are stop-gradient here, which is
    exactly the semi-gradient TD(lambda) update (forward view).

    Args:
      v_t: ``[N]`` value predictions :math:`V(s_t)`.
      lambda_target_t: ``[N]`` lambda-returns :math:`G^\\lambda_t`; stop-gradient.

    Returns:
      ``(loss, {"td_error_abs_mean", "explained_variance", "value_mean"})`` (detached).

    Example::

        >>> import torch
        >>> loss, d = td_lambda_value_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]))
        >>> float(loss), float(d["td_error_abs_mean"])
        (0.25, 0.5)
    """
    C.check_vectors(("v_t", v_t), ("lambda_target_t", lambda_target_t))
    y = lambda_target_t.detach()
    td = y - v_t
    diag = {
        "td_error_abs_mean": td.detach().abs().mean(),
        "explained_variance": explained_variance(v_t, y),
        "value_mean": v_t.detach().mean(),
    }
    return 0.5 * (td**2).mean(), diag
