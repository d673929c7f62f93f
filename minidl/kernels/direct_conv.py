"""A direct 3×3 convolution: each output computed from the input itself, no column matrix.

    y[n, f, oy, ox] = bias[f] + Σ_c Σ_(ky, kx) w[f, c, ky, kx] · x[n, c, oy + ky − ph, ox + kx − pw]
    dW[f, c, ky, kx] = Σ_(n, oy, ox) dy[n, f, oy, ox] · x[n, c, oy + ky − ph, ox + kx − pw]

(stride 1, padding (ph, pw) in [0, 2], x read as zero in the padding). Lecture 8 computes a
convolution as ``W @ im2col(x)``: it copies every input value 9 times into a column matrix and
lets BLAS multiply. With few channels that matrix product is short (K = 9·C) and the copy is
most of the work; the direct form multiplies from the input where it lies. The input gradient
needs no kernel of its own: for stride 1 it is this forward applied to dy with the filters
rotated by 180° and their in/out channels swapped (``conv_dual.flipped_dual``).

Implementations, picked from the array as every kernel family here:

* ``conv3x3_reference`` / ``weight_grad_reference`` — NumPy or CuPy: the 3×3 filter as nine
  1×1 convolutions, one per tap (ky, kx), each a product of the tap's (F, C) weights with the
  input shifted by (ky, kx) — the sum above, nine terms at a time;
* csrc/direct_conv/ — the per-element bodies (``direct_conv.h``: one output value, one filter tap
  of dW), called by the textbook OpenMP loops (``kernels.use("body")``), by one CUDA thread
  each, and — computed eight outputs at a time with AVX2 fused multiply-adds (sixteen with
  AVX-512 where the CPU has it, on rows of 16 outputs or more), the default on the CPU — by
  ``direct_conv_cpu_fast.cpp``, which agrees with the bodies to rounding. ``vector_lanes(8)``
  keeps the forward on AVX2 (tests and benchmarks compare the two).

Used by minidl/functional/conv_direct.py, the lane of few-channel 3×3 convolutions.
"""
from __future__ import annotations

import contextlib

from .. import backend
from . import _load, contiguous, fast_cpu_form, launch, native_for
from .im2col import workspace
from .winograd import output_size   # (out_h, out_w) of a 3×3 stride-1 conv: the same geometry

#: The output channels the fast form computes at once (csrc/direct_conv/direct_conv_cpu_fast.cpp's
#: kFilters): a layer with fewer wastes the rest of the block.
FILTER_BLOCK = 8


def _taps(x, padding):
    """The zero-padded x and, for each tap (ky, kx), the (N, C, out_h, out_w) window it sees."""
    xp = backend.get_array_module(x)
    (ph, pw), (oh, ow) = padding, output_size(*x.shape[2:], padding)
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    return [((ky, kx), padded[:, :, ky:ky + oh, kx:kx + ow]) for ky in range(3) for kx in range(3)]


def conv3x3_reference(x, weight, padding, bias=None, out=None):
    """y (N, F, out_h, out_w) = Σ over the 9 taps of weight[:, :, ky, kx] @ (x shifted by the tap)."""
    xp = backend.get_array_module(x)
    n, f = x.shape[0], weight.shape[0]
    y = xp.zeros((n, f, *output_size(*x.shape[2:], padding)), dtype=x.dtype)
    for (ky, kx), window in _taps(x, padding):
        y += xp.einsum("fc,nchw->nfhw", weight[:, :, ky, kx], window)
    if bias is not None:
        y += bias.reshape(1, f, 1, 1)
    if out is None:
        return y
    out[...] = y
    return out


def weight_grad_reference(x, dy, padding, out=None):
    """dW (F, C, 3, 3): tap (ky, kx) is dy against the input shifted by the tap, summed over
    the batch and the output pixels."""
    xp = backend.get_array_module(x)
    dw = xp.empty((dy.shape[1], x.shape[1], 3, 3), dtype=x.dtype) if out is None else out
    for (ky, kx), window in _taps(x, padding):
        dw[:, :, ky, kx] = xp.einsum("nfhw,nchw->fc", dy, window)
    return dw


