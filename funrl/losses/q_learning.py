"""Q-learning losses (DQN, Double DQN) with Huber or half-squared error and replay weights.

The bootstrap target is stop-gradient and uses ``terminated`` only: a time-limit
truncation is not an end, so pass ``terminated_t`` (not ``terminated | truncated``).
``gamma`` is the discount applied to the bootstrap value: for n-step returns pass the
n-step reward sum as ``r_t`` and ``gamma**n`` as ``gamma`` (the caller computes both).

Elementwise losses of the TD error :math:`\\delta`:

* ``"mse"``: :math:`\\tfrac12 \\delta^2` (half squared error, as everywhere in funrl;
  CleanRL's DQN uses ``F.mse_loss`` = :math:`\\delta^2`, twice ours).
* ``"huber"``: :math:`\\tfrac12 \\delta^2` for :math:`|\\delta| \\le \\kappa`, else
  :math:`\\kappa(|\\delta| - \\tfrac12\\kappa)` (rlax's ``huber_loss``, torch's
  ``F.huber_loss(delta=κ)``). It equals ``"mse"`` for :math:`|\\delta| \\le \\kappa`, and
  with :math:`\\kappa = 1` equals SB3's ``F.smooth_l1_loss``.

Example::

    >>> import torch
    >>> from funrl.losses import q_learning_loss
    >>> q_tm1, a = torch.tensor([[1.0, 2.0]]), torch.tensor([1])
    >>> loss, d = q_learning_loss(q_tm1, a, torch.tensor([1.0]), torch.tensor([False]), 0.5,
    ...                           torch.tensor([[4.0, 0.0]]), loss="mse")
    >>> float(loss), d["td_error"].tolist()
    (0.5, [1.0])
"""

from __future__ import annotations

import torch
from torch import Tensor

from funrl.losses import _checks as C

__all__ = ["double_q_learning_loss", "huber_loss", "q_learning_loss"]

_KINDS = ("huber", "mse")


def huber_loss(x: Tensor, delta: Tensor | float = 1.0) -> Tensor:
    """Elementwise Huber loss: quadratic inside ``[-delta, delta]``, linear outside.

    .. math:: h_\\kappa(x) = \\tfrac12 \\min(|x|, \\kappa)^2 + \\kappa\\,(|x| - \\min(|x|, \\kappa))

    Args:
      x: any-shape float tensor (TD errors).
      delta: 0-d threshold :math:`\\kappa > 0`.

    Example::

        >>> import torch
        >>> huber_loss(torch.tensor([0.5, -3.0])).tolist()
        [0.125, 2.5]
    """
    C.check_float(x, "x")
    k = C.hparam(delta, "huber_delta", x, low=0.0, low_open=True)
    ax = x.abs()
    quad = torch.minimum(ax, k)
    return 0.5 * quad**2 + k * (ax - quad)


def _check_q_inputs(
    q_tm1: Tensor, a_tm1: Tensor, r_t: Tensor, terminated_t: Tensor, **next_qs: Tensor
) -> None:
    C.check_float(q_tm1, "q_tm1")
    C.check_shape(q_tm1, "q_tm1", ("N", "A"))
    n, num_actions = q_tm1.shape
    C.check_int(a_tm1, "a_tm1")
    C.check_shape(a_tm1, "a_tm1", (n,))
    C.check_float(r_t, "r_t")
    C.check_shape(r_t, "r_t", (n,))
    C.check_shape(terminated_t, "terminated_t", (n,))
    for name, q in next_qs.items():
        C.check_float(q, name)
        C.check_shape(q, name, (n, num_actions))
    C.check_actions(a_tm1, "a_tm1", num_actions)


