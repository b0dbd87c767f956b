"""The host loop: drives an algorithm's pure ``init``/``update`` and does everything impure.

Compiling, progress bars, metric files, evaluation, early stopping and the final summary
live here, outside the pure functions, so the same ``algo`` also trains as a vmapped
population (:mod:`funrl.population`).

Example::

    >>> import funrl
    >>> from funrl.algos import ppo
    >>> algo = ppo.make(ppo.Config(env="CartPole-v1", num_envs=4, num_steps=16,
    ...                            total_timesteps=128))
    >>> result = funrl.train(algo, funrl.random.key(0), ppo.HParams.create(),
    ...                      compile=False, progress=False, eval_episodes=2)
    >>> result.updates
    2
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from funrl import random as R
from funrl import tree
from funrl.algos.common import Algo
from funrl.algos.units import compiled
from funrl.compiling import compile as funrl_compile
from funrl.envs.vector import VecEnv
from funrl.envs.wrappers import EpisodeStatistics

__all__ = ["MetricsWriter", "TrainResult", "evaluate", "make_evaluate", "train"]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      state: the final TrainState.
      history: one dict of float metrics per update (plus ``update``, ``env_steps``,
        ``time_s``, and ``eval_return`` where an evaluation ran).
      eval_return: the last deterministic evaluation's mean return (NaN if none ran).
      updates, env_steps: how far training went.
      wall_time_s, compile_time_s: total time, and the part the first update took beyond
        a steady-state update (compilation, warm-up).
      reached_target_at: env steps at the evaluation that first reached the target.
    """

    state: Any
    history: list[dict[str, float]] = field(default_factory=list)
    eval_return: float = math.nan
    updates: int = 0
    env_steps: int = 0
    wall_time_s: float = 0.0
    compile_time_s: float = 0.0
    reached_target_at: int | None = None


