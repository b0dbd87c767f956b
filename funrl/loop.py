"""The one host loop: every training mode is a :class:`Runner` driven by :func:`run`.

A runner says how one mode initialises, updates, reads its metrics, evaluates, runs PBT
and saves or loads a checkpoint; :func:`run` does everything else the same way in every
mode, through hooks called after each update and once more at the end:

* evaluation every ``eval_every`` updates and at the end; ``target_return`` stops training;
* ``metrics.jsonl``/``metrics.csv`` (one row per update, per member for populations) and
  ``summary.json`` in ``out_dir``;
* a progress bar (tqdm when installed, else a line every 2 s);
* the user's ``callback(update, state, row)`` (True stops);
* PBT every ``pbt.interval`` updates (populations);
* a checkpoint every ``checkpoint_every`` updates and at the end; ``resume`` continues one.

The runners: :func:`funrl.train.single_runner` (one agent),
:func:`funrl.population.population_runner` (vmapped members; sharded over ranks with
:func:`funrl.distributed.sharded_runner`) and
:func:`funrl.distributed.data_parallel_runner` (one agent over ranks).  The entry points
``funrl.train``, ``funrl.population.train``, ``funrl.distributed.train_population`` and
``funrl.distributed.train_data_parallel`` each build one and call :func:`run`.

A hook is any function ``hook(step: Step) -> None``; it may add columns to
``step.rows``, replace ``step.state``/``step.hparams`` or set ``step.stop``.  Hooks that
do collectives (evaluation, PBT, checkpoints in sharded modes) depend only on update
counters, which every rank agrees on, never on a rank's own ``stop``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import torch

from funrl.algos.common import Algo

__all__ = [
    "LOCAL",
    "Comm",
    "Hook",
    "MetricsWriter",
    "Options",
    "Runner",
    "Step",
    "metric_columns",
    "run",
]


class Comm(NamedTuple):
    """How the members of a run are spread over processes (identities in one process).

    Attributes:
      rank, world: this process's rank and the number of processes.
      bounds: ``bounds(size) -> (start, stop)``: the members this rank holds.
      all_gather: ``all_gather(shard, size)``: the whole population (leaves ``[size, ...]``)
        on every rank from every rank's shard.
      gather: the same, only on rank 0 (``None`` elsewhere).
      broadcast: ``broadcast(tree)``: rank 0's ``tree`` on every rank.
      any: ``any(flag)``: True on every rank if it is True on any rank.
    """

    rank: int
    world: int
    bounds: Callable[[int], tuple[int, int]]
    all_gather: Callable[[Any, int], Any]
    gather: Callable[[Any, int], Any]
    broadcast: Callable[[Any], Any]
    any: Callable[[bool], bool]


def _whole(t: Any, size: int) -> Any:
    return t


LOCAL = Comm(0, 1, lambda size: (0, size), _whole, _whole, lambda t: t, bool)


class Runner(NamedTuple):
    """One training mode, as :func:`run` sees it.  Every function runs on every rank.

    Attributes:
      algo: the algorithm (names, config).
      mode: ``"single"``, ``"population"``, ``"sharded"`` or ``"data_parallel"``.
      size: agents trained: 1, or the population size ``P``.
      members: rows carry a ``member`` column (populations).
      steps: env steps each agent trains on per update.
      comm: how the run is spread over processes (:data:`LOCAL` in one process).
      init: ``init() -> (state, hparams)``: this rank's part.
      update: ``update(state, hparams) -> (state, metrics)``: one update.
      columns: ``columns(update, state, metrics, hparams) -> {name: [size floats]}``: the
        metrics (and hyperparameters) of every agent after ``update`` updates, on every
        rank.
      evaluate: ``evaluate(state, index) -> [size]``: mean evaluation return of every agent,
        evaluated with keys folded from ``index`` (the 0-based update), on every rank.
      pbt: ``pbt(index, state, hparams, scores [size], config) -> (state, hparams)``, or
        ``None`` where PBT does not apply.
      save: ``save(path, state, hparams, scores [size], meta)``: write a checkpoint.
      load: ``load(path) -> (state, hparams, scores [size], updates)``: this rank's part.
      result: ``result(state, hparams) -> (state, hparams)``: the whole run's (on rank 0;
        ``None`` on other ranks of a sharded run).
    """

    algo: Algo
    mode: str
    size: int
    members: bool
    steps: int
    comm: Comm
    init: Callable[[], tuple[Any, Any]]
    update: Callable[[Any, Any], tuple[Any, dict[str, torch.Tensor]]]
    columns: Callable[[int, Any, dict[str, torch.Tensor], Any], dict[str, list[float]]]
    evaluate: Callable[[Any, int], torch.Tensor]
    pbt: Callable[[int, Any, Any, torch.Tensor, Any], tuple[Any, Any]] | None
    save: Callable[[str | os.PathLike[str], Any, Any, torch.Tensor, dict[str, Any]], None]
    load: Callable[[str | os.PathLike[str]], tuple[Any, Any, torch.Tensor, int]]
    result: Callable[[Any, Any], tuple[Any, Any] | None]


@dataclasses.dataclass
class Step:
    """Where training stands, as hooks see (and change) it after each update.

    Attributes:
      runner, total: the runner and the number of updates to reach.
      start: updates done before this run (resumed from a checkpoint).
      update: updates done so far (1-based, counting resumed ones).
      state, hparams: this rank's train state and hyperparameters.
      rows: this update's rows (one per agent): metrics, ``update``, ``env_steps``,
        ``update_s``, ``time_s`` (and ``member``, ``hp.*`` for populations); hooks add
        columns (``eval_return``).
      history: every row so far.
      scores: ``[size]`` each agent's most recent training episode return (NaN before one).
      eval_returns: ``[size]`` the last evaluation's mean returns (NaN before one).
      evaluated_at: the update of the last evaluation (-1: none).
      reached_target_at: env steps (per agent) at the evaluation that reached the target.
      stop: set by a hook to stop after this update (agreed over ranks).
      done: True in the final call of every hook, after the last update.
      final: ``(state, hparams)`` of the whole run at the end (``Runner.result``).
    """

    runner: Runner
    total: int
    start: int
    state: Any
    hparams: Any
    scores: torch.Tensor
    update: int = 0
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    eval_returns: torch.Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    evaluated_at: int = -1
    reached_target_at: int | None = None
    stop: bool = False
    done: bool = False
    final: tuple[Any, Any] | None = None
    t_start: float = dataclasses.field(default_factory=time.perf_counter)
    wall_time_s: float = 0.0
    compile_time_s: float = 0.0
    update_s: float = 0.0


Hook = Callable[[Step], None]
Callback = Callable[[int, Any, Any], bool | None]


class Options(TypedDict, total=False):
    """The features every training entry point takes, with :func:`run`'s defaults:
    ``num_updates``, ``out_dir``, ``progress``, ``eval_every``, ``target_return``,
    ``callback``, ``checkpoint_path``, ``checkpoint_every``, ``resume``."""

    num_updates: int | None
    out_dir: str | os.PathLike[str] | None
    progress: bool
    eval_every: int | None
    target_return: float | None
    callback: Callback | None
    checkpoint_path: str | os.PathLike[str] | None
    checkpoint_every: int | None
    resume: str | os.PathLike[str] | None


def metric_columns(metrics: dict[str, torch.Tensor]) -> tuple[list[str], torch.Tensor]:
    """``(names, table [n, M] float64)`` of metrics that are 0-d (n = 1) or ``[n]``, in the
    dict's order."""
    names = list(metrics)
    cols = [metrics[k].detach().to(torch.float64).reshape(-1) for k in names]
    table = torch.stack(cols, dim=1) if cols else torch.zeros(1, 0, dtype=torch.float64)
    return names, table


