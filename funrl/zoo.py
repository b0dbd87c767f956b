"""The zoo: every preset (:mod:`funrl.presets`) trained on 5 seeds, and a results table.

``funrl zoo run`` trains each chosen preset's seeds as one vmapped population (member
``i`` is ``funrl train ALGO --env ENV --seed i``: same key derivation, same preset) and
writes ``<out>/<algo>/<env>.json`` (final evaluation per seed, learning curve, env steps,
wall time, the machine) and ``<env>.png`` (mean and spread over seeds).  ``funrl zoo
report`` turns those files into ``<out>/README.md``: one row per preset beside its
threshold and published reference.

In Python::

    >>> from funrl import zoo
    >>> r = zoo.run("ppo", "CartPole-v1", seeds=2, total_timesteps=2048, compile=False,
    ...             out=None, progress=False)
    >>> len(r["final"])
    2
"""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from funrl import presets as P

__all__ = ["DEFAULT_OUT", "FINAL_EPISODES", "plot", "report", "run", "selected"]

#: Where ``funrl zoo`` keeps its results (relative to the working directory).
DEFAULT_OUT = "benchmarks/zoo"
#: Final-evaluation episodes per seed on a torch env (:func:`run`).
FINAL_EPISODES = 1000


def selected(
    algos: Iterable[str] | None = None, envs: Iterable[str] | None = None, skipped: bool = False
) -> list[P.Preset]:
    """The presets of ``algos`` (default: all) for ``envs`` (default: all); those marked
    ``skip`` only with ``skipped=True``."""
    algos = list(algos or P.ALGOS)
    for a in algos:
        if a not in P.ALGOS:
            raise ValueError(f"unknown algorithm {a!r}; choose from {', '.join(P.ALGOS)}")
    envs = list(envs) if envs else None
    out = []
    for algo in algos:
        for preset in P.of(algo):
            if envs is not None and preset.env not in envs:
                continue
            if preset.skip and not skipped:
                continue
            out.append(preset)
    if envs is not None and not out:
        raise ValueError(f"no preset of {', '.join(algos)} for {', '.join(envs)} (funrl list)")
    return out


def _eval_every(num_updates: int, points: int = 20) -> int:
    return max(1, math.ceil(num_updates / points))


def _curve(history: list[dict[str, Any]], steps_per_update: int, seeds: int) -> dict[str, Any]:
    """``{"env_steps": [...], "returns": [[seed 0, ..., seed S-1], ...]}`` from the rows
    holding an evaluation (one row per member per update)."""
    by_update: dict[int, list[float]] = {}
    for row in history:
        if "eval_return" in row and row["eval_return"] is not None:
            by_update.setdefault(int(row["update"]), []).append(float(row["eval_return"]))
    updates = sorted(u for u, v in by_update.items() if len(v) == seeds)
    return {
        "env_steps": [u * steps_per_update for u in updates],
        "returns": [by_update[u] for u in updates],
    }


