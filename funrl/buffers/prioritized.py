"""Prioritized replay on a sum-tree (see :mod:`funrl.buffers`)."""

from __future__ import annotations

from typing import Any

import torch

from funrl import random as R
from funrl import tree
from funrl.buffers.ring import (
    _I64,
    ReplayState,
    _check_batch,
    _check_sample,
    _concrete,
    _put,
    _use_inplace,
    _write_index,
    add,
    capacity_of,
    init,
)

# ------------------------------------------------------------------ prioritized replay


@tree.struct
class PrioritizedState(tree.Struct):
    """Prioritized replay (Schaul et al., 2016): a ring buffer plus a sum-tree of priorities.

    The sum-tree is one flat heap ``tree`` of ``2 P`` float64 entries (``P``: the least
    power of two ``>= capacity``): node 1 is the root, node ``i`` has children ``2i`` and
    ``2i + 1``, and leaf ``P + j`` holds ``p_j^alpha`` for slot ``j`` (0 for unfilled slots,
    zero priorities and the padding).  Writes and priority updates walk ``log2 P`` levels
    for the ``B`` touched slots; sampling walks down the same levels for each draw:
    O(B log capacity) per call, in place with ``donate`` (see :func:`prioritized_add`).

    Attributes:
      data, pos, size: as :class:`ReplayState`.
      priorities: ``[capacity]`` float32, the raw priorities (0 for unfilled slots).
      tree: ``[2 P]`` float64 sum-tree over ``priorities ** alpha``.
      alpha: 0-d float32, the priority exponent fixed at :func:`prioritized_init`
        (a tensor, so a population may hold one per member).
      max_priority: 0-d float32, the largest priority ever set (new items get it).
    """

    data: Any
    pos: torch.Tensor
    size: torch.Tensor
    priorities: torch.Tensor
    tree: torch.Tensor
    alpha: torch.Tensor
    max_priority: torch.Tensor

    @property
    def replay(self) -> ReplayState:
        return ReplayState(self.data, self.pos, self.size)


def _depth(state: PrioritizedState) -> int:
    """``log2 P``: the number of levels above the leaves (static: from the tree's shape)."""
    return int(state.tree.shape[-1]).bit_length() - 2


def prioritized_init(
    example: Any, capacity: int, alpha: float | torch.Tensor = 0.6
) -> PrioritizedState:
    """An empty prioritized buffer (``max_priority`` starts at 1).

    Args:
      example, capacity: as :func:`init`.
      alpha: priority exponent ``>= 0`` (0: uniform over non-zero priorities), a float
        or 0-d tensor; fixed for the buffer's life (the sum-tree stores ``p^alpha``).
    """
    s = init(example, capacity)
    dev = s.pos.device
    # A copy: state never aliases the caller's tensor (a compiled unit guards on aliasing).
    alpha = torch.as_tensor(alpha, dtype=torch.float32, device=dev).clone()
    if alpha.ndim != 0:
        raise ValueError(f"alpha must be a float or 0-d tensor, got shape {list(alpha.shape)}")
    if _concrete(alpha) and not bool(alpha >= 0):
        raise ValueError(f"alpha must be >= 0, got {float(alpha)}")
    leaves = 1 << (capacity - 1).bit_length()
    return PrioritizedState(
        s.data,
        s.pos,
        s.size,
        torch.zeros(capacity, device=dev),
        torch.zeros(2 * leaves, dtype=torch.float64, device=dev),
        alpha,
        torch.ones((), device=dev),
    )


def _check_priorities(p: torch.Tensor, n: int, name: str = "priorities") -> torch.Tensor:
    if not isinstance(p, torch.Tensor) or not p.dtype.is_floating_point:
        raise TypeError(f"{name} must be a float tensor, got {type(p).__name__}")
    if tuple(p.shape) != (n,):
        raise ValueError(f"{name} must have shape [{n}], got {list(p.shape)}")
    if _concrete(p) and bool(((p < 0) | torch.isnan(p)).any()):
        raise ValueError(f"{name} must be >= 0 and not NaN")
    return p.to(torch.float32)


