"""Pytree helpers: every piece of funrl state is a pytree of tensors.

A pytree is any nesting of tuples, lists, dicts, NamedTuples and ``@struct`` classes
with tensors (or other leaves) at the bottom.  These helpers are thin, fast wrappers over
``torch.utils._pytree`` (the registry ``torch.func`` and ``torch.compile`` read), which
uses optree's C++ implementation underneath when it is installed.

Example::

    >>> import torch, funrl.tree as T
    >>> @T.struct
    ... class State:
    ...     w: torch.Tensor
    ...     step: torch.Tensor
    >>> s = State(torch.zeros(3), torch.tensor(0))
    >>> s2 = s.replace(step=s.step + 1)
    >>> int(s2.step), T.map(lambda x: x + 1, s).w.tolist()
    (1, [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch._C._functorch as _functorch
import torch.utils._pytree as _pt
from typing_extensions import dataclass_transform

__all__ = [
    "Struct",
    "add",
    "all_equal",
    "allclose",
    "cast",
    "contiguous",
    "field",
    "flatten",
    "full_like",
    "global_norm",
    "index",
    "is_concrete",
    "is_row_major",
    "leaves",
    "map",
    "num_elements",
    "ones_like",
    "scale",
    "stack",
    "struct",
    "structure",
    "sub",
    "unflatten",
    "unstack",
    "where",
    "zeros_like",
]

PyTree = Any
T = TypeVar("T")

_STATIC = "funrl_static"


S = TypeVar("S", bound="Struct")


class Struct:
    """Optional base class for ``@struct`` classes: tells type checkers about ``replace``.

    ``@struct`` adds ``replace`` either way; inheriting from ``Struct`` only makes it
    visible to mypy/pyright.
    """

    def replace(self: S, **changes: Any) -> S:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def field(*, static: bool = False, **kwargs: Any) -> Any:
    """A dataclass field for ``@struct``; ``static=True`` keeps it out of the pytree.

    Static fields are part of the tree's *structure* (compared, hashed, burned into a
    compiled graph), not leaves: use them for Python ints, strings and callables that do
    not change during training.
    """
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[_STATIC] = static
    return dataclasses.field(metadata=metadata, **kwargs)


@dataclass_transform(frozen_default=True, field_specifiers=(field, dataclasses.field))
def struct(cls: type[T]) -> type[T]:
    """Turn ``cls`` into a frozen dataclass registered as a pytree, with ``.replace``.

    Fields are leaves (or subtrees) unless declared with ``field(static=True)``.  The
    class works with ``torch.func.vmap``/``grad``, ``torch.compile`` and every helper here.
    """
    if not isinstance(cls, type):
        raise TypeError(f"struct expects a class, got {type(cls).__name__}")
    dc = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(dc)  # type: ignore[arg-type]
    dynamic = tuple(f.name for f in fields if not f.metadata.get(_STATIC, False))
    static = tuple(f.name for f in fields if f.metadata.get(_STATIC, False))

    def flatten(obj: Any) -> tuple[list[Any], Any]:
        return [getattr(obj, n) for n in dynamic], tuple(getattr(obj, n) for n in static)

    def unflatten(values: Any, context: Any) -> Any:
        obj = object.__new__(dc)
        for n, v in zip(dynamic, values):
            object.__setattr__(obj, n, v)
        for n, v in zip(static, context):
            object.__setattr__(obj, n, v)
        return obj

    def flatten_with_keys(obj: Any) -> tuple[list[tuple[Any, Any]], Any]:
        children, ctx = flatten(obj)
        return [(_pt.GetAttrKey(n), c) for n, c in zip(dynamic, children)], ctx

    _pt.register_pytree_node(
        dc,
        flatten,
        unflatten,
        serialized_type_name=f"{dc.__module__}.{dc.__qualname__}",
        flatten_with_keys_fn=flatten_with_keys,
    )
    dc.replace = _make_replace(dc, dynamic + static)  # type: ignore[attr-defined]
    return dc


def _make_replace(dc: type, names: tuple[str, ...]) -> Callable[..., Any]:
    """``dataclasses.replace`` for ``dc`` over field names fixed at decoration time.

    ``dataclasses.replace`` looks every field up in the class's ``__dataclass_fields__``
    on each call; under ``torch.compile`` that became dozens of Python guards re-checked on
    every call of a compiled unit.  Same
    semantics: unknown names raise ``TypeError`` and ``__post_init__`` still runs.
    """
    known = frozenset(names)
    post_init = getattr(dc, "__post_init__", None)

    def replace(self: Any, **changes: Any) -> Any:
        for n in changes:
            if n not in known:
                raise TypeError(f"{dc.__name__}.replace() got an unknown field {n!r}")
        obj: Any = object.__new__(dc)
        for n in names:
            object.__setattr__(obj, n, changes[n] if n in changes else getattr(self, n))
        if post_init is not None:
            obj.__post_init__()
        return obj

    replace.__doc__ = Struct.replace.__doc__
    return replace


def map(fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    """``fn`` applied leaf by leaf over ``tree`` and trees of the same structure."""
    return _pt.tree_map(fn, tree, *rest)


def leaves(tree: PyTree) -> list[Any]:
    """The leaves of ``tree`` in a fixed (flatten) order."""
    return _pt.tree_leaves(tree)


def structure(tree: PyTree) -> Any:
    """The tree's structure (a ``TreeSpec``), comparable with ``==``."""
    return _pt.tree_structure(tree)


