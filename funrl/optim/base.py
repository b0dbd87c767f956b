"""The optimizer contract: ``GradientTransformation(init, update)``, ``chain``, hyperparameters.

An optimizer is a pair of pure functions over pytrees of tensors (usually dicts
``name -> tensor``)::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)          # params + updates, leaf by leaf

Nothing is mutated; ``torch.func.vmap`` over (grads, state, params) trains a population,
``torch.compile`` compiles a step.

Hyperparameters a user may sweep live *in the state* as 0-d tensors, in one
:class:`HyperparamsState` record per :func:`inject_hyperparams` (every alias --
``sgd``, ``adam``, ``adamw``, ``rmsprop`` -- and ``clip_by_global_norm`` own one).
Read them with :func:`hparams`, replace them with :func:`set_hparams`; changing a value
never recompiles a compiled update, and a stacked population carries one value per member.
Scalars are stored as float64 on the params' device (float32 on MPS) so that bias
corrections are as exact as ``torch.optim``'s Python-float arithmetic.

Example::

    >>> import torch
    >>> from funrl import optim
    >>> params = {"w": torch.ones(3, dtype=torch.float64)}
    >>> opt = optim.sgd(0.1)
    >>> state = opt.init(params)
    >>> updates, state = opt.update({"w": torch.ones(3, dtype=torch.float64)}, state, params)
    >>> optim.apply_updates(params, updates)["w"].tolist()
    [0.9, 0.9, 0.9]
    >>> state = optim.set_hparams(state, lr=0.5)
    >>> float(optim.hparams(state)["lr"])
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.utils._pytree as _pt

from funrl import tree

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "HyperparamsState",
    "apply_updates",
    "chain",
    "hparams",
    "inject_hyperparams",
    "set_hparams",
]

PyTree = Any
Scalar = float | torch.Tensor
Schedule = Callable[[torch.Tensor], torch.Tensor]


class GradientTransformation(NamedTuple):
    """A pure optimizer: ``init(params) -> state``; ``update(grads, state, params=None)``.

    ``update`` returns ``(updates, new_state)``; ``updates`` has the structure of ``grads``.
    """

    init: Callable[[PyTree], PyTree]
    update: Callable[..., tuple[PyTree, PyTree]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation (no leaves)."""


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` one after another; the state is the tuple of their states.

    Example: ``chain(clip_by_global_norm(1.0), adam(3e-4))`` clips, then runs Adam.
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(
                f"chain: argument {i} must be a GradientTransformation, got {type(t).__name__}"
            )

    def init(params: PyTree) -> tuple[Any, ...]:
        return tuple(t.init(params) for t in transforms)

    def update(grads: PyTree, state: tuple[Any, ...], params: PyTree = None) -> Any:
        if len(state) != len(transforms):
            raise ValueError(f"chain: state has {len(state)} entries for {len(transforms)}")
        new_state = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new_state.append(s)
        return grads, tuple(new_state)

    return GradientTransformation(init, update)


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates`` leaf by leaf (updates cast to each param's dtype)."""
    p, spec = tree.flatten(params)
    u, uspec = tree.flatten(updates)
    if spec != uspec:
        raise ValueError(f"apply_updates: updates structure {uspec} != params structure {spec}")
    u = [ui if ui.dtype == pi.dtype else ui.to(pi.dtype) for pi, ui in zip(p, u)]
    return tree.unflatten(_add(p, u, _foreach_ok(None)), spec)


# ----------------------------------------------------------------------------- list ops
# Each transform flattens its trees once and works on lists of leaves.  Eagerly, outside
# any functorch transform, the lists go through torch._foreach_* (one dispatch for all
# leaves); under vmap/grad (no batching rules for foreach ops) and under torch.compile
# (Inductor fuses per-leaf ops anyway) they go leaf by leaf.


def _foreach_ok(foreach: bool | None) -> bool:
    """Whether to use ``torch._foreach_*``: ``foreach`` if given, else auto (see above)."""
    if foreach is not None:
        return foreach
    if torch.compiler.is_compiling():
        return False
    return torch._C._functorch.peek_interpreter_stack() is None


def _cast_scalar(s: Any, xs: list[torch.Tensor]) -> tuple[list[Any], Any]:
    """``s`` per leaf in the leaf's dtype/device (cast once per dtype), and the common one.

    Casting matters for 0-d leaves: ``f32 0-d * f64 0-d`` would promote to float64.  The
    second value is the single cast scalar when all leaves share dtype/device, else None.
    """
    if not isinstance(s, torch.Tensor):
        return [s] * len(xs), s
    if not xs:
        return [], None
    dtype, device = xs[0].dtype, xs[0].device
    if all(x.dtype == dtype and x.device == device for x in xs):  # the common case: one cast
        c = s if s.dtype == dtype and s.device == device else s.to(dtype=dtype, device=device)
        return [c] * len(xs), c
    cache: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
    out = []
    for x in xs:
        key = (x.dtype, x.device)
        if key not in cache:
            cache[key] = s.to(dtype=x.dtype, device=x.device)
        out.append(cache[key])
    return out, None


def _mul(xs: list[torch.Tensor], s: Any, fe: bool) -> list[torch.Tensor]:
    """``x * s`` for each x; ``s`` a number, a 0-d tensor or a list of tensors."""
    if isinstance(s, list):
        return list(torch._foreach_mul(xs, s)) if fe else [x * y for x, y in zip(xs, s)]
    per_leaf, common = _cast_scalar(s, xs)
    if fe and common is not None:
        return list(torch._foreach_mul(xs, common))
    return [x * y for x, y in zip(xs, per_leaf)]


def _add(xs: list[torch.Tensor], ys: Any, fe: bool) -> list[torch.Tensor]:
    """``x + y`` for each x; ``ys`` a list of tensors, a number or a 0-d tensor."""
    if isinstance(ys, list):
        return list(torch._foreach_add(xs, ys)) if fe else [x + y for x, y in zip(xs, ys)]
    per_leaf, common = _cast_scalar(ys, xs)
    if fe and common is not None:
        return list(torch._foreach_add(xs, common))
    return [x + y for x, y in zip(xs, per_leaf)]


def _addcmul(
    xs: list[torch.Tensor], ys: list[torch.Tensor], zs: Any, fe: bool, value: float = 1.0
) -> list[torch.Tensor]:
    """``x + value * y * z`` for each x (``torch.addcmul``: one rounding, as torch.optim's
    ``add(.., alpha=)``/``addcmul``); ``zs`` a list of tensors, a number or a 0-d tensor."""
    if not isinstance(zs, list):
        zs = _cast_scalar(zs, xs)[0] if isinstance(zs, torch.Tensor) else None
        if zs is None:
            raise TypeError("_addcmul: zs must be a list of tensors or a tensor")
    if fe:
        return list(torch._foreach_addcmul(xs, ys, zs, value=value))
    return [torch.addcmul(x, y, z, value=value) for x, y, z in zip(xs, ys, zs)]


def _div(xs: list[torch.Tensor], ys: list[torch.Tensor], fe: bool) -> list[torch.Tensor]:
    if fe:
        return list(torch._foreach_div(xs, ys))
    return [x / y for x, y in zip(xs, ys)]


def _sqrt(xs: list[torch.Tensor], fe: bool) -> list[torch.Tensor]:
    if fe:
        return list(torch._foreach_sqrt(xs))
    return [torch.sqrt(x) for x in xs]


def _lerp(xs: list[torch.Tensor], ys: list[torch.Tensor], w: Any, fe: bool) -> list[torch.Tensor]:
    """``x + w * (y - x)`` for each pair (``torch.lerp``, as torch.optim uses)."""
    # The weight must have each leaf's dtype: _foreach_lerp silently returns zeros when
    # given a float64 weight for float32 tensors (torch 2.13).
    ws, _ = _cast_scalar(w, xs)
    if fe:
        return list(torch._foreach_lerp(xs, ys, ws))
    return [torch.lerp(x, y, wi) for x, y, wi in zip(xs, ys, ws)]


def scalar_dtype(device: torch.device) -> torch.dtype:
    """The dtype of hyperparameters and scalar arithmetic: float64 (float32 on MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _device_of(tree_: PyTree) -> torch.device:
    for x in tree.leaves(tree_):
        if isinstance(x, torch.Tensor):
            return x.device
    return torch.device("cpu")


def _as_scalar(value: Any, device: torch.device) -> torch.Tensor:
    """A number or tensor as a 0-d scalar tensor in :func:`scalar_dtype` on ``device``."""
    return torch.as_tensor(value, dtype=scalar_dtype(device), device=device)


# ---------------------------------------------------------------------- hyperparameters

# Allowed ranges for well-known hyperparameter names: (low, high, high_inclusive).
_RANGES: dict[str, tuple[float, float, bool]] = {
    "lr": (0.0, math.inf, False),
    "eps": (0.0, math.inf, False),
    "weight_decay": (0.0, math.inf, False),
    "momentum": (0.0, math.inf, False),
    "max_norm": (0.0, math.inf, False),
    "max_delta": (0.0, math.inf, False),
    "b1": (0.0, 1.0, False),
    "b2": (0.0, 1.0, False),
    "alpha": (0.0, 1.0, True),
    "dampening": (0.0, 1.0, True),
}


def check_hparam(name: str, value: Any) -> None:
    """Raise ``ValueError`` if ``value`` (number or tensor) is outside ``name``'s range.

    Ranges: lr, eps, weight_decay, momentum, max_norm, max_delta >= 0; b1, b2 in [0, 1);
    alpha, dampening in [0, 1]; every value finite.  Value checks are skipped while
    ``torch.compile`` traces (they need the value) and under functorch transforms.
    """
    if callable(value) or torch.compiler.is_compiling():
        return
    if isinstance(value, torch.Tensor):
        if torch._C._functorch.is_functorch_wrapped_tensor(value):
            return
        if not torch.is_floating_point(value):
            raise TypeError(f"hyperparameter {name!r} must be a float tensor, got {value.dtype}")
        vals = value.detach().double().flatten().tolist()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        vals = [float(value)]
    else:
        raise TypeError(
            f"hyperparameter {name!r} must be a number, a float tensor or a schedule, "
            f"got {type(value).__name__}"
        )
    lo, hi, hi_incl = _RANGES.get(name, (-math.inf, math.inf, True))
    for v in vals:
        ok = math.isfinite(v) and lo <= v and (v <= hi if hi_incl else v < hi)
        if not ok:
            interval = f"[{lo}, {hi}{']' if hi_incl else ')'}"
            raise ValueError(f"hyperparameter {name!r} = {v} is outside {interval} (or not finite)")


@tree.struct
class HyperparamsState:
    """A hyperparameter record: ``hparams`` (name -> 0-d tensor) and the inner state.

    ``count`` is the number of updates done (int64, 0-d); ``scheduled`` (static) names the
    hyperparameters driven by a schedule: their value here is the one last used.
    """

    count: torch.Tensor
    hparams: dict[str, torch.Tensor]
    inner_state: Any
    scheduled: tuple[str, ...] = tree.field(static=True)


def inject_hyperparams(
    factory: Callable[..., GradientTransformation], /, **hparams_: Any
) -> GradientTransformation:
    """``factory(**hparams_)`` with the hyperparameters held in the state as 0-d tensors.

    Args:
      factory: builds a ``GradientTransformation`` from keyword hyperparameters; it is
        called again on every update with the 0-d tensors from the state, so it must only
        close over them (no Python branching on their values).
      **hparams_: numbers, tensors, or schedules (``count -> value``: the value used at
        update ``count``, counting from 0, is ``schedule(count)``).

    Returns:
      A transformation whose state is a :class:`HyperparamsState`; read and change the
      values with :func:`hparams` / :func:`set_hparams`.

    Example::

        >>> import torch
        >>> from funrl import optim
        >>> opt = optim.inject_hyperparams(optim.scale, step_size=2.0)
        >>> s = opt.init({"w": torch.zeros(2)})
        >>> opt.update({"w": torch.ones(2)}, optim.set_hparams(s, step_size=3.0))[0]["w"]
        tensor([3., 3.])
    """
    for name, value in hparams_.items():
        check_hparam(name, value)
    names = tuple(hparams_)
    scheduled = tuple(n for n in names if callable(hparams_[n]))

    def current(count: torch.Tensor, stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(stored)
        for n in scheduled:
            out[n] = torch.as_tensor(hparams_[n](count)).to(stored[n].dtype)
        return out

    def init(params: PyTree) -> HyperparamsState:
        device = _device_of(params)
        count = torch.zeros((), dtype=torch.int64, device=device)
        stored = {
            n: _as_scalar(hparams_[n](count) if n in scheduled else hparams_[n], device)
            for n in names
        }
        inner = factory(**stored).init(params)
        return HyperparamsState(count, stored, inner, scheduled)  # type: ignore[call-arg]

    def update(grads: PyTree, state: HyperparamsState, params: PyTree = None) -> Any:
        values = current(state.count, state.hparams)
        updates, inner = factory(**values).update(grads, state.inner_state, params)
        new = HyperparamsState(state.count + 1, values, inner, scheduled)  # type: ignore[call-arg]
        return updates, new

    return GradientTransformation(init, update)


def _is_record(x: Any) -> bool:
    return isinstance(x, HyperparamsState)


def _records(state: PyTree) -> list[HyperparamsState]:
    """Every :class:`HyperparamsState` in ``state``, outer before inner."""
    out: list[HyperparamsState] = []
    for leaf in _pt.tree_leaves(state, is_leaf=_is_record):
        if _is_record(leaf):
            out.append(leaf)
            out.extend(_records(leaf.inner_state))
    return out


def _names(state: PyTree) -> dict[str, int]:
    """Hyperparameter name -> how many records hold it."""
    counts: dict[str, int] = {}
    for r in _records(state):
        for n in r.hparams:
            counts[n] = counts.get(n, 0) + 1
    return counts


def hparams(opt_state: PyTree) -> dict[str, torch.Tensor]:
    """All hyperparameters in ``opt_state`` (through chains), name -> tensor.

    Each value is 0-d for one optimizer state, ``[N]`` for a stacked population.
    Raises ``ValueError`` when two records use the same name (e.g. ``chain(adam, adam)``).
    """
    dup = sorted(n for n, c in _names(opt_state).items() if c > 1)
    if dup:
        raise ValueError(f"hparams: names {dup} appear in more than one hyperparameter record")
    return {n: v for r in _records(opt_state) for n, v in r.hparams.items()}


def set_hparams(opt_state: PyTree, **values: Any) -> PyTree:
    """A copy of ``opt_state`` with hyperparameters replaced by ``values``.

    Values are numbers or tensors broadcastable to the stored shape (0-d, or ``[N]`` for a
    population); they are cast to the stored dtype/device.  Raises ``ValueError`` for an
    unknown or ambiguous name (listing the valid ones), a schedule-driven name, or a
    value outside its range (see :func:`check_hparam`).
    """
    counts = _names(opt_state)
    for name, value in values.items():
        if name not in counts:
            raise ValueError(
                f"set_hparams: unknown hyperparameter {name!r}; valid names: {sorted(counts)}"
            )
        if counts[name] > 1:
            raise ValueError(f"set_hparams: {name!r} is ambiguous ({counts[name]} records)")
        check_hparam(name, value)

    def replace(x: Any) -> Any:
        if not _is_record(x):
            return x
        new = dict(x.hparams)
        for n, v in values.items():
            if n in new:
                if n in x.scheduled:
                    raise ValueError(f"set_hparams: {n!r} is driven by a schedule")
                old = new[n]
                v = torch.as_tensor(v, dtype=old.dtype, device=old.device)
                if torch.broadcast_shapes(v.shape, old.shape) != old.shape:
                    raise ValueError(
                        f"set_hparams: {n!r} has shape {list(v.shape)}, expected one "
                        f"broadcastable to {list(old.shape)}"
                    )
                new[n] = torch.broadcast_to(v, old.shape).clone()
        inner = _pt.tree_map(replace, x.inner_state, is_leaf=_is_record)
        return x.replace(hparams=new, inner_state=inner)

    return _pt.tree_map(replace, opt_state, is_leaf=_is_record)


def _flat(trees: Sequence[PyTree]) -> tuple[list[list[torch.Tensor]], Any]:
    """Flatten trees of the same structure; returns their leaf lists and the spec."""
    first, spec = tree.flatten(trees[0])
    out = [first]
    for t in trees[1:]:
        leaves, s = tree.flatten(t)
        if s != spec:
            raise ValueError(f"tree structure {s} does not match {spec}")
        out.append(leaves)
    return out, spec
