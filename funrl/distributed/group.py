"""The process group: join it, this process's rank, the world size, fault injection."""

from __future__ import annotations

import importlib
import os
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["FAULT_ENV", "fault_hook", "init", "rank", "world_size"]

FAULT_ENV = "FUNRL_DIST_FAULT"  # "RANK:UPDATE[:hang]": fault injection for tests (fault_hook)
DEFAULT_TIMEOUT_S = 600.0


def init(backend: str | None = None, timeout_s: float | None = None) -> tuple[int, int]:
    """Join the process group torchrun set up; returns ``(rank, world_size)``.

    Args:
      backend: ``"gloo"`` (CPU tensors) or ``"nccl"`` (CUDA tensors; each rank uses
        ``cuda:LOCAL_RANK``); default NCCL when CUDA is available, else gloo.
      timeout_s: how long a collective waits for its peers before failing (default
        ``$FUNRL_DIST_TIMEOUT`` or 600 s).  Keep it above the longest gap between
        collectives: training compiles by default, and ranks compiling side by side can
        finish minutes apart.  A dead peer is noticed at once (gloo: "connection closed");
        the timeout only bounds how long a hung peer holds the others.

    Without ``WORLD_SIZE`` in the environment (not under torchrun) this is a no-op
    returning ``(0, 1)``; an existing process group is reused.
    """
    if dist.is_initialized():
        return rank(), world_size()
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    env_timeout = os.environ.get("FUNRL_DIST_TIMEOUT")
    timeout = timeout_s if timeout_s is not None else float(env_timeout or DEFAULT_TIMEOUT_S)
    if timeout <= 0:
        raise ValueError(f"init: timeout_s must be > 0, got {timeout}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    # Import dynamo first: imported after the group exists (the first torch.compile or
    # torch.func.grad does), it keeps a reference to the group, so destroy_process_group
    # leaves gloo's worker threads running and they race the interpreter's exit (torch
    # 2.13: "terminate called without an active exception", SIGABRT, in 7 of 40 two-rank
    # runs on a loaded machine).  Imported before, the group is destroyed cleanly.
    importlib.import_module("torch._dynamo")

    dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    return rank(), world_size()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """The number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def fault_hook(update: int) -> None:
    """Fault injection for tests: ``FUNRL_DIST_FAULT=R:U`` makes rank R exit (code 3) before
    its update U (0-based, counted in this process); ``R:U:hang`` makes it sleep instead
    (its peers then hit the timeout)."""
    spec = os.environ.get(FAULT_ENV, "")
    parts = spec.split(":")
    if len(parts) >= 2 and parts[:2] == [str(rank()), str(update)]:
        hang = parts[2:] == ["hang"]
        print(
            f"funrl.distributed: rank {rank()}: fault injection ({FAULT_ENV}={spec}): "
            f"{'hanging' if hang else 'exiting'}",
            file=sys.stderr,
            flush=True,
        )
        if hang:
            time.sleep(3600)
        os._exit(3)
