import dataclasses
import math

import pytest
import torch

import funrl
from funrl import tree
from funrl.algos import sac, units
from funrl.testing import assert_trees_close

GRID = torch.tensor([[-1.0], [-0.5], [0.0], [0.5], [1.0]])
SIGNS = torch.tensor([[-1.0], [1.0]])
# Learning from the first update: batch_size <= num_envs * train_freq.
TINY = sac.Config(
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


def probe_train(cfg, hp):
    algo = sac.make(cfg)
    result = funrl.train(
        algo, funrl.random.key(0), hp, compile=False, progress=False, eval_episodes=8
    )
    return algo, result


# ----------------------------------------------------------------------------- learning


# ContinuousActionReward: a* = obs / 2; a uniform policy is off by ~0.5 on GRID.
PROBE = sac.Config(
    env="funrl/ContinuousActionReward-v0",
    num_envs=8,
    gradient_steps=2,
    batch_size=64,
    learning_starts=64,
    buffer_size=1024,
    hidden=(64, 64),
    total_timesteps=8 * 80,
)
PROBE_HP = sac.HParams.create(actor_lr=3e-3, critic_lr=3e-3, alpha_lr=3e-3, alpha=0.05)


def test_continuous_probe_mode_approaches_optimal_action():
    """ContinuousActionReward: a* = obs / 2; a uniform policy is off by ~0.5 on this grid."""
    algo, r = probe_train(PROBE, PROBE_HP)
    a = algo.act(algo.act_params(r.state), GRID)[:, 0]
    err = (a - GRID[:, 0] / 2).abs()
    assert err.max() < 0.15 and err.mean() < 0.07, a
    assert r.eval_return > -0.01
    # Critic: Q(s, a) = r (every step terminates, so no bootstrap), ~0 at the optimum.
    q = algo.networks.critic.apply(r.state.params["critic"], GRID, GRID / 2)
    assert q.abs().max() < 0.05, q


def test_sde_probe_mode_approaches_optimal_action():
    """The same probe explored with gSDE (a fresh matrix every step): the clipped mean
    head and the learned log_std reach the optimum as well."""
    cfg = dataclasses.replace(
        PROBE, total_timesteps=8 * 160, use_sde=True, sde_sample_freq=1, log_std_init=-2.0
    )
    algo, r = probe_train(cfg, PROBE_HP)
    a = algo.act(algo.act_params(r.state), GRID)[:, 0]
    err = (a - GRID[:, 0] / 2).abs()
    assert err.max() < 0.1 and err.mean() < 0.05, a
    assert r.eval_return > -0.01


def test_discrete_probe_learns_argmax_policy():
    cfg = sac.Config(
        env="funrl/ActionReward-v0",
        discrete=True,
        num_envs=8,
        gradient_steps=2,
        batch_size=64,
        learning_starts=64,
        buffer_size=1024,
        hidden=(32,),
        total_timesteps=8 * 40,
    )
    hp = sac.DiscreteHParams.create(actor_lr=3e-3, critic_lr=3e-3, alpha_lr=3e-3, alpha=0.1)
    algo, r = probe_train(cfg, hp)
    assert algo.hparams_cls is sac.DiscreteHParams
    assert algo.act(algo.act_params(r.state), SIGNS).tolist() == [0, 1]
    assert r.eval_return == pytest.approx(1.0)
    q = algo.networks.critic.apply(r.state.params["critic"], SIGNS)
    assert torch.allclose(q.min(0).values, torch.tensor([[1.0, -1.0], [-1.0, 1.0]]), atol=0.2), q


# ----------------------------------------------------------------------------- mechanics


def test_update_counters_buffer_and_metrics():
    cfg = sac.Config(
        env="Pendulum-v1",
        num_envs=4,
        train_freq=2,
        gradient_steps=3,
        batch_size=8,
        learning_starts=16,
        buffer_size=20,
        hidden=(16,),
    )
    algo = sac.make(cfg)
    hp = sac.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    before = state.params
    state, m = algo.update(state, hp)  # 8 env steps < learning_starts: nothing learned
    assert int(state.global_step) == 8 and int(state.grad_step) == 0  # none taken yet
    assert int(state.buffer.size) == 8
    assert tree.all_equal(state.params, before) and tree.all_equal(
        state.target_params["critic"], before["critic"]
    )
    assert math.isnan(float(m["critic_loss"])) and math.isnan(float(m["alpha"]))
    for _ in range(2):
        state, m = algo.update(state, hp)
    assert int(state.buffer.size) == 20  # capacity reached: the ring wraps
    assert int(state.grad_step) == 6  # 3 per update once 16 >= learning_starts steps are taken
    for k in (
        "critic_loss",
        "actor_loss",
        "q_mean",
        "td_error_abs_mean",
        "entropy",
        "alpha",
        "episode_return",
        "episodes",
    ):
        assert m[k].shape == (), k
    assert torch.isfinite(m["critic_loss"]) and torch.isfinite(m["actor_loss"])
    assert not tree.all_equal(state.params["actor"], before["actor"])
    assert float(state.params["log_alpha"]) < 0.0  # alpha falls towards the target entropy
    # Actions stored in the buffer are the policy's, in [-1, 1] (rescaled by the env stack).
    assert state.buffer.data["action"].abs().max() <= 1.0


def test_targets_track_critics_by_polyak():
    algo = sac.make(TINY)
    hp = sac.HParams.create(tau=1.0)
    state, _ = run(algo, funrl.random.key(0), hp, 1)
    assert tree.all_equal(state.target_params["critic"], state.params["critic"])
    hp = sac.HParams.create(tau=0.5)
    s0 = algo.init(funrl.random.key(0), hp)
    s1, _ = algo.update(s0, hp)
    assert not tree.all_equal(s1.target_params["critic"], s1.params["critic"])


def test_fixed_temperature_without_autotune():
    cfg = sac.Config(**{**TINY.__dict__, "autotune": False})
    algo = sac.make(cfg)
    hp = sac.HParams.create(alpha=0.2)
    state, m = run(algo, funrl.random.key(0), hp, 2)
    assert float(m["alpha"]) == pytest.approx(0.2)
    assert float(state.params["log_alpha"]) == pytest.approx(math.log(0.2))


def test_act_deterministic_and_stochastic():
    algo = sac.make(TINY)
    hp = sac.HParams.create()
    p = algo.act_params(algo.init(funrl.random.key(0), hp))
    obs = torch.zeros(6, 3)
    det = algo.act(p, obs)
    assert det.shape == (6, 1) and torch.equal(det, algo.act(p, obs, funrl.random.key(1)))
    sto = algo.act(p, obs, funrl.random.key(1), deterministic=False)
    assert sto.shape == (6, 1) and (sto.abs() <= 1).all() and not torch.equal(sto, det)


def test_determinism_same_key_same_params():
    algo = sac.make(TINY)
    hp = sac.HParams.create()
    a, _ = run(algo, funrl.random.key(3), hp, 2)
    b, _ = run(algo, funrl.random.key(3), hp, 2)
    c, _ = run(algo, funrl.random.key(4), hp, 2)
    assert tree.all_equal(a, b)
    assert not tree.all_equal(a.params, c.params)


@pytest.mark.parametrize("discrete", [False, True])
def test_population_units_match_members_alone(discrete):
    env = "funrl/ActionReward-v0" if discrete else "Pendulum-v1"
    cfg = sac.Config(**{**TINY.__dict__, "env": env, "discrete": discrete})
    single = sac.make(cfg)
    hp_cls = single.hparams_cls
    hp_list = [hp_cls.create(actor_lr=1e-3), hp_cls.create(actor_lr=3e-3, gamma=0.9)]
    keys = funrl.random.split(funrl.random.key(0), 2)
    alone = [run(single, k, hp, 1)[0] for k, hp in zip(keys, hp_list)]
    pop = single.with_units(units.population())
    hps = tree.stack(hp_list)
    states = torch.func.vmap(single.init, randomness="error")(keys, hps)
    states, metrics = pop.update(states, hps)
    assert metrics["critic_loss"].shape == (2,)
    assert_trees_close(states.params, tree.stack([s.params for s in alone]), rtol=1e-4, atol=1e-5)
    assert_trees_close(states.buffer, tree.stack([s.buffer for s in alone]), rtol=1e-5, atol=1e-6)


def test_whole_update_is_vmappable():
    algo = sac.make(TINY)
    hps = tree.stack([sac.HParams.create(), sac.HParams.create(gamma=0.9)])
    keys = funrl.random.split(funrl.random.key(1), 2)
    states = torch.func.vmap(algo.init, randomness="error")(keys, hps)
    new, m = torch.func.vmap(algo.update, randomness="error")(states, hps)
    assert m["critic_loss"].shape == (2,) and torch.isfinite(m["critic_loss"]).all()
    assert not tree.all_equal(new.params["actor"], states.params["actor"])


# ----------------------------------------------------------------------------- bad input


def test_bad_hparams_rejected():
    with pytest.raises(ValueError, match="gamma"):
        sac.HParams.create(gamma=1.5).check()
    with pytest.raises(ValueError, match="tau"):
        sac.make(TINY).init(funrl.random.key(0), sac.HParams.create(tau=0.0))
    with pytest.raises(ValueError, match="actor_lr"):
        funrl.train(
            sac.make(TINY),
            funrl.random.key(0),
            sac.HParams.create(actor_lr=-1.0),
            compile=False,
            progress=False,
        )
    with pytest.raises(ValueError, match="unknown field"):
        sac.HParams.create(lr=1e-3)


def test_bad_config_rejected():
    with pytest.raises(ValueError, match="batch_size"):
        sac.make(sac.Config(batch_size=0))
    with pytest.raises(ValueError, match="buffer_size"):
        sac.make(sac.Config(buffer_size=16, batch_size=32))
    with pytest.raises(ValueError, match="learning_starts"):
        sac.make(sac.Config(learning_starts=-1))


def test_action_space_mismatch_rejected():
    with pytest.raises(ValueError, match=r"SAC \(continuous\) needs a 1-d Box.*discrete=True"):
        sac.make(sac.Config(env="funrl/ActionReward-v0"))
    with pytest.raises(ValueError, match=r"SAC \(discrete\) needs a Discrete"):
        sac.make(sac.Config(env="Pendulum-v1", discrete=True))


# ----------------------------------------------------------------------------- gSDE

SDE = sac.Config(
    env="Pendulum-v1",
    num_envs=2,
    train_freq=12,
    sde_sample_freq=4,
    gradient_steps=0,  # the actor never changes: the buffer's actions replay the policy
    learning_starts=0,
    buffer_size=64,
    batch_size=8,
    hidden=(16,),
    use_sde=True,
)


def test_sde_exploration_holds_each_envs_matrix_for_sde_sample_freq_steps():
    algo, hp = sac.make(SDE), sac.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    assert isinstance(state, sac.SDETrainState) and state.sde_noise.shape == (2, 16, 1)
    assert sorted(state.params["actor"]) == [
        "log_std", "mean.0.bias", "mean.0.weight", "torso.0.bias", "torso.0.weight"
    ]  # fmt: skip
    carry_key, actor = state.collector.key, state.params["actor"]
    for _ in range(2):  # the second update goes on from the first one's matrices
        state, _ = algo.update(state, hp)
    rows = state.buffer.data  # rows t * num_envs + env, in step order
    mean, log_std, features = algo.networks.actor.apply(actor, rows["obs"][:48])
    # the naive loop: the collector's key chain, each env's matrix redrawn every 4 steps
    eps, want, drawn = None, [], []
    for t in range(24):
        k_policy, _, carry_key = funrl.random.split(carry_key, 3)
        k_pi, _ = funrl.random.split(k_policy)
        if t % 4 == 0:
            eps = funrl.random.normal(k_pi, (2, 16, 1))
            drawn.append(eps)
        for env in range(2):
            i = 2 * t + env
            want.append(torch.tanh(mean[i] + features[i] @ (log_std.exp() * eps[env])))
    torch.testing.assert_close(rows["action"][:48], torch.stack(want), rtol=0, atol=1e-6)
    torch.testing.assert_close(state.sde_noise, drawn[-1], rtol=0, atol=0)
    assert not torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0][0], drawn[0][1])
    # the noise is state-dependent, not white: actions differ from the mode by a smooth term
    noise = torch.atanh(rows["action"][:48]) - mean
    assert noise.abs().mean() > 1e-3


