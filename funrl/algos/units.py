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

Compiled units and strides: a compiled unit's outputs come back as its next call's inputs
and dynamo guards on input strides, so a strided output (a key sliced from ``split``, a
vmapped stride-0 counter) would compile the unit a second time.  Compiled units therefore
return contiguous tensors.  Tracing ``tree.contiguous`` over the outputs (a state of ~65
leaves) would cost dynamo a pytree pass per unit, most of whose leaves already are
contiguous; instead a graph pass between dynamo and inductor makes exactly the graph
outputs that are not contiguous contiguous (an extra copy inside the compiled code, only
where needed).  The numbers are the same either way; only strides change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from funrl import tree
from funrl.compiling import compile as funrl_compile

__all__ = ["UnitTransform", "compiled", "eager", "population"]

UnitTransform = Callable[[Callable[..., Any], str], Callable[..., Any]]

# Units that only move data around gain nothing from compiling and would add compile time.
_DATA_ONLY = frozenset({"stack"})


def _contiguous_graph_outputs(gm: torch.fx.GraphModule) -> None:
    """Make every tensor output of a dynamo graph that is not row-major
    (:func:`funrl.tree.is_row_major`) a row-major copy, in place.

    Strides come from dynamo's fake example values (``node.meta["example_value"]``), the
    layouts inductor's outputs keep.
    """
    out = gm.graph.output_node()
    changed = False

    def fix(node: torch.fx.Node) -> torch.fx.Node:
        nonlocal changed
        val = node.meta.get("example_value")
        if not isinstance(val, torch.Tensor) or tree.is_row_major(val):
            return node
        with gm.graph.inserting_before(out):
            new = gm.graph.call_function(
                torch.clone, (node,), {"memory_format": torch.contiguous_format}
            )
        new.meta["example_value"] = val.clone(memory_format=torch.contiguous_format)
        changed = True
        return new

    out.args = tuple(torch.fx.node.map_arg(a, fix) for a in out.args)
    if changed:
        gm.recompile()


def _compile(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """:func:`funrl.compile` whose compiled graphs return contiguous tensors."""
    compiled_fn = funrl_compile(fn, graph_pass=_contiguous_graph_outputs, name=f"unit {name!r}")
    return _checked_outputs(compiled_fn)


#: Calls of a compiled unit whose outputs are checked before they are trusted.
_CHECKED_CALLS = 2


def _checked_outputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` whose first outputs pass through :func:`funrl.tree.contiguous`, and every
    output after one that needed it.

    The graph pass reads layouts from dynamo's example values, and inductor can still lay
    an output out otherwise (seen: Adam's moments of a vmapped ensemble critic came back
    transposed, and SAC's learn unit compiled a second time, 6 minutes at MountainCar's
    preset).  A unit whose first outputs are all row-major keeps that layout: it is
    checked no further, so the steady cost is nil.
    """
    calls, fixing = 0, False

    def run(*args: Any) -> Any:
        nonlocal calls, fixing
        out = fn(*args)
        if not fixing and calls >= _CHECKED_CALLS:
            return out
        calls += 1
        fixed = tree.contiguous(out)
        if not fixing:
            fixing = any(a is not b for a, b in zip(tree.leaves(out), tree.leaves(fixed)))
        return fixed

    run.__wrapped__ = fn  # type: ignore[attr-defined]
    return run


def _contiguous_outputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` whose tensor outputs are contiguous (``init``: run once, never compiled)."""

    def run(*args: Any) -> Any:
        return tree.contiguous(fn(*args))

    return run


def eager(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Run the unit as it is."""
    return fn


def compiled(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Compile the unit with :func:`funrl.compile` (static shapes, no graph breaks).

    Its tensor outputs are contiguous, so feeding them back never compiles it again;
    ``init`` is not compiled (it runs once) but returns contiguous state for the same reason.
    """
    if name == "init":
        return _contiguous_outputs(fn)
    if name in _DATA_ONLY:
        return fn
    return _compile(fn, name)


def population(compile: bool = False, chunk_size: int | None = None) -> UnitTransform:
    """Vmap every unit, ``init`` included, over a leading member dim of all its arguments
    (then compile).

    ``init(keys [P, 2], hparams with [P] leaves)`` returns the population's state.
    Compiled, a unit returns contiguous tensors, as with :func:`compiled`, and ``init``
    returns contiguous state (vmap gives stride-0 leaves where a value ignores the key).
    Eagerly, layouts are left as vmap makes them: they pick the kernels, and members stay
    bit-identical to training alone.
    """

    def transform(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        v = torch.func.vmap(fn, randomness="error", chunk_size=chunk_size)
        if not compile or name in _DATA_ONLY:
            return v
        return _contiguous_outputs(v) if name == "init" else _compile(v, name)

    transform.vmaps = True  # type: ignore[attr-defined]  # (read by common.check_units)
    return transform
