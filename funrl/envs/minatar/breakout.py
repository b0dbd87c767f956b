"""MinAtar Breakout as a pure torch environment, matching the ``minatar`` package step for step.

A paddle on the bottom row of a 10x10 grid bounces a ball that breaks three rows of
bricks (rows 1-3); ``+1`` per brick.  The ball moves one cell diagonally per step and
bounces off the side walls, the ceiling and bricks; at the bottom row it bounces off the
paddle (straight back up if the paddle is right under its previous column, reversed in
both directions if the paddle is under its new column) or the episode *terminates*.  When
every brick is broken, three new rows appear the next time the ball reaches the bottom
row.  This is ``minatar/environments/breakout.py`` (Young & Tian 2019, MinAtar 1.0.15)
rewritten without Python control flow, so it vmaps and compiles.

Observation: ``[10, 10, 4]`` float32, channels last as ``minatar``'s ``state()`` (which
is bool): 0 paddle, 1 ball, 2 trail (the ball's previous cell: its direction), 3 bricks.

Actions: ``Discrete(3)``, MinAtar's *minimal action set* for Breakout (as the Gymnasium
id ``MinAtar/Breakout-v1``), in minatar's order::

    funrl action   0      1      2
    minatar action 0 'n'  1 'l'  3 'r'     (noop, paddle left, paddle right)

Sticky actions (``params.sticky_action_prob``, minatar's default 0.1): with that
probability the previous *executed* action is executed again instead of the given one
(``minatar.Environment.act``).  The previous action is kept in the state
(``last_action``) and starts at 0 (noop) in every episode.  Randomness comes only from
the step's key.

Time limit: minatar itself has none (neither does ``MinAtar/Breakout-v1`` in
Gymnasium), yet a good policy can play Breakout forever.  ``params.max_steps`` (int64,
default 1000, as gymnax's ``Breakout-MinAtar``) truncates; raise it to lift the limit.

Deviations from ``minatar`` (randomness aside, which comes from the key):

* ``last_action`` (for sticky actions) restarts at noop in every episode; minatar's
  ``Environment`` carries it across ``reset``.  The two agree within an episode.
* After termination minatar keeps returning reward 0 and the terminal state until
  ``reset``; here ``step`` auto-resets (see :mod:`funrl.envs.base`).

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.minatar import Breakout
    >>> env = Breakout()
    >>> params = env.default_params()
    >>> obs, state = env.reset(R.key(0), params)
    >>> obs.shape, obs.dtype, int(obs[..., 3].sum())        # 30 bricks
    (torch.Size([10, 10, 4]), torch.float32, 30)
    >>> obs, state, reward, terminated, truncated, info = env.step(
    ...     R.key(1), state, torch.tensor(2), params)     # paddle right
    >>> int(state.pos), float(reward), bool(terminated), bool(truncated)
    (5, 0.0, False, False)
"""

from __future__ import annotations

import sys

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.minatar._planes import unpack_bytes
from funrl.envs.spaces import Box, Discrete

__all__ = ["MINIMAL_ACTION_SET", "Breakout", "BreakoutParams", "BreakoutState"]

GRID = 10  # the grid is GRID x GRID
MINIMAL_ACTION_SET = (0, 1, 3)
"""minatar's action index (``'n', 'l', 'u', 'r', 'd', 'f'``) of each funrl action."""
_NOOP, _LEFT, _RIGHT = 0, 1, 2  # funrl actions
_START_Y = 3  # the ball starts on row 3 (inside the bottom brick row, as minatar)
_PADDLE_Y = GRID - 1
# the bit shift that puts channel c into byte c (memory order) of an int32
_BYTE_SHIFTS = (0, 8, 16, 24) if sys.byteorder == "little" else (24, 16, 8, 0)


