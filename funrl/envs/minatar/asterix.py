"""MinAtar Asterix as a pure torch environment, matching the ``minatar`` package step for step.

The player moves freely on rows 1-8 of a 10x10 grid.  Enemies and gold enter rows 1-8
(one entity per row at most) from the left or right edge and cross the grid one cell
every few steps.  Touching gold gives ``+1`` and removes it; touching an enemy
*terminates* the episode.  Every 102 steps the game ramps up: entities spawn a step
sooner, and every second ramp they also move a step sooner, until both happen every
step.  This is
``minatar/environments/asterix.py`` (Young & Tian 2019, MinAtar 1.0.15) rewritten
without Python control flow, so it vmaps and compiles.

Observation: ``[10, 10, 4]`` float32, channels last as ``minatar``'s ``state()``: 0
player, 1 enemies, 2 trail (the cell behind each entity: its direction), 3 gold.

Actions: ``Discrete(5)``, MinAtar's minimal action set for Asterix, in minatar's order::

    funrl action   0      1      2      3      4
    minatar action 0 'n'  1 'l'  2 'u'  3 'r'  4 'd'     (noop, left, up, right, down)

Spawning (when the spawn timer runs out) draws, as minatar does, the side (left or right,
1/2 each), the kind (gold with probability 1/3) and a free row uniformly; nothing spawns
when all eight rows are taken.  The draws come from the step's key.

Sticky actions (``params.sticky_action_prob``, minatar's default 0.1) and the time limit
(``params.max_steps``, default 1000 as gymnax's ``Asterix-MinAtar``; minatar has none) as
:mod:`funrl.envs.minatar.breakout`.  minatar's difficulty ramp is always on (its
default).

Deviations from ``minatar`` (randomness aside, which comes from the key):
``last_action`` restarts at noop in every episode; ``step`` auto-resets (see
:mod:`funrl.envs.base`).

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.minatar import Asterix
    >>> env = Asterix()
    >>> obs, state = env.reset(R.key(0), env.default_params())
    >>> obs.shape, int(obs.sum()), int(state.spawn_timer)   # the player alone; 10 steps
    (torch.Size([10, 10, 4]), 1, 10)
"""

from __future__ import annotations

import sys

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.minatar._planes import hit, unpack_bytes
from funrl.envs.spaces import Box, Discrete

__all__ = ["ASTERIX_ACTION_SET", "Asterix", "AsterixParams", "AsterixState"]

GRID = 10
SLOTS = 8  # entity i lives on row i + 1
CHANNELS = 4
ASTERIX_ACTION_SET = (0, 1, 2, 3, 4)
"""minatar's action index (``'n', 'l', 'u', 'r', 'd', 'f'``) of each funrl action."""
_NOOP, _LEFT, _UP, _RIGHT, _DOWN = 0, 1, 2, 3, 4  # funrl actions
_RAMP_INTERVAL = 100
_INIT_SPAWN_SPEED = 10
_INIT_MOVE_INTERVAL = 5
_START = 5  # the player starts on row 5, column 5
# the bit shift that puts channel c into byte c (memory order) of an int32
_BYTE_SHIFTS = (0, 8, 16, 24) if sys.byteorder == "little" else (24, 16, 8, 0)


@tree.struct
class AsterixParams:
    """``sticky_action_prob`` (0-d float32, minatar's default 0.1) and ``max_steps``
    (0-d int64, default 1000: truncation; minatar has no time limit)."""

    sticky_action_prob: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class AsterixState:
    """minatar's ``Env`` fields as tensors (int64 unless said otherwise).

    ``player_x``/``player_y``: the player's column and row; ``alive``/``right``/``gold``
    ``[8]`` bool and ``x`` ``[8]``: whether entity ``i`` (on row ``i + 1``) exists,
    moves right, is gold, and its column (0 where none); ``spawn_speed``/``spawn_timer``:
    steps between spawns and until the next; ``move_speed``/``move_timer``: the same for
    entity moves; ``ramp_timer``/``ramp_index``: steps until the next ramp and ramps so
    far; ``last_action``: the funrl action executed last step (sticky actions); ``time``:
    steps in this episode.
    """

    player_x: torch.Tensor
    player_y: torch.Tensor
    alive: torch.Tensor
    right: torch.Tensor
    gold: torch.Tensor
    x: torch.Tensor
    spawn_speed: torch.Tensor
    spawn_timer: torch.Tensor
    move_speed: torch.Tensor
    move_timer: torch.Tensor
    ramp_timer: torch.Tensor
    ramp_index: torch.Tensor
    last_action: torch.Tensor
    time: torch.Tensor