def test_sde_sample_freq_minus_one_redraws_once_per_update():
    assert sac.Config(train_freq=8).sde_period == 8
    assert sac.Config(train_freq=8, sde_sample_freq=3).sde_period == 3
    cfg = dataclasses.replace(SDE, train_freq=4, sde_sample_freq=-1)
    algo, hp = sac.make(cfg), sac.HParams.create()
    state = algo.init(funrl.random.key(1), hp)
    seen = []
    for _ in range(3):
        state, _ = algo.update(state, hp)
        seen.append(state.sde_noise.clone())
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    # within the update the matrix is held: the 4 steps of env 0 share it
    rows = state.buffer.data
    mean, log_std, features = algo.networks.actor.apply(state.params["actor"], rows["obs"])
    last = torch.arange(16, 24, 2)  # env 0's rows of the third update
    u = features[last] @ (log_std.exp() * seen[2][0])
    torch.testing.assert_close(torch.atanh(rows["action"][last]), mean[last] + u, atol=1e-5, rtol=0)


def test_sde_learns_through_its_log_std():
    cfg = dataclasses.replace(SDE, gradient_steps=2, train_freq=4, sde_sample_freq=-1)
    algo, hp = sac.make(cfg), sac.HParams.create(actor_lr=1e-2)
    state, metrics = run(algo, funrl.random.key(2), hp, 4)
    assert torch.isfinite(metrics["actor_loss"])
    log_std = state.params["actor"]["log_std"]
    assert not torch.equal(log_std, torch.full_like(log_std, -3.0))
    a = algo.act(algo.act_params(state), torch.zeros(5, 3))
    assert a.shape == (5, 1) and bool((a == a[0]).all())
    b = algo.act(algo.act_params(state), torch.zeros(5, 3), funrl.random.key(3), False)
    assert not torch.equal(a, b) and bool((b == b[0]).all())  # one matrix, equal features


