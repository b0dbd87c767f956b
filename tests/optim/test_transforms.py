"""Transforms: hand-computed values, clip_by_global_norm against torch, the battery."""

from __future__ import annotations

import math

import pytest
import torch

import funrl.random as R
from funrl import optim, tree
from funrl.testing import check_transforms


def grads_tree(seed: int = 0, scale: float = 1.0) -> dict[str, torch.Tensor]:
    k1, k2, k3 = R.split(R.key(seed), 3)
    return {
        "a": R.normal(k1, (3, 4)) * scale,
        "b": R.normal(k2, (5,)) * scale,
        "c": R.normal(k3, ()) * scale,
    }


def one_update(opt, grads, params=None, steps: int = 1):
    state = opt.init(grads if params is None else params)
    for _ in range(steps):
        u, state = opt.update(grads, state, params)
    return u, state


def test_scale_and_learning_rate_hand_values() -> None:
    g = {"w": torch.tensor([1.0, -2.0])}
    assert one_update(optim.scale(0.5), g)[0]["w"].tolist() == [0.5, -1.0]
    assert one_update(optim.scale_by_learning_rate(0.5), g)[0]["w"].tolist() == [-0.5, 1.0]
    u = one_update(optim.scale_by_learning_rate(0.5, flip_sign=False), g)[0]["w"]
    assert u.tolist() == [0.5, -1.0]
    # schedule: the k-th update (k = 0, 1, ...) uses schedule(k)
    opt = optim.scale_by_schedule(lambda c: 1.0 + c)
    us = []
    state = opt.init(g)
    for _ in range(3):
        u, state = opt.update(g, state)
        us.append(u["w"][0].item())
    assert us == [1.0, 2.0, 3.0] and int(state.count) == 3
    lr_sched = optim.scale_by_learning_rate(optim.linear_schedule(1.0, 0.0, 4))
    assert one_update(lr_sched, g, steps=2)[0]["w"].tolist() == [-0.75, 1.5]


def test_clip_elementwise() -> None:
    g = {"w": torch.tensor([3.0, -0.5, -7.0]), "s": torch.tensor(-2.0)}
    u = one_update(optim.clip(1.0), g)[0]
    assert u["w"].tolist() == [1.0, -0.5, -1.0] and u["s"].item() == -1.0
    u = one_update(optim.clip(torch.tensor(0.25, dtype=torch.float64)), g)[0]
    assert u["w"].tolist() == [0.25, -0.25, -0.25] and u["w"].dtype == torch.float32


@pytest.mark.parametrize("max_norm", [0.1, 1.0, 100.0])
@pytest.mark.parametrize("foreach", [None, False])
def test_clip_by_global_norm_matches_torch(max_norm: float, foreach: bool | None) -> None:
    g = grads_tree(scale=0.7)
    ref = [torch.nn.Parameter(torch.zeros_like(v)) for v in g.values()]
    for p, v in zip(ref, g.values()):
        p.grad = v.clone()
    norm = torch.nn.utils.clip_grad_norm_(ref, max_norm)
    opt = optim.clip_by_global_norm(max_norm, foreach=foreach)
    u, state = one_update(opt, g)
    for p, k in zip(ref, g):
        torch.testing.assert_close(u[k], p.grad, rtol=1e-6, atol=1e-7)
    clipped = float(norm) > max_norm
    assert clipped == (max_norm < 100.0)
    if not clipped:
        assert tree.all_equal(u, g)  # coefficient exactly 1
    assert float(optim.hparams(state)["max_norm"]) == max_norm