def _check(op, x, padding, written, shape):
    """The O(1) checks on the way to a kernel (the callers validated the geometry): padding in
    [0, 2], ``written`` of ``shape`` and x's dtype, C-contiguous for the CUDA kernels."""
    if len(padding) != 2 or not all(0 <= p <= 2 for p in padding):
        raise ValueError(f"{op}: padding must be two values in [0, 2], got {tuple(padding)}")
    if written.dtype != x.dtype:
        raise TypeError(f"{op}: out has dtype {written.dtype}, expected {x.dtype}")
    if tuple(written.shape) != tuple(shape):
        raise ValueError(f"{op}: out has shape {tuple(written.shape)}, expected {tuple(shape)}")
    if backend.is_cupy_array(written) and not written.flags.c_contiguous:
        raise ValueError(f"{op}: the CUDA kernels take C-contiguous arrays")


def _padded_scratch(x, padding):
    """_C's scratch for the zero-padded x (reused across calls: a fresh one page-faults)."""
    n, c, h, w = x.shape
    return workspace("direct_conv_padded", (n, c, h + 2 * padding[0], w + 2 * padding[1]), x.dtype)


def conv3x3(x, weight, padding, bias=None, out=None):
    """conv2d(x, weight, bias, stride 1, padding) for weight (F, C, 3, 3): x (N, C, H, W) ->
    ``out`` (N, F, out_h, out_w), allocated when None. C++ / CUDA when built, else the reference."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    f = weight.shape[0]
    shape = (n, f, *output_size(h, w, padding))
    out = xp.empty(shape, dtype=x.dtype) if out is None else out
    _check("direct_conv3x3", x, padding, out, shape)
    native = native_for(x)
    if native is None:
        return conv3x3_reference(x, weight, padding, bias, out)
    x, weight = contiguous(x, xp), contiguous(weight, xp, x.dtype)
    bias = None if bias is None else contiguous(bias, xp, x.dtype)
    if backend.is_cupy_array(x):
        launch(native, "direct_conv3x3", (x, weight, bias, out), sizes=(n, c, h, w, f), options=tuple(padding))
    else:
        launch(native, "direct_conv3x3", (x, weight, bias, out, _padded_scratch(x, padding)),
               options=tuple(padding), fast=fast_cpu_form())
    return out


def weight_grad(x, dy, padding, out=None):
    """dW (F, C, 3, 3) of ``conv3x3`` from x (N, C, H, W) and dy (N, F, out_h, out_w)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    f = dy.shape[1]
    out = xp.empty((f, c, 3, 3), dtype=x.dtype) if out is None else out
    _check("direct_conv3x3_weight_grad", x, padding, out, (f, c, 3, 3))
    if tuple(dy.shape) != (n, f, *output_size(h, w, padding)):
        raise ValueError(f"direct_conv3x3_weight_grad: dy has shape {tuple(dy.shape)}, expected "
                         f"{(n, f, *output_size(h, w, padding))}")
    native = native_for(x)
    if native is None:
        return weight_grad_reference(x, dy, padding, out)
    x, dy = contiguous(x, xp), contiguous(dy, xp, x.dtype)
    if backend.is_cupy_array(x):
        launch(native, "direct_conv3x3_weight_grad", (x, dy, out), sizes=(n, c, h, w, f),
               options=tuple(padding))
    else:
        launch(native, "direct_conv3x3_weight_grad", (x, dy, out, _padded_scratch(x, padding)),
               options=tuple(padding), fast=fast_cpu_form())
    return out


def fast_form_available():
    """Whether _C is built and its fast form runs vectorized (AVX2 + FMA) code on this CPU, for
    float32; elsewhere its "fast" form is the textbook loop (csrc/direct_conv/direct_conv_cpu_fast.cpp)."""
    native = _load("_C")
    return native is not None and bool(native.direct_conv_avx2)


def widest_lanes():
    """The widest vectors the fast forward runs here now: 16 (AVX-512), 8 (AVX2 + FMA), 1 (the
    textbook loops; also without _C)."""
    native = _load("_C")
    return 1 if native is None else int(native.direct_conv_lanes())


@contextlib.contextmanager
def vector_lanes(lanes):
    """Within the block, let the fast forward use vectors of at most ``lanes`` floats (8: AVX2
    only; 16: AVX-512 where the CPU has it, the default). Process-wide: for tests and benchmarks."""
    native = _load("_C")
    if native is None:
        raise RuntimeError("vector_lanes: minidl._C is not built")
    previous = native.direct_conv_set_lanes(lanes)
    try:
        yield
    finally:
        native.direct_conv_set_lanes(previous)
