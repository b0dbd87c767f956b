"""TensorDict interop: funrl trajectories and batches to and from TorchRL-style TensorDicts.

TorchRL's conventions, which these functions follow by default:

* keys: ``"observation"``, ``"action"``, and under ``"next"`` what the step produced:
  ``("next", "observation")`` (the true next observation, before any auto-reset),
  ``("next", "reward")``, ``("next", "done")``, ``("next", "terminated")``,
  ``("next", "truncated")``;
* ``reward`` and the three flags carry a trailing singleton dim (``[..., 1]``), the
  flags are bool, ``done = terminated | truncated``;
* collectors return ``batch_size=[num_envs, T]``: **environment first, time last**.

funrl's collectors are time-major (``Transition`` leaves ``[T, num_envs, ...]``), so
:func:`to_tensordict` moves time last by default (``time_first=False``); pass
``time_first=True`` to keep ``[T, num_envs]``, and ``td.transpose(0, 1)`` converts
between the two.  A policy's ``extras`` (``logp``, ``value``) become root keys of the
same name (TorchRL's PPO loss reads ``"sample_log_prob"`` and ``"state_value"``: rename
with ``td.rename_key_``), and the env's ``info`` goes under ``("next", "info")``.

Example::

    >>> import torch, funrl
    >>> from funrl import collectors, envs, interop
    >>> env, env_params = funrl.make("CartPole-v1")
    >>> venv = envs.VecEnv(env, 3)
    >>> policy = lambda p, obs, key: (funrl.random.randint(key, 0, 2, obs.shape[:1]), {})
    >>> carry = collectors.init(venv, env_params, funrl.random.key(0))
    >>> _, traj = collectors.rollout(collectors.make_step(venv, policy), carry, None,
    ...                              env_params, num_steps=5)
    >>> td = interop.to_tensordict(traj)
    >>> td.batch_size, td["next", "reward"].shape
    (torch.Size([3, 5]), torch.Size([3, 5, 1]))
    >>> back = interop.from_tensordict(td)
    >>> torch.equal(back.reward, traj.reward)
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from funrl.collectors import Transition

if TYPE_CHECKING:
    from tensordict import TensorDict


def _tensordict_cls() -> Any:
    """``tensordict.TensorDict``, imported on first use (``import funrl`` stays light)."""
    from tensordict import TensorDict

    return TensorDict


__all__ = ["batch_from_tensordict", "batch_to_tensordict", "from_tensordict", "to_tensordict"]

_FLAGS = ("terminated", "truncated")
# funrl batch key -> (TorchRL key, trailing singleton dim?)
_BATCH_KEYS: dict[str, tuple[Any, bool]] = {
    "obs": ("observation", False),
    "action": ("action", False),
    "next_obs": (("next", "observation"), False),
    "reward": (("next", "reward"), True),
    "terminated": (("next", "terminated"), True),
    "truncated": (("next", "truncated"), True),
}
_RESERVED_ROOT = ("observation", "action", "next")


def _check_traj(traj: Any) -> None:
    if not isinstance(traj, Transition):
        raise TypeError(
            f"to_tensordict: traj must be a funrl.collectors.Transition, got {type(traj).__name__}"
        )
    if traj.reward.ndim < 2:
        raise ValueError(
            f"to_tensordict: traj.reward must be [T, *batch] (from collectors.rollout), "
            f"got shape {tuple(traj.reward.shape)}"
        )
    for name in ("terminated", "truncated"):
        x = getattr(traj, name)
        if x.shape != traj.reward.shape:
            raise ValueError(
                f"to_tensordict: traj.{name} has shape {tuple(x.shape)}, expected {tuple(traj.reward.shape)}"
            )
    clash = sorted(set(traj.extras) & set(_RESERVED_ROOT))
    if clash:
        raise ValueError(f"to_tensordict: extras keys {clash} clash with TorchRL's keys")


def to_tensordict(traj: Transition, *, time_first: bool = False) -> TensorDict:
    """A collector trajectory (time-major ``[T, *batch]``) as a TorchRL-style TensorDict.

    Args:
      traj: from :func:`funrl.collectors.rollout`: every field ``[T, *batch, ...]``.
      time_first: ``False`` (default, TorchRL's collectors): ``batch_size=[*batch, T]``;
        ``True``: ``batch_size=[T, *batch]``.

    Returns a TensorDict with the keys listed in the module docstring, ``extras`` at the
    root and ``info`` under ``("next", "info")``.  Tensors are shared, not copied.
    """
    _check_traj(traj)
    nb = traj.reward.ndim  # batch dims including time
    move = (lambda x: x) if time_first else (lambda x: torch.movedim(x, 0, nb - 1))
    flag = lambda x: move(x).unsqueeze(-1)  # noqa: E731
    done = traj.terminated | traj.truncated
    data: dict[Any, torch.Tensor] = {
        "observation": move(traj.obs),
        "action": move(traj.action),
        ("next", "observation"): move(traj.next_obs),
        ("next", "reward"): flag(traj.reward),
        ("next", "done"): flag(done),
        ("next", "terminated"): flag(traj.terminated),
        ("next", "truncated"): flag(traj.truncated),
    }
    for k, v in traj.extras.items():
        data[k] = move(v)
    for k, v in traj.info.items():
        data[("next", "info", k)] = move(v)
    shape = traj.reward.shape if time_first else move(traj.reward).shape
    return _tensordict_cls()(data, batch_size=shape)


def _get(td: TensorDict, key: Any, where: str) -> torch.Tensor:
    if key not in td.keys(include_nested=True):
        have = sorted(map(str, td.keys(include_nested=True, leaves_only=True)))
        raise KeyError(f"{where}: the TensorDict has no {key!r} entry (it has {have})")
    return td.get(key)


def from_tensordict(td: TensorDict, *, time_first: bool = False) -> Transition:
    """The inverse of :func:`to_tensordict`: a time-major ``Transition`` ``[T, *batch]``.

    Args:
      td: a TensorDict with TorchRL's keys; ``("next", "terminated")`` is required,
        ``("next", "truncated")`` defaults to ``("next", "done") & ~terminated``.
      time_first: how ``td`` is laid out: ``False`` means time is its LAST batch dim
        (TorchRL's collectors), ``True`` its first.

    Root keys other than ``observation``/``action``/``next`` become ``extras``; entries
    under ``("next", "info")`` become ``info``.
    """
    if not isinstance(td, _tensordict_cls()):
        raise TypeError(f"from_tensordict: td must be a TensorDict, got {type(td).__name__}")
    nb = td.batch_dims
    if nb < 2:
        raise ValueError(
            f"from_tensordict: td needs batch dims [*batch, T], got batch_size {list(td.batch_size)}"
        )
    move = (lambda x: x) if time_first else (lambda x: torch.movedim(x, nb - 1, 0))
    get = lambda k: _get(td, k, "from_tensordict")  # noqa: E731
    unflag = lambda x: move(x.squeeze(-1)) if x.ndim == nb + 1 else move(x)  # noqa: E731
    terminated = unflag(get(("next", "terminated"))).to(torch.bool)
    if ("next", "truncated") in td.keys(include_nested=True):
        truncated = unflag(get(("next", "truncated"))).to(torch.bool)
    else:
        truncated = unflag(get(("next", "done"))).to(torch.bool) & ~terminated
    extras: dict[str, torch.Tensor] = {
        str(k): move(td.get(k))
        for k in td.keys()
        if k not in _RESERVED_ROOT and k not in ("done", "terminated", "truncated")
    }
    info: dict[str, torch.Tensor] = {}
    if ("next", "info") in td.keys(include_nested=True):
        info = {k: move(v) for k, v in td.get(("next", "info")).items()}
    return Transition(
        obs=move(get("observation")),
        action=move(get("action")),
        reward=unflag(get(("next", "reward"))),
        terminated=terminated,
        truncated=truncated,
        next_obs=move(get(("next", "observation"))),
        extras=extras,
        info=info,
    )


def batch_to_tensordict(batch: Mapping[str, torch.Tensor]) -> TensorDict:
    """A flat batch (a replay sample: ``obs``, ``action``, ``reward``, ``next_obs``,
    ``terminated``, optionally ``truncated`` and anything else, each ``[B, ...]``) as a
    TorchRL-style TensorDict with ``batch_size=[B]``.

    Known keys are renamed (``obs`` -> ``"observation"``, ``next_obs`` ->
    ``("next", "observation")``, ``reward``/``terminated``/``truncated`` -> under
    ``"next"`` with a trailing ``1``); ``("next", "done")`` is added when ``terminated``
    is present; other keys (``discount``, ``logp``) stay at the root unchanged.
    """
    if not isinstance(batch, Mapping) or "obs" not in batch:
        raise TypeError("batch_to_tensordict: batch must be a mapping with at least an 'obs' entry")
    b = batch["obs"].shape[:1]
    if len(b) != 1:
        raise ValueError(
            f"batch_to_tensordict: batch['obs'] must be [B, ...], got shape {tuple(batch['obs'].shape)}"
        )
    data: dict[Any, torch.Tensor] = {}
    for k, v in batch.items():
        if v.shape[:1] != b:
            raise ValueError(
                f"batch_to_tensordict: batch[{k!r}] has shape {tuple(v.shape)}, expected leading dim {b[0]}"
            )
        key, flag = _BATCH_KEYS.get(k, (k, False))
        if not isinstance(key, tuple) and key in _RESERVED_ROOT and k not in _BATCH_KEYS:
            raise ValueError(f"batch_to_tensordict: key {k!r} clashes with TorchRL's keys")
        data[key] = v.unsqueeze(-1) if flag else v
    if "terminated" in batch:
        done = batch["terminated"].to(torch.bool)
        if "truncated" in batch:
            done = done | batch["truncated"].to(torch.bool)
        data[("next", "done")] = done.unsqueeze(-1)
    return _tensordict_cls()(data, batch_size=b)


def batch_from_tensordict(td: TensorDict) -> dict[str, torch.Tensor]:
    """The inverse of :func:`batch_to_tensordict` (``("next", "done")`` is dropped)."""
    if not isinstance(td, _tensordict_cls()) or td.batch_dims != 1:
        raise TypeError("batch_from_tensordict: td must be a TensorDict with batch_size [B]")
    out: dict[str, torch.Tensor] = {}
    keys = td.keys(include_nested=True, leaves_only=True)
    for name, (key, flag) in _BATCH_KEYS.items():
        if key in keys:
            v = td.get(key)
            out[name] = v.squeeze(-1) if flag and v.ndim == 2 else v
    for k in td.keys():
        if k not in _RESERVED_ROOT:
            out[str(k)] = td.get(k)
    return out
