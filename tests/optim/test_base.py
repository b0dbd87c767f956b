"""The contract: GradientTransformation, chain, apply_updates, inject_hyperparams, hparams."""

from __future__ import annotations

import pytest
import torch
from torch.func import vmap

from funrl import optim, tree
from funrl.optim import base
from funrl.testing import check_transforms


def test_gradient_transformation_is_a_named_pair() -> None:
    opt = optim.scale(2.0)
    init, update = opt
    assert init is opt.init and update is opt.update
    assert opt.init({"w": torch.zeros(2)}) == optim.EmptyState()
    assert tree.leaves(optim.EmptyState()) == []


def test_chain_applies_in_order_and_keeps_a_tuple_state() -> None:
    g = {"w": torch.tensor([4.0, -1.0])}
    opt = optim.chain(optim.clip(2.0), optim.scale(0.5), optim.trace(0.5))
    state = opt.init(g)
    assert isinstance(state, tuple) and len(state) == 3
    u, state = opt.update(g, state)
    assert u["w"].tolist() == [1.0, -0.5]  # clip then scale, not scale then clip
    u, state = opt.update(g, state)
    assert u["w"].tolist() == [1.5, -0.75]  # trace: 0.5 * 1.0 + 1.0
    assert int(state[2].count) == 2
    with pytest.raises(ValueError, match="state has 2 entries for 3"):
        opt.update(g, state[:2])
    empty = optim.chain()
    assert empty.update(g, empty.init(g))[0] is g


def test_apply_updates() -> None:
    p = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor(0.5, dtype=torch.float64)}
    u = {"w": torch.tensor([0.5, -1.0], dtype=torch.float64), "b": torch.tensor(0.25)}
    out = optim.apply_updates(p, u)
    assert out["w"].tolist() == [1.5, 1.0] and out["w"].dtype == torch.float32
    assert out["b"].item() == 0.75 and out["b"].dtype == torch.float64
    with pytest.raises(ValueError, match="structure"):
        optim.apply_updates(p, {"w": u["w"]})
    out = check_transforms(
        optim.apply_updates, tree.stack([p, p]), tree.stack([u, u]), compile=False
    )
    assert out["w"].shape == (2, 2)


def test_inject_hyperparams_state_and_schedule() -> None:
    opt = optim.inject_hyperparams(optim.scale, step_size=lambda c: 1.0 + c)
    g = {"w": torch.ones(2)}
    state = opt.init(g)
    assert isinstance(state, optim.HyperparamsState) and state.scheduled == ("step_size",)
    assert float(state.hparams["step_size"]) == 1.0
    outs = []
    for _ in range(3):
        u, state = opt.update(g, state)
        outs.append(u["w"][0].item())
    assert outs == [1.0, 2.0, 3.0]
    assert int(state.count) == 3 and float(optim.hparams(state)["step_size"]) == 3.0


def test_hparams_found_through_nested_records() -> None:
    inner = optim.inject_hyperparams(optim.clip, max_delta=1.0)
    opt = optim.inject_hyperparams(lambda lr: optim.chain(inner, optim.scale(-lr)), lr=0.1)
    g = {"w": torch.tensor([5.0])}
    state = opt.init(g)
    assert sorted(optim.hparams(state)) == ["lr", "max_delta"]
    state = optim.set_hparams(state, max_delta=2.0, lr=0.5)
    u, _ = opt.update(g, state)
    assert u["w"].item() == -1.0


def test_set_hparams_on_a_population() -> None:
    g = {"w": torch.ones(3)}
    opt = optim.sgd(0.1, momentum=0.9)
    pop = tree.stack([opt.init(g)] * 4)
    pop = optim.set_hparams(pop, lr=torch.tensor([0.1, 0.2, 0.3, 0.4]), momentum=0.5)
    hp = optim.hparams(pop)
    assert hp["lr"].shape == (4,) and hp["lr"].dtype == torch.float64
    assert hp["momentum"].tolist() == [0.5] * 4
    u, _ = vmap(opt.update, in_dims=(None, 0, None))(g, pop, g)
    torch.testing.assert_close(u["w"][:, 0], -hp["lr"].float())
    with pytest.raises(ValueError, match=r"'lr' = -0.2"):
        optim.set_hparams(pop, lr=torch.tensor([0.1, -0.2, 0.3, 0.4]))


def test_check_hparam_ranges() -> None:
    for name, ok, bad in [
        ("lr", 0.0, -1e-9),
        ("b1", 0.0, 1.0),
        ("b2", 0.999, -0.1),
        ("alpha", 1.0, 1.01),
        ("dampening", 1.0, -0.5),
        ("eps", 1e-8, float("inf")),
        ("anything", -5.0, float("nan")),
    ]:
        base.check_hparam(name, ok)
        base.check_hparam(name, torch.tensor(ok))
        with pytest.raises(ValueError, match=f"'{name}'"):
            base.check_hparam(name, bad)
    with pytest.raises(TypeError, match="float tensor"):
        base.check_hparam("lr", torch.tensor(1))
    with pytest.raises(TypeError, match="'lr' must be a number"):
        base.check_hparam("lr", "0.1")
    base.check_hparam("lr", lambda c: c)  # schedules are checked by their own constructors


def test_foreach_auto_is_off_under_vmap_and_compile() -> None:
    assert base._foreach_ok(None) is True
    assert base._foreach_ok(False) is False
    seen = []
    vmap(lambda x: seen.append(base._foreach_ok(None)) or x)(torch.zeros(2))
    assert seen == [False]
    f = torch.compile(lambda x: x + float(base._foreach_ok(None)), fullgraph=True)
    assert f(torch.zeros(())).item() == 0.0


def test_scalar_dtype() -> None:
    assert base.scalar_dtype(torch.device("cpu")) == torch.float64
    assert base.scalar_dtype(torch.device("mps")) == torch.float32
