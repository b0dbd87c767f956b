"""Learning curves from run folders (``metrics.jsonl``), and TensorBoard export.

A run folder is what :func:`funrl.train` or :func:`funrl.population.train` writes with
``out_dir=...`` (``funrl train`` writes ``runs/<algo>-<env>-s<seed>-<time>``).  Runs
whose folder names differ only in the seed suffix (``-s0``, ``_seed3``, optionally
followed by ``funrl train``'s timestamp) are one curve: the mean over seeds with a
band of one standard deviation (and the min/max as thin lines).  A population run (rows
with a ``member`` column) is one curve over its members.

Example::

    >>> from funrl import plot
    >>> plot.group_label("ppo-CartPole-v1-s3-20250101-120000")
    'ppo-CartPole-v1'

Command line: ``funrl plot runs/ppo-* -o curves.png`` (needs the ``plot`` extra:
``pip install 'funrl[plot]'``, i.e. matplotlib).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "Curve",
    "Run",
    "curves",
    "group_label",
    "load_run",
    "plot_runs",
    "to_tensorboard",
]

_SEED_RE = re.compile(r"[-_](?:s|seed)\d+(?:-\d{8}-\d{6})?$")


@dataclasses.dataclass(frozen=True)
class Run:
    """One run folder's metrics: ``rows`` (one dict per line of ``metrics.jsonl``) and
    ``status`` from its ``summary.json`` (``"completed"``, ``"interrupted"``,
    ``"running"`` for a run still going or killed, ``None`` without a summary)."""

    path: Path
    label: str
    rows: list[dict[str, Any]]
    status: str | None = None

    @property
    def finished(self) -> bool:
        """False for a run that stopped early (interrupted, killed) or is still running."""
        return self.status in (None, "completed")

    @property
    def is_population(self) -> bool:
        return bool(self.rows) and "member" in self.rows[0]


@dataclasses.dataclass(frozen=True)
class Curve:
    """A learning curve: at each ``x``, the ``mean``, ``std``, ``low`` and ``high`` of
    ``y`` over ``n`` seeds or members (NaN values, e.g. no finished episode, skipped)."""

    label: str
    x: list[float]
    mean: list[float]
    std: list[float]
    low: list[float]
    high: list[float]
    n: list[int]


def group_label(name: str) -> str:
    """``name`` without a trailing seed (``-s3``, ``_seed3``, ``-s3-<date>-<time>``)."""
    return _SEED_RE.sub("", name)


def load_run(path: str | os.PathLike[str], label: str | None = None) -> Run:
    """Read ``path/metrics.jsonl`` (``FileNotFoundError`` naming the file if missing)."""
    path = Path(path)
    file = path / "metrics.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no metrics file {file} (is {path} a funrl run folder?)")
    rows = []
    lines = file.read_text().splitlines()
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines):
                break  # a run still writing its last line
            raise ValueError(f"{file}:{i}: not a JSON line") from None
    folder = path if path.is_dir() else path.parent
    status = None
    try:
        status = json.loads((folder / "summary.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        pass
    return Run(folder, label or group_label(folder.name), rows, status)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _smooth(values: list[float], window: int) -> list[float]:
    """Mean of the finite values among the last ``window`` entries (NaN if there are none)."""
    out = []
    for i in range(len(values)):
        recent = [v for v in values[max(0, i - window + 1) : i + 1] if _finite(v)]
        out.append(sum(recent) / len(recent) if recent else math.nan)
    return out


def _series(rows: list[dict[str, Any]], x: str, y: str) -> dict[Any, list[tuple[float, float]]]:
    """Per seed/member: ``[(x, y), ...]`` in row order."""
    out: dict[Any, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if x in r and y in r:
            out[r.get("member", 0)].append(
                (float(r[x]), float(r[y]) if r[y] is not None else math.nan)
            )
    return out


def curves(
    runs: Sequence[Run], y: str = "episode_return", x: str | None = None, smooth: int = 1
) -> list[Curve]:
    """One :class:`Curve` per label: statistics of ``y`` over seeds and members at each ``x``.

    Args:
      runs: from :func:`load_run`.
      y: the metric (``episode_return``, ``eval_return``, ``loss``, ...).
      x: ``env_steps`` when every run has it, else ``update``.
      smooth: trailing-mean window applied to each seed/member before the statistics.
    """
    if smooth < 1:
        raise ValueError(f"curves: smooth must be >= 1, got {smooth}")
    if x is None:
        x = "env_steps" if all(r.rows and "env_steps" in r.rows[0] for r in runs) else "update"
    groups: dict[str, list[list[tuple[float, float]]]] = defaultdict(list)
    for run in runs:
        series = _series(run.rows, x, y)
        if not series:
            have = sorted(run.rows[0]) if run.rows else []
            raise KeyError(f"{run.path}: no {y!r} (or {x!r}) column; columns: {have}")
        for pts in series.values():
            ys = _smooth([p[1] for p in pts], smooth)
            groups[run.label].append([(p[0], v) for p, v in zip(pts, ys)])
    out = []
    for label, members in groups.items():
        at: dict[float, list[float]] = defaultdict(list)
        for pts in members:
            for xv, yv in pts:
                if _finite(yv):
                    at[xv].append(yv)
        xs = sorted(at)
        stats = [_stats(at[v]) for v in xs]
        mean, std, low, high = ([s[i] for s in stats] for i in range(4))
        out.append(Curve(label, xs, mean, std, low, high, [s[4] for s in stats]))
    return out


def _stats(v: list[float]) -> tuple[float, float, float, float, int]:
    m = sum(v) / len(v)
    sd = math.sqrt(sum((a - m) ** 2 for a in v) / len(v))
    return m, sd, min(v), max(v), len(v)


def _matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib, which is not installed: pip install 'funrl[plot]' "
            "(or pip install matplotlib)"
        ) from None
    return Figure


def plot_runs(
    run_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    y: str = "episode_return",
    x: str | None = None,
    smooth: int = 1,
    title: str | None = None,
) -> Path:
    """Draw :func:`curves` of ``run_dirs`` into the image ``out`` (PNG, SVG or PDF).

    A folder without metrics (a run that crashed before its first update) is skipped
    with a warning; runs that stopped early (``summary.json`` status ``interrupted``, or
    ``running`` left by a killed run) are labelled ``[unfinished]``.

    Uses matplotlib's object API (no pyplot, no display needed).  Returns ``out``.
    """
    if not run_dirs:
        raise ValueError("plot_runs: give at least one run folder")
    Figure = _matplotlib()
    runs, skipped = [], []
    for d in run_dirs:  # a crashed run's empty folder is skipped, with a warning
        try:
            run = load_run(d)
        except FileNotFoundError as e:
            skipped.append(str(e))
            continue
        if run.rows:
            runs.append(run)
        else:
            skipped.append(f"{d}: metrics.jsonl has no rows yet")
    if not runs:
        raise FileNotFoundError("; ".join(skipped))
    for reason in skipped:
        warnings.warn(f"skipped {reason}", stacklevel=2)
    cs = curves(runs, y=y, x=x, smooth=smooth)
    x_name = x or (
        "env_steps" if all(r.rows and "env_steps" in r.rows[0] for r in runs) else "update"
    )
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for c in cs:
        n = max(c.n) if c.n else 0
        mine = [r for r in runs if r.label == c.label]
        what = "members" if any(r.is_population for r in mine) else "seeds"
        label = f"{c.label} ({n} {what})" if n > 1 else c.label
        early = sum(not r.finished for r in mine)
        if early:  # stopped early (interrupted, killed) or still running
            label += f" [{early} unfinished]" if len(mine) > 1 else " [unfinished]"
        line = ax.plot(c.x, c.mean, label=label)[0]
        if n > 1:
            lo = [m - s for m, s in zip(c.mean, c.std)]
            hi = [m + s for m, s in zip(c.mean, c.std)]
            ax.fill_between(c.x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.plot(c.x, c.low, color=line.get_color(), alpha=0.4, linewidth=0.5)
            ax.plot(c.x, c.high, color=line.get_color(), alpha=0.4, linewidth=0.5)
    ax.set_xlabel(x_name)
    ax.set_ylabel(y + (f" (mean of last {smooth})" if smooth > 1 else ""))
    ax.set_title(title or "mean ± 1 std (band), min/max (thin lines)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def to_tensorboard(
    run_dir: str | os.PathLike[str], logdir: str | os.PathLike[str] | None = None
) -> Path:
    """Write a run's metrics as TensorBoard scalars (needs ``tensorboard`` installed).

    Each numeric column becomes a scalar tag at step ``update`` (population runs:
    ``member_<i>/<column>``).  ``logdir`` defaults to ``run_dir/tensorboard``.  Returns
    the log folder (``tensorboard --logdir <it>``).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ImportError(
            "TensorBoard export needs the tensorboard package: pip install tensorboard"
        ) from None
    run = load_run(run_dir)
    logdir = Path(logdir) if logdir is not None else run.path / "tensorboard"
    writer = SummaryWriter(log_dir=str(logdir))
    try:
        for i, row in enumerate(run.rows):
            step = int(row.get("update", i + 1))
            prefix = f"member_{row['member']}/" if "member" in row else ""
            for k, v in row.items():
                if k not in ("update", "member") and _finite(v):
                    writer.add_scalar(prefix + k, v, step)
    finally:
        writer.close()
    return logdir
