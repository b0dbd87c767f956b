#!/usr/bin/env bash
# Run on a machine with a CUDA GPU (its own torch): CUDA tests, then benchmarks/bench_cuda.py's
# stages and gymnax on the same GPU.  Each step has its own time limit so one hang loses
# nothing else; everything is logged to ${OUT:-/tmp}/gpu.log.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
if [ -d .whl ]; then  # wheels carried to a machine without a package index
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
  timeout 60 python3 -m pytest -q -p no:cacheprovider tests/envs/test_classic_control.py -k cuda
  timeout 170 python3 benchmarks/bench_cuda.py --stages check --stage-timeout 165
  timeout 60 python3 benchmarks/bench_cuda.py --stages envs --stage-timeout 55
  timeout 40 python3 benchmarks/bench_envs.py --only-gymnax --json --sizes 4096 65536 1048576 --seconds 2
  timeout 100 python3 benchmarks/bench_cuda.py --stages ppo --updates 20 --stage-timeout 95
  timeout 100 python3 benchmarks/bench_cuda.py --stages population --updates 10 --stage-timeout 95
} 2>&1 | tee "$out/gpu.log"
