#!/usr/bin/env bash
# Everything a GPU machine checks, in one run: build minidl with its CUDA kernels, run the tests
# that skip without a GPU, time the kernels and an FCN epoch against PyTorch/torchvision CUDA,
# run tour chapters and short trainings with --device cuda, then the whole test suite.
#
#   bash benchmarks/gpu.sh [RESULTS_DIR]            # from anywhere; default ./gpu-results
#   STEPS="build tests bench" bash benchmarks/gpu.sh  # only some steps (a rerun after a fix)
#   DEADLINE=400 bash benchmarks/gpu.sh               # every step ends by 400 s after the start
#
# Steps (in this order; each has its own time limit and log RESULTS_DIR/<step>.log, and one line
# in RESULTS_DIR/summary.txt with its exit code and seconds; a failed step does not stop the
# others, except the build):
#   env    the card, driver, CUDA, Python and package versions
#   build  pip install --no-build-isolation -e . (the GPU machine has no registry access, so the
#          preinstalled setuptools/pybind11/CuPy are used) with the g++ on PATH, nvcc warnings
#          as errors, sm_90 only unless MINIDL_CUDA_ARCHS says otherwise; then a call into
#          minidl._C (a crash shows here, not in the middle of the tests) and
#          minidl.kernels.available()['cuda']
#   tests  the tests that run only with a GPU (pytest -k "cuda or gpu": kernels vs references,
#          gradchecks in float64 on CuPy, device round trips, tests/test_gpu.py)
#   bench  benchmarks/bench_gpu.py: the table of docs/gpu.md, also as bench.json
#   tour   python -m minidl.tour --device cuda: every chapter --quick, then mlp and segmentation
#   train  benchmarks/train_lecture8.py and train_fast_style.py --device cuda --no-save (short runs
#          whose final metric is compared with the same run on a CPU)
#   suite  the whole test suite (pytest -n 12), what is left of the time
set -uo pipefail
RESULTS=$(mkdir -p "${1:-gpu-results}" && cd "${1:-gpu-results}" && pwd)   # relative to the caller
cd "$(dirname "$0")/.."
SUMMARY=$RESULTS/summary.txt
STEPS=" ${STEPS:-env build tests bench tour train suite} "
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
: > "$SUMMARY"

DEADLINE=${DEADLINE:-3600}

# step NAME SECONDS COMMAND...: run COMMAND with a time limit into RESULTS/NAME.log (appending);
# the limit is cut to what is left before DEADLINE, and a step with under 10 s left is skipped.
step() {
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  (( limit > DEADLINE - SECONDS )) && limit=$((DEADLINE - SECONDS))
  if (( limit < 10 )); then
    printf '%-6s SKIPPED (deadline)  %s\n' "$name" "$*" | tee -a "$SUMMARY"
    return 124
  fi
  echo "\$ $*" >> "$RESULTS/$name.log"
  timeout --kill-after=10 "$limit" "$@" >> "$RESULTS/$name.log" 2>&1
  rc=$?
  printf '%-6s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - start))" "$*" | tee -a "$SUMMARY"
  return $rc
}
wanted() { [[ $STEPS == *" $1 "* ]]; }

if wanted env; then
  step env 30 nvidia-smi
  step env 30 nvcc --version
  step env 60 "$PY" -c "
import sys, numpy, cupy, torch, torchvision
print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__,
      'torch', torch.__version__, 'torchvision', torchvision.__version__,
      'cudnn', torch.backends.cudnn.version())
p = cupy.cuda.runtime.getDeviceProperties(0)
print('device', p['name'].decode(), 'sm', p['major'], p['minor'], 'SMs', p['multiProcessorCount'],
      'driver', cupy.cuda.runtime.driverGetVersion(), 'runtime', cupy.cuda.runtime.runtimeGetVersion())"
fi

if wanted build; then
  export MINIDL_CUDA_ARCHS=${MINIDL_CUDA_ARCHS:-90} MINIDL_CUDA_STRICT=1
  # The g++ on PATH, not the compiler this Python was configured with: on the H200 image that
  # one (/opt/gcc) built a minidl._C that segfaulted at its first array argument, in every
  # process, while the system g++ 13 built one that passes (docs/gpu.md, 2026-12-04).
  CXX_ON_PATH=$(command -v g++) && export CC=$CXX_ON_PATH CXX=$CXX_ON_PATH LDSHARED="$CXX_ON_PATH -shared"
  step build 300 "$PY" -m pip install -v --no-build-isolation --no-deps -e . \
    || step build 300 "$PY" setup.py build_ext --inplace \
    || { echo "build failed: see $RESULTS/build.log" | tee -a "$SUMMARY"; exit 1; }
  step build 60 "$PY" -c "
import numpy as np, minidl
from minidl.kernels import im2col
x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
with minidl.kernels.using('reference'):
    want = im2col.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1))
assert np.array_equal(im2col.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1)), want), 'minidl._C differs from the reference'
a = minidl.kernels.available(); print('kernels:', a); assert a['cpu'] and a['cuda'], 'compiled kernels not usable'" \
    || exit 1
fi

if wanted tests; then
  step tests 150 "$PY" -m pytest -q -rfEs -p no:cacheprovider -n 8 --timeout 240 tests -k "cuda or gpu"
fi

if wanted bench; then
  step bench 170 "$PY" benchmarks/bench_gpu.py --json "$RESULTS/bench.json"
fi

if wanted tour; then
  step tour 90 "$PY" -m minidl.tour --device cuda --quick --out "$RESULTS/tour-quick"
  step tour 90 "$PY" -m minidl.tour --device cuda --only mlp segmentation --out "$RESULTS/tour-cuda"
fi

if wanted train; then
  step train 100 "$PY" benchmarks/train_lecture8.py --task fcn_shapes --steps "${FCN_STEPS:-1000}" --device cuda --no-save
  step train 75 "$PY" benchmarks/train_fast_style.py --steps "${STYLE_STEPS:-100}" --device cuda --no-save
fi

if wanted suite; then
  step suite 420 "$PY" -m pytest -q -rfEs -p no:cacheprovider -n 12 --timeout 300 tests
fi
echo "results in $RESULTS" | tee -a "$SUMMARY"
