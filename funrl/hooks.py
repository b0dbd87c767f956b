"""The host loop's standard hooks (:func:`funrl.loop.run` calls them in this order after
every update, then once more with ``step.done``): evaluation, metric files, progress, the
user's callback, agreeing to stop over ranks, PBT, checkpoints, and a warning when the
run's threads contend for cores with another process.

A hook is a plain function ``hook(step: funrl.loop.Step) -> None``.  Those that do
collectives in sharded modes (evaluation, PBT, checkpoints) depend only on update
counters, which every rank agrees on, never on a rank's own ``stop``; :func:`agree`
comes before PBT and checkpoints.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from funrl.loop import Hook, Step

__all__ = [
    "CompileStatus",
    "MetricsWriter",
    "agree",
    "checkpoints",
    "evaluation",
    "metrics_files",
    "population_based_training",
    "progress_bar",
    "thread_contention",
    "user_callback",
    "write_started_summary",
]


def evaluation(every: int | None, target_return: float | None) -> Hook:
    """Evaluate every ``every`` updates, at the last update and at the end if not yet;
    adds ``eval_return`` to the rows and stops once the best agent reaches the target."""

    def hook(step: Step) -> None:
        if step.done:
            due = step.evaluated_at != step.update and step.interrupted is None
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


def write_started_summary(out_dir: str | os.PathLike[str] | None, step: Step) -> None:
    """Rank 0 writes ``summary.json`` with ``"status": "running"`` before the first update,
    so a run killed before it ends (kill -9, a crash) is recognisable as unfinished."""
    if out_dir is None or step.runner.comm.rank != 0:
        return
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    _write_json(Path(out_dir) / "summary.json", _summary(step, "running"))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


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
            status = "interrupted" if step.interrupted else "completed"
            _write_json(Path(out_dir) / "summary.json", _summary(step, status))
            return
        for row in step.rows:
            writer.write(row)

    return hook


def _summary(step: Step, status: str) -> dict[str, Any]:
    """What ``summary.json`` records: the run's status, identity (algorithm, env, seed,
    command line, full config, hyperparameters, versions) and results."""
    from funrl.checkpoint import versions

    r = step.runner
    hps = step.final[1] if step.final is not None else step.hparams
    flat, _ = torch.utils._pytree.tree_flatten_with_path(hps)
    rets = step.eval_returns.tolist()
    config = r.algo.config
    out: dict[str, Any] = {
        "status": status,
        "interrupted_by": step.interrupted,
        "algo": r.algo.name,
        "env": config.env,
        **step.info,
        "mode": r.mode,
        "world_size": r.comm.world,
        "resumed_from_update": step.start,
        "updates": step.update,
        "env_steps": step.update * r.steps,
        "eval_return": (
            max(rets, key=lambda x: -math.inf if math.isnan(x) else x) if rets else None
        ),
        "wall_time_s": step.wall_time_s,
        "compile_time_s": step.compile_time_s,
        "reached_target_at": step.reached_target_at,
        "hparams": {torch.utils._pytree.keystr(p).lstrip("."): v.tolist() for p, v in flat},
        "config": (
            _plain(dataclasses.asdict(config))
            if dataclasses.is_dataclass(config) and not isinstance(config, type)
            else {}
        ),
        "versions": versions(),
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
        if bar is None:  # after the first update: its compile time is not in the rate
            total_steps = (step.total - step.start) * r.steps * r.size
            desc = f"{r.algo.name} {r.algo.config.env} ({r.mode})"
            bar = _Progress(total_steps, desc, initial=r.size * r.steps)
            if step.done:
                bar.close()
            return
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


class CompileStatus:
    """Says on stderr which compiled function is compiling and for how long (a
    :func:`funrl.compiling.compile_events` listener): on a terminal one line that counts
    the seconds, elsewhere a line when it starts and one when it is done."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._stop: Any = None

    def __call__(self, name: str, event: str, seconds: float) -> None:
        if event == "start":
            self._write(f"compiling {name} ...", end="" if self.tty else "\n")
            if self.tty:
                self._tick(name)
            return
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        what = "compiled" if event == "end" else "recompiled"
        self._write(f"{chr(13) if self.tty else ''}{what} {name} in {seconds:.1f} s", end="\n")

    def _write(self, text: str, end: str) -> None:
        self.stream.write(text + end)
        self.stream.flush()

    def _tick(self, name: str) -> None:
        import threading

        stop = self._stop = threading.Event()
        t0 = time.perf_counter()

        def run() -> None:
            while not stop.wait(1.0):
                self._write(f"\rcompiling {name} ... {time.perf_counter() - t0:.0f} s", end="")

        threading.Thread(target=run, daemon=True).start()


