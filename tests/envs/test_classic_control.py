"""Classic-control envs against Gymnasium 1.x, transition by transition.

How the reference comparison works: funrl steps a whole batch of states at once (vmap);
a Python loop then sets a Gymnasium env (``gymnasium.make(id).unwrapped`` inside its
``TimeLimit``) to each of those states and step counters, steps it with the same action,
and the observations, rewards, terminated and truncated flags must agree.

Tolerances: float32 envs (the default) ``rtol = atol = 1e-5`` against Gymnasium's float64
dynamics; float64 envs ``rtol = 1e-6, atol = 1e-7`` on the float32 observation (i.e. equal
up to the final float32 rounding) and ``1e-10`` on rewards; flags always exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import TimeLimit
from torch.func import vmap

import funrl.random as R
from funrl import tree
from funrl.envs.base import Environment
from funrl.envs.classic_control import (
    Acrobot,
    AcrobotState,
    CartPole,
    CartPoleState,
    MountainCar,
    MountainCarContinuous,
    MountainCarContinuousState,
    MountainCarState,
    Pendulum,
    PendulumState,
    angle_normalize,
)
from funrl.envs.spaces import Box, Discrete
from funrl.testing import check_transforms

PI = math.pi


@dataclass(frozen=True)
class Spec:
    env_id: str
    make: Callable[..., Environment]
    state_cls: type
    fields: tuple[str, ...]  # state fields in Gymnasium's ``state`` order
    low: tuple[float, ...]  # box the broad random states are drawn from
    high: tuple[float, ...]
    n_actions: int | None = None  # discrete envs
    act_bound: float = 0.0  # continuous envs: actions drawn in +-1.5 * act_bound
    gym_state_float32: bool = False  # Gymnasium stores this env's state as float32
    # Tolerance of float32 envs on the broad states: Acrobot's RK4 step at extreme
    # velocities (|dtheta2| ~ 9 pi) amplifies a 1e-7 relative change of its input up to
    # ~1e-3 (measured with the float64 env), so float32 round-off alone reaches 1e-3 there.
    f32_broad_tol: float = 1e-5


SPECS = {
    "CartPole-v1": Spec(
        "CartPole-v1", CartPole, CartPoleState, ("x", "x_dot", "theta", "theta_dot"),
        (-2.6, -3.0, -0.25, -3.0), (2.6, 3.0, 0.25, 3.0), n_actions=2,
    ),
    "Acrobot-v1": Spec(
        "Acrobot-v1", Acrobot, AcrobotState, ("theta1", "theta2", "dtheta1", "dtheta2"),
        (-PI, -PI, -4 * PI, -9 * PI), (PI, PI, 4 * PI, 9 * PI), n_actions=3, f32_broad_tol=3e-3,
    ),
    "MountainCar-v0": Spec(
        "MountainCar-v0", MountainCar, MountainCarState, ("position", "velocity"),
        (-1.2, -0.07), (0.6, 0.07), n_actions=3,
    ),
    "MountainCarContinuous-v0": Spec(
        "MountainCarContinuous-v0", MountainCarContinuous, MountainCarContinuousState,
        ("position", "velocity"), (-1.2, -0.07), (0.6, 0.07), act_bound=1.0,
        gym_state_float32=True,
    ),
    "Pendulum-v1": Spec(
        "Pendulum-v1", Pendulum, PendulumState, ("theta", "theta_dot"),
        (-3 * PI, -8.0), (3 * PI, 8.0), act_bound=2.0,
    ),
}  # fmt: skip
IDS = list(SPECS)


def make_gym(env_id: str) -> gym.Env:
    """The bare Gymnasium env inside its registered ``TimeLimit`` (no checker wrappers)."""
    spec = gym.spec(env_id)
    env = TimeLimit(gym.make(env_id).unwrapped, max_episode_steps=spec.max_episode_steps)
    env.reset(seed=0)
    return env


def make_state(spec: Spec, values: torch.Tensor, time: torch.Tensor) -> object:
    """A (batched) funrl state from ``values [..., n_fields]`` and ``time [...]``."""
    kw = {f: values[..., i] for i, f in enumerate(spec.fields)}
    return spec.state_cls(**kw, time=time)


def sample_actions(spec: Spec, key: torch.Tensor, n: int) -> torch.Tensor:
    if spec.n_actions is not None:
        return R.randint(key, 0, spec.n_actions, (n,))
    b = 1.5 * spec.act_bound  # also out of bounds: clipping must match
    return R.uniform(key, (n, 1), low=-b, high=b)


def gym_transitions(spec: Spec, state: object, action: torch.Tensor, gym_env=None):
    """Step Gymnasium from each member of the batched funrl ``state`` with ``action``."""
    genv = make_gym(spec.env_id) if gym_env is None else gym_env
    u = genv.unwrapped
    vals = torch.stack([getattr(state, f) for f in spec.fields], -1).double().numpy()
    times = state.time.numpy()
    # Gymnasium keeps float64 states, except MountainCarContinuous (float32 after a step);
    # a float64 funrl env is compared with float64 Gymnasium math there too.
    f32 = spec.gym_state_float32 and getattr(state, spec.fields[0]).dtype == torch.float32
    np_dtype = np.float32 if f32 else np.float64
    obs, rew, term, trunc = [], [], [], []
    for i in range(vals.shape[0]):
        u.state = np.array(vals[i], dtype=np_dtype)
        if hasattr(u, "steps_beyond_terminated"):
            u.steps_beyond_terminated = None
        genv._elapsed_steps = int(times[i])
        a = int(action[i]) if spec.n_actions is not None else action[i].numpy()
        o, r, te, tr, _ = genv.step(a)
        obs.append(o)
        rew.append(float(r))
        term.append(te)
        trunc.append(tr)
    return np.stack(obs), np.array(rew), np.array(term), np.array(trunc)


def funrl_transitions(env: Environment, state: object, action: torch.Tensor, params, seed=0):
    keys = R.split(R.key(seed), action.shape[0])
    _, _, reward, term, trunc, info = vmap(env.step, in_dims=(0, 0, 0, None))(
        keys, state, action, params
    )
    return info["final_observation"], reward, term, trunc


def assert_match(
    env: Environment, spec: Spec, state, action, params=None, gym_env=None, f32_tol=1e-5
) -> None:
    params = env.default_params() if params is None else params
    f_obs, f_rew, f_term, f_trunc = funrl_transitions(env, state, action, params)
    g_obs, g_rew, g_term, g_trunc = gym_transitions(spec, state, action, gym_env)
    assert f_obs.dtype == torch.float32 and f_obs.shape == g_obs.shape
    f64 = env.dtype == torch.float64
    o_tol = {"rtol": 1e-6, "atol": 1e-7} if f64 else {"rtol": f32_tol, "atol": f32_tol}
    r_tol = {"rtol": 1e-10, "atol": 1e-10} if f64 else {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_array_equal(f_term.numpy(), g_term, err_msg="terminated")
    np.testing.assert_array_equal(f_trunc.numpy(), g_trunc, err_msg="truncated")
    np.testing.assert_allclose(f_obs.numpy(), g_obs, **o_tol, err_msg="observation")
    np.testing.assert_allclose(f_rew.double().numpy(), g_rew, **r_tol, err_msg="reward")


def broad_states(spec: Spec, dtype: torch.dtype, n: int, seed: int):
    """``n`` states uniform in the spec's box; times mostly at the time limit's edge."""
    k1, k2, k3 = R.split(R.key(seed), 3)
    lo, hi = (
        torch.tensor(spec.low, dtype=torch.float64),
        torch.tensor(spec.high, dtype=torch.float64),
    )
    vals = R.uniform(k1, (n, len(spec.fields)), dtype=torch.float64, low=lo, high=hi).to(dtype)
    max_steps = int(gym.spec(spec.env_id).max_episode_steps)
    time = torch.where(
        R.bernoulli(k2, 0.5, (n,)),
        R.randint(k3, max_steps - 3, max_steps, (n,)),
        R.randint(k3, 0, max_steps, (n,)),
    )
    return make_state(spec, vals, time)


# ---- reference: broad random states ---------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("env_id", IDS)
def test_matches_gymnasium_on_random_states(env_id: str, dtype: torch.dtype) -> None:
    spec = SPECS[env_id]
    env = spec.make(dtype=dtype)
    n = 1500
    state = broad_states(spec, dtype, n, seed=100 + IDS.index(env_id))
    action = sample_actions(spec, R.key(7), n)
    assert_match(env, spec, state, action, f32_tol=spec.f32_broad_tol)


# ---- reference: rollouts (the states an agent visits) -----------------------------------


@pytest.mark.parametrize("env_id", IDS)
def test_matches_gymnasium_along_rollouts(env_id: str) -> None:
    spec = SPECS[env_id]
    env = spec.make()
    params = env.default_params()
    n_envs, n_steps = 32, 60
    step = vmap(env.step, in_dims=(0, 0, 0, None))
    _, state = vmap(env.reset, in_dims=(0, None))(R.split(R.key(1), n_envs), params)
    states, actions = [], []
    for t in range(n_steps):
        ka, ks = R.split(R.fold_in(R.key(2), t))
        action = sample_actions(spec, ka, n_envs)
        states.append(state)
        actions.append(action)
        _, state, *_ = step(R.split(ks, n_envs), state, action, params)
    all_states = tree.map(lambda *x: torch.cat(x), *states)
    assert_match(env, spec, all_states, torch.cat(actions), params, gym_env=make_gym(env_id))


@pytest.mark.parametrize("env_id", IDS)
def test_float64_lockstep_episode(env_id: str) -> None:
    """float64 funrl and Gymnasium run a whole episode side by side from one initial state."""
    spec = SPECS[env_id]
    env = spec.make(dtype=torch.float64)
    params = env.default_params()
    genv = make_gym(env_id)
    _, state = env.reset(R.key(3), params)
    genv.unwrapped.state = np.array([float(getattr(state, f)) for f in spec.fields])
    max_steps = int(params.max_steps)
    n_steps = min(max_steps, 200)  # start late enough to reach the time limit in 200 steps
    state = state.replace(time=torch.tensor(max_steps - n_steps))
    genv._elapsed_steps = max_steps - n_steps
    tol = 1e-4 if env_id == "Acrobot-v1" else 1e-6  # Acrobot is chaotic: ulps grow
    for t in range(n_steps):
        a = sample_actions(spec, R.fold_in(R.key(4), t), 1)[0]
        _obs, state, r, te, tr, info = env.step(R.fold_in(R.key(5), t), state, a, params)
        g = genv.step(int(a) if spec.n_actions is not None else a.numpy())
        np.testing.assert_allclose(info["final_observation"].numpy(), g[0], rtol=tol, atol=tol)
        assert abs(float(r) - float(g[1])) <= tol * (1 + abs(float(g[1])))
        assert (bool(te), bool(tr)) == (g[2], g[3]), f"step {t}"
        if te or tr:
            break
    assert int(state.time) == 0  # auto-reset happened
    assert t + 1 == n_steps or bool(te)


# ---- edge cases ------------------------------------------------------------------------


def _edges(spec: Spec, rows: list[tuple], dtype: torch.dtype):
    vals = torch.tensor([r[0] for r in rows], dtype=dtype)
    time = torch.tensor([r[1] for r in rows], dtype=torch.int64)
    if spec.n_actions is not None:
        action = torch.tensor([r[2] for r in rows], dtype=torch.int64)
    else:
        action = torch.tensor([[r[2]] for r in rows], dtype=torch.float32)
    return make_state(spec, vals, time), action


THR = 12 * 2 * PI / 360


def test_cartpole_threshold_edges() -> None:
    spec = SPECS["CartPole-v1"]
    # With zero velocities the positions do not move: the new state is the given one.
    exact = [((2.4, 0, 0, 0), 0, 1), ((-2.4, 0, 0, 0), 0, 0), ((0, 0, THR, 0), 0, 1),
             ((0, 0, -THR, 0), 0, 0), ((2.4 + 1e-12, 0, 0, 0), 0, 1),
             ((-2.4 - 1e-12, 0, 0, 0), 0, 1), ((0, 0, THR + 1e-12, 0), 0, 1),
             ((0, 0, -THR - 1e-12, 0), 0, 1), ((2.5, 0, 0, 0), 498, 1),
             ((2.5, 0, 0, 0), 499, 1), ((0, 0, 0, 0), 499, 0), ((0, 0, 0, 0), 498, 0)]  # fmt: skip
    state, action = _edges(spec, exact, torch.float64)
    assert_match(CartPole(dtype=torch.float64), spec, state, action)
    env64 = CartPole(dtype=torch.float64)
    _, _, term, trunc = funrl_transitions(env64, state, action, env64.default_params())
    # at the threshold exactly: not terminated (strict inequality); just past it: terminated
    assert term.tolist() == [False] * 4 + [True] * 4 + [True, True, False, False]
    assert trunc.tolist() == [False] * 8 + [False, True, True, False]
    # float32: the same within float32 resolution of the thresholds
    d = 1e-5
    near = [((2.4 - d, 0, 0, 0), 0, 1), ((2.4 + d, 0, 0, 0), 0, 1), ((-2.4 + d, 0, 0, 0), 0, 0),
            ((-2.4 - d, 0, 0, 0), 0, 0), ((0, 0, THR - d, 0), 0, 0), ((0, 0, THR + d, 0), 0, 0),
            ((0, 0, -THR + d, 0), 0, 1), ((0, 0, -THR - d, 0), 0, 1)]  # fmt: skip
    state, action = _edges(spec, near, torch.float32)
    assert_match(CartPole(), spec, state, action)


def test_mountain_car_edges() -> None:
    spec = SPECS["MountainCar-v0"]
    rows = [
        ((-1.2, -0.07), 0, 0),  # left wall: clipped position, velocity zeroed
        ((-1.2, 0.0), 0, 0),  # at the wall, pushed left by gravity and the action
        ((-1.19, -0.005), 0, 1),  # near the wall, not reaching it
        ((0.0, 0.0699), 0, 2),  # speed clipped to +max_speed
        ((0.0, -0.0699), 0, 0),  # speed clipped to -max_speed
        ((0.59, 0.07), 0, 2),  # right wall: clipped to 0.6, terminated
        ((0.52, -0.01), 0, 0),  # past the goal but moving left: not terminated
        ((0.499, 0.0), 0, 2),
        ((0.3, 0.0), 199, 1),  # time limit
        ((0.6, 0.07), 199, 2),  # terminated and truncated together
    ]
    for dtype in (torch.float32, torch.float64):
        state, action = _edges(spec, rows, dtype)
        env = MountainCar(dtype=dtype)
        assert_match(env, spec, state, action)
        _, _, term, trunc = funrl_transitions(env, state, action, env.default_params())
        assert term.tolist() == [False] * 5 + [True, False, False, False, True]
        assert trunc.tolist() == [False] * 8 + [True, True]


def test_mountain_car_goal_exactly() -> None:
    """With force and gravity off (params), positions land exactly on the goal."""
    spec = SPECS["MountainCar-v0"]
    env = MountainCar(dtype=torch.float64)
    params = env.default_params().replace(
        force=torch.tensor(0.0, dtype=torch.float64), gravity=torch.tensor(0.0, dtype=torch.float64)
    )
    rows = [((0.45, 0.05), 0, 2), ((0.5, 0.0), 0, 1), ((0.49, 0.0), 0, 0), ((0.5, -1e-12), 0, 1)]
    state, action = _edges(spec, rows, torch.float64)
    genv = make_gym("MountainCar-v0")
    genv.unwrapped.force, genv.unwrapped.gravity = 0.0, 0.0
    assert_match(env, spec, state, action, params, gym_env=genv)
    _, _, term, _ = funrl_transitions(env, state, action, params)
    assert term.tolist() == [True, True, False, False]


def test_continuous_mountain_car_edges() -> None:
    spec = SPECS["MountainCarContinuous-v0"]
    rows = [
        ((-1.2, -0.07), 0, -1.0),
        ((0.0, 0.0699), 0, 1.0),
        ((0.0, 0.0699), 0, 3.0),  # clipped force, unclipped action in the reward
        ((0.0, -0.0699), 0, -3.0),
        ((0.44, 0.07), 0, 0.5),  # goal (0.45) reached: reward 100 - 0.1 a^2
        ((0.46, -0.01), 0, 0.0),
        ((0.59, 0.07), 998, 1.0),  # terminated and truncated together
        ((0.0, 0.0), 998, 0.0),
    ]
    for dtype in (torch.float32, torch.float64):
        state, action = _edges(spec, rows, dtype)
        env = MountainCarContinuous(dtype=dtype)
        assert_match(env, spec, state, action)
        _, rew, term, trunc = funrl_transitions(env, state, action, env.default_params())
        assert term.tolist() == [False] * 4 + [True, False, True, False]
        assert trunc.tolist() == [False] * 6 + [True, True]
        assert abs(float(rew[4]) - (100.0 - 0.1 * 0.25)) < 1e-4
        assert abs(float(rew[2]) + 0.9) < 1e-6  # 0.1 * 3^2, not 0.1 * 1^2


def test_pendulum_edges() -> None:
    spec = SPECS["Pendulum-v1"]
    rows = [
        ((0.0, 7.9), 0, 2.0),  # speed clipped
        ((0.0, -7.9), 0, -2.0),
        ((0.5, 0.0), 0, 5.0),  # torque clipped
        ((0.5, 0.0), 0, -5.0),
        ((PI, 0.0), 0, 0.0),  # angle_normalize(pi) = -pi
        ((-PI, 0.0), 0, 0.0),
        ((10.0, 1.0), 0, 0.0),  # theta is never wrapped in the state
        ((-7.0, -1.0), 0, 1.0),
        ((0.0, 0.0), 199, 0.0),  # time limit
        ((0.0, 0.0), 198, 0.0),
    ]
    for dtype in (torch.float32, torch.float64):
        state, action = _edges(spec, rows, dtype)
        env = Pendulum(dtype=dtype)
        assert_match(env, spec, state, action)
        _, rew, term, trunc = funrl_transitions(env, state, action, env.default_params())
        assert not term.any()
        assert trunc.tolist() == [False] * 8 + [True, False]
        assert abs(float(rew[4]) + PI**2) < 1e-5


def test_angle_normalize_matches_numpy() -> None:
    x = torch.linspace(-20.0, 20.0, 4001, dtype=torch.float64)
    x = torch.cat([x, torch.tensor([PI, -PI, 3 * PI, -3 * PI, 0.0], dtype=torch.float64)])
    expected = ((x.numpy() + np.pi) % (2 * np.pi)) - np.pi
    np.testing.assert_array_equal(angle_normalize(x).numpy(), expected)
    assert torch.all(angle_normalize(x) < PI) and torch.all(angle_normalize(x) >= -PI)


def test_acrobot_edges() -> None:
    spec = SPECS["Acrobot-v1"]
    rows = [
        ((PI - 1e-3, 0.0, 1.0, 0.0), 0, 2),  # theta1 wraps past +pi
        ((-PI + 1e-3, 0.0, -1.0, 0.0), 0, 0),  # ... and past -pi
        ((0.0, PI - 1e-3, 0.0, 2.0), 0, 1),
        ((0.0, 0.0, 4 * PI, 9 * PI), 0, 2),  # velocities clipped
        ((0.0, 0.0, -4 * PI, -9 * PI), 0, 0),
        ((PI, 0.0, 0.0, 0.0), 0, 1),  # straight up: terminal
        ((2.0, 0.0, 0.0, 0.0), 0, 1),  # -cos(2) - cos(2) = 0.83: not terminal
        ((0.0, 0.0, 0.0, 0.0), 499, 1),  # time limit
        ((PI, 0.0, 0.0, 0.0), 499, 1),  # terminated and truncated together
    ]
    for dtype in (torch.float32, torch.float64):
        state, action = _edges(spec, rows, dtype)
        env = Acrobot(dtype=dtype)
        assert_match(env, spec, state, action)
        _, rew, term, trunc = funrl_transitions(env, state, action, env.default_params())
        # near +-pi theta1 points up (terminal); theta2 = pi folds the arm down (not)
        assert term[[0, 1, 2, 5, 6, 7, 8]].tolist() == [True, True, False, True, False, False, True]
        assert trunc.tolist() == [False] * 7 + [True, True]
        assert torch.equal(rew, torch.where(term, 0.0, -1.0).to(dtype))


# ---- params: vmap over physics constants (domain randomisation) ------------------------


def test_cartpole_vmap_over_params_matches_gymnasium() -> None:
    spec = SPECS["CartPole-v1"]
    env = CartPole(dtype=torch.float64)
    n = 64
    base = env.default_params()
    keys = R.split(R.key(11), 6)
    scale = [R.uniform(k, (n,), dtype=torch.float64, low=0.5, high=1.5) for k in keys]
    names = ["gravity", "masscart", "masspole", "length", "force_mag", "tau"]
    params = base.replace(**{nm: getattr(base, nm) * s for nm, s in zip(names, scale)})
    params = tree.map(lambda x: x.expand(n) if x.ndim == 0 else x, params)
    state = broad_states(spec, torch.float64, n, seed=12)
    action = sample_actions(spec, R.key(13), n)
    keys = R.split(R.key(14), n)
    _, _, _rew, term, trunc, info = vmap(env.step)(keys, state, action, params)
    genv = make_gym("CartPole-v1")
    u = genv.unwrapped
    for i in range(n):
        for nm in names:
            setattr(u, nm, float(getattr(params, nm)[i]))
        u.total_mass = u.masspole + u.masscart
        u.polemass_length = u.masspole * u.length
        g_obs, _g_rew, g_term, g_trunc = gym_transitions(
            spec, tree.index(state, slice(i, i + 1)), action[i : i + 1], genv
        )
        np.testing.assert_allclose(info["final_observation"][i].numpy(), g_obs[0], 1e-6, 1e-7)
        assert (bool(term[i]), bool(trunc[i])) == (g_term[0], g_trunc[0])


def test_pendulum_vmap_over_params_matches_gymnasium() -> None:
    spec = SPECS["Pendulum-v1"]
    env = Pendulum(dtype=torch.float64)
    n = 64
    base = env.default_params()
    names = ["g", "m", "l", "dt", "max_speed", "max_torque"]
    keys = R.split(R.key(21), len(names))
    scale = [R.uniform(k, (n,), dtype=torch.float64, low=0.5, high=1.5) for k in keys]
    params = base.replace(**{nm: getattr(base, nm) * s for nm, s in zip(names, scale)})
    params = tree.map(lambda x: x.expand(n) if x.ndim == 0 else x, params)
    state = broad_states(spec, torch.float64, n, seed=22)
    action = sample_actions(spec, R.key(23), n)
    _, _, rew, _, _, info = vmap(env.step)(R.split(R.key(24), n), state, action, params)
    genv = make_gym("Pendulum-v1")
    for i in range(n):
        for nm in names:
            setattr(genv.unwrapped, nm, float(getattr(params, nm)[i]))
        g_obs, g_rew, _, _ = gym_transitions(
            spec, tree.index(state, slice(i, i + 1)), action[i : i + 1], genv
        )
        np.testing.assert_allclose(info["final_observation"][i].numpy(), g_obs[0], 1e-6, 1e-7)
        np.testing.assert_allclose(float(rew[i]), g_rew[0], rtol=1e-10)


# ---- reset distributions ----------------------------------------------------------------

RESET_BOUNDS = {  # per state field: (low, high) of the uniform initial distribution
    "CartPole-v1": [(-0.05, 0.05)] * 4,
    "Acrobot-v1": [(-0.1, 0.1)] * 4,
    "MountainCar-v0": [(-0.6, -0.4), (0.0, 0.0)],
    "MountainCarContinuous-v0": [(-0.6, -0.4), (0.0, 0.0)],
    "Pendulum-v1": [(-PI, PI), (-1.0, 1.0)],
}


@pytest.mark.parametrize("env_id", IDS)
def test_reset_distribution(env_id: str) -> None:
    spec = SPECS[env_id]
    env = spec.make()
    params = env.default_params()
    n = 20000
    obs, state = vmap(env.reset, in_dims=(0, None))(R.split(R.key(31), n), params)
    assert obs.shape == (n, *env.observation_space(params).shape) and obs.dtype == torch.float32
    assert bool(env.observation_space(params).contains(obs).all())
    assert torch.equal(state.time, torch.zeros(n, dtype=torch.int64))
    for f, (lo, hi) in zip(spec.fields, RESET_BOUNDS[env_id]):
        x = getattr(state, f).double()
        assert x.dtype == torch.float64 or getattr(state, f).dtype == torch.float32
        if lo == hi:
            assert torch.all(x == lo), f
            continue
        assert x.min() >= lo and x.max() < hi, f
        width = hi - lo
        mean_sd = width / math.sqrt(12 * n)
        assert abs(float(x.mean()) - (lo + hi) / 2) < 4 * mean_sd, f
        assert abs(float(x.var()) / (width**2 / 12) - 1) < 0.05, f
        counts = torch.histc(x, bins=10, min=lo, max=hi)  # chi-square against uniform
        chi2 = float(((counts - n / 10) ** 2 / (n / 10)).sum())
        assert chi2 < 30.0, (f, chi2)  # chi2(9 dof) exceeds 30 with p ~ 4e-4
    if env_id == "Acrobot-v1":  # Gymnasium rounds the initial state to float32
        env64 = Acrobot(dtype=torch.float64)
        _, s64 = vmap(env64.reset, in_dims=(0, None))(R.split(R.key(31), 8), env64.default_params())
        assert torch.equal(s64.theta1, s64.theta1.float().double())


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_match_gymnasium(env_id: str) -> None:
    spec = SPECS[env_id]
    env = spec.make()
    params = env.default_params()
    genv = gym.make(env_id)
    assert int(params.max_steps) == genv.spec.max_episode_steps
    o_space, a_space = env.observation_space(params), env.action_space(params)
    np.testing.assert_array_equal(o_space.low.numpy(), genv.observation_space.low)
    np.testing.assert_array_equal(o_space.high.numpy(), genv.observation_space.high)
    assert o_space.dtype == torch.float32
    if spec.n_actions is not None:
        assert isinstance(a_space, Discrete) and a_space.n == genv.action_space.n
        assert env.num_actions == spec.n_actions
    else:
        assert isinstance(a_space, Box)
        np.testing.assert_array_equal(a_space.low.numpy(), genv.action_space.low)
        np.testing.assert_array_equal(a_space.high.numpy(), genv.action_space.high)


# ---- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", IDS)
def test_step_rejects_bad_actions(env_id: str) -> None:
    spec = SPECS[env_id]
    env = spec.make()
    _, state = env.reset(R.key(0))
    if spec.n_actions is not None:
        with pytest.raises(TypeError, match="integer"):
            env.step(R.key(1), state, torch.tensor(1.0))
        with pytest.raises(ValueError, match="0-d"):
            env.step(R.key(1), state, torch.tensor([1]))
    else:
        with pytest.raises(TypeError, match="floating"):
            env.step(R.key(1), state, torch.tensor([1]))
        with pytest.raises(ValueError, match=r"shape \[1\]"):
            env.step(R.key(1), state, torch.tensor(1.0))
    with pytest.raises(TypeError, match="floating dtype"):
        spec.make(dtype=torch.int64)


# ---- transforms: eager / vmap(randomness="error") / torch.compile ------------------------


def _reset_then_step(env: Environment, params):
    def fn(key: torch.Tensor, action: torch.Tensor):
        k1, k2 = R.split(key)
        obs, state = env.reset(k1, params)
        return obs, env.step(k2, state, action, params)

    return fn


# Compiling is expensive here: a cold torch.compile of one vmapped CartPole ``step`` (which
# hashes keys with Threefry for the auto-reset) measured ~28 s CPU on this machine, almost
# all of it the Threefry graph.  So by default: eager vs vmap for reset + step of every env;
# compile for every env's own dynamics (``step_env``, all five in one graph); and the full
# auto-resetting ``step`` of CartPole compiled under vmap.  FUNRL_FULL_COMPILE=1 adds the
# complete battery (eager / vmap / compile of reset + step) for every env.
FULL_COMPILE = bool(os.environ.get("FUNRL_FULL_COMPILE"))


@pytest.mark.parametrize("env_id", IDS)
def test_reset_and_step_eager_matches_vmap(env_id: str) -> None:
    spec = SPECS[env_id]
    env = spec.make()
    keys = R.split(R.key(41), 3)
    action = sample_actions(spec, R.key(42), 3)
    check_transforms(_reset_then_step(env, env.default_params()), keys, action, compile=False)


def test_step_env_of_all_envs_compiles() -> None:
    envs = {env_id: SPECS[env_id].make() for env_id in IDS}
    params = {env_id: env.default_params() for env_id, env in envs.items()}
    key = R.key(0)

    def fn(states: dict, actions: dict) -> dict:
        return {i: envs[i].step_env(key, states[i], actions[i], params[i]) for i in IDS}

    states = {i: broad_states(SPECS[i], torch.float32, 3, seed=43) for i in IDS}
    actions = {i: sample_actions(SPECS[i], R.key(44), 3) for i in IDS}
    check_transforms(fn, states, actions, members=1)


def test_cartpole_full_step_compiles_under_vmap() -> None:
    env = CartPole()
    params = env.default_params()
    state = broad_states(SPECS["CartPole-v1"], torch.float32, 4, seed=45)  # some terminate
    action = sample_actions(SPECS["CartPole-v1"], R.key(46), 4)
    out = check_transforms(
        lambda k, s, a: env.step(k, s, a, params), R.split(R.key(47), 4), state, action, members=0
    )
    assert out[3].any() and not out[3].all()  # both branches of the auto-reset are exercised


@pytest.mark.skipif(not FULL_COMPILE, reason="set FUNRL_FULL_COMPILE=1 (slow: ~1 min per env)")
@pytest.mark.parametrize("env_id", IDS)
def test_reset_and_step_full_battery(env_id: str) -> None:
    spec = SPECS[env_id]
    env = spec.make()
    keys = R.split(R.key(41), 3)
    action = sample_actions(spec, R.key(42), 3)
    check_transforms(_reset_then_step(env, env.default_params()), keys, action, members=1)


def test_vmap_many_keys_matches_single() -> None:
    env = Acrobot()
    params = env.default_params()
    n = 4096
    keys = R.split(R.key(51), n)
    obs, state = vmap(env.reset, in_dims=(0, None), randomness="error")(keys, params)
    action = sample_actions(SPECS["Acrobot-v1"], R.key(52), n)
    out = vmap(env.step, in_dims=(0, 0, 0, None), randomness="error")(keys, state, action, params)
    for i in (0, 1234, n - 1):
        o1, s1 = env.reset(keys[i], params)
        assert torch.equal(o1, obs[i])
        single = env.step(keys[i], s1, action[i], params)
        torch.testing.assert_close(single[0], out[0][i], rtol=1e-6, atol=1e-6)
        assert bool(single[3]) == bool(out[3][i])


# ---- CUDA (skipped without a GPU) ------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("env_id", IDS)
def test_cuda_matches_cpu(env_id: str) -> None:
    spec = SPECS[env_id]
    env = spec.make()
    n = 256
    params = env.default_params()
    keys = R.split(R.key(61), n)
    action = sample_actions(spec, R.key(62), n)
    fn = vmap(_reset_then_step(env, params))
    cpu = fn(keys, action)
    params_cuda = tree.map(lambda x: x.cuda(), params)
    fn_cuda = vmap(_reset_then_step(env, params_cuda))
    gpu = fn_cuda(keys.cuda(), action.cuda())
    for a, b in zip(tree.leaves(cpu), tree.leaves(gpu)):
        assert b.device.type == "cuda"
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-4)
    compiled = torch.compile(fn_cuda, fullgraph=True)(keys.cuda(), action.cuda())
    for a, b in zip(tree.leaves(gpu), tree.leaves(compiled)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    # CPU params (0-d) with CUDA keys also work: tensors follow the inputs' device
    gpu2 = fn(keys.cuda(), action.cuda())
    assert all(x.device.type == "cuda" for x in tree.leaves(gpu2) if x.ndim > 0)


def test_acrobot_torque_noise_is_keyed() -> None:
    spec = SPECS["Acrobot-v1"]
    state = broad_states(spec, torch.float64, 64, seed=71)
    action = sample_actions(spec, R.key(72), 64)
    plain = Acrobot(dtype=torch.float64)
    noisy = Acrobot(dtype=torch.float64, torque_noise=True)
    params = plain.default_params()  # torque_noise_max = 0: the noise is exactly zero
    a = funrl_transitions(plain, state, action, params)
    b = funrl_transitions(noisy, state, action, params)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    params = params.replace(torque_noise_max=torch.tensor(0.5, dtype=torch.float64))
    c1 = funrl_transitions(noisy, state, action, params, seed=1)
    c2 = funrl_transitions(noisy, state, action, params, seed=1)
    c3 = funrl_transitions(noisy, state, action, params, seed=2)
    assert torch.equal(c1[0], c2[0]) and not torch.equal(c1[0], c3[0])
    assert not torch.equal(c1[0], a[0])
