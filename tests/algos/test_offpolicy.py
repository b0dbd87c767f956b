"""funrl.algos.offpolicy: the pieces DQN, SAC, TD3 and DDPG share."""

import importlib

import pytest
import torch

import funrl
from funrl import buffers, tree
from funrl.algos import offpolicy
from funrl.testing import check_transforms


def test_soft_update_values_and_transforms():
    out = offpolicy.soft_update(
        {"w": torch.tensor([0.0, 2.0])}, {"w": torch.tensor([4.0, 2.0])}, 0.25
    )
    assert out["w"].tolist() == [1.0, 2.0]
    target = {"w": funrl.random.normal(funrl.random.key(0), (3, 4))}
    online = {"w": torch.zeros(3, 4)}
    taus = torch.tensor([0.0, 0.5, 1.0])
    out = check_transforms(offpolicy.soft_update, target, online, taus)
    assert torch.equal(out["w"][0], target["w"][0]) and torch.equal(out["w"][2], online["w"][2])


def test_sample_batch_placeholder_before_learning():
    buf = buffers.init({"x": torch.zeros(2)}, capacity=16)
    buf = buffers.add(buf, {"x": torch.ones(3, 2)})
    key = funrl.random.key(0)
    with pytest.raises(ValueError, match="exceeds"):
        buffers.sample(buf, key, 8)  # what the placeholder avoids
    b, idx = offpolicy.sample_batch(buf, key, 8, torch.tensor(False))
    assert b["x"].shape == (8, 2) and idx is None
    real, _ = offpolicy.sample_batch(buf, key, 2, torch.tensor(True))
    assert torch.equal(real["x"], buffers.sample(buf, key, 2)["x"])


def test_sample_batch_under_vmap_matches_members():
    def filled(n):
        b = buffers.init({"x": torch.zeros(2)}, capacity=16)
        return buffers.add(b, {"x": torch.arange(2.0 * n).reshape(n, 2) + 1})

    bufs = tree.stack([filled(3), filled(10)])
    keys = funrl.random.split(funrl.random.key(0), 2)
    learning = torch.tensor([False, True])
    out = check_transforms(
        lambda b, k, lrn: offpolicy.sample_batch(b, k, 8, lrn)[0],
        bufs,
        keys,
        learning,
        compile=False,
    )
    assert out["x"].shape == (2, 8, 2)
    assert (out["x"][1] > 0).all()  # learning: only filled slots


def test_a_run_shorter_than_learning_starts_warns():
    from funrl.algos import td3

    cfg = td3.Config(learning_starts=1000, total_timesteps=500, hidden=(8,), batch_size=8)
    with pytest.warns(UserWarning, match=r"td3: total_timesteps \(500\) <= learning_starts"):
        td3.make(cfg)


@pytest.mark.parametrize(
    "algo_name, extra",
    [
        ("sac", dict(env="MountainCarContinuous-v0", use_sde=True, sde_sample_freq=2)),
        ("td3", dict(env="Pendulum-v1", action_noise="ou")),  # actor every 2nd step
    ],
)
def test_fusing_steps_into_calls_never_changes_the_numbers(algo_name, extra):
    """How many collector / gradient steps one unit call runs is a speed setting only (the
    presets pick it for compile time): SAC with gSDE redraws and TD3 with its delayed actor
    step give the same state and metrics fused or one step per call."""
    import importlib

    mod = importlib.import_module(f"funrl.algos.{algo_name}")
    base = dict(num_envs=2, train_freq=4, gradient_steps=4, batch_size=8, buffer_size=64,
                learning_starts=8, total_timesteps=64, hidden=(8,), **extra)  # fmt: skip
    hp = mod.HParams.create()

    def run(**fused):
        algo = mod.make(mod.Config(**base, **fused))
        state = algo.init(funrl.random.key(3), hp)
        rows = []
        for _ in range(4):
            state, metrics = algo.update(state, hp)
            rows.append(metrics)
        return state, rows

    a, ma = run()
    for fused in (dict(collect_steps_per_call=4, learn_steps_per_call=2),
                  dict(collect_steps_per_call=2, learn_steps_per_call=4)):  # fmt: skip
        b, mb = run(**fused)
        assert tree.all_equal(a, b), fused
        for x, y in zip(ma, mb, strict=True):
            assert x.keys() == y.keys()
            for k in x:
                torch.testing.assert_close(x[k], y[k], equal_nan=True, rtol=0, atol=0)
    assert int(a.grad_step) > 0  # it learned: the comparison covers gradient steps


