"""Networks as ``(init, apply)`` pairs: :class:`Model`, initializers drawn from funrl keys,
:func:`from_module` for any ``torch.nn.Module``, ensembles (see :mod:`funrl.nn`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn as tnn
from torch.func import functional_call, vmap

from funrl import random as R
from funrl import tree

Params = dict[str, torch.Tensor]
# ``fn(key, path, module, like) -> tensor``: ``path`` is the dotted parameter name
# (``"2.weight"``), ``module`` the submodule that owns it, ``like`` its shape/dtype template.
Initializer = Callable[[torch.Tensor, str, tnn.Module, torch.Tensor], torch.Tensor]

_FAN_IN_LAYERS = (tnn.Linear, tnn.Bilinear, tnn.modules.conv._ConvNd)
_NORM_LAYERS = (tnn.LayerNorm, tnn.GroupNorm, tnn.RMSNorm, tnn.modules.batchnorm._NormBase)


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A network as two pure functions; static (closed over, never vmapped or traced).

    Attributes:
      init: ``init(key) -> params``, params a ``dict[str, Tensor]``.
      apply: ``apply(params, *inputs) -> outputs``.
    """

    init: Callable[[torch.Tensor], Params]
    apply: Callable[..., Any]


# --------------------------------------------------------------------------- initializers


def _fan_in(shape: Sequence[int]) -> int:
    """``shape[1] * prod(shape[2:])``, torch's fan-in for a weight (Linear, Conv)."""
    return int(shape[1]) * math.prod(int(s) for s in shape[2:]) if len(shape) >= 2 else 1


