"""Optimizers as pure ``(init, update)`` pairs over pytrees, optax-style, equal to torch.optim.

``opt.init(params) -> state``; ``opt.update(grads, state, params) -> (updates, state)``;
``apply_updates(params, updates)``.  Compose with ``chain``.  Sweepable hyperparameters
live in the state (``hparams`` / ``set_hparams``), so a vmapped population can give each
member its own learning rate and changing it never recompiles.

Example::

    >>> import torch
    >>> from funrl import optim
    >>> opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(3e-4))
    >>> params = {"w": torch.zeros(3)}
    >>> state = opt.init(params)
    >>> updates, state = opt.update({"w": torch.ones(3)}, state, params)
    >>> params = optim.apply_updates(params, updates)
    >>> sorted(optim.hparams(state))
    ['b1', 'b2', 'eps', 'lr', 'max_norm', 'weight_decay']
"""

from funrl.optim.aliases import adam, adamw, rmsprop, sgd
from funrl.optim.base import (
    EmptyState,
    GradientTransformation,
    HyperparamsState,
    apply_updates,
    chain,
    check_hparam,
    hparams,
    inject_hyperparams,
    scalar_dtype,
    set_hparams,
)
from funrl.optim.schedules import (
    Schedule,
    constant_schedule,
    cosine_decay_schedule,
    join_schedules,
    linear_schedule,
    piecewise_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_schedule,
)
from funrl.optim.transforms import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    add_decoupled_weight_decay,
    clip,
    clip_by_global_norm,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_schedule,
    trace,
)

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "HyperparamsState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByScheduleState",
    "Schedule",
    "TraceState",
    "adam",
    "adamw",
    "add_decayed_weights",
    "add_decoupled_weight_decay",
    "apply_updates",
    "chain",
    "check_hparam",
    "clip",
    "clip_by_global_norm",
    "constant_schedule",
    "cosine_decay_schedule",
    "hparams",
    "inject_hyperparams",
    "join_schedules",
    "linear_schedule",
    "piecewise_constant_schedule",
    "rmsprop",
    "scalar_dtype",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_schedule",
    "set_hparams",
    "sgd",
    "trace",
    "warmup_cosine_decay_schedule",
    "warmup_schedule",
]
