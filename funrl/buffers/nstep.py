"""n-step transitions (streaming and from whole trajectories) and trajectory buffers
(see :mod:`funrl.buffers`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from funrl import tree
from funrl.buffers.ring import _I64, _check_batch

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
