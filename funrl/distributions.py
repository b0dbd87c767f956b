"""Probability distributions as immutable pytrees: ``sample(key)``, ``log_prob``, ``entropy``, ``mode``.

Each distribution is a ``funrl.tree.struct`` (a frozen dataclass registered as a pytree),
so it can be returned from and passed through ``vmap``, ``grad`` and ``torch.compile``.
Sampling takes an explicit funrl key; continuous samples are reparameterised
(``loc + scale * eps``), so gradients flow from a sample to ``loc`` and ``scale``.

Shape conventions: a distribution's *batch shape* is its parameters' shape (without the
category dim for :class:`Categorical`, without the last, *event* dim for
:class:`DiagNormal`/:class:`TanhNormal`).  ``sample(key, shape)`` returns
``[*shape, *batch(, event)]``.

Constructors check shapes and dtypes always, and values (``scale > 0``) only on plain
eager tensors: the value check is skipped while ``torch.compile`` traces and inside
``vmap``/``grad`` (where reading a value is impossible or would sync).

Example::

    >>> import torch, funrl.random as R
    >>> from funrl.distributions import Categorical, DiagNormal
    >>> pi = Categorical(torch.tensor([0.0, 1.0, -float("inf")]))
    >>> a = pi.sample(R.key(0), (5,))
    >>> a.shape, bool((a < 2).all())
    (torch.Size([5]), True)
    >>> d = DiagNormal(torch.zeros(3), torch.ones(3))
    >>> d.log_prob(d.sample(R.key(1))).shape
    torch.Size([])
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from funrl import random as R
from funrl import tree

__all__ = [
    "GSDE",
    "Categorical",
    "Deterministic",
    "DiagNormal",
    "Normal",
    "TanhGSDE",
    "TanhNormal",
    "kl_divergence",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG2 = math.log(2.0)


def _shape(shape: int | tuple[int, ...] | torch.Size) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


def _eager_values(x: torch.Tensor) -> bool:
    """True when ``x``'s values may be read: eager, outside any torch.func transform."""
    if torch.compiler.is_compiling():
        return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)


