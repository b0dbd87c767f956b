"""funrl.returns: hand-computed cases, numpy references, identities, invariants, transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from funrl import returns as R
from funrl.testing import check_transforms
from funrl.testing.reference import returns as ref
from funrl.testing.trajectories import Trajectory, discounts, lambdas, trajectories

F64 = trajectories(dtype=torch.float64)
F, T_ = False, True


def b(*xs: bool) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.bool)


def f(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


def close(actual: torch.Tensor, expected: object, tol: float = 1e-10) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), np.asarray(expected), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- hand-computed

# r = 1 everywhere; step 1 terminates, step 3 truncates, T = 5.
R5 = torch.ones(5, dtype=torch.float64)
V5 = f(1.0, 2.0, 3.0, 4.0, 5.0)
VTP1 = f(2.0, 7.0, 4.0, 8.0, 6.0)  # v_tp1[1], v_tp1[3], v_tp1[4] are final-observation values
TERM = b(F, T_, F, F, F)
TRUNC = b(F, F, F, T_, F)


def test_td_targets_by_hand() -> None:
    close(R.td_targets(R5, VTP1, TERM, 0.5), [2.0, 1.0, 3.0, 5.0, 4.0])


def test_discounted_returns_by_hand() -> None:
    close(R.discounted_returns(R5, TERM, TRUNC, 0.5), [1.5, 1.0, 1.5, 1.0, 1.0])
    close(R.discounted_returns(R5, TERM, TRUNC, 0.5, v_tp1=VTP1), [1.5, 1.0, 3.5, 5.0, 4.0])


def test_n_step_returns_by_hand() -> None:
    # t=0: 1 + .5*1 (terminated at 1); t=2: 1 + .5*1 + .25*8 (truncated at 3); t=4: 1 + .5*6.
    close(R.n_step_returns(R5, VTP1, TERM, TRUNC, 0.5, n=3), [1.5, 1.0, 3.5, 5.0, 4.0])
    close(R.n_step_returns(R5, VTP1, TERM, TRUNC, 0.5, n=1), [2.0, 1.0, 3.0, 5.0, 4.0])


def test_lambda_returns_and_gae_by_hand() -> None:
    # G_4 = 1 + .5*6 = 4; G_3 = 1 + .5*8 = 5; G_2 = 1 + .5*(.5*4 + .5*5) = 3.25;
    # G_1 = 1 (terminated); G_0 = 1 + .5*(.5*2 + .5*1) = 1.75.
    expected = [1.75, 1.0, 3.25, 5.0, 4.0]
    close(R.lambda_returns(R5, VTP1, TERM, TRUNC, 0.5, 0.5), expected)
    close(R.gae(R5, V5, VTP1, TERM, TRUNC, 0.5, 0.5), np.asarray(expected) - V5.numpy())


def test_vtrace_by_hand_off_policy() -> None:
    # T = 2, no ends, gamma = 1, lambda = 1, rho = (2, 0.5) -> clipped (1, 0.5), c = (1, 0.5).
    r, v, v_tp1 = f(1.0, 1.0), f(0.0, 1.0), f(1.0, 3.0)
    log_rho = torch.log(f(2.0, 0.5))
    out = R.vtrace(r, v, v_tp1, b(F, F), b(F, F), log_rho, 1.0)
    # delta_1 = .5*(1 + 3 - 1) = 1.5 -> vs_1 = 2.5; delta_0 = 1*(1 + 1 - 0) = 2 -> vs_0 = 0 + 2 + 1.5.
    close(out.vs, [3.5, 2.5])
    # pg_0 = min(1, 2)*(1 + 2.5 - 0) = 3.5; pg_1 = .5*(1 + 3 - 1) = 1.5.
    close(out.pg_advantages, [3.5, 1.5])


def test_retrace_by_hand() -> None:
    # T = 3, gamma = 1, lambda = 1; step 2 truncates.  c_1 = min(1, 0.5) = .5, c_2 unused.
    q, r, e = f(0.0, 2.0, 5.0), f(1.0, 1.0, 1.0), f(3.0, 4.0, 6.0)
    log_rho = torch.log(f(9.0, 0.5, 9.0))
    # G_2 = 1 + 6 = 7; G_1 = 1 + 4 + min(1, 9)*(7 - 5) = 7; G_0 = 1 + 3 + .5*(7 - 2) = 6.5.
    close(R.retrace(q, r, e, b(F, F, F), b(F, F, T_), log_rho, 1.0, 1.0), [6.5, 7.0, 7.0])


def test_both_flags_count_as_terminated() -> None:
    both = b(T_, F)
    close(R.gae(f(1.0, 1.0), f(0.0, 0.0), f(5.0, 5.0), both, both, 0.9, 0.9), [1.0, 5.5])
    close(R.discounted_returns(f(1.0, 1.0), both, both, 0.9, f(5.0, 5.0)), [1.0, 5.5])


# ----------------------------------------------------------------------------- vs numpy references


@given(F64, discounts(), lambdas())
def test_against_reference(traj: Trajectory, gamma: float, lam: float) -> None:
    r, v, vp, te, tr = traj.r_t, traj.v_t, traj.v_tp1, traj.terminated_t, traj.truncated_t
    tol = 1e-9
    close(R.td_targets(r, vp, te, gamma), ref.td_targets(r, vp, te, gamma), tol)
    close(R.discounted_returns(r, te, tr, gamma), ref.discounted_returns(r, te, tr, gamma), tol)
    close(
        R.discounted_returns(r, te, tr, gamma, vp),
        ref.discounted_returns(r, te, tr, gamma, vp),
        tol,
    )
    close(
        R.lambda_returns(r, vp, te, tr, gamma, lam),
        ref.lambda_returns(r, vp, te, tr, gamma, lam),
        tol,
    )
    close(R.gae(r, v, vp, te, tr, gamma, lam), ref.gae(r, v, vp, te, tr, gamma, lam), tol)
    close(
        R.retrace(v, r, vp, te, tr, traj.log_rho_t, gamma, lam),
        ref.retrace(v, r, vp, te, tr, traj.log_rho_t, gamma, lam),
        tol,
    )


@given(F64, discounts(), st.integers(1, 12))
def test_n_step_against_reference(traj: Trajectory, gamma: float, n: int) -> None:
    r, vp, te, tr = traj.r_t, traj.v_tp1, traj.terminated_t, traj.truncated_t
    close(
        R.n_step_returns(r, vp, te, tr, gamma, n), ref.n_step_returns(r, vp, te, tr, gamma, n), 1e-9
    )


@given(
    F64, discounts(), lambdas(),
    st.tuples(*[st.floats(0.0, 2.0) for _ in range(3)]),
)  # fmt: skip
def test_vtrace_against_reference(traj: Trajectory, gamma: float, lam: float, clips) -> None:
    args = (traj.r_t, traj.v_t, traj.v_tp1, traj.terminated_t, traj.truncated_t, traj.log_rho_t)
    out = R.vtrace(*args, gamma, lam, *clips)
    vs, pg = ref.vtrace(*args, gamma, lam, *clips)
    close(out.vs, vs, 1e-9)
    close(out.pg_advantages, pg, 1e-9)


@given(trajectories(batch_shape=(3,)), st.tuples(*[discounts()] * 3), lambdas())
def test_per_env_hyperparameters_float32(traj: Trajectory, gammas, lam: float) -> None:
    gamma = torch.tensor(gammas)
    r, v, vp, te, tr = traj.r_t, traj.v_t, traj.v_tp1, traj.terminated_t, traj.truncated_t
    got = R.gae(r, v, vp, te, tr, gamma, lam)
    assert got.dtype == torch.float32
    close(got, ref.gae(r, v, vp, te, tr, gamma, lam), 1e-4)
    close(
        R.n_step_returns(r, vp, te, tr, gamma, 3), ref.n_step_returns(r, vp, te, tr, gamma, 3), 1e-4
    )


# ----------------------------------------------------------------------------- identities


@given(F64, discounts(), lambdas())
def test_identities(traj: Trajectory, gamma: float, lam: float) -> None:
    r, v, vp, te, tr = traj.r_t, traj.v_t, traj.v_tp1, traj.terminated_t, traj.truncated_t
    mc = R.discounted_returns(r, te, tr, gamma, vp)
    td = R.td_targets(r, vp, te, gamma)
    close(R.gae(r, v, vp, te, tr, gamma, 1.0), mc - v, 1e-9)
    close(R.gae(r, v, vp, te, tr, gamma, 0.0), td - v, 1e-9)
    close(R.n_step_returns(r, vp, te, tr, gamma, r.shape[0]), mc, 1e-9)
    close(R.n_step_returns(r, vp, te, tr, gamma, 1), td, 1e-9)
    close(R.lambda_returns(r, vp, te, tr, gamma, 1.0), mc, 1e-9)
    close(R.lambda_returns(r, vp, te, tr, gamma, 0.0), td, 1e-9)
    on = R.vtrace(r, v, vp, te, tr, torch.zeros_like(r), gamma, lam)
    close(on.vs, R.lambda_returns(r, vp, te, tr, gamma, lam), 1e-9)
    close(on.pg_advantages, R.gae(r, v, vp, te, tr, gamma, lam), 1e-9)
    # Retrace on-policy with expected_q_tp1 = Q of the next action is TD(lambda) on Q.
    close(R.retrace(v, r, vp, te, tr, torch.zeros_like(r), gamma, lam), on.vs, 1e-9)


# ----------------------------------------------------------------------------- invariants


def _all(traj: Trajectory, gamma: float, lam: float) -> list[torch.Tensor]:
    r, v, vp, te, tr = traj.r_t, traj.v_t, traj.v_tp1, traj.terminated_t, traj.truncated_t
    return [
        R.td_targets(r, vp, te, gamma),
        R.discounted_returns(r, te, tr, gamma),
        R.discounted_returns(r, te, tr, gamma, vp),
        R.n_step_returns(r, vp, te, tr, gamma, 3),
        R.lambda_returns(r, vp, te, tr, gamma, lam),
        R.gae(r, v, vp, te, tr, gamma, lam),
        *R.vtrace(r, v, vp, te, tr, traj.log_rho_t, gamma, lam),
        R.retrace(v, r, vp, te, tr, traj.log_rho_t, gamma, lam),
    ]


@given(trajectories(T=st.integers(2, 10), batch_shape=(), dtype=torch.float64), st.data())
def test_cut_at_episode_boundary(traj: Trajectory, data: st.DataObject) -> None:
    ends = torch.nonzero(traj.done_t[:-1]).flatten().tolist()
    cut = data.draw(st.sampled_from(ends)) + 1 if ends else None
    if cut is None:  # force a boundary so the property is always exercised
        cut = data.draw(st.integers(1, traj.r_t.shape[0] - 1))
        term = traj.terminated_t.clone()
        term[cut - 1] = True
        traj = traj._replace(terminated_t=term)
    whole = _all(traj, 0.9, 0.8)
    head = _all(Trajectory(*[x[:cut] for x in traj]), 0.9, 0.8)
    tail = _all(Trajectory(*[x[cut:] for x in traj]), 0.9, 0.8)
    for w, h, t in zip(whole, head, tail):
        close(w, torch.cat([h, t]), 1e-12)


@given(trajectories(batch_shape=(4,), dtype=torch.float64), st.permutations(range(4)))
def test_batch_permutation_equivariance(traj: Trajectory, perm: list[int]) -> None:
    permuted = Trajectory(*[x[:, perm] for x in traj])
    for w, p in zip(_all(traj, 0.9, 0.8), _all(permuted, 0.9, 0.8)):
        close(w[:, perm], p, 0.0)


# ----------------------------------------------------------------------------- scans


@pytest.mark.parametrize("shape", [(1,), (2, 3), (7, 2), (50,), (129, 5)])
@pytest.mark.parametrize("block", [None, 1, 2, 5])
def test_scans_agree(shape: tuple[int, ...], block: int | None) -> None:
    g = torch.Generator().manual_seed(sum(shape))
    a = torch.randn(shape, generator=g, dtype=torch.float64)
    c = torch.rand(shape, generator=g, dtype=torch.float64) * (torch.rand(shape, generator=g) > 0.1)
    expected = R._scan_loop(a, c)
    close(R._scan_blocked(a, c, block), expected, 1e-12)
    close(R._scan_doubling(a, c), expected, 1e-12)


def test_blocked_scan_long_rollout_float32() -> None:
    # T = 2048 with discounts at 1 (no decay) and rare zeros: float32 stays near float64.
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2048, 3, generator=g, dtype=torch.float64)
    c = (torch.rand(2048, 3, generator=g) > 0.001).double()
    c[:, 0] = 1.0
    expected = R._scan_loop(a, c)
    got = R._scan_blocked(a.float(), c.float())
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [(6, R._LOOP_MIN_NUMEL), (40, 1700), (3, 5)])
def test_default_scan_each_regime_agrees(shape: tuple[int, ...]) -> None:
    # (6, 2048): loop; (40, 1700): blocked (T * numel > 65536); (3, 5): doubling.
    g = torch.Generator().manual_seed(1)
    a = torch.randn(shape, generator=g, dtype=torch.float64)
    c = torch.rand(shape, generator=g, dtype=torch.float64)
    close(R._scan(a, c), R._scan_loop(a, c), 1e-12)


# ----------------------------------------------------------------------------- gradients


def test_gae_gradcheck_wrt_values() -> None:
    g = torch.Generator().manual_seed(2)
    r = torch.randn(6, 2, generator=g, dtype=torch.float64)
    v = torch.randn(6, 2, generator=g, dtype=torch.float64, requires_grad=True)
    vp = torch.randn(6, 2, generator=g, dtype=torch.float64, requires_grad=True)
    te, tr = torch.zeros(6, 2, dtype=torch.bool), torch.zeros(6, 2, dtype=torch.bool)
    te[2, 0], tr[4, 1] = True, True
    assert torch.autograd.gradcheck(lambda v, vp: R.gae(r, v, vp, te, tr, 0.9, 0.8), (v, vp))
    # d A_0 / d v_0 = -1 exactly.
    (grad,) = torch.autograd.grad(R.gae(r, v, vp, te, tr, 0.9, 0.8)[0, 0], v)
    assert grad[0, 0].item() == -1.0


# ----------------------------------------------------------------------------- transforms


def _batch(n: int = 3, T: int = 5, B: tuple[int, ...] = (2,)) -> Trajectory:
    g = torch.Generator().manual_seed(3)
    shape = (n, T, *B)
    fl = [torch.randn(shape, generator=g) for _ in range(5)]
    return Trajectory(
        r_t=fl[0], v_t=fl[1], v_tp1=fl[2],
        terminated_t=torch.rand(shape, generator=g) < 0.2,
        truncated_t=torch.rand(shape, generator=g) < 0.2,
        log_mu_t=-fl[3].abs(), log_pi_t=-fl[4].abs(),
    )  # fmt: skip


_GAMMAS = torch.tensor([0.9, 0.99, 1.0])
_LAMS = torch.tensor([0.0, 0.5, 0.95])

CASES = {
    "td_targets": lambda t, g, lam: R.td_targets(t.r_t, t.v_tp1, t.terminated_t, g),
    "discounted_returns": lambda t, g, lam: R.discounted_returns(
        t.r_t, t.terminated_t, t.truncated_t, g, t.v_tp1
    ),
    "n_step_returns": lambda t, g, lam: R.n_step_returns(
        t.r_t, t.v_tp1, t.terminated_t, t.truncated_t, g, 3
    ),
    "lambda_returns": lambda t, g, lam: R.lambda_returns(
        t.r_t, t.v_tp1, t.terminated_t, t.truncated_t, g, lam
    ),
    "gae": lambda t, g, lam: R.gae(t.r_t, t.v_t, t.v_tp1, t.terminated_t, t.truncated_t, g, lam),
    "vtrace": lambda t, g, lam: R.vtrace(
        t.r_t, t.v_t, t.v_tp1, t.terminated_t, t.truncated_t, t.log_rho_t, g, lam
    ),
    "retrace": lambda t, g, lam: R.retrace(
        t.v_t, t.r_t, t.v_tp1, t.terminated_t, t.truncated_t, t.log_rho_t, g, lam
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_vmap_each(name: str) -> None:
    # vmap over trajectories and hyperparameters together (compile: test_compile_all).
    check_transforms(CASES[name], _batch(), _GAMMAS, _LAMS, compile=False)


def test_compile_all() -> None:
    # One graph with every estimator: compiled unbatched and compiled under vmap.
    # These small shapes use the doubling scan; test_compile_blocked_scan covers the other.
    def everything(t: Trajectory, g: torch.Tensor, lam: torch.Tensor) -> dict:
        return {name: fn(t, g, lam) for name, fn in CASES.items()}

    check_transforms(everything, _batch(), _GAMMAS, _LAMS, members=1, atol=1e-5)


def test_compile_blocked_scan() -> None:
    # T * numel > 65536 per member: the blocked scan, compiled and under vmap.
    g = torch.Generator().manual_seed(4)
    a = torch.randn(2, 70, 1000, generator=g)
    c = torch.rand(2, 70, 1000, generator=g)
    check_transforms(R._scan, a, c, members=1, atol=1e-4, rtol=1e-4)


def test_check_transforms_shared_hyperparameters() -> None:
    check_transforms(CASES["gae"], _batch(B=(2, 3)), torch.tensor(0.9), torch.tensor(0.5),
                     in_dims=(0, None, None), compile=False)  # fmt: skip


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs() -> None:
    r, v, te = torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"v_tp1.*\[3, 2\]"):
        R.td_targets(r, torch.zeros(3, 2), te, 0.9)
    with pytest.raises(ValueError, match=r"r_t.*0-d"):
        R.td_targets(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(False), 0.9)
    with pytest.raises(ValueError, match=r"truncated_t.*\[4\]"):
        R.gae(r, v, v, te, torch.zeros(4, dtype=torch.bool), 0.9, 0.9)
    with pytest.raises(TypeError, match=r"terminated_t.*bool"):
        R.gae(r, v, v, te.float(), te, 0.9, 0.9)
    with pytest.raises(TypeError, match=r"v_t.*float64"):
        R.gae(r, v.double(), v, te, te, 0.9, 0.9)
    with pytest.raises(ValueError, match=r"gamma.*\[0.0, 1.0\]"):
        R.gae(r, v, v, te, te, 1.5, 0.9)
    with pytest.raises(ValueError, match=r"lambda_.*\[0.0, 1.0\]"):
        R.lambda_returns(r, v, te, te, 0.9, torch.tensor(-0.1))
    with pytest.raises(ValueError, match=r"gamma.*\[3\]"):
        R.gae(r, v, v, te, te, torch.full((3,), 0.9), 0.9)
    with pytest.raises(ValueError, match="clip_rho_threshold"):
        R.vtrace(r, v, v, te, te, v, 0.9, clip_rho_threshold=-1.0)
    with pytest.raises(ValueError, match="log_rho_t"):
        R.retrace(v, r, v, te, te, torch.zeros(4), 0.9, 0.9)
    for n in (0, 1.5, True):
        with pytest.raises(ValueError, match="n must be"):
            R.n_step_returns(r, v, te, te, 0.9, n)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"r_t.*floating"):
        R.discounted_returns(te, te, te, 0.9)


def test_value_checks_skipped_inside_vmap() -> None:
    # Inside torch.func transforms an out-of-range tensor gamma is not inspected (no .item()).
    r = torch.zeros(2, 4, 3)
    te = torch.zeros(2, 4, 3, dtype=torch.bool)
    out = torch.func.vmap(lambda r, g: R.td_targets(r, r, te[0], g))(r, torch.tensor([2.0, 0.5]))
    assert out.shape == (2, 4, 3)
