"""MinAtar Seaquest as a pure torch environment, matching the ``minatar`` package step for step.

The player's submarine (two cells, front and back, so its heading shows) moves on rows
0-8 of a 10x10 grid and fires torpedoes along its row.  Enemy fish and enemy submarines
cross rows 1-8 from either edge; submarines fire bullets along their row.  A torpedo
that meets an enemy removes both: ``+1``.  Divers cross the rows too; moving onto one
picks it up (six at most).  Oxygen runs down while submerged.  Surfacing (row 0) with
at least one diver refills the oxygen and costs one diver, or, with six, all of them
and pays ``oxygen * 10 // 200``; every surfacing also makes enemies spawn (and, every
second time, move) a step sooner.  The episode *terminates* when an enemy or a bullet
meets the submarine, when the oxygen runs out, or when it surfaces with no diver.  This
is ``minatar/environments/seaquest.py`` (Young & Tian 2019, MinAtar 1.0.15) rewritten
without Python control flow, so it vmaps and compiles.

Observation: ``[10, 10, 10]`` float32, channels last as ``minatar``'s ``state()``: 0
submarine front, 1 submarine back, 2 torpedoes, 3 trail (the cell behind each fish,
enemy submarine and diver: its direction), 4 enemy bullets, 5 fish, 6 enemy submarines,
7 oxygen gauge (row 9), 8 diver gauge (row 9), 9 divers.

Actions: ``Discrete(6)``, MinAtar's minimal action set for Seaquest (all six), in
minatar's order::

    funrl action   0      1      2      3      4      5
    minatar action 0 'n'  1 'l'  2 'u'  3 'r'  4 'd'  5 'f'   (noop, left, up, right, down, fire)

Entities live in fixed-size slot arrays (:class:`SeaquestEntities`) kept in minatar's list
order, oldest first, because the order decides ties: which of two fish on a torpedo's
cell it removes, and which divers are picked up when more arrive than the submarine can
carry.  The sizes are above what a game can hold: a fish or an enemy submarine lives at
most 29 steps once the game is at full speed (a move every 3 steps) and one spawns per
step at most, so 32 slots each; an enemy submarine's bullet is gone before it fires the
next, so 32 for bullets; the player fires every 5 steps and a torpedo lasts 9, so 4;
divers spawn every 30 steps and last 60 at most, so 4.  A spawn into a full array would
be dropped.

Spawning, as minatar: when the enemy timer runs out, the side (1/2 each), the kind
(enemy submarine with probability 1/3) and a row in 1-8 are drawn; the enemy is not
placed if that row holds an enemy heading the other way.  When the diver timer (30
steps) runs out, a diver enters a random row from a random side.  The draws come from
the step's key.

minatar quirks kept: surfacing with six divers leaves the diver count at -1 (minatar sets
it to 0, then takes the usual diver), so the next surfacings cost nothing and the count
goes on falling; an enemy submarine fires on its timer even in the step a torpedo
removes it.

Sticky actions (``params.sticky_action_prob``, minatar's default 0.1) and the time limit
(``params.max_steps``, default 1000 as the other MinAtar games; minatar has none) as
:mod:`funrl.envs.minatar.breakout`.  minatar's difficulty ramp is always on (its
default).

Deviations from ``minatar`` (randomness aside, which comes from the key):
``last_action`` restarts at noop in every episode; ``step`` auto-resets (see
:mod:`funrl.envs.base`).  minatar removes an entity from its list by value
(``list.remove``); where an older entity of the same list has exactly the same fields
(position, heading and timers) as the one removed, minatar removes the older one and
visits the other twice in that step.  funrl removes the one meant.  Two such twins need
two enemies spawned on the same cell with the same timers, which the rules above make
all but impossible.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.minatar import Seaquest
    >>> env = Seaquest()
    >>> obs, state = env.reset(R.key(0), env.default_params())
    >>> obs.shape, int(obs[..., 7].sum()), int(state.oxygen)   # a full oxygen gauge
    (torch.Size([10, 10, 10]), 10, 200)
"""

from __future__ import annotations

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Discrete

__all__ = [
    "SEAQUEST_ACTION_SET",
    "Seaquest",
    "SeaquestEntities",
    "SeaquestParams",
    "SeaquestState",
]

