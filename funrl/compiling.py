"""``funrl.compile``: ``torch.compile`` with the settings funrl's pure functions need.

funrl's keys are Threefry-2x32 hashes: ~200 dependent integer ops whose intermediates are
each read several times.  Inductor's default heuristics inline such producers into every
consumer, so one sampler becomes a kernel body of ~1000 ops: code generation alone took
~20 s per call site on a 2-core CPU, and a compiled PPO update ~5 minutes to compile.
Capping how many ops inductor inlines before it materialises an intermediate
(``realize_opcount_threshold``) keeps kernels small: compile time falls several-fold and
the compiled code runs as fast or faster (see benchmarks/RESULTS.md, "Compile settings").

Use it wherever you would call ``torch.compile`` on code that draws from ``funrl.random``::

    >>> import funrl
    >>> f = funrl.compile(lambda k: funrl.random.normal(k, (3,)))
    >>> f(funrl.random.key(0)).shape
    torch.Size([3])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["INDUCTOR_OPTIONS", "compile"]

#: Inductor options funrl compiles with (merged under any ``options`` you pass).
INDUCTOR_OPTIONS: dict[str, Any] = {"realize_opcount_threshold": 30}


def compile(
    fn: Callable[..., Any],
    *,
    fullgraph: bool = True,
    dynamic: bool = False,
    options: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """``torch.compile(fn)`` with static shapes, no graph breaks and :data:`INDUCTOR_OPTIONS`.

    Args:
      fn: a pure function of tensors/pytrees.
      fullgraph: fail on a graph break instead of silently splitting (funrl's pure
        functions never need one).
      dynamic: compile for dynamic shapes (funrl's shapes are static per config).
      options: extra inductor options; they override :data:`INDUCTOR_OPTIONS`.
    """
    return torch.compile(
        fn, fullgraph=fullgraph, dynamic=dynamic, options={**INDUCTOR_OPTIONS, **(options or {})}
    )
