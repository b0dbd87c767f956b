"""Host bridge: any Gymnasium env (or vector env) behind funrl's reset/step signatures.

``GymnasiumEnv`` lets host-side loops (evaluation, MuJoCo, Atari, anything not written in
torch) use the same calls as a pure funrl env::

    obs, state = env.reset(key)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action)

**A bridged env is not vmappable and not compilable.**  Its ``step`` calls into Python,
numpy and C code (the simulator) outside torch, converts tensors to numpy and back, and
mutates the Gymnasium env held inside: ``torch.func.vmap`` cannot batch it,
``torch.compile`` cannot trace it (it would graph-break or fail), and the same ``state``
cannot be stepped twice.  Batch with ``num_envs`` (a Gymnasium ``SyncVectorEnv``; with
``vectorization="async"``, an ``AsyncVectorEnv`` in subprocesses; with ``"thread"``, a
:class:`~funrl.envs.thread_vector.ThreadVectorEnv` whose members step on threads, which
pays where a GIL-free simulator step dominates, e.g. MuJoCo's larger models) instead of
``VecEnv``.

Semantics, matching the pure envs:

* ``obs`` is a float32 tensor (``[*obs_shape]`` or ``[n, *obs_shape]``); ``reward``
  float32; ``terminated`` and ``truncated`` separate bool tensors (0-d or ``[n]``).
* Auto-reset: where an episode ended, ``obs`` is the first observation of the next
  episode and ``info["final_observation"]`` holds the observation the step produced (for
  every member, equal to ``obs`` where nothing ended).  Vector envs built here use
  Gymnasium's ``AutoresetMode.SAME_STEP``; a user's vector env in ``NEXT_STEP`` or
  ``DISABLED`` mode is reset immediately with ``reset(options={"reset_mask": done})``.
* Seeding: ``reset(key)`` seeds the Gymnasium env with ``int(funrl.random.bits(key))``
  (member ``i`` of a vector env gets ``seed + i``); later auto-resets continue the
  env's own seeded generator, so the same key gives the same trajectory.  The ``key`` of
  ``step`` is unused (the simulator draws from its own seeded generator).
* ``state`` is a 0-d int64 tensor, the number of steps taken since the last ``reset``:
  the simulator's state lives in the Gymnasium env, this only identifies the live step,
  and stepping a stale state raises ``ValueError``.  Being a tensor, it passes through
  compiled units and checkpoints like any other state leaf (an algorithm's state over a
  host env is still a pytree of tensors); it cannot restore the simulator, so a resumed
  run starts new episodes (:meth:`funrl.algos.common.EnvStack.restart`).
* ``params`` are ``None`` (``default_params()``); passing anything else raises.
* Actions: a tensor (or array/number) converted to numpy with the Gymnasium action
  space's dtype, after checks of shape and (``Discrete``) range.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.gym_bridge import GymnasiumEnv
    >>> env = GymnasiumEnv("CartPole-v1")
    >>> obs, state = env.reset(R.key(0))
    >>> obs.shape, obs.dtype
    (torch.Size([4]), torch.float32)
    >>> obs, state, r, term, trunc, info = env.step(R.key(1), state, torch.tensor(1))
    >>> float(r)
    1.0
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from funrl import random as R
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Discrete, Space
from funrl.envs.thread_vector import ThreadVectorEnv, check_vectorization

__all__ = ["GymnasiumEnv", "HostEnv", "from_gymnasium_space"]


def from_gymnasium_space(space: gym.Space, what: str = "space") -> Space:
    """A funrl ``Discrete``/``Box`` equal to a Gymnasium ``Discrete``/``Box``."""
    if isinstance(space, gym.spaces.Discrete):
        return Discrete(int(space.n), int(space.start))
    if isinstance(space, gym.spaces.Box):
        dtype = torch.from_numpy(np.zeros((), dtype=space.dtype)).dtype
        dtype = dtype if dtype.is_floating_point else torch.float32
        return Box(
            torch.as_tensor(space.low, dtype=dtype),
            torch.as_tensor(space.high, dtype=dtype),
            space.shape,
            dtype,
        )
    raise TypeError(
        f"GymnasiumEnv: unsupported {what} {space} (the bridge converts Discrete and Box; "
        "flatten or wrap other spaces with a Gymnasium wrapper)"
    )


def _obs(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


class HostEnv(Environment):
    """What every host bridge (:class:`GymnasiumEnv`, EnvPool's) shares: no params, its
    spaces, the live-step check (a bridged env is stateful), action validation, ``close``
    as a context manager.  Subclasses set ``name``, ``_obs_space``, ``_act_space``,
    ``_act_dtype`` (the simulator's action dtype) and ``_t`` (the live step, -1 before
    the first reset), and implement ``reset``, ``step``, ``close`` and ``batch_shape``."""

    is_host_bridge = True
    name: str
    _obs_space: Space
    _act_space: Space
    _act_dtype: Any
    _t: int

    @property
    def batch_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def default_params(self) -> None:
        return None

    def observation_space(self, params: Any = None) -> Space:
        return self._obs_space

    def action_space(self, params: Any = None) -> Space:
        return self._act_space

    def _check_params(self, params: Any) -> None:
        if params is not None:
            raise ValueError(f"{self.name}: a bridged env has no params; pass None, got {params!r}")

    def _check_live(self, state: Any) -> None:
        live = (
            isinstance(state, torch.Tensor)
            and state.ndim == 0
            and not state.dtype.is_floating_point
            and int(state) == self._t
        )
        if self._t < 0 or not live:
            got = int(state) if isinstance(state, torch.Tensor) and state.numel() == 1 else state
            raise ValueError(
                f"{self.name}.step: state {got!r} is not the live step {self._t}; a bridged "
                "env is stateful: step only the state the last reset/step returned (a resumed "
                "run restarts its episodes: EnvStack.restart)"
            )

    def _action(self, action: Any) -> np.ndarray:
        """``action`` as the simulator's numpy array, once its shape and values are checked."""
        a = (
            action.detach().cpu().numpy()
            if isinstance(action, torch.Tensor)
            else np.asarray(action)
        )
        want = self.batch_shape + tuple(self._act_space.shape)
        if tuple(a.shape) != want:
            raise ValueError(
                f"{self.name}.step: action has shape {tuple(a.shape)}, expected {want}"
            )
        space = self._act_space
        if isinstance(space, Discrete):
            if not np.issubdtype(a.dtype, np.integer):
                raise TypeError(f"{self.name}.step: action must be integer, got dtype {a.dtype}")
            if np.any(a < space.start) or np.any(a >= space.start + space.n):
                raise ValueError(f"{self.name}.step: action {a.tolist()} outside {space}")
        elif np.any(np.isnan(a)):
            raise ValueError(f"{self.name}.step: action contains NaN")
        return a.astype(self._act_dtype)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset_env(self, key: torch.Tensor, params: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError(f"{type(self).__name__} implements reset/step directly")

    def step_env(self, key: torch.Tensor, state: Any, action: Any, params: Any) -> StepResult:
        raise NotImplementedError(f"{type(self).__name__} implements reset/step directly")

    def __repr__(self) -> str:
        return self.name


class GymnasiumEnv(HostEnv):
    """A Gymnasium env, id or vector env behind funrl's ``reset``/``step`` (host only).

    Args:
      env: a Gymnasium id (``"Pendulum-v1"``), a ``gymnasium.Env`` or a
        ``gymnasium.vector.VectorEnv`` instance (sync or async).
      num_envs: with an id, build a vector env of this many members (``None``: one env).
      vectorization: with ``num_envs``: ``"sync"`` (one after another), ``"async"``
        (subprocesses) or ``"thread"`` (shards stepped at once on threads:
        :class:`~funrl.envs.thread_vector.ThreadVectorEnv`).
      **make_kwargs: passed to ``gymnasium.make``/``gymnasium.make_vec`` with an id.

    ``batch_shape`` is ``()`` for one env and ``(n,)`` for a vector env; spaces are those of
    one member, converted to funrl spaces.  Call :meth:`close` when done (or use ``with``).
    """

    def __init__(
        self,
        env: str | gym.Env | gym.vector.VectorEnv,
        num_envs: int | None = None,
        vectorization: str = "sync",
        **make_kwargs: Any,
    ) -> None:
        check_vectorization("GymnasiumEnv: ", vectorization)
        if num_envs is not None and (not isinstance(num_envs, int) or num_envs < 1):
            raise ValueError(
                f"GymnasiumEnv: num_envs must be a positive int or None, got {num_envs!r}"
            )
        if isinstance(env, str):
            if num_envs is None:
                env = gym.make(env, **make_kwargs)
            elif vectorization == "thread":
                env_id = env
                env = ThreadVectorEnv(
                    [lambda: gym.make(env_id, **make_kwargs)] * num_envs,
                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
                )
            else:
                env = gym.make_vec(
                    env,
                    num_envs=num_envs,
                    vectorization_mode=vectorization,
                    vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                    **make_kwargs,
                )
        elif num_envs is not None or make_kwargs:
            raise ValueError("GymnasiumEnv: num_envs/make_kwargs only apply to an env id")
        if isinstance(env, gym.vector.VectorEnv):
            self.vector = True
            self.num_envs: int | None = int(env.num_envs)
            single_obs, single_act = env.single_observation_space, env.single_action_space
            mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
            self.autoreset_mode: gym.vector.AutoresetMode | None = gym.vector.AutoresetMode(mode)
        elif isinstance(env, gym.Env):
            self.vector, self.num_envs = False, None
            single_obs, single_act = env.observation_space, env.action_space
            self.autoreset_mode = None
        else:
            raise TypeError(
                f"GymnasiumEnv: expected an id, gymnasium.Env or VectorEnv, got {env!r}"
            )
        self.gym_env = env
        self._act_dtype = single_act.dtype
        obs_space = from_gymnasium_space(single_obs, "observation space")
        if isinstance(obs_space, Box) and obs_space.dtype != torch.float32:
            # the bridge returns float32 observations: its space says so
            obs_space = Box(obs_space.low.float(), obs_space.high.float(), obs_space.shape)
        self._obs_space = obs_space
        self._act_space = from_gymnasium_space(single_act, "action space")
        spec = getattr(env, "spec", None)
        self.name = f"GymnasiumEnv({spec.id if spec is not None else type(env).__name__})"
        self._t = -1  # step counter of the live episode stream; -1: never reset

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return (self.num_envs,) if self.num_envs is not None else ()

    def _state(self) -> torch.Tensor:
        return torch.tensor(self._t, dtype=torch.int64)

    def reset(self, key: torch.Tensor, params: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Seed with ``int(bits(key))`` and start new episodes: ``(obs, state)``."""
        R.check_key(key)
        if key.ndim != 1:
            raise ValueError(f"{self.name}.reset: key must have shape [2], got {tuple(key.shape)}")
        self._check_params(params)
        seed = int(R.bits(key))
        obs, _ = self.gym_env.reset(seed=seed)
        self._t = 0
        return _obs(obs), self._state()

    def step(self, key: torch.Tensor, state: Any, action: Any, params: Any = None) -> StepResult:
        """One step with auto-reset (see the module docstring); ``key`` is unused."""
        self._check_params(params)
        self._check_live(state)
        a = self._action(action)
        if self.vector:
            obs, final, reward, term, trunc = self._step_vector(a)
        else:
            obs, reward, term, trunc, _ = self.gym_env.step(a[()] if a.ndim == 0 else a)
            final = obs
            if term or trunc:
                obs, _ = self.gym_env.reset()
        self._t += 1
        info = {"final_observation": _obs(final)}
        return (
            _obs(obs),
            self._state(),
            torch.as_tensor(np.asarray(reward, dtype=np.float32)),
            torch.as_tensor(np.asarray(term, dtype=np.bool_)),
            torch.as_tensor(np.asarray(trunc, dtype=np.bool_)),
            info,
        )

    def _step_vector(self, a: np.ndarray) -> tuple[Any, Any, Any, Any, Any]:
        obs, reward, term, trunc, info = self.gym_env.step(a)
        done = np.logical_or(term, trunc)
        final = np.array(obs, copy=True)
        if self.autoreset_mode == gym.vector.AutoresetMode.SAME_STEP:
            if "_final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    final[i] = info["final_obs"][i]
        elif done.any():
            reset_obs, _ = self.gym_env.reset(options={"reset_mask": done})
            obs = np.where(done.reshape((-1,) + (1,) * (np.ndim(obs) - 1)), reset_obs, obs)
        return obs, final, reward, term, trunc

    def close(self) -> None:
        """Close the Gymnasium env (subprocesses of an async vector env)."""
        self.gym_env.close()
