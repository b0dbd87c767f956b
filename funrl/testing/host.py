"""``HostEnv``: a pure env driven the way a host env (a Gymnasium bridge) is.

Algorithms take another path over a host env: only their pure parts are units (compiled
when the algorithm is), the env steps eagerly between them, and nothing is vmapped.
``HostEnv(env)`` marks a pure env as a host env without changing a number, so the two
paths can be compared bit for bit (tests/algos/test_host_envs.py) and the host path's
overhead measured without a simulator's cost.

    >>> import torch, funrl
    >>> from funrl.envs import VecEnv
    >>> from funrl.envs.classic_control import CartPole
    >>> env = HostEnv(VecEnv(CartPole(), 4))
    >>> env.is_host_bridge, env.batch_shape
    (True, (4,))
"""

from __future__ import annotations

from typing import Any

from funrl.envs.base import Environment
from funrl.envs.wrappers.core import Wrapper

__all__ = ["HostEnv", "host_factory"]


class HostEnv(Wrapper):
    """``env`` (a pure env, batched or not) marked as a host env; every call passes through."""

    @property
    def is_host_bridge(self) -> bool:
        return True


def host_factory(make_single: Any) -> Any:
    """A registry factory ``(num_envs=None) -> HostEnv`` over ``make_single()`` (one env)
    or a ``VecEnv`` of ``num_envs`` of them: what ``funrl.envs.register`` needs for a host
    env (the registry asks the factory for the batched env)."""
    from funrl.envs.vector import VecEnv

    def factory(num_envs: int | None = None) -> Environment:
        env = make_single()
        return HostEnv(env if num_envs is None else VecEnv(env, num_envs))

    return factory
