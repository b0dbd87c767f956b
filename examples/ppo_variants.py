"""PPO variants by composition: each is ``ppo.make`` with another part, a few lines each.

1. TD(lambda) targets through ``advantage_fn`` (and a check that they equal GAE's).
2. A2C expressed as PPO: one epoch over one minibatch, no clipping.
3. PPO with an adaptive KL penalty instead of clipping, through ``loss_fn``.

    python examples/ppo_variants.py [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

import funrl
from funrl import distributions as D
from funrl import losses, returns, tree
from funrl.algos import hparam, ppo

# ---- 1. TD(lambda) value targets -----------------------------------------------------


def td_lambda_advantages(
    nets: Any, config: Any, params: Any, traj: Any, hp: Any
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """``(G^lambda - V, G^lambda, {})``: the lambda-return as the value target."""
    v_tp1 = nets.critic.apply(params["critic"], traj.next_obs)
    target = returns.lambda_returns(
        traj.reward, v_tp1, traj.terminated, traj.truncated, hp.gamma, hp.gae_lambda
    )
    return target - traj.extras["value"], target, {}


# ---- 2. A2C as PPO: with one gradient step per rollout the ratio is exactly 1, so the
# clipped surrogate's gradient is the plain policy gradient.


def a2c_as_ppo(env: str, **sizes: Any) -> Any:
    cfg = ppo.Config(
        env=env,
        update_epochs=1,
        num_minibatches=1,
        clip_value=False,
        normalize_advantages=False,
        anneal_lr=False,
        **sizes,
    )
    return ppo.make(cfg, name="a2c-as-ppo")


# ---- 3. PPO-KL: a penalty beta * KL(old || new), beta adapted between updates -------------


@tree.struct
class KLHParams(ppo.HParams):
    """PPO's HParams plus ``beta`` (the KL coefficient) and ``target_kl``."""

    beta: torch.Tensor = hparam(1.0, low=0.0)
    target_kl: torch.Tensor = hparam(0.01, low=0.0, low_open=True)


def kl_penalty_loss(nets: Any, config: Any, params: Any, mb: dict, hp: KLHParams) -> Any:
    dist = nets.distribution(nets.actor.apply(params["actor"], mb["obs"]))
    logp = dist.log_prob(mb["action"])
    # per-sample KL(old || new) from the log-ratio (k3 estimator; the batch holds only the
    # behaviour log-probs, not the old distribution's parameters)
    log_ratio = logp - mb["logp"]
    kl_t = torch.exp(log_ratio) - 1 - log_ratio
    pg, diag = losses.ppo_kl_penalty_loss(logp, mb["logp"], mb["advantage"], kl_t, hp.beta)
    v = nets.critic.apply(params["critic"], mb["obs"])
    vl, _ = losses.value_loss(v, mb["target"])
    total = pg + hp.vf_coef * vl - hp.ent_coef * dist.entropy().mean()
    return total, {"loss": total, "kl": diag["kl"], "approx_kl": diag["approx_kl"]}


def policy_kl(actor: Any, before: Any, after: Any, obs: torch.Tensor) -> torch.Tensor:
    """Exact mean KL(before || after) of the categorical policies on ``obs``."""
    p = D.Categorical(actor.apply(before.params["actor"], obs))
    q = D.Categorical(actor.apply(after.params["actor"], obs))
    return D.kl_divergence(p, q).mean()


def train_kl(config: ppo.Config, updates: int, seed: int) -> tuple[float, list[float]]:
    algo = ppo.make(config, loss_fn=kl_penalty_loss, hparams_cls=KLHParams, name="ppo-kl")
    actor = algo.networks.actor  # the algorithm exposes its networks
    hp = KLHParams.create()
    state = algo.init(funrl.random.key(seed), hp)
    betas = []
    for _ in range(updates):
        obs = state.collector.obs
        new, _ = algo.update(state, hp)
        kl = policy_kl(actor, state, new, obs)  # exact, with distributions.kl_divergence
        hp = hp.replace(beta=losses.adapt_kl_beta(hp.beta, kl, hp.target_kl))
        state = new
        betas.append(float(hp.beta))
    rets = funrl.evaluate(algo, state, funrl.random.key(seed + 1), num_episodes=5)
    return float(rets.nanmean()), betas


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    sizes = (
        dict(num_envs=4, num_steps=32, hidden=(16, 16))
        if args.quick
        else dict(num_envs=8, num_steps=128)
    )
    updates = 2 if args.quick else 100
    key = funrl.random.key(args.seed)
    train = dict(num_updates=updates, compile=False, progress=False, eval_episodes=5)

    # 1. TD(lambda): the same trajectory gives the same targets as GAE + V (an identity).
    cfg = ppo.Config(env="CartPole-v1", **sizes)
    td = ppo.make(cfg, advantage_fn=td_lambda_advantages, name="ppo-td-lambda")
    hp = ppo.HParams.create()
    r = funrl.train(td, key, hp, **train)
    print(f"ppo + TD(lambda) targets: eval return {r.eval_return:.1f}")
    base = ppo.make(cfg)
    s0 = base.init(key, hp)
    s1, _ = base.update(s0, hp)
    s2, _ = td.update(s0, hp)
    assert tree.allclose(s1.params, s2.params, rtol=1e-4, atol=1e-5), "TD(lambda) != GAE + V"
    print("  (one update from the same state matches GAE's, as lambda-return = GAE + V)")

    # 2. A2C as PPO.
    a2c = a2c_as_ppo("CartPole-v1", **sizes)
    r = funrl.train(a2c, key, ppo.HParams.create(lr=7e-4), **train)
    print(f"a2c as ppo (1 epoch, 1 minibatch, no clipping): eval return {r.eval_return:.1f}")

    # 3. PPO-KL with the adaptive beta of the PPO paper.
    ret, betas = train_kl(cfg, updates, args.seed)
    print(
        f"ppo-kl (adaptive beta): eval return {ret:.1f}; beta went {betas[0]:.3g} -> {betas[-1]:.3g}"
    )


if __name__ == "__main__":
    main()
