"""Training over ranks: a sharded population and a data-parallel agent, each a runner of
the one host loop (:func:`funrl.loop.run`), so every feature of ``funrl.train`` works
here with the same defaults."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from typing_extensions import Unpack

from funrl import loop as L
from funrl import optim, tree
from funrl import population as pop
from funrl import random as R
from funrl.algos.common import Algo, restart_episodes
from funrl.algos.units import compiled
from funrl.distributed.collectives import (
    allreduce_grads,
    any_rank,
    broadcast,
    gather,
    shard_bounds,
)
from funrl.distributed.group import fault_hook, rank, world_size
from funrl.distributed.pbt import pbt_step
from funrl.evaluation import EAGER_EVALUATIONS, make_evaluate
from funrl.train import TrainResult, split_key, train_result

__all__ = [
    "data_parallel",
    "data_parallel_runner",
    "ranks_comm",
    "train_data_parallel",
    "train_population",
]


def ranks_comm() -> L.Comm:
    """The process group's ranks as a :class:`funrl.loop.Comm` (contiguous shards,
    :func:`funrl.distributed.gather`); a world of one without a process group."""
    return L.Comm(
        rank=rank(),
        world=world_size(),
        bounds=lambda size: shard_bounds(size),
        all_gather=lambda t, size: gather(t, size),
        gather=lambda t, size: gather(t, size, dst=0),
        broadcast=broadcast,
        any=any_rank,
    )


def _with_faults(update: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``update`` preceded by the fault-injection hook (``FUNRL_DIST_FAULT``)."""
    count = itertools.count()

    def run(state: Any, hparams: Any) -> Any:
        fault_hook(next(count))
        return update(state, hparams)

    return run


def _norm(t: Any) -> torch.Tensor:
    """The global norm of ``t``'s tensors (``None`` leaves, absent optional state, skipped)."""
    return tree.global_norm([x for x in tree.leaves(t) if x is not None])


# ---- populations -----------------------------------------------------------------------------


def train_population(
    algo: Algo,
    keys: torch.Tensor,
    hps: Any,
    *,
    compile: bool = True,
    chunk_size: int | None = None,
    eval_episodes: int = 10,
    pbt: pop.PBTConfig | None = None,
    exchange: str = "broadcast",
    **options: Unpack[L.Options],
) -> pop.PopulationResult | None:
    """``funrl.population.train`` with the population sharded over the ranks.

    Call it on every rank with the same ``keys`` ``[P, 2]`` and ``hps`` (leaves ``[P]``);
    each rank vmaps its contiguous shard, members ``shard_bounds(P)``
    (``funrl.population.population_runner`` over :func:`ranks_comm`).  Member ``i`` uses
    ``keys[i]``, ``hps[i]`` and the same evaluation keys as in one process, so its results
    equal a single-process run's (up to float rounding of vmapped kernels at a different
    batch size).  Rows, evaluation returns and stop decisions are all-gathered: every rank
    agrees.

    Args:
      algo, keys, hps, compile, chunk_size, eval_episodes, pbt: as in
        ``funrl.population.train`` (``pbt``: :func:`funrl.distributed.pbt_step` with
        ``exchange``: ``"broadcast"`` or ``"all_gather"``).
      options: the loop's features, the same in every mode (:func:`funrl.loop.run`):
        ``num_updates``, ``out_dir`` (rank 0 writes one row per member per update),
        ``progress`` (rank 0), ``eval_every``, ``target_return``, ``callback`` (on every
        rank with its shard's states and every member's rows; any rank's True stops all),
        ``checkpoint_path``/``checkpoint_every`` (rank 0 writes the whole population) and
        ``resume`` (such a file, written on any world size; ``num_updates`` counts from
        the start), ``hooks`` (run on every rank).
    Returns the :class:`funrl.population.PopulationResult` (whole population) on rank 0,
    ``None`` on the other ranks.  Collectives: an all-gather of the metrics every update,
    and more at evaluations, PBT steps, checkpoints and the end.
    """
    if exchange not in ("broadcast", "all_gather"):
        raise ValueError(f"exchange must be 'broadcast' or 'all_gather', got {exchange!r}")

    def pbt_fn(key: Any, states: Any, hps_s: Any, scores: Any, config: Any, size: int) -> Any:
        return pbt_step(key, states, hps_s, scores, config, size, exchange)

    comm = ranks_comm()
    runner = pop.population_runner(
        algo, keys, hps, compile, chunk_size, eval_episodes, comm, pbt_fn
    )
    runner = runner._replace(update=_with_faults(runner.update))
    return pop.population_result(L.run(runner, pbt=pbt, **options))


