from typing import NamedTuple

import pytest
import torch
from hypothesis import given

import funrl.tree as T
from funrl.testing import check_transforms
from funrl.testing import strategies as fst


@T.struct
class State:
    w: torch.Tensor
    step: torch.Tensor
    name: str = T.field(static=True, default="s")


class Pair(NamedTuple):
    a: torch.Tensor
    b: dict


def make_state(x: float = 1.0) -> State:
    return State(torch.full((3,), x), torch.tensor(0))


def test_struct_is_frozen_pytree_with_replace():
    s = make_state()
    with pytest.raises(AttributeError):
        s.w = torch.zeros(3)  # type: ignore[misc]
    s2 = s.replace(step=torch.tensor(4))
    assert int(s2.step) == 4 and int(s.step) == 0 and s2.name == "s"
    assert len(T.leaves(s)) == 2  # the static field is not a leaf
    flat, spec = T.flatten(s)
    back = T.unflatten(flat, spec)
    assert isinstance(back, State) and back.name == "s" and T.all_equal(back, s)


@T.struct
class Checked:
    x: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 1:
            raise ValueError("x must be 1-d")


def test_replace_checks_names_and_runs_post_init():
    s = make_state()
    with pytest.raises(TypeError, match="unknown field 'steps'"):
        s.replace(steps=torch.tensor(1))
    assert s.replace(name="t").name == "t" and s.name == "s"  # static fields too
    c = Checked(torch.zeros(2))
    with pytest.raises(ValueError, match="1-d"):
        c.replace(x=torch.zeros(()))


def test_replace_adds_no_per_call_guards_under_compile():
    """replace reads no class attributes while traced: compiled, it re-checks nothing of
    the class on each call (dataclasses.replace made dozens of Python guards)."""
    from torch._dynamo.testing import CompileCounter

    cnt = CompileCounter()
    f = torch.compile(lambda s: s.replace(step=s.step + 1), backend=cnt, fullgraph=True)
    out = f(make_state())
    assert int(out.step) == 1 and cnt.frame_count == 1
    guards = torch._dynamo.eval_frame._debug_get_cache_entry_list(
        torch._dynamo.eval_frame.innermost_fn(f)
    )
    assert guards  # compiled once
    code = "\n".join(str(e.guard_manager) for e in guards)
    assert "__dataclass_fields__" not in code and "_field_type" not in code


def test_struct_static_field_is_part_of_structure():
    a, b = make_state(), State(torch.ones(3), torch.tensor(0), name="other")
    assert T.structure(a) != T.structure(b)


def test_struct_rejects_non_class():
    with pytest.raises(TypeError, match="expects a class"):
        T.struct(3)  # type: ignore[arg-type]


def test_struct_through_vmap_grad_compile():
    states = T.stack([make_state(1.0), make_state(2.0)])

    def f(s: State) -> State:
        return s.replace(w=s.w * 2, step=s.step + 1)

    out = check_transforms(f, states)
    assert isinstance(out, State) and out.w[1].tolist() == [4.0] * 3

    g = torch.func.grad(lambda w, s: (s.replace(w=w).w ** 2).sum())(
        torch.full((3,), 3.0), make_state()
    )
    assert g.tolist() == [6.0] * 3
    params = State(torch.full((3,), 3.0), torch.tensor(1.0))
    gs = torch.func.grad(lambda s: (s.w**2).sum() * s.step)(params)
    assert isinstance(gs, State) and gs.w.tolist() == [6.0] * 3 and float(gs.step) == 27.0


def test_map_stack_unstack_index():
    trees = [Pair(torch.tensor([float(i)]), {"x": torch.tensor(i)}) for i in range(4)]
    st = T.stack(trees)
    assert st.a.shape == (4, 1) and st.b["x"].tolist() == [0, 1, 2, 3]
    assert all(T.all_equal(u, t) for u, t in zip(T.unstack(st), trees))
    assert T.index(st, 2).b["x"].item() == 2
    assert T.index(st, slice(1, 3)).a.shape == (2, 1)
    assert T.map(lambda x, y: x + y, st, st).b["x"].tolist() == [0, 2, 4, 6]


def test_stack_errors():
    with pytest.raises(ValueError, match="at least one tree"):
        T.stack([])
    with pytest.raises(ValueError, match="tree 1 has structure"):
        T.stack([{"a": torch.zeros(1)}, {"b": torch.zeros(1)}])
    with pytest.raises(ValueError, match="same leading dim"):
        T.unstack({"a": torch.zeros(2), "b": torch.zeros(3)})


