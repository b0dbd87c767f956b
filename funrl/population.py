"""Vmapped populations: many agents, each with its own hyperparameters and key, one call.

Every leaf of ``hparams`` carries a leading population dim ``P``; ``vmap(init)`` builds
``P`` train states and the algorithm's compute units run vmapped over them
(``funrl.algos.units.population``), driven by the same host loop as single training
(:func:`funrl.loop.run`): evaluation, metric files, progress, callback, checkpoints and
PBT work as they do for one agent.

Example::

    >>> import torch, funrl
    >>> from funrl import population as pop
    >>> from funrl.algos import ppo
    >>> algo = ppo.make(ppo.Config(num_envs=4, num_steps=16, total_timesteps=128))
    >>> hps = pop.hparams(ppo.HParams, 3, lr=torch.logspace(-4, -2, 3))
    >>> res = pop.train(algo, pop.member_keys(funrl.random.key(0), 3), hps,
    ...                 compile=False, progress=False)
    >>> res.eval_returns.shape
    torch.Size([3])

Population-based training (Jaderberg et al., 2017) is :func:`pbt_step`: a pure function
of the population's state, hyperparameters, scores and a key; :func:`train` calls it every
``pbt.interval`` updates when a :class:`PBTConfig` is given.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from typing_extensions import Unpack

from funrl import checkpoint, tree
from funrl import loop as L
from funrl import random as R
from funrl.algos.common import Algo
from funrl.algos.units import population as population_units
from funrl.evaluation import EAGER_EVALUATIONS, make_evaluate
from funrl.train import split_key

__all__ = [
    "PBTConfig",
    "PopulationResult",
    "check_population",
    "evaluate",
    "grid",
    "hparams",
    "load_members",
    "member_keys",
    "pbt_step",
    "population_result",
    "population_runner",
    "ranking_table",
    "sample",
    "save_members",
    "train",
]


# ---- building populations ---------------------------------------------------------------


def member_keys(key: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` independent keys ``[size, 2]`` (member ``i`` gets ``split(key, size)[i]``)."""
    if size < 1:
        raise ValueError(f"population size must be >= 1, got {size}")
    return R.split(key, size)


def hparams(cls: Any, size: int, **fields: Any) -> Any:
    """``cls.create()`` defaults broadcast to ``[size]``, with per-member ``fields``.

    Each field is a number (shared) or a sequence/tensor of ``size`` values.
    """
    if size < 1:
        raise ValueError(f"population size must be >= 1, got {size}")
    base = cls.create(**{k: _first(v) for k, v in fields.items()})
    out = {}
    for f in dataclasses.fields(base):
        v = torch.as_tensor(fields.get(f.name, getattr(base, f.name)), dtype=torch.float32)
        if v.ndim == 0:
            v = v.expand(size).clone()
        if v.shape != (size,):
            raise ValueError(
                f"hparams: field {f.name!r} has shape {tuple(v.shape)}, expected ({size},)"
            )
        out[f.name] = v
    return cls(**out)


def _first(v: Any) -> Any:
    t = torch.as_tensor(v, dtype=torch.float32)
    return t.flatten()[0] if t.ndim else t


def grid(cls: Any, **axes: Sequence[float]) -> Any:
    """The Cartesian product of ``axes`` as a population (size = product of lengths).

    ``grid(ppo.HParams, lr=[1e-4, 1e-3], gamma=[0.99, 0.999])`` has 4 members.
    """
    if not axes:
        raise ValueError("grid needs at least one axis, e.g. lr=[1e-4, 1e-3]")
    names = list(axes)
    combos = list(itertools.product(*(list(axes[n]) for n in names)))
    if not combos:
        raise ValueError(f"grid: an axis is empty: { {n: list(axes[n]) for n in names} }")
    cols = {n: [c[i] for c in combos] for i, n in enumerate(names)}
    return hparams(cls, len(combos), **cols)


def sample(cls: Any, key: torch.Tensor, size: int, **space: tuple[str, float, float]) -> Any:
    """Random search: each field drawn from ``("uniform"|"log_uniform", low, high)``.

    ``sample(ppo.HParams, key, 16, lr=("log_uniform", 1e-4, 1e-2))``.
    """
    draws = {}
    for i, (name, spec) in enumerate(sorted(space.items())):
        kind, low, high = spec
        if not low < high:
            raise ValueError(f"sample: {name} needs low < high, got {low}, {high}")
        u = R.uniform(R.fold_in(key, i), (size,), dtype=torch.float64)
        if kind == "uniform":
            draws[name] = low + u * (high - low)
        elif kind == "log_uniform":
            if low <= 0:
                raise ValueError(f"sample: log_uniform {name} needs low > 0, got {low}")
            draws[name] = torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            raise ValueError(
                f"sample: {name} kind must be 'uniform' or 'log_uniform', got {kind!r}"
            )
    return hparams(cls, size, **draws)


