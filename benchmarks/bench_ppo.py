"""PPO/A2C learning and speed, funrl vs stable-baselines3, same machine, one run.

    python benchmarks/bench_ppo.py --task cartpole --seeds 0 1 2 3 4 [--threads 1]
    python benchmarks/bench_ppo.py --task acrobot|pendulum|a2c --seeds 0 1 2 3 4
    python benchmarks/bench_ppo.py --task cartpole --compile --sb3 \
        --rejax-python /tmp/rejaxvenv/bin/python     # + rejax (JAX) in its own venv

For each seed: wall time until the deterministic evaluation (10 episodes, at the task's
evaluation interval) first reaches the task's target, env-steps/s of training alone
(evaluation time excluded), and the final evaluation.  ``--sb3`` adds stable-baselines3
with its defaults for the same env (CartPole: PPO, 100k steps), evaluated the same way;
``--rejax-python`` adds rejax's PPO (JAX, its defaults) from a separate venv through
benchmarks/peer_rejax_ppo.py.  All evaluate every 8,192 env steps on CartPole.
Threads are set with torch.set_num_threads (default 1) and printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import time

import torch

import funrl
from funrl.algos import a2c, ppo

TASKS = {
    # name: (module, config, hparams overrides, target, eval_every)
    "cartpole": (
        ppo,
        # 64 envs x 16 steps: the same 1,024-sample batch as the default 16 x 64 with a
        # quarter of the collector calls (compiled units are call-overhead-bound here).
        ppo.Config(env="CartPole-v1", num_envs=64, num_steps=16, total_timesteps=300_000),
        {},
        475.0,
        8,
    ),
    "acrobot": (
        ppo,
        ppo.Config(
            env="Acrobot-v1",
            num_envs=16,
            num_steps=64,
            total_timesteps=300_000,
            normalize_obs=True,
        ),
        {"ent_coef": 0.0},
        -100.0,
        10,
    ),
    "pendulum": (
        ppo,
        ppo.Config(
            env="Pendulum-v1",
            num_envs=16,
            num_steps=128,
            total_timesteps=1_000_000,
            num_minibatches=32,
            update_epochs=10,
            normalize_obs=True,
            normalize_reward=True,
        ),
        {"lr": 1e-3, "gamma": 0.95, "ent_coef": 0.0, "clip_eps": 0.2},
        -250.0,
        10,
    ),
    "a2c": (
        a2c,
        a2c.Config(env="CartPole-v1", num_envs=16, num_steps=5, total_timesteps=500_000),
        {"lr": 1e-3},
        400.0,
        100,
    ),
}


def run_funrl(task: str, seed: int, compile: bool) -> dict[str, float]:
    mod, config, overrides, target, eval_every = TASKS[task]
    algo = mod.make(config)
    hp = mod.HParams.create(**overrides)
    t0 = time.perf_counter()
    r = funrl.train(
        algo,
        funrl.random.key(seed),
        hp,
        compile=compile,
        progress=False,
        eval_every=eval_every,
        eval_episodes=10,
        target_return=target,
    )
    total = time.perf_counter() - t0
    evals = sum(1 for h in r.history if "eval_return" in h)
    eval_time = total - sum(h.get("update_s", 0.0) for h in r.history)
    steps_s = r.env_steps / max(total - eval_time - r.compile_time_s, 1e-9)
    return {
        "seed": seed,
        "eval": r.eval_return,
        "steps": r.env_steps,
        "time_to_target": total if r.reached_target_at is not None else math.nan,
        "steps_per_s": steps_s,
        "compile_s": r.compile_time_s,
        "evals": evals,
    }


def run_sb3(task: str, seed: int, total: int, eval_every_steps: int) -> dict[str, float]:
    import gymnasium as gym
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    env_id = TASKS[task][1].env
    target = TASKS[task][3]
    cls = A2C if task == "a2c" else PPO
    model = cls("MlpPolicy", env_id, seed=seed, device="cpu", verbose=0)
    eval_env = gym.make(env_id)

    class Eval(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_time = 0.0
            self.reached: float | None = None
            self.t0 = time.perf_counter()
            self.last = math.nan

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every_steps == 0:
                t = time.perf_counter()
                self.last, _ = evaluate_policy(self.model, eval_env, 10, deterministic=True)
                self.eval_time += time.perf_counter() - t
                if self.last >= target and self.reached is None:
                    self.reached = time.perf_counter() - self.t0
                    return False
            return True

    cb = Eval()
    t0 = time.perf_counter()
    model.learn(total_timesteps=total, callback=cb)
    wall = time.perf_counter() - t0
    final, _ = evaluate_policy(model, eval_env, 10, deterministic=True)
    return {
        "seed": seed,
        "eval": float(final),
        "steps": model.num_timesteps,
        "time_to_target": cb.reached if cb.reached is not None else math.nan,
        "steps_per_s": model.num_timesteps / max(wall - cb.eval_time, 1e-9),
        "compile_s": 0.0,
        "evals": 0,
    }


def run_rejax(python: str, seeds: list[int]) -> list[dict[str, float]]:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_rejax_ppo.py")
    out = subprocess.run(
        [python, script, "--seeds", *map(str, seeds), "--eval-every", "8192"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    for r in rows:
        r["time_to_target"] = math.nan if r["time_to_target"] is None else r["time_to_target"]
        r["compile_s"] = r.pop("first_chunk_s")
    return rows


def table(name: str, rows: list[dict[str, float]]) -> None:
    print(f"\n{name}")
    print(
        f"{'seed':>4} {'final eval':>10} {'env steps':>10} {'time to target s':>17} "
        f"{'steps/s':>9} {'compile s':>9}"
    )
    for r in rows:
        print(
            f"{r['seed']:>4} {r['eval']:>10.1f} {r['steps']:>10,} {r['time_to_target']:>17.1f} "
            f"{r['steps_per_s']:>9,.0f} {r['compile_s']:>9.1f}"
        )
    ttt = [r["time_to_target"] for r in rows if not math.isnan(r["time_to_target"])]
    med = statistics.median(ttt) if ttt else math.nan
    print(
        f"median time to target {med:.1f} s ({len(ttt)}/{len(rows)} reached); "
        f"median steps/s {statistics.median(r['steps_per_s'] for r in rows):,.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=sorted(TASKS), default="cartpole")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="compile funrl's units")
    ap.add_argument("--sb3", action="store_true", help="also run stable-baselines3")
    ap.add_argument("--sb3-steps", type=int, default=100_000)
    ap.add_argument(
        "--rejax-python", help="a Python with rejax installed: adds rejax PPO (CartPole only)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), task {args.task}, "
        f"target {TASKS[args.task][3]}, funrl compile={args.compile}"
    )
    rows = [run_funrl(args.task, s, args.compile) for s in args.seeds]
    table(f"funrl {TASKS[args.task][0].__name__.rsplit('.', 1)[-1]}", rows)
    if args.sb3:
        every = 8192 if args.task == "cartpole" else 10_000
        sb = [run_sb3(args.task, s, args.sb3_steps, every) for s in args.seeds]
        table("stable-baselines3 (defaults)", sb)
        f = statistics.median(r["steps_per_s"] for r in rows)
        s = statistics.median(r["steps_per_s"] for r in sb)
        print(f"\nenv-steps/s ratio funrl/SB3: {f / s:.1f}x")
    if args.rejax_python and args.task == "cartpole":
        rj = run_rejax(args.rejax_python, args.seeds)
        table("rejax PPO (defaults; JAX jit, 1 XLA thread; compile s = first chunk)", rj)
        f = statistics.median(r["steps_per_s"] for r in rows)
        print(f"env-steps/s ratio funrl/rejax: {f / rj[0]['steps_per_s']:.2f}x")


if __name__ == "__main__":
    main()
