"""Time to result: whole processes, from launch to a trained agent (or its first update).

    OMP_NUM_THREADS=1 python benchmarks/bench_startup.py [--rejax-python PATH]
        [--sb3-path PATH] [--sections main first edit]

Every row is a fresh process with one torch thread, run one at a time; "cold" is a fresh
``TORCHINDUCTOR_CACHE_DIR``, "warm" the same folder again.

* ``main``: the README main job, ``funrl train ppo --env CartPole-v1`` (the preset: 100k
  env steps), with ``--compile auto`` (the default), ``on`` and ``off``: wall time and
  final evaluation.  After the cold ``auto`` run the table waits for its background
  compile (and reports how long it took) before the next row.  ``--rejax-python`` adds
  rejax's PPO to an evaluation >= 475 (benchmarks/peer_rejax_ppo.py; JAX has no
  persistent cache here, so it is cold by nature); ``--sb3-path`` (a folder with
  stable_baselines3) adds SB3's PPO with rl-zoo's CartPole settings, 100k steps
  (benchmarks/peer_sb3_ppo_cartpole.py).
* ``first``: DQN on CartPole (bench_dqn.py's config) and SAC on Pendulum (its preset):
  seconds from launch to the end of the first update and to the end of the first
  compiled one, for ``--compile on`` and ``auto``, cold and warm.
* ``edit``: "edit a loss and rerun": PPO CartPole with a loss whose one line changed
  (a new constant each process), compiled, everything else warm in the cache: seconds
  from launch to the end of the first update; then the same variant as a module with a
  builder under ``AutoCompile.for_builder`` (first run, unedited rerun, edited rerun):
  seconds to the first update and to the first compiled one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ENV1 = {"OMP_NUM_THREADS": "1"}


def _run(cmd: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, cwd=cwd)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return wall, p.stdout + p.stderr


def _wait_background(cache: str) -> float | None:
    """Wait for a --compile auto background compile in ``cache``; its compile seconds."""
    warm = Path(cache) / "funrl-warm"
    for pid_file in warm.glob("*.pid"):
        try:
            pid = int(pid_file.read_text())
        except (FileNotFoundError, ValueError):  # it ended meanwhile
            continue
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
    marks = [json.loads(p.read_text()) for p in warm.glob("*.json")]
    return max((m["compile_s"] for m in marks), default=None)


def _main_job(mode: str, cache: str, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "funrl", "train", "ppo", "--env", "CartPole-v1", "--quiet"]
    cmd += ["--threads", "1", "--compile", mode, "--out", str(out)]
    wall, _ = _run(cmd, {**ENV1, "TORCHINDUCTOR_CACHE_DIR": cache})
    summary = json.loads((out / "summary.json").read_text())
    return {"wall_s": wall, "eval": summary["eval_return"]}


def section_main(args: argparse.Namespace, tmp: str) -> None:
    rows: list[tuple[str, dict[str, Any]]] = []
    for mode in ("auto", "on"):
        cache = tempfile.mkdtemp(dir=tmp)
        for label in ("cold", "warm"):
            r = _main_job(mode, cache, Path(tmp) / f"{mode}-{label}")
            if mode == "auto" and label == "cold":
                r["note"] = f"background compile: {_wait_background(cache):.0f} s, after the run"
            rows.append((f"funrl --compile {mode}, {label} cache", r))
    rows.append(("funrl --compile off (eager)", _main_job("off", tmp, Path(tmp) / "off")))
    if args.rejax_python:
        cmd = [args.rejax_python, str(HERE / "peer_rejax_ppo.py"), "--seeds", "0"]
        wall, out = _run(cmd, ENV1)
        last = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        rows.append(("rejax PPO to eval >= 475", {"wall_s": wall, "note": str(last)[:60]}))
    if args.sb3_path:
        cmd = [sys.executable, str(HERE / "peer_sb3_ppo_cartpole.py")]
        wall, out = _run(cmd, {**ENV1, "PYTHONPATH": args.sb3_path})
        res = json.loads(out.strip().splitlines()[-1])
        rows.append(
            ("SB3 PPO, rl-zoo settings, 100k", {"wall_s": wall, "eval": res["eval_return"]})
        )
    rejax = next((r["wall_s"] for n, r in rows if n.startswith("rejax")), None)
    print("\nPPO CartPole-v1 to a trained agent, whole processes, 1 thread")
    print(f"{'run':<34} {'wall s':>7} {'x rejax':>8} {'eval':>7}  note")
    for name, r in rows:
        ratio = f"{r['wall_s'] / rejax:.2f}" if rejax else "-"
        ev = r.get("eval")
        print(
            f"{name:<34} {r['wall_s']:>7.1f} {ratio:>8} {'' if ev is None else f'{ev:.1f}':>7}"
            f"  {r.get('note', '')}"
        )


def _driver(algo: str, mode: str, launched: float, edit: bool) -> None:
    """One process of the ``first``/``edit`` sections: print seconds since ``launched`` at
    the end of the first update and of the first compiled one."""
    import torch

    torch.set_num_threads(1)
    import funrl
    from funrl import warmup

    if algo == "dqn":
        sys.path.insert(0, str(HERE))
        from bench_dqn import CONFIG

        from funrl.algos import dqn as mod

        config = CONFIG
    elif algo == "sac":
        from funrl.algos import sac as mod

        config = mod.Config.preset("Pendulum-v1")
    else:
        from funrl.algos import ppo as mod

        config = mod.Config.preset("CartPole-v1")
    hp = mod.HParams.preset(config.env) if algo != "dqn" else mod.HParams.create()
    parts = {}
    if edit:  # the one edited line: a constant no compiled code has seen
        scale = 1.0 + (time.time_ns() % 1_000_003) * 1e-12

        def loss_fn(nets, cfg, params, mb, hp):
            loss, aux = mod.ppo_loss(nets, cfg, params, mb, hp)
            return loss * scale, aux

        parts["loss_fn"] = loss_fn
    algo_ = mod.make(config, **parts)
    marks: dict[str, float] = {}
    total = 10**6  # train until the callback stops it: after the first compiled update
    switch: Any = mode == "on"
    if mode == "auto":
        switch = warmup.AutoCompile.for_config(
            algo, config, hp, total_updates=total, eval_episodes=1,
            say=lambda s: print(s, file=sys.stderr),
        )  # fmt: skip

    def callback(update: int, state: Any, row: Any) -> bool:
        now = time.time() - launched
        marks.setdefault("first_s", now)
        compiled = mode == "on" or (switch.switched_at is not None and update > switch.switched_at)
        if compiled:
            marks.setdefault("compiled_s", now)
        return compiled

    funrl.train(algo_, funrl.random.key(0), hp, compile=switch, progress=False,
                eval_episodes=1, callback=callback, eval_every=10**9,
                num_updates=total)  # fmt: skip
    print(json.dumps(marks))


def _first(algo: str, mode: str, cache: str, edit: bool = False) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--driver", algo, mode, str(time.time())]
    cmd += ["--edit"] if edit else []
    _, out = _run(cmd, {**ENV1, "TORCHINDUCTOR_CACHE_DIR": cache})
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def section_first(tmp: str) -> None:
    print("\nSeconds from launch to the end of the first update / first compiled update")
    print(f"{'algorithm':<30} {'mode':<6} {'cache':<5} {'first':>7} {'compiled':>9}")
    for algo, name in (
        ("dqn", "DQN CartPole (bench_dqn config)"),
        ("sac", "SAC Pendulum (preset)"),
    ):
        for mode in ("on", "auto"):
            cache = tempfile.mkdtemp(dir=tmp)
            for label in ("cold", "warm"):
                r = _first(algo, mode, cache)
                print(
                    f"{name:<30} {mode:<6} {label:<5} {r['first_s']:>7.1f} "
                    f"{r.get('compiled_s', float('nan')):>9.1f}",
                    flush=True,
                )
                if mode == "auto":
                    _wait_background(cache)


_VARIANT = """
from funrl.algos import ppo

