"""Hypothesis strategies for loss inputs: policy outputs, transition batches, hyperparameters.

Every batch is a NamedTuple of tensors (a pytree: ``funrl.tree`` and ``torch.func`` see
through it) whose fields are named as the :mod:`funrl.losses` arguments they feed.
Policy quantities are mutually consistent: log-probabilities, entropies and KLs come
from actual categorical or Gaussian distributions, so ratios, KLs and entropies are
realistic. ``n`` (batch size) and ``num_actions`` take an int or a strategy;
fix them (ints) when you :func:`stacked` several draws for ``vmap``.

Example::

    >>> from hypothesis import given, settings
    >>> from funrl.losses import ppo_clip_loss
    >>> from funrl.testing import batches as fb
    >>> @settings(max_examples=5)
    ... @given(fb.policy_batches(), fb.loss_hparams())
    ... def test_finite(b, h):
    ...     loss, _ = ppo_clip_loss(b.logp_t, b.logp_old_t, b.adv_t, h.clip_eps)
    ...     assert loss.isfinite()
    >>> test_finite()
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funrl import tree

__all__ = [
    "ContinuousBatch",
    "DiscreteSACBatch",
    "LossHParams",
    "PolicyBatch",
    "QBatch",
    "continuous_batches",
    "discrete_sac_batches",
    "loss_hparams",
    "policy_batches",
    "q_batches",
    "stacked",
]

IntOrStrategy = int | st.SearchStrategy[int]


class PolicyBatch(NamedTuple):
    """On-policy minibatch, all ``[N]``: new/old log-probs of the taken actions,
    advantages, the new policy's entropy, per-sample KL(old || new), values."""

    logp_t: torch.Tensor
    logp_old_t: torch.Tensor
    adv_t: torch.Tensor
    entropy_t: torch.Tensor
    kl_t: torch.Tensor
    v_t: torch.Tensor
    v_old_t: torch.Tensor
    target_t: torch.Tensor


class QBatch(NamedTuple):
    """Replay batch for Q-learning: ``q_tm1, q_t_target, q_t_selector`` ``[N, A]``;
    ``a_tm1`` (int64), ``r_t``, ``terminated_t`` (bool), ``weights`` (in ``(0, 1]``) ``[N]``."""

    q_tm1: torch.Tensor
    a_tm1: torch.Tensor
    r_t: torch.Tensor
    terminated_t: torch.Tensor
    q_t_target: torch.Tensor
    q_t_selector: torch.Tensor
    weights: torch.Tensor


class ContinuousBatch(NamedTuple):
    """Replay batch for DDPG/TD3/SAC: ``q_tm1`` ``[E, N]``; the rest ``[N]``: rewards,
    terminations (bool), target value at the next state, ``log pi`` of the next action,
    ``log pi`` of a fresh action at the current state and its critic value ``q_min_t``."""

    q_tm1: torch.Tensor
    r_t: torch.Tensor
    terminated_t: torch.Tensor
    q_t_target: torch.Tensor
    logp_t_next: torch.Tensor
    logp_t: torch.Tensor
    q_min_t: torch.Tensor


class DiscreteSACBatch(NamedTuple):
    """Replay batch for discrete SAC: ``q_tm1`` ``[E, N, A]``; ``a_tm1, r_t, terminated_t``
    ``[N]``; ``q_t_target_min``, next-state ``probs/logp``, current-state ``probs/logp``
    and ``q_t`` ``[N, A]`` (``logp`` = ``log_softmax`` of logits, finite)."""

    q_tm1: torch.Tensor
    a_tm1: torch.Tensor
    r_t: torch.Tensor
    terminated_t: torch.Tensor
    q_t_target_min: torch.Tensor
    probs_t_next: torch.Tensor
    logp_t_next: torch.Tensor
    probs_t: torch.Tensor
    logp_t: torch.Tensor
    q_t: torch.Tensor


class LossHParams(NamedTuple):
    """Loss hyperparameters as tensors of shape ``batch`` (0-d by default)."""

    clip_eps: torch.Tensor  # (0, 0.5]
    gamma: torch.Tensor  # [0, 1]
    alpha: torch.Tensor  # (0, 2]
    log_alpha: torch.Tensor  # [-3, 1]
    target_entropy: torch.Tensor  # [-3, 3]
    beta: torch.Tensor  # [0, 5]
    target_kl: torch.Tensor  # (0, 0.1]
    huber_delta: torch.Tensor  # (0, 5]


