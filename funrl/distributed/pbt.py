"""PBT over a population sharded across ranks: the same exploit/explore as
``funrl.population.pbt_step``, moving only the copied members' states between ranks."""

from __future__ import annotations

import bisect
from typing import Any

import torch
import torch.distributed as dist

from funrl import population as pop
from funrl import tree
from funrl.distributed.collectives import (
    gather,
    pack_rows,
    shard,
    shard_bounds,
    tensor_leaves,
    unpack_rows,
)
from funrl.distributed.group import rank, world_size

__all__ = ["pbt_step"]


def _owner(size: int, w: int) -> Any:
    starts = [shard_bounds(size, r, w)[0] for r in range(w)]
    return lambda j: bisect.bisect_right(starts, j) - 1, starts


def _exchange(
    bufs: list[torch.Tensor], source: list[int], size: int, mode: str
) -> list[torch.Tensor]:
    """This rank's new packed shard: row ``i`` is old member ``source[i]``."""
    w, me = world_size(), rank()
    start, stop = shard_bounds(size, me, w)
    if mode == "all_gather":
        full = [gather(b, size) for b in bufs]
        idx = torch.tensor(source[start:stop], device=bufs[0].device)
        return [f[idx] for f in full]
    owner, starts = _owner(size, w)
    moving = sorted({s for i, s in enumerate(source) if owner(s) != owner(i)})
    received: dict[int, list[torch.Tensor]] = {}
    for s in moving:  # one broadcast per copied member per dtype: O(member) memory
        o = owner(s)
        rows = []
        for b in bufs:
            row = (
                b[s - starts[o] : s - starts[o] + 1].clone()
                if me == o
                else b.new_zeros(1, b.shape[1])
            )
            dist.broadcast(row, src=o)
            rows.append(row)
        received[s] = rows
    return [
        torch.cat(
            [
                b[s - start : s - start + 1] if owner(s) == me else received[s][g]
                for s in source[start:stop]
            ]
        )
        for g, b in enumerate(bufs)
    ]


def pbt_step(
    key: torch.Tensor,
    states: Any,
    hps: Any,
    scores: torch.Tensor,
    config: pop.PBTConfig,
    size: int,
    exchange: str = "broadcast",
) -> tuple[Any, Any, torch.Tensor]:
    """:func:`funrl.population.pbt_step` over a population sharded across ranks.

    Args:
      key: the same key on every rank.
      states, hps, scores: this rank's shard (leaves ``[n_rank, ...]``, ``[n_rank]``).
      config: the PBT settings.
      size: the population size ``P``.
      exchange: how copied states move: ``"broadcast"`` (one broadcast per member copied
        across ranks; memory: one member) or ``"all_gather"`` (every rank holds the whole
        population's state for a moment: ``P`` x state memory per rank, fewest collectives;
        for small populations).
    Returns ``(states, hps, source)``: this rank's new shard and the full ``[P]`` source
    permutation; equal, member for member, to ``population.pbt_step`` on the whole
    population (scores and hparams are gathered; the permutation is computed identically
    on every rank).
    """
    if exchange not in ("broadcast", "all_gather"):
        raise ValueError(
            f"pbt_step: exchange must be 'broadcast' or 'all_gather', got {exchange!r}"
        )
    full_hps, full_scores = gather((hps, scores), size)
    _, new_hps, source = pop.pbt_step(key, torch.arange(size), full_hps, full_scores, config)
    if world_size() == 1:
        return tree.map(lambda x: x[source], states), new_hps, source
    leaves, rebuild = tensor_leaves(states, "pbt_step")
    n = leaves[0].shape[0]
    new = unpack_rows(_exchange(pack_rows(leaves, n), source.tolist(), size, exchange), leaves)
    return rebuild(new), shard(new_hps), source
