import dataclasses
import math

import pytest
import torch

import funrl
from funrl import population as pop
from funrl import tree
from funrl.algos import ppo
from funrl.testing import assert_trees_close

TINY = ppo.Config(
    env="CartPole-v1",
    num_envs=4,
    num_steps=16,
    num_minibatches=2,
    update_epochs=2,
    total_timesteps=4 * 16 * 2,
)


def test_hparams_builder_broadcasts_and_checks_shapes():
    hps = pop.hparams(ppo.HParams, 3, lr=[1e-3, 2e-3, 3e-3], gamma=0.9)
    assert hps.lr.shape == (3,) and hps.gamma.tolist() == pytest.approx([0.9] * 3)
    assert hps.clip_eps.tolist() == pytest.approx([0.2] * 3)
    with pytest.raises(ValueError, match=r"field 'lr' has shape \(2,\), expected \(3,\)"):
        pop.hparams(ppo.HParams, 3, lr=[1e-3, 2e-3])
    with pytest.raises(ValueError, match="size must be >= 1"):
        pop.hparams(ppo.HParams, 0)


def test_grid_and_random_search():
    g = pop.grid(ppo.HParams, lr=[1e-3, 1e-2], gamma=[0.9, 0.99, 0.999])
    assert g.lr.shape == (6,)
    assert sorted(zip(g.lr.tolist(), g.gamma.tolist())) == sorted(
        (a, b)
        for a in torch.tensor([1e-3, 1e-2]).tolist()
        for b in torch.tensor([0.9, 0.99, 0.999]).tolist()
    )
    s = pop.sample(
        ppo.HParams,
        funrl.random.key(0),
        64,
        lr=("log_uniform", 1e-4, 1e-2),
        clip_eps=("uniform", 0.1, 0.3),
    )
    assert ((s.lr >= 1e-4) & (s.lr <= 1e-2)).all() and (
        (s.clip_eps >= 0.1) & (s.clip_eps <= 0.3)
    ).all()
    # log-uniform: about half the draws below the geometric midpoint 1e-3
    assert 20 < int((s.lr < 1e-3).sum()) < 44
    s2 = pop.sample(
        ppo.HParams,
        funrl.random.key(0),
        64,
        lr=("log_uniform", 1e-4, 1e-2),
        clip_eps=("uniform", 0.1, 0.3),
    )
    assert tree.all_equal(s, s2)
    with pytest.raises(ValueError, match="kind must be"):
        pop.sample(ppo.HParams, funrl.random.key(0), 2, lr=("normal", 0.0, 1.0))
    with pytest.raises(ValueError, match="low < high"):
        pop.sample(ppo.HParams, funrl.random.key(0), 2, lr=("uniform", 1.0, 0.5))


def test_check_population_errors_name_the_leaf():
    hps = pop.hparams(ppo.HParams, 3)
    assert pop.check_population(hps, pop.member_keys(funrl.random.key(0), 3)) == 3
    bad = hps.replace(gamma=torch.tensor([0.9, 0.9]))
    with pytest.raises(ValueError, match=r"disagree: .*'gamma': 2"):
        pop.check_population(bad)
    with pytest.raises(ValueError, match=r"disagree: .*'keys': 4"):
        pop.check_population(hps, pop.member_keys(funrl.random.key(0), 4))
    with pytest.raises(ValueError, match="no population dim"):
        pop.check_population(ppo.HParams.create())
    with pytest.raises(ValueError, match=r"lr must be > 0, got \[-0.1"):
        pop.check_population(hps.replace(lr=torch.tensor([1e-3, -0.1, 1e-3])))
    with pytest.raises(ValueError, match="population size must be >= 1"):
        pop.member_keys(funrl.random.key(0), 0)


