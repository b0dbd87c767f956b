"""How an algorithm's compute units are transformed: eager, compiled, vmapped.

An algorithm's ``update`` is a short host loop over a few pure *units* (one collector
step, advantage estimation, one minibatch step).  ``make(config, units=...)`` wraps each
unit with the transform given here, so the same code runs:

* eagerly (:func:`eager`, the default; best for debugging),
* with each unit compiled (:func:`compiled`): fast without compiling long loops,
* over a population (:func:`population`): each unit ``vmap``-ed over a leading member
  dim of every argument, optionally compiled.

The whole ``update`` stays a pure function either way, so ``torch.func.vmap(update)`` and
``torch.compile(update)`` also work directly (the latter unrolls every loop: slow to
compile, see docs/contracts.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from funrl import tree
from funrl.compiling import compile as _compile

__all__ = ["UnitTransform", "compiled", "eager", "population"]

UnitTransform = Callable[[Callable[..., Any], str], Callable[..., Any]]

# Units that only move data around gain nothing from compiling and would add compile time.
_DATA_ONLY = frozenset({"stack"})


def _contiguous_outputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` whose tensor outputs are contiguous (a no-op for those that already are).

    A compiled unit's outputs come back as its next call's inputs, and dynamo guards on
    strides: an output that is a strided view (a key sliced from ``split``, a vmapped
    stride-0 counter) would compile the unit a second time.
    """

    def call(*args: Any) -> Any:
        return tree.contiguous(fn(*args))

    call.__name__ = getattr(fn, "__name__", "unit")
    return call


def eager(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Run the unit as it is."""
    return fn


def compiled(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Compile the unit with :func:`funrl.compile` (static shapes, no graph breaks)."""
    if name in _DATA_ONLY:
        return fn
    return _compile(_contiguous_outputs(fn))


def population(compile: bool = False, chunk_size: int | None = None) -> UnitTransform:
    """Vmap every unit over a leading member dim of all its arguments (then compile)."""

    def transform(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        v = torch.func.vmap(fn, randomness="error", chunk_size=chunk_size)
        if compile and name not in _DATA_ONLY:
            return _compile(_contiguous_outputs(v))
        return v

    return transform