def run(
    algo: str,
    env: str,
    *,
    seeds: int = 5,
    out: str | os.PathLike[str] | None = DEFAULT_OUT,
    compile: bool = True,
    eval_episodes: int = 10,
    final_episodes: int | None = None,
    total_timesteps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the preset of ``algo`` on ``env`` with seeds ``0..seeds-1`` and return (and,
    with ``out``, write) its result: ``final`` (each seed's final evaluation, mean of
    ``final_episodes`` deterministic episodes), ``mean``, ``std``, ``env_steps`` per seed,
    ``wall_s``, ``curve`` (evaluations of ``eval_episodes`` episodes along the way), the
    preset's ``threshold`` and ``reference``.

    ``final_episodes`` defaults to :data:`FINAL_EPISODES` on a torch env (its episodes
    run in parallel: seconds) and to ``eval_episodes`` on a host env.  A 10-episode mean
    is too noisy to set beside a reference: rl-zoo's figures average 150k evaluation
    steps (750 Pendulum episodes), and one Pendulum episode's return has a spread of
    ~100.  Seed ``i``'s final evaluation is what ``funrl eval CHECKPOINT --seed i
    --episodes N`` prints for the checkpoint of ``funrl train ALGO --env ENV --seed i``.

    Seed ``i`` follows ``funrl train ALGO --env ENV --seed i``'s key derivation; the
    seeds run as one vmapped population over a torch env, one after another over a host
    env (``gym:``, ``atari:``, ``dmc:``).  ``total_timesteps`` shortens a run (a smoke test:
    the threshold is then not judged).  A run stopped by Ctrl-C or SIGTERM raises
    ``KeyboardInterrupt`` and writes nothing.
    """
    import torch

    import funrl
    from funrl import population as pop

    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if final_episodes is not None and final_episodes < 1:
        raise ValueError(f"final_episodes must be >= 1, got {final_episodes}")
    preset = P.load(algo, env)
    mod = importlib.import_module(f"funrl.algos.{algo}")
    extra = {} if total_timesteps is None else {"total_timesteps": total_timesteps}
    config = mod.Config.preset(env, **extra)
    hp = mod.HParams.preset(env)
    made = mod.make(config)
    num_updates = config.num_updates
    eval_every = _eval_every(num_updates)
    keys = torch.stack([funrl.random.key(s) for s in range(seeds)])
    if final_episodes is None:
        final_episodes = eval_episodes if made.env_stack.host else FINAL_EPISODES
    t0 = time.perf_counter()
    if made.env_stack.host:
        finals, history, compile_s = [], [], 0.0
        for s in range(seeds):
            r = funrl.train(made, keys[s], hp, compile=compile, eval_episodes=eval_episodes,
                            eval_every=eval_every, progress=progress)  # fmt: skip
            if r.interrupted:
                raise KeyboardInterrupt(f"zoo run {algo}/{env} interrupted ({r.interrupted})")
            rets = funrl.evaluate(made, r.state, keys[s], num_episodes=final_episodes)
            finals.append(float(rets.nanmean()))
            history += [{**row, "member": s} for row in r.history]
            compile_s += r.compile_time_s
        updates = num_updates
    else:
        hps = pop.hparams(type(hp), seeds, **vars(hp))
        pr = pop.train(made, keys, hps, compile=compile, eval_episodes=eval_episodes,
                       eval_every=eval_every, progress=progress)  # fmt: skip
        if pr.interrupted:  # Ctrl-C / SIGTERM: no result to write
            raise KeyboardInterrupt(f"zoo run {algo}/{env} interrupted ({pr.interrupted})")
        finals = pop.evaluate(made, pr.states, keys, num_episodes=final_episodes).tolist()
        history, compile_s, updates = pr.history, pr.compile_time_s, pr.updates
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "algo": algo,
        "env": env,
        "seeds": seeds,
        "final": finals,
        "mean": statistics.fmean(finals),
        "std": statistics.pstdev(finals),
        "min": min(finals),
        "env_steps": updates * made.steps_per_update,
        "wall_s": round(wall, 1),
        "compile_s": round(compile_s, 1),
        "shortened": total_timesteps is not None,
        "threshold": preset.threshold,
        "reference": None if preset.reference is None else vars(preset.reference),
        "preset": dict(preset.fields),
        "curve": _curve(history, made.steps_per_update, seeds),
        "eval_episodes": eval_episodes,
        "final_episodes": final_episodes,
        "compile": compile,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "funrl": funrl.__version__,
            "python": sys.version.split()[0],
        },
        "date": time.strftime("%Y-%m-%d"),
    }
    if out is not None:
        folder = Path(out) / algo
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{_file_name(env)}.json").write_text(json.dumps(result, indent=1) + "\n")
        plot(result, folder / f"{_file_name(env)}.png")
    return result


def _file_name(env: str) -> str:
    return env.replace(":", "_").replace("/", "_").replace("*", "all")


def plot(result: dict[str, Any], path: str | os.PathLike[str]) -> bool:
    """The learning curve of a :func:`run` result (mean and min-max over seeds) as a PNG;
    ``False`` (nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    curve = result["curve"]
    x = curve["env_steps"]
    if not x:
        return False
    mean = [statistics.fmean(r) for r in curve["returns"]]
    low = [min(r) for r in curve["returns"]]
    high = [max(r) for r in curve["returns"]]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(x, mean, label=f"funrl {result['algo']} (mean of {result['seeds']} seeds)")
    ax.fill_between(x, low, high, alpha=0.25, label="min-max over seeds")
    if result.get("threshold") is not None:
        ax.axhline(result["threshold"], color="grey", ls=":", lw=1, label="threshold")
    ref = result.get("reference")
    if ref:
        label = f"{ref['source']} at {_steps(ref['env_steps'])} steps"
        ax.axhline(ref["mean_return"], color="C3", ls="--", lw=1, label=label)
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{result['algo']} on {result['env']}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def _steps(n: int) -> str:
    return f"{n / 1e6:.3g}M" if n >= 950_000 else f"{n / 1e3:.0f}k"


def _final_episodes(result: dict[str, Any]) -> str:
    """Episodes per seed behind ``final`` (results written before ``final_episodes`` existed
    used the training's last ``eval_episodes`` evaluation)."""
    n = result.get("final_episodes", result.get("eval_episodes", 10))
    return f"{n:,}"


def report(out: str | os.PathLike[str] = DEFAULT_OUT, write: bool = True) -> str:
    """The results table of every ``<out>/<algo>/<env>.json`` (and a line for each preset
    without one, with the reason), as markdown; written to ``<out>/README.md``."""
    out = Path(out)
    rows = []
    head = (
        "| algo | env | final eval, mean ± std (min) | episodes | seeds ≥ threshold | "
        "env steps | wall | reference (its steps) | seeds ≥ reference | curve |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    missing = []
    for preset in selected(skipped=True):
        path = out / preset.algo / f"{_file_name(preset.env)}.json"
        if not path.is_file():
            why = preset.skip or "not run yet (funrl zoo run)"
            missing.append(f"- {preset.algo} on {preset.env}: {why}")
            continue
        r = json.loads(path.read_text())
        if r.get("shortened"):
            missing.append(f"- {preset.algo} on {preset.env}: only a shortened run is recorded")
            continue
        finals = r["final"]
        thr = r.get("threshold")
        at_thr = (
            f"{sum(f >= thr for f in finals)}/{len(finals)} (≥ {_fmt(thr)})"
            if thr is not None
            else "-"
        )
        ref = r.get("reference")
        if ref:
            ref_txt = (
                f"{ref['source']}: {_fmt(ref['mean_return'])}"
                + (f" ± {_fmt(ref['std'])}" if ref.get("std") is not None else "")
                + f" ({_steps(ref['env_steps'])})"
            )
            at_ref = f"{sum(f >= ref['mean_return'] for f in finals)}/{len(finals)}"
            if r["mean"] < ref["mean_return"]:
                at_ref += " (worse)"
        else:
            ref_txt, at_ref = "-", "-"
        png = f"{preset.algo}/{_file_name(preset.env)}.png"
        rows.append(
            f"| {preset.algo} | {preset.env} | {_fmt(r['mean'])} ± {_fmt(r['std'])} "
            f"({_fmt(r['min'])}) | {_final_episodes(r)} | {at_thr} | {_steps(r['env_steps'])} | "
            f"{r['wall_s']:.0f} s"
            f"{'' if r.get('compile', True) else ' (eager)'} | "
            f"{ref_txt} | {at_ref} | [png]({png}) |"
        )
    machine = ""
    if rows:
        any_json = next(out.glob("*/*.json"))
        m = json.loads(any_json.read_text())["machine"]
        machine = (
            f"Machine: {m['cores']} cores ({m['cpu']}), {m['threads']} torch thread(s), "
            f"torch {m['torch']}. Wall time is the whole population (all seeds in one "
            "vmapped call), compilation and the final evaluation included.\n\n"
        )
    text = (
        "# funrl zoo: presets on 5 seeds\n\n"
        "Made by `funrl zoo run` (each preset's seeds 0-4 as one vmapped population; seed "
        "`i` is `funrl train ALGO --env ENV --seed i`) and `funrl zoo report`. Final eval: "
        "each seed's mean return over `episodes` deterministic episodes after training "
        f"({FINAL_EPISODES:,} on a torch env, as `funrl eval CHECKPOINT --seed i --episodes "
        f"{FINAL_EPISODES}` gives it; rl-zoo's references average 150k evaluation steps, "
        "300-1,500 episodes). "
        "References are single SB3 runs from rl-zoo's benchmark.md (DLR-RM/"
        'rl-baselines3-zoo @22e3ff2); "worse" marks rows whose mean is below it.\n\n'
        + machine
        + head
        + "\n"
        + "\n".join(rows)
        + "\n"
        + ("\nNot in the table:\n" + "\n".join(missing) + "\n" if missing else "")
    )
    if write:
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text(text)
    return text
