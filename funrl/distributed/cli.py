"""``python -m funrl.distributed population|dataparallel ALGO [...]``, one process per rank.

Run it under torchrun (:func:`funrl.distributed.launch_command`), or give ``--nproc N``
and it starts torchrun itself.  The arguments are ``funrl train``'s
(:func:`funrl.arguments.add_run_arguments`: ``--set``, ``--config``, ``--compile``,
``--eval-every``, ``--checkpoint`` ...; the same parsing and the same errors), plus the
process group's (``--backend``, ``--timeout``) and, for populations, ``--population``,
``--sample``, ``--pbt-interval`` and ``--exchange``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch.distributed as dist

from funrl import arguments, runtime
from funrl import population as pop
from funrl import random as R
from funrl.distributed.group import init, rank, world_size
from funrl.distributed.launch import launch
from funrl.distributed.runners import data_parallel, train_data_parallel, train_population

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m funrl.distributed``."""
    p = arguments.Parser(
        prog="python -m funrl.distributed",
        description="One process per rank (under torchrun, or --nproc N to start it).",
    )
    sub = p.add_subparsers(dest="mode", required=True)
    for mode, what in (("population", "a sharded population"), ("dataparallel", "one agent")):
        s = sub.add_parser(mode, help=f"train {what} over the ranks")
        arguments.add_run_arguments(s)
        s.add_argument("--backend", default=None, choices=("gloo", "nccl"))
        s.add_argument(
            "--timeout", type=float, default=None, help="collective timeout, s (default 600)"
        )
        if mode == "population":
            s.add_argument("--population", type=int, default=8, help="members (default 8)")
            s.add_argument(
                "--sample",
                action="append",
                default=[],
                metavar="NAME=LOW:HIGH",
                help="log-uniform random search of an HParams field",
            )
            s.add_argument("--pbt-interval", type=int, default=None, help="PBT every N updates")
            s.add_argument("--exchange", default="broadcast", choices=("broadcast", "all_gather"))
    return p


def _population_hparams(args: argparse.Namespace, run: arguments.Run) -> Any:
    """``--set`` values for every member, ``--sample`` fields drawn per member."""
    space = {}
    for item in args.sample:
        name, _, span = item.partition("=")
        low, _, high = span.partition(":")
        space[name.strip().replace("-", "_")] = ("log_uniform", float(low), float(high))
    fields = dict(run.overrides)
    cls = type(run.hparams)  # the algorithm's class for this config (discrete SAC's)
    if space:
        drawn = pop.sample(cls, R.fold_in(R.key(args.seed), 1), args.population, **space)
        fields.update({name: getattr(drawn, name) for name in space})
    return pop.hparams(cls, args.population, **fields)


def _checked(args: argparse.Namespace) -> tuple[arguments.Run, Any]:
    """The run and its algorithm; ``SystemExit`` for bad arguments or an algorithm that
    cannot run data-parallel, before any process starts."""
    run = arguments.parse_run(args)
    algo = arguments.make_algo(run)
    if args.mode == "dataparallel":
        try:
            data_parallel(algo)
        except ValueError as e:
            raise SystemExit(f"funrl.distributed: {e}") from None
    return run, algo


