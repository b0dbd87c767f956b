"""``grad`` and ``grad_and_value``: :func:`torch.func.grad`'s contract, half its eager cost.

The algorithms differentiate a loss with respect to a params pytree.  Under
``torch.compile`` and ``vmap`` that must be ``torch.func.grad`` (a functional transform
that composes with both).  Eagerly, with plain tensors, ``torch.func.grad`` wraps every
tensor of the forward and backward pass in a functorch wrapper, which doubles the cost
of the small networks RL uses (PPO CartPole's loss and gradient: 2.1 ms with
``torch.func.grad``, 1.1 ms through ``torch.autograd.grad``, one thread).  So these take
the plain autograd route where it is the same computation: not compiling or tracing, no
functorch transform active (no ``vmap``/``grad`` around the call), no dispatch mode, not
in inference mode, and every params leaf a floating tensor.  Anywhere else they are
``torch.func.grad``/``grad_and_value``.

The results are the same tensors either way (the same backward formulas run; the
algorithms' golden tests hold bit for bit): gradients detached, a leaf the loss does not
use gets zeros, the loss and ``aux`` come back detached.  Only ``argnums=0`` is
supported: the functions differentiate their first argument.

    >>> import torch
    >>> from funrl import autodiff
    >>> f = lambda p: ((p["w"] * 3.0) ** 2).sum()
    >>> autodiff.grad(f)({"w": torch.tensor([1.0, 2.0])})["w"]
    tensor([18., 36.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from funrl import tree

__all__ = ["grad", "grad_and_value"]

_F = torch._C._functorch


def _plain(params: Any) -> bool:
    """Whether the autograd route applies to ``params`` (see the module docstring)."""
    if (
        torch.compiler.is_compiling()
        or _F.peek_interpreter_stack() is not None
        or torch._C._len_torch_dispatch_stack()
        or torch.is_inference_mode_enabled()
    ):
        return False
    return all(
        type(x) is torch.Tensor
        and x.dtype.is_floating_point
        and not _F.is_functorch_wrapped_tensor(x)
        and not x.is_inference()
        for x in tree.leaves(params)
    )


def _detach(x: Any) -> Any:
    return tree.map(lambda t: t.detach() if isinstance(t, torch.Tensor) else t, x)


def _autograd(
    f: Callable[..., Any], params: Any, args: tuple[Any, ...], has_aux: bool
) -> tuple[Any, Any]:
    """``(grads, output)`` through ``torch.autograd.grad`` (``output`` as ``f`` returned it,
    detached)."""
    leaves, spec = tree.flatten(params)
    xs = [x.detach().requires_grad_(True) for x in leaves]
    with torch.enable_grad():
        out = f(tree.unflatten(xs, spec), *args)
        if has_aux and not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(
                "autodiff.grad: with has_aux=True the function must return a (loss, aux) "
                f"tuple, got {type(out).__name__}"
            )
        loss = out[0] if has_aux else out
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(
                "autodiff.grad: the function must return a tensor with one element "
                f"(the loss){' as the first of (loss, aux)' if has_aux else ''}, got "
                f"{type(loss).__name__}"
                f"{'' if not isinstance(loss, torch.Tensor) else f' of shape {tuple(loss.shape)}'}"
            )
        gs: tuple[torch.Tensor | None, ...]
        if loss.requires_grad:
            gs = torch.autograd.grad(loss, xs, allow_unused=True)
        else:  # the loss does not depend on the params at all
            gs = (None,) * len(xs)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, gs, strict=True)]
    return tree.unflatten(grads, spec), _detach(out)


def grad_and_value(f: Callable[..., Any], has_aux: bool = False) -> Callable[..., tuple[Any, Any]]:
    """``torch.func.grad_and_value(f, has_aux=has_aux)`` (first argument only): returns
    ``(grads, loss)``, or ``(grads, (loss, aux))`` with ``has_aux``."""

    def run(params: Any, *args: Any) -> tuple[Any, Any]:
        if not _plain(params):
            return torch.func.grad_and_value(f, has_aux=has_aux)(params, *args)  # type: ignore[no-any-return]
        return _autograd(f, params, args, has_aux)

    return run


def grad(f: Callable[..., Any], has_aux: bool = False) -> Callable[..., Any]:
    """``torch.func.grad(f, has_aux=has_aux)`` (first argument only): returns ``grads``, or
    ``(grads, aux)`` with ``has_aux``."""
    grad_value = grad_and_value(f, has_aux)

    def run(params: Any, *args: Any) -> Any:
        grads, out = grad_value(params, *args)
        return (grads, out[1]) if has_aux else grads

    return run
