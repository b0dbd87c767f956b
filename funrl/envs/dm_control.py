"""DeepMind Control Suite tasks as host envs: ``funrl.make("dmc:cartpole-swingup")``.

``dmc:<domain>-<task>`` loads ``dm_control.suite.load(domain, task)`` behind a small
Gymnasium adapter (:class:`DMCGymEnv`) and the Gymnasium bridge (a host env, see
:mod:`funrl.envs.gym_bridge`), so every algorithm trains on it.  Semantics:

* observations: the task's dict of arrays flattened and concatenated in the order of its
  ``observation_spec()`` (float32, e.g. cartpole's ``position [3]`` then ``velocity [2]``:
  5 values).  :data:`DMCGymEnv.observation_keys` lists the slices.
* actions: a Box from the ``action_spec()`` bounds (``[-1, 1]`` in every suite task).
* rewards: the task's reward (in ``[0, 1]`` per step in the suite).
* episode ends: the suite's time limit (1000 steps, ``discount == 1`` at the last step)
  is a truncation; a last step with ``discount == 0`` (none of the standard suite tasks
  has one) a termination.
* seeding: ``reset(seed=s)`` reseeds the task's random state, so the same key gives the
  same episodes.

Needs the ``dm-control`` extra (``pip install 'funrl[dm-control]'``; it pins MuJoCo below
4, which dm-control 1.0 requires and Gymnasium's MuJoCo envs also run on).

Example::

    >>> env, _ = funrl.make("dmc:cartpole-swingup", num_envs=2)   # doctest: +SKIP
    >>> env.observation_space().shape                              # doctest: +SKIP
    (5,)
"""

from __future__ import annotations

import difflib
import math
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["DMCGymEnv", "make_dmc"]


def _suite() -> Any:
    try:
        from dm_control import suite
    except ImportError as e:
        raise ValueError(
            f"dmc envs need the dm-control extra: pip install 'funrl[dm-control]' ({e})"
        ) from None
    except AttributeError as e:  # dm-control built for another MuJoCo
        raise ValueError(
            f"dm-control cannot load with the installed MuJoCo ({e}); install "
            "'funrl[dm-control]' (MuJoCo < 4)"
        ) from None
    return suite


class DMCGymEnv(gym.Env):  # type: ignore[type-arg]
    """Suite task ``domain``/``task`` as a Gymnasium env (see the module docstring).

    Attributes:
      observation_keys: ``(key, size)`` of each observation entry, in the flat order.
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012  (Gymnasium's convention)

    def __init__(self, domain: str, task: str, render_mode: str | None = None) -> None:
        self._env = _suite().load(domain, task)
        spec = self._env.observation_spec()
        self.observation_keys = [(k, int(math.prod(v.shape))) for k, v in spec.items()]
        n = sum(size for _, size in self.observation_keys)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)
        a = self._env.action_spec()
        low, high = a.minimum.astype(np.float32), a.maximum.astype(np.float32)
        self.action_space = gym.spaces.Box(low, high, a.shape, np.float32)
        self.render_mode = render_mode

    def _obs(self, observation: Any) -> np.ndarray:
        parts = [
            np.asarray(observation[k], np.float64).reshape(-1) for k, _ in self.observation_keys
        ]
        return np.concatenate(parts).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)
        ts = self._env.reset()
        return self._obs(ts.observation), {}

    def step(self, action: Any) -> Any:
        ts = self._env.step(np.asarray(action, np.float64))
        terminated = bool(ts.last() and ts.discount == 0.0)
        truncated = bool(ts.last() and not terminated)
        return self._obs(ts.observation), float(ts.reward or 0.0), terminated, truncated, {}

    def render(self) -> Any:
        return self._env.physics.render(height=240, width=320, camera_id=0)


def _split(name: str) -> tuple[str, str]:
    suite = _suite()
    tasks = [f"{d}-{t}" for d, t in suite.ALL_TASKS]
    if name not in tasks:
        close = difflib.get_close_matches(name, tasks, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"make: unknown DM Control task {name!r} (domain-task){hint}")
    domain, task = name.split("-", 1)
    return domain, task


def make_dmc(name: str, num_envs: int | None = None, *, vectorization: str = "sync") -> Any:
    """``dmc:<domain>-<task>`` as a :class:`~funrl.envs.gym_bridge.GymnasiumEnv`
    (``num_envs`` tasks in a Gymnasium vector env, or one; ``vectorization`` ``"sync"``,
    ``"async"`` or ``"thread"``, as for :class:`~funrl.envs.gym_bridge.GymnasiumEnv`)."""
    from funrl.envs.gym_bridge import GymnasiumEnv
    from funrl.envs.thread_vector import check_vectorization, vector_env_class

    domain, task = _split(name)
    if num_envs is None:
        return GymnasiumEnv(DMCGymEnv(domain, task))
    check_vectorization("make_dmc: ", vectorization)
    fns = [lambda: DMCGymEnv(domain, task)] * num_envs
    cls = vector_env_class(vectorization)
    return GymnasiumEnv(cls(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP))
