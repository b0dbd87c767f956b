"""Scale out with ``torch.distributed``: shard a population, or train one agent data-parallel.

Launch one process per rank with ``torchrun`` (or ``python -m funrl.distributed ...
--nproc N``, or ``funrl train ALGO --nproc N``); every rank runs the same program and
:func:`init` joins the process group torchrun set up (gloo on CPU, NCCL on CUDA).
Without torchrun (no ``WORLD_SIZE`` in the environment) everything here runs as a world
of one: the same code trains on a laptop and on a cluster.

Both modes are runners of the one host loop (:func:`funrl.loop.run`), so evaluation,
``target_return``, the callback, metric files, progress and checkpoints work as in
``funrl.train``, with the same defaults.

* **Populations** (:func:`train_population`): ``P`` members split into contiguous shards
  over ``W`` ranks (:func:`shard_bounds`; the first ``P % W`` ranks get one more member);
  each rank vmaps its shard.  Member ``i`` is trained and evaluated from ``keys[i]`` and
  ``hps[i]`` as in ``funrl.population.train``, so results do not depend on ``W``.  PBT
  (:func:`pbt_step`) gathers scores and hyperparameters (small), computes the same
  exploit/explore permutation on every rank and moves only the copied members' states
  between ranks.  Metrics are all-gathered every update; rank 0 writes the files and a
  checkpoint of the whole population, which resumes on any world size.
* **Data parallel** (:func:`train_data_parallel`): the algorithm's own optimizer is
  wrapped with :func:`allreduce_grads` (:func:`data_parallel`), every rank runs its own
  envs, the gradients are averaged over ranks (one all-reduce per minibatch) and the
  initial params are broadcast from rank 0, so params stay identical on every rank.

Example (two processes on one machine)::

    torchrun --standalone --nproc-per-node 2 -m funrl.distributed population ppo \\
        --population 64 --updates 20 --set num_envs=8

Modules: :mod:`~funrl.distributed.group` (process group, fault injection),
:mod:`~funrl.distributed.collectives` (pytree collectives, shards),
:mod:`~funrl.distributed.pbt`, :mod:`~funrl.distributed.checkpoints`,
:mod:`~funrl.distributed.runners`, :mod:`~funrl.distributed.cli`,
:mod:`~funrl.distributed.launch`.

Faults: :func:`init` sets the collective ``timeout`` (default 600 s,
``FUNRL_DIST_TIMEOUT``); a rank that dies makes its peers' next collective fail (gloo: at
once, "connection closed"; otherwise after the timeout), the entry point prints which
rank failed and why and exits non-zero, and torchrun stops the job with a failure summary.
"""

from funrl.distributed.checkpoints import load_population, save_population
from funrl.distributed.cli import main
from funrl.distributed.collectives import (
    all_reduce_mean,
    allreduce_grads,
    any_rank,
    broadcast,
    gather,
    shard,
    shard_bounds,
)
from funrl.distributed.group import FAULT_ENV, init, rank, world_size
from funrl.distributed.launch import launch, launch_command, without_nproc
from funrl.distributed.pbt import pbt_step
from funrl.distributed.runners import (
    data_parallel,
    data_parallel_runner,
    ranks_comm,
    train_data_parallel,
    train_population,
)

__all__ = [
    "FAULT_ENV",
    "all_reduce_mean",
    "allreduce_grads",
    "any_rank",
    "broadcast",
    "data_parallel",
    "data_parallel_runner",
    "gather",
    "init",
    "launch",
    "launch_command",
    "load_population",
    "main",
    "pbt_step",
    "rank",
    "ranks_comm",
    "save_population",
    "shard",
    "shard_bounds",
    "train_data_parallel",
    "train_population",
    "without_nproc",
    "world_size",
]
