"""funrl.algos.offpolicy: the pieces DQN, SAC, TD3 and DDPG share."""

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
