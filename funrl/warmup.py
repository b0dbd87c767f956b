"""``--compile auto``: train eagerly while another process fills the compile cache.

A cold compile of an algorithm's units takes ~40 s (PPO CartPole, 2 CPU cores) to ~160 s
(DQN's fused learn step); loading the same code from a warm inductor cache takes ~5 s.
Eager training starts at once but runs ~8x slower than compiled on CartPole.  So
``funrl train``'s default ``--compile auto`` decides after the first (eager) update:

* this run's compiled code is known to be in the cache (a *mark*, below): switch to
  compiled units now, unless less than :data:`WARM_SWITCH_S` seconds of eager work are
  left at the first update's speed (then stay eager);
* little eager work left (under :data:`EAGER_ENOUGH_S` seconds): stay eager, compile
  nothing;
* otherwise: keep training eagerly and start a background process (``nice``-d, its own
  session, so it outlives the run if it must) that compiles the same units and the
  evaluation step into the cache; switch to them the moment it is done.  A run that
  ends first leaves the cache warm for the next run of the same configuration.

A mark is a file in the inductor cache folder (``TORCHINDUCTOR_CACHE_DIR``, default
``/tmp/torchinductor_<user>``), so deleting the cache deletes the marks.  Its name is a
hash of what the compiled code depends on (:func:`signature`): the algorithm and its
config, the hyperparameters' shapes and dtypes, the evaluation's episodes, the thread
count, the torch, Python and funrl versions, funrl's own source files and the inductor
options.  A mark that is wrong (code edited outside funrl) costs what ``--compile on``
costs: compiling in the run; a missing one costs a few seconds of eager updates.

The background process is ``python -m funrl.warmup SPEC``: it rebuilds the algorithm
from the saved config (``--import`` modules first), runs one compiled update and one
compiled evaluation, and writes the mark.  Its log is next to the mark.

In Python, ``funrl.train(..., compile=AutoCompile.for_builder("my_variant:build", algo,
hparams, total_updates=N))`` does the same for an algorithm of your own, rebuilt in the
background by calling ``my_variant.build()``; editing ``my_variant.py`` (a loss line)
starts the next run eagerly at once while only what changed compiles cold.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EAGER_ENOUGH_S", "WARM_SWITCH_S", "AutoCompile", "cache_dir", "is_warm", "signature"]

#: With less eager work than this left after the first update, ``auto`` stays eager
#: instead of starting a background compile (which would not finish sooner).
EAGER_ENOUGH_S = 10.0
#: ... and, where the compiled code is cached, with less than this: loading it costs ~4 s
#: of tracing (PPO CartPole, 2-core CPU), so compiling would not finish the run sooner.
WARM_SWITCH_S = 5.0


def cache_dir() -> Path:
    """Where marks live: ``funrl-warm`` in the inductor cache folder (not created here)."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    root = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or default_cache_dir()
    return Path(os.path.abspath(root)) / "funrl-warm"


def _sources_stamp() -> str:
    """Name, size and mtime of every funrl source file: an edit of funrl changes it."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _layout(tree: Any) -> str:
    """Shapes and dtypes of a pytree's tensors (what compiled code is specialised on)."""
    import torch

    from funrl import tree as T

    leaves, spec = T.flatten(tree)
    parts = [
        f"{tuple(x.shape)}:{x.dtype}" if isinstance(x, torch.Tensor) else repr(x) for x in leaves
    ]
    return f"{spec}|{','.join(parts)}"


