"""Tests for funrl.distributions: hand values, torch.distributions references, a
change-of-variables reference and numeric density checks for TanhNormal, sample
statistics, reparameterisation gradients, errors, and the eager/vmap/compile battery."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as td
from hypothesis import given
from hypothesis import strategies as st
from torch.func import grad, vmap

import funrl.random as R
from funrl.distributions import (
    GSDE,
    Categorical,
    Deterministic,
    DiagNormal,
    Normal,
    TanhGSDE,
    TanhNormal,
    kl_divergence,
)
from funrl.testing import check_transforms

K = R.key(0)
NEG_INF = -float("inf")
D64 = torch.float64


def _normal64(key, shape):
    return R.normal(key, shape, dtype=D64)


# --------------------------------------------------------------------------- Categorical


def test_categorical_hand_values():
    d = Categorical(torch.log(torch.tensor([0.25, 0.75])))
    torch.testing.assert_close(d.probs, torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(d.log_prob(torch.tensor(1)), torch.tensor(math.log(0.75)))
    ent = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    torch.testing.assert_close(d.entropy(), torch.tensor(ent))
    assert int(d.mode()) == 1


def test_categorical_against_torch_with_masks():
    logits = _normal64(K, (6, 5))
    logits = torch.where(torch.arange(5) == (torch.arange(6) % 5)[:, None], NEG_INF, logits)
    ours, ref = Categorical(logits), td.Categorical(logits=logits)
    actions = (torch.arange(6) + 1) % 5  # valid (unmasked) actions
    torch.testing.assert_close(ours.probs, ref.probs)
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    assert torch.isfinite(ours.entropy()).all()
    q = Categorical(_normal64(R.key(1), (6, 5)))
    torch.testing.assert_close(
        kl_divergence(ours, q), td.kl_divergence(ref, td.Categorical(logits=q.logits))
    )
    # gradients of masked entropy / valid log-probs stay finite
    g = grad(lambda lg: Categorical(lg).entropy().sum() + Categorical(lg).log_prob(actions).sum())(
        logits
    )
    assert torch.isfinite(g).all()
    assert float(g.abs().max()) > 0
    assert (g[torch.isinf(logits)] == 0).all()


@given(st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_categorical_log_prob_matches_torch_property(k, seed):
    logits = _normal64(R.key(seed), (3, k)) * 3
    a = Categorical(logits).sample(R.key(seed + 1))
    torch.testing.assert_close(
        Categorical(logits).log_prob(a), td.Categorical(logits=logits).log_prob(a)
    )
    kl = kl_divergence(Categorical(logits), Categorical(logits.flip(-1)))
    assert (kl >= -1e-12).all()


def test_categorical_sample_frequencies_and_broadcast_log_prob():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7, 0.0], [0.5, 0.0, 0.25, 0.25]]))
    d = Categorical(logits)
    n = 20000
    a = d.sample(K, (n,))
    assert a.shape == (n, 2) and a.dtype == torch.int64
    freq = torch.stack([torch.bincount(a[:, i], minlength=4) for i in range(2)]) / n
    p = d.probs
    assert (freq[p == 0] == 0).all()  # masked classes are never drawn
    assert (freq - p).abs().max() < 4 * math.sqrt(0.25 / n)
    lp = d.log_prob(a)
    assert lp.shape == (n, 2)
    torch.testing.assert_close(lp, torch.log(p).gather(-1, a.T).T)
    assert d.sample(K).shape == (2,)


def test_categorical_errors():
    with pytest.raises(TypeError, match="logits must be a floating-point"):
        Categorical(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"shape \[\.\.\., K\]"):
        Categorical(torch.tensor(1.0))
    with pytest.raises(TypeError, match="integer tensor"):
        Categorical(torch.zeros(3)).log_prob(torch.tensor(1.0))


# --------------------------------------------------------------------------- Normal / DiagNormal


def test_normal_and_diag_normal_against_torch():
    loc, scale = _normal64(K, (4, 3)), torch.exp(_normal64(R.key(1), (4, 3)))
    x = _normal64(R.key(2), (4, 3))
    ref = td.Normal(loc, scale)
    d = Normal(loc, scale)
    torch.testing.assert_close(d.log_prob(x), ref.log_prob(x))
    torch.testing.assert_close(d.entropy(), ref.entropy())
    ind = td.Independent(ref, 1)
    dd = DiagNormal(loc, scale)
    torch.testing.assert_close(dd.log_prob(x), ind.log_prob(x))
    torch.testing.assert_close(dd.entropy(), ind.entropy())
    loc2, scale2 = _normal64(R.key(3), (4, 3)), torch.exp(_normal64(R.key(4), (4, 3)))
    ref_kl = td.kl_divergence(ref, td.Normal(loc2, scale2))
    torch.testing.assert_close(kl_divergence(d, Normal(loc2, scale2)), ref_kl)
    torch.testing.assert_close(kl_divergence(dd, DiagNormal(loc2, scale2)), ref_kl.sum(-1))
    torch.testing.assert_close(kl_divergence(dd, dd), torch.zeros(4, dtype=D64))
    assert torch.equal(d.mode(), loc) and torch.equal(dd.mode(), loc)


def test_normal_hand_values_and_broadcast():
    d = Normal(torch.tensor([0.0, 1.0]), 2.0)  # float scale is broadcast
    assert d.scale.shape == (2,)
    lp = -0.5 * 0.25 - math.log(2.0) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(d.log_prob(torch.tensor([1.0, 0.0])), torch.tensor([lp, lp]))
    p, q = (
        Normal(torch.tensor(0.0), torch.tensor(1.0)),
        Normal(torch.tensor(1.0), torch.tensor(1.0)),
    )
    torch.testing.assert_close(kl_divergence(p, q), torch.tensor(0.5))


@pytest.mark.parametrize("cls", [Normal, DiagNormal])
def test_normal_sample_statistics_and_reparameterisation(cls):
    loc, scale = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.5, 2.0, 1.0])
    n = 20000
    x = cls(loc, scale).sample(K, (n,))
    assert x.shape == (n, 3)
    assert ((x.mean(0) - loc).abs() < 4 * scale / math.sqrt(n)).all()
    assert ((x.var(0) / scale**2 - 1).abs() < 4 * math.sqrt(2 / n)).all()
    eps = R.normal(K, (3,))

    def draw(loc, scale):
        return cls(loc, scale).sample(K).sum()

    g_loc, g_scale = grad(draw, argnums=(0, 1))(loc, scale)
    torch.testing.assert_close(g_loc, torch.ones(3))
    torch.testing.assert_close(g_scale, eps)


def test_normal_errors_and_value_checks_only_eager():
    with pytest.raises(ValueError, match=r"loc shape \(3,\) and scale shape \(2,\)"):
        Normal(torch.zeros(3), torch.ones(2))
    with pytest.raises(ValueError, match="scale must be positive"):
        DiagNormal(torch.zeros(3), torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(TypeError, match="loc must be a floating-point"):
        Normal(torch.zeros(3, dtype=torch.int64), torch.ones(3))
    with pytest.raises(TypeError, match="same dtype"):
        Normal(torch.zeros(3), torch.ones(3, dtype=D64))
    with pytest.raises(ValueError, match="at least 1 dim"):
        DiagNormal(torch.tensor(0.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="scale must be positive"):
        TanhNormal(torch.zeros(2), -torch.ones(2))
    # under vmap the value check is skipped (it cannot read values); shapes still checked
    out = vmap(lambda s: Normal(torch.zeros(2), s).entropy())(-torch.ones(3, 2))
    assert out.shape == (3, 2)


# --------------------------------------------------------------------------- TanhNormal


def _tanh_ref(loc, scale):
    base = td.Normal(loc, scale)
    return td.Independent(td.TransformedDistribution(base, [td.TanhTransform()]), 1)


def test_tanh_normal_log_prob_against_change_of_variables():
    loc, scale = _normal64(K, (5, 2)), torch.exp(0.5 * _normal64(R.key(1), (5, 2)))
    d, ref = TanhNormal(loc, scale), _tanh_ref(loc, scale)
    u = loc + scale * _normal64(R.key(2), (5, 2))
    torch.testing.assert_close(d.log_prob(torch.tanh(u)), ref.log_prob(torch.tanh(u)))
    a, lp = d.sample_and_log_prob(R.key(3), (7,))
    assert a.shape == (7, 5, 2) and lp.shape == (7, 5)
    torch.testing.assert_close(lp, ref.log_prob(a))
    torch.testing.assert_close(d.log_prob(a), lp)
    torch.testing.assert_close(d.mode(), torch.tanh(loc))
    torch.testing.assert_close(d.sample(R.key(3), (7,)), a)


def test_tanh_normal_density_numerically():
    loc, scale = torch.tensor([0.3], dtype=D64), torch.tensor([0.8], dtype=D64)
    d = TanhNormal(loc, scale)
    # density = d/da P(A <= a) with P(A <= a) = Phi((atanh(a) - loc) / scale)
    a, h = torch.linspace(-0.95, 0.95, 39, dtype=D64)[:, None], 1e-5

    def cdf(x):
        return td.Normal(loc, scale).cdf(torch.atanh(x))[:, 0]

    torch.testing.assert_close(torch.exp(d.log_prob(a)), (cdf(a + h) - cdf(a - h)) / (2 * h))
    # integrates to 1 over (-1, 1) (substitute a = tanh(u) to avoid the end singularities)
    u = torch.linspace(-12, 12, 200001, dtype=D64)[:, None]
    dens = torch.exp(d.log_prob(torch.tanh(u))) * (1 - torch.tanh(u) ** 2)[:, 0]
    assert abs(float(torch.trapezoid(dens, u[:, 0])) - 1.0) < 1e-6


def test_tanh_normal_saturation_entropy_and_reparameterisation():
    d = TanhNormal(torch.tensor([20.0, -20.0]), torch.tensor([0.1, 0.1]))
    a, lp = d.sample_and_log_prob(K)
    assert (a.abs() == 1).all() and torch.isfinite(lp)  # exact from pre-tanh u
    assert torch.isfinite(d.log_prob(a))  # clamped, documented
    with pytest.raises(NotImplementedError, match="entropy_estimate"):
        d.entropy()
    loc, scale = torch.tensor([0.3], dtype=D64), torch.tensor([0.8], dtype=D64)
    dn = TanhNormal(loc, scale)
    u = torch.linspace(-10, 10, 200001, dtype=D64)
    logp = dn.log_prob(torch.tanh(u)[:, None])
    dens = torch.exp(logp) * (1 - torch.tanh(u) ** 2)
    exact = -float(torch.trapezoid(dens * logp, u))
    est = dn.entropy_estimate(K, 20000)
    assert est.shape == () and abs(float(est) - exact) < 0.02
    with pytest.raises(ValueError, match="positive int"):
        dn.entropy_estimate(K, 0)
    eps = R.normal(K, (1,), dtype=D64)
    g = grad(lambda m: TanhNormal(m, scale).sample(K).sum())(loc)
    torch.testing.assert_close(g, 1 - torch.tanh(loc + scale * eps) ** 2)
    x = TanhNormal(torch.zeros(2), torch.ones(2)).sample(K, (20000,))
    assert x.abs().max() < 1 and (x.mean(0).abs() < 0.02).all()
    assert ((torch.atanh(x).std(0) - 1).abs() < 0.03).all()


# --------------------------------------------------------------------------- TanhGSDE


def _gsde(batch=6, feats=4, act=2, seed=10):
    loc = 0.3 * _normal64(R.key(seed), (batch, act))
    features = torch.relu(_normal64(R.key(seed + 1), (batch, feats)))
    std = torch.exp(-1.0 + 0.3 * _normal64(R.key(seed + 2), (feats, act)))
    return TanhGSDE(loc, features, std)


def _naive_scale(d):
    """``sqrt(sum_i features_i^2 std_ij^2 + 1e-6)`` by loops, for ``_gsde()``'s shapes."""
    f, s = d.features.numpy(), d.std.numpy()
    return torch.tensor(
        [[math.sqrt(sum(f[b, i] ** 2 * s[i, j] ** 2 for i in range(4)) + 1e-6)
          for j in range(2)] for b in range(6)], dtype=D64,
    )  # fmt: skip


