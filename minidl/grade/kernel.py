"""The C++ part of the detection assignment: build a student's RoI-pool body and check it.

minidl's kernels are written once per element in a header, marked ``MINIDL_HD`` (``__host__
__device__`` under nvcc, ``inline`` under g++), and called by two launchers: an OpenMP loop on
the CPU and a CUDA kernel with one thread per element (see csrc/roi_pool/). In this part a
student writes that body for RoI max pooling — the window of one bin and its max + argmax — in
``roi_pool_cell.h``, as ``student::roi_pool_cell``; this module turns it into something a
notebook can call and judge:

    build_kernel("roi_pool_cell.h")
        g++ compiles roi_pool_harness.cpp (the OpenMP launcher + a pybind11 binding, including
        the student's header) into a throw-away module with a fresh name, so an edited header
        can be rebuilt and re-imported in the same Jupyter kernel; when nvcc is found it also
        compiles roi_pool_harness.cu (the CUDA launcher calling the same body) for one GPU
        architecture — not run, only proof that the body is valid device code.
    check_roi_pool_kernel(name, module)
        compares the module's output and argmax *exactly* with the NumPy reference
        (minidl.kernels.roi_pool.roi_pool_reference) on random cases in float32 and float64,
        explains the first mismatch (off by one, empty bins, ties, the flat index), then runs a
        float64 gradient check of a RoI-pool Function whose forward is the student's kernel.

Errors a student can meet, in order: NotImplementedError (the header is still the stub),
AssertionError (it calls minidl's own window/cell instead of computing them), KernelBuildError
(the compiler's first error lines, pointing at roi_pool_cell.h), AssertionError from the check.
"""
from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from ..gradcheck import gradcheck
from ..kernels.roi_pool import roi_pool_backward_reference, roi_pool_reference, round_half_away
from ..autograd import Function

HERE = Path(__file__).resolve().parent
HARNESS_CPP = HERE / "roi_pool_harness.cpp"   # OpenMP launcher + binding (g++)
HARNESS_CU = HERE / "roi_pool_harness.cu"     # CUDA launcher (nvcc, compile only)
HEADER_NAME = "roi_pool_cell.h"               # what the harnesses #include
CXX_FLAGS = ["-O3", "-std=c++17", "-fvisibility=hidden"]   # the project's (setup.py)
NVCC_ARCH = "80"                               # one architecture is enough to prove device code
ERROR_LINES = 25                               # compiler lines shown to the student

_builds = itertools.count()                    # a fresh module name per build (see build_kernel)


class KernelBuildError(RuntimeError):
    """The compiler rejected the student's header; the message holds its first error lines."""


# ---- building ---------------------------------------------------------------------------------

def _csrc() -> Path:
    """The repository's csrc/ folder: the harnesses include minidl's common headers from it."""
    import minidl
    csrc = Path(minidl.__file__).resolve().parents[1] / "csrc"
    if not (csrc / "roi_pool" / "roi_pool.h").is_file():
        raise RuntimeError(f"build_kernel needs the minidl repository (pip install -e .): "
                           f"{csrc} does not hold the C++ sources")
    return csrc


@functools.lru_cache(maxsize=None)
def _has_openmp(cxx: str) -> bool:
    """Probe (as setup.py does): does the compiler accept -fopenmp and link an OpenMP program?"""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp.cpp"
        src.write_text("#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        cmd = [cxx, "-fopenmp", str(src), "-o", str(Path(tmp) / "omp")]
        return subprocess.run(cmd, capture_output=True).returncode == 0


def _find_nvcc(nvcc):
    """nvcc="auto": on the PATH or in /usr/local/cuda; False/None: skip; a string: that command."""
    if not nvcc:
        return None
    if nvcc != "auto":
        return nvcc
    found = shutil.which("nvcc")
    if found is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
        found = "/usr/local/cuda/bin/nvcc"
    return found


def _code_only(text: str) -> str:
    """The header without its comments: a TODO or a name in a comment does not count."""
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.DOTALL)