def check_population(hps: Any, keys: torch.Tensor | None = None) -> int:
    """The population size ``P``; ``ValueError`` naming leaves whose leading dims disagree."""
    flat, _ = torch.utils._pytree.tree_flatten_with_path(hps)
    if not flat:
        raise ValueError("hparams has no leaves")
    sizes = {}
    for path, leaf in flat:
        name = torch.utils._pytree.keystr(path).lstrip(".")
        if not isinstance(leaf, torch.Tensor) or leaf.ndim == 0:
            raise ValueError(
                f"hparams leaf {name!r} has no population dim (shape {getattr(leaf, 'shape', ())})"
            )
        sizes[name] = int(leaf.shape[0])
    if keys is not None:
        sizes["keys"] = int(keys.shape[0]) if keys.ndim == 2 else -1
    if len(set(sizes.values())) != 1:
        raise ValueError(f"population dims disagree: {sizes}")
    size = next(iter(sizes.values()))
    if size < 1:
        raise ValueError("population size must be >= 1, got 0")
    if hasattr(hps, "check"):
        hps.check()
    return size


# ---- population-based training ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PBTConfig:
    """When and how PBT exploits and explores.

    Attributes:
      interval: updates between PBT steps.
      fraction: bottom fraction of members replaced (and top fraction copied from).
      perturb: HParams fields to perturb, each multiplied by one of ``factors``.
      factors: the multiplicative perturbations (chosen uniformly per member and field).
      bounds: optional ``{field: (low, high)}`` clamps after perturbation.
    """

    interval: int = 10
    fraction: float = 0.25
    perturb: tuple[str, ...] = ("lr",)
    factors: tuple[float, ...] = (0.8, 1.25)
    bounds: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)


def pbt_step(
    key: torch.Tensor, states: Any, hps: Any, scores: torch.Tensor, config: PBTConfig
) -> tuple[Any, Any, torch.Tensor]:
    """Exploit (bottom members copy a random top member) and explore (perturb its hparams).

    Args:
      key: a key.
      states: the population's TrainState (leaves ``[P, ...]``).
      hps: the population's HParams (leaves ``[P]``).
      scores: ``[P]`` (higher is better; NaN counts as worst).
      config: :class:`PBTConfig`.
    Returns:
      ``(states, hps, source)`` where ``source[i]`` is the member ``i`` copied (itself if
      kept).  Pure: the same inputs give the same outputs; works under compile.
    """
    p = scores.shape[0]
    n = max(1, int(p * config.fraction)) if p > 1 else 0
    clean = torch.nan_to_num(scores.to(torch.float64), nan=-math.inf)
    order = torch.argsort(clean, descending=True, stable=True)  # best first
    k_src, k_fac = R.split(key)
    source = torch.arange(p)
    if n > 0:
        bottom, top = order[p - n :], order[:n]
        picks = top[R.randint(k_src, 0, n, (n,))]
        source = source.index_put((bottom,), picks)
    replaced = source != torch.arange(p)
    new_states = tree.map(lambda x: x[source], states)
    factors = torch.tensor(config.factors, dtype=torch.float32)
    values = {}
    for j, f in enumerate(dataclasses.fields(hps)):
        v = getattr(hps, f.name)[source]
        if f.name in config.perturb:
            choice = R.randint(R.fold_in(k_fac, j), 0, len(config.factors), (p,))
            v = torch.where(replaced, v * factors[choice].to(v.dtype), v)
            if f.name in config.bounds:
                lo, hi = config.bounds[f.name]
                v = torch.clamp(v, lo, hi)
        values[f.name] = v
    return new_states, type(hps)(**values), source


# ---- evaluation, checkpoints and training ------------------------------------------------


def evaluate(
    algo: Algo, states: Any, keys: torch.Tensor, num_episodes: int = 10, max_steps: int = 10_000
) -> torch.Tensor:
    """``[P]`` mean deterministic-evaluation return of each member.

    ``keys``: ``[P, 2]``, member ``i`` evaluated as ``funrl.evaluate(algo, state_i,
    keys[i])`` would (:func:`funrl.evaluation.make_evaluate` vmapped over members); a
    single key ``[2]`` is split into ``P``.
    """
    size = int(tree.leaves(states)[0].shape[0])
    keys = keys if keys.ndim == 2 else R.split(keys, size)
    evaluate_fn = make_evaluate(algo, num_episodes, max_steps, members=True)
    return evaluate_fn(states, keys).nanmean(dim=1)