def spawn_draws(key: torch.Tensor, free: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """minatar's ``_spawn_entity`` draws from ``key``: ``(right, gold, slot)``, the side
    (True: enters at column 0 moving right, probability 1/2), the kind (gold with
    probability 1/3) and ``[8]`` bool, the one free slot taken (uniform over ``free``,
    none when no slot is free)."""
    k_side, k_kind, k_slot = R.split(key, 3)
    right = R.bernoulli(k_side, 0.5)
    gold = R.bernoulli(k_kind, 1 / 3)
    rank = R.randint(k_slot, 0, free.sum(dtype=torch.int64))  # among the free slots
    slot = free & (free.to(torch.int64).cumsum(0) - 1 == rank)
    return right, gold, slot


class Asterix(Environment):
    """MinAtar Asterix (see the module docstring); registered as ``"MinAtar-Asterix-v1"``."""

    name = "MinAtar-Asterix-v1"

    def default_params(self) -> AsterixParams:
        return AsterixParams(
            sticky_action_prob=torch.tensor(0.1, dtype=torch.float32),
            max_steps=torch.tensor(1000, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: AsterixParams
    ) -> tuple[torch.Tensor, AsterixState]:
        """``(obs, state)``: minatar's start, which has no randomness: the player at row
        5, column 5, no entities, the first spawn in 10 steps and the first move in 5."""
        dev = key.device

        def i64(v: int) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.int64, device=dev)

        none = torch.zeros(SLOTS, dtype=torch.bool, device=dev)
        state = AsterixState(
            player_x=i64(_START),
            player_y=i64(_START),
            alive=none,
            right=none,
            gold=none,
            x=torch.zeros(SLOTS, dtype=torch.int64, device=dev),
            spawn_speed=i64(_INIT_SPAWN_SPEED),
            spawn_timer=i64(_INIT_SPAWN_SPEED),
            move_speed=i64(_INIT_MOVE_INTERVAL),
            move_timer=i64(_INIT_MOVE_INTERVAL),
            ramp_timer=i64(_RAMP_INTERVAL),
            ramp_index=i64(0),
            last_action=i64(_NOOP),
            time=i64(0),
        )
        return self._obs(state), state

    def step_env(
        self, key: torch.Tensor, state: AsterixState, action: torch.Tensor, params: AsterixParams
    ) -> StepResult:
        """One step; ``action`` is a 0-d integer tensor in ``{0, ..., 4}`` (noop, left,
        up, right, down).

        ``minatar``'s ``Env.act`` in order: spawn if the spawn timer ran out; move the
        player; entities on the player's cell are picked up (gold, +1) or end the game
        (enemies); if the move timer ran out every entity moves a cell (leaving the grid
        removes it) and the same contact rule applies again; the timers count down; the
        difficulty ramps every 102 steps until spawns and moves happen every step.
        """
        s = state
        k_sticky, k_spawn = R.split(key)
        sticky = R.bernoulli(k_sticky, params.sticky_action_prob)
        a = torch.where(sticky, s.last_action, action.to(torch.int64))

        # spawn: one new entity on a random free row, at the edge it enters from
        spawning = s.spawn_timer == 0
        side, kind, slot = spawn_draws(k_spawn, ~s.alive)
        new = spawning & slot
        alive = s.alive | new
        right = torch.where(new, side, s.right)
        gold = torch.where(new, kind, s.gold)
        x = torch.where(new, torch.where(side, 0, GRID - 1), s.x)
        spawn_timer = torch.where(spawning, s.spawn_speed, s.spawn_timer)

        px = (s.player_x - (a == _LEFT).to(torch.int64) + (a == _RIGHT).to(torch.int64)).clamp(
            0, GRID - 1
        )
        py = (s.player_y - (a == _UP).to(torch.int64) + (a == _DOWN).to(torch.int64)).clamp(
            1, GRID - 2
        )
        rows = torch.arange(1, SLOTS + 1, dtype=torch.int64, device=px.device)
        on_row = rows == py

        # contact before entities move: gold is picked up, an enemy ends the game
        touch = alive & on_row & (x == px)
        picked = touch & gold
        terminated = (touch & ~gold).any()
        alive = alive & ~picked

        # entities move when their timer runs out; leaving the grid removes them
        moving = s.move_timer == 0
        moved = x + torch.where(right, 1, -1)
        x = torch.where(moving & alive, moved, x)
        alive = alive & ((x >= 0) & (x <= GRID - 1))
        touch = moving & alive & on_row & (x == px)
        picked_after = touch & gold
        terminated = terminated | (touch & ~gold).any()
        alive = alive & ~picked_after
        reward = (picked.sum(dtype=torch.int64) + picked_after.sum(dtype=torch.int64)).to(
            torch.float32
        )
        move_timer = torch.where(moving, s.move_speed, s.move_timer)

        # the ramp: while anything can still speed up, the ramp timer counts from 100 to
        # -1, then spawns come a step sooner and, every second ramp, moves do too
        ramping = (s.spawn_speed > 1) | (s.move_speed > 1)
        ramp = ramping & (s.ramp_timer < 0)
        faster_moves = ramp & (s.move_speed > 1) & (s.ramp_index % 2 == 1)
        faster_spawns = ramp & (s.spawn_speed > 1)
        ramp_timer = torch.where(
            ramp, _RAMP_INTERVAL, torch.where(ramping, s.ramp_timer - 1, s.ramp_timer)
        )

        nxt = AsterixState(
            player_x=px,
            player_y=py,
            alive=alive,
            right=right & alive,
            gold=gold & alive,
            x=torch.where(alive, x, 0),
            spawn_speed=s.spawn_speed - faster_spawns.to(torch.int64),
            spawn_timer=spawn_timer - 1,
            move_speed=s.move_speed - faster_moves.to(torch.int64),
            move_timer=move_timer - 1,
            ramp_timer=ramp_timer,
            ramp_index=s.ramp_index + ramp.to(torch.int64),
            last_action=a,
            time=s.time + 1,
        )
        truncated = nxt.time >= params.max_steps
        return self._obs(nxt), nxt, reward, terminated, truncated, {}

    @staticmethod
    def _obs(state: AsterixState) -> torch.Tensor:
        """``[10, 10, 4]`` float32: player, enemies, trail, gold (minatar's ``state()``).
        Row ``i + 1`` holds entity ``i`` alone, so each plane is one ``[10, 10]``
        comparison of the columns with a per-row column (-1 where there is none), made in
        integers (:func:`~funrl.envs.minatar._planes.hit`: no bool plane for inductor to
        store byte by byte), and the four channels of a cell are packed into the bytes of
        one int32 as :class:`~funrl.envs.minatar.Breakout` does."""
        dev = state.player_x.device
        idx = torch.arange(GRID, dtype=torch.int64, device=dev)
        none = torch.full((1,), -1, dtype=torch.int64, device=dev)
        x = torch.where(state.alive, state.x, -1)
        back = torch.where(state.right, x - 1, x + 1)  # off the grid: matches no column
        back = torch.where(state.alive, back, -1)
        enemy_col = torch.cat([none, torch.where(state.gold, -1, x), none])[:, None]
        gold_col = torch.cat([none, torch.where(state.gold, x, -1), none])[:, None]
        back_col = torch.cat([none, back, none])[:, None]
        cols = idx[None, :]
        planes = (
            hit(idx[:, None], state.player_y) * hit(cols, state.player_x),
            hit(cols, enemy_col),
            hit(cols, back_col),
            hit(cols, gold_col),
        )
        code = torch.zeros((GRID, GRID), dtype=torch.int32, device=dev)
        for plane, shift in zip(planes, _BYTE_SHIFTS, strict=True):
            code = code | (plane << shift)
        return unpack_bytes(code, _BYTE_SHIFTS, CHANNELS)

    def observation_space(self, params: AsterixParams) -> Box:
        """``Box(0, 1, (10, 10, 4), float32)``; every entry is 0 or 1."""
        return Box(0.0, 1.0, (GRID, GRID, CHANNELS), torch.float32)

    def action_space(self, params: AsterixParams) -> Discrete:
        """``Discrete(5)``: noop, left, up, right, down (minatar ``ASTERIX_ACTION_SET``)."""
        return Discrete(5)
