"""The environment contract: stateless step functions over pytrees of tensors.

An environment is a plain Python object holding only *static* settings (sizes, which
variant); everything that changes or may be swept lives in two pytrees:

* ``params``: physics constants and limits as tensors (vmap over them for domain
  randomisation), from ``env.default_params()``;
* ``state``: the env's dynamic state, returned by ``reset`` and ``step``.

The public pure functions, all for **one** environment (batch with ``torch.func.vmap``)::

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

``step`` auto-resets: where the episode ended (``terminated | truncated``) the returned
``obs`` and ``state`` are those of a fresh episode, chosen with ``torch.where`` over the
state tree (no Python control flow), and ``info["final_observation"]`` holds the
observation the step actually produced.  ``terminated`` (a true end: no bootstrapping)
and ``truncated`` (a time limit: bootstrap from ``final_observation``) stay separate.

Writing a new environment means subclassing :class:`Environment` and implementing
``default_params``, ``reset_env``, ``step_env``, ``observation_space`` and
``action_space``; ``reset`` and ``step`` (with auto-reset) come for free.

Action checks, one mechanism (:func:`validate_action`) for every env:

* ``step`` checks the action's *structure* (a tensor; integer dtype for a ``Discrete``
  space, floating for a ``Box``; shape exactly the space's shape, one env) against
  ``action_space(default_params())``, read once and cached (the kind and shape of an
  action space must not depend on ``params``).  These checks read no values, so they also
  run inside ``vmap`` (per-member shapes) and while ``torch.compile`` traces.
* ``check_action`` (called by ``VecEnv.step`` eagerly, and by ``checked`` envs) also checks
  *values* (a ``Discrete`` range), but only where values can be read
  (:func:`values_readable`): never under ``torch.compile`` or inside ``vmap``/``grad``.

Devices: ``state`` and every tensor an env creates live on the key's device.  ``params``
may stay on the CPU as 0-d tensors (the defaults are): elementwise arithmetic,
comparisons, ``torch.minimum``/``maximum`` and ``torch.where`` read a 0-d CPU tensor as a
scalar on any device, without a copy.  An env must not pass a param to an op that needs
all its tensors on one device (``torch.clamp`` with tensor bounds, ``stack``/``cat``,
indexing): use ``minimum``/``maximum``, or ``p.to(x.device)``.
"""

from __future__ import annotations

from typing import Any

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.spaces import Box, Discrete, Space

__all__ = ["Environment", "StepResult", "is_tracing", "validate_action", "values_readable"]

StepResult = tuple[
    torch.Tensor, Any, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]
]


def is_tracing(*xs: Any) -> bool:
    """True under ``torch.compile`` or when any tensor in ``xs`` is a functorch wrapper
    (inside ``vmap``/``grad``): the places where reading tensor *values* is impossible."""
    if torch.compiler.is_compiling():
        return True
    return any(
        isinstance(x, torch.Tensor) and torch._C._functorch.is_functorch_wrapped_tensor(x)
        for x in tree.leaves(list(xs))
    )


def values_readable(*xs: Any) -> bool:
    """True where the values of the tensors in ``xs`` can be read: not :func:`is_tracing`,
    and no tensor on the ``meta`` device (shapes only)."""
    if is_tracing(*xs):
        return False
    return not any(
        isinstance(x, torch.Tensor) and x.device.type == "meta" for x in tree.leaves(list(xs))
    )


def _where(mask: torch.Tensor) -> str:
    """``"[i, j]"``: the index of the first True entry of ``mask`` (``""`` for 0-d)."""
    idx = mask.nonzero()[0].tolist() if mask.ndim else []
    return f"[{', '.join(map(str, idx))}]" if idx else ""


