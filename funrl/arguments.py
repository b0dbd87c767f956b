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
from pathlib import Path
from typing import Any, NamedTuple

import torch

__all__ = [
    "ALGOS",
    "Run",
    "add_run_arguments",
    "algo_module",
    "loop_options",
    "make_algo",
    "parse_run",
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
    mod = algo_module(args.algo)
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