class MetricsWriter:
    """Appends one row per update to ``metrics.jsonl`` and ``metrics.csv`` in ``out_dir``."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.dir / "metrics.jsonl", "w")
        self._csv_file = open(self.dir / "metrics.csv", "w", newline="")
        self._csv: csv.DictWriter[str] | None = None
        self._fields: list[str] = []

    def write(self, row: dict[str, Any]) -> None:
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        if self._csv is None:
            self._fields = list(row)
            self._csv = csv.DictWriter(self._csv_file, self._fields, extrasaction="ignore")
            self._csv.writeheader()
        self._csv.writerow({k: row.get(k, "") for k in self._fields})
        self._csv_file.flush()

    def close(self) -> None:
        self._jsonl.close()
        self._csv_file.close()


def _floats(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def make_evaluate(
    algo: Algo,
    num_episodes: int = 10,
    max_steps: int = 10_000,
    deterministic: bool = True,
    compile: bool = False,
) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    """``evaluate_fn(state, key) -> returns [num_episodes]`` for the policy in ``state``.

    Build it once and call it at every evaluation: with ``compile=True`` one evaluation
    step (act + env step + episode bookkeeping) is compiled on the first call and reused,
    which makes a 500-step evaluation ~10x cheaper than eager once compiled.
    Episodes run in parallel (one env each) until every one has finished once or
    ``max_steps`` have passed (unfinished episodes return NaN).
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    env = EpisodeStatistics(VecEnv(algo.env_stack.eval_env, num_episodes))
    env_params = algo.env_stack.env_params

    def step(
        params: Any,
        obs: torch.Tensor,
        env_state: Any,
        key: torch.Tensor,
        returns: torch.Tensor,
        done: torch.Tensor,
    ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        k_act, k_step, key = R.split(key, 3)
        action = algo.act(params, obs, k_act, deterministic)
        obs, env_state, _, _, _, info = env.step(k_step, env_state, action, env_params)
        finished = info["episode_done"] & ~done
        returns = torch.where(finished, info["episode_return"].to(returns.dtype), returns)
        return obs, env_state, key.contiguous(), returns, done | finished

    step_fn = funrl_compile(step) if compile else step

    def evaluate_fn(state: Any, key: torch.Tensor) -> torch.Tensor:
        params = algo.act_params(state)
        k_reset, key = R.split(key)
        obs, env_state = env.reset(k_reset, env_params)
        # Contiguous leaves: the compiled step returns contiguous ones (no second compile).
        obs, env_state, key = tree.contiguous((obs, env_state, key))
        returns = torch.full((num_episodes,), float("nan"))
        done = torch.zeros(num_episodes, dtype=torch.bool)
        for _ in range(max_steps):
            obs, env_state, key, returns, done = step_fn(params, obs, env_state, key, returns, done)
            if bool(done.all()):
                break
        return returns

    return evaluate_fn


def evaluate(
    algo: Algo,
    state: Any,
    key: torch.Tensor,
    num_episodes: int = 10,
    max_steps: int = 10_000,
    deterministic: bool = True,
) -> torch.Tensor:
    """Returns of ``num_episodes`` episodes (run in parallel) of the policy in ``state``.

    Uses the algorithm's evaluation env (no reward scaling; observations normalised with
    the training statistics inside ``act``) and the deterministic policy by default.
    Eager; for repeated evaluations build a (compiled) :func:`make_evaluate` once.
    """
    return make_evaluate(algo, num_episodes, max_steps, deterministic)(state, key)


class _Progress:
    """A tqdm bar when tqdm is installed and output is a terminal-ish stream, else lines."""

    def __init__(self, total: int, enabled: bool, desc: str) -> None:
        self.enabled = enabled
        self.bar = None
        self.last_print = 0.0
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(
                    total=total, desc=desc, unit="step", unit_scale=True, dynamic_ncols=True
                )
            except ImportError:
                self.bar = None

    def update(self, steps: int, postfix: dict[str, str], done: int, total: int) -> None:
        if not self.enabled:
            return
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


def train(
    algo: Algo,
    key: torch.Tensor,
    hparams: Any,
    *,
    num_updates: int | None = None,
    compile: bool = True,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    eval_every: int | None = None,
    eval_episodes: int = 10,
    target_return: float | None = None,
    callback: Callable[[int, Any, dict[str, float]], bool | None] | None = None,
) -> TrainResult:
    """Train ``algo`` from ``key`` with ``hparams``.

    Args:
      algo: from an algorithm's ``make``.
      key: a funrl key (the only source of randomness).
      hparams: the algorithm's HParams (checked before anything runs).
      num_updates: default: ``total_timesteps`` of the config over ``steps_per_update``.
      compile: compile each compute unit (``funrl.algos.units.compiled``); the first
        update then includes compilation (reported as ``compile_time_s``).
      out_dir: write ``metrics.jsonl``/``metrics.csv`` (one row per update) and
        ``summary.json`` there.
      progress: show a progress bar (steps/s, recent episode return).
      eval_every: evaluate the deterministic policy every this many updates (and at the
        end); ``None``: only at the end.
      eval_episodes: episodes per evaluation.
      target_return: stop after the first evaluation whose mean return reaches it.
      callback: ``callback(update, state, row)``; returning True stops training.
    """
    hparams.check()
    if compile:
        algo = algo.with_units(compiled)
    total = num_updates if num_updates is not None else algo.config.num_updates
    if total < 1:
        raise ValueError(f"num_updates must be >= 1, got {total}")
    k_init, k_eval = R.split(key)
    writer = MetricsWriter(out_dir) if out_dir is not None else None
    bar = _Progress(total * algo.steps_per_update, progress, f"{algo.name} {algo.config.env}")
    evaluate_fn = make_evaluate(algo, eval_episodes, compile=compile)
    state = algo.init(k_init, hparams)  # contiguous when compiled (funrl.algos.units)
    result = TrainResult(state)
    t_start = time.perf_counter()
    recent_return = math.nan
    first_dt = None
    try:
        for i in range(total):
            t0 = time.perf_counter()
            state, metrics = algo.update(state, hparams)
            row = _floats(metrics)
            dt = time.perf_counter() - t0
            row["update_s"] = dt
            if i == 0:
                first_dt = dt
            elif i == 1 and first_dt is not None:
                result.compile_time_s = max(0.0, first_dt - dt)
            result.updates = i + 1
            result.env_steps = (i + 1) * algo.steps_per_update
            if not math.isnan(row.get("episode_return", math.nan)):
                recent_return = row["episode_return"]
            if (eval_every and (i + 1) % eval_every == 0) or i == total - 1:
                rets = evaluate_fn(state, R.fold_in(k_eval, i))
                result.eval_return = float(rets.nanmean())
                row["eval_return"] = result.eval_return
                if target_return is not None and result.eval_return >= target_return:
                    result.reached_target_at = result.env_steps
            row.update(
                update=i + 1, env_steps=result.env_steps, time_s=time.perf_counter() - t_start
            )
            result.history.append(row)
            if writer is not None:
                writer.write(row)
            sps = algo.steps_per_update / dt
            bar.update(
                algo.steps_per_update,
                {
                    "sps": f"{sps:,.0f}",
                    "return": f"{recent_return:.1f}",
                    "eval": f"{result.eval_return:.1f}",
                },
                i + 1,
                total,
            )
            stop = callback(i, state, row) if callback is not None else False
            if stop or result.reached_target_at is not None:
                break
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    result.state = state
    result.wall_time_s = time.perf_counter() - t_start
    if out_dir is not None:
        summary = {
            "algo": algo.name,
            "env": algo.config.env,
            "updates": result.updates,
            "env_steps": result.env_steps,
            "eval_return": result.eval_return,
            "wall_time_s": result.wall_time_s,
            "compile_time_s": result.compile_time_s,
            "reached_target_at": result.reached_target_at,
            "hparams": {k: v.tolist() for k, v in _hparams_dict(hparams).items()},
        }
        (Path(out_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    return result


def _hparams_dict(hparams: Any) -> dict[str, torch.Tensor]:
    flat, _ = torch.utils._pytree.tree_flatten_with_path(hparams)
    return {torch.utils._pytree.keystr(p).lstrip("."): v for p, v in flat}
