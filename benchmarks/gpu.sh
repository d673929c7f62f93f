#!/usr/bin/env bash
# One command for a GPU machine: build minidl (CUDA kernels included), run the test suite
# (GPU cases run instead of skipping), then time the GPU kernels against PyTorch/torchvision.
#
#   bash benchmarks/gpu.sh            # from the repository root
#
# The GPU machine has no registry access: the build uses the preinstalled setuptools/pybind11/CuPy.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python -m pip install --no-build-isolation --no-deps -e . > /tmp/minidl-build.log 2>&1 \
  || { tail -50 /tmp/minidl-build.log; exit 1; }
python -c "import minidl; print('kernels:', minidl.kernels.available()); assert minidl.kernels.available()['cuda'], 'CUDA kernels not usable'"
python -m pytest -q -x tests -k "cuda or gpu or device" -rs
python benchmarks/bench_gpu.py
