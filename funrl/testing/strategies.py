"""Hypothesis strategies for keys, shapes, tensors and pytrees of tensors.

Example::

    >>> from hypothesis import given
    >>> from funrl.testing import strategies as fst
    >>> @given(fst.keys(), fst.shapes(max_dims=2))
    ... def test_uniform_in_range(key, shape):
    ...     import funrl.random as R
    ...     u = R.uniform(key, shape)
    ...     assert ((0 <= u) & (u < 1)).all()
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from funrl import random as R

__all__ = ["float_tensors", "keys", "pytrees", "seeds", "shapes"]


def seeds() -> st.SearchStrategy[int]:
    """Integer seeds over the whole 64-bit range."""
    return st.integers(min_value=0, max_value=2**64 - 1)


def keys(batch: tuple[int, ...] = ()) -> st.SearchStrategy[torch.Tensor]:
    """funrl keys (optionally a batch of them, shape ``[*batch, 2]``)."""
    if not batch:
        return seeds().map(R.key)
    n = int(np.prod(batch))
    return seeds().map(lambda s: R.split(R.key(s), n).reshape(*batch, 2))


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 5
) -> st.SearchStrategy[tuple[int, ...]]:
    """Tensor shapes with ``min_dims..max_dims`` dims of ``min_side..max_side`` each."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(
        tuple
    )


def float_tensors(
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    min_value: float = -10.0,
    max_value: float = 10.0,
) -> st.SearchStrategy[torch.Tensor]:
    """Finite float tensors with entries in ``[min_value, max_value]``."""
    shape_st = shapes() if shape is None else shape
    if isinstance(shape_st, tuple):
        shape_st = st.just(shape_st)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    elem = st.floats(
        min_value, max_value, allow_nan=False, width=64 if np_dtype == np.float64 else 32
    )

    def build(s: tuple[int, ...]) -> st.SearchStrategy[torch.Tensor]:
        n = int(np.prod(s))
        return st.lists(elem, min_size=n, max_size=n).map(
            lambda v: torch.tensor(np.asarray(v, dtype=np_dtype).reshape(s), dtype=dtype)
        )

    return shape_st.flatmap(build)


def pytrees(
    leaves: st.SearchStrategy[Any] | None = None, max_leaves: int = 6
) -> st.SearchStrategy[Any]:
    """Nested dicts/tuples/lists of tensors (default leaves: small float tensors)."""
    leaf = float_tensors() if leaves is None else leaves
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.dictionaries(
                st.text("abcdefgh", min_size=1, max_size=3), children, min_size=1, max_size=3
            ),
        ),
        max_leaves=max_leaves,
    )
