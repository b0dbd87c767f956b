"""TD3 with layer-norm critics: one ``networks`` argument, the rest of TD3 unchanged.

A LayerNorm after every hidden layer of both critics (as in Ball et al., 2023) keeps
Q-values bounded when the data are far from the current policy's.

    python examples/td3_layernorm.py [--quick]
"""

import argparse

import funrl
from funrl import nn as fnn
from funrl import population as pop
from funrl.algos import td3


def layer_norm_networks(config: td3.Config) -> td3.Networks:
    env, env_params = funrl.make(config.env)
    obs_dim = env.observation_space(env_params).shape[0]
    act_dim = env.action_space(env_params).shape[0]
    q = fnn.continuous_q_net(obs_dim, act_dim, config.hidden, norm="layer")
    nets = td3.default_networks(config, obs_dim, act_dim)
    return nets._replace(critic=fnn.ensemble(q, config.num_critics))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    quick = p.parse_args().quick
    steps = 300 if quick else 20_000
    cfg = td3.Config(env="Pendulum-v1", hidden=(64, 64), learning_starts=100 if quick else 1000,
                     buffer_size=steps, total_timesteps=steps)  # fmt: skip
    algo = td3.make(cfg, networks=layer_norm_networks(cfg), name="td3-layernorm")
    key = funrl.random.key(0)
    result = funrl.train(algo, key, td3.HParams.create(), compile=not quick, progress=False)
    norms = sorted(k for k in result.state.params["critic"] if k.startswith("1."))
    print(f"td3 + layer-norm critics {norms}: eval return {result.eval_return:.1f}")
    hps = pop.hparams(td3.HParams, 2, critic_lr=[3e-4, 1e-3])
    res = pop.train(algo, pop.member_keys(key, 2), hps, num_updates=150, compile=False)
    print(f"as a 2-member population: eval returns {res.eval_returns.tolist()}")


if __name__ == "__main__":
    main()
