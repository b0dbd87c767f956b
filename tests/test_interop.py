import pytest
import torch
from tensordict import TensorDict

import funrl
from funrl import collectors, envs, interop, tree


def _traj(num_envs=3, num_steps=40):
    env, env_params = funrl.make("CartPole-v1")
    venv = envs.EpisodeStatistics(envs.VecEnv(env, num_envs))

    def policy(params, obs, key):
        action = funrl.random.randint(key, 0, 2, obs.shape[:1])
        return action, {"logp": torch.full(obs.shape[:1], -0.69), "value": obs.sum(-1)}

    carry = collectors.init(venv, env_params, funrl.random.key(0))
    _, traj = collectors.rollout(
        collectors.make_step(venv, policy), carry, None, env_params, num_steps
    )
    return traj


def test_trajectory_layout_follows_torchrl():
    traj = _traj()
    td = interop.to_tensordict(traj)
    assert td.batch_size == torch.Size([3, 40])  # env first, time last
    assert td["observation"].shape == (3, 40, 4)
    assert td["next", "reward"].shape == (3, 40, 1)
    for flag in ("done", "terminated", "truncated"):
        assert td["next", flag].shape == (3, 40, 1) and td["next", flag].dtype == torch.bool
    # element [env i, time t] is traj[t, i]
    assert torch.equal(td["observation"][2, 7], traj.obs[7, 2])
    assert torch.equal(td["next", "observation"][1, 5], traj.next_obs[5, 1])
    assert torch.equal(td["next", "done"][..., 0], (traj.terminated | traj.truncated).T)
    assert bool(traj.terminated.any())  # the rollout crosses episode ends
    assert torch.equal(td["logp"], traj.extras["logp"].T)
    assert torch.equal(td["next", "info", "episode_return"], traj.info["episode_return"].T)


@pytest.mark.parametrize("time_first", [False, True])
def test_trajectory_round_trip(time_first):
    traj = _traj()
    td = interop.to_tensordict(traj, time_first=time_first)
    assert td.batch_size == ((40, 3) if time_first else (3, 40))
    back = interop.from_tensordict(td, time_first=time_first)
    assert tree.all_equal(back, traj)


def test_transpose_converts_between_layouts():
    traj = _traj()
    env_major = interop.to_tensordict(traj)
    time_major = interop.to_tensordict(traj, time_first=True)
    assert (env_major.transpose(0, 1) == time_major).all()


def test_from_tensordict_without_truncated_uses_done():
    traj = _traj()
    cut = torch.zeros_like(traj.truncated).index_fill(0, torch.tensor([9, 30]), True)
    traj = traj._replace(truncated=cut & ~traj.terminated)
    assert bool(traj.truncated.any())
    td = interop.to_tensordict(traj)
    del td["next", "truncated"]
    back = interop.from_tensordict(td)
    assert torch.equal(back.truncated, traj.truncated)


def test_flat_batch_round_trip():
    g = funrl.random.key(3)
    batch = {
        "obs": funrl.random.normal(g, (5, 4)),
        "action": torch.arange(5),
        "reward": torch.linspace(0, 1, 5),
        "next_obs": funrl.random.normal(funrl.random.fold_in(g, 1), (5, 4)),
        "terminated": torch.tensor([0, 1, 0, 0, 0], dtype=torch.bool),
        "truncated": torch.tensor([0, 0, 1, 0, 0], dtype=torch.bool),
        "discount": torch.full((5,), 0.99),
    }
    td = interop.batch_to_tensordict(batch)
    assert td.batch_size == (5,) and td["next", "reward"].shape == (5, 1)
    assert td["next", "done"][:, 0].tolist() == [False, True, True, False, False]
    assert torch.equal(td["discount"], batch["discount"])
    back = interop.batch_from_tensordict(td)
    assert back.keys() == batch.keys()
    assert all(torch.equal(back[k], batch[k]) for k in batch)


def test_errors_name_the_problem():
    traj = _traj(num_steps=2)
    with pytest.raises(TypeError, match=r"must be a funrl\.collectors\.Transition"):
        interop.to_tensordict({"obs": traj.obs})
    with pytest.raises(ValueError, match=r"traj.reward must be \[T, \*batch\]"):
        interop.to_tensordict(tree.index(traj, 0))
    td = TensorDict({"observation": torch.zeros(3, 2, 4)}, batch_size=[3, 2])
    with pytest.raises(KeyError, match="no \\('next', 'terminated'\\) entry"):
        interop.from_tensordict(td)
    with pytest.raises(ValueError, match=r"batch\['reward'\] has shape \(4,\)"):
        interop.batch_to_tensordict({"obs": torch.zeros(5, 2), "reward": torch.zeros(4)})
    with pytest.raises(TypeError, match="batch_size \\[B\\]"):
        interop.batch_from_tensordict(td)