def _check_header(text: str, shown: str):
    """Refuse, before compiling, a header that is still the stub or that calls minidl's own body."""
    code = _code_only(text)
    if re.search(r"\bMINIDL_TODO\b", code):
        named = re.search(r'MINIDL_TODO\s*\(\s*"(\w+)"', code) or \
            re.search(r"MINIDL_HD\s+\w+\s+(\w+)\s*\(", code)
        function = named.group(1) if named else "roi_pool_cell"
        raise NotImplementedError(f"{function} (C++, {shown}): replace the TODO with your code")
    # roi_pool.h is included for the given geometry, but its window and cell *are* the answer.
    used = re.search(r"\broi_pool_window\b|\bPoolWindow\b|\bminidl\s*::\s*roi_pool_cell\b", code)
    if used:
        raise AssertionError(f"roi_pool_cell (C++, {shown}): your header uses minidl's own "
                             f"`{used.group(0)}` from roi_pool/roi_pool.h — this part asks you to "
                             "compute the bin's window and its maximum yourself")


def _compile(cmd, compiler: str, shown: str, tmp: Path, hint: str = "") -> float:
    """Run one compiler command; seconds taken, or KernelBuildError with its first error lines.

    The student's header was copied into the temporary folder ``tmp``; the messages name it by
    the student's file name instead, so "roi_pool_cell.h:31:9: error: ..." points at their cell.
    """
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode == 0:
        return seconds
    text = (result.stderr + result.stdout).replace(str(tmp / HEADER_NAME), shown)
    text = text.replace(str(tmp) + os.sep, "")
    # The include chain ("In file included from ...") is the same every time: leave it out.
    lines = [line for line in text.splitlines()
             if line.strip() and not line.startswith(("In file included from", "                 from"))]
    shown_lines = "\n".join(lines[:ERROR_LINES]) + ("\n..." if len(lines) > ERROR_LINES else "")
    raise KernelBuildError(f"{compiler} could not compile {shown}:\n{shown_lines}"
                           + (f"\nhint: {hint}" if hint else ""))


