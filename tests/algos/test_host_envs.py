"""Every algorithm trains on a host env (a Gymnasium bridge) through the same init/update.

Over a host env only an algorithm's pure parts are units and the env steps eagerly
between them.  ``HostEnv`` marks a pure env as a host env without changing a number, so
the host path must give every golden case's parameters bit for bit (eager); then the
real bridge trains, compiles, checkpoints, resumes and evaluates.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import os

import pytest
import torch

import funrl
from funrl import tree
from funrl.algos import ppo, sac, units
from funrl.envs import registry
from funrl.envs.classic_control import CartPole, Pendulum
from funrl.testing.host import host_factory

from .test_golden import CASES

HOST_IDS = {"CartPole-v1": "test/HostCartPole-v1", "Pendulum-v1": "test/HostPendulum-v1"}


@pytest.fixture(scope="module", autouse=True)
def host_envs():
    registry.register(HOST_IDS["CartPole-v1"], host_factory(CartPole), overwrite=True)
    registry.register(HOST_IDS["Pendulum-v1"], host_factory(Pendulum), overwrite=True)
    yield
    for env_id in HOST_IDS.values():
        registry._REGISTRY.pop(env_id, None)


def _run(mod, config, hp, n):
    algo = mod.make(config)
    state = algo.init(funrl.random.key(7), hp)
    for _ in range(n):
        state, metrics = algo.update(state, hp)
    return algo, state, metrics


@pytest.mark.parametrize("case", sorted(CASES))
def test_host_path_equals_pure_path(case):
    mod_name, fields, hp_over, n = CASES[case]
    mod = importlib.import_module(f"funrl.algos.{mod_name}")
    config = mod.Config(**fields)
    hp = mod.HParams.create(**hp_over)
    _, pure, m_pure = _run(mod, config, hp, n)
    host_config = mod.Config(**{**fields, "env": HOST_IDS[config.env]})
    algo, host, m_host = _run(mod, host_config, hp, n)
    assert algo.env_stack.host
    assert tree.all_equal(host.params, pure.params)
    assert tree.all_equal(host.opt_state, pure.opt_state)
    assert tree.all_equal(host.collector, pure.collector)
    assert sorted(m_host) == sorted(m_pure)
    for k in m_pure:
        assert torch.equal(m_host[k], m_pure[k]) or (m_host[k].isnan() & m_pure[k].isnan()).all()


def test_compiled_host_path_compiles_only_pure_parts():
    """PPO over the Gymnasium bridge with compiled units: the policy is a compiled unit
    ("act", no "collect" unit), each unit compiles once, and the numbers match eager."""
    config = ppo.Config(env="gym:CartPole-v1", num_envs=4, num_steps=8, hidden=(16, 16))
    hp = ppo.HParams.create()
    _, eager_state, _ = _run(ppo, config, hp, 3)
    from funrl import compiling

    events = []
    with compiling.compile_events(lambda name, event, s: events.append((name, event))):
        algo = ppo.make(config, units=units.compiled)
        state = algo.init(funrl.random.key(7), hp)
        for _ in range(3):
            state, _ = algo.update(state, hp)
    names = [name for name, event in events if event == "end"]
    assert "unit 'act'" in names and "unit 'collect'" not in names
    assert not [e for e in events if e[1] == "recompile"], events  # no unit compiled twice
    for a, b in zip(tree.leaves(state.params), tree.leaves(eager_state.params)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_train_evaluate_checkpoint_and_resume_on_gymnasium(tmp_path):
    """funrl.train over gym:Pendulum-v1 (SAC): evaluation runs Gymnasium envs, the
    checkpoint saves, and a resume restarts the episodes and continues."""
    config = sac.Config(
        env="gym:Pendulum-v1", num_envs=2, batch_size=8, learning_starts=8, buffer_size=64,
        hidden=(16,),
    )  # fmt: skip
    algo, hp = sac.make(config), sac.HParams.create()
    kw = dict(compile=False, progress=False, eval_episodes=2)
    ckpt = tmp_path / "c.pt"
    first = funrl.train(algo, funrl.random.key(0), hp, num_updates=6, checkpoint_path=ckpt, **kw)
    assert first.updates == 6 and -2000 < first.eval_return < 0
    resumed = funrl.train(algo, funrl.random.key(0), hp, num_updates=10, resume=ckpt, **kw)
    assert resumed.updates == 10 and math.isfinite(resumed.eval_return)
    # it continued from the checkpoint: counters and buffer carried over, episodes restarted
    assert int(resumed.state.global_step) == 10 * config.num_envs
    assert int(resumed.state.buffer.size) == 10 * config.num_envs
    assert int(resumed.state.collector.env_state.inner) == 4  # the bridge: steps since restart


def test_restart_keeps_normalisation_statistics():
    config = ppo.Config(env="gym:Pendulum-v1", num_envs=2, num_steps=4, hidden=(8,),
                        normalize_obs=True, normalize_reward=True)  # fmt: skip
    algo, state, _ = _run(ppo, config, ppo.HParams.create(), 2)
    restarted = funrl.algos.common.restart_episodes(algo.env_stack, state)
    saved, new = state.collector.env_state, restarted.collector.env_state
    # observation moments: the saved ones, updated with the new episodes' first obs
    assert int(new.moments.count) == int(saved.moments.count) + config.num_envs
    assert torch.equal(new.inner.moments.mean, saved.inner.moments.mean)  # reward moments
    assert int(new.inner.inner.inner) == 0  # the bridge's step count: reset
    assert not torch.equal(restarted.collector.key, state.collector.key)


THREAD_CASES = {  # algorithm: its Config on a Gymnasium id, 4 envs
    "ppo": dict(env="gym:Pendulum-v1", num_envs=4, num_steps=8, hidden=(8,), normalize_obs=True),
    "a2c": dict(env="gym:CartPole-v1", num_envs=4, num_steps=5, hidden=(8,)),
    "dqn": dict(env="gym:CartPole-v1", num_envs=4, learning_starts=8, batch_size=8, hidden=(8,)),
    "sac": dict(env="gym:Pendulum-v1", num_envs=4, learning_starts=8, batch_size=8, hidden=(8,)),
    "td3": dict(env="gym:Pendulum-v1", num_envs=4, learning_starts=8, batch_size=8, hidden=(8,)),
    "ddpg": dict(env="gym:Pendulum-v1", num_envs=4, learning_starts=8, batch_size=8, hidden=(8,)),
}


@pytest.mark.parametrize("name", sorted(THREAD_CASES))
def test_thread_vectorization_trains_the_same_numbers(name):
    """``host_vectorization="thread"`` steps the same Gymnasium envs on threads: the run's
    parameters, optimizer state and metrics equal the sync run's bit for bit."""
    from funrl.envs.thread_vector import ThreadVectorEnv

    mod = importlib.import_module(f"funrl.algos.{name}")
    fields = THREAD_CASES[name]
    hp = mod.HParams.create()
    _, sync, m_sync = _run(mod, mod.Config(**fields), hp, 25)  # CartPole: episodes end
    algo, threaded, m_thread = _run(mod, mod.Config(**fields, host_vectorization="thread"), hp, 25)
    envs = algo.env_stack.env
    while not hasattr(envs, "gym_env"):
        envs = envs.env
    assert isinstance(envs.gym_env, ThreadVectorEnv) and envs.gym_env.num_threads >= 1
    assert tree.all_equal(threaded.params, sync.params)
    assert tree.all_equal(threaded.opt_state, sync.opt_state)
    for k in m_sync:
        assert (
            torch.equal(m_thread[k], m_sync[k]) or (m_thread[k].isnan() & m_sync[k].isnan()).all()
        )