def test_trace_matches_torch_sgd_momentum_by_hand() -> None:
    g1, g2 = {"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])}
    opt = optim.trace(0.9, dampening=0.5)
    state = opt.init(g1)
    u1, state = opt.update(g1, state)
    u2, state = opt.update(g2, state)
    assert u1["w"].item() == 1.0  # first step: buf = g, no dampening (as torch)
    assert u2["w"].item() == pytest.approx(0.9 * 1.0 + 0.5 * 3.0)
    nest = optim.trace(0.9, nesterov=True)
    u, _ = one_update(nest, g1)
    assert u["w"].item() == pytest.approx(1.0 + 0.9 * 1.0)
    # decay 0 is the identity (so momentum can be swept from 0)
    u, _ = one_update(optim.trace(0.0), g2, steps=3)
    assert u["w"].item() == 3.0


def test_scale_by_adam_and_rms_first_step_by_hand() -> None:
    g = {"w": torch.tensor([2.0, -0.5, 0.0], dtype=torch.float64)}
    u, state = one_update(optim.scale_by_adam(0.9, 0.999, 1e-8), g)
    # bias correction makes the first step g / (|g| + eps)
    expected = torch.tensor([2.0 / (2.0 + 1e-8), -0.5 / (0.5 + 1e-8), 0.0], dtype=torch.float64)
    torch.testing.assert_close(u["w"], expected, rtol=1e-14, atol=0)
    assert int(state.count) == 1
    torch.testing.assert_close(state.mu["w"], 0.1 * g["w"])
    u, state = one_update(optim.scale_by_rms(0.9, 1e-3), g)
    expected = g["w"] / (math.sqrt(0.1) * g["w"].abs() + 1e-3)
    torch.testing.assert_close(u["w"], expected, rtol=1e-14, atol=0)
    assert state.mu == ()  # no leaves (None would break vmap over the state)
    u, state = one_update(optim.scale_by_rms(0.9, 1e-3, centered=True), g)
    # centered: nu - mu^2 = 0.1 g^2 - 0.01 g^2
    expected = g["w"] / (math.sqrt(0.09) * g["w"].abs() + 1e-3)
    torch.testing.assert_close(u["w"], expected, rtol=1e-14, atol=0)


def test_weight_decays() -> None:
    p = {"w": torch.tensor([1.0, -2.0], dtype=torch.float64)}
    g = {"w": torch.tensor([0.5, 0.5], dtype=torch.float64)}
    u, _ = one_update(optim.add_decayed_weights(0.1), g, p)
    assert u["w"].tolist() == pytest.approx([0.6, 0.3])
    u, _ = one_update(optim.add_decoupled_weight_decay(0.5, 0.1), g, p)
    assert u["w"].tolist() == pytest.approx([0.5 - 0.05, 0.5 + 0.1])
    # float32: the factor 1 - lr * wd is rounded to float32 first, as torch.optim.AdamW does
    p32 = {"w": torch.tensor([3.0])}
    u, _ = one_update(optim.add_decoupled_weight_decay(1e-3, 0.01), {"w": torch.zeros(1)}, p32)
    ref = p32["w"].clone().mul_(1 - 1e-3 * 0.01)
    assert torch.equal(p32["w"] + u["w"], ref)
    for t in (optim.add_decayed_weights(0.1), optim.add_decoupled_weight_decay(0.1, 0.1)):
        with pytest.raises(ValueError, match="params=None"):
            one_update(t, g)


def test_zero_dim_float32_leaves_keep_their_dtype() -> None:
    """float64 hyperparameters must not promote 0-d float32 leaves to float64."""
    g = {"s": torch.tensor(0.3), "h": torch.tensor(0.1, dtype=torch.float16)}
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-3, weight_decay=0.1))
    for fe in (None, False):
        opt = optim.chain(optim.clip_by_global_norm(1.0, foreach=fe), optim.adam(1e-3, foreach=fe))
        u, state = one_update(opt, g, g, steps=2)
        assert u["s"].dtype == torch.float32 and u["h"].dtype == torch.float16
        assert state[1].inner_state[1].mu["h"].dtype == torch.float16


def test_mixed_dtype_leaves_foreach_equals_per_leaf() -> None:
    g = grads_tree()
    g["b"] = g["b"].double()
    outs = []
    for fe in (True, False):
        opt = optim.chain(optim.clip_by_global_norm(0.5, foreach=fe), optim.adamw(1e-2, foreach=fe))
        outs.append(one_update(opt, g, g, steps=3))
    assert tree.all_equal(outs[0][0], outs[1][0]) and tree.all_equal(outs[0][1], outs[1][1])


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match="argument 1"):
        optim.chain(optim.scale(1.0), lambda g: g)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        optim.scale_by_schedule(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'max_delta'"):
        optim.clip(-1.0)
    with pytest.raises(ValueError, match="'max_norm'"):
        optim.clip_by_global_norm(-1.0)
    with pytest.raises(ValueError, match="'b1'"):
        optim.scale_by_adam(b1=1.5)
    with pytest.raises(ValueError, match="'alpha'"):
        optim.scale_by_rms(alpha=2.0)


def test_transforms_battery() -> None:
    """clip_by_global_norm (batched max_norm), clip and a scheduled scale through the battery
    (compiled); the stateful transforms eager == vmap (the aliases' battery compiles them)."""
    opt = optim.chain(
        optim.clip_by_global_norm(1.0),
        optim.clip(0.3),
        optim.scale_by_schedule(optim.linear_schedule(1.0, 0.5, 10)),
    )
    gs = [{"a": v["a"], "c": v["c"]} for v in (grads_tree(i, scale=0.2 + i) for i in range(3))]
    max_norms = [0.1, 1.0, 10.0]
    states = tree.stack([optim.set_hparams(opt.init(gs[0]), max_norm=m) for m in max_norms])
    batched = tree.stack(gs)
    out = check_transforms(lambda g, s: opt.update(g, s), batched, states, members=1)
    assert torch.equal(out[1][0].hparams["max_norm"], torch.tensor(max_norms, dtype=torch.float64))
    # member 0 is clipped to global norm 0.1 (so below 0.3 elementwise); member 2 is not clipped
    norm0 = tree.global_norm(tree.index(out[0], 0))
    torch.testing.assert_close(norm0, torch.tensor(0.1), rtol=1e-5, atol=1e-6)
    assert tree.allclose(tree.index(out[0], 2), optim.clip(0.3).update(gs[2], ())[0])

    stateful = optim.chain(
        optim.trace(0.9, nesterov=True),
        optim.scale_by_rms(centered=True),
        optim.scale_by_adam(),
        optim.add_decayed_weights(0.1),
    )

    def two_steps(g):
        state = stateful.init(g)
        u, state = stateful.update(g, state, g)
        return stateful.update(u, state, g)

    check_transforms(two_steps, batched, compile=False)
