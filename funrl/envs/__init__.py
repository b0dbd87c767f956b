"""Environments as stateless step functions (see :mod:`funrl.envs.base`).

Pure torch environments (``classic_control``, ``probes``), vectorisation (``VecEnv``),
pure wrappers, the registry (``make``/``register``) and the host-side Gymnasium bridge.
"""

from funrl.envs.base import Environment
from funrl.envs.classic_control import (
    Acrobot,
    CartPole,
    MountainCar,
    MountainCarContinuous,
    Pendulum,
)
from funrl.envs.gym_bridge import GymnasiumEnv
from funrl.envs.probes import (
    ActionReward,
    ConstantReward,
    ContinuousActionReward,
    ObservationReward,
    TwoStepDiscount,
)
from funrl.envs.registry import make, make_gymnasium, register, registered
from funrl.envs.spaces import Box, Discrete
from funrl.envs.vector import VecEnv
from funrl.envs.wrappers import (
    Checked,
    ClipAction,
    ClipObservation,
    EpisodeStatistics,
    FlattenObservation,
    FrameStack,
    NormalizeObservation,
    RescaleAction,
    ScaleReward,
    StickyActions,
    TimeLimit,
    TransformReward,
    Wrapper,
    checked,
)

__all__ = [
    "Acrobot",
    "ActionReward",
    "Box",
    "CartPole",
    "Checked",
    "ClipAction",
    "ClipObservation",
    "ConstantReward",
    "ContinuousActionReward",
    "Discrete",
    "Environment",
    "EpisodeStatistics",
    "FlattenObservation",
    "FrameStack",
    "GymnasiumEnv",
    "MountainCar",
    "MountainCarContinuous",
    "NormalizeObservation",
    "ObservationReward",
    "Pendulum",
    "RescaleAction",
    "ScaleReward",
    "StickyActions",
    "TimeLimit",
    "TransformReward",
    "TwoStepDiscount",
    "VecEnv",
    "Wrapper",
    "checked",
    "make",
    "make_gymnasium",
    "register",
    "registered",
]
