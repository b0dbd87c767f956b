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
* ``funrl list [ALGO]``: algorithms, environments and presets (an algorithm's presets,
  field by field).
* ``funrl zoo run [--algo A] [--env E]`` / ``funrl zoo report``: train presets on 5 seeds
  and write the results table (:mod:`funrl.zoo`).

``funrl train ALGO --env ENV`` starts from the preset for ENV (:mod:`funrl.presets`), if
there is one; ``--no-preset`` starts from the algorithm's defaults.

The message for a typo (algorithm, env, field, benchmark, TOML key) names the close
matches.  Errors in the arguments are reported before anything trains.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funrl.arguments import (
    ALGOS,
    CHECKPOINT_NAME,
    Parser,
    RunPaths,
    add_run_arguments,
    algo_module,
    default_threads,
    loop_options,
    make_algo,
    non_negative_int,
    parse_run,
    positive_int,
    run_paths,
    set_threads,
    threads_arg,
)

if TYPE_CHECKING:
    import torch

__all__ = ["ALGOS", "build_parser", "main"]


def _launch_data_parallel(args: argparse.Namespace, algo: Any, paths: RunPaths) -> int:
    """``funrl train ... --nproc N``: ``python -m funrl.distributed dataparallel`` with the
    same arguments under torchrun, once the algorithm is known to run data-parallel."""
    from funrl import distributed

    try:
        distributed.data_parallel(algo)
    except ValueError as e:
        raise SystemExit(f"funrl: --nproc {args.nproc}: {e}") from None
    argv = [*args.argv[1:], "--out", str(paths.out), "--checkpoint", str(paths.checkpoint)]
    if paths.resume is not None:
        argv += ["--resume", str(paths.resume)]
    argv = distributed.without_nproc(["dataparallel", *argv])
    cmd = " ".join(distributed.launch_command(args.nproc, argv))
    print(f"funrl: launching {args.nproc} processes: {cmd}", flush=True)
    return distributed.launch(args.nproc, argv)


def resumed_run(args: argparse.Namespace) -> tuple[Any, RunPaths]:
    """The run's arguments and paths; a resumed run starts from its checkpoint's config
    (``--env``, ``--total-steps``, ``--set`` may still change fields; a field the state's
    shapes depend on then fails to load, naming it)."""
    from funrl import checkpoint

    run = parse_run(args)
    paths = run_paths(args)
    if paths.resume is None:
        return run, paths
    try:
        ck = checkpoint.load(paths.resume)
    except checkpoint.CheckpointError as e:
        raise SystemExit(f"funrl: --resume: {e}") from None
    if ck.meta.get("algo") not in (None, args.algo):
        raise SystemExit(
            f"funrl: --resume {paths.resume}: a {ck.meta['algo']} run, not {args.algo}"
        )
    if ck.config is not None:
        run = parse_run(args, base=ck.config)
    return run, paths


def _interrupted_note(args: argparse.Namespace, result: Any, paths: RunPaths) -> int:
    """The message of a run stopped by SIGINT/SIGTERM; exit code 130 or 143."""
    again = ["funrl", *[a for a in args.argv if a not in ("--force",)]]
    if "--resume" not in again:
        again += ["--resume", "auto"]
    if "--out" not in again:
        again += ["--out", str(paths.out)]
    print(
        f"interrupted ({result.interrupted}) after {result.updates} updates; checkpoint: "
        f"{paths.checkpoint}\ncontinue with: {' '.join(again)}",
        flush=True,
    )
    return 130 if result.interrupted == "SIGINT" else 143


def _auto_compile(args: argparse.Namespace, run: Any, algo: Any, options: Any) -> Any:
    """``--compile auto``'s switch (:class:`funrl.warmup.AutoCompile`)."""
    import math

    from funrl import warmup

    updates = options.get("num_updates") or math.ceil(
        run.config.total_timesteps / algo.steps_per_update
    )
    return warmup.AutoCompile.for_config(
        args.algo, run.config, run.hparams, total_updates=updates,
        eval_episodes=args.eval_episodes, imports=args.imports, say=_say,
    )  # fmt: skip


