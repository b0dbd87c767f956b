"""Image observations: the encoders of funrl.nn, and PPO / DQN on image envs.

``ImageActionReward`` is the ActionReward probe seen as a 5x5x2 image (every pixel holds
the observation's sign): a learner must read the image to pick the rewarded action, so
PPO and DQN with their default (encoder) networks must solve it.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn as tnn

import funrl
from funrl import nn as fnn
from funrl import tree
from funrl.algos import common, dqn, ppo, sac, units
from funrl.envs import registry
from funrl.envs.probes import ActionReward, ContinuousActionReward
from funrl.envs.spaces import Box
from funrl.envs.wrappers.observations import _ObservationMap
from funrl.testing import check_transforms

SHAPE = (5, 5, 2)


class _AsImage(_ObservationMap):
    """``obs [..., 1]`` as an image ``[..., 5, 5, 2]`` of that value (channels last)."""

    def transform(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[..., None, None, :].expand(*obs.shape[:-1], *SHAPE).contiguous()

    def observation_space(self, params):
        return Box(-1.0, 1.0, SHAPE, torch.float32)


@pytest.fixture(scope="module", autouse=True)
def image_envs():
    registry.register("test/ImageActionReward-v0", lambda: _AsImage(ActionReward()), overwrite=True)
    registry.register(
        "test/ImageContinuous-v0", lambda: _AsImage(ContinuousActionReward()), overwrite=True
    )
    yield
    for env_id in ("test/ImageActionReward-v0", "test/ImageContinuous-v0"):
        registry._REGISTRY.pop(env_id, None)


def _torch_nature(c: int) -> tnn.Module:
    return tnn.Sequential(
        tnn.Conv2d(c, 32, 8, 4), tnn.ReLU(), tnn.Conv2d(32, 64, 4, 2), tnn.ReLU(),
        tnn.Conv2d(64, 64, 3, 1), tnn.ReLU(), tnn.Flatten(), tnn.Linear(3136, 512), tnn.ReLU(),
    )  # fmt: skip


def test_encoders_match_reference_sizes_and_transforms():
    nature = fnn.nature_cnn((4, 84, 84))
    params = nature.init(funrl.random.key(0))
    ref = _torch_nature(4)
    assert nature.features == 512
    assert sum(p.numel() for p in params.values()) == sum(p.numel() for p in ref.parameters())
    # the same function as the torch module with the same weights
    ref.load_state_dict(dict(zip(ref.state_dict(), params.values())))
    x = torch.rand(3, 4, 84, 84)
    torch.testing.assert_close(nature.apply(params, x), ref(x))
    minatar = fnn.minatar_cnn((10, 10, 4))
    assert minatar.features == 16 * 8 * 8
    impala = fnn.impala_cnn((3, 64, 64))
    assert impala.features == 256
    # channels last equals channels first on the moved axis
    last = fnn.minatar_cnn((10, 10, 4))
    first = fnn.minatar_cnn((4, 10, 10), channels_last=False)
    p = last.init(funrl.random.key(1))
    img = torch.rand(2, 10, 10, 4)
    torch.testing.assert_close(last.apply(p, img), first.apply(p, img.movedim(-1, -3)))
    with pytest.raises(ValueError, match=r"obs must have shape \[\.\.\., 10, 10, 4\]"):
        last.apply(p, torch.zeros(2, 4, 10, 10))
    with pytest.raises(ValueError, match="obs_shape must be 3 positive ints"):
        fnn.minatar_cnn((10, 10))


@pytest.mark.parametrize("make", [lambda: fnn.minatar_cnn(SHAPE), lambda: fnn.impala_cnn(SHAPE)])
def test_encoded_head_eager_vmap_compile(make):
    enc = make()
    net = fnn.encoded(enc, fnn.categorical_policy(enc.features, 3, (8,)))
    params = net.init(funrl.random.key(2))
    assert any(k.startswith("encoder.") for k in params) and any(
        k.startswith("head.") for k in params
    )
    check_transforms(net.apply, params, torch.rand(4, *SHAPE), in_dims=(None, 0),
                     compile_rtol=1e-4, compile_atol=1e-5)  # fmt: skip


def test_image_encoder_choice():
    assert isinstance(common.image_encoder("t", "auto", (10, 10, 4)), fnn.Encoder)
    assert common.image_encoder("t", "auto", (10, 10, 4)).features == 1024  # MinAtar
    assert common.image_encoder("t", "auto", (4, 84, 84)).features == 512  # Nature
    with pytest.raises(ValueError, match="encoder must be one of"):
        common.image_encoder("t", "resnet", (4, 84, 84))
    with pytest.raises(ValueError, match="nature encoder cannot take"):
        common.image_encoder("t", "nature", (2, 8, 8))
    with pytest.raises(ValueError, match="Config.encoder must be one of"):
        ppo.make(ppo.Config(encoder="vgg"))


def _train(mod, config, n, hp=None):
    algo = mod.make(config)
    hp = hp or mod.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    for _ in range(n):
        state, _ = algo.update(state, hp)
    return algo, state


def _accuracy(algo, state):
    """Share of the 64 observations on which the greedy policy takes the rewarded action."""
    sign = torch.where(torch.arange(64) % 2 == 0, 1.0, -1.0)
    obs = sign[:, None, None, None].expand(64, *SHAPE)
    action = algo.act(algo.act_params(state), obs)
    return float((action == (sign > 0).long()).float().mean())


def test_ppo_learns_from_images():
    config = ppo.Config(env="test/ImageActionReward-v0", num_envs=8, num_steps=8, hidden=(16,))
    algo, state = _train(ppo, config, 15)
    assert any(k.startswith("encoder.") for k in state.params["actor"])
    assert _accuracy(algo, state) == 1.0


def test_dqn_learns_from_images():
    config = dqn.Config(env="test/ImageActionReward-v0", num_envs=4, batch_size=32,
                        learning_starts=64, buffer_size=512, hidden=(16,),
                        target_update_interval=4, total_timesteps=1200)  # fmt: skip
    algo, state = _train(dqn, config, 300)
    assert _accuracy(algo, state) == 1.0


def test_population_over_images_equals_members():
    config = ppo.Config(env="test/ImageActionReward-v0", num_envs=4, num_steps=4, hidden=(8,),
                        num_minibatches=2, update_epochs=1)  # fmt: skip
    hp = ppo.HParams.create()
    keys = torch.stack([funrl.random.key(0), funrl.random.key(1)])
    pop = ppo.make(config, units=units.population())
    hps = tree.map(lambda x: torch.stack([x, x]), hp)
    state = pop.init(keys, hps)
    state, _ = pop.update(state, hps)
    solo = ppo.make(config)
    for i in range(2):
        s = solo.init(keys[i], hp)
        s, _ = solo.update(s, hp)
        member = tree.map(lambda x, i=i: x[i], state.params)
        for a, b in zip(tree.leaves(member), tree.leaves(s.params)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compiled_units_take_images():
    config = ppo.Config(env="test/ImageActionReward-v0", num_envs=4, num_steps=4, hidden=(8,),
                        num_minibatches=1, update_epochs=1)  # fmt: skip
    _, eager = _train(ppo, config, 2)
    algo = ppo.make(config, units=units.compiled)
    hp = ppo.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    for _ in range(2):
        state, _ = algo.update(state, hp)
    for a, b in zip(tree.leaves(state.params), tree.leaves(eager.params)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_continuous_algorithms_refuse_images_without_networks():
    with pytest.raises(ValueError, match=r"image observations \(5, 5, 2\) need networks="):
        sac.make(sac.Config(env="test/ImageContinuous-v0"))


def test_flat_obs_numbers_unchanged():
    """obs_shape of a flat env is (obs_dim,), and the MLP path is untouched."""
    stack = common.make_env_stack("CartPole-v1", 2)
    assert stack.obs_shape == (4,) and not stack.images and stack.obs_dim == 4
    assert math.prod(common.make_env_stack("test/ImageActionReward-v0", 2).obs_shape) == 50


def test_ppo_with_a_shared_encoder_learns_and_computes_it_once():
    """``share_encoder``: one trunk, both heads on its features; the learner solves the
    image probe, the trunk runs once per minibatch (not once per head), and acting,
    export params and A2C go through it."""
    config = ppo.Config(env="test/ImageActionReward-v0", num_envs=8, num_steps=8, hidden=(16,),
                        share_encoder=True)  # fmt: skip
    algo, state = _train(ppo, config, 15)
    assert set(state.params) == {"trunk", "actor", "critic"}
    assert not any(k.startswith("encoder.") for k in state.params["actor"])
    assert set(algo.act_params(state)) == {"trunk", "actor"}
    assert _accuracy(algo, state) == 1.0

    nets = algo.networks
    calls = []
    counted = fnn.Model(nets.trunk.init, lambda p, x: calls.append(1) or nets.trunk.apply(p, x))
    mb = {"obs": torch.zeros(4, *SHAPE), "action": torch.zeros(4, dtype=torch.int64),
          "advantage": torch.ones(4)}  # fmt: skip
    ppo.minibatch_terms(nets._replace(trunk=counted), config, state.params, mb)
    assert len(calls) == 1

    # the trunk learns from the value loss too: its gradient changes with vf_coef
    def trunk_grad(vf_coef: float) -> torch.Tensor:
        hp = ppo.HParams.create(vf_coef=vf_coef)
        mb2 = {**mb, "logp": torch.zeros(4), "value": torch.zeros(4), "target": torch.ones(4)}
        g = torch.func.grad(lambda p: ppo.ppo_loss(nets, config, p, mb2, hp)[0])(state.params)
        return torch.cat([v.flatten() for v in g["trunk"].values()])

    assert not torch.allclose(trunk_grad(0.0), trunk_grad(1.0))

    from funrl.algos import a2c

    a2c_algo = a2c.make(a2c.Config(env="test/ImageActionReward-v0", num_envs=4, num_steps=4,
                                   hidden=(8,), share_encoder=True))  # fmt: skip
    hp = a2c.HParams.create()
    s = a2c_algo.init(funrl.random.key(0), hp)
    s, m = a2c_algo.update(s, hp)
    assert "trunk" in s.params and all(bool(torch.isfinite(v)) for v in m.values())
    with pytest.raises(
        ValueError, match=r"share_encoder shares an image encoder.*flat \(4 numbers\)"
    ):
        ppo.make(ppo.Config(env="CartPole-v1", share_encoder=True))
