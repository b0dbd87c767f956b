"""Tests for funrl.nn: initializers against torch.nn.init, apply against the module's own
forward, heads' shapes and identities, ensembles, and grad/vmap/compile."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn as tnn
from torch.func import grad

import funrl.random as R
from funrl import nn, tree
from funrl.nn.core import _orthogonal_from_normal
from funrl.testing import assert_trees_close, check_transforms

K = R.key(0)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _layers(in_dim, hidden, out_dim, act):
    sizes = (in_dim, *hidden)
    out = []
    for a, b in itertools.pairwise(sizes):
        out += [tnn.Linear(a, b, device="meta"), act()]
    return [*out, tnn.Linear(sizes[-1], out_dim, device="meta")]


def _load(module: tnn.Module, params: dict[str, torch.Tensor]) -> tnn.Module:
    """A real (non-meta) copy of ``module`` holding ``params``: the reference forward."""
    m = module.to_empty(device="cpu")
    m.load_state_dict(params)
    return m


# --------------------------------------------------------------------------- initializers


@pytest.mark.parametrize(
    "layer",
    [tnn.Linear(50, 400, device="meta"), tnn.Conv2d(3, 40, (4, 5), device="meta")],
    ids=["linear", "conv2d"],
)
def test_default_init_matches_torch_distribution(layer):
    params = nn.from_module(layer).init(K)
    w, b = params["weight"], params["bias"]
    fan_in = torch.nn.init._calculate_fan_in_and_fan_out(w)[0]
    bound = 1.0 / math.sqrt(fan_in)
    # torch's own draw with kaiming_uniform_(a=sqrt(5)) on an explicit generator
    ref = torch.nn.init.kaiming_uniform_(torch.empty(w.shape), a=math.sqrt(5), generator=_gen(0))
    assert float(ref.abs().max()) <= bound
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.99 * bound
    q = torch.linspace(0.05, 0.95, 19)
    torch.testing.assert_close(
        w.flatten().quantile(q), ref.flatten().quantile(q), atol=0.04 * bound, rtol=0
    )
    assert float(b.abs().max()) <= bound and float(b.abs().max()) > 0.9 * bound
    assert w.dtype == torch.float32 and w.shape == layer.weight.shape


def test_orthogonal_matches_torch_algorithm():
    for shape, gain in [((3, 5), 1.0), ((5, 3), math.sqrt(2)), ((4, 2, 3), 0.01)]:
        rows, cols = shape[0], math.prod(shape[1:])
        a = torch.empty(rows, cols).normal_(generator=_gen(1))
        ref = torch.nn.init.orthogonal_(torch.empty(shape), gain=gain, generator=_gen(1))
        torch.testing.assert_close(_orthogonal_from_normal(a, gain).reshape(shape), ref)


@pytest.mark.parametrize("shape", [(64, 4), (2, 64), (6, 6)])
def test_orthogonal_is_orthogonal_times_gain(shape):
    w = nn.orthogonal(K, shape, gain=2.0)
    small = w @ w.T if shape[0] <= shape[1] else w.T @ w
    torch.testing.assert_close(small, 4.0 * torch.eye(min(shape)), atol=1e-5, rtol=0)
    assert not torch.equal(w, nn.orthogonal(R.key(1), shape, gain=2.0))
    assert nn.orthogonal(K, (0, 3)).shape == (0, 3)
    with pytest.raises(ValueError, match="at least 2 dims"):
        nn.orthogonal(K, (3,))


def test_fallback_init_for_other_layers_and_buffers():
    class Custom(tnn.Module):
        def __init__(self):
            super().__init__()
            self.norm = tnn.LayerNorm(6)
            self.emb = tnn.Embedding(100, 50)
            self.mat = tnn.Parameter(torch.full((30, 20), 7.0))
            self.vec = tnn.Parameter(torch.full((5,), 7.0))
            self.register_buffer("offset", torch.arange(3.0))

        def forward(self, x):
            return self.norm(x) + self.offset.sum()

    model = nn.from_module(Custom())
    p = model.init(K)
    assert set(p) == set(Custom().state_dict())
    torch.testing.assert_close(p["norm.weight"], torch.ones(6))
    torch.testing.assert_close(p["norm.bias"], torch.zeros(6))
    torch.testing.assert_close(p["vec"], torch.zeros(5))  # unknown 1-d: zeros
    assert float(p["mat"].abs().max()) <= 1 / math.sqrt(20)  # unknown 2-d: fan-in uniform
    assert float(p["mat"].abs().max()) > 0.9 / math.sqrt(20)
    assert abs(float(p["emb.weight"].std()) - 1.0) < 0.05  # Embedding: N(0, 1)
    torch.testing.assert_close(p["offset"], torch.arange(3.0))  # buffers copied
    x = torch.ones(2, 6)
    torch.testing.assert_close(model.apply(p, x), torch.full((2, 6), 3.0))


def test_init_ignores_module_values_and_is_keyed():
    a, b = tnn.Linear(3, 4), tnn.Linear(3, 4)
    with torch.no_grad():
        b.weight.fill_(5.0)
    pa, pb = nn.from_module(a).init(K), nn.from_module(b).init(K)
    assert tree.all_equal(pa, pb)
    assert not torch.equal(pa["weight"], nn.from_module(a).init(R.key(1))["weight"])
    p64 = nn.from_module(tnn.Linear(3, 4, dtype=torch.float64)).init(K)
    assert p64["weight"].dtype == torch.float64


def test_from_module_orthogonal_gains_and_custom_init():
    seq = tnn.Sequential(tnn.Linear(4, 8), tnn.Tanh(), tnn.Linear(8, 2))
    p = nn.from_module(seq, "orthogonal", gain=3.0, gains={"2": 0.5}).init(K)
    torch.testing.assert_close(
        p["0.weight"].T @ p["0.weight"], 9.0 * torch.eye(4), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        p["2.weight"] @ p["2.weight"].T, 0.25 * torch.eye(2), atol=1e-5, rtol=0
    )
    assert not p["0.bias"].any() and not p["2.bias"].any()

    def const(key, path, module, like):
        return torch.full(like.shape, 2.0 if path.endswith("weight") else -1.0)

    pc = nn.from_module(seq, const).init(K)
    assert (pc["0.weight"] == 2).all() and (pc["2.bias"] == -1).all()
    with pytest.raises(ValueError, match="expected"):
        nn.from_module(seq, lambda k, path, m, like: torch.zeros(1)).init(K)
    with pytest.raises(ValueError, match="init must be"):
        nn.from_module(seq, "xavier")
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        nn.from_module(lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="funrl key"):
        nn.from_module(seq).init(torch.zeros(2))
    with pytest.raises(ValueError, match="missing"):
        nn.from_module(seq).apply({"0.weight": p["0.weight"]}, torch.zeros(4))


# --------------------------------------------------------------------------- apply and grad


def test_apply_and_grad_match_the_module():
    module = tnn.Sequential(tnn.Linear(4, 16), tnn.ReLU(), tnn.Linear(16, 3))
    model = nn.from_module(module)
    p = model.init(K)
    x = R.normal(R.key(2), (10, 4))
    ref = _load(module, p)
    torch.testing.assert_close(model.apply(p, x), ref(x))
    g = grad(lambda p: model.apply(p, x).square().mean())(p)
    ref(x).square().mean().backward()
    for name, prm in ref.named_parameters():
        torch.testing.assert_close(g[name], prm.grad)


def test_mlp_structure_activation_and_gains():
    net = nn.mlp(5, (7, 9), 3, activation="relu", init="orthogonal", output_gain=0.01)
    p = net.init(K)
    assert {k: tuple(v.shape) for k, v in p.items()} == {
        "0.weight": (7, 5), "0.bias": (7,), "2.weight": (9, 7), "2.bias": (9,),
        "4.weight": (3, 9), "4.bias": (3,),
    }  # fmt: skip
    torch.testing.assert_close(p["4.weight"].norm(dim=1), torch.full((3,), 0.01))
    torch.testing.assert_close(p["2.weight"].norm(dim=0), torch.full((7,), math.sqrt(2)))
    x = R.normal(R.key(3), (4, 5))
    h = torch.relu(x @ p["0.weight"].T + p["0.bias"])
    h = torch.relu(h @ p["2.weight"].T + p["2.bias"])
    torch.testing.assert_close(net.apply(p, x), h @ p["4.weight"].T + p["4.bias"])
    seq_apply = nn.from_module(tnn.Sequential(*_layers(5, (7, 9), 3, tnn.ReLU))).apply
    torch.testing.assert_close(seq_apply(p, x), net.apply(p, x))  # fast path = generic path
    prelu = nn.mlp(5, (7,), 3, activation=tnn.PReLU)  # activation with a parameter
    pp = prelu.init(K)
    torch.testing.assert_close(pp["1.weight"], torch.zeros(1))  # unknown 1-d: zeros
    ref = F.linear(
        F.prelu(F.linear(x, pp["0.weight"], pp["0.bias"]), pp["1.weight"]), pp["2.weight"]
    )
    torch.testing.assert_close(prelu.apply(pp, x), ref + pp["2.bias"])
    lin = nn.mlp(2, (), 1, init="default")
    assert set(lin.init(K)) == {"0.weight", "0.bias"}
    with pytest.raises(ValueError, match="hidden\\[1\\]"):
        nn.mlp(2, (4, 0), 1)
    with pytest.raises(ValueError, match="activation"):
        nn.mlp(2, (4,), 1, activation="swish!")


# --------------------------------------------------------------------------- heads


def test_heads_shapes_unbatched_and_batched():
    obs, obs_b = torch.ones(3), torch.ones(5, 2, 3)
    heads = {
        "cat": (nn.categorical_policy(3, 4, (8,)), (4,)),
        "value": (nn.value_net(3, (8,)), ()),
        "det": (nn.deterministic_policy(3, 2, (8,)), (2,)),
        "q": (nn.q_net(3, 4, (8,)), (4,)),
        "dueling": (nn.q_net(3, 4, (8, 8), dueling=True), (4,)),
    }
    for name, (model, event) in heads.items():
        p = model.init(K)
        assert model.apply(p, obs).shape == event, name
        assert model.apply(p, obs_b).shape == (5, 2, *event), name
        with pytest.raises(ValueError, match=r"obs must have shape \[\.\.\., 3\]"):
            model.apply(p, torch.ones(5, 4))
    for model in (nn.gaussian_policy(3, 2, (8,)), nn.tanh_gaussian_policy(3, 2, (8,))):
        p = model.init(K)
        for o in (obs, obs_b):
            mean, log_std = model.apply(p, o)
            assert mean.shape == log_std.shape == (*o.shape[:-1], 2)


def test_gaussian_policy_log_std_is_state_independent_parameter():
    model = nn.gaussian_policy(3, 2, (8,), log_std_init=-0.5)
    p = model.init(K)
    torch.testing.assert_close(p["log_std"], torch.full((2,), -0.5))
    obs = R.normal(R.key(1), (6, 3))
    _, log_std = model.apply(p, obs)
    torch.testing.assert_close(log_std, torch.full((6, 2), -0.5))
    g = grad(lambda p: model.apply(p, obs)[1].sum())(p)
    torch.testing.assert_close(g["log_std"], torch.full((2,), 6.0))


def test_tanh_gaussian_log_std_in_bounds_and_deterministic_in_unit_box():
    model = nn.tanh_gaussian_policy(3, 2, (8,), log_std_min=-5.0, log_std_max=2.0)
    p = tree.map(lambda x: 100.0 * x, model.init(K))  # saturate
    obs = R.normal(R.key(1), (200, 3)) * 10
    _, log_std = model.apply(p, obs)
    assert float(log_std.min()) >= -5.0 and float(log_std.max()) <= 2.0
    assert float(log_std.min()) < -4.9 and float(log_std.max()) > 1.9
    det = nn.deterministic_policy(3, 2, (8,))
    a = det.apply(tree.map(lambda x: 100.0 * x, det.init(K)), obs)
    assert float(a.abs().max()) <= 1.0 and float(a.abs().max()) > 0.99
    with pytest.raises(ValueError, match="log_std_min < log_std_max"):
        nn.tanh_gaussian_policy(3, 2, log_std_min=1.0, log_std_max=0.0)


def test_gsde_policy_against_a_hand_written_forward():
    model = nn.gsde_policy(3, 2, (8, 6), log_std_init=-2.5, clip_mean=0.5)
    p = model.init(K)
    assert sorted(p) == ["log_std", "mean.0.bias", "mean.0.weight", "torso.0.bias",
                         "torso.0.weight", "torso.2.bias", "torso.2.weight"]  # fmt: skip
    assert torch.equal(p["log_std"], torch.full((6, 2), -2.5))
    bound = 1 / math.sqrt(3)  # torch's default init, fan-in 3
    assert p["torso.0.weight"].abs().max() <= bound
    obs = 3.0 * R.normal(R.key(1), (7, 3))
    h = torch.relu(obs @ p["torso.0.weight"].T + p["torso.0.bias"])
    h = torch.relu(h @ p["torso.2.weight"].T + p["torso.2.bias"])
    mean = torch.clamp(h @ p["mean.0.weight"].T + p["mean.0.bias"], -0.5, 0.5)
    got_mean, log_std, features = model.apply(p, obs)
    torch.testing.assert_close(features, h)
    torch.testing.assert_close(got_mean, mean)
    assert log_std is p["log_std"]
    big = tree.map(lambda x: 100.0 * x, p)
    assert float(model.apply(big, obs)[0].abs().max()) == 0.5  # clipped
    unclipped = nn.gsde_policy(3, 2, (8, 6), clip_mean=0.0)
    assert float(unclipped.apply(big, obs)[0].abs().max()) > 0.5
    with pytest.raises(ValueError, match="clip_mean must be >= 0"):
        nn.gsde_policy(3, 2, clip_mean=-1.0)
    # PPO's orthogonal init: the mean head's rows have norm mean_gain
    ortho = nn.gsde_policy(3, 2, (8,), init="orthogonal", mean_gain=0.01).init(K)
    w = ortho["mean.0.weight"]
    torch.testing.assert_close(w @ w.T, 1e-4 * torch.eye(2), rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="obs must have shape"):
        model.apply(p, torch.zeros(7, 4))


def test_dueling_identity_and_value_squeeze():
    model = nn.q_net(3, 4, (8, 6), dueling=True)
    p = model.init(K)
    obs = R.normal(R.key(1), (7, 3))
    h = torch.relu(obs @ p["torso.0.weight"].T + p["torso.0.bias"])
    h = torch.relu(h @ p["torso.2.weight"].T + p["torso.2.bias"])
    v = h @ p["value.weight"].T + p["value.bias"]
    q = model.apply(p, obs)
    torch.testing.assert_close(q.mean(-1, keepdim=True), v)  # mean_a q = V
    adv = h @ p["advantage.weight"].T + p["advantage.bias"]
    torch.testing.assert_close(q - v, adv - adv.mean(-1, keepdim=True))
    with pytest.raises(ValueError, match="at least one hidden"):
        nn.q_net(3, 4, (), dueling=True)
    vnet = nn.value_net(3, (8,))
    pv = vnet.init(K)
    torch.testing.assert_close(vnet.apply(pv, obs), nn.mlp(3, (8,), 1).apply(pv, obs)[:, 0])


def test_continuous_q_net_and_twin_ensemble():
    q = nn.continuous_q_net(3, 2, (16,))
    obs, act = R.normal(R.key(1), (5, 3)), R.normal(R.key(2), (5, 2))
    p = q.init(K)
    ref = nn.mlp(5, (16,), 1, "relu", "default").apply(p, torch.cat([obs, act], -1))[:, 0]
    torch.testing.assert_close(q.apply(p, obs, act), ref)
    with pytest.raises(ValueError, match="same leading dims"):
        q.apply(p, obs, act[:4])
    with pytest.raises(ValueError, match="action must have shape"):
        q.apply(p, obs, obs)
    twin = nn.ensemble(q, 2)
    tp = twin.init(K)
    assert all(v.shape[0] == 2 for v in tp.values())
    members = nn.unstack_params(tp)
    keys = R.split(K, 2)
    for i in range(2):
        assert_trees_close(members[i], q.init(keys[i]), what=f"member {i}")
    assert not torch.equal(members[0]["0.weight"], members[1]["0.weight"])
    out = twin.apply(tp, obs, act)
    assert out.shape == (2, 5)
    torch.testing.assert_close(out, torch.stack([q.apply(m, obs, act) for m in members]))
    assert_trees_close(nn.stack_params(members), tp, rtol=0, atol=0)
    with pytest.raises(TypeError, match="Model"):
        nn.ensemble(lambda p: p, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be"):
        nn.ensemble(q, 0)


# --------------------------------------------------------------------------- transforms


def test_init_under_vmap_matches_loop():
    keys = R.split(R.key(5), 3)
    for init in ("orthogonal", "default"):
        model = nn.mlp(4, (8,), 2, init=init)
        check_transforms(model.init, keys, compile=False)


def test_mlp_population_forward_backward_transforms():
    net = nn.mlp(4, (64, 64), 2)
    params = nn.stack_params([net.init(k) for k in R.split(K, 3)])
    x = R.normal(R.key(1), (3, 8, 4))

    def loss_and_grad(p, x):
        def loss(p):
            return net.apply(p, x).square().mean()

        return loss(p), grad(loss)(p)

    check_transforms(loss_and_grad, params, x, members=1, compile_rtol=1e-4, compile_atol=1e-5)


def test_heads_population_transforms():
    models = (
        nn.categorical_policy(3, 4, (8,)),
        nn.gaussian_policy(3, 2, (8,)),
        nn.tanh_gaussian_policy(3, 2, (8,)),
        nn.gsde_policy(3, 2, (8,)),
        nn.deterministic_policy(3, 2, (8,)),
        nn.value_net(3, (8,)),
        nn.q_net(3, 4, (8, 8), dueling=True),
        nn.ensemble(nn.continuous_q_net(3, 2, (8,)), 2),
    )
    keys = R.split(K, 2)
    params = tuple(nn.stack_params([m.init(k) for k in keys]) for m in models)
    obs, act = R.normal(R.key(1), (2, 5, 3)), R.normal(R.key(2), (2, 5, 2))

    def heads(ps, obs, act):
        outs = [m.apply(p, obs) for m, p in zip(models[:-1], ps[:-1])]
        return (*outs, models[-1].apply(ps[-1], obs, act))

    check_transforms(heads, params, obs, act, members=1, compile_rtol=1e-4, compile_atol=1e-5)


def test_mlp_layer_norm_matches_the_torch_module_and_transforms():
    net = nn.mlp(5, (8, 6), 3, "relu", norm="layer")
    p = net.init(R.key(0))
    assert sorted(p) == sorted(
        f"{i}.{w}" for i in (0, 1, 3, 4, 6) for w in ("weight", "bias")
    )  # Linear, LayerNorm, ReLU, Linear, LayerNorm, ReLU, Linear
    torch.testing.assert_close(p["1.weight"], torch.ones(8))
    torch.testing.assert_close(p["4.bias"], torch.zeros(6))
    module = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.LayerNorm(8), torch.nn.ReLU(),
        torch.nn.Linear(8, 6), torch.nn.LayerNorm(6), torch.nn.ReLU(), torch.nn.Linear(6, 3),
    )  # fmt: skip
    p = {
        k: v + 0.1 * R.normal(R.fold_in(R.key(1), i), v.shape) for i, (k, v) in enumerate(p.items())
    }
    x = R.normal(R.key(2), (7, 5))
    ref = torch.func.functional_call(module, p, (x,))
    torch.testing.assert_close(net.apply(p, x), ref)
    h = net.apply(p, x)[:, 0]  # the fast path normalises: pre-activations have mean ~0
    assert h.shape == (7,)
    g = torch.func.grad(lambda q: net.apply(q, x).square().sum())(p)
    g_ref = torch.func.grad(lambda q: torch.func.functional_call(module, q, (x,)).square().sum())(p)
    assert tree.allclose(g, g_ref, rtol=1e-5, atol=1e-6)
    check_transforms(net.apply, tree.stack([p, p]), torch.stack([x, x + 1]))


def test_heads_take_norm():
    q = nn.continuous_q_net(3, 2, (8,), norm="layer")
    p = q.init(R.key(0))
    assert "1.weight" in p and q.apply(p, torch.zeros(4, 3), torch.zeros(4, 2)).shape == (4,)
    d = nn.q_net(3, 2, (8, 8), dueling=True, norm="layer")
    assert d.apply(d.init(R.key(0)), torch.zeros(4, 3)).shape == (4, 2)
    for head in (
        nn.categorical_policy(3, 2, (8,), norm="layer"),
        nn.value_net(3, (8,), norm="layer"),
    ):
        assert any(k.startswith("1.") for k in head.init(R.key(0)))
    with pytest.raises(ValueError, match="norm must be None or 'layer'"):
        nn.mlp(3, (4,), 1, norm="batch")