def validate_action(
    space: Space,
    action: Any,
    who: str,
    *,
    batch_shape: tuple[int, ...] | None = None,
    values: bool = True,
    nan: bool = False,
    bounds: bool = False,
) -> None:
    """Check ``action`` against ``space``; ``TypeError``/``ValueError`` naming ``who``.

    Structure, always: ``action`` is a tensor, of integer dtype for a ``Discrete`` space
    (bool is not an integer here) or floating dtype for a ``Box``, and of shape
    ``batch_shape + space.shape`` (``batch_shape=None``: any leading batch dims).  These
    read no values: they run inside ``vmap`` (the per-member shape) and while
    ``torch.compile`` traces.

    Values, only with ``values=True`` and where :func:`values_readable`: a ``Discrete``
    range; no NaN (``nan=True``); within a ``Box``'s bounds (``bounds=True``).

    Example::

        >>> import torch
        >>> from funrl.envs.spaces import Discrete
        >>> validate_action(Discrete(2), torch.tensor(1), "MyEnv", batch_shape=())
        >>> validate_action(Discrete(2), torch.tensor([1]), "MyEnv", batch_shape=())
        Traceback (most recent call last):
        ...
        ValueError: MyEnv: action has shape (1,), expected () (a 0-d action for one env; vmap or VecEnv for a batch)
    """
    _check_structure(space, action, who, batch_shape)
    if values and values_readable(action):
        _check_values(space, action, who, nan, bounds)


def _check_structure(
    space: Space, action: Any, who: str, batch_shape: tuple[int, ...] | None
) -> None:
    """Type, dtype kind and shape of ``action`` (no values read)."""
    discrete = isinstance(space, Discrete)
    kind = "an integer" if discrete else "a floating"
    if not isinstance(action, torch.Tensor):
        raise TypeError(
            f"{who}: action must be {kind} tensor for {space}, got {type(action).__name__}"
        )
    dtype = action.dtype
    integer = not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
    if not (integer if discrete else dtype.is_floating_point):
        raise TypeError(f"{who}: action must be {kind} tensor for {space}, got dtype {dtype}")
    got, shape = tuple(action.shape), tuple(space.shape)
    if batch_shape is None:
        if got[len(got) - len(shape) :] != shape or len(got) < len(shape):
            raise ValueError(
                f"{who}: action has shape {got}, expected (*batch, {', '.join(map(str, shape))}): "
                f"ending in the action space's shape {shape}"
            )
    elif got != tuple(batch_shape) + shape:
        hint = ""
        if not batch_shape:
            one = "a 0-d action" if not shape else f"shape {list(shape)}"
            hint = f" ({one} for one env; vmap or VecEnv for a batch)"
        raise ValueError(
            f"{who}: action has shape {got}, expected {tuple(batch_shape) + shape}{hint}"
        )


def _check_values(space: Space, action: torch.Tensor, who: str, nan: bool, bounds: bool) -> None:
    """``Discrete`` range; ``Box``: NaN (``nan``) and bounds (``bounds``).  Reads values."""
    if isinstance(space, Discrete):
        bad = ~space.contains(action)
    else:
        if nan and bool(torch.isnan(action).any()):
            isnan = torch.isnan(action)
            raise ValueError(
                f"{who}: action{_where(isnan)} is NaN ({int(isnan.sum())} of {action.numel()} "
                f"entries NaN; expected values in {space})"
            )
        if not bounds:
            return
        bad = (action < space.low.to(action.device)) | (action > space.high.to(action.device))
    if bool(bad.any()):
        first = action[bad][0].item()
        raise ValueError(
            f"{who}: action{_where(bad)} = {first} is outside the action space ({int(bad.sum())} "
            f"of {action.numel()} entries outside {space})"
        )


