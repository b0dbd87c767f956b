import dataclasses

import numpy as np
import pytest
import torch

import funrl
from funrl import tree
from funrl.algos import td3, units
from funrl.testing import assert_trees_close, check_transforms

GRID = torch.tensor([[-1.0], [-0.5], [0.0], [0.5], [1.0]])
# Learning from the first update: batch_size <= num_envs * train_freq.
TINY = td3.Config(
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


def steps(opt_state):
    """Optimizer steps taken (the count Adam's state keeps)."""
    return int(opt_state.count)


def test_probe_deterministic_action_approaches_optimum():
    """ContinuousActionReward: a* = obs / 2; a uniform policy is off by ~0.5 on this grid."""
    cfg = td3.Config(
        env="funrl/ContinuousActionReward-v0",
        num_envs=8,
        gradient_steps=2,
        batch_size=64,
        learning_starts=64,
        buffer_size=1024,
        hidden=(64, 64),
        total_timesteps=8 * 100,
    )
    algo = td3.make(cfg)
    r = funrl.train(
        algo,
        funrl.random.key(0),
        td3.HParams.create(actor_lr=3e-3, critic_lr=3e-3),
        compile=False,
        progress=False,
        eval_episodes=8,
    )
    a = algo.act(algo.act_params(r.state), GRID)[:, 0]
    err = (a - GRID[:, 0] / 2).abs()
    assert err.max() < 0.15 and err.mean() < 0.07, a
    assert r.eval_return > -0.01


def test_delayed_policy_updates_static_schedule():
    """gradient_steps % policy_delay == 0: the learn units know statically when the actor steps."""
    cfg = td3.Config(**{**TINY.__dict__, "gradient_steps": 4, "policy_delay": 2})
    algo = td3.make(cfg)
    hp = td3.HParams.create()
    state, m = run(algo, funrl.random.key(0), hp, 2)
    assert steps(state.opt_state["critic"]) == 8 and steps(state.opt_state["actor"]) == 4
    assert torch.isfinite(m["actor_loss"]) and torch.isfinite(m["critic_loss"])


def test_delayed_policy_updates_masked_schedule():
    """gradient_steps % policy_delay != 0: the actor/target step is masked by grad_step."""
    cfg = td3.Config(**{**TINY.__dict__, "gradient_steps": 1, "policy_delay": 3})
    algo = td3.make(cfg)
    hp = td3.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    actor_steps, target_moved = [], []
    for _ in range(7):
        prev = state
        state, m = algo.update(state, hp)
        actor_steps.append(steps(state.opt_state["actor"]))
        target_moved.append(not tree.all_equal(state.target_params, prev.target_params))
        assert torch.isfinite(m["actor_loss"]) == target_moved[-1]
    assert actor_steps == [1, 1, 1, 2, 2, 2, 3]  # at grad_step 0, 3, 6
    assert target_moved == [True, False, False, True, False, False, True]
    assert steps(state.opt_state["critic"]) == 7


def test_target_policy_smoothing_changes_the_critic_target():
    algo = td3.make(TINY)
    a, _ = run(algo, funrl.random.key(0), td3.HParams.create(policy_noise=0.0), 1)
    b, _ = run(algo, funrl.random.key(0), td3.HParams.create(policy_noise=0.5), 1)
    assert tree.all_equal(a.buffer, b.buffer)
    assert not tree.all_equal(a.params["critic"], b.params["critic"])


def test_twin_critics_and_act():
    algo = td3.make(TINY)
    hp = td3.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    assert state.params["critic"]["0.weight"].shape == (2, 16, 4)  # two critics, obs 3 + act 1
    p = algo.act_params(state)
    det = algo.act(p, torch.zeros(5, 3))
    sto = algo.act(p, torch.zeros(5, 3), funrl.random.key(1), deterministic=False)
    assert det.shape == sto.shape == (5, 1) and (sto.abs() <= 1).all() and not torch.equal(det, sto)


def test_determinism_same_key_same_params():
    algo = td3.make(TINY)
    hp = td3.HParams.create()
    a, _ = run(algo, funrl.random.key(3), hp, 2)
    b, _ = run(algo, funrl.random.key(3), hp, 2)
    c, _ = run(algo, funrl.random.key(4), hp, 2)
    assert tree.all_equal(a, b)
    assert not tree.all_equal(a.params, c.params)


def test_population_units_match_members_alone():
    single = td3.make(TINY)
    hp_list = [
        td3.HParams.create(actor_lr=1e-3),
        td3.HParams.create(critic_lr=3e-3, policy_noise=0.1),
    ]
    keys = funrl.random.split(funrl.random.key(0), 2)
    alone = [run(single, k, hp, 1)[0] for k, hp in zip(keys, hp_list)]
    pop = single.with_units(units.population())
    hps = tree.stack(hp_list)
    states = torch.func.vmap(single.init, randomness="error")(keys, hps)
    states, metrics = pop.update(states, hps)
    assert metrics["critic_loss"].shape == (2,)
    expected = tree.stack([(s.params, s.target_params) for s in alone])
    assert_trees_close((states.params, states.target_params), expected, rtol=1e-4, atol=1e-5)


def test_bad_hparams_rejected():
    with pytest.raises(ValueError, match="noise_clip"):
        td3.HParams.create(noise_clip=-0.1).check()
    with pytest.raises(ValueError, match="gamma"):
        td3.make(TINY).init(funrl.random.key(0), td3.HParams.create(gamma=2.0))
    with pytest.raises(TypeError, match="policy_noise"):
        td3.HParams.create(policy_noise="big")


def test_bad_config_rejected():
    with pytest.raises(ValueError, match="policy_delay"):
        td3.make(td3.Config(policy_delay=0))
    with pytest.raises(ValueError, match="gradient_steps"):
        td3.make(td3.Config(gradient_steps=-1))


def test_discrete_env_rejected():
    with pytest.raises(ValueError, match=r"TD3 \(continuous\) needs a 1-d Box action space"):
        td3.make(td3.Config(env="CartPole-v1"))


def test_ou_noise_is_sb3s_recurrence():
    """SB3's OrnsteinUhlenbeckActionNoise: x + theta (mu - x) dt + sigma sqrt(dt) z, mu = 0."""
    key, x = funrl.random.key(4), torch.tensor([0.3, -0.2], dtype=torch.float64)
    for sigma, theta, dt in [(0.5, 0.15, 1e-2), (0.2, 1.0, 0.1)]:
        z = funrl.random.normal(key, (2,), dtype=torch.float64).numpy()
        want = x.numpy() + theta * (0.0 - x.numpy()) * dt + sigma * np.sqrt(dt) * z
        got = td3.ou_noise(x, key, sigma, theta, dt)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_ou_noise_eager_vmap_compile():
    """The shared battery: the same noise eagerly, under vmap and compiled."""
    noise = torch.linspace(-1.0, 1.0, 6).reshape(3, 2)
    keys = funrl.random.split(funrl.random.key(5), 3)
    check_transforms(lambda x, k: td3.ou_noise(x, k, 0.5), noise, keys, members=1)


OU = td3.Config(
    env="Pendulum-v1",
    num_envs=2,
    train_freq=250,  # Pendulum truncates every 200 steps: one reset inside the update
    gradient_steps=0,  # the actor never changes, so action - mu(obs) is the noise
    learning_starts=0,
    buffer_size=1000,
    batch_size=8,
    hidden=(16,),
    action_noise="ou",
)


def test_ou_exploration_follows_the_process_and_resets_at_episode_ends():
    algo, hp = td3.make(OU), td3.HParams.create(exploration_noise=0.1)
    state = algo.init(funrl.random.key(0), hp)
    assert isinstance(state, td3.OUTrainState) and state.noise.shape == (2, 1)
    # env 1 starts 50 steps into its episode: it truncates at t = 149, env 0 at t = 199
    env_state = state.collector.env_state
    inner = env_state.inner.replace(time=torch.tensor([0, 50]))
    state = state.replace(
        collector=state.collector._replace(env_state=env_state.replace(inner=inner))
    )
    carry_key, actor = state.collector.key, state.params["actor"]
    state, _ = algo.update(state, hp)
    rows = state.buffer.data  # rows t * num_envs + env, in step order
    noise = rows["action"] - algo.networks.actor.apply(actor, rows["obs"])
    # the naive loop: the collector's key chain, one OU step per env step, each env's
    # noise back at 0 after its own episode end
    x, want = torch.zeros(2, 1), []
    for t in range(250):
        k_policy, _, carry_key = funrl.random.split(carry_key, 3)
        k_noise, _ = funrl.random.split(k_policy)
        x = td3.ou_noise(x, k_noise, 0.1, OU.ou_theta, OU.ou_dt)
        want.append(x)
        x = torch.where(torch.tensor([[t == 199], [t == 149]]), 0.0, x)
    want = torch.cat(want)
    assert want.abs().max() < 0.5  # no action clipped: the difference is the noise itself
    torch.testing.assert_close(noise[:500], want, rtol=0, atol=1e-5)
    torch.testing.assert_close(state.noise, want[-2:], rtol=0, atol=1e-7)
    # correlated: consecutive steps differ by ~sigma sqrt(dt) = 0.01, far less than the noise
    steps = (want[2:400] - want[:398]).abs().mean()
    assert steps < 0.02 < want[300:400].abs().mean()


def test_ou_population_matches_members_alone():
    cfg = dataclasses.replace(OU, train_freq=4, gradient_steps=2, learning_starts=4)
    single = td3.make(cfg)
    hp_list = [td3.HParams.create(exploration_noise=0.5), td3.HParams.create(actor_lr=1e-3)]
    keys = funrl.random.split(funrl.random.key(0), 2)
    alone = [run(single, k, hp, 3)[0] for k, hp in zip(keys, hp_list)]
    pop = single.with_units(units.population())
    hps = tree.stack(hp_list)
    states = torch.func.vmap(single.init, randomness="error")(keys, hps)
    for _ in range(3):
        states, _ = pop.update(states, hps)
    expected = tree.stack([(s.params, s.noise) for s in alone])
    assert_trees_close((states.params, states.noise), expected, rtol=1e-4, atol=1e-5)


def test_resuming_a_host_env_run_restarts_the_noise():
    """A host env's episodes start afresh on resume (its simulator is not checkpointed),
    and so does every env's OU noise."""
    pytest.importorskip("gymnasium")
    from funrl.algos.common import restart_episodes

    cfg = dataclasses.replace(OU, env="gym:Pendulum-v1", train_freq=4)
    algo, hp = td3.make(cfg), td3.HParams.create()
    state, _ = algo.update(algo.init(funrl.random.key(0), hp), hp)
    assert bool((state.noise != 0).all())
    restarted = restart_episodes(algo.env_stack, state)
    assert isinstance(restarted, td3.OUTrainState) and bool((restarted.noise == 0).all())
    assert tree.all_equal(restarted.params, state.params)


def test_bad_action_noise_rejected():
    with pytest.raises(ValueError, match="action_noise must be one of 'gaussian', 'ou'"):
        td3.make(td3.Config(action_noise="pink"))
    with pytest.raises(ValueError, match="ou_theta must be a number > 0"):
        td3.make(td3.Config(action_noise="ou", ou_theta=0.0))
    with pytest.raises(ValueError, match="ou_theta \\* ou_dt must be < 1"):
        td3.make(td3.Config(action_noise="ou", ou_theta=2.0, ou_dt=0.5))
