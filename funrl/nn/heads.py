"""MLPs and the policy / value / Q heads algorithms build from them (see :mod:`funrl.nn`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn as tnn

from funrl import random as R
from funrl.nn.core import Initializer, Model, Params, _check_dims, from_module

_ACTIVATIONS: dict[str, Callable[[], tnn.Module]] = dict(
    tanh=tnn.Tanh, relu=tnn.ReLU, elu=tnn.ELU, gelu=tnn.GELU, silu=tnn.SiLU,
    leaky_relu=tnn.LeakyReLU, sigmoid=tnn.Sigmoid, identity=tnn.Identity,
)  # fmt: skip

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


def gsde_policy(
    obs_dim: int,
    act_dim: int,
    hidden: Sequence[int] = (256, 256),
    log_std_init: float = -3.0,
    clip_mean: float = 2.0,
    activation: str | Callable[[], tnn.Module] = "relu",
    init: str | Initializer = "default",
    mean_gain: float = 1.0,
) -> Model:
    """Policy for generalised state-dependent exploration (gSDE, SB3's ``use_sde``).

    ``apply(params, obs [..., obs_dim]) -> (mean [..., act_dim], log_std [F, act_dim],
    features [..., F])``: ``features`` is the last hidden layer (after its activation,
    ``F = hidden[-1]``), ``mean`` a linear head on it clipped to ``[-clip_mean, clip_mean]``
    (SB3's ``clip_mean``; ``0`` leaves it unclipped), ``log_std`` a parameter matrix
    initialised to ``log_std_init`` (SB3's default: -3 for SAC, 0 for PPO and A2C);
    ``mean_gain`` is the mean head's init gain (``init="orthogonal"``: PPO's 0.01).  Pair
    with ``funrl.distributions.TanhGSDE(mean, features, exp(log_std))`` (SAC) or
    ``GSDE`` (PPO, A2C; ``clip_mean=0``).  Params: ``torso.*`` (an :func:`mlp` to ``F``
    units), ``mean.*`` and ``log_std``.
    """
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError(
            "gsde_policy needs at least one hidden layer (its features), got hidden=()"
        )
    if not clip_mean >= 0:
        raise ValueError(f"gsde_policy: clip_mean must be >= 0, got {clip_mean}")
    make_act = _activation(activation)
    if make_act().state_dict():
        raise ValueError("gsde_policy: the activation must hold no parameters")
    torso = mlp(obs_dim, hidden[:-1], hidden[-1], activation, init, output_gain=math.sqrt(2.0))
    head = mlp(hidden[-1], (), act_dim, activation, init, output_gain=mean_gain)
    act, clip, log_std0 = make_act(), float(clip_mean), float(log_std_init)

    def init_fn(key: torch.Tensor) -> Params:
        k_torso, k_head = R.split(key)
        params = {f"torso.{k}": v for k, v in torso.init(k_torso).items()}
        params.update({f"mean.{k}": v for k, v in head.init(k_head).items()})
        params["log_std"] = torch.full((hidden[-1], act_dim), log_std0, device=key.device)
        return params

    def sub(params: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
        n = len(prefix)
        return {k[n:]: v for k, v in params.items() if k.startswith(prefix)}

    def apply(params: Params, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _check_obs(obs, obs_dim)
        features = act(torso.apply(sub(params, "torso."), obs))
        mean = head.apply(sub(params, "mean."), features)
        if clip > 0:
            mean = torch.clamp(mean, -clip, clip)
        return mean, params["log_std"], features

    return Model(init_fn, apply)


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
