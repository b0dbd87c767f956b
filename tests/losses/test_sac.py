"""SAC losses (continuous and discrete): hand values, references, identities, transforms."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.func import grad

import funrl.random as R
from funrl.losses import (
    ddpg_critic_loss,
    sac_actor_loss,
    sac_critic_loss,
    sac_discrete_actor_loss,
    sac_discrete_critic_loss,
    sac_discrete_temperature_loss,
    sac_temperature_loss,
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


def test_hand_values_continuous():
    q = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=F64)
    r = torch.tensor([1.0, 2.0], dtype=F64)
    term = torch.tensor([False, True])
    # targets: 1 + 0.5 * (2 - 0.5 * -2) = 2.5; 2 -> td critic1 [2.5, 1], critic2 [1.5, 1]
    loss, diag = sac_critic_loss(
        q,
        r,
        term,
        0.5,
        torch.tensor([2.0, 7.0], dtype=F64),
        torch.tensor([-2.0, 3.0], dtype=F64),
        0.5,
    )
    assert float(loss) == pytest.approx(0.5 * (6.25 + 1) / 2 + 0.5 * (2.25 + 1) / 2)
    assert float(diag["target_mean"]) == pytest.approx(2.25)
    loss, diag = sac_actor_loss(
        torch.tensor([-1.0, 1.0], dtype=F64), torch.tensor([2.0, 4.0], dtype=F64), 0.5
    )
    assert float(loss) == pytest.approx(((-0.5 - 2) + (0.5 - 4)) / 2)
    assert float(diag["entropy"]) == 0.0
    loss, diag = sac_temperature_loss(torch.tensor(math.log(2.0)), torch.tensor([-1.0, -3.0]), -1.0)
    # -log 2 * mean(logp + H) = -log 2 * (-3)
    assert float(loss) == pytest.approx(3 * math.log(2.0))
    assert float(diag["alpha"]) == pytest.approx(2.0) and float(diag["entropy"]) == pytest.approx(
        2.0
    )


def test_hand_values_discrete():
    p = torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=F64)
    lp = p.log()
    q_next = torch.tensor([[4.0, 0.0], [2.0, 2.0]], dtype=F64)
    q = torch.tensor([[[1.0, 0.0], [0.0, 3.0]]], dtype=F64)  # one critic
    # soft V' with alpha = 0: [1, 2]; targets: 1 + 1 * 1 = 2; terminal -> 0
    loss, diag = sac_discrete_critic_loss(
        q,
        torch.tensor([0, 1]),
        torch.tensor([1.0, 0.0], dtype=F64),
        torch.tensor([False, True]),
        1.0,
        q_next,
        p,
        lp,
        0.0,
    )
    assert float(diag["target_mean"]) == pytest.approx(1.0)
    assert float(loss) == pytest.approx(0.5 * (1 + 9) / 2)
    loss, diag = sac_discrete_actor_loss(p, lp, q_next, 0.0)
    assert float(loss) == pytest.approx(-(1.0 + 2.0) / 2)
    ent = -(p * lp).sum(-1)
    assert float(diag["entropy"]) == pytest.approx(float(ent.mean()))
    loss, _ = sac_discrete_temperature_loss(torch.tensor(0.5, dtype=F64), p, lp, 0.1)
    assert float(loss) == pytest.approx(float(-0.5 * (-ent + 0.1).mean()))


@given(fb.continuous_batches(dtype=F64, num_critics=st.integers(1, 3)), fb.loss_hparams(dtype=F64))
def test_continuous_matches_reference(b, h):
    g, a, la, te = float(h.gamma), float(h.alpha), float(h.log_alpha), float(h.target_entropy)
    assert_matches(
        sac_critic_loss(
            b.q_tm1, b.r_t, b.terminated_t, h.gamma, b.q_t_target, b.logp_t_next, h.alpha
        ),
        ref.sac_critic_loss(b.q_tm1, b.r_t, b.terminated_t, g, b.q_t_target, b.logp_t_next, a),
    )
    assert_matches(
        sac_actor_loss(b.logp_t, b.q_min_t, h.alpha), ref.sac_actor_loss(b.logp_t, b.q_min_t, a)
    )
    assert_matches(
        sac_temperature_loss(h.log_alpha, b.logp_t, h.target_entropy),
        ref.sac_temperature_loss(la, b.logp_t, te),
    )


@given(
    fb.discrete_sac_batches(dtype=F64, num_critics=st.integers(1, 3)), fb.loss_hparams(dtype=F64)
)
def test_discrete_matches_reference(b, h):
    g, a, la, te = float(h.gamma), float(h.alpha), float(h.log_alpha), float(h.target_entropy)
    assert_matches(
        sac_discrete_critic_loss(
            b.q_tm1,
            b.a_tm1,
            b.r_t,
            b.terminated_t,
            h.gamma,
            b.q_t_target_min,
            b.probs_t_next,
            b.logp_t_next,
            h.alpha,
        ),
        ref.sac_discrete_critic_loss(
            b.q_tm1,
            b.a_tm1,
            b.r_t,
            b.terminated_t,
            g,
            b.q_t_target_min,
            b.probs_t_next,
            b.logp_t_next,
            a,
        ),
    )
    assert_matches(
        sac_discrete_actor_loss(b.probs_t, b.logp_t, b.q_t, h.alpha),
        ref.sac_discrete_actor_loss(b.probs_t, b.logp_t, b.q_t, a),
    )
    assert_matches(
        sac_discrete_temperature_loss(h.log_alpha, b.probs_t, b.logp_t, h.target_entropy),
        ref.sac_discrete_temperature_loss(la, b.probs_t, b.logp_t, te),
    )


@given(
    fb.continuous_batches(dtype=F64), fb.discrete_sac_batches(dtype=F64), fb.loss_hparams(dtype=F64)
)
def test_identities(c, d, h):
    # alpha = 0: the soft critic is the DDPG critic
    l_sac, d_sac = sac_critic_loss(
        c.q_tm1, c.r_t, c.terminated_t, h.gamma, c.q_t_target, c.logp_t_next, 0.0
    )
    l_ddpg, d_ddpg = ddpg_critic_loss(c.q_tm1, c.r_t, c.terminated_t, h.gamma, c.q_t_target)
    torch.testing.assert_close(l_sac, l_ddpg)
    torch.testing.assert_close(d_sac, d_ddpg)
    # discrete temperature loss = continuous one fed with the expected log-prob per state
    exp_logp = (d.probs_t * d.logp_t).sum(-1)
    torch.testing.assert_close(
        sac_discrete_temperature_loss(h.log_alpha, d.probs_t, d.logp_t, h.target_entropy),
        sac_temperature_loss(h.log_alpha, exp_logp, h.target_entropy),
    )
    # a discrete critic over a one-action space is the continuous soft critic
    one = torch.ones(d.r_t.shape[0], 1, dtype=F64)
    zeros = torch.zeros(d.r_t.shape[0], dtype=torch.int64)
    torch.testing.assert_close(
        sac_discrete_critic_loss(
            d.q_tm1[..., :1],
            zeros,
            d.r_t,
            d.terminated_t,
            h.gamma,
            d.q_t_target_min[:, :1],
            one,
            one.log(),
            h.alpha,
        ),
        sac_critic_loss(
            d.q_tm1[..., 0],
            d.r_t,
            d.terminated_t,
            h.gamma,
            d.q_t_target_min[:, 0],
            one[:, 0].log(),
            h.alpha,
        ),
    )


def test_temperature_gradient_is_entropy_minus_target():
    logp = torch.tensor([-0.5, -2.0, 1.0], dtype=F64)
    g = grad(lambda la, lp: sac_temperature_loss(la, lp, -1.0)[0], argnums=(0, 1))(
        torch.tensor(0.3, dtype=F64), logp
    )
    torch.testing.assert_close(g[0], -(logp.mean() - 1.0))  # entropy (0.5) - target (-1)
    assert (g[1] == 0).all()


def _batches(m=None, n=5, a=3, seed=0):
    lead = () if m is None else (m,)
    k = R.split(R.key(seed), 8)

    def pol(kk):
        lp = torch.log_softmax(R.normal(kk, (*lead, n, a), F64), -1)
        return lp.exp(), lp

    p_next, lp_next = pol(k[0])
    p, lp = pol(k[1])
    d = fb.DiscreteSACBatch(
        q_tm1=R.normal(k[2], (*lead, 2, n, a), F64),
        a_tm1=R.randint(k[3], 0, a, (*lead, n)),
        r_t=R.normal(k[4], (*lead, n), F64),
        terminated_t=R.bernoulli(k[5], 0.3, (*lead, n)),
        q_t_target_min=R.normal(k[6], (*lead, n, a), F64),
        probs_t_next=p_next,
        logp_t_next=lp_next,
        probs_t=p,
        logp_t=lp,
        q_t=R.normal(k[7], (*lead, n, a), F64),
    )
    c = fb.ContinuousBatch(
        q_tm1=d.q_tm1[..., 0],
        r_t=d.r_t,
        terminated_t=d.terminated_t,
        q_t_target=d.q_t_target_min[..., 0],
        logp_t_next=d.logp_t_next[..., 0],
        logp_t=d.logp_t[..., 1],
        q_min_t=d.q_t[..., 0],
    )
    return c, d


def test_stop_gradients_and_gradcheck():
    c, d = _batches()
    alpha = torch.tensor(0.4, dtype=F64)
    gs = grad(
        lambda q, qn, lp, al: sac_critic_loss(q, c.r_t, c.terminated_t, 0.9, qn, lp, al)[0],
        argnums=(0, 1, 2, 3),
    )(c.q_tm1, c.q_t_target, c.logp_t_next, alpha)
    assert gs[0].abs().sum() > 0 and all((g == 0).all() for g in gs[1:])
    gs = grad(lambda lp, q, al: sac_actor_loss(lp, q, al)[0], argnums=(0, 1, 2))(
        c.logp_t, c.q_min_t, alpha
    )
    torch.testing.assert_close(gs[0], torch.full_like(gs[0], 0.4 / 5))
    torch.testing.assert_close(gs[1], torch.full_like(gs[1], -1 / 5))
    assert gs[2] == 0
    gs = grad(lambda p, lp, q, al: sac_discrete_actor_loss(p, lp, q, al)[0], argnums=(0, 1, 2, 3))(
        d.probs_t, d.logp_t, d.q_t, alpha
    )
    assert gs[0].abs().sum() > 0 and gs[1].abs().sum() > 0 and (gs[2] == 0).all() and gs[3] == 0
    gs = grad(
        lambda q, qn, p, lp: sac_discrete_critic_loss(
            q, d.a_tm1, d.r_t, d.terminated_t, 0.9, qn, p, lp, alpha
        )[0],
        argnums=(0, 1, 2, 3),
    )(d.q_tm1, d.q_t_target_min, d.probs_t_next, d.logp_t_next)
    assert gs[0].abs().sum() > 0 and all((g == 0).all() for g in gs[1:])
    gs = grad(
        lambda la, p, lp: sac_discrete_temperature_loss(la, p, lp, 0.5)[0], argnums=(0, 1, 2)
    )(alpha, d.probs_t, d.logp_t)
    assert gs[0] != 0 and (gs[1] == 0).all() and (gs[2] == 0).all()
    # finite differences in float64 through the policy (softmax logits) and the critics
    logits = torch.log(d.probs_t).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda z: sac_discrete_actor_loss(z.softmax(-1), z.log_softmax(-1), d.q_t, 0.3)[0],
        (logits,),
    )
    q = d.q_tm1.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda q: sac_discrete_critic_loss(
            q,
            d.a_tm1,
            d.r_t,
            d.terminated_t,
            0.9,
            d.q_t_target_min,
            d.probs_t_next,
            d.logp_t_next,
            0.2,
        )[0],
        (q,),
    )
    lp = c.logp_t.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda lp: sac_actor_loss(lp, c.q_min_t * lp, 0.2)[0], (lp,))


@given(fb.discrete_sac_batches(dtype=F64), fb.loss_hparams(dtype=F64), st.data())
def test_permuting_the_batch_changes_nothing(d, h, data):
    perm = torch.tensor(data.draw(st.permutations(range(d.r_t.shape[0]))))
    p = d._replace(
        q_tm1=d.q_tm1[:, perm], **{k: v[perm] for k, v in d._asdict().items() if k != "q_tm1"}
    )
    for fn in (
        lambda b: sac_discrete_critic_loss(
            b.q_tm1,
            b.a_tm1,
            b.r_t,
            b.terminated_t,
            h.gamma,
            b.q_t_target_min,
            b.probs_t_next,
            b.logp_t_next,
            h.alpha,
        ),
        lambda b: sac_discrete_actor_loss(b.probs_t, b.logp_t, b.q_t, h.alpha),
        lambda b: sac_discrete_temperature_loss(h.log_alpha, b.probs_t, b.logp_t, h.target_entropy),
        lambda b: sac_critic_loss(
            b.q_tm1[..., 0],
            b.r_t,
            b.terminated_t,
            h.gamma,
            b.q_t_target_min[:, 0],
            b.logp_t_next[:, 0],
            h.alpha,
        ),
        lambda b: sac_actor_loss(b.logp_t[:, 0], b.q_t[:, 0], h.alpha),
        lambda b: sac_temperature_loss(h.log_alpha, b.logp_t[:, 0], h.target_entropy),
    ):
        torch.testing.assert_close(fn(d), fn(p))


def test_transforms():
    c, d = _batches(m=3)
    gamma = torch.tensor([0.0, 0.9, 1.0], dtype=F64)
    alpha = torch.tensor([0.0, 0.2, 1.5], dtype=F64)
    log_alpha = torch.tensor([-2.0, 0.0, 0.5], dtype=F64)
    h_target = torch.tensor([-1.0, 0.3, 1.0], dtype=F64)

    fns = {
        "critic": lambda c, d, g, a, la, te: sac_critic_loss(
            c.q_tm1, c.r_t, c.terminated_t, g, c.q_t_target, c.logp_t_next, a
        ),
        "actor": lambda c, d, g, a, la, te: sac_actor_loss(c.logp_t, c.q_min_t, a),
        "temp": lambda c, d, g, a, la, te: sac_temperature_loss(la, c.logp_t, te),
        "d_critic": lambda c, d, g, a, la, te: sac_discrete_critic_loss(
            d.q_tm1,
            d.a_tm1,
            d.r_t,
            d.terminated_t,
            g,
            d.q_t_target_min,
            d.probs_t_next,
            d.logp_t_next,
            a,
        ),
        "d_actor": lambda c, d, g, a, la, te: sac_discrete_actor_loss(
            d.probs_t, d.logp_t, d.q_t, a
        ),
        "d_temp": lambda c, d, g, a, la, te: sac_discrete_temperature_loss(
            la, d.probs_t, d.logp_t, te
        ),
    }
    hp = (gamma, alpha, log_alpha, h_target)
    for fn in fns.values():
        check_transforms(fn, c, d, *hp, compile=False)
    check_transforms(lambda *xs: {k: fn(*xs) for k, fn in fns.items()}, c, d, *hp, members=1)


def test_bad_inputs():
    c, d = _batches()
    with pytest.raises(ValueError, match="alpha"):
        sac_actor_loss(c.logp_t, c.q_min_t, -0.1)
    with pytest.raises(ValueError, match="alpha"):
        sac_critic_loss(
            c.q_tm1, c.r_t, c.terminated_t, 0.9, c.q_t_target, c.logp_t_next, torch.tensor(-1.0)
        )
    with pytest.raises(ValueError, match="gamma"):
        sac_critic_loss(c.q_tm1, c.r_t, c.terminated_t, -0.5, c.q_t_target, c.logp_t_next, 0.1)
    with pytest.raises(ValueError, match="logp_t_next"):
        sac_critic_loss(c.q_tm1, c.r_t, c.terminated_t, 0.9, c.q_t_target, c.logp_t_next[:2], 0.1)
    with pytest.raises(ValueError, match="q_min_t"):
        sac_actor_loss(c.logp_t, c.q_min_t[None], 0.1)
    with pytest.raises(ValueError, match="log_alpha must be a 0-d"):
        sac_temperature_loss(torch.zeros(2), c.logp_t, -1.0)
    with pytest.raises(ValueError, match="target_entropy must be a 0-d"):
        sac_temperature_loss(0.0, c.logp_t, torch.zeros(2))
    with pytest.raises(ValueError, match="logp_t must have shape"):
        sac_discrete_actor_loss(d.probs_t, d.logp_t[:, :2], d.q_t, 0.1)
    with pytest.raises(ValueError, match="q_t must have shape"):
        sac_discrete_actor_loss(d.probs_t, d.logp_t, d.q_t[:2], 0.1)
    with pytest.raises(ValueError, match="probs_t must have shape"):
        sac_discrete_temperature_loss(0.0, d.probs_t[0], d.logp_t[0], 0.5)
    args = [
        d.q_tm1,
        d.a_tm1,
        d.r_t,
        d.terminated_t,
        0.9,
        d.q_t_target_min,
        d.probs_t_next,
        d.logp_t_next,
        0.1,
    ]
    for i, bad, match in [
        (0, d.q_tm1[0, 0], "q_tm1 must have shape"),
        (1, d.a_tm1 + 3, "a_tm1 holds action indices"),
        (2, d.r_t[:3], "r_t"),
        (5, d.q_t_target_min[:, :2], "q_t_target_min"),
        (6, d.probs_t_next[:4], "probs_t_next"),
        (7, d.logp_t_next[:, :1], "logp_t_next"),
    ]:
        with pytest.raises(ValueError, match=match):
            sac_discrete_critic_loss(*args[:i], bad, *args[i + 1 :])
