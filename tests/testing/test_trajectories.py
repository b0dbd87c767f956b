"""funrl.testing.trajectories: drawn rollouts are valid and cover the cases that matter."""

from __future__ import annotations

import pytest
import torch
from hypothesis import find, given
from hypothesis import strategies as st

from funrl.testing.trajectories import Trajectory, discounts, lambdas, trajectories


@given(trajectories(T=st.integers(1, 6), batch_shape=st.sampled_from([(), (2,), (2, 3)])))
def test_shapes_dtypes_and_consistency(traj: Trajectory) -> None:
    shape = traj.r_t.shape
    assert len(shape) in (1, 2, 3) and 1 <= shape[0] <= 6
    for x in traj:
        assert x.shape == shape
    for x in (traj.r_t, traj.v_t, traj.v_tp1, traj.log_mu_t, traj.log_pi_t):
        assert x.dtype == torch.float32 and torch.isfinite(x).all()
    assert traj.terminated_t.dtype == traj.truncated_t.dtype == torch.bool
    # v_tp1[t] is v_t[t + 1] wherever step t did not end an episode.
    cont = ~traj.done_t[:-1]
    assert torch.equal(traj.v_tp1[:-1][cont], traj.v_t[1:][cont])
    assert (traj.log_mu_t <= 0).all() and (traj.log_pi_t <= 0).all()
    assert torch.equal(traj.log_rho_t, traj.log_pi_t - traj.log_mu_t)


@given(trajectories(T=4, batch_shape=(3,), dtype=torch.float64, ends=False, max_abs_value=2.0))
def test_options(traj: Trajectory) -> None:
    assert traj.r_t.shape == (4, 3) and traj.r_t.dtype == torch.float64
    assert not traj.done_t.any()
    assert (traj.r_t.abs() <= 2.0).all()
    assert torch.equal(traj.v_tp1[:-1], traj.v_t[1:])


def test_covers_both_flags_and_final_values() -> None:
    both = find(trajectories(), lambda t: bool((t.terminated_t & t.truncated_t).any()))
    assert (both.terminated_t & both.truncated_t).any()
    # At an episode end v_tp1 is a fresh draw, not the next step's value.
    differs = find(
        trajectories(T=st.integers(2, 6)),
        lambda t: bool((t.done_t[:-1] & (t.v_tp1[:-1] != t.v_t[1:])).any()),
    )
    assert (differs.done_t[:-1] & (differs.v_tp1[:-1] != differs.v_t[1:])).any()


@given(trajectories(allow_both=False))
def test_allow_both_false(traj: Trajectory) -> None:
    assert not (traj.terminated_t & traj.truncated_t).any()


@given(discounts(), lambdas(0.5, 0.9))
def test_hyperparameters_in_range(gamma: float, lam: float) -> None:
    assert 0.0 <= gamma <= 1.0
    assert 0.5 <= lam <= 0.9


def test_hyperparameter_ends_reachable_and_bad_range() -> None:
    assert find(discounts(), lambda g: g == 1.0) == 1.0
    assert find(lambdas(), lambda g: g == 0.0) == 0.0
    with pytest.raises(ValueError, match="min_value"):
        discounts(0.5, 1.5)
