"""funrl: functional, JAX-style reinforcement learning on PyTorch.

Pure functions over immutable state pytrees, explicit random keys, and
``torch.func.vmap`` / ``torch.func.grad`` / ``torch.compile`` everywhere.

Submodules and the top-level functions (``funrl.train``, ``funrl.evaluate``,
``funrl.make``, ...) are imported on first use, so ``import funrl`` (and ``funrl
--help``) does not pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any

from funrl._version import __version__

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and IDEs
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
    from funrl.compiling import compile
    from funrl.envs.registry import make, register, registered
    from funrl.evaluation import evaluate
    from funrl.train import train

_SUBMODULES = (
    "algos", "buffers", "checkpoint", "collectors", "compiling", "distributions", "envs",
    "evaluation", "export", "interop", "loop", "losses", "nn", "optim", "plot", "population",
    "random", "returns", "tree",
)  # fmt: skip
# top-level functions: name -> the module that defines it
_FUNCTIONS = {
    "compile": "funrl.compiling",
    "make": "funrl.envs.registry",
    "register": "funrl.envs.registry",
    "registered": "funrl.envs.registry",
    "evaluate": "funrl.evaluation",
    "train": "funrl.train",
}

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


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(_FUNCTIONS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"funrl.{name}")
    else:
        raise AttributeError(f"module 'funrl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _Package(types.ModuleType):
    """``funrl`` itself: importing the submodule ``funrl.train`` (which Python then sets
    as the package's attribute) keeps ``funrl.train`` the function, as it always was."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


import sys  # noqa: E402

sys.modules[__name__].__class__ = _Package
