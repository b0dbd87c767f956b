"""The part convention every make shares: parts are used, checked at make time, remakeable."""

import pytest
import torch

import funrl.random as R
from funrl import nn as fnn
from funrl import optim, tree
from funrl.algos import HParams, a2c, ddpg, dqn, hparam, ppo, sac, td3

_OFF = dict(num_envs=2, batch_size=8, learning_starts=8, buffer_size=64, hidden=(8,))
PPO = ppo.Config(num_envs=2, num_steps=4, hidden=(8,), anneal_lr=False)
MAKES = {
    "ppo": lambda **p: ppo.make(PPO, **p),
    "a2c": lambda **p: a2c.make(a2c.Config(num_envs=2, num_steps=4, hidden=(8,)), **p),
    "dqn": lambda **p: dqn.make(dqn.Config(**_OFF), **p),
    "sac": lambda **p: sac.make(sac.Config(**_OFF), **p),
    "td3": lambda **p: td3.make(td3.Config(**_OFF), **p),
    "ddpg": lambda **p: ddpg.make(ddpg.Config(**_OFF), **p),
}
LOSS_PARTS = {
    "ppo": "loss_fn", "a2c": "loss_fn", "dqn": "loss_fn",
    "sac": "critic_loss_fn", "td3": "critic_loss_fn", "ddpg": "actor_loss_fn",
}  # fmt: skip


def _vector_loss(*args):
    return torch.ones(3), {}


@pytest.mark.parametrize("name", sorted(MAKES))
def test_bad_loss_parts_fail_at_make_naming_the_part(name):
    part = LOSS_PARTS[name]
    with pytest.raises(
        ValueError, match=rf"{name}.make: {part} failed on example inputs: TypeError"
    ):
        MAKES[name](**{part: lambda x: x})  # wrong signature
    with pytest.raises(ValueError, match=rf"{part} must return a 0-d float loss, got \(3,\)"):
        MAKES[name](**{part: _vector_loss})


@pytest.mark.parametrize("name", sorted(MAKES))
def test_every_make_exposes_networks_and_remakes(name):
    algo = MAKES[name]()
    assert all(
        isinstance(m, fnn.Model)
        for m in algo.networks
        if m is not None and (not callable(m) or isinstance(m, fnn.Model))  # None: no trunk
    )
    again = algo.remake(name="renamed")
    assert again.name == "renamed" and again.hparams_cls is algo.hparams_cls
    hp = algo.hparams_cls.create()
    s1, _ = algo.update(algo.init(R.key(0), hp), hp)
    s2, _ = again.update(again.init(R.key(0), hp), hp)
    assert tree.all_equal(s1.params, s2.params)  # the same parts: the same numbers
    with pytest.raises(TypeError, match=r"remake: unknown part\(s\) \['loss'\]"):
        algo.remake(loss=None)


def test_networks_that_do_not_fit_the_env_fail_at_make():
    with pytest.raises(
        ValueError, match=r"networks.q's output .* must have shape \(2, 2\), got \(2, 3\)"
    ):
        dqn.make(dqn.Config(**_OFF), networks=dqn.Networks(fnn.q_net(4, 3, (8,))))
    with pytest.raises(ValueError, match="networks.q.apply failed on example inputs"):
        dqn.make(dqn.Config(**_OFF), networks=dqn.Networks(fnn.q_net(5, 2, (8,))))  # obs dim 5
    bad_actor = td3.Networks(fnn.deterministic_policy(3, 2, (8,)), fnn.continuous_q_net(3, 1, (8,)))
    with pytest.raises(ValueError, match=r"networks.actor's actions .* \(2, 1\), got \(2, 2\)"):
        td3.make(td3.Config(**_OFF), networks=bad_actor)
    single = sac.default_networks(
        sac.Config(**_OFF), 3, sac.make(sac.Config(**_OFF)).env_stack.action_space
    )
    with pytest.raises(ValueError, match=r"networks.critic must be an ensemble"):
        sac.make(
            sac.Config(**_OFF), networks=single._replace(critic=fnn.continuous_q_net(3, 1, (8,)))
        )