def test_gsde_scale_and_log_prob_against_naive_sums():
    d = _gsde()
    naive = _naive_scale(d)
    torch.testing.assert_close(d.scale(), naive, rtol=1e-12, atol=0)
    ref = _tanh_ref(d.loc, naive)
    a, lp = d.sample_and_log_prob(R.key(3))
    torch.testing.assert_close(lp, ref.log_prob(a))
    torch.testing.assert_close(d.log_prob(a), lp)
    torch.testing.assert_close(d.mode(), torch.tanh(d.loc))
    with pytest.raises(NotImplementedError, match="no closed form"):
        d.entropy()


def test_gsde_one_matrix_is_a_linear_function_of_the_features():
    """The noise is features @ (std * eps): one matrix for every row, or one per row."""
    d, eps = _gsde(), _normal64(R.key(5), (4, 2))
    u = torch.atanh(d.sample_with(eps))
    torch.testing.assert_close(u, d.loc + d.features @ (d.std * eps))
    twice = TanhGSDE(d.loc, 2 * d.features, d.std)
    torch.testing.assert_close(torch.atanh(twice.sample_with(eps)) - d.loc, 2 * (u - d.loc))
    torch.testing.assert_close(d.sample(R.key(5)), d.sample_with(eps))
    rows = _normal64(R.key(6), (6, 4, 2))
    per_row = torch.stack([d.features[b] @ (d.std * rows[b]) for b in range(6)])
    torch.testing.assert_close(d.noise(rows), per_row)
    a, lp = d.sample_and_log_prob_with(rows)
    torch.testing.assert_close(lp, d.log_prob(a))


