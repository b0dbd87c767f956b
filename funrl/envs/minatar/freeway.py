"""MinAtar Freeway as a pure torch environment, matching the ``minatar`` package step for step.

A chicken starts at the bottom row (9) of a 10x10 grid, in column 4, and may move up or
down one row every third step.  Eight cars, one per row 1-8, drive left or right and wrap
around the edges; car ``i`` moves one cell every ``|speed_i|`` + 1 steps.  Reaching row 0
gives ``+1``, puts the chicken back on row 9 and draws new car speeds; a car on the
chicken's cell (before or after it moves) sends the chicken back to row 9.  The episode
terminates after 2,501 steps (minatar's 2,500-frame timer running below zero).  This is
``minatar/environments/freeway.py`` (Young & Tian 2019, MinAtar 1.0.15) rewritten without
Python control flow, so it vmaps and compiles.

Observation: ``[10, 10, 7]`` float32, channels last as ``minatar``'s ``state()``: 0
chicken, 1 car, 2-6 the cell behind each car (its direction) in the channel of its speed
(``|speed|`` 1 to 5).

Actions: ``Discrete(3)``, MinAtar's minimal action set for Freeway, in minatar's order::

    funrl action   0      1      2
    minatar action 0 'n'  2 'u'  4 'd'     (noop, up, down)

Sticky actions (``params.sticky_action_prob``, minatar's default 0.1) as in
:mod:`funrl.envs.minatar.breakout`.  Car speeds (``randint(1, 6)``, a random sign each)
are drawn from the key at reset and after every crossing.

Deviations from ``minatar`` (randomness aside, which comes from the key): ``last_action``
restarts at noop in every episode; ``step`` auto-resets (see :mod:`funrl.envs.base`).

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.minatar import Freeway
    >>> env = Freeway()
    >>> obs, state = env.reset(R.key(0), env.default_params())
    >>> obs.shape, int(obs[..., 1].sum()), int(state.pos)   # 8 cars, chicken on row 9
    (torch.Size([10, 10, 7]), 8, 9)
"""

from __future__ import annotations

import sys

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.minatar._planes import unpack_bytes
from funrl.envs.spaces import Box, Discrete

__all__ = ["FREEWAY_ACTION_SET", "Freeway", "FreewayParams", "FreewayState"]

GRID = 10
CARS = 8
CHANNELS = 7
FREEWAY_ACTION_SET = (0, 2, 4)
"""minatar's action index (``'n', 'l', 'u', 'r', 'd', 'f'``) of each funrl action."""
_NOOP, _UP, _DOWN = 0, 1, 2  # funrl actions
_PLAYER_SPEED = 3  # steps between two chicken moves
_TIME_LIMIT = 2500  # minatar's terminate_timer: terminal once it runs below zero
_CHICKEN_X = 4
_START_ROW = GRID - 1
# the bit shift that puts channel c into byte c (memory order) of an int64
_BYTE_SHIFTS = tuple(8 * c for c in range(8))
if sys.byteorder != "little":
    _BYTE_SHIFTS = _BYTE_SHIFTS[::-1]


@tree.struct
class FreewayParams:
    """``sticky_action_prob`` (0-d float32, minatar's default 0.1)."""

    sticky_action_prob: torch.Tensor


@tree.struct
class FreewayState:
    """minatar's ``Env`` fields as int64 tensors.

    ``pos``: the chicken's row; ``move_timer``: steps until it may move again;
    ``terminate_timer``: minatar's countdown from 2,500 (terminal below zero);
    ``cars_x``/``cars_timer``/``cars_speed`` ``[8]``: car ``i`` (on row ``i + 1``)'s
    column, steps until it moves, and signed speed (``+`` right, ``-`` left, ``|speed|``
    1-5); ``last_action``: the funrl action executed last step (sticky actions).
    """

    pos: torch.Tensor
    move_timer: torch.Tensor
    terminate_timer: torch.Tensor
    cars_x: torch.Tensor
    cars_timer: torch.Tensor
    cars_speed: torch.Tensor
    last_action: torch.Tensor


def car_speeds(key: torch.Tensor) -> torch.Tensor:
    """``[8]`` int64 signed speeds: ``|speed|`` uniform in 1-5, the sign a fair coin,
    independent (minatar's ``randint(1, 6, 8) * sign(rand(8) - 0.5)``), as one draw
    uniform over the ten speeds (one hash per car instead of two)."""
    v = R.randint(key, 0, 10, (CARS,)).to(torch.int64)
    size = v % 5 + 1
    return torch.where(v >= 5, size, -size)


def _rows(device: torch.device) -> torch.Tensor:
    return torch.arange(1, CARS + 1, dtype=torch.int64, device=device)


