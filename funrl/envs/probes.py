"""Probe environments: tiny envs whose optimal values and policies are known exactly.

Run an algorithm on them to localise a bug (after Andy Jones, "Debugging RL, Without the
Agonizing Pain"): each probe isolates one thing a learner must get right.

==========================  =========================  ==================================
probe                       isolates                   known answer
==========================  =========================  ==================================
``ConstantReward``          value loss / optimiser     ``V = 1``
``ObservationReward``       using the observation      ``V(obs) = obs``
``TwoStepDiscount``         discounting, bootstrapping ``V(obs=0) = gamma``, ``V(obs=1) = 1``
``ActionReward``            policy gradient / argmax   ``a* = [obs > 0]``, ``V* = 1``
``ContinuousActionReward``  continuous actions         ``a* = obs / 2``, ``V* = 0``
==========================  =========================  ==================================

All follow the :class:`funrl.envs.base.Environment` contract (auto-reset included), have a
float32 observation of shape ``[1]``, never truncate, and end every episode with
``terminated = True`` (so a correct learner does *not* bootstrap past it).  Their
``params`` is an empty :class:`ProbeParams`.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.probes import ActionReward
    >>> env = ActionReward()
    >>> obs, state = env.reset(R.key(0))
    >>> best = (obs[0] > 0).long()                      # the optimal action
    >>> _, _, reward, terminated, _, _ = env.step(R.key(1), state, best)
    >>> float(reward), bool(terminated)
    (1.0, True)
"""

from __future__ import annotations

import torch

from funrl import random as R
from funrl import tree
from funrl.envs.base import Environment, StepResult
from funrl.envs.spaces import Box, Discrete

__all__ = [
    "ActionReward",
    "ConstantReward",
    "ContinuousActionReward",
    "ObservationReward",
    "ProbeParams",
    "ProbeState",
    "TwoStepDiscount",
]


@tree.struct
class ProbeParams:
    """Probes have no parameters (an empty pytree, so ``vmap``/``compile`` see no leaves)."""


@tree.struct
class ProbeState:
    """``value``: the episode's observation entry (0-d float32); ``time``: steps taken (int64)."""

    value: torch.Tensor
    time: torch.Tensor


def _zero_time(key: torch.Tensor) -> torch.Tensor:
    return torch.zeros((), dtype=torch.int64, device=key.device)


def _random_sign(key: torch.Tensor) -> torch.Tensor:
    """``+1.0`` or ``-1.0`` with probability 1/2 each (0-d float32)."""
    return torch.where(R.bernoulli(key, 0.5, ()), 1.0, -1.0)


class _Probe(Environment):
    """Shared parts: empty params, ``obs = [state.value]``, one step per episode."""

    discrete = True

    def default_params(self) -> ProbeParams:
        return ProbeParams()

    def _draw_value(self, key: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=torch.float32, device=key.device)

    def _reward(self, state: ProbeState, action: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reset_env(self, key: torch.Tensor, params: ProbeParams) -> tuple[torch.Tensor, ProbeState]:
        """``(obs [1] float32, state)``."""
        state = ProbeState(value=self._draw_value(key), time=_zero_time(key))
        return state.value.reshape(1), state

    def step_env(
        self, key: torch.Tensor, state: ProbeState, action: torch.Tensor, params: ProbeParams
    ) -> StepResult:
        """One-step episode: the reward, then ``terminated = True``."""
        reward = self._reward(state, action)
        new = ProbeState(value=state.value, time=state.time + 1)
        terminated = torch.ones((), dtype=torch.bool, device=state.time.device)
        return new.value.reshape(1), new, reward, terminated, ~terminated, {}

    def observation_space(self, params: ProbeParams) -> Box:
        return Box(-1.0, 1.0, (1,), torch.float32)

    def action_space(self, params: ProbeParams) -> Discrete | Box:
        return Discrete(1)


class ConstantReward(_Probe):
    """Observation ``[0]``, one action, reward ``+1``, one step: ``V = 1``.

    A value function that does not learn 1 has a broken loss, target or optimiser.
    """

    name = "ConstantReward"

    def _reward(self, state: ProbeState, action: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(state.value)


class ObservationReward(_Probe):
    """Observation ``[s]`` with ``s = +-1`` at random, one action, reward ``s``, one step.

    ``V(obs) = obs``: a value function that learns the mean (0) ignores its input.
    """

    name = "ObservationReward"

    def _draw_value(self, key: torch.Tensor) -> torch.Tensor:
        return _random_sign(key)

    def _reward(self, state: ProbeState, action: torch.Tensor) -> torch.Tensor:
        return state.value


class ActionReward(_Probe):
    """Observation ``[s]`` with ``s = +-1``, two actions, one step; reward ``+1`` when the
    action matches the sign (action 1 for ``s = +1``, action 0 for ``s = -1``), else ``-1``.

    Optimal policy ``a* = [obs > 0]`` with ``V* = 1``; ``Q(s, a) = +1`` if matched else
    ``-1``; a uniform policy has ``V = 0``.
    """

    name = "ActionReward"

    def _draw_value(self, key: torch.Tensor) -> torch.Tensor:
        return _random_sign(key)

    def _reward(self, state: ProbeState, action: torch.Tensor) -> torch.Tensor:
        match = action == (state.value > 0).to(action.dtype)
        return torch.where(match, 1.0, -1.0)

    def action_space(self, params: ProbeParams) -> Discrete:
        return Discrete(2)


class ContinuousActionReward(_Probe):
    """Observation ``[x]`` with ``x ~ U[-1, 1)``, action ``a`` of shape ``[1]`` in
    ``[-1, 1]``, one step, reward ``-(a - x / 2)^2``.

    Optimal action ``a* = x / 2`` (inside the bounds, reachable by a tanh-squashed policy)
    with ``V* = 0``.  The action is not clipped, so the reward keeps its gradient.
    """

    name = "ContinuousActionReward"
    discrete = False

    def _draw_value(self, key: torch.Tensor) -> torch.Tensor:
        return R.uniform(key, (), low=-1.0, high=1.0)

    def _reward(self, state: ProbeState, action: torch.Tensor) -> torch.Tensor:
        return -torch.square(action[0].to(state.value.dtype) - 0.5 * state.value)

    def action_space(self, params: ProbeParams) -> Box:
        return Box(-1.0, 1.0, (1,), torch.float32)


class TwoStepDiscount(_Probe):
    """Two steps: observation ``[0]`` then ``[1]``; reward 0 then ``+1``; one action.

    ``V(obs=0) = gamma`` and ``V(obs=1) = 1``: checks discounting and bootstrapping
    through a non-terminal transition (the first step has ``terminated = False``).
    """

    name = "TwoStepDiscount"

    def step_env(
        self, key: torch.Tensor, state: ProbeState, action: torch.Tensor, params: ProbeParams
    ) -> StepResult:
        """``t = 0 -> 1``: reward 0, obs ``[1]``; ``t = 1 -> 2``: reward 1, terminated
        (the final observation stays ``[1]``)."""
        time = state.time + 1
        terminated = time >= 2
        new = ProbeState(value=torch.clamp(time, max=1).to(state.value.dtype), time=time)
        reward = terminated.to(state.value.dtype)
        return new.value.reshape(1), new, reward, terminated, torch.zeros_like(terminated), {}

    def observation_space(self, params: ProbeParams) -> Box:
        return Box(0.0, 1.0, (1,), torch.float32)