def _run(
    args: argparse.Namespace, run: arguments.Run, algo: Any, paths: arguments.RunPaths
) -> dict[str, Any]:
    key = R.key(args.seed)
    args.out = str(paths.out)
    kw: dict[str, Any] = dict(
        compile=args.compile != "off",  # auto is for funrl train: compiled here
        eval_episodes=args.eval_episodes,
        **arguments.loop_options(args, paths, algo.steps_per_update),
    )
    if args.mode == "dataparallel":
        res = train_data_parallel(algo, key, run.hparams, **kw)
        times = [r["time_s"] for r in res.history]
        steps = world_size() * algo.steps_per_update
        summary: dict[str, Any] = {"eval_return": res.eval_return, "interrupted": res.interrupted}
    else:
        pbt = pop.PBTConfig(interval=args.pbt_interval) if args.pbt_interval else None
        keys = pop.member_keys(key, args.population)
        hps = _population_hparams(args, run)
        presult = train_population(algo, keys, hps, pbt=pbt, exchange=args.exchange, **kw)
        if presult is None:  # ranks > 0 of a sharded population
            return {}
        by_update: dict[int, float] = {}
        for r in presult.history:
            by_update[r["update"]] = max(by_update.get(r["update"], 0.0), r["time_s"])
        times = [by_update[u] for u in sorted(by_update)]
        steps = args.population * algo.steps_per_update
        summary = {
            "eval_returns": presult.eval_returns.tolist(),
            "table": presult.table,
            "interrupted": presult.interrupted,
        }
    warm = min(2, len(times) - 1)
    steady = (
        steps * (len(times) - 1 - warm) / (times[-1] - times[warm])
        if len(times) - 1 > warm
        else math.nan
    )
    summary.update(
        algo=args.algo,
        env=args.env,
        world_size=world_size(),
        updates=len(times),
        env_steps_per_update=steps,
        train_time_s=times[-1] if times else 0.0,
        steady_steps_per_s=steady,
    )
    if args.out is not None and rank() == 0:  # the loop's summary.json, plus throughput
        path = Path(args.out) / "summary.json"
        loop_summary = json.loads(path.read_text()) if path.is_file() else {}
        extra = {k: v for k, v in summary.items() if k != "interrupted"}  # the loop's wins
        path.write_text(json.dumps({**extra, **loop_summary}, indent=2, default=str))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m funrl.distributed`` (see the module docstring).

    Any failure (a dead peer, a timeout) prints this rank's number and the reason on stderr
    and returns 1, so torchrun stops the other ranks and reports the job failed.  Errors in
    the arguments exit (``SystemExit``) before training, naming close matches.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        args.command_line = ["python", "-m", "funrl.distributed", *argv]
        run, algo = _checked(args)
        launcher = "WORLD_SIZE" not in os.environ
        # bad paths fail here, before any process group: in the launcher, or on rank 0
        paths = arguments.run_paths(args, check=launcher or os.environ.get("RANK") == "0")
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr, flush=True)
            return 2
        raise
    if args.nproc == "auto":
        if args.mode != "population":
            print(
                "funrl.distributed: --nproc auto is for populations; data-parallel pays only "
                "for large gradient steps (benchmarks/RESULTS.md): give a number",
                file=sys.stderr,
                flush=True,
            )
            return 2
        args.nproc = runtime.auto_processes(args.population) if launcher else 1
        if launcher and args.nproc > 1:
            print(f"funrl.distributed: --nproc auto: {args.nproc} processes", flush=True)
    if args.nproc > 1 and launcher:
        return launch(args.nproc, argv)
    try:
        me, world = init(args.backend, args.timeout)
        per_rank = args.population / world if args.mode == "population" else 1
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # processes on this machine
        arguments.set_threads(
            args.threads, envs=math.ceil(per_rank * getattr(run.config, "num_envs", 1)), procs=local
        )
        summary = _run(args, run, algo, paths)
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
        # Leave together: a gloo rank that tears down while its peer is still inside the
        # last collective can abort at exit ("terminate called without an active exception").
        dist.barrier()
        dist.destroy_process_group()
    if summary.get("interrupted"):
        if me == 0:
            print(
                f"interrupted ({summary['interrupted']}); checkpoint: {paths.checkpoint}; "
                f"continue with the same command and --resume auto --out {paths.out}",
                flush=True,
            )
        return 130 if summary["interrupted"] == "SIGINT" else 143
    if me == 0:
        if args.mode == "population":
            print("\n".join(summary["table"].split("\n")[:11]))
        rate = summary["steady_steps_per_s"]
        speed = (
            f"{rate:,.0f} env steps/s after warm-up"
            if math.isfinite(rate)
            else "too few updates to time after warm-up (needs 4)"
        )
        print(
            f"done: {summary['world_size']} rank(s), {summary['updates']} updates, {speed}",
            flush=True,
        )
    return 0
