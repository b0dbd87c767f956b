"""Scale out with ``torch.distributed``: shard a population, or train one agent data-parallel.

Launch one process per rank with ``torchrun`` (or ``python -m funrl.distributed``'s own
sub-commands under it); every rank runs the same program and :func:`init` joins the
process group torchrun set up (gloo on CPU, NCCL on CUDA).  Without torchrun (no
``WORLD_SIZE`` in the environment) everything here runs as a world of one: the same code
trains on a laptop and on a cluster.

* **Populations** (:func:`train_population`): ``P`` members split into contiguous shards
  over ``W`` ranks (:func:`shard_bounds`; the first ``P % W`` ranks get one more member);
  each rank vmaps its shard with ``funrl.algos.units.population``.  Member ``i`` gets
  ``keys[i]``, ``hps[i]`` and the same evaluation key as in ``funrl.population.train``,
  so results do not depend on ``W``.  PBT (:func:`pbt_step`) gathers scores and
  hyperparameters (small), computes the same exploit/explore permutation on every rank
  with ``funrl.population.pbt_step`` and moves only the copied members' states between
  ranks.  Results, metrics and checkpoints are gathered to rank 0; a checkpoint holds the
  whole population, so it resumes on any world size.
* **Data parallel** (:func:`allreduce_grads`, :func:`train_data_parallel`): every rank
  runs its own envs from ``fold_in(key, rank)``; the optimizer wrapper averages the
  gradients over ranks (one all-reduce per minibatch) before the wrapped optimizer, and
  the initial params are broadcast from rank 0, so params stay identical on every rank.

Example (two processes on one machine)::

    torchrun --standalone --nproc-per-node 2 -m funrl.distributed population ppo \\
        --population 64 --updates 20 --set num_envs=8

Faults: :func:`init` sets the collective ``timeout`` (default 30 s, ``FUNRL_DIST_TIMEOUT``);
a rank that dies makes its peers' next collective fail (gloo: at once, "connection
closed"; otherwise after the timeout), the entry point prints which rank failed and why
and exits non-zero, and torchrun stops the job with a failure summary.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from funrl import optim, tree
from funrl import population as pop
from funrl import random as R
from funrl.algos.common import Algo
from funrl.algos.units import compiled as compiled_units
from funrl.algos.units import population as population_units
from funrl.envs.vector import VecEnv
from funrl.envs.wrappers import EpisodeStatistics
from funrl.train import MetricsWriter, TrainResult
from funrl.train import evaluate as evaluate_single

__all__ = [
    "all_reduce_mean",
    "allreduce_grads",
    "broadcast",
    "gather",
    "init",
    "launch",
    "launch_command",
    "load_population",
    "main",
    "pbt_step",
    "rank",
    "save_population",
    "shard",
    "shard_bounds",
    "train_data_parallel",
    "train_population",
    "world_size",
]

FAULT_ENV = "FUNRL_DIST_FAULT"  # "RANK:UPDATE[:hang]": fault injection for tests (_fault_hook)


# ---- process group ------------------------------------------------------------------------


def init(backend: str | None = None, timeout_s: float | None = None) -> tuple[int, int]:
    """Join the process group torchrun set up; returns ``(rank, world_size)``.

    Args:
      backend: ``"gloo"`` (CPU tensors) or ``"nccl"`` (CUDA tensors; each rank uses
        ``cuda:LOCAL_RANK``); default NCCL when CUDA is available, else gloo.
      timeout_s: how long a collective waits for its peers before failing (default
        ``$FUNRL_DIST_TIMEOUT`` or 30 s).  Keep it above the longest gap between
        collectives (a compile, an evaluation): a slow rank looks like a dead one.

    Without ``WORLD_SIZE`` in the environment (not under torchrun) this is a no-op
    returning ``(0, 1)``; an existing process group is reused.
    """
    if dist.is_initialized():
        return rank(), world_size()
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    timeout = (
        timeout_s if timeout_s is not None else float(os.environ.get("FUNRL_DIST_TIMEOUT", "30"))
    )
    if timeout <= 0:
        raise ValueError(f"init: timeout_s must be > 0, got {timeout}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    return rank(), world_size()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """The number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def _fault_hook(update: int) -> None:
    """Fault injection for tests: ``FUNRL_DIST_FAULT=R:U`` makes rank R exit (code 3) before
    update U; ``R:U:hang`` makes it sleep instead (its peers then hit the timeout)."""
    spec = os.environ.get(FAULT_ENV, "")
    parts = spec.split(":")
    if len(parts) >= 2 and parts[:2] == [str(rank()), str(update)]:
        hang = parts[2:] == ["hang"]
        print(
            f"funrl.distributed: rank {rank()}: fault injection ({FAULT_ENV}={spec}): "
            f"{'hanging' if hang else 'exiting'}",
            file=sys.stderr,
            flush=True,
        )
        if hang:
            time.sleep(3600)
        os._exit(3)