def fan_in_uniform(
    key: torch.Tensor, shape: Sequence[int], fan_in: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` of ``shape``: torch's default Linear/Conv init.

    ``kaiming_uniform_(w, a=sqrt(5))`` has bound ``sqrt(6 / ((1 + 5) * fan_in)) =
    1/sqrt(fan_in)``, and the bias uses the same bound with the weight's fan-in.
    """
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return R.uniform(key, tuple(shape), dtype=dtype, low=-bound, high=bound)


def _orthogonal_from_normal(a: torch.Tensor, gain: float) -> torch.Tensor:
    """torch.nn.init.orthogonal_'s algorithm on a given normal matrix ``a`` [rows, cols]."""
    rows, cols = a.shape
    if rows < cols:
        a = a.T
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r, 0, -2, -1)).unsqueeze(-2)
    if rows < cols:
        q = q.T
    return q * gain


def orthogonal(
    key: torch.Tensor, shape: Sequence[int], gain: float = 1.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A (semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_`` builds it.

    ``shape`` has at least 2 dims; trailing dims are flattened to ``cols``. A ``[rows, cols]``
    standard normal matrix from ``key`` (transposed when ``rows < cols``) is QR-factorised
    and ``Q``'s columns are multiplied by ``sign(diag(R))`` so the result is unique.
    Rows (``rows <= cols``) or columns are orthonormal, then scaled by ``gain``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal: shape must have at least 2 dims, got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    if rows * cols == 0:
        return torch.zeros(shape, dtype=dtype)
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    a = R.normal(key, (rows, cols), dtype=compute)
    return _orthogonal_from_normal(a, gain).reshape(shape).to(dtype)


def _owner_fan_in(module: tnn.Module) -> int:
    weight = getattr(module, "weight", None)
    return _fan_in(weight.shape) if isinstance(weight, torch.Tensor) else 1


def default_initializer(
    key: torch.Tensor, path: str, module: tnn.Module, like: torch.Tensor
) -> torch.Tensor:
    """torch's default init, drawn from ``key``.

    * Linear / Bilinear / Conv / ConvTranspose weights and biases:
      ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with the weight's fan-in
      (``weight.shape[1] * prod(weight.shape[2:])``); for Bilinear torch uses
      ``weight.shape[1]`` alone, which this does too.
    * Embedding: ``N(0, 1)``.  RNN/LSTM/GRU: ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.
    * Normalisation layers (LayerNorm, GroupNorm, RMSNorm, BatchNorm, InstanceNorm):
      weight ``1``, bias ``0``.
    * Fallback for any other parameter: ``>= 2`` dims -> fan-in uniform with
      ``fan_in = shape[1] * prod(shape[2:])``; ``< 2`` dims -> zeros.
    """
    name = path.rsplit(".", 1)[-1]
    shape, dtype = tuple(like.shape), like.dtype
    if isinstance(module, tnn.Bilinear):
        return fan_in_uniform(key, shape, int(module.weight.shape[1]), dtype)
    if isinstance(module, _FAN_IN_LAYERS):
        return fan_in_uniform(key, shape, _owner_fan_in(module), dtype)
    if isinstance(module, tnn.Embedding):
        return R.normal(key, shape, dtype=dtype)
    if isinstance(module, tnn.RNNBase):
        return fan_in_uniform(key, shape, module.hidden_size, dtype)
    if isinstance(module, _NORM_LAYERS):
        return (
            torch.ones(shape, dtype=dtype) if name == "weight" else torch.zeros(shape, dtype=dtype)
        )
    if len(shape) >= 2:
        return fan_in_uniform(key, shape, _fan_in(shape), dtype)
    return torch.zeros(shape, dtype=dtype)


def _orthogonal_initializer(gain: float, gains: Mapping[str, float]) -> Initializer:
    """Orthogonal weights (gain per owning submodule, default ``gain``), zero biases."""

    def init(key: torch.Tensor, path: str, module: tnn.Module, like: torch.Tensor) -> torch.Tensor:
        owner, _, name = path.rpartition(".")
        if isinstance(module, (tnn.Linear, tnn.modules.conv._ConvNd)):
            if name == "weight":
                return orthogonal(key, like.shape, float(gains.get(owner, gain)), like.dtype)
            return torch.zeros(like.shape, dtype=like.dtype)
        return default_initializer(key, path, module, like)

    return init


# --------------------------------------------------------------------------- from_module


def _tensor_entries(module: tnn.Module) -> list[tuple[str, tnn.Module, torch.Tensor, bool]]:
    """``(path, owner, tensor, is_buffer)`` for every parameter and buffer, no duplicates."""
    seen: set[int] = set()
    out = []
    for mod_name, mod in module.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        for pname, p in mod.named_parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                out.append((prefix + pname, mod, p, False))
        for bname, b in mod.named_buffers(recurse=False):
            if id(b) not in seen and bname not in mod._non_persistent_buffers_set:
                seen.add(id(b))
                out.append((prefix + bname, mod, b, True))
    return out


def from_module(
    module: tnn.Module,
    init: str | Initializer = "default",
    *,
    gain: float = math.sqrt(2.0),
    gains: Mapping[str, float] | None = None,
) -> Model:
    """Wrap any ``torch.nn.Module`` as a :class:`Model`.

    Args:
      module: the network; only its forward code and its tensors' names/shapes/dtypes
        are used (its own values are ignored, except persistent buffers, which are
        deterministic state and are copied).
      init: ``"default"`` (:func:`default_initializer`, torch's default distributions),
        ``"orthogonal"`` (Linear/Conv weights :func:`orthogonal` with ``gain``, overridden
        per submodule by ``gains``; their biases zero; other layers as ``"default"``), or
        an :data:`Initializer` ``fn(key, path, owner_module, like) -> tensor``.
      gain: orthogonal gain for layers not named in ``gains`` (``sqrt(2)``, as PPO uses).
      gains: ``{submodule name: gain}``, e.g. ``{"4": 0.01}`` for a policy output layer.

    Returns:
      ``Model`` with ``init(key) -> {name: tensor}`` (parameter ``i`` in
      ``named_parameters`` order, then buffers, draws from ``split(key, n)[i]``) and
      ``apply(params, *inputs, **kwargs) = functional_call(module, params, inputs)``.
      ``apply`` reads only the names it knows, so ``params`` may carry extra entries.

    Modules whose forward writes into buffers (BatchNorm in train mode) are not pure;
    use them in eval mode.  Integer buffers cannot be differentiated by ``grad``.

    Example::

        >>> import torch, funrl.random as R
        >>> m = from_module(torch.nn.Linear(3, 2), init="orthogonal", gain=1.0)
        >>> p = m.init(R.key(0))
        >>> sorted(p), m.apply(p, torch.ones(5, 3)).shape
        (['bias', 'weight'], torch.Size([5, 2]))
    """
    if not isinstance(module, tnn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if init == "default":
        initializer: Initializer = default_initializer
    elif init == "orthogonal":
        initializer = _orthogonal_initializer(float(gain), dict(gains or {}))
    elif callable(init):
        initializer = init
    else:
        raise ValueError(f"init must be 'default', 'orthogonal' or a callable, got {init!r}")
    entries = _tensor_entries(module)
    names = tuple(e[0] for e in entries)
    # Shape/dtype templates on the meta device; buffer values are kept (deterministic state).
    templates = [
        (path, owner, torch.empty(t.shape, dtype=t.dtype, device="meta"), t.device)
        for path, owner, t, _ in entries
    ]
    buffers = {path: t.detach().clone() for path, _, t, is_buf in entries if is_buf}

    def init_fn(key: torch.Tensor) -> Params:
        R.check_key(key)
        keys = R.split(key, max(len(templates), 1))
        params: Params = {}
        for i, (path, owner, like, device) in enumerate(templates):
            # Modules built on the meta device get params on the key's device.
            device = key.device if device.type == "meta" else device
            if path in buffers:
                params[path] = buffers[path].to(device).clone()
                continue
            t = initializer(keys[i], path, owner, like)
            if tuple(t.shape) != tuple(like.shape):
                raise ValueError(
                    f"initializer returned shape {tuple(t.shape)} for {path!r},"
                    f" expected {tuple(like.shape)}"
                )
            params[path] = t.to(dtype=like.dtype, device=device)
        return params

    def apply(params: Mapping[str, torch.Tensor], *inputs: Any, **kwargs: Any) -> Any:
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"params is missing {missing}; expected keys {list(names)}")
        return functional_call(module, {n: params[n] for n in names}, inputs, kwargs)

    return Model(init_fn, apply)


def _check_dims(**dims: Any) -> None:
    for name, d in dims.items():
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"{name} must be a positive int, got {d!r}")


# --------------------------------------------------------------------------- ensembles


def ensemble(model: Model, n: int) -> Model:
    """``n`` independent copies of ``model`` evaluated on the same inputs.

    ``init(key)``: ``vmap(model.init)`` over ``split(key, n)``, so every leaf gains a
    leading ``[n]`` dim (member ``i`` equals ``model.init(split(key, n)[i])``).
    ``apply(params, *inputs)``: outputs gain a leading ``[n, ...]`` dim.  Twin critics
    are ``ensemble(continuous_q_net(...), 2)``; reduce with ``q.min(0).values``.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a funrl.nn.Model, got {type(model).__name__}")
    _check_dims(n=n)

    def init_fn(key: torch.Tensor) -> Params:
        R.check_key(key)
        params = vmap(model.init, randomness="error")(R.split(key, n))
        return tree.contiguous(params)

    def apply(params: Params, *inputs: Any) -> Any:
        return vmap(model.apply, in_dims=(0, *([None] * len(inputs))), randomness="error")(
            params, *inputs
        )

    return Model(init_fn, apply)


def stack_params(params: Sequence[Params]) -> Params:
    """Stack a list of same-structure params into one with a leading member dim."""
    return tree.stack(params)


def unstack_params(params: Params) -> list[Params]:
    """Inverse of :func:`stack_params`: split along the leading member dim."""
    return tree.unstack(params)
