"""Networks as ``(init, apply)`` pairs over a flat dict of parameters.

A :class:`Model` is a static object (not a pytree) holding two pure functions:

* ``init(key) -> params``: a ``dict`` ``name -> tensor`` drawn from a funrl key only
  (never torch's global RNG);
* ``apply(params, *inputs) -> outputs``.

The MLP heads (:func:`categorical_policy`, :func:`value_net`, :func:`q_net`,
:func:`continuous_q_net`, ...) take ``hidden``, ``activation``, ``init`` and ``norm``
(``"layer"``: a LayerNorm after each hidden layer) and pass them to :func:`mlp`; networks of
different widths, activations or norms for actor and critic are separate calls.
:func:`from_module` wraps any ``torch.nn.Module``: the module is used only for its
forward code and its tensors' names, shapes and dtypes; ``apply`` runs it with
``torch.func.functional_call``.  Everything works under ``torch.func.grad`` (params as
the differentiated argument), ``vmap`` over params (populations, ensembles) and
``torch.compile``.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl import nn
    >>> policy = nn.categorical_policy(obs_dim=4, num_actions=2, hidden=(64, 64))
    >>> params = policy.init(R.key(0))
    >>> policy.apply(params, torch.zeros(4)).shape, policy.apply(params, torch.zeros(8, 4)).shape
    (torch.Size([2]), torch.Size([8, 2]))
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn as tnn
from torch.func import functional_call, vmap

from funrl import random as R
from funrl import tree

__all__ = [
    "Initializer",
    "Model",
    "categorical_policy",
    "continuous_q_net",
    "default_initializer",
    "deterministic_policy",
    "ensemble",
    "fan_in_uniform",
    "from_module",
    "gaussian_policy",
    "mlp",
    "orthogonal",
    "q_net",
    "stack_params",
    "tanh_gaussian_policy",
    "unstack_params",
    "value_net",
]

Params = dict[str, torch.Tensor]
# ``fn(key, path, module, like) -> tensor``: ``path`` is the dotted parameter name
# (``"2.weight"``), ``module`` the submodule that owns it, ``like`` its shape/dtype template.
Initializer = Callable[[torch.Tensor, str, tnn.Module, torch.Tensor], torch.Tensor]

_FAN_IN_LAYERS = (tnn.Linear, tnn.Bilinear, tnn.modules.conv._ConvNd)
_NORM_LAYERS = (tnn.LayerNorm, tnn.GroupNorm, tnn.RMSNorm, tnn.modules.batchnorm._NormBase)
_ACTIVATIONS: dict[str, Callable[[], tnn.Module]] = dict(
    tanh=tnn.Tanh, relu=tnn.ReLU, elu=tnn.ELU, gelu=tnn.GELU, silu=tnn.SiLU,
    leaky_relu=tnn.LeakyReLU, sigmoid=tnn.Sigmoid, identity=tnn.Identity,
)  # fmt: skip


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


# --------------------------------------------------------------------------- mlp and heads


def _activation(activation: str | Callable[[], tnn.Module]) -> Callable[[], tnn.Module]:
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        return _ACTIVATIONS[activation]
    if callable(activation):
        return activation
    raise TypeError(f"activation must be a name or a module factory, got {activation!r}")


def _check_dims(**dims: Any) -> None:
    for name, d in dims.items():
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"{name} must be a positive int, got {d!r}")


_NORMS = (None, "layer")


def _mlp_module(
    in_dim: int, hidden: Sequence[int], out_dim: int, activation: Any, norm: str | None = None
) -> tnn.Sequential:
    hidden = tuple(hidden)
    _check_dims(in_dim=in_dim, out_dim=out_dim, **{f"hidden[{i}]": h for i, h in enumerate(hidden)})
    if norm not in _NORMS:
        raise ValueError(f"norm must be None or 'layer', got {norm!r}")
    act = _activation(activation)
    sizes = (in_dim, *hidden)
    layers: list[tnn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers.append(tnn.Linear(a, b, device="meta"))
        if norm == "layer":
            layers.append(tnn.LayerNorm(b, device="meta"))
        layers.append(act())
    layers.append(tnn.Linear(sizes[-1], out_dim, device="meta"))
    return tnn.Sequential(*layers)


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    activation: str | Callable[[], tnn.Module] = "tanh",
    init: str | Initializer = "orthogonal",
    output_gain: float = 1.0,
    gain: float = math.sqrt(2.0),
    norm: str | None = None,
) -> Model:
    """A multilayer perceptron ``[..., in_dim] -> [..., out_dim]``.

    ``Linear -> activation`` for each width in ``hidden`` (may be empty), then a final
    ``Linear``; ``norm="layer"`` puts a ``LayerNorm`` (weight 1, bias 0 at init) between
    each hidden ``Linear`` and its activation, as layer-norm critics do (e.g. Ball et al.,
    2023).  Params are named like ``nn.Sequential``'s (``"0.weight"``, ...).
    With ``init="orthogonal"`` hidden layers use ``gain`` and the output layer
    ``output_gain``; ``output_gain`` is ignored for other inits.

    Example::

        >>> import torch, funrl.random as R
        >>> net = mlp(4, (64, 64), 2)
        >>> net.apply(net.init(R.key(0)), torch.zeros(10, 4)).shape
        torch.Size([10, 2])
    """
    module = _mlp_module(in_dim, hidden, out_dim, activation, norm)
    last = str(len(module) - 1)
    wrapped = from_module(module, init, gain=gain, gains={last: output_gain})
    # Same params and result as ``wrapped.apply``, without functional_call's per-call
    # module re-parametrisation (about 100 us eager); activations hold no parameters.
    layers = [(str(i), layer) for i, layer in enumerate(module)]
    fast = (tnn.Linear, tnn.LayerNorm)
    stateful = [n for n, m in layers if not isinstance(m, fast) and m.state_dict()]
    if stateful:  # an activation with parameters (e.g. PReLU): use the generic path
        return wrapped

    def apply(params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        for name, layer in layers:
            if isinstance(layer, tnn.Linear):
                x = _linear(x, params[name + ".weight"], params[name + ".bias"])
            elif isinstance(layer, tnn.LayerNorm):
                w, b = params[name + ".weight"], params[name + ".bias"]
                x = F.layer_norm(x, layer.normalized_shape, w, b, layer.eps)
            else:
                x = layer(x)
        return x

    return Model(wrapped.init, apply)


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``F.linear``, except a one-unit layer is a multiply-and-sum.

    A one-output ``F.linear`` takes a matrix-vector kernel whose rounding differs from the
    batched matmul ``vmap`` turns it into; multiply-and-sum rounds the same way alone and
    under ``vmap`` (forward and backward), so a population member is bit-identical to the
    same agent trained alone.
    """
    if w.shape[0] == 1:
        return (x * w[0]).sum(-1, keepdim=True) + b
    return F.linear(x, w, b)


