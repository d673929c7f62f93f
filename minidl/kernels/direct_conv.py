"""A direct K×K convolution (K = 3, 5, 7 or 9): each output computed from the input itself, no
column matrix.

    y[n, f, oy, ox] = bias[f] + Σ_c Σ_(ky, kx) w[f, c, ky, kx] · x[n, c, s·oy + ky − ph, s·ox + kx − pw]
    dW[f, c, ky, kx] = Σ_(n, oy, ox) dy[n, f, oy, ox] · x[n, c, s·oy + ky − ph, s·ox + kx − pw]

(stride s = 1 or 2, padding (ph, pw) in [0, K − 1], x read as zero in the padding). Lecture 8
computes a convolution as ``W @ im2col(x)``: it copies every input value K² times into a column
matrix and lets BLAS multiply. With few channels that matrix product is short (K²·C) and the copy
is most of the work; the direct form multiplies from the input where it lies. The input gradient
needs no kernel of its own: for stride 1 it is this forward applied to dy with the filters
rotated by 180° and their in/out channels swapped (``conv_dual.flipped_dual``); for stride 2 it
is a transpose convolution, which the lane leaves to col2im.

Implementations, picked from the array as every kernel family here:

* ``conv_reference`` / ``weight_grad_reference`` — NumPy or CuPy: the K×K filter as K² 1×1
  convolutions, one per tap (ky, kx), each a product of the tap's (F, C) weights with the input
  shifted by (ky, kx) — the sum above, K² terms at a time;
* csrc/direct_conv/ — the per-element bodies (``direct_conv.h``: one output value, one filter tap
  of dW), called by the textbook OpenMP loops (``kernels.use("body")``), by one CUDA thread
  each, and — computed eight outputs at a time with AVX2 fused multiply-adds (sixteen with
  AVX-512 where the CPU has it, on rows of 16 outputs or more), the default on the CPU — by
  ``direct_conv_cpu_fast.cpp``, which agrees with the bodies to rounding. ``vector_lanes(8)``
  keeps the forward on AVX2 (tests and benchmarks compare the two).

Used by minidl/functional/conv_direct.py, the lane of few-channel 3×3, 5×5, 7×7 and 9×9 convolutions.
"""
from __future__ import annotations

import contextlib

from .. import backend
from . import _load, contiguous, fast_cpu_form, launch, native_for
from .im2col import conv_output_size, workspace

#: The output channels the fast form computes at once (csrc/direct_conv/direct_conv_cpu_fast.cpp's
#: kFilters): a layer with fewer wastes the rest of the block.
FILTER_BLOCK = 8
#: The kernel sizes K the kernels are compiled for (csrc/direct_conv/direct_conv_checks.h).
KERNEL_SIZES = (3, 5, 7, 9)


def output_size(height, width, padding, stride=1, kernel_size=3):
    """(out_h, out_w) of a K×K convolution of this stride and padding on an H×W input."""
    return tuple(conv_output_size(size, kernel_size, stride, pad, 1)
                 for size, pad in zip((height, width), padding))


def _taps(x, padding, stride, kernel_size):
    """The zero-padded x and, for each tap (ky, kx), the (N, C, out_h, out_w) window it sees
    (every ``stride``-th input from (ky, kx) on)."""
    xp = backend.get_array_module(x)
    (ph, pw), (oh, ow) = padding, output_size(*x.shape[2:], padding, stride, kernel_size)
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    return [((ky, kx), padded[:, :, ky:ky + stride * (oh - 1) + 1:stride, kx:kx + stride * (ow - 1) + 1:stride])
            for ky in range(kernel_size) for kx in range(kernel_size)]


def conv_reference(x, weight, padding, bias=None, out=None, stride=1):
    """y (N, F, out_h, out_w) = Σ over the K² taps of weight[:, :, ky, kx] @ (x shifted by the tap)."""
    xp = backend.get_array_module(x)
    n, f, k = x.shape[0], weight.shape[0], weight.shape[2]
    y = xp.zeros((n, f, *output_size(*x.shape[2:], padding, stride, k)), dtype=x.dtype)
    for (ky, kx), window in _taps(x, padding, stride, k):
        y += xp.einsum("fc,nchw->nfhw", weight[:, :, ky, kx], window)
    if bias is not None:
        y += bias.reshape(1, f, 1, 1)
    if out is None:
        return y
    out[...] = y
    return out


