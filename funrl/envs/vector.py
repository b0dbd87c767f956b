"""Vectorisation: ``VecEnv`` runs ``num_envs`` copies of an environment as one environment.

``VecEnv(env, n)`` is itself an :class:`~funrl.envs.base.Environment` over a batch: its
``reset`` splits the key into ``n`` keys and ``torch.func.vmap``-s the inner ``reset``; its
``step`` vmaps the inner ``step``, so each member auto-resets on its own (the inner
``step``'s ``torch.where`` over the state tree).  Every output gains a leading dim ``n``:
``obs [n, *obs_shape]``, ``reward/terminated/truncated [n]``, every ``info`` entry ``[n, ...]``.

``params`` are shared by all members by default.  With ``batched_params=True`` every
params leaf carries a leading dim ``n`` (domain randomisation: one physics per member);
``default_params()`` then returns the inner defaults repeated ``n`` times.

Spaces are those of **one** member (``observation_space``/``action_space``); the batch is
``num_envs`` (and ``batch_shape == (num_envs,)``, which wrappers read).  ``VecEnv``
composes with ``torch.compile`` (compile the whole step) and with an outer ``vmap``
(a population of vectorised envs).

Checks in ``step``: the key must be one key ``[2]``, ``action`` must have leading dim ``n``,
every state leaf must have leading dim ``n`` and batched params leading dim ``n``, and each
member's ``step`` checks its action's dtype kind and shape (shape checks, always on, also
under compile).  The whole action is checked against ``[n, *space.shape]`` and a
``Discrete`` range (:func:`~funrl.envs.base.validate_action`) only where values can be
read: not under ``torch.compile``, not when the action is a functorch-batched tensor
(inside an outer ``vmap``/``grad``), not on the ``meta`` device.

Eagerly (plain CPU tensors, not traced, not inside an outer ``vmap``) ``step`` computes
the members' auto-reset only on steps where one of them is done: the vmapped reset costs
about twice the step itself, and most steps end no episode.  This covers an env whose
``step`` is :class:`~funrl.envs.base.Environment`'s, also under ``RescaleAction`` /
``ClipAction``; other wrappers take the vmapped step.  The outputs are those of the
vmapped auto-resetting step bit for bit (the first eager step with given dtypes checks
that skipping the reset changes no dtype or shape; where it would, every step computes
it).  As from any pure function, state leaves the step leaves unchanged may come back as
the very tensors passed in.

Devices: ``params`` leaves other than 0-d CPU tensors (which every op used by the envs
reads as a scalar on any device) are moved to the key's device, so batched params built on
the CPU work with a CUDA key.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.vector import VecEnv
    >>> from funrl.envs.classic_control import CartPole
    >>> venv = VecEnv(CartPole(), 8)
    >>> obs, state = venv.reset(R.key(0))
    >>> obs.shape
    torch.Size([8, 4])
    >>> action = torch.zeros(8, dtype=torch.int64)
    >>> obs, state, r, term, trunc, info = venv.step(R.key(1), state, action)
    >>> r.shape, info["final_observation"].shape
    (torch.Size([8]), torch.Size([8, 4]))
"""

from __future__ import annotations

from typing import Any

import torch
from torch.func import vmap

from funrl import random as R
from funrl import tree
from funrl.envs.base import (
    Environment,
    StepResult,
    is_tracing,
    validate_action,
    values_readable,
)
from funrl.envs.spaces import Space

__all__ = ["VecEnv", "batch_shape", "is_tracing"]


def batch_shape(env: Environment) -> tuple[int, ...]:
    """The leading batch dims of ``env``'s outputs: ``()`` for one env, ``(n,)`` for a VecEnv."""
    return tuple(getattr(env, "batch_shape", ()))