def _say(line: str) -> None:
    """A line on stderr that does not run into a progress bar being drawn there."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print(line, file=sys.stderr, flush=True)
    else:
        tqdm.write(line, file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    run, paths = resumed_run(args)
    algo = make_algo(run)
    if args.nproc == "auto":
        raise SystemExit(
            "funrl train: --nproc auto is for populations (python -m funrl.distributed "
            "population); data-parallel training of one agent pays only for large gradient "
            "steps (benchmarks/RESULTS.md): give a number"
        )
    if args.nproc > 1:
        return _launch_data_parallel(args, algo, paths)
    set_threads(args.threads, envs=getattr(run.config, "num_envs", 1))
    import funrl

    what = f"resuming {paths.resume}" if paths.resume else "new run"
    if paths.resume:
        settings = "settings of the resumed run"
    elif run.preset:
        settings = f"preset {run.preset}"
    else:
        settings = "no preset for this env: defaults" if args.preset else "defaults"
    print(
        f"funrl {funrl.__version__}: {args.algo} on {args.env} ({settings}), seed {args.seed}, "
        f"{run.config.total_timesteps:,} steps, compile={args.compile}, "
        f"{torch.get_num_threads()} thread(s), {what} -> {paths.out}",
        flush=True,
    )
    options = loop_options(args, paths, algo.steps_per_update)
    auto = _auto_compile(args, run, algo, options) if args.compile == "auto" else None
    result = funrl.train(
        algo,
        funrl.random.key(args.seed),
        run.hparams,
        compile=auto if auto is not None else args.compile == "on",
        eval_episodes=args.eval_episodes,
        **options,
    )
    if auto is not None and (line := auto.still_compiling()):
        print(line, flush=True)
    if result.interrupted:
        return _interrupted_note(args, result, paths)
    sps = result.env_steps / max(result.wall_time_s - result.compile_time_s, 1e-9)
    timing = f"compile/warm-up {result.compile_time_s:.1f} s, {sps:,.0f} steps/s after"
    if auto is not None:
        timing = auto.timing(result.history, algo.steps_per_update) or "eager throughout"
    print(
        f"done: {result.updates} updates, {result.env_steps:,} env steps in {result.wall_time_s:.1f} s "
        f"({timing})\n"
        f"final evaluation (deterministic, {args.eval_episodes} episodes): "
        f"mean return {result.eval_return:.1f}\n"
        f"run: {paths.out} (metrics.jsonl, metrics.csv, summary.json)\n"
        f"checkpoint: {paths.checkpoint} (funrl eval {paths.checkpoint})",
        flush=True,
    )
    return 0


def _checkpoint_file(path: str) -> Path:
    """A checkpoint file, or a run folder's ``checkpoint.pt``."""
    p = Path(path)
    if p.is_dir():
        if not (p / CHECKPOINT_NAME).is_file():
            raise SystemExit(f"funrl: {path} is a folder without a {CHECKPOINT_NAME}")
        return p / CHECKPOINT_NAME
    return p


def _load_for_eval(
    path: str, member: int | None, imports: list[str]
) -> tuple[Any, list[tuple[int | None, Any]], Any]:
    """``(algo, [(member, state)], checkpoint)`` rebuilt from a checkpoint (or run folder)
    written by ``funrl train``: one state, the chosen member of a population, or every
    member (``member=None`` on a population)."""
    import torch

    from funrl import checkpoint, tree

    file = _checkpoint_file(path)
    try:
        meta = checkpoint.read_meta(file)
        _import_recorded(meta, imports)
        ck = checkpoint.load(file)
    except checkpoint.CheckpointError as e:
        raise SystemExit(f"funrl: {e}") from None
    name = ck.meta.get("algo")
    if name is None or ck.config is None:
        raise SystemExit(f"funrl: {path} has no algorithm/config (save it with algo=...)")
    mod = algo_module(name)
    algo = mod.make(ck.config)
    state = ck.state
    size: int | None = None
    like = algo.init(_key(0), mod.HParams.create())  # shapes only: hparams values don't matter
    if isinstance(state, dict) and "states" in state:  # populations, data-parallel ranks
        state = state["states"]
        size = int(tree.leaves(state)[0].shape[0])
        if member is None and ck.meta.get("mode") == "data_parallel":
            member = 0  # every rank holds the same params
    else:  # a vmapped state saved by hand: every leaf has one more (leading) dim
        pairs = [
            (a, b)
            for a, b in zip(tree.leaves(state), tree.leaves(like))
            if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
        ]
        if pairs and all(a.dim() == b.dim() + 1 and a.shape[1:] == b.shape for a, b in pairs):
            size = int(pairs[0][0].shape[0])
    if member is not None:
        if size is None:
            raise SystemExit(f"funrl: --member {member}: {path} holds one agent, not a population")
        if not 0 <= member < size:
            raise SystemExit(f"funrl: --member {member}: {path} holds members 0..{size - 1}")
    picks = [member] if size is None or member is not None else list(range(size))
    states = []
    for i in picks:
        one = state if i is None else tree.map(lambda x, i=i: x if x is None else x[i], state)
        try:
            checkpoint.check_like(one, like, where=str(path))
        except checkpoint.CheckpointError as e:
            raise SystemExit(f"funrl: {e}") from None
        states.append((i, one))
    return algo, states, ck


