"""Steady-state time of one compiled update, for A/B comparisons of two checkouts.

    OMP_NUM_THREADS=1 python benchmarks/bench_update_time.py {dqn,sac,sac-sb3,sac-1m,td3,td3-1m,ppo}

Builds the benchmark configs of bench_dqn.py, bench_offpolicy_continuous.py and
bench_ppo.py (``sac-sb3``: SAC at SB3's settings; ``-1m``: a replay buffer of 1e6
transitions), compiles the units, runs past ``learning_starts``, then times 7 blocks of 30
updates and prints the median and the fastest block (ms per update).  One thread.
Compare checkouts with ``benchmarks/ab.py`` or ``PYTHONPATH=<checkout>``.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import torch

import funrl
from funrl.algos import dqn, ppo, sac, td3, units

_PENDULUM = dict(env="Pendulum-v1", num_envs=16, batch_size=256, learning_starts=1000,
                 hidden=(64, 64))  # fmt: skip
CASES: dict[str, tuple[Any, Any, dict[str, float], int]] = {
    # name: (module, config, hparams, warm-up updates)
    "dqn": (dqn, dqn.Config(num_envs=64, train_freq=4, gradient_steps=64, batch_size=32,
                             learning_starts=1000, target_update_interval=64,
                             total_timesteps=150_000, hidden=(64, 64), double_q=True, n_step=3,
                             learn_steps_per_call=8, collect_steps_per_call=4),
            dict(lr=0.0023, exploration_fraction=0.16, eps_end=0.04), 80),
    "sac": (sac, sac.Config(**_PENDULUM, gradient_steps=16, buffer_size=20_000,
                             total_timesteps=20_000), dict(actor_lr=1e-3, critic_lr=1e-3), 80),
    "sac-1m": (sac, sac.Config(**_PENDULUM, gradient_steps=16, buffer_size=1_000_000,
                                total_timesteps=1_000_000), dict(actor_lr=1e-3, critic_lr=1e-3), 80),
    "sac-sb3": (sac, sac.Config(env="Pendulum-v1", batch_size=256, learning_starts=100,
                                 buffer_size=3000, total_timesteps=3000),
                dict(actor_lr=3e-4, critic_lr=3e-4, alpha_lr=3e-4), 150),
    "td3": (td3, td3.Config(**_PENDULUM, gradient_steps=8, buffer_size=20_000,
                             total_timesteps=20_000), dict(actor_lr=1e-3, critic_lr=1e-3), 80),
    "td3-1m": (td3, td3.Config(**_PENDULUM, gradient_steps=8, buffer_size=1_000_000,
                                total_timesteps=1_000_000), dict(actor_lr=1e-3, critic_lr=1e-3), 80),
    "ppo": (ppo, ppo.Config(num_envs=64, num_steps=16, total_timesteps=300_000), {}, 20),
}  # fmt: skip


def main() -> None:
    torch.set_num_threads(1)
    name = sys.argv[1] if len(sys.argv) > 1 else "dqn"
    mod, config, hp_kw, warm = CASES[name]
    algo = mod.make(config).with_units(units.compiled)
    hp = mod.HParams.create(**hp_kw)
    state = algo.init(funrl.random.key(0), hp)
    for _ in range(warm):  # compile, then past learning_starts
        state, metrics = algo.update(state, hp)
    blocks = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(30):
            state, metrics = algo.update(state, hp)
        float(metrics["episodes"])  # wait for the last update's results
        blocks.append((time.perf_counter() - t0) / 30 * 1e3)
    print(
        f"{name} ms/update median {statistics.median(blocks):.3f} min {min(blocks):.3f}  "
        f"({algo.steps_per_update} env steps/update)"
    )


if __name__ == "__main__":
    main()