# ---- shards ---------------------------------------------------------------------------------


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


def _pack(leaves: Sequence[torch.Tensor], rows: int) -> list[torch.Tensor]:
    """Leaves ``[rows, ...]`` -> one ``[rows, k]`` buffer per wire dtype."""
    return [
        torch.cat([leaves[i].reshape(rows, math.prod(leaves[i].shape[1:])).to(dt) for i in idx], 1)
        for dt, idx in _groups(leaves).items()
    ]


def _unpack(bufs: Sequence[torch.Tensor], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Invert :func:`_pack`: leaves shaped like ``like`` but with the buffers' row count."""
    out: list[torch.Tensor] = list(like)
    for buf, idx in zip(bufs, _groups(like).values()):
        widths = [math.prod(like[i].shape[1:]) for i in idx]
        for i, part in zip(idx, torch.split(buf, widths, dim=1)):
            out[i] = part.reshape(buf.shape[0], *like[i].shape[1:]).to(like[i].dtype)
    return out


def _tensor_leaves(t: Any, name: str) -> tuple[list[torch.Tensor], Any]:
    leaves, spec = tree.flatten(t)
    for x in leaves:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: every leaf must be a tensor, got {type(x).__name__}")
    return leaves, spec


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
    leaves, spec = _tensor_leaves(shard_, "gather")
    counts = [b - a for a, b in (shard_bounds(size, r, w) for r in range(w))]
    n, m = counts[rank()], max(counts)
    for x in leaves:
        if x.ndim == 0 or x.shape[0] != n:
            raise ValueError(
                f"gather: rank {rank()} holds {n} of {size} members, got a leaf of shape {tuple(x.shape)}"
            )
    out = []
    for buf in _pack(leaves, n):
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
    return tree.unflatten(_unpack(out, leaves), spec)


def broadcast(t: Any, src: int = 0) -> Any:
    """Every rank gets rank ``src``'s ``t`` (same structure, shapes and dtypes everywhere)."""
    if world_size() == 1:
        return t
    leaves, spec = _tensor_leaves(t, "broadcast")
    rows = [x.reshape(1, *x.shape) for x in leaves]
    bufs = _pack(rows, 1)
    for b in bufs:
        dist.broadcast(b, src=src)
    return tree.unflatten([x[0] for x in _unpack(bufs, rows)], spec)


def all_reduce_mean(t: Any, group: Any = None) -> Any:
    """The mean of ``t`` over ranks, one out-of-place all-reduce per dtype.

    Uses ``torch.distributed._functional_collectives`` (traceable: works inside
    ``torch.compile(fullgraph=True)``; not under ``vmap``).  A world of one returns ``t``.
    """
    if not dist.is_initialized() or dist.get_world_size(group) == 1:
        return t
    import torch.distributed._functional_collectives as fc

    leaves, spec = _tensor_leaves(t, "all_reduce_mean")
    rows = [x.reshape(1, *x.shape) for x in leaves]
    w = dist.get_world_size(group)
    pg = group if group is not None else dist.group.WORLD
    bufs = [fc.all_reduce(b, "sum", pg) / w for b in _pack(rows, 1)]  # type: ignore[arg-type]
    return tree.unflatten([x[0] for x in _unpack(bufs, rows)], spec)


def allreduce_grads(
    opt: optim.GradientTransformation, group: Any = None
) -> optim.GradientTransformation:
    """``opt`` whose ``update`` first averages ``grads`` over ranks (data parallelism).

    ``update(grads, state, params) = opt.update(mean_over_ranks(grads), state, params)``:
    with equal per-rank batches that is the gradient of the mean loss over all ranks'
    data, so clipping and Adam in ``opt`` see the global gradient and every rank applies
    the same update.  Pass it to an algorithm: ``ppo.make(config, optimizer=
    allreduce_grads(opt))``.  Works eagerly and compiled (``units=compiled``); not
    vmappable (one collective per call, not per member); a world of one is ``opt``.

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


# ---- PBT across ranks ---------------------------------------------------------------------------


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
    leaves, spec = _tensor_leaves(states, "pbt_step")
    n = leaves[0].shape[0]
    new = _unpack(_exchange(_pack(leaves, n), source.tolist(), size, exchange), leaves)
    return tree.unflatten(new, spec), shard(new_hps), source


# ---- checkpoints ---------------------------------------------------------------------------------


def save_population(
    path: str | os.PathLike[str], algo: Algo, members: dict[str, Any], hps: Any, update: int
) -> None:
    """Rank 0 writes the whole population (``funrl.checkpoint.save``); other ranks do nothing.

    ``members`` holds ``states`` (TrainState, leaves ``[P, ...]``), ``recent`` ``[P]``
    scores and ``keys`` ``[P, 2]``; ``update`` is how many updates are done.
    """
    if rank() == 0:
        from funrl import checkpoint

        size = int(members["keys"].shape[0])
        checkpoint.save(
            path, members, algo=algo, hparams=hps, meta={"updates": update, "population": size}
        )


def load_population(path: str | os.PathLike[str], algo: Algo) -> tuple[dict[str, Any], Any, int]:
    """``(members, hps, update)`` of a :func:`save_population` file, whole (take a shard with
    :func:`shard`).  Every rank reads the file: on several nodes it must be on a shared
    file system (or copied to each node)."""
    from funrl import checkpoint

    ckpt = checkpoint.load(path, algo=algo)
    return ckpt.state, ckpt.hparams, int(ckpt.meta["updates"])


# ---- population training ---------------------------------------------------------------------------


def _evaluate_members(
    algo: Algo, states: Any, keys: torch.Tensor, episodes: int, max_steps: int = 10_000
) -> torch.Tensor:
    """``population.evaluate`` with explicit member keys (so a shard matches the whole)."""
    env = EpisodeStatistics(VecEnv(algo.env_stack.eval_env, episodes))
    env_params = algo.env_stack.env_params
    params = torch.func.vmap(algo.act_params)(states)
    obs, env_state = torch.func.vmap(lambda k: env.reset(k, env_params), randomness="error")(keys)

    def step(p: Any, o: torch.Tensor, s: Any, k: torch.Tensor) -> Any:
        o, s, _, _, _, info = env.step(k, s, algo.act(p, o), env_params)
        return o, s, info["episode_done"], info["episode_return"]

    vstep = torch.func.vmap(step, randomness="error")
    returns = torch.full((keys.shape[0], episodes), float("nan"))
    done = torch.zeros(keys.shape[0], episodes, dtype=torch.bool)
    for t in range(max_steps):
        obs, env_state, ep_done, ep_ret = vstep(params, obs, env_state, R.fold_in(keys, t))
        finished = ep_done & ~done
        returns = torch.where(finished, ep_ret.to(returns.dtype), returns)
        done = done | finished
        if bool(done.all()):
            break
    return returns.nanmean(dim=1)


def _history_rows(cols: dict[str, torch.Tensor], first: int) -> list[dict[str, Any]]:
    """Rows ``{update, member, metric...}`` from columns ``[P, U]`` (update-major order)."""
    size, updates = next(iter(cols.values())).shape
    lists = {k: v.tolist() for k, v in cols.items()}
    return [
        {"update": first + u + 1, "member": i, **{k: c[i][u] for k, c in lists.items()}}
        for u in range(updates)
        for i in range(size)
    ]


def train_population(
    algo: Algo,
    keys: torch.Tensor,
    hps: Any,
    *,
    num_updates: int | None = None,
    compile: bool = False,
    chunk_size: int | None = None,
    pbt: pop.PBTConfig | None = None,
    exchange: str = "broadcast",
    eval_episodes: int = 10,
    out_dir: str | os.PathLike[str] | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> pop.PopulationResult | None:
    """``funrl.population.train`` with the population sharded over the ranks.

    Call it on every rank with the same ``keys`` ``[P, 2]`` and ``hps`` (leaves ``[P]``);
    each rank trains members ``shard_bounds(P)``.  Member results equal a single-process
    run's (up to float rounding of vmapped kernels at a different batch size).

    Args:
      algo, keys, hps, num_updates, compile, chunk_size, pbt, eval_episodes: as in
        ``funrl.population.train`` (``pbt``: :func:`pbt_step` with ``exchange``).
      out_dir: rank 0 writes ``metrics.jsonl``/``.csv`` (one row per member per update,
        with ``time_s``: seconds since the start on that member's rank), gathered at the end.
      checkpoint_path, checkpoint_every: rank 0 writes the whole population there every
        ``checkpoint_every`` updates and at the end (:func:`save_population`).
      resume: a :func:`save_population` file to continue from (any world size); ``keys``
        and ``hps`` are then taken from it, ``num_updates`` counts from the start.
      progress: rank 0 prints its shard's progress.
    Returns the :class:`funrl.population.PopulationResult` (whole population) on rank 0,
    ``None`` on the other ranks.  Collectives: one gather at each PBT step and checkpoint,
    and at the end.
    """
    total = num_updates if num_updates is not None else algo.config.num_updates
    if total < 1:
        raise ValueError(f"num_updates must be >= 1, got {total}")
    start_update = 0
    recent_full = None
    states_full = None
    if resume is not None:
        members, hps, start_update = load_population(resume, algo)
        keys, recent_full, states_full = members["keys"], members["recent"], members["states"]
    size = pop.check_population(hps, keys)
    lo, hi = shard_bounds(size)
    hps_s = shard(hps)
    palgo = algo.with_units(population_units(compile=compile, chunk_size=chunk_size))
    if states_full is None:
        states = palgo.init(keys[lo:hi], hps_s)
        recent = torch.full((hi - lo,), float("nan"))
    else:
        states, recent = shard(states_full), recent_full[lo:hi]  # type: ignore[index]
    del states_full
    pbt_key = R.fold_in(keys[0], 0x9B7)
    logs: list[dict[str, torch.Tensor]] = []
    t_start = time.perf_counter()
    first_dt = compile_s = 0.0

    def save(update: int) -> None:
        assert checkpoint_path is not None
        members = gather({"states": states, "recent": recent, "keys": keys[lo:hi]}, size, dst=0)
        full_hps = gather(hps_s, size, dst=0)
        save_population(checkpoint_path, algo, members, full_hps, update)

    for i in range(start_update, total):
        _fault_hook(i)
        t0 = time.perf_counter()
        states, metrics = palgo.update(states, hps_s)
        dt = time.perf_counter() - t0
        if i == start_update:
            first_dt = dt
        elif i == start_update + 1:
            compile_s = max(0.0, first_dt - dt)
        ret = metrics.get("episode_return")
        if ret is not None:
            recent = torch.where(torch.isnan(ret), recent, ret)
        hp_cols = {f"hp.{f.name}": getattr(hps_s, f.name) for f in dataclasses.fields(hps_s)}
        now = torch.full((hi - lo,), time.perf_counter() - t_start, dtype=torch.float64)
        logs.append({**metrics, **hp_cols, "time_s": now})
        if pbt is not None and (i + 1) % pbt.interval == 0 and i + 1 < total:
            states, hps_s, _ = pbt_step(
                R.fold_in(pbt_key, i), states, hps_s, recent, pbt, size, exchange
            )
        if checkpoint_path is not None and checkpoint_every and (i + 1) % checkpoint_every == 0:
            save(i + 1)
        if progress and rank() == 0 and (i % 10 == 0 or i == total - 1):
            finite = recent[~torch.isnan(recent)]
            best = float(finite.max()) if finite.numel() else math.nan
            sps = (hi - lo) * algo.steps_per_update / dt
            print(
                f"[{i + 1}/{total}] rank 0 of {world_size()}, members {lo}-{hi - 1} of {size}: "
                f"best {best:.1f} ({sps:,.0f} steps/s on this rank)",
                file=sys.stderr,
                flush=True,
            )
    if checkpoint_path is not None:
        save(total)
    eval_keys = R.split(R.fold_in(keys[0], 0xE7A1), size)[lo:hi]
    eval_s = _evaluate_members(algo, states, eval_keys, eval_episodes)
    cols = {k: torch.stack([log[k] for log in logs], dim=1) for k in logs[0]} if logs else {}
    gathered = gather({"states": states, "hps": hps_s, "eval": eval_s, "cols": cols}, size, dst=0)
    if gathered is None:
        return None
    history = _history_rows(gathered["cols"], start_update) if cols else []
    if out_dir is not None:
        writer = MetricsWriter(out_dir)
        for row in history:
            writer.write(row)
        writer.close()
    return pop.PopulationResult(
        gathered["states"],
        gathered["hps"],
        gathered["eval"],
        history,
        total,
        total * algo.steps_per_update,
        time.perf_counter() - t_start,
        compile_s,
        pop.ranking_table(gathered["hps"], gathered["eval"]),
    )


# ---- data-parallel training --------------------------------------------------------------------------


def train_data_parallel(
    algo: Algo,
    key: torch.Tensor,
    hparams: Any,
    *,
    num_updates: int | None = None,
    compile: bool = False,
    shared: Sequence[str] = ("params", "opt_state"),
    eval_episodes: int = 10,
    checkpoint_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one agent over all ranks; ``algo`` must be made with :func:`allreduce_grads`.

    Rank ``r`` initialises from ``fold_in(k_init, r)`` (its own envs and key stream), then
    takes rank 0's ``shared`` TrainState fields (params, optimizer state), so every rank
    starts from the same params and, with averaged gradients, stays there.

    Args:
      algo: e.g. ``ppo.make(config, optimizer=allreduce_grads(opt))``.
      key, hparams: as in ``funrl.train`` (the same on every rank).
      num_updates: default from the config; each update takes ``world_size()`` x
        ``algo.steps_per_update`` env steps in all.
      compile: compile each unit (the all-reduce compiles with it).
      shared: TrainState fields broadcast from rank 0 at the start.
      eval_episodes: rank 0 evaluates at the end.
      checkpoint_path: rank 0 saves its final state (``funrl.checkpoint.save``).
      progress: rank 0 prints progress.
    Raises ``RuntimeError`` (on every rank) when the ``shared`` fields differ across ranks
    after an update (their global norms are compared each update): ``algo`` was not made
    with :func:`allreduce_grads`.

    Returns a ``TrainResult`` on every rank (own state; ``history`` holds metrics averaged
    over ranks (NaN-aware); ``eval_return`` is NaN except on rank 0).
    """
    hparams.check()
    if compile:
        algo = algo.with_units(compiled_units)
    total = num_updates if num_updates is not None else algo.config.num_updates
    if total < 1:
        raise ValueError(f"num_updates must be >= 1, got {total}")
    w = world_size()
    k_init, k_eval = R.split(key)
    state = algo.init(R.fold_in(k_init, rank()), hparams)
    state = state.replace(**{f: broadcast(getattr(state, f)) for f in shared})
    result = TrainResult(state)
    t_start = time.perf_counter()
    for i in range(total):
        _fault_hook(i)
        t0 = time.perf_counter()
        state, metrics = algo.update(state, hparams)
        names = sorted(metrics)
        sums = [tree.global_norm(getattr(state, f)).to(torch.float64) for f in shared]
        row_t = torch.stack([metrics[k].detach().to(torch.float64) for k in names] + sums)[None]
        rows = gather(row_t, w)  # [W, M]: every rank's metrics (also a per-update barrier)
        if not bool((rows[:, len(names) :] == rows[:1, len(names) :]).all()):
            raise RuntimeError(
                f"train_data_parallel: {', '.join(shared)} differ across ranks after update "
                f"{i + 1}: make the algorithm with optimizer=allreduce_grads(...)"
            )
        rows = rows[:, : len(names)]
        row = {k: float(v) for k, v in zip(names, rows.nanmean(0).tolist())}
        dt = time.perf_counter() - t0
        if i == 1:
            result.compile_time_s = max(0.0, result.history[0]["time_s"] - dt)
        result.updates, result.env_steps = i + 1, (i + 1) * w * algo.steps_per_update
        row.update(update=i + 1, env_steps=result.env_steps, time_s=time.perf_counter() - t_start)
        result.history.append(row)
        if progress and rank() == 0 and (i % 10 == 0 or i == total - 1):
            print(
                f"[{i + 1}/{total}] {w} rank(s): return {row.get('episode_return', math.nan):.1f} "
                f"({w * algo.steps_per_update / dt:,.0f} steps/s)",
                file=sys.stderr,
                flush=True,
            )
    result.state = state
    if rank() == 0:
        result.eval_return = float(evaluate_single(algo, state, k_eval, eval_episodes).nanmean())
        if checkpoint_path is not None:
            from funrl import checkpoint

            checkpoint.save(
                checkpoint_path,
                state,
                algo=algo,
                hparams=hparams,
                meta={"updates": total, "world_size": w},
            )
    result.wall_time_s = time.perf_counter() - t_start
    return result


# ---- command line: python -m funrl.distributed population|dataparallel ... (under torchrun) -----------


def launch_command(
    nproc: int, argv: Sequence[str], *, nnodes: int = 1, rdzv_endpoint: str | None = None
) -> list[str]:
    """The ``torchrun`` command that runs ``python -m funrl.distributed *argv`` on ``nproc``
    processes per node: ``--standalone`` on one node, else a c10d rendezvous at
    ``rdzv_endpoint`` (``host:port``) across ``nnodes`` nodes (run it on every node)."""
    if nproc < 1 or nnodes < 1:
        raise ValueError(f"launch_command: nproc and nnodes must be >= 1, got {nproc}, {nnodes}")
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd.append("--standalone")
    else:
        if rdzv_endpoint is None:
            raise ValueError("launch_command: several nodes need rdzv_endpoint='host:port'")
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    return [*cmd, "-m", "funrl.distributed", *argv]


def _parse_sets(mod: Any, sets: Sequence[str], env: str) -> tuple[Any, dict[str, float]]:
    cfg_defaults = {f.name: f.default for f in dataclasses.fields(mod.Config)}
    hp_names = {f.name for f in dataclasses.fields(mod.HParams)}
    cfg: dict[str, Any] = {"env": env}
    hp: dict[str, float] = {}
    for item in sets:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or (name not in hp_names and name not in cfg_defaults):
            raise SystemExit(
                f"funrl.distributed: --set expects NAME=VALUE with a Config or HParams "
                f"field, got {item!r}; fields: {sorted(hp_names | set(cfg_defaults))}"
            )
        if name in hp_names:
            hp[name] = float(raw)
            continue
        default = cfg_defaults[name]
        if isinstance(default, bool):
            cfg[name] = raw.lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int):
            cfg[name] = int(float(raw))
        elif isinstance(default, float):
            cfg[name] = float(raw)
        elif isinstance(default, tuple):
            cfg[name] = tuple(int(x) for x in raw.replace("x", ",").split(",") if x)
        else:
            cfg[name] = raw
    return mod.Config(**cfg), hp


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m funrl.distributed", description="Run under torchrun: one process per rank."
    )
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("population", "dataparallel"):
        s = sub.add_parser(mode)
        s.add_argument("algo", choices=("ppo", "a2c"))
        s.add_argument("--env", default="CartPole-v1")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--updates", type=int, default=None, help="default: from total_timesteps")
        s.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
        s.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False)
        s.add_argument("--out", default=None, help="rank 0 writes metrics and summary.json here")
        s.add_argument("--checkpoint", default=None, help="rank 0 writes the final state here")
        s.add_argument("--eval-episodes", type=int, default=10)
        s.add_argument("--backend", default=None, choices=("gloo", "nccl"))
        s.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="collective timeout, s (default 30; 600 with --compile)",
        )
        s.add_argument(
            "--threads", type=int, default=1, help="torch threads per process (default 1)"
        )
        s.add_argument("--quiet", action="store_true")
        if mode == "population":
            s.add_argument("--population", type=int, default=8)
            s.add_argument(
                "--sample",
                action="append",
                default=[],
                metavar="NAME=LOW:HIGH",
                help="log-uniform random search of an HParams field",
            )
            s.add_argument("--pbt-interval", type=int, default=None)
            s.add_argument("--exchange", default="broadcast", choices=("broadcast", "all_gather"))
            s.add_argument("--checkpoint-every", type=int, default=None)
            s.add_argument("--resume", default=None)
    return p


