"""The shared battery: one function, run eagerly, under ``vmap`` and under ``torch.compile``.

Every public function in funrl is checked with :func:`check_transforms`; users run it
on their own losses and environments the same way.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.testing import check_transforms
    >>> keys = R.split(R.key(0), 4)            # a batch of 4 members
    >>> out = check_transforms(lambda k: R.normal(k, (3,)), keys, compile=False)
    >>> out.shape
    torch.Size([4, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.func import vmap

from funrl import tree
from funrl.compiling import compile as _compile

__all__ = ["assert_trees_close", "check_transforms"]


def assert_trees_close(
    actual: Any, expected: Any, *, rtol: float = 1e-5, atol: float = 1e-6, what: str = "result"
) -> None:
    """Raise ``AssertionError`` naming the first leaf (by path) that differs.

    ``rtol = atol = 0`` demands bit-identical leaves.
    """
    fa, sa = torch.utils._pytree.tree_flatten_with_path(actual)
    fe, se = torch.utils._pytree.tree_flatten_with_path(expected)
    if sa != se:
        raise AssertionError(f"{what}: tree structure differs:\n  {sa}\nvs\n  {se}")
    for (path, a), (_, e) in zip(fa, fe):
        name = torch.utils._pytree.keystr(path) or "<root>"
        if not isinstance(a, torch.Tensor):
            if a != e:
                raise AssertionError(f"{what}{name}: {a!r} != {e!r}")
            continue
        if a.shape != e.shape or a.dtype != e.dtype:
            raise AssertionError(
                f"{what}{name}: got {a.dtype}{list(a.shape)}, expected {e.dtype}{list(e.shape)}"
            )
        a_, e_ = a.detach().cpu(), e.detach().cpu()
        if rtol == 0 and atol == 0:
            ok = bool(torch.equal(a_, e_)) or bool(
                torch.equal(torch.isnan(a_), torch.isnan(e_))
                and torch.equal(a_[~torch.isnan(a_)], e_[~torch.isnan(e_)])
            )
        else:
            ok = torch.allclose(a_, e_, rtol=rtol, atol=atol, equal_nan=True)
        if not ok:
            diff = (a_.double() - e_.double()).abs()
            diff = torch.nan_to_num(diff, nan=float("inf"))
            raise AssertionError(
                f"{what}{name}: max abs diff {diff.max().item():.3g} (rtol={rtol}, atol={atol})"
            )


def _member(args: Sequence[Any], in_dims: Sequence[int | None], i: int) -> list[Any]:
    return [
        a if d is None else tree.map(lambda x, d=d: x.select(d, i), a)
        for a, d in zip(args, in_dims)
    ]


def _batch_size(args: Sequence[Any], in_dims: Sequence[int | None]) -> int:
    for a, d in zip(args, in_dims):
        if d is not None:
            for leaf in tree.leaves(a):
                return int(leaf.shape[d])
    raise ValueError("check_transforms needs at least one batched argument (in_dims not None)")


def check_transforms(
    fn: Callable[..., Any],
    *batched_args: Any,
    in_dims: int | Sequence[int | None] | None = 0,
    compile: bool = True,
    fullgraph: bool = True,
    members: int | None = 2,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    compile_rtol: float | None = None,
    compile_atol: float | None = None,
) -> Any:
    """Check that ``fn`` agrees eagerly, under ``vmap`` and under ``torch.compile``.

    Args:
      fn: a pure function of unbatched arguments returning a pytree of tensors.
      *batched_args: pytrees whose leaves carry a batch dimension at ``in_dims``.
      in_dims: as for ``torch.func.vmap``; ``None`` marks an argument shared by all members.
      compile: also run ``funrl.compile(fn)`` on ``members`` members and
        ``funrl.compile(vmap(fn))`` on the whole batch.
      fullgraph: compile without graph breaks (the default; pure functions need none).
      members: how many members to run the compiled unbatched function on (``None``: all).
      rtol, atol: tolerance between eager and vmap (vmap may reorder float reductions).
      compile_rtol, compile_atol: tolerance for compiled results (default: ``rtol``/``atol``).

    Returns:
      The eager results stacked over members (a pytree with a leading batch dim).

    Runs ``vmap`` with ``randomness="error"``: a function that touches torch's global RNG
    fails here, as it must (funrl draws only from explicit keys).
    """
    args = list(batched_args)
    dims = [in_dims] * len(args) if not isinstance(in_dims, Sequence) else list(in_dims)
    if len(dims) != len(args):
        raise ValueError(f"in_dims has {len(dims)} entries for {len(args)} arguments")
    n = _batch_size(args, dims)
    eager = [fn(*_member(args, dims, i)) for i in range(n)]
    expected = tree.stack(eager)
    vmapped = vmap(fn, in_dims=tuple(dims), randomness="error")
    assert_trees_close(vmapped(*args), expected, rtol=rtol, atol=atol, what="vmap")
    if compile:
        crtol = rtol if compile_rtol is None else compile_rtol
        catol = atol if compile_atol is None else compile_atol
        cfn = _compile(fn, fullgraph=fullgraph)
        for i in range(n if members is None else min(members, n)):
            got = cfn(*_member(args, dims, i))
            assert_trees_close(got, eager[i], rtol=crtol, atol=catol, what=f"compile[member {i}]")
        cv = _compile(vmapped, fullgraph=fullgraph)
        assert_trees_close(cv(*args), expected, rtol=crtol, atol=catol, what="compile(vmap)")
    return expected