# ---- obs_storage="uint8": replay frames as 8-bit levels --------------------------------


def _levels_as_envs_give_them() -> torch.Tensor:
    """The 256 float32 values an 8-bit frame scaled to [0, 1] takes (Gymnasium's
    ``AtariPreprocessing``: ``np.float32`` frames ``/ 255``), in a ``[2, 128]`` batch."""
    import numpy as np

    k = np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255)
    return torch.from_numpy(k).reshape(2, 128)


def test_uint8_obs_storage_round_trips_every_level_bit_for_bit_under_every_transform():
    cfg = offpolicy.Config(obs_storage="uint8")
    x = _levels_as_envs_give_them()

    def round_trip(obs):
        rows = offpolicy.encode_obs({"obs": obs, "next_obs": obs.flip(-1)}, cfg)
        assert rows["obs"].dtype == torch.uint8
        return offpolicy.decode_obs(rows, cfg)

    out = check_transforms(round_trip, x, rtol=0, atol=0)
    assert torch.equal(out["obs"].view(torch.int32), x.view(torch.int32))
    assert torch.equal(out["next_obs"], x.flip(-1))
    fast = funrl.compile(round_trip)(x)  # inductor divides by 255 as a multiplication:
    assert torch.equal(fast["obs"].view(torch.int32), x.view(torch.int32))  # not here


def test_uint8_obs_storage_refuses_values_it_cannot_store_and_bad_settings():
    cfg = offpolicy.Config(obs_storage="uint8")
    with pytest.raises(ValueError, match=r"obs_storage='uint8'.*obs holds 0\.3"):
        offpolicy.encode_obs({"obs": torch.tensor([0.0, 0.3])}, cfg)
    with pytest.raises(ValueError, match=r"next_obs holds 2\.0"):
        offpolicy.encode_obs({"next_obs": torch.tensor([2.0])}, cfg)
    with pytest.raises(ValueError, match=r"Config.obs_storage must be one of 'float32', 'uint8'"):
        offpolicy.Config(obs_storage="int8").validate()
    plain = offpolicy.Config()  # float32: rows pass untouched
    rows = {"obs": torch.tensor([0.3])}
    assert offpolicy.encode_obs(rows, plain) is rows


def test_dqn_with_uint8_frames_trains_bit_identically_on_a_fraction_of_the_memory():
    """MinAtar's 0/1 maps are levels: DQN storing them as uint8 takes the same steps."""
    from funrl.algos import dqn

    base = dict(env="MinAtar-Breakout-v1", num_envs=2, train_freq=2, batch_size=8,
                buffer_size=64, learning_starts=8, total_timesteps=64)  # fmt: skip
    hp = dqn.HParams.create()

    def run(storage):
        algo = dqn.make(dqn.Config(**base, obs_storage=storage))
        state = algo.init(funrl.random.key(5), hp)
        for _ in range(6):
            state, metrics = algo.update(state, hp)
        return state, metrics

    a, ma = run("float32")
    b, mb = run("uint8")
    assert b.buffer.data["obs"].dtype == torch.uint8
    assert b.buffer.data["obs"].nbytes * 4 == a.buffer.data["obs"].nbytes
    assert int(a.grad_step) > 0
    assert tree.all_equal((a.params, a.opt_state), (b.params, b.opt_state))
    decoded = offpolicy.decode_obs(dict(b.buffer.data), dqn.Config(obs_storage="uint8"))
    assert torch.equal(decoded["obs"], a.buffer.data["obs"])
    for k in ma:
        torch.testing.assert_close(ma[k], mb[k], equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize(
    "algo, env", [("dqn", "CartPole-v1"), ("sac", "Pendulum-v1"), ("td3", "Pendulum-v1"),
                  ("ddpg", "MountainCarContinuous-v0")],
)  # fmt: skip
def test_uint8_storage_on_an_env_without_levels_fails_at_make(algo, env):
    mod = importlib.import_module(f"funrl.algos.{algo}")
    with pytest.raises(ValueError, match=rf"{algo}.make: obs_storage='uint8' .* {env} has Box"):
        mod.make(mod.Config(env=env, obs_storage="uint8"))
    mod.make(mod.Config(env="MinAtar-Breakout-v1" if algo == "dqn" else env))  # float32: fine


def test_the_cli_says_so_in_one_line(capsys):
    from funrl import cli

    assert cli.main(["train", "dqn", "--env", "CartPole-v1", "--set", "obs_storage=uint8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("funrl: dqn.make: obs_storage='uint8'") and err.count("\n") == 1
