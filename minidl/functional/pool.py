"""Downsampling without weights: max and average pooling, adaptive max pooling (lecture 8).

A segmentation network shrinks its feature maps and must grow them back. Shrinking: max
pooling (keep the largest value of each window and *remember where it was*) and average
pooling. Growing them back is unpool.py (nearest, bed of nails, max unpooling) and
interpolate.py (nearest and bilinear resampling).

Adaptive max pooling (``adaptive_max_pool2d``) fixes the output size instead of the window:
SPP-net's spatial pyramid pooling (lecture 8), a fixed-length feature from any H × W.

Pooling windows are handled like im2col's reference: one strided slice of the padded input per
kernel tap (i, j), so every op is a handful of whole-array operations on NumPy or CuPy.

One fast lane (``_windows_are_adaptive_bins``): when the windows tile the input exactly — stride
= kernel size, no padding or dilation, H and W multiples of it (VGG's 2×2 pools) — they *are*
adaptive pooling's bins for that output size, so max pooling runs on the compiled adaptive
kernel (on the CPU), with the same tie and NaN rule and the same flat indices
(tests/test_pool.py checks values, indices and gradients against the tap loop). On VGG16's pool1
at 256² the tap loop took 83 ms forward and 28 ms backward, the kernel 9.0 and 2.7
(docs/performance.md).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..kernels import adaptive_max_pool as adaptive_kernels
from ..autograd import Function, Tensor
from ..pairs import as_pair
from ._args import tensor_args


def check_input(x, name):
    """x must be a Tensor of shape (N, C, H, W); the error names the op."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: input must have shape (N, C, H, W), got {x.shape}")


