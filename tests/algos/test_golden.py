"""Every algorithm's numbers, pinned: parameters after a few eager updates from a fixed key.

``golden_params.pt`` holds, per case, the online and target parameters and the last
update's metrics, recorded from the code before a refactor.  A refactor keeps them
bit-identical; a deliberate numeric change regenerates the file in its own commit that
says which cases changed and why::

    python tests/algos/test_golden.py            # rewrite golden_params.pt (1 thread)
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.utils._pytree as _pt

import funrl.random as R

GOLDEN = Path(__file__).with_name("golden_params.pt")

_OFF = dict(num_envs=2, batch_size=8, learning_starts=8, buffer_size=64, hidden=(16,))
# name: (algorithm module, Config fields, HParams overrides, updates)
CASES: dict[str, tuple[str, dict[str, Any], dict[str, float], int]] = {
    "ppo": ("ppo", dict(num_envs=4, num_steps=8, hidden=(16, 16)), {}, 3),
    "ppo-pendulum-normalized": (
        "ppo",
        dict(
            env="Pendulum-v1",
            num_envs=4,
            num_steps=8,
            hidden=(16,),
            normalize_obs=True,
            normalize_reward=True,
        ),
        {},
        3,
    ),
    "ppo-tanh": (
        "ppo",
        dict(env="Pendulum-v1", num_envs=4, num_steps=8, policy="tanh_gaussian"),
        {},
        3,
    ),
    "ppo-sde": (
        "ppo",
        dict(
            env="Pendulum-v1",
            num_envs=2,
            num_steps=8,
            hidden=(16,),
            use_sde=True,
            sde_sample_freq=3,
        ),
        {},
        3,
    ),
    "a2c": ("a2c", dict(num_envs=4, num_steps=5, hidden=(16, 16)), {}, 3),
    "dqn": ("dqn", dict(**_OFF, train_freq=4, target_update_interval=2), {}, 4),
    "dqn-extensions": (
        "dqn",
        dict(
            **_OFF,
            train_freq=4,
            gradient_steps=2,
            learn_steps_per_call=2,
            prioritized=True,
            n_step=3,
            double_q=True,
            dueling=True,
            target_update_interval=1,
            loss="mse",
        ),
        {"tau": 0.5},
        4,
    ),
    "sac": ("sac", dict(**_OFF), {}, 8),
    "sac-fixed-alpha": ("sac", dict(**_OFF, autotune=False, gradient_steps=2), {"alpha": 0.2}, 8),
    "sac-discrete": ("sac", dict(**_OFF, env="CartPole-v1", discrete=True), {}, 8),
    "sac-sde": ("sac", dict(**_OFF, use_sde=True, sde_sample_freq=2), {}, 8),
    "td3": ("td3", dict(**_OFF), {}, 8),
    "td3-static-delay": ("td3", dict(**_OFF, gradient_steps=2), {}, 8),
    "ddpg": ("ddpg", dict(**_OFF), {}, 8),
    "ddpg-ou": ("ddpg", dict(**_OFF, action_noise="ou"), {"exploration_noise": 0.3}, 8),
}


def _named(tree: Any) -> dict[str, torch.Tensor]:
    flat, _ = _pt.tree_flatten_with_path(tree)
    return {_pt.keystr(p): x.detach().clone() for p, x in flat}


def run_case(name: str) -> dict[str, dict[str, torch.Tensor]]:
    mod_name, cfg, hp, updates = CASES[name]
    mod = importlib.import_module(f"funrl.algos.{mod_name}")
    algo = mod.make(mod.Config(**cfg))
    hparams = algo.hparams_cls.create(**hp)
    state = algo.init(R.key(7), hparams)
    metrics: dict[str, torch.Tensor] = {}
    for _ in range(updates):
        state, metrics = algo.update(state, hparams)
    out = {"params": _named(state.params), "metrics": _named(metrics)}
    if hasattr(state, "target_params"):
        out["target_params"] = _named(state.target_params)
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return bool((a == b).all())


@pytest.mark.parametrize("name", sorted(CASES))
def test_numbers_are_unchanged(name: str) -> None:
    golden = torch.load(GOLDEN, weights_only=True)[name]
    got = run_case(name)
    for part in ("params", "target_params"):
        assert sorted(got.get(part, {})) == sorted(golden.get(part, {})), part
        bad = [k for k, v in golden.get(part, {}).items() if not _same(got[part][k], v)]
        assert not bad, f"{name}: {part} differ from the recorded ones at {bad}"
    for k, v in golden["metrics"].items():  # metrics may gain keys, never change values
        assert k in got["metrics"], f"{name}: metric {k} is gone"
        assert _same(got["metrics"][k], v), f"{name}: metric {k} {got['metrics'][k]} != {v}"


def test_golden_file_covers_every_case() -> None:
    assert sorted(torch.load(GOLDEN, weights_only=True)) == sorted(CASES)


if __name__ == "__main__":
    torch.set_num_threads(1)
    data = {name: run_case(name) for name in sorted(CASES)}
    torch.save(data, GOLDEN)
    n = sum(math.prod(t.shape) for c in data.values() for p in c.values() for t in p.values())
    print(f"wrote {GOLDEN} ({len(data)} cases, {n} numbers)", file=sys.stderr)
