"""Value estimators: TD(0), Monte-Carlo, n-step, TD(lambda), GAE, V-trace and Retrace.

Conventions (every function here):

* Inputs are time-major, shape ``[T]`` or ``[T, *B]`` (any trailing batch dims); all
  per-step inputs share one shape and one float dtype (``terminated_t``/``truncated_t``
  are bool).
* Per step ``t``: ``r_t`` is the reward received after acting at ``t``; ``v_t`` the value
  of the observation at ``t``; ``v_tp1`` the value of the *true* next observation of
  step ``t`` (the final, pre-reset observation when step ``t`` ended an episode,
  otherwise equal to ``v_t[t + 1]``).
* ``terminated_t``: step ``t`` ended the episode for real, the next-state value counts
  as 0.  ``truncated_t``: a time limit ended it, bootstrap from ``v_tp1``.  Both may be
  True (gymnasium allows it): terminated wins.  ``done = terminated | truncated``;
  nothing crosses a done step, and the rollout end (``t = T - 1``) is treated as a
  truncation (bootstrap from ``v_tp1[T - 1]``), except by :func:`discounted_returns`
  without ``v_tp1``.
* ``gamma``/``lambda_`` are Python floats or tensors in ``[0, 1]`` of shape ``[]`` or
  broadcastable to ``[*B]`` (per-env values); tensors make them vmappable and avoid
  recompiles.  Range checks on tensor values are skipped under ``torch.compile`` and
  inside ``torch.func`` transforms (they would need ``.item()``); shape checks always run.
* Nothing is detached: call ``.detach()`` on targets used in a loss.

The backward recursions are all ``x_t = a_t + b_t * x_{t+1}`` with ``x_T = 0`` and
``0 <= b_t <= 1``, solved by :func:`_scan` out of place (vmap-safe) with only products of
``b`` (no inverse powers: sound for any ``T``): recursive doubling (``log2 T`` steps) for
small rollouts, else a blocked scan (blocks of ``K ~ sqrt(T)`` steps side by side, then
one pass over block carries: ``~3 sqrt(T)`` sequential ops), or eagerly with many elements
per step the plain loop.  ``benchmarks/bench_returns.py`` has the measurements.

Example::

    >>> import torch
    >>> from funrl import returns
    >>> r = torch.tensor([1.0, 1.0, 1.0])
    >>> term = torch.tensor([False, True, False]); trunc = torch.zeros(3, dtype=torch.bool)
    >>> returns.discounted_returns(r, term, trunc, 0.5).tolist()
    [1.5, 1.0, 1.0]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "VTraceOutput",
    "discounted_returns",
    "gae",
    "lambda_returns",
    "n_step_returns",
    "retrace",
    "td_targets",
    "vtrace",
]

Scalar = float | Tensor


# ----------------------------------------------------------------------------- checks


def _checking_values() -> bool:
    """True when tensor values may be inspected (not tracing, not inside torch.func)."""
    if torch.compiler.is_compiling():
        return False
    return torch._C._functorch.peek_interpreter_stack() is None


def _check_float(name: str, x: Tensor, shape: torch.Size | None, dtype: torch.dtype | None) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype}, expected {dtype} (the dtype of r_t)")
    if shape is None:
        if x.dim() < 1:
            raise ValueError(f"{name} must be time-major [T, *B], got a 0-d tensor")
    elif x.shape != shape:
        raise ValueError(f"{name} has shape {list(x.shape)}, expected {list(shape)} (as r_t)")


def _check_bool(name: str, x: Tensor, shape: torch.Size) -> None:
    if not isinstance(x, Tensor) or x.dtype != torch.bool:
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a bool tensor, got {got}")
    if x.shape != shape:
        raise ValueError(f"{name} has shape {list(x.shape)}, expected {list(shape)} (as r_t)")


def _hparam(name: str, x: Scalar, like: Tensor, lo: float = 0.0, hi: float | None = 1.0) -> Tensor:
    """``x`` as a tensor of ``like``'s dtype, checked to broadcast to ``like.shape[1:]``."""
    if isinstance(x, Tensor):
        t = x.to(dtype=like.dtype, device=like.device)
        check = _checking_values()
    else:
        t = torch.tensor(float(x), dtype=like.dtype, device=like.device)
        check = True
    batch = like.shape[1:]
    ok = t.dim() <= len(batch)
    if ok:
        try:
            ok = torch.broadcast_shapes(t.shape, batch) == batch
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(
            f"{name} has shape {list(t.shape)}, expected [] or a shape broadcastable to "
            f"the batch shape {list(batch)}"
        )
    if check and (bool((t < lo).any()) or (hi is not None and bool((t > hi).any()))):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must lie in {rng}, got {t.tolist()}")
    return t


