import math
import unittest.mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import funrl
import funrl.random as R
from funrl.testing import check_transforms
from funrl.testing import strategies as fst

# Random123's known-answer vectors for threefry2x32 with 20 rounds (kat_vectors):
# (key0, key1, ctr0, ctr1) -> (out0, out1).
KAT = [
    ((0, 0, 0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344, 0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize(("inputs", "expected"), KAT)
def test_threefry_known_answers(inputs, expected):
    k0, k1, x0, x1 = (torch.tensor(v, dtype=torch.int64) for v in inputs)
    y0, y1 = R.threefry2x32(k0, k1, x0, x1)
    assert (int(y0), int(y1)) == expected


def test_threefry_broadcasts_known_answers():
    ins = torch.tensor([i for i, _ in KAT], dtype=torch.int64)
    y0, y1 = R.threefry2x32(ins[:, 0], ins[:, 1], ins[:, 2], ins[:, 3])
    assert torch.equal(torch.stack([y0, y1], -1), torch.tensor([o for _, o in KAT]))


def test_key_from_int_and_tensor():
    assert R.key(5).tolist() == [0, 5]
    assert R.key(2**40 + 7).tolist() == [2**8, 7]
    assert R.key(-1).tolist() == [2**32 - 1, 2**32 - 1]  # modulo 2**64
    batch = R.key(torch.arange(3))
    assert batch.shape == (3, 2) and batch[:, 1].tolist() == [0, 1, 2]
    assert R.is_key(R.key(0)) and not R.is_key(torch.zeros(2))


def test_same_key_same_numbers_different_keys_differ():
    k = R.key(42)
    assert torch.equal(R.normal(k, (100,)), R.normal(k, (100,)))
    assert not torch.equal(R.normal(k, (100,)), R.normal(R.key(43), (100,)))


def test_split_and_fold_in_give_distinct_streams():
    k = R.key(0)
    children = R.split(k, 64)
    assert children.shape == (64, 2)
    assert len({tuple(c.tolist()) for c in children}) == 64
    assert not any(torch.equal(c, k) for c in children)
    folded = torch.stack([R.fold_in(k, i) for i in range(64)])
    assert len({tuple(c.tolist()) for c in folded}) == 64
    # domains are separated: fold_in(k, i) is not split(k)[i]
    assert not any(torch.equal(a, b) for a, b in zip(children, folded))
    # fold_in with a tensor of data broadcasts
    assert torch.equal(R.fold_in(k, torch.arange(64)), folded)


def test_bits_stream_depends_on_count_not_layout():
    k = R.key(3)
    # the same number of words gives the same stream whatever the shape
    assert torch.equal(R.bits(k, (2, 3)).flatten(), R.bits(k, (6,)))
    w = R.bits(k, (1000,))
    assert w.dtype == torch.int64 and w.min() >= 0 and w.max() < 2**32
    assert w.max() > 2**31  # the top bit is used


def test_leading_key_dim_equals_vmap_equals_loop():
    keys = R.split(R.key(7), 5)
    for fn in (
        lambda k: R.uniform(k, (3, 2)),
        lambda k: R.normal(k, (4,), dtype=torch.float64),
        lambda k: R.randint(k, 0, 10, (6,)),
        lambda k: R.gumbel(k, (2,)),
    ):
        loop = torch.stack([fn(k) for k in keys])
        assert torch.equal(fn(keys), loop)
        assert torch.equal(torch.func.vmap(fn)(keys), loop)


SAMPLERS = {
    "bits": lambda k: R.bits(k, (5,)),
    "uniform": lambda k: R.uniform(k, (5,)),
    "uniform64": lambda k: R.uniform(k, (3,), dtype=torch.float64, low=-2.0, high=3.0),
    "normal": lambda k: R.normal(k, (5,)),
    "gumbel": lambda k: R.gumbel(k, (5,)),
    "randint": lambda k: R.randint(k, -3, 9, (5,)),
    "bernoulli": lambda k: R.bernoulli(k, 0.3, (5,)),
    "categorical": lambda k: R.categorical(k, torch.tensor([0.1, 2.0, -1.0]), (4,)),
    "permutation": lambda k: R.permutation(k, 6),
    "choice": lambda k: R.choice(k, 10, (3,), replace=False),
    "choice_p": lambda k: R.choice(k, 4, (3,), p=torch.tensor([0.1, 0.2, 0.3, 0.4])),
    "split": lambda k: R.split(k, 3),
    "fold_in": lambda k: R.fold_in(k, 17),
}


# Integer streams are bit-identical everywhere.  Float samplers that apply log/erfinv are
# bit-identical eagerly and under vmap; inductor's vectorised transcendental functions may
# differ in the last ulp, hence the compile tolerance.
FLOAT_SAMPLERS = {"normal", "gumbel", "uniform64"}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_eager_vmap_compile_agree(name):
    keys = R.split(R.key(11), 4)
    ctol = 1e-6 if name in FLOAT_SAMPLERS else 0.0
    check_transforms(SAMPLERS[name], keys, rtol=0.0, atol=0.0, compile_rtol=ctol, compile_atol=ctol)


def test_tensor_hyperparameters_vmap():
    keys = R.split(R.key(1), 3)
    highs = torch.tensor([1, 5, 100])
    ps = torch.tensor([0.0, 0.5, 1.0])
    out = check_transforms(lambda k, h: R.randint(k, 0, h, (200,)), keys, highs, compile=False)
    assert (out[0] == 0).all() and out[1].max() <= 4 and out[2].max() > 50
    b = check_transforms(lambda k, p: R.bernoulli(k, p, (200,)), keys, ps, compile=False)
    assert not b[0].any() and b[2].all()


# ---- statistics: deterministic keys, thresholds at ~1e-6 false-alarm rates -----------

CHI2_999 = {9: 27.88, 4: 18.47, 5: 20.52}  # 99.9% quantiles


def chi2(counts: torch.Tensor, expected: torch.Tensor) -> float:
    return float(((counts.double() - expected) ** 2 / expected).sum())


def test_uniform_moments_and_bins():
    u = R.uniform(R.key(0), (200_000,))
    assert u.min() >= 0 and u.max() < 1
    assert abs(float(u.mean()) - 0.5) < 0.004
    assert abs(float(u.var()) - 1 / 12) < 0.002
    counts = torch.bincount((u * 10).long(), minlength=10)
    assert chi2(counts, torch.full((10,), 20_000.0)) < CHI2_999[9]


def test_uniform_float64_uses_53_bits():
    u = R.uniform(R.key(1), (10_000,), dtype=torch.float64)
    assert u.dtype == torch.float64
    frac = (u * 2.0**32) - torch.floor(u * 2.0**32)
    assert (frac != 0).float().mean() > 0.99  # more than 32 bits of mantissa in use


def test_normal_moments():
    x = R.normal(R.key(2), (200_000,))
    assert abs(float(x.mean())) < 0.01
    assert abs(float(x.std()) - 1) < 0.01
    assert abs(float((x**4).mean()) - 3) < 0.06  # kurtosis of a Gaussian
    assert torch.isfinite(x).all()


def test_gumbel_mean():
    g = R.gumbel(R.key(3), (200_000,))
    assert abs(float(g.mean()) - 0.5772156649) < 0.01
    assert abs(float(g.var()) - math.pi**2 / 6) < 0.03


def test_randint_uniform_over_range():
    x = R.randint(R.key(4), 3, 8, (100_000,))
    assert x.min() == 3 and x.max() == 7
    counts = torch.bincount(x - 3, minlength=5)
    assert chi2(counts, torch.full((5,), 20_000.0)) < CHI2_999[4]


def test_bernoulli_rate():
    b = R.bernoulli(R.key(5), 0.3, (100_000,))
    assert b.dtype == torch.bool
    assert abs(float(b.float().mean()) - 0.3) < 0.006


def test_categorical_matches_softmax():
    logits = torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5])
    x = R.categorical(R.key(6), logits, (100_000,))
    expected = torch.softmax(logits.double(), 0) * 100_000
    assert chi2(torch.bincount(x, minlength=5), expected) < CHI2_999[4]
    masked = R.categorical(R.key(6), torch.tensor([0.0, float("-inf"), 0.0]), (1000,))
    assert not (masked == 1).any()


def test_categorical_batched_logits_and_dim():
    logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    assert R.categorical(R.key(0), logits).tolist() == [0, 1]
    assert R.categorical(R.key(0), logits.T, dim=0).tolist() == [0, 1]


def test_permutation_is_uniform():
    n = 5
    perms = R.permutation(R.split(R.key(7), 20_000), n)
    assert (perms.sort(-1).values == torch.arange(n)).all()
    first = torch.bincount(perms[:, 0], minlength=n)
    assert chi2(first, torch.full((n,), 4000.0)) < CHI2_999[4]
    x = torch.arange(10.0) * 2
    px = R.permutation(R.key(0), x)
    assert sorted(px.tolist()) == x.tolist()


def test_choice_variants():
    k = R.key(8)
    assert len(set(R.choice(k, 10, (10,), replace=False).tolist())) == 10
    p = torch.tensor([0.0, 0.0, 1.0])
    assert (R.choice(k, 3, (50,), p=p) == 2).all()
    assert sorted(
        R.choice(k, 3, (2,), replace=False, p=torch.tensor([0.5, 0.5, 0.0])).tolist()
    ) == [0, 1]
    a = torch.tensor([10.0, 20.0, 30.0])
    assert set(R.choice(k, a, (20,)).tolist()) <= {10.0, 20.0, 30.0}


def test_split_children_uncorrelated():
    children = R.split(R.key(9), 8)
    streams = R.uniform(children, (20_000,))
    corr = torch.corrcoef(streams)
    off = corr - torch.eye(8)
    assert off.abs().max() < 0.04  # |r| < 4/sqrt(n) for independent streams
    # a child's stream is also uncorrelated with its parent's
    parent = R.uniform(R.key(9), (20_000,))
    assert abs(float(torch.corrcoef(torch.stack([parent, streams[0]]))[0, 1])) < 0.04


@given(fst.keys(), fst.shapes(max_dims=3))
def test_uniform_range_and_shape_property(key, shape):
    u = R.uniform(key, shape)
    assert u.shape == shape and u.dtype == torch.float32
    assert ((u >= 0) & (u < 1)).all()


@given(fst.keys(), st.integers(1, 50))
def test_split_shape_property(key, num):
    assert R.split(key, num).shape == (num, 2)
    assert R.split(R.split(key, 3), num).shape == (3, num, 2)


# ---- bad input -------------------------------------------------------------------------


def test_not_a_key_errors_name_the_argument():
    with pytest.raises(TypeError, match="key must be a funrl key"):
        R.uniform(torch.zeros(2), (3,))
    with pytest.raises(TypeError, match=r"shape \(3,\)"):
        R.normal(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="got list"):
        R.split([0, 1])  # type: ignore[arg-type]


def test_bad_arguments():
    k = R.key(0)
    with pytest.raises(ValueError, match="num must be a positive int"):
        R.split(k, 0)
    with pytest.raises(ValueError, match="non-negative"):
        R.uniform(k, (-1,))
    with pytest.raises(TypeError, match="floating-point dtype"):
        R.uniform(k, (2,), dtype=torch.int32)
    with pytest.raises(TypeError, match="logits must be a floating-point"):
        R.categorical(k, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="without replacement"):
        R.choice(k, 3, (4,), replace=False)
    with pytest.raises(ValueError, match="p must have 3 entries"):
        R.choice(k, 3, (2,), p=torch.tensor([0.5, 0.5]))
    with pytest.raises(TypeError, match="seed must be"):
        R.key(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data must be an integer"):
        R.fold_in(k, torch.tensor(1.0))


# ---- the int32 Threefry, unrolled small blocks and fast paths: same numbers everywhere ----

_ROT = (13, 15, 26, 6, 17, 29, 16, 24)


def _threefry_reference(k0: int, k1: int, x0: int, x1: int) -> tuple[int, int]:
    """Threefry-2x32-20 on Python ints, straight from the Random123 specification."""
    m = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & m

    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0, x1 = (x0 + k0) & m, (x1 + k1) & m
    for block in range(5):
        for r in range(4):
            x0 = (x0 + x1) & m
            x1 = rotl(x1, _ROT[(block % 2) * 4 + r]) ^ x0
        s = block + 1
        x0, x1 = (x0 + ks[s % 3]) & m, (x1 + ks[(s + 1) % 3] + s) & m
    return x0, x1


def _threefry_inputs(n: int) -> torch.Tensor:
    """``[n, 4]`` words: the sign-bit edge cases first, then seeded random words."""
    edges = [0, 1, 2**31 - 1, 2**31, 2**32 - 1]
    fixed = torch.tensor([[a, b, a, b] for a in edges for b in edges], dtype=torch.int64)
    rand = torch.randint(0, 2**32, (n, 4), generator=torch.Generator().manual_seed(0))
    return torch.cat([fixed, rand])[:n]


def test_threefry_matches_python_reference_including_sign_bit_words():
    ins = _threefry_inputs(300)
    y0, y1 = R.threefry2x32(*ins.unbind(-1))
    expected = [_threefry_reference(*row) for row in ins.tolist()]
    assert torch.stack([y0, y1], -1).tolist() == [list(e) for e in expected]
    assert y0.dtype == torch.int64 and int(y0.min()) >= 0 and int(y1.max()) < 2**32


@pytest.mark.parametrize("n", [7, 4099])  # only a scalar tail; vectorised body + tail
def test_compiled_threefry_is_bit_exact(n):
    # int32 adds wrap in the generated C++ exactly as eagerly (no signed-overflow surprise)
    ins = _threefry_inputs(n)
    expected = torch.stack(R.threefry2x32(*ins.unbind(-1)), -1)
    got = torch.stack(funrl.compile(R.threefry2x32)(*ins.unbind(-1)), -1)
    assert torch.equal(got, expected)
    rows = [0, n // 2, n - 1]
    assert got[rows].tolist() == [list(_threefry_reference(*ins[i].tolist())) for i in rows]


def test_pinned_values():
    # Changing any of these changes every seeded run (PPO, DQN, ...): do it on purpose only.
    assert R.split(R.key(0), 3).tolist() == [
        [1351547692, 3235790642],
        [2473972575, 935721516],
        [1390163619, 3131650755],
    ]
    assert R.uniform(R.key(0), (4,)).tolist() == [
        0.4184570908546448,
        0.21629542112350464,
        0.6004990339279175,
        0.8041241765022278,
    ]
    assert R.randint(R.key(5), 0, 2, (8,)).tolist() == [0, 1, 1, 0, 0, 0, 0, 1]


@pytest.mark.parametrize(("low", "high"), [(0, 1), (0, 2), (-3, 5), (7, 7 + 2**20), (0, 2**32)])
def test_randint_power_of_two_shortcut_equals_remainder(low, high):
    keys = R.split(R.key(8), 3)
    fast = R.randint(keys, low, high, (500,))
    slow = R.randint(keys, torch.tensor(low), torch.tensor(high), (500,))  # tensor bounds
    assert torch.equal(fast, slow)
    assert int(fast.min()) >= low and int(fast.max()) < high


@pytest.mark.parametrize("num", [1, 2, 3, 4, 5, 9])  # unrolled (<= 4) and broadcast blocks
def test_split_keys_equals_unbound_split(num):
    for k in (R.key(3), R.split(R.key(4), 5)):
        got = R._split_keys(k, num)
        assert len(got) == num
        assert all(torch.equal(a, b) for a, b in zip(got, R.split(k, num).unbind(-2)))


@pytest.mark.parametrize("n", [7, 4099])
def test_compiled_vmapped_small_blocks_are_bit_exact(n):
    # the shapes an env step draws: per-member keys, unrolled 1- and 2-counter blocks
    def f(k):
        _, k_reset = R._split_keys(k, 2)  # the first child is dead code when compiled
        return R.split(k, 3), k_reset, R.randint(k, 0, 2), R.bits(k, (3,))

    keys = R.split(R.key(11), n)
    expected = torch.func.vmap(f)(keys)
    got = funrl.compile(torch.func.vmap(f))(keys)
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert torch.equal(expected[0][5], R.split(keys[5], 3))  # vmap == alone


# ---- Threefry as one dispatcher op under torch.compile ----------------------------------


def _dynamo_graphs(fn, *args):
    """Compile ``fn`` with a backend that records dynamo's graphs and runs them as traced."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    out = torch.compile(fn, backend=backend, fullgraph=True)(*args)
    return out, graphs


def _op_calls(gm):
    op = torch.ops.funrl.threefry2x32_i32.default
    return sum(n.op == "call_function" and n.target == op for n in gm.graph.nodes)


def test_compiled_hashes_are_one_op_each():
    def f(k):
        return R.split(k, 3), R.fold_in(k, 5), R.normal(k, (6,)), R.bits(k, (100,))

    k = R.key(9)
    out, graphs = _dynamo_graphs(f, k)
    assert len(graphs) == 1
    # split: 3 unrolled counters; fold_in: 1; normal: 3 unrolled; bits(100): one broadcast hash
    assert _op_calls(graphs[0]) == 3 + 1 + 3 + 1
    # ~130 int ops per hash would otherwise be traced: 8 hashes stay far below one's worth
    assert len(graphs[0].graph.nodes) < 130
    assert all(torch.equal(a, b) for a, b in zip(out, f(k)))


@pytest.mark.parametrize("randomness", ["error", "different"])
def test_compiled_op_under_vmap_and_grad_matches_eager(randomness):
    def sample(k):
        return R.split(k, 2), R.bits(k, (9,))

    keys = R.split(R.key(4), 3)
    v = torch.func.vmap(sample, randomness=randomness)
    out, graphs = _dynamo_graphs(v, keys)
    assert _op_calls(graphs[0]) >= 2  # the op runs batched (FuncTorchBatchedDecomposition)
    assert all(torch.equal(a, b) for a, b in zip(out, v(keys)))

    def loss(w, k):  # noise from a key inside a differentiated, vmapped function
        return (w * R.normal(k, (4,))).sum()

    g = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0), randomness=randomness)
    w = torch.ones(4)
    out, graphs = _dynamo_graphs(g, w, keys)
    assert _op_calls(graphs[0]) >= 1
    assert torch.equal(out, torch.stack([R.normal(k, (4,)) for k in keys]))


def test_compiled_op_decomposes_bit_exactly_through_aot_autograd():
    keys = R.split(R.key(12), 5)

    def f(k):
        return R.split(k, 3), R.bits(k, (7,)), R.fold_in(k, torch.arange(5))

    got = torch.compile(f, backend="aot_eager", fullgraph=True)(keys)
    assert all(torch.equal(a, b) for a, b in zip(got, f(keys)))


def test_export_traces_plain_aten_ops():
    # exported programs must load without funrl: the op stays out of them
    class Sampler(torch.nn.Module):
        def forward(self, k):
            return R.split(k, 3), R.bits(k, (5,))

    k = R.key(6)
    ep = torch.export.export(Sampler(), (k,))
    assert "funrl" not in str(ep.graph)
    assert all(torch.equal(a, b) for a, b in zip(ep.module()(k), Sampler()(k)))


def test_op_is_registered_once():
    assert R._define_threefry_op() is None  # already registered by the import
    assert R._threefry_op is torch.ops.funrl.threefry2x32_i32.default


def _i32(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-(2**31), 2**31, shape, dtype=torch.int32, generator=g)


def test_eager_host_hash_equals_tensor_rounds_plain_and_broadcast():
    # the numpy path must give the tensor ops' bits, sign-bit words, 0-d and strides included
    cases = [
        (_i32(5, seed=1), _i32(5, seed=2), _i32(5, seed=3), _i32(5, seed=4)),
        (_i32(seed=1), _i32(seed=2), _i32(seed=3), _i32(seed=4)),  # 0-d
        (_i32(3, 1, seed=1), _i32(1, 4, seed=2), _i32(4, seed=3), _i32(seed=4)),
        (_i32(4, 6, seed=1).t(), _i32(6, 8, seed=2)[:, ::2], _i32(1, seed=3).expand(6, 4),
         _i32(4, seed=4)),
    ]  # fmt: skip
    for ins in cases:
        got = R._host_threefry(ins)
        assert got is not None
        want = R._threefry_rounds(*ins)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == torch.int32 and g.shape == w.shape and torch.equal(g, w)


def test_eager_host_hash_under_nested_vmap_with_unbatched_inputs():
    # members x envs, keys batched at both levels, counters at neither or one
    k0, k1 = _i32(3, 4, 2, seed=5), _i32(3, 4, 2, seed=6)
    ctr = torch.arange(2, dtype=torch.int32)
    per_env = _i32(4, seed=7)
    taken = []

    def f(a, b, c):
        out = R._host_threefry((a, b, ctr, c))
        taken.append(out is not None)
        return out

    def g(a, b, c):
        return R._threefry_rounds(a, b, ctr, c)

    for inner in (0, 1):  # a batch dim that is not the leading one
        args = (k0.movedim(1, inner + 1), k1.movedim(1, inner + 1))
        got = torch.vmap(torch.vmap(f, in_dims=(inner, inner, 0)), in_dims=(0, 0, None))(
            *args, per_env
        )
        want = torch.vmap(torch.vmap(g, in_dims=(inner, inner, 0)), in_dims=(0, 0, None))(
            *args, per_env
        )
        assert all(torch.equal(x, y) for x, y in zip(got, want, strict=True))
    assert taken == [True, True]


def test_eager_host_hash_steps_aside_for_tracers_and_other_tensors():
    k = R.key(3)
    gm = torch.fx.experimental.proxy_tensor.make_fx(lambda k: R.split(k, 2))(k)
    assert len(gm.graph.nodes) > 50  # the rounds are in the graph, not baked in
    assert torch.equal(gm(R.key(4)), R.split(R.key(4), 2))
    with torch._subclasses.FakeTensorMode():
        assert R._host_threefry((_i32(2),) * 4) is None
    assert R._host_threefry((_i32(2, 2).to("meta"),) * 4) is None


def test_eager_python_hash_equals_the_array_paths():
    # small eager hashes run on big Python ints; _PY_BLOCKS = 0 forces the numpy/tensor path
    g = torch.Generator().manual_seed(11)
    cases = []
    for batch in [(), (1,), (3,), (2, 3), (24,), (200,)]:
        k = torch.randint(0, 2**32, (*batch, 2), dtype=torch.int64, generator=g)
        k[..., 0] |= 1 << 31  # high words with the sign bit of int32 set
        cases.append(k)

    def draw(k):
        out = []
        for num in (1, 2, 3, 8):
            out.append(R.split(k, num))
            out.extend(R._split_keys(k, num))
        for shape in [(), (1,), (3,), (2, 3), (5, 1)]:
            out += [R.bits(k, shape), R.uniform(k, shape), R.normal(k, shape, torch.float64)]
        return out

    for k in cases:
        fast = draw(k)
        with unittest.mock.patch.object(R, "_PY_BLOCKS", 0):
            slow = draw(k)
        for a, b in zip(fast, slow, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
            assert a.stride() == b.stride()


def test_eager_python_hash_applies_only_where_it_should():
    k = R.key(5)
    assert R._py_hash(k, 1, 3) is not None
    assert R._py_hash(k, 1, R._PY_BLOCKS + 1) is None  # larger blocks: numpy
    assert R._py_hash(R.split(k, 30), 1, 1) is not None
    assert R._py_hash(R.split(k, R._PY_BLOCKS + 1), 1, 1) is None
    assert R._py_hash(k.to("meta"), 1, 2) is None
    with torch._subclasses.FakeTensorMode():
        assert R._py_hash(torch.zeros(2, dtype=torch.int64), 1, 2) is None
    seen = []
    torch.vmap(lambda kk: seen.append(R._py_hash(kk, 1, 2)) or kk)(R.split(k, 3))
    assert seen == [None]  # vmapped keys are wrapped: the array path handles levels
    gm = torch.fx.experimental.proxy_tensor.make_fx(lambda kk: R.split(kk, 2))(k)
    assert torch.equal(gm(R.key(9)), R.split(R.key(9), 2))  # traced, not baked in

    def inside_grad(x):  # a plain key's views are wrapped under torch.func.grad
        seen.append(R._py_hash(k, 1, 2))
        return (x * R.normal(k, (3,))).sum()

    g = torch.func.grad(inside_grad)(torch.ones(3))
    assert seen[-1] is None and torch.equal(g, R.normal(k, (3,)))


@pytest.mark.parametrize("n", [1, 2, 63, 1024])
def test_swar_rounds_equal_the_tensor_rounds(n):
    # every lane an independent block: carries and shifted-out bits stay in their lane
    ins = tuple(_i32(n, seed=s) for s in range(4))
    ins = (*ins[:3], torch.full((n,), -1, dtype=torch.int32))  # all-ones words: max carries
    want = R._threefry_rounds(*ins)
    got = R._swar_rounds(*(t.numpy().view(np.uint32) for t in ins))
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.uint32 and torch.equal(torch.from_numpy(g.view(np.int32)), w)
