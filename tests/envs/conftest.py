"""Helpers shared by the env tests (fixtures: no imports between test modules)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
import torch

import funrl.random as R
from funrl import tree


def _updates_finitely(algo: str, env: str, **config: Any) -> None:
    """``algo`` (PPO or DQN) builds its default networks for ``env``, takes three updates
    and every loss and parameter stays finite."""
    mod = importlib.import_module(f"funrl.algos.{algo}")
    small = {"num_steps": 8} if algo == "ppo" else {"learning_starts": 8, "batch_size": 8}
    a = mod.make(mod.Config(env=env, num_envs=config.pop("num_envs", 4), **small, **config))
    hp = mod.HParams.create()
    state = a.init(R.key(0), hp)
    for _ in range(3):
        state, metrics = a.update(state, hp)
    losses = {k: v for k, v in metrics.items() if "loss" in k}  # no episode ends this soon
    assert losses and all(bool(torch.isfinite(v).all()) for v in losses.values()), metrics
    assert all(bool(torch.isfinite(x).all()) for x in tree.leaves(state.params))


@pytest.fixture
def updates_finitely() -> Callable[..., None]:
    """``updates_finitely(algo, env_id, **config_fields)``: see :func:`_updates_finitely`."""
    return _updates_finitely