def test_host_vectorization_is_checked():
    with pytest.raises(ValueError, match="Config.host_vectorization must be one of 'sync'"):
        ppo.make(ppo.Config(env="gym:CartPole-v1", host_vectorization="threads"))
    with pytest.raises(ValueError, match="Config.host_vectorization must be one of 'sync'"):
        sac.make(sac.Config(env="gym:Pendulum-v1", host_vectorization="process"))
    with pytest.raises(ValueError, match="CartPole-v1: host_vectorization='thread' applies"):
        ppo.make(ppo.Config(env="CartPole-v1", host_vectorization="thread"))


def test_population_over_a_host_env_is_refused():
    config = ppo.Config(env="gym:CartPole-v1", num_envs=2, num_steps=4)
    with pytest.raises(ValueError, match="host env .* cannot be vmapped over a population"):
        ppo.make(config, units=units.population())
    with pytest.raises(ValueError, match="host env .* cannot be vmapped"):
        sac.make(sac.Config(env="gym:Pendulum-v1"), units=units.population())


NEEDS_MUJOCO = pytest.mark.skipif(
    importlib.util.find_spec("mujoco") is None and not os.environ.get("CI"),
    reason="mujoco not installed (pip install 'funrl[mujoco]'; CI installs it)",
)


def _cli(argv):
    from funrl.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@NEEDS_MUJOCO
@pytest.mark.parametrize(
    ("algo", "env"), [("sac", "gym:InvertedPendulum-v5"), ("ppo", "gym:CartPole-v1")]
)
def test_cli_trains_evaluates_and_exports_on_gymnasium(algo, env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT to the cwd
    sets = ["--set", "hidden=16", "--set", "num_envs=2"]
    if algo == "sac":
        sets += ["--set", "learning_starts=32", "--set", "batch_size=16"]
    else:
        sets += ["--set", "num_steps=16"]
    code, out, err = _cli(["train", algo, "--env", env, "--total-steps", "64", "--no-compile",
                           "--eval-episodes", "2", "--quiet", "--out", "run", *sets])  # fmt: skip
    assert code == 0, out + err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["env"] == env
    assert summary["env_steps"] == 64 and math.isfinite(summary["eval_return"])
    code, out, err = _cli(["eval", "run", "--episodes", "2"])
    assert code == 0 and "2 episodes, mean return" in out, out + err
    code, out, err = _cli(["export", "run", "-o", "policy.pt2"])
    assert code == 0, out + err
    policy = torch.export.load(tmp_path / "policy.pt2").module()
    obs_dim = 4
    action = policy(torch.zeros(1, obs_dim))
    if algo == "sac":  # in InvertedPendulum's action bounds [-3, 3]
        assert action.shape == (1, 1) and float(action.abs().max()) <= 3.0
    else:
        assert action.shape == (1,)
