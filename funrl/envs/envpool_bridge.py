"""EnvPool's C++ vectorised environments behind funrl's ``reset``/``step`` (a host env).

``funrl.make("envpool:Breakout-v5", num_envs=8)`` (or ``--env envpool:Breakout-v5``) is
EnvPool's ``Breakout-v5`` task: the games step in C++ threads, batched, with EnvPool's own
Atari preprocessing, set to the same protocol as :mod:`funrl.envs.atari` (no-op reset up
to 30, frame skip 4 with max-pooling, 84x84 grayscale, a stack of 4 frames, fire reset,
sticky actions 0.25; episodic life and reward clipping for training, not for evaluation).
Observations become float32 in [0, 1] (``[4, 84, 84]``), as the ALE bridge's, so the
same presets, encoders and checkpoints apply.  Any other EnvPool task (MuJoCo,
classic control, ...) works too, with EnvPool's defaults; ``options`` go to
``envpool.make``.

Semantics are funrl's host-env contract (:mod:`funrl.envs.gym_bridge`): ``step`` auto-
resets in the same step, the returned observation of a finished env is its new
episode's first and ``info["final_observation"]`` the last one.  EnvPool itself resets a
finished env on the *next* step (ignoring that step's action); the bridge steps the
finished envs alone once more (EnvPool's ``env_id`` argument) to fetch their first
observation, so every action the agent sends is executed.

The seed comes from ``reset``'s key (``int(bits(key))``); EnvPool is seeded at
construction, so a ``reset`` with a new seed rebuilds the pool.

Needs the ``envpool`` extra (``pip install 'funrl[envpool]'``; Linux x86_64 wheels).

Example::

    >>> env, _ = funrl.make("envpool:Breakout-v5", num_envs=8)   # doctest: +SKIP
    >>> env.observation_space().shape                             # doctest: +SKIP
    (4, 84, 84)
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

import numpy as np
import torch

from funrl import random as R
from funrl.envs.base import StepResult
from funrl.envs.gym_bridge import HostEnv
from funrl.envs.spaces import Box, Discrete, Space

__all__ = ["EnvPoolEnv", "make_envpool"]

#: funrl's Atari protocol in EnvPool's option names (see the module docstring).
ATARI_OPTIONS: dict[str, Any] = dict(
    noop_max=30, frame_skip=4, img_height=84, img_width=84, stack_num=4, gray_scale=True,
    use_fire_reset=True, repeat_action_probability=0.25,
)  # fmt: skip


def _require() -> Any:
    try:
        with warnings.catch_warnings():  # its glfw import warns on every headless machine
            warnings.filterwarnings("ignore", message=".*DISPLAY environment variable")
            import envpool
    except ImportError as e:
        raise ValueError(
            f"envpool envs need the envpool extra: pip install 'funrl[envpool]' ({e})"
        ) from None
    return envpool


def _is_atari(envpool: Any, task_id: str) -> bool:
    return type(envpool.make_spec(task_id)).__name__ == "AtariEnvSpec"


class EnvPoolEnv(HostEnv):
    """``num_envs`` copies of EnvPool's ``task_id`` (see the module docstring).

    Args:
      task_id: an EnvPool task id (``envpool.list_all_envs()``), e.g. ``"Breakout-v5"``.
      num_envs: how many envs step together (``batch_shape`` is ``(num_envs,)``); ``None``:
        one env without a batch dimension (``batch_shape`` ``()``), as the ALE bridge's.
      evaluation: Atari only: whole games and real scores (no episodic life, no reward
        clipping), what funrl's evaluation builds.
      **options: passed to ``envpool.make`` (they override the Atari protocol).
    """

    def __init__(
        self,
        task_id: str,
        num_envs: int | None = None,
        *,
        evaluation: bool = False,
        **options: Any,
    ) -> None:
        envpool = _require()
        if num_envs is not None and (not isinstance(num_envs, int) or num_envs < 1):
            raise ValueError(
                f"EnvPoolEnv: num_envs must be a positive int or None, got {num_envs!r}"
            )
        self.single = num_envs is None
        tasks = list(envpool.list_all_envs())
        if task_id not in tasks:
            close = difflib.get_close_matches(task_id, tasks, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"make: unknown EnvPool task {task_id!r}{hint}")
        self.atari = _is_atari(envpool, task_id)
        base = dict(ATARI_OPTIONS) if self.atari else {}
        if self.atari:
            base.update(episodic_life=not evaluation, reward_clip=not evaluation)
        self.task_id, self.num_envs = task_id, 1 if num_envs is None else num_envs
        self._options = {**base, **options}
        self._seed: int | None = None
        self._pool = self._build(0)
        obs_space = self._pool.observation_space
        self._image = obs_space.dtype == np.uint8
        shape = tuple(int(n) for n in obs_space.shape)
        self._obs_space: Space = (
            Box(0.0, 1.0, shape, torch.float32)
            if self._image
            else Box(
                torch.as_tensor(np.asarray(obs_space.low, dtype=np.float32)),
                torch.as_tensor(np.asarray(obs_space.high, dtype=np.float32)),
                shape,
            )
        )
        act = self._pool.action_space
        if hasattr(act, "n"):
            self._act_space: Space = Discrete(int(act.n))
        else:
            self._act_space = Box(
                torch.as_tensor(np.asarray(act.low, dtype=np.float32)),
                torch.as_tensor(np.asarray(act.high, dtype=np.float32)),
                tuple(int(n) for n in act.shape),
            )
        self._act_dtype = act.dtype
        self.name = f"EnvPoolEnv({task_id})"
        self._t = -1  # step counter of the live episode stream; -1: never reset

    def _build(self, seed: int) -> Any:
        envpool = _require()
        pool = envpool.make(
            self.task_id, env_type="gymnasium", num_envs=self.num_envs, seed=seed, **self._options
        )
        self._seed = seed
        return pool

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return () if self.single else (self.num_envs,)

    def _obs(self, x: np.ndarray) -> torch.Tensor:
        x = x[0] if self.single else x
        if self._image:
            return torch.from_numpy(np.asarray(x, dtype=np.float32) / np.float32(255))
        return torch.as_tensor(np.asarray(x, dtype=np.float32))

    def _out(self, x: np.ndarray, dtype: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x[0] if self.single else x, dtype=dtype))

    def reset(self, key: torch.Tensor, params: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Seed with ``int(bits(key))`` (rebuilding the pool for a new seed) and start new
        episodes: ``(obs, state)``, ``state`` the 0-d step counter of the live stream."""
        R.check_key(key)
        if key.ndim != 1:
            raise ValueError(f"{self.name}.reset: key must have shape [2], got {tuple(key.shape)}")
        self._check_params(params)
        seed = int(R.bits(key)) & 0x7FFFFFFF  # EnvPool takes a non-negative int32 seed
        if seed != self._seed:
            self._pool.close()
            self._pool = self._build(seed)
        obs, _ = self._pool.reset()
        self._t = 0
        return self._obs(obs), torch.tensor(0, dtype=torch.int64)

    def _action(self, action: Any) -> np.ndarray:
        a = super()._action(action)
        return a[None] if self.single else a  # the pool is always batched

    def step(self, key: torch.Tensor, state: Any, action: Any, params: Any = None) -> StepResult:
        """One step of every env with auto-reset (module docstring); ``key`` is unused."""
        self._check_params(params)
        self._check_live(state)
        obs, reward, term, trunc, info = self._pool.step(self._action(action))
        ids = np.asarray(info["env_id"])
        order = np.argsort(ids)  # a synchronous pool answers every env; keep env order
        obs, reward, term, trunc = obs[order], reward[order], term[order], trunc[order]
        final = obs
        done = np.logical_or(term, trunc)
        if done.any():  # EnvPool resets on the next step: take it now for these envs alone
            which = np.flatnonzero(done)
            noop = np.zeros((len(which), *self._act_space.shape), dtype=self._act_dtype)
            first, *_, first_info = self._pool.step(noop, which)
            obs = obs.copy()
            obs[np.asarray(first_info["env_id"])] = first
        self._t += 1
        return (
            self._obs(obs),
            torch.tensor(self._t, dtype=torch.int64),
            self._out(reward, np.float32),
            self._out(term, np.bool_),
            self._out(trunc, np.bool_),
            {"final_observation": self._obs(final)},
        )

    def close(self) -> None:
        self._pool.close()


def make_envpool(
    task_id: str, num_envs: int | None = None, *, evaluation: bool = False, **options: Any
) -> EnvPoolEnv:
    """:class:`EnvPoolEnv` (what ``funrl.make("envpool:<task>")`` returns)."""
    return EnvPoolEnv(task_id, num_envs, evaluation=evaluation, **options)
