"""Strategies for loss inputs produce what they promise; the property-testing guide runs."""

import math
import re
from pathlib import Path

import torch
from hypothesis import given
from hypothesis import strategies as st

from funrl.testing import batches as fb
from funrl.testing.reference import losses as ref

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "property-testing.md"


@given(fb.policy_batches(dtype=torch.float64))
def test_discrete_policy_batches_are_consistent(b):
    n = b.logp_t.shape[0]
    assert 1 <= n <= 16
    assert all(x.shape == (n,) and x.dtype == torch.float64 for x in b)
    assert (b.logp_t <= 0).all() and (b.logp_old_t <= 0).all()  # categorical log-probs
    assert (b.entropy_t >= 0).all() and (b.entropy_t <= math.log(5) + 1e-12).all()
    assert (b.kl_t >= -1e-12).all()
    same = b.kl_t == 0  # KL is exactly 0 only where old == new, and then the ratio is 1
    assert torch.equal(b.logp_t[same], b.logp_old_t[same])
    assert ((b.v_t - b.v_old_t).abs() <= 1 + 1e-12).all()
    assert (b.adv_t.abs() <= 10).all() and (b.target_t.abs() <= 10).all()


@given(fb.policy_batches(n=5, continuous=True))
def test_gaussian_policy_batches_are_consistent(b):
    assert all(x.shape == (5,) and x.dtype == torch.float32 for x in b)
    assert (b.kl_t >= -1e-6).all()
    # entropy of N(mu, s^2) is 0.5 log(2 pi e) + log s, with log s in [-1, 1]
    lo, hi = 0.5 * math.log(2 * math.pi * math.e) - 1, 0.5 * math.log(2 * math.pi * math.e) + 1
    assert ((b.entropy_t >= lo - 1e-5) & (b.entropy_t <= hi + 1e-5)).all()


def test_gaussian_kl_matches_torch_distributions():
    # the closed form used by the strategy, against torch's implementation
    mu, ls, mu_o, ls_o = 0.3, -0.2, -1.1, 0.7
    new = torch.distributions.Normal(torch.tensor(mu), torch.tensor(ls).exp())
    old = torch.distributions.Normal(torch.tensor(mu_o), torch.tensor(ls_o).exp())
    kl = ls - ls_o + (math.exp(2 * ls_o) + (mu_o - mu) ** 2) / (2 * math.exp(2 * ls)) - 0.5
    assert math.isclose(float(torch.distributions.kl_divergence(old, new)), kl, rel_tol=1e-6)


@given(fb.q_batches(num_actions=st.integers(2, 4)))
def test_q_batches(b):
    n, a = b.q_tm1.shape
    assert 2 <= a <= 4
    assert b.q_t_target.shape == b.q_t_selector.shape == (n, a)
    assert b.a_tm1.dtype == torch.int64 and ((b.a_tm1 >= 0) & (b.a_tm1 < a)).all()
    assert b.terminated_t.dtype == torch.bool and b.terminated_t.shape == (n,)
    assert ((b.weights > 0) & (b.weights <= 1)).all()


@given(fb.continuous_batches(n=3, num_critics=st.integers(1, 3)))
def test_continuous_batches(b):
    assert b.q_tm1.shape[1] == 3 and 1 <= b.q_tm1.shape[0] <= 3
    assert all(x.shape == (3,) for x in b[1:])
    assert ((b.logp_t >= -5) & (b.logp_t <= 2)).all()


@given(fb.discrete_sac_batches(num_critics=3, dtype=torch.float64))
def test_discrete_sac_batches(b):
    e, n, a = b.q_tm1.shape
    assert e == 3
    for p, lp in ((b.probs_t, b.logp_t), (b.probs_t_next, b.logp_t_next)):
        assert p.shape == lp.shape == (n, a)
        torch.testing.assert_close(p.sum(-1), torch.ones(n, dtype=torch.float64))
        torch.testing.assert_close(lp, p.log())
        assert lp.isfinite().all()


@given(fb.loss_hparams(batch=(3,)))
def test_loss_hparams_ranges(h):
    assert all(x.shape == (3,) and x.dtype == torch.float32 for x in h)
    assert ((h.clip_eps > 0) & (h.clip_eps <= 0.5)).all()
    assert ((h.gamma >= 0) & (h.gamma <= 1)).all()
    assert ((h.alpha > 0) & (h.alpha <= 2)).all()
    assert ((h.target_kl > 0) & (h.target_kl <= 0.1)).all()
    assert (h.huber_delta > 0).all() and (h.beta >= 0).all()


@given(fb.loss_hparams())
def test_loss_hparams_are_0d_by_default(h):
    assert all(x.ndim == 0 for x in h)


@given(fb.stacked(fb.policy_batches(n=4), members=3))
def test_stacked(b):
    assert isinstance(b, fb.PolicyBatch)
    assert all(x.shape == (3, 4) for x in b)


def test_reference_edge_cases():
    assert math.isnan(ref.explained_variance([1.0, 2.0], [3.0, 3.0]))
    assert ref.huber_loss(-3.0, 1.0) == 2.5 and ref.huber_loss(0.5, 1.0) == 0.125
    # the double-Q reference breaks argmax ties toward the lowest index, like torch.argmax
    _, d = ref.double_q_learning_loss(
        [[0.0, 0.0]], [0], [0.0], [0.0], 1.0, [[1.0, 2.0]], [[5.0, 5.0]], loss="mse"
    )
    assert d["td_error"].tolist() == [1.0]


def test_property_testing_guide_runs():
    """Extract every python block of docs/guides/property-testing.md, run it, run its tests."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    exec(compile("\n".join(blocks), str(GUIDE), "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert len(tests) == 3
    for test in tests:
        test()
