"""Schedules: pure functions ``count -> value`` of a step-count tensor.

``count`` is an integer tensor (0-d, or any shape: the result has its shape) counting the
updates done so far (0 on the first update).  Every schedule is built from tensor ops only
(no Python branching on ``count``), so it runs under ``vmap`` and ``torch.compile``
without recompiling as ``count`` changes.  Values are float64 (float32 on MPS), like the
hyperparameters in an optimizer state.  Pass a schedule as an alias's ``lr``.

Example::

    >>> import torch
    >>> from funrl import optim
    >>> s = optim.warmup_schedule(0.0, 1.0, 2, optim.linear_schedule(1.0, 0.0, 4))
    >>> [round(float(s(torch.tensor(t))), 3) for t in range(8)]
    [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from funrl.optim.base import scalar_dtype

__all__ = [
    "Schedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "join_schedules",
    "linear_schedule",
    "piecewise_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_schedule",
]

Schedule = Callable[[torch.Tensor], torch.Tensor]
Number = float | torch.Tensor


def _float_count(count: Any) -> torch.Tensor:
    count = torch.as_tensor(count)
    if count.dtype.is_floating_point or count.dtype == torch.bool:
        raise TypeError(f"schedule: count must be an integer tensor, got dtype {count.dtype}")
    return count.to(scalar_dtype(count.device))


def _check_steps(name: str, steps: Any, allow_zero: bool = False) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < (0 if allow_zero else 1):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be a Python int {bound}, got {steps!r}")


def constant_schedule(value: Number) -> Schedule:
    """``value`` at every count."""

    def schedule(count: Any) -> torch.Tensor:
        c = _float_count(count)
        return torch.zeros_like(c) + value

    return schedule


def linear_schedule(
    init_value: Number, end_value: Number, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """``init_value`` until ``transition_begin``, then linearly to ``end_value`` over
    ``transition_steps`` counts, then ``end_value``::

        v(t) = init + (end - init) * clamp((t - begin) / steps, 0, 1)
    """
    _check_steps("transition_steps", transition_steps)
    _check_steps("transition_begin", transition_begin, allow_zero=True)

    def schedule(count: Any) -> torch.Tensor:
        frac = torch.clamp((_float_count(count) - transition_begin) / transition_steps, 0.0, 1.0)
        return init_value + (end_value - init_value) * frac

    return schedule


def cosine_decay_schedule(init_value: Number, decay_steps: int, alpha: Number = 0.0) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``::

        v(t) = init * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t, decay_steps) / decay_steps)) + alpha)

    (``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``eta_min = alpha * init``).
    """
    _check_steps("decay_steps", decay_steps)

    def schedule(count: Any) -> torch.Tensor:
        frac = torch.clamp(_float_count(count) / decay_steps, 0.0, 1.0)
        cos = 0.5 * (1.0 + torch.cos(math.pi * frac))
        return init_value * ((1.0 - alpha) * cos + alpha)

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """``schedules[i]`` on ``[boundaries[i-1], boundaries[i])``, each restarted at 0::

        v(t) = schedules[i](t - boundaries[i-1])   for the last boundary <= t

    All schedules are evaluated (cheap scalars) and picked with ``torch.where``.
    """
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(
            f"join_schedules needs len(schedules) == len(boundaries) + 1, got "
            f"{len(schedules)} schedules and {len(boundaries)} boundaries"
        )
    for b in boundaries:
        _check_steps("each boundary", b, allow_zero=True)
    if list(boundaries) != sorted(boundaries):
        raise ValueError(f"join_schedules: boundaries must be sorted, got {list(boundaries)}")

    def schedule(count: Any) -> torch.Tensor:
        count = torch.as_tensor(count)
        out = schedules[0](count)
        for b, fn in zip(boundaries, schedules[1:]):
            out = torch.where(count >= b, fn(count - b), out)
        return out

    return schedule


def warmup_schedule(
    init_value: Number, peak_value: Number, warmup_steps: int, after: Schedule
) -> Schedule:
    """Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps`` counts,
    then ``after(t - warmup_steps)``."""
    _check_steps("warmup_steps", warmup_steps)
    warm = linear_schedule(init_value, peak_value, warmup_steps)
    return join_schedules([warm, after], [warmup_steps])


def warmup_cosine_decay_schedule(
    init_value: Number, peak_value: Number, warmup_steps: int, decay_steps: int, end_value: Number
) -> Schedule:
    """Linear warmup to ``peak_value``, then cosine decay to ``end_value`` over
    ``decay_steps`` (counted from the end of the warmup)."""
    if isinstance(peak_value, (int, float)) and peak_value == 0:
        raise ValueError("warmup_cosine_decay_schedule: peak_value must be non-zero")
    decay = cosine_decay_schedule(peak_value, decay_steps, alpha=end_value / peak_value)
    return warmup_schedule(init_value, peak_value, warmup_steps, decay)


def piecewise_constant_schedule(
    init_value: Number, boundaries_and_scales: dict[int, float]
) -> Schedule:
    """``init_value`` times the product of ``scale`` for every ``boundary <= t``
    (``torch.optim.lr_scheduler.MultiStepLR`` with a per-milestone factor)."""
    items = sorted(boundaries_and_scales.items())
    for b, _ in items:
        _check_steps("each boundary", b, allow_zero=True)

    def schedule(count: Any) -> torch.Tensor:
        c = _float_count(count)
        v = torch.zeros_like(c) + init_value
        for b, s in items:
            v = torch.where(c >= b, v * s, v)
        return v

    return schedule
