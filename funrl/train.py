"""Training one agent in this process: :func:`train` over :func:`single_runner`.

The host loop itself (progress, metric files, evaluation, early stopping, callback,
checkpoints) is :func:`funrl.loop.run`, shared with populations and distributed training;
this module says how one agent is initialised, updated, evaluated and checkpointed.

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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from typing_extensions import Unpack

from funrl import checkpoint, tree
from funrl import loop as L
from funrl import random as R
from funrl.algos.common import Algo, restart_episodes
from funrl.algos.units import compiled
from funrl.evaluation import EAGER_EVALUATIONS, evaluate, make_evaluate
from funrl.loop import MetricsWriter

__all__ = [
    "MetricsWriter",
    "TrainResult",
    "evaluate",
    "make_evaluate",
    "single_runner",
    "split_key",
    "train",
    "train_result",
]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      state: the final TrainState.
      history: one dict of float metrics per update (plus ``update``, ``env_steps``,
        ``update_s``, ``time_s``, and ``eval_return`` where an evaluation ran).
      eval_return: the last deterministic evaluation's mean return (NaN if none ran).
      updates, env_steps: how far training went (resumed updates included).
      wall_time_s, compile_time_s: total time, and the part the first update took beyond
        a steady-state update (compilation, warm-up).
      reached_target_at: env steps at the evaluation that first reached the target.
      interrupted: the signal (``"SIGINT"``, ``"SIGTERM"``) that stopped training early,
        after the update in progress and a checkpoint (no final evaluation ran).
    """

    state: Any
    history: list[dict[str, float]] = field(default_factory=list)
    eval_return: float = math.nan
    updates: int = 0
    env_steps: int = 0
    wall_time_s: float = 0.0
    compile_time_s: float = 0.0
    reached_target_at: int | None = None
    interrupted: str | None = None


