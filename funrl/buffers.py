"""Replay buffers as pure state: ring replay, prioritized replay, n-step, trajectories.

A buffer is a pytree of preallocated tensors plus integer counters; every function
returns a new state and never mutates its input (unless you opt in with
``donate=True``), so a population of buffers ``vmap``s and every function compiles.

Checks: structure, shape and dtype mismatches raise ``TypeError``/``ValueError`` at the
entry points, also under ``torch.compile`` (shapes are static there).  Checks on tensor
*values* (sampling an empty buffer, ``batch_size`` above the filled count, negative
priorities) run only eagerly on plain tensors: they are skipped while tracing
(``torch.compiler.is_compiling()``) and on functorch-wrapped tensors (inside ``vmap`` or
``grad``), where reading a value is impossible.  Use :func:`can_sample` to mask there.

Example::

    >>> import torch, funrl
    >>> from funrl import buffers
    >>> ex = {"obs": torch.zeros(4), "action": torch.zeros((), dtype=torch.int64)}
    >>> s = buffers.init(ex, capacity=8)
    >>> s = buffers.add(s, {"obs": torch.ones(3, 4), "action": torch.arange(3)})
    >>> int(s.size), int(s.pos)
    (3, 3)
    >>> buffers.sample(s, funrl.random.key(0), 2)["obs"].shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from funrl import random as R
from funrl import tree

__all__ = [
    "NStepState",
    "NStepTransition",
    "PrioritizedState",
    "ReplayState",
    "TrajectoryState",
    "add",
    "can_sample",
    "capacity_of",
    "init",
    "n_step_init",
    "n_step_push",
    "n_step_transitions",
    "prioritized_add",
    "prioritized_init",
    "prioritized_sample",
    "sample",
    "trajectory_add",
    "trajectory_get",
    "trajectory_init",
    "update_priorities",
]

_I64 = torch.int64


def _concrete(x: torch.Tensor) -> bool:
    """True when ``x``'s values may be read (eager, not inside vmap/grad, not tracing)."""
    if torch.compiler.is_compiling():
        return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)


# ------------------------------------------------------------------------ ring replay


@tree.struct
class ReplayState(tree.Struct):
    """A ring replay buffer.

    Attributes:
      data: pytree of ``[capacity, ...]`` tensors shaped like the example transition.
      pos: 0-d int64, the next slot to write.
      size: 0-d int64, the number of filled slots (saturates at ``capacity``).
    """

    data: Any
    pos: torch.Tensor
    size: torch.Tensor


def capacity_of(state: ReplayState) -> int:
    """The (static) capacity: the leading dim of the data leaves."""
    return int(tree.leaves(state.data)[0].shape[0])


