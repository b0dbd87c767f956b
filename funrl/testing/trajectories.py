"""Hypothesis strategies for rollouts in the conventions of :mod:`funrl.returns`.

A drawn :class:`Trajectory` is time-major ``[T, *B]`` and consistent: where step ``t``
did not end an episode, ``v_tp1[t] == v_t[t + 1]``; where it did (terminated, truncated,
or both at once, as gymnasium allows) and at ``t = T - 1``, ``v_tp1[t]`` is an independent
draw (the value of the final, pre-reset observation).

Example::

    >>> from hypothesis import given, settings
    >>> from funrl.testing.trajectories import discounts, trajectories
    >>> @settings(max_examples=10, deadline=None)
    ... @given(trajectories(), discounts())
    ... def test_td_targets_shape(traj, gamma):
    ...     from funrl.returns import td_targets
    ...     y = td_targets(traj.r_t, traj.v_tp1, traj.terminated_t, gamma)
    ...     assert y.shape == traj.r_t.shape
    >>> test_td_targets_shape()
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from hypothesis import strategies as st

__all__ = ["Trajectory", "discounts", "lambdas", "trajectories"]


class Trajectory(NamedTuple):
    """A rollout: floats ``[T, *B]`` except the bool flags ``[T, *B]``.

    ``log_mu_t``/``log_pi_t`` are the log-probabilities of the taken action under the
    behaviour and the target policy.
    """

    r_t: torch.Tensor
    v_t: torch.Tensor
    v_tp1: torch.Tensor
    terminated_t: torch.Tensor
    truncated_t: torch.Tensor
    log_mu_t: torch.Tensor
    log_pi_t: torch.Tensor

    @property
    def log_rho_t(self) -> torch.Tensor:
        """``log_pi_t - log_mu_t``: the importance log-ratio of each step's action."""
        return self.log_pi_t - self.log_mu_t

    @property
    def done_t(self) -> torch.Tensor:
        return self.terminated_t | self.truncated_t


def _strategy(x: Any) -> st.SearchStrategy[Any]:
    return x if isinstance(x, st.SearchStrategy) else st.just(x)


def discounts(min_value: float = 0.0, max_value: float = 1.0) -> st.SearchStrategy[float]:
    """Discounts ``gamma`` in ``[min_value, max_value]`` (within ``[0, 1]``, ends included)."""
    if not 0.0 <= min_value <= max_value <= 1.0:
        raise ValueError(f"need 0 <= min_value <= max_value <= 1, got {min_value}, {max_value}")
    return st.floats(min_value, max_value, allow_nan=False)


def lambdas(min_value: float = 0.0, max_value: float = 1.0) -> st.SearchStrategy[float]:
    """Trace parameters ``lambda_`` in ``[min_value, max_value]`` (within ``[0, 1]``)."""
    return discounts(min_value, max_value)


_BATCH_SHAPES = st.lists(st.integers(1, 3), max_size=2).map(tuple)


@st.composite
def trajectories(
    draw: st.DrawFn,
    T: int | st.SearchStrategy[int] = st.integers(1, 10),  # noqa: B008
    batch_shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] = _BATCH_SHAPES,
    *,
    dtype: torch.dtype = torch.float32,
    max_abs_value: float = 10.0,
    ends: bool = True,
    allow_both: bool = True,
    max_log_prob: float = 4.0,
) -> Trajectory:
    """Draw a consistent :class:`Trajectory`.

    Args:
      T: number of steps (int or strategy; default 1..10).
      batch_shape: trailing batch shape (tuple or strategy; default up to 2 dims of 1..3).
      dtype: float dtype of the float fields.
      max_abs_value: rewards and values lie in ``[-max_abs_value, max_abs_value]``.
      ends: allow episode ends (``False``: all flags False).
      allow_both: allow steps with ``terminated`` and ``truncated`` both True.
      max_log_prob: log-probabilities lie in ``[-max_log_prob, 0]``.

    Each step shrinks towards "no episode end"; about 3/8 of steps end an episode.
    """
    t_len = draw(_strategy(T))
    shape = (t_len, *draw(_strategy(batch_shape)))
    n = int(np.prod(shape))
    width: Literal[32, 64] = 64 if dtype == torch.float64 else 32
    vals = st.floats(-max_abs_value, max_abs_value, allow_nan=False, width=width)
    logp = st.floats(-max_log_prob, 0.0, allow_nan=False, width=width)

    def field(elem: st.SearchStrategy[Any]) -> np.ndarray:
        return np.asarray(draw(st.lists(elem, min_size=n, max_size=n))).reshape(shape)

    r, v, v_final = field(vals), field(vals), field(vals)
    # 0..4: no end; 5: terminated; 6: truncated; 7: both.
    event = field(st.integers(0, (7 if allow_both else 6) if ends else 0))
    term, trunc = (event == 5) | (event == 7), (event == 6) | (event == 7)
    v_next = np.concatenate([v[1:], v_final[-1:]])
    v_tp1 = np.where(term | trunc, v_final, v_next)
    log_mu, log_pi = field(logp), field(logp)

    def f(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(x, dtype=dtype)

    return Trajectory(
        r_t=f(r),
        v_t=f(v),
        v_tp1=f(v_tp1),
        terminated_t=torch.tensor(term),
        truncated_t=torch.tensor(trunc),
        log_mu_t=f(log_mu),
        log_pi_t=f(log_pi),
    )
