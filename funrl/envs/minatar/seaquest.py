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

Entities live in fixed-size slot arrays (:class:`SeaquestEntities`): fish and enemy
submarines share one (a flag tells them apart), and each enemy submarine's bullet lives
in the bullet slot of the same index.  minatar keeps them in lists, and list order
decides ties (which of two fish on a torpedo's cell it removes, which divers are picked
up when more arrive than the submarine can carry), so every entity carries ``born``, a
spawn stamp, and ties go by it as minatar's order does; slots are reused in any order.
The sizes are above what a game can hold: an enemy lives at most 29 steps once the game
is at full speed (a move every 3 steps) and one spawns per step at most, so 32 enemy
slots; an enemy submarine fires every 11 steps and its bullet is gone after 9, so one
bullet per enemy slot is enough (a slot's next enemy submarine fires 10 steps after it
spawns, when its predecessor's bullet is gone); the player fires every 5 steps and a
torpedo lasts 9, so 4 torpedo slots; divers spawn every 30 steps and last 59, so 4
diver slots.  A spawn into a full array would be dropped.

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
"""Slots for fish and enemy submarines together, and for their bullets (see the module
docstring)."""
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
    """Entities of one kind as ``[slots]`` arrays (unused slots zero).

    Every field is int64.  ``alive`` (``0``/``1``): the slot holds an entity; ``x``/``y``:
    its column and row; ``right`` (``0``/``1``): it moves right; ``timer``: steps until
    it moves (enemies and divers; 0 for bullets and torpedoes); ``shot``: steps until an
    enemy submarine fires (0 for the rest); ``sub`` (``0``/``1``): an enemy submarine,
    not a fish; ``born``: the spawn stamp that orders entities as minatar's lists (older
    first; 0 for bullets, whose order decides nothing).  The flags are integers, not
    bool, for speed: compiled for the CPU, kernels over ``[envs, 32]`` slots load, store
    and blend bool flags a byte at a time, and int64 ones as whole vectors
    (``benchmarks/RESULTS.md``, session 23).  A state with bool flags (from before
    session 23) still steps; the state it returns has int64 ones.
    """

    alive: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    right: torch.Tensor
    timer: torch.Tensor
    shot: torch.Tensor
    sub: torch.Tensor
    born: torch.Tensor


@tree.struct
class SeaquestState(tree.Struct):
    """minatar's ``Env`` fields as tensors (0-d int64 unless said otherwise).

    ``sub_x``/``sub_y``: the submarine's front cell; ``sub_or`` (bool): it faces right;
    ``oxygen``; ``diver_count``: divers on board (negative after a six-diver surfacing,
    see the module docstring); ``e_spawn_speed``/``e_spawn_timer``: steps between enemy
    spawns and until the next; ``d_spawn_timer``: steps until the next diver;
    ``move_speed``: steps an enemy waits between moves; ``ramp_index``: difficulty ramps
    so far; ``shot_timer``: steps until the player may fire again; ``surface`` (bool):
    the submarine has surfaced and not dived since; ``f_bullets``: the torpedoes;
    ``e_bullets``: the enemy submarines' bullets (slot ``i``: the bullet of the enemy
    submarine in enemy slot ``i``, or of one that was there); ``enemies``: fish and
    enemy submarines; ``divers`` (each :class:`SeaquestEntities`); ``births``: spawn
    stamps handed out so far; ``last_action``: the funrl action executed last step
    (sticky actions); ``time``: steps in this episode.
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
    enemies: SeaquestEntities
    divers: SeaquestEntities
    births: torch.Tensor
    last_action: torch.Tensor
    time: torch.Tensor


def empty_entities(slots: int, device: torch.device | str | None = None) -> SeaquestEntities:
    """No entities in ``slots`` slots."""
    zero = torch.zeros(slots, dtype=torch.int64, device=device)
    return SeaquestEntities(
        alive=zero, x=zero, y=zero, right=zero, timer=zero, shot=zero, sub=zero, born=zero
    )


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


def _as_flags(e: SeaquestEntities) -> SeaquestEntities:
    """``e`` with ``alive``, ``right`` and ``sub`` as int64 (a no-op for the state
    :meth:`Seaquest.reset_env` makes; bool ones, from before session 23, are converted)."""
    i64 = torch.int64
    return e.replace(alive=e.alive.to(i64), right=e.right.to(i64), sub=e.sub.to(i64))


def _append(
    e: SeaquestEntities,
    put: torch.Tensor,
    born: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    right: torch.Tensor,
    timer: torch.Tensor | int = 0,
    shot: torch.Tensor | int = 0,
    sub: torch.Tensor | int = 0,
) -> SeaquestEntities:
    """``e`` (int64 flags) with an entity stamped ``born`` in its first free slot where
    the 0-d bool ``put`` holds; a full array drops it."""
    free = 1 - e.alive
    slot = put.to(torch.int64) & free & (free.cumsum(0) == 1)
    into = slot.bool()
    return SeaquestEntities(
        alive=e.alive | slot,
        x=torch.where(into, x, e.x),
        y=torch.where(into, y, e.y),
        right=torch.where(into, right, e.right),
        timer=torch.where(into, timer, e.timer),
        shot=torch.where(into, shot, e.shot),
        sub=torch.where(into, sub, e.sub),
        born=torch.where(into, born, e.born),
    )


def _heading(right: torch.Tensor) -> torch.Tensor:
    """``+1`` where ``right`` (bool or int64 ``0``/``1``), else ``-1``."""
    return 2 * right.to(torch.int64) - 1


def _on_grid(x: torch.Tensor) -> torch.Tensor:
    """int64 ``1`` where the column ``x`` is on the grid, else ``0``."""
    return (x.clamp(0, GRID - 1) == x).to(torch.int64)


def _same_cell_rank(
    live: torch.Tensor, cell: torch.Tensor, born: torch.Tensor, newer: bool
) -> torch.Tensor:
    """``[torpedoes]``: how many live torpedoes on each one's cell are newer (``newer``)
    or older than it."""
    same = live[None, :] & (cell[None, :] == cell[:, None])
    than = born[None, :] > born[:, None] if newer else born[None, :] < born[:, None]
    return (same & than).sum(1)


_KIND_OFFSET = 1 << 40
"""Puts one kind of enemy after the other in :func:`_claims`'s order: above the spread
of the spawn stamps (at most three a step)."""


def _claims(
    pairs: torch.Tensor,
    first_kind: torch.Tensor,
    born: torch.Tensor,
    rank: torch.Tensor,
    oldest: bool,
) -> torch.Tensor:
    """``[torpedoes, enemies]`` int64 ``0``/``1``: which enemy each torpedo pairs with.

    ``pairs[t, e]``: torpedo ``t`` and enemy ``e`` meet on one cell.  minatar walks one
    side in order and lets each take the first of the other side's entities still there
    (in the order: ``first_kind`` before the rest, each ``oldest`` or newest first by
    ``born``); the one of ``rank`` (0 first) on its cell then gets the entity of that
    place in the order.  A cell holds at most two of the player's torpedoes (they would
    have to face each other), so places 0 and 1 are enough.  The order is one integer
    per entity (its stamp, negated for newest first, plus :data:`_KIND_OFFSET` unless it
    is of ``first_kind``), so two reductions over the slots find both places.
    """
    key = born if oldest else -born  # smallest first either way
    order = key + (1 - first_kind) * _KIND_OFFSET
    big = torch.iinfo(born.dtype).max
    there = torch.where(pairs.bool(), order[None, :], big)
    place0 = there.amin(1)
    place1 = torch.where(there == place0[:, None], big, there).amin(1)
    target = torch.where(rank == 0, place0, torch.where(rank == 1, place1, big))
    return pairs & (order[None, :] == target[:, None]) & (target[:, None] < big)


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
            e_bullets=empty_entities(ENEMY_SLOTS, dev),
            enemies=empty_entities(ENEMY_SLOTS, dev),
            divers=empty_entities(DIVER_SLOTS, dev),
            births=i64(0),
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
        ran out; fire (if cooled down) or move the submarine; torpedoes (newest first)
        move and hit the oldest fish, else the oldest enemy submarine, on their cell;
        divers on the submarine are picked up (newest first, while fewer than six are on
        board), the rest move when due; enemy submarines, then their bullets, then fish
        are checked against the submarine and move when due (an enemy that moves onto a
        torpedo's cell removes it: the oldest torpedo there, and the newest of two
        enemies); enemy submarines fire when due; the timers count down; the oxygen runs
        down below the surface, and surfacing trades divers for oxygen (see the module
        docstring).  The entities' flags (``alive``, ``right``, ``sub``) are int64
        ``0``/``1`` (see :class:`SeaquestEntities`): ``&`` and ``|`` as for bool, ``1 - f``
        for not.
        """
        s = state
        i64 = torch.int64
        k_sticky, k_enemy, k_diver = R.split(key, 3)
        sticky = R.bernoulli(k_sticky, params.sticky_action_prob)
        a = torch.where(sticky, s.last_action, action.to(i64))

        # spawns: an enemy (unless its row holds one heading the other way), a diver
        en = _as_flags(s.enemies)
        spawning = s.e_spawn_timer == 0
        e_right, is_sub, e_row = (v.to(i64) for v in enemy_draws(k_enemy))
        clash = (en.alive & (en.y == e_row) & (en.right != e_right)).any()
        put = spawning & ~clash
        shot0 = _ENEMY_SHOT_INTERVAL * is_sub
        e_x = (GRID - 1) * (1 - e_right)
        en = _append(en, put, s.births, e_x, e_row, e_right, s.move_speed, shot0, is_sub)
        births = s.births + put.to(i64)
        e_spawn_timer = torch.where(spawning, s.e_spawn_speed, s.e_spawn_timer)
        diving_in = s.d_spawn_timer == 0
        d_right, d_row = (v.to(i64) for v in diver_draws(k_diver))
        diver_x = (GRID - 1) * (1 - d_right)
        divers = _as_flags(s.divers)
        divers = _append(divers, diving_in, births, diver_x, d_row, d_right, _DIVER_MOVE_INTERVAL)
        births = births + diving_in.to(i64)
        d_spawn_timer = torch.where(diving_in, _DIVER_SPAWN_SPEED, s.d_spawn_timer)

        # the player: fire, or move (left and right also turn the submarine)
        fire = (a == _FIRE) & (s.shot_timer == 0)
        torps = _as_flags(s.f_bullets)
        torps = _append(torps, fire, births, s.sub_x, s.sub_y, s.sub_or.to(i64))
        births = births + fire.to(i64)
        shot_timer = torch.where(fire, _SHOT_COOL_DOWN, s.shot_timer)
        sx = (s.sub_x - (a == _LEFT).to(i64) + (a == _RIGHT).to(i64)).clamp(0, GRID - 1)
        sy = (s.sub_y - (a == _UP).to(i64) + (a == _DOWN).to(i64)).clamp(0, GRID - 2)
        sub_or = torch.where(a == _LEFT, False, torch.where(a == _RIGHT, True, s.sub_or))

        # torpedoes, newest first: move; off the grid they vanish; else each removes
        # the first enemy left on its cell in the order fish (oldest first), then enemy
        # submarines (oldest first).  Torpedoes on one cell compete: the newest takes the
        # first enemy of that order, the next the second (see _claims).
        t_x = torps.x + _heading(torps.right)
        t_live = torps.alive & _on_grid(t_x)
        t_cell = torps.y * GRID + t_x
        alive = en.alive
        cell = en.y * GRID + en.x
        on_cell = t_live[:, None] & alive[None, :] & (cell[None, :] == t_cell[:, None])
        newer_there = _same_cell_rank(t_live, t_cell, torps.born, newer=True)
        hit = _claims(on_cell, 1 - en.sub, en.born, newer_there, oldest=True)
        got = t_live & hit.amax(1)
        alive = alive & (1 - hit.amax(0))
        t_live = t_live & (1 - got)
        reward = got.sum(dtype=i64)

        # divers: picked up where on the submarine (before or after their move), newest
        # first while fewer than six are on board; the others move when due
        d_x = divers.x + _heading(divers.right)
        due = (divers.timer == 0).to(i64)
        at_sub = divers.alive & (divers.x == sx) & (divers.y == sy)
        met = divers.alive & (1 - at_sub) & due & _on_grid(d_x) & (d_x == sx) & (divers.y == sy)
        reach = at_sub | met
        newer = (reach[None, :] & (divers.born[None, :] > divers.born[:, None])).sum(1)
        picked = reach & (s.diver_count + newer < MAX_DIVERS)
        diver_count = s.diver_count + picked.sum(dtype=i64)
        moving = divers.alive & (1 - picked) & due
        divers = divers.replace(
            alive=divers.alive & (1 - picked) & ((1 - moving) | _on_grid(d_x)),
            x=torch.where(moving.bool(), d_x, divers.x),
            timer=torch.where(moving.bool(), _DIVER_MOVE_INTERVAL, divers.timer - 1),
        )

        # enemies (enemy submarines, then fish): one on the submarine terminates; due
        # ones move (off the grid they vanish; onto the submarine, terminate; onto a
        # torpedo, both vanish, the oldest torpedo there and the newest of the enemies)
        stepping = alive & (en.timer == 0)
        x = en.x + stepping * _heading(en.right)
        gone = stepping & (1 - _on_grid(x))
        crash = stepping & (1 - gone) & (x == sx) & (en.y == sy)
        terminated = (alive & (en.x == sx) & (en.y == sy)).any() | crash.any()
        can_hit = stepping & (1 - gone) & (1 - crash)
        # an enemy that moves onto torpedoes removes one: enemy submarines (newest
        # first) go before fish (newest first), each taking the oldest torpedo left
        moved_cell = en.y * GRID + x
        meets = t_live[:, None] & can_hit[None, :] & (moved_cell[None, :] == t_cell[:, None])
        older_there = _same_cell_rank(t_live, t_cell, torps.born, newer=False)
        hit = _claims(meets, en.sub, en.born, older_there, oldest=False)
        taken = hit.amax(0)
        t_live = t_live & (1 - hit.amax(1))
        reward = reward + taken.sum(dtype=i64)
        # every enemy submarine that was there fires when due, into its bullet slot
        # (those that left the grid too, but their bullets would leave it at once)
        armed = alive & en.sub
        firing = armed & (en.shot == 0)
        shot = torch.where(firing.bool(), _ENEMY_SHOT_INTERVAL, en.shot - armed)
        enemies = en.replace(
            alive=alive & (1 - gone) & (1 - taken),
            x=x,
            timer=torch.where(stepping.bool(), s.move_speed, en.timer - alive),
            shot=shot,
        )
        firing = (firing & _on_grid(x)).bool()
        b = _as_flags(s.e_bullets)
        b_x0 = torch.where(firing, x, b.x)
        b_y = torch.where(firing, en.y, b.y)
        b_right = torch.where(firing, en.right, b.right)
        b_alive = b.alive | firing.to(i64)
        # enemy bullets: one on the submarine, before or after its move, terminates
        b_x = b_x0 + _heading(b_right)
        terminated = terminated | (b_alive & (b_x0 == sx) & (b_y == sy)).any()
        b_alive = b_alive & _on_grid(b_x)
        terminated = terminated | (b_alive & (b_x == sx) & (b_y == sy)).any()
        bullets = b.replace(alive=b_alive, x=b_x, y=b_y, right=b_right)
        torps = torps.replace(alive=t_live, x=t_x)

        # timers, oxygen and the surface
        e_spawn_timer = e_spawn_timer - (e_spawn_timer > 0).to(i64)
        d_spawn_timer = d_spawn_timer - (d_spawn_timer > 0).to(i64)
        shot_timer = shot_timer - (shot_timer > 0).to(i64)
        terminated = terminated | (s.oxygen <= 0)
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
            f_bullets=torps,
            e_bullets=bullets,
            enemies=enemies,
            divers=divers,
            births=births,
            last_action=a,
            time=s.time + 1,
        )
        truncated = nxt.time >= params.max_steps
        return self._obs(nxt), nxt, reward.to(torch.float32), terminated, truncated, {}

    @staticmethod
    def _obs(state: SeaquestState) -> torch.Tensor:
        """``[10, 10, 10]`` float32 (minatar's ``state()``): every mark is one flat index
        ``(row * 10 + column) * 10 + channel`` (index 1000 where there is none), and one
        scatter writes them all."""
        s = state
        dev = s.sub_x.device
        none = GRID * GRID * CHANNELS

        def at(
            show: torch.Tensor, x: torch.Tensor, y: torch.Tensor | int, ch: torch.Tensor | int
        ) -> torch.Tensor:
            return torch.where(show.bool(), (y * GRID + x) * CHANNELS + ch, none).reshape(-1)

        # the submarine's back: a column off the grid wraps round (numpy's index -1);
        # minatar's turns keep it on the grid
        back = (s.sub_x - _heading(s.sub_or)) % GRID
        yes = torch.ones((), dtype=torch.bool, device=dev)
        en, dv = s.enemies, s.divers
        trail = torch.cat([en.x - _heading(en.right), dv.x - _heading(dv.right)])
        trail_y = torch.cat([en.y, dv.y])
        trail_on = torch.cat([en.alive, dv.alive]) & _on_grid(trail)
        cols = torch.arange(GRID, dtype=torch.int64, device=dev)
        oxygen_cells = torch.div(s.oxygen.clamp(min=0) * 10, MAX_OXYGEN, rounding_mode="floor")
        divers_on_board = (cols >= GRID - 1 - s.diver_count) & (cols < GRID - 1)
        idx = torch.cat(
            [
                at(yes, s.sub_x, s.sub_y, 0),
                at(yes, back, s.sub_y, 1),
                at(s.f_bullets.alive, s.f_bullets.x, s.f_bullets.y, 2),
                at(trail_on, trail, trail_y, 3),
                at(s.e_bullets.alive, s.e_bullets.x, s.e_bullets.y, 4),
                at(en.alive, en.x, en.y, 5 + en.sub),
                at(cols < oxygen_cells, cols, GRID - 1, 7),
                at(divers_on_board, cols, GRID - 1, 8),
                at(dv.alive, dv.x, dv.y, 9),
            ]
        )
        flat = torch.zeros(none + 1, dtype=torch.float32, device=dev).scatter(0, idx, 1.0)
        return flat[:none].reshape(GRID, GRID, CHANNELS)

    def observation_space(self, params: SeaquestParams) -> Box:
        """``Box(0, 1, (10, 10, 10), float32)``; every entry is 0 or 1."""
        return Box(0.0, 1.0, (GRID, GRID, CHANNELS), torch.float32)

    def action_space(self, params: SeaquestParams) -> Discrete:
        """``Discrete(6)``: noop, left, up, right, down, fire (minatar
        ``SEAQUEST_ACTION_SET``)."""
        return Discrete(6)