def init(example: Any, capacity: int) -> ReplayState:
    """An empty buffer with ``capacity`` slots shaped like ``example`` (one transition).

    Args:
      example: pytree of tensors without a batch dim (e.g. obs ``[4]``, action ``[]``).
      capacity: number of slots, a positive int.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be a positive int, got {capacity!r}")
    flat = tree.leaves(example)
    if not flat or not all(isinstance(x, torch.Tensor) for x in flat):
        raise TypeError("example must be a non-empty pytree of tensors")
    data = tree.map(
        lambda x: torch.zeros((capacity, *x.shape), dtype=x.dtype, device=x.device), example
    )
    dev = flat[0].device
    zero = torch.zeros((), dtype=_I64, device=dev)
    return ReplayState(data, zero, zero.clone())


def _check_batch(data: Any, batch: Any, name: str = "batch") -> int:
    """Structure/shape/dtype checks of ``batch`` against buffer ``data``; returns B."""
    fd, sd = tree.flatten(data)
    fb, sb = tree.flatten(batch)
    if sd != sb:
        raise TypeError(f"{name} has tree structure {sb}, expected the buffer's {sd}")
    b = None
    paths = [
        torch.utils._pytree.keystr(p)
        for p, _ in torch.utils._pytree.tree_flatten_with_path(data)[0]
    ]
    for path, d, x in zip(paths, fd, fb):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}{path} must be a tensor, got {type(x).__name__}")
        if x.dtype != d.dtype:
            raise TypeError(f"{name}{path} has dtype {x.dtype}, expected {d.dtype}")
        if x.ndim != d.ndim or tuple(x.shape[1:]) != tuple(d.shape[1:]):
            raise ValueError(
                f"{name}{path} has shape {tuple(x.shape)}, expected [B, *{tuple(d.shape[1:])}]"
            )
        if b is None:
            b = int(x.shape[0])
        elif int(x.shape[0]) != b:
            raise ValueError(f"{name}{path} has leading dim {x.shape[0]}, other leaves have {b}")
    assert b is not None
    cap = int(fd[0].shape[0])
    if b > cap:
        raise ValueError(f"{name} has {b} rows, more than the buffer's capacity {cap}")
    return b


def _write_index(pos: torch.Tensor, b: int, cap: int, mask: torch.Tensor | None) -> tuple:
    """Slots for the B rows and how many are written.

    Unmasked: ``(pos + arange(B)) % cap``.  Masked: valid rows take ranks ``0..n-1`` in
    order and invalid rows the ranks after them, so all B slots are distinct.
    """
    ar = torch.arange(b, dtype=_I64, device=pos.device)
    if mask is None:
        return (pos + ar) % cap, torch.full((), b, dtype=_I64, device=pos.device)
    m = mask.to(_I64)
    n = m.sum()
    rank = torch.where(mask, torch.cumsum(m, 0) - 1, n + torch.cumsum(1 - m, 0) - 1)
    return (pos + rank) % cap, n


def _use_inplace(leaf: torch.Tensor) -> bool:
    """In-place is safe when compiling (functionalised; a vmapped population's buffers are
    batched like the rows) and eagerly on plain tensors, not on eager functorch wrappers."""
    if torch.compiler.is_compiling():
        return True
    return not torch._C._functorch.is_functorch_wrapped_tensor(leaf)


def _put(
    buf: torch.Tensor, idx: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None, donate: bool
) -> torch.Tensor:
    if mask is not None:  # masked rows rewrite the value already there
        keep = mask.reshape(mask.shape + (1,) * (x.ndim - 1))
        x = torch.where(keep, x, buf[idx])
    if donate and _use_inplace(buf):
        return buf.index_put_((idx,), x)
    return buf.index_put((idx,), x)


def add(
    state: ReplayState, batch: Any, *, mask: torch.Tensor | None = None, donate: bool = False
) -> ReplayState:
    """Write the ``B`` rows of ``batch`` at slots ``(pos + arange(B)) % capacity``.

    Args:
      state: the buffer.
      batch: pytree like the example transition with a leading dim ``B <= capacity``.
      mask: optional ``[B]`` bool; only rows where it is True are written (in order,
        contiguously), ``pos``/``size`` advance by their count.
      donate: the caller promises never to use ``state`` again, so its tensors may be
        written in place (``index_put_``: no copy of the whole buffer, which costs ~30 ms
        per add at capacity 1e6, see benchmarks/bench_buffers.py).  Done eagerly on plain
        tensors and under ``torch.compile`` (where ``vmap`` needs the buffer batched like
        ``batch``, as in a population); eagerly inside ``vmap``/``grad`` it falls back to
        the out-of-place write.  Default False: ``state`` stays untouched.

    Returns:
      the new state; ``pos' = (pos + n) % capacity``, ``size' = min(size + n, capacity)``.
    """
    b = _check_batch(state.data, batch)
    cap = capacity_of(state)
    if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (b,)):
        raise ValueError(
            f"mask must be a bool tensor of shape [{b}], got {mask.dtype}{list(mask.shape)}"
        )
    idx, n = _write_index(state.pos, b, cap, mask)
    data = tree.map(lambda buf, x: _put(buf, idx, x, mask, donate), state.data, batch)
    size = torch.clamp(state.size + n, max=cap)
    return ReplayState(data, (state.pos + n) % cap, size)


def can_sample(state: ReplayState, batch_size: int) -> torch.Tensor:
    """0-d bool tensor: at least ``batch_size`` slots are filled."""
    return state.size >= batch_size


def _check_sample(size: torch.Tensor, batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if _concrete(size):
        n = int(size.min()) if size.ndim else int(size)
        if n == 0:
            raise ValueError("cannot sample from an empty buffer (size 0)")
        if n < batch_size:
            raise ValueError(f"batch_size {batch_size} exceeds the {n} filled slots of the buffer")


def sample(state: ReplayState, key: torch.Tensor, batch_size: int) -> Any:
    """``batch_size`` transitions drawn uniformly (with replacement) from the filled slots.

    ``idx ~ randint(key, 0, size, [batch_size])``; returns the data pytree indexed by
    ``idx`` (leaves ``[batch_size, ...]``).  Raises ``ValueError`` eagerly when fewer than
    ``batch_size`` slots are filled (not checked under vmap/compile: an empty buffer
    then yields slot 0).
    """
    _check_sample(state.size, batch_size)
    idx = R.randint(key, 0, state.size, (batch_size,))
    return tree.map(lambda x: x[idx], state.data)


# ------------------------------------------------------------------ prioritized replay


@tree.struct
class PrioritizedState(tree.Struct):
    """Prioritized replay (Schaul et al., 2016): a ring buffer plus a sum-tree of priorities.

    The sum-tree is one flat heap ``tree`` of ``2 P`` float64 entries (``P``: the least
    power of two ``>= capacity``): node 1 is the root, node ``i`` has children ``2i`` and
    ``2i + 1``, and leaf ``P + j`` holds ``p_j^alpha`` for slot ``j`` (0 for unfilled slots,
    zero priorities and the padding).  Writes and priority updates walk ``log2 P`` levels
    for the ``B`` touched slots; sampling walks down the same levels for each draw:
    O(B log capacity) per call, in place with ``donate`` (see :func:`prioritized_add`).

    Attributes:
      data, pos, size: as :class:`ReplayState`.
      priorities: ``[capacity]`` float32, the raw priorities (0 for unfilled slots).
      tree: ``[2 P]`` float64 sum-tree over ``priorities ** alpha``.
      alpha: 0-d float32, the priority exponent fixed at :func:`prioritized_init`
        (a tensor, so a population may hold one per member).
      max_priority: 0-d float32, the largest priority ever set (new items get it).
    """

    data: Any
    pos: torch.Tensor
    size: torch.Tensor
    priorities: torch.Tensor
    tree: torch.Tensor
    alpha: torch.Tensor
    max_priority: torch.Tensor

    @property
    def replay(self) -> ReplayState:
        return ReplayState(self.data, self.pos, self.size)


def _depth(state: PrioritizedState) -> int:
    """``log2 P``: the number of levels above the leaves (static: from the tree's shape)."""
    return int(state.tree.shape[-1]).bit_length() - 2


def prioritized_init(
    example: Any, capacity: int, alpha: float | torch.Tensor = 0.6
) -> PrioritizedState:
    """An empty prioritized buffer (``max_priority`` starts at 1).

    Args:
      example, capacity: as :func:`init`.
      alpha: priority exponent ``>= 0`` (0: uniform over non-zero priorities), a float
        or 0-d tensor; fixed for the buffer's life (the sum-tree stores ``p^alpha``).
    """
    s = init(example, capacity)
    dev = s.pos.device
    # A copy: state never aliases the caller's tensor (a compiled unit guards on aliasing).
    alpha = torch.as_tensor(alpha, dtype=torch.float32, device=dev).clone()
    if alpha.ndim != 0:
        raise ValueError(f"alpha must be a float or 0-d tensor, got shape {list(alpha.shape)}")
    if _concrete(alpha) and not bool(alpha >= 0):
        raise ValueError(f"alpha must be >= 0, got {float(alpha)}")
    leaves = 1 << (capacity - 1).bit_length()
    return PrioritizedState(
        s.data,
        s.pos,
        s.size,
        torch.zeros(capacity, device=dev),
        torch.zeros(2 * leaves, dtype=torch.float64, device=dev),
        alpha,
        torch.ones((), device=dev),
    )


def _check_priorities(p: torch.Tensor, n: int, name: str = "priorities") -> torch.Tensor:
    if not isinstance(p, torch.Tensor) or not p.dtype.is_floating_point:
        raise TypeError(f"{name} must be a float tensor, got {type(p).__name__}")
    if tuple(p.shape) != (n,):
        raise ValueError(f"{name} must have shape [{n}], got {list(p.shape)}")
    if _concrete(p) and bool(((p < 0) | torch.isnan(p)).any()):
        raise ValueError(f"{name} must be >= 0 and not NaN")
    return p.to(torch.float32)


def _set_leaves(
    state: PrioritizedState, idx: torch.Tensor, raw: torch.Tensor, donate: bool
) -> torch.Tensor:
    """The sum-tree with slots ``idx`` set to ``raw^alpha`` and their ancestors re-summed.

    Each level recomputes the touched parents from both children, so duplicate indices
    and float rounding never leave a parent out of step with its children.
    """
    t = state.tree
    inplace = _use_inplace(t)
    if inplace and not donate:
        t = t.clone()
    put = (
        (lambda t, i, v: t.index_put_((i,), v))
        if inplace
        else (lambda t, i, v: t.index_put((i,), v))
    )
    raw = raw.to(torch.float64)
    leaf = torch.where(raw > 0, raw ** state.alpha.to(torch.float64), 0.0)
    node = idx + (t.shape[-1] // 2)
    t = put(t, node, leaf)
    for _ in range(_depth(state)):
        node = node // 2
        t = put(t, node, t[2 * node] + t[2 * node + 1])
    return t


def prioritized_add(
    state: PrioritizedState,
    batch: Any,
    priorities: torch.Tensor | None = None,
    *,
    mask: torch.Tensor | None = None,
    donate: bool = False,
) -> PrioritizedState:
    """:func:`add` for prioritized replay; new items get ``priorities`` ``[B]`` or the max.

    ``donate=True`` also updates the sum-tree in place (as :func:`add` does the data).
    """
    b = _check_batch(state.data, batch)
    if priorities is None:
        priorities = state.max_priority.expand(b)
    else:
        priorities = _check_priorities(priorities, b)
    cap = capacity_of(state.replay)
    new = add(state.replay, batch, mask=mask, donate=donate)
    idx, _ = _write_index(state.pos, b, cap, mask)
    pr = _put(state.priorities, idx, priorities, mask, donate)
    t = _set_leaves(state, idx, pr[idx], donate)  # masked rows re-set their old value
    if mask is not None:
        priorities = torch.where(mask, priorities, 0.0)
    mx = torch.maximum(state.max_priority, priorities.max())
    return state.replace(
        data=new.data, pos=new.pos, size=new.size, priorities=pr, tree=t, max_priority=mx
    )


def prioritized_sample(
    state: PrioritizedState,
    key: torch.Tensor,
    batch_size: int,
    beta: float | torch.Tensor,
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Draw ``batch_size`` slots with ``P(i) = p_i^alpha / sum_j p_j^alpha`` over filled j.

    Returns ``(batch, indices [batch_size] int64, weights [batch_size] float32)`` with
    importance weights ``w_i = (N * P(i))^-beta / max_batch w`` (``N = size``; normalised
    by the largest weight in the batch, as in the paper).  ``beta`` is a float or 0-d
    tensor (vmappable).  Slots with priority 0 are never drawn.

    Each draw is ``u ~ U[0, total)`` walked down the sum-tree: at every node go right
    when ``u`` is at least the left child's sum (subtracting it) and the right child holds
    mass, so rounding can never end on an empty leaf.  Value checks as :func:`sample`.
    """
    _check_sample(state.size, batch_size)
    t = state.tree
    total = t[1]
    u = R.uniform(key, (batch_size,), dtype=torch.float64) * total
    node = torch.ones(batch_size, dtype=_I64, device=t.device)
    for _ in range(_depth(state)):
        left, right = t[2 * node], t[2 * node + 1]
        go_right = (u >= left) & (right > 0)
        u = torch.where(go_right, u - left, u)
        node = 2 * node + go_right.to(_I64)
    idx = torch.clamp(node - t.shape[-1] // 2, max=capacity_of(state.replay) - 1)
    prob = t[node] / torch.clamp(total, min=torch.finfo(torch.float64).tiny)
    beta = torch.as_tensor(beta, dtype=torch.float64, device=t.device)
    w = torch.where(prob > 0, (state.size.to(torch.float64) * prob) ** -beta, 0.0)
    w = (w / torch.clamp(w.max(), min=torch.finfo(torch.float64).tiny)).to(torch.float32)
    return tree.map(lambda x: x[idx], state.data), idx, w


def update_priorities(
    state: PrioritizedState,
    indices: torch.Tensor,
    priorities: torch.Tensor,
    *,
    donate: bool = False,
) -> PrioritizedState:
    """Set ``priorities[indices]`` (``[B]`` each) and raise ``max_priority`` accordingly.

    Duplicate indices keep one of the given values (unspecified which, as index_put); the
    sum-tree always agrees with the kept one.  ``donate`` as in :func:`add`.
    """
    if not isinstance(indices, torch.Tensor) or indices.dtype != _I64 or indices.ndim != 1:
        raise TypeError("indices must be a 1-d int64 tensor (from prioritized_sample)")
    p = _check_priorities(priorities, int(indices.shape[0]))
    pr = _put(state.priorities, indices, p, None, donate)
    t = _set_leaves(state, indices, pr[indices], donate)
    return state.replace(
        priorities=pr, tree=t, max_priority=torch.maximum(state.max_priority, p.max())
    )


# ---------------------------------------------------------------------------- n-step


class NStepTransition(NamedTuple):
    """An n-step transition: target ``reward + discount * max_a Q(next_obs, a)``.

    ``obs``/``action`` at t; ``reward = sum_{k<m} gamma^k r_{t+k}`` over the ``m`` steps
    up to and including the episode's end (or n); ``discount = gamma^m`` or 0 if the
    window ended in termination; ``next_obs`` the true next obs after step ``t+m-1``.
    """

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    discount: torch.Tensor
    next_obs: torch.Tensor


def _window(tr: Any, n: int, gamma: torch.Tensor, shifted: Any, in_range: Any) -> NStepTransition:
    """Fold ``n`` aligned time-shifts of a trajectory into n-step transitions.

    ``shifted(field, k)`` gives the field at ``t + k``; ``in_range(k)`` whether it exists.
    """
    reward = torch.zeros_like(tr.reward, dtype=gamma.dtype)
    alive = torch.ones_like(tr.terminated, dtype=torch.bool)
    steps = torch.zeros_like(tr.reward, dtype=_I64)
    term = torch.zeros_like(alive)
    nobs = tr.next_obs
    for k in range(n):
        valid = alive & in_range(k)
        r_k = shifted("reward", k).to(gamma.dtype)
        reward = reward + torch.where(valid, gamma**k * r_k, 0.0)
        steps = torch.where(valid, k + 1, steps)
        term_k, trunc_k = shifted("terminated", k), shifted("truncated", k)
        term = torch.where(valid, term_k, term)
        v = valid.reshape(valid.shape + (1,) * (nobs.ndim - valid.ndim))
        nobs = torch.where(v, shifted("next_obs", k), nobs)
        alive = valid & ~term_k & ~trunc_k
    discount = torch.where(term, 0.0, gamma ** steps.to(gamma.dtype))
    return NStepTransition(tr.obs, tr.action, reward, discount, nobs)


def _gamma(gamma: float | torch.Tensor) -> torch.Tensor:
    g = torch.as_tensor(gamma)
    return g if g.dtype.is_floating_point else g.to(torch.float32)


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")


def n_step_transitions(traj: Any, n: int, gamma: float | torch.Tensor) -> NStepTransition:
    """n-step transitions from a time-major trajectory (a ``collectors.Transition``).

    Args:
      traj: fields ``obs``, ``action``, ``reward``, ``terminated``, ``truncated``,
        ``next_obs`` with leading dims ``[T, *batch]``.
      n: window length (static int >= 1).
      gamma: discount, float or 0-d tensor.

    Returns:
      :class:`NStepTransition` with leading dims ``[T, *batch]``.  A window stops at
      ``terminated`` (discount 0) or ``truncated`` (bootstraps from that step's true
      ``next_obs``); windows running past ``T`` stop at the last step and bootstrap from
      its ``next_obs`` (a shorter, still unbiased, target).
    """
    _check_n(n)
    g = _gamma(gamma)
    T = int(traj.reward.shape[0])

    def shifted(name: str, k: int) -> torch.Tensor:
        x = getattr(traj, name)
        if k == 0:
            return x
        pad = x[-1:].expand(min(k, T), *x.shape[1:])
        return torch.cat([x[k:], pad], 0)[:T]

    t = torch.arange(T, device=traj.reward.device)

    def in_range(k: int) -> torch.Tensor:
        return (t + k < T).reshape((T,) + (1,) * (traj.reward.ndim - 1))

    return _window(traj, n, g, shifted, in_range)


@tree.struct
class NStepState(tree.Struct):
    """The last ``n`` transitions per env (oldest first), for streaming n-step returns.

    Attributes:
      window: a pytree with fields like ``collectors.Transition`` (obs, action, reward,
        terminated, truncated, next_obs), leaves ``[n, num_envs, ...]``.
      count: 0-d int64, transitions pushed so far (saturates at n).
    """

    window: dict[str, torch.Tensor]
    count: torch.Tensor


_NSTEP_FIELDS = ("obs", "action", "reward", "terminated", "truncated", "next_obs")


def n_step_init(example: Any, n: int) -> NStepState:
    """An empty window for transitions shaped like ``example`` (batched over envs)."""
    _check_n(n)
    window = {
        f: torch.zeros((n, *getattr(example, f).shape), dtype=getattr(example, f).dtype)
        for f in _NSTEP_FIELDS
    }
    return NStepState(window, torch.zeros((), dtype=_I64))


def n_step_push(
    state: NStepState, transition: Any, gamma: float | torch.Tensor
) -> tuple[NStepState, NStepTransition, torch.Tensor]:
    """Append one env step; emit the n-step transition of the step ``n - 1`` ago.

    Args:
      state: the window.
      transition: fields as ``collectors.Transition``, leaves ``[num_envs, ...]``.
      gamma: discount.

    Returns:
      ``(state, nstep, valid)``: ``nstep`` leaves ``[num_envs, ...]``, ``valid`` ``[num_envs]``
      bool (False during the first ``n - 1`` pushes).  Matches row ``t - n + 1`` of
      :func:`n_step_transitions` over the same steps.
    """
    w = state.window
    n = int(w["reward"].shape[0])
    for f in _NSTEP_FIELDS:
        x = getattr(transition, f)
        if tuple(x.shape) != tuple(w[f].shape[1:]) or x.dtype != w[f].dtype:
            raise ValueError(
                f"transition.{f} is {x.dtype}{list(x.shape)}, expected {w[f].dtype}{list(w[f].shape[1:])}"
            )
    window = {f: torch.cat([w[f][1:], getattr(transition, f)[None]], 0) for f in _NSTEP_FIELDS}
    count = torch.clamp(state.count + 1, max=n)
    cur = tree.map(lambda x: x[0], window)
    oldest = _Fields(**cur)
    out = _window(oldest, n, _gamma(gamma), lambda f, k: window[f][k], lambda k: True)
    valid = (count >= n).expand(window["reward"].shape[1:])
    return NStepState(window, count), out, valid


class _Fields(NamedTuple):
    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    next_obs: torch.Tensor


# ----------------------------------------------------------------------- trajectories


@tree.struct
class TrajectoryState(tree.Struct):
    """A fixed ``[num_steps, num_envs, ...]`` rollout store for on-policy data.

    Attributes:
      data: pytree of ``[num_steps, num_envs, ...]`` tensors.
      t: 0-d int64, steps added so far (the next write goes to ``t % num_steps``).
    """

    data: Any
    t: torch.Tensor


def trajectory_init(example: Any, num_steps: int, num_envs: int) -> TrajectoryState:
    """Zeros for ``num_steps`` steps of ``num_envs`` envs; ``example`` leaves are one
    env's transition (no batch dim)."""
    for name, v in (("num_steps", num_steps), ("num_envs", num_envs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    data = tree.map(lambda x: torch.zeros((num_steps, num_envs, *x.shape), dtype=x.dtype), example)
    return TrajectoryState(data, torch.zeros((), dtype=_I64))


def trajectory_add(state: TrajectoryState, transition: Any) -> TrajectoryState:
    """Write ``transition`` (leaves ``[num_envs, ...]``) at time ``t % num_steps``."""
    T, E = (int(d) for d in tree.leaves(state.data)[0].shape[:2])
    if _check_batch(tree.map(lambda x: x[0], state.data), transition, "transition") != E:
        raise ValueError(f"transition leaves must have leading dim num_envs={E}")
    hit = torch.arange(T, device=state.t.device) == state.t % T

    def put(buf: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.where(hit.reshape((T,) + (1,) * (buf.ndim - 1)), x[None], buf)

    return TrajectoryState(tree.map(put, state.data, transition), state.t + 1)


def trajectory_get(state: TrajectoryState) -> tuple[Any, torch.Tensor]:
    """``(data, full)``: the stored ``[num_steps, num_envs, ...]`` data, oldest step at
    index ``t % num_steps`` once wrapped, and whether all ``num_steps`` rows are written."""
    T = int(tree.leaves(state.data)[0].shape[0])
    return state.data, state.t >= T
