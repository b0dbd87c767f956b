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
:func:`funrl.distributed.ranks_comm`) and
:func:`funrl.distributed.data_parallel_runner` (one agent over ranks).  The entry points
``funrl.train``, ``funrl.population.train``, ``funrl.distributed.train_population`` and
``funrl.distributed.train_data_parallel`` each build one and call :func:`run`.

A hook is any function ``hook(step: Step) -> None`` (the standard ones are in
:mod:`funrl.hooks`); it may add columns to ``step.rows``, replace
``step.state``/``step.hparams`` or set ``step.stop``.

Example (a runner by hand, and a hook of one's own)::

    >>> import funrl
    >>> from funrl import loop
    >>> from funrl.algos import ppo
    >>> from funrl.train import single_runner
    >>> algo = ppo.make(ppo.Config(num_envs=2, num_steps=8, hidden=(8,)))
    >>> runner = single_runner(algo, funrl.random.key(0), ppo.HParams.create(),
    ...                        compile=False, eval_episodes=1)
    >>> losses = []
    >>> def record(step):
    ...     if not step.done:
    ...         losses.append(step.rows[0]["loss"])
    >>> step = loop.run(runner, num_updates=2, progress=False, hooks=[record])
    >>> step.update, len(step.history), len(losses)
    (2, 2, 2)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypedDict

import torch

from funrl import hooks as H
from funrl.algos.common import Algo
from funrl.hooks import MetricsWriter

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
      interrupted: ``"SIGINT"``/``"SIGTERM"`` when a signal stopped the run (the update
        in progress finished, no final evaluation ran, the checkpoint was written); set
        on every rank by :func:`funrl.hooks.agree`.
      signal: the signal this process received (not yet agreed over ranks).
      info: what the run records of itself in ``summary.json`` and checkpoints (seed,
        command line: ``run(..., run_info=)``).
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
    interrupted: str | None = None
    signal: str | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    t_start: float = dataclasses.field(default_factory=time.perf_counter)
    wall_time_s: float = 0.0
    compile_time_s: float = 0.0
    update_s: float = 0.0

    @property
    def env_steps(self) -> int:
        """Env steps each agent has trained on (resumed ones included)."""
        return self.update * self.runner.steps

    def timing(self) -> dict[str, Any]:
        """``updates``, ``wall_time_s``, ``compile_time_s`` and ``reached_target_at``: what
        every result reports of a run."""
        return {
            "updates": self.update,
            "wall_time_s": self.wall_time_s,
            "compile_time_s": self.compile_time_s,
            "reached_target_at": self.reached_target_at,
            "interrupted": self.interrupted,
        }


Hook = Callable[[Step], None]
Callback = Callable[[int, Any, Any], bool | None]


class Options(TypedDict, total=False):
    """The features every training entry point takes, with :func:`run`'s defaults:
    ``num_updates``, ``out_dir``, ``progress``, ``eval_every``, ``target_return``,
    ``callback``, ``checkpoint_path``, ``checkpoint_every``, ``resume``, ``hooks``,
    ``run_info``, ``handle_signals``."""

    num_updates: int | None
    out_dir: str | os.PathLike[str] | None
    progress: bool
    eval_every: int | None
    target_return: float | None
    callback: Callback | None
    checkpoint_path: str | os.PathLike[str] | None
    checkpoint_every: int | None
    resume: str | os.PathLike[str] | None
    hooks: Sequence[Hook]
    run_info: dict[str, Any] | None
    handle_signals: bool


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
    run_info: dict[str, Any] | None = None,
    handle_signals: bool = True,
) -> Step:
    """Train ``runner`` to ``num_updates`` updates; returns the final :class:`Step`.

    Args:
      runner: the mode (see the module docstring).
      num_updates: updates in all, resumed ones included (default: as many as
        ``config.total_timesteps`` env steps per agent take, ``Runner.steps`` each: a
        data-parallel run's ranks share them).
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
      run_info: plain values the run records of itself (seed, command line, ...): written
        to ``summary.json`` and into every checkpoint's ``meta``.
      handle_signals: in the main thread, SIGINT (Ctrl-C) and SIGTERM stop the run once
        the update in progress is done: the checkpoint is written (when
        ``checkpoint_path`` is set), ``summary.json`` says ``"status": "interrupted"`` and
        ``Step.interrupted`` names the signal; a second Ctrl-C aborts at once
        (``KeyboardInterrupt``).  ``summary.json`` says ``"running"`` while training and
        ``"completed"`` at the end.
    """
    # default: the config's env steps per agent (data-parallel: over all ranks together)
    steps_wanted = getattr(runner.algo.config, "total_timesteps", None)
    if num_updates is not None:
        total = num_updates
    elif steps_wanted is not None:
        total = max(1, steps_wanted // runner.steps)
    else:
        total = runner.algo.config.num_updates
    if total < 1:
        raise ValueError(f"num_updates must be >= 1, got {total}")
    for name, every in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if every is not None and every < 1:
            raise ValueError(f"{name} must be >= 1 or None, got {every}")
    if pbt is not None and runner.pbt is None:
        raise ValueError(f"pbt: PBT needs a population, not a {runner.mode} run")
    if runner.comm.rank == 0:
        _warn_plan(runner, total, steps_wanted, num_updates, eval_every, target_return)
    if resume is not None:
        state, hparams, scores, start = runner.load(resume)
    else:
        (state, hparams), scores, start = runner.init(), _nan(runner.size), 0
    step = Step(runner, total, start, state, hparams, scores, update=start)
    step.info = dict(run_info or {})
    all_hooks = [
        H.evaluation(eval_every, target_return),
        H.metrics_files(out_dir, start),
        H.progress_bar(progress),
        H.user_callback(callback),
        H.agree,
        H.population_based_training(pbt),
        H.checkpoints(checkpoint_path, checkpoint_every),
        H.thread_contention(),
        *hooks,
    ]
    from funrl.compiling import compile_events

    status = H.CompileStatus() if progress and runner.comm.rank == 0 else None
    with (
        _signals_stop(step, handle_signals),
        compile_events(status) if status is not None else contextlib.nullcontext(),
    ):
        H.write_started_summary(out_dir, step)
        while step.update < total and not step.stop:
            _update(step)
            for hook in all_hooks:
                hook(step)
        step.done, step.wall_time_s = True, time.perf_counter() - step.t_start
        step.final = runner.result(step.state, step.hparams)
        for hook in all_hooks:
            hook(step)
    if runner.comm.rank == 0 and not step.interrupted:
        _warn_evaluation(step)
    return step


def _warn_plan(
    runner: Runner,
    total: int,
    steps_wanted: int | None,
    num_updates: int | None,
    eval_every: int | None,
    target_return: float | None,
) -> None:
    """Warn (``UserWarning``) about a run that cannot do what it was asked as configured."""
    if num_updates is None and steps_wanted is not None and steps_wanted < runner.steps:
        warnings.warn(
            f"total_timesteps ({steps_wanted:,}) is less than one update "
            f"({runner.steps:,} env steps per agent): training one update",
            stacklevel=3,
        )
    if eval_every is not None and eval_every > total:
        warnings.warn(
            f"eval_every ({eval_every}) is more than the run's {total} updates: only the "
            "final evaluation runs",
            stacklevel=3,
        )
    if target_return is not None and (eval_every is None or eval_every >= total):
        warnings.warn(
            f"target_return ({target_return:g}) is checked at evaluations, and this run only "
            "evaluates at the end: it cannot stop early (set eval_every)",
            stacklevel=3,
        )


def _warn_evaluation(step: Step) -> None:
    """Warn when the final evaluation has no return (no episode finished in time)."""
    rets = step.eval_returns
    if rets.numel() and not bool(torch.isfinite(rets).all()):
        bad = int((~torch.isfinite(rets)).sum())
        who = "the agent" if step.runner.size == 1 else f"{bad} of {step.runner.size} agents"
        warnings.warn(
            f"evaluation: {who} finished no evaluation episode within the step limit "
            "(its return is NaN): the episodes are longer than the evaluator's max_steps, "
            "or the env never ends them",
            stacklevel=3,
        )


@contextlib.contextmanager
def _signals_stop(step: Step, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM set ``step.signal`` (:func:`funrl.hooks.agree` then stops the run
    after the update in progress); a second SIGINT raises ``KeyboardInterrupt``.  The previous handlers come
    back on exit.  Only in the main thread (Python delivers signals there)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if step.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        step.signal = name
        if step.runner.comm.rank == 0:
            print(
                f"\nfunrl: {name}: stopping after the update in progress and saving "
                "(Ctrl-C again to abort at once)",
                file=sys.stderr,
                flush=True,
            )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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
