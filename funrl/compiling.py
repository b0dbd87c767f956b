"""``funrl.compile``: ``torch.compile`` with the settings funrl's pure functions need.

funrl's keys are Threefry-2x32 hashes: ~200 dependent integer ops whose intermediates are
each read several times.  Inductor's default heuristics inline such producers into every
consumer, so one sampler becomes a kernel body of ~1000 ops: code generation alone took
~20 s per call site on a 2-core CPU, and a compiled PPO update ~5 minutes to compile.
Capping how many ops inductor inlines before it materialises an intermediate
(``realize_opcount_threshold``) keeps kernels small: compile time falls several-fold and
the compiled code runs as fast or faster (see benchmarks/RESULTS.md, "Compile settings").

Inductor's CPU backend also refuses to vectorise a loop whose body has 35 or more
non-contiguous loads or stores (``cpp.enable_tiling_heuristics``).  vmapped funrl code
trips that all the time: a batch of keys is ``[N, 2]`` (each word a stride-2 column) and
every Threefry chunk re-reads the key words, so whole hashes ran one lane at a time.
Switching the heuristic off vectorises them (strided reads become small gathers).
Measured on 1 thread: random-action CartPole, 4096 envs, one compiled step
(benchmarks/bench_envs.py) 18.7 -> 23.3 M steps/s; a compiled PPO update
(benchmarks/bench_compile_options.py) compiles in 25.5 s instead of 23.0 s and runs as
fast (17-18 ms).

Finally, inductor writes the code that calls a compiled graph's kernels in C++
(``cpp_wrapper``) instead of Python.  funrl's units are many small kernels and matmuls
whose Python wrapper allocated and stride-checked every buffer (~31 us per DQN gradient
step); in C++ the fused DQN bench config runs 39.0k -> 55.8k env-steps/s and a 16 x 64
PPO CartPole update 59.3k -> 66.4k, at about the same compile time
(benchmarks/bench_compile_options.py, see benchmarks/RESULTS.md).

The options are chosen at a function's first call, from the device it computes on
(:func:`options_for`): ``cpp_wrapper`` only on the CPU.

A corrupt or unusable inductor cache (``TORCHINDUCTOR_CACHE_DIR``, default
``/tmp/torchinductor_<user>``: truncated or foreign files, a file where the folder
should be, no write permission) never stops a run: when compiling fails in a way that
can come from the cache, funrl points inductor at a fresh temporary folder, compiles
every function again there, and warns once naming the bad folder and ``rm -rf`` for it.
An error in the function itself (a graph break, a shape error) is raised as it is.

Every call of a compiled function first runs dynamo's guards, the checks that the code
compiled for the first call still applies.  For a funrl unit they were ~1,600 checks per
call (DQN's collect and learn units), mostly on things that cannot change between two calls
of a pure function: the identity of every module and function it reaches (730 ``is``
checks that ``funrl.tree`` is ``funrl.tree``), the constants in its closures (the static
config), and the class of every node of its argument pytrees.  That cost ~100 us per call,
as much as the DQN gradient step itself.  By default (``guards="pure"``,
:func:`pure_guards`) funrl keeps the checks that can fail for a pure function's arguments
and drops the rest:

* kept: every tensor's shape, stride, dtype, device and aliasing; the lengths and keys of
  the argument containers; Python scalars among the arguments; torch's global state (grad
  mode, vmap level, default device, deterministic algorithms);
* dropped: guards on globals and closures, and on the classes of argument nodes.

Unchanged numbers, and a DQN CartPole update with one gradient step per compiled call
runs ~1.3x faster (benchmarks/RESULTS.md, "Session 13").  The price: a compiled function
does not notice a global or a closure variable that changed after its first call
(rebuild it, e.g. ``algo.remake()``, or pass ``guards="all"`` for dynamo's own checks).
Where torch had already recovered some graphs from the bad cache on its own before
giving up, results match a clean compile's to float32 rounding (a relative 1e-8 after
three PPO updates, tests/test_compiling.py and RESULTS.md), not bit for bit.

Use it wherever you would call ``torch.compile`` on code that draws from ``funrl.random``::

    >>> import functools
    >>> import funrl
    >>> f = funrl.compile(functools.partial(funrl.random.normal, shape=(3,)))
    >>> f(funrl.random.key(0)).shape
    torch.Size([3])
"""

from __future__ import annotations

import contextlib
import enum
import functools
import itertools
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["INDUCTOR_OPTIONS", "compile", "compile_events", "options_for", "pure_guards"]

#: Inductor options funrl compiles with (merged under any ``options`` you pass).
INDUCTOR_OPTIONS: dict[str, Any] = {
    "realize_opcount_threshold": 30,
    "cpp.enable_tiling_heuristics": False,
    "cpp_wrapper": True,
}

_ids = itertools.count()


