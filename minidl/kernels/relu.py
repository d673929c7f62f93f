"""relu: the two passes of ReLU (used by minidl/functional/activation.py).

    relu_forward(x)                        out = max(x, 0)
    relu_backward(grad_output, output)     grad_input = grad_output · (output > 0)

The ``*_reference`` functions are the readable NumPy/CuPy definitions — the lesson's formulas.
The dispatchers run the C++ kernel (csrc/relu/) on NumPy arrays: one vectorized pass each,
where NumPy's ``maximum`` costs ~4× a copy and the backward's product is two passes and a
boolean temporary (figures in docs/performance.md). The kernel's values equal the references'
bit for bit, -0.0, NaN and inf included (csrc/relu/relu.h says how).

CuPy arrays run the references (CuPy's own one-pass elementwise kernels) until a GPU run of
issue 15 has checked the CUDA twin (csrc/relu/relu_cuda.cu; tests/test_relu_kernels.py's CUDA
test) — as the other lanes added since the last GPU run.
"""
from __future__ import annotations

from .. import backend
from . import aligned, launch, native_for

_NATIVE_DTYPES = ("float32", "float64")   # the compiled kernels' dtypes; others use the reference


def relu_forward_reference(x):
    return backend.get_array_module(x).maximum(x, 0)


def relu_backward_reference(grad_output, output):
    return grad_output * (output > 0)


def _native(*arrays):
    """_C for these arrays, or None (then the reference runs): NumPy arrays of one float dtype,
    C-contiguous and aligned, of one shape, not empty."""
    first = arrays[0]
    if backend.is_cupy_array(first) or first.dtype.name not in _NATIVE_DTYPES or first.size == 0:
        return None
    native = native_for(first)
    if native is None:
        return None
    if not all(isinstance(a, backend.np.ndarray) and a.dtype == first.dtype and a.shape == first.shape
               and a.flags.c_contiguous and aligned(a) for a in arrays):
        return None
    return native


def relu_forward(x):
    """max(x, 0): the C++ kernel for float32/float64 NumPy arrays, else the reference."""
    native = _native(x)
    if native is None:
        return relu_forward_reference(x)
    out = backend.np.empty_like(x)
    launch(native, "relu_forward", (x, out), sizes=(x.size,))
    return out


def relu_backward(grad_output, output):
    """grad_output · (output > 0), ``output`` being the forward's result: the C++ kernel for
    float32/float64 NumPy arrays of one dtype and shape, else the reference."""
    native = _native(grad_output, output)
    if native is None:
        return relu_backward_reference(grad_output, output)
    grad_input = backend.np.empty_like(grad_output)
    launch(native, "relu_backward", (grad_output, output, grad_input), sizes=(grad_output.size,))
    return grad_input
