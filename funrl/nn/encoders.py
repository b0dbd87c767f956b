"""Image encoders and :func:`encoded`: a network on image observations as encoder + head.

An encoder maps observations ``[..., *obs_shape]`` to features ``[..., features]``;
:func:`encoded` puts any head from :mod:`funrl.nn` (a policy, a value or a Q-network on
``features`` inputs) after it, so every algorithm's heads work on images unchanged.

* :func:`minatar_cnn`: one 3x3 convolution of 16 channels and a ReLU, flattened: the
  network of the MinAtar paper (Young & Tian, 2019) and of gymnax's MinAtar baselines.
* :func:`nature_cnn`: the DQN Nature network's convolutions (Mnih et al., 2015): 32 8x8
  stride 4, 64 4x4 stride 2, 64 3x3 stride 1, then a 512-unit linear layer and a ReLU.
* :func:`impala_cnn`: IMPALA's residual network (Espeholt et al., 2018): three stages
  of (3x3 conv, 3x3 max-pool stride 2, two residual blocks) with 16, 32, 32 channels,
  then a 256-unit linear layer and a ReLU.

``obs_shape`` is ``(H, W, C)`` with ``channels_last=True`` (MinAtar's layout) or
``(C, H, W)`` (Gymnasium's Atari frame stack).  Every encoder is a :class:`Model` built
with :func:`~funrl.nn.core.from_module` and works eagerly, under ``vmap`` (populations)
and under ``torch.compile``.

Example::

    >>> import torch, funrl.random as R
    >>> from funrl import nn
    >>> enc = nn.minatar_cnn((10, 10, 4))
    >>> policy = nn.encoded(enc, nn.categorical_policy(enc.features, 3, (64,)), (10, 10, 4))
    >>> params = policy.init(R.key(0))
    >>> policy.apply(params, torch.zeros(8, 10, 10, 4)).shape
    torch.Size([8, 3])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn as tnn

from funrl import random as R
from funrl.nn.core import Initializer, Model, Params, from_module

__all__ = ["Encoder", "encoded", "impala_cnn", "minatar_cnn", "nature_cnn"]


@dataclasses.dataclass(frozen=True, eq=False)
class Encoder(Model):
    """A :class:`Model` ``apply(params, obs [..., *obs_shape]) -> [..., features]``.

    Attributes:
      obs_shape: the observation shape it takes.
      features: the size of its output.
    """

    obs_shape: tuple[int, ...] = ()
    features: int = 0


class _Residual(tnn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = tnn.Conv2d(channels, channels, 3, padding=1, device="meta")
        self.conv1 = tnn.Conv2d(channels, channels, 3, padding=1, device="meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv0(torch.relu(x))
        return x + self.conv1(torch.relu(y))


Shape = tuple[int, int, int]


def _frames(name: str, obs_shape: Sequence[int], channels_last: bool) -> tuple[Shape, Shape]:
    """``(obs_shape, (C, H, W))``, checked."""
    shape = tuple(obs_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"{name}: obs_shape must be 3 positive ints, got {obs_shape!r}")
    chw = (shape[2], shape[0], shape[1]) if channels_last else shape
    return shape, chw  # type: ignore[return-value]


def _flat_size(layers: list[tnn.Module], chw: Shape) -> int:
    """The output size of ``layers`` on one ``chw`` frame (computed on the meta device)."""
    with torch.device("meta"):
        return int(tnn.Sequential(*layers)(torch.empty(1, *chw)).shape[-1])


def _linear_head(layers: list[tnn.Module], chw: Shape, features: int) -> list[tnn.Module]:
    """``layers`` then a ``features``-unit linear layer and a ReLU."""
    return [*layers, tnn.Linear(_flat_size(layers, chw), features, device="meta"), tnn.ReLU()]


def _encoder(
    name: str,
    body: list[tnn.Module],
    obs_shape: Shape,
    chw: Shape,
    channels_last: bool,
    init: str | Initializer,
) -> Encoder:
    module = tnn.Sequential(*body)  # on channels-first frames (the same names either way)
    features = _flat_size(body, chw)
    inner = from_module(module, init)
    n = len(obs_shape)

    def apply(params: Mapping[str, torch.Tensor], obs: torch.Tensor) -> torch.Tensor:
        if not isinstance(obs, torch.Tensor) or tuple(obs.shape[obs.ndim - n :]) != obs_shape:
            got = tuple(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
            want = ", ".join(map(str, obs_shape))
            raise ValueError(f"{name}: obs must have shape [..., {want}], got {got}")
        batch = obs.shape[: obs.ndim - n]
        x = obs.reshape(-1, *obs_shape)
        out = inner.apply(params, x.movedim(-1, -3) if channels_last else x)
        return out.reshape(*batch, features)

    return Encoder(inner.init, apply, obs_shape, features)


def minatar_cnn(
    obs_shape: Sequence[int],
    channels: int = 16,
    channels_last: bool = True,
    init: str | Initializer = "orthogonal",
) -> Encoder:
    """MinAtar's encoder: ``Conv2d(C, channels, 3) -> ReLU -> flatten``
    (``channels * (H - 2) * (W - 2)`` features; 1024 for a 10x10 MinAtar frame)."""
    shape, chw = _frames("minatar_cnn", obs_shape, channels_last)
    body = [tnn.Conv2d(chw[0], channels, 3, device="meta"), tnn.ReLU(), tnn.Flatten(-3)]
    return _encoder("minatar_cnn", body, shape, chw, channels_last, init)


def nature_cnn(
    obs_shape: Sequence[int],
    features: int = 512,
    channels_last: bool = False,
    init: str | Initializer = "orthogonal",
) -> Encoder:
    """The DQN Nature network's encoder (Mnih et al., 2015) on ``(C, 84, 84)`` frames
    (any size the convolutions fit): three convolutions, a ``features``-unit linear layer
    and ReLUs.  Inputs are used as given: scale uint8 frames to [0, 1] before."""
    shape, chw = _frames("nature_cnn", obs_shape, channels_last)
    convs = [
        tnn.Conv2d(chw[0], 32, 8, stride=4, device="meta"), tnn.ReLU(),
        tnn.Conv2d(32, 64, 4, stride=2, device="meta"), tnn.ReLU(),
        tnn.Conv2d(64, 64, 3, stride=1, device="meta"), tnn.ReLU(),
        tnn.Flatten(-3),
    ]  # fmt: skip
    body = _linear_head(convs, chw, features)
    return _encoder("nature_cnn", body, shape, chw, channels_last, init)


def impala_cnn(
    obs_shape: Sequence[int],
    channels: Sequence[int] = (16, 32, 32),
    features: int = 256,
    channels_last: bool = False,
    init: str | Initializer = "orthogonal",
) -> Encoder:
    """IMPALA's residual encoder (Espeholt et al., 2018): per stage a 3x3 convolution, a
    3x3 max-pool of stride 2 and two residual blocks; then ReLU, flatten, a
    ``features``-unit linear layer and a ReLU."""
    shape, chw = _frames("impala_cnn", obs_shape, channels_last)
    layers: list[tnn.Module] = []
    c = chw[0]
    for out in channels:
        layers += [
            tnn.Conv2d(c, out, 3, padding=1, device="meta"),
            tnn.MaxPool2d(3, stride=2, padding=1),
            _Residual(out),
            _Residual(out),
        ]
        c = out
    layers += [tnn.ReLU(), tnn.Flatten(-3)]
    body = _linear_head(layers, chw, features)
    return _encoder("impala_cnn", body, shape, chw, channels_last, init)


def encoded(encoder: Model, head: Model, obs_shape: Sequence[int] | None = None) -> Model:
    """``head`` on ``encoder``'s features: ``apply(params, obs, *rest) =
    head.apply(params_head, encoder.apply(params_encoder, obs), *rest)``.

    Params are one flat dict: the encoder's under ``"encoder."``, the head's under
    ``"head."``; ``init`` draws them from two keys split from its key.  ``obs_shape``
    (default ``encoder.obs_shape``) is only documentation here: the encoder checks it.
    ``rest`` are the head's other inputs (a continuous Q-network's action).
    """
    del obs_shape

    def init(key: torch.Tensor) -> Params:
        k_enc, k_head = R.split(key)
        p = {f"encoder.{k}": v for k, v in encoder.init(k_enc).items()}
        p.update({f"head.{k}": v for k, v in head.init(k_head).items()})
        return p

    def apply(params: Mapping[str, torch.Tensor], obs: torch.Tensor, *rest: Any) -> Any:
        enc = {k[8:]: v for k, v in params.items() if k.startswith("encoder.")}
        hd = {k[5:]: v for k, v in params.items() if k.startswith("head.")}
        return head.apply(hd, encoder.apply(enc, obs), *rest)

    return Model(init, apply)
