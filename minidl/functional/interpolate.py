"""Interpolation: resize feature maps to any size, nearest or bilinear (lecture 8, upsampling).

Resampling is a linear map along each axis: ``y = A_h x A_wᵀ``, where row ``o`` of A holds the
weights of the input pixels that output pixel ``o`` reads — one 1 for nearest neighbour, two
weights summing to 1 for bilinear. So the backward pass is ``dx = A_hᵀ dy A_w``: the transpose
again, as for transpose convolution. A's indices and weights follow PyTorch's rules exactly
(``align_corners``, the half-pixel map, nearest's floor). The forward multiplies by A when A
is small (bilinear, inputs up to ``DENSE_MAX_SIZE``) and otherwise gathers the few input
pixels each output reads, in PyTorch's order (nearest is always a pure gather, bit for bit).
Non-finite inputs: the products (and so the backward, always) spread a NaN or inf along A's
rows, because 0·inf = NaN, where a gather keeps it at the pixels that read it.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from ..autograd import Function
from ..pairs import as_pair
from .pool import check_input
from ._args import tensor_args


def _nearest_sources(in_size, out_size, scale, xp):
    """PyTorch's nearest rule: src = min(floor(dst * s), in - 1) computed in float32, with
    s = 1/scale_factor when one was given, else in/out."""
    if out_size == in_size:
        return xp.arange(out_size)
    if out_size == 2 * in_size:
        return xp.arange(out_size) >> 1
    s = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    src = xp.floor(xp.arange(out_size, dtype=np.float32) * s).astype(np.int64)
    return xp.minimum(src, in_size - 1)


def _linear_sources(in_size, out_size, scale, align_corners, dtype, xp):
    """PyTorch's bilinear rule along one axis: (i0, i1, w0, w1) with x = w0*x[i0] + w1*x[i1].

    align_corners=True maps the corner pixels' centres onto each other: src = dst*(in-1)/(out-1).
    align_corners=False maps pixel *areas*: src = (dst + 0.5)*in/out - 0.5, clamped at 0 (with
    1/scale_factor for in/out when one was given) — except that an axis whose size stays the
    same is left as it is, whatever the scale_factor (PyTorch's rule too).
    Computed in the data's dtype, as PyTorch does.
    """
    t = np.dtype(dtype).type
    dst = xp.arange(out_size, dtype=dtype)
    if align_corners:
        s = t(in_size - 1) / t(out_size - 1) if out_size > 1 else t(0)
        src = s * dst
    elif out_size == in_size:   # PyTorch leaves an axis whose size is kept as it is, even
        src = dst               # when a scale_factor such as 1.1 would shift its samples
    else:
        s = t(1.0 / scale) if scale else t(in_size) / t(out_size)
        src = xp.maximum(s * (dst + t(0.5)) - t(0.5), t(0))
    i0 = src.astype(np.int64)
    i1 = i0 + (i0 < in_size - 1)
    w1 = xp.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    return i0, i1, (t(1) - w1).astype(dtype), w1


def _interpolation_matrix(in_size, out_size, taps, dtype, xp):
    """The (out, in) matrix A of the 1-D resampling: y = A @ x along this axis."""
    a = xp.zeros((out_size, in_size), dtype=dtype)
    for index, weight in taps:                  # each row appears once per tap: += is safe
        a[xp.arange(out_size), index] += 1 if weight is None else weight
    return a


def _resample(a, axis, taps, xp):
    """Σ_t a[..., index_t, ...] * weight_t along ``axis`` (value × weight, taps in order).

    Each tap's gather is a new array, scaled and summed in place (one new array per tap: at
    the FCN's output size a fresh multi-megabyte array costs more than the arithmetic)."""
    shape = [1] * a.ndim
    shape[axis] = -1
    out = None
    for index, weight in taps:
        picked = xp.take(a, index, axis=axis)
        if weight is not None:                               # nearest: a pure gather
            picked *= weight.reshape(shape)
        if out is None:
            out = picked
        else:
            out += picked
    return out


# Bilinear inputs up to this size are resampled as the dense products y = A_h x A_wᵀ: a row of
# A then holds at most 64 weights (2 non-zero), and BLAS does 64 multiply-adds per output faster
# than NumPy gathers 2 (FCN scores 16×6×32×32 -> 64×64: 0.47 ms vs 1.9 ms). Larger inputs gather.
DENSE_MAX_SIZE = 64


class Interpolate(Function):
    @staticmethod
    def forward(ctx, x, taps, matrices, dense):
        xp = backend.get_array_module(x)
        ctx.matrices = matrices
        if dense:                  # y = A_h x A_wᵀ: along W as one GEMM, then along H per plane
            a_h, a_w = matrices
            n, c, h, w = x.shape
            along_w = (xp.ascontiguousarray(x).reshape(-1, w) @ a_w.T).reshape(n, c, h, -1)
            return xp.matmul(a_h, along_w)
        h_taps, w_taps = taps
        return _resample(_resample(x, 3, w_taps, xp), 2, h_taps, xp)   # along W, then H

    @staticmethod
    def backward(ctx, grad):
        xp = backend.get_array_module(grad)
        a_h, a_w = ctx.matrices              # y = A_h x A_wᵀ  =>  dx = A_hᵀ dy A_w
        return xp.matmul(xp.matmul(a_h.T, grad), a_w), None, None, None


@tensor_args("x")
def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize (N, C, H, W) to ``size`` or by ``scale_factor`` (PyTorch's semantics exactly).

    mode "nearest": src = floor(dst * in/out) (or dst / scale_factor); "bilinear": weighted mean
    of the 4 nearest pixels, with ``align_corners`` (default False) choosing the coordinate map.
    """
    check_input(x, "interpolate")
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"interpolate: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with mode='bilinear'")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    in_hw = x.shape[2:]
    if size is not None:
        out_hw, scales = as_pair(size, "size", 1), (None, None)
    else:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
        if len(scales) != 2 or not all(isinstance(v, numbers.Real) and v > 0 for v in scales):
            raise ValueError(f"interpolate: scale_factor must be a positive number or pair, got {scale_factor!r}")
        out_hw = tuple(int(math.floor(float(n) * float(sf))) for n, sf in zip(in_hw, scales))
        if min(out_hw) < 1:
            raise ValueError(f"interpolate: scale_factor {scale_factor} gives an empty output {out_hw}")
    xp = backend.get_array_module(x.data)
    taps, matrices = [], []
    for n_in, n_out, sf in zip(in_hw, out_hw, scales):
        if mode == "nearest":
            axis_taps = [(_nearest_sources(n_in, n_out, sf, xp), None)]
        else:
            i0, i1, w0, w1 = _linear_sources(n_in, n_out, sf, bool(align_corners), x.dtype, xp)
            axis_taps = [(i0, w0), (i1, w1)]
        taps.append(axis_taps)
        matrices.append(_interpolation_matrix(n_in, n_out, axis_taps, x.dtype, xp))
    dense = mode == "bilinear" and max(in_hw) <= DENSE_MAX_SIZE
    return Interpolate.apply(x, tuple(taps), tuple(matrices), dense)