# ---- the loop ------------------------------------------------------------------------------


def run(
    runner: Runner,
    *,
    num_updates: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    eval_every: int | None = None,
    target_return: float | None = None,
    callback: Callback | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    pbt: Any = None,
    hooks: Sequence[Hook] = (),
) -> Step:
    """Train ``runner`` to ``num_updates`` updates; returns the final :class:`Step`.

    Args:
      runner: the mode (see the module docstring).
      num_updates: updates in all, resumed ones included (default: the config's).
      out_dir: rank 0 writes ``metrics.jsonl``/``.csv`` and ``summary.json`` there.
      progress: rank 0 shows progress (env steps/s, best recent and evaluation return).
      eval_every: evaluate every this many updates; always at the end.
      target_return: stop after the first evaluation whose best agent reaches it.
      callback: ``callback(update_index, state, row) -> stop?`` after every update, on
        every rank with its own state; ``row`` is a dict (one agent) or a list of dicts
        (one per member).
      checkpoint_path, checkpoint_every: write a checkpoint there every this many updates
        and at the end (``Runner.save``).
      resume: a checkpoint to continue from (state, hyperparameters and scores).
      pbt: a :class:`funrl.population.PBTConfig` (populations only).
      hooks: more hooks, called after the standard ones.
    """
    total = num_updates if num_updates is not None else runner.algo.config.num_updates
    if total < 1:
        raise ValueError(f"num_updates must be >= 1, got {total}")
    for name, every in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if every is not None and every < 1:
            raise ValueError(f"{name} must be >= 1 or None, got {every}")
    if pbt is not None and runner.pbt is None:
        raise ValueError(f"pbt: PBT needs a population, not a {runner.mode} run")
    if resume is not None:
        state, hparams, scores, start = runner.load(resume)
    else:
        (state, hparams), scores, start = runner.init(), _nan(runner.size), 0
    step = Step(runner, total, start, state, hparams, scores, update=start)
    all_hooks = [
        evaluation(eval_every, target_return),
        metrics_files(out_dir, start),
        progress_bar(progress),
        user_callback(callback),
        agree,
        population_based_training(pbt),
        checkpoints(checkpoint_path, checkpoint_every),
        *hooks,
    ]
    while step.update < total and not step.stop:
        _update(step)
        for hook in all_hooks:
            hook(step)
    step.done, step.wall_time_s = True, time.perf_counter() - step.t_start
    step.final = runner.result(step.state, step.hparams)
    for hook in all_hooks:
        hook(step)
    return step