def _import_extension(name: str, path: Path):
    """Import the extension module ``name`` from the file ``path`` (it need not be on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)   # loads the shared library
    spec.loader.exec_module(module)
    return module


def build_kernel(header=HEADER_NAME, *, nvcc="auto", verbose=True):
    """Compile the student's ``header`` (path relative to the working directory) into a module.

    The module has ``roi_pool_forward(input, rois, pooled_h, pooled_w, spatial_scale) ->
    (output, argmax)`` (float32 or float64 NumPy arrays) running the student's
    ``student::roi_pool_cell`` in the OpenMP launcher, and ``nvcc_compiled``: True when nvcc
    also compiled the body for the GPU. ``nvcc``: "auto" (use it when found), False (skip), or
    the nvcc command. Prints one line per compiler when ``verbose``.
    """
    path = Path(header)
    if not path.is_file():
        raise FileNotFoundError(f"build_kernel: {header} not found in {Path.cwd()} "
                                "(run the %%writefile cell above first)")
    shown = str(header)
    _check_header(path.read_text(), shown)
    csrc = _csrc()
    try:
        import pybind11
    except ImportError:
        raise RuntimeError("build_kernel needs pybind11 (pip install 'pybind11>=2.12')") from None
    cxx = os.environ.get("CXX", "g++")
    say = print if verbose else (lambda *args: None)
    # A fresh name per build: Python never re-imports a module it has loaded, so a rebuilt
    # header must become a *new* module for the notebook to see the edited code.
    name = f"student_roi_pool_{os.getpid()}_{next(_builds)}"
    with tempfile.TemporaryDirectory(prefix="minidl_kernel_") as tmp:
        tmp = Path(tmp)
        shutil.copyfile(path, tmp / HEADER_NAME)
        target = tmp / (name + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
        cmd = [cxx, *CXX_FLAGS, "-shared", "-fPIC", "-fdiagnostics-color=never",
               *(["-fopenmp"] if _has_openmp(cxx) else []),
               f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}",
               f"-I{csrc}", f"-I{tmp}", f"-DMODULE_NAME={name}", str(HARNESS_CPP), "-o", str(target)]
        seconds = _compile(cmd, Path(cxx).name, shown, tmp)
        module = _import_extension(name, target)   # loaded: the file may go with the folder
        say(f"{Path(cxx).name}: built {shown} into the module {name} in {seconds:.1f} s")

        module.nvcc_compiled = False
        nvcc_cmd = _find_nvcc(nvcc)
        if nvcc_cmd is None:
            say("nvcc: not found — skipped the GPU compile" if nvcc else "nvcc: skipped (nvcc=False)")
            return module
        cmd = [nvcc_cmd, "-c", "-std=c++17", f"-I{csrc}", f"-I{tmp}",
               "-gencode", f"arch=compute_{NVCC_ARCH},code=sm_{NVCC_ARCH}",
               str(HARNESS_CU), "-o", str(tmp / "roi_pool_harness_cuda.o")]
        seconds = _compile(cmd, "nvcc", shown, tmp,
                           hint="g++ built it, so the body is not valid *device* code: mark "
                                "roi_pool_cell MINIDL_HD and call only MINIDL_HD functions "
                                "(minidl::floor_of, ceil_of, clamp_index) from it")
        module.nvcc_compiled = True
        say(f"nvcc: the same body compiled for the GPU (sm_{NVCC_ARCH}) in {seconds:.1f} s")
    return module


# ---- checking: forward vs the NumPy reference --------------------------------------------------

_LOWEST = -float(np.finfo(np.float32).max)   # where the max starts, -FLT_MAX in both dtypes

HINT_END = ("off by one at the end of the bin: the bin covers rows [floor(ph*bin_h), "
            "ceil((ph+1)*bin_h)) — the end is exclusive (columns likewise)")
HINT_START = ("off by one at the start of the bin: it begins at row floor(ph*bin_h) + start_h "
              "(column floor(pw*bin_w) + start_w), clipped to the map")
HINT_EMPTY = "an empty bin (outside the map) outputs 0 and argmax -1"
HINT_TIES = "ties go to the first position in row-major order (use >, not >=)"
HINT_FLAT = ("argmax is the flat index h*width + w of the maximum in the whole plane "
             "(not its position inside the bin)")
HINT_START_LOW = ("the maximum starts from -FLT_MAX, not 0: a bin of negative values outputs its "
                  "largest (negative) value; only an *empty* bin outputs 0")
HINT_WINDOW = ("compare your window with the rule: rows [floor(ph*bin_h) + start_h, "
               "ceil((ph+1)*bin_h) + start_h) clipped to [0, height], columns likewise")


def _random_case(rng, scale):
    """A random input and RoIs of every kind: inside, partly outside, tiny (x2 < x1), wholly
    outside the map (all bins empty), and one whose batch index is out of range (pools nothing)."""
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(5, 13, size=2))
    pooled = tuple(int(v) for v in rng.integers(1, 5, size=2))
    x = rng.standard_normal((n, c, h, w))
    img_h, img_w = h / scale, w / scale                       # the image the boxes live on
    rois = []
    for _ in range(5):                                        # some reach past the map's edges
        x1, y1 = rng.uniform(-0.3, 0.9) * img_w, rng.uniform(-0.3, 0.9) * img_h
        x2, y2 = x1 + rng.uniform(0.05, 1.0) * img_w, y1 + rng.uniform(0.05, 1.0) * img_h
        rois.append([rng.integers(0, n), x1, y1, x2, y2])
    x1, y1 = rng.uniform(0, img_w), rng.uniform(0, img_h)     # tiny: x2 < x1 -> a 1×1 RoI
    rois.append([rng.integers(0, n), x1, y1, x1 - rng.uniform(0.5, 3), y1 - rng.uniform(0.5, 3)])
    rois.append([rng.integers(0, n), img_w + 2 / scale, rng.uniform(0, img_h),   # right of the map
                 img_w + 9 / scale, img_h + 4 / scale])
    rois.append([n, 0.0, 0.0, img_w / 2, img_h / 2])          # batch index n: not an image
    return x, np.array(rois, dtype=np.float64), pooled, scale


def _tied_case(rng):
    """Values in {-1, 0, 1}: nearly every bin has several equal maxima (the tie rule matters)."""
    x = rng.integers(-1, 2, size=(1, 2, 7, 8)).astype(np.float64)
    rois = np.array([[0, 0, 0, 7, 6], [0, 1, 2, 5, 6], [0, -2, -1, 9, 3], [0, 2.4, 0.6, 6.3, 5.5]])
    return x, rois, (2, 3), 1.0


def _geometry(roi, dtype, n, scale):
    """roi_pool_geometry in Python: None for a RoI that pools nothing, else
    (batch, start_h, start_w, roi_h, roi_w) — the rounded corner and the inclusive size."""
    T = np.dtype(dtype).type
    scaled = roi[1:] * T(scale)
    if not (0 <= roi[0] < n) or not np.all(np.abs(scaled.astype(np.float64)) <= 2.0 ** 40):
        return None
    x1, y1, x2, y2 = (int(v) for v in round_half_away(scaled, np))
    return int(roi[0]), y1, x1, max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)


def _window(geometry, dtype, pooled, bin_index, size, shift=(0, 0, 0, 0)):
    """The bin's window (h0, h1, w0, w1), each bound moved by ``shift`` before clipping."""
    T = np.dtype(dtype).type
    (ph_n, pw_n), (ph, pw), (height, width) = pooled, bin_index, size
    _, start_h, start_w, roi_h, roi_w = geometry
    bin_h, bin_w = T(roi_h) / T(ph_n), T(roi_w) / T(pw_n)
    bounds = (math.floor(T(ph) * bin_h) + start_h, math.ceil(T(ph + 1) * bin_h) + start_h,
              math.floor(T(pw) * bin_w) + start_w, math.ceil(T(pw + 1) * bin_w) + start_w)
    limits = (height, height, width, width)
    return tuple(min(max(b + s, 0), lim) for b, s, lim in zip(bounds, shift, limits))