def _steps(r_t: Tensor, *floats: tuple[str, Tensor], bools: tuple[Tensor, Tensor]) -> None:
    _check_float("r_t", r_t, None, None)
    for name, x in floats:
        _check_float(name, x, r_t.shape, r_t.dtype)
    _check_bool("terminated_t", bools[0], r_t.shape)
    _check_bool("truncated_t", bools[1], r_t.shape)


def _last_step(like: Tensor) -> Tensor:
    """Bool ``[T, 1, ..., 1]``: True at ``t = T - 1``."""
    t = torch.arange(like.shape[0], device=like.device) == like.shape[0] - 1
    return t.reshape(-1, *([1] * (like.dim() - 1)))


def _shift(x: Tensor, k: int, fill: float | bool) -> Tensor:
    """``y[t] = x[t + k]`` for ``t + k < T``, else ``fill``."""
    k = min(k, x.shape[0])
    return torch.cat([x[k:], x.new_full((k, *x.shape[1:]), fill)])


# ----------------------------------------------------------------------------- scans


def _scan_loop(a: Tensor, b: Tensor) -> Tensor:
    """Baseline: ``x_t = a_t + b_t x_{t+1}``, ``x_T = 0``, one step at a time."""
    x = a[-1]
    out = [x]
    for t in range(a.shape[0] - 2, -1, -1):
        x = a[t] + b[t] * x
        out.append(x)
    return torch.stack(out[::-1])


def _scan_doubling(a: Tensor, b: Tensor) -> Tensor:
    """Same recursion by recursive doubling (Hillis-Steele): ``log2 T`` full-size steps."""
    step = 1
    while step < a.shape[0]:
        a = a + b * _shift(a, step, 0.0)
        b = b * _shift(b, step, 0.0)
        step *= 2
    return a


