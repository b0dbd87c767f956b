#!/usr/bin/env bash
# Create (or refresh) .venv with funrl and its test/dev tools.  Idempotent: a second run
# only reinstalls when pyproject.toml changed.  Torch goes in first, as a CPU build where
# the machine offers one, so that pip never resolves "torch>=..." to a multi-GB CUDA wheel;
# bring your own torch by installing it into .venv (or FUNRL_PYTHON's env) beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${FUNRL_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch (CPU build ${FUNRL_TORCH_VERSION:-2.13.0})"
  "$VPY" -m pip install -q "torch==${FUNRL_TORCH_VERSION:-2.13.0}"
fi
stamp=.venv/.funrl-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  extras=test,dev,progress,plot,video,tensorboard,mujoco,atari,minatar,dm-control,envpool
  echo "[setup] installing funrl[$extras] into .venv"
  "$VPY" -m pip install -q -e ".[$extras]"
  "$VPY" -c "import funrl, torch, gymnasium, hypothesis, mujoco, ale_py, cv2, minatar, dm_control.suite"
  if [ "$(uname -sm)" = "Linux x86_64" ]; then "$VPY" -c "import envpool"; fi
  echo "$want" > "$stamp"
fi
