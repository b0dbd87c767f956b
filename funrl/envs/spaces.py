"""Action and observation spaces: ``Discrete`` and ``Box`` with keyed ``sample`` and ``contains``.

Spaces are static descriptions (plain Python objects holding a few tensors), not state:
they never change during training and are not vmapped.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs.spaces import Box, Discrete
    >>> Discrete(3).sample(R.key(0)).dtype
    torch.int64
    >>> box = Box(low=-1.0, high=1.0, shape=(2,))
    >>> bool(box.contains(box.sample(R.key(1))))
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from funrl import random as R

__all__ = ["Box", "Discrete", "Space"]


@dataclass(frozen=True, eq=False)
class Discrete:
    """Integers ``start, ..., start + n - 1`` (int64 scalars)."""

    n: int
    start: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"Discrete: n must be a positive int, got {self.n!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def dtype(self) -> torch.dtype:
        return torch.int64

    def sample(self, key: torch.Tensor) -> torch.Tensor:
        """One uniform draw (a batch of keys gives a batch of draws)."""
        return R.randint(key, self.start, self.start + self.n)

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """Bool tensor, elementwise: ``x`` is an integer in range."""
        x = torch.as_tensor(x)
        if x.dtype.is_floating_point or x.dtype == torch.bool:
            return torch.zeros(x.shape, dtype=torch.bool, device=x.device)
        return (x >= self.start) & (x < self.start + self.n)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Discrete) and (self.n, self.start) == (other.n, other.start)

    def __hash__(self) -> int:
        return hash(("Discrete", self.n, self.start))

    def __repr__(self) -> str:
        return (
            f"Discrete({self.n})" if self.start == 0 else f"Discrete({self.n}, start={self.start})"
        )


@dataclass(frozen=True, eq=False)
class Box:
    """Real vectors with elementwise bounds ``low <= x <= high`` (possibly infinite)."""

    low: torch.Tensor
    high: torch.Tensor
    shape: tuple[int, ...]
    dtype: torch.dtype

    def __init__(
        self,
        low: float | Sequence[float] | torch.Tensor,
        high: float | Sequence[float] | torch.Tensor,
        shape: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        lo = torch.as_tensor(low, dtype=dtype)
        hi = torch.as_tensor(high, dtype=dtype)
        if shape is None:
            shape = torch.broadcast_shapes(lo.shape, hi.shape)
        shape = tuple(int(s) for s in shape)
        lo, hi = lo.expand(shape).clone(), hi.expand(shape).clone()
        if bool((lo > hi).any()):
            raise ValueError("Box: low must be <= high everywhere")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtype)

    def sample(self, key: torch.Tensor) -> torch.Tensor:
        """Uniform where bounded; normal where unbounded both ways; shifted exponential
        where bounded on one side (as Gymnasium's Box does)."""
        ks = R.split(key)
        k1, k2 = ks[..., 0, :], ks[..., 1, :]
        lo, hi = self.low.to(key.device), self.high.to(key.device)
        u = R.uniform(k1, self.shape, dtype=self.dtype)
        n = R.normal(k2, self.shape, dtype=self.dtype)
        lo_f, hi_f = torch.isfinite(lo), torch.isfinite(hi)
        lo0 = torch.where(lo_f, lo, torch.zeros_like(lo))
        hi0 = torch.where(hi_f, hi, torch.zeros_like(hi))
        expo = -torch.log1p(-u)
        bounded = lo0 + u * (hi0 - lo0)
        out = torch.where(lo_f & hi_f, bounded, n)
        out = torch.where(lo_f & ~hi_f, lo0 + expo, out)
        out = torch.where(~lo_f & hi_f, hi0 - expo, out)
        return out

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """Bool tensor over leading batch dims: every entry of ``x`` within bounds."""
        x = torch.as_tensor(x)
        if tuple(x.shape[x.ndim - len(self.shape) :]) != self.shape or x.ndim < len(self.shape):
            return torch.zeros((), dtype=torch.bool, device=x.device)
        inside = (x >= self.low.to(x.device)) & (x <= self.high.to(x.device))
        if len(self.shape) == 0:
            return inside
        return inside.flatten(x.ndim - len(self.shape)).all(-1)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Box)
            and self.shape == other.shape
            and self.dtype == other.dtype
            and torch.equal(self.low, other.low)
            and torch.equal(self.high, other.high)
        )

    def __hash__(self) -> int:
        return hash(("Box", self.shape, self.dtype))

    def __repr__(self) -> str:
        if (
            self.low.numel()
            and bool((self.low == self.low.flatten()[0]).all())
            and bool((self.high == self.high.flatten()[0]).all())
        ):
            lo, hi = float(self.low.flatten()[0]), float(self.high.flatten()[0])
            return f"Box({lo}, {hi}, {self.shape}, {self.dtype})"
        return f"Box(low={self.low.tolist()}, high={self.high.tolist()}, shape={self.shape})"


Space = Discrete | Box
