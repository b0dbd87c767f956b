"""Population checkpoints across ranks: rank 0 writes the whole population, any world
size reads it back (the format is ``funrl.population.save_members``)."""

from __future__ import annotations

import os
from typing import Any

from funrl import population as pop
from funrl.algos.common import Algo
from funrl.distributed.group import rank

__all__ = ["load_population", "save_population"]


def save_population(
    path: str | os.PathLike[str], algo: Algo, members: dict[str, Any], hps: Any, update: int
) -> None:
    """Rank 0 writes the whole population (``funrl.checkpoint.save``); other ranks do nothing.

    ``members`` holds ``states`` (TrainState, leaves ``[P, ...]``), ``recent`` ``[P]``
    scores and ``keys`` ``[P, 2]``; ``update`` is how many updates are done.
    """
    if rank() == 0:
        size = int(members["keys"].shape[0])
        meta = {"updates": update, "population": size, "mode": "sharded"}
        pop.save_members(path, algo, members, hps, meta)


def load_population(path: str | os.PathLike[str], algo: Algo) -> tuple[dict[str, Any], Any, int]:
    """``(members, hps, update)`` of a :func:`save_population` (or any population) file,
    whole (take a shard with :func:`funrl.distributed.shard`).  Every rank reads the file:
    on several nodes it must be on a shared file system (or copied to each node)."""
    ck = pop.load_members(path, algo)
    return ck.state, ck.hparams, int(ck.meta["updates"])
