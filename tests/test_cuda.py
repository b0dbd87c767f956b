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
}


def _run(name: str, device: str, updates: int = 4):
    mod = importlib.import_module(f"funrl.algos.{name.split('-')[0]}")
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
