"""MinAtar games (Young & Tian 2019) in pure torch, matching the ``minatar`` package step for step.

``Breakout`` (id ``"MinAtar-Breakout-v1"``: MinAtar's minimal action set, as Gymnasium's
``MinAtar/Breakout-v1``), ``Asterix`` (``"MinAtar-Asterix-v1"``), ``Freeway``
(``"MinAtar-Freeway-v1"``), ``SpaceInvaders`` (``"MinAtar-SpaceInvaders-v1"``) and
``Seaquest`` (``"MinAtar-Seaquest-v1"``).
Observations are ``[10, 10, channels]`` float32 grids (channels last, as ``minatar``'s
``state()``).  See :mod:`funrl.envs.base` for the ``reset``/``step`` contract.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.envs import VecEnv
    >>> from funrl.envs.minatar import Breakout
    >>> venv = VecEnv(Breakout(), 8)
    >>> obs, state = venv.reset(R.key(0))
    >>> obs.shape
    torch.Size([8, 10, 10, 4])
"""

from funrl.envs.minatar.asterix import (
    ASTERIX_ACTION_SET,
    Asterix,
    AsterixParams,
    AsterixState,
)
from funrl.envs.minatar.breakout import (
    MINIMAL_ACTION_SET,
    Breakout,
    BreakoutParams,
    BreakoutState,
)
from funrl.envs.minatar.freeway import (
    FREEWAY_ACTION_SET,
    Freeway,
    FreewayParams,
    FreewayState,
)
from funrl.envs.minatar.seaquest import (
    SEAQUEST_ACTION_SET,
    Seaquest,
    SeaquestEntities,
    SeaquestParams,
    SeaquestState,
)
from funrl.envs.minatar.space_invaders import (
    SPACE_INVADERS_ACTION_SET,
    SpaceInvaders,
    SpaceInvadersParams,
    SpaceInvadersState,
)

__all__ = [
    "ASTERIX_ACTION_SET",
    "FREEWAY_ACTION_SET",
    "MINIMAL_ACTION_SET",
    "SEAQUEST_ACTION_SET",
    "SPACE_INVADERS_ACTION_SET",
    "Asterix",
    "AsterixParams",
    "AsterixState",
    "Breakout",
    "BreakoutParams",
    "BreakoutState",
    "Freeway",
    "FreewayParams",
    "FreewayState",
    "Seaquest",
    "SeaquestEntities",
    "SeaquestParams",
    "SeaquestState",
    "SpaceInvaders",
    "SpaceInvadersParams",
    "SpaceInvadersState",
]