# ---- data parallel ----------------------------------------------------------------------------


def data_parallel(algo: Algo) -> Algo:
    """``algo`` whose optimizer averages the gradients over ranks before stepping:
    ``algo.remake(optimizer=allreduce_grads(algo.optimizer))``.

    The algorithm keeps its own optimizer (and its mapping of HParams to it); only the
    gradients it sees change.  Raises a one-line ``ValueError`` naming the algorithm and
    why when it cannot run data-parallel: its optimizer is not one
    ``GradientTransformation`` (SAC, TD3 and DDPG have one per network), or its ``make``
    takes no ``optimizer`` part.  Call it before launching processes to fail early.
    """
    opt = algo.optimizer
    if not isinstance(opt, optim.GradientTransformation):
        what = (
            f"one optimizer per network ({', '.join(sorted(opt))})"
            if isinstance(opt, dict)
            else f"a {type(opt).__name__} optimizer"
        )
        raise ValueError(
            f"{algo.name} cannot run data-parallel: it has {what}, not the one "
            "GradientTransformation that allreduce_grads wraps"
        )
    try:
        return algo.remake(optimizer=allreduce_grads(opt))
    except TypeError as e:
        raise ValueError(
            f"{algo.name} cannot run data-parallel: its make takes no optimizer part ({e})"
        ) from None


_SHARED = ("params", "target_params", "opt_state")


def data_parallel_runner(
    algo: Algo, key: torch.Tensor, hparams: Any, compile: bool, eval_episodes: int, shared: Any
) -> L.Runner:
    """One agent trained over every rank (:func:`train_data_parallel` gives the arguments
    and their defaults; ``shared``: a sequence of TrainState field names)."""
    hparams.check()
    dp = data_parallel(algo)
    if compile:
        dp = dp.with_units(compiled)
    comm = ranks_comm()
    me, w = comm.rank, comm.world
    k_init, k_eval = split_key(key)
    k_rank = k_init if me == 0 else R.fold_in(k_init, me)
    evaluate_fn = (
        make_evaluate(dp, eval_episodes, compile=compile, compile_after=EAGER_EVALUATIONS)
        if me == 0
        else None
    )

    def fields(state: Any) -> list[str]:  # what every rank holds alike
        return list(shared) if shared is not None else [f for f in _SHARED if hasattr(state, f)]

    def init() -> tuple[Any, Any]:
        state = dp.init(k_rank, hparams)
        return state.replace(**{f: broadcast(getattr(state, f)) for f in fields(state)}), hparams

    def columns(
        update: int, state: Any, metrics: dict[str, torch.Tensor], hp: Any
    ) -> dict[str, list[float]]:
        names, table = L.metric_columns(metrics)
        norms = [_norm(getattr(state, f)).to(table.dtype).reshape(1, 1) for f in fields(state)]
        rows = gather(torch.cat([table, *norms], dim=1), w)  # [W, M + S], every rank's
        m = len(names)
        if not bool((rows[:, m:] == rows[:1, m:]).all()):
            raise RuntimeError(
                f"train_data_parallel: {', '.join(fields(state))} differ across ranks after update "
                f"{update}: {dp.name}'s update does not step with the optimizer it was given"
            )
        return {k: [v] for k, v in zip(names, rows[:, :m].nanmean(dim=0).tolist())}

    def evaluate_at(state: Any, index: int) -> torch.Tensor:
        if evaluate_fn is None:
            return broadcast(torch.zeros(1))
        return broadcast(evaluate_fn(state, R.fold_in(k_eval, index)).nanmean().reshape(1))

    def save(path: Any, state: Any, hp: Any, scores: torch.Tensor, meta: dict) -> None:
        states = tree.map(lambda x: x if x is None else x[None], state)  # None: absent state
        mine = {"states": states, "recent": scores, "keys": k_rank[None]}
        members = gather(mine, w, dst=0)  # every rank's state: a population of ranks
        if me == 0:
            pop.save_members(
                path, dp, members, hp, {**meta, "mode": "data_parallel", "world_size": w}
            )
        broadcast(torch.zeros(1))  # no rank returns before the file is complete

    def load(path: Any) -> tuple[Any, Any, torch.Tensor, int]:
        ck = pop.load_members(path, dp, data_parallel=True)
        saved = int(ck.state["keys"].shape[0])
        if saved != w:
            raise ValueError(
                f"resume: {path} holds a data-parallel run over {saved} ranks, not {w}"
            )
        states, recent = ck.state["states"], ck.state["recent"][me : me + 1]
        state = tree.map(lambda x: x if x is None else x[me], states)
        state = restart_episodes(dp.env_stack, state)  # a host env's episodes restart
        return state, ck.hparams, recent, int(ck.meta["updates"])

    return L.Runner(
        algo=dp, mode="data_parallel", size=1, members=False, steps=w * dp.steps_per_update,
        comm=comm, init=init, update=_with_faults(dp.update), columns=columns,
        evaluate=evaluate_at, pbt=None, save=save, load=load,
        result=lambda state, hp: (state, hp),
    )  # fmt: skip