def weight_grad_reference(x, dy, padding, out=None, stride=1, kernel_size=3):
    """dW (F, C, K, K): tap (ky, kx) is dy against the input shifted by the tap, summed over
    the batch and the output pixels."""
    xp = backend.get_array_module(x)
    k = kernel_size
    dw = xp.empty((dy.shape[1], x.shape[1], k, k), dtype=x.dtype) if out is None else out
    for (ky, kx), window in _taps(x, padding, stride, k):
        dw[:, :, ky, kx] = xp.einsum("nfhw,nchw->fc", dy, window)
    return dw


def _check_options(op, padding, stride, kernel_size):
    """K in KERNEL_SIZES, padding in [0, K − 1] on both axes and stride 1 or 2 (the callers
    validated the rest)."""
    if kernel_size not in KERNEL_SIZES:
        raise ValueError(f"{op}: the kernel must be square with K in {KERNEL_SIZES}, got {kernel_size!r}")
    if len(padding) != 2 or not all(0 <= p <= kernel_size - 1 for p in padding):
        raise ValueError(f"{op}: padding must be two values in [0, {kernel_size - 1}], got {tuple(padding)}")
    if stride not in (1, 2):
        raise ValueError(f"{op}: stride must be 1 or 2, got {stride!r}")


def _check_written(op, x, written, shape):
    """``written`` of ``shape`` and x's dtype, C-contiguous for the CUDA kernels."""
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


def conv(x, weight, padding, bias=None, out=None, stride=1):
    """conv2d(x, weight, bias, stride, padding) for weight (F, C, K, K), stride 1 or 2: x (N, C, H, W)
    -> ``out`` (N, F, out_h, out_w), allocated when None. C++ / CUDA when built, else the reference."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    f, k = weight.shape[0], weight.shape[2]
    if weight.shape[2] != weight.shape[3]:
        raise ValueError(f"direct_conv: weight must have shape (F, C, K, K), got {tuple(weight.shape)}")
    _check_options("direct_conv", padding, stride, k)
    shape = (n, f, *output_size(h, w, padding, stride, k))
    out = xp.empty(shape, dtype=x.dtype) if out is None else out
    _check_written("direct_conv", x, out, shape)
    native = native_for(x)
    if native is None:
        return conv_reference(x, weight, padding, bias, out, stride)
    x, weight = contiguous(x, xp), contiguous(weight, xp, x.dtype)
    bias = None if bias is None else contiguous(bias, xp, x.dtype)
    if backend.is_cupy_array(x):
        launch(native, "direct_conv", (x, weight, bias, out), sizes=(n, c, h, w, f, k),
               options=(*padding, stride))
    else:
        launch(native, "direct_conv", (x, weight, bias, out, _padded_scratch(x, padding)),
               options=(*padding, stride), fast=fast_cpu_form())
    return out


def weight_grad(x, dy, padding, out=None, stride=1, kernel_size=3):
    """dW (F, C, K, K) of ``conv`` from x (N, C, H, W) and dy (N, F, out_h, out_w)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    f, k = dy.shape[1], kernel_size
    _check_options("direct_conv_weight_grad", padding, stride, k)
    out = xp.empty((f, c, k, k), dtype=x.dtype) if out is None else out
    _check_written("direct_conv_weight_grad", x, out, (f, c, k, k))
    expected = (n, f, *output_size(h, w, padding, stride, k))
    if tuple(dy.shape) != expected:
        raise ValueError(f"direct_conv_weight_grad: dy has shape {tuple(dy.shape)}, expected {expected}")
    native = native_for(x)
    if native is None:
        return weight_grad_reference(x, dy, padding, out, stride, k)
    x, dy = contiguous(x, xp), contiguous(dy, xp, x.dtype)
    if backend.is_cupy_array(x):
        launch(native, "direct_conv_weight_grad", (x, dy, out), sizes=(n, c, h, w, f, k),
               options=(*padding, stride))
    else:
        launch(native, "direct_conv_weight_grad", (x, dy, out, _padded_scratch(x, padding)),
               options=(*padding, stride), fast=fast_cpu_form())
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