GRID = 10
CHANNELS = 10
SEAQUEST_ACTION_SET = (0, 1, 2, 3, 4, 5)
"""minatar's action index (``'n', 'l', 'u', 'r', 'd', 'f'``) of each funrl action."""
_NOOP, _LEFT, _UP, _RIGHT, _DOWN, _FIRE = range(6)  # funrl actions
MAX_OXYGEN = 200
MAX_DIVERS = 6
_INIT_SPAWN_SPEED = 20
_DIVER_SPAWN_SPEED = 30
_INIT_MOVE_INTERVAL = 5
_SHOT_COOL_DOWN = 5
_ENEMY_SHOT_INTERVAL = 10
_DIVER_MOVE_INTERVAL = 5
_START_X = 5

ENEMY_SLOTS = 32
"""Slots for fish, and as many for enemy submarines (see the module docstring)."""
BULLET_SLOTS = 32
"""Slots for the enemy submarines' bullets."""
TORPEDO_SLOTS = 4
"""Slots for the player's torpedoes."""
DIVER_SLOTS = 4
"""Slots for divers."""


@tree.struct
class SeaquestParams:
    """``sticky_action_prob`` (0-d float32, minatar's default 0.1) and ``max_steps``
    (0-d int64, default 1000: truncation; minatar has no time limit)."""

    sticky_action_prob: torch.Tensor
    max_steps: torch.Tensor


@tree.struct
class SeaquestEntities(tree.Struct):
    """One of minatar's entity lists as ``[slots]`` arrays in list order (oldest first;
    the live ones first, the rest zero).

    ``alive`` (bool): the slot holds an entity; ``x``/``y`` (int64): its column and row;
    ``right`` (bool): it moves right; ``timer`` (int64): steps until it moves (fish,
    enemy submarines, divers; 0 for bullets and torpedoes); ``shot`` (int64): steps until
    an enemy submarine fires (0 for the rest).
    """

    alive: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    right: torch.Tensor
    timer: torch.Tensor
    shot: torch.Tensor


@tree.struct
class SeaquestState(tree.Struct):
    """minatar's ``Env`` fields as tensors (0-d int64 unless said otherwise).

    ``sub_x``/``sub_y``: the submarine's front cell; ``sub_or`` (bool): it faces right;
    ``oxygen``; ``diver_count``: divers on board (negative after a six-diver surfacing,
    see the module docstring); ``e_spawn_speed``/``e_spawn_timer``: steps between enemy
    spawns and until the next; ``d_spawn_timer``: steps until the next diver;
    ``move_speed``: steps an enemy waits between moves; ``ramp_index``: difficulty ramps
    so far; ``shot_timer``: steps until the player may fire again; ``surface`` (bool):
    the submarine has surfaced and not dived since; ``f_bullets``, ``e_bullets``,
    ``e_fish``, ``e_subs``, ``divers``: the torpedoes, enemy bullets, fish, enemy
    submarines and divers (:class:`SeaquestEntities`); ``last_action``: the funrl action
    executed last step (sticky actions); ``time``: steps in this episode.
    """

    sub_x: torch.Tensor
    sub_y: torch.Tensor
    sub_or: torch.Tensor
    oxygen: torch.Tensor
    diver_count: torch.Tensor
    e_spawn_speed: torch.Tensor
    e_spawn_timer: torch.Tensor
    d_spawn_timer: torch.Tensor
    move_speed: torch.Tensor
    ramp_index: torch.Tensor
    shot_timer: torch.Tensor
    surface: torch.Tensor
    f_bullets: SeaquestEntities
    e_bullets: SeaquestEntities
    e_fish: SeaquestEntities
    e_subs: SeaquestEntities
    divers: SeaquestEntities
    last_action: torch.Tensor
    time: torch.Tensor


def empty_entities(slots: int, device: torch.device | str | None = None) -> SeaquestEntities:
    """An empty list of ``slots`` slots."""
    no = torch.zeros(slots, dtype=torch.bool, device=device)
    zero = torch.zeros(slots, dtype=torch.int64, device=device)
    return SeaquestEntities(alive=no, x=zero, y=zero, right=no, timer=zero, shot=zero)