def test_member_is_bit_identical_to_training_alone():
    # One key derivation (funrl.train.split_key) for a member and for the same agent alone:
    # member i of an eager population is funrl.train(algo, keys[i], hps[i]), bit for bit,
    # in its final params and in every evaluation (eval_every=1).
    keys = pop.member_keys(funrl.random.key(0), 3)
    hps = pop.hparams(ppo.HParams, 3, lr=torch.logspace(-4, -2, 3))
    algo = ppo.make(TINY)
    kw = dict(compile=False, progress=False, eval_episodes=2, eval_every=1)
    res = pop.train(algo, keys, hps, **kw)
    for i in range(3):
        alone = funrl.train(algo, keys[i], tree.index(hps, i), **kw)
        assert tree.all_equal(tree.index(res.states.params, i), alone.state.params), f"member {i}"
        assert tree.all_equal(tree.index(res.states, i), alone.state), f"member {i}"
        member_evals = [row["eval_return"] for row in res.history if row["member"] == i]
        assert member_evals == [row["eval_return"] for row in alone.history], f"member {i}"
        assert float(res.eval_returns[i]) == alone.eval_return


def test_population_result_metrics_table_and_chunking(tmp_path):
    keys = pop.member_keys(funrl.random.key(1), 4)
    hps = pop.hparams(ppo.HParams, 4, lr=[1e-3, 3e-3, 1e-2, 3e-2])
    algo = ppo.make(TINY)
    res = pop.train(
        algo, keys, hps, compile=False, progress=False, out_dir=tmp_path, eval_episodes=2
    )
    assert res.eval_returns.shape == (4,) and len(res.history) == 4 * 2
    assert {row["member"] for row in res.history} == {0, 1, 2, 3}
    assert res.history[0]["hp.lr"] == pytest.approx(1e-3)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 8
    assert res.table.splitlines()[0].split()[:3] == ["rank", "member", "return"]
    chunked = pop.train(
        algo, keys, hps, compile=False, progress=False, chunk_size=2, eval_episodes=2
    )
    # chunks are strided slices of the population: equal up to float rounding
    assert_trees_close(chunked.states.params, res.states.params, rtol=1e-5, atol=1e-6)


def test_pbt_step_exploits_and_explores():
    states = {"w": torch.arange(4.0)[:, None] * torch.ones(4, 3)}
    hps = pop.hparams(ppo.HParams, 4, lr=[1.0, 2.0, 3.0, 4.0])
    scores = torch.tensor([10.0, float("nan"), 30.0, 20.0])  # best 2, worst 1 (NaN)
    cfg = pop.PBTConfig(fraction=0.25, perturb=("lr",), factors=(0.5, 2.0))
    new_states, new_hps, src = pop.pbt_step(funrl.random.key(0), states, hps, scores, cfg)
    assert src.tolist() == [0, 2, 2, 3]  # member 1 (worst) copies member 2 (best)
    assert torch.equal(new_states["w"][1], states["w"][2])
    assert new_hps.lr[1].item() in (1.5, 6.0)  # 3.0 perturbed by 0.5 or 2.0
    assert new_hps.lr[[0, 2, 3]].tolist() == [1.0, 3.0, 4.0]
    assert new_hps.gamma.tolist() == hps.gamma.tolist()  # not perturbed
    again = pop.pbt_step(funrl.random.key(0), states, hps, scores, cfg)
    assert tree.all_equal(again[1], new_hps)
    bounded = pop.PBTConfig(fraction=0.25, factors=(2.0,), bounds={"lr": (0.0, 5.0)})
    assert pop.pbt_step(funrl.random.key(0), states, hps, scores, bounded)[1].lr[1] == 5.0


