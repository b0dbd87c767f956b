"""Every algorithm resumes bit for bit (eager): ``k`` updates, a checkpoint, ``--resume``
to ``n`` equals ``n`` updates straight (state and metric rows), for the golden cases'
configs (PPO, A2C, DQN with its extensions, SAC continuous and discrete, TD3, DDPG)."""

from __future__ import annotations

import importlib
import json

import pytest

import funrl
from funrl import tree

from .test_golden import CASES


def _rows(history):
    """The rows as JSON text (NaN equals NaN), without wall-clock and evaluation columns
    (a shorter run evaluates at its own last update)."""
    skip = ("update_s", "time_s", "eval_return")
    return [json.dumps({k: v for k, v in r.items() if k not in skip}) for r in history]


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_equals_straight(case, tmp_path):
    mod_name, fields, hp_over, n = CASES[case]
    mod = importlib.import_module(f"funrl.algos.{mod_name}")
    algo = mod.make(mod.Config(**fields))
    hp = mod.HParams.create(**hp_over)
    key = funrl.random.key(7)
    kw = dict(compile=False, progress=False, eval_episodes=1, eval_every=2)
    straight = funrl.train(algo, key, hp, num_updates=n, **kw)
    ckpt = tmp_path / "c.pt"
    first = funrl.train(algo, key, hp, num_updates=n // 2, checkpoint_path=ckpt, **kw)
    assert first.updates == n // 2
    resumed = funrl.train(algo, key, hp, num_updates=n, resume=ckpt, **kw)
    assert resumed.updates == n
    assert tree.all_equal(resumed.state, straight.state)
    assert _rows(first.history) + _rows(resumed.history) == _rows(straight.history)
    assert resumed.eval_return == straight.eval_return
    evals = [r.get("eval_return") for r in resumed.history]
    assert json.dumps(evals) == json.dumps(
        [r.get("eval_return") for r in straight.history[n // 2 :]]
    )
