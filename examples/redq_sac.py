"""REDQ-style SAC (Chen et al., 2021): ten critics, the target's min over a random pair.

Ten critics are one ``networks`` argument; the random pair in the target and the actor
through the mean of all critics are two small losses.  ``python examples/redq_sac.py``
"""

import argparse

import funrl
from funrl import distributions as D
from funrl import losses
from funrl import nn as fnn
from funrl import population as pop
from funrl.algos import sac


def redq_critic_loss(nets, config, critic_params, params, target_params, batch, key, hp, alpha):
    k_next, k_pair = funrl.random.split(key)
    mean, log_std = nets.actor.apply(params["actor"], batch["next_obs"])
    a_next, logp = D.TanhNormal(mean, log_std.exp()).sample_and_log_prob(k_next)
    q_next = nets.critic.apply(target_params["critic"], batch["next_obs"], a_next)  # [10, B]
    q_pair = funrl.random.permutation(k_pair, q_next)[:2].min(0).values.detach()
    q = nets.critic.apply(critic_params, batch["obs"], batch["action"])
    return losses.sac_critic_loss(q, batch["reward"], batch["terminated"], hp.gamma, q_pair,
                                  logp.detach(), alpha)  # fmt: skip


def redq_actor_loss(nets, config, actor_params, critic_params, obs, key, hp, alpha):
    mean, log_std = nets.actor.apply(actor_params, obs)
    a, logp = D.TanhNormal(mean, log_std.exp()).sample_and_log_prob(key)
    q = nets.critic.apply(critic_params, obs, a).mean(0)  # all ten critics
    loss, metrics = losses.sac_actor_loss(logp, q, alpha)
    return loss, (metrics, logp.detach())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    quick = p.parse_args().quick
    steps = 300 if quick else 10_000
    cfg = sac.Config(env="Pendulum-v1", hidden=(64, 64), learning_starts=100, buffer_size=steps,
                     gradient_steps=2 if quick else 10, total_timesteps=steps)  # fmt: skip
    env, env_params = funrl.make(cfg.env)
    obs_dim, space = env.observation_space(env_params).shape[0], env.action_space(env_params)
    critic = fnn.ensemble(fnn.continuous_q_net(obs_dim, space.shape[0], cfg.hidden), 10)
    nets = sac.default_networks(cfg, obs_dim, space)._replace(critic=critic)
    algo = sac.make(cfg, networks=nets, critic_loss_fn=redq_critic_loss,
                    actor_loss_fn=redq_actor_loss, name="redq-sac")  # fmt: skip
    key = funrl.random.key(0)
    result = funrl.train(algo, key, sac.HParams.create(), compile=not quick, progress=False)
    print(f"redq-sac, 10 critics: eval return {result.eval_return:.1f} in {result.env_steps} steps")
    hps = pop.hparams(sac.HParams, 2, critic_lr=[3e-4, 1e-3])
    res = pop.train(algo, pop.member_keys(key, 2), hps, num_updates=150, compile=False)
    print(f"as a 2-member population: eval returns {res.eval_returns.tolist()}")


if __name__ == "__main__":
    main()
