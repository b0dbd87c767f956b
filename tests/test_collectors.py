import torch

import funrl
from funrl import collectors, envs
from funrl import random as R
from funrl.testing import check_transforms


def random_policy(params, obs, key):
    return R.randint(key, 0, 2, obs.shape[:1]), {"zero": torch.zeros(obs.shape[:1])}


def test_rollout_shapes_and_true_next_obs():
    env, env_params = funrl.make("CartPole-v1")
    venv = envs.VecEnv(env, 3)
    carry = collectors.init(venv, env_params, R.key(0))
    step = collectors.make_step(venv, random_policy)
    carry, traj = collectors.rollout(step, carry, None, env_params, num_steps=60)
    assert traj.obs.shape == (60, 3, 4) and traj.action.shape == (60, 3)
    assert traj.extras["zero"].shape == (60, 3)
    done = traj.terminated | traj.truncated
    assert done.any()  # random CartPole episodes end within 60 steps
    # where no episode ended, the true next obs is the next step's obs
    cont = ~done[:-1]
    assert torch.equal(traj.next_obs[:-1][cont], traj.obs[1:][cont])
    # where one ended, the next obs is a fresh reset (small), next_obs the terminal one
    assert (traj.obs[1:][done[:-1]].abs() <= 0.05).all()
    assert not torch.equal(traj.next_obs[:-1][done[:-1]], traj.obs[1:][done[:-1]])


def test_rollout_equals_manual_loop():
    env, env_params = funrl.make("CartPole-v1")
    venv = envs.VecEnv(env, 2)
    carry0 = collectors.init(venv, env_params, R.key(1))
    step = collectors.make_step(venv, random_policy)
    _, traj = collectors.rollout(step, carry0, None, env_params, num_steps=5)
    carry = carry0
    for t in range(5):
        carry, tr = step(carry, None, env_params)
        assert torch.equal(tr.reward, traj.reward[t]) and torch.equal(tr.obs, traj.obs[t])


def test_collector_step_under_transforms():
    env, env_params = funrl.make("CartPole-v1")
    venv = envs.VecEnv(env, 2)
    step = collectors.make_step(venv, random_policy)
    carries = torch.func.vmap(lambda k: collectors.init(venv, env_params, k), randomness="error")(
        R.split(R.key(0), 3)
    )
    check_transforms(lambda c: step(c, None, env_params), carries, atol=1e-6)


def test_rollout_rejects_zero_steps():
    import pytest

    env, env_params = funrl.make("CartPole-v1")
    step = collectors.make_step(env, lambda p, o, k: (R.randint(k, 0, 2), {}))
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        collectors.rollout(step, collectors.init(env, env_params, R.key(0)), None, env_params, 0)
