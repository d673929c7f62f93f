"""roi_align: Mask R-CNN's RoIAlign — the NumPy reference and the dispatch to C++/CUDA.

Each output cell averages the feature map *bilinearly interpolated* at grid_h × grid_w sample
points of its bin (no rounding of the RoI, unlike roi_pool). The sample positions and the
boundary rules are torchvision's: see csrc/roi_align/roi_align.h, which the C++ and CUDA
kernels share, and minidl/ops/roi_align.py for the whole convention.

The reference uses one fact worth knowing: bilinear interpolation is *separable*. The weight
of input pixel (y, x) for a sample is (row weight of y) × (column weight of x), and a sample
outside the map along either axis has all its row (or column) weights 0. Summing the samples
of a bin therefore gives, for one RoI and one channel X (H, W),

    output = R_y @ X @ R_x.T / count,   R_y (pooled_h, H), R_x (pooled_w, W),

where R_y[ph, y] adds up the row weights of the bin's samples. So RoIAlign is a linear map of
each channel, and its backward is the transposed map: dX += R_y.T @ dOutput @ R_x / count.

Shapes: input (N, C, H, W); rois (K, 5) = (batch index, x1, y1, x2, y2) in image pixels, of
the input's dtype; output (K, C, pooled_h, pooled_w). Inputs are validated by
minidl.ops.roi_align; these functions trust them.
"""
from __future__ import annotations

import math


from .. import backend
from . import contiguous, fast_cpu_form, launch, native_for
from .roi_pool import check_roi_params, roi_batch_index

#: Sample points per bin and axis at most — the adaptive grid's cap and the bound on an explicit
#: sampling_ratio, as kMaxSamplingGrid in csrc/roi_align/roi_align.h (csrc/common/roi_checks.h
#: says why an explicit one is bounded too).
MAX_SAMPLING_GRID = 256
_LIMIT = 2.0 ** 40
_NATIVE_DTYPES = ("float32", "float64")   # the compiled kernels' dtypes; others use the reference


def check_sampling_ratio(sampling_ratio, op):
    """The bindings' check_sampling_ratio (csrc/common/roi_checks.h), word for word."""
    sampling_ratio = int(sampling_ratio)
    if sampling_ratio > MAX_SAMPLING_GRID:
        raise ValueError(f"{op}: sampling_ratio must be <= {MAX_SAMPLING_GRID} (<= 0: adaptive), "
                         f"got {sampling_ratio}")
    return sampling_ratio


def sampling_grid(bin_size, sampling_ratio):
    """Sample points per bin along one axis: sampling_ratio, or ceil(bin size) when it is <= 0."""
    if sampling_ratio > 0:
        return int(sampling_ratio)
    return min(max(math.ceil(bin_size), 0), MAX_SAMPLING_GRID)


def interpolation_matrix(start, bin_size, grid, pooled, size, xp, T):
    """R (pooled, size): R[p, i] = sum over the bin's samples of the linear weight of pixel i.

    Along one axis the samples of bin p sit at start + p·bin + (g + 0.5)·bin / grid (computed
    in the dtype T, in the kernels' order of operations). A sample below -1 or above `size`
    contributes nothing; otherwise it is clamped to [0, size - 1] and split between its two
    neighbouring pixels.
    """
    r = xp.zeros((pooled, size), dtype=T)
    if grid == 0 or size == 0:
        return r
    p = xp.arange(pooled, dtype=T)[:, None]
    g = xp.arange(grid, dtype=T)[None, :]
    pos = start + p * bin_size + (g + T(0.5)) * bin_size / T(grid)        # (pooled, grid)
    inside = (pos >= -1) & (pos <= size)
    pos = xp.where(inside, xp.maximum(pos, T(0)), T(0))
    low = pos.astype(xp.int64)                                             # floor (pos >= 0)
    last = low >= size - 1
    low = xp.where(last, size - 1, low)
    high = xp.where(last, size - 1, low + 1)
    pos = xp.where(last, low.astype(T), pos)
    frac = pos - low.astype(T)                                             # weight of `high`
    rows = xp.broadcast_to(xp.arange(pooled)[:, None], low.shape)
    xp.add.at(r, (rows, low), xp.where(inside, T(1) - frac, T(0)))
    xp.add.at(r, (rows, high), xp.where(inside, frac, T(0)))
    return r


