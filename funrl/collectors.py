"""The on-policy collector: roll a policy through an environment for a fixed number of steps.

One collector step is a pure function (env step + policy), so it can be compiled or
vmapped as a unit; the loop over steps runs on the host (never unroll long loops into
one compiled graph: see docs/contracts.md).  Usable on its own::

    >>> import torch, funrl
    >>> from funrl import collectors, envs
    >>> env, env_params = funrl.make("CartPole-v1")
    >>> venv = envs.VecEnv(env, 4)
    >>> def policy(params, obs, key):           # uniform random actions
    ...     return funrl.random.randint(key, 0, 2, obs.shape[:1]), {}
    >>> carry = collectors.init(venv, env_params, funrl.random.key(0))
    >>> step = collectors.make_step(venv, policy)
    >>> carry, traj = collectors.rollout(step, carry, None, env_params, num_steps=8)
    >>> traj.reward.shape
    torch.Size([8, 4])

The :class:`Transition` fields, for step ``t`` of a rollout (leading dims ``[T, *batch]``
after :func:`rollout`): ``obs`` (the observation acted on), ``action``, ``reward``,
``terminated``, ``truncated``, ``next_obs`` (the TRUE next observation: the pre-reset
final observation where the episode ended, so a truncated step can bootstrap from it),
``extras`` (whatever the policy returned: log-probs, values, ...) and ``info`` (the env's
info, minus ``final_observation``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment

__all__ = [
    "CollectorState",
    "Transition",
    "act_step",
    "env_step",
    "init",
    "is_host",
    "make_step",
    "make_unit_step",
    "rollout",
]

Policy = Callable[[Any, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class CollectorState(NamedTuple):
    """What the collector carries between steps: env state, current obs and a key."""

    env_state: Any
    obs: torch.Tensor
    key: torch.Tensor


class Transition(NamedTuple):
    """One environment step (see the module docstring for each field)."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    next_obs: torch.Tensor
    extras: dict[str, torch.Tensor]
    info: dict[str, torch.Tensor]


def init(env: Environment, env_params: Any, key: torch.Tensor) -> CollectorState:
    """Reset ``env`` and start a collector state (the key is split, never reused)."""
    k_reset, k_carry = R.split(key)
    obs, env_state = env.reset(k_reset, env_params)
    # Contiguous copies: reset's leaves can be strided views (slices of one draw), and a
    # compiled step would otherwise be compiled a second time for the contiguous leaves
    # it returns.
    return tree.contiguous(CollectorState(env_state, obs, k_carry))


def act_step(
    policy: Policy,
) -> Callable[[CollectorState, Any], tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]]:
    """The policy half of a collector step: ``act(carry, policy_params) -> (action, extras,
    k_env, k_next)`` (pure: compile it).

    ``carry.obs`` is ``[*batch, *obs_shape]``; ``action`` ``[*batch, *action_shape]`` and
    ``extras`` (``[*batch, ...]`` leaves) are what ``policy`` returns for it; ``k_env`` and
    ``k_next`` (``[2]`` each) are the keys the env half steps with and carries on.
    """

    def act(
        carry: CollectorState, policy_params: Any
    ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
        keys = R.split(carry.key, 3)
        action, extras = policy(policy_params, carry.obs, keys[0])
        return action, extras, keys[1], keys[2]

    return act


def env_step(
    env: Environment,
) -> Callable[..., tuple[CollectorState, Transition]]:
    """The env half of a collector step: ``step(carry, action, extras, k_env, k_next,
    env_params) -> (carry, transition)`` with :func:`act_step`'s outputs; the transition's
    fields are ``[*batch, ...]`` (see :class:`Transition`).  For a pure env it is pure; for
    a host env (:func:`is_host`) it steps the simulator and must run eagerly."""

    def step(
        carry: CollectorState,
        action: torch.Tensor,
        extras: Any,
        k_env: torch.Tensor,
        k_next: torch.Tensor,
        env_params: Any,
    ) -> tuple[CollectorState, Transition]:
        obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, carry.env_state, action, env_params
        )
        info = dict(info)
        next_obs = info.pop("final_observation")
        transition = Transition(
            carry.obs, action, reward, terminated, truncated, next_obs, extras, info
        )
        return CollectorState(env_state, obs, k_next), transition

    return step


def is_host(env: Environment) -> bool:
    """Whether ``env`` (or the env it wraps) is a host env (a Gymnasium bridge): its
    step runs Python and C code outside torch, so it is not vmappable or compilable."""
    return bool(getattr(env, "is_host_bridge", False))


def make_step(
    env: Environment, policy: Policy
) -> Callable[[CollectorState, Any, Any], tuple[CollectorState, Transition]]:
    """A pure collector step ``step(carry, policy_params, env_params) -> (carry, transition)``.

    ``policy(policy_params, obs, key) -> (action, extras)`` acts on the (batched) ``obs``.
    It is :func:`act_step` followed by :func:`env_step`.
    """
    return _then(act_step(policy), env_step(env))


def make_unit_step(
    env: Environment, policy: Policy, units: Callable[[Callable[..., Any], str], Any]
) -> Callable[[CollectorState, Any, Any], tuple[CollectorState, Transition]]:
    """:func:`make_step` as an algorithm's compute unit(s): ``units(step, "collect")`` for a
    pure env; for a host env (:func:`is_host`) only the policy is a unit
    (``units(act, "act")``: compiled when the algorithm is) and the env steps eagerly.
    Both give the same numbers for the same env."""
    if not is_host(env):
        return units(make_step(env, policy), "collect")
    return _then(units(act_step(policy), "act"), env_step(env))


def _then(
    act: Callable[..., tuple[Any, ...]], step_env: Callable[..., tuple[CollectorState, Transition]]
) -> Callable[[CollectorState, Any, Any], tuple[CollectorState, Transition]]:
    """The collector step ``step_env(carry, *act(carry, policy_params), env_params)``."""

    def step(
        carry: CollectorState, policy_params: Any, env_params: Any
    ) -> tuple[CollectorState, Transition]:
        return step_env(carry, *act(carry, policy_params), env_params)

    return step


def rollout(
    step: Callable[[CollectorState, Any, Any], tuple[CollectorState, Transition]],
    carry: CollectorState,
    policy_params: Any,
    env_params: Any,
    num_steps: int,
    stack: Callable[[list[Transition]], Transition] | None = None,
) -> tuple[CollectorState, Transition]:
    """Run ``step`` ``num_steps`` times; return the final carry and the stacked trajectory.

    ``step`` may be compiled or vmapped; ``stack`` (default: :func:`funrl.tree.stack` along
    dim 0) may be replaced, e.g. by a vmapped stack for a population, where time must go
    after the member dim.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    transitions = []
    for _ in range(num_steps):
        carry, tr = step(carry, policy_params, env_params)
        transitions.append(tr)
    return carry, (stack or tree.stack)(transitions)
