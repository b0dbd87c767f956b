"""The run arguments ``funrl train`` and ``python -m funrl.distributed`` share.

:func:`add_run_arguments` adds them to a parser; :func:`parse_run` reads the algorithm,
its ``Config`` and ``HParams`` from them (a flat TOML file, then ``--env`` and
``--total-steps``, then ``--set name=value``, last wins) and :func:`loop_options` the host
loop's features.  A typo (algorithm, env, field, TOML key) or a bad value is a
``SystemExit`` naming the close matches, before anything trains.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "ALGOS",
    "Parser",
    "Run",
    "RunPaths",
    "add_run_arguments",
    "algo_module",
    "loop_options",
    "make_algo",
    "non_negative_int",
    "parse_run",
    "positive_int",
    "run_paths",
]

ALGOS = ("ppo", "a2c", "dqn", "sac", "td3", "ddpg")


def algo_module(name: str) -> Any:
    if name not in ALGOS:
        close = difflib.get_close_matches(name, ALGOS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SystemExit(
            f"funrl: unknown algorithm {name!r}; choose from {', '.join(ALGOS)}.{hint}"
        )
    import importlib

    return importlib.import_module(f"funrl.algos.{name}")


def _is_number(x: Any) -> bool:
    """A float or a tensor (an HParams default), without importing torch for nothing."""
    if isinstance(x, float):
        return True
    import torch

    return isinstance(x, torch.Tensor)


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
            sizes = tuple(int(x) for x in raw.replace("x", ",").split(",") if x.strip())
        except ValueError:
            sizes = ()
        if not sizes or min(sizes) < 1:
            raise SystemExit(
                f"funrl: {name} expects positive integers like 64,64, got {raw!r}"
            ) from None
        return sizes
    if _is_number(current):
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
    algo = mod.__name__.rsplit(".", 1)[-1]
    hint = (
        f" Did you mean {', '.join(close)}?"
        if close
        else f" HParams: {', '.join(sorted(valid_hp))}; Config: {', '.join(sorted(valid_cfg))}"
    )
    return SystemExit(f"funrl: {where}unknown field {name!r} for {algo}.{hint}")


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
    elif _is_number(current):
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
      overrides: the HParams fields the preset, the TOML file and ``--set`` gave (for
        populations).
      preset: ``"<algo>/<env>"`` of the preset the run started from, if any.
    """

    module: Any
    config: Any
    hparams: Any
    overrides: dict[str, Any]
    preset: str | None = None


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
    # discrete SAC's defaults differ (target entropy 0.89 log A): the class sac.make uses
    discrete = getattr(config, "discrete", False) and hasattr(mod, "DiscreteHParams")
    hparams = (mod.DiscreteHParams if discrete else mod.HParams).create(**hp_over)
    try:
        config.validate()
        hparams.check()
    except (ValueError, TypeError) as e:
        raise SystemExit(f"funrl: {e}") from None
    return Run(mod, config, hparams, hp_over)


