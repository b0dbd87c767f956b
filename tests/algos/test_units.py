"""funrl.algos.units: eager / compiled / population unit transforms.

Compiling stops before inductor (a backend that records the graph after the contiguity
pass and runs it as is) so the checks are cheap and can look at the graphs;
tests/test_train.py and tests/test_population.py count graphs of real compiled PPO units.
"""

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
