"""Plain-numpy float64 references for :mod:`funrl.losses`, written as naive loops.

Each function mirrors the funrl loss of the same name: same arguments (numpy arrays,
or anything ``np.asarray`` takes; hyperparameters as floats) and returns
``(loss, diagnostics)`` as Python floats (``td_error`` as an array). They are slow and
obvious on purpose: use them to check fast implementations, funrl's or your own.

Example::

    >>> from funrl.testing.reference import losses as ref
    >>> loss, diag = ref.ppo_clip_loss([-1.0, -0.5], [-1.0, -0.5], [1.0, 2.0], 0.2)
    >>> loss, diag["clip_fraction"]
    (-1.5, 0.0)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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

Diag = dict[str, Any]


def _a(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _mean(xs: list[float]) -> float:
    total = 0.0
    for x in xs:
        total += x
    return float(total / len(xs))


def policy_gradient_loss(logp_t: Any, adv_t: Any) -> tuple[float, Diag]:
    logp, adv = _a(logp_t), _a(adv_t)
    terms = [-logp[i] * adv[i] for i in range(len(logp))]
    return _mean(terms), {"advantage_mean": _mean(list(adv))}


def ppo_clip_loss(logp_t: Any, logp_old_t: Any, adv_t: Any, clip_eps: float) -> tuple[float, Diag]:
    logp, logp_old, adv = _a(logp_t), _a(logp_old_t), _a(adv_t)
    terms, kls, clipped, ratios = [], [], [], []
    for i in range(len(logp)):
        r = math.exp(logp[i] - logp_old[i])
        r_clip = min(max(r, 1.0 - clip_eps), 1.0 + clip_eps)
        terms.append(-min(r * adv[i], r_clip * adv[i]))
        kls.append((r - 1.0) - math.log(r))
        clipped.append(1.0 if abs(r - 1.0) > clip_eps else 0.0)
        ratios.append(r)
    diag = {"approx_kl": _mean(kls), "clip_fraction": _mean(clipped), "ratio_mean": _mean(ratios)}
    return _mean(terms), diag


def ppo_kl_penalty_loss(
    logp_t: Any, logp_old_t: Any, adv_t: Any, kl_t: Any, beta: float
) -> tuple[float, Diag]:
    logp, logp_old, adv, kl = _a(logp_t), _a(logp_old_t), _a(adv_t), _a(kl_t)
    surr, kls, ratios = [], [], []
    for i in range(len(logp)):
        r = math.exp(logp[i] - logp_old[i])
        surr.append(r * adv[i])
        kls.append((r - 1.0) - math.log(r))
        ratios.append(r)
    surrogate, kl_mean = _mean(surr), _mean(list(kl))
    diag = {
        "kl": kl_mean,
        "approx_kl": _mean(kls),
        "ratio_mean": _mean(ratios),
        "surrogate": surrogate,
    }
    return -surrogate + beta * kl_mean, diag


def adapt_kl_beta(beta: float, kl: float, target_kl: float) -> float:
    if kl < target_kl / 1.5:
        return beta / 2.0
    if kl > target_kl * 1.5:
        return beta * 2.0
    return beta


def entropy_loss(entropy_t: Any) -> tuple[float, Diag]:
    ent = _mean(list(_a(entropy_t)))
    return -ent, {"entropy": ent}


def explained_variance(pred: Any, target: Any) -> float:
    p, y = _a(pred), _a(target)
    n = len(y)
    y_mean = _mean(list(y))
    var_y = _mean([(y[i] - y_mean) ** 2 for i in range(n)])
    res = [y[i] - p[i] for i in range(n)]
    res_mean = _mean(res)
    var_res = _mean([(res[i] - res_mean) ** 2 for i in range(n)])
    return float("nan") if var_y == 0 else 1.0 - var_res / var_y


def value_loss(
    v_t: Any, target_t: Any, v_old_t: Any = None, clip_eps: float | None = None
) -> tuple[float, Diag]:
    v, y = _a(v_t), _a(target_t)
    terms, clipped = [], []
    for i in range(len(v)):
        err = (v[i] - y[i]) ** 2
        if v_old_t is not None and clip_eps is not None:
            v_old = float(_a(v_old_t)[i])
            delta = v[i] - v_old
            v_clip = v_old + min(max(delta, -clip_eps), clip_eps)
            err = max(err, (v_clip - y[i]) ** 2)
            clipped.append(1.0 if abs(delta) > clip_eps else 0.0)
        terms.append(0.5 * err)
    diag = {"explained_variance": explained_variance(v, y), "value_mean": _mean(list(v))}
    if clipped:
        diag["clip_fraction"] = _mean(clipped)
    return _mean(terms), diag


def td_lambda_value_loss(v_t: Any, lambda_target_t: Any) -> tuple[float, Diag]:
    v, y = _a(v_t), _a(lambda_target_t)
    tds = [y[i] - v[i] for i in range(len(v))]
    diag = {
        "td_error_abs_mean": _mean([abs(d) for d in tds]),
        "explained_variance": explained_variance(v, y),
        "value_mean": _mean(list(v)),
    }
    return _mean([0.5 * d * d for d in tds]), diag


def huber_loss(x: float, delta: float = 1.0) -> float:
    """Huber loss of one number: ``0.5 x^2`` if ``|x| <= delta`` else ``delta (|x| - delta / 2)``."""
    if abs(x) <= delta:
        return 0.5 * x * x
    return delta * (abs(x) - 0.5 * delta)


def _q_loss(
    q_tm1: np.ndarray,
    a_tm1: Any,
    r_t: Any,
    terminated_t: Any,
    gamma: float,
    v_next: list[float],
    loss: str,
    huber_delta: float,
    weights: Any,
) -> tuple[float, Diag]:
    a, r, term = np.asarray(a_tm1), _a(r_t), _a(terminated_t)
    w = np.ones(len(r)) if weights is None else _a(weights)
    terms, tds, qs, targets = [], [], [], []
    for i in range(len(r)):
        target = r[i] + gamma * (1.0 - term[i]) * v_next[i]
        q = q_tm1[i, int(a[i])]
        td = target - q
        ell = huber_loss(td, huber_delta) if loss == "huber" else 0.5 * td * td
        terms.append(w[i] * ell)
        tds.append(td)
        qs.append(q)
        targets.append(target)
    diag = {
        "td_error": np.asarray(tds),
        "td_error_abs_mean": _mean([abs(d) for d in tds]),
        "q_mean": _mean(qs),
        "target_mean": _mean(targets),
    }
    return _mean(terms), diag


def q_learning_loss(
    q_tm1: Any,
    a_tm1: Any,
    r_t: Any,
    terminated_t: Any,
    gamma: float,
    q_t_target: Any,
    *,
    loss: str = "huber",
    huber_delta: float = 1.0,
    weights: Any = None,
) -> tuple[float, Diag]:
    qt = _a(q_t_target)
    v_next = [max(qt[i, j] for j in range(qt.shape[1])) for i in range(qt.shape[0])]
    return _q_loss(_a(q_tm1), a_tm1, r_t, terminated_t, gamma, v_next, loss, huber_delta, weights)


def double_q_learning_loss(
    q_tm1: Any,
    a_tm1: Any,
    r_t: Any,
    terminated_t: Any,
    gamma: float,
    q_t_target: Any,
    q_t_selector: Any,
    *,
    loss: str = "huber",
    huber_delta: float = 1.0,
    weights: Any = None,
) -> tuple[float, Diag]:
    qt, qs = _a(q_t_target), _a(q_t_selector)
    v_next = []
    for i in range(qt.shape[0]):
        best = 0
        for j in range(1, qs.shape[1]):
            if qs[i, j] > qs[i, best]:  # ties: the lowest index, as torch.argmax
                best = j
        v_next.append(qt[i, best])
    return _q_loss(_a(q_tm1), a_tm1, r_t, terminated_t, gamma, v_next, loss, huber_delta, weights)


def _critic_regression(q_tm1: Any, targets: list[float]) -> tuple[float, Diag]:
    q = _a(q_tm1)
    q = q[None] if q.ndim == 1 else q
    total, tds = 0.0, []
    for e in range(q.shape[0]):
        per = []
        for i in range(q.shape[1]):
            td = targets[i] - q[e, i]
            per.append(0.5 * td * td)
            tds.append(abs(td))
        total += _mean(per)
    diag = {
        "td_error_abs_mean": _mean(tds),
        "q_mean": _mean(list(q.reshape(-1))),
        "target_mean": _mean(targets),
    }
    return total, diag


def ddpg_critic_loss(
    q_tm1: Any, r_t: Any, terminated_t: Any, gamma: float, q_t_target: Any
) -> tuple[float, Diag]:
    r, term, qn = _a(r_t), _a(terminated_t), _a(q_t_target)
    targets = [r[i] + gamma * (1.0 - term[i]) * qn[i] for i in range(len(r))]
    return _critic_regression(q_tm1, targets)


def ddpg_actor_loss(q_of_pi: Any) -> tuple[float, Diag]:
    q = _mean(list(_a(q_of_pi)))
    return -q, {"q_mean": q}


def sac_critic_loss(
    q_tm1: Any,
    r_t: Any,
    terminated_t: Any,
    gamma: float,
    q_t_target_min: Any,
    logp_t_next: Any,
    alpha: float,
) -> tuple[float, Diag]:
    r, term, qn, lp = _a(r_t), _a(terminated_t), _a(q_t_target_min), _a(logp_t_next)
    targets = [r[i] + gamma * (1.0 - term[i]) * (qn[i] - alpha * lp[i]) for i in range(len(r))]
    return _critic_regression(q_tm1, targets)


def sac_actor_loss(logp_t: Any, q_min_t: Any, alpha: float) -> tuple[float, Diag]:
    lp, q = _a(logp_t), _a(q_min_t)
    loss = _mean([alpha * lp[i] - q[i] for i in range(len(lp))])
    return loss, {"entropy": -_mean(list(lp)), "q_mean": _mean(list(q))}


def sac_temperature_loss(
    log_alpha: float, logp_t: Any, target_entropy: float
) -> tuple[float, Diag]:
    lp = _a(logp_t)
    loss = _mean([-log_alpha * (lp[i] + target_entropy) for i in range(len(lp))])
    return loss, {"alpha": math.exp(log_alpha), "entropy": -_mean(list(lp))}


def sac_discrete_critic_loss(
    q_tm1: Any,
    a_tm1: Any,
    r_t: Any,
    terminated_t: Any,
    gamma: float,
    q_t_target_min: Any,
    probs_t_next: Any,
    logp_t_next: Any,
    alpha: float,
) -> tuple[float, Diag]:
    q = _a(q_tm1)
    q = q[None] if q.ndim == 2 else q
    a, r, term = np.asarray(a_tm1), _a(r_t), _a(terminated_t)
    qn, p, lp = _a(q_t_target_min), _a(probs_t_next), _a(logp_t_next)
    targets = []
    for i in range(len(r)):
        soft_v = 0.0
        for j in range(qn.shape[1]):
            soft_v += p[i, j] * (qn[i, j] - alpha * lp[i, j])
        targets.append(r[i] + gamma * (1.0 - term[i]) * soft_v)
    q_a = np.array([[q[e, i, int(a[i])] for i in range(len(r))] for e in range(q.shape[0])])
    return _critic_regression(q_a, targets)


def sac_discrete_actor_loss(
    probs_t: Any, logp_t: Any, q_t: Any, alpha: float
) -> tuple[float, Diag]:
    p, lp, q = _a(probs_t), _a(logp_t), _a(q_t)
    terms, ents, qs = [], [], []
    for i in range(p.shape[0]):
        t = ent = qm = 0.0
        for j in range(p.shape[1]):
            t += p[i, j] * (alpha * lp[i, j] - q[i, j])
            ent -= p[i, j] * lp[i, j]
            qm += p[i, j] * q[i, j]
        terms.append(t)
        ents.append(ent)
        qs.append(qm)
    return _mean(terms), {"entropy": _mean(ents), "q_mean": _mean(qs)}


def sac_discrete_temperature_loss(
    log_alpha: float, probs_t: Any, logp_t: Any, target_entropy: float
) -> tuple[float, Diag]:
    p, lp = _a(probs_t), _a(logp_t)
    terms, ents = [], []
    for i in range(p.shape[0]):
        ent = 0.0
        for j in range(p.shape[1]):
            ent -= p[i, j] * lp[i, j]
        terms.append(-log_alpha * (-ent + target_entropy))
        ents.append(ent)
    return _mean(terms), {"alpha": math.exp(log_alpha), "entropy": _mean(ents)}
