import pytest
import torch

import funrl
from funrl import nn as fnn
from funrl import tree
from funrl.algos import ddpg, units
from funrl.testing import assert_trees_close

GRID = torch.tensor([[-1.0], [-0.5], [0.0], [0.5], [1.0]])
TINY = ddpg.Config(
    env="Pendulum-v1",
    num_envs=4,
    train_freq=2,
    gradient_steps=2,
    batch_size=8,
    learning_starts=0,
    buffer_size=64,
    hidden=(16,),
)


def run(algo, key, hp, updates):
    state = algo.init(key, hp)
    for _ in range(updates):
        state, metrics = algo.update(state, hp)
    return state, metrics


def test_probe_deterministic_action_approaches_optimum():
    cfg = ddpg.Config(
        env="funrl/ContinuousActionReward-v0",
        num_envs=8,
        gradient_steps=2,
        batch_size=64,
        learning_starts=64,
        buffer_size=1024,
        hidden=(64, 64),
        total_timesteps=8 * 100,
    )
    algo = ddpg.make(cfg)
    r = funrl.train(
        algo,
        funrl.random.key(0),
        ddpg.HParams.create(actor_lr=3e-3, critic_lr=3e-3),
        compile=False,
        progress=False,
        eval_episodes=8,
    )
    a = algo.act(algo.act_params(r.state), GRID)[:, 0]
    err = (a - GRID[:, 0] / 2).abs()
    assert err.max() < 0.15 and err.mean() < 0.07, a
    assert r.eval_return > -0.01


def test_single_critic_actor_every_step():
    algo = ddpg.make(TINY)
    state, m = run(algo, funrl.random.key(0), ddpg.HParams.create(), 2)
    assert state.params["critic"]["0.weight"].shape == (16, 4)  # one critic, no ensemble dim
    assert int(state.opt_state["actor"].count) == int(state.opt_state["critic"].count) == 4
    assert torch.isfinite(m["actor_loss"])


def test_exploration_noise_and_random_start():
    """Before learning_starts: uniform in [-1, 1]; after, with zero noise: exactly mu(obs)."""
    cfg = ddpg.Config(**{**TINY.__dict__, "learning_starts": 8, "gradient_steps": 1})
    algo = ddpg.make(cfg)
    hp = ddpg.HParams.create(exploration_noise=0.0)
    state = algo.init(funrl.random.key(0), hp)
    state, _ = algo.update(state, hp)  # 8 random steps, no learning yet
    actor = fnn.deterministic_policy(3, 1, cfg.hidden)
    data = state.buffer.data
    mu = actor.apply(state.params["actor"], data["obs"][:8])
    assert not torch.allclose(data["action"][:8], mu)
    assert data["action"][:8].abs().max() <= 1.0
    before = state.params["actor"]
    state, _ = algo.update(state, hp)  # collected with the (not yet updated) actor
    assert torch.allclose(
        state.buffer.data["action"][8:16], actor.apply(before, state.buffer.data["obs"][8:16])
    )


def test_determinism_same_key_same_params():
    algo = ddpg.make(TINY)
    hp = ddpg.HParams.create()
    a, _ = run(algo, funrl.random.key(3), hp, 2)
    b, _ = run(algo, funrl.random.key(3), hp, 2)
    assert tree.all_equal(a, b)


def test_population_units_match_members_alone():
    single = ddpg.make(TINY)
    hp_list = [
        ddpg.HParams.create(actor_lr=1e-3),
        ddpg.HParams.create(tau=0.05, exploration_noise=0.3),
    ]
    keys = funrl.random.split(funrl.random.key(0), 2)
    alone = [run(single, k, hp, 1)[0] for k, hp in zip(keys, hp_list)]
    pop = single.with_units(units.population())
    hps = tree.stack(hp_list)
    states = torch.func.vmap(single.init, randomness="error")(keys, hps)
    states, metrics = pop.update(states, hps)
    assert metrics["actor_loss"].shape == (2,)
    expected = tree.stack([(s.params, s.target_params) for s in alone])
    assert_trees_close((states.params, states.target_params), expected, rtol=1e-4, atol=1e-5)


def test_bad_hparams_rejected():
    with pytest.raises(ValueError, match="exploration_noise"):
        ddpg.HParams.create(exploration_noise=-1.0).check()
    with pytest.raises(ValueError, match=r"unknown field.*policy_noise"):
        ddpg.HParams.create(policy_noise=0.2)


def test_discrete_env_rejected():
    with pytest.raises(ValueError, match=r"DDPG \(continuous\) needs a 1-d Box action space"):
        ddpg.make(ddpg.Config(env="funrl/ActionReward-v0"))