def _check_env(env_id: str) -> None:
    from funrl._builtin_envs import HOST_PREFIXES
    from funrl.envs.registry import gymnasium_hint, registered

    if env_id.startswith(HOST_PREFIXES):
        return
    if env_id not in registered():
        gym_hint = gymnasium_hint(env_id)
        close = difflib.get_close_matches(env_id, registered(), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        hint += f" {gym_hint[0].upper()}{gym_hint[1:]}." if gym_hint else ""
        raise SystemExit(f"funrl: unknown env {env_id!r}.{hint} See `funrl list`.")


def _preset(mod: Any, env: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """``(config fields, hparams fields, "algo/env")`` of the preset for ``env`` (empty
    when there is none)."""
    from funrl import presets

    algo = mod.__name__.rsplit(".", 1)[-1]
    preset = presets.find(algo, env)
    if preset is None:
        return {}, {}, None
    cfg, hp = preset.split(mod.Config, mod.HParams)
    return cfg, hp, f"{algo}/{preset.env}"


def parse_run(args: argparse.Namespace, base: Any = None) -> Run:
    """The algorithm, config and hyperparameters of parsed run arguments: ``base`` (a
    resumed run's config) or else the preset for the env (:mod:`funrl.presets`, unless
    ``--no-preset``), the TOML file, then ``--env``/``--total-steps``, then ``--set`` (last
    wins).  The env is ``--env``, else the TOML file's, the resumed run's or the
    algorithm's default (``Config.env``).  Every error (a typo in a name, a bad value) is a
    ``SystemExit`` naming close matches, before anything runs."""
    _import_modules(getattr(args, "imports", None) or [])
    mod = algo_module(args.algo)
    cfg_kwargs, hp_kwargs = _read_toml(args.config, mod) if args.config else ({}, {})
    env = args.env or cfg_kwargs.get("env") or (base.env if base is not None else None)
    env = env or mod.Config.env
    _check_env(env)
    preset = None
    if base is not None:
        cfg_kwargs = {
            **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
            **cfg_kwargs,
        }
    elif getattr(args, "preset", True):
        pre_cfg, pre_hp, preset = _preset(mod, env)
        cfg_kwargs = {**pre_cfg, **cfg_kwargs}
        hp_kwargs = {**pre_hp, **hp_kwargs}
    cfg_kwargs["env"] = args.env = env
    args.preset_name = preset  # recorded in summary.json (loop_options)
    if args.total_steps is not None:
        cfg_kwargs["total_timesteps"] = args.total_steps
    return _apply_sets(mod, args.set or [], cfg_kwargs, hp_kwargs)._replace(preset=preset)


def make_algo(run: Run) -> Any:
    """``run.module.make(run.config)``; a bad config is a ``SystemExit`` with the reason."""
    try:
        return run.module.make(run.config)
    except (ValueError, TypeError) as e:
        raise SystemExit(f"funrl: {e}") from None


def _import_modules(names: list[str]) -> None:
    """``--import MODULE``: import user modules (that register envs) before anything; the
    current folder is searched first, as ``python -m`` does."""
    import importlib
    import sys

    if names and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise SystemExit(f"funrl: --import {name}: cannot import it ({e})") from None


class RunPaths(NamedTuple):
    """Where a run writes (:func:`run_paths`).

    Attributes:
      out: the run folder (``metrics.jsonl``, ``metrics.csv``, ``summary.json``).
      checkpoint: the checkpoint it writes (``--checkpoint``, else ``out/checkpoint.pt``).
      resume: the checkpoint it continues from, or ``None`` for a new run.
    """

    out: Path
    checkpoint: Path
    resume: Path | None


RUNS = Path("runs")
CHECKPOINT_NAME = "checkpoint.pt"


def run_name(args: argparse.Namespace) -> str:
    """``<algo>-<env>-s<seed>``: the stem of a run folder under ``runs/``."""
    return f"{args.algo}-{str(args.env).replace('/', '_').replace(':', '_')}-s{args.seed}"


def _status(folder: Path) -> str | None:
    import json

    try:
        return json.loads((folder / "summary.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _unfinished(args: argparse.Namespace) -> Path | None:
    """The newest ``runs/<algo>-<env>-s<seed>-*`` folder with a checkpoint whose run did
    not complete (for ``--resume auto`` without ``--out``)."""
    if not RUNS.is_dir():
        return None
    found = [
        d
        for d in RUNS.glob(f"{run_name(args)}-*")
        if (d / CHECKPOINT_NAME).is_file() and _status(d) != "completed"
    ]
    return max(found, key=lambda d: (d / CHECKPOINT_NAME).stat().st_mtime, default=None)


def _new_folder(args: argparse.Namespace) -> Path:
    import time

    stem = RUNS / f"{run_name(args)}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = stem, 1
    while out.exists():  # two runs started in the same second
        n += 1
        out = stem.with_name(f"{stem.name}-{n}")
    return out


def _non_empty(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def run_paths(args: argparse.Namespace, check: bool = True) -> RunPaths:
    """The run folder, checkpoint and resume file of parsed run arguments.

    * A new run (no ``--resume``) gets ``--out``, or a new ``runs/<algo>-<env>-s<seed>-
      <time>`` folder; it refuses a non-empty ``--out`` or an existing ``--checkpoint``
      unless ``--force`` (nothing is overwritten by accident).
    * ``--resume PATH`` continues PATH (a checkpoint, or a run folder holding
      ``checkpoint.pt``) in its own folder (or ``--out``), appending to its metrics.
    * ``--resume auto`` continues ``--checkpoint``, else ``--out``'s checkpoint, else the
      newest unfinished ``runs/<algo>-<env>-s<seed>-*`` run; with nothing to continue it
      starts a new run there.

    ``check=False`` skips the overwrite checks (ranks other than the launcher's).
    Errors are ``SystemExit`` with one line naming the argument.
    """
    out = Path(args.out) if args.out else None
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    resume: Path | None = None
    if args.resume == "auto":
        candidates = [ckpt] if ckpt else []
        if out is not None:
            candidates.append(out / CHECKPOINT_NAME)
        elif ckpt is None and (found := _unfinished(args)) is not None:
            candidates.append(found / CHECKPOINT_NAME)
            out = found
        resume = next((c for c in candidates if c.is_file()), None)
        if resume is None:  # (a run killed before its first checkpoint starts over)
            if check:
                print("funrl: --resume auto: no checkpoint to continue; starting a new run")
            check = False
    elif args.resume is not None:
        resume = Path(args.resume)
        if resume.is_dir():
            resume = resume / CHECKPOINT_NAME
        if not resume.is_file():
            raise SystemExit(
                f"funrl: --resume {args.resume}: no such checkpoint (or run folder with {CHECKPOINT_NAME})"
            )
        if out is None and (resume.parent / "summary.json").is_file():
            out = resume.parent
    if resume is not None:
        if out is None:
            out = _new_folder(args)
        return RunPaths(
            out, ckpt or (resume if out == resume.parent else out / CHECKPOINT_NAME), resume
        )
    out = out if out is not None else _new_folder(args)
    ckpt = ckpt or out / CHECKPOINT_NAME
    if ckpt.is_dir():
        raise SystemExit(f"funrl: --checkpoint {ckpt} is a folder; give a file path")
    if check and not args.force:
        if _non_empty(out) and args.out:
            raise SystemExit(
                f"funrl: --out {out} is not empty (an earlier run?): add --resume auto to "
                "continue it, --force to overwrite it, or choose another --out"
            )
        if ckpt.exists() and args.checkpoint:
            raise SystemExit(
                f"funrl: --checkpoint {ckpt} exists: add --resume auto to continue from it, "
                "--force to overwrite it, or choose another path"
            )
    return RunPaths(out, ckpt, None)


def checkpoint_every(args: argparse.Namespace, steps_per_update: int) -> int | None:
    """``--checkpoint-every``: ``N`` updates, or ``Nsteps`` env steps (rounded up to whole
    updates of ``steps_per_update``)."""
    every = args.checkpoint_every
    if every is None or isinstance(every, int):
        return every
    return max(1, -(-every[0] // steps_per_update))


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def loop_options(
    args: argparse.Namespace, paths: RunPaths, steps_per_update: int
) -> dict[str, Any]:
    """The host loop's features (``funrl.loop.run``) from parsed run arguments and the
    run's :func:`run_paths`."""
    return {
        "num_updates": args.updates,
        "out_dir": paths.out,
        "progress": not args.quiet,
        "eval_every": args.eval_every,
        "target_return": args.target_return,
        "checkpoint_path": paths.checkpoint,
        "checkpoint_every": checkpoint_every(args, steps_per_update),
        "resume": paths.resume,
        "run_info": {
            "seed": args.seed,
            "threads": _torch_threads(),
            "preset": getattr(args, "preset_name", None),
            "command": list(getattr(args, "command_line", []) or []),
            "imports": list(getattr(args, "imports", None) or []),
            "cwd": os.getcwd(),
        },
    }


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (``what`` names it in errors)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


#: argparse types: an integer >= 1, an integer >= 0
positive_int = _int_at_least(1, "a positive integer")


def threads_arg(text: str) -> int | str:
    """An argparse type: ``auto`` or a positive integer (``--threads``)."""
    return "auto" if text.strip().lower() == "auto" else positive_int(text)


def nproc_arg(text: str) -> int | str:
    """An argparse type: ``auto`` or a positive integer (``--nproc``)."""
    return "auto" if text.strip().lower() == "auto" else positive_int(text)


def default_threads() -> int | str:
    """``--threads``' default: ``$FUNRL_THREADS`` (a count or ``auto``), else ``auto``."""
    env = os.environ.get("FUNRL_THREADS", "auto")
    try:
        return threads_arg(env)
    except argparse.ArgumentTypeError:
        raise SystemExit(f"FUNRL_THREADS={env!r}: expected a positive integer or auto") from None


def set_threads(threads: int | str, envs: int, procs: int = 1) -> int:
    """Set torch's thread count from ``--threads`` for a process that steps ``envs``
    environments per call, one of ``procs`` on this machine (:mod:`funrl.runtime`);
    returns the count."""
    import torch

    from funrl import runtime

    n = runtime.resolve_threads(threads, envs, procs)
    torch.set_num_threads(n)
    return n


non_negative_int = _int_at_least(0, "an integer >= 0")


def _every(text: str) -> int | tuple[int]:
    """``--checkpoint-every``'s type: ``N`` (updates) or ``Nsteps`` (env steps)."""
    if text.endswith("steps"):
        return (positive_int(text.removesuffix("steps")),)
    return positive_int(text)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block) and exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments ``funrl train`` and ``python -m funrl.distributed`` share (read them
    with :func:`parse_run` and :func:`loop_options`)."""
    p.add_argument("algo", help=f"algorithm: {', '.join(ALGOS)}")
    p.add_argument(
        "--env",
        default=None,
        help="environment id (see `funrl list`; default: the algorithm's, CartPole-v1 or "
        "Pendulum-v1)",
    )
    p.add_argument(
        "--preset",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start from the tuned preset for the env, if there is one (`funrl list ALGO`); "
        "--config and --set override its fields (default; --no-preset: the Config and "
        "HParams defaults)",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE.toml",
        help="TOML file of Config/HParams fields (name = value); --set overrides it",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the run's key (default 0)")
    p.add_argument("--total-steps", type=positive_int, default=None, help="env steps to train for")
    p.add_argument(
        "--updates", type=positive_int, default=None, help="updates (default: from the steps)"
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="set a Config or HParams field, e.g. --set lr=3e-4 --set num_envs=32",
    )
    p.add_argument(
        "--compile",
        nargs="?",
        const="on",
        default="auto",
        choices=("auto", "on", "off"),
        help="compile each compute unit with torch.compile: on (also plain --compile), off "
        "(eager; also --no-compile), or auto (default; funrl train only, elsewhere on): "
        "compiled when this run's code is in the compile cache, else eager while a "
        "background process compiles it, switching when it is done; eager for runs too "
        "short to gain from compiling",
    )
    p.add_argument("--no-compile", dest="compile", action="store_const", const="off")
    p.add_argument(
        "--out",
        default=None,
        help="run folder: metrics, summary.json, checkpoint.pt (default: a new "
        "runs/<algo>-<env>-s<seed>-<time>); must be empty unless --resume or --force",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite a non-empty --out or existing --checkpoint"
    )
    p.add_argument("--eval-every", type=positive_int, default=None, help="evaluate every N updates")
    p.add_argument("--eval-episodes", type=positive_int, default=10, help="episodes per evaluation")
    p.add_argument("--target-return", type=float, default=None, help="stop once eval reaches it")
    p.add_argument(
        "--checkpoint",
        default=None,
        metavar="PATH",
        help="checkpoint file (default OUT/checkpoint.pt), written at the end, on Ctrl-C or "
        "SIGTERM, and every --checkpoint-every (for funrl eval / export / --resume)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_every,
        default=None,
        metavar="N|Nsteps",
        help="also checkpoint every N updates (or every N env steps: 50000steps)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="PATH|auto",
        help="continue a run: a checkpoint or run folder, or auto (--checkpoint, --out's "
        "checkpoint, else the newest unfinished runs/<algo>-<env>-s<seed>-*)",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (e.g. one that registers your env); recorded in the "
        "checkpoint so funrl eval imports it too",
    )
    p.add_argument(
        "--threads",
        type=threads_arg,
        default=default_threads(),
        help="torch threads per process, or auto: one per 128 envs stepped at once, at "
        "most the cores free at the start (default auto, or $FUNRL_THREADS)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=nproc_arg,
        default=1,
        help="run N processes with torchrun (funrl train: data-parallel, for algorithms "
        "with one optimizer: ppo, a2c); auto (populations): one per 16 members, at most "
        "the free cores",
    )
