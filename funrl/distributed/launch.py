"""Starting ranks: the ``torchrun`` command for ``python -m funrl.distributed``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["launch", "launch_command", "without_nproc"]


def launch_command(
    nproc: int, argv: Sequence[str], *, nnodes: int = 1, rdzv_endpoint: str | None = None
) -> list[str]:
    """The ``torchrun`` command that runs ``python -m funrl.distributed *argv`` on ``nproc``
    processes per node: ``--standalone`` on one node, else a c10d rendezvous at
    ``rdzv_endpoint`` (``host:port``) across ``nnodes`` nodes (run it on every node)."""
    if nproc < 1 or nnodes < 1:
        raise ValueError(f"launch_command: nproc and nnodes must be >= 1, got {nproc}, {nnodes}")
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd.append("--standalone")
    else:
        if rdzv_endpoint is None:
            raise ValueError("launch_command: several nodes need rdzv_endpoint='host:port'")
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    return [*cmd, "-m", "funrl.distributed", *argv]


def without_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` (or ``--nproc=N``): the ranks must not launch again,
    and torchrun would read ``--nproc`` as an ambiguous prefix of its own options."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(nproc: int, argv: Sequence[str], **kwargs: Any) -> int:
    """Run :func:`launch_command` (``argv`` :func:`without_nproc`) and return torchrun's
    exit code (``funrl train --nproc N``)."""
    return subprocess.call(launch_command(nproc, without_nproc(argv), **kwargs))
