"""funrl: functional, JAX-style reinforcement learning on PyTorch."""

from funrl import random, tree

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "random", "tree"]
