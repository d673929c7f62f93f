"""roi_pool: Fast R-CNN's RoI max pooling — the NumPy reference and the dispatch to C++/CUDA.

Every RoI (a box on one image of the batch) is cut into pooled_h × pooled_w bins; each output
cell is the maximum of the feature map over its bin, and the backward pass sends the cell's
gradient to the position of that maximum (the "argmax switch"). The bin arithmetic is
torchvision's (rounded corners, inclusive size, floor/ceil bins): see csrc/roi_pool/roi_pool.h,
which the C++ and CUDA kernels share, and minidl/ops/roi_pool.py for the whole convention.

Shapes: input (N, C, H, W); rois (K, 5) = (batch index, x1, y1, x2, y2) in image pixels, of the
input's dtype; output and argmax (K, C, pooled_h, pooled_w), argmax int64 = h * W + w (-1:
nothing pooled). Inputs are validated by minidl.ops.roi_pool; these functions trust them.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from . import contiguous, launch, native_for

_NATIVE_DTYPES = ("float32", "float64")   # the compiled kernels' dtypes; others use the reference
_LIMIT = 2.0 ** 40  # scaled corners beyond this (or NaN/inf) make a RoI pool nothing, as in C++
#: Bins per axis at most: kMaxPooledSize of csrc/common/roi_checks.h, which says why.
MAX_POOLED_SIZE = 4096


def check_roi_params(spatial_scale, output_size, op):
    """The bindings' check_roi_params (csrc/common/roi_checks.h), word for word, so that the
    NumPy reference refuses what the C++/CUDA kernels refuse: spatial_scale finite and >= 0,
    output_size (pooled_h, pooled_w) in [1, MAX_POOLED_SIZE]. Returns (pooled_h, pooled_w)."""
    if not (math.isfinite(spatial_scale) and spatial_scale >= 0):
        raise ValueError(f"{op}: spatial_scale must be finite and >= 0")
    ph, pw = (int(v) for v in output_size)
    if not (1 <= ph <= MAX_POOLED_SIZE and 1 <= pw <= MAX_POOLED_SIZE):
        raise ValueError(f"{op}: output_size must be in [1, {MAX_POOLED_SIZE}], got ({ph}, {pw})")
    return ph, pw


def round_half_away(v, xp):
    """C's round(): halves go away from zero (2.5 -> 3, -2.5 -> -3); NumPy's rounds to even."""
    t = xp.trunc(v)
    return t + xp.sign(v) * (xp.abs(v - t) >= 0.5)   # v - trunc(v) is exact: no double rounding


def roi_batch_index(rois, batch_size, xp):
    """The image of each RoI (truncated like a C int cast), -1 when not in [0, batch_size)."""
    b = rois[:, 0]
    ok = (b >= 0) & (b < batch_size)
    return xp.where(ok, xp.trunc(xp.where(ok, b, 0)), -1).astype(xp.int64)


def roi_pool_reference(input, rois, output_size, spatial_scale):
    """The definition, one RoI and one bin at a time -> (output, argmax)."""
    xp = backend.get_array_module(input)
    T = input.dtype.type
    n, c, h, w = input.shape
    ph_n, pw_n = output_size
    k_n = rois.shape[0]
    output = xp.zeros((k_n, c, ph_n, pw_n), dtype=input.dtype)
    argmax = xp.full((k_n, c, ph_n, pw_n), -1, dtype=xp.int64)
    if output.size == 0:                              # no channel or no RoI: no bin to visit
        return output, argmax
    lowest = T(max(-float(np.finfo(np.float32).max), float(np.finfo(T).min)))  # -FLT_MAX, as in C++
    scaled = rois[:, 1:] * T(spatial_scale)          # in the dtype, like the kernels
    batch = roi_batch_index(rois, n, xp)
    valid = (batch >= 0) & xp.all(xp.abs(scaled.astype(xp.float64)) <= _LIMIT, axis=1)  # False for NaN/inf
    for k in range(k_n):
        if not bool(valid[k]):
            continue                                  # pools nothing: zeros, argmax -1
        x1, y1, x2, y2 = (int(v) for v in round_half_away(scaled[k], xp))
        roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)   # inclusive size, at least 1
        bin_h, bin_w = T(roi_h) / T(ph_n), T(roi_w) / T(pw_n)
        for ph in range(ph_n):
            h0 = min(max(math.floor(T(ph) * bin_h) + y1, 0), h)
            h1 = min(max(math.ceil(T(ph + 1) * bin_h) + y1, 0), h)
            for pw in range(pw_n):
                w0 = min(max(math.floor(T(pw) * bin_w) + x1, 0), w)
                w1 = min(max(math.ceil(T(pw + 1) * bin_w) + x1, 0), w)
                if h1 <= h0 or w1 <= w0:
                    continue                          # empty bin: 0, argmax -1
                window = input[int(batch[k]), :, h0:h1, w0:w1].reshape(c, -1)
                window = xp.where(xp.isnan(window), -xp.inf, window)   # NaN never wins
                j = xp.argmax(window, axis=1)          # first maximum, rows then columns
                best = window[xp.arange(c), j]
                won = best > lowest
                output[k, :, ph, pw] = xp.where(won, best, lowest)
                where = (h0 + j // (w1 - w0)) * w + w0 + j % (w1 - w0)
                argmax[k, :, ph, pw] = xp.where(won, where, -1)
    return output, argmax


def roi_pool_backward_reference(grad_output, argmax, rois, input_shape):
    """grad_input (N, C, H, W): every cell's gradient added at its argmax."""
    xp = backend.get_array_module(grad_output)
    n, c, h, w = input_shape
    grad_input = xp.zeros(input_shape, dtype=grad_output.dtype)
    batch = roi_batch_index(rois, n, xp)[:, None, None, None]
    channel = xp.arange(c)[None, :, None, None]
    routed = (argmax >= 0) & (argmax < h * w) & (batch >= 0)
    flat = ((batch * c + channel) * (h * w) + argmax)[routed]
    xp.add.at(grad_input.reshape(-1), flat, grad_output[routed])
    return grad_input


