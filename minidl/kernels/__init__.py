"""minidl.kernels — which implementation runs a kernel: NumPy reference, C++ (_C) or CUDA (_C_cuda).

Every kernel family (im2col, roi_pool, nms, ...) has one file here holding its plain NumPy
*reference* (the readable definition, also the fallback) and a dispatcher that picks, from the
array it is given:

    NumPy array + minidl._C built          -> the C++/OpenMP kernel
    CuPy array  + minidl._C_cuda built     -> the CUDA kernel
    otherwise, or after use("reference")   -> the NumPy reference (runs on CuPy arrays too)

The C++ kernels come in two forms. ``use("native")`` (the default) runs the fast CPU forms
(``csrc/<k>/<k>_cpu_fast.cpp`` where a family has one); ``use("body")`` runs the textbook form,
``csrc/<k>/<k>_cpu.cpp``: an OpenMP loop over output elements calling the per-element body of
``<k>.h`` — the very code the CUDA kernel runs, so the CPU tests test it. Families without a
fast form run the same code in both modes; on CuPy arrays both modes run the CUDA kernels.

One calling convention for both compiled modules (``launch`` below is the one place that
calls them)::

    _C.<op>(*arrays, *options, fast=...)                                    NumPy arrays
    _C_cuda.<op>(*pointers, *sizes, *options, dtype_code, stream, deterministic=...)

``arrays`` are the op's inputs, then its outputs, named and ordered alike in both modules; the
caller (the dispatcher in this package) allocates every output — zeroed where the kernel adds
into it — and the kernels never allocate. ``_C_cuda`` receives each array as its device pointer
(0 for an absent optional one), then the ``sizes`` that a pointer cannot tell (``_C`` reads
them from the arrays' shapes). ``options`` are the hyper-parameters, the same on both. Two
keyword options belong to one side only: ``fast`` (the CPU form: see above) and
``deterministic`` (CUDA: a plane-per-thread backward instead of atomics; the CPU's always is).
Validation: the public functions (minidl.ops, minidl.functional) raise the named errors; ``_C``
keeps the checks that guard memory (dtypes, shapes, sizes, alignment, index ranges); ``_C_cuda``
sees only pointers and sizes, so it checks the sizes, their products and the alignment, and the
dispatchers here check the CuPy arrays' shapes and dtypes before they call it.

``import minidl`` never needs the compiled modules: without them everything runs on the
references. ``available()`` tells what this installation can use.
"""
from __future__ import annotations

import contextlib
import importlib

from .. import backend

_MODES = ("reference", "native", "body")
_mode = "native"
_modules = {}


def _load(name):
    """Import minidl._C / minidl._C_cuda once; None when not built (or not importable)."""
    if name not in _modules:
        try:
            _modules[name] = importlib.import_module(f"minidl.{name}")
        except ImportError:
            _modules[name] = None
    return _modules[name]


def available() -> dict:
    """``{"reference": True, "cpu": <_C built>, "cuda": <_C_cuda built and a GPU present>}``."""
    return {"reference": True, "cpu": _load("_C") is not None,
            "cuda": _load("_C_cuda") is not None and backend.cuda_available()}


def use(mode: str):
    """Select ``"native"`` (compiled kernels when available, fast CPU forms: the default),
    ``"body"`` (compiled kernels, CPU forms that loop over the shared per-element body) or
    ``"reference"`` (the NumPy references)."""
    global _mode
    if mode not in _MODES:
        raise ValueError(f"kernel mode must be one of {_MODES}, got {mode!r}")
    _mode = mode


def mode() -> str:
    return _mode


@contextlib.contextmanager
def using(mode_: str):
    """``with minidl.kernels.using("reference"): ...`` — switch for a block, then restore."""
    previous = _mode
    use(mode_)
    try:
        yield
    finally:
        use(previous)


def fast_cpu_form() -> bool:
    """Whether a C++ kernel with two CPU forms should run its fast one (mode "native")."""
    return _mode == "native"


def native_for(array):
    """The compiled module that should run a kernel on ``array``, or None for the reference."""
    if _mode == "reference":
        return None
    return _load("_C_cuda") if backend.is_cupy_array(array) else _load("_C")


def launch(native, op, arrays, sizes=(), options=(), fast=None, deterministic=None):
    """Call ``op`` of ``native`` (``_C`` or ``_C_cuda``, from ``native_for``) with the one
    calling convention (module docstring). ``arrays``: inputs then outputs (None: an absent
    optional array); ``sizes``: what the CUDA launcher needs to know about them; ``options``:
    hyper-parameters. ``fast`` goes to ``_C`` only, ``deterministic`` to ``_C_cuda`` only
    (None: not passed). Returns what the binding returns (most return None)."""
    kernel = getattr(native, op)
    if native is _load("_C"):
        return kernel(*arrays, *options, **({} if fast is None else {"fast": fast}))
    pointers = [0 if a is None else a.data.ptr for a in arrays]
    floats = [a for a in arrays if a is not None and a.dtype.kind == "f"]
    dtype = [dtype_code(floats[0])] if floats else []      # (nms_keep has no float array)
    keywords = {} if deterministic is None else {"deterministic": deterministic}
    return kernel(*pointers, *sizes, *options, *dtype, backend.current_stream_ptr(), **keywords)


def dtype_code(array) -> int:
    """How the CUDA launchers are told the dtype: 0 = float32, 1 = float64."""
    if array.dtype.name not in ("float32", "float64"):
        raise TypeError(f"expected a float32 or float64 array, got {array.dtype}")
    return 0 if array.dtype.name == "float32" else 1


def contiguous(array, xp, dtype=None):
    """``array`` as the compiled kernels read it: C-contiguous, of ``dtype`` (default: its own)
    and, for NumPy, *aligned* — a copy only when it is not already so.

    NumPy can make views whose data starts at an odd byte offset (``np.frombuffer(buf,
    np.float32, offset=1)``); reading a float there is undefined behaviour in C++, so the
    bindings refuse such arrays (ValueError naming the argument) and the dispatchers hand
    them an aligned copy instead. (``np.ascontiguousarray`` keeps a misaligned view as it is.)
    Only for inputs: an output written in place cannot be swapped for a copy.
    """
    if xp is backend.np:
        return xp.require(array, dtype=dtype, requirements=("C", "A"))
    return xp.ascontiguousarray(array, dtype=dtype)


def aligned(array) -> bool:
    """Whether the array's data is aligned for its dtype (CuPy's always is: no such flag there)."""
    return array.flags.aligned if isinstance(array, backend.np.ndarray) else True
