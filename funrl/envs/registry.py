"""Environment ids: ``make(env_id, **kwargs) -> (env, params)``.

Built-in ids (imported lazily, on first ``make``): ``"CartPole-v1"``, ``"Acrobot-v1"``,
``"MountainCar-v0"``, ``"MountainCarContinuous-v0"``, ``"Pendulum-v1"``,
``"MinAtar-Breakout-v1"``, ``"MinAtar-Asterix-v1"``, ``"MinAtar-Freeway-v1"``,
``"MinAtar-SpaceInvaders-v1"``, ``"MinAtar-Seaquest-v1"`` (:mod:`funrl.envs.minatar`) and the probe
envs ``"funrl/ConstantReward-v0"``, ``"funrl/ObservationReward-v0"``,
``"funrl/ActionReward-v0"``, ``"funrl/ContinuousActionReward-v0"``,
``"funrl/TwoStepDiscount-v0"``.  An id starting with ``"gym:"`` goes through the
host-side Gymnasium bridge (:func:`make_gymnasium`): ``make("gym:HalfCheetah-v5")``.

Example::

    >>> from funrl.envs.registry import make, register, registered
    >>> env, params = make("CartPole-v1")                  # doctest: +SKIP
    >>> venv, params = make("CartPole-v1", num_envs=16)    # a VecEnv  # doctest: +SKIP
    >>> "Pendulum-v1" in registered()
    True
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from collections.abc import Callable
from typing import Any

from funrl._builtin_envs import BUILTIN_ENVS, HOST_PREFIXES
from funrl.envs.base import Environment
from funrl.envs.vector import VecEnv

__all__ = ["gymnasium_hint", "make", "make_gymnasium", "register", "registered"]

Factory = Callable[..., Any]

_REGISTRY: dict[str, Factory] = {}


def _lazy(module: str, name: str) -> Factory:
    """A factory that imports ``module`` only when called and builds ``module.name(**kwargs)``."""

    def factory(**kwargs: Any) -> Environment:
        return getattr(importlib.import_module(module), name)(**kwargs)

    factory.__qualname__ = factory.__name__ = f"make_{name}"
    return factory


def register(env_id: str, factory: Factory, *, overwrite: bool = False) -> None:
    """Register ``factory(**kwargs) -> Environment`` (or ``-> (env, params)``) under ``env_id``.

    Raises ``ValueError`` if ``env_id`` is taken (pass ``overwrite=True`` to replace it)
    or uses the reserved ``"gym:"`` prefix, ``TypeError`` if ``factory`` is not callable.
    """
    if not isinstance(env_id, str) or not env_id:
        raise TypeError(f"register: env_id must be a non-empty str, got {env_id!r}")
    if env_id.startswith(HOST_PREFIXES):
        raise ValueError(
            f"register: the prefixes {', '.join(map(repr, HOST_PREFIXES))} are reserved for "
            f"the Gymnasium bridge ({env_id!r})"
        )
    if not callable(factory):
        raise TypeError(f"register: factory for {env_id!r} must be callable, got {factory!r}")
    if env_id in _REGISTRY and not overwrite:
        raise ValueError(
            f"register: {env_id!r} is already registered (to {_REGISTRY[env_id]!r}); "
            "pass overwrite=True to replace it"
        )
    _REGISTRY[env_id] = factory


def registered() -> list[str]:
    """The registered ids, sorted (``"gym:<id>"`` ids are not listed)."""
    return sorted(_REGISTRY)


def make_gymnasium(
    env_id: Any, num_envs: int | None = None, vectorization: str = "sync", **kwargs: Any
) -> tuple[Any, Any]:
    """``(GymnasiumEnv(env_id, num_envs, vectorization, **kwargs), None)``: the host bridge.

    The bridge has no params (``None``); it is not vmappable or compilable (see
    :mod:`funrl.envs.gym_bridge`).
    """
    import gymnasium as gym

    from funrl.envs.gym_bridge import GymnasiumEnv

    try:
        # Gymnasium's warnings (e.g. an old version) are shown only if the env is built:
        # a failure is one line.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            env = GymnasiumEnv(env_id, num_envs=num_envs, vectorization=vectorization, **kwargs)
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except gym.error.DependencyNotInstalled as e:
        extra = _EXTRAS.get(_gym_family(env_id), "")
        extra = f" (or: pip install 'funrl[{extra}]')" if extra else ""
        msg = f"make: gym:{env_id} needs a package that is not installed: {e}{extra}"
        raise ValueError(msg) from None
    except gym.error.Error as e:  # unknown id or version, deprecated version, ...
        raise ValueError(f"make: gym:{env_id}: {e}") from None
    return env, None


# Gymnasium env families and the funrl extra that installs what they need.
_EXTRAS = {"mujoco": "mujoco"}


def _gym_family(env_id: Any) -> str:
    """The Gymnasium package an id's entry point lives in (``"mujoco"``, ``"box2d"``...)."""
    import gymnasium as gym

    spec = gym.envs.registry.get(env_id) if isinstance(env_id, str) else None
    entry = spec.entry_point if spec is not None and isinstance(spec.entry_point, str) else ""
    parts = entry.split(":")[0].split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["gymnasium", "envs"] else ""


