"""Explicit, splittable random keys: Threefry-2x32 (20 rounds) in plain tensor ops.

A key is an ``int64`` tensor of shape ``[..., 2]`` holding two unsigned 32-bit words.
Every sampler takes ``key`` first and is a pure function of it: the same key gives the
same numbers eagerly, under ``torch.func.vmap`` (with the default
``randomness="error"``) and under ``torch.compile``, on any device.  Integer outputs
(``bits``, ``split``, ``randint``, ``permutation``, ...) are bit-identical everywhere;
float samplers that apply ``log``/``erfinv`` (``normal``, ``gumbel``) may differ in the
last ulp under ``torch.compile``, whose vectorised math kernels round differently.  There
is no global RNG anywhere in funrl.

Batches of keys work two ways: ``vmap`` over a ``[N, 2]`` key tensor, or pass the
``[N, 2]`` tensor directly and get a leading ``N`` dimension on the output.  Member ``i``
gets bit-for-bit the numbers ``keys[i]`` gives alone.

Streams are domain-separated: ``bits``/samplers, ``split`` and ``fold_in`` hash
different counter blocks of the same key, so a key and its children never share numbers.

Speed: the cipher runs on int32 words (additions wrap modulo ``2**32``; the logical
right shift of a rotation is an arithmetic shift and a mask), twice as many SIMD lanes as
int64.  Under ``torch.compile``, blocks of up to ``_UNROLL`` counters (``split(key, 3)``,
a key's first 8 words) are unrolled into one hash per counter over the key batch's own
shape, which keeps compiled, vmapped code contiguous and vectorised.  Keys and outputs
are unchanged: int64 words in ``[0, 2**32)``, the same numbers as Random123.

Eagerly on the CPU, the rounds run in numpy on the same uint32 words (vmap levels
unwrapped and rewrapped around it): a hash is ~130 tiny ops, each a few microseconds of
torch dispatch, and numpy's per-op cost is lower (eager PPO CartPole 4.8k -> 7.4k
env-steps/s, benchmarks/bench_eager.py), and a hash of at most ``_PY_BLOCKS`` blocks of a
plain key (``split(key, 3)``, a few draws) runs on big Python integers, every 32-bit
word a 64-bit lane of one integer, all blocks at once (``split(key, 3)`` 135 -> 30 us,
``split(key, 16)`` 134 -> 32 us).  Tracers, fake tensors, autograd wrappers and
other devices get the tensor ops.

Compile time: while ``torch.compile`` traces, each hash is one dispatcher op,
``funrl::threefry2x32_i32`` (registered on import), so dynamo records one node per hash
instead of ~130 and skips interpreting the rounds; AOTAutograd decomposes the op back
into the same int32 ops (``CompositeImplicitAutograd``; ``vmap`` decomposes it too), so
inductor's code and the numbers are unchanged.  ``torch.export`` and eager code never
see the op: exported programs hold only aten ops.

Example::

    >>> import funrl.random as R
    >>> k = R.key(0)
    >>> k1, k2 = R.split(k)
    >>> x = R.normal(k1, (3,))
    >>> x.shape
    torch.Size([3])
    >>> bool((R.normal(k1, (3,)) == x).all())
    True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "bernoulli",
    "bits",
    "categorical",
    "check_key",
    "choice",
    "fold_in",
    "gumbel",
    "is_key",
    "key",
    "normal",
    "permutation",
    "randint",
    "split",
    "threefry2x32",
    "uniform",
]

_MASK = 0xFFFFFFFF
_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
_PARITY = 0x1BD11BDA
# Counter domains (the first counter word) keep sampler, split and fold_in streams apart.
_DOMAIN_BITS, _DOMAIN_SPLIT, _DOMAIN_FOLD = 0, 1, 2
# Hash blocks of up to this many counters are unrolled (see _hash_words).
_UNROLL = 4

Shape = int | Sequence[int] | torch.Size


def _rotl32(x: torch.Tensor, r: int) -> torch.Tensor:
    """Rotate int32 words left by ``r``: ``>>`` is arithmetic, so mask the sign-extended bits."""
    return (x << r) | ((x >> (32 - r)) & ((1 << r) - 1))


def _to_i32(x: torch.Tensor) -> torch.Tensor:
    """Words in ``[0, 2**32)`` (int64) to int32 with the same 32 bits (two's complement)."""
    return x.to(torch.int32)


def _to_u32(x: torch.Tensor) -> torch.Tensor:
    """int32 words back to int64 values in ``[0, 2**32)``."""
    return x.to(torch.int64) & _MASK


def _threefry_rounds(
    k0: torch.Tensor, k1: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Threefry-2x32-20 on int32 words (any broadcastable shapes), in plain tensor ops.

    Addition wraps modulo ``2**32`` (two's complement; no masking needed), so each round
    is 6 int32 ops that vectorise twice as wide as int64 ones.
    """
    k2 = k0 ^ k1 ^ _PARITY
    ks = (k0, k1, k2)
    x0 = x0 + k0
    x1 = x1 + k1
    for block in range(5):  # 5 blocks of 4 rounds, key injection after each
        for r in range(4):
            x0 = x0 + x1
            x1 = _rotl32(x1, _ROTATIONS[(block % 2) * 4 + r]) ^ x0
        s = block + 1
        x0 = x0 + ks[s % 3]
        x1 = x1 + (ks[(s + 1) % 3] + s)
    return x0, x1


def _threefry_op_impl(
    k0: torch.Tensor, k1: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(_threefry_rounds(k0, k1, x0, x1))  # type: ignore[return-value]


def _define_threefry_op() -> torch.library.Library | None:
    """Register ``funrl::threefry2x32_i32`` once (a re-import reuses the registered op).

    ``CompositeImplicitAutograd``: wherever the op is not traced as a whole it runs
    :func:`_threefry_rounds` (autograd, fake tensors, AOTAutograd's decomposition before
    inductor); ``FuncTorchBatchedDecomposition``: under ``vmap`` it decomposes the same way
    (instead of functorch's per-example fallback).  The returned library keeps the
    registration alive; ``None`` when an earlier import registered it.
    """
    if hasattr(torch.ops.funrl, _OP_NAME):
        return None
    lib = torch.library.Library("funrl", "FRAGMENT")
    lib.define(f"{_OP_NAME}(Tensor k0, Tensor k1, Tensor x0, Tensor x1) -> (Tensor, Tensor)")
    for dispatch_key in ("CompositeImplicitAutograd", "FuncTorchBatchedDecomposition"):
        lib.impl(_OP_NAME, _threefry_op_impl, dispatch_key)
    return lib


_OP_NAME = "threefry2x32_i32"
_LIBRARY = globals().get("_LIBRARY") or _define_threefry_op()
_threefry_op = getattr(torch.ops.funrl, _OP_NAME).default


def _numpy_rounds(
    k0: np.ndarray, k1: np.ndarray, x0: np.ndarray, x1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_threefry_rounds` on uint32 numpy arrays (broadcast; fresh outputs)."""
    k0, k1, x0, x1 = np.broadcast_arrays(k0, k1, x0, x1)
    if 0 < k0.size <= _PY_BLOCKS:  # small: all blocks at once on Python integers
        return _swar_rounds(k0, k1, x0, x1)
    shape = k0.shape
    if not shape:  # numpy scalars would warn on the wrapping additions
        k0, k1, x0, x1 = (a.reshape(1) for a in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(_PARITY))
    x0 = x0 + k0
    x1 = x1 + k1
    for block in range(5):
        for r in range(4):
            x0 += x1
            rot = _ROTATIONS[(block % 2) * 4 + r]
            x1 = ((x1 << _U32[rot]) | (x1 >> _U32[32 - rot])) ^ x0
        s = block + 1
        x0 += ks[s % 3]
        x1 += ks[(s + 1) % 3] + _U32[s]
    return x0.reshape(shape), x1.reshape(shape)


_U32 = [np.uint32(i) for i in range(33)]
_F = torch._C._functorch


def _plain_cpu(t: torch.Tensor) -> bool:
    return (
        type(t) is torch.Tensor and t.device.type == "cpu" and not _F.is_functorch_wrapped_tensor(t)
    )


def _host_threefry(
    ts: tuple[torch.Tensor, ...],
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The eager hash of int32 CPU tensors in numpy, ``None`` where it does not apply.

    Eagerly every tensor op is a dispatch of a few microseconds whatever its size, and a
    hash is ~130 of them; numpy does the same uint32 arithmetic (wrapping modulo
    ``2**32``, hence the same bits) at a lower cost per op.  ``vmap``-ed inputs (any nesting) are unwrapped level by level,
    each level's batch dim moved to the front and the logical dims right-aligned, and the
    outputs wrapped back at the same levels.  Anything else (other devices, autograd or
    functionalize wrappers, tensor subclasses such as fake tensors, an active dispatch
    mode such as ``make_fx``'s tracer) returns ``None``.
    """
    if torch._C._len_torch_dispatch_stack():  # a tracer or mode must see every op
        return None
    levels: list[int] = []
    cur = list(ts)
    while True:
        lv = [_F.maybe_get_level(t) if _F.is_batchedtensor(t) else -1 for t in cur]
        top = max(lv)
        if top < 0:
            break
        ndim = max(t.dim() for t in cur)  # logical dims at this level
        nxt = []
        for t, level in zip(cur, lv, strict=True):
            if level == top:
                x, bdim = _F._unwrap_batched(t, top)
                x = x.movedim(bdim or 0, 0)  # batched at this level: bdim is an int
                x = x.reshape((x.shape[0],) + (1,) * (ndim - t.dim()) + tuple(x.shape[1:]))
            else:
                x = t.reshape((1,) * (ndim + 1 - t.dim()) + tuple(t.shape))
            nxt.append(x)
        levels.append(top)
        cur = nxt
    if not all(_plain_cpu(t) for t in cur):
        return None
    y0, y1 = _numpy_rounds(*(t.numpy().view(np.uint32) for t in cur))
    out = torch.from_numpy(y0.view(np.int32)), torch.from_numpy(y1.view(np.int32))
    for level in reversed(levels):
        out = _F._add_batch_dim(out[0], 0, level), _F._add_batch_dim(out[1], 0, level)
    return out


#: Eagerly, a hash of at most this many blocks runs on Python integers holding every block
#: at once (:func:`_swar_threefry`): ~8 us for one block, ~12 us for 32, ~40 us for 200,
#: against numpy's ~80 us per call up to ~256 blocks (1 thread).  Larger ones use numpy.
_PY_BLOCKS = 256


@functools.lru_cache(maxsize=64)
def _lanes(n: int) -> tuple[int, int]:
    """``(mask, one)`` for ``n`` 64-bit lanes: ``2**32 - 1`` and ``1`` in every lane."""
    lane = 1 << 64
    one = sum(lane**i for i in range(n))
    return _MASK * one, one


def _swar_threefry(k0: int, k1: int, x0: int, x1: int, n: int) -> tuple[int, int]:
    """:func:`_threefry_rounds` on ``n`` blocks at once, each word a 64-bit lane of a
    Python integer holding a value in ``[0, 2**32)`` (SIMD within a register).

    A lane's carry and the bits a shift moves out of it land in a lane's upper half,
    which the mask clears after every addition and rotation, so each lane computes
    exactly the 32-bit cipher; a few hundred big-integer operations replace a few
    hundred numpy dispatches or ``200 * n`` small-integer ones.
    """
    m, one = _lanes(n)
    k2 = k0 ^ k1 ^ (_PARITY * one)
    x0 = (x0 + k0) & m
    x1 = (x1 + k1) & m
    for rots, i0, i1, s in (
        (_ROTATIONS[:4], k1, k2, 1),
        (_ROTATIONS[4:], k2, k0, 2),
        (_ROTATIONS[:4], k0, k1, 3),
        (_ROTATIONS[4:], k1, k2, 4),
        (_ROTATIONS[:4], k2, k0, 5),
    ):  # 5 blocks of 4 rounds, key injection after each
        for r in rots:
            x0 = (x0 + x1) & m
            x1 = (((x1 << r) & m) | ((x1 >> (32 - r)) & m)) ^ x0
        x0 = (x0 + i0) & m
        x1 = (x1 + i1 + s * one) & m
    return x0, x1


def _pack(a: np.ndarray) -> int:
    """Unsigned words (any integer dtype, values in ``[0, 2**32)``) as 64-bit lanes."""
    return int.from_bytes(a.astype("<u8").tobytes(), "little")


def _unpack(x: int, n: int) -> np.ndarray:
    """The ``n`` lanes of :func:`_pack`'s layout as a fresh, writable uint64 array."""
    return np.frombuffer(x.to_bytes(8 * n, "little"), dtype="<u8").copy()


def _swar_rounds(
    k0: np.ndarray, k1: np.ndarray, x0: np.ndarray, x1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_swar_threefry` on equal-shaped uint32 arrays; uint32 outputs, same shape."""
    n = k0.size
    y0, y1 = _swar_threefry(_pack(k0.ravel()), _pack(k1.ravel()), _pack(x0.ravel()),
                            _pack(x1.ravel()), n)  # fmt: skip
    return (
        _unpack(y0, n).astype(np.uint32).reshape(k0.shape),
        _unpack(y1, n).astype(np.uint32).reshape(k0.shape),
    )


def _py_hash(k: torch.Tensor, domain: int, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Eagerly, for a plain CPU key batch of at most :data:`_PY_BLOCKS` blocks: the hash of
    counters ``(domain, 0..count-1)`` under each key as two uint32 arrays ``[keys, count]``
    (keys in row-major order); ``None`` where it does not apply (see
    :func:`_host_threefry`: traced, compiled, wrapped, other devices, larger batches).

    The bits are the tensor rounds' (wrapping modulo ``2**32``; a key word outside
    ``[0, 2**32)`` counts by its low 32 bits, as in int32), at a fraction of the eager
    cost of ~130 tensor ops plus the conversions around them.
    """
    if (
        not 0 < k.numel() // 2 * count <= _PY_BLOCKS
        or torch.compiler.is_compiling()
        or torch._C._len_torch_dispatch_stack()
    ):
        return None
    rows = k.reshape(-1, 2)
    if not _plain_cpu(rows):  # under torch.func.grad even a plain key's view is wrapped
        return None
    kk = rows.numpy().astype(np.uint32)  # the low 32 bits of each word
    shape = (kk.shape[0], count)
    return _swar_rounds(
        np.broadcast_to(kk[:, :1], shape),
        np.broadcast_to(kk[:, 1:], shape),
        np.full(shape, domain, dtype=np.uint32),
        np.broadcast_to(np.arange(count, dtype=np.uint32), shape),
    )


def _py_keys(k: torch.Tensor, num: int) -> torch.Tensor | None:
    """:func:`split`'s ``[*key_batch, num, 2]`` keys through :func:`_py_hash`, or ``None``."""
    ys = _py_hash(k, _DOMAIN_SPLIT, num)
    if ys is None:
        return None
    keys = torch.from_numpy(np.stack(ys, axis=-1).astype(np.int64))
    return keys.reshape(*k.shape[:-1], num, 2)


def _threefry_i32(
    k0: torch.Tensor, k1: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Threefry-2x32-20 on int32 words: :func:`_threefry_rounds`, one op under compile.

    While ``torch.compile`` traces (and not ``torch.export``, whose programs must hold
    only aten ops), the hash is the single dispatcher op ``funrl::threefry2x32_i32``:
    dynamo records one node instead of ~130 and skips interpreting the rounds' bytecode;
    AOTAutograd decomposes it back into the same int32 ops, so inductor compiles the
    same graph and the numbers are bit-identical.  Eagerly on the CPU the rounds run in
    numpy (:func:`_host_threefry`, same bits, cheaper per op); elsewhere
    the tensor ops run directly.
    """
    if torch.compiler.is_compiling():
        if torch.compiler.is_exporting():
            return _threefry_rounds(k0, k1, x0, x1)
        return _threefry_op(k0, k1, x0, x1)  # type: ignore[no-any-return]
    out = _host_threefry((k0, k1, x0, x1))
    return out if out is not None else _threefry_rounds(k0, k1, x0, x1)


def threefry2x32(
    k0: torch.Tensor, k1: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Threefry-2x32-20 block cipher (Random123), elementwise with broadcasting.

    All four inputs are int64 tensors holding values in ``[0, 2**32)``; returns the two
    output words, same convention.  Matches Random123's known-answer vectors.  Computed
    in int32 (wrapping addition), converted at the boundary.
    """
    y0, y1 = _threefry_i32(_to_i32(k0), _to_i32(k1), _to_i32(x0), _to_i32(x1))
    return _to_u32(y0), _to_u32(y1)


def _shape(shape: Shape) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    out = tuple(int(s) for s in shape)
    if any(s < 0 for s in out):
        raise ValueError(f"shape must have non-negative sizes, got {out}")
    return out


def is_key(x: object) -> bool:
    """True for an int64 tensor shaped ``[..., 2]`` (a key or a batch of keys)."""
    return (
        isinstance(x, torch.Tensor) and x.dtype == torch.int64 and x.ndim >= 1 and x.shape[-1] == 2
    )


def check_key(k: object, name: str = "key") -> torch.Tensor:
    """``k`` itself if it is a funrl key (or a batch of keys), else ``TypeError`` naming
    ``name`` and what was given.  For entry-point checks of functions that take a key.

    >>> check_key(key(0)).shape
    torch.Size([2])
    """
    if not is_key(k):
        if isinstance(k, torch.Tensor):
            got = f"a {k.dtype} tensor of shape {tuple(k.shape)}"
        else:
            got = type(k).__name__
        raise TypeError(
            f"{name} must be a funrl key (int64 tensor of shape [..., 2] from funrl.random.key),"
            f" got {got}"
        )
    return k  # type: ignore[return-value]


def key(seed: int | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """A key from an integer seed (Python int or integer tensor of any shape).

    ``key(s)`` has shape ``[2]``; a seed tensor of shape ``S`` gives keys ``[*S, 2]``.
    Seeds are taken modulo ``2**64`` (the two words are the seed's high and low halves).
    """
    if isinstance(seed, torch.Tensor):
        if seed.dtype.is_floating_point or seed.dtype == torch.bool:
            raise TypeError(f"seed must be an integer, got a {seed.dtype} tensor")
        s = seed.to(torch.int64)
        if device is not None:
            s = s.to(device)
        return torch.stack([(s >> 32) & _MASK, s & _MASK], dim=-1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or integer tensor, got {type(seed).__name__}")
    seed %= 2**64
    return torch.tensor([seed >> 32, seed & _MASK], dtype=torch.int64, device=device)


def _hash_words(
    k: torch.Tensor, domain: int, count: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]] | tuple[torch.Tensor, torch.Tensor]:
    """Threefry of counters ``(domain, 0..count-1)`` under key ``k``, as int32 words.

    Under ``torch.compile``, small blocks (``count <= _UNROLL``) are unrolled into one
    hash per counter on the key batch's own shape: two lists of ``count`` tensors shaped
    ``k.shape[:-1]``.  That keeps every intermediate contiguous along the (vmapped) batch,
    so inductor's loops vectorise, and a counter whose words nobody reads is dead code.
    Eagerly (where each op is a dispatch) and for larger blocks a counter axis is
    broadcast instead: two tensors ``[*k.shape[:-1], count]``.  Same numbers either way.
    """
    k0 = _to_i32(k[..., 0])
    k1 = _to_i32(k[..., 1])
    if count <= _UNROLL and torch.compiler.is_compiling():  # eagerly, fewer ops win
        d = torch.tensor(domain, dtype=torch.int32, device=k.device)
        pairs = [
            _threefry_i32(k0, k1, d, torch.tensor(c, dtype=torch.int32, device=k.device))
            for c in range(count)
        ]
        return [y0 for y0, _ in pairs], [y1 for _, y1 in pairs]
    ctr = torch.arange(count, dtype=torch.int32, device=k.device)
    return _threefry_i32(k0[..., None], k1[..., None], torch.full_like(ctr, domain), ctr)


def _hash_block(k: torch.Tensor, domain: int, count: int) -> torch.Tensor:
    """``2 * count`` words from counters ``(domain, 0..count-1)``: shape ``[..., 2*count]``.

    The first ``count`` words are the hashes' first output words, then their second ones.
    """
    y0, y1 = _hash_words(k, domain, count)
    if isinstance(y0, list):
        return _to_u32(torch.stack([*y0, *y1], dim=-1))
    return _to_u32(torch.cat([y0, y1], dim=-1))  # type: ignore[list-item]


def bits(key: torch.Tensor, shape: Shape = ()) -> torch.Tensor:
    """Uniform random 32-bit words as int64 in ``[0, 2**32)``, shape ``[*key_batch, *shape]``."""
    k = check_key(key)
    shape = _shape(shape)
    n = math.prod(shape)
    ys = _py_hash(k, _DOMAIN_BITS, (n + 1) // 2)
    if ys is not None:  # _hash_block's word order: every first word, then every second
        block = torch.from_numpy(np.concatenate(ys, axis=-1).astype(np.int64))
        words = block.reshape(*k.shape[:-1], -1)[..., :n]
    else:
        words = _hash_block(k, _DOMAIN_BITS, (n + 1) // 2)[..., :n]
    return words.reshape(k.shape[:-1] + shape)


def split(key: torch.Tensor, num: int = 2) -> torch.Tensor:
    """``num`` new independent keys, shape ``[*key_batch, num, 2]``.

    Unpack as ``k1, k2 = split(key)`` for a single key.
    """
    k = check_key(key)
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive int, got {num!r}")
    fast = _py_keys(k, num)
    if fast is not None:
        return fast
    y0, y1 = _hash_words(k, _DOMAIN_SPLIT, num)
    if isinstance(y0, list):  # one [..., 2] key per counter, then stacked
        keys = [torch.stack([a, b], dim=-1) for a, b in zip(y0, y1)]
        return _to_u32(torch.stack(keys, dim=-2))
    return _to_u32(torch.stack([y0, y1], dim=-1))  # type: ignore[list-item]


def _split_keys(key: torch.Tensor, num: int) -> tuple[torch.Tensor, ...]:
    """``split(key, num).unbind(-2)`` without the stack: ``num`` keys ``[*key_batch, 2]``.

    Same values as :func:`split`.  Under ``torch.compile`` a child key nobody uses costs
    nothing here (its hash is dead code), whereas unbinding ``split``'s stacked output
    still computes every child.  For library internals such as ``Environment.step``.
    """
    k = check_key(key)
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive int, got {num!r}")
    keys = _py_keys(k, num)
    if keys is not None:
        return keys.unbind(-2)
    y0, y1 = _hash_words(k, _DOMAIN_SPLIT, num)
    if isinstance(y0, list):
        return tuple(_to_u32(torch.stack([a, b], dim=-1)) for a, b in zip(y0, y1))
    return _to_u32(torch.stack([y0, y1], dim=-1)).unbind(-2)  # type: ignore[list-item]


def fold_in(key: torch.Tensor, data: int | torch.Tensor) -> torch.Tensor:
    """A new key that depends on ``key`` and the integer ``data`` (a step, a rank, an id).

    ``data`` may be a Python int or an integer tensor broadcastable with the key batch.
    """
    k = check_key(key)
    d = torch.as_tensor(data, device=k.device)
    if d.dtype.is_floating_point or d.dtype == torch.bool:
        raise TypeError(f"data must be an integer, got dtype {d.dtype}")
    d = _to_i32(d.to(torch.int64))  # the low 32 bits
    y0, y1 = _threefry_i32(
        _to_i32(k[..., 0]), _to_i32(k[..., 1]), torch.full_like(d, _DOMAIN_FOLD), d
    )
    return _to_u32(torch.stack([y0, y1], dim=-1))


def _float_dtype(dtype: torch.dtype) -> torch.dtype:
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    return dtype


def _unit(key: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Uniform in ``[0, 1)`` with a full mantissa: 24 bits (<= float32) or 53 bits (float64)."""
    if dtype == torch.float64:
        w = bits(key, (*shape, 2))
        hi = (w[..., 0] >> 5).to(torch.float64)  # 27 bits
        lo = (w[..., 1] >> 6).to(torch.float64)  # 26 bits
        return (hi * 67108864.0 + lo) * (1.0 / 9007199254740992.0)
    w = bits(key, shape)
    return ((w >> 8).to(torch.float32) * (1.0 / 16777216.0)).to(dtype)


def uniform(
    key: torch.Tensor,
    shape: Shape = (),
    dtype: torch.dtype = torch.float32,
    low: float | torch.Tensor = 0.0,
    high: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """Uniform floats in ``[low, high)``, shape ``[*key_batch, *shape]``.

    ``low``/``high`` may be tensors broadcastable to the output (vmappable bounds).
    """
    u = _unit(key, _shape(shape), _float_dtype(dtype))
    return low + u * (torch.as_tensor(high, dtype=dtype) - low)


def normal(
    key: torch.Tensor, shape: Shape = (), dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Standard normal floats, ``sqrt(2) * erfinv(u)`` with ``u`` uniform in ``(-1, 1)``."""
    _float_dtype(dtype)
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    u = 2.0 * _unit(key, _shape(shape), compute) - 1.0
    lo = -1.0 + torch.finfo(compute).eps
    return (math.sqrt(2.0) * torch.erfinv(torch.clamp(u, min=lo))).to(dtype)


def gumbel(
    key: torch.Tensor, shape: Shape = (), dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Standard Gumbel floats, ``-log(-log(u))`` with ``u`` uniform in ``(0, 1)``."""
    _float_dtype(dtype)
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    tiny = torch.finfo(compute).tiny
    u = torch.clamp(_unit(key, _shape(shape), compute), min=tiny)
    return (-torch.log(-torch.log(u))).to(dtype)


def randint(
    key: torch.Tensor,
    low: int | torch.Tensor,
    high: int | torch.Tensor,
    shape: Shape = (),
    dtype: torch.dtype = torch.int64,
) -> torch.Tensor:
    """Integers uniform in ``[low, high)``, shape ``[*key_batch, *shape]``.

    Uses a 64-bit draw reduced modulo ``high - low``; the bias is below ``span / 2**63``.
    ``low``/``high`` may be tensors (broadcastable), e.g. per-member buffer sizes.
    """
    if dtype.is_floating_point:
        raise TypeError(f"dtype must be an integer dtype, got {dtype}")
    w = bits(key, (*_shape(shape), 2))
    r = ((w[..., 0] & 0x7FFFFFFF) << 32) | w[..., 1]  # 63 uniform bits, non-negative
    if isinstance(low, int) and isinstance(high, int) and high - low >= 1:
        span_i = high - low
        if span_i & (span_i - 1) == 0 and span_i <= 2**62:
            # A static power-of-two span: r % span == r & (span - 1) (r >= 0), the same
            # numbers without a 64-bit division (which does not vectorise).
            return (low + (r & (span_i - 1))).to(dtype)
    low_t = torch.as_tensor(low, dtype=torch.int64, device=r.device)
    span = torch.as_tensor(high, dtype=torch.int64, device=r.device) - low_t
    span = torch.clamp(span, min=1)
    return (low_t + torch.remainder(r, span)).to(dtype)


def bernoulli(
    key: torch.Tensor, p: float | torch.Tensor = 0.5, shape: Shape | None = None
) -> torch.Tensor:
    """Booleans that are True with probability ``p``; shape defaults to ``p``'s shape."""
    p_t = torch.as_tensor(p)
    dt = p_t.dtype if p_t.dtype.is_floating_point else torch.float32
    s = tuple(p_t.shape) if shape is None else _shape(shape)
    return uniform(key, s, dtype=dt) < p_t


def categorical(
    key: torch.Tensor, logits: torch.Tensor, shape: Shape | None = None, dim: int = -1
) -> torch.Tensor:
    """Indices drawn with probabilities ``softmax(logits)`` along ``dim`` (Gumbel-max).

    Args:
      key: a key.
      logits: ``[..., K]`` unnormalised log-probabilities (``-inf`` masks an entry).
      shape: output batch shape; defaults to ``logits`` without ``dim``.  Must broadcast
        with it, e.g. ``(n, *batch)`` for ``n`` draws per row.
    Returns:
      int64 tensor of ``shape``.
    """
    if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
        raise TypeError("logits must be a floating-point tensor")
    if logits.ndim == 0:
        raise ValueError("logits must have at least one dimension (the categories)")
    logits = torch.movedim(logits, dim, -1)
    batch = tuple(logits.shape[:-1]) if shape is None else _shape(shape)
    g = gumbel(key, (*batch, logits.shape[-1]), dtype=logits.dtype)
    return torch.argmax(logits + g, dim=-1)


def permutation(key: torch.Tensor, x: int | torch.Tensor) -> torch.Tensor:
    """A random permutation of ``range(x)`` (int) or of ``x`` along its first dim."""
    n = x if isinstance(x, int) else int(x.shape[0])
    if isinstance(x, torch.Tensor) and x.ndim == 0:
        raise ValueError("permutation of a tensor needs at least one dimension")
    # Two independent 32-bit sort keys make ties (which would bias the order) vanishingly rare.
    w = bits(key, (n, 2))
    perm = torch.argsort((w[..., 0] << 31) | (w[..., 1] >> 1), dim=-1, stable=True)
    return perm if isinstance(x, int) else x[perm]


def choice(
    key: torch.Tensor,
    a: int | torch.Tensor,
    shape: Shape = (),
    replace: bool = True,
    p: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw from ``range(a)`` (int) or from the first dim of tensor ``a``.

    With ``replace=False`` the ``prod(shape)`` draws are distinct (Gumbel top-k when ``p``
    is given).  ``p`` are probabilities over the ``n`` entries.
    """
    n = a if isinstance(a, int) else int(a.shape[0])
    shape = _shape(shape)
    k = math.prod(shape)
    if p is not None and p.shape[-1] != n:
        raise ValueError(f"p must have {n} entries (one per choice), got shape {tuple(p.shape)}")
    if replace:
        if p is None:
            idx = randint(key, 0, n, shape)
        else:
            idx = categorical(key, torch.log(p), shape)
    else:
        if k > n:
            raise ValueError(f"cannot take {k} samples without replacement from {n} entries")
        if p is None:
            idx = permutation(key, n)[..., :k].reshape(shape)
        else:
            g = gumbel(key, (n,), dtype=p.dtype)
            idx = torch.topk(torch.log(p) + g, k, dim=-1).indices.reshape(shape)
    return idx if isinstance(a, int) else a[idx]
