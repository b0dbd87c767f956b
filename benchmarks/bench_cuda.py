"""funrl on a CUDA device: correctness checks, then env, PPO and population throughput.

    python benchmarks/bench_cuda.py [--stages check envs ppo population] [--seconds 2]

Each stage runs in its own subprocess (a hang or crash in one does not lose the others)
and prints one JSON object per measurement.  Everything is built under
``torch.device(DEVICE)`` (the default device), so every tensor a ``make``/``init`` creates
lives on the GPU; timings synchronise the device before reading the clock.

* ``check``: per algorithm, 3 eager updates on CPU and on CUDA from the same key (max
  parameter difference), then 2 compiled updates on CUDA; a 4-member vmapped population.
* ``envs``: random-action CartPole and MinAtar Breakout, one compiled step of N envs (as
  bench_envs.py).
* ``ppo``: PPO CartPole, and MinAtar Breakout with its preset's CNN agent, with compiled
  units: steady env-steps/s, compile time, eval return.
* ``population``: compiled vmapped PPO populations (bench_population.py's config).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from typing import Any

SMALL = {
    "ppo": dict(num_envs=8, num_steps=16),
    "a2c": dict(num_envs=8, num_steps=5),
    "dqn": dict(num_envs=4, learning_starts=32, batch_size=32, buffer_size=1000),
    "sac": dict(learning_starts=8, batch_size=32, buffer_size=1000, hidden=(64, 64)),
    "td3": dict(learning_starts=8, batch_size=32, buffer_size=1000, hidden=(64, 64)),
    "ddpg": dict(learning_starts=8, batch_size=32, buffer_size=1000, hidden=(64, 64)),
}


DEVICE = "cuda"
#: inductor options for CUDA graphs (kernel launches replayed as one graph)
CG = {"triton.cudagraphs": True}
#: --only: run just these runs of a stage ("cudagraphs65536", "minatar4096", "c512" =
#: compiled 512 members)
ONLY: list[str] = []


def emit(**row: Any) -> None:
    print(json.dumps(row), flush=True)


def phases(top: int = 8) -> dict[str, float]:
    """The slowest compile phases so far in this process (dynamo's own timers), seconds."""
    from torch._dynamo.utils import compile_times

    rows = compile_times(repr="csv", aggregate=True)
    table = dict(zip(rows[0], rows[1], strict=False)) if rows and len(rows) == 2 else {}
    times = {k: float(v) for k, v in table.items()}
    return dict(sorted(times.items(), key=lambda kv: -kv[1])[:top])


def sync() -> None:
    import torch

    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def _run_updates(algo: Any, hp: Any, key: Any, n: int) -> Any:
    state = algo.init(key, hp)
    for _ in range(n):
        state, _ = algo.update(state, hp)
    return state


def stage_check() -> None:
    import importlib

    import torch

    import funrl
    from funrl import population as pop
    from funrl import tree
    from funrl.algos import units

    R = funrl.random
    for name, kw in SMALL.items():
        mod = importlib.import_module(f"funrl.algos.{name}")
        try:
            algo = mod.make(mod.Config(**kw))
            cpu = _run_updates(algo, mod.HParams.create(), R.key(0), 3)
            with torch.device(DEVICE):
                algo_c = mod.make(mod.Config(**kw))
                hp_c = mod.HParams.create()
                gpu = _run_updates(algo_c, hp_c, R.key(0), 3)
            devs = sorted({str(x.device) for x in tree.leaves(gpu.params)})
            diff = max(
                float((a - b.cpu()).abs().max())
                for a, b in zip(tree.leaves(cpu.params), tree.leaves(gpu.params), strict=True)
            )
            emit(stage="check", algo=name, what="eager cpu vs cuda", max_diff=diff, devices=devs)
        except Exception as e:  # report and go on
            emit(stage="check", algo=name, what="eager", error=repr(e)[:400])
            traceback.print_exc()
            continue
        try:
            with torch.device(DEVICE):
                calgo = algo_c.with_units(units.compiled)
                state = tree.contiguous(calgo.init(R.key(0), hp_c))
                t0 = time.perf_counter()
                state, _ = calgo.update(state, hp_c)
                sync()
                first = time.perf_counter() - t0
                t0 = time.perf_counter()
                state, m = calgo.update(state, hp_c)
                sync()
                second = time.perf_counter() - t0
            emit(
                stage="check",
                algo=name,
                what="compiled cuda",
                first_update_s=first,
                second_update_s=second,
                finite=all(
                    bool(torch.isfinite(v).all()) for v in m.values() if v.is_floating_point()
                ),
            )
        except Exception as e:
            emit(stage="check", algo=name, what="compiled", error=repr(e)[:400])
            traceback.print_exc()
    # key-device contract without a default device (does the device follow the key?)
    from funrl.algos import ppo

    try:
        algo = ppo.make(ppo.Config(num_envs=8, num_steps=16))
        hp = ppo.HParams.create()
        st = _run_updates(algo, tree.map(lambda x: x.to(DEVICE), hp), R.key(0, device=DEVICE), 1)
        emit(
            stage="check",
            what="ppo key on cuda only",
            devices=sorted({str(x.device) for x in tree.leaves(st)}),
        )
    except Exception as e:
        emit(stage="check", what="ppo key on cuda only", error=repr(e)[:400])
    try:
        with torch.device(DEVICE):
            algo = ppo.make(ppo.Config(num_envs=8, num_steps=16, total_timesteps=8 * 16 * 3))
            hps = pop.hparams(ppo.HParams, 4, lr=torch.logspace(-3.5, -2.5, 4))
            res = pop.train(algo, pop.member_keys(R.key(0), 4), hps, compile=True, progress=False)
        emit(stage="check", what="population 4 compiled cuda", eval=res.eval_returns.tolist())
    except Exception as e:
        emit(stage="check", what="population compiled cuda", error=repr(e)[:400])
        traceback.print_exc()


def replayed(fn: Any) -> Any:
    """``fn`` under CUDA graph trees, fed its own previous outputs.

    A replay writes its outputs into the graph's memory pool, over the previous replay's
    outputs, so whatever the caller keeps (here: the key and env state it feeds back in)
    is cloned out of the pool first; the clones are a handful of small kernels and count
    in the measured rate.
    """
    import torch

    from funrl import tree

    def call(*args: Any) -> Any:
        torch.compiler.cudagraph_mark_step_begin()
        return tree.map(torch.clone, fn(*args))

    return call


#: CartPole runs of the envs stage: (mode, envs)
CARTPOLE_RUNS = [("eager", 65536), ("eager", 1 << 20), ("compiled", 65536)]
CARTPOLE_RUNS += [("cudagraphs", 65536), ("compiled", 1 << 20), ("cudagraphs", 1 << 20)]


def _random_step(env: Any, params: Any, n: int) -> Any:
    """``(key, state) -> (key, state, obs, reward, terminated, truncated)``: one step of
    ``n`` members with uniform random actions."""
    from torch.func import vmap

    import funrl.random as R

    num_actions = env.action_space(params).n

    def step(key: Any, state: Any) -> Any:
        key, k_act, k_step = R.split(key, 3)
        actions = R.randint(k_act, 0, num_actions, (n,))
        obs, state, reward, te, tr, _ = vmap(env.step, in_dims=(0, 0, 0, None))(
            R.split(k_step, n), state, actions, params
        )
        return key.contiguous(), state, obs, reward, te, tr

    return step


def stage_envs(seconds: float) -> None:
    import torch
    from torch.func import vmap

    import funrl
    import funrl.random as R
    from funrl.envs import make

    # (name for --only, mode, envs, env id)
    runs = [(f"{m}{n}", m, n, "CartPole-v1") for m, n in CARTPOLE_RUNS]
    runs += [(f"minatar{n}", "compiled", n, "MinAtar-Breakout-v1") for n in (4096, 65536)]
    runs = [r for r in runs if not ONLY or r[0] in ONLY]
    options = {"eager": None, "compiled": {}, "cudagraphs": CG}
    with torch.device(DEVICE):
        for _, mode, n, env_id in runs:
            env, params = make(env_id)
            step = _random_step(env, params, n)
            try:
                _, s = vmap(env.reset, in_dims=(0, None))(R.split(R.key(1), n), params)
                k, opts = R.key(0), options[mode]
                fn = step if opts is None else funrl.compile(step, options=opts)
                if mode == "cudagraphs":
                    fn = replayed(fn)
                t0 = time.perf_counter()
                k, s, *_ = fn(k, s)
                k, s, *_ = fn(k, s)
                sync()
                compile_s = time.perf_counter() - t0
                steps, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    for _ in range(20):
                        k, s, *_ = fn(k, s)
                    steps += 20 * n
                    sync()
                rate = steps / (time.perf_counter() - t0)
                emit(
                    stage="envs",
                    env=env_id,
                    mode=mode,
                    envs=n,
                    steps_per_s=rate,
                    first_2_calls_s=compile_s,
                )
            except Exception as e:
                emit(stage="envs", env=env_id, mode=mode, envs=n, error=repr(e)[:300])
    emit(stage="envs", what="compile phases", phases=phases())


def stage_ppo(updates: int) -> None:
    import torch

    import funrl
    from funrl import presets
    from funrl.algos import ppo

    # (name for --only, compiled, envs, steps, env id); MinAtar: the preset's CNN agent
    runs = [("e2048", False, 2048, 32, "CartPole-v1"), ("c64", True, 64, 16, "CartPole-v1")]
    runs += [("c2048", True, 2048, 32, "CartPole-v1")]
    runs += [("minatar1024", True, 1024, 32, "MinAtar-Breakout-v1")]
    for _, compile, envs, steps, env_id in [r for r in runs if not ONLY or r[0] in ONLY]:
        n = updates if compile else max(4, updates // 4)
        try:
            with torch.device(DEVICE):
                size = dict(num_envs=envs, num_steps=steps, total_timesteps=envs * steps * n)
                if env_id == "CartPole-v1":  # the defaults, as in the earlier H100 runs
                    cfg, hp = ppo.Config(**size), ppo.HParams.create()
                else:
                    cfg = ppo.Config.preset(env_id, **size)
                    hp = presets.hparams_for(ppo.HParams, env_id, {})
                algo = ppo.make(cfg)
                t0 = time.perf_counter()
                res = funrl.train(
                    algo,
                    funrl.random.key(0),
                    hp,
                    compile=compile,
                    progress=False,
                    eval_episodes=10,
                )
                sync()
                wall = time.perf_counter() - t0
        except Exception as e:
            emit(stage="ppo", env=env_id, compiled=compile, envs=envs, error=repr(e)[:300])
            traceback.print_exc()
            continue
        times = [h["update_s"] for h in res.history]
        emit(
            stage="ppo",
            env=env_id,
            compiled=compile,
            envs=envs,
            steps=steps,
            updates=len(times),
            steady_env_steps_per_s=cfg.batch_size * (len(times) - 1) / sum(times[1:]),
            first_update_s=times[0],
            wall_s=wall,
            eval_return=res.eval_return,
        )
    emit(stage="ppo", what="compile phases", phases=phases())


def stage_population(updates: int) -> None:
    import torch

    import funrl
    from funrl import population as pop
    from funrl.algos import ppo

    runs = [(False, 512), (True, 32), (True, 512)]
    for compile, members in [
        r for r in runs if not ONLY or f"{'c' if r[0] else 'e'}{r[1]}" in ONLY
    ]:
        n = updates if compile else max(4, updates // 4)
        try:
            with torch.device(DEVICE):
                algo = ppo.make(ppo.Config(num_envs=64, num_steps=16, total_timesteps=1024 * n))
                hps = pop.hparams(ppo.HParams, members, lr=torch.logspace(-3.5, -2.5, members))
                keys = pop.member_keys(funrl.random.key(0), members)
                t0 = time.perf_counter()
                res = pop.train(algo, keys, hps, compile=compile, progress=False, eval_episodes=10)
                sync()
                wall = time.perf_counter() - t0
        except Exception as e:
            emit(stage="population", compiled=compile, members=members, error=repr(e)[:300])
            traceback.print_exc()
            continue
        times = [h["update_s"] for h in res.history if h["member"] == 0]
        emit(
            stage="population",
            compiled=compile,
            members=members,
            steady_env_steps_per_s=members * 1024 * (len(times) - 1) / sum(times[1:]),
            first_update_s=times[0],
            wall_s=wall,
            median_eval=float(res.eval_returns.median()),
        )
    emit(stage="population", what="compile phases", phases=phases())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stages", nargs="+", default=["check", "envs", "ppo", "population"])
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--device", default="cuda", help="cpu: dry-run the script here")
    ap.add_argument("--stage-timeout", type=float, default=240.0)
    ap.add_argument("--only", nargs="*", default=[], help="e.g. cudagraphs65536 c512 e512")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    ONLY[:] = args.only
    if args.stage:
        import torch

        name = torch.cuda.get_device_name() if DEVICE.startswith("cuda") else "cpu"
        emit(stage="device", name=name, torch=torch.__version__)
        {
            "check": stage_check,
            "envs": lambda: stage_envs(args.seconds),
            "ppo": lambda: stage_ppo(args.updates),
            "population": lambda: stage_population(args.updates),
        }[args.stage]()
        return
    for stage in args.stages:
        cmd = [sys.executable, __file__, "--stage", stage, "--seconds", str(args.seconds)]
        cmd += ["--updates", str(args.updates), "--device", args.device, "--only", *args.only]
        try:
            subprocess.run(cmd, timeout=args.stage_timeout, check=False)
        except subprocess.TimeoutExpired:
            emit(stage=stage, error=f"timed out after {args.stage_timeout} s")


if __name__ == "__main__":
    main()
