import torch
from hypothesis import given

import funrl.random as R
from funrl.testing import strategies as fst


@given(fst.keys())
def test_keys_are_keys(k):
    assert R.is_key(k) and k.shape == (2,)
    assert ((k >= 0) & (k < 2**32)).all()


@given(fst.keys(batch=(2, 3)))
def test_batched_keys(k):
    assert k.shape == (2, 3, 2)


@given(fst.shapes(min_dims=1, max_dims=2, max_side=4))
def test_shapes_respect_bounds(s):
    assert 1 <= len(s) <= 2 and all(1 <= d <= 4 for d in s)


@given(fst.float_tensors((3, 2), dtype=torch.float64, min_value=-1, max_value=1))
def test_float_tensors(x):
    assert x.shape == (3, 2) and x.dtype == torch.float64
    assert torch.isfinite(x).all() and x.abs().max() <= 1