def _set_leaves(
    state: PrioritizedState, idx: torch.Tensor, raw: torch.Tensor, donate: bool
) -> torch.Tensor:
    """The sum-tree with slots ``idx`` set to ``raw^alpha`` and their ancestors re-summed.

    Each level recomputes the touched parents from both children, so duplicate indices
    and float rounding never leave a parent out of step with its children.
    """
    t = state.tree
    inplace = _use_inplace(t)
    if inplace and not donate:
        t = t.clone()
    put = (
        (lambda t, i, v: t.index_put_((i,), v))
        if inplace
        else (lambda t, i, v: t.index_put((i,), v))
    )
    raw = raw.to(torch.float64)
    leaf = torch.where(raw > 0, raw ** state.alpha.to(torch.float64), 0.0)
    node = idx + (t.shape[-1] // 2)
    t = put(t, node, leaf)
    for _ in range(_depth(state)):
        node = node // 2
        t = put(t, node, t[2 * node] + t[2 * node + 1])
    return t


def prioritized_add(
    state: PrioritizedState,
    batch: Any,
    priorities: torch.Tensor | None = None,
    *,
    mask: torch.Tensor | None = None,
    donate: bool = False,
) -> PrioritizedState:
    """:func:`add` for prioritized replay; new items get ``priorities`` ``[B]`` or the max.

    ``donate=True`` also updates the sum-tree in place (as :func:`add` does the data).
    """
    b = _check_batch(state.data, batch)
    if priorities is None:
        priorities = state.max_priority.expand(b)
    else:
        priorities = _check_priorities(priorities, b)
    cap = capacity_of(state.replay)
    new = add(state.replay, batch, mask=mask, donate=donate)
    idx, _ = _write_index(state.pos, b, cap, mask)
    pr = _put(state.priorities, idx, priorities, mask, donate)
    t = _set_leaves(state, idx, pr[idx], donate)  # masked rows re-set their old value
    if mask is not None:
        priorities = torch.where(mask, priorities, 0.0)
    mx = torch.maximum(state.max_priority, priorities.max())
    return state.replace(
        data=new.data, pos=new.pos, size=new.size, priorities=pr, tree=t, max_priority=mx
    )


def prioritized_sample(
    state: PrioritizedState,
    key: torch.Tensor,
    batch_size: int,
    beta: float | torch.Tensor,
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Draw ``batch_size`` slots with ``P(i) = p_i^alpha / sum_j p_j^alpha`` over filled j.

    Returns ``(batch, indices [batch_size] int64, weights [batch_size] float32)`` with
    importance weights ``w_i = (N * P(i))^-beta / max_batch w`` (``N = size``; normalised
    by the largest weight in the batch, as in the paper).  ``beta`` is a float or 0-d
    tensor (vmappable).  Slots with priority 0 are never drawn.

    Each draw is ``u ~ U[0, total)`` walked down the sum-tree: at every node go right
    when ``u`` is at least the left child's sum (subtracting it) and the right child holds
    mass, so rounding can never end on an empty leaf.  Value checks as :func:`sample`.
    """
    _check_sample(state.size, batch_size)
    t = state.tree
    total = t[1]
    u = R.uniform(key, (batch_size,), dtype=torch.float64) * total
    node = torch.ones(batch_size, dtype=_I64, device=t.device)
    for _ in range(_depth(state)):
        left, right = t[2 * node], t[2 * node + 1]
        go_right = (u >= left) & (right > 0)
        u = torch.where(go_right, u - left, u)
        node = 2 * node + go_right.to(_I64)
    idx = torch.clamp(node - t.shape[-1] // 2, max=capacity_of(state.replay) - 1)
    prob = t[node] / torch.clamp(total, min=torch.finfo(torch.float64).tiny)
    beta = torch.as_tensor(beta, dtype=torch.float64, device=t.device)
    w = torch.where(prob > 0, (state.size.to(torch.float64) * prob) ** -beta, 0.0)
    w = (w / torch.clamp(w.max(), min=torch.finfo(torch.float64).tiny)).to(torch.float32)
    return tree.map(lambda x: x[idx], state.data), idx, w


def update_priorities(
    state: PrioritizedState,
    indices: torch.Tensor,
    priorities: torch.Tensor,
    *,
    donate: bool = False,
) -> PrioritizedState:
    """Set ``priorities[indices]`` (``[B]`` each) and raise ``max_priority`` accordingly.

    Duplicate indices keep one of the given values (unspecified which, as index_put); the
    sum-tree always agrees with the kept one.  ``donate`` as in :func:`add`.
    """
    if not isinstance(indices, torch.Tensor) or indices.dtype != _I64 or indices.ndim != 1:
        raise TypeError("indices must be a 1-d int64 tensor (from prioritized_sample)")
    p = _check_priorities(priorities, int(indices.shape[0]))
    pr = _put(state.priorities, indices, p, None, donate)
    t = _set_leaves(state, indices, pr[indices], donate)
    return state.replace(
        priorities=pr, tree=t, max_priority=torch.maximum(state.max_priority, p.max())
    )