def split_key(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(k_init, k_eval)``: how every loop derives an agent's keys from its key.

    ``key`` is ``[2]`` (one agent) or ``[P, 2]`` (member ``i`` gets what ``keys[i]``
    alone would), so a population member is initialised and evaluated exactly as the
    same agent trained alone.
    """
    keys = R.split(key).contiguous()
    return keys[..., 0, :].contiguous(), keys[..., 1, :].contiguous()


#: ``compile``'s third form: ``switch(updates_done, first_update_s)`` (see :func:`train`).
CompileSwitch = Callable[[int, float], bool]


def single_runner(
    algo: Algo,
    key: torch.Tensor,
    hparams: Any,
    compile: bool | CompileSwitch,
    eval_episodes: int,
) -> L.Runner:
    """One agent in this process (:func:`train` gives the arguments and their defaults).

    The agent is initialised from ``k_init`` and evaluated at update index ``i`` with
    ``fold_in(k_eval, i)`` (:func:`split_key`).  A checkpoint holds the TrainState
    itself (``funrl eval`` reads it) with ``meta["updates"]``.
    """
    hparams.check()
    switch = compile if callable(compile) else None
    if compile is True:
        algo = algo.with_units(compiled)  # init returns contiguous state (funrl.algos.units)
    k_init, k_eval = split_key(key)
    evaluate_fn = make_evaluate(
        algo, eval_episodes, compile=compile is True, compile_after=EAGER_EVALUATIONS
    )
    update: Callable[[Any, Any], tuple[Any, Any]] = algo.update
    if switch is not None:
        update_fn = algo.update
        updates, first_update_s = 0, 0.0

        def switching_update(state: Any, hp: Any) -> tuple[Any, Any]:
            nonlocal switch, update_fn, evaluate_fn, updates, first_update_s
            if switch is not None and switch(updates, first_update_s):
                switch = None
                fast = algo.with_units(compiled)
                # compiled units guard on strides and return row-major state: hand them that
                state, update_fn = tree.contiguous(state), fast.update
                evaluate_fn = make_evaluate(
                    fast, eval_episodes, compile=True, compile_after=EAGER_EVALUATIONS
                )
            t0 = time.perf_counter()
            out = update_fn(state, hp)
            if updates == 0:
                first_update_s = time.perf_counter() - t0
            updates += 1
            return out

        update = switching_update

    def columns(
        update: int, state: Any, metrics: dict[str, torch.Tensor], hp: Any
    ) -> dict[str, list[float]]:
        names, table = L.metric_columns(metrics)
        return {k: [v] for k, v in zip(names, table[0].tolist())}

    def evaluate_at(state: Any, index: int) -> torch.Tensor:
        return evaluate_fn(state, R.fold_in(k_eval, index)).nanmean().reshape(1)

    def save(path: Any, state: Any, hp: Any, scores: torch.Tensor, meta: dict[str, Any]) -> None:
        checkpoint.save(path, state, algo=algo, hparams=hp, meta={**meta, "mode": "single"})

    def load(path: Any) -> tuple[Any, Any, torch.Tensor, int]:
        ck = checkpoint.load(path, algo=algo)
        if ck.meta.get("mode", "single") != "single":  # Checkpointer files have no mode
            raise checkpoint.CheckpointError(
                f"{path}: a {ck.meta['mode']} checkpoint, not one agent's (resume it with the "
                "entry point that wrote it)"
            )
        state = restart_episodes(algo.env_stack, ck.state)  # a host env's episodes restart
        return state, ck.hparams, torch.full((1,), math.nan), int(ck.meta["updates"])

    return L.Runner(
        algo=algo, mode="single", size=1, members=False, steps=algo.steps_per_update,
        comm=L.LOCAL, init=lambda: (algo.init(k_init, hparams), hparams), update=update,
        columns=columns, evaluate=evaluate_at, pbt=None, save=save, load=load,
        result=lambda state, hp: (state, hp),
    )  # fmt: skip


def train_result(step: L.Step) -> TrainResult:
    """The :class:`TrainResult` of a finished one-agent :func:`funrl.loop.run`."""
    state = step.final[0] if step.final is not None else step.state
    eval_return = float(step.eval_returns[0]) if step.evaluated_at > 0 else math.nan
    return TrainResult(state, step.history, eval_return, env_steps=step.env_steps, **step.timing())


def train(
    algo: Algo,
    key: torch.Tensor,
    hparams: Any,
    *,
    compile: bool | CompileSwitch = True,
    eval_episodes: int = 10,
    **options: Unpack[L.Options],
) -> TrainResult:
    """Train ``algo`` from ``key`` with ``hparams``.

    Args:
      algo: from an algorithm's ``make``.
      key: a funrl key (the only source of randomness; :func:`split_key`).
      hparams: the algorithm's HParams (checked before anything runs).
      compile: compile each compute unit (``funrl.algos.units.compiled``), and the
        evaluation step from the third evaluation on (the first two run eagerly: cheaper
        than compiling for a run that evaluates once or twice); the first update then
        includes compilation (``compile_time_s``).  Or a function
        ``switch(updates_done, first_update_s) -> bool`` called before every update:
        training starts eagerly and switches to compiled units (and a compiled evaluation
        step) the first time it returns True (``funrl train --compile auto`` passes
        :class:`funrl.warmup.AutoCompile`, which says when a background process has
        filled the compile cache).
      eval_episodes: episodes per evaluation.
      options: the loop's features, the same in every mode (:func:`funrl.loop.run`):
        ``num_updates`` (default: the config's), ``out_dir`` (``metrics.jsonl``/``.csv``
        and ``summary.json``), ``progress`` (default True), ``eval_every`` (and always at
        the end), ``target_return`` (stop once reached), ``callback(update, state, row)``
        (True stops), ``checkpoint_path``/``checkpoint_every`` (the TrainState, every N
        updates and at the end), ``resume`` (a checkpoint to continue from; the ``key``
        still seeds evaluation) and ``hooks`` (more hook functions: ``funrl.hooks``).
    """
    runner = single_runner(algo, key, hparams, compile, eval_episodes)
    return train_result(L.run(runner, **options))
