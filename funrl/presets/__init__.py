"""Tuned settings per (algorithm, environment): the zoo's presets.

One TOML file per algorithm in this folder (``ppo.toml``, ``dqn.toml``, ...), one table
per environment id holding ``Config`` and ``HParams`` fields, and under ``[<env>.zoo]``
what the preset is expected to reach and the published figure it is compared with.
``funrl train ALGO --env ENV`` starts from the preset (``--config`` and ``--set`` override
single fields; ``--no-preset`` starts from the defaults); in Python::

    >>> from funrl.algos import dqn
    >>> config = dqn.Config.preset("Acrobot-v1")          # Config fields of the preset
    >>> hparams = dqn.HParams.preset("Acrobot-v1", lr=1e-3)  # HParams fields, one changed
    >>> config.env, config.hidden
    ('Acrobot-v1', (64, 64))

A table name may be a pattern (``"atari:*"``); an exact id wins over a pattern.  The zoo
(:mod:`funrl.zoo`, ``funrl zoo run``) trains each preset on 5 seeds and reports it
against ``threshold`` and the reference.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ALGOS", "Preset", "Reference", "algo_of", "available", "find", "load", "of"]

#: Algorithms with a preset file (each ``funrl.algos.<name>``).
ALGOS = ("ppo", "a2c", "dqn", "sac", "td3", "ddpg")
FOLDER = Path(__file__).resolve().parent
_ZOO_KEYS = {
    "threshold",
    "reference",
    "reference_return",
    "reference_std",
    "reference_steps",
    "notes",
    "skip",
}


@dataclasses.dataclass(frozen=True)
class Reference:
    """A published figure for the same algorithm, env and step budget.

    Attributes:
      source: where it comes from (``"rl-zoo benchmark.md @22e3ff2"``).
      mean_return: its final mean return; std: its spread (``None`` if not given).
      env_steps: its training budget in env steps.
    """

    source: str
    mean_return: float
    env_steps: int
    std: float | None = None


@dataclasses.dataclass(frozen=True)
class Preset:
    """One table of a preset file.

    Attributes:
      algo, env: the algorithm and the table's env id (or pattern, ``"atari:*"``).
      fields: its ``Config`` and ``HParams`` fields, as written (lists for tuples).
      threshold: the final evaluation return every seed should reach (``None``: none set).
      reference: the published figure it is compared with, if any.
      notes: where the settings come from and what was tried.
      skip: why the zoo does not run it on this machine (``""``: it does).
    """

    algo: str
    env: str
    fields: Mapping[str, Any]
    threshold: float | None = None
    reference: Reference | None = None
    notes: str = ""
    skip: str = ""

    def split(self, config_cls: Any, hparams_cls: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(config fields, hparams fields)`` for these classes; a field of neither is a
        ``ValueError`` naming it."""
        cfg_names = {f.name for f in dataclasses.fields(config_cls)}
        hp_names = {f.name for f in dataclasses.fields(hparams_cls)}
        cfg: dict[str, Any] = {}
        hp: dict[str, Any] = {}
        for name, value in self.fields.items():
            if name in hp_names:
                hp[name] = float(value)
            elif name in cfg_names:
                cfg[name] = tuple(value) if isinstance(value, list) else value
            else:
                raise ValueError(
                    f"preset {self.algo}/{self.env} ({FOLDER / (self.algo + '.toml')}): "
                    f"{name!r} is neither a {config_cls.__name__} nor an "
                    f"{hparams_cls.__name__} field"
                )
        return cfg, hp


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli  # Python 3.10: a dependency there

    return tomli


def _preset(algo: str, env: str, table: Mapping[str, Any]) -> Preset:
    fields = {k: v for k, v in table.items() if k != "zoo"}
    zoo = dict(table.get("zoo", {}))
    unknown = sorted(set(zoo) - _ZOO_KEYS)
    if unknown:
        raise ValueError(
            f"preset {algo}/{env}: unknown [zoo] key(s) {unknown}; valid: {sorted(_ZOO_KEYS)}"
        )
    ref = None
    if "reference_return" in zoo:
        ref = Reference(
            source=str(zoo.get("reference", "")),
            mean_return=float(zoo["reference_return"]),
            env_steps=int(zoo["reference_steps"]),
            std=float(zoo["reference_std"]) if "reference_std" in zoo else None,
        )
    threshold = zoo.get("threshold")
    return Preset(
        algo=algo,
        env=env,
        fields=fields,
        threshold=None if threshold is None else float(threshold),
        reference=ref,
        notes=str(zoo.get("notes", "")),
        skip=str(zoo.get("skip", "")),
    )


@functools.cache
def _file(algo: str) -> dict[str, Preset]:
    path = FOLDER / f"{algo}.toml"
    if not path.is_file():
        return {}
    with open(path, "rb") as f:
        data = _toml().load(f)
    return {env: _preset(algo, env, table) for env, table in data.items()}


def _check_algo(algo: str) -> None:
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; presets exist for {', '.join(ALGOS)}")


def available(algo: str | None = None) -> dict[str, list[str]]:
    """``{algo: [env ids and patterns with a preset]}`` (one algorithm if given)."""
    if algo is not None:
        _check_algo(algo)
    return {a: list(_file(a)) for a in ((algo,) if algo else ALGOS)}


def of(algo: str) -> list[Preset]:
    """Every preset of ``algo``, in file order."""
    _check_algo(algo)
    return list(_file(algo).values())


def find(algo: str, env: str) -> Preset | None:
    """The preset for ``env`` (an exact id, else the first matching pattern), or ``None``."""
    _check_algo(algo)
    presets = _file(algo)
    if env in presets:
        return presets[env]
    for name, preset in presets.items():
        if any(c in name for c in "*?[") and fnmatch.fnmatchcase(env, name):
            return preset
    return None


def load(algo: str, env: str) -> Preset:
    """Like :func:`find`, but a missing preset is a ``ValueError`` listing those that exist."""
    preset = find(algo, env)
    if preset is None:
        have = ", ".join(_file(algo)) or "none"
        raise ValueError(
            f"no {algo} preset for {env!r}; {algo} has presets for: {have}. Use "
            f"{algo}.Config(env={env!r}) and set the fields yourself."
        )
    return preset


def algo_of(cls: type) -> str:
    """The algorithm a Config or HParams class belongs to: the first class in its MRO
    defined in ``funrl.algos.<algo>`` (a user's subclass inherits its base's presets)."""
    for klass in cls.__mro__:
        module = klass.__module__
        if module.startswith("funrl.algos."):
            name = module.rsplit(".", 1)[-1]
            if name in ALGOS:
                return name
    raise ValueError(f"{cls.__name__} is not a funrl algorithm's Config or HParams")


def config_for(config_cls: Any, env: str, overrides: Mapping[str, Any]) -> Any:
    """``config_cls`` from the preset of ``env`` with ``overrides`` (``Config.preset``)."""
    import importlib

    algo = algo_of(config_cls)
    mod = importlib.import_module(f"funrl.algos.{algo}")
    cfg, _ = load(algo, env).split(config_cls, mod.HParams)
    config = config_cls(**{**cfg, "env": env, **overrides})
    config.validate()
    return config


def hparams_for(hparams_cls: Any, env: str, overrides: Mapping[str, Any]) -> Any:
    """``hparams_cls.create`` from the preset of ``env`` with ``overrides``
    (``HParams.preset``)."""
    import importlib

    algo = algo_of(hparams_cls)
    mod = importlib.import_module(f"funrl.algos.{algo}")
    _, hp = load(algo, env).split(mod.Config, hparams_cls)
    return hparams_cls.create(**{**hp, **overrides})
