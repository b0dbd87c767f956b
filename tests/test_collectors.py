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


def test_policy_and_env_halves_under_transforms_and_equal_make_step():
    """act_step then env_step is make_step; each half works eagerly, vmapped and compiled;
    make_unit_step over a host env (HostEnv) gives make_step's numbers."""
    from funrl.algos import units
    from funrl.testing.host import HostEnv

    env, env_params = funrl.make("CartPole-v1")
    venv = envs.VecEnv(env, 2)
    carries = torch.func.vmap(lambda k: collectors.init(venv, env_params, k), randomness="error")(
        R.split(R.key(0), 3)
    )
    act = collectors.act_step(random_policy)
    halves = check_transforms(lambda c: act(c, None), carries)
    action, extras, k_env, _ = halves
    assert action.shape == (3, 2) and extras["zero"].shape == (3, 2) and k_env.shape == (3, 2)
    step_env = collectors.env_step(venv)
    out = check_transforms(
        lambda c, a, e, k1, k2: step_env(c, a, e, k1, k2, env_params), carries, *halves, atol=1e-6
    )
    whole = torch.func.vmap(
        lambda c: collectors.make_step(venv, random_policy)(c, None, env_params)
    )
    funrl.testing.assert_trees_close(out, whole(carries), rtol=0, atol=0)
    carry = collectors.init(venv, env_params, R.key(4))
    host_step = collectors.make_unit_step(HostEnv(venv), random_policy, units.eager)
    pure_step = collectors.make_unit_step(venv, random_policy, units.eager)
    funrl.testing.assert_trees_close(
        host_step(carry, None, env_params), pure_step(carry, None, env_params), rtol=0, atol=0
    )
    assert collectors.is_host(HostEnv(venv)) and not collectors.is_host(venv)
