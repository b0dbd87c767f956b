"""Every algorithm's compiled units compile once: a second update never recompiles.

Compiling stops before inductor (the captured graph, after funrl's contiguity pass, runs as
is), so this checks what decides recompiles (dynamo's guards on the state that init and
the units hand each other) in seconds; the numbers must match eager ones.
"""

import pytest
import torch
import torch._inductor.compile_fx

import funrl.random as R
from funrl import population as pop
from funrl import tree
from funrl.algos import a2c, ddpg, dqn, ppo, sac, td3, units

_OFF = dict(num_envs=2, batch_size=8, learning_starts=8, buffer_size=64, hidden=(16,))
CASES = {
    "ppo": (ppo, ppo.Config(num_envs=4, num_steps=8, hidden=(16,))),
    "ppo-sde": (ppo, ppo.Config(env="Pendulum-v1", num_envs=2, num_steps=6, hidden=(8,),
                                use_sde=True, sde_sample_freq=4)),
    "ppo-recompute": (ppo, ppo.Config(num_envs=4, num_steps=4, hidden=(8,), recompute_advantages=True)),
    "a2c": (a2c, a2c.Config(num_envs=4, num_steps=5, hidden=(16,))),
    "dqn-fused-per": (dqn, dqn.Config(**_OFF, train_freq=4, gradient_steps=2, learn_steps_per_call=2,
                                      collect_steps_per_call=2, prioritized=True, n_step=2)),
    "sac": (sac, sac.Config(**_OFF)),
    "sac-discrete": (sac, sac.Config(**_OFF, env="CartPole-v1", discrete=True)),
    "td3-masked": (td3, td3.Config(**_OFF)),
    "td3-static": (td3, td3.Config(**_OFF, gradient_steps=2)),
    "td3-ou": (td3, td3.Config(**_OFF, action_noise="ou")),
    "sac-sde": (sac, sac.Config(**_OFF, use_sde=True, sde_sample_freq=2)),
    "ddpg": (ddpg, ddpg.Config(**_OFF)),
}  # fmt: skip


@pytest.fixture
def no_inductor(monkeypatch):
    """Dynamo captures and guards as usual; the graph then runs as captured."""
    monkeypatch.setattr(torch._inductor.compile_fx, "compile_fx", lambda gm, *a, **k: gm.forward)
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _updates(algo, state, hp, n):
    for _ in range(n):
        state, metrics = algo.update(state, hp)
    return state, metrics


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_update_never_recompiles(name, no_inductor):
    mod, config = CASES[name]
    eager = mod.make(config)
    hp = eager.hparams_cls.create()
    compiled = eager.with_units(units.compiled)
    state, _ = _updates(compiled, compiled.init(R.key(3), hp), hp, 1)  # compiles each unit
    with torch._dynamo.config.patch(error_on_recompile=True):
        state, _ = _updates(compiled, state, hp, 4)  # learning starts in here: same graphs
    want, _ = _updates(eager, eager.init(R.key(3), hp), hp, 5)
    assert tree.allclose(state.params, want.params, rtol=1e-4, atol=1e-6)
    assert all(x.is_contiguous() for x in tree.leaves(state) if isinstance(x, torch.Tensor))


@pytest.mark.parametrize(
    "name", ["ppo", "ppo-sde", "dqn-fused-per", "sac", "sac-sde", "td3-masked", "td3-ou"]
)
def test_compiled_population_never_recompiles(name, no_inductor):
    mod, config = CASES[name]
    algo = mod.make(config).with_units(units.population(compile=True))
    hps = pop.hparams(algo.hparams_cls, 2)
    states, _ = _updates(algo, algo.init(R.split(R.key(4), 2), hps), hps, 1)
    with torch._dynamo.config.patch(error_on_recompile=True):
        states, metrics = _updates(algo, states, hps, 3)
        new = pop.hparams(algo.hparams_cls, 2, gamma=[0.9, 0.95])  # new values, same graphs
        _updates(algo, states, new, 1)
    assert all(v.shape == (2,) for v in metrics.values())


def test_a_reset_with_aliased_fields_compiles_the_collector_once(no_inductor):
    """MinAtar Breakout's reset sets the trail position to the ball's tensor; init hands
    the units state whose leaves are each their own tensor, so the first step's graph
    serves every later step (it used to compile again on the second step)."""
    algo = a2c.make(a2c.Config(env="MinAtar-Breakout-v1", num_envs=2, num_steps=3, hidden=(8,)))
    hp = algo.hparams_cls.create()
    compiled = algo.with_units(units.compiled)
    with torch._dynamo.config.patch(error_on_recompile=True):
        _updates(compiled, compiled.init(R.key(0), hp), hp, 2)
