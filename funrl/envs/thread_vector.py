"""``ThreadVectorEnv``: a Gymnasium vector env whose members step on threads of this process.

Gymnasium vectorizes host envs two ways: ``SyncVectorEnv`` steps the members one after
another in this thread; ``AsyncVectorEnv`` steps them in subprocesses, paying pipes,
pickling and a process per env.  ``ThreadVectorEnv`` splits the members into
``num_threads`` contiguous shards (each a ``SyncVectorEnv``) and steps the shards at once,
the calling thread taking the first.  No copies cross a process boundary, but the
shards run at once only while the simulator has released Python's GIL (MuJoCo's
``mj_step`` does); the Python around it (Gymnasium's env and wrappers) takes turns.  So
it pays where the simulator's own step dominates, and only on free cores.  Measured on 2
cores (benchmarks/RESULTS.md, session 25): Humanoid-v5 steps ~1.1-1.4x faster than
``"sync"``; HalfCheetah-v5 gains nothing (a light model); ALE Breakout with funrl's
preprocessing is 0.9x (there ``"async"`` was 1.1x); classic control (pure Python) and any
env beside a busy core are slower.  Hence ``"sync"`` stays the default everywhere.
``benchmarks/bench_env_overlap.py`` measures all three on your machine.

Results are the very same as ``SyncVectorEnv`` over the same ``env_fns``: member ``i`` of
``reset(seed=s)`` is seeded ``s + i``, auto-reset follows ``autoreset_mode`` member by
member, and ``infos`` are merged as one ``SyncVectorEnv`` would give them (each key an
array over all members, with its ``_key`` mask).  Each member is only ever stepped by one
thread at a time, and the shards share nothing.

Example::

    >>> import gymnasium as gym
    >>> from funrl.envs.thread_vector import ThreadVectorEnv
    >>> envs = ThreadVectorEnv([lambda: gym.make("CartPole-v1")] * 4, num_threads=2)
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (4, 4)
    >>> envs.close()
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

__all__ = ["VECTORIZATIONS", "ThreadVectorEnv", "check_vectorization", "default_threads"]

VECTORIZATIONS = ("sync", "async", "thread")


def check_vectorization(where: str, vectorization: Any, field: str = "vectorization") -> None:
    """``ValueError`` unless ``vectorization`` is one of :data:`VECTORIZATIONS`; the message
    starts ``f"{where}{field}"`` (``"GymnasiumEnv: vectorization"``, or a Config's
    ``"PPOConfig.host_vectorization"``)."""
    if vectorization not in VECTORIZATIONS:
        raise ValueError(
            f"{where}{field} must be one of {', '.join(map(repr, VECTORIZATIONS))}, "
            f"got {vectorization!r}"
        )


def vector_env_class(vectorization: str) -> Any:
    """The vector env class of a vectorization: Gymnasium's sync/async, or ours."""
    return {
        "sync": gym.vector.SyncVectorEnv,
        "async": gym.vector.AsyncVectorEnv,
        "thread": ThreadVectorEnv,
    }[vectorization]


def default_threads(num_envs: int) -> int:
    """Threads for ``num_envs`` members: the cores this process may run on that are free
    now (:func:`funrl.runtime.free_cores`), at most ``num_envs``.

    Beside a busy core, two shards stepped 0.56x as fast as one (HalfCheetah-v5 on 2
    cores, benchmarks/RESULTS.md, session 25), so a busy core is not counted: with
    one free core this is 1, which steps like ``SyncVectorEnv``.
    """
    if num_envs <= 1:
        return 1
    from funrl import runtime

    return max(1, min(num_envs, runtime.free_cores()))


