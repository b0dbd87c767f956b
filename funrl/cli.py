"""``funrl`` command line.

* ``funrl train ppo --env CartPole-v1 [--config run.toml] [--set lr=3e-4] [--checkpoint
  final.pt]``: every Config and HParams field can be set in a TOML file (flat
  ``name = value`` keys) and with ``--set name=value`` (repeatable; wins over the file).
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
import dataclasses
import difflib
import os
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch

__all__ = ["Run", "add_run_arguments", "build_parser", "loop_options", "main", "parse_run"]

ALGOS = ("ppo", "a2c", "dqn", "sac", "td3", "ddpg")


def _algo_module(name: str) -> Any:
    if name not in ALGOS:
        close = difflib.get_close_matches(name, ALGOS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SystemExit(
            f"funrl: unknown algorithm {name!r}; choose from {', '.join(ALGOS)}.{hint}"
        )
    import importlib

    return importlib.import_module(f"funrl.algos.{name}")


def _parse_value(raw: str, current: Any, name: str) -> Any:
    if isinstance(current, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SystemExit(f"funrl: {name} expects true/false, got {raw!r}")
    if isinstance(current, int):
        try:
            return int(float(raw)) if float(raw).is_integer() else int(raw)
        except ValueError:
            raise SystemExit(f"funrl: {name} expects an integer, got {raw!r}") from None
    if isinstance(current, tuple):
        try:
            return tuple(int(x) for x in raw.replace("x", ",").split(",") if x)
        except ValueError:
            raise SystemExit(f"funrl: {name} expects integers like 64,64, got {raw!r}") from None
    if isinstance(current, (float, torch.Tensor)):
        try:
            return float(raw)
        except ValueError:
            raise SystemExit(f"funrl: {name} expects a number, got {raw!r}") from None
    return raw


def _unknown_field(
    mod: Any, name: str, valid_hp: Any, valid_cfg: Any, where: str = ""
) -> SystemExit:
    valid = sorted(set(valid_hp) | set(valid_cfg))
    close = difflib.get_close_matches(name, valid, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return SystemExit(
        f"funrl: {where}unknown field {name!r} for {mod.__name__.rsplit('.', 1)[-1]}.{hint}\n"
        f"  HParams: {', '.join(sorted(valid_hp))}\n"
        f"  Config: {', '.join(sorted(valid_cfg))}"
    )


def _coerce(value: Any, current: Any, name: str) -> Any:
    """A TOML value checked against the type of the field's default."""
    kind = None
    if isinstance(current, bool):
        kind = "true/false" if not isinstance(value, bool) else None
    elif isinstance(current, int):
        kind = "an integer" if isinstance(value, bool) or not isinstance(value, int) else None
    elif isinstance(current, tuple):
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        if ok:
            return tuple(value)
        kind = "a list of integers like [64, 64]"
    elif isinstance(current, (float, torch.Tensor)):
        kind = (
            "a number" if isinstance(value, bool) or not isinstance(value, (int, float)) else None
        )
        value = float(value) if kind is None else value
    elif isinstance(current, str):
        kind = "a string" if not isinstance(value, str) else None
    if kind is not None:
        raise SystemExit(f"funrl: {name} expects {kind}, got {value!r}")
    return value


def _read_toml(path: str, mod: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config fields, hparams fields)`` from a flat TOML file of ``name = value``."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise SystemExit("funrl: --config needs Python >= 3.11 (tomllib) or tomli") from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SystemExit(f"funrl: --config file {path!r} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise SystemExit(f"funrl: {path}: invalid TOML: {e}") from None
    cfg_defaults = {f.name: f.default for f in dataclasses.fields(mod.Config)}
    hp_defaults = dict(vars(mod.HParams.create()))
    cfg: dict[str, Any] = {}
    hp: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if isinstance(value, dict):
            raise SystemExit(
                f"funrl: {path}: [{key}] tables are not supported; use flat name = value keys"
            )
        if name in hp_defaults:
            hp[name] = _coerce(value, hp_defaults[name], f"{path}: {name}")
        elif name in cfg_defaults:
            cfg[name] = _coerce(value, cfg_defaults[name], f"{path}: {name}")
        else:
            raise _unknown_field(mod, name, hp_defaults, cfg_defaults, where=f"{path}: ")
    return cfg, hp


class Run(NamedTuple):
    """What the run arguments (:func:`add_run_arguments`) ask for.

    Attributes:
      module: the algorithm's module (``funrl.algos.ppo``).
      config: its ``Config``, validated.
      hparams: ``HParams.create(**overrides)``, checked.
      overrides: the HParams fields the TOML file and ``--set`` gave (for populations).
    """

    module: Any
    config: Any
    hparams: Any
    overrides: dict[str, Any]