@tree.struct
class BreakoutParams:
    """``sticky_action_prob`` (0-d float32, minatar's default 0.1) and ``max_steps``
    (0-d int64, default 1000: truncation; minatar has no time limit)."""

    sticky_action_prob: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class BreakoutState:
    """minatar's ``Env`` fields as 0-d int64 tensors (``brick_map``: ``[10, 10]`` int32 0/1).

    ``ball_x``/``ball_y``: the ball's column/row; ``ball_dir``: 0 up-left, 1 up-right,
    2 down-right, 3 down-left; ``pos``: the paddle's column; ``last_x``/``last_y``: the
    ball's previous cell (the trail); ``strike`` (bool): the ball hit a brick last step
    (a second brick hit in a row does not break it: minatar's rule); ``last_action``: the
    funrl action executed last step (sticky actions); ``time``: steps in this episode.
    """

    ball_x: torch.Tensor
    ball_y: torch.Tensor
    ball_dir: torch.Tensor
    pos: torch.Tensor
    brick_map: torch.Tensor
    strike: torch.Tensor
    last_x: torch.Tensor
    last_y: torch.Tensor
    last_action: torch.Tensor
    time: torch.Tensor


def _cells(device: torch.device) -> torch.Tensor:
    """Flat cell indices ``0..99`` (``row * 10 + column``), int32 (twice as many lanes per
    vector as int64 where inductor vectorises the 100 cells)."""
    return torch.arange(GRID * GRID, dtype=torch.int32, device=device)


def _brick_rows(cells: torch.Tensor) -> torch.Tensor:
    """``[100]`` bool (flat): the three full brick rows 1-3 of a new wall."""
    return (cells >= GRID) & (cells < 4 * GRID)


