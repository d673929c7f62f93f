"""Build minidl's compiled kernels: minidl._C (g++, OpenMP) and, when nvcc is found, minidl._C_cuda.

Everything else about the package lives in pyproject.toml. Environment switches:
  MINIDL_NATIVE=1       add -march=native (faster, but the build only runs on this CPU family)
  MINIDL_NO_CUDA=1      do not build _C_cuda even when nvcc is present
  MINIDL_NO_OPENMP=1    build the C++ kernels without OpenMP (one thread)
  MINIDL_CUDA_STRICT=1  nvcc warnings are errors and register spills are reported (CI's setting)
  MINIDL_CUDA_ARCHS     e.g. "75;80;90" (default), PTX of the last one is embedded for newer GPUs
  MINIDL_BUILD_JOBS     compilers run at once (default, or 0: one per core)
  MINIDL_SANITIZE=1     a debugging build of _C under AddressSanitizer + UndefinedBehaviorSanitizer:
                        -O1 -g -fsanitize=address,undefined,float-cast-overflow
                        -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fno-wrapv (Python's
                        own -fwrapv would make signed overflow defined, and UBSan silent about it);
                        _C_cuda is not built. Python itself is not instrumented, so it runs with
                        LD_PRELOAD=$(g++ -print-file-name=libasan.so): never build it in place over
                        the normal build — .ci/sanitize builds it in a throw-away copy and runs the
                        kernel tests under it (docs/sanitize.md)
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def rel(pattern):
    return sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, pattern)))


def has_openmp(compiler="g++"):
    """Probe: does the C++ compiler accept -fopenmp and link a tiny OpenMP program?"""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.cpp")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        cmd = [os.environ.get("CXX", compiler), "-fopenmp", src, "-o", os.path.join(tmp, "omp")]
        return subprocess.run(cmd, capture_output=True).returncode == 0


SANITIZE = bool(os.environ.get("MINIDL_SANITIZE"))


def find_nvcc():
    if os.environ.get("MINIDL_NO_CUDA") or SANITIZE:
        return None
    nvcc = shutil.which("nvcc")
    if nvcc is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
        nvcc = "/usr/local/cuda/bin/nvcc"
    return nvcc


CXX_FLAGS = ["-O3", "-std=c++17", "-fvisibility=hidden"]
LINK_FLAGS = []
if SANITIZE:  # see the docstring; the same -fsanitize flags go to the compiler and the linker
    SANITIZERS = ["-fsanitize=address,undefined,float-cast-overflow",
                  "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    CXX_FLAGS = ["-O1", "-g", "-fno-wrapv", "-std=c++17", "-fvisibility=hidden"] + SANITIZERS
    LINK_FLAGS += SANITIZERS
    print("minidl: MINIDL_SANITIZE=1 — building _C with ASan + UBSan (-O1 -g), without _C_cuda",
          file=sys.stderr)
if os.environ.get("MINIDL_NATIVE"):
    CXX_FLAGS.append("-march=native")
# No implicit fused multiply-adds: where a loop is compiled for AVX-512 (common/vector_clones.h)
# or -march=native, GCC would fuse a * b + c in some copies of a formula and not in others (a
# loop's vector body, not its remainder), and one formula would give results differing in the
# last bit from element to element. The hand-written vector code asks for its FMAs explicitly.
CXX_FLAGS.append("-ffp-contract=off")
# Floating-point operations never trap here (nothing enables FP exceptions), so the compiler may
# compute both sides of a select in every vector lane: without this, a gated product such as
# ReLU's backward `g · (out > 0)` stayed a scalar loop with a branch in the AVX2 and SSE2 copies
# (only AVX-512 has the masked arithmetic that does it without). Changes no value.
CXX_FLAGS.append("-fno-trapping-math")
OPENMP = not os.environ.get("MINIDL_NO_OPENMP") and has_openmp()
if OPENMP:
    CXX_FLAGS.append("-fopenmp")
    LINK_FLAGS.append("-fopenmp")
else:
    print("minidl: the compiler has no OpenMP; the C++ kernels will run on one thread", file=sys.stderr)

# The headers (the shared per-element bodies live there): setuptools rebuilds an extension when
# one of its sources *or depends* is newer than the built module — without this list an edited
# im2col.h would leave the old kernels in place.
HEADERS = rel("csrc/*.h") + rel("csrc/*/*.h")

extensions = [
    Pybind11Extension("minidl._C", ["csrc/bind_cpu.cpp"] + rel("csrc/*/*_cpu.cpp") + rel("csrc/*/*_cpu_fast.cpp"),
                      include_dirs=["csrc"], extra_compile_args=CXX_FLAGS, depends=HEADERS,
                      extra_link_args=LINK_FLAGS, cxx_std=17),
]

def find_cuda_home(nvcc):
    """The toolkit folder holding include/ and libcudart_static.a (nvcc may be a wrapper script)."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
                  os.path.dirname(os.path.dirname(os.path.realpath(nvcc))), "/usr/local/cuda"]
    for home in filter(None, candidates):
        if os.path.exists(os.path.join(home, "lib64", "libcudart_static.a")):
            return home
    return None


