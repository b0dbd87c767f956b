"""Policy-gradient losses: REINFORCE/A2C, PPO (clipped and KL-penalised), entropy.

Every loss takes a flat batch (leading dim ``N`` = time * envs) and returns
``(loss, diagnostics)``: a 0-d loss to minimise and a dict of 0-d, detached tensors to log.
Hyperparameters (``clip_eps``, ``beta``, ...) are 0-d tensors (Python floats are
converted), so ``torch.func.vmap`` sweeps them and ``torch.compile`` never recompiles.

Stop-gradients: advantages and old log-probabilities are always detached inside the
losses; gradients flow only through the new log-probabilities (and ``kl_t``).

Example::

    >>> import torch
    >>> from funrl.losses import ppo_clip_loss
    >>> logp = torch.tensor([-1.0, -0.5], requires_grad=True)
    >>> loss, diag = ppo_clip_loss(logp, torch.tensor([-1.0, -0.7]), torch.tensor([1.0, 2.0]), 0.2)
    >>> loss.backward(); sorted(diag)
    ['approx_kl', 'clip_fraction', 'ratio_mean']
"""

from __future__ import annotations

import torch
from torch import Tensor

from funrl.losses import _checks as C

__all__ = [
    "adapt_kl_beta",
    "entropy_loss",
    "policy_gradient_loss",
    "ppo_clip_loss",
    "ppo_kl_penalty_loss",
]


