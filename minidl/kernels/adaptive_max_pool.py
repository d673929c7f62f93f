"""adaptive_max_pool2d: max pooling to a fixed output size — the NumPy reference and the
dispatch to C++/CUDA.

Ordinary max pooling fixes the window (k×k, stride s) and lets the output size follow the
input; adaptive pooling fixes the output (out_h×out_w) and cuts any input into that many bins.
Bin i of n along an axis of length `size` spans

    [floor(i * size / n), ceil((i + 1) * size / n))

(PyTorch's bins: neighbours overlap by one row when n does not divide size; with n > size
several bins share a row; no bin is empty). Each output cell is the maximum over its bin: ties
keep the first position (rows, then columns), NaN propagates (the last NaN wins), exactly as
PyTorch. The C++ and CUDA kernels share one body, csrc/adaptive_max_pool/adaptive_max_pool.h;
on the CPU the default is its fast form (adaptive_max_pool_cpu_fast.cpp: bin edges once per row,
not per cell), the textbook loop runs under ``kernels.use("body")`` — the same results bit for bit.

Shapes: input (N, C, H, W) -> output and argmax (N, C, out_h, out_w), argmax int64 = h * W + w
(a flat index into the input plane). Inputs are validated by minidl.functional.pool; these
functions trust them. The compiled kernels take float32 / float64; other dtypes (float16,
integers) run the reference, where the maximum is just as exact.
"""
from __future__ import annotations


from .. import backend
from . import contiguous, fast_cpu_form, launch, native_for

_NATIVE_DTYPES = ("float32", "float64")   # the compiled kernels' dtypes; others use the reference


def bin_edges(i, n, size):
    """(start, end) of bin i of n along an axis of length ``size`` — floor and ceil, in
    integers (exact: no float rounding can move an edge)."""
    return (i * size) // n, -((-(i + 1) * size) // n)


def adaptive_max_pool2d_reference(input, output_size):
    """The definition, one output cell at a time over all (n, c) at once -> (output, argmax)."""
    xp = backend.get_array_module(input)
    n, c, h, w = input.shape
    out_h, out_w = output_size
    output = xp.empty((n, c, out_h, out_w), dtype=input.dtype)
    argmax = xp.empty((n, c, out_h, out_w), dtype=xp.int64)
    if output.size == 0:                              # no image or no channel: nothing to pool
        return output, argmax
    for oh in range(out_h):
        h0, h1 = bin_edges(oh, out_h, h)
        for ow in range(out_w):
            w0, w1 = bin_edges(ow, out_w, w)
            window = input[:, :, h0:h1, w0:w1].reshape(n, c, -1)    # (N, C, bin cells)
            j = xp.argmax(window, axis=2)                # the first maximum, rows then columns
            if input.dtype.kind == "f":                  # PyTorch: a NaN wins, the last one
                nan = xp.isnan(window)
                last_nan = window.shape[2] - 1 - xp.argmax(nan[:, :, ::-1], axis=2)
                j = xp.where(nan.any(axis=2), last_nan, j)
            output[:, :, oh, ow] = xp.take_along_axis(window, j[:, :, None], axis=2)[:, :, 0]
            argmax[:, :, oh, ow] = (h0 + j // (w1 - w0)) * w + w0 + j % (w1 - w0)
    return output, argmax


def adaptive_max_pool2d_backward_reference(grad_output, argmax, input_shape):
    """grad_input (N, C, H, W): every cell's gradient added at its argmax (cells in row-major
    order, as the kernels add them, so the sums agree bit for bit)."""
    xp = backend.get_array_module(grad_output)
    n, c, h, w = input_shape
    grad_input = xp.zeros(input_shape, dtype=grad_output.dtype)
    plane = xp.arange(n * c, dtype=xp.int64).reshape(n, c, 1, 1) * (h * w)
    xp.add.at(grad_input.reshape(-1), (plane + argmax).reshape(-1), grad_output.reshape(-1))
    return grad_input


def runs_compiled(input):
    """Whether the dispatchers below run a compiled kernel (C++ or CUDA) on ``input`` rather
    than the reference (max_pool2d's fast lane is taken only then)."""
    return native_for(input) is not None and input.dtype.name in _NATIVE_DTYPES


def adaptive_max_pool2d_forward(input, output_size):
    """(output, argmax): C++ / CUDA when built, else the reference."""
    xp = backend.get_array_module(input)
    out_h, out_w = (int(v) for v in output_size)
    if not runs_compiled(input):
        return adaptive_max_pool2d_reference(input, (out_h, out_w))
    native = native_for(input)
    input = contiguous(input, xp)
    n, c, h, w = input.shape
    output = xp.empty((n, c, out_h, out_w), dtype=input.dtype)
    argmax = xp.empty(output.shape, dtype=xp.int64)
    launch(native, "adaptive_max_pool2d_forward", (input, output, argmax),
           sizes=(n, c, h, w, out_h, out_w), fast=fast_cpu_form())
    return output, argmax


def adaptive_max_pool2d_backward(grad_output, argmax, input_shape):
    """grad_input: C++ / CUDA (both deterministic: one thread per input plane) / reference."""
    xp = backend.get_array_module(grad_output)
    if not runs_compiled(grad_output):
        return adaptive_max_pool2d_backward_reference(grad_output, argmax, input_shape)
    native = native_for(grad_output)
    grad_output = contiguous(grad_output, xp)
    argmax = contiguous(argmax, xp, xp.int64)
    grad_input = xp.zeros(input_shape, dtype=grad_output.dtype)
    n, c, h, w = input_shape
    launch(native, "adaptive_max_pool2d_backward", (grad_output, argmax, grad_input),
           sizes=(n, c, h, w, *grad_output.shape[2:]))
    return grad_input