def _nan(size: int) -> torch.Tensor:
    return torch.full((size,), float("nan"))


def _update(step: Step) -> None:
    """One update: rows of every agent, scores and timings."""
    r = step.runner
    t0 = time.perf_counter()
    step.state, metrics = r.update(step.state, step.hparams)
    step.update += 1
    cols = r.columns(step.update, step.state, metrics, step.hparams)  # host floats: a sync
    dt = time.perf_counter() - t0
    if step.update == step.start + 1:
        step.compile_time_s = dt
    elif step.update == step.start + 2:  # first update's time beyond a steady one
        step.compile_time_s = max(0.0, step.compile_time_s - dt)
    step.update_s = dt
    now = time.perf_counter() - step.t_start
    step.rows = []
    for i in range(r.size):
        row: dict[str, Any] = {"update": step.update, "member": i} if r.members else {}
        row.update({k: v[i] for k, v in cols.items()})
        row.update(update_s=dt, env_steps=step.update * r.steps, time_s=now)
        if not r.members:
            row["update"] = step.update
        step.rows.append(row)
    step.history.extend(step.rows)
    ret = torch.tensor(cols.get("episode_return", [math.nan] * r.size), dtype=torch.float32)
    step.scores = torch.where(torch.isnan(ret), step.scores, ret)


# ---- hooks ---------------------------------------------------------------------------------


def evaluation(every: int | None, target_return: float | None) -> Hook:
    """Evaluate every ``every`` updates, at the last update and at the end if not yet;
    adds ``eval_return`` to the rows and stops once the best agent reaches the target."""

    def hook(step: Step) -> None:
        if step.done:
            due = step.evaluated_at != step.update
        else:
            due = step.update == step.total or bool(every and step.update % every == 0)
        if not due:
            return
        rets = step.runner.evaluate(step.state, step.update - 1)
        step.eval_returns, step.evaluated_at = rets, step.update
        if not step.done:
            for row, value in zip(step.rows, rets.tolist()):
                row["eval_return"] = value
        best = float(torch.nan_to_num(rets, nan=-math.inf).max())
        if target_return is not None and step.reached_target_at is None and best >= target_return:
            step.reached_target_at = step.update * step.runner.steps
            step.stop = True

    return hook


