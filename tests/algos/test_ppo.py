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


# ----------------------------------------------------------------------------- gSDE

SDE = ppo.Config(
    env="Pendulum-v1",
    num_envs=2,
    num_steps=10,
    num_minibatches=2,
    update_epochs=1,
    hidden=(16,),
    use_sde=True,
    sde_sample_freq=4,
)


def _spying(cfg):
    """PPO whose advantage_fn records every rollout and the parameters that collected it
    (learning comes after the advantages, so these are the behaviour parameters)."""
    seen = []

    def spy(nets, config, params, traj, hp):
        seen.append((traj, tree.map(torch.clone, params)))
        return ppo.gae_advantages(nets, config, params, traj, hp)

    algo = ppo.make(cfg, advantage_fn=spy)
    seen.clear()  # make's check on an example rollout
    return algo, seen


def test_sde_rollouts_hold_each_envs_matrix_for_sde_sample_freq_steps():
    """The collector's actions equal a naive loop over its key chain: every rollout starts
    with fresh matrices (one per env), redrawn every sde_sample_freq steps and held in
    between; the stored log-prob is the gSDE normal's, which does not depend on them."""
    algo, seen = _spying(SDE)
    hp = ppo.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    assert isinstance(state, ppo.SDETrainState) and state.sde_noise.shape == (2, 16, 1)
    assert sorted(state.params["actor"]) == [
        "log_std", "mean.0.bias", "mean.0.weight", "torso.0.bias", "torso.0.weight"
    ]  # fmt: skip
    carry_key = state.collector.key
    for _ in range(2):
        state, _ = algo.update(state, hp)
    drawn = []
    for traj, params in seen:
        mean, log_std, features = algo.networks.actor.apply(params["actor"], traj.obs)
        want, logp = [], []
        for t in range(10):
            k_policy, _, carry_key = funrl.random.split(carry_key, 3)
            if t % 4 == 0:
                eps = funrl.random.normal(k_policy, (2, 16, 1))
                drawn.append(eps)
            a = torch.stack([mean[t, e] + features[t, e] @ (log_std.exp() * eps[e])
                             for e in range(2)])  # fmt: skip
            scale = torch.sqrt((features[t] ** 2) @ log_std.exp() ** 2 + 1e-6)
            want.append(a)
            logp.append(torch.distributions.Normal(mean[t], scale).log_prob(a).sum(-1))
        torch.testing.assert_close(traj.action, torch.stack(want), rtol=0, atol=1e-6)
        torch.testing.assert_close(traj.extras["logp"], torch.stack(logp), rtol=1e-5, atol=1e-5)
        assert "sde" not in traj.extras  # carried step to step, not kept in the batch
    assert len(drawn) == 6  # steps 0, 4, 8 of each rollout
    torch.testing.assert_close(state.sde_noise, drawn[-1], rtol=0, atol=0)
    assert not torch.equal(drawn[0][0], drawn[0][1]) and not torch.equal(drawn[0], drawn[1])


def test_sde_sample_freq_minus_one_is_one_matrix_per_rollout():
    assert ppo.Config(num_steps=8).sde_period == 8
    assert ppo.Config(num_steps=8, sde_sample_freq=3).sde_period == 3
    algo, seen = _spying(ppo.Config(**{**SDE.__dict__, "sde_sample_freq": -1}))
    hp = ppo.HParams.create()
    state, _ = algo.update(algo.init(funrl.random.key(1), hp), hp)
    traj, params = seen[0]
    mean, log_std, features = algo.networks.actor.apply(params["actor"], traj.obs)
    # one matrix per env for the whole rollout: the one the state ends with
    u = (features.unsqueeze(-2) @ (log_std.exp() * state.sde_noise)).squeeze(-2)
    torch.testing.assert_close(traj.action, mean + u, rtol=0, atol=1e-6)


