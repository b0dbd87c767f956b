"""Replay buffers as pure state: ring replay, prioritized replay, n-step, trajectories.

A buffer is a pytree of preallocated tensors plus integer counters; every function
returns a new state and never mutates its input (unless you opt in with
``donate=True``), so a population of buffers ``vmap``s and every function compiles.

Checks: structure, shape and dtype mismatches raise ``TypeError``/``ValueError`` at the
entry points, also under ``torch.compile`` (shapes are static there).  Checks on tensor
*values* (sampling an empty buffer, ``batch_size`` above the filled count, negative
priorities) run only eagerly on plain tensors: they are skipped while tracing
(``torch.compiler.is_compiling()``) and on functorch-wrapped tensors (inside ``vmap`` or
``grad``), where reading a value is impossible.  Use :func:`can_sample` to mask there.

Example::

    >>> import torch, funrl
    >>> from funrl import buffers
    >>> ex = {"obs": torch.zeros(4), "action": torch.zeros((), dtype=torch.int64)}
    >>> s = buffers.init(ex, capacity=8)
    >>> s = buffers.add(s, {"obs": torch.ones(3, 4), "action": torch.arange(3)})
    >>> int(s.size), int(s.pos)
    (3, 3)
    >>> buffers.sample(s, funrl.random.key(0), 2)["obs"].shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from funrl.buffers.nstep import (
    NStepState,
    NStepTransition,
    TrajectoryState,
    n_step_init,
    n_step_push,
    n_step_transitions,
    trajectory_add,
    trajectory_get,
    trajectory_init,
)
from funrl.buffers.prioritized import (
    PrioritizedState,
    prioritized_add,
    prioritized_init,
    prioritized_sample,
    update_priorities,
)
from funrl.buffers.ring import (
    ReplayState,
    add,
    can_sample,
    capacity_of,
    init,
    sample,
)

__all__ = [
    "NStepState",
    "NStepTransition",
    "PrioritizedState",
    "ReplayState",
    "TrajectoryState",
    "add",
    "can_sample",
    "capacity_of",
    "init",
    "n_step_init",
    "n_step_push",
    "n_step_transitions",
    "prioritized_add",
    "prioritized_init",
    "prioritized_sample",
    "sample",
    "trajectory_add",
    "trajectory_get",
    "trajectory_init",
    "update_priorities",
]
