"""rejax PPO on CartPole-v1 (JAX, CPU), for bench_ppo.py --rejax-python; needs no torch.

Run with a Python that has rejax (it pins gymnax < 1, so keep it in its own venv)::

    python -m venv /tmp/rejaxvenv
    /tmp/rejaxvenv/bin/pip install rejax "gymnax<1"
    /tmp/rejaxvenv/bin/python benchmarks/peer_rejax_ppo.py --seeds 0 1 2 3 4

rejax's defaults (64 envs x 64 steps, 8 epochs x 16 minibatches, lr 3e-4).  Training
runs in jitted chunks of ``--eval-every`` env steps; after each chunk the deterministic
policy is evaluated on 10 episodes (rejax's own ``evaluate``) and the clock stops at the
first mean >= 475.  Time to target includes the jit compile of the first chunk.
Env-steps/s comes from a separate jitted run of ``--steps`` steps without evaluation
(compile excluded).  XLA is limited to one thread.  Prints one JSON line per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import jax
import jax.numpy as jnp
from rejax import PPO
from rejax.evaluate import evaluate


def time_to_target(seed: int, eval_every: int, max_steps: int, target: float) -> dict:
    def eval_callback(algo, ts, rng):
        act = algo.make_act(ts)
        _, returns = evaluate(act, rng, algo.env, algo.env_params, 10, 500)
        return returns.mean()

    algo = PPO.create(
        env="CartPole-v1",
        total_timesteps=eval_every,
        eval_freq=eval_every,
        skip_initial_evaluation=True,
    )
    algo = algo.replace(eval_callback=eval_callback)
    train = jax.jit(algo.train)
    t0 = time.perf_counter()
    ts, ev = train(jax.random.PRNGKey(seed))
    ev = float(jnp.ravel(ev)[-1])
    compile_s = time.perf_counter() - t0  # includes the first chunk's training
    steps = eval_every
    reached = time.perf_counter() - t0 if ev >= target else None
    while reached is None and steps < max_steps:
        ts, ev_arr = train(None, ts)
        ev = float(jnp.ravel(ev_arr)[-1])
        steps += eval_every
        if ev >= target:
            reached = time.perf_counter() - t0
    return {
        "seed": seed,
        "eval": ev,
        "steps": steps,
        "time_to_target": reached,
        "first_chunk_s": compile_s,
    }


def steps_per_s(seed: int, total: int) -> float:
    algo = PPO.create(
        env="CartPole-v1", total_timesteps=total, eval_freq=total, skip_initial_evaluation=True
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    train = jax.jit(algo.train)
    jax.block_until_ready(train(jax.random.PRNGKey(seed)))  # compile
    t0 = time.perf_counter()
    jax.block_until_ready(train(jax.random.PRNGKey(seed + 1000)))
    return total / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--eval-every", type=int, default=8192)
    ap.add_argument("--max-steps", type=int, default=500_000)
    ap.add_argument("--steps", type=int, default=200_000, help="for the steps/s run")
    ap.add_argument("--target", type=float, default=475.0)
    args = ap.parse_args()
    rate = steps_per_s(0, args.steps)
    for s in args.seeds:
        row = time_to_target(s, args.eval_every, args.max_steps, args.target)
        row["steps_per_s"] = rate
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
