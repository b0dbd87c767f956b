"""Q-learning losses: hand values, numpy references, Double-DQN/Huber identities, transforms."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.func import grad

import funrl.random as R
from funrl.losses import double_q_learning_loss, huber_loss, q_learning_loss
from funrl.testing import batches as fb
from funrl.testing import check_transforms
from funrl.testing.reference import losses as ref

F64 = torch.float64
kinds = st.sampled_from(["huber", "mse"])


def assert_matches(got, expected, rtol=1e-9, atol=1e-9):
    loss, diag = got
    ref_loss, ref_diag = expected
    assert math.isclose(float(loss), ref_loss, rel_tol=rtol, abs_tol=atol), (float(loss), ref_loss)
    assert set(diag) == set(ref_diag)
    for k, v in ref_diag.items():
        torch.testing.assert_close(diag[k], torch.as_tensor(v, dtype=F64), rtol=rtol, atol=atol)


def args(b, h):
    return (b.q_tm1, b.a_tm1, b.r_t, b.terminated_t, h.gamma, b.q_t_target)


def ref_args(b, h):
    return (b.q_tm1, b.a_tm1, b.r_t, b.terminated_t, float(h.gamma), b.q_t_target)


def test_hand_values():
    q_tm1 = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 3.0]], dtype=F64)
    a = torch.tensor([1, 0, 0])
    r = torch.tensor([1.0, 0.5, -1.0], dtype=F64)
    term = torch.tensor([False, True, False])
    q_t = torch.tensor([[4.0, 0.0], [9.0, 9.0], [-2.0, 1.0]], dtype=F64)
    # targets: 1 + .5*4 = 3; 0.5 (terminal); -1 + .5*1 = -0.5 -> td = [1, 0.5, -3.5]
    loss, diag = q_learning_loss(q_tm1, a, r, term, 0.5, q_t, loss="mse")
    torch.testing.assert_close(diag["td_error"], torch.tensor([1.0, 0.5, -3.5], dtype=F64))
    assert float(loss) == pytest.approx(0.5 * (1 + 0.25 + 12.25) / 3)
    assert float(diag["q_mean"]) == pytest.approx(5 / 3)
    assert float(diag["target_mean"]) == pytest.approx(1.0)
    loss, _ = q_learning_loss(q_tm1, a, r, term, 0.5, q_t)  # huber, delta 1: 0.5, 0.125, 3
    assert float(loss) == pytest.approx((0.5 + 0.125 + 3.0) / 3)
    w = torch.tensor([1.0, 0.0, 0.5], dtype=F64)
    loss, _ = q_learning_loss(q_tm1, a, r, term, 0.5, q_t, weights=w, huber_delta=2.0)
    assert float(loss) == pytest.approx((0.5 + 0.0 + 0.5 * 2 * (3.5 - 1)) / 3)
    # double: the selector picks action 1 in row 0 (value 0), action 0 in row 2 (value -2)
    sel = torch.tensor([[0.0, 1.0], [0.0, 0.0], [5.0, 1.0]], dtype=F64)
    _, diag = double_q_learning_loss(q_tm1, a, r, term, 0.5, q_t, sel, loss="mse")
    torch.testing.assert_close(diag["td_error"], torch.tensor([-1.0, 0.5, -5.0], dtype=F64))


def test_huber_hand_values_and_torch():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.0], dtype=F64)
    expected = torch.tensor([2.5, 0.5, 0.125, 0.0, 0.03125, 0.5, 1.5], dtype=F64)
    torch.testing.assert_close(huber_loss(x), expected)
    for delta in (0.3, 1.0, 2.5):  # same convention as torch's F.huber_loss
        torch.testing.assert_close(
            huber_loss(x, delta),
            F.huber_loss(x, torch.zeros_like(x), reduction="none", delta=delta),
        )
    # delta = 1 is SB3's smooth_l1_loss
    torch.testing.assert_close(
        huber_loss(x), F.smooth_l1_loss(x, torch.zeros_like(x), reduction="none")
    )


@given(fb.q_batches(dtype=F64), fb.loss_hparams(dtype=F64), kinds, st.booleans())
def test_matches_reference(b, h, kind, weighted):
    kw = {"loss": kind, "huber_delta": h.huber_delta, "weights": b.weights if weighted else None}
    ref_kw = {**kw, "huber_delta": float(h.huber_delta)}
    assert_matches(
        q_learning_loss(*args(b, h), **kw), ref.q_learning_loss(*ref_args(b, h), **ref_kw)
    )
    assert_matches(
        double_q_learning_loss(*args(b, h), b.q_t_selector, **kw),
        ref.double_q_learning_loss(*ref_args(b, h), b.q_t_selector, **ref_kw),
    )


@given(fb.q_batches(dtype=F64), fb.loss_hparams(dtype=F64), kinds)
def test_double_q_with_selector_equal_target_is_q_learning(b, h, kind):
    lq, dq = q_learning_loss(*args(b, h), loss=kind)
    ld, dd = double_q_learning_loss(*args(b, h), b.q_t_target, loss=kind)
    assert torch.equal(lq, ld)
    assert all(torch.equal(dq[k], dd[k]) for k in dq)


@given(fb.q_batches(dtype=F64), fb.loss_hparams(dtype=F64))
def test_huber_equals_half_squared_error_for_small_errors(b, h):
    _, diag = q_learning_loss(*args(b, h), loss="mse")
    big = float(diag["td_error"].abs().max()) + 0.1
    torch.testing.assert_close(
        q_learning_loss(*args(b, h), loss="huber", huber_delta=big)[0],
        q_learning_loss(*args(b, h), loss="mse")[0],
    )
    # and in the linear region: huber(x) = delta * (|x| - delta / 2)
    x = diag["td_error"]
    d = h.huber_delta
    lin = x.abs() > d
    torch.testing.assert_close(huber_loss(x, d)[lin], (d * (x.abs() - d / 2))[lin])


@given(fb.q_batches(dtype=F64), fb.loss_hparams(dtype=F64))
def test_unit_weights_and_float_terminations_change_nothing(b, h):
    base = q_learning_loss(*args(b, h))
    ones = q_learning_loss(*args(b, h), weights=torch.ones_like(b.r_t))
    as_float = q_learning_loss(
        b.q_tm1, b.a_tm1, b.r_t, b.terminated_t.to(F64), h.gamma, b.q_t_target
    )
    for other in (ones, as_float):
        torch.testing.assert_close(base[0], other[0])
        torch.testing.assert_close(base[1], other[1])


@given(fb.q_batches(dtype=F64), fb.loss_hparams(dtype=F64), st.data())
def test_permuting_the_batch_changes_nothing(b, h, data):
    perm = torch.tensor(data.draw(st.permutations(range(b.r_t.shape[0]))))
    p = fb.QBatch(*(x[perm] for x in b))
    for fn in (
        lambda b: q_learning_loss(*args(b, h), weights=b.weights),
        lambda b: double_q_learning_loss(*args(b, h), b.q_t_selector, loss="mse"),
    ):
        (l1, d1), (l2, d2) = fn(b), fn(p)
        torch.testing.assert_close(l1, l2)
        torch.testing.assert_close(d1["td_error"][perm], d2["td_error"])


def _batch(m=None, n=6, a=3, seed=0):
    lead = () if m is None else (m,)
    k = R.split(R.key(seed), 6)
    return fb.QBatch(
        q_tm1=R.normal(k[0], (*lead, n, a), F64),
        a_tm1=R.randint(k[1], 0, a, (*lead, n)),
        r_t=R.normal(k[2], (*lead, n), F64),
        terminated_t=R.bernoulli(k[3], 0.3, (*lead, n)),
        q_t_target=R.normal(k[4], (*lead, n, a), F64),
        q_t_selector=R.normal(k[5], (*lead, n, a), F64),
        weights=R.uniform(k[5], (*lead, n), F64),
    )


def test_gradients_flow_only_into_the_taken_action():
    b = _batch()
    g_q, g_t, g_s = grad(
        lambda q, t, s: double_q_learning_loss(q, b.a_tm1, b.r_t, b.terminated_t, 0.9, t, s)[0],
        argnums=(0, 1, 2),
    )(b.q_tm1, b.q_t_target, b.q_t_selector)
    taken = F.one_hot(b.a_tm1, 3).bool()
    assert (g_q[~taken] == 0).all() and (g_q[taken] != 0).all()
    assert (g_t == 0).all() and (g_s == 0).all()
    h = fb.LossHParams(*[torch.tensor(0.9, dtype=F64)] * 8)
    g_w = grad(lambda w: q_learning_loss(*args(b, h), weights=w)[0])(b.weights)
    assert (g_w == 0).all()
    q = b.q_tm1.clone().requires_grad_(True)
    for kind in ("huber", "mse"):

        def loss_of_q(q, kind=kind):
            r = q_learning_loss(
                q,
                b.a_tm1,
                b.r_t,
                b.terminated_t,
                0.9,
                b.q_t_target,
                loss=kind,
                huber_delta=0.7,
                weights=b.weights,
            )
            return r[0]

        assert torch.autograd.gradcheck(loss_of_q, (q,))


def test_transforms():
    b = _batch(m=3)
    gamma = torch.tensor([0.0, 0.9, 1.0], dtype=F64)
    delta = torch.tensor([0.5, 1.0, 3.0], dtype=F64)

    def q(b, g, d):
        return q_learning_loss(
            b.q_tm1,
            b.a_tm1,
            b.r_t,
            b.terminated_t,
            g,
            b.q_t_target,
            huber_delta=d,
            weights=b.weights,
        )

    def dq(b, g):
        return double_q_learning_loss(
            b.q_tm1, b.a_tm1, b.r_t, b.terminated_t, g, b.q_t_target, b.q_t_selector, loss="mse"
        )

    check_transforms(q, b, gamma, delta, compile=False)
    check_transforms(dq, b, gamma, compile=False)
    check_transforms(huber_loss, b.r_t, delta, compile=False)
    check_transforms(
        lambda b, g, d: {"q": q(b, g, d), "dq": dq(b, g), "h": huber_loss(b.r_t, d)},
        b,
        gamma,
        delta,
        members=1,
    )


def test_bad_inputs():
    b = _batch()
    q, a, r, t, qt = b.q_tm1, b.a_tm1, b.r_t, b.terminated_t, b.q_t_target
    with pytest.raises(ValueError, match="loss must be one of"):
        q_learning_loss(q, a, r, t, 0.9, qt, loss="l1")
    with pytest.raises(ValueError, match="gamma"):
        q_learning_loss(q, a, r, t, 1.5, qt)
    with pytest.raises(ValueError, match="gamma"):
        q_learning_loss(q, a, r, t, torch.tensor(-0.1), qt)
    with pytest.raises(ValueError, match="huber_delta"):
        q_learning_loss(q, a, r, t, 0.9, qt, huber_delta=0.0)
    with pytest.raises(TypeError, match="a_tm1"):
        q_learning_loss(q, a.double(), r, t, 0.9, qt)
    with pytest.raises(ValueError, match="a_tm1 holds action indices"):
        q_learning_loss(q, a + 3, r, t, 0.9, qt)
    with pytest.raises(ValueError, match="r_t"):
        q_learning_loss(q, a, r[:4], t, 0.9, qt)
    with pytest.raises(ValueError, match="q_tm1 must have shape"):
        q_learning_loss(q[:, 0], a, r, t, 0.9, qt)
    with pytest.raises(ValueError, match="q_t_target"):
        q_learning_loss(q, a, r, t, 0.9, qt[:, :2])
    with pytest.raises(ValueError, match="q_t_selector"):
        double_q_learning_loss(q, a, r, t, 0.9, qt, qt[:5])
    with pytest.raises(ValueError, match="weights"):
        q_learning_loss(q, a, r, t, 0.9, qt, weights=torch.ones(5, dtype=F64))
    with pytest.raises(ValueError, match="terminated_t"):
        q_learning_loss(q, a, r, t[:2], 0.9, qt)