def _scan_blocked(a: Tensor, b: Tensor, block: int | None = None) -> Tensor:
    """Same recursion in blocks of ``K`` steps: ``2K + T/K`` sequential steps.

    Pass 1 runs every block at once (``[T/K, *B]`` slices) with a zero carry-in, keeping
    the block's solution ``loc`` and product ``prod = b_0 ... b_{K-1}`` at its first
    step; pass 2 chains the carries ``s_n = loc_n + prod_n s_{n+1}`` over blocks; pass 3
    reruns the blocks with their true carry-in, stacking the results.  Only products of
    ``b`` appear (no divisions), so it is as sound as the plain loop for any ``T``.
    """
    T, rest = a.shape[0], a.shape[1:]
    K = block if block is not None else max(1, math.isqrt(T - 1) + 1)
    N = -(-T // K)
    if N * K != T:
        pad = a.new_zeros((N * K - T, *rest))
        a, b = torch.cat([a, pad]), torch.cat([b, pad])
    a, b = a.reshape(N, K, *rest), b.reshape(N, K, *rest)
    loc, prod = a[:, K - 1], b[:, K - 1]
    for j in range(K - 2, -1, -1):
        loc = a[:, j] + b[:, j] * loc
        prod = b[:, j] * prod
    s = torch.zeros_like(loc[0])
    carries = [s]
    for n in range(N - 1, 0, -1):
        s = loc[n] + prod[n] * s
        carries.append(s)
    x = torch.stack(carries[::-1])
    out = []
    for j in range(K - 1, -1, -1):
        x = a[:, j] + b[:, j] * x
        out.append(x)
    return torch.stack(out[::-1], 1).reshape(N * K, *rest)[:T]


_DOUBLING_MAX_NUMEL = 65536
_LOOP_MIN_NUMEL = 2048


def _scan(a: Tensor, b: Tensor) -> Tensor:
    """Solve ``x_t = a_t + b_t x_{t+1}`` backwards with ``x_T = 0``.

    The method is picked from static shapes (measured in ``benchmarks/bench_returns.py``,
    one CPU thread): recursive doubling for small rollouts (``T * numel(B) <= 65536``:
    fewest ops, and compiles fastest), else the blocked scan, except eagerly with
    ``>= 2048`` elements per step, where the plain loop wins (each step is memory-bound
    work rather than per-op overhead).  Never the loop under ``torch.compile``: it would
    unroll ``T`` steps (T = 512 took ~97 s to compile).  Under ``vmap`` the sizes are the
    per-member (logical) ones.
    """
    if a.numel() <= _DOUBLING_MAX_NUMEL:
        return _scan_doubling(a, b)
    if not torch.compiler.is_compiling() and a[0].numel() >= _LOOP_MIN_NUMEL:
        return _scan_loop(a, b)
    return _scan_blocked(a, b)


# ----------------------------------------------------------------------------- estimators


def td_targets(r_t: Tensor, v_tp1: Tensor, terminated_t: Tensor, gamma: Scalar) -> Tensor:
    """One-step TD targets ``y_t = r_t + gamma * (1 - terminated_t) * v_tp1_t``.

    Args:
      r_t, v_tp1: float ``[T, *B]``.  terminated_t: bool ``[T, *B]``.
      gamma: discount, ``[]`` or broadcastable to ``[*B]``.

    Returns: float ``[T, *B]``.

    Example::

        >>> import torch
        >>> td_targets(torch.tensor([1.0, 2.0]), torch.tensor([10.0, 10.0]),
        ...            torch.tensor([False, True]), 0.9).tolist()
        [10.0, 2.0]
    """
    _check_float("r_t", r_t, None, None)
    _check_float("v_tp1", v_tp1, r_t.shape, r_t.dtype)
    _check_bool("terminated_t", terminated_t, r_t.shape)
    g = _hparam("gamma", gamma, r_t)
    return r_t + g * (~terminated_t).to(r_t.dtype) * v_tp1


def discounted_returns(
    r_t: Tensor,
    terminated_t: Tensor,
    truncated_t: Tensor,
    gamma: Scalar,
    v_tp1: Tensor | None = None,
) -> Tensor:
    """Monte-Carlo returns within each episode.

    ``G_t = r_t + gamma * G_{t+1}`` inside an episode; at a done step ``G_t = r_t +
    gamma * (1 - terminated_t) * v_tp1_t`` (terminated: 0; truncated: bootstrap); at the
    rollout end ``t = T - 1`` likewise.  Without ``v_tp1`` every bootstrap value is 0 (the
    tail is cut).

    Args:
      r_t: float ``[T, *B]``.  terminated_t, truncated_t: bool ``[T, *B]``.
      gamma: ``[]`` or broadcastable to ``[*B]``.  v_tp1: optional float ``[T, *B]``.

    Returns: float ``[T, *B]``.

    Example::

        >>> import torch
        >>> r = torch.tensor([1.0, 1.0, 1.0]); f = torch.zeros(3, dtype=torch.bool)
        >>> trunc = torch.tensor([False, True, False])
        >>> discounted_returns(r, f, trunc, 0.5, v_tp1=torch.tensor([0.0, 4.0, 8.0])).tolist()
        [2.5, 3.0, 5.0]
    """
    _steps(r_t, bools=(terminated_t, truncated_t))
    g = _hparam("gamma", gamma, r_t)
    done = terminated_t | truncated_t
    b = g * (~done).to(r_t.dtype)
    if v_tp1 is None:
        return _scan(r_t, b)
    _check_float("v_tp1", v_tp1, r_t.shape, r_t.dtype)
    boot = (done | _last_step(r_t)) & ~terminated_t
    return _scan(r_t + g * boot.to(r_t.dtype) * v_tp1, b)


def n_step_returns(
    r_t: Tensor,
    v_tp1: Tensor,
    terminated_t: Tensor,
    truncated_t: Tensor,
    gamma: Scalar,
    n: int,
) -> Tensor:
    """n-step returns: up to ``n`` discounted rewards, then a bootstrap.

    ``G_t = sum_{k<m} gamma^k r_{t+k} + gamma^m (1 - terminated_{t+m-1}) v_tp1_{t+m-1}``
    where ``m <= n`` stops early at the first done step (terminated: no bootstrap,
    truncated: its ``v_tp1``) or at the rollout end.  Costs ``O(n T)``; ``n`` is a static
    Python int (``n >= T`` gives the bootstrapped Monte-Carlo return).

    Args:
      r_t, v_tp1: float ``[T, *B]``.  terminated_t, truncated_t: bool ``[T, *B]``.
      gamma: ``[]`` or broadcastable to ``[*B]``.  n: int ``>= 1``.

    Returns: float ``[T, *B]``.

    Example::

        >>> import torch
        >>> r = torch.ones(3); f = torch.zeros(3, dtype=torch.bool)
        >>> n_step_returns(r, torch.full((3,), 10.0), f, f, 0.5, n=2).tolist()
        [4.0, 4.0, 6.0]
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a Python int >= 1, got {n!r}")
    _steps(r_t, ("v_tp1", v_tp1), bools=(terminated_t, truncated_t))
    g = _hparam("gamma", gamma, r_t)
    stop_at = terminated_t | truncated_t | _last_step(r_t).expand_as(terminated_t)
    boot = (~terminated_t).to(r_t.dtype) * v_tp1
    alive = torch.ones_like(terminated_t)
    disc = torch.ones_like(r_t)
    ret = torch.zeros_like(r_t)
    for k in range(min(n, r_t.shape[0])):
        stop = _shift(stop_at, k, True)
        ret = ret + torch.where(alive, disc * _shift(r_t, k, 0.0), 0.0)
        disc = disc * g
        end = alive & (stop | (k == n - 1))
        ret = ret + torch.where(end, disc * _shift(boot, k, 0.0), 0.0)
        alive = alive & ~stop
    return ret


def lambda_returns(
    r_t: Tensor,
    v_tp1: Tensor,
    terminated_t: Tensor,
    truncated_t: Tensor,
    gamma: Scalar,
    lambda_: Scalar,
) -> Tensor:
    """TD(lambda) returns, recursive form.

    ``G_t = r_t + gamma (1 - terminated_t) [(1 - lambda_) v_tp1_t + lambda_ G_{t+1}]``
    with ``G_{t+1}`` replaced by ``v_tp1_t`` at done steps and at ``t = T - 1``.
    ``lambda_ = 1``: :func:`discounted_returns` bootstrapped from ``v_tp1``;
    ``lambda_ = 0``: :func:`td_targets`.

    Args:
      r_t, v_tp1: float ``[T, *B]``.  terminated_t, truncated_t: bool ``[T, *B]``.
      gamma, lambda_: ``[]`` or broadcastable to ``[*B]``.

    Returns: float ``[T, *B]``.

    Example::

        >>> import torch
        >>> r = torch.ones(2); f = torch.zeros(2, dtype=torch.bool)
        >>> lambda_returns(r, torch.tensor([2.0, 4.0]), f, f, 0.5, 0.5).tolist()
        [2.25, 3.0]
    """
    _steps(r_t, ("v_tp1", v_tp1), bools=(terminated_t, truncated_t))
    g, lam = _hparam("gamma", gamma, r_t), _hparam("lambda_", lambda_, r_t)
    cont = ~(terminated_t | truncated_t | _last_step(r_t))
    b = g * lam * cont.to(r_t.dtype)
    a = r_t + g * (~terminated_t).to(r_t.dtype) * v_tp1 - b * v_tp1
    return _scan(a, b)


def gae(
    r_t: Tensor,
    v_t: Tensor,
    v_tp1: Tensor,
    terminated_t: Tensor,
    truncated_t: Tensor,
    gamma: Scalar,
    lambda_: Scalar,
) -> Tensor:
    """Generalized advantage estimates (Schulman et al. 2016).

    ``delta_t = r_t + gamma (1 - terminated_t) v_tp1_t - v_t`` and
    ``A_t = delta_t + gamma lambda_ (1 - done_t) A_{t+1}`` (``A_T = 0``).  Value targets
    are ``A_t + v_t`` (equal to :func:`lambda_returns`).

    Args:
      r_t, v_t, v_tp1: float ``[T, *B]``.  terminated_t, truncated_t: bool ``[T, *B]``.
      gamma, lambda_: ``[]`` or broadcastable to ``[*B]``.

    Returns: advantages, float ``[T, *B]``.

    Example::

        >>> import torch
        >>> r = torch.ones(2); f = torch.zeros(2, dtype=torch.bool)
        >>> v = torch.tensor([1.0, 2.0]); v_tp1 = torch.tensor([2.0, 4.0])
        >>> gae(r, v, v_tp1, f, f, 0.5, 0.5).tolist()
        [1.25, 1.0]
    """
    _steps(r_t, ("v_t", v_t), ("v_tp1", v_tp1), bools=(terminated_t, truncated_t))
    g, lam = _hparam("gamma", gamma, r_t), _hparam("lambda_", lambda_, r_t)
    delta = r_t + g * (~terminated_t).to(r_t.dtype) * v_tp1 - v_t
    b = g * lam * (~(terminated_t | truncated_t)).to(r_t.dtype)
    return _scan(delta, b)


class VTraceOutput(NamedTuple):
    """``vs``: V-trace value targets ``[T, *B]``; ``pg_advantages``: ``[T, *B]``."""

    vs: Tensor
    pg_advantages: Tensor


def vtrace(
    r_t: Tensor,
    v_t: Tensor,
    v_tp1: Tensor,
    terminated_t: Tensor,
    truncated_t: Tensor,
    log_rho_t: Tensor,
    gamma: Scalar,
    lambda_: Scalar = 1.0,
    clip_rho_threshold: Scalar = 1.0,
    clip_c_threshold: Scalar = 1.0,
    clip_pg_rho_threshold: Scalar = 1.0,
) -> VTraceOutput:
    """V-trace targets and policy-gradient advantages (Espeholt et al. 2018, IMPALA).

    With ``rho_t = exp(log_rho_t)`` (``log_rho_t = log pi(a_t|s_t) - log mu(a_t|s_t)``),
    ``delta_t = min(clip_rho, rho_t) (r_t + gamma (1 - terminated_t) v_tp1_t - v_t)``,
    ``c_t = lambda_ min(clip_c, rho_t)``:

    ``vs_t - v_t = delta_t + gamma c_t (1 - done_t) (vs_{t+1} - v_{t+1})`` (0 after
    ``T - 1``), and ``pg_advantages_t = min(clip_pg_rho, rho_t) (r_t + gamma (1 -
    terminated_t) q_t - v_t)`` with ``q_t = v_tp1_t + lambda_ (1 - done_t) (vs_{t+1} -
    v_{t+1})`` (rlax's ``lambda_ vs_{t+1} + (1 - lambda_) v_{t+1}``; ``v_tp1_t`` at done
    steps and at ``T - 1``).  On-policy (``log_rho_t = 0``) ``vs`` equals
    :func:`lambda_returns` and ``pg_advantages`` equals :func:`gae`.

    Args:
      r_t, v_t, v_tp1, log_rho_t: float ``[T, *B]``.
      terminated_t, truncated_t: bool ``[T, *B]``.
      gamma, lambda_: in ``[0, 1]``; clip thresholds ``>= 0``; each ``[]`` or
        broadcastable to ``[*B]``.

    Returns: :class:`VTraceOutput` ``(vs, pg_advantages)``, each float ``[T, *B]``.

    Example::

        >>> import torch
        >>> r = torch.ones(2); f = torch.zeros(2, dtype=torch.bool)
        >>> out = vtrace(r, torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]), f, f,
        ...              torch.zeros(2), 0.5, 0.5)
        >>> out.vs.tolist(), out.pg_advantages.tolist()
        ([2.25, 3.0], [1.25, 1.0])
    """
    _steps(
        r_t, ("v_t", v_t), ("v_tp1", v_tp1), ("log_rho_t", log_rho_t),
        bools=(terminated_t, truncated_t),
    )  # fmt: skip
    g, lam = _hparam("gamma", gamma, r_t), _hparam("lambda_", lambda_, r_t)
    rho = torch.exp(log_rho_t)
    clip_rho = torch.minimum(_hparam("clip_rho_threshold", clip_rho_threshold, r_t, hi=None), rho)
    c = lam * torch.minimum(_hparam("clip_c_threshold", clip_c_threshold, r_t, hi=None), rho)
    pg_rho = torch.minimum(
        _hparam("clip_pg_rho_threshold", clip_pg_rho_threshold, r_t, hi=None), rho
    )
    not_term = (~terminated_t).to(r_t.dtype)
    cont = (~(terminated_t | truncated_t)).to(r_t.dtype)
    err = _scan(clip_rho * (r_t + g * not_term * v_tp1 - v_t), g * c * cont)
    q = v_tp1 + lam * cont * _shift(err, 1, 0.0)
    return VTraceOutput(vs=v_t + err, pg_advantages=pg_rho * (r_t + g * not_term * q - v_t))


def retrace(
    q_t: Tensor,
    r_t: Tensor,
    expected_q_tp1: Tensor,
    terminated_t: Tensor,
    truncated_t: Tensor,
    log_rho_t: Tensor,
    gamma: Scalar,
    lambda_: Scalar,
) -> Tensor:
    """Retrace targets for ``Q(s_t, a_t)`` (Munos et al. 2016; cf. ``rlax.retrace``).

    ``G_t = r_t + gamma (1 - terminated_t) [expected_q_tp1_t + c_{t+1} (1 - done_t)
    (G_{t+1} - q_{t+1})]`` with ``c_{t+1} = lambda_ min(1, exp(log_rho_{t+1}))`` and the
    trace cut at done steps and after ``T - 1`` (``G_t = r_t + gamma (1 - terminated_t)
    expected_q_tp1_t`` there).

    Ratios: ``log_rho_t[t] = log pi(a_t|s_t) - log mu(a_t|s_t)`` is the ratio of step
    ``t``'s own action; the target of step ``t`` uses the ratio of step ``t + 1`` (so
    ``log_rho_t[0]`` is never used: ``Q(s_0, a_0)`` is conditioned on ``a_0``).

    Args:
      q_t: float ``[T, *B]``, ``Q(s_t, a_t)`` of the taken actions (target network).
      r_t: float ``[T, *B]``.
      expected_q_tp1: float ``[T, *B]``, ``E_{a ~ pi} Q(s'_t, a)`` at the true next
        observation of step ``t`` (the final observation at episode ends).
      terminated_t, truncated_t: bool ``[T, *B]``.  log_rho_t: float ``[T, *B]``.
      gamma, lambda_: ``[]`` or broadcastable to ``[*B]``.

    Returns: float ``[T, *B]``, targets for ``Q(s_t, a_t)``.

    Example::

        >>> import torch
        >>> f = torch.zeros(2, dtype=torch.bool)
        >>> retrace(torch.tensor([0.0, 2.0]), torch.ones(2), torch.tensor([3.0, 4.0]),
        ...         f, f, torch.zeros(2), 0.5, 1.0).tolist()
        [3.0, 3.0]
    """
    _steps(
        r_t, ("q_t", q_t), ("expected_q_tp1", expected_q_tp1), ("log_rho_t", log_rho_t),
        bools=(terminated_t, truncated_t),
    )  # fmt: skip
    g, lam = _hparam("gamma", gamma, r_t), _hparam("lambda_", lambda_, r_t)
    c_next = _shift(lam * torch.clamp(torch.exp(log_rho_t), max=1.0), 1, 0.0)
    b = g * c_next * (~(terminated_t | truncated_t)).to(r_t.dtype)
    a = r_t + g * (~terminated_t).to(r_t.dtype) * expected_q_tp1 - q_t
    # y_t = G_t - q_t obeys y_t = a_t + b_t y_{t+1}; c_next is 0 at T - 1.
    return _scan(a, b) + q_t