def _run(args: argparse.Namespace) -> dict[str, Any]:
    import importlib
    import json

    mod = importlib.import_module(f"funrl.algos.{args.algo}")
    config, hp_over = _parse_sets(mod, args.set, args.env)
    seed = R.key(args.seed)
    if args.mode == "dataparallel":
        base = optim.chain(optim.clip_by_global_norm(0.5), optim.adam(2.5e-4, eps=1e-5))
        algo = mod.make(config, optimizer=allreduce_grads(base))
        res = train_data_parallel(
            algo,
            seed,
            mod.HParams.create(**hp_over),
            num_updates=args.updates,
            compile=args.compile,
            eval_episodes=args.eval_episodes,
            checkpoint_path=args.checkpoint,
            progress=not args.quiet,
        )
        times = [r["time_s"] for r in res.history]
        steps = world_size() * algo.steps_per_update
        summary = {"eval_return": res.eval_return, "history": res.history}
    else:
        algo = mod.make(config)
        space = {}
        for item in args.sample:
            name, _, rng = item.partition("=")
            low, _, high = rng.partition(":")
            space[name] = ("log_uniform", float(low), float(high))
        size = args.population
        hps = (
            pop.sample(mod.HParams, R.fold_in(seed, 1), size, **space)
            if space
            else pop.hparams(mod.HParams, size, **hp_over)
        )
        pbt = pop.PBTConfig(interval=args.pbt_interval) if args.pbt_interval else None
        presult = train_population(
            algo,
            pop.member_keys(seed, size),
            hps,
            num_updates=args.updates,
            compile=args.compile,
            pbt=pbt,
            exchange=args.exchange,
            eval_episodes=args.eval_episodes,
            out_dir=args.out,
            checkpoint_path=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            progress=not args.quiet,
        )
        if presult is None:
            return {}
        by_update: dict[int, float] = {}
        for r in presult.history:  # the slowest rank's clock at the end of each update
            by_update[r["update"]] = max(by_update.get(r["update"], 0.0), r["time_s"])
        times = [by_update[u] for u in sorted(by_update)]
        steps = size * algo.steps_per_update
        summary = {"eval_returns": presult.eval_returns.tolist(), "table": presult.table}
    warm = min(2, len(times) - 1)
    steady = (
        steps * (len(times) - 1 - warm) / (times[-1] - times[warm])
        if len(times) - 1 > warm
        else math.nan
    )
    summary.update(
        mode=args.mode,
        algo=args.algo,
        env=args.env,
        world_size=world_size(),
        updates=len(times),
        env_steps_per_update=steps,
        train_time_s=times[-1] if times else 0.0,
        steady_steps_per_s=steady,
    )
    if args.out is not None and rank() == 0:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m funrl.distributed`` (run it under torchrun; see :func:`launch_command`).

    Any failure (a dead peer, a timeout) prints this rank's number and the reason on stderr
    and returns 1, so torchrun stops the other ranks and reports the job failed.
    """
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        timeout = args.timeout if args.timeout is not None else (600.0 if args.compile else None)
        me, _ = init(args.backend, timeout)  # compiling ranks may finish minutes apart
        summary = _run(args)
    except Exception as e:
        print(
            f"funrl.distributed: rank {rank()} of {world_size()} failed: {type(e).__name__}: {e}\n"
            "  (a collective error usually means another rank died or timed out first: see its "
            "log above)",
            file=sys.stderr,
            flush=True,
        )
        return 1
    if dist.is_initialized():
        dist.destroy_process_group()
    if me == 0:
        if args.mode == "population":
            print("\n".join(summary["table"].split("\n")[:11]))
        print(
            f"done: {summary['world_size']} rank(s), {summary['updates']} updates, "
            f"{summary['steady_steps_per_s']:,.0f} env steps/s after warm-up",
            flush=True,
        )
    return 0


def launch(nproc: int, argv: Sequence[str], **kwargs: Any) -> int:
    """Run :func:`launch_command` and return torchrun's exit code (for ``funrl train --nproc N``)."""
    return subprocess.call(launch_command(nproc, argv, **kwargs))


if __name__ == "__main__":
    sys.exit(main())