def _check_obs(obs: torch.Tensor, obs_dim: int, name: str = "obs") -> None:
    if not isinstance(obs, torch.Tensor) or obs.ndim < 1 or obs.shape[-1] != obs_dim:
        got = tuple(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
        raise ValueError(f"{name} must have shape [..., {obs_dim}], got {got}")


def _head(net: Model, obs_dim: int, post: Callable[[torch.Tensor], Any]) -> Model:
    def apply(params: Params, obs: torch.Tensor) -> Any:
        _check_obs(obs, obs_dim)
        return post(net.apply(params, obs))

    return Model(net.init, apply)


def categorical_policy(
    obs_dim: int,
    num_actions: int,
    hidden: Sequence[int] = (64, 64),
    activation: str | Callable[[], tnn.Module] = "tanh",
    init: str | Initializer = "orthogonal",
    output_gain: float = 0.01,
    norm: str | None = None,
) -> Model:
    """Discrete policy: ``apply(params, obs [..., obs_dim]) -> logits [..., num_actions]``."""
    net = mlp(obs_dim, hidden, num_actions, activation, init, output_gain, norm=norm)
    return _head(net, obs_dim, lambda x: x)


def value_net(
    obs_dim: int,
    hidden: Sequence[int] = (64, 64),
    activation: str | Callable[[], tnn.Module] = "tanh",
    init: str | Initializer = "orthogonal",
    output_gain: float = 1.0,
    norm: str | None = None,
) -> Model:
    """State value: ``apply(params, obs [..., obs_dim]) -> v [...]`` (last dim squeezed)."""
    net = mlp(obs_dim, hidden, 1, activation, init, output_gain, norm=norm)
    return _head(net, obs_dim, lambda x: x.squeeze(-1))


def gaussian_policy(
    obs_dim: int,
    act_dim: int,
    hidden: Sequence[int] = (64, 64),
    log_std_init: float = 0.0,
    activation: str | Callable[[], tnn.Module] = "tanh",
    init: str | Initializer = "orthogonal",
    output_gain: float = 0.01,
    norm: str | None = None,
) -> Model:
    """PPO-style Gaussian policy with a state-independent learned ``log_std``.

    ``apply(params, obs [..., obs_dim]) -> (mean [..., act_dim], log_std [..., act_dim])``;
    ``params["log_std"]`` has shape ``[act_dim]`` (initialised to ``log_std_init``) and is
    broadcast to ``mean``'s shape.
    """
    net = mlp(obs_dim, hidden, act_dim, activation, init, output_gain, norm=norm)
    log_std0 = float(log_std_init)

    def init_fn(key: torch.Tensor) -> Params:
        return {**net.init(key), "log_std": torch.full((act_dim,), log_std0)}

    def apply(params: Params, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_obs(obs, obs_dim)
        mean = net.apply(params, obs)
        return mean, torch.broadcast_to(params["log_std"], mean.shape)

    return Model(init_fn, apply)


def tanh_gaussian_policy(
    obs_dim: int,
    act_dim: int,
    hidden: Sequence[int] = (256, 256),
    log_std_min: float = -5.0,
    log_std_max: float = 2.0,
    activation: str | Callable[[], tnn.Module] = "relu",
    init: str | Initializer = "default",
    norm: str | None = None,
) -> Model:
    """SAC-style policy with a state-dependent ``log_std``.

    ``apply(params, obs [..., obs_dim]) -> (mean [..., act_dim], log_std [..., act_dim])``.
    One MLP outputs ``2 * act_dim`` values ``(mean, s)``; ``log_std = log_std_min +
    (log_std_max - log_std_min) * (tanh(s) + 1) / 2`` lies in ``[log_std_min, log_std_max]``.
    Pair with ``funrl.distributions.TanhNormal(mean, exp(log_std))``.
    """
    if not log_std_min < log_std_max:
        raise ValueError(f"need log_std_min < log_std_max, got {log_std_min}, {log_std_max}")
    net = mlp(obs_dim, hidden, 2 * act_dim, activation, init, norm=norm)
    lo, span = float(log_std_min), float(log_std_max) - float(log_std_min)

    def post(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, s = x[..., :act_dim], x[..., act_dim:]
        return mean, lo + span * 0.5 * (torch.tanh(s) + 1.0)

    return _head(net, obs_dim, post)


def deterministic_policy(
    obs_dim: int,
    act_dim: int,
    hidden: Sequence[int] = (256, 256),
    activation: str | Callable[[], tnn.Module] = "relu",
    init: str | Initializer = "default",
    norm: str | None = None,
) -> Model:
    """DDPG/TD3 actor: ``apply(params, obs [..., obs_dim]) -> tanh(mlp(obs)) [..., act_dim]``
    in ``[-1, 1]`` (rescale to the action bounds outside)."""
    net = mlp(obs_dim, hidden, act_dim, activation, init, norm=norm)
    return _head(net, obs_dim, torch.tanh)


class _Dueling(tnn.Module):
    """Shared torso, then ``q = v + a - mean(a)``."""

    def __init__(
        self, obs_dim: int, hidden: Sequence[int], num_actions: int, act: Any, norm: Any = None
    ):
        super().__init__()
        hidden = tuple(hidden)
        if not hidden:
            raise ValueError("dueling q_net needs at least one hidden layer, got hidden=()")
        torso = list(_mlp_module(obs_dim, hidden[:-1], hidden[-1], act, norm))
        if norm == "layer":
            torso.append(tnn.LayerNorm(hidden[-1], device="meta"))
        self.torso = tnn.Sequential(*torso, _activation(act)())
        self.value = tnn.Linear(hidden[-1], 1, device="meta")
        self.advantage = tnn.Linear(hidden[-1], num_actions, device="meta")

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.torso(obs)
        a = self.advantage(h)
        return self.value(h) + a - a.mean(dim=-1, keepdim=True)


def q_net(
    obs_dim: int,
    num_actions: int,
    hidden: Sequence[int] = (120, 84),
    dueling: bool = False,
    activation: str | Callable[[], tnn.Module] = "relu",
    init: str | Initializer = "default",
    norm: str | None = None,
) -> Model:
    """DQN Q-values: ``apply(params, obs [..., obs_dim]) -> q [..., num_actions]``.

    ``dueling=True``: the hidden layers form a shared torso, then
    ``q = V(h) + A(h) - mean_a A(h)`` (params ``torso.*``, ``value.*``, ``advantage.*``).
    """
    if not dueling:
        net = mlp(obs_dim, hidden, num_actions, activation, init, output_gain=1.0, norm=norm)
    else:
        _check_dims(obs_dim=obs_dim, num_actions=num_actions)
        dueling_net = _Dueling(obs_dim, hidden, num_actions, activation, norm)
        net = from_module(dueling_net, init, gains={"value": 1.0, "advantage": 1.0})
    return _head(net, obs_dim, lambda x: x)


def continuous_q_net(
    obs_dim: int,
    act_dim: int,
    hidden: Sequence[int] = (256, 256),
    activation: str | Callable[[], tnn.Module] = "relu",
    init: str | Initializer = "default",
    norm: str | None = None,
) -> Model:
    """SAC/TD3 critic: ``apply(params, obs [..., obs_dim], action [..., act_dim]) -> q [...]``.

    The MLP reads ``cat([obs, action], -1)``; leading dims of ``obs`` and ``action`` must
    be equal.
    """
    net = mlp(obs_dim + act_dim, hidden, 1, activation, init, output_gain=1.0, norm=norm)

    def apply(params: Params, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        _check_obs(obs, obs_dim)
        _check_obs(action, act_dim, "action")
        if obs.shape[:-1] != action.shape[:-1]:
            raise ValueError(
                f"obs {tuple(obs.shape)} and action {tuple(action.shape)} need the same leading dims"
            )
        return net.apply(params, torch.cat([obs, action], dim=-1)).squeeze(-1)

    return Model(net.init, apply)


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