def signature(algo_name: str, config: Any, hparams: Any, eval_episodes: int) -> str:
    """What a run's compiled code depends on, hashed (the name of its mark)."""
    import platform

    import torch

    import funrl
    from funrl.compiling import INDUCTOR_OPTIONS

    parts = [
        algo_name,
        repr(config),
        _layout(hparams),
        str(eval_episodes),
        str(torch.get_num_threads()),
        torch.__version__,
        platform.python_version(),
        platform.machine(),
        funrl.__version__,
        _sources_stamp(),
        repr(sorted(INDUCTOR_OPTIONS.items())),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _mark(sig: str) -> Path:
    return cache_dir() / f"{sig}.json"


def is_warm(sig: str) -> bool:
    """Whether a run with this :func:`signature` compiled to the end in this cache."""
    return _mark(sig).is_file()


def _write_mark(sig: str, info: dict[str, Any]) -> None:
    path = _mark(sig)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AutoCompile:
    """The ``compile`` argument of :func:`funrl.train` for ``--compile auto``.

    Called before each update with the updates done so far and the seconds the first one
    took; returns True once the run should switch to compiled units (see the module
    docstring).  ``say`` gets one line for each decision.
    """

    def __init__(
        self,
        sig: str,
        spec: dict[str, Any],
        total_updates: int,
        say: Callable[[str], None] = print,
    ) -> None:
        self.sig, self.spec, self.total, self.say = sig, spec, total_updates, say
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cache_dir() / f"{sig}.log"
        self.t_start = 0.0
        self.decided = False
        self.finished = False
        self.switched_at: int | None = None  # updates done when it said switch

    def __call__(self, updates: int, first_update_s: float) -> bool:
        if self.finished or updates == 0:
            return False
        if not self.decided:
            self.decided = True
            left = first_update_s * (self.total - updates)
            warm = is_warm(self.sig)
            if left < (WARM_SWITCH_S if warm else EAGER_ENOUGH_S):
                self.finished = True
                self.say(
                    f"compile=auto: eager (~{left:.0f} s of updates left at eager speed; "
                    "compiling would not finish sooner)"
                )
                return False
            if warm:
                self.finished = True
                self.say("compile=auto: compiled code for this run is cached: compiling")
                self.switched_at = updates
                return True
            try:
                self._start()
            except OSError as e:  # an unwritable cache folder, no fork: stay eager
                self.finished = True
                self.say(
                    f"compile=auto: cannot start a background compile ({e}): training "
                    "stays eager; --compile on compiles in the run"
                )
            return False
        if is_warm(self.sig):
            self.finished = True
            done = (
                f"the background compile is done after {time.perf_counter() - self.t_start:.0f} s"
            )
            left = first_update_s * (self.total - updates)
            if left < WARM_SWITCH_S:  # loading the code would cost more than it saves
                self.say(f"compile=auto: {done}; ~{left:.0f} s of eager updates left: eager")
                return False
            self.say(f"compile=auto: {done}: switching to compiled units")
            self.switched_at = updates
            return True
        if self.proc is not None and self.proc.poll() not in (None, 0):
            self.finished = True
            self.say(
                f"compile=auto: the background compile failed (exit {self.proc.returncode}; "
                f"log: {self.log}): training stays eager"
            )
        return False

    def _start(self) -> None:
        import torch

        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        pid_file = folder / f"{self.sig}.pid"
        self.t_start = time.perf_counter()
        if pid_file.is_file():
            try:
                pid = int(pid_file.read_text())
            except ValueError:
                pid = -1
            if pid > 0 and _alive(pid):
                self.say(
                    f"compile=auto: eager; another process (pid {pid}) is compiling this "
                    "run's code: switching when it is done"
                )
                return
        spec_path = folder / f"{self.sig}.spec.pt"
        torch.save({**self.spec, "sig": self.sig}, spec_path)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "funrl.warmup", str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C of the run does not stop it
                env={**os.environ, "FUNRL_WARMUP": "1"},
            )
        pid_file.write_text(str(self.proc.pid))
        self.say(
            "compile=auto: eager while a background process compiles this run "
            f"(pid {self.proc.pid}, log {self.log}); switching when it is done"
        )

    def timing(self, history: list[dict[str, float]], steps_per_update: int) -> str | None:
        """How a finished run spent its time around the switch (``None``: it never
        switched): the eager updates, the switching update's excess over a compiled one
        (loading the compiled code) and the compiled updates' env-steps/s."""
        if self.switched_at is None or self.switched_at >= len(history):
            return None
        times = [float(row["update_s"]) for row in history]
        switch, later = times[self.switched_at], sorted(times[self.switched_at + 1 :])
        steady = later[len(later) // 2] if later else 0.0
        sps = len(later) * steps_per_update / max(sum(later), 1e-9)
        return (
            f"eager for {self.switched_at} update(s), then compiled: switching took "
            f"{max(switch - steady, 0.0):.1f} s, {sps:,.0f} steps/s compiled"
        )

    @classmethod
    def for_builder(
        cls,
        builder: str,
        algo: Any,
        hparams: Any,
        *,
        total_updates: int,
        eval_episodes: int = 10,
        say: Callable[[str], None] = print,
    ) -> AutoCompile:
        """``--compile auto`` for an algorithm of your own (a variant with your parts).

        ``builder`` is ``"module:function"``: an importable module (not ``__main__``)
        whose ``function()`` returns the algorithm, as ``algo`` (what you train) came from
        it; the background process imports it (with this process's ``sys.path``) to
        compile the same units.  The mark's signature adds the builder and its module
        file's contents, so editing that file (a loss, a network) means a first eager
        stretch and a background compile of what changed; edits in other files are not
        seen (a stale mark compiles in the run, as ``compile=True`` does).  Pass the
        result as ``funrl.train(..., compile=...)`` with ``eval_episodes`` the same.
        """
        import hashlib
        import importlib

        module_name, _, function = builder.partition(":")
        if not module_name or not function or module_name == "__main__":
            raise ValueError(
                f"builder must be 'module:function' of an importable module, got {builder!r}"
            )
        module = importlib.import_module(module_name)
        if not callable(getattr(module, function, None)):
            raise ValueError(f"builder {builder!r}: {module_name} has no function {function!r}")
        source = Path(str(module.__file__)).read_bytes() if module.__file__ else b""
        return cls.for_config(
            algo.name, algo.config, hparams, total_updates=total_updates,
            eval_episodes=eval_episodes, say=say,
            builder=(builder, hashlib.sha256(source).hexdigest()),
        )  # fmt: skip

    @classmethod
    def for_config(
        cls,
        algo_name: str,
        config: Any,
        hparams: Any,
        *,
        total_updates: int,
        eval_episodes: int = 10,
        imports: list[str] | tuple[str, ...] = (),
        say: Callable[[str], None] = print,
        builder: tuple[str, str] | None = None,
    ) -> AutoCompile:
        """``--compile auto`` for funrl's algorithm ``algo_name`` built from ``config``
        (``funrl train``'s case; the background process calls its ``make``), with the
        ``--import`` modules that register its env.  ``builder``: ``(module:function,
        hash of its source)`` (:meth:`for_builder`)."""
        import torch

        key = algo_name if builder is None else f"{algo_name}|{builder[0]}|{builder[1]}"
        spec = {
            "algo": algo_name,
            "config": config,
            "hparams": hparams,
            "eval_episodes": eval_episodes,
            "imports": list(imports),
            "threads": torch.get_num_threads(),
        }
        if builder is not None:
            spec.update(builder=builder[0], sys_path=list(sys.path))
        sig = signature(key, config, hparams, eval_episodes)
        return cls(sig, spec, total_updates=total_updates, say=say)

    def still_compiling(self) -> str | None:
        """A line for the end of a run whose background compile is still going."""
        if self.proc is not None and self.proc.poll() is None:
            return (
                f"compile=auto: the background compile (pid {self.proc.pid}) goes on for the "
                f"next run of this configuration; log: {self.log}"
            )
        return None


def _run(spec_path: str) -> int:
    """The background process: compile ``spec``'s units and evaluation, then mark it.
    Its spec and pid files go when it ends (its log and the mark stay)."""
    try:
        return _compile_spec(spec_path)
    finally:
        spec = Path(spec_path)
        for leftover in (spec, spec.with_name(spec.name.replace(".spec.pt", ".pid"))):
            leftover.unlink(missing_ok=True)


def _compile_spec(spec_path: str) -> int:
    import torch

    try:
        os.nice(10)
    except OSError:
        pass
    spec = torch.load(spec_path, weights_only=False)
    from funrl.arguments import _import_modules, algo_module

    _import_modules(spec["imports"])
    torch.set_num_threads(spec["threads"])
    from funrl import random as R
    from funrl.algos.units import compiled
    from funrl.evaluation import make_evaluate

    t0 = time.perf_counter()
    if spec.get("builder"):  # AutoCompile.for_builder: the user's own algorithm
        import importlib

        sys.path[:0] = [p for p in spec["sys_path"] if p not in sys.path]
        module_name, _, function = spec["builder"].partition(":")
        algo = getattr(importlib.import_module(module_name), function)()
    else:
        algo = algo_module(spec["algo"]).make(spec["config"])
    algo = algo.with_units(compiled)
    hp = spec["hparams"]
    state = algo.init(R.key(0), hp)
    for _ in range(2):  # the second update compiles what the first one's outputs need
        state, _ = algo.update(state, hp)
    # a run evaluates eagerly first (EAGER_EVALUATIONS), then with this compiled step
    make_evaluate(algo, spec["eval_episodes"], compile=True)(state, R.key(1))
    seconds = time.perf_counter() - t0
    _write_mark(spec["sig"], {"algo": spec["algo"], "compile_s": round(seconds, 1)})
    print(f"compiled {spec['algo']} in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_run(sys.argv[1]))