def _import_recorded(meta: dict[str, Any], imports: list[str]) -> None:
    """Make a checkpoint of a user-defined env loadable: the current folder and the
    folder the run was started in go on ``sys.path``; ``--import`` modules and those the
    run imported (``funrl train --import``) are imported."""
    from funrl.arguments import _import_modules

    folder = meta.get("cwd")
    if isinstance(folder, str) and Path(folder).is_dir() and folder not in sys.path:
        sys.path.append(folder)
    recorded = [m for m in meta.get("imports") or [] if isinstance(m, str)]
    _import_modules([*imports, *[m for m in recorded if m not in imports]])


def _key(seed: int) -> torch.Tensor:
    from funrl import random

    return random.key(seed)


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    set_threads(args.threads, envs=1)  # evaluation steps a handful of envs
    import funrl

    algo, states, ck = _load_for_eval(args.checkpoint, args.member, args.imports)
    where = f"{algo.name} on {algo.config.env} ({ck.meta.get('updates', '?')} updates)"
    results = []
    for i, state in states:
        rets = funrl.evaluate(algo, state, _key(args.seed), num_episodes=args.episodes)
        done = rets[~torch.isnan(rets)]
        if done.numel() == 0:
            raise SystemExit("funrl: no episode finished within the step limit")
        results.append((float(done.mean()), i, done))
    if len(results) > 1:  # a population: every member, best first
        print(f"{where}: {len(results)} members, {args.episodes} episodes each, best first")
    for mean, i, done in sorted(results, key=lambda r: -r[0]):
        who = "" if i is None else f"member {i}: "
        lead = f"{where}: " if len(results) == 1 else "  "
        print(
            f"{lead}{who}{done.numel()} episodes, mean return {mean:.2f} ± "
            f"{float(done.std(unbiased=False)):.2f} (min {float(done.min()):.2f}, "
            f"max {float(done.max()):.2f})",
            flush=True,
        )
    if args.video:
        best = max(results, key=lambda r: r[0])[1]
        _record_video(algo, dict(states)[best], args.video, args.seed)
    return 0


def _record_video(algo: Any, state: Any, folder: str, seed: int) -> None:
    """One episode of the same env id in Gymnasium, rendered with RecordVideo."""
    import gymnasium as gym
    import torch

    from funrl.algos.common import env_action

    env_id = algo.config.env.removeprefix("gym:")
    try:
        if env_id.startswith("envpool:") and env_id.endswith("-v5"):  # the same game in ALE
            env_id = "atari:" + env_id.removeprefix("envpool:").removesuffix("-v5")
        if env_id.startswith("atari:"):
            from funrl.envs.atari import gym_env

            env = gym_env(env_id.removeprefix("atari:"), evaluation=True, render_mode="rgb_array")
        else:
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
        action = algo.act(params, torch.as_tensor(obs, dtype=torch.float32)[None])
        action = env_action(algo.env_stack, action)[0]  # in the env's action bounds
        obs, _, terminated, truncated, _ = env.step(action.numpy())
        done = terminated or truncated
    env.close()
    print(f"video: {folder}", flush=True)


def cmd_export(args: argparse.Namespace) -> int:
    from funrl import export

    target = Path(args.out)
    if target.is_dir():
        raise SystemExit(f"funrl: -o {args.out} is a folder; give a file path (policy.pt2)")
    if not target.parent.is_dir():
        raise SystemExit(f"funrl: -o {args.out}: folder {target.parent} does not exist")
    if target.exists() and not args.force:
        raise SystemExit(f"funrl: -o {args.out} exists; add --force to overwrite it")
    algo, states, _ = _load_for_eval(args.checkpoint, args.member, args.imports)
    if len(states) > 1:
        raise SystemExit(
            f"funrl: {args.checkpoint} holds a population of {len(states)}: pick one with "
            "--member I (funrl eval ranks them)"
        )
    out = export.export_policy(algo, states[0][1], args.out, method=args.method)
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
    import warnings

    from funrl import plot

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = plot.plot_runs(args.runs, args.out, y=args.y, x=args.x, smooth=args.smooth)
        for w in caught:
            print(f"funrl: {w.message}", file=sys.stderr, flush=True)
        if args.tensorboard:
            for d in args.runs:
                print(f"tensorboard: {plot.to_tensorboard(d)}", flush=True)
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