def _concat(parts: Sequence[Any]) -> Any:
    """Observations of the shards, joined along the member dim (dicts and tuples too)."""
    first = parts[0]
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if isinstance(first, tuple):
        return tuple(_concat([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate([np.asarray(p) for p in parts], axis=0)


def _merge_infos(infos: Sequence[dict[str, Any]], sizes: Sequence[int]) -> dict[str, Any]:
    """The shards' ``infos`` as one vector env's: every key an array over all members, a
    shard without it filled as Gymnasium fills members without it (zeros, ``None`` for
    objects, ``False`` in the ``_key`` mask)."""
    merged: dict[str, Any] = {}
    keys = list(dict.fromkeys(k for info in infos for k in info))
    for k in keys:
        present = [info[k] for info in infos if k in info]
        if all(isinstance(v, dict) for v in present):
            merged[k] = _merge_infos([info.get(k, {}) for info in infos], sizes)
            continue
        like = np.asarray(present[0])
        parts = []
        for info, n in zip(infos, sizes, strict=True):
            if k in info:
                parts.append(np.asarray(info[k]))
            elif like.dtype == object:
                parts.append(np.full((n, *like.shape[1:]), None, dtype=object))
            else:
                parts.append(np.zeros((n, *like.shape[1:]), dtype=like.dtype))
        merged[k] = np.concatenate(parts, axis=0)
    return merged


class ThreadVectorEnv(gym.vector.VectorEnv):
    """``len(env_fns)`` Gymnasium envs stepped in ``num_threads`` shards at once.

    Args:
      env_fns: functions that each build one member env (as for ``SyncVectorEnv``).
      num_threads: shards stepped at once (``None``: :func:`default_threads`); at most the
        number of members.
      autoreset_mode: Gymnasium's auto-reset mode of every shard.

    The calling thread steps the first shard and a pool of ``num_threads - 1`` workers the
    others.  ``close()`` closes the members and the pool.
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        num_threads: int | None = None,
        autoreset_mode: gym.vector.AutoresetMode | str = gym.vector.AutoresetMode.NEXT_STEP,
    ) -> None:
        env_fns = list(env_fns)
        n = len(env_fns)
        if n < 1:
            raise ValueError("ThreadVectorEnv: env_fns must hold at least one env function")
        if num_threads is None:
            num_threads = default_threads(n)
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(
                f"ThreadVectorEnv: num_threads must be a positive int or None, got {num_threads!r}"
            )
        num_threads = min(num_threads, n)
        mode = gym.vector.AutoresetMode(autoreset_mode)
        bounds = [round(n * j / num_threads) for j in range(num_threads + 1)]
        self.shards = [
            gym.vector.SyncVectorEnv(env_fns[lo:hi], autoreset_mode=mode)
            for lo, hi in itertools.pairwise(bounds)
        ]
        self.sizes = [int(s.num_envs) for s in self.shards]
        self.offsets = bounds[:-1]
        self.num_threads = num_threads
        self._pool = ThreadPoolExecutor(max_workers=num_threads - 1) if num_threads > 1 else None

        first = self.shards[0]
        self.num_envs = n
        self.metadata = dict(first.metadata)
        self.metadata["autoreset_mode"] = mode
        self.render_mode = first.render_mode
        self.spec = first.envs[0].spec
        self.single_observation_space = first.single_observation_space
        self.single_action_space = first.single_action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

    def _each(self, fn: Callable[[int, gym.vector.SyncVectorEnv], Any]) -> list[Any]:
        """``fn(j, shard_j)`` for every shard, the first in this thread, the rest at once on
        the pool; the results in shard order.  Every shard has finished before this returns
        or raises (the first shard's exception first), so no shard is ever stepped by two
        threads at once."""
        pending = []
        if self._pool is not None:
            pending = [self._pool.submit(fn, j, s) for j, s in enumerate(self.shards) if j]
        try:
            first = fn(0, self.shards[0])
        finally:
            wait(pending)
        return [first] + [f.result() for f in pending]

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every member: ``seed`` an int (member ``i`` gets ``seed + i``), a list of
        ``num_envs`` seeds or ``None``; ``options["reset_mask"]`` (``[num_envs]`` bool)
        resets only those members, as in Gymnasium's vector envs."""
        if isinstance(seed, (list, tuple)):
            if len(seed) != self.num_envs:
                raise ValueError(
                    f"ThreadVectorEnv.reset: seed must have {self.num_envs} entries, "
                    f"got {len(seed)}"
                )
        elif seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(
                f"ThreadVectorEnv.reset: seed must be an int, a list or None, got {seed!r}"
            )
        mask = None if options is None else options.get("reset_mask")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(
                    "ThreadVectorEnv.reset: options['reset_mask'] must be a bool array of "
                    f"shape ({self.num_envs},), got {mask.dtype} {mask.shape}"
                )

        def one(j: int, shard: gym.vector.SyncVectorEnv) -> tuple[Any, dict[str, Any]]:
            lo, hi = self.offsets[j], self.offsets[j] + self.sizes[j]
            if isinstance(seed, (list, tuple)):
                s: Any = list(seed[lo:hi])
            else:
                s = None if seed is None else int(seed) + lo
            opts = options
            if mask is not None:
                opts = {**options, "reset_mask": mask[lo:hi]}  # type: ignore[dict-item]
            return shard.reset(seed=s, options=opts)

        out = self._each(one)
        return _concat([o for o, _ in out]), _merge_infos([i for _, i in out], self.sizes)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step every member with its row of ``actions`` (leading dim ``num_envs``)."""
        actions = np.asarray(actions)
        if actions.ndim == 0 or actions.shape[0] != self.num_envs:
            raise ValueError(
                f"ThreadVectorEnv.step: actions must have leading dim {self.num_envs}, "
                f"got shape {actions.shape}"
            )

        def one(j: int, shard: gym.vector.SyncVectorEnv) -> Any:
            lo = self.offsets[j]
            return shard.step(actions[lo : lo + self.sizes[j]])

        out = self._each(one)
        obs = _concat([o[0] for o in out])
        reward, term, trunc = (np.concatenate([o[i] for o in out]) for i in (1, 2, 3))
        return obs, reward, term, trunc, _merge_infos([o[4] for o in out], self.sizes)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """``name(*args, **kwargs)`` on every member (or its value), in member order."""
        return tuple(r for s in self.shards for r in s.call(name, *args, **kwargs))

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """The attribute ``name`` of every member, in member order."""
        return tuple(r for s in self.shards for r in s.get_attr(name))

    def render(self) -> tuple[Any, ...] | None:
        """Every member's frame (``render_mode`` set), in member order."""
        frames = [s.render() for s in self.shards]
        if any(f is None for f in frames):
            return None
        return tuple(f for shard_frames in frames for f in shard_frames)  # type: ignore[union-attr]

    def close_extras(self, **kwargs: Any) -> None:
        for s in self.shards:
            s.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
