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

__all__ = ["CollectorState", "Transition", "init", "make_step", "rollout"]

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


def make_step(
    env: Environment, policy: Policy
) -> Callable[[CollectorState, Any, Any], tuple[CollectorState, Transition]]:
    """A pure collector step ``step(carry, policy_params, env_params) -> (carry, transition)``.

    ``policy(policy_params, obs, key) -> (action, extras)`` acts on the (batched) ``obs``.
    """

    def step(
        carry: CollectorState, policy_params: Any, env_params: Any
    ) -> tuple[CollectorState, Transition]:
        keys = R.split(carry.key, 3)
        action, extras = policy(policy_params, carry.obs, keys[0])
        obs, env_state, reward, terminated, truncated, info = env.step(
            keys[1], carry.env_state, action, env_params
        )
        info = dict(info)
        next_obs = info.pop("final_observation")
        transition = Transition(
            carry.obs, action, reward, terminated, truncated, next_obs, extras, info
        )
        return CollectorState(env_state, obs, keys[2]), transition

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
