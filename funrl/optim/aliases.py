"""Ready-made optimizers, numerically equal to their ``torch.optim`` namesakes.

Each alias is ``inject_hyperparams`` over a ``chain`` of transforms, so its state is one
:class:`~funrl.optim.base.HyperparamsState` record holding every sweepable float as a
0-d tensor (float64): read them with ``hparams(state)``, change them with
``set_hparams(state, lr=...)`` -- no recompilation, and a stacked population may give
every member its own values.  ``lr`` may also be a schedule ``count -> lr`` (count = 0 on
the first update, as ``torch.optim.lr_scheduler.LambdaLR`` before its first ``step``).

Structural options (``nesterov``, ``centered``) are Python bools fixed at construction.

Example::

    >>> import torch
    >>> from funrl import optim
    >>> params = {"w": torch.tensor([1.0, -2.0])}
    >>> opt = optim.adam(0.1)
    >>> state = opt.init(params)
    >>> u, state = opt.update({"w": torch.tensor([0.5, -0.5])}, state, params)
    >>> [round(v, 4) for v in optim.apply_updates(params, u)["w"].tolist()]
    [0.9, -1.9]
    >>> sorted(optim.hparams(state))
    ['b1', 'b2', 'eps', 'lr', 'weight_decay']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from funrl.optim.base import GradientTransformation, chain, inject_hyperparams
from funrl.optim.transforms import (
    add_decayed_weights,
    add_decoupled_weight_decay,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    trace,
)

__all__ = ["adam", "adamw", "rmsprop", "sgd"]

Hparam = float | torch.Tensor
LearningRate = float | torch.Tensor | Callable[[torch.Tensor], Any]


def _nonzero(x: Any) -> bool:
    """Whether a number/tensor hyperparameter is non-zero (True for tensors under tracing)."""
    if isinstance(x, torch.Tensor):
        if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x):
            return True
        return bool((x != 0).any())
    return x != 0


def sgd(
    lr: LearningRate,
    momentum: Hparam = 0.0,
    nesterov: bool = False,
    dampening: Hparam = 0.0,
    weight_decay: Hparam = 0.0,
    *,
    foreach: bool | None = None,
) -> GradientTransformation:
    """``torch.optim.SGD``: ``g += wd * p``; momentum buffer (see ``trace``); ``p -= lr * u``.

    Hyperparameters in the state: ``lr, momentum, dampening, weight_decay``.  With
    ``momentum = 0`` the buffer is kept but is the identity (so momentum can be swept).
    Nesterov needs ``momentum > 0`` and ``dampening = 0``, as in torch.
    """
    if nesterov and (not _nonzero(momentum) or _nonzero(dampening)):
        raise ValueError(
            f"sgd: nesterov needs momentum > 0 and dampening = 0, got "
            f"momentum={momentum}, dampening={dampening}"
        )

    def make(lr: Any, momentum: Any, dampening: Any, weight_decay: Any) -> GradientTransformation:
        return chain(
            add_decayed_weights(weight_decay, foreach=foreach),
            trace(momentum, nesterov, dampening, foreach=foreach),
            scale_by_learning_rate(lr),
        )

    return inject_hyperparams(
        make, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay
    )


def adam(
    lr: LearningRate = 1e-3,
    b1: Hparam = 0.9,
    b2: Hparam = 0.999,
    eps: Hparam = 1e-8,
    weight_decay: Hparam = 0.0,
    *,
    foreach: bool | None = None,
) -> GradientTransformation:
    """``torch.optim.Adam`` (L2 weight decay: ``g += wd * p`` before the moments).

    ``p -= lr * (mu / (1 - b1**t)) / (sqrt(nu) / sqrt(1 - b2**t) + eps)``, t = 1, 2, ...
    Hyperparameters in the state: ``lr, b1, b2, eps, weight_decay``.
    """

    def make(lr: Any, b1: Any, b2: Any, eps: Any, weight_decay: Any) -> GradientTransformation:
        return chain(
            add_decayed_weights(weight_decay, foreach=foreach),
            scale_by_adam(b1, b2, eps, foreach=foreach),
            scale_by_learning_rate(lr),
        )

    return inject_hyperparams(make, lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


def adamw(
    lr: LearningRate = 1e-3,
    b1: Hparam = 0.9,
    b2: Hparam = 0.999,
    eps: Hparam = 1e-8,
    weight_decay: Hparam = 1e-2,
    *,
    foreach: bool | None = None,
) -> GradientTransformation:
    """``torch.optim.AdamW``: decoupled decay ``p *= 1 - lr * wd``, then the Adam step.

    As one update: ``u = -lr * adam_direction + (p * (1 - lr * wd) - p)``.
    Hyperparameters in the state: ``lr, b1, b2, eps, weight_decay``.
    """

    def make(lr: Any, b1: Any, b2: Any, eps: Any, weight_decay: Any) -> GradientTransformation:
        return chain(
            scale_by_adam(b1, b2, eps, foreach=foreach),
            scale_by_learning_rate(lr),
            add_decoupled_weight_decay(lr, weight_decay, foreach=foreach),
        )

    return inject_hyperparams(make, lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


def rmsprop(
    lr: LearningRate = 1e-2,
    alpha: Hparam = 0.99,
    eps: Hparam = 1e-8,
    momentum: Hparam = 0.0,
    centered: bool = False,
    weight_decay: Hparam = 0.0,
    *,
    foreach: bool | None = None,
) -> GradientTransformation:
    """``torch.optim.RMSprop``: ``g += wd * p``; ``x = g / (sqrt(nu [- mu**2]) + eps)``;
    ``buf = momentum * buf + x``; ``p -= lr * buf``.

    Hyperparameters in the state: ``lr, alpha, eps, momentum, weight_decay``.
    """

    def make(
        lr: Any, alpha: Any, eps: Any, momentum: Any, weight_decay: Any
    ) -> GradientTransformation:
        return chain(
            add_decayed_weights(weight_decay, foreach=foreach),
            scale_by_rms(alpha, eps, centered, foreach=foreach),
            trace(momentum, foreach=foreach),
            scale_by_learning_rate(lr),
        )

    return inject_hyperparams(
        make, lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay
    )