def test_sde_learns_its_log_std_and_acts():
    algo = ppo.make(SDE)
    hp = ppo.HParams.create(lr=1e-2)
    state = algo.init(funrl.random.key(2), hp)
    for _ in range(3):
        state, metrics = algo.update(state, hp)
    assert all(bool(torch.isfinite(metrics[k])) for k in ("loss", "entropy", "grad_norm"))
    log_std = state.params["actor"]["log_std"]
    assert log_std.shape == (16, 1) and not torch.equal(log_std, torch.zeros_like(log_std))
    obs = torch.zeros(5, 3)
    p = algo.act_params(state)
    mean = algo.networks.actor.apply(p["actor"], obs)[0]
    torch.testing.assert_close(algo.act(p, obs), mean)  # deterministic: the mean
    b = algo.act(p, obs, funrl.random.key(3), False)
    assert not torch.allclose(b, mean, atol=1e-4)
    torch.testing.assert_close(b, b[:1].expand(5, 1))  # one matrix, equal features


def test_sde_tanh_policy_and_a2c():
    from funrl.algos import a2c

    tanh = ppo.make(ppo.Config(**{**SDE.__dict__, "policy": "tanh_gaussian"}))
    hp = ppo.HParams.create()
    state, m = tanh.update(tanh.init(funrl.random.key(4), hp), hp)
    assert isinstance(tanh.networks.distribution(tanh.networks.actor.apply(
        state.params["actor"], torch.zeros(1, 3))), funrl.distributions.TanhGSDE)  # fmt: skip
    assert torch.isfinite(m["entropy"])  # the one-sample estimate -log p
    algo = a2c.make(a2c.Config(env="Pendulum-v1", num_envs=2, num_steps=5, hidden=(8,),
                               use_sde=True, log_std_init=-2.0))  # fmt: skip
    hp = a2c.HParams.create()
    state = algo.init(funrl.random.key(5), hp)
    assert bool((state.params["actor"]["log_std"] == -2.0).all())
    state, m = algo.update(state, hp)
    assert isinstance(state, ppo.SDETrainState) and torch.isfinite(m["loss"])


def test_sde_population_matches_members_alone():
    hp_list = [ppo.HParams.create(lr=1e-3), ppo.HParams.create(lr=3e-3, gamma=0.9)]
    keys = funrl.random.split(funrl.random.key(0), 2)
    single = ppo.make(SDE)
    alone = []
    for k, hp in zip(keys, hp_list):
        s = single.init(k, hp)
        for _ in range(2):
            s, _ = single.update(s, hp)
        alone.append((s.params, s.sde_noise))
    pop = single.with_units(units.population())
    hps = tree.stack(hp_list)
    states = torch.func.vmap(single.init, randomness="error")(keys, hps)
    for _ in range(2):
        states, _ = pop.update(states, hps)
    assert_trees_close((states.params, states.sde_noise), tree.stack(alone), rtol=1e-4, atol=1e-5)


def test_bad_sde_settings_rejected():
    with pytest.raises(ValueError, match="sde_sample_freq must be -1 or a positive int"):
        ppo.make(ppo.Config(env="Pendulum-v1", use_sde=True, sde_sample_freq=0))
    with pytest.raises(ValueError, match="use_sde is for Box actions; CartPole-v1 has"):
        ppo.make(ppo.Config(env="CartPole-v1", use_sde=True))
    with pytest.raises(ValueError, match="use_sde is for Box actions; CartPole-v1 has"):
        ppo.make(ppo.Config(env="CartPole-v1", policy="categorical", use_sde=True))
    with pytest.raises(ValueError, match="'categorical' needs a Discrete action space"):
        ppo.make(ppo.Config(env="Pendulum-v1", policy="categorical", use_sde=True))
    with pytest.raises(ValueError, match="use_sde needs a hidden layer"):
        ppo.make(ppo.Config(env="Pendulum-v1", use_sde=True, hidden=()))
    plain = ppo.make(ppo.Config(env="Pendulum-v1")).networks
    with pytest.raises(ValueError, match="must return a gSDE distribution.*got DiagNormal"):
        ppo.make(ppo.Config(env="Pendulum-v1", use_sde=True), networks=plain)