def _list_presets(algo: str) -> int:
    from funrl import presets

    print(
        f"{algo} presets (funrl/presets/{algo}.toml; `funrl train {algo} --env ENV` starts "
        "from them, --set/--config override, --no-preset skips):"
    )
    for p in presets.of(algo):
        fields = ", ".join(f"{k}={v}" for k, v in p.fields.items())
        print(f"  {p.env}: {fields}")
        facts = []
        if p.threshold is not None:
            facts.append(f"threshold {p.threshold:g}")
        if p.reference is not None:
            r = p.reference
            facts.append(f"reference {r.source} {r.mean_return:g} at {r.env_steps:,} steps")
        if p.skip:
            facts.append(f"not run by the zoo: {p.skip}")
        if facts:
            print(f"    ({'; '.join(facts)})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from funrl._builtin_envs import BUILTIN_ENVS  # plain data: no torch import

    if args.algo is not None:
        if args.algo not in ALGOS:
            algo_module(args.algo)  # the one-line error with close matches
        return _list_presets(args.algo)

    print("algorithms: " + ", ".join(ALGOS))
    print("environments: " + ", ".join(sorted(e[0] for e in BUILTIN_ENVS)))
    print(
        "  torch envs: every algorithm that fits the action space, compiled end to end and "
        "vmapped over populations; the MinAtar envs have image observations: ppo, a2c, dqn"
    )
    print(
        "any Gymnasium id with flat Box observations and a Discrete or Box action space "
        "trains with every algorithm as gym:<id> (e.g. gym:InvertedPendulum-v5 with the "
        "mujoco extra): host env, its step runs eagerly, no populations"
    )
    print(
        "Atari games as atari:<Game> (e.g. atari:Breakout; the atari extra): ALE with the "
        "standard preprocessing, 4x84x84 frames (ppo, a2c, dqn)"
    )
    print(
        "EnvPool tasks as envpool:<task> (e.g. envpool:Breakout-v5; the envpool extra, Linux "
        "x86_64): batched in C++, Atari with the same preprocessing as atari:<Game>"
    )
    print("DM Control tasks as dmc:<domain>-<task> (e.g. dmc:cartpole-swingup; dm-control extra)")
    from funrl import presets

    print("presets (`funrl train ALGO --env ENV` starts from them; `funrl list ALGO` shows them):")
    for algo, envs in presets.available().items():
        print(f"  {algo}: {', '.join(envs)}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from funrl import zoo

    out = args.out
    if args.action == "report":
        print(zoo.report(out), end="")
        print(f"written: {Path(out) / 'README.md'}", flush=True)
        return 0
    try:
        chosen = zoo.selected(args.algo, args.env, skipped=bool(args.env))
    except ValueError as e:
        raise SystemExit(f"funrl zoo: {e}") from None
    for preset in chosen:
        envs = args.seeds * int(preset.fields.get("num_envs", 1))
        set_threads(args.threads, envs=envs)
        print(f"zoo: {preset.algo} on {preset.env}, {args.seeds} seeds ...", flush=True)
        try:
            r = zoo.run(
                preset.algo,
                preset.env,
                seeds=args.seeds,
                out=out,
                compile=args.compile,
                final_episodes=args.final_episodes,
                total_timesteps=args.total_steps,
                progress=not args.quiet,
            )
        except KeyboardInterrupt:
            print(f"zoo: interrupted; nothing written for {preset.algo} on {preset.env}")
            return 130
        finals = ", ".join(f"{x:.1f}" for x in r["final"])
        print(
            f"zoo: {preset.algo} on {preset.env}: {r['mean']:.1f} +- {r['std']:.1f} "
            f"[{finals}] after {r['env_steps']:,} steps, {r['wall_s']:.0f} s",
            flush=True,
        )
    print(zoo.report(out), end="")
    return 0


def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (one that defines or registers the run's env); those the "
        "run imported are imported anyway",
    )


def _version() -> str:
    from funrl._version import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="funrl", description="Functional RL on PyTorch.")
    p.add_argument("--version", action="version", version=f"funrl {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="train an agent and evaluate it",
        description="Train an agent; "
        "every Config and HParams field can be set with --set name=value.",
    )
    add_run_arguments(t)
    t.set_defaults(fn=cmd_train)
    threads = default_threads()
    from funrl.zoo import DEFAULT_OUT as ZOO_OUT  # plain data: no torch import
    from funrl.zoo import FINAL_EPISODES

    e = sub.add_parser(
        "eval",
        help="evaluate a saved policy",
        description="Evaluate the "
        "deterministic policy of a checkpoint written by `funrl train --checkpoint`.",
    )
    e.add_argument("checkpoint", help="checkpoint file or run folder")
    e.add_argument("--episodes", type=positive_int, default=10, help="episodes (default 10)")
    e.add_argument("--seed", type=int, default=0, help="seed of the evaluation key")
    e.add_argument(
        "--member",
        type=non_negative_int,
        default=None,
        help="population member to evaluate (default: every member, best first)",
    )
    _add_import(e)
    e.add_argument(
        "--video",
        default=None,
        metavar="DIR",
        help="also record one episode of the Gymnasium env with the same id to DIR "
        "(needs gymnasium's rendering extras and moviepy)",
    )
    e.add_argument("--threads", type=threads_arg, default=threads, help="torch threads (or auto)")
    e.set_defaults(fn=cmd_eval)
    x = sub.add_parser(
        "export",
        help="export a saved policy for deployment",
        description="Write the deterministic policy of a checkpoint as a "
        "torch.export program that runs without funrl.",
    )
    x.add_argument("checkpoint", help="checkpoint file or run folder")
    x.add_argument("-o", "--out", required=True, help="output file (.pt2), in an existing folder")
    x.add_argument("--force", action="store_true", help="overwrite the output file")
    x.add_argument(
        "--member", type=non_negative_int, default=None, help="population member to export"
    )
    _add_import(x)
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
    pl.add_argument("--smooth", type=positive_int, default=1, help="trailing-mean window")
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
    z = sub.add_parser(
        "zoo",
        help="train every preset on 5 seeds and report them",
        description="`funrl zoo run`: train presets (all, or --algo/--env) on seeds 0..N-1 "
        "as one vmapped population each and write OUT/<algo>/<env>.json and .png; "
        "`funrl zoo report`: the results table OUT/README.md.",
    )
    z.add_argument("action", choices=("run", "report"))
    z.add_argument("--algo", action="append", default=None, help="algorithm (repeatable)")
    z.add_argument("--env", action="append", default=None, help="environment id (repeatable)")
    z.add_argument("--seeds", type=positive_int, default=5, help="seeds per preset (default 5)")
    z.add_argument("--out", default=ZOO_OUT, help=f"results folder (default {ZOO_OUT})")
    z.add_argument(
        "--total-steps", type=positive_int, default=None, help="shorten every run (smoke test)"
    )
    z.add_argument(
        "--final-episodes",
        type=positive_int,
        default=None,
        help=f"final-evaluation episodes per seed (default {FINAL_EPISODES} on a torch env, "
        "10 on a host env)",
    )
    z.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    z.add_argument("--threads", type=threads_arg, default=threads, help="torch threads (or auto)")
    z.add_argument("--quiet", action="store_true", help="no progress bar")
    z.set_defaults(fn=cmd_zoo)
    ls = sub.add_parser(
        "list",
        help="list algorithms, environments and presets",
        description="`funrl list`: algorithms, environments and which presets exist; "
        "`funrl list ALGO`: that algorithm's presets, field by field.",
    )
    ls.add_argument("algo", nargs="?", default=None, help="show this algorithm's presets")
    ls.set_defaults(fn=cmd_list)
    return p


def entry() -> None:
    """The ``funrl`` command: :func:`main`, then exit without the interpreter's teardown.

    Tearing down torch's modules at exit takes ~1 s after any compiled code ran (2-core
    CPU); everything a command writes is closed by then, so exit handlers run and the
    process ends at once.  An exception still exits the usual way.
    """
    import atexit
    import os

    rc = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def main(argv: list[str] | None = None) -> int:
    """Run ``funrl ARGV``; returns the exit code.

    Bad input (an argument, a value, a file) is one line on stderr naming the argument and
    what was expected, exit code 2, before anything is written.  A run stopped by Ctrl-C or
    SIGTERM saves its checkpoint and returns 130 or 143.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    import warnings

    formatwarning = warnings.formatwarning
    warnings.formatwarning = functools.partial(_one_line_warning, formatwarning)  # type: ignore[assignment]
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv  # `train --nproc N` hands its own arguments to the ranks
        args.command_line = ["funrl", *argv]
        return int(args.fn(args))
    except SystemExit as e:
        if isinstance(e.code, str):  # funrl's own one-line errors
            print(e.code, file=sys.stderr, flush=True)
            return 2
        raise
    finally:
        warnings.formatwarning = formatwarning


def _one_line_warning(
    default: Callable[..., str],
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """funrl's own warnings as one line (``funrl: warning: ...``); others as ``default``."""
    if category is UserWarning and filename.startswith(str(Path(__file__).resolve().parent)):
        return f"funrl: warning: {message}\n"
    return default(message, category, filename, lineno, line)


if __name__ == "__main__":
    sys.exit(main())
