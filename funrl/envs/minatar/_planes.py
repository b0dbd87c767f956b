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


def _view_dtype_vmaps() -> bool:
    """Whether ``Tensor.view(dtype)`` works under ``vmap`` in this torch.

    torch 2.13 batches it; torch 2.11 has no batching rule for ``aten::view.dtype``
    (``RuntimeError: Batching rule not implemented``, seen on a CUDA machine's torch).
    Probed once, at import, so that compiled steps read a plain bool.
    """
    from torch.func import vmap

    try:
        vmap(lambda x: x.view(torch.uint8))(torch.zeros(2, 1, dtype=torch.int32, device="cpu"))
    except RuntimeError:
        return False
    return True


#: the fast path of :func:`unpack_bytes` (a byte view) is available
VIEW_DTYPE_VMAPS = _view_dtype_vmaps()


def unpack_bytes(code: torch.Tensor, shifts: tuple[int, ...], channels: int) -> torch.Tensor:
    """``[10, 10, channels]`` float32 0/1 planes from ``code``, the ``[100]`` or ``[10, 10]``
    int32/int64 cells whose byte at ``shifts[c]`` holds channel ``c`` (0 or 1).

    ``shifts`` puts channel ``c`` in the ``c``-th byte in memory, so viewing the codes as
    bytes lays the channels out channels-last with every loop running over 100 or more
    contiguous entries (a 4-wide innermost loop made Breakout's compiled step 3x slower).
    Where the byte view cannot be vmapped (:data:`VIEW_DTYPE_VMAPS`), each channel is
    shifted out instead: the same values, channels-last.
    """
    grid = 10
    if VIEW_DTYPE_VMAPS:
        planes = code.view(torch.uint8).reshape(grid, grid, code.element_size())
        return planes[..., :channels].to(torch.float32)
    by = torch.tensor(shifts[:channels], dtype=code.dtype, device=code.device)
    planes = (code.reshape(grid, grid, 1) >> by) & 1
    return planes.to(torch.float32)