def _size(x: IntOrStrategy) -> st.SearchStrategy[int]:
    return st.just(x) if isinstance(x, int) else x


def _floats(shape: tuple[int, ...], lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    elem = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    return hnp.arrays(np.float64, shape, elements=elem)


def _t(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.array(x, dtype=np.float64)).to(dtype)


def _bools(n: int) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.bool_, (n,), elements=st.booleans())


@st.composite
def _discrete_policy(draw: Any, n: int) -> dict[str, np.ndarray]:
    a = draw(st.integers(2, 5))
    new = draw(_floats((n, a), -2.0, 2.0))
    old = draw(_floats((n, a), -2.0, 2.0))
    same = draw(_bools(n))  # some rows have ratio exactly 1
    old = np.where(same[:, None], new, old)
    act = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, a - 1)))
    logp_new = torch.log_softmax(torch.from_numpy(new), -1).numpy()
    logp_old = torch.log_softmax(torch.from_numpy(old), -1).numpy()
    rows = np.arange(n)
    return {
        "logp_t": logp_new[rows, act],
        "logp_old_t": logp_old[rows, act],
        "entropy_t": -(np.exp(logp_new) * logp_new).sum(-1),
        "kl_t": (np.exp(logp_old) * (logp_old - logp_new)).sum(-1),
    }


@st.composite
def _gaussian_policy(draw: Any, n: int) -> dict[str, np.ndarray]:
    mu, mu_old = draw(_floats((n,), -2.0, 2.0)), draw(_floats((n,), -2.0, 2.0))
    ls, ls_old = draw(_floats((n,), -1.0, 1.0)), draw(_floats((n,), -1.0, 1.0))
    same = draw(_bools(n))
    mu_old, ls_old = np.where(same, mu, mu_old), np.where(same, ls, ls_old)
    z = draw(_floats((n,), -2.0, 2.0))
    act = mu_old + np.exp(ls_old) * z  # sampled by the old (behaviour) policy

    def logpdf(x: np.ndarray, m: np.ndarray, log_s: np.ndarray) -> np.ndarray:
        return -0.5 * ((x - m) / np.exp(log_s)) ** 2 - log_s - 0.5 * math.log(2 * math.pi)

    s2, s2_old = np.exp(2 * ls), np.exp(2 * ls_old)
    return {
        "logp_t": logpdf(act, mu, ls),
        "logp_old_t": logpdf(act, mu_old, ls_old),
        "entropy_t": 0.5 * math.log(2 * math.pi * math.e) + ls,
        "kl_t": ls - ls_old + (s2_old + (mu_old - mu) ** 2) / (2 * s2) - 0.5,
    }


@st.composite
def policy_batches(
    draw: Any,
    n: IntOrStrategy = st.integers(1, 16),  # noqa: B008
    continuous: bool = False,
    dtype: torch.dtype = torch.float32,
) -> PolicyBatch:
    """On-policy batches from a categorical (``continuous=False``, 2-5 actions) or a 1-D
    Gaussian policy; about half the rows have old == new policy (ratio exactly 1).
    Advantages, values and targets lie in ``[-10, 10]``; ``|v_t - v_old_t| <= 1``."""
    size = draw(_size(n))
    pol = draw(_gaussian_policy(size) if continuous else _discrete_policy(size))
    v = draw(_floats((size,), -10.0, 10.0))
    parts = {
        **pol,
        "adv_t": draw(_floats((size,), -10.0, 10.0)),
        "v_t": v,
        "v_old_t": v + draw(_floats((size,), -1.0, 1.0)),
        "target_t": draw(_floats((size,), -10.0, 10.0)),
    }
    return PolicyBatch(**{k: _t(np.asarray(x), dtype) for k, x in parts.items()})


@st.composite
def q_batches(
    draw: Any,
    n: IntOrStrategy = st.integers(1, 16),  # noqa: B008
    num_actions: IntOrStrategy = st.integers(1, 5),  # noqa: B008
    dtype: torch.dtype = torch.float32,
) -> QBatch:
    """Q-learning replay batches; Q-values and rewards in ``[-10, 10]``."""
    size, a = draw(_size(n)), draw(_size(num_actions))
    return QBatch(
        q_tm1=_t(draw(_floats((size, a), -10.0, 10.0)), dtype),
        a_tm1=torch.from_numpy(draw(hnp.arrays(np.int64, (size,), elements=st.integers(0, a - 1)))),
        r_t=_t(draw(_floats((size,), -10.0, 10.0)), dtype),
        terminated_t=torch.from_numpy(draw(_bools(size))),
        q_t_target=_t(draw(_floats((size, a), -10.0, 10.0)), dtype),
        q_t_selector=_t(draw(_floats((size, a), -10.0, 10.0)), dtype),
        weights=_t(draw(_floats((size,), 0.01, 1.0)), dtype),
    )


