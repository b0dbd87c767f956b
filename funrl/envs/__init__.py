"""Environments as stateless step functions (see :mod:`funrl.envs.base`)."""

from funrl.envs.base import Environment
from funrl.envs.spaces import Box, Discrete

__all__ = ["Box", "Discrete", "Environment"]
