"""The compiled CPU kernels called directly, with their outputs allocated as minidl/kernels does.

minidl._C's bindings take every output from the caller (minidl/kernels/__init__.py: the calling
convention). Tests that call a binding on purpose — to check that it refuses bad arrays, stays
in bounds on odd values, or that both of its forms agree — use these wrappers, which allocate
the outputs (zeroed where the kernel adds into them) from the inputs' shapes and dtypes.
"""
import numpy as np

from minidl import kernels

_C = kernels._load("_C")


def _like(x, shape):
    """An output of x's dtype (float32 when x's is not a float: the binding refuses x anyway)."""
    dtype = x.dtype if x.dtype.kind == "f" else np.float32
    return np.zeros(shape, dtype)


def nms(boxes, scores, iou_threshold, labels=None, fast=True):
    keep = np.empty(len(boxes), np.int64)
    return keep[:_C.nms(boxes, scores, labels, keep, iou_threshold, fast)]


def roi_pool_forward(x, rois, spatial_scale, pooled_h, pooled_w):
    shape = (len(rois), x.shape[1] if x.ndim > 1 else 0, pooled_h, pooled_w)
    output, argmax = _like(x, shape), np.empty(shape, np.int64)
    _C.roi_pool_forward(x, rois, output, argmax, spatial_scale)
    return output, argmax


def roi_pool_backward(grad, argmax, rois, batch, height, width):
    grad_input = _like(grad, (batch, grad.shape[1], height, width))
    _C.roi_pool_backward(grad, argmax, rois, grad_input)
    return grad_input


def roi_align_forward(x, rois, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned,
                      fast=True):
    output = _like(x, (len(rois), x.shape[1] if x.ndim > 1 else 0, pooled_h, pooled_w))
    _C.roi_align_forward(x, rois, output, spatial_scale, sampling_ratio, aligned, fast)
    return output


def roi_align_backward(grad, rois, spatial_scale, batch, height, width, sampling_ratio, aligned,
                       fast=True):
    grad_input = _like(grad, (batch, grad.shape[1] if grad.ndim > 1 else 0, height, width))
    _C.roi_align_backward(grad, rois, grad_input, spatial_scale, sampling_ratio, aligned, fast)
    return grad_input


def adaptive_max_pool2d_forward(x, out_h, out_w):
    shape = tuple(x.shape[:2]) + (out_h, out_w)
    output, argmax = _like(x, shape), np.empty(shape, np.int64)
    _C.adaptive_max_pool2d_forward(x, output, argmax)
    return output, argmax


def adaptive_max_pool2d_backward(grad, argmax, height, width):
    grad_input = _like(grad, tuple(grad.shape[:2]) + (height, width))
    _C.adaptive_max_pool2d_backward(grad, argmax, grad_input)
    return grad_input
