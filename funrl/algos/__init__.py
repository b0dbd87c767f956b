"""Algorithms: one file each, ``make(config) -> Algo`` with pure ``init``/``update``/``act``."""

from funrl.algos import a2c, ddpg, dqn, ppo, sac, td3, units
from funrl.algos.common import Algo

__all__ = ["Algo", "a2c", "ddpg", "dqn", "ppo", "sac", "td3", "units"]
