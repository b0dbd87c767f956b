import pytest
import torch

import funrl
from funrl import tree
from funrl.algos import ppo, units
from funrl.testing import assert_trees_close

TINY = ppo.Config(env="CartPole-v1", num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2)


def critic(algo, state, obs):
    return algo.networks.critic.apply(state.params["critic"], obs)


def probe_run(env, updates=30, **hp):
    cfg = ppo.Config(
        env=env,
        num_envs=8,
        num_steps=16,
        total_timesteps=8 * 16 * updates,
        hidden=(32,),
        anneal_lr=False,
    )
    algo = ppo.make(cfg)
    result = funrl.train(
        algo,
        funrl.random.key(0),
        ppo.HParams.create(lr=3e-3, **hp),
        compile=False,
        progress=False,
        eval_episodes=8,
    )
    return algo, result


OBS = torch.tensor([[-1.0], [1.0]])


def test_probe_constant_reward_value_is_one():
    algo, r = probe_run("funrl/ConstantReward-v0")
    assert torch.allclose(critic(algo, r.state, OBS), torch.ones(2), atol=0.15)


def test_probe_observation_reward_value_tracks_observation():
    algo, r = probe_run("funrl/ObservationReward-v0")
    assert torch.allclose(critic(algo, r.state, OBS), OBS[:, 0], atol=0.1)


def test_probe_two_step_discounting():
    algo, r = probe_run("funrl/TwoStepDiscount-v0", updates=60, gamma=0.5)
    v = critic(algo, r.state, torch.tensor([[0.0], [1.0]]))
    assert torch.allclose(v, torch.tensor([0.5, 1.0]), atol=0.1)


def test_probe_action_reward_learns_optimal_policy():
    algo, r = probe_run("funrl/ActionReward-v0")
    assert algo.act(algo.act_params(r.state), OBS).tolist() == [0, 1]
    assert r.eval_return == pytest.approx(1.0)


def test_probe_continuous_action_reward():
    algo, r = probe_run("funrl/ContinuousActionReward-v0")
    a = algo.act(algo.act_params(r.state), OBS)
    assert torch.allclose(a[:, 0], OBS[:, 0] / 2, atol=0.1)


@pytest.mark.slow
def test_ppo_solves_cartpole_in_a_ci_budget():
    cfg = ppo.Config(env="CartPole-v1", num_envs=16, num_steps=64, total_timesteps=100_000)
    algo = ppo.make(cfg)
    r = funrl.train(
        algo,
        funrl.random.key(0),
        ppo.HParams.create(),
        compile=False,
        progress=False,
        eval_every=10,
        target_return=475.0,
    )
    assert r.eval_return >= 475.0, r.eval_return
    assert r.reached_target_at is not None and r.reached_target_at <= 100_000


def test_update_metrics_and_counters():
    algo = ppo.make(TINY)
    hp = ppo.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    state, m = algo.update(state, hp)
    assert int(state.update_step) == 1
    for k in (
        "loss",
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
        "explained_variance",
        "grad_norm",
        "episode_return",
        "episodes",
    ):
        assert k in m and m[k].shape == ()
    assert torch.isfinite(m["loss"])


def test_determinism_eager_and_compiled():
    hp = ppo.HParams.create()

    def run(algo):
        s = algo.init(funrl.random.key(3), hp)
        for _ in range(2):
            s, _ = algo.update(s, hp)
        return s

    eager = ppo.make(TINY)
    a, b = run(eager), run(eager)
    assert tree.all_equal(a.params, b.params)
    comp = eager.with_units(units.compiled)
    c, d = run(comp), run(comp)
    assert tree.all_equal(c.params, d.params)
    assert_trees_close(c.params, a.params, rtol=1e-3, atol=1e-4)


def test_population_units_match_members_alone():
    hp_list = [ppo.HParams.create(lr=1e-3), ppo.HParams.create(lr=3e-3)]
    keys = funrl.random.split(funrl.random.key(0), 2)
    single = ppo.make(TINY)
    alone = []
    for k, hp in zip(keys, hp_list):
        s = single.init(k, hp)
        s, _ = single.update(s, hp)
        alone.append(s.params)
    pop = single.with_units(units.population())
    hps = tree.stack(hp_list)
    states = torch.func.vmap(single.init, randomness="error")(keys, hps)
    states, metrics = pop.update(states, hps)
    assert metrics["loss"].shape == (2,)
    assert_trees_close(states.params, tree.stack(alone), rtol=1e-4, atol=1e-5)