def policy_gradient_loss(logp_t: Tensor, adv_t: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """REINFORCE / A2C policy loss.

    .. math:: L = -\\frac1N \\sum_i \\log\\pi(a_i|s_i)\\, \\mathrm{sg}(A_i)

    Args:
      logp_t: ``[N]`` log-probabilities of the taken actions under the current policy.
      adv_t: ``[N]`` advantages (or returns, for REINFORCE); stop-gradient.

    Returns:
      ``(loss, {"advantage_mean"})``.

    Example::

        >>> import torch
        >>> loss, _ = policy_gradient_loss(torch.tensor([-1.0, -2.0]), torch.tensor([1.0, -1.0]))
        >>> float(loss)
        -0.5
    """
    C.check_vectors(("logp_t", logp_t), ("adv_t", adv_t))
    adv = adv_t.detach()
    loss = -(logp_t * adv).mean()
    return loss, {"advantage_mean": adv.mean()}


def _ratio(logp_t: Tensor, logp_old_t: Tensor) -> tuple[Tensor, Tensor]:
    log_ratio = logp_t - logp_old_t.detach()
    return torch.exp(log_ratio), log_ratio


def _approx_kl(ratio: Tensor, log_ratio: Tensor) -> Tensor:
    # Schulman's k3 estimator of KL(old || new): E_old[(r - 1) - log r] >= 0.
    return ((ratio - 1.0) - log_ratio).detach().mean()


def ppo_clip_loss(
    logp_t: Tensor, logp_old_t: Tensor, adv_t: Tensor, clip_eps: Tensor | float
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO clipped surrogate loss (Schulman et al., 2017).

    With :math:`r_i = \\exp(\\log\\pi_i - \\mathrm{sg}(\\log\\pi^{old}_i))`:

    .. math:: L = -\\frac1N \\sum_i \\min\\big(r_i A_i,\\ \\mathrm{clip}(r_i, 1-\\epsilon, 1+\\epsilon) A_i\\big)

    Args:
      logp_t: ``[N]`` log-probabilities of the taken actions under the current policy.
      logp_old_t: ``[N]`` log-probabilities under the behaviour policy; stop-gradient.
      adv_t: ``[N]`` advantages (normalise them beforehand if you want to); stop-gradient.
      clip_eps: 0-d clip range :math:`\\epsilon \\ge 0`.

    Returns:
      ``(loss, diagnostics)``; diagnostics (detached): ``approx_kl`` = mean of
      :math:`(r-1) - \\log r` (the k3 estimator of KL(old||new)), ``clip_fraction`` =
      fraction of samples with :math:`|r - 1| > \\epsilon`, ``ratio_mean``.

    Raises:
      ValueError: shapes differ, or ``clip_eps < 0`` (value checked only when concrete).

    Example::

        >>> import torch
        >>> logp = torch.tensor([-0.5, -1.0])
        >>> loss, d = ppo_clip_loss(logp, logp, torch.tensor([1.0, 3.0]), 0.2)
        >>> float(loss), float(d["clip_fraction"])
        (-2.0, 0.0)
    """
    C.check_vectors(("logp_t", logp_t), ("logp_old_t", logp_old_t), ("adv_t", adv_t))
    eps = C.hparam(clip_eps, "clip_eps", logp_t, low=0.0)
    adv = adv_t.detach()
    ratio, log_ratio = _ratio(logp_t, logp_old_t)
    clipped = torch.minimum(torch.maximum(ratio, 1.0 - eps), 1.0 + eps)
    loss = -torch.minimum(ratio * adv, clipped * adv).mean()
    r = ratio.detach()
    diag = {
        "approx_kl": _approx_kl(ratio, log_ratio),
        "clip_fraction": ((r - 1.0).abs() > eps).to(r.dtype).mean(),
        "ratio_mean": r.mean(),
    }
    return loss, diag


def ppo_kl_penalty_loss(
    logp_t: Tensor, logp_old_t: Tensor, adv_t: Tensor, kl_t: Tensor, beta: Tensor | float
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO with an (adaptive) KL penalty instead of clipping (Schulman et al., 2017, sec. 4).

    .. math:: L = -\\frac1N \\sum_i r_i A_i + \\beta\\, \\frac1N \\sum_i \\mathrm{KL}_i

    Args:
      logp_t: ``[N]`` log-probabilities of the taken actions under the current policy.
      logp_old_t: ``[N]`` log-probabilities under the behaviour policy; stop-gradient.
      adv_t: ``[N]`` advantages; stop-gradient.
      kl_t: ``[N]`` per-sample KL(old || new) computed by the caller from the two
        distributions (gradients flow through it into the new policy).
      beta: 0-d penalty coefficient ``>= 0``; adapt it between updates with
        :func:`adapt_kl_beta`.

    Returns:
      ``(loss, {"kl", "approx_kl", "ratio_mean", "surrogate"})`` where ``kl`` is
      ``mean(kl_t)`` and ``surrogate`` is ``mean(r * A)`` (all detached).

    Example::

        >>> import torch
        >>> logp = torch.tensor([-0.5, -1.0])
        >>> loss, d = ppo_kl_penalty_loss(logp, logp, torch.ones(2), torch.tensor([0.1, 0.3]), 2.0)
        >>> round(float(loss), 4)
        -0.6
    """
    C.check_vectors(
        ("logp_t", logp_t), ("logp_old_t", logp_old_t), ("adv_t", adv_t), ("kl_t", kl_t)
    )
    b = C.hparam(beta, "beta", logp_t, low=0.0)
    ratio, log_ratio = _ratio(logp_t, logp_old_t)
    surrogate = (ratio * adv_t.detach()).mean()
    kl = kl_t.mean()
    loss = -surrogate + b * kl
    diag = {
        "kl": kl.detach(),
        "approx_kl": _approx_kl(ratio, log_ratio),
        "ratio_mean": ratio.detach().mean(),
        "surrogate": surrogate.detach(),
    }
    return loss, diag


def adapt_kl_beta(beta: Tensor | float, kl: Tensor, target_kl: Tensor | float) -> Tensor:
    """The PPO paper's adaptive KL coefficient rule (Schulman et al., 2017, sec. 4).

    .. math::
        \\beta' = \\begin{cases} \\beta / 2 & d < d_{targ} / 1.5 \\\\
                                 2 \\beta & d > 1.5\\, d_{targ} \\\\
                                 \\beta & \\text{otherwise} \\end{cases}

    Args:
      beta: 0-d current coefficient ``>= 0``.
      kl: 0-d measured mean KL(old || new) after the policy update (e.g. ``diag["kl"]``).
      target_kl: 0-d target KL ``> 0``.

    Returns:
      The new 0-d ``beta`` (detached), computed with ``torch.where`` (vmap/compile safe).

    Example::

        >>> import torch
        >>> float(adapt_kl_beta(1.0, torch.tensor(0.1), 0.01)), float(adapt_kl_beta(1.0, torch.tensor(0.001), 0.01))
        (2.0, 0.5)
    """
    C.check_float(kl, "kl")
    C.check_shape(kl, "kl", ())
    b = C.hparam(beta, "beta", kl, low=0.0).detach()
    target = C.hparam(target_kl, "target_kl", kl, low=0.0, low_open=True)
    d = kl.detach()
    return torch.where(d < target / 1.5, b / 2.0, torch.where(d > target * 1.5, b * 2.0, b))


def entropy_loss(entropy_t: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Entropy bonus as a loss term: minimising it maximises the policy's entropy.

    .. math:: L = -\\frac1N \\sum_i \\mathcal{H}[\\pi(\\cdot|s_i)]

    Scale it yourself (``total = pg + c_v * value + c_e * entropy_loss``).

    Args:
      entropy_t: ``[N]`` per-state policy entropies (gradients flow through them).

    Returns:
      ``(loss, {"entropy"})`` with ``entropy = mean(entropy_t)`` (detached).

    Example::

        >>> import torch
        >>> loss, d = entropy_loss(torch.tensor([0.5, 1.5]))
        >>> float(loss), float(d["entropy"])
        (-1.0, 1.0)
    """
    C.check_vectors(("entropy_t", entropy_t))
    ent = entropy_t.mean()
    return -ent, {"entropy": ent.detach()}
