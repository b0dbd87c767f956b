"""Tests for funrl.buffers: ring replay, prioritized replay, n-step, trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from funrl import buffers as B
from funrl import random as R
from funrl import tree
from funrl.collectors import Transition
from funrl.testing import check_transforms


def example() -> dict[str, torch.Tensor]:
    return {"obs": torch.zeros(3), "id": torch.zeros((), dtype=torch.int64)}


def rows(ids: list[int]) -> dict[str, torch.Tensor]:
    t = torch.tensor(ids, dtype=torch.int64)
    return {"obs": t[:, None].float().expand(len(ids), 3).clone(), "id": t}


def clone(s):
    return tree.map(torch.clone, s)


# ---------------------------------------------------------------- ring replay


def test_add_wraps_in_order():
    s = B.init(example(), 5)
    s = B.add(s, rows([1, 2, 3]))
    assert (int(s.pos), int(s.size)) == (3, 3)
    s = B.add(s, rows([4, 5, 6, 7]))
    assert s.data["id"].tolist() == [6, 7, 3, 4, 5]
    assert s.data["obs"][:, 0].tolist() == [6, 7, 3, 4, 5]
    assert (int(s.pos), int(s.size)) == (2, 5)


def test_masked_add_writes_valid_rows_contiguously():
    s = B.add(B.init(example(), 4), rows([1, 2, 3]))
    s2 = B.add(s, rows([7, 8, 9]), mask=torch.tensor([True, False, True]))
    assert s2.data["id"].tolist() == [9, 2, 3, 7]
    assert (int(s2.pos), int(s2.size)) == (1, 4)
    s3 = B.add(s, rows([7, 8, 9]), mask=torch.zeros(3, dtype=torch.bool))
    assert tree.all_equal(s3, s)


@given(
    cap=st.integers(1, 9),
    adds=st.lists(st.lists(st.booleans(), min_size=1, max_size=9), min_size=1, max_size=6),
    seed=st.integers(0, 2**32),
)
def test_add_sample_matches_naive_ring(cap, adds, seed):
    """Against a Python list ring; samples only ever return filled slots."""
    s = B.init(example(), cap)
    ring: list[int] = [0] * cap
    pos = size = 0
    nxt = 1
    for k, mask in enumerate(adds):
        mask = mask[:cap]
        ids = list(range(nxt, nxt + len(mask)))
        nxt += len(mask)
        m = torch.tensor(mask) if k % 2 else None
        s = B.add(s, rows(ids), mask=m)
        for i, ok in zip(ids, mask):
            if ok or m is None:
                ring[pos] = i
                pos, size = (pos + 1) % cap, min(size + 1, cap)
        assert s.data["id"].tolist() == ring
        assert (int(s.pos), int(s.size)) == (pos, size)
    if size:
        got = B.sample(s, R.key(seed), size)
        assert set(got["id"].tolist()) <= {x for x in ring if x}
        assert torch.equal(got["obs"][:, 0], got["id"].float())
    assert bool(B.can_sample(s, max(size, 1))) == (size >= 1)
    assert not bool(B.can_sample(s, size + 1))


def test_sample_is_uniform_over_filled():
    s = B.add(B.init(example(), 10), rows([1, 2, 3, 4]))
    keys = R.split(R.key(3), 10_000)  # batch_size may not exceed size: many small draws
    ids = torch.func.vmap(lambda k: B.sample(s, k, 4)["id"], randomness="error")(keys).reshape(-1)
    counts = torch.bincount(ids, minlength=5)[1:].double()
    chi2 = float(((counts - 10_000) ** 2 / 10_000).sum())
    assert counts.sum() == 40_000 and chi2 < 21.1  # df 3, p = 1e-4


def test_pure_state_untouched_and_donate_in_place():
    s = B.add(B.init(example(), 4), rows([1, 2]))
    before = clone(s)
    s2 = B.add(s, rows([3, 4, 5]))
    assert tree.all_equal(s, before) and not tree.all_equal(s2, before)
    s3 = B.add(s, rows([3, 4, 5]), donate=True)
    assert tree.all_equal(s3, s2)
    assert s3.data["id"] is s.data["id"]  # written in place, as promised
    p = B.prioritized_add(B.prioritized_init(example(), 4), rows([1, 2]))
    pb = clone(p)
    B.update_priorities(p, torch.tensor([0, 1]), torch.tensor([5.0, 6.0]))
    B.prioritized_add(p, rows([3]), torch.tensor([2.0]))
    assert tree.all_equal(p, pb)


def test_bad_input_raises_and_leaves_state():
    s = B.init(example(), 4)
    before = clone(s)
    with pytest.raises(ValueError, match="empty"):
        B.sample(s, R.key(0), 1)
    s1 = B.add(s, rows([1]))
    with pytest.raises(ValueError, match="exceeds the 1 filled"):
        B.sample(s1, R.key(0), 2)
    with pytest.raises(ValueError, match="capacity 4"):
        B.add(s, rows([1, 2, 3, 4, 5]))
    with pytest.raises(TypeError, match="structure"):
        B.add(s, {"obs": torch.zeros(1, 3)})
    with pytest.raises(TypeError, match=r"batch\['id'\] has dtype torch.float32"):
        B.add(s, {"obs": torch.zeros(1, 3), "id": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"batch\['obs'\] has shape \(1, 4\)"):
        B.add(s, {"obs": torch.zeros(1, 4), "id": torch.zeros(1, dtype=torch.int64)})
    with pytest.raises(ValueError, match="leading dim"):
        B.add(s, {"obs": torch.zeros(2, 3), "id": torch.zeros(1, dtype=torch.int64)})
    with pytest.raises(ValueError, match="mask"):
        B.add(s, rows([1, 2]), mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="capacity"):
        B.init(example(), 0)
    p = B.prioritized_init(example(), 4)
    with pytest.raises(ValueError, match="empty"):
        B.prioritized_sample(p, R.key(0), 1, 0.4)
    with pytest.raises(ValueError, match=">= 0"):
        B.prioritized_add(p, rows([1]), torch.tensor([-1.0]))
    with pytest.raises(ValueError, match=r"shape \[2\]"):
        B.prioritized_add(p, rows([1, 2]), torch.ones(3))
    assert tree.all_equal(s, before)


# ---------------------------------------------------------- prioritized replay


@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0])
def test_prioritized_sampling_is_proportional(alpha):
    """Chi-square of 60k draws vs p^alpha over filled slots (cap 13: a padded tree)."""
    s = B.prioritized_init(example(), 13, alpha=alpha)
    s = B.prioritized_add(s, rows(list(range(1, 11))), torch.arange(1, 11).float() ** 1.5)
    s = B.update_priorities(s, torch.tensor([0, 4]), torch.tensor([30.0, 0.5]))
    p = s.priorities[:10].double() ** alpha
    expected = 60_000 * p / p.sum()
    draw = lambda k: B.prioritized_sample(s, k, 10, 0.5)[1]  # noqa: E731
    idx = torch.func.vmap(draw, randomness="error")(R.split(R.key(11), 6_000)).reshape(-1)
    counts = torch.bincount(idx, minlength=13).double()
    assert counts[10:].sum() == 0  # never an unfilled slot
    chi2 = float(((counts[:10] - expected) ** 2 / expected).sum())
    assert chi2 < 33.7, chi2  # df 9, p = 1e-4; a wrong alpha gives chi2 in the thousands


def test_zero_priority_never_sampled():
    s = B.prioritized_add(B.prioritized_init(example(), 8, alpha=1.0), rows([1, 2, 3]))
    s = B.update_priorities(s, torch.tensor([1]), torch.tensor([0.0]))
    draw = lambda k: B.prioritized_sample(s, k, 3, 1.0)[1]  # noqa: E731
    idx = torch.func.vmap(draw, randomness="error")(R.split(R.key(0), 2_000))
    assert set(idx.reshape(-1).tolist()) == {0, 2}


@given(
    pr=st.lists(st.floats(0.01, 100.0), min_size=1, max_size=20),
    alpha=st.floats(0.0, 1.0),
    beta=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32),
)
def test_importance_weights_match_numpy(pr, alpha, beta, seed):
    n = len(pr)
    s = B.prioritized_init(example(), 20, alpha=torch.tensor(alpha))
    s = B.prioritized_add(s, rows(list(range(1, n + 1))), torch.tensor(pr))
    assert float(s.max_priority) == pytest.approx(max(1.0, *pr))
    batch, idx, w = B.prioritized_sample(s, R.key(seed), n, torch.tensor(beta))
    pa = np.asarray(pr, np.float64) ** alpha
    prob = pa / pa.sum()
    ref = (n * prob[idx.numpy()]) ** (-beta)
    np.testing.assert_allclose(w.numpy(), ref / ref.max(), rtol=1e-5)
    assert torch.equal(batch["id"], idx + 1)


def check_sum_tree(s):
    """Every internal node is exactly the sum of its children; leaves are p^alpha."""
    t = s.tree
    leaves = t.shape[0] // 2
    internal = torch.arange(1, leaves)
    assert torch.equal(t[internal], t[2 * internal] + t[2 * internal + 1])
    p = s.priorities.double()
    want = torch.where(p > 0, p ** s.alpha.double(), 0.0)
    torch.testing.assert_close(t[leaves : leaves + p.shape[0]], want, rtol=1e-12, atol=0)
    assert torch.all(t[leaves + p.shape[0] :] == 0)


@given(
    cap=st.integers(1, 40),
    ops=st.lists(
        st.tuples(st.integers(1, 9), st.integers(0, 2**16), st.booleans()), min_size=1, max_size=8
    ),
    alpha=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_sum_tree_invariant_under_adds_and_updates(cap, ops, alpha):
    """Adds (masked, wrapping) and updates with duplicate indices keep the tree exact."""
    s = B.prioritized_init(example(), cap, alpha=alpha)
    g = torch.Generator().manual_seed(0)
    for b, seed, masked in ops:
        b = min(b, cap)
        pr = torch.rand(b, generator=g) * 5
        pr[::3] = 0.0
        mask = (torch.arange(b) % 2 == 0) if masked else None
        donate = seed % 2 == 0
        s = B.prioritized_add(s, rows(list(range(b))), pr, mask=mask, donate=donate)
        check_sum_tree(s)
        if int(s.size) > 0:
            idx = torch.randint(0, int(s.size), (b,), generator=g)  # duplicates likely
            s = B.update_priorities(s, idx, torch.rand(b, generator=g), donate=donate)
            check_sum_tree(s)
    assert int(s.size) == min(
        cap,
        sum(min(b, cap) for b, _, m in ops if not m)
        + sum((min(b, cap) + 1) // 2 for b, _, m in ops if m),
    )


def test_prioritized_donate_matches_pure_and_writes_in_place():
    s = B.prioritized_add(B.prioritized_init(example(), 6), rows([1, 2, 3]))
    pure = B.update_priorities(s, torch.tensor([0, 2]), torch.tensor([4.0, 0.5]))
    pure = B.prioritized_add(pure, rows([4, 5]), torch.tensor([2.0, 3.0]))
    kept = clone(s)
    d = B.update_priorities(s, torch.tensor([0, 2]), torch.tensor([4.0, 0.5]), donate=True)
    d = B.prioritized_add(d, rows([4, 5]), torch.tensor([2.0, 3.0]), donate=True)
    assert tree.all_equal(d, pure) and not tree.all_equal(s, kept)
    assert d.tree is s.tree and d.priorities is s.priorities


def test_sampling_a_large_sparse_tree():
    """Capacity 100k, three non-zero slots far apart: draws land only on them, in ratio."""
    s = B.prioritized_init(example(), 100_000, alpha=1.0)
    s = s.replace(size=torch.tensor(100_000))
    s = B.update_priorities(s, torch.tensor([7, 50_001, 99_999]), torch.tensor([1.0, 2.0, 5.0]))
    _, idx, w = B.prioritized_sample(s, R.key(3), 8_000, 1.0)
    counts = torch.bincount(idx, minlength=100_000)[[7, 50_001, 99_999]].double()
    assert counts.sum() == 8_000
    expected = 8_000 * torch.tensor([1.0, 2.0, 5.0]) / 8.0
    assert float(((counts - expected) ** 2 / expected).sum()) < 18.4  # df 2, p = 1e-4
    assert torch.allclose(w[idx == 99_999], torch.tensor(1.0 / 5.0))  # (N P)^-1 / max


def test_empty_tree_draws_a_placeholder_with_zero_weight():
    """Under compile (no value checks) an empty tree yields slot 0 and weight 0, not NaN."""
    s = B.prioritized_init(example(), 5)
    f = torch.compile(lambda s, k: B.prioritized_sample(s, k, 3, 0.4)[1:], fullgraph=True)
    idx, w = f(s, R.key(0))
    assert idx.tolist() == [0, 0, 0] and w.tolist() == [0.0, 0.0, 0.0]


def test_bad_alpha_raises():
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        B.prioritized_init(example(), 4, alpha=-0.1)
    with pytest.raises(ValueError, match="0-d"):
        B.prioritized_init(example(), 4, alpha=torch.ones(2))


def test_new_items_get_max_priority():
    s = B.prioritized_add(B.prioritized_init(example(), 4), rows([1]), torch.tensor([7.0]))
    s = B.prioritized_add(s, rows([2, 3]))
    assert s.priorities[:3].tolist() == [7.0, 7.0, 7.0]
    s = B.update_priorities(s, torch.tensor([2]), torch.tensor([9.0]))
    assert float(s.max_priority) == 9.0


# ---------------------------------------------------------------------- n-step


def naive_n_step(r, term, trunc, n, gamma):
    """Per-step loop: (reward, discount, end index) of each window, numpy."""
    T = len(r)
    out = []
    for t in range(T):
        g, disc, end = 0.0, 1.0, t
        for k in range(n):
            if t + k >= T:
                break
            g += disc * r[t + k]
            disc *= gamma
            end = t + k
            if term[t + k]:
                disc = 0.0
                break
            if trunc[t + k]:
                break
        out.append((g, disc, end))
    return out


def make_traj(r, term, trunc, num_envs=1):
    T = len(r)
    rt = torch.tensor(r, dtype=torch.float32)[:, None].expand(T, num_envs).clone()
    t = torch.arange(T, dtype=torch.float32)[:, None, None].expand(T, num_envs, 2).clone()
    flag = lambda x: torch.tensor(x)[:, None].expand(T, num_envs).clone()  # noqa: E731
    act = torch.arange(T)[:, None].expand(T, num_envs).clone()
    return Transition(t, act, rt, flag(term), flag(trunc), t + 100.0, {}, {})


episodes = st.integers(1, 12).flatmap(
    lambda T: st.tuples(
        st.lists(st.floats(-5, 5), min_size=T, max_size=T),
        st.lists(st.booleans(), min_size=T, max_size=T),
        st.lists(st.booleans(), min_size=T, max_size=T),
    )
)


@given(episodes, st.integers(1, 5), st.floats(0.0, 1.0))
def test_n_step_transitions_match_naive_loop(ep, n, gamma):
    r, term, trunc = ep
    out = B.n_step_transitions(make_traj(r, term, trunc, 2), n, gamma)
    for t, (g, disc, end) in enumerate(naive_n_step(r, term, trunc, n, gamma)):
        assert float(out.reward[t, 1]) == pytest.approx(g, rel=1e-5, abs=1e-5)
        assert float(out.discount[t, 0]) == pytest.approx(disc, rel=1e-5, abs=1e-7)
        assert out.next_obs[t, 0].tolist() == [end + 100.0] * 2  # next_obs of the last step
        assert int(out.action[t, 1]) == t


def test_n_step_hand_values():
    tr = make_traj([1.0, 2.0, 3.0, 4.0], [False, True, False, False], [False, False, False, True])
    out = B.n_step_transitions(tr, 3, 0.5)
    assert out.reward[:, 0].tolist() == [2.0, 2.0, 5.0, 4.0]
    assert out.discount[:, 0].tolist() == [0.0, 0.0, 0.25, 0.5]
    one = B.n_step_transitions(tr, 1, 0.5)  # n = 1: the ordinary TD target pieces
    assert one.reward[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert one.discount[:, 0].tolist() == [0.5, 0.0, 0.5, 0.5]


@given(episodes, st.integers(1, 4))
def test_streaming_matches_trajectory_form(ep, n):
    r, term, trunc = ep
    traj = make_traj(r, term, trunc, 3)
    ref = B.n_step_transitions(traj, n, 0.9)
    s = B.n_step_init(tree.index(traj, 0), n)
    for t in range(len(r)):
        s, out, valid = B.n_step_push(s, tree.index(traj, t), 0.9)
        assert valid.shape == (3,) and bool(valid.all()) == (t >= n - 1)
        if t >= n - 1:
            tree.map(lambda a, b: torch.testing.assert_close(a, b), out, tree.index(ref, t - n + 1))


def test_n_step_bad_input():
    traj = make_traj([1.0, 2.0], [False, False], [False, False])
    with pytest.raises(ValueError, match="n must"):
        B.n_step_transitions(traj, 0, 0.9)
    s = B.n_step_init(tree.index(traj, 0), 2)
    with pytest.raises(ValueError, match="transition.obs"):
        B.n_step_push(s, tree.index(traj, 0)._replace(obs=torch.zeros(1, 3)), 0.9)


# ----------------------------------------------------------------- trajectories


def test_trajectory_buffer():
    s = B.trajectory_init(example(), num_steps=3, num_envs=2)
    for t in range(4):
        s = B.trajectory_add(s, rows([10 * t + 1, 10 * t + 2]))
        assert bool(B.trajectory_get(s)[1]) == (t >= 2)
    data, _ = B.trajectory_get(s)
    assert data["id"].tolist() == [[31, 32], [11, 12], [21, 22]]
    with pytest.raises(ValueError, match="num_envs=2"):
        B.trajectory_add(s, rows([1]))


# ------------------------------------------------------------ transforms battery


def test_battery_replay_nstep_trajectory():
    """A population of 2 buffers: add (masked too), sample, n-step, trajectories."""
    n = 2
    traj = make_traj([1.0, 2.0, 3.0], [False, True, False], [False, False, True], 2)
    ex = {"obs": torch.zeros(2), "act": torch.zeros((), dtype=torch.int64)}
    replay = tree.stack([B.init(ex, 4)] * n)
    nstep = tree.stack([B.n_step_init(tree.index(traj, 0), 2)] * n)
    trajs = tree.stack([B.trajectory_init(ex, 2, 2)] * n)
    gammas = torch.tensor([0.9, 0.5])
    rewards = torch.stack([traj.reward, traj.reward * 2])
    keys = R.split(R.key(5), n)

    def fn(replay, nstep, trajs, gamma, reward, key):
        tr = traj._replace(reward=reward)
        full = B.n_step_transitions(tr, 2, gamma)
        for t in range(2):
            nstep, out, valid = B.n_step_push(nstep, tree.index(tr, t), gamma)
            replay = B.add(replay, {"obs": out.next_obs, "act": out.action}, mask=valid)
        trajs = B.trajectory_add(trajs, {"obs": out.next_obs, "act": out.action})
        replay = B.add(replay, {"obs": full.obs[0], "act": full.action[0]})
        return replay, trajs, full, B.sample(replay, key, 3), B.can_sample(replay, 5)

    check_transforms(fn, replay, nstep, trajs, gammas, rewards, keys, members=1)


def test_battery_prioritized():
    n = 2
    ex = example()
    alpha, beta = torch.tensor([0.6, 1.0]), torch.tensor([0.4, 1.0])
    pstate = tree.stack([B.prioritized_init(ex, 6, alpha=a) for a in alpha])
    batch = tree.stack([rows([1, 2, 3, 4]), rows([5, 6, 7, 8])])
    pr = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 1.0, 1.0, 0.5]])
    keys = R.split(R.key(9), n)

    def fn(state, batch, pr, key, beta):
        state = B.prioritized_add(state, batch, pr, mask=batch["id"] != 2)
        state = B.prioritized_add(state, batch)
        out, idx, w = B.prioritized_sample(state, key, 5, beta)
        state = B.update_priorities(state, idx, w + 0.1)
        return state, out, idx, w

    check_transforms(fn, pstate, batch, pr, keys, beta, members=1)