def _pool_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length (with ceil_mode: the last window must start inside the
    input or the left padding)."""
    span = d * (k - 1) + 1
    out = (size + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(name, x, kernel_size, stride, padding, dilation, ceil_mode):
    k = as_pair(kernel_size, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else as_pair(stride, "stride", 1)
    p, d = as_pair(padding, "padding", 0), as_pair(dilation, "dilation", 1)
    for axis in (0, 1):
        if p[axis] > k[axis] // 2:      # PyTorch's rule (the dilation does not enter)
            raise ValueError(f"{name}: padding {p} should be at most half of kernel_size {k}")
    out = tuple(_pool_size(x.shape[2 + a], k[a], s[a], p[a], d[a], ceil_mode) for a in (0, 1))
    if min(out) < 1:
        raise ValueError(f"{name}: kernel_size {k} is larger than the padded input "
                         f"{(x.shape[2] + 2 * p[0], x.shape[3] + 2 * p[1])} (output size {out})")
    return k, s, p, d, out


def _padded(x, p, k, s, d, out, value):
    """x padded with ``value``: p on the top/left, and on the bottom/right as much as the last
    window needs (more than p with ceil_mode)."""
    xp = backend.get_array_module(x)
    extra = [max(p[a], (out[a] - 1) * s[a] + d[a] * (k[a] - 1) + 1 - x.shape[2 + a] - p[a])
             for a in (0, 1)]
    if p == (0, 0) and extra == [0, 0]:
        return x                          # nothing to pad: no copy (callers only read it, or own it)
    return xp.pad(x, ((0, 0), (0, 0), (p[0], extra[0]), (p[1], extra[1])), constant_values=value)


def _tap(i, j, s, d, out):
    """The strided slices of the padded input that kernel tap (i, j) sees for every output."""
    return (slice(None), slice(None),
            slice(i * d[0], i * d[0] + s[0] * (out[0] - 1) + 1, s[0]),
            slice(j * d[1], j * d[1] + s[1] * (out[1] - 1) + 1, s[1]))


def _first_inside(out, s, p, d, xp):
    """For each output position along one axis, the first input coordinate of its window that
    is inside the input (the window's start, stepped past the padding by the dilation)."""
    start = xp.arange(out) * s - p
    return xp.where(start < 0, start + (-start + d - 1) // d * d, start)


def _windows_are_adaptive_bins(x, k, s, p, d, out):
    """Whether max pooling of x (N, C, H, W) with this geometry is adaptive max pooling to ``out``:
    windows that tile the plane exactly (adaptive bin i of n along an axis of n·k values spans
    [i·k, (i+1)·k)), on a NumPy array the compiled kernel takes. (CuPy arrays keep the tap loop's
    whole-array CuPy operations until a GPU run has checked the CUDA kernel: issue 15.)"""
    return (s == k and p == (0, 0) and d == (1, 1)
            and x.shape[2] == out[0] * k[0] and x.shape[3] == out[1] * k[1]
            and not backend.is_cupy_array(x) and adaptive_kernels.runs_compiled(x))


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, k, s, p, d, out):
        xp = backend.get_array_module(x)
        ctx.argmax = None
        if _windows_are_adaptive_bins(x, k, s, p, d, out):           # the fast lane (above)
            best, ctx.argmax = adaptive_kernels.adaptive_max_pool2d_forward(x, out)
            ctx.shape = x.shape
            return best, ctx.argmax
        h, w = x.shape[2:]
        x_pad = _padded(x, p, k, s, d, out, -np.inf)
        best = xp.full(x.shape[:2] + out, -np.inf, dtype=x.dtype)
        winner = xp.full(best.shape, -1, dtype=np.int32)       # which tap (i*kw + j) won
        for i in range(k[0]):
            for j in range(k[1]):
                v = x_pad[_tap(i, j, s, d, out)]
                # PyTorch's rule: a later value wins only if strictly larger (ties keep the
                # first) or NaN. Padding is -inf, so it never wins.
                take = (v > best) | xp.isnan(v)
                best = xp.where(take, v, best)
                winner = xp.where(take, i * k[1] + j, winner)
        # A window holding only -inf keeps its first position inside the input (PyTorch's
        # initial index), and the backward sends its gradient there, as PyTorch's does.
        start_i, start_j = xp.arange(out[0]) * s[0] - p[0], xp.arange(out[1]) * s[1] - p[1]
        first_tap = (((_first_inside(out[0], s[0], p[0], d[0], xp) - start_i) // d[0])[:, None] * k[1]
                     + ((_first_inside(out[1], s[1], p[1], d[1], xp) - start_j) // d[1])[None, :])
        winner = xp.where(winner >= 0, winner, first_tap).astype(np.int32)
        # Flat index into the H*W plane of each winner.
        rows = start_i[:, None] + winner // k[1] * d[0]
        cols = start_j[None, :] + winner % k[1] * d[1]
        index = (rows * w + cols).astype(np.int64)
        ctx.geometry, ctx.shape, ctx.winner = (k, s, p, d, out), x.shape, winner
        return best, index

    @staticmethod
    def backward(ctx, grad, _grad_index):
        if ctx.argmax is not None:                                   # the fast lane's forward ran
            dx = adaptive_kernels.adaptive_max_pool2d_backward(grad, ctx.argmax, ctx.shape)
            return dx, None, None, None, None, None
        k, s, p, d, out = ctx.geometry
        xp = backend.get_array_module(grad)
        x_pad = _padded(xp.zeros(ctx.shape, dtype=grad.dtype), p, k, s, d, out, 0)
        for i in range(k[0]):         # each tap sends back the gradient of the windows it won
            for j in range(k[1]):
                x_pad[_tap(i, j, s, d, out)] += xp.where(ctx.winner == i * k[1] + j, grad, 0)
        h, w = ctx.shape[2:]
        dx = xp.ascontiguousarray(x_pad[:, :, p[0]:p[0] + h, p[1]:p[1] + w])
        return dx, None, None, None, None, None


@tensor_args("x")
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each window; x (N, C, H, W) -> (N, C, oh, ow), PyTorch's semantics
    (``oh = (H + 2*padding - dilation*(k-1) - 1) // stride + 1``, stride defaults to
    kernel_size, padding counts as -inf). With ``return_indices`` also the position of each
    maximum as a flat index into its H*W plane (for ``max_unpool2d``); ties keep the first."""
    check_input(x, "max_pool2d")
    k, s, p, d, out = _pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    values, indices = MaxPool2d.apply(x, k, s, p, d, out)
    return (values, indices.detach()) if return_indices else values


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, k, s, p, out, divisor):
        x_pad = _padded(x, p, k, s, (1, 1), out, 0)
        total = None
        for i in range(k[0]):
            for j in range(k[1]):
                window = x_pad[_tap(i, j, s, (1, 1), out)]
                if total is None:
                    total = window.copy()                 # the first tap: a copy we can add into
                else:
                    total += window
        ctx.geometry, ctx.shape, ctx.divisor = (k, s, p, out), x.shape, divisor
        total /= divisor
        return total

    @staticmethod
    def backward(ctx, grad):
        k, s, p, out = ctx.geometry
        xp = backend.get_array_module(grad)
        share = (grad / ctx.divisor).astype(grad.dtype, copy=False)   # each input gets 1/divisor
        x_pad = _padded(xp.zeros(ctx.shape, dtype=grad.dtype), p, k, s, (1, 1), out, 0)
        for i in range(k[0]):
            for j in range(k[1]):
                x_pad[_tap(i, j, s, (1, 1), out)] += share
        h, w = ctx.shape[2:]
        return xp.ascontiguousarray(x_pad[:, :, p[0]:p[0] + h, p[1]:p[1] + w]), None, None, None, None, None


def _window_counts(size, k, s, p, out, count_include_pad, xp):
    """How many positions each window divides by, along one axis (PyTorch's rule: the window
    clipped to the padded input, or to the input itself when padding is not counted)."""
    start = xp.arange(out) * s - p
    end = xp.minimum(start + k, size + p)
    if not count_include_pad:
        start, end = xp.maximum(start, 0), xp.minimum(end, size)
    return end - start


@tensor_args("x")
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window; x (N, C, H, W) -> (N, C, oh, ow), PyTorch's semantics: padding
    counts as zeros and is included in the divisor by default (``count_include_pad=True``)."""
    check_input(x, "avg_pool2d")
    k, s, p, _, out = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    xp = backend.get_array_module(x)
    if divisor_override is not None:
        if not isinstance(divisor_override, numbers.Integral) or divisor_override <= 0:
            raise ValueError(f"avg_pool2d: divisor_override must be a positive int, got {divisor_override!r}")
        divisor = divisor_override
    else:
        rows = _window_counts(x.shape[2], k[0], s[0], p[0], out[0], count_include_pad, xp)
        cols = _window_counts(x.shape[3], k[1], s[1], p[1], out[1], count_include_pad, xp)
        divisor = (rows[:, None] * cols[None, :]).astype(x.dtype)
    return AvgPool2d.apply(x, k, s, p, out, divisor)


# ---- adaptive pooling: a fixed output size from any input size (SPP-net) ---------------------
class AdaptiveMaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        values, argmax = adaptive_kernels.adaptive_max_pool2d_forward(x, output_size)
        ctx.argmax, ctx.shape = argmax, x.shape
        return values, argmax

    @staticmethod
    def backward(ctx, grad, _grad_index):
        # each cell's gradient goes back to the input position that won its bin (bins may
        # overlap, so one position can collect several)
        return adaptive_kernels.adaptive_max_pool2d_backward(grad, ctx.argmax, ctx.shape), None


def _adaptive_output_size(output_size, x, name):
    """output_size: an int, or a pair (h, w) whose entries are ints >= 1 or None (None keeps
    that input dimension, as PyTorch) -> (out_h, out_w)."""
    pair = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    ok = len(pair) == 2 and all(v is None or (isinstance(v, numbers.Integral)
                                              and not isinstance(v, (bool, np.bool_))) for v in pair)
    if not ok or (not isinstance(output_size, (tuple, list)) and output_size is None):
        raise TypeError(f"{name}: output_size must be an int or a pair (h, w) of ints or None, "
                        f"got {output_size!r}")
    size = tuple(x.shape[2 + a] if v is None else int(v) for a, v in enumerate(pair))
    if min(size) < 1:
        raise ValueError(f"{name}: output_size must be >= 1, got {output_size!r}")
    return size


@tensor_args("x")
def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Max over out_h × out_w bins that tile the input, whatever its size: x (N, C, H, W) ->
    (N, C, out_h, out_w), PyTorch's semantics. Bin i of n along an axis of length H spans rows
    ``[floor(i*H/n), ceil((i+1)*H/n))`` (neighbours overlap by a row when n does not divide H;
    n > H is allowed). output_size: int or (h, w), None in the pair keeping that input size.
    With ``return_indices`` also the position of each maximum as a flat index into its H*W
    plane. Kernels: minidl/kernels/adaptive_max_pool.py, csrc/adaptive_max_pool/."""
    check_input(x, "adaptive_max_pool2d")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"adaptive_max_pool2d: input must have a non-empty H × W plane, got {x.shape}")
    size = _adaptive_output_size(output_size, x, "adaptive_max_pool2d")
    values, indices = AdaptiveMaxPool2d.apply(x, size)
    return (values, indices.detach()) if return_indices else values
