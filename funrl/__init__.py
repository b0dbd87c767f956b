"""funrl: functional, JAX-style reinforcement learning on PyTorch.

Pure functions over immutable state pytrees, explicit random keys, and
``torch.func.vmap`` / ``torch.func.grad`` / ``torch.compile`` everywhere.
"""

from funrl import (
    algos,
    buffers,
    checkpoint,
    collectors,
    compiling,
    distributions,
    envs,
    evaluation,
    export,
    interop,
    loop,
    losses,
    nn,
    optim,
    plot,
    population,
    random,
    returns,
    tree,
)
from funrl._version import __version__
from funrl.compiling import compile
from funrl.envs.registry import make, register, registered
from funrl.evaluation import evaluate
from funrl.train import train

__all__ = [
    "__version__",
    "algos",
    "buffers",
    "checkpoint",
    "collectors",
    "compile",
    "compiling",
    "distributions",
    "envs",
    "evaluate",
    "evaluation",
    "export",
    "interop",
    "loop",
    "losses",
    "make",
    "nn",
    "optim",
    "plot",
    "population",
    "random",
    "register",
    "registered",
    "returns",
    "train",
    "tree",
]