def _td_loss(
    q_tm1: Tensor,
    a_tm1: Tensor,
    r_t: Tensor,
    terminated_t: Tensor,
    gamma: Tensor | float,
    v_t: Tensor,
    loss: str,
    huber_delta: Tensor | float,
    weights: Tensor | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    if loss not in _KINDS:
        raise ValueError(f"loss must be one of {_KINDS}, got {loss!r}")
    g = C.hparam(gamma, "gamma", q_tm1, low=0.0, high=1.0)
    target = (r_t + g * C.not_done(terminated_t, "terminated_t", r_t) * v_t).detach()
    q_a = q_tm1.gather(-1, a_tm1.long().unsqueeze(-1)).squeeze(-1)
    td = target - q_a
    per_sample = huber_loss(td, huber_delta) if loss == "huber" else 0.5 * td**2
    if weights is not None:
        C.check_vectors(("r_t", r_t), ("weights", weights))
        per_sample = weights.detach() * per_sample
    diag = {
        "td_error": td.detach(),
        "td_error_abs_mean": td.detach().abs().mean(),
        "q_mean": q_a.detach().mean(),
        "target_mean": target.mean(),
    }
    return per_sample.mean(), diag


def q_learning_loss(
    q_tm1: Tensor,
    a_tm1: Tensor,
    r_t: Tensor,
    terminated_t: Tensor,
    gamma: Tensor | float,
    q_t_target: Tensor,
    *,
    loss: str = "huber",
    huber_delta: Tensor | float = 1.0,
    weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """DQN loss (Mnih et al., 2015).

    .. math::
        y_i = r_i + \\gamma (1 - \\mathrm{term}_i) \\max_a Q_{target}(s'_i, a), \\quad
        \\delta_i = \\mathrm{sg}(y_i) - Q(s_i, a_i), \\quad
        L = \\frac1N \\sum_i w_i\\, \\ell(\\delta_i)

    Args:
      q_tm1: ``[N, A]`` online Q-values at the sampled states.
      a_tm1: ``[N]`` integer actions taken, in ``[0, A)``.
      r_t: ``[N]`` rewards (n-step reward sums for n-step DQN).
      terminated_t: ``[N]`` bool or 0/1 float: the next state is terminal (not truncated).
      gamma: 0-d discount in ``[0, 1]`` for the bootstrap (``gamma**n`` for n-step).
      q_t_target: ``[N, A]`` target-network Q-values at the next states; stop-gradient.
      loss: ``"huber"`` (default) or ``"mse"`` (half squared error), see the module doc.
      huber_delta: 0-d Huber threshold ``> 0`` (ignored for ``"mse"``).
      weights: optional ``[N]`` importance weights (prioritized replay); stop-gradient.
        ``L = mean(w * l)``: normalise them (e.g. by their max) beforehand.

    Returns:
      ``(loss, diagnostics)``: ``td_error`` is the **per-sample** ``[N]`` TD error
      :math:`\\delta` (detached; use ``abs`` of it as new replay priorities), the others
      are 0-d: ``td_error_abs_mean``, ``q_mean`` (of :math:`Q(s, a)`), ``target_mean``.

    Raises:
      ValueError: bad shapes, unknown ``loss``, ``gamma`` outside ``[0, 1]``,
        ``huber_delta <= 0``, actions out of range (values checked only when concrete).
      TypeError: float actions or integer Q-values.

    Example::

        >>> import torch
        >>> q = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
        >>> loss, d = q_learning_loss(q, torch.tensor([1, 0]), torch.zeros(2),
        ...                           torch.tensor([True, True]), 0.9, q)
        >>> float(loss), d["td_error"].tolist()
        (1.0, [-1.0, -2.0])
    """
    _check_q_inputs(q_tm1, a_tm1, r_t, terminated_t, q_t_target=q_t_target)
    v_t = q_t_target.detach().max(dim=-1).values
    return _td_loss(q_tm1, a_tm1, r_t, terminated_t, gamma, v_t, loss, huber_delta, weights)


def double_q_learning_loss(
    q_tm1: Tensor,
    a_tm1: Tensor,
    r_t: Tensor,
    terminated_t: Tensor,
    gamma: Tensor | float,
    q_t_target: Tensor,
    q_t_selector: Tensor,
    *,
    loss: str = "huber",
    huber_delta: Tensor | float = 1.0,
    weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Double DQN loss (van Hasselt et al., 2016): select with the online net, evaluate with the target.

    .. math::
        a^*_i = \\arg\\max_a Q_{sel}(s'_i, a), \\quad
        y_i = r_i + \\gamma (1 - \\mathrm{term}_i) Q_{target}(s'_i, a^*_i)

    and the rest as :func:`q_learning_loss`. Ties in the argmax go to the lowest index.
    With ``q_t_selector == q_t_target`` it equals :func:`q_learning_loss`.

    Args:
      q_tm1, a_tm1, r_t, terminated_t, gamma: as in :func:`q_learning_loss`.
      q_t_target: ``[N, A]`` target-network Q-values at the next states; stop-gradient.
      q_t_selector: ``[N, A]`` online-network Q-values at the next states, used only
        for the argmax; stop-gradient.
      loss, huber_delta, weights: as in :func:`q_learning_loss`.

    Returns:
      ``(loss, diagnostics)`` as :func:`q_learning_loss` (``td_error`` is ``[N]``).

    Example::

        >>> import torch
        >>> q_tm1, a = torch.tensor([[0.0, 0.0]]), torch.tensor([0])
        >>> loss, d = double_q_learning_loss(q_tm1, a, torch.tensor([0.0]), torch.tensor([False]),
        ...     1.0, torch.tensor([[5.0, 1.0]]), torch.tensor([[0.0, 9.0]]), loss="mse")
        >>> d["td_error"].tolist()
        [1.0]
    """
    _check_q_inputs(
        q_tm1, a_tm1, r_t, terminated_t, q_t_target=q_t_target, q_t_selector=q_t_selector
    )
    a_star = q_t_selector.detach().argmax(dim=-1, keepdim=True)
    v_t = q_t_target.detach().gather(-1, a_star).squeeze(-1)
    return _td_loss(q_tm1, a_tm1, r_t, terminated_t, gamma, v_t, loss, huber_delta, weights)
