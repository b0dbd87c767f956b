"""MountainCar-v0 as a pure torch environment, with exactly Gymnasium 1.x's dynamics.

An underpowered car in a valley must rock back and forth to reach the flag at
``position >= 0.5``.  Actions ``{0, 1, 2}`` push left, not at all, right::

    velocity = clip(velocity + (action - 1) force - cos(3 position) gravity, -max_speed, max_speed)
    position = clip(position + velocity, min_position, max_position)
    velocity = 0  if position == min_position and velocity < 0

Observation ``[position, velocity]`` (float32); reward ``-1`` every step; termination when
``position >= goal_position and velocity >= goal_velocity``; truncation after
``max_steps`` (200).  The initial position is uniform in ``[-0.6, -0.4)``, velocity 0.

Dtypes: Gymnasium keeps the state in float64; here state and params are in the env's
``dtype`` (float32 by default; ``MountainCar(dtype=torch.float64)`` reproduces Gymnasium
to round-off).  The observation is always float32.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.classic_control import MountainCar
    >>> env = MountainCar()
    >>> obs, state = env.reset(R.key(0))
    >>> obs, state, reward, terminated, truncated, info = env.step(R.key(1), state, torch.tensor(2))
    >>> obs.shape, float(reward)
    (torch.Size([2]), -1.0)
"""

from __future__ import annotations

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Discrete

__all__ = ["MountainCar", "MountainCarParams", "MountainCarState"]

_RESET_LOW, _RESET_HIGH = -0.6, -0.4


@tree.struct
class MountainCarParams:
    """Constants and limits, all 0-d tensors (``max_steps`` int64)."""

    min_position: torch.Tensor
    max_position: torch.Tensor
    max_speed: torch.Tensor
    goal_position: torch.Tensor
    goal_velocity: torch.Tensor
    force: torch.Tensor
    gravity: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class MountainCarState:
    """``position``, ``velocity`` (0-d, env dtype) and ``time`` (int64)."""

    position: torch.Tensor
    velocity: torch.Tensor
    time: torch.Tensor


def _clip(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``np.clip``: ``min(max(x, lo), hi)`` with tensor bounds."""
    return torch.minimum(torch.maximum(x, lo), hi)


class MountainCar(Environment):
    """MountainCar-v0 (see the module docstring).

    Args:
      dtype: floating dtype of the state, params and reward (observations are float32).
    """

    name = "MountainCar-v0"
    step_env_batched = True  # elementwise: a VecEnv steps every member in one call

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        if not dtype.is_floating_point:
            raise TypeError(f"MountainCar: dtype must be a floating dtype, got {dtype}")
        self.dtype = dtype

    def default_params(self) -> MountainCarParams:
        def f(v: float) -> torch.Tensor:
            return torch.tensor(v, dtype=self.dtype)

        return MountainCarParams(
            min_position=f(-1.2),
            max_position=f(0.6),
            max_speed=f(0.07),
            goal_position=f(0.5),
            goal_velocity=f(0.0),
            force=f(0.001),
            gravity=f(0.0025),
            max_steps=torch.tensor(200, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: MountainCarParams
    ) -> tuple[torch.Tensor, MountainCarState]:
        """``(obs [2] float32, state)``: position uniform in ``[-0.6, -0.4)``, velocity 0."""
        pos = R.uniform(key, (), dtype=self.dtype, low=_RESET_LOW, high=_RESET_HIGH)
        time = torch.zeros((), dtype=torch.int64, device=key.device)
        state = MountainCarState(position=pos, velocity=torch.zeros_like(pos), time=time)
        return _obs(state), state

    def step_env(
        self,
        key: torch.Tensor,
        state: MountainCarState,
        action: torch.Tensor,
        params: MountainCarParams,
    ) -> StepResult:
        """One step; ``action`` is a 0-d integer tensor in ``{0, 1, 2}``."""
        p = params
        pos = state.position
        push = (action - 1).to(pos.dtype) * p.force
        vel = state.velocity + (push + torch.cos(3 * pos) * (-p.gravity))
        vel = _clip(vel, -p.max_speed, p.max_speed)
        pos = _clip(pos + vel, p.min_position, p.max_position)
        vel = torch.where((pos == p.min_position) & (vel < 0), torch.zeros_like(vel), vel)
        new = MountainCarState(position=pos, velocity=vel, time=state.time + 1)
        terminated = (pos >= p.goal_position) & (vel >= p.goal_velocity)
        truncated = new.time >= p.max_steps
        reward = torch.full_like(pos, -1.0)
        return _obs(new), new, reward, terminated, truncated, {}

    def observation_space(self, params: MountainCarParams) -> Box:
        """Box ``[min_position, -max_speed]`` to ``[max_position, max_speed]`` (unbatched params)."""
        low = [float(params.min_position), -float(params.max_speed)]
        high = [float(params.max_position), float(params.max_speed)]
        return Box(torch.tensor(low), torch.tensor(high), (2,), torch.float32)

    def action_space(self, params: MountainCarParams) -> Discrete:
        return Discrete(3)

    def __repr__(self) -> str:
        return f"MountainCar(dtype={self.dtype})"


def _obs(state: MountainCarState) -> torch.Tensor:
    return torch.stack([state.position, state.velocity], dim=-1).to(torch.float32)
