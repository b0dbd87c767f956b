"""Every MinAtar game in torch trains with the image algorithms: PPO and DQN build
MinAtar's CNN for the game's ``[10, 10, channels]`` frames, update three times, and
every loss and parameter stays finite (``updates_finitely``, tests/envs/conftest.py)."""

from __future__ import annotations

import pytest

GAMES = (
    "MinAtar-Breakout-v1",
    "MinAtar-Asterix-v1",
    "MinAtar-Freeway-v1",
    "MinAtar-SpaceInvaders-v1",
    "MinAtar-Seaquest-v1",
)


@pytest.mark.parametrize("env_id", GAMES)
@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_algorithms_take_every_minatar_game(algo, env_id, updates_finitely) -> None:
    updates_finitely(algo, env_id)
