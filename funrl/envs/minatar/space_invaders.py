"""MinAtar SpaceInvaders as a pure torch environment, matching the ``minatar`` package step for step.

A cannon on the bottom row of a 10x10 grid shoots upward at a 4x6 block of aliens.  The
aliens move one column sideways every few steps until one reaches an edge, then move one
row down instead and turn around; the nearest of them (by column) fires a bullet down at
the cannon every 10 steps.  ``+1`` per alien shot.  The episode *terminates* when an
alien or an enemy bullet reaches the cannon (or when the block steps down from the bottom
row).  The aliens move faster as fewer remain (one column per step for the last one), and
each cleared wave respawns one step faster than the last, down to every 6 steps.  This is
``minatar/environments/space_invaders.py`` (Young & Tian 2019, MinAtar 1.0.15) rewritten
without Python control flow, so it vmaps and compiles.  The game itself is deterministic:
the only randomness is sticky actions.

Observation: ``[10, 10, 6]`` float32, channels last as ``minatar``'s ``state()``: 0
cannon, 1 aliens, 2 aliens moving left, 3 aliens moving right (the same cells as channel
1, in one of the two), 4 the cannon's bullets, 5 enemy bullets.

Actions: ``Discrete(4)``, MinAtar's minimal action set for SpaceInvaders, in minatar's
order::

    funrl action   0      1      2      3
    minatar action 0 'n'  1 'l'  3 'r'  5 'f'     (noop, left, right, fire)

Firing needs the cannon's cool-down (5 steps) to have run out; a shot that is not ready
does nothing (the cannon does not move either).

Sticky actions (``params.sticky_action_prob``, minatar's default 0.1) and the time limit
(``params.max_steps``, default 1000 as gymnax's ``SpaceInvaders-MinAtar``; minatar has
none) as :mod:`funrl.envs.minatar.breakout`.  minatar's difficulty ramp is always on (its
default).

Deviations from ``minatar`` (sticky actions aside, which come from the key):
``last_action`` restarts at noop in every episode; ``step`` auto-resets (see
:mod:`funrl.envs.base`).

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.minatar import SpaceInvaders
    >>> env = SpaceInvaders()
    >>> obs, state = env.reset(R.key(0), env.default_params())
    >>> obs.shape, int(obs[..., 1].sum()), int(state.pos)   # 24 aliens, cannon in column 5
    (torch.Size([10, 10, 6]), 24, 5)
"""

from __future__ import annotations

import sys

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.minatar._planes import unpack_bytes
from funrl.envs.spaces import Box, Discrete

__all__ = [
    "SPACE_INVADERS_ACTION_SET",
    "SpaceInvaders",
    "SpaceInvadersParams",
    "SpaceInvadersState",
]

GRID = 10
CHANNELS = 6
SPACE_INVADERS_ACTION_SET = (0, 1, 3, 5)
"""minatar's action index (``'n', 'l', 'u', 'r', 'd', 'f'``) of each funrl action."""
_NOOP, _LEFT, _RIGHT, _FIRE = 0, 1, 2, 3  # funrl actions
_SHOT_COOL_DOWN = 5
_ENEMY_MOVE_INTERVAL = 12  # steps between two alien moves in a fresh game
_FASTEST_WAVE = 6  # a new wave is not made faster once its move interval is 6
_ENEMY_SHOT_INTERVAL = 10
_START_POS = 5
_BOTTOM = GRID - 1
# the bit shift that puts channel c into byte c (memory order) of an int64
_BYTE_SHIFTS = tuple(8 * c for c in range(8))
if sys.byteorder != "little":
    _BYTE_SHIFTS = _BYTE_SHIFTS[::-1]


@tree.struct
class SpaceInvadersParams:
    """``sticky_action_prob`` (0-d float32, minatar's default 0.1) and ``max_steps``
    (0-d int64, default 1000: truncation; minatar has no time limit)."""

    sticky_action_prob: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class SpaceInvadersState:
    """minatar's ``Env`` fields: ``[10, 10]`` int32 0/1 maps and 0-d int64 tensors.

    ``pos``: the cannon's column; ``aliens``/``bullets``/``enemy_bullets``: where aliens,
    the cannon's bullets and the aliens' bullets are; ``alien_dir``: -1 left, +1 right;
    ``move_interval``: steps between two alien moves when many remain (12, one less per
    cleared wave down to 6); ``move_timer``/``shot_timer``/``alien_shot_timer``: steps
    until the aliens move, the cannon may fire again, and the aliens fire; ``ramp_index``:
    waves made faster so far; ``last_action``: the funrl action executed last step
    (sticky actions); ``time``: steps in this episode.
    """

    pos: torch.Tensor
    aliens: torch.Tensor
    bullets: torch.Tensor
    enemy_bullets: torch.Tensor
    alien_dir: torch.Tensor
    move_interval: torch.Tensor
    move_timer: torch.Tensor
    shot_timer: torch.Tensor
    alien_shot_timer: torch.Tensor
    ramp_index: torch.Tensor
    last_action: torch.Tensor
    time: torch.Tensor


