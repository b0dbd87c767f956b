"""Algorithms: one file each, ``make(config, *, parts...) -> Algo`` with pure ``init``/``update``/``act``.

``offpolicy`` holds the machinery DQN, SAC, TD3 and DDPG share; ``common`` the ``Algo``
record, the :class:`HParams` base (extend an algorithm's hyperparameters by subclassing its
HParams with :func:`hparam` fields) and the checks every ``make`` runs on its parts.
"""

from funrl.algos import a2c, ddpg, dqn, offpolicy, ppo, sac, td3, units
from funrl.algos.common import Algo, HParams, hparam

__all__ = [
    "Algo",
    "HParams",
    "a2c",
    "ddpg",
    "dqn",
    "hparam",
    "offpolicy",
    "ppo",
    "sac",
    "td3",
    "units",
]
