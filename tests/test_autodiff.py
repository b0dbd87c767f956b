import pytest
import torch

from funrl import autodiff, tree
from funrl.testing import check_transforms


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(16, 4, generator=g, dtype=torch.float64)
    return {
        "w1": w1.t().contiguous().t(),  # transposed strides, as nn.init returns them
        "b1": torch.randn(16, generator=g, dtype=torch.float64),
        "w2": torch.randn(3, 16, generator=g, dtype=torch.float64),
        "unused": torch.randn(5, generator=g, dtype=torch.float64),
    }


def _loss(p, x, y):
    h = torch.tanh(x @ p["w1"].T + p["b1"])
    logits = h @ p["w2"].T
    loss = torch.nn.functional.cross_entropy(logits, y)
    return loss, {"loss": loss, "entropy": -(logits.softmax(-1) * logits.log_softmax(-1)).sum()}


def _data(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 4, generator=g, dtype=torch.float64), torch.randint(
        0, 3, (32,), generator=g
    )


def _same(a, b):
    la, sa = tree.flatten(a)
    lb, sb = tree.flatten(b)
    assert sa == sb
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and x.stride() == y.stride()
        assert torch.equal(x, y)
        assert not x.requires_grad


def test_eager_route_equals_torch_func_bit_for_bit():
    p, (x, y) = _params(), _data()
    assert autodiff._plain(p) is True  # the autograd route is taken
    _same(
        autodiff.grad(_loss, has_aux=True)(p, x, y), torch.func.grad(_loss, has_aux=True)(p, x, y)
    )
    _same(
        autodiff.grad_and_value(_loss, has_aux=True)(p, x, y),
        torch.func.grad_and_value(_loss, has_aux=True)(p, x, y),
    )
    plain = lambda p, x, y: _loss(p, x, y)[0]  # noqa: E731
    _same(autodiff.grad(plain)(p, x, y), torch.func.grad(plain)(p, x, y))
    _same(autodiff.grad_and_value(plain)(p, x, y), torch.func.grad_and_value(plain)(p, x, y))
    g = autodiff.grad(plain)(p, x, y)
    assert torch.equal(g["unused"], torch.zeros(5, dtype=torch.float64))  # unused: zeros
    assert not any(t.requires_grad for t in tree.leaves(p))  # params untouched


def test_a_loss_without_the_params_gives_zero_gradients():
    p = _params()
    g, v = autodiff.grad_and_value(lambda p: torch.tensor(3.0))(p)
    assert v == 3.0 and all(torch.equal(t, torch.zeros_like(t)) for t in tree.leaves(g))
    _same(g, torch.func.grad(lambda p: torch.tensor(3.0))(p))


def test_params_that_require_grad_and_no_grad_mode():
    p = {k: v.clone().requires_grad_() for k, v in _params().items()}
    x, y = _data()
    with torch.no_grad():
        g = autodiff.grad(lambda p: _loss(p, x, y)[0])(p)
    want = torch.func.grad(lambda p: _loss(p, x, y)[0])(_params())
    _same(g, want)
    assert all(t.grad is None for t in p.values())  # nothing accumulated into .grad


def test_falls_back_to_torch_func_under_vmap_compile_and_nested_grad():
    p, (x, y) = _params(), _data()
    members = tree.map(lambda t: torch.stack([t, 2 * t]), p)

    def g(p):
        return autodiff.grad(lambda q: _loss(q, x, y)[0])(p)

    check_transforms(g, members, compile=True, members=2, rtol=1e-12, atol=1e-12)

    def hessian_diag(p):  # the outer transform wraps the inner call's params
        return torch.func.grad(lambda q: g(q)["b1"].sum())(p)["b1"]

    want = torch.func.grad(lambda q: torch.func.grad(lambda r: _loss(r, x, y)[0])(q)["b1"].sum())(
        p
    )["b1"]
    assert torch.equal(hessian_diag(p), want)


def test_where_the_autograd_route_does_not_apply():
    p = _params()
    assert autodiff._plain({"n": torch.tensor([1, 2])}) is False  # integer leaves
    with torch.inference_mode():
        assert autodiff._plain(p) is False
    with torch._subclasses.FakeTensorMode():
        assert autodiff._plain(p) is False
    seen = []
    torch.vmap(lambda q: seen.append(autodiff._plain(q)) or q["b1"])(tree.map(lambda t: t[None], p))
    assert seen == [False]


def test_clear_errors():
    p, (x, y) = _params(), _data()
    with pytest.raises(ValueError, match="one element"):
        autodiff.grad(lambda p: p["b1"] * 2)(p)
    with pytest.raises(ValueError, match=r"\(loss, aux\) tuple"):
        autodiff.grad(lambda p: _loss(p, x, y)[0], has_aux=True)(p)
