"""Entry checks shared by the loss functions (private).

Shape and dtype checks always run (they are free under ``torch.compile``). Checks on
tensor *values* (``gamma`` in ``[0, 1]``, ``clip_eps >= 0``, ...) run only when the value
is concrete: they are skipped while ``torch.compile`` traces (``torch.compiler.is_compiling()``)
and for tensors batched by ``torch.func.vmap``, where reading a value is impossible.
Python floats are always checked.
"""

from __future__ import annotations

import torch
from torch import Tensor

from funrl.tree import is_concrete


def check_float(x: Tensor, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_int(x: Tensor, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` is an integer tensor (action indices)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of action indices, got dtype {x.dtype}")


def check_shape(x: Tensor, name: str, expected: tuple[int | str, ...]) -> None:
    """Raise ``ValueError`` unless ``x.shape`` matches ``expected``.

    ``expected`` holds ints (exact sizes) or strings (symbolic names, any size), e.g.
    ``("N", "A")``; only the rank and the integer entries are checked here.
    """
    ok = x.ndim == len(expected) and all(
        not isinstance(e, int) or e == s for e, s in zip(expected, x.shape)
    )
    if not ok:
        shape = "[" + ", ".join(str(e) for e in expected) + "]"
        raise ValueError(f"{name} must have shape {shape}, got {list(x.shape)}")


def check_size(x: Tensor, name: str, dim: int, size: int, ref: str) -> None:
    """Raise ``ValueError`` unless ``x.shape[dim] == size`` (the size of ``ref``)."""
    if x.shape[dim] != size:
        raise ValueError(
            f"{name} has size {x.shape[dim]} in dim {dim} (shape {list(x.shape)}), "
            f"expected {size} to match {ref}"
        )


def hparam(
    x: Tensor | float,
    name: str,
    like: Tensor,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> Tensor:
    """Return hyperparameter ``x`` as a 0-d tensor on ``like``'s device, checking its range.

    Floats become tensors of ``like.dtype``. ``low``/``high`` bound the value (inclusive;
    ``low_open=True`` makes the lower bound strict); tensor values are checked only when
    concrete (see :func:`is_concrete`).
    """
    if not isinstance(x, Tensor):
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise TypeError(f"{name} must be a float or a 0-d tensor, got {type(x).__name__}")
        _check_range(float(x), name, low, high, low_open)
        return torch.tensor(float(x), dtype=like.dtype, device=like.device)
    if x.ndim != 0:
        raise ValueError(
            f"{name} must be a 0-d tensor (a scalar hyperparameter), got shape {list(x.shape)}; "
            "vmap over a batch of hyperparameters instead"
        )
    if not x.is_floating_point():
        x = x.to(like.dtype)
    if (low is not None or high is not None) and is_concrete(x):
        _check_range(float(x.detach()), name, low, high, low_open)
    return x


def _check_range(
    v: float, name: str, low: float | None, high: float | None, low_open: bool
) -> None:
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and v > high
    if bad_low or bad_high or v != v:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open else '['}{lo}, {hi}]"
        raise ValueError(f"{name} must lie in {interval}, got {v:g}")


def check_actions(a: Tensor, name: str, num_actions: int) -> None:
    """Raise ``ValueError`` if a concrete action index lies outside ``[0, num_actions)``."""
    if a.numel() and is_concrete(a):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= num_actions:
            raise ValueError(
                f"{name} holds action indices in [{lo}, {hi}], expected [0, {num_actions})"
            )


def not_done(terminated: Tensor, name: str, like: Tensor) -> Tensor:
    """``1 - terminated`` as ``like``'s dtype (``terminated`` is bool or 0/1 float)."""
    if not isinstance(terminated, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(terminated).__name__}")
    return 1.0 - terminated.to(like.dtype)


def check_vectors(*named: tuple[str, Tensor]) -> int:
    """Check each ``(name, x)`` is a float tensor of shape ``[N]`` with a shared ``N``.

    Returns ``N``. Raises ``TypeError``/``ValueError`` naming the first bad argument.
    """
    first = named[0][0]
    n = -1
    for name, x in named:
        check_float(x, name)
        check_shape(x, name, ("N",))
        if n < 0:
            n = x.shape[0]
        check_size(x, name, 0, n, first)
    return n
