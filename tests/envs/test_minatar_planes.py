"""MinAtar observations without a byte view: ``_planes.unpack_bytes``'s fallback.

The envs pack each cell's 0/1 channels into the bytes of one integer and view the codes
as bytes.  torch 2.11 cannot vmap ``Tensor.view(dtype)`` (seen on a CUDA machine), so
there the channels are shifted out instead.  Both paths must give the same observations,
eagerly, under vmap and compiled.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import vmap

import funrl.random as R
from funrl.compiling import compile as funrl_compile
from funrl.envs import make
from funrl.envs.minatar import _planes
from funrl.testing import assert_trees_close

PACKED = ["MinAtar-Asterix-v1", "MinAtar-Breakout-v1", "MinAtar-Freeway-v1"]
PACKED += ["MinAtar-SpaceInvaders-v1"]


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("shape", [(100,), (10, 10)])
def test_shifted_channels_equal_the_byte_view(dtype, shape):
    nbytes = torch.tensor([], dtype=dtype).element_size()
    shifts = tuple(8 * c for c in range(nbytes))  # this machine is little-endian (asserted)
    assert torch.tensor([1], dtype=torch.int32).view(torch.uint8)[0] == 1
    channels = nbytes - 1
    bits = R.randint(R.key(0), 0, 2, (8, *shape, channels)).to(dtype)
    code = (bits << torch.tensor(shifts[:channels], dtype=dtype)).sum(-1)
    want = bits.reshape(8, 10, 10, channels).to(torch.float32)
    viewed = vmap(lambda c: _planes.unpack_bytes(c, shifts, channels))(code)
    assert_trees_close(viewed, want, rtol=0, atol=0, what="byte view")
    _planes.VIEW_DTYPE_VMAPS, saved = False, _planes.VIEW_DTYPE_VMAPS
    try:
        shifted = vmap(lambda c: _planes.unpack_bytes(c, shifts, channels))(code)
        eager = torch.stack([_planes.unpack_bytes(c, shifts, channels) for c in code])
    finally:
        _planes.VIEW_DTYPE_VMAPS = saved
    assert_trees_close(shifted, want, rtol=0, atol=0, what="shifted, vmap")
    assert_trees_close(eager, want, rtol=0, atol=0, what="shifted, eager")


def _observations(env_id: str, compiled: bool = False) -> list[torch.Tensor]:
    venv, params = make(env_id, num_envs=32)
    step = funrl_compile(venv.step, fullgraph=True) if compiled else venv.step
    obs, state = venv.reset(R.key(0), params)
    out = [obs]
    for t in range(40):
        action = R.randint(R.key(100 + t), 0, venv.action_space(params).n, (32,))
        obs, state, *_ = step(R.key(t), state, action, params)
        out.append(obs)
    return out


@pytest.mark.parametrize("env_id", PACKED)
def test_envs_observe_the_same_without_the_byte_view(env_id, monkeypatch):
    viewed = _observations(env_id)
    monkeypatch.setattr(_planes, "VIEW_DTYPE_VMAPS", False)
    shifted = _observations(env_id)
    assert_trees_close(shifted, viewed, rtol=0, atol=0, what=env_id)
    if env_id == "MinAtar-Breakout-v1":  # one compiled env: the fallback compiles too
        compiled = _observations(env_id, compiled=True)
        assert_trees_close(compiled, viewed, rtol=0, atol=0, what=f"{env_id} compiled")