def test_where_selects_members_by_leading_mask():
    a = {"x": torch.zeros(3, 2), "y": torch.zeros(3)}
    b = {"x": torch.ones(3, 2), "y": torch.ones(3)}
    out = T.where(torch.tensor([True, False, True]), a, b)
    assert out["x"][:, 0].tolist() == [0.0, 1.0, 0.0] and out["y"].tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(TypeError, match="bool tensor"):
        T.where(torch.tensor([1, 0, 1]), a, b)


def test_where_under_transforms():
    masks = torch.tensor([True, False])
    a = {"x": torch.arange(6.0).reshape(2, 3)}
    b = {"x": -torch.arange(6.0).reshape(2, 3)}
    out = check_transforms(lambda m, x, y: T.where(m, x, y), masks, a, b)
    assert out["x"][1].tolist() == [-3.0, -4.0, -5.0]


def test_global_norm_matches_clip_grad_norm():
    tree = {
        "a": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
        "b": [torch.ones(5)],
    }
    params = [torch.nn.Parameter(torch.zeros_like(x)) for x in T.leaves(tree)]
    for p, g in zip(params, T.leaves(tree)):
        p.grad = g.clone()
    ref = torch.nn.utils.clip_grad_norm_(params, max_norm=1e9)
    assert torch.allclose(T.global_norm(tree), ref)
    assert float(T.global_norm({})) == 0.0


def test_arithmetic_and_like_helpers():
    t = {"a": torch.ones(2), "b": (torch.full((1,), 3.0), torch.tensor([1, 2]))}
    assert T.add(t, t)["a"].tolist() == [2.0, 2.0]
    assert T.sub(t, t)["b"][0].tolist() == [0.0]
    assert T.scale(t, 2.0)["b"][0].tolist() == [6.0]
    assert T.zeros_like(t)["a"].tolist() == [0.0, 0.0]
    assert T.ones_like(t)["b"][1].tolist() == [1, 1]
    assert T.full_like(t, 7)["a"].tolist() == [7.0, 7.0]
    c = T.cast(t, torch.float64)
    assert c["a"].dtype == torch.float64 and c["b"][1].dtype == torch.int64
    assert T.num_elements(t) == 5


def test_allclose_and_all_equal():
    a = {"x": torch.tensor([1.0, float("nan")])}
    assert T.allclose(a, {"x": torch.tensor([1.0 + 1e-7, float("nan")])})
    assert not T.all_equal(a, {"x": torch.tensor([1.0 + 1e-3, float("nan")])})
    assert not T.allclose(a, {"y": torch.tensor([1.0, 0.0])})


@given(fst.pytrees())
def test_flatten_roundtrip_property(tree):
    flat, spec = T.flatten(tree)
    assert T.all_equal(T.unflatten(flat, spec), tree)
    doubled = T.map(lambda x: x * 2, tree)
    assert all(torch.equal(x * 2, y) for x, y in zip(T.leaves(tree), T.leaves(doubled)))


def test_contiguous_fixes_strides_and_keeps_values():
    x = torch.arange(12.0).reshape(3, 4)
    t = {"a": x.t(), "b": torch.zeros(3).expand(2, 3), "c": x, "n": None}
    out = T.contiguous(t)
    assert out["n"] is None and all(out[k].is_contiguous() for k in "abc")
    assert out["c"] is x  # already contiguous: the same tensor
    assert all(torch.equal(out[k], t[k]) for k in "abc")
    check_transforms(lambda a: T.contiguous({"t": a.t()}), torch.randn(3, 2, 4))


def test_contiguous_gives_each_leaf_its_own_tensor():
    x, y = torch.arange(3), torch.zeros(2, 3).t()
    out = T.contiguous({"a": x, "b": x, "c": (x, y, y)})
    leaves = T.leaves(out)
    assert len({id(v) for v in leaves}) == len(leaves) == 5
    assert out["a"] is x and all(torch.equal(v, x) for v in (out["b"], out["c"][0]))
    assert torch.equal(out["c"][1], y) and torch.equal(out["c"][2], y)


def test_contiguous_gives_row_major_strides_size_one_dims_included():
    t = torch.zeros(4, 1, 3).transpose(0, 2)
    e = torch.zeros(()).expand(5)
    out = T.contiguous({"t": t, "e": e, "n": None})
    assert out["t"].stride() == (4, 4, 1) and out["e"].stride() == (1,) and out["n"] is None


def test_is_row_major_compares_every_stride_size_one_dims_included():
    assert T.is_row_major(torch.zeros(3, 4)) and T.is_row_major(torch.zeros(()))
    assert not T.is_row_major(torch.zeros(4, 3).t())
    odd = torch.zeros(4, 1).t()  # [1, 4] with strides (1, 1): "contiguous" to torch
    assert odd.is_contiguous() and not T.is_row_major(odd)
    assert T.is_row_major(T.contiguous(odd))
