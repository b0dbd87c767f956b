import os
import subprocess

import pytest
import torch
import torch._dynamo.config

import funrl
import funrl.random as R
from funrl.compiling import INDUCTOR_OPTIONS


def test_compile_matches_eager_for_random_draws():
    f = lambda k: R.randint(k, 0, 100, (16,))  # noqa: E731
    k = R.key(3)
    assert torch.equal(funrl.compile(f)(k), f(k))


def test_many_vmapped_functions_do_not_share_a_recompile_budget():
    # every torch.func.vmap wrapper shares one code object; dynamo counts graphs per code
    # object against recompile_limit (8) -- funrl.compile gives each its own
    with torch._dynamo.config.patch(recompile_limit=8, fail_on_recompile_limit_hit=True):
        for i in range(10):
            f = funrl.compile(torch.func.vmap(lambda x, i=i: x * i + 1))
            assert torch.equal(f(torch.ones(3)), torch.ones(3) * i + 1)


def test_options_and_wrapped_function():
    assert INDUCTOR_OPTIONS["realize_opcount_threshold"] > 0
    # vmapped keys are strided [N, 2]: inductor's heuristic would leave hashes unvectorised
    assert INDUCTOR_OPTIONS["cpp.enable_tiling_heuristics"] is False

    def g(x):
        return x + 1

    compiled = funrl.compile(g, options={"realize_opcount_threshold": 8})
    assert compiled(torch.zeros(1)).tolist() == [1.0]


def test_graph_pass_edits_the_graph_inductor_compiles():
    """graph_pass sees each dynamo graph before inductor; its edits change the result."""
    seen = []

    def negate_outputs(gm: torch.fx.GraphModule) -> None:
        seen.append(len(list(gm.graph.nodes)))
        out = gm.graph.output_node()
        with gm.graph.inserting_before(out):
            neg = gm.graph.call_function(torch.neg, (out.args[0][0],))
        out.args = ((neg,),)
        gm.recompile()

    f = funrl.compile(lambda x: x * 2.0, graph_pass=negate_outputs)
    assert f(torch.ones(3)).tolist() == [-2.0] * 3
    assert f(torch.ones(3)).tolist() == [-2.0] * 3 and len(seen) == 1  # compiled once
    assert INDUCTOR_OPTIONS["cpp_wrapper"] is True  # kernel calls from C++, not Python


def test_compile_events_say_what_compiles_and_for_how_long():
    """The progress display's source: a first call announces start and end, a cached call
    says nothing, a call with a new shape reports a recompile; without a listener the
    compiled function is silent."""
    from funrl.compiling import compile_events

    f = funrl.compile(lambda x: x * 2 + 1, name="double")
    events = []
    with compile_events(lambda name, event, s: events.append((name, event, s >= 0))):
        f(torch.ones(3))
        f(torch.ones(3))
        f(torch.ones(4))  # static shapes: a new graph
    assert [e[:2] for e in events] == [
        ("double", "start"),
        ("double", "end"),
        ("double", "recompile"),
    ]
    assert all(e[2] for e in events)
    events.clear()
    f(torch.ones(3))
    assert events == []


def test_compile_status_lines_without_a_terminal():
    import io

    from funrl.hooks import CompileStatus

    out = io.StringIO()
    status = CompileStatus(out)
    status("unit 'learn'", "start", 0.0)
    status("unit 'learn'", "end", 12.34)
    assert out.getvalue() == "compiling unit 'learn' ...\ncompiled unit 'learn' in 12.3 s\n"


def test_options_follow_the_device_a_call_computes_on():
    from funrl.compiling import _device_type, _vec_isa_options, options_for

    assert options_for("cpu") == {**INDUCTOR_OPTIONS, **_vec_isa_options()}
    assert "cpp.vec_isa_ok" not in options_for("cuda")
    # cpp_wrapper is a CPU win; on a GPU it compiled for minutes (RESULTS.md, CUDA)
    cuda = options_for("cuda")
    assert "cpp_wrapper" not in cuda
    assert cuda["realize_opcount_threshold"] == INDUCTOR_OPTIONS["realize_opcount_threshold"]
    # what the caller asks for wins on every device
    assert options_for("cuda", {"cpp_wrapper": True})["cpp_wrapper"] is True
    assert options_for("cpu", {"cpp_wrapper": False})["cpp_wrapper"] is False
    # the first tensor leaf decides; without one, the default device does
    meta = torch.zeros(2, device="meta")
    assert _device_type(({"a": [None, meta]},), {}) == "meta"
    assert _device_type((1, 2.0), {"x": None}) == "cpu"
    with torch.device("meta"):
        assert _device_type((), {}) == "meta"


