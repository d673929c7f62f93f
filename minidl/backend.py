"""The array module: NumPy on the CPU, CuPy on a GPU — one code path for both.

Every op in minidl asks its data which module to use (``xp = get_array_module(x)``) and then
calls ``xp.matmul``, ``xp.exp``, ... . NumPy and CuPy share an API, so the same line runs on
either device. This file is the only place in minidl that imports CuPy, and it does so lazily
and optionally: without CuPy (or without a GPU) everything runs on NumPy.

Devices are named like PyTorch's: ``"cpu"`` and ``"cuda"``.
"""
from __future__ import annotations

import numpy as np

#: float32 is the default dtype of parameters and data; gradient checks use float64.
default_dtype = np.float32

_cupy = None          # the cupy module once imported, or False when it cannot be imported
_cuda_ok = None       # cached answer of cuda_available()


def _import_cupy():
    """Import CuPy on first use; return the module or None when it is not installed."""
    global _cupy
    if _cupy is None:
        try:
            import cupy  # noqa: F401  (the one CuPy import of the package)
            _cupy = cupy
        except Exception:  # ImportError, or a broken CUDA install raising at import
            _cupy = False
    return _cupy or None


def cuda_available() -> bool:
    """True when CuPy is installed *and* a CUDA device can actually run code."""
    global _cuda_ok
    if _cuda_ok is None:
        cp = _import_cupy()
        try:
            _cuda_ok = bool(cp is not None and cp.cuda.is_available()
                            and cp.cuda.runtime.getDeviceCount() > 0)
        except Exception:  # no driver: CuPy raises CUDARuntimeError here
            _cuda_ok = False
    return _cuda_ok


def is_cupy_array(a) -> bool:
    """True for a CuPy ndarray — also when the caller, not minidl, imported CuPy first."""
    if _cupy:
        return isinstance(a, _cupy.ndarray)
    if type(a).__module__.startswith("cupy"):
        cp = _import_cupy()
        return cp is not None and isinstance(a, cp.ndarray)
    return False


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy`` (Chainer's idiom).

    Tensors are accepted too (their ``.data`` is looked at). A CuPy array is tested *before*
    looking at ``.data``: on a CuPy array ``.data`` is its memory pointer, not an array.
    """
    for a in arrays:
        if is_cupy_array(a) or (not isinstance(a, np.ndarray) and is_cupy_array(getattr(a, "data", None))):
            return _cupy
    return np


def device_of(a) -> str:
    """``"cuda"`` for a CuPy array, ``"cpu"`` otherwise."""
    return "cuda" if is_cupy_array(a) else "cpu"


def normalize_device(device) -> str:
    """Accept ``"cpu"``, ``"cuda"``, ``"cuda:0"`` (and ``None`` = cpu); return ``"cpu"``/``"cuda"``."""
    if device is None:
        return "cpu"
    name = str(device).lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        return "cuda"
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")


def device_name(device="cpu") -> str:
    """A readable name of ``device`` for reports and logs: ``"cpu"``, or ``"cuda (<GPU name>)"``
    (CuPy's name of the current device, e.g. ``"cuda (NVIDIA H200)"``)."""
    if normalize_device(device) == "cpu":
        return "cpu"
    if not cuda_available():
        return "cuda (no usable GPU)"
    name = _cupy.cuda.runtime.getDeviceProperties(_cupy.cuda.Device().id)["name"]
    return f"cuda ({name.decode() if isinstance(name, bytes) else name})"


def to_device(a, device):
    """Move an array to ``device``: a no-op when it is already there.

    Moving to ``"cuda"`` on a machine without a usable GPU raises a RuntimeError that says why.
    """
    device = normalize_device(device)
    if device == "cpu":
        return _cupy.asnumpy(a) if is_cupy_array(a) else np.asarray(a)
    if not cuda_available():
        raise RuntimeError(
            "device 'cuda' requested but no usable GPU was found "
            "(CuPy not installed, or no CUDA device/driver); use device='cpu'"
        )
    return _cupy.asarray(a)


def to_numpy(a) -> np.ndarray:
    """A NumPy array with the same values (copies from the GPU when needed)."""
    return _cupy.asnumpy(a) if is_cupy_array(a) else np.asarray(a)


def as_array(data, dtype=None, device=None):
    """Turn Python/NumPy/CuPy data into an array on ``device`` (default: where the data is).

    Python floats and float64 NumPy data become float32 unless ``dtype`` says otherwise
    (like ``torch.tensor``); integer and boolean data keep their kind.
    """
    if device is None:
        device = device_of(data)
    xp = np if normalize_device(device) == "cpu" else None
    if xp is np:
        arr = to_numpy(data)
    else:
        arr = to_device(data, "cuda")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)) and not is_cupy_array(data):
        # Python lists / scalars default to float32, as in PyTorch; arrays keep their dtype.
        arr = arr.astype(default_dtype)
    return arr


# ---- randomness ------------------------------------------------------------------------------
# Every random choice in minidl takes an explicit ``rng`` (a numpy.random.Generator) or falls back
# to this module's generator, which ``minidl.manual_seed`` resets: results are reproducible.
_default_rng = np.random.default_rng(0)


def manual_seed(seed: int):
    """Reset minidl's default random generator (and CuPy's, when a GPU is in use)."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)
    if _cupy and cuda_available():     # CuPy imported on a machine without a GPU has no generator to seed
        _cupy.random.seed(seed)


def get_rng(rng=None) -> np.random.Generator:
    """``rng`` itself, a new Generator for an int seed, or the default generator for None."""
    if rng is None:
        return _default_rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def random_uniform(shape, xp, dtype, rng=None):
    """Uniform [0, 1) samples made on the device of ``xp`` (no host-to-GPU copy of the noise).

    On the GPU, CuPy's own generator is used (seeded by ``manual_seed``); ``rng`` drives the CPU.
    """
    if xp is np:
        return get_rng(rng).random(shape, dtype=np.float32).astype(dtype, copy=False)
    return xp.random.random(shape, dtype=np.float32).astype(dtype, copy=False)


def any_true(mask) -> bool:
    """``bool(mask.any())``: how minidl's input checks read device data (labels in range, finite
    boxes, ...). On a GPU this copies one value to the host and waits for the queued work, so
    it is the one kind of device-to-host transfer allowed inside a forward or backward pass:
    a check, named here, never a hidden one (tests/test_gpu.py counts them per op)."""
    return bool(mask.any())


def current_stream_ptr() -> int:
    """The raw pointer of CuPy's current CUDA stream (what minidl's CUDA launchers take)."""
    return _cupy.cuda.get_current_stream().ptr if _cupy else 0


def synchronize():
    """Wait for the GPU to finish queued work (a no-op on the CPU): for timing GPU code."""
    if _cupy and cuda_available():
        _cupy.cuda.Device().synchronize()
