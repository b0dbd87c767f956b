"""A user environment in torch, registered by id and trained with PPO.

``Corridor``: an agent on a line ``[0, length]`` starts at a random point and moves left
or right by one each step; reaching ``length`` ends the episode (terminated, +1), each
step costs 0.01, and ``max_steps`` truncates.  ``length`` is a tensor in ``params``, so a
batch of corridors of different lengths is one ``vmap`` (domain randomisation).

    python examples/custom_env.py [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

import funrl
from funrl import envs, tree
from funrl.algos import ppo
from funrl.testing import check_transforms


@tree.struct
class CorridorParams:
    length: torch.Tensor  # 0-d float32
    max_steps: torch.Tensor  # 0-d int64


@tree.struct
class CorridorState:
    pos: torch.Tensor  # 0-d float32
    time: torch.Tensor  # 0-d int64


class Corridor(envs.Environment):
    """Implement five methods; ``reset``/``step`` with auto-reset come from the base class."""

    name = "Corridor"

    def default_params(self) -> CorridorParams:
        return CorridorParams(torch.tensor(10.0), torch.tensor(100))

    def reset_env(self, key: torch.Tensor, params: CorridorParams) -> tuple[torch.Tensor, Any]:
        pos = torch.floor(funrl.random.uniform(key, ()) * params.length)
        state = CorridorState(pos, torch.zeros((), dtype=torch.int64))
        return self._obs(state, params), state

    def step_env(self, key: torch.Tensor, state: Any, action: torch.Tensor, params: Any) -> Any:
        move = torch.where(action == 1, 1.0, -1.0)  # no Python `if` on tensor values
        pos = torch.clamp(state.pos + move, min=0.0)
        new = CorridorState(pos, state.time + 1)
        terminated = pos >= params.length
        truncated = (new.time >= params.max_steps) & ~terminated
        reward = torch.where(terminated, 1.0, -0.01)
        return self._obs(new, params), new, reward, terminated, truncated, {}

    def _obs(self, state: CorridorState, params: CorridorParams) -> torch.Tensor:
        return torch.stack(
            [state.pos / params.length, state.time.to(torch.float32) / params.max_steps]
        )

    def observation_space(self, params: Any) -> envs.Box:
        return envs.Box(0.0, 1.0, (2,))

    def action_space(self, params: Any) -> envs.Discrete:
        return envs.Discrete(2)


funrl.register("examples/Corridor-v0", Corridor, overwrite=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)

    env, params = funrl.make("examples/Corridor-v0")
    # The contract: reset/step are pure, so they agree eagerly and under vmap (and compile,
    # which the full run also checks).
    keys = funrl.random.split(funrl.random.key(args.seed), 4)
    _, states = torch.func.vmap(env.reset, in_dims=(0, None), randomness="error")(keys, params)
    actions = torch.tensor([0, 1, 1, 0])
    check_transforms(
        lambda k, s, a: env.step(k, s, a, params), keys, states, actions, compile=not args.quick
    )

    # Domain randomisation: four corridor lengths, one vmap.
    lengths = params.replace(
        length=torch.tensor([5.0, 10.0, 20.0, 40.0]), max_steps=params.max_steps.expand(4)
    )
    obs, _ = torch.func.vmap(env.reset, randomness="error")(keys, lengths)
    print(f"starting positions / length in 4 corridors: {obs[:, 0].tolist()}")

    # Train PPO on it by id, like any built-in env.
    steps = 4 * 32 * 2 if args.quick else 100_000
    cfg = ppo.Config(
        env="examples/Corridor-v0",
        num_envs=4 if args.quick else 16,
        num_steps=32,
        hidden=(16, 16),
        total_timesteps=steps,
    )
    algo = ppo.make(cfg)
    result = funrl.train(
        algo,
        funrl.random.key(args.seed),
        ppo.HParams.create(),
        compile=False,
        progress=not args.quick,
        eval_episodes=5,
    )
    print(
        f"PPO on Corridor: eval return {result.eval_return:.2f} "
        "(optimal: 1 - 0.01 per step before the end, 0.91 to 1.0)"
    )


if __name__ == "__main__":
    main()