def test_gsde_noise_statistics_match_the_scale():
    """Over many matrices, each row's pre-tanh noise is N(0, scale^2)."""
    d = _gsde(batch=3)
    eps = _normal64(R.key(7), (20000, 4, 2))
    noise = (d.features[None, :, None, :] @ (d.std * eps)[:, None]).squeeze(-2)  # [N, 3, 2]
    assert (noise.mean(0).abs() < 0.03 * d.scale()).all()
    ratio = noise.std(0) / d.scale()
    assert ((ratio - 1).abs() < 0.03).all(), ratio


def test_gsde_reparameterised_gradients():
    d, eps = _gsde(), _normal64(R.key(8), (4, 2))

    def f(loc, features, std):
        return TanhGSDE(loc, features, std).sample_and_log_prob_with(eps)[0].sum()

    g_loc, g_feat, g_std = grad(f, argnums=(0, 1, 2))(d.loc, d.features, d.std)
    a = d.sample_with(eps)
    torch.testing.assert_close(g_loc, 1 - a**2)
    torch.testing.assert_close(g_std, d.features.T @ (1 - a**2) * eps)
    assert g_feat.abs().sum() > 0


def test_gsde_errors():
    with pytest.raises(ValueError, match=r"std \[F, D\]"):
        TanhGSDE(torch.zeros(2, 1), torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(ValueError, match="same leading dims"):
        TanhGSDE(torch.zeros(2, 1), torch.ones(4, 3), torch.ones(3, 1))
    with pytest.raises(ValueError, match="std must be positive"):
        TanhGSDE(torch.zeros(2, 1), torch.ones(2, 3), torch.zeros(3, 1))
    with pytest.raises(TypeError, match="features must be a floating-point"):
        TanhGSDE(torch.zeros(2, 1), torch.ones(2, 3, dtype=torch.int64), torch.ones(3, 1))


@pytest.mark.parametrize("cls", [TanhGSDE, GSDE])
def test_gsde_eager_vmap_compile(cls):
    """The shared battery: per member its own loc, features, std and key."""
    loc = 0.3 * R.normal(R.key(1), (3, 5, 2))
    features = torch.relu(R.normal(R.key(2), (3, 5, 4)))
    log_std = -1.0 + 0.3 * R.normal(R.key(3), (3, 4, 2))
    keys = R.split(R.key(4), 3)

    def fn(key, loc, features, log_std):
        d = cls(loc, features, log_std.exp())
        a, logp = d.sample_and_log_prob(key)
        extra = d.entropy() if cls is GSDE else d.scale()  # TanhGSDE has no entropy
        return a, logp, d.log_prob(a), d.mode(), extra

    check_transforms(fn, keys, loc, features, log_std, members=1, compile_rtol=1e-4,
                     compile_atol=1e-5)  # fmt: skip


# --------------------------------------------------------------------------- GSDE (unsquashed)


def test_unsquashed_gsde_is_the_diagonal_normal_of_its_scale():
    """PPO's gSDE: actions ``loc + features @ W``; log-prob and entropy are torch's
    ``Independent(Normal(loc, scale), 1)``'s with the naive-sum scale."""
    t = _gsde()
    d = GSDE(t.loc, t.features, t.std)
    naive = _naive_scale(d)
    torch.testing.assert_close(d.scale(), naive, rtol=1e-12, atol=0)
    ref = torch.distributions.Independent(torch.distributions.Normal(d.loc, naive), 1)
    eps = _normal64(R.key(5), (4, 2))
    a, lp = d.sample_and_log_prob_with(eps)
    torch.testing.assert_close(a, d.loc + d.features @ (d.std * eps))
    torch.testing.assert_close(lp, ref.log_prob(a))
    torch.testing.assert_close(d.log_prob(a), ref.log_prob(a))
    torch.testing.assert_close(d.entropy(), ref.entropy())
    torch.testing.assert_close(d.mode(), d.loc)
    torch.testing.assert_close(d.sample(R.key(5)), a)
    # the squashed form is tanh of the same pre-activation, one matrix per row as well
    rows = _normal64(R.key(6), (6, 4, 2))
    torch.testing.assert_close(t.sample_with(rows), torch.tanh(d.sample_with(rows)))
    assert isinstance(t, GSDE) and not isinstance(d, TanhGSDE)


def test_unsquashed_gsde_gradients_and_errors():
    t, eps = _gsde(), _normal64(R.key(8), (4, 2))
    g_loc, g_std = grad(
        lambda loc, std: GSDE(loc, t.features, std).sample_with(eps).sum(), argnums=(0, 1)
    )(t.loc, t.std)
    torch.testing.assert_close(g_loc, torch.ones_like(t.loc))
    torch.testing.assert_close(g_std, t.features.sum(0)[:, None] * eps)
    with pytest.raises(ValueError, match=r"GSDE: need loc \[\.\.\., D\]"):
        GSDE(torch.zeros(2, 1), torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(ValueError, match="GSDE: std must be positive"):
        GSDE(torch.zeros(2, 1), torch.ones(2, 3), -torch.ones(3, 1))


# --------------------------------------------------------------------------- Deterministic, kl


def test_deterministic():
    d = Deterministic(torch.tensor([1, 2]))
    assert torch.equal(d.sample(K, (3,)), torch.tensor([[1, 2]] * 3))
    assert torch.equal(d.mode(), torch.tensor([1, 2]))
    assert torch.equal(d.log_prob(torch.tensor([1, 3])), torch.tensor([0.0, NEG_INF]))
    assert torch.equal(d.entropy(), torch.zeros(2))
    with pytest.raises(TypeError, match="value must be a tensor"):
        Deterministic(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="funrl key"):
        d.sample(torch.zeros(2))


def test_kl_errors():
    n = Normal(torch.zeros(2), torch.ones(2))
    with pytest.raises(TypeError, match="same type"):
        kl_divergence(n, DiagNormal(torch.zeros(2), torch.ones(2)))
    t = TanhNormal(torch.zeros(2), torch.ones(2))
    with pytest.raises(TypeError, match="supports Categorical"):
        kl_divergence(t, t)


# --------------------------------------------------------------------------- transforms


def _transform_inputs():
    keys = R.split(K, 3)
    logits = R.normal(R.key(1), (3, 4, 5))
    logits = torch.where(torch.arange(5) == 4, NEG_INF, logits)
    loc, log_std = R.normal(R.key(2), (3, 4, 2)), 0.3 * R.normal(R.key(3), (3, 4, 2))
    return keys, logits, loc, log_std


def _methods(logits, loc, log_std, a, x):
    """Every non-random method of every distribution, on given samples ``a``/``x``."""
    c, c2 = Categorical(logits), Categorical(logits.flip(0))
    scale = log_std.exp()
    n, dn, tn = Normal(loc, scale), DiagNormal(loc, scale), TanhNormal(loc, scale)
    det = Deterministic(loc)
    ta = torch.tanh(x)
    return (
        (c, c.log_prob(a), c.entropy(), c.mode(), c.probs, kl_divergence(c, c2)),
        (n, n.log_prob(x), n.entropy(), n.mode(), kl_divergence(n, Normal(loc.flip(0), 1.0))),
        (dn, dn.log_prob(x), dn.entropy(), kl_divergence(dn, DiagNormal(x, scale))),
        (tn, tn.log_prob(ta), tn.mode()),
        (det, det.log_prob(x), det.entropy(), det.mode()),
    )


def test_distributions_sampling_under_vmap():
    keys, logits, loc, log_std = _transform_inputs()

    def fn(key, logits, loc, log_std):
        k1, k2, k3, k4 = R.split(key, 4)
        scale = log_std.exp()
        a = Categorical(logits).sample(k1, (2,))
        x, y = Normal(loc, scale).sample(k2), DiagNormal(loc, scale).sample(k3, (2,))
        tn = TanhNormal(loc, scale)
        return (
            a, x, y, tn.sample(k4), tn.sample_and_log_prob(k4), tn.entropy_estimate(k1, 3),
            Deterministic(loc).sample(k1, (2,)), _methods(logits, loc, log_std, a[0], x),
        )  # fmt: skip

    check_transforms(fn, keys, logits, loc, log_std, compile=False)


def test_distributions_methods_under_compile():
    _, logits, loc, log_std = _transform_inputs()
    a = Categorical(logits).sample(K)
    x = Normal(loc, torch.ones(())).sample(R.key(9))
    check_transforms(
        _methods, logits, loc, log_std, a, x, members=1, compile_rtol=1e-4, compile_atol=1e-5
    )


def test_distributions_sampling_under_compile():
    # Compiling Threefry is the expensive part (seconds per graph, cold cache): the funrl.random
    # samplers are compiled in tests/test_random.py, so here one graph checks our wrappers.
    # With logits and loc both [4, 2], both draws hash the same counters (CSE'd, one kernel).
    keys, logits, loc, log_std = _transform_inputs()

    def fn(key, logits, loc, log_std):
        a = Categorical(logits).sample(key)
        return a, TanhNormal(loc, log_std.exp()).sample_and_log_prob(key)

    args = (keys, logits[..., :2], loc, log_std)
    check_transforms(fn, *args, members=1, compile_rtol=1e-4, compile_atol=1e-5)
