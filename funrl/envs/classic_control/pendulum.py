"""Pendulum-v1 as a pure torch environment, with exactly Gymnasium 1.x's dynamics.

Swing a pendulum up and keep it upright with a torque ``action`` of shape ``[1]``::

    u         = clip(action[0], -max_torque, max_torque)     (u terms in the action's dtype)
    cost      = angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2
    theta_dot = clip(theta_dot + (3 g / (2 l) sin(theta) + 3 / (m l^2) u) dt, -max_speed, max_speed)
    theta     = theta + theta_dot dt          (the new theta_dot; theta is never wrapped)
    reward    = -cost,   angle_normalize(x) = ((x + pi) mod 2 pi) - pi

Observation ``[cos(theta), sin(theta), theta_dot]`` (float32); never terminates;
truncation after ``max_steps`` (200).  Initial ``theta`` uniform in ``[-pi, pi)`` and
``theta_dot`` uniform in ``[-1, 1)``.

Dtypes: Gymnasium keeps the state in float64; here state and params are in the env's
``dtype`` (float32 by default; ``Pendulum(dtype=torch.float64)`` reproduces Gymnasium to
round-off).  The observation is always float32.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.classic_control import Pendulum
    >>> env = Pendulum()
    >>> obs, state = env.reset(R.key(0))
    >>> obs, state, reward, terminated, truncated, info = env.step(
    ...     R.key(1), state, torch.tensor([1.0]))
    >>> obs.shape, bool(terminated), bool(reward <= 0)
    (torch.Size([3]), False, True)
"""

from __future__ import annotations

import math

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box

__all__ = ["Pendulum", "PendulumParams", "PendulumState", "angle_normalize"]


@tree.struct
class PendulumParams:
    """Constants and limits, all 0-d tensors (``max_steps`` int64)."""

    max_speed: torch.Tensor
    max_torque: torch.Tensor
    dt: torch.Tensor
    g: torch.Tensor
    m: torch.Tensor
    l: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class PendulumState:
    """``theta``, ``theta_dot`` (0-d, env dtype) and ``time`` (int64)."""

    theta: torch.Tensor
    theta_dot: torch.Tensor
    time: torch.Tensor


def angle_normalize(x: torch.Tensor) -> torch.Tensor:
    """``((x + pi) mod 2 pi) - pi`` elementwise (floor modulo, as numpy): in ``[-pi, pi)``.

    Example::

        >>> round(float(angle_normalize(torch.tensor(4.0))), 4)
        -2.2832
    """
    # numpy's float modulo is fmod plus a sign fix (exact); torch.remainder computes
    # a - b floor(a / b), which can differ in the last bits.
    r = torch.fmod(x + math.pi, 2 * math.pi)
    r = torch.where(r < 0, r + 2 * math.pi, r)
    return r - math.pi


class Pendulum(Environment):
    """Pendulum-v1 (see the module docstring).

    Args:
      dtype: floating dtype of the state, params and reward (observations are float32).
      g: gravity (Gymnasium's ``g`` argument; also a field of the params).
    """

    name = "Pendulum-v1"
    step_env_batched = True  # elementwise: a VecEnv steps every member in one call

    def __init__(self, dtype: torch.dtype = torch.float32, g: float = 10.0) -> None:
        if not dtype.is_floating_point:
            raise TypeError(f"Pendulum: dtype must be a floating dtype, got {dtype}")
        self.dtype = dtype
        self.g = float(g)

    def default_params(self) -> PendulumParams:
        def f(v: float) -> torch.Tensor:
            return torch.tensor(v, dtype=self.dtype)

        return PendulumParams(
            max_speed=f(8.0),
            max_torque=f(2.0),
            dt=f(0.05),
            g=f(self.g),
            m=f(1.0),
            l=f(1.0),
            max_steps=torch.tensor(200, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: PendulumParams
    ) -> tuple[torch.Tensor, PendulumState]:
        """``(obs [3] float32, state)``: ``theta ~ U[-pi, pi)``, ``theta_dot ~ U[-1, 1)``."""
        u = R.uniform(key, (2,), dtype=self.dtype, low=-1.0, high=1.0)
        theta = u[0] * math.pi
        time = torch.zeros((), dtype=torch.int64, device=key.device)
        state = PendulumState(theta=theta, theta_dot=u[1], time=time)
        return _obs(state), state

    def step_env(
        self, key: torch.Tensor, state: PendulumState, action: torch.Tensor, params: PendulumParams
    ) -> StepResult:
        """One step; ``action`` is a float tensor of shape ``[1]`` (clipped to the bounds)."""
        p = params
        th, thdot = state.theta, state.theta_dot
        # The torque terms are computed in the action's dtype, as numpy does in Gymnasium
        # (a float32 action times a Python float stays float32), then promoted.
        a_dtype = action.dtype
        max_torque = p.max_torque.to(a_dtype)
        u = torch.minimum(torch.maximum(action[..., 0], -max_torque), max_torque)
        u_cost = 0.001 * (u**2)
        u_acc = (3.0 / (p.m * p.l**2)).to(a_dtype) * u
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + u_cost
        newthdot = thdot + (3 * p.g / (2 * p.l) * torch.sin(th) + u_acc) * p.dt
        newthdot = torch.minimum(torch.maximum(newthdot, -p.max_speed), p.max_speed)
        newth = th + newthdot * p.dt
        new = PendulumState(theta=newth, theta_dot=newthdot, time=state.time + 1)
        terminated = torch.zeros_like(newth, dtype=torch.bool)
        truncated = new.time >= p.max_steps
        return _obs(new), new, -costs, terminated, truncated, {}

    def observation_space(self, params: PendulumParams) -> Box:
        """Box with high ``[1, 1, max_speed]`` (unbatched params)."""
        hi = torch.tensor([1.0, 1.0, float(params.max_speed)])
        return Box(-hi, hi, (3,), torch.float32)

    def action_space(self, params: PendulumParams) -> Box:
        """Box ``[-max_torque, max_torque]`` of shape ``(1,)``."""
        mt = float(params.max_torque)
        return Box(-mt, mt, (1,), torch.float32)

    def __repr__(self) -> str:
        return f"Pendulum(dtype={self.dtype}, g={self.g})"


def _obs(state: PendulumState) -> torch.Tensor:
    th = state.theta
    return torch.stack([torch.cos(th), torch.sin(th), state.theta_dot], dim=-1).to(torch.float32)
