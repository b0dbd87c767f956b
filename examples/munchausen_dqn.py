"""Munchausen-DQN (Vieillard et al., 2020) as a DQN loss: a new target, nothing copied.

``y = r + alpha * tau * clip(log pi(a|s), l0, 0)
      + discount * sum_a' pi(a'|s') (q'(s', a') - tau log pi(a'|s'))``, ``pi = softmax(q'/tau)``
of the target network.  Its three numbers live in an HParams subclass, so they vmap.

    python examples/munchausen_dqn.py [--quick]
"""

import argparse

import torch

import funrl
from funrl import losses, tree
from funrl import population as pop
from funrl.algos import dqn, hparam


@tree.struct
class MunchausenHParams(dqn.HParams):
    m_tau: torch.Tensor = hparam(0.03, low=0.0, low_open=True)  # entropy temperature
    m_alpha: torch.Tensor = hparam(0.9, low=0.0, high=1.0)  # Munchausen scaling
    m_clip: torch.Tensor = hparam(-1.0, high=0.0)  # l0, the lower clip of log pi


def munchausen_loss(nets, config, params, target_params, batch, hp):
    a = batch["action"][:, None]
    q_tm1 = nets.q.apply(params, batch["obs"]).gather(-1, a).squeeze(-1)
    with torch.no_grad():
        log_pi_tm1 = torch.log_softmax(nets.q.apply(target_params, batch["obs"]) / hp.m_tau, -1)
        q_t = nets.q.apply(target_params, batch["next_obs"])
        log_pi_t = torch.log_softmax(q_t / hp.m_tau, -1)
        v_t = (log_pi_t.exp() * (q_t - hp.m_tau * log_pi_t)).sum(-1)
        log_pi_a = torch.maximum(log_pi_tm1.gather(-1, a).squeeze(-1), hp.m_clip)  # <= 0
        y = batch["reward"] + hp.m_alpha * hp.m_tau * log_pi_a + batch["discount"] * v_t
    td = y - q_tm1
    loss = (losses.huber_loss(td) * batch.get("weights", torch.ones_like(td))).mean()
    return loss, {"td_error": td.detach(), "q_mean": q_tm1.detach().mean()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    steps = 2_000 if args.quick else 50_000
    cfg = dqn.Config(num_envs=4, learning_starts=500, total_timesteps=steps, batch_size=64)
    algo = dqn.make(cfg, loss_fn=munchausen_loss, hparams_cls=MunchausenHParams, name="m-dqn")
    hp, key = MunchausenHParams.create(), funrl.random.key(0)
    result = funrl.train(algo, key, hp, compile=not args.quick, progress=False)
    print(f"munchausen-dqn: eval return {result.eval_return:.1f} after {result.env_steps} steps")
    hps = pop.hparams(MunchausenHParams, 2, m_tau=[0.01, 0.03])
    res = pop.train(algo, pop.member_keys(key, 2), hps, num_updates=30, compile=False,
                    progress=False, eval_episodes=2)  # fmt: skip
    print(f"as a 2-member population (tau 0.01, 0.03): eval returns {res.eval_returns.tolist()}")


if __name__ == "__main__":
    main()