SCALE = {scale!r}  # the edited line


def loss_fn(nets, config, params, mb, hp):
    loss, aux = ppo.ppo_loss(nets, config, params, mb, hp)
    return loss * SCALE, aux


def build():
    return ppo.make(ppo.Config.preset("CartPole-v1"), loss_fn=loss_fn)
"""


def _variant_driver(folder: str, launched: float) -> None:
    """``edit`` with ``AutoCompile.for_builder``: the variant lives in ``folder``."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, folder)
    import my_variant

    import funrl
    from funrl import warmup
    from funrl.algos import ppo

    hp = ppo.HParams.preset("CartPole-v1")
    algo = my_variant.build()
    switch = warmup.AutoCompile.for_builder(
        "my_variant:build", algo, hp, total_updates=10**6, eval_episodes=1,
        say=lambda s: print(s, file=sys.stderr),
    )  # fmt: skip
    marks: dict[str, float] = {}

    def callback(update: int, state: Any, row: Any) -> bool:
        now = time.time() - launched
        marks.setdefault("first_s", now)
        done = switch.switched_at is not None and update > switch.switched_at
        if done:
            marks.setdefault("compiled_s", now)
        return done

    funrl.train(algo, funrl.random.key(0), hp, compile=switch, progress=False,
                eval_episodes=1, callback=callback, eval_every=10**9,
                num_updates=10**6)  # fmt: skip
    print(json.dumps(marks))


