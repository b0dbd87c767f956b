"""Vmapped populations: many agents, each with its own hyperparameters and key, one call.

Every leaf of ``hparams`` carries a leading population dim ``P``; ``vmap(init)`` builds
``P`` train states and the algorithm's compute units run vmapped over them
(``funrl.algos.units.population``), driven by the same host loop as single training.

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
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from funrl import random as R
from funrl import tree
from funrl.algos.common import Algo
from funrl.algos.units import population as population_units
from funrl.envs.vector import VecEnv
from funrl.envs.wrappers import EpisodeStatistics
from funrl.train import MetricsWriter

__all__ = [
    "PBTConfig",
    "PopulationResult",
    "check_population",
    "evaluate",
    "grid",
    "hparams",
    "member_keys",
    "pbt_step",
    "ranking_table",
    "sample",
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


# ---- evaluation and training ------------------------------------------------------------


def evaluate(
    algo: Algo, states: Any, key: torch.Tensor, num_episodes: int = 10, max_steps: int = 10_000
) -> torch.Tensor:
    """``[P]`` mean deterministic-evaluation return of each member (vmapped episodes)."""
    env = EpisodeStatistics(VecEnv(algo.env_stack.eval_env, num_episodes))
    env_params = algo.env_stack.env_params
    params = torch.func.vmap(algo.act_params)(states)
    size = tree.leaves(params)[0].shape[0]
    keys = R.split(key, size)
    obs, env_state = torch.func.vmap(lambda k: env.reset(k, env_params), randomness="error")(keys)

    def step(p: Any, o: torch.Tensor, s: Any, k: torch.Tensor) -> Any:
        a = algo.act(p, o)
        o, s, _, _, _, info = env.step(k, s, a, env_params)
        return o, s, info["episode_done"], info["episode_return"]

    vstep = torch.func.vmap(step, randomness="error")
    returns = torch.full((size, num_episodes), float("nan"))
    done = torch.zeros(size, num_episodes, dtype=torch.bool)
    for t in range(max_steps):
        obs, env_state, ep_done, ep_ret = vstep(params, obs, env_state, R.fold_in(keys, t))
        finished = ep_done & ~done
        returns = torch.where(finished, ep_ret.to(returns.dtype), returns)
        done = done | finished
        if bool(done.all()):
            break
    return returns.nanmean(dim=1)


@dataclasses.dataclass
class PopulationResult:
    """What :func:`train` returns: final states and hparams ``[P]``, per-member history."""

    states: Any
    hparams: Any
    eval_returns: torch.Tensor
    history: list[dict[str, Any]]
    updates: int
    env_steps_per_member: int
    wall_time_s: float
    compile_time_s: float
    table: str


def _rows(metrics: dict[str, torch.Tensor], update: int, hps: Any) -> list[dict[str, Any]]:
    size = next(iter(metrics.values())).shape[0]
    hp_cols = {f.name: getattr(hps, f.name).tolist() for f in dataclasses.fields(hps)}
    cols = {k: v.tolist() for k, v in metrics.items()}
    return [
        {
            "update": update,
            "member": i,
            **{k: c[i] for k, c in cols.items()},
            **{f"hp.{k}": c[i] for k, c in hp_cols.items()},
        }
        for i in range(size)
    ]


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


def train(
    algo: Algo,
    keys: torch.Tensor,
    hps: Any,
    *,
    num_updates: int | None = None,
    compile: bool = False,
    chunk_size: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    eval_episodes: int = 10,
    pbt: PBTConfig | None = None,
) -> PopulationResult:
    """Train a population: member ``i`` uses ``keys[i]`` and ``hps[i]``.

    Args:
      algo: any funrl algorithm (single-member ``make``; units are vmapped here).
      keys: ``[P, 2]`` (see :func:`member_keys`).
      hps: HParams whose every leaf is ``[P]`` (see :func:`hparams`, :func:`grid`,
        :func:`sample`).
      num_updates: default from the algorithm's config.
      compile: compile each vmapped unit (changing hparams values never recompiles).
      chunk_size: vmap in chunks of this many members: less peak memory; results equal
        the unchunked run's up to float rounding (chunks are strided slices).
      out_dir: ``metrics.jsonl``/``metrics.csv`` with one row per member per update.
      pbt: run :func:`pbt_step` every ``pbt.interval`` updates, scored by each member's
        recent training episode return.
    """
    size = check_population(hps, keys)
    total = num_updates if num_updates is not None else algo.config.num_updates
    if total < 1:
        raise ValueError(f"num_updates must be >= 1, got {total}")
    palgo = algo.with_units(population_units(compile=compile, chunk_size=chunk_size))
    states = palgo.init(keys, hps)  # vmapped; contiguous when compiled (units.population)
    writer = MetricsWriter(out_dir) if out_dir is not None else None
    history: list[dict[str, Any]] = []
    recent = torch.full((size,), float("nan"))
    pbt_key = R.fold_in(keys[0], 0x9B7)
    t_start = time.perf_counter()
    first_dt = compile_s = 0.0
    try:
        for i in range(total):
            t0 = time.perf_counter()
            states, metrics = palgo.update(states, hps)
            dt = time.perf_counter() - t0
            if i == 0:
                first_dt = dt
            elif i == 1:
                compile_s = max(0.0, first_dt - dt)
            ret = metrics.get("episode_return")
            if ret is not None:
                recent = torch.where(torch.isnan(ret), recent, ret)
            rows = _rows(metrics, i + 1, hps)
            for row in rows:
                row["update_s"] = dt
            history.extend(rows)
            if writer is not None:
                for row in rows:
                    writer.write(row)
            if pbt is not None and (i + 1) % pbt.interval == 0 and i + 1 < total:
                states, hps, _ = pbt_step(R.fold_in(pbt_key, i), states, hps, recent, pbt)
            if progress and (i % 10 == 0 or i == total - 1):
                finite = recent[~torch.isnan(recent)]
                best = float(finite.max()) if finite.numel() else math.nan
                med = float(finite.median()) if finite.numel() else math.nan
                sps = size * algo.steps_per_update / dt
                print(
                    f"[{i + 1}/{total}] population {size}: best {best:.1f} median {med:.1f} "
                    f"({sps:,.0f} steps/s)",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if writer is not None:
            writer.close()
    eval_returns = evaluate(algo, states, R.fold_in(keys[0], 0xE7A1), eval_episodes)
    table = ranking_table(hps, eval_returns)
    return PopulationResult(
        states,
        hps,
        eval_returns,
        history,
        total,
        total * algo.steps_per_update,
        time.perf_counter() - t_start,
        compile_s,
        table,
    )