def _roi_geometry(rois, input_shape, output_size, spatial_scale, sampling_ratio, aligned, xp, T):
    """For each RoI: None (contributes nothing) or (batch index, R_y, R_x, count)."""
    n, _, h, w = input_shape
    ph, pw = output_size
    offset = T(0.5) if aligned else T(0)
    corners = rois[:, 1:] * T(spatial_scale) - offset                     # in the dtype
    batch = roi_batch_index(rois, n, xp)
    valid = (batch >= 0) & xp.all(xp.abs(corners.astype(xp.float64)) <= _LIMIT, axis=1)  # False for NaN/inf
    corners, batch, valid = backend.to_numpy(corners), backend.to_numpy(batch), backend.to_numpy(valid)
    result = []
    for k in range(rois.shape[0]):
        if not valid[k]:
            result.append(None)
            continue
        x1, y1, x2, y2 = corners[k]
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:                      # legacy: malformed RoIs are forced to 1×1
            roi_w, roi_h = max(roi_w, T(1)), max(roi_h, T(1))
        bin_h, bin_w = roi_h / T(ph), roi_w / T(pw)
        gh, gw = sampling_grid(bin_h, sampling_ratio), sampling_grid(bin_w, sampling_ratio)
        r_y = interpolation_matrix(y1, bin_h, gh, ph, h, xp, T)
        r_x = interpolation_matrix(x1, bin_w, gw, pw, w, xp, T)
        result.append((int(batch[k]), r_y, r_x, T(max(gh * gw, 1))))
    return result


def roi_align_reference(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """The definition: per RoI, output = R_y @ X @ R_x.T / count for every channel at once."""
    xp = backend.get_array_module(input)
    T = input.dtype.type
    output = xp.zeros((rois.shape[0], input.shape[1]) + tuple(output_size), dtype=input.dtype)
    if output.size == 0:                              # no channel or no RoI: nothing to average
        return output
    geometry = _roi_geometry(rois, input.shape, output_size, spatial_scale, sampling_ratio,
                             aligned, xp, T)
    for k, g in enumerate(geometry):
        if g is not None:
            b, r_y, r_x, count = g
            output[k] = r_y @ input[b] @ r_x.T / count        # (ph, H)(C, H, W)(W, pw)
    return output


def roi_align_backward_reference(grad_output, rois, input_shape, spatial_scale, sampling_ratio,
                                 aligned):
    """The transposed map: dX[b] += R_y.T @ dOutput[k] @ R_x / count, RoI after RoI."""
    xp = backend.get_array_module(grad_output)
    T = grad_output.dtype.type
    grad_input = xp.zeros(input_shape, dtype=grad_output.dtype)
    geometry = _roi_geometry(rois, input_shape, grad_output.shape[2:], spatial_scale,
                             sampling_ratio, aligned, xp, T)
    for k, g in enumerate(geometry):
        if g is not None:
            b, r_y, r_x, count = g
            grad_input[b] += r_y.T @ (grad_output[k] / count) @ r_x
    return grad_input


def roi_align_forward(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """output (K, C, pooled_h, pooled_w): C++ / CUDA when built, else the reference."""
    xp = backend.get_array_module(input)
    output_size = check_roi_params(spatial_scale, output_size, "roi_align")
    sampling_ratio = check_sampling_ratio(sampling_ratio, "roi_align")
    native = native_for(input)
    if native is None or input.dtype.name not in _NATIVE_DTYPES:
        return roi_align_reference(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
    input = contiguous(input, xp)
    rois = contiguous(rois, xp, input.dtype)
    n, c, h, w = input.shape
    ph, pw = output_size
    output = xp.empty((rois.shape[0], c, ph, pw), dtype=input.dtype)
    launch(native, "roi_align_forward", (input, rois, output),
           sizes=(n, c, h, w, rois.shape[0], ph, pw),
           options=(float(spatial_scale), int(sampling_ratio), bool(aligned)), fast=fast_cpu_form())
    return output


def roi_align_backward(grad_output, rois, input_shape, spatial_scale, sampling_ratio, aligned,
                       deterministic=False):
    """grad_input: C++ (always deterministic) / CUDA (atomicAdd unless deterministic) / reference."""
    xp = backend.get_array_module(grad_output)
    check_roi_params(spatial_scale, grad_output.shape[2:], "roi_align backward")
    sampling_ratio = check_sampling_ratio(sampling_ratio, "roi_align backward")
    native = native_for(grad_output)
    if native is None or grad_output.dtype.name not in _NATIVE_DTYPES:
        return roi_align_backward_reference(grad_output, rois, input_shape, spatial_scale,
                                            sampling_ratio, aligned)
    grad_output = contiguous(grad_output, xp)
    rois = contiguous(rois, xp, grad_output.dtype)
    grad_input = xp.zeros(input_shape, dtype=grad_output.dtype)
    k, c, ph, pw = grad_output.shape
    n, _, h, w = input_shape
    launch(native, "roi_align_backward", (grad_output, rois, grad_input),
           sizes=(k, n, c, h, w, ph, pw),
           options=(float(spatial_scale), int(sampling_ratio), bool(aligned)),
           fast=fast_cpu_form(), deterministic=bool(deterministic))
    return grad_input