def _variant(folder: Path, scale: float, cache: str) -> dict[str, float]:
    (folder / "my_variant.py").write_text(_VARIANT.format(scale=scale))
    cmd = [sys.executable, __file__, "--variant-driver", str(folder), str(time.time())]
    _, out = _run(cmd, {**ENV1, "TORCHINDUCTOR_CACHE_DIR": cache})
    _wait_background(cache)
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def section_edit(tmp: str) -> None:
    cache = tempfile.mkdtemp(dir=tmp)
    base = _first("ppo", "on", cache)  # fills the cache: the unedited PPO
    edits = [_first("ppo", "on", cache, edit=True) for _ in range(2)]
    print("\nPPO CartPole, compiled: seconds from launch to the end of the first update")
    print(f"unedited, cold cache: {base['first_s']:.1f}")
    for i, r in enumerate(edits):
        print(f"one loss line edited (run {i + 1}), the rest warm: {r['first_s']:.1f}")
    folder = Path(tempfile.mkdtemp(dir=tmp))
    print("the same with AutoCompile.for_builder: first update / first compiled update")
    for i, scale in enumerate((1.0, 1.0, 1.5)):
        r = _variant(folder, scale, cache)
        what = ("first run", "rerun, unedited", "rerun, loss line edited")[i]
        print(f"{what}: {r['first_s']:.1f} / {r.get('compiled_s', float('nan')):.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rejax-python", default=None)
    p.add_argument("--sb3-path", default=None)
    p.add_argument("--sections", nargs="+", default=["main", "first", "edit"])
    p.add_argument("--driver", nargs=3, default=None, help=argparse.SUPPRESS)
    p.add_argument("--edit", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant-driver", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant_driver:
        _variant_driver(args.variant_driver[0], float(args.variant_driver[1]))
        return
    if args.driver:
        algo, mode, launched = args.driver
        _driver(algo, mode, float(launched), args.edit)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if "main" in args.sections:
            section_main(args, tmp)
        if "first" in args.sections:
            section_first(tmp)
        if "edit" in args.sections:
            section_edit(tmp)


if __name__ == "__main__":
    main()
