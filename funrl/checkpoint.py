"""Save and load any state pytree; resume training bit-for-bit.

A checkpoint holds one state pytree (params, optimizer state, env and buffer state,
keys, counters: any nesting of tensors in dicts, lists, tuples, NamedTuples and
``funrl.tree.struct`` classes), optionally the algorithm's static ``config``, its
``hparams`` pytree and a ``meta`` dict, plus the funrl/torch/Python versions that wrote
it.  The file is a ``torch.save`` archive of tensors and plain Python values only (the
tree structure is stored as nested tuples naming each node's class), so it loads with
``torch.load(weights_only=True)``: loading never unpickles arbitrary objects.  It does
import the modules that define the state's classes (``funrl.algos.ppo`` for
``ppo.TrainState``) and accepts only classes registered as pytree nodes, NamedTuples and
dataclasses (for ``config``).

Writes are atomic (a temporary file in the same folder, fsynced, then ``os.replace``):
a crash mid-write leaves the previous file intact, never a truncated one.  A checksum of
every leaf's bytes is stored and checked on load.

Example::

    >>> import tempfile, os, funrl
    >>> from funrl import checkpoint
    >>> from funrl.algos import ppo
    >>> algo = ppo.make(ppo.Config(num_envs=2, num_steps=4, hidden=(8,)))
    >>> hp = ppo.HParams.create()
    >>> state = algo.init(funrl.random.key(0), hp)
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    >>> _ = checkpoint.save(path, state, algo=algo, hparams=hp)
    >>> ckpt = checkpoint.load(path, like=state, algo=algo)
    >>> funrl.tree.all_equal(ckpt.state, state), ckpt.meta["algo"]
    (True, 'ppo')

Resuming training: every training entry point (``funrl.train``, ``population.train`` and
the ``funrl.distributed`` loops) takes ``checkpoint_path``/``checkpoint_every`` and
``resume`` (``funrl.loop.run``).  For numbered files, save with a :class:`Checkpointer`
callback and train :func:`resumed` ``(algo, state)``, whose ``init`` returns the saved
state (see docs/guides/checkpoints-and-deployment.md).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import importlib
import os
import platform
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as _pt

from funrl._version import __version__

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "check_like",
    "latest",
    "load",
    "read_meta",
    "remove_stale_temporaries",
    "resumed",
    "save",
    "versions",
]

FORMAT = "funrl.checkpoint"
FORMAT_VERSION = 1
_PRIMITIVES = (type(None), bool, int, float, str)
# Config fields that only say how long to train: a resumed run may extend or shorten it
RUN_LENGTH_FIELDS = ("total_timesteps",)


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read, or does not match what was expected."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What :func:`load` returns.

    Attributes:
      state: the saved pytree, with the same classes and structure as when saved.
      config: the saved config (a dataclass instance, e.g. ``ppo.Config``) or ``None``.
      hparams: the saved hparams pytree or ``None``.
      meta: the user's ``meta`` plus ``"versions"`` (funrl, torch, python that wrote the
        file), ``"created"`` (Unix time) and ``"algo"`` when saved with ``algo=``.
    """

    state: Any
    config: Any
    hparams: Any
    meta: dict[str, Any]


# ---- encoding trees ---------------------------------------------------------------------


def _class_name(cls: Any) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(name: str) -> Any:
    """The class (or ``collections.namedtuple``) named ``"module:qualname"``."""
    module, _, qualname = name.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise CheckpointError(
            f"checkpoint names the class {name!r}, which cannot be imported here ({e}); "
            "import the module that defines it, or install the code that wrote the file"
        ) from None
    return obj


def _encode_value(x: Any, where: str) -> Any:
    """A static value (a struct's static fields, dict keys, config fields) as plain data."""
    if isinstance(x, _PRIMITIVES) or isinstance(x, (torch.dtype, torch.Size)):
        return x
    if isinstance(x, type):
        return ("__class__", _class_name(x))
    if isinstance(x, tuple):
        return ("__tuple__", [_encode_value(v, where) for v in x])
    if isinstance(x, list):
        return ("__list__", [_encode_value(v, where) for v in x])
    if isinstance(x, dict):
        return (
            "__dict__",
            [(_encode_value(k, where), _encode_value(v, where)) for k, v in x.items()],
        )
    raise CheckpointError(
        f"{where}: cannot store a {type(x).__name__} ({x!r:.60}); static values must be "
        "None, bool, int, float, str, torch.dtype, classes, or tuples/lists/dicts of them"
    )


def _check_plain(x: Any, where: str) -> Any:
    """``x`` if it is made only of plain values (what ``weights_only`` loading accepts)."""
    if isinstance(x, _PRIMITIVES):
        return x
    if isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            _check_plain(v, f"{where}[{i}]")
        return x
    if isinstance(x, dict):
        for k, v in x.items():
            _check_plain(k, f"{where} key")
            _check_plain(v, f"{where}[{k!r}]")
        return x
    raise CheckpointError(
        f"{where}: cannot store a {type(x).__name__}; meta takes None, bool, int, float, str "
        "and lists/tuples/dicts of them"
    )


