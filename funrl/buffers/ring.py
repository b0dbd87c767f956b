"""Ring replay: a preallocated buffer of transitions and integer counters (see :mod:`funrl.buffers`)."""

from __future__ import annotations

from typing import Any

import torch

from funrl import random as R
from funrl import tree

_I64 = torch.int64


def _concrete(x: torch.Tensor) -> bool:
    """True when ``x``'s values may be read (eager, not inside vmap/grad, not tracing)."""
    if torch.compiler.is_compiling():
        return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)


# ------------------------------------------------------------------------ ring replay


@tree.struct
class ReplayState(tree.Struct):
    """A ring replay buffer.

    Attributes:
      data: pytree of ``[capacity, ...]`` tensors shaped like the example transition.
      pos: 0-d int64, the next slot to write.
      size: 0-d int64, the number of filled slots (saturates at ``capacity``).
    """

    data: Any
    pos: torch.Tensor
    size: torch.Tensor


def capacity_of(state: ReplayState) -> int:
    """The (static) capacity: the leading dim of the data leaves."""
    return int(tree.leaves(state.data)[0].shape[0])


def init(example: Any, capacity: int) -> ReplayState:
    """An empty buffer with ``capacity`` slots shaped like ``example`` (one transition).

    Args:
      example: pytree of tensors without a batch dim (e.g. obs ``[4]``, action ``[]``).
      capacity: number of slots, a positive int.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be a positive int, got {capacity!r}")
    flat = tree.leaves(example)
    if not flat or not all(isinstance(x, torch.Tensor) for x in flat):
        raise TypeError("example must be a non-empty pytree of tensors")
    data = tree.map(
        lambda x: torch.zeros((capacity, *x.shape), dtype=x.dtype, device=x.device), example
    )
    dev = flat[0].device
    zero = torch.zeros((), dtype=_I64, device=dev)
    return ReplayState(data, zero, zero.clone())


def _check_batch(data: Any, batch: Any, name: str = "batch") -> int:
    """Structure/shape/dtype checks of ``batch`` against buffer ``data``; returns B."""
    fd, sd = tree.flatten(data)
    fb, sb = tree.flatten(batch)
    if sd != sb:
        raise TypeError(f"{name} has tree structure {sb}, expected the buffer's {sd}")
    b = None
    paths = [
        torch.utils._pytree.keystr(p)
        for p, _ in torch.utils._pytree.tree_flatten_with_path(data)[0]
    ]
    for path, d, x in zip(paths, fd, fb):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}{path} must be a tensor, got {type(x).__name__}")
        if x.dtype != d.dtype:
            raise TypeError(f"{name}{path} has dtype {x.dtype}, expected {d.dtype}")
        if x.ndim != d.ndim or tuple(x.shape[1:]) != tuple(d.shape[1:]):
            raise ValueError(
                f"{name}{path} has shape {tuple(x.shape)}, expected [B, *{tuple(d.shape[1:])}]"
            )
        if b is None:
            b = int(x.shape[0])
        elif int(x.shape[0]) != b:
            raise ValueError(f"{name}{path} has leading dim {x.shape[0]}, other leaves have {b}")
    assert b is not None
    cap = int(fd[0].shape[0])
    if b > cap:
        raise ValueError(f"{name} has {b} rows, more than the buffer's capacity {cap}")
    return b


def _write_index(pos: torch.Tensor, b: int, cap: int, mask: torch.Tensor | None) -> tuple:
    """Slots for the B rows and how many are written.

    Unmasked: ``(pos + arange(B)) % cap``.  Masked: valid rows take ranks ``0..n-1`` in
    order and invalid rows the ranks after them, so all B slots are distinct.
    """
    ar = torch.arange(b, dtype=_I64, device=pos.device)
    if mask is None:
        return (pos + ar) % cap, torch.full((), b, dtype=_I64, device=pos.device)
    m = mask.to(_I64)
    n = m.sum()
    rank = torch.where(mask, torch.cumsum(m, 0) - 1, n + torch.cumsum(1 - m, 0) - 1)
    return (pos + rank) % cap, n


def _use_inplace(leaf: torch.Tensor) -> bool:
    """In-place is safe when compiling (functionalised; a vmapped population's buffers are
    batched like the rows) and eagerly on plain tensors, not on eager functorch wrappers."""
    if torch.compiler.is_compiling():
        return True
    return not torch._C._functorch.is_functorch_wrapped_tensor(leaf)


def _put(
    buf: torch.Tensor, idx: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None, donate: bool
) -> torch.Tensor:
    if mask is not None:  # masked rows rewrite the value already there
        keep = mask.reshape(mask.shape + (1,) * (x.ndim - 1))
        x = torch.where(keep, x, buf[idx])
    if donate and _use_inplace(buf):
        return buf.index_put_((idx,), x)
    return buf.index_put((idx,), x)


def add(
    state: ReplayState, batch: Any, *, mask: torch.Tensor | None = None, donate: bool = False
) -> ReplayState:
    """Write the ``B`` rows of ``batch`` at slots ``(pos + arange(B)) % capacity``.

    Args:
      state: the buffer.
      batch: pytree like the example transition with a leading dim ``B <= capacity``.
      mask: optional ``[B]`` bool; only rows where it is True are written (in order,
        contiguously), ``pos``/``size`` advance by their count.
      donate: the caller promises never to use ``state`` again, so its tensors may be
        written in place (``index_put_``: no copy of the whole buffer, which costs ~30 ms
        per add at capacity 1e6, see benchmarks/bench_buffers.py).  Done eagerly on plain
        tensors and under ``torch.compile`` (where ``vmap`` needs the buffer batched like
        ``batch``, as in a population); eagerly inside ``vmap``/``grad`` it falls back to
        the out-of-place write.  Default False: ``state`` stays untouched.

    Returns:
      the new state; ``pos' = (pos + n) % capacity``, ``size' = min(size + n, capacity)``.
    """
    b = _check_batch(state.data, batch)
    cap = capacity_of(state)
    if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (b,)):
        raise ValueError(
            f"mask must be a bool tensor of shape [{b}], got {mask.dtype}{list(mask.shape)}"
        )
    idx, n = _write_index(state.pos, b, cap, mask)
    data = tree.map(lambda buf, x: _put(buf, idx, x, mask, donate), state.data, batch)
    size = torch.clamp(state.size + n, max=cap)
    return ReplayState(data, (state.pos + n) % cap, size)


def can_sample(state: ReplayState, batch_size: int) -> torch.Tensor:
    """0-d bool tensor: at least ``batch_size`` slots are filled."""
    return state.size >= batch_size


def _check_sample(size: torch.Tensor, batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if _concrete(size):
        n = int(size.min()) if size.ndim else int(size)
        if n == 0:
            raise ValueError("cannot sample from an empty buffer (size 0)")
        if n < batch_size:
            raise ValueError(f"batch_size {batch_size} exceeds the {n} filled slots of the buffer")


def sample(state: ReplayState, key: torch.Tensor, batch_size: int) -> Any:
    """``batch_size`` transitions drawn uniformly (with replacement) from the filled slots.

    ``idx ~ randint(key, 0, size, [batch_size])``; returns the data pytree indexed by
    ``idx`` (leaves ``[batch_size, ...]``).  Raises ``ValueError`` eagerly when fewer than
    ``batch_size`` slots are filled (not checked under vmap/compile: an empty buffer
    then yields slot 0).
    """
    _check_sample(state.size, batch_size)
    idx = R.randint(key, 0, state.size, (batch_size,))
    return tree.map(lambda x: x[idx], state.data)
