"""funrl.algos.units: eager / compiled / population unit transforms.

Compiling stops before inductor (a backend that records the graph after the contiguity
pass and runs it as is) so the checks are cheap and can look at the graphs;
tests/test_train.py and tests/test_population.py count graphs of real compiled PPO units.
"""

import os

import pytest
import torch
import torch._inductor.compile_fx

import funrl.random as R
from funrl import tree
from funrl.algos import units
from funrl.compiling import options_for


@pytest.fixture
def graphs(monkeypatch):
    """Record each graph units hand to inductor and run it as is."""
    captured = []

    def backend(gm, example_inputs, config_patches=None):
        assert config_patches == options_for("cpu")  # funrl.compile's settings
        captured.append(gm)
        return gm.forward

    monkeypatch.setattr(torch._inductor.compile_fx, "compile_fx", backend)
    torch._dynamo.reset()
    return captured


def _copies(gm):
    """The row-major copies the contiguity pass inserted."""
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target is torch.clone]


def contiguous_unit(x, k):
    k1, k2 = R._split_keys(k, 2)
    return x * 2.0 + R.uniform(k1, x.shape), k2


def transposing_unit(x, k):
    k1, k2 = R._split_keys(k, 2)
    return (x + R.uniform(k1, x.shape)).t(), k2


def _loop(step, x, k, n):
    outs = []
    for _ in range(n):
        x, k = step(x, k)
        outs.append((x, k))
    return outs


def test_eager_and_data_only_units_are_untouched():
    assert units.eager(contiguous_unit, "collect") is contiguous_unit
    assert units.compiled(contiguous_unit, "stack") is contiguous_unit
    assert units.population(compile=True)(contiguous_unit, "stack") is not contiguous_unit


def test_contiguous_outputs_compile_once_without_a_contiguity_pass(graphs):
    step = units.compiled(contiguous_unit, "collect")
    got = _loop(step, torch.ones(3, 3), R.key(0), 4)
    assert tree.all_equal(got, _loop(contiguous_unit, torch.ones(3, 3), R.key(0), 4))
    assert len(graphs) == 1  # fed-back outputs hit the same graph
    assert not _copies(graphs[0])  # nothing to make contiguous


def test_non_contiguous_outputs_are_made_contiguous_in_the_graph(graphs):
    x0, k0 = torch.arange(9.0).reshape(3, 3), R.key(1)
    assert not transposing_unit(x0, k0)[0].is_contiguous()  # the test has teeth
    step = units.compiled(transposing_unit, "learn")
    got = _loop(step, x0, k0, 4)
    assert tree.all_equal(got, _loop(transposing_unit, x0, k0, 4))  # same numbers
    assert all(x.is_contiguous() for x in tree.leaves(got))
    # one graph whose transposed output is copied contiguous; fed back, it never recompiles
    assert len(graphs) == 1 and len(_copies(graphs[0])) == 1
    with torch._dynamo.config.patch(error_on_recompile=True):
        step(*got[-1])


def test_population_compiled_units_return_contiguous_outputs(graphs):
    def unit(x, k):  # vmapped: k2 is a [P, 2] slice of split's [P, 2, 2]
        k1, k2 = R.split(k).unbind(-2)
        return x + R.normal(k1, x.shape), k2

    xs, keys = torch.zeros(3, 5), R.split(R.key(2), 3)
    assert not units.population()(unit, "collect")(xs, keys)[1].is_contiguous()
    step = units.population(compile=True)(unit, "collect")
    got = _loop(step, xs, keys, 3)
    assert tree.all_equal(got, _loop(units.population()(unit, "collect"), xs, keys, 3))
    assert all(x.is_contiguous() for x in tree.leaves(got))
    assert len(graphs) == 1 and len(_copies(graphs[0])) == 1
    with torch._dynamo.config.patch(error_on_recompile=True):
        step(*got[-1])


def test_compiled_unit_through_inductor_matches_eager():
    x0, k0 = torch.arange(9.0).reshape(3, 3), R.key(1)
    torch._dynamo.utils.counters.clear()
    got = _loop(units.compiled(transposing_unit, "learn"), x0, k0, 3)
    assert tree.all_equal(got, _loop(transposing_unit, x0, k0, 3))
    assert all(x.is_contiguous() for x in tree.leaves(got))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


def test_compiled_unit_outputs_are_checked_until_trusted():
    """A compiled unit's first outputs pass through tree.contiguous; one that needed it
    keeps being fixed, one that did not is trusted after two calls (no steady cost)."""
    from funrl.algos.units import _checked_outputs

    base = torch.arange(6.0).reshape(2, 3)
    seen = []

    def transposed(x):
        return {"t": base.t() + x, "same": base}

    run = _checked_outputs(transposed)
    for i in range(4):
        out = run(torch.tensor(float(i)))
        assert tree.is_row_major(out["t"]) and out["same"] is base
        torch.testing.assert_close(out["t"], base.t() + i)
    row_major = {"a": base}

    def clean(x):
        seen.append(x)
        return row_major

    run = _checked_outputs(clean)
    outs = [run(i) for i in range(4)]
    assert all(o is not row_major for o in outs[:2])  # checked: a rebuilt tree
    assert all(o is row_major for o in outs[2:])  # trusted: returned as is
    assert all(o["a"] is base for o in outs)


@pytest.mark.skipif(
    not os.environ.get("FUNRL_FULL_COMPILE"), reason="set FUNRL_FULL_COMPILE=1 (slow)"
)
def test_population_sac_learn_unit_compiles_once():
    """With inductor, Adam's moments of the vmapped ensemble critic came back transposed
    from SAC's learn unit and its second call compiled it again (6 minutes at the
    MountainCarContinuous preset); the checked outputs keep one graph (~3 min cold)."""
    from funrl import population as pop
    from funrl.algos import sac

    config = sac.Config(env="MountainCarContinuous-v0", autotune=False, num_envs=1,
                        train_freq=4, gradient_steps=4, learn_steps_per_call=2, batch_size=8,
                        buffer_size=64, learning_starts=0, hidden=(16,))  # fmt: skip
    algo = sac.make(config).with_units(units.population(compile=True))
    hps = pop.hparams(algo.hparams_cls, 2)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        state = algo.init(R.split(R.key(4), 2), hps)
        for _ in range(2):
            state, _ = algo.update(state, hps)
