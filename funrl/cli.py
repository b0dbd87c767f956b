"""``funrl`` command line.

* ``funrl train ppo --env CartPole-v1 [--config run.toml] [--set lr=3e-4] [--checkpoint
  final.pt [--checkpoint-every N]] [--resume final.pt] [--nproc 2]``: every Config and
  HParams field can be set in a TOML file (flat ``name = value`` keys) and with
  ``--set name=value`` (repeatable; wins over the file); ``--nproc N`` trains
  data-parallel over N processes (``python -m funrl.distributed``, which takes the same
  arguments: :mod:`funrl.arguments`).
* ``funrl eval final.pt [--episodes 20] [--video DIR]``: evaluate a saved policy.
* ``funrl export final.pt -o policy.pt2``: a funrl-free deployable policy.
* ``funrl plot runs/ppo-* -o curves.png``: learning curves (mean and spread over seeds).
* ``funrl bench envs``: run ``benchmarks/bench_envs.py``.
* ``funrl list``: algorithms and environments.

The message for a typo (algorithm, env, field, benchmark, TOML key) names the close
matches.  Errors in the arguments are reported before anything trains.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from funrl.arguments import (
    ALGOS,
    add_run_arguments,
    algo_module,
    loop_options,
    make_algo,
    parse_run,
)

__all__ = ["ALGOS", "build_parser", "main"]


def _launch_data_parallel(args: argparse.Namespace, algo: Any, out: Path) -> int:
    """``funrl train ... --nproc N``: ``python -m funrl.distributed dataparallel`` with the
    same arguments under torchrun, once the algorithm is known to run data-parallel."""
    from funrl import distributed

    try:
        distributed.data_parallel(algo)
    except ValueError as e:
        raise SystemExit(f"funrl: --nproc {args.nproc}: {e}") from None
    argv = distributed.without_nproc(["dataparallel", *args.argv[1:], "--out", str(out)])
    cmd = " ".join(distributed.launch_command(args.nproc, argv))
    print(f"funrl: launching {args.nproc} processes: {cmd}", flush=True)
    return distributed.launch(args.nproc, argv)


def cmd_train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    run = parse_run(args)
    algo = make_algo(run)
    out = (
        Path(args.out)
        if args.out
        else Path("runs")
        / f"{args.algo}-{args.env.replace('/', '_')}-s{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if args.nproc > 1:
        return _launch_data_parallel(args, algo, out)
    import funrl

    print(
        f"funrl {funrl.__version__}: {args.algo} on {args.env}, seed {args.seed}, "
        f"{run.config.total_timesteps:,} steps, compile={'on' if args.compile else 'off'}, "
        f"{torch.get_num_threads()} thread(s), metrics -> {out}",
        flush=True,
    )
    result = funrl.train(
        algo,
        funrl.random.key(args.seed),
        run.hparams,
        compile=args.compile,
        eval_episodes=args.eval_episodes,
        **loop_options(args, out),
    )
    sps = result.env_steps / max(result.wall_time_s - result.compile_time_s, 1e-9)
    print(
        f"done: {result.updates} updates, {result.env_steps:,} env steps in {result.wall_time_s:.1f} s "
        f"(compile/warm-up {result.compile_time_s:.1f} s, {sps:,.0f} steps/s after)\n"
        f"final evaluation (deterministic, {args.eval_episodes} episodes): "
        f"mean return {result.eval_return:.1f}\n"
        f"metrics: {out / 'metrics.jsonl'}, {out / 'metrics.csv'}, {out / 'summary.json'}",
        flush=True,
    )
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint} (funrl eval {args.checkpoint})", flush=True)
    return 0


def _load_for_eval(path: str, member: int | None) -> tuple[Any, Any, Any]:
    """``(algo, state, checkpoint)`` rebuilt from a checkpoint written by ``train``."""
    from funrl import checkpoint, tree

    try:
        ck = checkpoint.load(path)
    except checkpoint.CheckpointError as e:
        raise SystemExit(f"funrl: {e}") from None
    name = ck.meta.get("algo")
    if name is None or ck.config is None:
        raise SystemExit(f"funrl: {path} has no algorithm/config (save it with algo=...)")
    mod = algo_module(name)
    algo = mod.make(ck.config)
    state = ck.state
    if isinstance(state, dict) and "states" in state:  # funrl.population.save_members
        state = state["states"]
        if member is None and ck.meta.get("mode") == "data_parallel":
            member = 0  # every rank holds the same params
    if member is not None:  # (a None leaf is an absent optional state: nothing to index)
        state = tree.map(lambda x: x if x is None else x[member], state)
    like = algo.init(_key(0), mod.HParams.create())  # shapes only: hparams values don't matter
    try:
        checkpoint.check_like(state, like, where=path)
    except checkpoint.CheckpointError as e:
        hint = " (a population checkpoint? pick one with --member I)" if member is None else ""
        raise SystemExit(f"funrl: {e}{hint}") from None
    return algo, state, ck


def _key(seed: int) -> torch.Tensor:
    from funrl import random

    return random.key(seed)


def cmd_eval(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    import funrl

    algo, state, ck = _load_for_eval(args.checkpoint, args.member)
    rets = funrl.evaluate(algo, state, _key(args.seed), num_episodes=args.episodes)
    done = rets[~torch.isnan(rets)]
    if done.numel() == 0:
        raise SystemExit("funrl: no episode finished within the step limit")
    std = float(done.std(unbiased=False))
    print(
        f"{algo.name} on {algo.config.env} ({ck.meta.get('updates', '?')} updates): "
        f"{done.numel()} episodes, mean return {float(done.mean()):.2f} ± {std:.2f} "
        f"(min {float(done.min()):.2f}, max {float(done.max()):.2f})",
        flush=True,
    )
    if args.video:
        _record_video(algo, state, args.video, args.seed)
    return 0


def _record_video(algo: Any, state: Any, folder: str, seed: int) -> None:
    """One episode of the same env id in Gymnasium, rendered with RecordVideo."""
    import gymnasium as gym

    env_id = algo.config.env.removeprefix("gym:")
    try:
        env = gym.make(env_id, render_mode="rgb_array")
        env = gym.wrappers.RecordVideo(
            env, folder, episode_trigger=lambda i: True, disable_logger=True
        )
    except gym.error.Error as e:
        raise SystemExit(
            f"funrl: --video needs Gymnasium's rendering extras for {env_id!r} "
            f"(pip install 'gymnasium[classic-control,other]'): {e}"
        ) from None
    params = algo.act_params(state)
    obs, _ = env.reset(seed=seed)
    done = False
    while not done:
        action = algo.act(params, torch.as_tensor(obs, dtype=torch.float32)[None])[0]
        obs, _, terminated, truncated, _ = env.step(action.numpy())
        done = terminated or truncated
    env.close()
    print(f"video: {folder}", flush=True)


def cmd_export(args: argparse.Namespace) -> int:
    from funrl import export

    algo, state, _ = _load_for_eval(args.checkpoint, args.member)
    out = export.export_policy(algo, state, args.out, method=args.method)
    how = (
        "torch.export.load(path).module()"
        if out.format == "torch.export"
        else "torch.jit.load(path)"
    )
    print(f"policy: {out.path} ({out.format}; load with {how})", flush=True)
    if out.fallback_reason:
        print(f"note: {out.fallback_reason}", flush=True)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from funrl import plot

    try:
        if args.tensorboard:
            for d in args.runs:
                print(f"tensorboard: {plot.to_tensorboard(d)}", flush=True)
        out = plot.plot_runs(args.runs, args.out, y=args.y, x=args.x, smooth=args.smooth)
    except (ImportError, FileNotFoundError, KeyError, ValueError) as e:
        raise SystemExit(f"funrl: {e}") from None
    print(f"plot: {out}", flush=True)
    return 0


def _bench_dirs() -> list[Path]:
    here = Path(__file__).resolve().parents[1] / "benchmarks"
    return [Path.cwd() / "benchmarks", here]


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    folder = next((d for d in _bench_dirs() if d.is_dir()), None)
    if folder is None:
        raise SystemExit(
            "funrl: no benchmarks/ folder here or next to the funrl package "
            "(run from a funrl checkout)"
        )
    names = sorted(p.stem.removeprefix("bench_") for p in folder.glob("bench_*.py"))
    if not args.name:
        print(f"benchmarks in {folder}: {', '.join(names)}")
        return 0
    if args.name not in names:
        close = difflib.get_close_matches(args.name, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SystemExit(
            f"funrl: unknown benchmark {args.name!r}; choose from {', '.join(names)}.{hint}"
        )
    cmd = [sys.executable, str(folder / f"bench_{args.name}.py"), *args.args]
    return subprocess.run(cmd, check=False).returncode


def cmd_list(args: argparse.Namespace) -> int:
    from funrl.envs.registry import registered

    print("algorithms: " + ", ".join(ALGOS))
    print("environments: " + ", ".join(registered()))
    print("any Gymnasium id works through the bridge as gym:<id> (host loop, not vmappable)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="funrl", description="Functional RL on PyTorch.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="train an agent and evaluate it",
        description="Train an agent; "
        "every Config and HParams field can be set with --set name=value.",
    )
    add_run_arguments(t)
    t.set_defaults(fn=cmd_train)
    threads = int(os.environ.get("FUNRL_THREADS", "1"))
    e = sub.add_parser(
        "eval",
        help="evaluate a saved policy",
        description="Evaluate the "
        "deterministic policy of a checkpoint written by `funrl train --checkpoint`.",
    )
    e.add_argument("checkpoint", help="checkpoint file")
    e.add_argument("--episodes", type=int, default=10, help="episodes (default 10)")
    e.add_argument("--seed", type=int, default=0, help="seed of the evaluation key")
    e.add_argument("--member", type=int, default=None, help="population member to evaluate")
    e.add_argument(
        "--video",
        default=None,
        metavar="DIR",
        help="also record one episode of the Gymnasium env with the same id to DIR "
        "(needs gymnasium's rendering extras and moviepy)",
    )
    e.add_argument("--threads", type=int, default=threads, help="torch threads")
    e.set_defaults(fn=cmd_eval)
    x = sub.add_parser(
        "export",
        help="export a saved policy for deployment",
        description="Write the deterministic policy of a checkpoint as a "
        "torch.export program that runs without funrl.",
    )
    x.add_argument("checkpoint", help="checkpoint file")
    x.add_argument("-o", "--out", required=True, help="output file (.pt2)")
    x.add_argument("--member", type=int, default=None, help="population member to export")
    x.add_argument("--method", default="auto", choices=("auto", "export", "torchscript"))
    x.set_defaults(fn=cmd_export)
    pl = sub.add_parser(
        "plot",
        help="plot learning curves of run folders",
        description="Learning curves from metrics.jsonl: mean and spread over "
        "seeds (folders differing only in -s<seed>) or population members.",
    )
    pl.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders")
    pl.add_argument("-o", "--out", default="curves.png", help="image file (default curves.png)")
    pl.add_argument("--y", default="episode_return", help="metric (default episode_return)")
    pl.add_argument("--x", default=None, help="x axis (default env_steps, else update)")
    pl.add_argument("--smooth", type=int, default=1, help="trailing-mean window")
    pl.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files into each run folder",
    )
    pl.set_defaults(fn=cmd_plot)
    b = sub.add_parser(
        "bench",
        help="run a benchmark script from benchmarks/",
        description="`funrl bench NAME [ARGS...]` runs benchmarks/bench_NAME.py ARGS.",
    )
    b.add_argument("name", nargs="?", default=None, help="benchmark name (none: list them)")
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    b.set_defaults(fn=cmd_bench)
    ls = sub.add_parser("list", help="list algorithms and environments")
    ls.set_defaults(fn=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # `train --nproc N` hands its own arguments to the ranks
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
