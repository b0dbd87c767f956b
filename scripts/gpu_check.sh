#!/usr/bin/env bash
# Run on a machine with a CUDA GPU (its own torch), about 9 minutes.  Three streams at once,
# each on its own cores (taskset, where there are 16 or more) and with its own time limit,
# so one hang loses nothing else:
#   tests.log  the CUDA tests (cores 0-5)
#   bench.log  benchmarks/bench_cuda.py's env, PPO and population stages (cores 6-11)
#   scale.log  benchmarks/bench_scale.py on two otherwise idle cores (14-15): the CPU
#              scaling figures of issue 18 on a quiet machine; the GPU is hidden from it
# Logs go to ${OUT:-/tmp}.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
if [ -d .whl ]; then  # wheels carried to a machine without a package index
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
cores=$(nproc)
pin() {  # pin CPUS CMD...: run CMD on CPUS where the machine has 16 cores or more
  local cpus=$1
  shift
  if [ "$cores" -ge 16 ] && command -v taskset >/dev/null; then
    taskset -c "$cpus" "$@"
  else
    "$@"
  fi
}
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
  echo "$cores cores: $(grep -m1 'model name' /proc/cpuinfo)"
} 2>&1 | tee "$out/machine.log"

(
  echo "== CUDA tests"; date -u
  pin 0-5 timeout 330 python3 -m pytest -q -p no:cacheprovider -n 6 tests/test_cuda.py \
    tests/envs/test_classic_control.py -k cuda
  date -u
) >"$out/tests.log" 2>&1 &

(
  bench() { pin 6-11 python3 benchmarks/bench_cuda.py "$@"; }
  echo "== envs"; date -u
  bench --stages envs --only compiled65536 minatar4096 minatar65536 --seconds 1 \
    --stage-timeout 150
  echo "== ppo"; date -u
  bench --stages ppo --only c2048 minatar1024 --updates 20 --stage-timeout 200
  echo "== population"; date -u
  bench --stages population --only e512 c512 --updates 10 --stage-timeout 150
  date -u
) >"$out/bench.log" 2>&1 &

(
  if [ "$cores" -ge 16 ]; then
    date -u
    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 pin 14,15 timeout 540 \
      python3 benchmarks/bench_scale.py --what population dp --dp large --seeds 3 --updates 20
    date -u
  else
    echo "fewer than 16 cores: no quiet pair of cores for bench_scale.py"
  fi
) >"$out/scale.log" 2>&1 &

wait
tail -n 3 "$out/tests.log"
