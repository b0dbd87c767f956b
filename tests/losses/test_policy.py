"""Policy-gradient losses: hand values, numpy references, PPO identities, transforms."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.func import grad

import funrl.random as R
from funrl.losses import (
    adapt_kl_beta,
    entropy_loss,
    policy_gradient_loss,
    ppo_clip_loss,
    ppo_kl_penalty_loss,
)
from funrl.testing import batches as fb
from funrl.testing import check_transforms
from funrl.testing.reference import losses as ref

F64 = torch.float64


def assert_matches(got, expected, rtol=1e-9, atol=1e-9):
    loss, diag = got
    ref_loss, ref_diag = expected
    assert math.isclose(float(loss), ref_loss, rel_tol=rtol, abs_tol=atol), (float(loss), ref_loss)
    assert set(diag) == set(ref_diag)
    for k, v in ref_diag.items():
        torch.testing.assert_close(diag[k], torch.tensor(v, dtype=F64), rtol=rtol, atol=atol)


# ---------------------------------------------------------------- hand-computed values


def test_policy_gradient_hand_values():
    loss, diag = policy_gradient_loss(
        torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([2.0, -1.0, 4.0])
    )
    # -(-2 + 2 - 2) / 3
    assert float(loss) == pytest.approx(2.0 / 3.0)
    assert float(diag["advantage_mean"]) == pytest.approx(5.0 / 3.0)


def test_ppo_clip_hand_values():
    logp_old = torch.zeros(4, dtype=F64)
    ratios = torch.tensor([1.5, 0.5, 1.1, 1.5], dtype=F64)
    adv = torch.tensor([1.0, -1.0, 2.0, -1.0], dtype=F64)
    loss, diag = ppo_clip_loss(ratios.log(), logp_old, adv, 0.2)
    # min(1.5, 1.2)=1.2; min(-0.5, -0.8)=-0.8; min(2.2, 2.2)=2.2; min(-1.5, -1.2)=-1.5
    assert float(loss) == pytest.approx(-(1.2 - 0.8 + 2.2 - 1.5) / 4)
    assert float(diag["clip_fraction"]) == pytest.approx(0.75)
    assert float(diag["ratio_mean"]) == pytest.approx(1.15)
    k3 = [(r - 1) - math.log(r) for r in (1.5, 0.5, 1.1, 1.5)]
    assert float(diag["approx_kl"]) == pytest.approx(sum(k3) / 4)


def test_ppo_kl_penalty_and_entropy_hand_values():
    logp = torch.tensor([math.log(2.0), 0.0], dtype=F64)
    loss, diag = ppo_kl_penalty_loss(
        logp,
        torch.zeros(2, dtype=F64),
        torch.tensor([1.0, 3.0], dtype=F64),
        torch.tensor([0.2, 0.4], dtype=F64),
        0.5,
    )
    assert float(loss) == pytest.approx(-(2.0 + 3.0) / 2 + 0.5 * 0.3)
    assert float(diag["kl"]) == pytest.approx(0.3)
    assert float(diag["surrogate"]) == pytest.approx(2.5)
    loss, diag = entropy_loss(torch.tensor([1.0, 2.0, 6.0]))
    assert float(loss) == pytest.approx(-3.0) and float(diag["entropy"]) == pytest.approx(3.0)


def test_adapt_kl_beta_rule():
    target = 0.01
    cases = [
        (0.001, 0.5),
        (0.01 / 1.5 - 1e-6, 0.5),
        (0.01 / 1.5 + 1e-6, 1.0),
        (0.01, 1.0),
        (0.015 - 1e-6, 1.0),
        (0.015 + 1e-6, 2.0),
        (1.0, 2.0),
    ]
    for kl, factor in cases:
        got = adapt_kl_beta(torch.tensor(3.0, dtype=F64), torch.tensor(kl, dtype=F64), target)
        assert float(got) == pytest.approx(3.0 * factor), kl
        assert float(got) == ref.adapt_kl_beta(3.0, kl, target)


# ---------------------------------------------------------------- numpy references


any_policy = st.booleans().flatmap(lambda c: fb.policy_batches(continuous=c, dtype=F64))


@given(any_policy, fb.loss_hparams(dtype=F64))
def test_losses_match_reference(b, h):
    assert_matches(
        policy_gradient_loss(b.logp_t, b.adv_t), ref.policy_gradient_loss(b.logp_t, b.adv_t)
    )
    assert_matches(
        ppo_clip_loss(b.logp_t, b.logp_old_t, b.adv_t, h.clip_eps),
        ref.ppo_clip_loss(b.logp_t, b.logp_old_t, b.adv_t, float(h.clip_eps)),
    )
    assert_matches(
        ppo_kl_penalty_loss(b.logp_t, b.logp_old_t, b.adv_t, b.kl_t, h.beta),
        ref.ppo_kl_penalty_loss(b.logp_t, b.logp_old_t, b.adv_t, b.kl_t, float(h.beta)),
    )
    assert_matches(entropy_loss(b.entropy_t), ref.entropy_loss(b.entropy_t))


@given(fb.loss_hparams(dtype=F64), st.floats(0.0, 1.0))
def test_adapt_kl_beta_matches_reference(h, kl):
    got = adapt_kl_beta(h.beta, torch.tensor(kl, dtype=F64), h.target_kl)
    assert float(got) == ref.adapt_kl_beta(float(h.beta), kl, float(h.target_kl))


# ---------------------------------------------------------------- PPO identities


@given(fb.policy_batches(dtype=F64))
def test_ppo_clip_equals_plain_surrogate_inside_clip_range(b):
    ratio = (b.logp_t - b.logp_old_t).exp()
    eps = float((ratio - 1).abs().max()) + 1e-3  # every ratio strictly inside
    loss, diag = ppo_clip_loss(b.logp_t, b.logp_old_t, b.adv_t, eps)
    torch.testing.assert_close(loss, -(ratio * b.adv_t).mean())
    assert float(diag["clip_fraction"]) == 0.0


@given(any_policy, fb.loss_hparams(dtype=F64))
def test_ppo_clip_gradient_vanishes_in_clipped_direction(b, h):
    eps = h.clip_eps
    ratio = (b.logp_t - b.logp_old_t).exp()
    g = grad(lambda lp: ppo_clip_loss(lp, b.logp_old_t, b.adv_t, eps)[0])(b.logp_t)
    n = b.logp_t.shape[0]
    far = 1e-9  # stay off the kinks at exactly 1 +- eps
    clipped = ((ratio > 1 + eps + far) & (b.adv_t > 0)) | ((ratio < 1 - eps - far) & (b.adv_t < 0))
    inside = (ratio - 1).abs() < eps - far
    pessimistic = ((ratio > 1 + eps + far) & (b.adv_t < 0)) | (
        (ratio < 1 - eps - far) & (b.adv_t > 0)
    )
    active = inside | pessimistic
    assert (g[clipped] == 0).all()
    # elsewhere (inside the range, or outside in the pessimistic direction) d/dlogp = -r A / N
    torch.testing.assert_close(g[active], (-ratio * b.adv_t / n)[active])


def test_ppo_clip_gradient_hand_values():
    ratios = torch.tensor([1.5, 0.5, 1.5, 0.5, 1.1], dtype=F64)
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0, 2.0], dtype=F64)
    g = grad(lambda lp: ppo_clip_loss(lp, torch.zeros(5, dtype=F64), adv, 0.2)[0])(ratios.log())
    # clipped direction -> 0; pessimistic side and inside -> -r A / N
    expected = torch.tensor([0.0, 0.0, 1.5 / 5, -0.5 / 5, -2.2 / 5], dtype=F64)
    torch.testing.assert_close(g, expected)


def test_stop_gradients_on_old_logp_and_advantages():
    k = R.split(R.key(1), 3)
    logp, old, adv = R.normal(k[0], (6,), F64), R.normal(k[1], (6,), F64), R.normal(k[2], (6,), F64)
    kl = (logp - old) ** 2
    for loss_fn in (
        lambda lp, lo, a: ppo_clip_loss(lp, lo, a, 0.2)[0],
        lambda lp, lo, a: ppo_kl_penalty_loss(lp, lo, a, kl, 0.5)[0],
        lambda lp, lo, a: policy_gradient_loss(lp, a)[0],
    ):
        g_logp, g_old, g_adv = grad(loss_fn, argnums=(0, 1, 2))(logp, old, adv)
        assert g_logp.abs().sum() > 0
        assert (g_old == 0).all() and (g_adv == 0).all()


def test_gradcheck_float64():
    logp = torch.tensor([-1.0, -0.3, -2.0, -0.7], dtype=F64, requires_grad=True)
    old = torch.tensor(
        [-1.1, -0.9, -1.0, -0.7], dtype=F64
    )  # ratios 1.105, 1.82, 0.37, 1: off kinks
    adv = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=F64)
    kl = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda lp: ppo_clip_loss(lp, old, adv, 0.2)[0], (logp,))
    assert torch.autograd.gradcheck(
        lambda lp, k: ppo_kl_penalty_loss(lp, old, adv, k, 0.7)[0], (logp, kl)
    )
    assert torch.autograd.gradcheck(lambda lp: policy_gradient_loss(lp, adv)[0], (logp,))
    assert torch.autograd.gradcheck(lambda e: entropy_loss(e)[0], (kl,))


@given(any_policy, fb.loss_hparams(dtype=F64), st.data())
def test_permuting_the_batch_changes_nothing(b, h, data):
    perm = torch.tensor(data.draw(st.permutations(range(b.logp_t.shape[0]))))
    p = fb.PolicyBatch(*(x[perm] for x in b))
    for fn in (
        lambda b: ppo_clip_loss(b.logp_t, b.logp_old_t, b.adv_t, h.clip_eps),
        lambda b: ppo_kl_penalty_loss(b.logp_t, b.logp_old_t, b.adv_t, b.kl_t, h.beta),
        lambda b: policy_gradient_loss(b.logp_t, b.adv_t),
        lambda b: entropy_loss(b.entropy_t),
    ):
        (l1, d1), (l2, d2) = fn(b), fn(p)
        torch.testing.assert_close(l1, l2)
        torch.testing.assert_close(d1, d2)


# ---------------------------------------------------------------- transforms


def _members(m=3, n=8):
    k = R.split(R.key(7), 5)
    logp = -R.uniform(k[0], (m, n)) * 2
    old = logp + 0.4 * R.normal(k[1], (m, n))
    adv = R.normal(k[2], (m, n))
    kl = R.uniform(k[3], (m, n))
    return logp, old, adv, kl


def test_each_loss_under_vmap_with_per_member_hparams():
    logp, old, adv, kl = _members()
    eps = torch.tensor([0.05, 0.2, 0.4])
    beta = torch.tensor([0.0, 0.5, 3.0])
    check_transforms(ppo_clip_loss, logp, old, adv, eps, compile=False)
    check_transforms(ppo_kl_penalty_loss, logp, old, adv, kl, beta, compile=False)
    check_transforms(policy_gradient_loss, logp, adv, compile=False)
    check_transforms(entropy_loss, kl, compile=False)
    check_transforms(adapt_kl_beta, beta, kl[:, 0], torch.tensor([0.01, 0.5, 2.0]), compile=False)
    # a grad inside the vmap: per-member policy gradients
    out = check_transforms(
        grad(lambda lp, lo, a, e: ppo_clip_loss(lp, lo, a, e)[0]),
        logp,
        old,
        adv,
        eps,
        compile=False,
    )
    assert out.shape == logp.shape


def test_all_policy_losses_compile():
    logp, old, adv, kl = _members()
    eps, beta = torch.tensor([0.05, 0.2, 0.4]), torch.tensor([0.0, 0.5, 3.0])

    def all_losses(logp, old, adv, kl, eps, beta):
        return {
            "pg": policy_gradient_loss(logp, adv),
            "clip": ppo_clip_loss(logp, old, adv, eps),
            "klpen": ppo_kl_penalty_loss(logp, old, adv, kl, beta),
            "ent": entropy_loss(kl),
            "beta": adapt_kl_beta(beta, kl.mean(), eps / 10),
        }

    check_transforms(all_losses, logp, old, adv, kl, eps, beta, members=1)


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs():
    x = torch.zeros(4)
    with pytest.raises(ValueError, match="adv_t"):
        ppo_clip_loss(x, x, torch.zeros(5), 0.2)
    with pytest.raises(ValueError, match="logp_old_t"):
        ppo_clip_loss(x, torch.zeros(4, 1), x, 0.2)
    with pytest.raises(ValueError, match="logp_t must have shape"):
        policy_gradient_loss(torch.zeros(2, 2), x)
    with pytest.raises(ValueError, match="clip_eps"):
        ppo_clip_loss(x, x, x, -0.1)
    with pytest.raises(ValueError, match="clip_eps"):
        ppo_clip_loss(x, x, x, torch.tensor(-0.1))
    with pytest.raises(ValueError, match="clip_eps must be a 0-d"):
        ppo_clip_loss(x, x, x, torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="beta"):
        ppo_kl_penalty_loss(x, x, x, x, -1.0)
    with pytest.raises(ValueError, match="kl_t"):
        ppo_kl_penalty_loss(x, x, x, torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="target_kl"):
        adapt_kl_beta(1.0, torch.tensor(0.1), 0.0)
    with pytest.raises(ValueError, match="kl must have shape"):
        adapt_kl_beta(1.0, torch.zeros(2), 0.01)
    with pytest.raises(TypeError, match="logp_t"):
        policy_gradient_loss(torch.zeros(4, dtype=torch.int64), x)
    with pytest.raises(TypeError, match="entropy_t"):
        entropy_loss([1.0, 2.0])


def test_value_checks_skipped_under_vmap():
    # a negative clip_eps in a vmapped batch cannot be read; the shape checks still apply
    logp, old, adv, _ = _members()
    out = torch.vmap(ppo_clip_loss)(logp, old, adv, torch.tensor([0.1, -0.1, 0.2]))
    assert out[0].shape == (3,)
    with pytest.raises(ValueError, match="adv_t"):
        torch.vmap(ppo_clip_loss)(logp, old, adv[:, :4], torch.tensor([0.1, 0.2, 0.2]))
