"""How many threads to use: the cores this process may run on, how many of them are free,
and a thread count that pays for a given amount of work.

Why it matters (``benchmarks/bench_scale.py``, RESULTS.md "Scaling on one machine"):
torch's CPU kernels run on an OpenMP pool whose threads spin while they wait for each
other.  With more threads than free cores, one thread shares its core with another
process and every parallel region waits for it: a 32-member PPO population ran at 70 k
env-steps/s on 2 threads beside one busy core, against 155 k on 1 thread (and 289 k on
2 threads on a quiet machine).  ``OMP_WAIT_POLICY=PASSIVE`` avoids the spinning but
halves the quiet 2-thread figure, so funrl leaves the wait policy alone and instead
picks the thread count from the cores that are free when a run starts.

Threads also only pay with enough work per kernel: one PPO agent with 64 envs ran 1.07x
faster on 2 threads, a population of 4 x 64 envs 1.44x and 16 x 64 envs 1.89x, so
:func:`auto_threads` gives one thread per 128 envs stepped per call (members x envs).

The thread count is part of a run's numbers (float reductions split differently: ~1e-6
after 3 updates) and of the inductor cache key (a new count compiles afresh), so a run
records the count it used (``summary.json``); pass it explicitly to reproduce a run bit
for bit.
"""

from __future__ import annotations

import math
import os
import time

__all__ = [
    "ENVS_PER_THREAD",
    "auto_processes",
    "auto_threads",
    "busy_cores",
    "free_cores",
    "resolve_threads",
    "usable_cores",
]

#: envs stepped per vectorised call (members x num_envs) that make one more thread pay
ENVS_PER_THREAD = 128
#: population members per process below which another process does not pay
MEMBERS_PER_PROCESS = 16


def usable_cores() -> list[int]:
    """The CPUs this process may run on (its affinity mask; every CPU where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _cpu_ticks(cpus: set[int]) -> dict[int, tuple[int, int]]:
    """``{cpu: (busy, total)}`` clock ticks from ``/proc/stat`` (Linux)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not (line.startswith("cpu") and line[3:4].isdigit()):
                continue
            name, *fields = line.split()
            cpu = int(name[3:])
            if cpu in cpus:
                ticks = [
                    int(x) for x in fields[:8]
                ]  # user nice system idle iowait irq softirq steal
                idle = ticks[3] + ticks[4]
                out[cpu] = (sum(ticks) - idle, sum(ticks))
    return out


def busy_cores(sample_s: float = 0.15) -> float | None:
    """How many of :func:`usable_cores` other processes kept busy over the next
    ``sample_s`` seconds (0.0 = idle machine, 1.0 = one core's worth), or ``None`` where
    the system does not say (no ``/proc/stat``).  This process's own use is left out."""
    if sample_s <= 0:
        raise ValueError(f"busy_cores: sample_s must be > 0, got {sample_s}")
    cpus = set(usable_cores())
    try:
        before, own0, t0 = _cpu_ticks(cpus), time.process_time(), time.monotonic()
        time.sleep(sample_s)
        after, own1, t1 = _cpu_ticks(cpus), time.process_time(), time.monotonic()
    except (OSError, ValueError, IndexError):
        return None
    busy = 0.0
    for cpu, (b1, n1) in after.items():
        b0, n0 = before.get(cpu, (b1, n1))
        if n1 > n0:
            busy += (b1 - b0) / (n1 - n0)
    own = (own1 - own0) / max(t1 - t0, 1e-9)
    return max(0.0, busy - own)


def free_cores(sample_s: float = 0.15) -> int:
    """Usable cores that are not busy right now, at least 1 (all usable ones where the
    system does not say).  A core counts as free when less than ~70% of it is in use."""
    usable = len(usable_cores())
    busy = busy_cores(sample_s)
    if busy is None:
        return usable
    return max(1, min(usable, math.floor(usable - busy + 0.3)))


def _per_unit(amount: int, per: int, free: int | None, procs: int = 1) -> int:
    """``amount // per`` units, at most ``free`` cores (default: :func:`free_cores`,
    sampled only when more than one unit is wanted) shared by ``procs`` processes, at
    least 1."""
    want = max(1, amount // per)
    if want == 1:
        return 1
    cores = free_cores() if free is None else free
    return max(1, min(want, cores // max(1, procs)))


def auto_threads(envs: int, free: int | None = None, procs: int = 1) -> int:
    """Threads for work that steps ``envs`` environments per vectorised call (a
    population: members x num_envs): one per :data:`ENVS_PER_THREAD` envs, at most this
    process's share of the ``free`` cores (default: :func:`free_cores`, measured now)
    among ``procs`` processes on the machine, at least 1."""
    if envs < 1:
        raise ValueError(f"auto_threads: envs must be >= 1, got {envs}")
    return _per_unit(envs, ENVS_PER_THREAD, free, procs)


def auto_processes(members: int, free: int | None = None) -> int:
    """Processes to shard a population of ``members`` over on this machine
    (``--nproc auto``): one per :data:`MEMBERS_PER_PROCESS` members, at most the ``free``
    cores (default: :func:`free_cores`, measured now), at least 1.  Each process then runs
    one thread: processes never make each other spin (RESULTS.md, "Scaling on one
    machine": 2 processes 1.81x one on 2 quiet cores, and no slower than one thread beside
    a busy core)."""
    if members < 1:
        raise ValueError(f"auto_processes: members must be >= 1, got {members}")
    return _per_unit(members, MEMBERS_PER_PROCESS, free)


def resolve_threads(threads: int | str, envs: int, procs: int = 1) -> int:
    """``threads`` as a count: an int >= 1 as it is, ``"auto"`` as :func:`auto_threads`."""
    if threads == "auto":
        return auto_threads(envs, procs=procs)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int or 'auto', got {threads!r}")
    return threads
