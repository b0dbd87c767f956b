"""CartPole-v1 as a pure torch environment, with exactly Gymnasium 1.x's dynamics.

A pole is hinged to a cart on a frictionless track; each step pushes the cart left
(action 0) or right (action 1) with ``force_mag`` for ``tau`` seconds (explicit Euler).
Observation ``[x, x_dot, theta, theta_dot]`` (float32), reward ``+1`` every step (also the
terminating one), termination when ``|x| > x_threshold`` (2.4) or
``|theta| > theta_threshold_radians`` (12 degrees), truncation after ``max_steps`` (500)
steps.  The initial state is uniform in ``[-0.05, 0.05)^4``.

Dynamics (Barto, Sutton & Anderson 1983, as ``gymnasium/envs/classic_control/cartpole.py``)::

    temp      = (F + m_p l theta_dot^2 sin(theta)) / (m_c + m_p)
    theta_acc = (g sin(theta) - cos(theta) temp) / (l (4/3 - m_p cos^2(theta) / (m_c + m_p)))
    x_acc     = temp - m_p l theta_acc cos(theta) / (m_c + m_p)
    x += tau x_dot;  x_dot += tau x_acc;  theta += tau theta_dot;  theta_dot += tau theta_acc

Dtypes: Gymnasium keeps the state in float64; here the state and params are in the
env's ``dtype`` (float32 by default, fast on any device; ``CartPole(dtype=torch.float64)``
reproduces Gymnasium to round-off).  The observation is always float32.  Thresholds are
compared in ``dtype``, so in float32 a state within ~1e-7 of a threshold may end a step
earlier or later than Gymnasium's float64 state would.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.classic_control import CartPole
    >>> env = CartPole()
    >>> params = env.default_params()
    >>> obs, state = env.reset(R.key(0), params)
    >>> obs, state, reward, terminated, truncated, info = env.step(
    ...     R.key(1), state, torch.tensor(1), params)
    >>> obs.shape, float(reward), bool(terminated), bool(truncated)
    (torch.Size([4]), 1.0, False, False)
"""

from __future__ import annotations

import math

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Discrete

__all__ = ["CartPole", "CartPoleParams", "CartPoleState"]

_RESET_LOW, _RESET_HIGH = -0.05, 0.05


@tree.struct
class CartPoleParams:
    """Physics constants and limits, all 0-d tensors (vmap over them to randomise).

    ``length`` is half the pole's length, as in Gymnasium; ``max_steps`` is int64.
    """

    gravity: torch.Tensor
    masscart: torch.Tensor
    masspole: torch.Tensor
    length: torch.Tensor
    force_mag: torch.Tensor
    tau: torch.Tensor
    theta_threshold_radians: torch.Tensor
    x_threshold: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class CartPoleState:
    """Cart position/velocity, pole angle/angular velocity (0-d, env dtype), ``time`` (int64)."""

    x: torch.Tensor
    x_dot: torch.Tensor
    theta: torch.Tensor
    theta_dot: torch.Tensor
    time: torch.Tensor


class CartPole(Environment):
    """CartPole-v1 (see the module docstring).

    Args:
      dtype: floating dtype of the state, params and reward (observations are float32).
      sutton_barto_reward: Gymnasium's option: reward 0 on non-terminating steps and -1
        on the terminating one (instead of +1 always).
    """

    name = "CartPole-v1"
    step_env_batched = True  # elementwise: a VecEnv steps every member in one call

    def __init__(
        self, dtype: torch.dtype = torch.float32, sutton_barto_reward: bool = False
    ) -> None:
        if not dtype.is_floating_point:
            raise TypeError(f"CartPole: dtype must be a floating dtype, got {dtype}")
        self.dtype = dtype
        self.sutton_barto_reward = bool(sutton_barto_reward)

    def default_params(self) -> CartPoleParams:
        def f(v: float) -> torch.Tensor:
            return torch.tensor(v, dtype=self.dtype)

        return CartPoleParams(
            gravity=f(9.8),
            masscart=f(1.0),
            masspole=f(0.1),
            length=f(0.5),
            force_mag=f(10.0),
            tau=f(0.02),
            theta_threshold_radians=f(12 * 2 * math.pi / 360),
            x_threshold=f(2.4),
            max_steps=torch.tensor(500, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: CartPoleParams
    ) -> tuple[torch.Tensor, CartPoleState]:
        """``(obs [4] float32, state)``: every state entry uniform in ``[-0.05, 0.05)``."""
        s = R.uniform(key, (4,), dtype=self.dtype, low=_RESET_LOW, high=_RESET_HIGH)
        time = torch.zeros((), dtype=torch.int64, device=key.device)
        state = CartPoleState(x=s[0], x_dot=s[1], theta=s[2], theta_dot=s[3], time=time)
        return self._obs(state), state

    def step_env(
        self, key: torch.Tensor, state: CartPoleState, action: torch.Tensor, params: CartPoleParams
    ) -> StepResult:
        """One Euler step; ``action`` is a 0-d integer tensor (1 pushes right, else left)."""
        p = params
        force = torch.where(action == 1, p.force_mag, -p.force_mag)
        total_mass = p.masspole + p.masscart
        polemass_length = p.masspole * p.length
        costheta, sintheta = torch.cos(state.theta), torch.sin(state.theta)
        temp = (force + polemass_length * torch.square(state.theta_dot) * sintheta) / total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * torch.square(costheta) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        new = CartPoleState(
            x=state.x + p.tau * state.x_dot,
            x_dot=state.x_dot + p.tau * xacc,
            theta=state.theta + p.tau * state.theta_dot,
            theta_dot=state.theta_dot + p.tau * thetaacc,
            time=state.time + 1,
        )
        terminated = (
            (new.x < -p.x_threshold)
            | (new.x > p.x_threshold)
            | (new.theta < -p.theta_threshold_radians)
            | (new.theta > p.theta_threshold_radians)
        )
        truncated = new.time >= p.max_steps
        one = torch.ones_like(new.x)
        if self.sutton_barto_reward:
            reward = torch.where(terminated, -one, torch.zeros_like(one))
        else:
            reward = one
        return self._obs(new), new, reward, terminated, truncated, {}

    @staticmethod
    def _obs(state: CartPoleState) -> torch.Tensor:
        return torch.stack([state.x, state.x_dot, state.theta, state.theta_dot], dim=-1).to(
            torch.float32
        )

    def observation_space(self, params: CartPoleParams) -> Box:
        """Box with high ``[2 x_threshold, inf, 2 theta_threshold, inf]`` (unbatched params)."""
        inf = math.inf
        high = [2 * float(params.x_threshold), inf, 2 * float(params.theta_threshold_radians), inf]
        hi = torch.tensor(high, dtype=torch.float32)
        return Box(-hi, hi, (4,), torch.float32)

    def action_space(self, params: CartPoleParams) -> Discrete:
        return Discrete(2)

    def __repr__(self) -> str:
        return f"CartPole(dtype={self.dtype}, sutton_barto_reward={self.sutton_barto_reward})"
