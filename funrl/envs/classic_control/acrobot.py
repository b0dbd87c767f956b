"""Acrobot-v1 as a pure torch environment, with exactly Gymnasium 1.x's dynamics.

Two links hang from a fixed joint; the action applies a torque ``action - 1`` (in
``{-1, 0, +1}``) at the joint between them.  Each step integrates the "book" equations of
motion (Sutton & Barto) over ``dt = 0.2`` s with one classic Runge-Kutta-4 step, wraps both
angles into ``[-pi, pi]`` and clips the angular velocities to ``[-4 pi, 4 pi]`` and
``[-9 pi, 9 pi]``.  Observation ``[cos t1, sin t1, cos t2, sin t2, dt1, dt2]`` (float32);
reward ``-1`` per step and ``0`` on the terminating step; termination when the free end is
more than one link length above the pivot, ``-cos(t1) - cos(t1 + t2) > 1``; truncation
after ``max_steps`` (500).  The initial state is uniform in ``[-0.1, 0.1)^4``, rounded to
float32 as Gymnasium does.

Equations (``a`` the torque, ``s = (t1, t2, dt1, dt2)``)::

    d1 = m1 lc1^2 + m2 (l1^2 + lc2^2 + 2 l1 lc2 cos t2) + I1 + I2
    d2 = m2 (lc2^2 + l1 lc2 cos t2) + I2
    phi2 = m2 lc2 g cos(t1 + t2 - pi/2)
    phi1 = -m2 l1 lc2 dt2^2 sin t2 - 2 m2 l1 lc2 dt2 dt1 sin t2 + (m1 lc1 + m2 l1) g cos(t1 - pi/2) + phi2
    ddt2 = (a + d2/d1 phi1 - m2 l1 lc2 dt1^2 sin t2 - phi2) / (m2 lc2^2 + I2 - d2^2/d1)
    ddt1 = -(d2 ddt2 + phi1) / d1

Dtypes: Gymnasium integrates in float64 (its initial state is float32, the state after
a step float64).  Here the state and params are in the env's ``dtype`` (float32 by
default; ``Acrobot(dtype=torch.float64)`` reproduces Gymnasium to round-off); the
observation is always float32.  ``pi`` in the wrap and the velocity limits are rounded to
``dtype``, so in float32 an angle within ~1e-7 of ``+-pi`` may wrap differently than in
Gymnasium (the observation, which only sees cos/sin, agrees).

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.classic_control import Acrobot
    >>> env = Acrobot()
    >>> obs, state = env.reset(R.key(0))
    >>> obs, state, reward, terminated, truncated, info = env.step(R.key(1), state, torch.tensor(2))
    >>> obs.shape, float(reward)
    (torch.Size([6]), -1.0)
"""

from __future__ import annotations

import math

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Discrete

__all__ = ["Acrobot", "AcrobotParams", "AcrobotState"]

_RESET_LOW, _RESET_HIGH = -0.1, 0.1
_WRAP_UNROLL = 3  # conditional +-2pi steps done as Gymnasium's while-loop does


@tree.struct
class AcrobotParams:
    """Physics constants and limits, all 0-d tensors (``max_steps`` int64).

    ``torque_noise_max`` (0 in Acrobot-v1) scales the torque noise, which is only drawn
    when the env was built with ``Acrobot(torque_noise=True)``.
    """

    link_length_1: torch.Tensor
    link_mass_1: torch.Tensor
    link_mass_2: torch.Tensor
    link_com_pos_1: torch.Tensor
    link_com_pos_2: torch.Tensor
    link_moi: torch.Tensor
    gravity: torch.Tensor
    max_vel_1: torch.Tensor
    max_vel_2: torch.Tensor
    dt: torch.Tensor
    torque_noise_max: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class AcrobotState:
    """Joint angles ``theta1, theta2`` and velocities (0-d, env dtype), ``time`` (int64)."""

    theta1: torch.Tensor
    theta2: torch.Tensor
    dtheta1: torch.Tensor
    dtheta2: torch.Tensor
    time: torch.Tensor