def _to_device(params: Any, device: torch.device) -> Any:
    """``params`` with its tensors on ``device``, except 0-d CPU tensors (elementwise ops
    read those as scalars on any device, without a copy): batched params (leading dim ``n``)
    on the CPU would otherwise meet a CUDA state inside the vmapped step."""

    def move(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.device == device:
            return x
        return x if x.ndim == 0 and x.device.type == "cpu" else x.to(device)

    return tree.map(move, params)


def _declares_batched_step(env: Environment) -> bool:
    """Whether ``env.step_env`` batches as it stands: the class that defines ``step_env``
    sets :attr:`Environment.step_env_batched` itself (a subclass overriding ``step_env``
    does not inherit the promise)."""
    for cls in type(env).__mro__:
        if "step_env" in cls.__dict__:
            return bool(cls.__dict__.get("step_env_batched", False))
    return False


def _check_single_key(key: Any, where: str) -> None:
    R.check_key(key)
    if key.ndim != 1:
        raise ValueError(
            f"{where}: key must be one key of shape [2] (it is split into the members), "
            f"got shape {tuple(key.shape)}"
        )


def _check_leading(x: Any, n: int, what: str, where: str) -> None:
    paths, _ = torch.utils._pytree.tree_flatten_with_path(x)
    for path, leaf in paths:
        if not isinstance(leaf, torch.Tensor):
            continue
        if leaf.ndim == 0 or leaf.shape[0] != n:
            name = torch.utils._pytree.keystr(path)
            raise ValueError(
                f"{where}: {what}{name} has shape {tuple(leaf.shape)}, expected a leading "
                f"batch dim of num_envs={n}"
            )


class VecEnv(Environment):
    """``num_envs`` copies of ``env`` stepped together with ``torch.func.vmap``.

    Args:
      env: any pure-torch environment (or wrapped environment; not a Gymnasium bridge).
      num_envs: the batch size ``n`` (a positive int, static).
      batched_params: when True, ``params`` leaves carry a leading dim ``n`` (one set of
        physics constants per member); when False (default) one params tree is shared.

    ``reset(key, params) -> obs [n, ...], state [n, ...]``;
    ``step(key, state, action [n, ...], params) -> (obs, state, reward [n], terminated [n],
    truncated [n], info)``.  Member ``i`` uses key ``split(key, n)[i]``.
    """

    def __init__(self, env: Environment, num_envs: int, *, batched_params: bool = False) -> None:
        if not isinstance(env, Environment):
            raise TypeError(f"VecEnv: env must be a funrl Environment, got {type(env).__name__}")
        if getattr(env, "is_host_bridge", False):
            raise TypeError(
                "VecEnv: a Gymnasium bridge cannot be vmapped; use "
                "GymnasiumEnv(env_id, num_envs=n) for a Gymnasium vector env instead"
            )
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"VecEnv: num_envs must be a positive int, got {num_envs!r}")
        self.env = env
        self.num_envs = num_envs
        self.batched_params = bool(batched_params)
        self.name = f"VecEnv({env.name}, {num_envs})"
        self._params_spec = tree.structure(env.default_params())
        # the eager fast path (see step): the action-only wrappers above the env whose
        # auto-resetting step it replays, None where the env's step is another one; and per
        # dtype signature, whether skipping the reset keeps every dtype and shape
        maps, inner = [], env
        while getattr(type(inner), "maps_actions_only", False):
            maps.append(inner.env_action)  # type: ignore[attr-defined]
            inner = inner.env  # type: ignore[attr-defined]
        self._lazy_reset_env = (maps, inner) if type(inner).step is Environment.step else None
        self._batched_step = _declares_batched_step(inner)
        self._lazy_reset_exact: dict[tuple[Any, ...], bool] = {}
        env.static_action_space()  # built eagerly, before a step is traced

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return (self.num_envs, *batch_shape(self.env))

    @property
    def unwrapped(self) -> Environment:
        return getattr(self.env, "unwrapped", self.env)

    def default_params(self) -> Any:
        """The inner defaults; repeated ``num_envs`` times along a new dim 0 if batched."""
        p = self.env.default_params()
        if not self.batched_params:
            return p
        return tree.map(lambda x: torch.stack([torch.as_tensor(x)] * self.num_envs), p)

    def _member_params(self, params: Any) -> Any:
        return tree.index(params, 0) if self.batched_params else params

    def observation_space(self, params: Any) -> Space:
        """The space of **one** member's observation (member 0's params if batched)."""
        return self.env.observation_space(self._member_params(params))

    def action_space(self, params: Any) -> Space:
        """The space of **one** member's action (member 0's params if batched)."""
        return self.env.action_space(self._member_params(params))

    def _params(self, params: Any) -> Any:
        if params is None:
            return self.default_params()
        if tree.structure(params) != self._params_spec:
            raise ValueError(
                f"{self.name}: params have structure {tree.structure(params)}, expected "
                f"{self._params_spec} (as {type(self.env).__name__}.default_params())"
            )
        if self.batched_params:
            _check_leading(params, self.num_envs, "params", self.name)
        return params

    def reset(self, key: torch.Tensor, params: Any = None) -> tuple[torch.Tensor, Any]:
        """``(obs [n, ...], state [n, ...])``; member ``i`` resets with ``split(key, n)[i]``."""
        _check_single_key(key, f"{self.name}.reset")
        params = _to_device(self._params(params), key.device)
        keys = R.split(key, self.num_envs)
        pdim = 0 if self.batched_params else None
        return vmap(self.env.reset, in_dims=(0, pdim))(keys, params)

    def step(
        self, key: torch.Tensor, state: Any, action: torch.Tensor, params: Any = None
    ) -> StepResult:
        """One step of every member (each auto-resets on its own); outputs lead with ``n``."""
        _check_single_key(key, f"{self.name}.step")
        params = _to_device(self._params(params), key.device)
        if not isinstance(action, torch.Tensor):
            raise TypeError(
                f"{self.name}.step: action must be a tensor, got {type(action).__name__}"
            )
        _check_leading(action, self.num_envs, "action", f"{self.name}.step")
        _check_leading(state, self.num_envs, "state", f"{self.name}.step")
        if values_readable(action):  # dtype and range; the members' step checks the shape
            space = self.action_space(params)
            validate_action(space, action, f"{self.name}.step", batch_shape=self.batch_shape)
        keys = R.split(key, self.num_envs)
        pdim = 0 if self.batched_params else None
        chain = self._lazy_reset_chain(key, state, action, params)
        if chain is not None:
            return self._step_reset_where_done(chain, keys, state, action, params, pdim)
        return vmap(self.env.step, in_dims=(0, 0, 0, pdim))(keys, state, action, params)

    def _lazy_reset_chain(
        self, key: torch.Tensor, state: Any, action: torch.Tensor, params: Any
    ) -> tuple[list[Any], Environment, tuple[Any, ...]] | None:
        """``(action maps, inner env, dtype signature)`` where the eager fast path applies,
        else ``None``.

        It applies to a plain CPU step: not traced, no dispatch mode, every tensor of the
        arguments an ordinary CPU tensor (none inside an outer ``vmap``/``grad``), of an
        env whose ``step`` is the auto-resetting one of :class:`Environment`, possibly under
        wrappers that only map the action (``maps_actions_only``: ``RescaleAction``,
        ``ClipAction``), and unless an earlier step with the same dtypes found that
        skipping the reset would change a dtype or shape.
        """
        if self._lazy_reset_env is None:
            return None
        if torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack():
            return None
        leaves = tree.leaves([key, state, action, params])
        for t in leaves:
            if isinstance(t, torch.Tensor) and (
                type(t) is not torch.Tensor
                or t.device.type != "cpu"
                or torch._C._functorch.is_functorch_wrapped_tensor(t)
            ):
                return None
        sig = tuple(getattr(t, "dtype", type(t)) for t in leaves)
        if not self._lazy_reset_exact.get(sig, True):
            return None
        maps, env = self._lazy_reset_env
        return maps, env, sig

    def _step_reset_where_done(
        self,
        chain: tuple[list[Any], Environment, tuple[Any, ...]],
        keys: torch.Tensor,
        state: Any,
        action: torch.Tensor,
        params: Any,
        pdim: Any,
    ) -> StepResult:
        """:meth:`Environment.step` of every member with the reset computed only when a
        member is done: eagerly, the vmapped reset costs about twice the step itself, and
        most steps end no episode.  Bit-identical to the vmapped ``step`` (the same keys,
        the same ``torch.where``); the branch reads ``done``, so it runs eagerly only."""
        maps, env, sig = chain
        exact = self._lazy_reset_exact

        def member_step(k: torch.Tensor, s: Any, a: torch.Tensor, p: Any) -> Any:
            for env_action in maps:  # the action-only wrappers, outermost first
                a = env_action(a)
            env._check_step_action(a)
            return env.step_env(k, s, a, p)

        # Environment.step's key split for every member at once (the hash is row-wise:
        # the same keys as splitting each member's key under vmap, without vmap's cost)
        key_step, key_reset = R._split_keys(keys, 2)
        if self._batched_step and pdim is None:  # one call for every member (no vmap)
            for env_action in maps:
                action = env_action(action)
            space = env.static_action_space()
            if space is not None:
                validate_action(
                    space, action, f"{env.name}.step", batch_shape=(self.num_envs,), values=False
                )
            stepped = env.step_env(key_step, state, action, params)
        else:
            stepped = vmap(member_step, in_dims=(0, 0, 0, pdim))(key_step, state, action, params)
        obs_st, state_st, reward, terminated, truncated, info = stepped
        done = terminated | truncated
        obs, new_state = obs_st.clone(), state_st  # obs: not final_observation's storage
        if sig not in exact or bool(done.any()):
            obs_re, state_re = vmap(env.reset_env, in_dims=(0, pdim))(key_reset, params)
            pick = vmap(lambda d, a, b: tree.where(d, a, b))
            obs, new_state = pick(done, obs_re, obs_st), pick(done, state_re, state_st)
            if sig not in exact:
                exact[sig] = all(
                    x.dtype == y.dtype and x.shape == y.shape
                    for x, y in zip(
                        tree.leaves((obs, new_state)), tree.leaves((obs_st, state_st)), strict=True
                    )
                )
        info = dict(info)
        info["final_observation"] = obs_st
        return obs, new_state, reward, terminated, truncated, info

    def reset_env(self, key: torch.Tensor, params: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError(
            "VecEnv implements reset/step directly (vmapped inner reset/step)"
        )

    def step_env(
        self, key: torch.Tensor, state: Any, action: torch.Tensor, params: Any
    ) -> StepResult:
        raise NotImplementedError(
            "VecEnv implements reset/step directly (vmapped inner reset/step)"
        )

    def __repr__(self) -> str:
        extra = ", batched_params=True" if self.batched_params else ""
        return f"VecEnv({self.env!r}, {self.num_envs}{extra})"