class Breakout(Environment):
    """MinAtar Breakout (see the module docstring); registered as ``"MinAtar-Breakout-v1"``."""

    name = "MinAtar-Breakout-v1"

    def default_params(self) -> BreakoutParams:
        return BreakoutParams(
            sticky_action_prob=torch.tensor(0.1, dtype=torch.float32),
            max_steps=torch.tensor(1000, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: BreakoutParams
    ) -> tuple[torch.Tensor, BreakoutState]:
        """``(obs, state)``: ball on row 3, at column 0 moving down-right or column 9
        moving down-left with probability 1/2 each (minatar's ``randint(2)``); paddle at
        column 4; bricks on rows 1-3."""
        right = R.randint(key, 0, 2) == 1
        dev = key.device
        cells = _cells(dev)

        def i64(v: int) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.int64, device=dev)

        ball_x = torch.where(right, i64(GRID - 1), i64(0))
        ball_y = i64(_START_Y)
        state = BreakoutState(
            ball_x=ball_x,
            ball_y=ball_y,
            ball_dir=torch.where(right, i64(3), i64(2)),
            pos=i64(4),
            brick_map=_brick_rows(cells).to(torch.int32).reshape(GRID, GRID),
            strike=torch.zeros((), dtype=torch.bool, device=dev),
            last_x=ball_x,
            last_y=ball_y,
            last_action=i64(_NOOP),
            time=i64(0),
        )
        return self._obs(state), state

    def step_env(
        self, key: torch.Tensor, state: BreakoutState, action: torch.Tensor, params: BreakoutParams
    ) -> StepResult:
        """One step; ``action`` is a 0-d integer tensor in ``{0, 1, 2}`` (noop, left, right).

        Follows ``minatar``'s ``Env.act`` branch for branch: move the paddle; move the ball
        diagonally; side walls (clip, flip x); else-if chain of ceiling (flip y), brick
        (break it unless the last step struck one too, stay on the row, flip y), bottom row
        (refill bricks if none are left; paddle under the old column: flip y; under the new
        column: flip both; else terminate).
        """
        s = state
        cells = _cells(s.ball_x.device)
        sticky = R.bernoulli(key, params.sticky_action_prob)
        a = torch.where(sticky, s.last_action, action.to(torch.int64))
        pos = s.pos + (a == _RIGHT).to(torch.int64) - (a == _LEFT).to(torch.int64)
        pos = pos.clamp(0, GRID - 1)

        # ball_dir: 0 (-1, -1), 1 (+1, -1), 2 (+1, +1), 3 (-1, +1) as (dx, dy)
        d = s.ball_dir
        dx = torch.where((d == 1) | (d == 2), 1, -1)
        dy = torch.where(d >= 2, 1, -1)
        new_x, new_y = s.ball_x + dx, s.ball_y + dy
        wall = (new_x < 0) | (new_x > GRID - 1)
        new_x = new_x.clamp(0, GRID - 1)
        d = torch.where(wall, d ^ 1, d)  # [1, 0, 3, 2][d]

        top = new_y < 0
        # the wall as flat int32 0/1, kept so in the state: inductor vectorises int32 loops
        # well and bool ones badly, loading and storing bool maps a byte at a time (compiled
        # at 4096 envs: 738 k -> 1.02 M steps/s for int32 inside the step, then 2x more
        # for int32 in the state).  ``to`` is a no-op but for a state saved as bool.
        flat = s.brick_map.reshape(GRID * GRID).to(torch.int32)
        # the ball's new cell (row 0 if top; clamped so no state can index out of the grid)
        cell = new_y.clamp(0, GRID - 1) * GRID + new_x
        brick = ~top & (flat.gather(0, cell[None])[0] > 0)
        scored = brick & ~s.strike
        bottom = ~top & ~brick & (new_y == _PADDLE_Y)
        bricks = torch.where((cells == cell.to(torch.int32)) & scored, 0, flat)
        refill = bottom & (bricks.amax() == 0)
        bricks = torch.where(refill & _brick_rows(cells), 1, bricks)
        straight = bottom & (s.ball_x == pos)
        diagonal = bottom & ~straight & (new_x == pos)
        terminated = bottom & ~straight & ~diagonal

        d = torch.where(top | scored | straight, 3 - d, d)  # [3, 2, 1, 0][d]: flip y
        d = torch.where(diagonal, d ^ 2, d)  # [2, 3, 0, 1][d]: flip both
        new_y = torch.where(scored | straight | diagonal, s.ball_y, new_y.clamp(min=0))

        new = BreakoutState(
            ball_x=new_x,
            ball_y=new_y,
            ball_dir=d,
            pos=pos,
            brick_map=bricks.reshape(GRID, GRID),
            strike=brick,  # minatar's strike_toggle
            last_x=s.ball_x,
            last_y=s.ball_y,
            last_action=a,
            time=s.time + 1,
        )
        reward = scored.to(torch.float32)
        truncated = new.time >= params.max_steps
        return self._obs(new), new, reward, terminated, truncated, {}

    @staticmethod
    def _obs(state: BreakoutState) -> torch.Tensor:
        """``[10, 10, 4]`` float32: paddle, ball, trail, bricks (minatar's ``state()``).

        Each cell's four 0/1 channels are packed into the bytes of one int32 (in memory
        order, hence the byte order below), and the ``[100]`` int32 codes are viewed as
        ``[100, 4]`` bytes: every loop runs over 100 or 400 contiguous entries.  Writing
        the channels-last layout directly (stack/where over ``[100, 4]``) left inductor a
        4-wide innermost loop: 3x slower compiled at 4096 envs.
        """
        cells = _cells(state.ball_x.device)
        paddle = cells == (_PADDLE_Y * GRID + state.pos).to(torch.int32)
        ball = cells == (state.ball_y * GRID + state.ball_x).to(torch.int32)
        trail = cells == (state.last_y * GRID + state.last_x).to(torch.int32)
        bricks = state.brick_map.reshape(GRID * GRID)
        planes = (paddle, ball, trail, bricks)
        code = planes[0].to(torch.int32) << _BYTE_SHIFTS[0]
        for plane, shift in zip(planes[1:], _BYTE_SHIFTS[1:]):
            code = code | (plane.to(torch.int32) << shift)
        return unpack_bytes(code, _BYTE_SHIFTS, 4)

    def observation_space(self, params: BreakoutParams) -> Box:
        """``Box(0, 1, (10, 10, 4), float32)``; every entry is 0 or 1."""
        return Box(0.0, 1.0, (GRID, GRID, 4), torch.float32)

    def action_space(self, params: BreakoutParams) -> Discrete:
        """``Discrete(3)``: noop, left, right (minatar actions ``MINIMAL_ACTION_SET``)."""
        return Discrete(3)