def test_sde_population_matches_members_alone():
    cfg = dataclasses.replace(TINY, use_sde=True, sde_sample_freq=1)
    single = sac.make(cfg)
    hp_list = [sac.HParams.create(actor_lr=1e-3), sac.HParams.create(actor_lr=3e-3, gamma=0.9)]
    keys = funrl.random.split(funrl.random.key(0), 2)
    alone = [run(single, k, hp, 2)[0] for k, hp in zip(keys, hp_list)]
    pop = single.with_units(units.population())
    hps = tree.stack(hp_list)
    states = torch.func.vmap(single.init, randomness="error")(keys, hps)
    for _ in range(2):
        states, _ = pop.update(states, hps)
    expected = tree.stack([(s.params, s.sde_noise) for s in alone])
    assert_trees_close((states.params, states.sde_noise), expected, rtol=1e-4, atol=1e-5)


def test_bad_sde_settings_rejected():
    with pytest.raises(ValueError, match="sde_sample_freq must be -1 or a positive int"):
        sac.make(sac.Config(use_sde=True, sde_sample_freq=0))
    with pytest.raises(ValueError, match="use_sde is for continuous actions"):
        sac.make(sac.Config(env="CartPole-v1", discrete=True, use_sde=True))
    with pytest.raises(ValueError, match="log_std_init must be finite"):
        sac.make(sac.Config(use_sde=True, log_std_init=float("nan")))
    plain = sac.make(sac.Config()).networks
    with pytest.raises(ValueError, match=r"must return \(mean, log_std, features\), got a 2-tuple"):
        sac.make(sac.Config(use_sde=True), networks=plain)
    with pytest.raises(ValueError, match="gsde_policy needs at least one hidden layer"):
        funrl.nn.gsde_policy(3, 1, ())
