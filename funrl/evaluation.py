"""The one evaluator: returns of a policy's episodes, run in parallel, for one agent or
a population (vmapped over members).

Every training mode evaluates with it (``funrl.train``, ``funrl.population.train`` and
both ``funrl.distributed`` loops).  A member's evaluation is the same function of its
own state and key as a single agent's, so it does not depend on the population size or
on how members are sharded over processes.

Example::

    >>> import funrl
    >>> from funrl.algos import ppo
    >>> from funrl.evaluation import make_evaluate
    >>> algo = ppo.make(ppo.Config(num_envs=2, num_steps=8, hidden=(8,)))
    >>> state = algo.init(funrl.random.key(0), ppo.HParams.create())
    >>> evaluate_fn = make_evaluate(algo, num_episodes=3)
    >>> evaluate_fn(state, funrl.random.key(1)).shape
    torch.Size([3])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from funrl import random as R
from funrl import tree
from funrl.algos.common import Algo
from funrl.compiling import compile as funrl_compile
from funrl.envs.wrappers import EpisodeStatistics

__all__ = ["EAGER_EVALUATIONS", "evaluate", "make_evaluate"]


#: Evaluations a training loop runs eagerly before compiling the evaluation step: most
#: runs evaluate once or twice (at the end), which is faster than compiling.
EAGER_EVALUATIONS = 2


def make_evaluate(
    algo: Algo,
    num_episodes: int = 10,
    max_steps: int = 10_000,
    deterministic: bool = True,
    compile: bool = False,
    members: bool = False,
    compile_after: int = 0,
) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    """``evaluate_fn(state, key) -> returns [num_episodes]`` for the policy in ``state``.

    Args:
      algo: the algorithm (its ``act``, ``act_params`` and evaluation env are used).
      num_episodes: episodes per evaluation, one env each, run in parallel until every
        one has finished once or ``max_steps`` have passed (unfinished ones return NaN).
      max_steps: the step limit.
      deterministic: act with the policy's mode (default) or sample it.
      compile: compile one evaluation step (act + env step + episode bookkeeping) on the
        first call and reuse it: a 500-step evaluation gets ~10x cheaper.  Ignored for a
        host env (``"gym:<id>"``), whose evaluation runs ``num_episodes`` Gymnasium envs
        (a new vector env) eagerly.
      members: evaluate a population: ``state`` has a leading member dim ``P`` on every
        leaf and ``key`` is ``[P, 2]``; returns ``[P, num_episodes]``.  Member ``i`` gets
        exactly what ``make_evaluate(algo, ...)(state_i, key[i])`` gives.
      compile_after: with ``compile``, run the first this many evaluations eagerly and
        compile from the next one on.  Compiling the step costs seconds (cold: ~20 s on 2
        CPU cores) and an eager 10 x 500-step CartPole evaluation ~1 s, so a run that
        evaluates once or twice is faster without compiling it; training loops pass 2.
        Eager and compiled steps agree to float rounding (an exact tie between two
        actions could resolve differently).

    Build it once and call it at every evaluation (a compiled step is reused).
    """
    if compile_after < 0:
        raise ValueError(f"compile_after must be >= 0, got {compile_after}")
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    stack = algo.env_stack
    if stack.host and members:
        raise ValueError(
            "make_evaluate: a host env cannot be vmapped over population members; evaluate "
            "each member on its own"
        )
    env = EpisodeStatistics(stack.eval_vector(num_episodes))
    env_params = stack.env_params
    # A host env steps outside torch: its evaluation step runs eagerly.
    compile = compile and not stack.host

    def reset(key: torch.Tensor) -> tuple[Any, ...]:
        k_reset, key = R.split(key)
        obs, env_state = env.reset(k_reset, env_params)
        returns = torch.full((num_episodes,), float("nan"))
        done = torch.zeros(num_episodes, dtype=torch.bool)
        return obs, env_state, key, returns, done

    def step(params: Any, obs: torch.Tensor, env_state: Any, key: torch.Tensor,
             returns: torch.Tensor, done: torch.Tensor) -> tuple[Any, ...]:  # fmt: skip
        k_act, k_step, key = R.split(key, 3)
        action = algo.act(params, obs, k_act, deterministic)
        obs, env_state, _, _, _, info = env.step(k_step, env_state, action, env_params)
        finished = info["episode_done"] & ~done
        returns = torch.where(finished, info["episode_return"].to(returns.dtype), returns)
        return obs, env_state, key, returns, done | finished

    act_params = algo.act_params
    if members:
        reset = torch.func.vmap(reset, randomness="error")
        step = torch.func.vmap(step, randomness="error")
        act_params = torch.func.vmap(act_params)
    compiled = funrl_compile(_contiguous_outputs(step), name="evaluation step") if compile else step
    calls = 0

    def evaluate_fn(state: Any, key: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        step_fn = compiled if calls >= compile_after else step
        calls += 1
        params = act_params(state)
        # Contiguous leaves: the compiled step returns contiguous ones (no second compile).
        obs, env_state, key, returns, done = tree.contiguous(reset(key))
        for _ in range(max_steps):
            obs, env_state, key, returns, done = step_fn(params, obs, env_state, key, returns, done)
            if bool(done.all()):
                break
        return returns

    return evaluate_fn


def _contiguous_outputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` returning contiguous tensors: a compiled step's outputs are its next inputs,
    and a strided one (a key sliced from ``split``, vmapped or not) would recompile it."""

    def run(*args: Any) -> Any:
        return tree.contiguous(fn(*args))

    return run


def evaluate(
    algo: Algo,
    state: Any,
    key: torch.Tensor,
    num_episodes: int = 10,
    max_steps: int = 10_000,
    deterministic: bool = True,
) -> torch.Tensor:
    """Returns ``[num_episodes]`` of episodes (run in parallel) of the policy in ``state``.

    Uses the algorithm's evaluation env (no reward scaling; observations normalised with
    the training statistics inside ``act``) and the deterministic policy by default.
    Eager; for repeated evaluations build a (compiled) :func:`make_evaluate` once.
    """
    return make_evaluate(algo, num_episodes, max_steps, deterministic)(state, key)