def roi_pool_forward(input, rois, output_size, spatial_scale):
    """(output, argmax): C++ / CUDA when built, else the reference."""
    xp = backend.get_array_module(input)
    output_size = check_roi_params(spatial_scale, output_size, "roi_pool")
    native = native_for(input)
    if native is None or input.dtype.name not in _NATIVE_DTYPES:
        return roi_pool_reference(input, rois, output_size, spatial_scale)
    input = contiguous(input, xp)
    rois = contiguous(rois, xp, input.dtype)
    n, c, h, w = input.shape
    ph, pw = output_size
    output = xp.empty((rois.shape[0], c, ph, pw), dtype=input.dtype)
    argmax = xp.empty(output.shape, dtype=xp.int64)
    launch(native, "roi_pool_forward", (input, rois, output, argmax),
           sizes=(n, c, h, w, rois.shape[0], ph, pw), options=(float(spatial_scale),))
    return output, argmax


def roi_pool_backward(grad_output, argmax, rois, input_shape, deterministic=False):
    """grad_input: C++ (always deterministic) / CUDA (atomicAdd unless deterministic) / reference."""
    xp = backend.get_array_module(grad_output)
    native = native_for(grad_output)
    if native is None or grad_output.dtype.name not in _NATIVE_DTYPES:
        return roi_pool_backward_reference(grad_output, argmax, rois, input_shape)
    grad_output = contiguous(grad_output, xp)
    argmax = contiguous(argmax, xp, xp.int64)
    rois = contiguous(rois, xp, grad_output.dtype)
    grad_input = xp.zeros(input_shape, dtype=grad_output.dtype)
    k, c, ph, pw = grad_output.shape
    n, _, h, w = input_shape
    launch(native, "roi_pool_backward", (grad_output, argmax, rois, grad_input),
           sizes=(k, n, c, h, w, ph, pw), deterministic=bool(deterministic))
    return grad_input
