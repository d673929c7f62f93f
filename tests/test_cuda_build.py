"""CUDA sources compile with warnings as errors and no register spills (CI has nvcc, no GPU).

Runs the package's own build (setup.py build_ext) into a temporary folder with
MINIDL_CUDA_STRICT=1, so a compile error, a warning or a spill in any .cu file fails CI — the
only check possible on a machine where no CUDA code can run.
"""
import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_all_cuda_sources_compile_strictly(tmp_path):
    sources = glob.glob(os.path.join(ROOT, "csrc", "*", "*_cuda.cu"))
    assert sources, "no CUDA sources found under csrc/"
    env = dict(os.environ, MINIDL_CUDA_STRICT="1")
    proc = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--build-temp", str(tmp_path / "tmp"),
         "--build-lib", str(tmp_path / "lib")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    for src in sources:
        assert os.path.basename(src) in proc.stdout, f"{src} was not compiled by setup.py"
    assert "-Werror" in proc.stdout and "-warn-spills" in proc.stdout
    built = glob.glob(str(tmp_path / "lib" / "minidl" / "_C_cuda*.so"))
    assert built, "the CUDA extension was not linked"
