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

from funrl.nn.core import (
    Initializer,
    Model,
    default_initializer,
    ensemble,
    fan_in_uniform,
    from_module,
    orthogonal,
    stack_params,
    unstack_params,
)
from funrl.nn.encoders import Encoder, encoded, impala_cnn, minatar_cnn, nature_cnn
from funrl.nn.heads import (
    categorical_policy,
    continuous_q_net,
    deterministic_policy,
    gaussian_policy,
    gsde_policy,
    mlp,
    q_net,
    tanh_gaussian_policy,
    value_net,
)

__all__ = [
    "Encoder",
    "Initializer",
    "Model",
    "categorical_policy",
    "continuous_q_net",
    "default_initializer",
    "deterministic_policy",
    "encoded",
    "ensemble",
    "fan_in_uniform",
    "from_module",
    "gaussian_policy",
    "gsde_policy",
    "impala_cnn",
    "minatar_cnn",
    "mlp",
    "nature_cnn",
    "orthogonal",
    "q_net",
    "stack_params",
    "tanh_gaussian_policy",
    "unstack_params",
    "value_net",
]
