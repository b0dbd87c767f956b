"""The built-in environment ids and where each is defined: ``(id, module, class)``.

Plain data, no imports: :mod:`funrl.envs.registry` registers them (lazily) and ``funrl
list`` prints them without importing torch.
"""

BUILTIN_ENVS: tuple[tuple[str, str, str], ...] = (
    ("CartPole-v1", "funrl.envs.classic_control", "CartPole"),
    ("Acrobot-v1", "funrl.envs.classic_control", "Acrobot"),
    ("MountainCar-v0", "funrl.envs.classic_control", "MountainCar"),
    ("MountainCarContinuous-v0", "funrl.envs.classic_control", "MountainCarContinuous"),
    ("Pendulum-v1", "funrl.envs.classic_control", "Pendulum"),
    ("MinAtar-Breakout-v1", "funrl.envs.minatar", "Breakout"),
    ("MinAtar-Asterix-v1", "funrl.envs.minatar", "Asterix"),
    ("MinAtar-Freeway-v1", "funrl.envs.minatar", "Freeway"),
    ("MinAtar-SpaceInvaders-v1", "funrl.envs.minatar", "SpaceInvaders"),
    ("MinAtar-Seaquest-v1", "funrl.envs.minatar", "Seaquest"),
    ("funrl/ConstantReward-v0", "funrl.envs.probes", "ConstantReward"),
    ("funrl/ObservationReward-v0", "funrl.envs.probes", "ObservationReward"),
    ("funrl/ActionReward-v0", "funrl.envs.probes", "ActionReward"),
    ("funrl/ContinuousActionReward-v0", "funrl.envs.probes", "ContinuousActionReward"),
    ("funrl/TwoStepDiscount-v0", "funrl.envs.probes", "TwoStepDiscount"),
)

#: Id prefixes of the host envs the registry builds itself: ``gym:<id>`` (any Gymnasium
#: env), ``atari:<Game>`` (:mod:`funrl.envs.atari`), ``envpool:<task>``
#: (:mod:`funrl.envs.envpool_bridge`), ``dmc:<domain>-<task>``
#: (:mod:`funrl.envs.dm_control`).
HOST_PREFIXES: tuple[str, ...] = ("gym:", "atari:", "envpool:", "dmc:")
