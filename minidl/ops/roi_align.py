"""RoIAlign (Mask R-CNN; CS231n lecture 8): RoI pooling without rounding.

RoI pooling snaps every region to the feature grid; the features then drift by up to half a
cell (8 pixels at stride 16) from the region they describe — harmless for classification, bad
for masks and keypoints. RoIAlign keeps the region's real-valued coordinates: every output
cell averages the feature map bilinearly interpolated at a few sample points of its bin.
Kernels: minidl/kernels/roi_align.py (NumPy reference, which also shows that RoIAlign is a
separable linear map) and csrc/roi_align/ (C++, CUDA; one shared body, roi_align.h).

Conventions — torchvision's, where implementations disagree:
* boxes: (K, 5) of (batch index, x1, y1, x2, y2) or a list of per-image (Ki, 4) boxes, in image
  pixels; scaled by spatial_scale, without rounding;
* aligned=False (the default, the original Mask R-CNN): a RoI is at least 1×1 feature cell;
  aligned=True shifts the scaled corners by -0.5 so that the sample grid lines up with pixel
  centres (a box [0, 0, 2, 2] at scale 1 then covers pixels 0 and 1 exactly), and allows
  RoIs smaller than a cell;
* sampling grid: sampling_ratio × sampling_ratio points per bin, or, when sampling_ratio <= 0,
  ceil(bin_h) × ceil(bin_w) points (adaptive: about one per feature cell; minidl caps it at 256
  per axis, torchvision has no cap), at the centres of a regular subdivision of the bin;
* a sample with y < -1 or y > H (or x < -1 or x > W) contributes 0 but still counts in the
  average; other samples are clamped into [0, H - 1] × [0, W - 1] and interpolated;
* output = sum of the samples / number of samples (values equal torchvision's within float
  rounding: the C++ forward sums in the separable order, rows then columns).
Backward: the gradient of a cell is spread over its samples' four bilinear neighbours. The CPU
is deterministic (each thread owns whole channels and adds RoI after RoI; see
docs/detection_ops.md for speed). On CUDA the default adds with atomicAdd (the last bits of a
sum can change between runs); ``deterministic=True`` selects the ordered kernel — reproducible,
in the CPU's order of additions, but with one thread per (image, channel) plane, so slower.
"""
from __future__ import annotations

import numbers

from ..kernels import roi_align as kernels
from ..autograd import Function
from ._utils import roi_inputs


class RoIAlignFunction(Function):
    @staticmethod
    def forward(ctx, input, rois, output_size=(1, 1), spatial_scale=1.0, sampling_ratio=-1,
                aligned=False, deterministic=False):
        ctx.save_for_backward(rois)
        ctx.input_shape = input.shape
        ctx.options = (spatial_scale, sampling_ratio, aligned, deterministic)
        return kernels.roi_align_forward(input, rois, output_size, spatial_scale, sampling_ratio,
                                         aligned)

    @staticmethod
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        spatial_scale, sampling_ratio, aligned, deterministic = ctx.options
        grad_input = kernels.roi_align_backward(grad_output, rois, ctx.input_shape, spatial_scale,
                                                sampling_ratio, aligned, deterministic)
        return grad_input, None


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False,
              deterministic=False):
    """RoIAlign: input (N, C, H, W) -> Tensor (K, C, pooled_h, pooled_w).

    boxes: (K, 5) = (batch index, x1, y1, x2, y2) or a list of per-image (Ki, 4) boxes (image
    pixels); output_size: int or (pooled_h, pooled_w); spatial_scale: feature / image size;
    sampling_ratio: samples per bin and axis (<= 0: adaptive); aligned: half-pixel shift.
    Differentiable with respect to input (not boxes). Conventions: the module docstring.
    """
    _, rois, size, scale = roi_inputs(input, boxes, output_size, spatial_scale, "roi_align")
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, numbers.Integral):
        raise TypeError(f"roi_align: sampling_ratio must be an int, got {sampling_ratio!r}")
    for name, flag in (("aligned", aligned), ("deterministic", deterministic)):
        if not isinstance(flag, (bool, numbers.Integral)):      # bool(array) is ambiguous
            raise TypeError(f"roi_align: {name} must be True or False, got {flag!r:.60}")
    return RoIAlignFunction.apply(input, rois, output_size=size, spatial_scale=scale,
                                  sampling_ratio=int(sampling_ratio), aligned=bool(aligned),
                                  deterministic=bool(deterministic))
