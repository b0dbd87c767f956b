"""Every algorithm on a CUDA device (skipped without one): eager updates agree with the CPU's.

Built under ``torch.device("cuda")`` (the default device), so every tensor ``make`` and
``init`` create lives on the GPU.  Float32 kernels differ between devices, so the
comparison is ``allclose`` (the first H100 run differed by ~1e-6 after 3 PPO updates).
"""

import importlib

import pytest
import torch

import funrl.random as R
from funrl import population as pop
from funrl import tree
from funrl.compiling import compile as funrl_compile
from funrl.envs import make, registered
from funrl.testing import assert_trees_close

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

_OFF = dict(num_envs=2, batch_size=8, learning_starts=8, buffer_size=64, hidden=(16,))
CASES = {
    "ppo": dict(num_envs=4, num_steps=8, hidden=(16,)),
    "a2c": dict(num_envs=4, num_steps=5, hidden=(16,)),
    "dqn": dict(**_OFF, prioritized=True, n_step=2),
    "sac": dict(**_OFF),
    "sac-discrete": dict(**_OFF, env="CartPole-v1", discrete=True),
    "td3": dict(**_OFF),
    "ddpg": dict(**_OFF),
    # the CNN path: MinAtar's 10x10 image observations
    "ppo-minatar": dict(env="MinAtar-Breakout-v1", num_envs=4, num_steps=8, hidden=(16,)),
    "dqn-minatar": dict(**_OFF, env="MinAtar-Asterix-v1"),
}
MINATAR = [i for i in registered() if i.startswith("MinAtar-")]


def _run(name: str, device: str, updates: int = 4):
    mod = importlib.import_module(f"funrl.algos.{name.split('-')[0]}")  # "sac-discrete": sac
    with torch.device(device):
        algo = mod.make(mod.Config(**CASES[name]))
        hp = algo.hparams_cls.create()
        state = algo.init(R.key(0), hp)
        for _ in range(updates):
            state, metrics = algo.update(state, hp)
    return algo, state, metrics


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_updates_on_cuda_match_the_cpu(name):
    _, cpu, _ = _run(name, "cpu")
    _, gpu, metrics = _run(name, "cuda")
    assert all(x.device.type == "cuda" for x in tree.leaves(gpu.params))
    assert all(v.device.type == "cuda" for v in metrics.values())
    assert tree.allclose(tree.map(lambda x: x.cpu(), gpu.params), cpu.params, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["ppo", "dqn", "sac"])
def test_population_on_cuda(name):
    mod = importlib.import_module(f"funrl.algos.{name}")
    with torch.device("cuda"):
        algo = mod.make(mod.Config(**CASES[name]))
        hps = pop.hparams(algo.hparams_cls, 2)
        res = pop.train(algo, pop.member_keys(R.key(0), 2), hps, num_updates=3, compile=False,
                        progress=False, eval_episodes=2)  # fmt: skip
    assert res.eval_returns.shape == (2,)


def _minatar_rollout(env_id: str, device: str, steps: int, compiled: bool = False):
    """``steps`` steps of 64 members from fixed keys, actions drawn on the CPU: the reset's
    obs, then each step's ``(obs, reward, terminated, truncated)``, on the CPU."""
    n = 64
    with torch.device(device):
        venv, params = make(env_id, num_envs=n)
        step = funrl_compile(venv.step, fullgraph=True) if compiled else venv.step
        obs, state = venv.reset(R.key(0, device), params)
        outs = [obs.cpu()]
        for t in range(steps):
            action = R.randint(R.key(1000 + t), 0, venv.action_space(params).n, (n,))
            out = step(R.key(t, device), state, action.to(device), params)
            state = out[1]
            outs.append(tree.map(lambda x: x.cpu(), (out[0], *out[2:5])))
    assert obs.device.type == device
    return outs


@pytest.mark.parametrize("env_id", MINATAR)
def test_minatar_on_cuda_matches_the_cpu_exactly(env_id):
    """MinAtar's dynamics are integer grid arithmetic and its randomness comes from
    funrl's counter-based keys, so the GPU must give the CPU's trajectory bit for bit,
    eagerly and compiled, auto-resets included."""
    cpu = _minatar_rollout(env_id, "cpu", 200)
    gpu = _minatar_rollout(env_id, "cuda", 200)
    compiled = _minatar_rollout(env_id, "cuda", 200, compiled=True)
    assert len(cpu) == len(gpu) == len(compiled) == 201
    for t, (a, b, c) in enumerate(zip(cpu, gpu, compiled)):
        assert_trees_close(b, a, rtol=0, atol=0, what=f"{env_id} eager CUDA, step {t}")
        assert_trees_close(c, a, rtol=0, atol=0, what=f"{env_id} compiled CUDA, step {t}")
    if env_id != "MinAtar-Freeway-v1":  # Freeway's episodes last 2,500 steps
        assert any(bool((x[2] | x[3]).any()) for x in cpu[1:]), "no episode ended"