@st.composite
def continuous_batches(
    draw: Any,
    n: IntOrStrategy = st.integers(1, 16),  # noqa: B008
    num_critics: IntOrStrategy = 2,
    dtype: torch.dtype = torch.float32,
) -> ContinuousBatch:
    """DDPG/TD3/SAC replay batches; Q-values and rewards in ``[-10, 10]``, log-densities
    in ``[-5, 2]``."""
    size, e = draw(_size(n)), draw(_size(num_critics))
    return ContinuousBatch(
        q_tm1=_t(draw(_floats((e, size), -10.0, 10.0)), dtype),
        r_t=_t(draw(_floats((size,), -10.0, 10.0)), dtype),
        terminated_t=torch.from_numpy(draw(_bools(size))),
        q_t_target=_t(draw(_floats((size,), -10.0, 10.0)), dtype),
        logp_t_next=_t(draw(_floats((size,), -5.0, 2.0)), dtype),
        logp_t=_t(draw(_floats((size,), -5.0, 2.0)), dtype),
        q_min_t=_t(draw(_floats((size,), -10.0, 10.0)), dtype),
    )


@st.composite
def discrete_sac_batches(
    draw: Any,
    n: IntOrStrategy = st.integers(1, 16),  # noqa: B008
    num_actions: IntOrStrategy = st.integers(1, 5),  # noqa: B008
    num_critics: IntOrStrategy = 2,
    dtype: torch.dtype = torch.float32,
) -> DiscreteSACBatch:
    """Discrete-SAC replay batches; policies are softmaxes of logits in ``[-3, 3]``."""
    size, a, e = draw(_size(n)), draw(_size(num_actions)), draw(_size(num_critics))

    def policy() -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(torch.from_numpy(draw(_floats((size, a), -3.0, 3.0))), -1)
        return logp.exp().to(dtype), logp.to(dtype)

    probs_next, logp_next = policy()
    probs, logp = policy()
    return DiscreteSACBatch(
        q_tm1=_t(draw(_floats((e, size, a), -10.0, 10.0)), dtype),
        a_tm1=torch.from_numpy(draw(hnp.arrays(np.int64, (size,), elements=st.integers(0, a - 1)))),
        r_t=_t(draw(_floats((size,), -10.0, 10.0)), dtype),
        terminated_t=torch.from_numpy(draw(_bools(size))),
        q_t_target_min=_t(draw(_floats((size, a), -10.0, 10.0)), dtype),
        probs_t_next=probs_next,
        logp_t_next=logp_next,
        probs_t=probs,
        logp_t=logp,
        q_t=_t(draw(_floats((size, a), -10.0, 10.0)), dtype),
    )


@st.composite
def loss_hparams(
    draw: Any, batch: tuple[int, ...] = (), dtype: torch.dtype = torch.float32
) -> LossHParams:
    """Hyperparameters in their valid ranges (see :class:`LossHParams`), each a tensor of
    shape ``batch``: ``batch=(M,)`` gives one set per member of a vmapped population."""

    def f(lo: float, hi: float) -> torch.Tensor:
        elem = st.floats(lo, hi, allow_subnormal=False)
        return _t(draw(hnp.arrays(np.float64, batch, elements=elem)), dtype)

    tiny = 1e-6  # open lower bounds: stays > 0 after a cast to float32

    return LossHParams(
        clip_eps=f(tiny, 0.5),
        gamma=f(0.0, 1.0),
        alpha=f(tiny, 2.0),
        log_alpha=f(-3.0, 1.0),
        target_entropy=f(-3.0, 3.0),
        beta=f(0.0, 5.0),
        target_kl=f(tiny, 0.1),
        huber_delta=f(tiny, 5.0),
    )


def stacked(strategy: st.SearchStrategy[Any], members: int) -> st.SearchStrategy[Any]:
    """``members`` draws of ``strategy`` stacked leaf-wise along a new leading dim.

    The draws must share shapes: fix ``n``/``num_actions`` (ints) in the inner strategy.
    Feed the result to ``funrl.testing.check_transforms`` to vmap a loss over members.
    """
    return st.lists(strategy, min_size=members, max_size=members).map(tree.stack)