def test_pbt_inside_population_training():
    # PBT every update (not after the last): the bottom half of the members (by recent
    # training return, NaN worst) take the state of a top-half member and its lr times 2.
    # The callback sees each update's states and hparams before PBT, a hook after it.
    keys = pop.member_keys(funrl.random.key(2), 4)
    hps = pop.hparams(ppo.HParams, 4, lr=[1e-4, 3e-4, 1e-3, 3e-3])
    algo = ppo.make(dataclasses.replace(TINY, anneal_lr=False))
    before, after = {}, {}

    def record_before(i, states, rows):
        before[i + 1] = (states.params, torch.tensor([row["hp.lr"] for row in rows]))

    def record_after(step):
        if not step.done:
            after[step.update] = (step.state.params, step.hparams.lr.clone(), step.scores.clone())

    config = pop.PBTConfig(interval=1, fraction=0.5, perturb=("lr",), factors=(2.0,))
    res = pop.train(
        algo, keys, hps, num_updates=3, compile=False, progress=False, eval_episodes=1,
        pbt=config, callback=record_before, hooks=[record_after],
    )  # fmt: skip
    assert sorted(after) == [1, 2, 3]
    for update in (1, 2):  # PBT ran after these
        params, lr = before[update]
        new_params, new_lr, scores = after[update]
        order = torch.argsort(torch.nan_to_num(scores, nan=-math.inf), descending=True, stable=True)
        top, bottom = order[:2].tolist(), order[2:].tolist()
        for i in top:  # kept as they were
            assert tree.all_equal(tree.index(new_params, i), tree.index(params, i))
            assert new_lr[i] == lr[i]
        for i in bottom:  # a copy of a top member, lr doubled
            src = [
                j for j in top if tree.all_equal(tree.index(new_params, i), tree.index(params, j))
            ]
            assert src, f"update {update}: member {i} copied no top member"
            assert new_lr[i] == pytest.approx(2 * float(lr[src[0]]), rel=1e-6)
    # the last update's PBT is skipped: the result is the state after update 3
    assert tree.all_equal(res.states.params, after[3][0])
    assert torch.equal(res.hparams.lr, after[3][1])


def test_pbt_step_compiles_and_matches_eager():
    states = {"w": torch.arange(4.0)[:, None] * torch.ones(4, 3)}
    hps = pop.hparams(ppo.HParams, 4, lr=[1.0, 2.0, 3.0, 4.0])
    scores = torch.tensor([10.0, float("nan"), 30.0, 20.0])
    cfg = pop.PBTConfig(fraction=0.25, perturb=("lr",), factors=(0.5, 2.0))
    step = lambda k, s, h, sc: pop.pbt_step(k, s, h, sc, cfg)  # noqa: E731
    eager = step(funrl.random.key(0), states, hps, scores)
    compiled = funrl.compile(step)(funrl.random.key(0), states, hps, scores)
    assert_trees_close(compiled, eager, rtol=0, atol=0)


def test_new_hparams_values_never_recompile_a_compiled_population():
    from funrl.algos.units import population as population_units

    keys = pop.member_keys(funrl.random.key(2), 2)
    hps = pop.hparams(ppo.HParams, 2, lr=[1e-3, 3e-3])
    # no LR annealing: TINY's schedule reaches lr 0 after its 2 updates
    config = dataclasses.replace(TINY, anneal_lr=False)
    algo = ppo.make(config).with_units(population_units(compile=True))
    states = algo.init(keys, hps)
    for _ in range(2):  # compile (and settle the layouts the compiled units return)
        states, _ = algo.update(states, hps)
    new = pop.hparams(
        ppo.HParams,
        2,
        lr=[3e-4, 1e-2],
        gamma=[0.9, 0.95],
        gae_lambda=[0.8, 0.9],
        clip_eps=[0.1, 0.3],
        vf_coef=[1.0, 0.25],
        ent_coef=[0.0, 0.05],
        max_grad_norm=[1.0, 5.0],
    )
    with torch._dynamo.config.patch(error_on_recompile=True):
        after_new, _ = algo.update(states, new)
        after_old, _ = algo.update(states, hps)
    # the new values took effect in the same graphs
    assert not tree.all_equal(after_new.params, after_old.params)


def test_compiled_population_compiles_each_unit_once():
    # vmapped init returns stride-0 leaves and compiled units return contiguous ones;
    # neither may cost a second compile of any unit.
    keys = pop.member_keys(funrl.random.key(3), 2)
    hps = pop.hparams(ppo.HParams, 2, lr=[1e-3, 3e-3])
    algo = ppo.make(dataclasses.replace(TINY, total_timesteps=4 * 16 * 3))
    torch._dynamo.utils.counters.clear()
    pop.train(algo, keys, hps, compile=True, progress=False, eval_episodes=1, eval_every=1)
    # collect, prepare, learn, finish and the vmapped evaluation step (three evaluations)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 5