def user_callback(callback: Callable[[int, Any, Any], bool | None] | None) -> Hook:
    """``callback(update_index, state, row)``; a true result stops training."""

    def hook(step: Step) -> None:
        if callback is None or step.done:
            return
        row = step.rows if step.runner.members else step.rows[0]
        if callback(step.update - 1, step.state, row):
            step.stop = True

    return hook


def thread_contention(
    threads: Callable[[], int] = torch.get_num_threads, window: int = 5, factor: float = 2.0
) -> Hook:
    """Warn once when updates slow down ``factor``-fold while this process runs several
    torch threads and fewer cores than that are free (another process took one: OpenMP
    threads then wait for the one sharing a core, see :mod:`funrl.runtime`).

    It compares the median of the last ``window`` update times with the best such median
    so far (the first two updates, which compile, are left out) and samples the free
    cores only when that ratio passes ``factor``; a slowdown with the cores free (an
    off-policy run that starts learning) becomes the new baseline instead."""
    from collections import deque

    recent: deque[float] = deque(maxlen=window)
    best, warned = math.inf, False

    def hook(step: Step) -> None:
        nonlocal best, warned
        if warned or step.done or step.update - step.start <= 2 or step.runner.comm.rank != 0:
            return
        n = threads()
        if n <= 1:
            return
        recent.append(step.update_s)
        if len(recent) < window:
            return
        median = sorted(recent)[window // 2]
        if median <= factor * best:
            best = min(best, median)
            return
        from funrl import runtime

        free = runtime.free_cores()
        if free < n:
            import warnings

            warnings.warn(
                f"updates slowed {median / best:.1f}x (median of the last {window}) while "
                f"{n} torch threads run with {free} core(s) free: another process is using "
                f"a core and the threads wait for the one that shares it; --threads {free} "
                "(or --threads auto at the start) avoids it",
                stacklevel=2,
            )
            warned = True
        best = median
        recent.clear()

    return hook


def agree(step: Step) -> None:
    """Every rank stops if any rank's hooks asked to, and every rank is interrupted if any
    rank received SIGINT/SIGTERM (``step.signal``): two collectives in sharded modes."""
    if step.done:
        return
    comm = step.runner.comm
    if comm.any(step.signal is not None):
        step.interrupted = step.signal or "a signal to another rank"
        step.stop = True
    step.stop = comm.any(step.stop)


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
            meta: dict[str, Any] = {**step.info, "updates": step.update}
            meta["status"] = (
                "interrupted" if step.interrupted else ("completed" if step.done else "running")
            )
            meta["env_steps"] = step.update * step.runner.steps
            meta["eval_return"] = step.eval_returns.tolist() if step.evaluated_at > 0 else None
            step.runner.save(path, step.state, step.hparams, step.scores, meta)
            saved_at = step.update

    return hook


def _plain(x: Any) -> Any:
    """``x`` as JSON values (tuples become lists, anything else its ``str``)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


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
        rows = []
        for line in self._jsonl.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # the half line a killed run left: dropped
                continue
        return rows

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

    def __init__(self, total: int, desc: str, initial: int = 0) -> None:
        self.bar = None
        self.last_print = 0.0
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit="step",
                unit_scale=True,
                dynamic_ncols=True,
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
