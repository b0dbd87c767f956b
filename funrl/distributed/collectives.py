"""Collectives on pytrees, and how a population is sharded over ranks.

Leaves are packed into one ``[rows, k]`` buffer per dtype (bool travels as uint8), so a
whole TrainState moves in a few collectives whatever its number of leaves.  Without a
process group (a world of one) every collective here returns its input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist

from funrl import optim, tree
from funrl.distributed.group import rank, world_size

__all__ = [
    "all_reduce_mean",
    "allreduce_grads",
    "any_rank",
    "broadcast",
    "gather",
    "pack_rows",
    "shard",
    "shard_bounds",
    "tensor_leaves",
    "unpack_rows",
]


# ---- shards ------------------------------------------------------------------------------


def shard_bounds(size: int, rank_: int | None = None, world: int | None = None) -> tuple[int, int]:
    """``(start, stop)`` of ``rank_``'s contiguous shard of ``size`` members over ``world`` ranks.

    Shards differ by at most one member: the first ``size % world`` ranks get
    ``size // world + 1``.  Every rank needs at least one member (``size >= world``).

    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    if w < 1 or not 0 <= r < w:
        raise ValueError(f"shard_bounds: need 0 <= rank < world, got rank {r}, world {w}")
    if size < w:
        raise ValueError(
            f"shard_bounds: population size {size} < world size {w}; every rank needs a member"
        )
    base, extra = divmod(size, w)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def shard(population: Any, rank_: int | None = None, world: int | None = None) -> Any:
    """This rank's contiguous slice (:func:`shard_bounds`) of every leaf's leading dim."""
    leaves = tree.leaves(population)
    if not leaves:
        return population
    start, stop = shard_bounds(int(leaves[0].shape[0]), rank_, world)
    return tree.map(lambda x: x[start:stop], population)


# ---- collectives on pytrees -------------------------------------------------------------------
# Leaves are packed into one [rows, k] buffer per dtype (bool travels as uint8), so a whole
# TrainState moves in a few collectives whatever its number of leaves.


def _wire(dtype: torch.dtype) -> torch.dtype:
    return torch.uint8 if dtype == torch.bool else dtype


def _groups(leaves: Sequence[torch.Tensor]) -> dict[torch.dtype, list[int]]:
    out: dict[torch.dtype, list[int]] = {}
    for i, x in enumerate(leaves):
        out.setdefault(_wire(x.dtype), []).append(i)
    return out


def pack_rows(leaves: Sequence[torch.Tensor], rows: int) -> list[torch.Tensor]:
    """Leaves ``[rows, ...]`` -> one ``[rows, k]`` buffer per wire dtype."""
    return [
        torch.cat([leaves[i].reshape(rows, math.prod(leaves[i].shape[1:])).to(dt) for i in idx], 1)
        for dt, idx in _groups(leaves).items()
    ]


