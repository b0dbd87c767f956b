"""Deploy a trained policy: its deterministic ``act`` as a standalone artifact.

:func:`export_policy` closes ``algo.act`` over ``algo.act_params(state)`` (policy
weights, observation-normalisation statistics), traces ``obs [B, *obs_shape] -> action
[B, ...]`` with ``torch.export`` and writes it with ``torch.export.save``.  The file
holds only aten operations and tensors, so it runs where funrl is not installed::

    import torch
    policy = torch.export.load("policy.pt2").module()
    action = policy(obs)                     # obs: float32 [B, *obs_shape]

When ``torch.export`` fails (an op it cannot trace), it falls back to
``torch.jit.trace`` (load with ``torch.jit.load``) and says so in the result and a
warning; :func:`load_policy` loads either.  The batch size is dynamic in both.

Example::

    >>> import os, tempfile, torch, funrl
    >>> from funrl import export
    >>> from funrl.algos import ppo
    >>> algo = ppo.make(ppo.Config(num_envs=2, num_steps=4, hidden=(8,)))
    >>> state = algo.init(funrl.random.key(0), ppo.HParams.create())
    >>> out = export.export_policy(algo, state, os.path.join(tempfile.mkdtemp(), "p.pt2"))
    >>> out.format
    'torch.export'
    >>> policy = export.load_policy(out.path)
    >>> policy(torch.zeros(3, 4)).shape
    torch.Size([3])
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from funrl import tree

__all__ = ["ExportedPolicy", "export_policy", "load_policy", "policy_module"]

_META = "funrl_policy.json"


@dataclasses.dataclass(frozen=True)
class ExportedPolicy:
    """What :func:`export_policy` wrote.

    Attributes:
      path: the artifact.
      format: ``"torch.export"`` (load with ``torch.export.load(path).module()``) or
        ``"torchscript"`` (load with ``torch.jit.load(path)``).
      fallback_reason: why ``torch.export`` was not used (``None`` if it was).
      meta: what the artifact's ``funrl_policy.json`` extra file holds (algorithm, env,
        observation shape, action dtype, format).
    """

    path: Path
    format: str
    fallback_reason: str | None
    meta: dict[str, Any]


class _Policy(torch.nn.Module):
    """``forward(obs) = act(unflatten(buffers), obs, deterministic=True)``."""

    def __init__(
        self,
        act: Callable[..., torch.Tensor],
        params: Any,
        to_env: Callable[[torch.Tensor], torch.Tensor] = lambda a: a,
    ) -> None:
        super().__init__()
        self._to_env = to_env
        leaves, self._spec = tree.flatten(params)
        for i, x in enumerate(leaves):
            self.register_buffer(f"p{i}", torch.as_tensor(x).detach().clone())
        self._n = len(leaves)
        self._act = act

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        params = tree.unflatten([getattr(self, f"p{i}") for i in range(self._n)], self._spec)
        return self._to_env(self._act(params, obs, None, True))


def policy_module(algo: Any, state: Any) -> torch.nn.Module:
    """An ``nn.Module`` computing the env's action for ``obs``: the deterministic
    ``algo.act(algo.act_params(state), obs)`` mapped as training mapped it into the env's
    action bounds (:func:`funrl.algos.common.env_action`: a tanh or deterministic policy's
    [-1, 1] rescaled, others clipped; discrete actions as they are).

    The parameters are buffers (a snapshot of ``state``); ``forward(obs [B, *obs_shape])``.
    """
    from funrl.algos.common import env_action

    stack = getattr(algo, "env_stack", None)
    to_env = (lambda a: env_action(stack, a)) if stack is not None else (lambda a: a)
    return _Policy(algo.act, algo.act_params(state), to_env).eval()


def _example_obs(algo: Any, batch: int) -> torch.Tensor:
    stack = algo.env_stack
    space = stack.eval_env.observation_space(stack.env_params)
    return torch.zeros((batch, *space.shape), dtype=getattr(space, "dtype", torch.float32))


def _write_export(module: torch.nn.Module, obs: torch.Tensor, path: Path, meta: str) -> None:
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    program = torch.export.export(module, (obs,), dynamic_shapes=({0: batch},), strict=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No complete tensor found")  # harmless on CPU
        torch.export.save(program, path, extra_files={_META: meta})


def _write_script(module: torch.nn.Module, obs: torch.Tensor, path: Path, meta: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.x
        traced = torch.jit.trace(module, (obs,), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={_META: meta})


def export_policy(
    algo: Any,
    state: Any,
    path: str | os.PathLike[str],
    *,
    method: str = "auto",
    example_batch: int = 2,
) -> ExportedPolicy:
    """Write ``algo``'s deterministic policy in ``state`` as a funrl-free artifact.

    Args:
      algo: the ``Algo`` that trained ``state``.
      state: its TrainState (one member; index a population first: ``tree.index(s, i)``).
      path: the file to write (``.pt2`` by convention); written atomically.
      method: ``"auto"`` (``torch.export``, TorchScript trace if that fails),
        ``"export"`` or ``"torchscript"`` (only that one; errors propagate).
      example_batch: batch size of the example input used to trace (the exported batch
        dim is dynamic; use >= 2 so it is not specialised to 1).

    Returns an :class:`ExportedPolicy` saying which format was written and why.
    """
    if method not in ("auto", "export", "torchscript"):
        raise ValueError(
            f"export_policy: method must be auto, export or torchscript, got {method!r}"
        )
    if example_batch < 2:
        raise ValueError(f"export_policy: example_batch must be >= 2, got {example_batch}")
    path = Path(path)
    module = policy_module(algo, state)
    obs = _example_obs(algo, example_batch)
    with torch.no_grad():
        action = module(obs)
    meta: dict[str, Any] = {
        "algo": algo.name,
        "env": getattr(algo.config, "env", None),
        "obs_shape": list(obs.shape[1:]),
        "obs_dtype": str(obs.dtype),
        "action_shape": list(action.shape[1:]),
        "action_dtype": str(action.dtype),
        "torch": str(torch.__version__),
    }
    reason = None
    fmt = "torchscript" if method == "torchscript" else "torch.export"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    tmp = tmp_dir / path.name  # the archive's folder name inside the zip is the file's stem
    try:
        if fmt == "torch.export":
            try:
                _write_export(module, obs, tmp, json.dumps({**meta, "format": fmt}))
            except Exception as e:
                if method == "export":
                    raise
                reason = f"torch.export failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
                warnings.warn(f"export_policy: {reason}; falling back to TorchScript", stacklevel=2)
                fmt = "torchscript"
        if fmt == "torchscript":
            _write_script(module, obs, tmp, json.dumps({**meta, "format": fmt}))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_dir.rmdir()
    return ExportedPolicy(path, fmt, reason, {**meta, "format": fmt})


def _format_of(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith(_META) and "extra" in name:
                return str(json.loads(z.read(name))["format"])
            if name.endswith("constants.pkl"):  # a TorchScript archive without our meta
                return "torchscript"
    return "torch.export"


def load_policy(path: str | os.PathLike[str]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Load an artifact written by :func:`export_policy` as ``policy(obs) -> action``.

    Without funrl, do the same by hand: ``torch.export.load(path).module()`` or
    ``torch.jit.load(path)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_policy: no such file {path}")
    try:
        fmt = _format_of(path)
    except zipfile.BadZipFile:
        raise ValueError(
            f"load_policy: {path} is not an exported policy (not a zip archive)"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "No complete tensor found")
        if fmt == "torchscript":
            return torch.jit.load(str(path))
        return torch.export.load(path).module()
