"""PPO with V-trace advantages recomputed on every minibatch (IMPALA's correction, per step).

``Config(recompute_advantages=True)`` calls ``advantage_fn`` on each minibatch (whole env
trajectories) with the current parameters: after the first gradient step the importance
ratios pi/mu move away from 1 and V-trace corrects for it.  Run once per rollout, V-trace
would see ratios of exactly 1 and equal GAE.

    python examples/ppo_vtrace.py [--quick]
"""

import argparse

import torch

import funrl
from funrl import population as pop
from funrl import returns
from funrl.algos import ppo


def vtrace_advantages(nets, config, params, traj, hp):
    """``(pg_advantages, vs, metrics)`` under the current policy; all stop-gradient."""
    with torch.no_grad():
        logp = nets.distribution(nets.actor.apply(params["actor"], traj.obs)).log_prob(traj.action)
        log_rho = logp - traj.extras["logp"]
        v_t = nets.critic.apply(params["critic"], traj.obs)
        v_tp1 = nets.critic.apply(params["critic"], traj.next_obs)
    out = returns.vtrace(traj.reward, v_t, v_tp1, traj.terminated, traj.truncated, log_rho,
                         hp.gamma, hp.gae_lambda)  # fmt: skip
    return out.pg_advantages, out.vs, {"ratio_error": (log_rho.exp() - 1).abs().mean()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    updates = 3 if args.quick else 150
    cfg = ppo.Config(num_envs=8, num_steps=32, recompute_advantages=True,
                     total_timesteps=8 * 32 * updates)  # fmt: skip
    algo = ppo.make(cfg, advantage_fn=vtrace_advantages, name="ppo-vtrace")
    key, hp = funrl.random.key(0), ppo.HParams.create()
    _, metrics = algo.update(algo.init(key, hp), hp)
    ratio_error = float(metrics["ratio_error"])  # mean over the update's 16 minibatches
    assert ratio_error > 0, "V-trace saw ratios of exactly 1"
    print(f"mean |pi/mu - 1| seen by V-trace in one update: {ratio_error:.4f} (GAE: 0)")
    result = funrl.train(algo, key, hp, compile=not args.quick, progress=False)
    print(f"ppo + per-minibatch V-trace: eval return {result.eval_return:.1f}")
    hps = pop.hparams(ppo.HParams, 2, lr=[1e-3, 3e-3])
    res = pop.train(algo, pop.member_keys(key, 2), hps, num_updates=2, compile=False,
                    progress=False, eval_episodes=2)  # fmt: skip
    print(f"as a 2-member population: eval returns {res.eval_returns.tolist()}")


if __name__ == "__main__":
    main()
