"""Random-action MinAtar env-steps/s: the ``minatar`` package vs funrl's torch game
(``--game breakout``, ``asterix``, ``freeway``, ``space_invaders`` or ``seaquest``).

Not a test.  One run of each, side by side:

* ``minatar`` (1.0.15), one env in a Python loop: ``act`` + ``state()`` (the observation)
  per step, ``reset`` when terminal, uniform random actions from the minimal action set
  drawn in blocks with NumPy, sticky actions at minatar's default 0.1;
* funrl's game (default params, sticky 0.1) in ``VecEnv(env, n)``:
  eager, and one ``funrl.compile``'d step (random actions drawn inside it, auto-reset)
  called from a Python loop; compile time reported apart;
* with ``--gymnax-python PY`` (a venv with jax and gymnax): gymnax's ``<Game>-MinAtar``
  vmapped, 100 steps per ``jit``'d ``lax.scan`` (as ``bench_envs.py``), on the same
  thread count.  gymnax has no sticky actions, so it does slightly less work per step.
  gymnax 0.0.9 does not register Seaquest (its ``seaquest.py`` is unfinished), so
  ``--game seaquest`` has no gymnax row.

The thread count is set (default 1) and printed.

Usage::

    .venv/bin/python benchmarks/bench_minatar.py                 # sizes 64 1024 4096
    .venv/bin/python benchmarks/bench_minatar.py --sizes 4096 --seconds 5
    .venv/bin/python benchmarks/bench_minatar.py --game freeway
    .venv/bin/python benchmarks/bench_minatar.py --game space_invaders
    .venv/bin/python benchmarks/bench_minatar.py --game seaquest
    .venv/bin/python benchmarks/bench_minatar.py --gymnax-python /path/to/jax-venv/bin/python
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_envs import _timed, gymnax_subprocess, stepping  # as the CartPole benchmark

# minatar name: funrl class
GAMES = {
    "asterix": "Asterix",
    "breakout": "Breakout",
    "freeway": "Freeway",
    "seaquest": "Seaquest",
    "space_invaders": "SpaceInvaders",
}
GYMNAX_IDS = {
    "asterix": "Asterix-MinAtar",
    "breakout": "Breakout-MinAtar",
    "freeway": "Freeway-MinAtar",
    "space_invaders": "SpaceInvaders-MinAtar",
}


def bench_minatar(seconds: float, game: str) -> list[tuple[str, float, str]]:
    import minatar

    env = minatar.Environment(game)  # sticky_action_prob=0.1
    env.seed(0)
    env.reset()
    actions = env.minimal_action_set()
    rng = np.random.default_rng(0)
    rows = []
    for with_obs in (True, False):

        def run(with_obs: bool = with_obs) -> int:
            block = rng.choice(actions, 1000)
            for a in block:
                _, terminal = env.act(int(a))
                if with_obs:
                    env.state()
                if terminal:
                    env.reset()
            return len(block)

        name = "minatar, 1 env, act + state()" if with_obs else "minatar, 1 env, act only"
        rows.append((name, _timed(run, seconds), ""))
    return rows


def bench_funrl(sizes: list[int], seconds: float, game: str) -> list[tuple[str, float, str]]:
    import torch

    import funrl
    import funrl.random as R
    from funrl.envs import VecEnv
    from funrl.envs import minatar as games

    rows = []
    for n in sizes:
        venv = VecEnv(getattr(games, GAMES[game])(), n)
        params = venv.default_params()
        n_actions = venv.env.action_space(params).n

        def step(key: torch.Tensor, state, venv=venv, n=n, params=params, na=n_actions):
            key, k_act, k_step = R.split(key, 3)
            action = R.randint(k_act, 0, na, (n,))
            obs, state, reward, term, trunc, _ = venv.step(k_step, state, action, params)
            return key, state, obs, reward, term, trunc

        _, state0 = venv.reset(R.key(1), params)
        key0 = R.key(0)
        iters = max(10, 20000 // n)

        rows.append(
            (
                f"funrl eager VecEnv({n})",
                _timed(stepping(step, key0, state0, iters, n), seconds),
                "",
            )
        )
        cstep = funrl.compile(step)
        t0 = time.perf_counter()
        k, s, *_ = cstep(key0, state0)
        k, s, *_ = cstep(k, s)  # the carried key is a strided view: one more specialisation
        compile_s = time.perf_counter() - t0
        rate = _timed(stepping(cstep, k, s, iters, n), seconds)
        rows.append((f"funrl compiled VecEnv({n})", rate, f"compile {compile_s:.1f} s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--game", default="breakout", choices=sorted(GAMES))
    parser.add_argument("--gymnax-python", default=None, help="python of a venv with gymnax")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"{args.game}: torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    rows = bench_minatar(args.seconds, args.game) + bench_funrl(args.sizes, args.seconds, args.game)
    if args.gymnax_python and args.game in GYMNAX_IDS:
        gid = GYMNAX_IDS[args.game]
        rows += gymnax_subprocess(
            args.gymnax_python, args.sizes, args.seconds, 100, args.threads, gid
        )
    base = rows[0][1]
    for name, rate, note in rows:
        print(f"{name:34s} {rate:14,.0f} steps/s  x{rate / base:8.1f}  {note}")


if __name__ == "__main__":
    main()