def _decode_value(x: Any) -> Any:
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) and x[0].startswith("__"):
        tag, body = x
        if tag == "__class__":
            cls = _resolve(body)
            if not isinstance(cls, type):
                raise CheckpointError(f"checkpoint: {body!r} is not a class")
            return cls
        if tag == "__tuple__":
            return tuple(_decode_value(v) for v in body)
        if tag == "__list__":
            return [_decode_value(v) for v in body]
        if tag == "__dict__":
            return {_decode_value(k): _decode_value(v) for k, v in body}
    return x


def _node_name(node_type: Any) -> str:
    if node_type is _pt.namedtuple:
        return "namedtuple"
    if node_type is type(None):
        return "None"
    return _class_name(node_type)


def _encode_spec(spec: Any, path: str) -> Any:
    """A TreeSpec as nested tuples: ``None`` for a leaf, else ``(type, context, children)``."""
    if spec.is_leaf():
        return None
    children = [_encode_spec(spec.child(i), f"{path}[{i}]") for i in range(spec.num_children)]
    ctx = _encode_value(spec.context, f"{path} ({_node_name(spec.type)} context)")
    return (_node_name(spec.type), ctx, children)


def _node_type(name: str) -> Any:
    if name == "namedtuple":
        return _pt.namedtuple
    if name == "None":
        return type(None)
    cls = _resolve(name)
    if cls not in _pt.SUPPORTED_NODES:
        raise CheckpointError(f"checkpoint: class {name!r} is not registered as a pytree node")
    return cls


def _decode_tree(desc: Any, leaves: Iterator[Any]) -> Any:
    if desc is None:
        return next(leaves)
    name, ctx, children = desc
    node_type = _node_type(name)
    context = _decode_value(ctx)
    if node_type is _pt.namedtuple and not _pt.is_namedtuple_class(context):
        raise CheckpointError(f"checkpoint: {context!r} is not a NamedTuple class")
    values = [_decode_tree(c, leaves) for c in children]
    return _pt.SUPPORTED_NODES[node_type].unflatten_fn(values, context)


def _check_leaf(x: Any, path: str) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu").clone()
    if isinstance(x, _PRIMITIVES):
        return x
    raise CheckpointError(
        f"state leaf {path} is a {type(x).__name__}; only tensors and Python numbers/strings "
        "can be saved (a host-bridged Gymnasium env state is a live handle, not data)"
    )