def _own_code(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A trampoline to ``fn`` with a code object of its own.

    Dynamo keeps compiled graphs per code object and counts every new graph for the same
    code object against ``recompile_limit`` (8).  Functions built by the same factory
    share a code object (every ``torch.func.vmap(f)`` wrapper does), so compiling eight
    different units would silently hit the limit; a fresh code object per compiled
    function keeps their caches apart.
    """

    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    name = f"funrl_compiled_{getattr(fn, '__name__', 'fn')}_{next(_ids)}"
    code = (
        call.__code__.replace(co_name=name, co_qualname=name)
        if hasattr(call.__code__, "co_qualname")
        else call.__code__.replace(co_name=name)
    )
    out = types.FunctionType(code, call.__globals__, name, None, call.__closure__)
    out.__wrapped__ = fn  # type: ignore[attr-defined]
    return out


CompileListener = Callable[[str, str, float], None]
_listeners: list[CompileListener] = []


@contextlib.contextmanager
def compile_events(listener: CompileListener) -> Iterator[None]:
    """Call ``listener(name, event, seconds)`` while functions from :func:`compile`
    compile inside the block: ``event`` is ``"start"`` (before a first call, which
    compiles), ``"end"`` (``seconds`` it took) or ``"recompile"`` (a later call that
    compiled a new graph, ``seconds`` it took).  The host loop's progress display uses it
    to say which unit is compiling and for how long."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _reporting(compiled: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``compiled`` that tells :func:`compile_events` listeners when it compiles."""
    first = True

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal first
        if not _listeners:
            first = False
            return compiled(*args, **kwargs)
        was_first, first = first, False
        graphs, t0 = _graphs(), time.perf_counter()
        if was_first:
            for listener in list(_listeners):
                listener(name, "start", 0.0)
        out = compiled(*args, **kwargs)
        dt = time.perf_counter() - t0
        if was_first or _graphs() != graphs:
            for listener in list(_listeners):
                listener(name, "end" if was_first else "recompile", dt)
        return out

    call.__wrapped__ = compiled  # type: ignore[attr-defined]
    return call


def compile(
    fn: Callable[..., Any],
    *,
    fullgraph: bool = True,
    dynamic: bool = False,
    options: dict[str, Any] | None = None,
    graph_pass: Callable[[torch.fx.GraphModule], None] | None = None,
    name: str | None = None,
    guards: str = "pure",
) -> Callable[..., Any]:
    """``torch.compile(fn)`` with static shapes, no graph breaks and :data:`INDUCTOR_OPTIONS`.

    Args:
      fn: a pure function of tensors/pytrees.
      fullgraph: fail on a graph break instead of silently splitting (funrl's pure
        functions never need one).
      dynamic: compile for dynamic shapes (funrl's shapes are static per config).
      options: extra inductor options; they override :data:`INDUCTOR_OPTIONS`.
      graph_pass: edits each dynamo graph in place before inductor compiles it (e.g.
        :mod:`funrl.algos.units` makes non-contiguous outputs contiguous).
      name: what :func:`compile_events` listeners are told is compiling (default: the
        function's name).
      guards: ``"pure"`` (default): re-check per call only what can change between calls
        of a pure function (:func:`pure_guards`); ``"all"``: every guard dynamo installs
        (also notices a changed global or closure variable, at ~100 us per call).
    """
    if guards not in ("pure", "all"):
        raise ValueError(f"funrl.compile: guards must be 'pure' or 'all', got {guards!r}")
    label = name or str(getattr(fn, "__name__", "function"))
    filt = pure_guards if guards == "pure" else None
    return _reporting(_compile(fn, fullgraph, dynamic, options, graph_pass, filt), label)


#: Guard types on the Python objects of an argument pytree (its nodes' classes, what their
#: ``__dict__`` holds) that :func:`pure_guards` drops unless they guard a Python scalar.
_NODE_GUARDS = frozenset({
    "TYPE_MATCH", "CLASS_MATCH", "DICT_CONTAINS", "DICT_NOT_CONTAINS",
    "NOT_PRESENT_IN_GENERIC_DICT", "BUILTIN_MATCH", "CLOSURE_MATCH",
})  # fmt: skip


#: Python values a guard on an argument may hold that :func:`pure_guards` always keeps.
_SCALARS = (bool, int, float, complex, str, bytes, type(None), enum.Enum, torch.dtype,
            torch.device)  # fmt: skip


def _scalar(entry: Any) -> bool:
    return bool(entry.has_value) and isinstance(entry.value, _SCALARS)


def pure_guards(entries: list[Any]) -> list[bool]:
    """The dynamo guard filter :func:`compile` uses by default (``guards="pure"``): which of
    ``entries`` (``torch._dynamo.types.GuardFilterEntry``) to keep.

    Keeps every guard on the arguments and torch's global state (tensor metadata and
    aliasing, container lengths and keys, Python scalars, grad mode, vmap level, ...);
    drops guards on globals and closures (fixed for a compiled pure function: its code and
    config) and on the classes of argument nodes (``TYPE_MATCH`` and kin; a pytree whose
    leaves sit at the same paths with the same metadata has the same structure for funrl's
    immutable state).
    """
    keep = []
    for e in entries:
        if e.is_global or "__closure__" in e.name:
            keep.append(False)
        elif e.guard_type == "DUPLICATE_INPUT":  # the same tensor passed twice: keep
            keep.append(bool(e.has_value) and isinstance(e.value, torch.Tensor))
        else:
            keep.append(e.guard_type not in _NODE_GUARDS or _scalar(e))
    return keep


#: Options in :data:`INDUCTOR_OPTIONS` that only pay on the CPU backend.  On a GPU,
#: ``cpp_wrapper`` builds the wrapper with the CUDA toolchain: a compiled CartPole step
#: did not finish compiling within 60 s on an H100 with it, 58.6 s without (session 4,
#: RESULTS.md "CUDA, first run"; not re-measured with it on since).
_CPU_ONLY_OPTIONS = ("cpp_wrapper",)


def _device_type(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The device type a call computes on: its first tensor's, else the default device's."""
    import optree

    leaves: list[Any] = optree.tree_leaves((args, kwargs), none_is_leaf=False)  # type: ignore[arg-type]
    for x in leaves:
        if isinstance(x, torch.Tensor):
            return x.device.type
    return torch.get_default_device().type


def options_for(device_type: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The inductor options :func:`compile` uses for code on ``device_type``:
    :data:`INDUCTOR_OPTIONS` (less the CPU-only ones off the CPU, plus
    :func:`_vec_isa_options` on it) under ``options``."""
    base = dict(INDUCTOR_OPTIONS)
    if device_type != "cpu":
        for k in _CPU_ONLY_OPTIONS:
            base.pop(k, None)
    else:
        base.update(_vec_isa_options())
    return {**base, **(options or {})}


@functools.cache
def _vec_isa_options() -> dict[str, Any]:
    """``{"cpp.vec_isa_ok": True}`` where the CPU's vector ISA is known to build here.

    Inductor picks the widest SIMD ISA the CPU lists and checks, in every process, that
    the compiler builds and loads code for it (two test libraries and two ``dlopen``
    probe processes: ~5 s the first time, ~0.9 s with a warm cache).  funrl lets it
    check once per cache folder, remembers the answer in a file there
    (``funrl-warm/vec-isa-<torch>``), and from then on tells inductor the ISA is fine
    (``cpp.vec_isa_ok``) where the CPU still lists the same one.  The option is passed
    from the first compile on, so cached code matches across processes.  Nothing changes
    where you set ``TORCHINDUCTOR_VEC_ISA_OK``, ``cpp.simdlen`` or ``ATEN_CPU_CAPABILITY``,
    or where the check and the CPU's list disagree.
    """
    out: dict[str, Any] = {}
    try:
        import os

        from torch._inductor import config
        from torch._inductor import cpu_vec_isa as isa

        if (
            config.cpp.vec_isa_ok is None
            and config.cpp.simdlen is None
            and not os.environ.get("ATEN_CPU_CAPABILITY")
        ):
            from funrl.warmup import cache_dir  # funrl's records in the inductor cache

            marker = cache_dir() / f"vec-isa-{torch.__version__}"

            def listed() -> str:  # what the CPU lists, no build check
                isa.valid_vec_isa_list.cache_clear()
                with config.patch({"cpp.vec_isa_ok": True}):
                    name = str(isa.pick_vec_isa())
                isa.valid_vec_isa_list.cache_clear()
                return name

            if marker.is_file() and marker.read_text() == listed():
                out = {"cpp.vec_isa_ok": True}
            else:
                checked = str(isa.pick_vec_isa())  # inductor's own build-and-load check
                if checked and checked == listed():
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.write_text(checked)
                    out = {"cpp.vec_isa_ok": True}
    except Exception:
        out = {}
    return out


def _compile(
    fn: Callable[..., Any],
    fullgraph: bool,
    dynamic: bool,
    options: dict[str, Any] | None,
    graph_pass: Callable[[torch.fx.GraphModule], None] | None,
    guard_filter: Callable[[list[Any]], list[bool]] | None = None,
) -> Callable[..., Any]:
    """Build the compiled function at the first call, with options for the device the call
    computes on (:func:`options_for`)."""
    built: Callable[..., Any] | None = None
    opts: dict[str, Any] = {}
    generation, ran = -1, False

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal built, opts, generation, ran
        if built is None:
            _check_cache_folder()
        try:
            if built is None or generation != _generation[0]:
                # first call, or the cache was swapped since: compile afresh in the new cache
                opts = options_for(_device_type(args, kwargs), options)
                built, generation = (
                    _build(fn, fullgraph, dynamic, opts, graph_pass, guard_filter),
                    _generation[0],
                )
                ran = False
            out = built(*args, **kwargs)
            ran = True
            return out
        except Exception as e:
            # only a first call compiles from the cache; a later error is the function's
            if ran or not _may_be_the_cache(e):
                raise
            old = _swap_cache_dir()
            if old is None:  # the cache was swapped before: not the cache's fault
                raise
            built, generation = (
                _build(fn, fullgraph, dynamic, opts, graph_pass, guard_filter),
                _generation[0],
            )
            try:
                out = built(*args, **kwargs)
            except Exception:
                _restore_cache_dir(old)
                raise
            ran = True
            import warnings

            warnings.warn(
                f"funrl.compile: the inductor cache {old} could not be used ({_root(e)}); "
                f"compiled into a fresh cache, {_cache_dir()}, for the rest of this process. "
                f"Delete the old one (rm -rf {old}) to rebuild it.",
                stacklevel=2,
            )
            return out

    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call


def _cache_dir() -> str:
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return cache_dir()


_swapped: list[str] = []  # the cache folders this process gave up on
_generation = [0]  # bumped at each swap: functions compiled before it compile again


def _root(e: BaseException) -> str:
    """The innermost cause of ``e`` as ``Type: first line`` (torch wraps the real error)."""
    while e.__cause__ is not None:
        e = e.__cause__
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def _may_be_the_cache(e: Exception) -> bool:
    """Whether compiling may have failed on a corrupt or foreign inductor cache (a
    truncated generated module, a garbage pickle, an unloadable library, an unusable
    folder) rather than on the function itself (a graph break, an error in its code)."""
    if isinstance(e, OSError):  # e.g. the cache folder is a file or cannot be made
        return True
    try:
        import torch._dynamo.exc as exc
    except Exception:  # torch._dynamo itself failed to import (it opens the cache too)
        return True
    return not isinstance(e, exc.Unsupported | exc.UserError | exc.TorchRuntimeError)


_checked_folder: list[bool] = []


def _check_cache_folder() -> None:
    """Once per process, before torch opens it: a ``TORCHINDUCTOR_CACHE_DIR`` that is not
    a writable folder (a file, no permission) is replaced by a fresh one, with a warning
    (torch would fail importing its compiler, and cannot retry after that)."""
    import os

    if _checked_folder:
        return
    _checked_folder.append(True)
    path = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if path is None:
        return
    try:
        os.makedirs(path, exist_ok=True)
        problem = "" if os.access(path, os.W_OK) else "not writable"
    except OSError as e:
        problem = f"{type(e).__name__}: {e.strerror or e}"
    if problem:
        old = _swap_cache_dir()
        import warnings

        warnings.warn(
            f"funrl.compile: the inductor cache {old} could not be used ({problem}); "
            f"compiling into a fresh cache, {os.environ['TORCHINDUCTOR_CACHE_DIR']}, for this "
            "process. Point TORCHINDUCTOR_CACHE_DIR at a writable folder.",
            stacklevel=3,
        )


def _swap_cache_dir() -> str | None:
    """Point inductor at a fresh, empty cache folder; the old folder, or ``None`` if
    this process already swapped once (a second failure is not the cache's)."""
    if _swapped:
        return None
    import os
    import tempfile

    # (never ask torch where its cache is here: that imports its compiler, which opens the
    # cache folder, and a failed import of torch._dynamo cannot be retried)
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or _cache_dir()
    _swapped.append(old)
    _generation[0] += 1
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="funrl-inductor-")
    return old


def _restore_cache_dir(old: str) -> None:
    import os

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = old
    _swapped.clear()


def _build(
    fn: Callable[..., Any],
    fullgraph: bool,
    dynamic: bool,
    opts: dict[str, Any],
    graph_pass: Callable[[torch.fx.GraphModule], None] | None,
    guard_filter: Callable[[list[Any]], list[bool]] | None = None,
) -> Callable[..., Any]:
    # torch.compile pops guard_filter_fn from the options it is given: a fresh dict each time
    dynamo: dict[str, Any] = {} if guard_filter is None else {"guard_filter_fn": guard_filter}
    if graph_pass is None:
        return torch.compile(
            _own_code(fn), fullgraph=fullgraph, dynamic=dynamic, options={**opts, **dynamo}
        )

    def backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        from torch._inductor.compile_fx import compile_fx

        graph_pass(gm)
        return compile_fx(gm, example_inputs, config_patches=opts)  # type: ignore[return-value]

    return torch.compile(
        _own_code(fn), fullgraph=fullgraph, dynamic=dynamic, backend=backend, options=dynamo
    )