def metrics_files(out_dir: str | os.PathLike[str] | None, start: int = 0) -> Hook:
    """Rank 0 appends the rows to ``metrics.jsonl``/``.csv`` and writes ``summary.json``
    at the end.  Resuming keeps the rows up to the checkpoint's update."""
    writer: MetricsWriter | None = None

    def hook(step: Step) -> None:
        nonlocal writer
        if out_dir is None or step.runner.comm.rank != 0:
            return
        if writer is None:
            writer = MetricsWriter(out_dir, keep_until=start if start else None)
        if step.done:
            summary = _summary(step)
            (Path(out_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
            return
        for row in step.rows:
            writer.write(row)

    return hook


def _summary(step: Step) -> dict[str, Any]:
    r = step.runner
    hps = step.final[1] if step.final is not None else step.hparams
    flat, _ = torch.utils._pytree.tree_flatten_with_path(hps)
    rets = step.eval_returns.tolist()
    out: dict[str, Any] = {
        "algo": r.algo.name,
        "env": r.algo.config.env,
        "mode": r.mode,
        "world_size": r.comm.world,
        "updates": step.update,
        "env_steps": step.update * r.steps,
        "eval_return": max(rets, key=lambda x: -math.inf if math.isnan(x) else x),
        "wall_time_s": step.wall_time_s,
        "compile_time_s": step.compile_time_s,
        "reached_target_at": step.reached_target_at,
        "hparams": {torch.utils._pytree.keystr(p).lstrip("."): v.tolist() for p, v in flat},
    }
    if r.members:
        out["eval_returns"] = rets
    return out


def progress_bar(enabled: bool) -> Hook:
    """Rank 0's progress: env steps/s of the whole run, best recent training return (and
    the median over members), best last evaluation return."""
    bar: _Progress | None = None

    def hook(step: Step) -> None:
        nonlocal bar
        r = step.runner
        if not enabled or r.comm.rank != 0:
            return
        if bar is None:
            total_steps = (step.total - step.start) * r.steps * r.size
            bar = _Progress(total_steps, f"{r.algo.name} {r.algo.config.env} ({r.mode})")
        if step.done:
            bar.close()
            return
        finite = step.scores[~torch.isnan(step.scores)]
        postfix = {"sps": f"{r.size * r.steps / step.update_s:,.0f}"}
        postfix["return"] = f"{float(finite.max()):.1f}" if finite.numel() else "nan"
        if r.members:
            postfix["median"] = f"{float(finite.median()):.1f}" if finite.numel() else "nan"
        if step.evaluated_at > 0:
            postfix["eval"] = f"{float(torch.nan_to_num(step.eval_returns, -math.inf).max()):.1f}"
        bar.update(r.size * r.steps, postfix, step.update, step.total)

    return hook


def user_callback(callback: Callback | None) -> Hook:
    """``callback(update_index, state, row)``; a true result stops training."""

    def hook(step: Step) -> None:
        if callback is None or step.done:
            return
        row = step.rows if step.runner.members else step.rows[0]
        if callback(step.update - 1, step.state, row):
            step.stop = True

    return hook


def agree(step: Step) -> None:
    """Every rank stops if any rank's hooks asked to (one collective in sharded modes)."""
    if not step.done:
        step.stop = step.runner.comm.any(step.stop)


def population_based_training(config: Any) -> Hook:
    """PBT every ``config.interval`` updates, scored by recent training returns (not at
    the last update, nor when stopping)."""

    def hook(step: Step) -> None:
        if config is None or step.done or step.stop or step.update >= step.total:
            return
        if step.update % config.interval == 0:
            step.state, step.hparams = step.runner.pbt(  # type: ignore[misc]
                step.update - 1, step.state, step.hparams, step.scores, config
            )

    return hook


def checkpoints(path: str | os.PathLike[str] | None, every: int | None) -> Hook:
    """A checkpoint every ``every`` updates and at the end (``Runner.save``)."""
    saved_at = -1

    def hook(step: Step) -> None:
        nonlocal saved_at
        if path is None:
            return
        due = step.update != saved_at if step.done else bool(every and step.update % every == 0)
        if due:
            meta = {"updates": step.update, "env_steps": step.update * step.runner.steps}
            meta["eval_return"] = step.eval_returns.tolist() if step.evaluated_at > 0 else None
            step.runner.save(path, step.state, step.hparams, step.scores, meta)
            saved_at = step.update

    return hook


# ---- output --------------------------------------------------------------------------------


class MetricsWriter:
    """Appends rows to ``metrics.jsonl`` and ``metrics.csv`` in ``out_dir``.

    The CSV's columns are those seen so far: a row with a new column (the first
    ``eval_return``) rewrites the CSV from the JSON lines.  ``keep_until``: keep the
    existing rows up to that update (resuming), else start empty.
    """

    def __init__(self, out_dir: str | os.PathLike[str], keep_until: int | None = None) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._jsonl, self._csv = self.dir / "metrics.jsonl", self.dir / "metrics.csv"
        kept = []
        if keep_until is not None and self._jsonl.is_file():
            kept = [r for r in self._read() if r.get("update", 0) <= keep_until]
        self._jsonl.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._fields: list[str] = []
        self._rewrite_csv(kept)

    def _read(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._jsonl.read_text().splitlines() if line]

    def _rewrite_csv(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._fields += [k for k in row if k not in self._fields]
        with open(self._csv, "w", newline="") as f:
            w = csv.DictWriter(f, self._fields)
            if self._fields:
                w.writeheader()
            w.writerows({k: row.get(k, "") for k in self._fields} for row in rows)

    def write(self, row: dict[str, Any]) -> None:
        with open(self._jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
        if any(k not in self._fields for k in row):
            self._rewrite_csv(self._read())
            return
        with open(self._csv, "a", newline="") as f:
            csv.DictWriter(f, self._fields).writerow({k: row.get(k, "") for k in self._fields})

    def close(self) -> None:
        """Nothing to do (every write opens and closes the files); kept for old callers."""


class _Progress:
    """A tqdm bar when tqdm is installed, else a line on stderr at most every 2 s."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar = None
        self.last_print = 0.0
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total, desc=desc, unit="step", unit_scale=True, dynamic_ncols=True
            )
        except ImportError:
            pass

    def update(self, steps: int, postfix: dict[str, str], done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix(postfix, refresh=False)
        elif time.time() - self.last_print > 2.0 or done == total:
            self.last_print = time.time()
            items = " ".join(f"{k}={v}" for k, v in postfix.items())
            print(f"[{done}/{total}] {items}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