def flatten(tree: PyTree) -> tuple[list[Any], Any]:
    """``(leaves, treespec)``; invert with :func:`unflatten`."""
    return _pt.tree_flatten(tree)


def unflatten(leaves_: Sequence[Any], spec: Any) -> PyTree:
    """Rebuild a tree from its leaves and the spec :func:`flatten` returned."""
    return _pt.tree_unflatten(list(leaves_), spec)


def stack(trees: Sequence[PyTree], dim: int = 0) -> PyTree:
    """Stack N trees of equal structure into one tree whose leaves gain dim ``dim`` of size N.

    This is how a population or an ensemble is built from single members.
    """
    if len(trees) == 0:
        raise ValueError("stack needs at least one tree, got an empty sequence")
    specs = [structure(t) for t in trees]
    for i, s in enumerate(specs[1:], start=1):
        if s != specs[0]:
            raise ValueError(f"stack: tree {i} has structure {s}, expected {specs[0]}")
    flat = [leaves(t) for t in trees]
    stacked = [torch.stack([torch.as_tensor(f[j]) for f in flat], dim) for j in range(len(flat[0]))]
    return unflatten(stacked, specs[0])


def unstack(tree: PyTree) -> list[PyTree]:
    """Split a tree along the leading dim of its leaves; inverse of :func:`stack`."""
    flat, spec = flatten(tree)
    if not flat:
        raise ValueError("unstack needs a tree with at least one leaf")
    n = flat[0].shape[0]
    for x in flat:
        if x.ndim == 0 or x.shape[0] != n:
            raise ValueError(
                f"unstack: all leaves need the same leading dim {n}, got shape {tuple(x.shape)}"
            )
    return [unflatten([x[i] for x in flat], spec) for i in range(n)]


def index(tree: PyTree, idx: Any) -> PyTree:
    """``leaf[idx]`` for every leaf: select members or slice the leading dim."""
    return map(lambda x: x[idx], tree)


def _expand_to(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))


def is_concrete(x: torch.Tensor) -> bool:
    """True when ``x``'s values can be read: eager, not traced by ``torch.compile``, not a
    ``vmap``-batched tensor.  Eager checks of values (ranges, sizes) run only then.

    >>> import torch
    >>> seen = []
    >>> _ = torch.func.vmap(lambda x: seen.append(is_concrete(x)) or x)(torch.zeros(2))
    >>> is_concrete(torch.zeros(2)), seen
    (True, [False])
    """
    if torch.compiler.is_compiling():
        return False
    while _functorch.is_functorch_wrapped_tensor(x):
        if _functorch.is_batchedtensor(x):
            return False
        x = _functorch.get_unwrapped(x)
    return True