class Freeway(Environment):
    """MinAtar Freeway (see the module docstring); registered as ``"MinAtar-Freeway-v1"``."""

    name = "MinAtar-Freeway-v1"

    def default_params(self) -> FreewayParams:
        return FreewayParams(sticky_action_prob=torch.tensor(0.1, dtype=torch.float32))

    def reset_env(
        self, key: torch.Tensor, params: FreewayParams
    ) -> tuple[torch.Tensor, FreewayState]:
        """``(obs, state)``: every car in column 0 with a fresh speed, the chicken on row 9,
        its move timer at 3 and the episode timer at 2,500."""
        speed = car_speeds(key)
        dev = key.device

        def i64(v: int) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.int64, device=dev)

        state = FreewayState(
            pos=i64(_START_ROW),
            move_timer=i64(_PLAYER_SPEED),
            terminate_timer=i64(_TIME_LIMIT),
            cars_x=torch.zeros(CARS, dtype=torch.int64, device=dev),
            cars_timer=speed.abs(),
            cars_speed=speed,
            last_action=i64(_NOOP),
        )
        return self._obs(state), state

    def step_env(
        self, key: torch.Tensor, state: FreewayState, action: torch.Tensor, params: FreewayParams
    ) -> StepResult:
        """One step; ``action`` is a 0-d integer tensor in ``{0, 1, 2}`` (noop, up, down).

        ``minatar``'s ``Env.act`` in order: move the chicken if its timer allows; at row 0
        score, draw new car speeds and go back to row 9; move every car whose timer ran
        out (and count the others down), the chicken going back to row 9 if a car is on
        its cell before or after moving; count the timers down.
        """
        s = state
        k_sticky, k_cars = R.split(key)
        sticky = R.bernoulli(k_sticky, params.sticky_action_prob)
        a = torch.where(sticky, s.last_action, action.to(torch.int64))
        free = s.move_timer == 0
        up, down = free & (a == _UP), free & (a == _DOWN)
        move_timer = torch.where(up | down, _PLAYER_SPEED, s.move_timer)
        pos = torch.where(up, (s.pos - 1).clamp(min=0), s.pos)
        pos = torch.where(down, (pos + 1).clamp(max=GRID - 1), pos)

        win = pos == 0
        fresh = car_speeds(k_cars)
        speed = torch.where(win, fresh, s.cars_speed)
        timer = torch.where(win, fresh.abs(), s.cars_timer)
        pos = torch.where(win, _START_ROW, pos)

        rows = _rows(pos.device)
        hit = (s.cars_x == _CHICKEN_X) & (rows == pos)
        moves = timer == 0
        x = s.cars_x + torch.where(moves, torch.where(speed > 0, 1, -1), 0)
        x = torch.where(x < 0, GRID - 1, torch.where(x > GRID - 1, 0, x))
        hit = hit | (moves & (x == _CHICKEN_X) & (rows == pos))
        pos = torch.where(hit.any(), _START_ROW, pos)
        timer = torch.where(moves, speed.abs(), timer - 1)

        terminate_timer = s.terminate_timer - 1
        new = FreewayState(
            pos=pos,
            move_timer=move_timer - (move_timer > 0).to(torch.int64),
            terminate_timer=terminate_timer,
            cars_x=x,
            cars_timer=timer,
            cars_speed=speed,
            last_action=a,
        )
        terminated = terminate_timer < 0
        return self._obs(new), new, win.to(torch.float32), terminated, torch.zeros_like(win), {}

    @staticmethod
    def _obs(state: FreewayState) -> torch.Tensor:
        """``[10, 10, 7]`` float32: chicken, cars, and each car's trail in its speed's
        channel (minatar's ``state()``).  Row ``i + 1`` holds car ``i`` alone, so every
        plane is one ``[10, 10]`` comparison of the columns with a per-row column (-1 on
        rows 0 and 9, which have no car): no scatter (vmaps and compiles) and no
        reduction over cars."""
        dev = state.pos.device
        idx = torch.arange(GRID, dtype=torch.int64, device=dev)
        x, speed = state.cars_x, state.cars_speed
        back = torch.where(speed > 0, x - 1, x + 1)
        back = torch.where(back < 0, GRID - 1, torch.where(back > GRID - 1, 0, back))
        none = torch.full((1,), -1, dtype=torch.int64, device=dev)
        car_col = torch.cat([none, x, none])[:, None]  # [10, 1]: the car's column per row
        back_col = torch.cat([none, back, none])[:, None]
        size = torch.cat([none, speed.abs(), none])[:, None]
        trail = idx[None, :] == back_col  # [10, 10]
        planes = [
            (idx[:, None] == state.pos) & (idx[None, :] == _CHICKEN_X),
            idx[None, :] == car_col,
        ]
        planes += [trail & (size == c) for c in range(1, 6)]
        # the 7 channels of a cell as the bytes of one int64 (memory order), so that no loop
        # runs 7 wide: compiled at 4096 envs 118 k -> 928 k steps/s (RESULTS.md, Freeway)
        code = torch.zeros((GRID, GRID), dtype=torch.int64, device=dev)
        for plane, shift in zip(planes, _BYTE_SHIFTS, strict=False):
            code = code | (plane.to(torch.int64) << shift)
        return unpack_bytes(code, _BYTE_SHIFTS, CHANNELS)

    def observation_space(self, params: FreewayParams) -> Box:
        """``Box(0, 1, (10, 10, 7), float32)``; every entry is 0 or 1."""
        return Box(0.0, 1.0, (GRID, GRID, CHANNELS), torch.float32)

    def action_space(self, params: FreewayParams) -> Discrete:
        """``Discrete(3)``: noop, up, down (minatar actions ``FREEWAY_ACTION_SET``)."""
        return Discrete(3)