def save_members(
    path: str | os.PathLike[str],
    algo: Algo,
    members: dict[str, Any],
    hps: Any,
    meta: dict[str, Any],
) -> Path:
    """Write a checkpoint of many agents (a population, or the ranks of a data-parallel run).

    ``members`` holds ``states`` (TrainState, leaves ``[P, ...]``), ``recent`` ``[P]``
    scores and ``keys`` ``[P, 2]``; ``meta`` holds at least ``updates``.  ``funrl eval
    PATH --member I`` evaluates member ``I``.
    """
    return checkpoint.save(path, members, algo=algo, hparams=hps, meta=meta)


def load_members(
    path: str | os.PathLike[str], algo: Algo, data_parallel: bool = False
) -> checkpoint.Checkpoint:
    """Read a :func:`save_members` file (``state`` is the ``members`` dict) of a population
    or, with ``data_parallel``, of a data-parallel run's ranks; ``CheckpointError`` for
    any other file."""
    ck = checkpoint.load(path, algo=algo)
    mode = ck.meta.get("mode", "single" if not isinstance(ck.state, dict) else "population")
    want = "data-parallel" if data_parallel else "population"
    got = {"single": "one agent's", "data_parallel": "data-parallel"}.get(mode, "population")
    if not isinstance(ck.state, dict) or set(ck.state) != {"states", "recent", "keys"}:
        got = "one agent's"
    if got != want:
        raise checkpoint.CheckpointError(f"{path}: a {got} checkpoint, not a {want} one")
    return ck


@dataclasses.dataclass
class PopulationResult:
    """What :func:`train` returns: final states and hparams ``[P]``, per-member history.

    ``eval_returns`` ``[P]`` are the last evaluation's; ``updates`` counts resumed ones;
    ``reached_target_at``: env steps per member at the evaluation where the best member
    first reached ``target_return``; ``interrupted``: the signal that stopped training
    early (``"SIGINT"``/``"SIGTERM"``), after a checkpoint.
    """

    states: Any
    hparams: Any
    eval_returns: torch.Tensor
    history: list[dict[str, Any]]
    updates: int
    env_steps_per_member: int
    wall_time_s: float
    compile_time_s: float
    table: str
    reached_target_at: int | None = None
    interrupted: str | None = None


def ranking_table(hps: Any, scores: torch.Tensor, top: int | None = None) -> str:
    """A plain-text table of members ranked by ``scores`` with their hyperparameters."""
    names = [f.name for f in dataclasses.fields(hps)]
    order = torch.argsort(torch.nan_to_num(scores, nan=-math.inf), descending=True).tolist()
    header = f"{'rank':>4} {'member':>6} {'return':>9} " + " ".join(f"{n:>12}" for n in names)
    lines = [header]
    for rank, i in enumerate(order[:top] if top else order, start=1):
        vals = " ".join(f"{float(getattr(hps, n)[i]):>12.4g}" for n in names)
        lines.append(f"{rank:>4} {i:>6} {float(scores[i]):>9.2f} {vals}")
    return "\n".join(lines)


# PBT over a (possibly sharded) population: (key, states, hps, scores, config, size) with
# this rank's shard of states, hps and scores -> (states, hps, source [P]).
PBTStep = Callable[[torch.Tensor, Any, Any, torch.Tensor, PBTConfig, int], tuple[Any, Any, Any]]


def _local_pbt(
    key: torch.Tensor, states: Any, hps: Any, scores: torch.Tensor, config: PBTConfig, size: int
) -> tuple[Any, Any, torch.Tensor]:
    return pbt_step(key, states, hps, scores, config)