def _pool(plane, window):
    """(max, flat argmax) of a window by the rule: first strictly greater value from -FLT_MAX."""
    h0, h1, w0, w1 = window
    if h1 <= h0 or w1 <= w0:
        return 0.0, -1
    best, where = _LOWEST, -1
    for hh in range(h0, h1):
        for ww in range(w0, w1):
            if plane[hh, ww] > best:
                best, where = float(plane[hh, ww]), hh * plane.shape[1] + ww
    return best, where


def _shift_explains(kind, x, rois, pooled, scale, cell, got):
    """Does moving the window's ends (kind "end") or starts ("start") by one row and/or column
    reproduce what the student's kernel gave for this cell?"""
    k, c, ph, pw = cell
    geometry = _geometry(rois[k], x.dtype, x.shape[0], scale)
    if geometry is None:
        return False
    plane = x[geometry[0], c]
    window = _window(geometry, x.dtype, pooled, (ph, pw), plane.shape)
    rows, cols = (1, 3) if kind == "end" else (0, 2)     # positions in (h0, h1, w0, w1)
    for dh, dw in itertools.product((-1, 0, 1), repeat=2):
        shift = [0, 0, 0, 0]
        shift[rows], shift[cols] = dh, dw
        moved = _window(geometry, x.dtype, pooled, (ph, pw), plane.shape, tuple(shift))
        if moved != window and _pool(plane, moved) == got:
            return True
    return False


def _diagnose(x, rois, pooled, scale, cells, got, expected):
    """A hint naming the typical mistake behind the wrong ``cells`` (k, c, ph, pw), first one first.

    got, expected: (output, argmax) arrays. One cell can be ambiguous (an empty window is what a
    shifted start and a shifted end may both produce), so the off-by-one guesses are weighed over
    all the wrong cells.
    """
    def at(pair, cell):
        return float(pair[0][cell]), int(pair[1][cell])

    first = cells[0]
    (got_value, got_arg), (exp_value, exp_arg) = at(got, first), at(expected, first)
    geometry = _geometry(rois[first[0]], x.dtype, x.shape[0], scale)
    plane = x[geometry[0] if geometry else 0, first[1]]
    if got_value == exp_value and got_arg != exp_arg:
        if 0 <= got_arg < plane.size and plane.flat[got_arg] == exp_value:
            return HINT_TIES
        return HINT_FLAT
    # best = 0 at the start: every wrong cell is 0 where a negative maximum was expected
    if all(at(got, cell)[0] == 0 and at(expected, cell)[0] < 0 for cell in cells):
        return HINT_START_LOW
    explained = {kind: sum(_shift_explains(kind, x, rois, pooled, scale, cell, at(got, cell))
                           for cell in cells[:200])
                 for kind in ("end", "start")}
    kind = max(explained, key=explained.get)             # "end" when they explain as many
    if explained[kind]:
        return HINT_END if kind == "end" else HINT_START
    if geometry is None:
        where = " (this RoI is invalid: it pools nothing)"
    else:
        h0, h1, w0, w1 = _window(geometry, x.dtype, pooled, first[2:], plane.shape)
        where = f" (this bin's window: rows [{h0}, {h1}), columns [{w0}, {w1}))"
    if exp_arg == -1 and exp_value == 0:
        return HINT_EMPTY + where
    return HINT_WINDOW + where


