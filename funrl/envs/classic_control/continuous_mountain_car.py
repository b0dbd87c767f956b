"""MountainCarContinuous-v0 as a pure torch environment, with Gymnasium 1.x's dynamics.

The car of MountainCar with a continuous push ``action`` of shape ``[1]``::

    force    = clip(action[0], min_action, max_action)
    velocity = clip(velocity + force power - gravity cos(3 position), -max_speed, max_speed)
    position = clip(position + velocity, min_position, max_position)
    velocity = 0  if position == min_position and velocity < 0
    reward   = 100 [terminated] - 0.1 action[0]^2        (the *unclipped* action, as Gymnasium)

Observation ``[position, velocity]`` (float32); termination when
``position >= goal_position (0.45) and velocity >= goal_velocity``; truncation after
``max_steps`` (999).  The initial position is uniform in ``[-0.6, -0.4)``, velocity 0.

Dtypes: Gymnasium stores this env's state as float32 after every step (and computes
the step in float32 when given a float32 action), so the float32 default here is the
faithful one; ``dtype=torch.float64`` keeps a float64 state.  The observation is
always float32.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.classic_control import MountainCarContinuous
    >>> env = MountainCarContinuous()
    >>> obs, state = env.reset(R.key(0))
    >>> obs, state, reward, terminated, truncated, info = env.step(
    ...     R.key(1), state, torch.tensor([0.5]))
    >>> obs.shape, round(float(reward), 6)
    (torch.Size([2]), -0.025)
"""

from __future__ import annotations

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box

__all__ = [
    "MountainCarContinuous",
    "MountainCarContinuousParams",
    "MountainCarContinuousState",
]

_RESET_LOW, _RESET_HIGH = -0.6, -0.4


@tree.struct
class MountainCarContinuousParams:
    """Constants and limits, all 0-d tensors (``max_steps`` int64)."""

    min_action: torch.Tensor
    max_action: torch.Tensor
    min_position: torch.Tensor
    max_position: torch.Tensor
    max_speed: torch.Tensor
    goal_position: torch.Tensor
    goal_velocity: torch.Tensor
    power: torch.Tensor
    gravity: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class MountainCarContinuousState:
    """``position``, ``velocity`` (0-d, env dtype) and ``time`` (int64)."""

    position: torch.Tensor
    velocity: torch.Tensor
    time: torch.Tensor


def _clip(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``min(max(x, lo), hi)`` with tensor bounds."""
    return torch.minimum(torch.maximum(x, lo), hi)


class MountainCarContinuous(Environment):
    """MountainCarContinuous-v0 (see the module docstring).

    Args:
      dtype: floating dtype of the state, params and reward (observations are float32).
    """

    name = "MountainCarContinuous-v0"
    step_env_batched = True  # elementwise: a VecEnv steps every member in one call

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        if not dtype.is_floating_point:
            raise TypeError(f"MountainCarContinuous: dtype must be a floating dtype, got {dtype}")
        self.dtype = dtype

    def default_params(self) -> MountainCarContinuousParams:
        def f(v: float) -> torch.Tensor:
            return torch.tensor(v, dtype=self.dtype)

        return MountainCarContinuousParams(
            min_action=f(-1.0),
            max_action=f(1.0),
            min_position=f(-1.2),
            max_position=f(0.6),
            max_speed=f(0.07),
            goal_position=f(0.45),
            goal_velocity=f(0.0),
            power=f(0.0015),
            gravity=f(0.0025),
            max_steps=torch.tensor(999, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: MountainCarContinuousParams
    ) -> tuple[torch.Tensor, MountainCarContinuousState]:
        """``(obs [2] float32, state)``: position uniform in ``[-0.6, -0.4)``, velocity 0."""
        pos = R.uniform(key, (), dtype=self.dtype, low=_RESET_LOW, high=_RESET_HIGH)
        time = torch.zeros((), dtype=torch.int64, device=key.device)
        state = MountainCarContinuousState(position=pos, velocity=torch.zeros_like(pos), time=time)
        return _obs(state), state

    def step_env(
        self,
        key: torch.Tensor,
        state: MountainCarContinuousState,
        action: torch.Tensor,
        params: MountainCarContinuousParams,
    ) -> StepResult:
        """One step; ``action`` is a float tensor of shape ``[1]`` (clipped to the bounds)."""
        p = params
        pos = state.position
        a = action[..., 0].to(pos.dtype)
        force = _clip(a, p.min_action, p.max_action)
        vel = state.velocity + (force * p.power - p.gravity * torch.cos(3 * pos))
        vel = _clip(vel, -p.max_speed, p.max_speed)
        pos = _clip(pos + vel, p.min_position, p.max_position)
        vel = torch.where((pos == p.min_position) & (vel < 0), torch.zeros_like(vel), vel)
        new = MountainCarContinuousState(position=pos, velocity=vel, time=state.time + 1)
        terminated = (pos >= p.goal_position) & (vel >= p.goal_velocity)
        truncated = new.time >= p.max_steps
        bonus = torch.where(terminated, 100.0, 0.0).to(pos.dtype)
        reward = bonus - torch.square(a) * 0.1
        return _obs(new), new, reward, terminated, truncated, {}

    def observation_space(self, params: MountainCarContinuousParams) -> Box:
        """Box ``[min_position, -max_speed]`` to ``[max_position, max_speed]`` (unbatched params)."""
        low = [float(params.min_position), -float(params.max_speed)]
        high = [float(params.max_position), float(params.max_speed)]
        return Box(torch.tensor(low), torch.tensor(high), (2,), torch.float32)

    def action_space(self, params: MountainCarContinuousParams) -> Box:
        """Box ``[min_action, max_action]`` of shape ``(1,)``."""
        return Box(float(params.min_action), float(params.max_action), (1,), torch.float32)

    def __repr__(self) -> str:
        return f"MountainCarContinuous(dtype={self.dtype})"


def _obs(state: MountainCarContinuousState) -> torch.Tensor:
    return torch.stack([state.position, state.velocity], dim=-1).to(torch.float32)
