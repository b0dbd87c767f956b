"""Every algorithm trained compiled (the default of ``funrl.train`` and the CLI), compared
by value with the same run trained eagerly; a compiled population likewise.

Compiled units run inductor's kernels (other loop orders, fused ops, vectorised
transcendental functions), so compiled and eager runs agree up to float rounding, not bit
for bit.  :data:`TOL` is the documented tolerance for a few updates; what was measured is
written next to each case (max ``|compiled - eager|`` over every leaf of the final
TrainState: parameters, optimizer state, replay buffer, env state, running statistics).
Keys, counters and other integer leaves must be equal, and so must discrete actions, hence
CartPole's evaluation returns (episode lengths).

Compiling is what costs here (first run on an empty inductor cache: about 20-100 s per
algorithm on one core).  The PPO case is ``tests/test_train.py``'s compiled config, so
inductor's on-disk cache serves its graphs to whichever file runs second.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
import torch

import funrl
import funrl.random as R
from funrl import population as pop
from funrl import tree
from funrl.algos import a2c, ddpg, dqn, ppo, sac, td3
from funrl.testing import assert_trees_close

#: Compiled against eager after a few updates, elementwise (``funrl.testing.
#: assert_trees_close``: ``|c - e| <= atol + rtol * |e|``); metrics and evaluation returns
#: within the same rtol/atol.  Measured (torch 2.13, this CPU): the worst element exceeds
#: its ``rtol * |e|`` by 1.2e-6 (SAC's running episode return, |e| ~ 1e3: 9.2e-5
#: absolute); worst metric 3.2e-5 relative (A2C).
TOL = dict(rtol=1e-4, atol=1e-5)

_OFF = dict(num_envs=2, batch_size=8, learning_starts=8, buffer_size=64, hidden=(16,))
# name: (module, Config, updates).  Measured max |compiled - eager| over the final
# TrainState (and where) in the comments.
CASES: dict[str, tuple[Any, Any, int]] = {
    # tests/test_train.py's TINY (its compiled test compiles the same graphs).  1.6e-6
    # (CartPole's angular velocity; parameters 6e-8)
    "ppo": (ppo, ppo.Config(env="CartPole-v1", num_envs=4, num_steps=16,
                            total_timesteps=4 * 16 * 3), 3),
    # 7.7e-6 (RMSprop's normalised gradients, magnitude ~10)
    "a2c": (a2c, a2c.Config(env="CartPole-v1", num_envs=4, num_steps=16), 3),
    # 3.6e-7 (observations in the replay buffer); learning from update 2 on
    "dqn": (dqn, dqn.Config(**_OFF, train_freq=4), 6),
    # tests/algos/test_learning_more.py's SAC (its population compiles the vmapped units of
    # this config; tests/test_population_invariance.py compares the two): 64 updates fill
    # the buffer, the last 2 learn.  9.2e-5 (the running episode return, ~1e3)
    "sac": (sac, sac.Config(env="Pendulum-v1", num_envs=8, gradient_steps=4, batch_size=128,
                            buffer_size=12_000, learning_starts=512, total_timesteps=12_000,
                            hidden=(64, 64)), 66),
    "td3": (td3, td3.Config(**_OFF), 8),  # 2.4e-7 (Adam's first moments)
    "ddpg": (ddpg, ddpg.Config(**_OFF), 8),  # 1.2e-7 (Adam's first moments)
}  # fmt: skip


def _train(mod: Any, config: Any, updates: int, compile: bool) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # off-policy: "nothing would learn" for tiny runs
        algo = mod.make(config)
    hp = algo.hparams_cls.create()
    # three or four evaluations: the loops compile the evaluation step from the third on
    every = max(1, updates // 3)
    return funrl.train(algo, R.key(0), hp, compile=compile, num_updates=updates,
                       eval_episodes=2, eval_every=every, progress=False)  # fmt: skip


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_training_matches_eager(name):
    mod, config, updates = CASES[name]
    compiled = _train(mod, config, updates, compile=True)
    eager = _train(mod, config, updates, compile=False)
    assert compiled.updates == eager.updates == updates
    assert_trees_close(compiled.state, eager.state, **TOL, what=f"{name} compiled")
    # every update's metrics and every evaluation, not only the end
    for row_c, row_e in zip(compiled.history, eager.history, strict=True):
        keys = set(row_e) - {"update_s", "time_s"}
        assert set(row_c) - {"update_s", "time_s"} == keys
        bad = {k: (row_c[k], row_e[k]) for k in keys if not _close(row_c[k], row_e[k])}
        assert not bad, f"{name} update {row_e['update']}: {bad}"
    if config.env == "CartPole-v1":
        evals = [r["eval_return"] for r in compiled.history if "eval_return" in r]
        assert len(evals) >= 3 and evals == [
            r["eval_return"] for r in eager.history if "eval_return" in r
        ]


def test_compiled_population_matches_eager_population():
    # every member, every update's metrics and evaluation; then each member against the
    # same agent trained alone, compiled (the graphs of the "ppo" case above).  Measured:
    # 1.2e-7 against the eager population, 6e-8 against the members trained alone (eager,
    # members and lone agents are bit-identical on this config)
    config = CASES["ppo"][1]
    algo = ppo.make(config)
    keys = pop.member_keys(R.key(3), 2)
    hps = pop.hparams(ppo.HParams, 2, lr=[1e-3, 3e-3])
    kw = dict(progress=False, eval_episodes=2, eval_every=1)  # the third evaluation compiled
    compiled = pop.train(algo, keys, hps, compile=True, **kw)
    eager = pop.train(algo, keys, hps, compile=False, **kw)
    assert_trees_close(compiled.states, eager.states, **TOL, what="compiled population")
    for row_c, row_e in zip(compiled.history, eager.history, strict=True):
        assert row_c["member"] == row_e["member"]
        keys_ = set(row_e) - {"update_s", "time_s"}
        bad = {k: (row_c[k], row_e[k]) for k in keys_ if not _close(row_c[k], row_e[k])}
        assert not bad, f"member {row_e['member']} update {row_e['update']}: {bad}"
    assert torch.equal(compiled.eval_returns, eager.eval_returns)
    for i in range(2):
        alone = funrl.train(algo, keys[i], tree.index(hps, i), compile=True, **kw)
        assert_trees_close(tree.index(compiled.states, i), alone.state, **TOL, what=f"member {i}")