def _apply_sets(
    mod: Any,
    sets: list[str],
    config_kwargs: dict[str, Any],
    hp_kwargs: dict[str, Any] | None = None,
) -> Run:
    config_fields = {f.name: f.default for f in dataclasses.fields(mod.Config)}
    config_fields.update(config_kwargs)
    hp_defaults = {k: v for k, v in vars(mod.HParams.create()).items()}
    hp_over: dict[str, float] = dict(hp_kwargs or {})
    cfg_over: dict[str, Any] = {}
    for item in sets:
        if "=" not in item:
            raise SystemExit(f"funrl: --set expects name=value, got {item!r}")
        name, raw = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name in hp_defaults:
            hp_over[name] = _parse_value(raw, hp_defaults[name], name)
        elif name in config_fields:
            cfg_over[name] = _parse_value(raw, config_fields[name], name)
        else:
            raise _unknown_field(mod, name, hp_defaults, config_fields)
    config = mod.Config(**{**config_kwargs, **cfg_over})
    hparams = mod.HParams.create(**hp_over)
    try:
        config.validate()
        hparams.check()
    except (ValueError, TypeError) as e:
        raise SystemExit(f"funrl: {e}") from None
    return Run(mod, config, hparams, hp_over)


def _check_env(env_id: str) -> None:
    from funrl.envs.registry import registered

    if env_id.startswith("gym:"):
        return
    if env_id not in registered():
        close = difflib.get_close_matches(env_id, registered(), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SystemExit(f"funrl: unknown env {env_id!r}.{hint} See `funrl list`.")


def parse_run(args: argparse.Namespace) -> Run:
    """The algorithm, config and hyperparameters of parsed run arguments: the TOML file,
    then ``--env``/``--total-steps``, then ``--set`` (last wins).  Every error (a typo in
    a name, a bad value) is a ``SystemExit`` naming close matches, before anything runs."""
    mod = _algo_module(args.algo)
    cfg_kwargs, hp_kwargs = _read_toml(args.config, mod) if args.config else ({}, {})
    if args.env is not None:
        cfg_kwargs["env"] = args.env
    args.env = cfg_kwargs.setdefault("env", "CartPole-v1")
    _check_env(args.env)
    if args.total_steps is not None:
        cfg_kwargs["total_timesteps"] = args.total_steps
    return _apply_sets(mod, args.set or [], cfg_kwargs, hp_kwargs)


def make_algo(run: Run) -> Any:
    """``run.module.make(run.config)``; a bad config is a ``SystemExit`` with the reason."""
    try:
        return run.module.make(run.config)
    except (ValueError, TypeError) as e:
        raise SystemExit(f"funrl: {e}") from None


def loop_options(args: argparse.Namespace, out: Path | None = None) -> dict[str, Any]:
    """The host loop's features (``funrl.loop.run``) from parsed run arguments."""
    return {
        "num_updates": args.updates,
        "out_dir": out if out is not None else args.out,
        "progress": not args.quiet,
        "eval_every": args.eval_every,
        "target_return": args.target_return,
        "checkpoint_path": args.checkpoint,
        "checkpoint_every": args.checkpoint_every,
        "resume": args.resume,
    }


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
    mod = _algo_module(name)
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


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments ``funrl train`` and ``python -m funrl.distributed`` share (read them
    with :func:`parse_run` and :func:`loop_options`)."""
    p.add_argument("algo", help=f"algorithm: {', '.join(ALGOS)}")
    p.add_argument(
        "--env", default=None, help="environment id (see `funrl list`; default CartPole-v1)"
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE.toml",
        help="TOML file of Config/HParams fields (name = value); --set overrides it",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the run's key (default 0)")
    p.add_argument("--total-steps", type=int, default=None, help="env steps to train for")
    p.add_argument("--updates", type=int, default=None, help="updates (default: from the steps)")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="set a Config or HParams field, e.g. --set lr=3e-4 --set num_envs=32",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compile each compute unit with torch.compile (default; --no-compile: eager)",
    )
    p.add_argument(
        "--out", default=None, help="output folder for metrics (funrl train: runs/<name>)"
    )
    p.add_argument("--eval-every", type=int, default=None, help="evaluate every N updates")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    p.add_argument("--target-return", type=float, default=None, help="stop once eval reaches it")
    p.add_argument(
        "--checkpoint",
        default=None,
        metavar="PATH",
        help="save the state here at the end (for funrl eval / export / --resume)",
    )
    p.add_argument("--checkpoint-every", type=int, default=None, help="and every N updates")
    p.add_argument("--resume", default=None, metavar="PATH", help="continue from a checkpoint")
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("FUNRL_THREADS", "1")),
        help="torch threads per process (default 1, or $FUNRL_THREADS)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="run N processes with torchrun (funrl train: data-parallel, for algorithms "
        "with one optimizer: ppo, a2c)",
    )


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