def test_whole_update_is_vmappable():
    algo = ppo.make(
        ppo.Config(env="CartPole-v1", num_envs=2, num_steps=4, num_minibatches=1, update_epochs=1)
    )
    hps = tree.stack([ppo.HParams.create(), ppo.HParams.create(lr=1e-2)])
    states = torch.func.vmap(algo.init, randomness="error")(
        funrl.random.split(funrl.random.key(1), 2), hps
    )
    new, m = torch.func.vmap(algo.update, randomness="error")(states, hps)
    assert m["loss"].shape == (2,)
    assert not tree.all_equal(new.params["actor"], states.params["actor"])


@pytest.mark.parametrize("policy", ["gaussian", "tanh_gaussian"])
def test_continuous_policies_run_on_pendulum(policy):
    cfg = ppo.Config(
        env="Pendulum-v1",
        num_envs=2,
        num_steps=8,
        num_minibatches=2,
        update_epochs=1,
        policy=policy,
        normalize_obs=True,
        normalize_reward=True,
    )
    algo = ppo.make(cfg)
    hp = ppo.HParams.create()
    s, m = algo.update(algo.init(funrl.random.key(0), hp), hp)
    a = algo.act(algo.act_params(s), torch.zeros(5, 3))
    assert a.shape == (5, 1) and torch.isfinite(m["loss"])
    if policy == "tanh_gaussian":
        assert (a.abs() <= 1).all()  # rescaled to the env's bounds by the env stack


def test_custom_advantage_fn_result_is_what_ppo_learns_from():
    # One gradient step (one epoch, one minibatch) taken at the parameters that collected
    # the rollout: ratios are 1 and the critic's values are the recorded ones (up to float
    # rounding), so the losses of that step follow from advantage_fn's outputs alone.
    cfg = ppo.Config(env="CartPole-v1", num_envs=4, num_steps=8, num_minibatches=1,
                     update_epochs=1, normalize_advantages=False)  # fmt: skip
    hp = ppo.HParams.create()

    def constant(nets, config, params, traj, hp):
        value = traj.extras["value"]
        return torch.full_like(value, 3.0), value + 1.0, {}

    default = ppo.make(cfg)
    custom = ppo.make(cfg, advantage_fn=constant)
    start = default.init(funrl.random.key(0), hp)
    ref, m_ref = default.update(start, hp)
    got, m = custom.update(custom.init(funrl.random.key(0), hp), hp)
    assert float(m["policy_loss"]) == pytest.approx(-3.0, abs=1e-5)  # -mean(1 * A)
    assert float(m["value_loss"]) == pytest.approx(0.5, abs=1e-5)  # mean(0.5 * 1^2)
    assert float(m_ref["policy_loss"]) != pytest.approx(-3.0, abs=0.1)  # GAE's are others
    assert not tree.allclose(got.params, ref.params)

    def nothing_to_learn(nets, config, params, traj, hp):
        return torch.zeros_like(traj.reward), traj.extras["value"], {}

    # zero advantages and no entropy bonus: the actor's gradient is exactly zero, so it
    # stays bit for bit where it was; with GAE's advantages it moves
    hp0 = ppo.HParams.create(ent_coef=0.0)
    still = ppo.make(cfg, advantage_fn=nothing_to_learn)
    after, _ = still.update(still.init(funrl.random.key(0), hp0), hp0)
    assert tree.all_equal(after.params["actor"], start.params["actor"])
    moved, _ = default.update(default.init(funrl.random.key(0), hp0), hp0)
    assert not tree.allclose(moved.params["actor"], start.params["actor"])


def test_bad_hparams_and_config():
    with pytest.raises(ValueError, match="unknown field"):
        ppo.HParams.create(learning_rate=1.0)
    with pytest.raises(ValueError, match=r"HParams.lr must be > 0"):
        ppo.HParams.create(lr=-1.0).check()
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        ppo.HParams.create(gamma=1.5).check()
    with pytest.raises(TypeError, match="must be a number"):
        ppo.HParams.create(lr="fast")
    with pytest.raises(ValueError, match="divisible"):
        ppo.make(ppo.Config(num_envs=3, num_steps=3, num_minibatches=2))
    with pytest.raises(ValueError, match="needs a Discrete action space"):
        ppo.make(ppo.Config(env="Pendulum-v1", policy="categorical"))
    with pytest.raises(ValueError, match="needs a Box action space"):
        ppo.make(ppo.Config(env="CartPole-v1", policy="gaussian"))
    with pytest.raises(ValueError, match="Config.policy"):
        ppo.make(ppo.Config(policy="beta"))
    with pytest.raises(ValueError, match="CartPole-v1"):
        ppo.make(ppo.Config(env="CartPol-v1"))