class Environment:
    """Base class of pure torch environments (see the module docstring).

    Subclasses implement the ``*_env`` methods for a single, unbatched environment; the
    ``info`` dict they return must have the same keys and shapes on every call.
    """

    name: str = "Environment"
    #: Set True where ``step_env`` also runs on a batch as it stands: keys ``[n, 2]``,
    #: every state leaf and the action with a leading ``n``, unbatched ``params``, giving
    #: ``vmap(step_env, in_dims=(0, 0, 0, None))``'s outputs bit for bit (elementwise
    #: ops, ``stack(..., dim=-1)``, ``x[..., i]``, keyed draws with the given key).  An
    #: eager ``VecEnv`` then steps its members in one call instead of through ``vmap``,
    #: whose eager cost is ~5x a classic-control step (``tests/envs/test_batched_step.py``
    #: checks every env that sets it).
    step_env_batched: bool = False

    # ---- to implement ---------------------------------------------------------------
    def default_params(self) -> Any:
        """The default ``params`` pytree (tensors)."""
        raise NotImplementedError

    def reset_env(self, key: torch.Tensor, params: Any) -> tuple[torch.Tensor, Any]:
        """Start an episode: ``(obs, state)``."""
        raise NotImplementedError

    def step_env(
        self, key: torch.Tensor, state: Any, action: torch.Tensor, params: Any
    ) -> StepResult:
        """One transition without auto-reset."""
        raise NotImplementedError

    def observation_space(self, params: Any) -> Space:
        raise NotImplementedError

    def action_space(self, params: Any) -> Space:
        raise NotImplementedError

    # ---- provided -------------------------------------------------------------------
    def reset(self, key: torch.Tensor, params: Any = None) -> tuple[torch.Tensor, Any]:
        """``(obs, state)`` of a new episode; ``params=None`` uses the defaults."""
        R.check_key(key)
        if not torch.compiler.is_compiling():
            self.static_action_space()  # build it now, before any step is traced
        return self.reset_env(key, self.default_params() if params is None else params)

    def step(
        self, key: torch.Tensor, state: Any, action: torch.Tensor, params: Any = None
    ) -> StepResult:
        """One transition with auto-reset; see the module docstring for the outputs."""
        R.check_key(key)
        self._check_step_action(action)
        params = self.default_params() if params is None else params
        # split(key) without the stack: where step_env ignores its key (as every classic
        # control env does), the hash of key_step is dead code under torch.compile.
        key_step, key_reset = R._split_keys(key, 2)
        obs_st, state_st, reward, terminated, truncated, info = self.step_env(
            key_step, state, action, params
        )
        obs_re, state_re = self.reset_env(key_reset, params)
        done = terminated | truncated
        state = tree.where(done, state_re, state_st)
        obs = tree.where(done, obs_re, obs_st)
        info = dict(info)
        info["final_observation"] = obs_st
        return obs, state, reward, terminated, truncated, info

    @property
    def num_actions(self) -> int:
        """Number of discrete actions (``Discrete`` action spaces only)."""
        space = self.action_space(self.default_params())
        if not isinstance(space, Discrete):
            raise TypeError(f"{self.name} has a continuous action space {space}")
        return space.n

    def check_action(self, action: Any, params: Any = None) -> None:
        """Validation of one action (or a batch) against the action space, values included.

        Raises ``TypeError``/``ValueError`` naming what was wrong (see
        :func:`validate_action`).  ``action`` may be any array-like; the ``Discrete`` range is
        checked only where values are readable (eagerly), so call it at a host boundary.
        """
        space = self.action_space(self.default_params() if params is None else params)
        validate_action(space, torch.as_tensor(action), self.name)

    # ``action_space(default_params())`` once built (False: the env has none); see below.
    _static_action_space: Space | bool | None = None

    def static_action_space(self) -> Space | None:
        """``action_space(default_params())``, built once and kept: what ``step`` checks.

        Built eagerly, by the first call that is not traced by ``torch.compile``: this one,
        ``reset``, ``step``, ``make`` and building a ``VecEnv`` or a wrapper around the env
        all call it.  Never built while tracing, as that would change the env under the
        compiled graph's guards (a recompile later); a step traced before then goes
        unchecked.  ``None`` when ``action_space`` raises ``NotImplementedError``.
        """
        space = self._static_action_space
        if space is None and not torch.compiler.is_compiling():
            try:
                space = self.action_space(self.default_params())
            except NotImplementedError:
                space = False
            self._static_action_space = space
        return space if isinstance(space, (Discrete, Box)) else None

    def _check_step_action(self, action: Any) -> None:
        """The structural action check of ``step`` (no values read; see the module docstring)."""
        space = self.static_action_space()
        if space is not None:
            validate_action(space, action, f"{self.name}.step", batch_shape=(), values=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
