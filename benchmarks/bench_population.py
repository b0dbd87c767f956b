"""A PPO CartPole population: vmapped vs one after another vs SB3, same machine, one run.

    python benchmarks/bench_population.py [--members 32] [--updates 20] [--threads 1]

Members differ in seed and learning rate (log-spaced 3e-4..3e-3).  Each mode runs in its
own subprocess so its peak resident memory (ru_maxrss) is its own:

* ``vmapped``: ``funrl.population.train`` (all members in one vmapped call per unit),
* ``sequential``: the same members trained one after another with ``funrl.train``,
* ``sb3``: one stable-baselines3 PPO run of the same env-steps, times the member count
  (extrapolated, and labelled so).

Throughput is total env steps over wall time (evaluation excluded).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def config(updates: int):
    from funrl.algos import ppo

    # bench_ppo.py's CartPole config: 64 envs x 16 steps = 1,024 env steps per update
    return ppo.Config(env="CartPole-v1", num_envs=64, num_steps=16, total_timesteps=1024 * updates)


def mode_vmapped(members: int, updates: int, compile: bool) -> dict[str, float]:
    import funrl
    from funrl import population as pop
    from funrl.algos import ppo

    algo = ppo.make(config(updates))
    hps = pop.hparams(ppo.HParams, members, lr=torch.logspace(-3.5, -2.5, members))
    keys = pop.member_keys(funrl.random.key(0), members)
    t0 = time.perf_counter()
    res = pop.train(algo, keys, hps, compile=compile, progress=False, eval_episodes=10)
    wall = time.perf_counter() - t0
    times = [h["update_s"] for h in res.history if h["member"] == 0]
    return {
        "wall_s": wall,
        "train_s": sum(times[1:]),  # steady state: the first update compiles/warms up
        "steps_timed": members * (updates - 1) * 1024,
        "compile_s": times[0],
        "env_steps": members * updates * 1024,
        "median_eval": float(res.eval_returns.median()),
    }


def mode_sequential(members: int, updates: int, compile: bool) -> dict[str, float]:
    import funrl
    from funrl.algos import ppo

    algo = ppo.make(config(updates))
    lrs = torch.logspace(-3.5, -2.5, members)
    keys = funrl.random.split(funrl.random.key(0), members)
    t0 = time.perf_counter()
    train_s = first_s = 0.0
    evals = []
    for i in range(members):
        r = funrl.train(
            algo,
            keys[i],
            ppo.HParams.create(lr=lrs[i]),
            compile=compile,
            progress=False,
            eval_episodes=10,
        )
        times = [h["update_s"] for h in r.history]
        train_s += sum(times[1:])  # steady state: each run's first update compiles/warms up
        first_s += times[0]
        evals.append(r.eval_return)
    return {
        "wall_s": time.perf_counter() - t0,
        "train_s": train_s,
        "steps_timed": members * (updates - 1) * 1024,
        "compile_s": first_s,
        "median_eval": float(torch.tensor(evals).median()),
    }


def mode_sb3(members: int, updates: int) -> dict[str, float]:
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", "CartPole-v1", seed=0, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=updates * 1024)
    one = time.perf_counter() - t0
    return {
        "wall_s": one * members,
        "train_s": one * members,
        "steps_timed": members * model.num_timesteps,
        "compile_s": 0.0,
        "env_steps": members * model.num_timesteps,
        "median_eval": float("nan"),
        "extrapolated_from_s": one,
    }


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if args.mode == "vmapped":
        out = mode_vmapped(args.members, args.updates, args.compile)
    elif args.mode == "sequential":
        out = mode_sequential(args.members, args.updates, args.compile)
    else:
        out = mode_sb3(args.members, args.updates)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=32)
    ap.add_argument("--updates", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--modes", nargs="+", default=["vmapped", "sequential", "sb3"])
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        return child(args)
    print(
        f"PPO CartPole-v1 population of {args.members}, {args.updates} updates x 1024 steps "
        f"each, {args.threads} thread(s) per process, compile={args.compile}"
    )
    results = {}
    for mode in args.modes:
        cmd = [
            sys.executable,
            __file__,
            "--mode",
            mode,
            "--members",
            str(args.members),
            "--updates",
            str(args.updates),
            "--threads",
            str(args.threads),
        ]
        if args.compile:
            cmd.append("--compile")
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        results[mode] = json.loads(line[len("RESULT ") :])
    print(
        f"\n{'mode':<12} {'wall s':>8} {'first updates s':>15} {'steady env steps/s':>18} "
        f"{'peak RSS MB':>12} {'median eval':>11}"
    )
    for mode, r in results.items():
        sps = r["steps_timed"] / r["train_s"]
        label = mode + (" (x N)" if mode == "sb3" else "")
        print(
            f"{label:<12} {r['wall_s']:>8.1f} {r['compile_s']:>15.1f} {sps:>18,.0f} "
            f"{r['peak_rss_mb']:>12.0f} {r['median_eval']:>11.1f}"
        )
    print("first updates s: the first update of each run (compilation/warm-up), excluded above")
    if "vmapped" in results:
        v = results["vmapped"]["steps_timed"] / results["vmapped"]["train_s"]
        for other in ("sequential", "sb3"):
            if other in results:
                o = results[other]["steps_timed"] / results[other]["train_s"]
                print(f"vmapped / {other}: {v / o:.1f}x env-steps/s")


if __name__ == "__main__":
    main()