_CACHE_SCRIPT = """
import torch, funrl, funrl.random as R
torch.set_num_threads(1)
f = funrl.compile(lambda k: R.normal(k, (8,)) * 2 + 1)
print("RESULT", f(R.key(3)).tolist())
"""


def _run_with_cache(cache: str) -> subprocess.CompletedProcess[str]:
    import sys

    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", _CACHE_SCRIPT]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _result(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))


def test_a_corrupt_or_unusable_inductor_cache_is_replaced_with_a_warning(tmp_path):
    cache = tmp_path / "cache"
    clean = _run_with_cache(str(cache))
    want = _result(clean)
    assert "funrl.compile" not in clean.stderr

    def spoil(keep_pickles: bool) -> None:
        for p in cache.rglob("*"):
            if "funrl-warm" in p.parts:  # funrl's own records, not inductor's cache
                continue
            if p.is_file() and not (keep_pickles and {"fxgraph", "aotautograd"} & set(p.parts)):
                size = p.stat().st_size
                p.write_bytes((b"\x80\xff garbage \x00" * (size // 12 + 1))[:size])

    spoil(keep_pickles=True)  # generated modules and libraries garbage: torch gives up
    broken = _run_with_cache(str(cache))
    assert _result(broken) == want
    assert f"the inductor cache {cache} could not be used" in broken.stderr, broken.stderr[-3000:]
    assert f"rm -rf {cache}" in broken.stderr
    spoil(keep_pickles=False)  # everything garbage: torch or funrl recompiles
    assert _result(_run_with_cache(str(cache))) == want
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("not a folder")
    odd = _run_with_cache(str(not_a_folder))
    assert _result(odd) == want
    assert f"the inductor cache {not_a_folder} could not be used" in odd.stderr, odd.stderr[-3000:]


def test_an_error_in_the_function_is_not_blamed_on_the_cache():
    import warnings

    import torch._dynamo.exc

    f = funrl.compile(lambda x: x @ torch.ones(3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cache warning
        with pytest.raises(torch._dynamo.exc.TorchRuntimeError):
            f(torch.ones(2, 5))


def test_an_error_after_a_first_good_call_is_not_blamed_on_the_cache(monkeypatch):
    import warnings

    from funrl import compiling

    calls = []

    def fake_build(fn, fullgraph, dynamic, opts, graph_pass, guard_filter=None):
        def run(x):
            calls.append(x)
            if len(calls) > 1:
                raise RuntimeError("the function's own failure")
            return x

        return run

    monkeypatch.setattr(compiling, "_build", fake_build)
    monkeypatch.setattr(compiling, "_swapped", [])
    f = compiling._compile(lambda x: x, True, False, None, None)
    assert f(1) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="the function's own failure"):
            f(2)
    assert compiling._swapped == []  # no fresh cache for an error at a later call


def test_vec_isa_is_checked_once_per_cache_then_trusted(tmp_path, monkeypatch, request):
    # inductor's own check (build + dlopen probes) runs where funrl has no record of it;
    # then the record says the ISA the CPU lists builds here, and inductor is told so
    from torch._inductor import cpu_vec_isa

    from funrl import compiling

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    compiling._vec_isa_options.cache_clear()
    request.addfinalizer(compiling._vec_isa_options.cache_clear)  # the real cache's, later
    checked = []
    real = cpu_vec_isa.pick_vec_isa

    def counting():
        checked.append(1)
        return real()

    monkeypatch.setattr(cpu_vec_isa, "pick_vec_isa", counting)
    first = compiling._vec_isa_options()
    marker = next(tmp_path.glob("funrl-warm/vec-isa-*"), None)
    if not str(real()):  # no vector ISA here: nothing to trust
        assert first == {} and marker is None
        return
    assert first == {"cpp.vec_isa_ok": True} and marker is not None
    assert marker.read_text() == str(real())
    n = len(checked)
    compiling._vec_isa_options.cache_clear()
    assert compiling._vec_isa_options() == first
    assert len(checked) == n + 1  # only the no-build listing, under vec_isa_ok=True
    # a record that no longer matches what the CPU lists: inductor checks again, and
    # where its check agrees with the list, the record is renewed
    marker.write_text("avx-from-another-machine")
    compiling._vec_isa_options.cache_clear()
    assert compiling._vec_isa_options() == first
    assert len(checked) == n + 4 and marker.read_text() == str(real())
    # where inductor's check disagrees with the list, nothing is trusted
    marker.unlink()
    from torch._inductor import config

    def disagreeing():  # the CPU lists one ISA, the build check settles on another
        return "listed-isa" if config.cpp.vec_isa_ok else "checked-isa"

    monkeypatch.setattr(cpu_vec_isa, "pick_vec_isa", disagreeing)
    compiling._vec_isa_options.cache_clear()
    assert compiling._vec_isa_options() == {} and not marker.exists()


# ----------------------------------------------------------------------------- guards

SCALE = 2.0


def _scaled(x):
    return x * SCALE


def _graphs():
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def test_pure_guards_still_catch_what_can_change_between_calls():
    """The lean default re-checks the arguments: a new shape, a Python scalar, a new key,
    aliased tensors and grad mode each get code of their own, and every result equals
    eager."""

    def f(a, b, n, d):
        return a * n + b, {k: v + a.sum() for k, v in d.items()}

    g = funrl.compile(f)
    x, y = torch.arange(3.0), torch.ones(3)
    cases = [
        (x, x, 2, {"u": y}),  # aliased: compiled with one input for a and b
        (x, y, 2, {"u": y}),  # now distinct: must not reuse the aliased graph
        (x, y, 3, {"u": y}),  # a new Python scalar
        (x, y, 3, {"u": y, "v": x}),  # a new key
        (torch.arange(4.0), torch.ones(4), 3, {"u": torch.ones(4)}),  # a new shape
        (x.double(), y.double(), 3, {"u": y.double()}),  # a new dtype
    ]
    for args in cases:
        got, want = g(*args), f(*args)
        assert torch.equal(got[0], want[0]) and sorted(got[1]) == sorted(want[1])
        assert all(torch.equal(got[1][k], want[1][k]) for k in want[1])
    h = funrl.compile(lambda a: a * 2.0)
    w = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        assert not h(w).requires_grad
    assert h(w).requires_grad  # grad mode is torch's global state: still guarded


def test_pure_guards_drop_globals_and_guards_all_keeps_them():
    global SCALE
    pure, full = funrl.compile(_scaled), funrl.compile(_scaled, guards="all")
    x = torch.arange(3.0)
    try:
        assert torch.equal(pure(x), 2 * x) and torch.equal(full(x), 2 * x)
        SCALE = 5.0
        assert torch.equal(full(x), 5 * x)  # dynamo's guards notice the global
        assert torch.equal(pure(x), 2 * x)  # documented: code is tied to its first call
    finally:
        SCALE = 2.0
    with pytest.raises(ValueError, match="guards must be 'pure' or 'all'"):
        funrl.compile(_scaled, guards="some")


def test_pure_guards_drop_the_module_identity_checks():
    from funrl.compiling import pure_guards

    seen = {}

    def spy(entries):
        keep = pure_guards(entries)
        seen["types"] = {e.guard_type for e, k in zip(entries, keep) if k}
        seen["dropped"] = sum(not k for k in keep)
        seen["globals"] = [e for e, k in zip(entries, keep) if k and e.is_global]
        return keep

    def f(state, key):
        return funrl.tree.map(lambda v: v + R.normal(key, v.shape), state)

    g = torch.compile(f, fullgraph=True, backend="eager", options={"guard_filter_fn": spy})
    state = {"w": torch.zeros(3), "b": (torch.ones(2), torch.zeros(()))}
    g(state, R.key(0))
    assert "TENSOR_MATCH" in seen["types"] and seen["dropped"] > 0 and not seen["globals"]
    assert not {"TYPE_MATCH", "CLOSURE_MATCH"} & seen["types"]