def enemy_draws(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """minatar's ``_spawn_enemy`` draws from ``key``: ``(right, sub, row)``, the side
    (True: enters at column 0 moving right, probability 1/2), the kind (an enemy
    submarine with probability 1/3, else a fish) and the row, uniform in 1-8."""
    k_side, k_kind, k_row = R.split(key, 3)
    return R.bernoulli(k_side, 0.5), R.bernoulli(k_kind, 1 / 3), R.randint(k_row, 1, 9)


def diver_draws(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """minatar's ``_spawn_diver`` draws from ``key``: ``(right, row)`` as
    :func:`enemy_draws`."""
    k_side, k_row = R.split(key)
    return R.bernoulli(k_side, 0.5), R.randint(k_row, 1, 9)


def _append(
    e: SeaquestEntities,
    put: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    right: torch.Tensor,
    timer: torch.Tensor | int,
    shot: torch.Tensor | int,
) -> SeaquestEntities:
    """``e`` with one entity appended where the 0-d bool ``put`` holds (``e`` must be
    packed: its live slots first).  A full list drops it."""
    slots = e.alive.shape[0]
    slot = put & (torch.arange(slots, device=x.device) == e.alive.sum(dtype=torch.int64))
    return SeaquestEntities(
        alive=e.alive | slot,
        x=torch.where(slot, x, e.x),
        y=torch.where(slot, y, e.y),
        right=torch.where(slot, right, e.right),
        timer=torch.where(slot, timer, e.timer),
        shot=torch.where(slot, shot, e.shot),
    )


def _pack(e: SeaquestEntities) -> SeaquestEntities:
    """The live entities moved to the front in their order, the other slots zeroed (a
    one-hot matrix product: no sort or scatter, so it vmaps and compiles plainly)."""
    slots = e.alive.shape[0]
    live = e.alive.to(torch.int64)
    dest = live.cumsum(0) - 1
    k = torch.arange(slots, device=live.device)
    onehot = (e.alive[None, :] & (dest[None, :] == k[:, None])).to(torch.int64)

    def take(v: torch.Tensor) -> torch.Tensor:
        return (onehot * v.to(torch.int64)[None, :]).sum(1)

    return SeaquestEntities(
        alive=k < live.sum(),
        x=take(e.x),
        y=take(e.y),
        right=take(e.right) > 0,
        timer=take(e.timer),
        shot=take(e.shot),
    )


def _last(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` with only its last True kept."""
    return mask & (mask.to(torch.int64).flip(0).cumsum(0).flip(0) == 1)


def _first(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` with only its first True kept."""
    return mask & (mask.to(torch.int64).cumsum(0) == 1)


def _heading(right: torch.Tensor) -> torch.Tensor:
    return torch.where(right, 1, -1)


def _on_grid(x: torch.Tensor) -> torch.Tensor:
    return (x >= 0) & (x <= GRID - 1)


class Seaquest(Environment):
    """MinAtar Seaquest (see the module docstring); registered as ``"MinAtar-Seaquest-v1"``."""

    name = "MinAtar-Seaquest-v1"

    def default_params(self) -> SeaquestParams:
        return SeaquestParams(
            sticky_action_prob=torch.tensor(0.1, dtype=torch.float32),
            max_steps=torch.tensor(1000, dtype=torch.int64),
        )

    def reset_env(
        self, key: torch.Tensor, params: SeaquestParams
    ) -> tuple[torch.Tensor, SeaquestState]:
        """``(obs, state)``: minatar's start, which has no randomness: the submarine
        surfaced in column 5 facing left with full oxygen and no divers, no entities,
        the first enemy in 20 steps and the first diver in 30."""
        dev = key.device

        def i64(v: int) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.int64, device=dev)

        state = SeaquestState(
            sub_x=i64(_START_X),
            sub_y=i64(0),
            sub_or=torch.tensor(False, device=dev),
            oxygen=i64(MAX_OXYGEN),
            diver_count=i64(0),
            e_spawn_speed=i64(_INIT_SPAWN_SPEED),
            e_spawn_timer=i64(_INIT_SPAWN_SPEED),
            d_spawn_timer=i64(_DIVER_SPAWN_SPEED),
            move_speed=i64(_INIT_MOVE_INTERVAL),
            ramp_index=i64(0),
            shot_timer=i64(0),
            surface=torch.tensor(True, device=dev),
            f_bullets=empty_entities(TORPEDO_SLOTS, dev),
            e_bullets=empty_entities(BULLET_SLOTS, dev),
            e_fish=empty_entities(ENEMY_SLOTS, dev),
            e_subs=empty_entities(ENEMY_SLOTS, dev),
            divers=empty_entities(DIVER_SLOTS, dev),
            last_action=i64(_NOOP),
            time=i64(0),
        )
        return self._obs(state), state

    def step_env(
        self, key: torch.Tensor, state: SeaquestState, action: torch.Tensor, params: SeaquestParams
    ) -> StepResult:
        """One step; ``action`` is a 0-d integer tensor in ``{0, ..., 5}`` (noop, left,
        up, right, down, fire).

        ``minatar``'s ``Env.act`` in order: spawn an enemy and a diver if their timers
        ran out; fire (if cooled down) or move the submarine; torpedoes move and hit the
        first fish, else the first enemy submarine, on their cell; divers on the
        submarine are picked up, the rest move when their timer runs out; enemy
        submarines, then their bullets, then fish are checked against the submarine,
        move when due (enemies that move onto a torpedo's cell are hit) and the enemy
        submarines fire when due; the timers count down; the oxygen runs down below the
        surface, and surfacing trades divers for oxygen (see the module docstring).
        Where minatar walks a list newest first and removes as it goes, the order of
        removal matters only for who gets a torpedo or a place on board; those are
        resolved in the same order here.
        """
        s = state
        i64 = torch.int64
        k_sticky, k_enemy, k_diver = R.split(key, 3)
        sticky = R.bernoulli(k_sticky, params.sticky_action_prob)
        a = torch.where(sticky, s.last_action, action.to(i64))

        # spawns: an enemy (unless its row holds one heading the other way), a diver
        subs, fish = s.e_subs, s.e_fish
        spawning = s.e_spawn_timer == 0
        e_right, is_sub, e_row = enemy_draws(k_enemy)
        clash = (subs.alive & (subs.y == e_row) & (subs.right != e_right)).any() | (
            fish.alive & (fish.y == e_row) & (fish.right != e_right)
        ).any()
        put = spawning & ~clash
        e_x = torch.where(e_right, 0, GRID - 1)
        subs = _append(subs, put & is_sub, e_x, e_row, e_right, s.move_speed, _ENEMY_SHOT_INTERVAL)
        fish = _append(fish, put & ~is_sub, e_x, e_row, e_right, s.move_speed, 0)
        e_spawn_timer = torch.where(spawning, s.e_spawn_speed, s.e_spawn_timer)
        diving_in = s.d_spawn_timer == 0
        d_right, d_row = diver_draws(k_diver)
        diver_x = torch.where(d_right, 0, GRID - 1)
        divers = _append(s.divers, diving_in, diver_x, d_row, d_right, _DIVER_MOVE_INTERVAL, 0)
        d_spawn_timer = torch.where(diving_in, _DIVER_SPAWN_SPEED, s.d_spawn_timer)

        # the player: fire, or move (left and right also turn the submarine)
        fire = (a == _FIRE) & (s.shot_timer == 0)
        torps = _append(s.f_bullets, fire, s.sub_x, s.sub_y, s.sub_or, 0, 0)
        shot_timer = torch.where(fire, _SHOT_COOL_DOWN, s.shot_timer)
        sx = (s.sub_x - (a == _LEFT).to(i64) + (a == _RIGHT).to(i64)).clamp(0, GRID - 1)
        sy = (s.sub_y - (a == _UP).to(i64) + (a == _DOWN).to(i64)).clamp(0, GRID - 2)
        sub_or = torch.where(a == _LEFT, False, torch.where(a == _RIGHT, True, s.sub_or))

        # torpedoes, newest first: move; off the grid they vanish; else they remove the
        # first fish on their cell, or else the first enemy submarine
        t_x = torps.x + _heading(torps.right)
        t_live = torps.alive & _on_grid(t_x)
        reward = torch.zeros((), dtype=i64, device=sx.device)
        fish_alive, subs_alive = fish.alive, subs.alive
        live = list(t_live.unbind(0))
        for i in reversed(range(TORPEDO_SLOTS)):
            on_fish = live[i] & fish_alive & (fish.x == t_x[i]) & (fish.y == torps.y[i])
            got_fish = on_fish.any()
            on_sub = live[i] & ~got_fish & subs_alive & (subs.x == t_x[i]) & (subs.y == torps.y[i])
            got = got_fish | on_sub.any()
            fish_alive = fish_alive & ~_first(on_fish)
            subs_alive = subs_alive & ~_first(on_sub)
            live[i] = live[i] & ~got
            reward = reward + got.to(i64)
        t_live = torch.stack(live)

        # divers: picked up where on the submarine (before or after their move), newest
        # first while fewer than six are on board; the others move when due
        d_x = divers.x + _heading(divers.right)
        due = divers.timer == 0
        at_sub = divers.alive & (divers.x == sx) & (divers.y == sy)
        met = divers.alive & ~at_sub & due & _on_grid(d_x) & (d_x == sx) & (divers.y == sy)
        reach = at_sub | met
        newer = reach.to(i64).flip(0).cumsum(0).flip(0) - reach.to(i64)
        picked = reach & (s.diver_count + newer < MAX_DIVERS)
        diver_count = s.diver_count + picked.sum(dtype=i64)
        moving = divers.alive & ~picked & due
        divers = divers.replace(
            alive=divers.alive & ~picked & (~moving | _on_grid(d_x)),
            x=torch.where(moving, d_x, divers.x),
            timer=torch.where(moving, _DIVER_MOVE_INTERVAL, divers.timer - 1),
        )

        def enemies_move(
            e: SeaquestEntities, alive: torch.Tensor, live: torch.Tensor
        ) -> tuple[SeaquestEntities, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
            """Fish or enemy submarines, newest first: one on the submarine terminates;
            due ones move (off the grid they vanish; onto the submarine, terminate; onto
            a torpedo, both vanish: the oldest torpedo there goes, and a torpedo that
            two reach goes to the newer).  ``(moved, alive before the move, terminated,
            torpedoes left, hits)``."""
            hit_before = (alive & (e.x == sx) & (e.y == sy)).any()
            due = alive & (e.timer == 0)
            x = torch.where(due, e.x + _heading(e.right), e.x)
            gone = due & ~_on_grid(x)
            crash = due & ~gone & (x == sx) & (e.y == sy)
            can_hit = due & ~gone & ~crash
            taken = torch.zeros_like(alive)
            left = []
            for b in range(TORPEDO_SLOTS):
                there = can_hit & ~taken & live[b] & (x == t_x[b]) & (e.y == torps.y[b])
                taken = taken | _last(there)
                left.append(live[b] & ~there.any())
            moved = e.replace(
                alive=alive & ~gone & ~taken,
                x=x,
                timer=torch.where(due, s.move_speed, e.timer - 1),
            )
            terminated = hit_before | crash.any()
            return moved, alive, terminated, torch.stack(left), taken.sum(dtype=i64)

        subs, subs_before, sub_hit, t_live, sub_kills = enemies_move(subs, subs_alive, t_live)
        # every enemy submarine that was there fires when due, the newest first (those
        # that left the grid too, but their bullets would leave it at once: not placed)
        firing = subs_before & (subs.shot == 0)
        subs = subs.replace(shot=torch.where(firing, _ENEMY_SHOT_INTERVAL, subs.shot - 1))
        firing = firing & _on_grid(subs.x)
        bullets = s.e_bullets
        rank = firing.to(i64).flip(0).cumsum(0).flip(0) - 1
        dest = bullets.alive.sum(dtype=i64) + rank
        slots = torch.arange(BULLET_SLOTS, device=sx.device)
        onehot = firing[None, :] & (dest[None, :] == slots[:, None])  # [bullets, subs]
        fired = onehot.any(1)

        def from_subs(v: torch.Tensor) -> torch.Tensor:
            return (onehot.to(i64) * v.to(i64)[None, :]).sum(1)

        b_right = torch.where(fired, from_subs(subs.right) > 0, bullets.right)
        b_x0 = torch.where(fired, from_subs(subs.x), bullets.x)
        b_y = torch.where(fired, from_subs(subs.y), bullets.y)
        b_alive = bullets.alive | fired
        # enemy bullets: one on the submarine, before or after its move, terminates
        b_x = b_x0 + _heading(b_right)
        bullet_hit = (b_alive & (b_x0 == sx) & (b_y == sy)).any()
        b_alive = b_alive & _on_grid(b_x)
        bullet_hit = bullet_hit | (b_alive & (b_x == sx) & (b_y == sy)).any()
        bullets = SeaquestEntities(
            alive=b_alive, x=b_x, y=b_y, right=b_right, timer=bullets.timer, shot=bullets.shot
        )

        fish, _, fish_hit, t_live, fish_kills = enemies_move(fish, fish_alive, t_live)
        reward = reward + sub_kills + fish_kills
        torps = torps.replace(alive=t_live, x=t_x)

        # timers, oxygen and the surface
        e_spawn_timer = e_spawn_timer - (e_spawn_timer > 0).to(i64)
        d_spawn_timer = d_spawn_timer - (d_spawn_timer > 0).to(i64)
        shot_timer = shot_timer - (shot_timer > 0).to(i64)
        terminated = sub_hit | bullet_hit | fish_hit | (s.oxygen <= 0)
        below = sy > 0
        arriving = ~below & ~s.surface
        terminated = terminated | (arriving & (diver_count == 0))
        surfacing = arriving & (diver_count != 0)
        full = diver_count == MAX_DIVERS
        bonus = torch.div(s.oxygen * 10, MAX_OXYGEN, rounding_mode="floor")
        reward = reward + torch.where(surfacing & full, bonus, 0)
        diver_count = torch.where(surfacing, torch.where(full, 0, diver_count) - 1, diver_count)
        oxygen = torch.where(below, s.oxygen - 1, torch.where(surfacing, MAX_OXYGEN, s.oxygen))
        surface = ~below & (s.surface | surfacing)
        ramp = surfacing & ((s.e_spawn_speed > 1) | (s.move_speed > 2))
        faster_moves = ramp & (s.move_speed > 2) & (s.ramp_index % 2 == 1)
        faster_spawns = ramp & (s.e_spawn_speed > 1)

        nxt = SeaquestState(
            sub_x=sx,
            sub_y=sy,
            sub_or=sub_or,
            oxygen=oxygen,
            diver_count=diver_count,
            e_spawn_speed=s.e_spawn_speed - faster_spawns.to(i64),
            e_spawn_timer=e_spawn_timer,
            d_spawn_timer=d_spawn_timer,
            move_speed=s.move_speed - faster_moves.to(i64),
            ramp_index=s.ramp_index + ramp.to(i64),
            shot_timer=shot_timer,
            surface=surface,
            f_bullets=_pack(torps),
            e_bullets=_pack(bullets),
            e_fish=_pack(fish),
            e_subs=_pack(subs),
            divers=_pack(divers),
            last_action=a,
            time=s.time + 1,
        )
        truncated = nxt.time >= params.max_steps
        return self._obs(nxt), nxt, reward.to(torch.float32), terminated, truncated, {}

    @staticmethod
    def _obs(state: SeaquestState) -> torch.Tensor:
        """``[10, 10, 10]`` float32 (minatar's ``state()``): each plane marks the flat
        cells (``row * 10 + column``) of a list's live entities."""
        s = state
        dev = s.sub_x.device
        cells = torch.arange(GRID * GRID, dtype=torch.int64, device=dev)
        row, col = cells // GRID, cells % GRID

        def marks(alive: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            flat = torch.where(alive, y * GRID + x, -1)
            return (cells[:, None] == flat[None, :]).any(1)

        def trail(e: SeaquestEntities) -> torch.Tensor:
            back = e.x - _heading(e.right)  # off the grid: no mark (minatar checks)
            return marks(e.alive & _on_grid(back), back, e.y)

        # the submarine's back: a column off the grid wraps round (numpy's index -1);
        # minatar's turns keep it on the grid
        back = (s.sub_x - _heading(s.sub_or)) % GRID
        oxygen_cells = torch.div(s.oxygen.clamp(min=0) * 10, MAX_OXYGEN, rounding_mode="floor")
        bottom = row == GRID - 1
        planes = (
            cells == s.sub_y * GRID + s.sub_x,
            cells == s.sub_y * GRID + back,
            marks(s.f_bullets.alive, s.f_bullets.x, s.f_bullets.y),
            trail(s.e_fish) | trail(s.e_subs) | trail(s.divers),
            marks(s.e_bullets.alive, s.e_bullets.x, s.e_bullets.y),
            marks(s.e_fish.alive, s.e_fish.x, s.e_fish.y),
            marks(s.e_subs.alive, s.e_subs.x, s.e_subs.y),
            bottom & (col < oxygen_cells),
            bottom & (col >= GRID - 1 - s.diver_count) & (col < GRID - 1),
            marks(s.divers.alive, s.divers.x, s.divers.y),
        )
        return torch.stack(planes, -1).reshape(GRID, GRID, CHANNELS).to(torch.float32)

    def observation_space(self, params: SeaquestParams) -> Box:
        """``Box(0, 1, (10, 10, 10), float32)``; every entry is 0 or 1."""
        return Box(0.0, 1.0, (GRID, GRID, CHANNELS), torch.float32)

    def action_space(self, params: SeaquestParams) -> Discrete:
        """``Discrete(6)``: noop, left, up, right, down, fire (minatar
        ``SEAQUEST_ACTION_SET``)."""
        return Discrete(6)