Vec = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _dsdt(s: Vec, a: torch.Tensor, p: AcrobotParams, book: bool) -> Vec:
    """Time derivative of ``s = (t1, t2, dt1, dt2)`` under torque ``a`` (Gymnasium's ``_dsdt``)."""
    m1, m2, l1 = p.link_mass_1, p.link_mass_2, p.link_length_1
    lc1, lc2, i1, i2, g = p.link_com_pos_1, p.link_com_pos_2, p.link_moi, p.link_moi, p.gravity
    theta1, theta2, dtheta1, dtheta2 = s
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * torch.cos(theta2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * torch.cos(theta2)) + i2
    phi2 = m2 * lc2 * g * torch.cos(theta1 + theta2 - math.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dtheta2**2 * torch.sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * torch.sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * torch.cos(theta1 - math.pi / 2)
        + phi2
    )
    if book:
        num = a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * torch.sin(theta2) - phi2
    else:
        num = a + d2 / d1 * phi1 - phi2
    ddtheta2 = num / (m2 * lc2**2 + i2 - d2**2 / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return dtheta1, dtheta2, ddtheta1, ddtheta2


def _rk4(s: Vec, a: torch.Tensor, p: AcrobotParams, book: bool) -> Vec:
    """One classic RK4 step of length ``p.dt`` (Gymnasium's ``rk4`` with ``t = [0, dt]``)."""
    dt = p.dt
    dt2 = dt / 2.0

    def add(y: Vec, h: torch.Tensor, k: Vec) -> Vec:
        return tuple(yi + h * ki for yi, ki in zip(y, k))  # type: ignore[return-value]

    k1 = _dsdt(s, a, p, book)
    k2 = _dsdt(add(s, dt2, k1), a, p, book)
    k3 = _dsdt(add(s, dt2, k2), a, p, book)
    k4 = _dsdt(add(s, dt, k3), a, p, book)
    return tuple(  # type: ignore[return-value]
        y + dt / 6.0 * (q1 + 2 * q2 + 2 * q3 + q4) for y, q1, q2, q3, q4 in zip(s, k1, k2, k3, k4)
    )


def _wrap(x: torch.Tensor, m: float, big_m: float) -> torch.Tensor:
    """Gymnasium's ``wrap``: subtract/add ``big_m - m`` until ``m <= x <= big_m``.

    The first steps are done one at a time (bit-identical to the while-loop); anything
    still outside afterwards (not reachable with Acrobot's velocity limits) is wrapped with
    a remainder.
    """
    diff = big_m - m
    for _ in range(_WRAP_UNROLL):
        x = torch.where(x > big_m, x - diff, x)
    for _ in range(_WRAP_UNROLL):
        x = torch.where(x < m, x + diff, x)
    outside = (x > big_m) | (x < m)
    return torch.where(outside, torch.remainder(x - m, diff) + m, x)


def _clip(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``np.clip``: ``min(max(x, lo), hi)``, equal to ``torch.clamp(x, lo, hi)`` but, unlike
    it, also with ``lo``/``hi`` 0-d CPU tensors (the default params) and ``x`` on CUDA."""
    return torch.minimum(torch.maximum(x, lo), hi)


class Acrobot(Environment):
    """Acrobot-v1 (see the module docstring).

    Args:
      dtype: floating dtype of the state, params and reward (observations are float32).
      book_or_nips: ``"book"`` (Acrobot-v1's equations) or ``"nips"`` (drops one term).
      torque_noise: add uniform noise in ``[-params.torque_noise_max, +...)`` to the torque
        (Gymnasium's ``torque_noise_max > 0``).  Off by default: Acrobot-v1 has none, and
        the draw would cost a Threefry call per step.
    """

    name = "Acrobot-v1"
    step_env_batched = True  # elementwise: a VecEnv steps every member in one call

    def __init__(
        self,
        dtype: torch.dtype = torch.float32,
        book_or_nips: str = "book",
        torque_noise: bool = False,
    ) -> None:
        if not dtype.is_floating_point:
            raise TypeError(f"Acrobot: dtype must be a floating dtype, got {dtype}")
        if book_or_nips not in ("book", "nips"):
            raise ValueError(
                f"Acrobot: book_or_nips must be 'book' or 'nips', got {book_or_nips!r}"
            )
        self.dtype = dtype
        self.book_or_nips = book_or_nips
        self.torque_noise = bool(torque_noise)

    def default_params(self) -> AcrobotParams:
        def f(v: float) -> torch.Tensor:
            return torch.tensor(v, dtype=self.dtype)

        return AcrobotParams(
            link_length_1=f(1.0),
            link_mass_1=f(1.0),
            link_mass_2=f(1.0),
            link_com_pos_1=f(0.5),
            link_com_pos_2=f(0.5),
            link_moi=f(1.0),
            gravity=f(9.8),
            max_vel_1=f(4 * math.pi),
            max_vel_2=f(9 * math.pi),
            dt=f(0.2),
            torque_noise_max=f(0.0),
            max_steps=torch.tensor(500, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: AcrobotParams
    ) -> tuple[torch.Tensor, AcrobotState]:
        """``(obs [6] float32, state)``: angles and velocities uniform in ``[-0.1, 0.1)``."""
        s = R.uniform(key, (4,), dtype=torch.float32, low=_RESET_LOW, high=_RESET_HIGH)
        s = s.to(self.dtype)
        time = torch.zeros((), dtype=torch.int64, device=key.device)
        state = AcrobotState(theta1=s[0], theta2=s[1], dtheta1=s[2], dtheta2=s[3], time=time)
        return self._obs(state), state

    def step_env(
        self, key: torch.Tensor, state: AcrobotState, action: torch.Tensor, params: AcrobotParams
    ) -> StepResult:
        """One RK4 step; ``action`` is a 0-d integer tensor in ``{0, 1, 2}`` (torque ``a - 1``)."""
        p = params
        torque = (action - 1).to(state.theta1.dtype)
        if self.torque_noise:  # a static setting, not a tensor value
            n = p.torque_noise_max
            torque = torque + R.uniform(key, (), dtype=torque.dtype, low=-n, high=n)
        s = (state.theta1, state.theta2, state.dtheta1, state.dtheta2)
        ns = _rk4(s, torque, p, self.book_or_nips == "book")
        pi = math.pi
        new = AcrobotState(
            theta1=_wrap(ns[0], -pi, pi),
            theta2=_wrap(ns[1], -pi, pi),
            dtheta1=_clip(ns[2], -p.max_vel_1, p.max_vel_1),
            dtheta2=_clip(ns[3], -p.max_vel_2, p.max_vel_2),
            time=state.time + 1,
        )
        terminated = -torch.cos(new.theta1) - torch.cos(new.theta2 + new.theta1) > 1.0
        reward = torch.where(terminated, 0.0, -1.0).to(new.theta1.dtype)
        truncated = new.time >= p.max_steps
        return self._obs(new), new, reward, terminated, truncated, {}

    @staticmethod
    def _obs(s: AcrobotState) -> torch.Tensor:
        t1, t2 = s.theta1, s.theta2
        obs = [torch.cos(t1), torch.sin(t1), torch.cos(t2), torch.sin(t2), s.dtheta1, s.dtheta2]
        return torch.stack(obs, dim=-1).to(torch.float32)

    def observation_space(self, params: AcrobotParams) -> Box:
        """Box with high ``[1, 1, 1, 1, max_vel_1, max_vel_2]`` (unbatched params)."""
        high = [1.0, 1.0, 1.0, 1.0, float(params.max_vel_1), float(params.max_vel_2)]
        hi = torch.tensor(high, dtype=torch.float32)
        return Box(-hi, hi, (6,), torch.float32)

    def action_space(self, params: AcrobotParams) -> Discrete:
        return Discrete(3)

    def __repr__(self) -> str:
        return (
            f"Acrobot(dtype={self.dtype}, book_or_nips={self.book_or_nips!r}, "
            f"torque_noise={self.torque_noise})"
        )