def gymnasium_hint(env_id: str) -> str:
    """For an id that is not registered here: ``"'<id>' is a Gymnasium id: use
    'gym:<id>' ..."`` where Gymnasium knows it (or names close Gymnasium ids), else ``""``."""
    try:
        import gymnasium as gym
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        return ""
    ids = list(gym.envs.registry)
    if env_id in ids:
        return f"{env_id!r} is a Gymnasium id: use 'gym:{env_id}' (a host env)"
    close = difflib.get_close_matches(env_id, ids, n=2, cutoff=0.75)
    if close:
        return f"Gymnasium has {', '.join(repr(f'gym:{c}') for c in close)}"
    return ""


def make(env_id: str, *, num_envs: int | None = None, **kwargs: Any) -> tuple[Any, Any]:
    """``(env, params)`` for a registered id; ``kwargs`` go to the factory.

    Args:
      env_id: a registered id (see :func:`registered`), ``"gym:<gymnasium id>"``,
        ``"atari:<game>"`` (:mod:`funrl.envs.atari`), ``"envpool:<task>"``
        (:mod:`funrl.envs.envpool_bridge`) or ``"dmc:<domain>-<task>"``
        (:mod:`funrl.envs.dm_control`).
      num_envs: if given, the env is wrapped in ``VecEnv(env, num_envs)`` (a gym id gets a
        Gymnasium vector env instead; pass ``vectorization="async"`` for subprocesses).  A
        registered host env (``env.is_host_bridge``) cannot be vmapped: its factory is
        called again with ``num_envs=num_envs`` and must return the batched env.
      **kwargs: passed to the factory (for ``"gym:"`` ids: to ``gymnasium.make``).

    Raises ``ValueError`` for an unknown id, naming the closest registered ones.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"make: env_id must be a str, got {type(env_id).__name__}")
    if env_id.startswith("gym:"):
        return make_gymnasium(env_id[len("gym:") :], num_envs=num_envs, **kwargs)
    if env_id.startswith("atari:"):  # ALE with the standard preprocessing (a host env)
        from funrl.envs.atari import make_atari

        return make_atari(env_id[len("atari:") :], num_envs=num_envs, **kwargs), None
    if env_id.startswith("envpool:"):  # an EnvPool task, batched in C++ (a host env)
        from funrl.envs.envpool_bridge import make_envpool

        return make_envpool(env_id[len("envpool:") :], num_envs=num_envs, **kwargs), None
    if env_id.startswith("dmc:"):  # a DeepMind Control Suite task (a host env)
        from funrl.envs.dm_control import make_dmc

        return make_dmc(env_id[len("dmc:") :], num_envs=num_envs, **kwargs), None
    if env_id not in _REGISTRY:
        gym_hint = gymnasium_hint(env_id)
        close = difflib.get_close_matches(env_id, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        if gym_hint:
            hint += f" ({gym_hint})" if close else f"; {gym_hint}"
        raise ValueError(
            f"make: unknown env id {env_id!r}{hint} (registered: "
            f"{', '.join(registered())}; use 'gym:<id>' for a Gymnasium env)"
        )
    env, params = _build(env_id, kwargs)
    if num_envs is not None:
        if getattr(env, "is_host_bridge", False):  # batched by the factory, not by vmap
            env, params = _build(env_id, {**kwargs, "num_envs": num_envs})
        else:
            env = VecEnv(env, num_envs)
    return env, env.default_params() if params is None else params


def _build(env_id: str, kwargs: dict[str, Any]) -> tuple[Environment, Any]:
    out = _REGISTRY[env_id](**kwargs)
    env, params = out if isinstance(out, tuple) else (out, None)
    if not isinstance(env, Environment):
        raise TypeError(f"make: the factory for {env_id!r} returned {env!r}, not an Environment")
    env.static_action_space()  # built eagerly, before a step is traced
    return env, params


for _id, _mod, _name in BUILTIN_ENVS:
    register(_id, _lazy(_mod, _name))
