"""Value losses: hand values, numpy references, clipping identities, transforms."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.func import grad

import funrl.random as R
from funrl.losses import explained_variance, td_lambda_value_loss, value_loss
from funrl.testing import batches as fb
from funrl.testing import check_transforms
from funrl.testing.reference import losses as ref

F64 = torch.float64


def assert_matches(got, expected, target, rtol=1e-9, atol=1e-9):
    loss, diag = got
    ref_loss, ref_diag = expected
    assert math.isclose(float(loss), ref_loss, rel_tol=rtol, abs_tol=atol), (float(loss), ref_loss)
    assert set(diag) == set(ref_diag)
    for k, v in ref_diag.items():
        if k == "explained_variance" and float(target.var(unbiased=False)) < 1e-9:
            continue  # 0 vs a rounding-level variance: ill-conditioned, not comparable
        torch.testing.assert_close(
            diag[k], torch.tensor(v, dtype=F64), rtol=rtol, atol=atol, equal_nan=True
        )


def test_hand_values():
    v = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    y = torch.tensor([1.0, 4.0, 0.0], dtype=F64)
    loss, diag = value_loss(v, y)
    assert float(loss) == pytest.approx(0.5 * (0 + 4 + 9) / 3)
    assert float(diag["value_mean"]) == pytest.approx(2.0)
    # clipped: v_old = [0, 2.5, 2], eps = 0.5 -> v_clip = [0.5, 2, 2.5]
    loss, diag = value_loss(v, y, torch.tensor([0.0, 2.5, 2.0], dtype=F64), 0.5)
    # max(0, 0.25)=0.25, max(4, 4)=4, max(9, 6.25)=9
    assert float(loss) == pytest.approx(0.5 * (0.25 + 4 + 9) / 3)
    assert float(diag["clip_fraction"]) == pytest.approx(2 / 3)
    loss, diag = td_lambda_value_loss(v, y)
    assert float(loss) == pytest.approx(13 / 6)
    assert float(diag["td_error_abs_mean"]) == pytest.approx(5 / 3)


def test_explained_variance_hand_values():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64)
    assert float(explained_variance(y, y)) == 1.0
    assert float(explained_variance(torch.full_like(y, 2.5), y)) == 0.0
    assert float(explained_variance(y + 7.0, y)) == 1.0  # a constant offset is not penalised
    # var(y - p) = var([1, 2, 3, 4] - [4, 3, 2, 1]) = var([-3, -1, 1, 3]) = 5; var(y) = 1.25
    assert float(explained_variance(y.flip(0), y)) == pytest.approx(1 - 5 / 1.25)
    assert math.isnan(float(explained_variance(y, torch.ones(4, dtype=F64))))


@given(
    st.booleans().flatmap(lambda c: fb.policy_batches(continuous=c, dtype=F64)),
    fb.loss_hparams(dtype=F64),
)
def test_matches_reference(b, h):
    assert_matches(value_loss(b.v_t, b.target_t), ref.value_loss(b.v_t, b.target_t), b.target_t)
    assert_matches(
        value_loss(b.v_t, b.target_t, b.v_old_t, h.clip_eps),
        ref.value_loss(b.v_t, b.target_t, b.v_old_t, float(h.clip_eps)),
        b.target_t,
    )
    assert_matches(
        td_lambda_value_loss(b.v_t, b.target_t),
        ref.td_lambda_value_loss(b.v_t, b.target_t),
        b.target_t,
    )
    ev, ev_ref = explained_variance(b.v_t, b.target_t), ref.explained_variance(b.v_t, b.target_t)
    if float(b.target_t.var(unbiased=False)) >= 1e-9:
        assert math.isclose(float(ev), ev_ref, rel_tol=1e-9, abs_tol=1e-9)


@given(fb.policy_batches(dtype=F64))
def test_clipping_identities(b):
    plain, _ = value_loss(b.v_t, b.target_t)
    # a clip range wider than every step is no clipping at all
    wide = float((b.v_t - b.v_old_t).abs().max()) + 1.0
    torch.testing.assert_close(value_loss(b.v_t, b.target_t, b.v_old_t, wide)[0], plain)
    # clipped loss is never below the unclipped one (it takes the max)
    assert float(value_loss(b.v_t, b.target_t, b.v_old_t, 0.1)[0]) >= float(plain) - 1e-12
    # eps = 0: the clipped prediction is v_old
    zero = 0.5 * torch.maximum((b.v_t - b.target_t) ** 2, (b.v_old_t - b.target_t) ** 2).mean()
    torch.testing.assert_close(value_loss(b.v_t, b.target_t, b.v_old_t, 0.0)[0], zero)
    # td(lambda) regression is the unclipped value loss toward the lambda-returns
    torch.testing.assert_close(td_lambda_value_loss(b.v_t, b.target_t)[0], plain)


@given(fb.policy_batches(dtype=F64), st.data())
def test_permuting_the_batch_changes_nothing(b, data):
    perm = torch.tensor(data.draw(st.permutations(range(b.v_t.shape[0]))))
    for fn in (
        lambda v, y, vo: value_loss(v, y, vo, 0.2),
        lambda v, y, vo: value_loss(v, y),
        lambda v, y, vo: td_lambda_value_loss(v, y),
    ):
        (l1, d1), (l2, d2) = (
            fn(b.v_t, b.target_t, b.v_old_t),
            fn(b.v_t[perm], b.target_t[perm], b.v_old_t[perm]),
        )
        torch.testing.assert_close(l1, l2)
        torch.testing.assert_close(d1, d2, equal_nan=True)


def test_gradients_and_stop_gradients():
    k = R.split(R.key(3), 3)
    v, y, vo = (R.normal(kk, (7,), F64) for kk in k)
    # d/dv of 0.5 mean (v - y)^2 is (v - y) / N
    gv, gy = grad(lambda v, y: value_loss(v, y)[0], argnums=(0, 1))(v, y)
    torch.testing.assert_close(gv, (v - y) / 7)
    assert (gy == 0).all()
    gv, gy, gvo = grad(lambda v, y, vo: value_loss(v, y, vo, 0.3)[0], argnums=(0, 1, 2))(v, y, vo)
    assert gv.abs().sum() > 0 and (gy == 0).all() and (gvo == 0).all()
    gv, gy = grad(lambda v, y: td_lambda_value_loss(v, y)[0], argnums=(0, 1))(v, y)
    torch.testing.assert_close(gv, (v - y) / 7)
    assert (gy == 0).all()
    vv = v.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: value_loss(v, y, vo, 0.3)[0], (vv,))
    assert torch.autograd.gradcheck(lambda v: td_lambda_value_loss(v, y)[0], (vv,))


def _members(m=3, n=8):
    k = R.split(R.key(11), 3)
    v = R.normal(k[0], (m, n))
    return v, R.normal(k[1], (m, n)), v + 0.5 * R.normal(k[2], (m, n))


def test_transforms():
    v, y, vo = _members()
    eps = torch.tensor([0.0, 0.2, 1.0])
    check_transforms(value_loss, v, y, compile=False)
    check_transforms(value_loss, v, y, vo, eps, compile=False)
    check_transforms(td_lambda_value_loss, v, y, compile=False)
    check_transforms(explained_variance, v, y, compile=False)

    def all_losses(v, y, vo, eps):
        return {
            "plain": value_loss(v, y),
            "clipped": value_loss(v, y, vo, eps),
            "td": td_lambda_value_loss(v, y),
            "ev_const": explained_variance(v, torch.zeros_like(y)),  # the nan branch
        }

    check_transforms(all_losses, v, y, vo, eps, members=1)


def test_bad_inputs():
    x = torch.zeros(4)
    with pytest.raises(ValueError, match="target_t"):
        value_loss(x, torch.zeros(3))
    with pytest.raises(ValueError, match="v_old_t"):
        value_loss(x, x, torch.zeros(5), 0.2)
    with pytest.raises(ValueError, match="both v_old_t and clip_eps"):
        value_loss(x, x, x)
    with pytest.raises(ValueError, match="both v_old_t and clip_eps"):
        value_loss(x, x, clip_eps=0.2)
    with pytest.raises(ValueError, match="clip_eps"):
        value_loss(x, x, x, -0.2)
    with pytest.raises(ValueError, match="v_t must have shape"):
        td_lambda_value_loss(torch.zeros(4, 1), x)
    with pytest.raises(ValueError, match="lambda_target_t"):
        td_lambda_value_loss(x, torch.zeros(2))
    with pytest.raises(TypeError, match="target"):
        explained_variance(x, torch.zeros(4, dtype=torch.int32))