def _digest(leaves: list[Any]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for x in leaves:
        if isinstance(x, torch.Tensor):
            h.update(f"{x.dtype}{tuple(x.shape)}".encode())
            h.update(x.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(x).encode())
    return h.hexdigest()


def _encode_tree(tree: Any, what: str) -> dict[str, Any]:
    flat, spec = _pt.tree_flatten_with_path(tree)
    leaves = [_check_leaf(x, what + _pt.keystr(p)) for p, x in flat]
    return {"structure": _encode_spec(spec, what), "leaves": leaves, "digest": _digest(leaves)}


def _decode_tree_record(rec: dict[str, Any], what: str, path: Path) -> Any:
    leaves = rec["leaves"]
    if _digest(leaves) != rec["digest"]:
        raise CheckpointError(f"{path}: the {what} data is corrupted (checksum mismatch)")
    it = iter(leaves)
    out = _decode_tree(rec["structure"], it)
    if next(it, _SENTINEL) is not _SENTINEL:
        raise CheckpointError(f"{path}: the {what} structure and its leaves disagree")
    return out


_SENTINEL = object()


def _encode_config(config: Any) -> Any:
    if config is None:
        return None
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise CheckpointError(
            f"save: config must be a dataclass instance, got {type(config).__name__}"
        )
    fields = {
        f.name: _encode_value(getattr(config, f.name), f"config.{f.name}")
        for f in dataclasses.fields(config)
    }
    return {"class": _class_name(type(config)), "fields": fields}


def _decode_config(rec: Any) -> Any:
    if rec is None:
        return None
    cls: Any = _resolve(rec["class"])
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise CheckpointError(f"checkpoint: config class {rec['class']!r} is not a dataclass")
    return cls(**{k: _decode_value(v) for k, v in rec["fields"].items()})


# ---- save / load -------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """The funrl, torch and Python versions (recorded in every checkpoint)."""
    return {
        "funrl": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }


def save(
    path: str | os.PathLike[str],
    state: Any,
    *,
    algo: Any = None,
    config: Any = None,
    hparams: Any = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``state`` (and optional config, hparams, meta) to ``path`` atomically.

    Args:
      path: the file to write (parent folders are created); replaced only once the new
        file is complete.
      state: any pytree of tensors (and Python numbers/strings).
      algo: an ``Algo``: stores ``algo.config`` and ``meta["algo"] = algo.name``.
      config: a dataclass instance (overrides ``algo.config``).
      hparams: a pytree (e.g. ``ppo.HParams``), returned as ``Checkpoint.hparams``.
      meta: plain values (numbers, strings, lists, dicts), e.g. ``{"updates": 100}``.

    Returns the path written.  Raises :class:`CheckpointError` for values that cannot be
    stored (the message names the leaf).
    """
    path = Path(path)
    meta = dict(meta or {})
    for reserved in ("versions", "created"):
        if reserved in meta:
            raise CheckpointError(f"save: meta key {reserved!r} is reserved")
    if algo is not None:
        meta.setdefault("algo", algo.name)
        config = config if config is not None else algo.config
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state": _encode_tree(state, "state"),
        "hparams": None if hparams is None else _encode_tree(hparams, "hparams"),
        "config": _encode_config(config),
        "meta": _check_plain(meta, "meta"),
        "versions": versions(),
        "created": time.time(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files an interrupted :func:`save` of ``path`` left behind
    (``.<name>.*.tmp`` next to it: a process killed mid-write cannot remove its own).
    :func:`save` and :func:`load` call it; returns the files removed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__


def _read(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    remove_stale_temporaries(path)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CheckpointError(
            f"{path}: not a funrl checkpoint: not a whole torch.save archive (truncated or "
            "corrupted, or another kind of file)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupted archives, foreign pickles the safe loader refuses
        raise CheckpointError(
            f"{path}: not a readable funrl checkpoint ({_first_line(e)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a funrl checkpoint (no {FORMAT!r} header)")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer funrl (format {payload['format_version']}, "
            f"this one reads up to {FORMAT_VERSION}); versions: {payload.get('versions')}"
        )
    return payload


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's ``meta`` (with ``versions`` and ``created``) without rebuilding its
    state: no class is imported, so it reads files whose classes are not importable yet."""
    payload = _read(Path(path))
    return {**payload["meta"], "versions": payload["versions"], "created": payload["created"]}


def load(path: str | os.PathLike[str], *, like: Any = None, algo: Any = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    Args:
      path: the file.
      like: optional pytree the state must match (same structure, and every leaf the same
        shape and dtype), e.g. ``algo.init(key, hp)``.  A mismatch raises
        :class:`CheckpointError` naming the first differing leaf path.
      algo: optional ``Algo``: the checkpoint's algorithm name and config must match
        ``algo.name`` and ``algo.config`` (the error lists the differing fields), except
        ``total_timesteps``: a resumed run may train longer or shorter (PPO's annealed
        learning rate then follows the new length).

    Tensors are loaded on the CPU.  Raises :class:`CheckpointError` for a missing,
    truncated or corrupted file, or any mismatch.
    """
    path = Path(path)
    payload = _read(path)
    state = _decode_tree_record(payload["state"], "state", path)
    hparams = None
    if payload["hparams"] is not None:
        hparams = _decode_tree_record(payload["hparams"], "hparams", path)
    config = _decode_config(payload["config"])
    meta = {**payload["meta"], "versions": payload["versions"], "created": payload["created"]}
    if algo is not None:
        _check_algo(path, algo, meta.get("algo"), config)
    if like is not None:
        check_like(state, like, where=str(path))
    return Checkpoint(state, config, hparams, meta)


def _check_algo(path: Path, algo: Any, name: Any, config: Any) -> None:
    if name is not None and name != algo.name:
        raise CheckpointError(f"{path}: saved by algorithm {name!r}, expected {algo.name!r}")
    if config is None:
        return
    if type(config) is not type(algo.config):
        raise CheckpointError(
            f"{path}: config is a {_class_name(type(config))}, expected {_class_name(type(algo.config))}"
        )
    diff = [
        f"{f.name}: checkpoint {getattr(config, f.name)!r}, expected {getattr(algo.config, f.name)!r}"
        for f in dataclasses.fields(config)
        if f.name not in RUN_LENGTH_FIELDS
        and getattr(config, f.name) != getattr(algo.config, f.name)
    ]
    if diff:
        raise CheckpointError(f"{path}: config differs from the algorithm's: " + "; ".join(diff))


def check_like(tree: Any, like: Any, where: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` unless ``tree`` and ``like`` have the same structure,
    leaf shapes and dtypes; the message names the first differing leaf path."""
    _diff_structure(tree, like, "state", where)
    a = _pt.tree_flatten_with_path(tree)[0]
    b = _pt.tree_flatten_with_path(like)[0]
    for (p, x), (_, y) in zip(a, b):
        name = "state" + _pt.keystr(p)
        if isinstance(x, torch.Tensor) != isinstance(y, torch.Tensor):
            raise CheckpointError(
                f"{where}: {name} is a {type(x).__name__}, expected a {type(y).__name__}"
            )
        if isinstance(x, torch.Tensor) and (x.shape != y.shape or x.dtype != y.dtype):
            raise CheckpointError(
                f"{where}: {name} has shape {tuple(x.shape)} {x.dtype}, expected "
                f"{tuple(y.shape)} {y.dtype} (a different config or population size?)"
            )


def _children(x: Any) -> tuple[Any, Any, list[Any], list[str]]:
    """``(node type, context, children, child key strings)`` of a non-leaf node."""
    node_type = _pt._get_node_type(x)
    handler = _pt.SUPPORTED_NODES[node_type]
    children, ctx = handler.flatten_fn(x)
    if handler.flatten_with_keys_fn is not None:
        keys = [_pt.keystr((k,)) for k, _ in handler.flatten_with_keys_fn(x)[0]]
    else:
        keys = [f"[{i}]" for i in range(len(children))]
    return node_type, ctx, list(children), keys


def _diff_structure(a: Any, b: Any, path: str, where: str) -> None:
    leaf_a, leaf_b = _pt.tree_is_leaf(a), _pt.tree_is_leaf(b)
    if leaf_a and leaf_b:
        return
    what = lambda x, leaf: "a leaf" if leaf else _node_name(_pt._get_node_type(x))  # noqa: E731
    if leaf_a or leaf_b or _pt._get_node_type(a) != _pt._get_node_type(b):
        raise CheckpointError(
            f"{where}: {path} is {what(a, leaf_a)}, expected {what(b, leaf_b)} "
            "(a different algorithm?)"
        )
    t, ctx_a, ca, keys = _children(a)
    _, ctx_b, cb, _ = _children(b)
    if ctx_a != ctx_b or len(ca) != len(cb):
        raise CheckpointError(
            f"{where}: {path} ({_node_name(t)}) has context {ctx_a!r} and {len(ca)} children, "
            f"expected {ctx_b!r} and {len(cb)} (a different algorithm or config?)"
        )
    for x, y, k in zip(ca, cb, keys):
        _diff_structure(x, y, path + k, where)


# ---- resuming with funrl.train -----------------------------------------------------------


def resumed(algo: Any, state: Any) -> Any:
    """``algo`` whose ``init`` ignores its arguments and returns ``state``.

    ``funrl.train(resumed(algo, ckpt.state), key, hp, num_updates=remaining)`` continues
    training exactly where the checkpoint left off (the state carries its own key and
    counters; ``train``'s key then only seeds evaluation).  Compiling (``with_units``)
    keeps the resumed ``init``.
    """

    def init(key: Any = None, hparams: Any = None) -> Any:
        return state

    return algo._replace(init=init, remake=lambda **parts: resumed(algo.remake(**parts), state))


_CKPT_RE = re.compile(r"^update_(\d+)\.pt$")


def latest(directory: str | os.PathLike[str]) -> Path | None:
    """The newest ``update_<n>.pt`` in ``directory`` (highest ``n``), or ``None``."""
    d = Path(directory)
    if not d.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT_RE.match(p.name))]
    return max(found)[1] if found else None


class Checkpointer:
    """A ``funrl.train`` callback that saves ``update_<n>.pt`` every ``every`` updates.

    Args:
      directory: where checkpoints go.
      every: save after every this many updates (and never stops training).
      algo, hparams: stored in each checkpoint (see :func:`save`).
      keep: how many recent checkpoints to keep (older ones are deleted); ``None``: all.
      start: updates done before this run (when resuming), so numbering continues.

    ``meta["updates"]`` in each file is the total number of updates so far.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        every: int,
        *,
        algo: Any = None,
        hparams: Any = None,
        keep: int | None = 3,
        start: int = 0,
    ) -> None:
        if every < 1:
            raise ValueError(f"Checkpointer: every must be >= 1, got {every}")
        if keep is not None and keep < 1:
            raise ValueError(f"Checkpointer: keep must be >= 1 or None, got {keep}")
        self.directory = Path(directory)
        self.every, self.algo, self.hparams, self.keep, self.start = (
            every,
            algo,
            hparams,
            keep,
            start,
        )
        self.saved: list[Path] = []

    def __call__(self, update: int, state: Any, row: dict[str, float] | None = None) -> None:
        done = self.start + update + 1
        if (update + 1) % self.every:
            return
        path = self.directory / f"update_{done:08d}.pt"
        save(path, state, algo=self.algo, hparams=self.hparams, meta={"updates": done})
        self.saved.append(path)
        if self.keep is not None:
            while len(self.saved) > self.keep:
                self.saved.pop(0).unlink(missing_ok=True)