def unpack_rows(bufs: Sequence[torch.Tensor], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Invert :func:`pack_rows`: leaves shaped like ``like`` but with the buffers' row count."""
    out: list[torch.Tensor] = list(like)
    for buf, idx in zip(bufs, _groups(like).values()):
        widths = [math.prod(like[i].shape[1:]) for i in idx]
        for i, part in zip(idx, torch.split(buf, widths, dim=1)):
            # contiguous: states that come off the wire go back into compiled units
            out[i] = part.reshape(buf.shape[0], *like[i].shape[1:]).to(like[i].dtype).contiguous()
    return out


def tensor_leaves(
    t: Any, name: str
) -> tuple[list[torch.Tensor], Callable[[Sequence[torch.Tensor]], Any]]:
    """``(tensors, rebuild)``: the tensor leaves of ``t`` and ``rebuild(new_tensors) -> tree``.

    ``None`` leaves (an absent optional state, e.g. RMSprop's ``mu``) stay in place and
    never travel; any other non-tensor leaf raises ``TypeError`` naming ``name``.
    """
    leaves, spec = tree.flatten(t)
    for x in leaves:
        if x is not None and not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: every leaf must be a tensor, got {type(x).__name__}")
    where = [i for i, x in enumerate(leaves) if x is not None]

    def rebuild(tensors: Sequence[torch.Tensor]) -> Any:
        out = list(leaves)
        for i, x in zip(where, tensors):
            out[i] = x
        return tree.unflatten(out, spec)

    return [leaves[i] for i in where], rebuild


def gather(shard_: Any, size: int, dst: int | None = None) -> Any:
    """The whole population from every rank's contiguous shard (leaves ``[n_rank, ...]``).

    Args:
      shard_: this rank's shard; rank ``r`` holds members ``shard_bounds(size, r)``.
      size: the population size ``P``.
      dst: ``None``: every rank gets the result (all-gather); an int: only that rank does
        (gather), the others get ``None``.
    Returns leaves ``[P, ...]`` in member order.  A world of one returns ``shard_``.
    """
    w = world_size()
    if w == 1:
        return shard_
    leaves, rebuild = tensor_leaves(shard_, "gather")
    counts = [b - a for a, b in (shard_bounds(size, r, w) for r in range(w))]
    n, m = counts[rank()], max(counts)
    for x in leaves:
        if x.ndim == 0 or x.shape[0] != n:
            raise ValueError(
                f"gather: rank {rank()} holds {n} of {size} members, got a leaf of shape {tuple(x.shape)}"
            )
    out = []
    for buf in pack_rows(leaves, n):
        padded = torch.cat([buf, buf.new_zeros(m - n, buf.shape[1])])
        parts: list[torch.Tensor] | None = [torch.zeros_like(padded) for _ in range(w)]
        if dst is None:
            dist.all_gather(parts, padded)  # type: ignore[arg-type]
        else:
            parts = parts if rank() == dst else None
            dist.gather(padded, parts, dst=dst)
        if parts is not None:
            out.append(torch.cat([p[:c] for p, c in zip(parts, counts)]))
    if dst is not None and rank() != dst:
        return None
    return rebuild(unpack_rows(out, leaves))


def broadcast(t: Any, src: int = 0) -> Any:
    """Every rank gets rank ``src``'s ``t`` (same structure, shapes and dtypes everywhere)."""
    if world_size() == 1:
        return t
    leaves, rebuild = tensor_leaves(t, "broadcast")
    rows = [x.reshape(1, *x.shape) for x in leaves]
    bufs = pack_rows(rows, 1)
    for b in bufs:
        dist.broadcast(b, src=src)
    return rebuild([x[0] for x in unpack_rows(bufs, rows)])


def all_reduce_mean(t: Any, group: Any = None) -> Any:
    """The mean of ``t`` over ranks, one out-of-place all-reduce per dtype.

    Uses ``torch.distributed._functional_collectives`` (traceable: works inside
    ``torch.compile(fullgraph=True)``; not under ``vmap``).  A world of one returns ``t``.
    """
    if not dist.is_initialized() or dist.get_world_size(group) == 1:
        return t
    import torch.distributed._functional_collectives as fc

    leaves, rebuild = tensor_leaves(t, "all_reduce_mean")
    rows = [x.reshape(1, *x.shape) for x in leaves]
    w = dist.get_world_size(group)
    pg = group if group is not None else dist.group.WORLD
    bufs = [fc.all_reduce(b, "sum", pg) / w for b in pack_rows(rows, 1)]  # type: ignore[arg-type]
    return rebuild([x[0] for x in unpack_rows(bufs, rows)])


def allreduce_grads(
    opt: optim.GradientTransformation, group: Any = None
) -> optim.GradientTransformation:
    """``opt`` whose ``update`` first averages ``grads`` over ranks (data parallelism).

    ``update(grads, state, params) = opt.update(mean_over_ranks(grads), state, params)``:
    with equal per-rank batches that is the gradient of the mean loss over all ranks'
    data, so clipping and Adam in ``opt`` see the global gradient and every rank applies
    the same update.  Wrap an algorithm's own optimizer with it:
    ``algo.remake(optimizer=allreduce_grads(algo.optimizer))``
    (:func:`funrl.distributed.data_parallel`).  Works eagerly and compiled
    (``units=compiled``); not vmappable (one collective per call, not per member); a
    world of one is ``opt``.

    >>> from funrl import optim
    >>> opt = allreduce_grads(optim.sgd(0.1))   # world of one here: plain SGD
    >>> p = {"w": torch.ones(2)}
    >>> u, _ = opt.update({"w": torch.ones(2)}, opt.init(p), p)
    >>> u["w"].tolist()
    [-0.10000000149011612, -0.10000000149011612]
    """
    if not isinstance(opt, optim.GradientTransformation):
        raise TypeError(
            f"allreduce_grads: opt must be a GradientTransformation, got {type(opt).__name__}"
        )

    def update(grads: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        return opt.update(all_reduce_mean(grads, group), state, params)

    return optim.GradientTransformation(opt.init, update)


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is True on any rank (one all-reduce)."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([int(bool(flag))])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