def is_row_major(x: torch.Tensor) -> bool:
    """True when ``x``'s strides are the row-major ones of its shape, size-1 dims included.

    Stricter than ``Tensor.is_contiguous`` (which ignores the strides of size-1 dims):
    compiled functions guard on exact input strides.
    """
    expected, step = [], 1
    for n in reversed(x.shape):
        expected.append(step)
        step *= max(int(n), 1)
    return tuple(x.stride()) == tuple(reversed(expected))


def contiguous(tree: PyTree) -> PyTree:
    """Every tensor leaf in row-major layout (:func:`is_row_major`; the same tensor where
    it already is, else a row-major copy) and its own: a tensor object that appears as
    two leaves gets a copy at the second.  Non-tensor leaves pass through.

    Compiled functions guard on input strides and on which inputs are the same object,
    and funrl's compiled units return row-major outputs (``funrl.algos.units``): state
    carried between calls in this form never compiles a unit a second time.  (A reset
    that sets two fields to one tensor, as MinAtar Breakout's ball and trail positions,
    otherwise compiles the first step for the alias and the next one again without it.)
    """
    seen: set[int] = set()

    def fix(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        if id(x) in seen:
            return x.clone(memory_format=torch.contiguous_format)
        seen.add(id(x))
        return x if is_row_major(x) else x.clone(memory_format=torch.contiguous_format)

    return _pt.tree_map(fix, tree)


def where(mask: torch.Tensor, a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``torch.where(mask, a, b)``; ``mask`` broadcasts over *leading* dims.

    A mask of shape ``[B]`` selects whole members of leaves shaped ``[B, ...]`` (this is
    how auto-reset and PBT pick between two state trees).
    """
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"where: mask must be a bool tensor, got dtype {mask.dtype}")

    def pick(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.where(_expand_to(mask, x), x, y)

    return map(pick, a, b)


def zeros_like(tree: PyTree) -> PyTree:
    """A tree of zeros shaped like ``tree``."""
    return map(torch.zeros_like, tree)


def ones_like(tree: PyTree) -> PyTree:
    """A tree of ones shaped like ``tree``."""
    return map(torch.ones_like, tree)


def full_like(tree: PyTree, value: Any) -> PyTree:
    """A tree shaped like ``tree`` filled with ``value``."""
    return map(lambda x: torch.full_like(x, value), tree)


def add(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a + b``."""
    return map(torch.add, a, b)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a - b``."""
    return map(torch.sub, a, b)


def scale(tree: PyTree, s: Any) -> PyTree:
    """Leafwise ``s * leaf`` (``s`` a number or a broadcastable tensor)."""
    return map(lambda x: x * s, tree)


def cast(tree: PyTree, dtype: torch.dtype) -> PyTree:
    """Floating-point leaves cast to ``dtype``; integer and bool leaves unchanged."""
    return map(lambda x: x.to(dtype) if torch.is_floating_point(x) else x, tree)


def global_norm(tree: PyTree) -> torch.Tensor:
    """``sqrt(sum of squares of all leaves)``, a 0-d tensor (as in optax/clip_grad_norm_)."""
    flat = leaves(tree)
    if not flat:
        return torch.tensor(0.0)
    return torch.sqrt(torch.stack([torch.sum(torch.square(x)) for x in flat]).sum())


def num_elements(tree: PyTree) -> int:
    """Total number of scalar entries across the leaves."""
    return sum(int(x.numel()) for x in leaves(tree))


def _compare(a: PyTree, b: PyTree, fn: Callable[[torch.Tensor, torch.Tensor], bool]) -> bool:
    fa, sa = flatten(a)
    fb, sb = flatten(b)
    if sa != sb:
        return False

    def same(x: Any, y: Any) -> bool:
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            return x.shape == y.shape and x.dtype == y.dtype and fn(x, y)
        return type(x) is type(y) and bool(x == y)

    return all(same(x, y) for x, y in zip(fa, fb, strict=True))


def all_equal(a: PyTree, b: PyTree) -> bool:
    """True when both trees have the same structure and bit-identical leaves."""
    return _compare(a, b, lambda x, y: bool(torch.equal(x, y)))


def allclose(a: PyTree, b: PyTree, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """True when both trees have the same structure and close leaves (NaNs equal)."""
    return _compare(a, b, lambda x, y: torch.allclose(x, y, rtol, atol, equal_nan=True))
