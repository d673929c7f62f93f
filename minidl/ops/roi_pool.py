"""RoI max pooling (Fast R-CNN; CS231n lecture 8): a fixed-size feature for every region.

Fast R-CNN runs the backbone once per image and then, for each region proposal, max-pools the
part of the feature map under the region into a fixed pooled_h × pooled_w grid, so that one
fully-connected head can classify regions of any size. Kernels: minidl/kernels/roi_pool.py
(NumPy reference) and csrc/roi_pool/ (C++, CUDA; one shared body, roi_pool.h).

Conventions — torchvision's, which inherit Caffe's; they are exactly where implementations
disagree, so here they are in full:
* boxes: a (K, 5) Tensor/array of (batch index, x1, y1, x2, y2), or a list with one (Ki, 4)
  box array per image; coordinates in input-image pixels, mapped to the feature map by
  spatial_scale (1/16 for a stride-16 backbone);
* each scaled corner is *rounded* to an integer feature position (C's round(): halves away
  from zero), and the RoI size is *inclusive*: width = round(x2·s) - round(x1·s) + 1, at least 1
  (a legacy of Caffe treating corners as pixel indices);
* bin (ph, pw) spans rows [floor(ph·bh), ceil((ph+1)·bh)) (+ the RoI's top row), bh = height /
  pooled_h in the dtype, and likewise columns; bins can overlap by one row, and are clipped to
  the map — a bin wholly outside outputs 0 and passes no gradient;
* max: the first strictly greater value, scanning rows then columns, from -FLT_MAX (ties go to
  the first position; NaN is never the max). Backward: each output gradient goes to its argmax.
The backward pass is deterministic on the CPU (each thread owns whole channels). On CUDA the
default adds with atomicAdd, so the last bits of a sum can change from run to run; pass
``deterministic=True`` for the ordered (slower) kernel, which is bit-identical to the CPU.
"""
from __future__ import annotations

from ..kernels import roi_pool as kernels
from ..autograd import Function
from ._utils import roi_inputs


class RoIPoolFunction(Function):
    @staticmethod
    def forward(ctx, input, rois, output_size=(1, 1), spatial_scale=1.0, deterministic=False):
        output, argmax = kernels.roi_pool_forward(input, rois, output_size, spatial_scale)
        ctx.save_for_backward(argmax, rois)
        ctx.input_shape, ctx.deterministic = input.shape, deterministic
        return output

    @staticmethod
    def backward(ctx, grad_output):
        argmax, rois = ctx.saved_tensors
        grad_input = kernels.roi_pool_backward(grad_output, argmax, rois, ctx.input_shape,
                                               ctx.deterministic)
        return grad_input, None


def roi_pool(input, boxes, output_size, spatial_scale=1.0, deterministic=False):
    """RoI max pooling: input (N, C, H, W) -> Tensor (K, C, pooled_h, pooled_w).

    boxes: (K, 5) = (batch index, x1, y1, x2, y2) or a list of per-image (Ki, 4) boxes (image
    pixels); output_size: int or (pooled_h, pooled_w); spatial_scale: feature / image size.
    Differentiable with respect to input (not boxes). See the module docstring for the exact
    bin arithmetic and ``deterministic``.
    """
    _, rois, size, scale = roi_inputs(input, boxes, output_size, spatial_scale, "roi_pool")
    return RoIPoolFunction.apply(input, rois, output_size=size, spatial_scale=scale,
                                 deterministic=bool(deterministic))