def test_hparams_class_missing_a_field_fails_at_make():
    @tree.struct
    class NoTau(HParams):
        lr: torch.Tensor = hparam(1e-3, low=0.0, low_open=True)
        max_grad_norm: torch.Tensor = hparam(10.0, low=0.0, low_open=True)
        gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)

    with pytest.raises(
        ValueError, match=r"hparams_cls NoTau lacks field\(s\) \['eps_end', .*'tau'\]"
    ):
        dqn.make(dqn.Config(**_OFF), hparams_cls=NoTau)

    @tree.struct
    class NoClip(HParams):  # ppo's table fields are there; its default loss reads clip_eps
        lr: torch.Tensor = hparam(1e-3, low=0.0, low_open=True)
        max_grad_norm: torch.Tensor = hparam(0.5, low=0.0, low_open=True)
        gamma: torch.Tensor = hparam(0.99, low=0.0, high=1.0)
        gae_lambda: torch.Tensor = hparam(0.95, low=0.0, high=1.0)

    with pytest.raises(
        ValueError, match=r"loss_fn failed on example inputs: AttributeError: .*clip_eps"
    ):
        ppo.make(PPO, hparams_cls=NoClip)


def test_hparams_subclasses_extend_create_and_check():
    @tree.struct
    class KL(ppo.HParams):
        beta: torch.Tensor = hparam(1.0, low=0.0)

    hp = KL.create(beta=3.0, lr=1e-3)
    assert float(hp.beta) == 3.0 and float(hp.lr) == pytest.approx(1e-3) and hp.gamma.ndim == 0
    with pytest.raises(ValueError, match=r"KL.beta must be >= 0, got -1.0"):
        KL.create(beta=-1.0).check()
    with pytest.raises(ValueError, match=r"KL.lr must be finite, got inf"):
        KL.create(lr=float("inf")).check()
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['betta'\]"):
        KL.create(betta=1.0)
    algo = ppo.make(PPO, hparams_cls=KL)
    assert algo.hparams_cls is KL


def test_a_users_optimizer_keeps_its_values_and_maps_only_what_it_is_told():
    hp = ppo.HParams.create(lr=5e-2, max_grad_norm=0.1)
    mine = ppo.make(PPO, optimizer=optim.adam(1e-3, eps=1e-7))
    s, _ = mine.update(mine.init(R.key(0), hp), hp)
    got = optim.hparams(s.opt_state)
    assert float(got["lr"]) == pytest.approx(1e-3) and float(got["eps"]) == pytest.approx(1e-7)
    mapped = ppo.make(PPO, optimizer=optim.adam(1e-3), optimizer_hparams={"lr": "lr"})
    s, _ = mapped.update(mapped.init(R.key(0), hp), hp)
    assert float(optim.hparams(s.opt_state)["lr"]) == pytest.approx(5e-2)
    default = ppo.make(PPO)  # the default optimizer: lr and max_norm from HParams, eps its own
    got = optim.hparams(default.init(R.key(0), hp).opt_state)
    assert float(got["lr"]) == pytest.approx(5e-2) and float(got["max_norm"]) == pytest.approx(0.1)
    assert float(got["eps"]) == pytest.approx(1e-5)


def test_an_hparams_field_named_like_an_optimizer_hyperparameter_changes_nothing():
    @tree.struct
    class WithEps(ppo.HParams):
        eps: torch.Tensor = hparam(0.3, low=0.0)  # e.g. an exploration rate

    algo = ppo.make(PPO, hparams_cls=WithEps)
    eps = optim.hparams(algo.init(R.key(0), WithEps.create()).opt_state)["eps"]
    assert float(eps) == pytest.approx(1e-5)  # Adam's own, not HParams.eps


def test_bad_optimizer_parts_fail_at_make():
    with pytest.raises(
        ValueError, match=r"optimizer_hparams maps \['momentum'\], but the optimizer's"
    ):
        ppo.make(PPO, optimizer=optim.adam(1e-3), optimizer_hparams={"momentum": "lr"})
    with pytest.raises(TypeError, match="optimizer must be a funrl.optim.GradientTransformation"):
        dqn.make(dqn.Config(**_OFF), optimizer=torch.optim.Adam)
    with pytest.raises(ValueError, match="anneal_lr anneals the optimizer's lr"):
        ppo.make(ppo.Config(num_envs=2, num_steps=4), optimizer=optim.sgd(0.1))
    with pytest.raises(ValueError, match=r"optimizer has networks \['value'\]"):
        sac.make(sac.Config(**_OFF), optimizer={"value": optim.adam(1e-3)})
    opts = {"actor": optim.adam(1e-4), "critic": optim.sgd(1e-2), "alpha": optim.adam(1e-3)}
    algo = sac.make(sac.Config(**_OFF), optimizer=opts)
    state = algo.init(R.key(0), sac.HParams.create())
    assert float(optim.hparams(state.opt_state["critic"])["lr"]) == pytest.approx(1e-2)
