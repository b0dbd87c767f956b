"""Helpers for building MinAtar observations inside compiled steps."""

from __future__ import annotations

import torch


def hit(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """int32 ``1`` where ``u == v`` (broadcast), else ``0``, computed in integers.

    The same values as ``(u == v).to(torch.int32)``, but there is no bool tensor in
    between.  Inductor's CPU kernels store a bool plane to memory one byte at a time,
    through a cleared temporary buffer, while they store int32 planes as whole vectors.
    In an observation built from such planes, the bool form was most of the compiled step
    (Asterix at 4,096 envs: ~1.8x faster this way, benchmarks/RESULTS.md).
    """
    return (1 - (u - v).abs().clamp(max=1)).to(torch.int32)