NVCC = find_nvcc()
CUDA_HOME = find_cuda_home(NVCC) if NVCC else None
if NVCC and not CUDA_HOME:
    print("minidl: nvcc found but not libcudart_static.a (set CUDA_HOME) — skipping minidl._C_cuda",
          file=sys.stderr)
    NVCC = None
if NVCC:
    extensions.append(Pybind11Extension(
        "minidl._C_cuda", ["csrc/bind_cuda.cpp"] + rel("csrc/*/*_bind_cuda.cpp") + rel("csrc/*/*_cuda.cu"),
        include_dirs=["csrc", os.path.join(CUDA_HOME, "include")],
        extra_compile_args=["-O3", "-fvisibility=hidden"], cxx_std=17,
        # BuildExt hands the .cu files to nvcc and takes them out of `sources`: listed here so
        # that an edited .cu still makes the module out of date.
        depends=HEADERS + rel("csrc/*/*_cuda.cu"),
        # Static cudart: the module imports on machines without libcudart (or without a GPU).
        extra_link_args=[os.path.join(CUDA_HOME, "lib64", "libcudart_static.a"), "-lrt", "-ldl",
                         "-lpthread"]))
elif not SANITIZE:  # (a sanitizer build said so above)
    print("minidl: nvcc not found — skipping the CUDA extension minidl._C_cuda "
          "(the CPU and NumPy paths are complete without it)", file=sys.stderr)


def nvcc_flags():
    archs = os.environ.get("MINIDL_CUDA_ARCHS", "75;80;90").split(";")
    flags = ["-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-Icsrc"]
    for a in archs:
        flags += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    flags += ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]  # PTX: newer GPUs
    if os.environ.get("MINIDL_CUDA_STRICT"):
        flags += ["-Werror", "all-warnings", "-Xptxas", "-warn-spills,-Werror"]
    return flags


def build_jobs():
    """How many compilers run at once: MINIDL_BUILD_JOBS, or one per core when it is unset or 0
    (what pybind11's ParallelCompile below reads from the same variable for the C++ sources)."""
    value = os.environ.get("MINIDL_BUILD_JOBS", "0")
    if not value.isdigit():
        sys.exit(f"MINIDL_BUILD_JOBS must be a whole number, got {value!r}")
    return int(value) or os.cpu_count() or 1


class BuildExt(build_ext):
    """Compile .cu sources with nvcc into objects, then let setuptools link them with g++."""

    def build_extension(self, ext):
        cu_files = [s for s in ext.sources if s.endswith(".cu")]
        if cu_files:
            ext.sources = [s for s in ext.sources if not s.endswith(".cu")]
            os.makedirs(self.build_temp, exist_ok=True)
            objects = [os.path.join(self.build_temp, os.path.basename(src) + ".o") for src in cu_files]

            def compile_cu(src, obj):
                cmd = [NVCC, "-c", src, "-o", obj] + nvcc_flags()
                print(" ".join(cmd))
                subprocess.check_call(cmd, cwd=HERE)

            # Each .cu file is an independent nvcc run: one per core (list() re-raises a failure).
            with ThreadPoolExecutor(build_jobs()) as pool:
                list(pool.map(compile_cu, cu_files, objects))
            ext.extra_objects.extend(objects)
        super().build_extension(ext)


# The C++ sources of each extension compile in parallel too (pybind11's helper patches distutils).
ParallelCompile("MINIDL_BUILD_JOBS").install()


setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