def population_runner(
    algo: Algo,
    keys: torch.Tensor,
    hps: Any,
    compile: bool,
    chunk_size: int | None,
    eval_episodes: int,
    comm: L.Comm = L.LOCAL,
    pbt_fn: PBTStep = _local_pbt,
) -> L.Runner:
    """A vmapped population; with a ``comm`` over ranks, this rank's shard of it.

    Member ``i`` is initialised and evaluated from ``split_key(keys[i])`` exactly as
    ``funrl.train(algo, keys[i], hps[i])`` would, so neither the population size nor
    the sharding changes what it computes (up to float rounding of vmapped kernels at
    other batch sizes).  PBT's key is ``fold_in(keys[0], 0x9B7)`` folded with the update.
    Checkpoints are :func:`save_members` files of the whole population (any world size
    resumes them).  :func:`train` gives the arguments and their defaults; ``comm`` and
    ``pbt_fn`` (PBT on this rank's shard) spread it over processes (mode ``"sharded"``).
    """
    mode = "population" if comm is L.LOCAL else "sharded"
    size = check_population(hps, keys)
    lo, hi = comm.bounds(size)
    palgo = algo.with_units(population_units(compile=compile, chunk_size=chunk_size))
    k_init, k_eval = split_key(keys)
    evaluate_fn = make_evaluate(
        algo, eval_episodes, compile=compile, members=True, compile_after=EAGER_EVALUATIONS
    )
    pbt_key = R.fold_in(keys[0], 0x9B7)

    def shard(t: Any) -> Any:
        return tree.map(lambda x: x[lo:hi], t)

    def columns(
        update: int, states: Any, metrics: dict[str, torch.Tensor], hps_s: Any
    ) -> dict[str, list[float]]:
        hp_cols = {f"hp.{f.name}": getattr(hps_s, f.name) for f in dataclasses.fields(hps_s)}
        names, table = L.metric_columns({**metrics, **hp_cols})
        whole = comm.all_gather(table, size)
        return {k: whole[:, j].tolist() for j, k in enumerate(names)}

    def evaluate_at(states: Any, index: int) -> torch.Tensor:
        rets = evaluate_fn(states, R.fold_in(k_eval[lo:hi], index)).nanmean(dim=1)
        return comm.all_gather(rets, size)

    def pbt(index: int, states: Any, hps_s: Any, scores: torch.Tensor, config: Any) -> Any:
        key = R.fold_in(pbt_key, index)
        return pbt_fn(key, states, hps_s, scores[lo:hi], config, size)[:2]

    def save(path: Any, states: Any, hps_s: Any, scores: torch.Tensor, meta: dict) -> None:
        members = {"states": states, "recent": scores[lo:hi], "keys": keys[lo:hi]}
        gathered = comm.gather((members, hps_s), size)  # the whole population on rank 0
        if comm.rank == 0:
            meta = {**meta, "mode": mode, "population": size, "world_size": comm.world}
            save_members(path, algo, gathered[0], gathered[1], meta)
        comm.broadcast(torch.zeros(1))  # no rank returns before the file is complete

    def load(path: Any) -> tuple[Any, Any, torch.Tensor, int]:
        ck = load_members(path, algo)
        if ck.state["keys"].shape[0] != size:
            raise ValueError(
                f"resume: {path} holds {ck.state['keys'].shape[0]} members, keys has {size}"
            )
        return shard(ck.state["states"]), shard(ck.hparams), ck.state["recent"], ck.meta["updates"]

    return L.Runner(
        algo=algo, mode=mode, size=size, members=True, steps=algo.steps_per_update, comm=comm,
        init=lambda: (palgo.init(k_init[lo:hi], shard(hps)), shard(hps)), update=palgo.update,
        columns=columns, evaluate=evaluate_at, pbt=pbt, save=save, load=load,
        result=lambda states, hps_s: comm.gather((states, hps_s), size),
    )  # fmt: skip


def population_result(step: L.Step) -> PopulationResult | None:
    """The :class:`PopulationResult` of a finished population :func:`funrl.loop.run`
    (``None`` on the ranks other than 0 of a sharded run)."""
    if step.final is None:
        return None
    states, hps = step.final
    table = ranking_table(hps, step.eval_returns)
    return PopulationResult(
        states, hps, step.eval_returns, step.history, env_steps_per_member=step.env_steps,
        table=table, **step.timing(),
    )  # fmt: skip


def train(
    algo: Algo,
    keys: torch.Tensor,
    hps: Any,
    *,
    compile: bool = True,
    chunk_size: int | None = None,
    eval_episodes: int = 10,
    pbt: PBTConfig | None = None,
    **options: Unpack[L.Options],
) -> PopulationResult:
    """Train a population in this process: member ``i`` uses ``keys[i]`` and ``hps[i]``.

    Args:
      algo: any funrl algorithm (single-member ``make``; units are vmapped here).
      keys: ``[P, 2]`` (see :func:`member_keys`); member ``i`` follows
        ``funrl.train(algo, keys[i], hps[i])``'s key derivation.
      hps: HParams whose every leaf is ``[P]`` (see :func:`hparams`, :func:`grid`,
        :func:`sample`).
      compile: compile each vmapped unit, and the evaluation step from the third
        evaluation on (changing hparams values never recompiles).
      chunk_size: vmap in chunks of this many members: less peak memory; results equal
        the unchunked run's up to float rounding (chunks are strided slices).
      eval_episodes: episodes per member per evaluation.
      pbt: run :func:`pbt_step` every ``pbt.interval`` updates, scored by each member's
        recent training episode return.
      options: the loop's features, the same in every mode (:func:`funrl.loop.run`):
        ``num_updates``, ``out_dir`` (one row per member per update, ``hp.*`` columns),
        ``progress``, ``eval_every``, ``target_return`` (stop once the best member
        reaches it), ``callback(update, states, rows)``, ``checkpoint_path``,
        ``checkpoint_every``, ``resume``, ``hooks`` (more hook functions, after the
        standard ones: ``funrl.hooks``).
    """
    runner = population_runner(algo, keys, hps, compile, chunk_size, eval_episodes)
    result = population_result(L.run(runner, pbt=pbt, **options))
    assert result is not None  # one process: rank 0
    return result
