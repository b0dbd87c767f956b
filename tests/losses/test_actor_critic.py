"""DDPG/TD3 losses: hand values, numpy references, ensemble identities, transforms."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.func import grad

import funrl.random as R
from funrl.losses import ddpg_actor_loss, ddpg_critic_loss
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


def test_hand_values():
    q = torch.tensor([[1.0, 2.0], [1.5, 2.5]], dtype=F64)
    r = torch.tensor([1.0, 1.0], dtype=F64)
    term = torch.tensor([False, True])
    q_next = torch.tensor([2.0, 9.0], dtype=F64)
    # targets [2, 1]; critic 1: 0.5 * (1 + 1) / 2 = 0.5; critic 2: 0.5 * (0.25 + 2.25) / 2 = 0.625
    loss, diag = ddpg_critic_loss(q, r, term, 0.5, q_next)
    assert float(loss) == pytest.approx(1.125)
    assert float(diag["target_mean"]) == pytest.approx(1.5)
    assert float(diag["q_mean"]) == pytest.approx(1.75)
    assert float(diag["td_error_abs_mean"]) == pytest.approx((1 + 1 + 0.5 + 1.5) / 4)
    loss, diag = ddpg_actor_loss(torch.tensor([1.0, -3.0, 5.0]))
    assert float(loss) == pytest.approx(-1.0) and float(diag["q_mean"]) == pytest.approx(1.0)


@given(fb.continuous_batches(dtype=F64, num_critics=st.integers(1, 3)), fb.loss_hparams(dtype=F64))
def test_matches_reference(b, h):
    assert_matches(
        ddpg_critic_loss(b.q_tm1, b.r_t, b.terminated_t, h.gamma, b.q_t_target),
        ref.ddpg_critic_loss(b.q_tm1, b.r_t, b.terminated_t, float(h.gamma), b.q_t_target),
    )
    assert_matches(ddpg_actor_loss(b.q_min_t), ref.ddpg_actor_loss(b.q_min_t))


@given(fb.continuous_batches(dtype=F64, num_critics=3), fb.loss_hparams(dtype=F64))
def test_ensemble_loss_is_the_sum_of_single_critic_losses(b, h):
    def one(q):
        return ddpg_critic_loss(q, b.r_t, b.terminated_t, h.gamma, b.q_t_target)

    total, _ = one(b.q_tm1)
    torch.testing.assert_close(total, sum(one(q)[0] for q in b.q_tm1))
    # a [N] critic is a [1, N] ensemble
    l1, d1 = one(b.q_tm1[0])
    l2, d2 = one(b.q_tm1[:1])
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(d1, d2)


@given(fb.continuous_batches(dtype=F64), fb.loss_hparams(dtype=F64), st.data())
def test_permuting_the_batch_changes_nothing(b, h, data):
    perm = torch.tensor(data.draw(st.permutations(range(b.r_t.shape[0]))))

    def fn(q, r, t, qn):
        return ddpg_critic_loss(q, r, t, h.gamma, qn)

    l1, d1 = fn(b.q_tm1, b.r_t, b.terminated_t, b.q_t_target)
    l2, d2 = fn(b.q_tm1[:, perm], b.r_t[perm], b.terminated_t[perm], b.q_t_target[perm])
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(d1, d2)
    torch.testing.assert_close(ddpg_actor_loss(b.q_min_t), ddpg_actor_loss(b.q_min_t[perm]))


def _batch(m=None, n=6, e=2, seed=0):
    lead = () if m is None else (m,)
    k = R.split(R.key(seed), 5)
    return fb.ContinuousBatch(
        q_tm1=R.normal(k[0], (*lead, e, n), F64),
        r_t=R.normal(k[1], (*lead, n), F64),
        terminated_t=R.bernoulli(k[2], 0.3, (*lead, n)),
        q_t_target=R.normal(k[3], (*lead, n), F64),
        logp_t_next=R.normal(k[4], (*lead, n), F64),
        logp_t=R.normal(k[4], (*lead, n), F64) - 1,
        q_min_t=R.normal(k[2], (*lead, n), F64),
    )


def test_gradients():
    b = _batch()
    g_q, g_r, g_t = grad(
        lambda q, r, qn: ddpg_critic_loss(q, r, b.terminated_t, 0.99, qn)[0], argnums=(0, 1, 2)
    )(b.q_tm1, b.r_t, b.q_t_target)
    target = b.r_t + 0.99 * (~b.terminated_t) * b.q_t_target
    torch.testing.assert_close(g_q, (b.q_tm1 - target) / 6)  # d/dq of 0.5 mean (q - y)^2
    assert (g_r == 0).all() and (g_t == 0).all()
    q = b.q_tm1.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda q: ddpg_critic_loss(q, b.r_t, b.terminated_t, 0.9, b.q_t_target)[0], (q,)
    )
    g_a = grad(lambda q: ddpg_actor_loss(q)[0])(b.q_min_t)
    torch.testing.assert_close(g_a, torch.full_like(g_a, -1 / 6))


def test_transforms():
    b = _batch(m=3)
    gamma = torch.tensor([0.0, 0.5, 0.99], dtype=F64)

    def critic(b, g):
        return ddpg_critic_loss(b.q_tm1, b.r_t, b.terminated_t, g, b.q_t_target)

    check_transforms(critic, b, gamma, compile=False)
    check_transforms(ddpg_actor_loss, b.q_min_t, compile=False)
    check_transforms(
        lambda b, g: {"critic": critic(b, g), "actor": ddpg_actor_loss(b.q_min_t)},
        b,
        gamma,
        members=1,
    )


def test_bad_inputs():
    b = _batch()
    q, r, t, qn = b.q_tm1, b.r_t, b.terminated_t, b.q_t_target
    with pytest.raises(ValueError, match="gamma"):
        ddpg_critic_loss(q, r, t, 1.01, qn)
    with pytest.raises(ValueError, match="q_tm1"):
        ddpg_critic_loss(q[:, :5], r, t, 0.9, qn)
    with pytest.raises(ValueError, match="q_tm1 must have shape"):
        ddpg_critic_loss(q[None], r, t, 0.9, qn)
    with pytest.raises(ValueError, match="q_t_target"):
        ddpg_critic_loss(q, r, t, 0.9, qn[:3])
    with pytest.raises(ValueError, match="terminated_t"):
        ddpg_critic_loss(q, r, t[None], 0.9, qn)
    with pytest.raises(ValueError, match="q_of_pi"):
        ddpg_actor_loss(q)
    with pytest.raises(TypeError, match="q_tm1"):
        ddpg_critic_loss(q.long(), r, t, 0.9, qn)
