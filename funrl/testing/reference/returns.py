"""Naive float64 numpy references for :mod:`funrl.returns`: one episode-stream at a time.

Every function takes array-likes (numpy arrays or CPU tensors) shaped ``[T, *B]`` with
the conventions of :mod:`funrl.returns`, flattens the batch and runs a plain Python
loop over time for each stream.  Slow, obviously correct; compare fast code against them.

Example::

    >>> import numpy as np
    >>> from funrl.testing.reference import returns as ref
    >>> r = np.ones(3); no = np.zeros(3, bool)
    >>> ref.discounted_returns(r, np.array([False, True, False]), no, 0.5).tolist()
    [1.5, 1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "discounted_returns",
    "gae",
    "lambda_returns",
    "n_step_returns",
    "retrace",
    "td_targets",
    "vtrace",
]


def _np(x: Any, dtype: Any = np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _col(x: Any) -> np.ndarray:
    """Bool arrays stay bool, everything else becomes float64."""
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return arr.astype(bool) if arr.dtype == bool else arr.astype(np.float64)


def _per_stream(loop: Callable[..., tuple[np.ndarray, ...]], *arrays: Any, **hparams: Any) -> Any:
    """Run ``loop(*columns, **scalar_hparams)`` on every batch stream; restack to [T, *B].

    ``arrays`` are ``[T, *B]``; ``hparams`` broadcast to ``[*B]``.
    """
    shape = _np(arrays[0]).shape
    T, batch = shape[0], shape[1:]
    cols = [_col(a).reshape(T, -1) for a in arrays]
    hp = {k: np.broadcast_to(_np(v), batch).reshape(-1) for k, v in hparams.items()}
    n = cols[0].shape[1]
    outs = [loop(*[c[:, i] for c in cols], **{k: float(v[i]) for k, v in hp.items()})
            for i in range(n)]  # fmt: skip
    stacked = tuple(
        np.stack([o[j] for o in outs], axis=1).reshape(shape) for j in range(len(outs[0]))
    )
    return stacked[0] if len(stacked) == 1 else stacked


def td_targets(r_t: Any, v_tp1: Any, terminated_t: Any, gamma: Any) -> np.ndarray:
    """``r_t + gamma * (1 - terminated_t) * v_tp1``."""
    gamma = _np(gamma)
    return _np(r_t) + gamma * (1.0 - _np(terminated_t)) * _np(v_tp1)


def _mc(r, term, trunc, v_tp1, *, gamma):
    T = len(r)
    G = np.zeros(T)
    nxt = 0.0
    for t in reversed(range(T)):
        if term[t]:
            G[t] = r[t]
        elif trunc[t] or t == T - 1:
            G[t] = r[t] + gamma * v_tp1[t]
        else:
            G[t] = r[t] + gamma * nxt
        nxt = G[t]
    return (G,)


def discounted_returns(
    r_t: Any, terminated_t: Any, truncated_t: Any, gamma: Any, v_tp1: Any = None
) -> np.ndarray:
    """Monte-Carlo returns; bootstrap ``v_tp1`` at truncations and ``T - 1`` (0 if None)."""
    v = np.zeros(_np(r_t).shape) if v_tp1 is None else v_tp1
    return _per_stream(_mc, r_t, terminated_t, truncated_t, v, gamma=gamma)


def _nstep(r, term, trunc, v_tp1, *, gamma, n):
    T = len(r)
    G = np.zeros(T)
    for t in range(T):
        total, disc = 0.0, 1.0
        for s in range(t, min(t + int(n), T)):
            total += disc * r[s]
            disc *= gamma
            if term[s]:
                break
            if trunc[s] or s == t + int(n) - 1 or s == T - 1:
                total += disc * v_tp1[s]
                break
        G[t] = total
    return (G,)


def n_step_returns(
    r_t: Any, v_tp1: Any, terminated_t: Any, truncated_t: Any, gamma: Any, n: int
) -> np.ndarray:
    """Up to ``n`` rewards, stopping at episode ends, then bootstrap (0 if terminated)."""
    return _per_stream(_nstep, r_t, terminated_t, truncated_t, v_tp1, gamma=gamma, n=n)


def _lam(r, term, trunc, v_tp1, *, gamma, lam):
    T = len(r)
    G = np.zeros(T)
    for t in reversed(range(T)):
        if term[t]:
            G[t] = r[t]
        elif trunc[t] or t == T - 1:
            G[t] = r[t] + gamma * v_tp1[t]
        else:
            G[t] = r[t] + gamma * ((1 - lam) * v_tp1[t] + lam * G[t + 1])
    return (G,)


def lambda_returns(
    r_t: Any, v_tp1: Any, terminated_t: Any, truncated_t: Any, gamma: Any, lambda_: Any
) -> np.ndarray:
    """TD(lambda): ``G_t = r_t + gamma (1-term) [(1-lambda) v_tp1 + lambda G_{t+1}]``."""
    return _per_stream(_lam, r_t, terminated_t, truncated_t, v_tp1, gamma=gamma, lam=lambda_)


def _gae(r, v, term, trunc, v_tp1, *, gamma, lam):
    T = len(r)
    A = np.zeros(T)
    nxt = 0.0
    for t in reversed(range(T)):
        delta = r[t] + (0.0 if term[t] else gamma * v_tp1[t]) - v[t]
        A[t] = delta + (0.0 if term[t] or trunc[t] else gamma * lam * nxt)
        nxt = A[t]
    return (A,)


def gae(
    r_t: Any, v_t: Any, v_tp1: Any, terminated_t: Any, truncated_t: Any, gamma: Any, lambda_: Any
) -> np.ndarray:
    """``A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}``."""
    return _per_stream(_gae, r_t, v_t, terminated_t, truncated_t, v_tp1, gamma=gamma, lam=lambda_)


def _vtrace(r, v, term, trunc, v_tp1, log_rho, *, gamma, lam, crho, cc, cpg):
    """IMPALA, written with the explicit sum ``vs_s = v_s + sum_t gamma^(t-s) (prod c) delta_t``."""
    T = len(r)
    rho = np.exp(log_rho)
    nt = [0.0 if term[t] else 1.0 for t in range(T)]
    delta = [min(crho, rho[t]) * (r[t] + gamma * nt[t] * v_tp1[t] - v[t]) for t in range(T)]
    vs = np.zeros(T)
    for s in range(T):
        total, weight = 0.0, 1.0
        for t in range(s, T):
            total += weight * delta[t]
            if term[t] or trunc[t]:
                break
            weight *= gamma * lam * min(cc, rho[t])
        vs[s] = v[s] + total
    pg = np.zeros(T)
    for t in range(T):
        if term[t] or trunc[t] or t == T - 1:
            q = v_tp1[t]
        else:
            q = lam * vs[t + 1] + (1 - lam) * v[t + 1]
        pg[t] = min(cpg, rho[t]) * (r[t] + gamma * nt[t] * q - v[t])
    return vs, pg


def vtrace(
    r_t: Any,
    v_t: Any,
    v_tp1: Any,
    terminated_t: Any,
    truncated_t: Any,
    log_rho_t: Any,
    gamma: Any,
    lambda_: Any = 1.0,
    clip_rho_threshold: Any = 1.0,
    clip_c_threshold: Any = 1.0,
    clip_pg_rho_threshold: Any = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(vs, pg_advantages)`` as :func:`funrl.returns.vtrace`."""
    return _per_stream(
        _vtrace, r_t, v_t, terminated_t, truncated_t, v_tp1, log_rho_t, gamma=gamma,
        lam=lambda_, crho=clip_rho_threshold, cc=clip_c_threshold, cpg=clip_pg_rho_threshold,
    )  # fmt: skip


def _retrace(q, r, e_tp1, term, trunc, log_rho, *, gamma, lam):
    T = len(r)
    G = np.zeros(T)
    for t in reversed(range(T)):
        if term[t]:
            G[t] = r[t]
        elif trunc[t] or t == T - 1:
            G[t] = r[t] + gamma * e_tp1[t]
        else:
            c = lam * min(1.0, np.exp(log_rho[t + 1]))
            G[t] = r[t] + gamma * (e_tp1[t] + c * (G[t + 1] - q[t + 1]))
    return (G,)


def retrace(
    q_t: Any,
    r_t: Any,
    expected_q_tp1: Any,
    terminated_t: Any,
    truncated_t: Any,
    log_rho_t: Any,
    gamma: Any,
    lambda_: Any,
) -> np.ndarray:
    """Retrace targets; step ``t`` uses the trace ``lambda min(1, rho_{t+1})``."""
    return _per_stream(
        _retrace, q_t, r_t, expected_q_tp1, terminated_t, truncated_t, log_rho_t,
        gamma=gamma, lam=lambda_,
    )  # fmt: skip