def train_data_parallel(
    algo: Algo,
    key: torch.Tensor,
    hparams: Any,
    *,
    compile: bool = True,
    eval_episodes: int = 10,
    shared: Sequence[str] | None = None,
    **options: Unpack[L.Options],
) -> TrainResult:
    """Train one agent over all ranks: each runs its own envs, gradients are averaged.

    ``algo`` is the plain algorithm: its own optimizer is wrapped with
    :func:`allreduce_grads` (:func:`data_parallel`).  Rank 0 initialises from ``k_init``
    (as ``funrl.train`` does, so a world of one is ``funrl.train``), rank ``r > 0`` from
    ``fold_in(k_init, r)`` (its own envs and key stream); every rank then takes rank 0's
    ``shared`` TrainState fields (params, optimizer state), and with averaged gradients
    they stay equal.

    Args:
      algo, key, hparams, compile, eval_episodes: as in ``funrl.train`` (the same on
        every rank); each update takes ``world_size()`` x ``algo.steps_per_update`` env
        steps in all.
      shared: TrainState fields broadcast from rank 0 at the start (and checked to stay
        equal); default ``params``, ``opt_state`` and, where the state has them,
        ``target_params`` (DQN's target network).
      options: the loop's features, the same in every mode (:func:`funrl.loop.run`):
        rows hold metrics averaged over ranks (NaN-aware); rank 0 evaluates and
        broadcasts the result (``target_return`` stops every rank); ``callback`` runs on
        every rank with its own state; a checkpoint holds every rank's state (a
        population of ranks: ``funrl eval PATH`` evaluates rank 0's) and resumes on the
        same number of ranks; ``hooks`` run on every rank.
    Raises ``ValueError`` when the algorithm cannot run data-parallel, and
    ``RuntimeError`` (on every rank) when the ``shared`` fields differ across ranks after
    an update (their global norms are compared each update).

    Returns a ``TrainResult`` on every rank (its own state).
    """
    runner = data_parallel_runner(algo, key, hparams, compile, eval_episodes, shared)
    return train_result(L.run(runner, **options))
