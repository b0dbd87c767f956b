#!/usr/bin/env bash
# Run on a machine with a CUDA GPU (its own torch): the CUDA tests, then
# benchmarks/bench_cuda.py's env, PPO and population stages.  Each step has its own time
# limit so one hang loses nothing else; everything is logged to ${OUT:-/tmp}/gpu.log.
# About 9 minutes in all.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
if [ -d .whl ]; then  # wheels carried to a machine without a package index
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
  echo "== CUDA tests"
  timeout 170 python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_cuda.py \
    tests/envs/test_classic_control.py -k cuda
  echo "== envs"; date -u
  timeout 95 python3 benchmarks/bench_cuda.py --stages envs --seconds 1 --stage-timeout 90
  echo "== ppo"; date -u
  timeout 150 python3 benchmarks/bench_cuda.py --stages ppo --updates 20 --stage-timeout 145
  echo "== population"; date -u
  timeout 120 python3 benchmarks/bench_cuda.py --stages population --updates 10 \
    --stage-timeout 115
  date -u
} 2>&1 | tee "$out/gpu.log"
