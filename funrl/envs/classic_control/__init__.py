"""Classic-control environments in pure torch, matching Gymnasium 1.x step for step.

``CartPole`` (CartPole-v1), ``Acrobot`` (Acrobot-v1), ``MountainCar`` (MountainCar-v0),
``MountainCarContinuous`` (MountainCarContinuous-v0) and ``Pendulum`` (Pendulum-v1), each
with the registered time limit as ``params.max_steps``.  See :mod:`funrl.envs.base` for
the ``reset``/``step`` contract.

Example::

    >>> import torch, funrl.random as R
    >>> from torch.func import vmap
    >>> from funrl.envs.classic_control import CartPole
    >>> env = CartPole()
    >>> obs, state = vmap(env.reset, in_dims=(0, None))(R.split(R.key(0), 8), env.default_params())
    >>> obs.shape
    torch.Size([8, 4])
"""

from funrl.envs.classic_control.acrobot import Acrobot, AcrobotParams, AcrobotState
from funrl.envs.classic_control.cartpole import CartPole, CartPoleParams, CartPoleState
from funrl.envs.classic_control.continuous_mountain_car import (
    MountainCarContinuous,
    MountainCarContinuousParams,
    MountainCarContinuousState,
)
from funrl.envs.classic_control.mountain_car import (
    MountainCar,
    MountainCarParams,
    MountainCarState,
)
from funrl.envs.classic_control.pendulum import (
    Pendulum,
    PendulumParams,
    PendulumState,
    angle_normalize,
)

__all__ = [
    "Acrobot",
    "AcrobotParams",
    "AcrobotState",
    "CartPole",
    "CartPoleParams",
    "CartPoleState",
    "MountainCar",
    "MountainCarContinuous",
    "MountainCarContinuousParams",
    "MountainCarContinuousState",
    "MountainCarParams",
    "MountainCarState",
    "Pendulum",
    "PendulumParams",
    "PendulumState",
    "angle_normalize",
]
