"""The environment contract: stateless step functions over pytrees of tensors.

An environment is a plain Python object holding only *static* settings (sizes, which
variant); everything that changes or may be swept lives in two pytrees:

* ``params``: physics constants and limits as tensors (vmap over them for domain
  randomisation), from ``env.default_params()``;
* ``state``: the env's dynamic state, returned by ``reset`` and ``step``.

The public pure functions, all for **one** environment (batch with ``torch.func.vmap``)::

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

``step`` auto-resets: where the episode ended (``terminated | truncated``) the returned
``obs`` and ``state`` are those of a fresh episode, chosen with ``torch.where`` over the
state tree (no Python control flow), and ``info["final_observation"]`` holds the
observation the step actually produced.  ``terminated`` (a true end: no bootstrapping)
and ``truncated`` (a time limit: bootstrap from ``final_observation``) stay separate.

Writing a new environment means subclassing :class:`Environment` and implementing
``default_params``, ``reset_env``, ``step_env``, ``observation_space`` and
``action_space``; ``reset`` and ``step`` (with auto-reset) come for free.
"""

from __future__ import annotations

from typing import Any

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.spaces import Box, Discrete, Space

__all__ = ["Environment", "StepResult"]

StepResult = tuple[
    torch.Tensor, Any, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]
]


class Environment:
    """Base class of pure torch environments (see the module docstring).

    Subclasses implement the ``*_env`` methods for a single, unbatched environment; the
    ``info`` dict they return must have the same keys and shapes on every call.
    """

    name: str = "Environment"

    # ---- to implement ---------------------------------------------------------------
    def default_params(self) -> Any:
        """The default ``params`` pytree (tensors)."""
        raise NotImplementedError

    def reset_env(self, key: torch.Tensor, params: Any) -> tuple[torch.Tensor, Any]:
        """Start an episode: ``(obs, state)``."""
        raise NotImplementedError

    def step_env(
        self, key: torch.Tensor, state: Any, action: torch.Tensor, params: Any
    ) -> StepResult:
        """One transition without auto-reset."""
        raise NotImplementedError

    def observation_space(self, params: Any) -> Space:
        raise NotImplementedError

    def action_space(self, params: Any) -> Space:
        raise NotImplementedError

    # ---- provided -------------------------------------------------------------------
    def reset(self, key: torch.Tensor, params: Any = None) -> tuple[torch.Tensor, Any]:
        """``(obs, state)`` of a new episode; ``params=None`` uses the defaults."""
        R._check_key(key)
        return self.reset_env(key, self.default_params() if params is None else params)

    def step(
        self, key: torch.Tensor, state: Any, action: torch.Tensor, params: Any = None
    ) -> StepResult:
        """One transition with auto-reset; see the module docstring for the outputs."""
        R._check_key(key)
        params = self.default_params() if params is None else params
        # split(key) without the stack: where step_env ignores its key (as every classic
        # control env does), the hash of key_step is dead code under torch.compile.
        key_step, key_reset = R._split_keys(key, 2)
        obs_st, state_st, reward, terminated, truncated, info = self.step_env(
            key_step, state, action, params
        )
        obs_re, state_re = self.reset_env(key_reset, params)
        done = terminated | truncated
        state = tree.where(done, state_re, state_st)
        obs = tree.where(done, obs_re, obs_st)
        info = dict(info)
        info["final_observation"] = obs_st
        return obs, state, reward, terminated, truncated, info

    @property
    def num_actions(self) -> int:
        """Number of discrete actions (``Discrete`` action spaces only)."""
        space = self.action_space(self.default_params())
        if not isinstance(space, Discrete):
            raise TypeError(f"{self.name} has a continuous action space {space}")
        return space.n

    def check_action(self, action: Any, params: Any = None) -> None:
        """Eager-only validation of one action (or a batch) against the action space.

        Raises ``TypeError``/``ValueError`` naming what was wrong.  Not called inside
        ``step`` (that must stay compilable and vmappable): call it at a host boundary.
        """
        space = self.action_space(self.default_params() if params is None else params)
        a = torch.as_tensor(action)
        if isinstance(space, Discrete):
            if a.dtype.is_floating_point or a.dtype == torch.bool:
                raise TypeError(f"{self.name}: action must be an integer tensor, got {a.dtype}")
            if not bool(space.contains(a).all()):
                raise ValueError(
                    f"{self.name}: action {a.tolist()} outside the action space {space}"
                )
        elif isinstance(space, Box):
            if not a.dtype.is_floating_point:
                raise TypeError(f"{self.name}: action must be a float tensor, got {a.dtype}")
            if tuple(a.shape[a.ndim - len(space.shape) :]) != space.shape:
                raise ValueError(
                    f"{self.name}: action shape {tuple(a.shape)} does not end with the action "
                    f"space shape {space.shape}"
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
