"""Quickstart: train PPO on CartPole, evaluate it, save a checkpoint, export the policy.

python examples/quickstart.py            # ~200k steps, compiled (a minute or two)
python examples/quickstart.py --quick    # a few updates, eager (seconds)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import funrl
from funrl import checkpoint, export
from funrl.algos import ppo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny run for a smoke test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for metrics, checkpoint and policy")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out or tempfile.mkdtemp(prefix="funrl-quickstart-"))

    # 1. An algorithm is pure functions made from a static config ...
    if args.quick:
        config = ppo.Config(
            env="CartPole-v1", num_envs=4, num_steps=32, hidden=(16, 16), total_timesteps=4 * 4 * 32
        )
    else:
        config = ppo.Config(env="CartPole-v1", total_timesteps=200_000)
    algo = ppo.make(config)
    # ... and every float you may sweep is a 0-d tensor in HParams.
    hparams = ppo.HParams.create(lr=2.5e-3)

    # 2. The host loop: compile, progress, metrics files, evaluation.
    result = funrl.train(
        algo,
        funrl.random.key(args.seed),
        hparams,
        compile=not args.quick,
        out_dir=out / "run",
        progress=not args.quick,
        eval_episodes=5,
    )
    print(
        f"trained {result.env_steps:,} steps in {result.wall_time_s:.1f} s; "
        f"eval return {result.eval_return:.1f}"
    )

    # 3. Evaluate again with another key: returns of 10 deterministic episodes.
    returns = funrl.evaluate(algo, result.state, funrl.random.key(123), num_episodes=10)
    print(f"evaluation: mean {returns.nanmean():.1f} over {returns.numel()} episodes")

    # 4. Checkpoint the whole train state; reload and check it is bit-identical.
    path = checkpoint.save(out / "final.pt", result.state, algo=algo, hparams=hparams)
    restored = checkpoint.load(path, algo=algo, like=result.state)
    assert funrl.tree.all_equal(restored.state, result.state)
    print(f"checkpoint: {path}  (try: funrl eval {path})")

    # 5. Export the deterministic policy: runs with torch alone, no funrl needed.
    exported = export.export_policy(algo, result.state, out / "policy.pt2")
    policy = export.load_policy(exported.path)
    obs = torch.zeros(1, 4)
    print(f"exported ({exported.format}): action for a centred pole = {int(policy(obs)[0])}")


if __name__ == "__main__":
    main()