def _float_tensor(x: Any, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and like is not None:
        return torch.as_tensor(float(x), dtype=like.dtype, device=like.device)
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor, got {got}")
    return x


def _loc_scale(obj: Any, min_ndim: int) -> None:
    """Validate and broadcast ``obj.loc``/``obj.scale`` (in a frozen dataclass)."""
    cls = type(obj).__name__
    loc = _float_tensor(obj.loc, f"{cls}: loc")
    scale = _float_tensor(obj.scale, f"{cls}: scale", like=loc)
    if loc.dtype != scale.dtype:
        raise TypeError(f"{cls}: loc ({loc.dtype}) and scale ({scale.dtype}) need the same dtype")
    try:
        loc, scale = torch.broadcast_tensors(loc, scale)
    except RuntimeError as e:
        raise ValueError(
            f"{cls}: loc shape {tuple(loc.shape)} and scale shape {tuple(scale.shape)}"
            " do not broadcast"
        ) from e
    if loc.ndim < min_ndim:
        raise ValueError(f"{cls}: loc needs at least {min_ndim} dim(s) (the event), got shape ()")
    if _eager_values(scale) and not bool((scale > 0).all()):
        raise ValueError(f"{cls}: scale must be positive, got min {scale.min().item():.3g}")
    object.__setattr__(obj, "loc", loc)
    object.__setattr__(obj, "scale", scale)


def _normal_sample(loc: torch.Tensor, scale: torch.Tensor, key: torch.Tensor, shape: Any) -> Any:
    eps = R.normal(key, (*_shape(shape), *loc.shape), dtype=loc.dtype).to(loc.device)
    return loc + scale * eps


def _normal_log_prob(loc: torch.Tensor, scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    z = (x - loc) / scale
    return -0.5 * z * z - torch.log(scale) - _HALF_LOG_2PI


def _normal_entropy(scale: torch.Tensor) -> torch.Tensor:
    return 0.5 + _HALF_LOG_2PI + torch.log(scale)


@tree.struct
class Categorical:
    """Categorical over ``K`` classes from ``logits`` ``[..., K]`` (batch shape ``[...]``).

    ``-inf`` logits mask classes: their probability is 0, ``entropy`` and the
    ``log_prob`` of valid classes stay finite (and so do their gradients).  A row with
    every class masked is undefined (NaN).

    * ``probs = softmax(logits)``; ``log_prob(a) = log_softmax(logits)[a]`` (``a`` int,
      broadcast against the batch shape);
    * ``entropy = -sum_k p_k log p_k`` (terms with ``p_k = 0`` are 0);
    * ``sample(key, shape)`` -> int64 ``[*shape, ...]`` (Gumbel-max, ``funrl.random.categorical``);
    * ``mode() = argmax(logits)``.
    """

    logits: torch.Tensor

    def __post_init__(self) -> None:
        logits = _float_tensor(self.logits, "Categorical: logits")
        if logits.ndim < 1:
            raise ValueError("Categorical: logits need shape [..., K], got shape ()")

    @property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=-1)

    @property
    def log_probs(self) -> torch.Tensor:
        """``log_softmax(logits)``, ``[..., K]``."""
        return torch.log_softmax(self.logits, dim=-1)

    def sample(self, key: torch.Tensor, shape: Any = ()) -> torch.Tensor:
        return R.categorical(key, self.logits, (*_shape(shape), *self.logits.shape[:-1]))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype.is_floating_point or x.dtype == torch.bool:
            raise TypeError(f"Categorical.log_prob: x must be an integer tensor, got {x!r:.60}")
        lp = self.log_probs
        batch = torch.broadcast_shapes(x.shape, lp.shape[:-1])
        lp = lp.expand(*batch, lp.shape[-1])
        return lp.gather(-1, x.expand(batch).unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        lp = self.log_probs
        p = torch.exp(lp)
        return -torch.sum(p * torch.where(p > 0, lp, torch.zeros_like(lp)), dim=-1)

    def mode(self) -> torch.Tensor:
        return torch.argmax(self.logits, dim=-1)


@tree.struct
class Normal:
    """Elementwise normal ``N(loc, scale^2)``; ``loc``/``scale`` broadcast to one shape.

    * ``log_prob(x) = -(x - loc)^2 / (2 scale^2) - log(scale) - log(2 pi) / 2`` (elementwise);
    * ``entropy = 1/2 + log(2 pi) / 2 + log(scale)``; ``mode = loc``;
    * ``sample(key, shape) = loc + scale * eps`` (reparameterised), ``[*shape, *loc.shape]``.
    """

    loc: torch.Tensor
    scale: torch.Tensor

    def __post_init__(self) -> None:
        _loc_scale(self, 0)

    def sample(self, key: torch.Tensor, shape: Any = ()) -> torch.Tensor:
        return _normal_sample(self.loc, self.scale, key, shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return _normal_log_prob(self.loc, self.scale, x)

    def entropy(self) -> torch.Tensor:
        return _normal_entropy(self.scale)

    def mode(self) -> torch.Tensor:
        return self.loc


@tree.struct
class DiagNormal:
    """Diagonal multivariate normal over the last dim (an action vector), ``loc [..., D]``.

    As :class:`Normal`, but ``log_prob`` and ``entropy`` sum over the last dim
    (batch shape ``[...]``), like ``torch.distributions.Independent(Normal(loc, scale), 1)``.
    """

    loc: torch.Tensor
    scale: torch.Tensor

    def __post_init__(self) -> None:
        _loc_scale(self, 1)

    def sample(self, key: torch.Tensor, shape: Any = ()) -> torch.Tensor:
        return _normal_sample(self.loc, self.scale, key, shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return _normal_log_prob(self.loc, self.scale, x).sum(-1)

    def entropy(self) -> torch.Tensor:
        return _normal_entropy(self.scale).sum(-1)

    def mode(self) -> torch.Tensor:
        return self.loc


def _tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))``, stable for any ``u``."""
    return 2.0 * (_LOG2 - u - F.softplus(-2.0 * u))


@tree.struct
class TanhNormal:
    """``a = tanh(u)``, ``u ~ DiagNormal(loc, scale)`` (SAC's squashed Gaussian), ``loc [..., D]``.

    ``log p(a) = sum_d [log N(u_d; loc_d, scale_d) - log(1 - tanh(u_d)^2)]`` with the stable
    ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))``.

    * ``sample(key, shape)``: reparameterised ``tanh(loc + scale * eps)``, ``[*shape, ..., D]``.
    * ``sample_and_log_prob(key, shape)``: the sample and its log-density computed from the
      pre-tanh ``u`` (exact even where ``tanh`` saturates to ``+-1``).  Prefer this in losses.
    * ``log_prob(a)``: ``u = atanh(clamp(a, -1 + eps, 1 - eps))`` with
      ``eps = finfo(dtype).eps``: actions at (or rounded to) ``+-1`` get the density at the
      clamp point instead of ``inf``/NaN, so ``log_prob(tanh(u))`` is only accurate while
      ``|u|`` stays below about ``atanh(1 - eps)`` (8.3 in float32, 18.7 in float64).
    * ``mode() = tanh(loc)``: the deterministic (evaluation) action SAC uses; it is the
      image of the pre-tanh mode, not in general the mode of the squashed density.
    * ``entropy()`` has no closed form and raises; use ``entropy_estimate(key, n)``, the
      Monte-Carlo estimate ``-mean_i log p(a_i)`` over ``n`` samples.
    """

    loc: torch.Tensor
    scale: torch.Tensor

    def __post_init__(self) -> None:
        _loc_scale(self, 1)

    def sample(self, key: torch.Tensor, shape: Any = ()) -> torch.Tensor:
        return torch.tanh(_normal_sample(self.loc, self.scale, key, shape))

    def sample_and_log_prob(
        self, key: torch.Tensor, shape: Any = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u = _normal_sample(self.loc, self.scale, key, shape)
        logp = _normal_log_prob(self.loc, self.scale, u) - _tanh_log_det(u)
        return torch.tanh(u), logp.sum(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        eps = torch.finfo(x.dtype).eps
        u = torch.atanh(torch.clamp(x, -1.0 + eps, 1.0 - eps))
        return (_normal_log_prob(self.loc, self.scale, u) - _tanh_log_det(u)).sum(-1)

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError(
            "TanhNormal.entropy has no closed form; use entropy_estimate(key, n) for a "
            "Monte-Carlo estimate (or -log_prob of a sample, as SAC does)"
        )

    def entropy_estimate(self, key: torch.Tensor, n: int = 1) -> torch.Tensor:
        """Unbiased estimate ``-mean_i log p(a_i)`` over ``n`` keyed samples, batch shape."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"TanhNormal.entropy_estimate: n must be a positive int, got {n!r}")
        _, logp = self.sample_and_log_prob(key, (n,))
        return -logp.mean(0)

    def mode(self) -> torch.Tensor:
        return torch.tanh(self.loc)


#: Added to gSDE's variance before the square root (SB3's ``epsilon``): a row whose features
#: are all zero still has a positive scale.
GSDE_EPS = 1e-6


@tree.struct
class GSDE:
    """Generalised state-dependent exploration (gSDE; Raffin et al., 2022), unsquashed.

    ``a = loc + features @ W`` with an exploration matrix ``W ~ N(0, std^2)``
    (elementwise, ``[F, D]``): the noise is a deterministic function of the state while
    ``W`` is held, so an episode explores smoothly instead of jittering step by step.
    Given the features, each ``a_d`` is ``N(loc_d, scale_d)`` with
    ``scale = sqrt(features^2 @ std^2 + GSDE_EPS)``: ``log_prob`` and ``entropy`` are that
    diagonal normal's, as in SB3's ``StateDependentNoiseDistribution`` (PPO's and A2C's
    ``use_sde``; actions are clipped by the env).  :class:`TanhGSDE` is the squashed form.

    Fields: ``loc [..., D]`` (the mean action), ``features [..., F]`` (the policy's last
    hidden layer; SB3 detaches it, ``learn_features=False``), ``std [F, D]``
    (``exp(log_std)``, a parameter).

    * ``sample(key)`` / ``sample_and_log_prob(key)``: one matrix ``W`` drawn from ``key``
      for every row (gradients reach ``loc``, ``features`` and ``std``).
    * ``sample_and_log_prob_with(eps)`` / ``sample_with(eps)``: ``W = std * eps`` from
      standard normals ``eps``: ``[F, D]`` (one matrix) or ``[..., F, D]`` (one per row,
      e.g. per env, carried between steps and redrawn every ``sde_sample_freq`` steps).
    * ``log_prob(a)``, ``entropy()``: the diagonal normal ``N(loc, scale)``'s, summed over
      ``D``; ``mode() = loc``.

    Example::

        >>> import torch, funrl.random as R
        >>> d = GSDE(torch.zeros(5, 1), torch.ones(5, 3), torch.full((3, 1), 0.1))
        >>> a, logp = d.sample_and_log_prob(R.key(0))
        >>> a.shape, logp.shape, bool((a == a[0]).all())  # equal features, one matrix
        (torch.Size([5, 1]), torch.Size([5]), True)
    """

    loc: torch.Tensor
    features: torch.Tensor
    std: torch.Tensor

    def __post_init__(self) -> None:
        name = type(self).__name__
        loc = _float_tensor(self.loc, f"{name}: loc")
        feats = _float_tensor(self.features, f"{name}: features")
        std = _float_tensor(self.std, f"{name}: std")
        if loc.ndim < 1 or feats.ndim < 1 or std.ndim != 2:
            raise ValueError(
                f"{name}: need loc [..., D], features [..., F] and std [F, D], got shapes "
                f"{tuple(loc.shape)}, {tuple(feats.shape)}, {tuple(std.shape)}"
            )
        if std.shape != (feats.shape[-1], loc.shape[-1]) or loc.shape[:-1] != feats.shape[:-1]:
            raise ValueError(
                f"{name}: need loc [..., D], features [..., F] and std [F, D] with the same "
                f"leading dims, got {tuple(loc.shape)}, {tuple(feats.shape)}, {tuple(std.shape)}"
            )
        if _eager_values(std) and not bool((std > 0).all()):
            raise ValueError(f"{name}: std must be positive, got min {std.min().item():.3g}")

    def scale(self) -> torch.Tensor:
        """``sqrt(features^2 @ std^2 + GSDE_EPS)``, ``[..., D]``: each action's std."""
        return torch.sqrt((self.features * self.features) @ (self.std * self.std) + GSDE_EPS)

    def noise(self, eps: torch.Tensor) -> torch.Tensor:
        """``features @ (std * eps)``, ``[..., D]``; ``eps`` ``[F, D]`` or ``[..., F, D]``."""
        return (self.features.unsqueeze(-2) @ (self.std * eps)).squeeze(-2)

    def sample_and_log_prob_with(self, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.loc + self.noise(eps)
        return a, _normal_log_prob(self.loc, self.scale(), a).sum(-1)

    def sample_with(self, eps: torch.Tensor) -> torch.Tensor:
        return self.loc + self.noise(eps)

    def _eps(self, key: torch.Tensor) -> torch.Tensor:
        return R.normal(key, tuple(self.std.shape), dtype=self.std.dtype).to(self.std.device)

    def sample(self, key: torch.Tensor) -> torch.Tensor:
        return self.sample_with(self._eps(key))

    def sample_and_log_prob(self, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sample_and_log_prob_with(self._eps(key))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return _normal_log_prob(self.loc, self.scale(), x).sum(-1)

    def entropy(self) -> torch.Tensor:
        return _normal_entropy(self.scale()).sum(-1)

    def mode(self) -> torch.Tensor:
        return self.loc


@tree.struct
class TanhGSDE(GSDE):
    """:class:`GSDE`, tanh-squashed: ``a = tanh(u)``, ``u = loc + features @ W``.

    ``log_prob`` is the diagonal normal ``N(loc, scale)``'s density of ``u`` with the tanh
    correction (as :class:`TanhNormal`), as in SB3's
    ``StateDependentNoiseDistribution(squash_output=True)`` (SAC's ``use_sde``);
    ``mode() = tanh(loc)``; ``entropy()`` has no closed form and raises.  Sampling, fields
    and shapes as :class:`GSDE`.

    Example::

        >>> import torch, funrl.random as R
        >>> d = TanhGSDE(torch.zeros(5, 1), torch.ones(5, 3), torch.full((3, 1), 0.1))
        >>> a, logp = d.sample_and_log_prob(R.key(0))
        >>> a.shape, logp.shape, bool((a == a[0]).all())  # equal features, one matrix
        (torch.Size([5, 1]), torch.Size([5]), True)
    """

    def sample_and_log_prob_with(self, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.loc + self.noise(eps)
        logp = _normal_log_prob(self.loc, self.scale(), u) - _tanh_log_det(u)
        return torch.tanh(u), logp.sum(-1)

    def sample_with(self, eps: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.loc + self.noise(eps))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return TanhNormal(self.loc, self.scale()).log_prob(x)

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError(
            "TanhGSDE.entropy has no closed form; use -log_prob of a sample, as SAC does"
        )

    def mode(self) -> torch.Tensor:
        return torch.tanh(self.loc)


@tree.struct
class Deterministic:
    """A point mass at ``value`` (elementwise, any dtype): e.g. a DDPG/TD3 action.

    ``sample(key, shape)`` is ``value`` expanded to ``[*shape, *value.shape]`` (``key``
    unused), ``mode() = value``, ``log_prob(x) = 0`` where ``x == value`` else ``-inf``
    (elementwise, float), ``entropy() = 0``.
    """

    value: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.value, torch.Tensor):
            raise TypeError(
                f"Deterministic: value must be a tensor, got {type(self.value).__name__}"
            )

    def _float(self) -> torch.dtype:
        return self.value.dtype if self.value.dtype.is_floating_point else torch.float32

    def sample(self, key: torch.Tensor, shape: Any = ()) -> torch.Tensor:
        R.check_key(key)
        return self.value.expand(*_shape(shape), *self.value.shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros((), dtype=self._float(), device=self.value.device)
        return torch.where(x == self.value, zero, zero - math.inf)

    def entropy(self) -> torch.Tensor:
        return torch.zeros(self.value.shape, dtype=self._float(), device=self.value.device)

    def mode(self) -> torch.Tensor:
        return self.value


def _normal_kl(p: Any, q: Any) -> torch.Tensor:
    var_ratio = (p.scale / q.scale) ** 2
    t = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (var_ratio + t - 1.0 - torch.log(var_ratio))


def kl_divergence(p: Any, q: Any) -> torch.Tensor:
    """Exact ``KL(p || q) = E_p[log p - log q]``, shape = the batch shape.

    Supported pairs (same type):

    * ``Categorical``: ``sum_k p_k (log p_k - log q_k)``; classes with ``p_k = 0``
      contribute 0, a class with ``p_k > 0 = q_k`` gives ``inf``.
    * ``Normal`` (elementwise) and ``DiagNormal`` (summed over the last dim):
      ``log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2``.

    Example::

        >>> import torch
        >>> p, q = Normal(torch.tensor(0.0), torch.tensor(1.0)), Normal(torch.tensor(1.0), torch.tensor(1.0))
        >>> float(kl_divergence(p, q))
        0.5
    """
    if type(p) is not type(q):
        raise TypeError(
            f"kl_divergence: p and q must be the same type, got {type(p).__name__} and {type(q).__name__}"
        )
    if isinstance(p, Categorical):
        lp, lq = p.log_probs, q.log_probs
        probs = torch.exp(lp)
        diff = torch.where(probs > 0, lp - lq, torch.zeros_like(lp))
        return torch.sum(probs * diff, dim=-1)
    if isinstance(p, Normal):
        return _normal_kl(p, q)
    if isinstance(p, DiagNormal):
        return _normal_kl(p, q).sum(-1)
    raise TypeError(
        f"kl_divergence supports Categorical, Normal and DiagNormal pairs, got {type(p).__name__}"
    )
