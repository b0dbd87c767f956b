import pytest
import torch

import funrl
from funrl import optim
from funrl.algos import a2c


def test_a2c_learns_action_probe():
    cfg = a2c.Config(
        env="funrl/ActionReward-v0",
        num_envs=8,
        num_steps=5,
        total_timesteps=8 * 5 * 150,
        hidden=(32,),
    )
    algo = a2c.make(cfg)
    r = funrl.train(
        algo,
        funrl.random.key(0),
        a2c.HParams.create(lr=3e-3),
        compile=False,
        progress=False,
        eval_episodes=8,
    )
    assert algo.act(algo.act_params(r.state), torch.tensor([[-1.0], [1.0]])).tolist() == [0, 1]


@pytest.mark.slow
def test_a2c_improves_on_cartpole():
    cfg = a2c.Config(env="CartPole-v1", total_timesteps=24_000)
    algo = a2c.make(cfg)
    r = funrl.train(algo, funrl.random.key(0), a2c.HParams.create(), compile=False, progress=False)
    # random play scores ~22; a learning A2C is far above it after 24k steps
    assert r.eval_return > 150, r.eval_return


def test_a2c_hparams_reach_the_optimizer():
    algo = a2c.make(a2c.Config(num_envs=2, num_steps=5))
    hp = a2c.HParams.create(alpha=0.9, eps=1e-3, lr=1e-2)
    s = algo.init(funrl.random.key(0), hp)
    h = optim.hparams(s.opt_state)
    assert float(h["alpha"]) == pytest.approx(0.9) and float(h["eps"]) == pytest.approx(1e-3)
    assert float(h["lr"]) == pytest.approx(1e-2)
    s, m = algo.update(s, hp)
    assert float(m["clip_fraction"]) == 0.0


def test_a2c_bad_hparams():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\)"):
        a2c.HParams.create(alpha=1.0).check()