_CELLS = torch.arange(GRID * GRID, dtype=torch.int32)
_LAYOUT = {torch.device("cpu"): (_CELLS, _CELLS // GRID, _CELLS % GRID)}


def _cells(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat cell indices ``0..99`` (``row * 10 + column``) and each cell's row and column,
    int32 constants (one copy per device).  The step works on flat ``[100]`` maps, whose
    loops inductor vectorises (not the 10-wide rows of a ``[10, 10]`` map); row and
    column are loaded, not computed, because inductor computes ``//`` and ``%`` one lane
    at a time."""
    if device not in _LAYOUT:
        cells, row, col = _LAYOUT[torch.device("cpu")]
        _LAYOUT[device] = (cells.to(device), row.to(device), col.to(device))
    return _LAYOUT[device]


def _wave(device: torch.device) -> torch.Tensor:
    """``[100]`` bool (flat): a fresh block of aliens, rows 0-3 and columns 2-7."""
    _, row, col = _cells(device)
    return (row < 4) & (col >= 2) & (col < 8)


class SpaceInvaders(Environment):
    """MinAtar SpaceInvaders (module docstring); registered as ``"MinAtar-SpaceInvaders-v1"``."""

    name = "MinAtar-SpaceInvaders-v1"

    def default_params(self) -> SpaceInvadersParams:
        return SpaceInvadersParams(
            sticky_action_prob=torch.tensor(0.1, dtype=torch.float32),
            max_steps=torch.tensor(1000, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: SpaceInvadersParams
    ) -> tuple[torch.Tensor, SpaceInvadersState]:
        """``(obs, state)``: minatar's start, which has no randomness: the cannon in
        column 5, a fresh wave moving left, no bullets, every timer at its interval."""
        dev = key.device

        def i64(v: int) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.int64, device=dev)

        empty = torch.zeros((GRID, GRID), dtype=torch.int32, device=dev)
        state = SpaceInvadersState(
            pos=i64(_START_POS),
            aliens=_wave(dev).to(torch.int32).reshape(GRID, GRID),
            bullets=empty,
            enemy_bullets=empty,
            alien_dir=i64(-1),
            move_interval=i64(_ENEMY_MOVE_INTERVAL),
            move_timer=i64(_ENEMY_MOVE_INTERVAL),
            shot_timer=i64(0),
            alien_shot_timer=i64(_ENEMY_SHOT_INTERVAL),
            ramp_index=i64(0),
            last_action=i64(_NOOP),
            time=i64(0),
        )
        return self._obs(state), state

    def step_env(
        self,
        key: torch.Tensor,
        state: SpaceInvadersState,
        action: torch.Tensor,
        params: SpaceInvadersParams,
    ) -> StepResult:
        """One step; ``action`` is a 0-d integer tensor in ``{0, 1, 2, 3}`` (noop, left,
        right, fire).

        ``minatar``'s ``Env.act`` in order: fire (if cooled down) or move the cannon; the
        cannon's bullets move up a row and the aliens' down a row (one on the cannon
        terminates); aliens on the cannon terminate; if their timer ran out the aliens
        move (sideways, or down and turn at an edge; the bottom row stepping down
        terminates, and so does an alien landing on the cannon); if theirs ran out the
        lowest alien of the column nearest the cannon fires; aliens and bullets on the
        same cell both vanish (+1 each); the timers count down; a cleared wave respawns.
        """
        s = state
        dev = s.pos.device
        cells, row, col = _cells(dev)
        sticky = R.bernoulli(key, params.sticky_action_prob)
        a = torch.where(sticky, s.last_action, action.to(torch.int64))

        # maps are flat [100] int32 0/1, kept so in the state: inductor vectorises int32
        # loops well and bool ones badly, loading and storing bool maps a byte at a time
        # (the step took 4x as long on bool maps).  ``to`` is a no-op but for a state
        # saved with bool maps.
        i32 = torch.int32
        fire = (a == _FIRE) & (s.shot_timer == 0)
        old_cannon = cells == _BOTTOM * GRID + s.pos.to(i32)
        bullets = s.bullets.reshape(-1).to(i32) | (fire & old_cannon)
        shot_timer = torch.where(fire, _SHOT_COOL_DOWN, s.shot_timer)
        pos = s.pos + (a == _RIGHT).to(torch.int64) - (a == _LEFT).to(torch.int64)
        pos = pos.clamp(0, GRID - 1)
        pos32 = pos.to(i32)  # int64 lanes are half as many
        on_cannon = cells == _BOTTOM * GRID + pos32

        # bullets: the cannon's up a row (off the top they vanish), the aliens' down a row
        no_row = torch.zeros(GRID, dtype=i32, device=dev)
        bullets = torch.cat([bullets[GRID:], no_row])
        enemy = torch.cat([no_row, s.enemy_bullets.reshape(-1).to(i32)[:-GRID]])
        aliens = s.aliens.reshape(-1).to(i32)
        terminated = ((enemy | aliens) & on_cannon).amax() > 0

        # aliens: sideways, or (at the edge they move towards) down one row and turn
        move = s.move_timer == 0
        count = aliens.sum(dtype=torch.int64)
        right = s.alien_dir > 0
        edge = (aliens & torch.where(right, col == GRID - 1, col == 0)).amax() > 0
        down = move & edge
        # sideways: (r, c) takes (r, c - 1) moving right, (r, c + 1) moving left.  minatar
        # rolls each row, but the column that would wrap around is empty whenever the
        # block moves sideways (else it is at the edge), so a shift of the flat map that
        # clears that column is the same.  Slices, not torch.roll, whose modulo indexing
        # inductor turned into gathers.
        no_cell = torch.zeros(1, dtype=i32, device=dev)
        to_right = torch.cat([no_cell, aliens[:-1]]) & (col != 0)
        to_left = torch.cat([aliens[1:], no_cell]) & (col != GRID - 1)
        # down is a roll as minatar's: the bottom row wraps to the top (on a terminal step)
        rolled_down = torch.cat([aliens[-GRID:], aliens[:-GRID]])
        moved = torch.where(edge, rolled_down, torch.where(right, to_right, to_left))
        terminated = terminated | (down & ((aliens & (row == _BOTTOM)).amax() > 0))
        aliens = torch.where(move, moved, aliens)
        terminated = terminated | (move & ((aliens & on_cannon).amax() > 0))
        alien_dir = torch.where(down, -s.alien_dir, s.alien_dir)
        move_timer = torch.where(move, torch.minimum(count, s.move_interval), s.move_timer)

        # the lowest alien in the column nearest the cannon (the left one of a tie) fires
        shoot = s.alien_shot_timer == 0
        score = (col - pos32).abs() * GRID + col
        nearest = torch.where(aliens > 0, score, GRID * GRID).amin()
        fire_col = nearest % GRID
        fire_row = torch.where((aliens > 0) & (col == fire_col), row, -1).amax()  # -1: none
        enemy = enemy | (shoot & (fire_row >= 0) & (cells == fire_row * GRID + fire_col))
        alien_shot_timer = torch.where(shoot, _ENEMY_SHOT_INTERVAL, s.alien_shot_timer)

        kill = aliens & bullets
        reward = kill.sum(dtype=torch.int64).to(torch.float32)
        aliens = aliens - kill
        bullets = bullets - kill

        shot_timer = shot_timer - (shot_timer > 0).to(torch.int64)
        cleared = aliens.amax() == 0
        faster = cleared & (s.move_interval > _FASTEST_WAVE)
        aliens = aliens | (cleared & _wave(dev))

        new = SpaceInvadersState(
            pos=pos,
            aliens=aliens.reshape(GRID, GRID),
            bullets=bullets.reshape(GRID, GRID),
            enemy_bullets=enemy.reshape(GRID, GRID),
            alien_dir=alien_dir,
            move_interval=s.move_interval - faster.to(torch.int64),
            move_timer=move_timer - 1,
            shot_timer=shot_timer,
            alien_shot_timer=alien_shot_timer - 1,
            ramp_index=s.ramp_index + faster.to(torch.int64),
            last_action=a,
            time=s.time + 1,
        )
        truncated = new.time >= params.max_steps
        return self._obs(new), new, reward, terminated, truncated, {}

    @staticmethod
    def _obs(state: SpaceInvadersState) -> torch.Tensor:
        """``[10, 10, 6]`` float32 (minatar's ``state()``), the channels of each cell
        packed into the bytes of one int64 as :class:`~funrl.envs.minatar.Freeway` does
        (no 6-wide innermost loop)."""
        cells, _, _ = _cells(state.pos.device)
        aliens = state.aliens.reshape(-1)
        left = state.alien_dir < 0
        planes = (
            cells == _BOTTOM * GRID + state.pos,
            aliens,
            aliens * left,
            aliens * ~left,
            state.bullets.reshape(-1),
            state.enemy_bullets.reshape(-1),
        )
        code = torch.zeros(GRID * GRID, dtype=torch.int64, device=cells.device)
        for plane, shift in zip(planes, _BYTE_SHIFTS, strict=False):
            code = code | (plane.to(torch.int64) << shift)
        return unpack_bytes(code, _BYTE_SHIFTS, CHANNELS)

    def observation_space(self, params: SpaceInvadersParams) -> Box:
        """``Box(0, 1, (10, 10, 6), float32)``; every entry is 0 or 1."""
        return Box(0.0, 1.0, (GRID, GRID, CHANNELS), torch.float32)

    def action_space(self, params: SpaceInvadersParams) -> Discrete:
        """``Discrete(4)``: noop, left, right, fire (minatar ``SPACE_INVADERS_ACTION_SET``)."""
        return Discrete(4)
