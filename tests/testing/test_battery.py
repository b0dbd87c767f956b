import pytest
import torch

import funrl.random as R
from funrl.testing import assert_trees_close, check_transforms


def test_battery_returns_stacked_eager_results():
    xs = torch.arange(6.0).reshape(3, 2)
    out = check_transforms(lambda x: {"s": x.sum(), "d": x * 2}, xs)
    assert out["s"].tolist() == [1.0, 5.0, 9.0]


def test_battery_shared_argument_via_in_dims():
    xs = torch.arange(3.0)
    w = torch.tensor(10.0)
    out = check_transforms(lambda x, w: x * w, xs, w, in_dims=(0, None), compile=False)
    assert out.tolist() == [0.0, 10.0, 20.0]


def test_battery_catches_global_rng():
    with pytest.raises(RuntimeError, match="randomness"):
        check_transforms(lambda x: x + torch.rand(()), torch.zeros(2), compile=False)


def test_battery_catches_vmap_disagreement():
    # .sum() over the whole input differs between a member and the batch it sits in when
    # a function (wrongly) looks at the batch through a global.
    seen = []

    def leaky(x):
        seen.append(x)
        return x * len(seen)

    with pytest.raises(AssertionError, match="vmap"):
        check_transforms(leaky, torch.ones(3), compile=False)


def test_battery_checks_compile():
    keys = R.split(R.key(0), 2)
    check_transforms(lambda k: R.uniform(k, (2,)) + 1, keys, rtol=0, atol=0)


def test_assert_trees_close_names_leaf():
    with pytest.raises(AssertionError, match=r"\['b'\]"):
        assert_trees_close(
            {"a": torch.zeros(1), "b": torch.ones(1)}, {"a": torch.zeros(1), "b": torch.zeros(1)}
        )
    with pytest.raises(AssertionError, match="structure"):
        assert_trees_close({"a": torch.zeros(1)}, [torch.zeros(1)])
    with pytest.raises(AssertionError, match="float32"):
        assert_trees_close(torch.zeros(1), torch.zeros(1, dtype=torch.float64))
    assert_trees_close(torch.tensor([float("nan")]), torch.tensor([float("nan")]), rtol=0, atol=0)


def test_battery_bad_arguments():
    with pytest.raises(ValueError, match="at least one batched argument"):
        check_transforms(lambda x: x, torch.zeros(2), in_dims=(None,))
    with pytest.raises(ValueError, match="in_dims has 2 entries"):
        check_transforms(lambda x: x, torch.zeros(2), in_dims=(0, 0))