def _compare(name, module, case_index, x, rois, pooled, scale):
    """Run the student's forward on one case; AssertionError describing the first mismatch."""
    expected = roi_pool_reference(x, rois, pooled, scale)
    result = module.roi_pool_forward(x, rois, pooled[0], pooled[1], scale)
    got = tuple(np.asarray(r) for r in result)
    wrong = (got[0] != expected[0]) | (got[1] != expected[1])
    if not wrong.any():
        return
    cells = [tuple(int(i) for i in index) for index in np.argwhere(wrong)]   # row-major order
    hint = _diagnose(x, rois, pooled, scale, cells, got, expected)
    k, c, ph, pw = cells[0]
    roi = "[" + ", ".join(str(v) for v in rois[k]) + "]"   # str: the shortest digits in the dtype
    print(f"{name}: {len(cells)} of {wrong.size} cells differ from the NumPy reference — WRONG")
    raise AssertionError(
        f"{name}: case {case_index} ({x.dtype}, input {x.shape}, pooled {pooled[0]}×{pooled[1]}, "
        f"spatial_scale {scale:g}): first difference at RoI {k} = {roi}, channel {c}, "
        f"bin (ph, pw) = ({ph}, {pw}): expected {expected[0][cells[0]]!s} at argmax "
        f"{expected[1][cells[0]]}, got {got[0][cells[0]]!s} at argmax {got[1][cells[0]]}.\nhint: {hint}")


# ---- checking: the gradient through the student's argmax ---------------------------------------

def student_roi_pool_function(module):
    """A minidl Function: forward = the student's kernel, backward = minidl's argmax routing.

    ``apply(input, rois, output_size=(ph, pw), spatial_scale=1.0)``; the gradient with respect
    to ``input`` is each output cell's gradient added at that cell's argmax.
    """
    class StudentRoIPool(Function):
        @staticmethod
        def forward(ctx, input, rois, output_size=(1, 1), spatial_scale=1.0):
            input = np.ascontiguousarray(input)
            rois = np.ascontiguousarray(rois, dtype=input.dtype)
            output, argmax = module.roi_pool_forward(input, rois, output_size[0], output_size[1],
                                                     spatial_scale)
            ctx.save_for_backward(argmax, rois)
            ctx.input_shape = input.shape
            return output

        @staticmethod
        def backward(ctx, grad_output):
            argmax, rois = ctx.saved_tensors
            return roi_pool_backward_reference(grad_output, argmax, rois, ctx.input_shape), None

    return StudentRoIPool


def _check_gradient(name, module, seed, tol=1e-6):
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal((2, 2, 8, 9))   # continuous values: every bin's max is unique
    rois = np.array([[0, 1, 1, 6, 5], [1, -2, 3, 10, 12], [0, 0, 0, 8, 7], [1, 3.4, 2.6, 4.4, 3.1]])
    fn = student_roi_pool_function(module)
    (error,) = gradcheck(lambda t: fn.apply(t, rois, output_size=(3, 2), spatial_scale=1.0), [x],
                         tol=tol, raise_exception=False)
    ok = error <= tol
    print(f"{name}: float64 gradient check of RoI pooling on your kernel, relative error {error:.2e} "
          f"— {'OK' if ok else 'WRONG'}")
    if not ok:
        raise AssertionError(f"{name}: the gradient is wrong (relative error {error:.2e}): the gradient "
                             "routes through your argmax: check that argmax is the flat index "
                             "h*width + w of the maximum")
    return error


def check_roi_pool_kernel(name, module, trials=6, seed=0):
    """Check a module from ``build_kernel``: exact outputs and argmax, then a gradient check.

    ``trials`` random cases (plus one with tied values), each in float32 and float64, must give
    outputs and argmax *identical* to ``roi_pool_reference`` (the same arithmetic in the same
    dtype leaves no rounding to forgive). Prints one line per check; raises AssertionError with
    the first differing cell and a hint. Returns the gradient check's relative error.
    """
    scales = (1.0, 0.5, 0.25)                      # feature maps 1, 2 and 4 times smaller
    cases = [_random_case(np.random.default_rng([seed, t]), scales[t % 3]) for t in range(trials)]
    cases.append(_tied_case(np.random.default_rng([seed, trials])))   # last: see _diagnose
    for i, (x, rois, pooled, scale) in enumerate(cases):
        for dtype in (np.float32, np.float64):
            _compare(name, module, i, x.astype(dtype), rois.astype(dtype), pooled, scale)
    print(f"{name}: {len(cases)} random cases (one with tied values), float32 and float64, "
          "outputs and argmax identical to the NumPy reference — OK")
    return _check_gradient(name, module, seed)
