"""Pooling and upsampling layers: MaxPool2d, AvgPool2d, MaxUnpool2d, Upsample,
AdaptiveMaxPool2d and SpatialPyramidPooling (SPP-net).

Thin Modules over minidl/functional/pool.py and unpool.py (no parameters); PyTorch's names and arguments.
A max-pool / max-unpool pair (lecture 8's "max unpooling"): the encoder's
``MaxPool2d(2, return_indices=True)`` returns the positions that the decoder's
``MaxUnpool2d(2)(x, indices)`` puts the values back to.
"""
from __future__ import annotations

import numbers

from .. import functional as F
from .module import Module


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class MaxUnpool2d(Module):
    """``forward(x, indices, output_size=None)``: the inverse placement of MaxPool2d."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, indices, output_size=None):
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class Upsample(Module):
    """Resize by ``scale_factor`` or to ``size`` with ``mode`` "nearest" or "bilinear"."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class AdaptiveMaxPool2d(Module):
    """(N, C, H, W) -> (N, C, out_h, out_w) for any H, W: ``F.adaptive_max_pool2d``."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class SpatialPyramidPooling(Module):
    """Spatial pyramid pooling (He et al. 2014, "Spatial Pyramid Pooling in Deep Convolutional
    Networks for Visual Recognition"; CS231n lecture 8): (N, C, H, W) -> (N, C * sum(l*l)).

    For each level l, in order, the map is max-pooled to an l × l grid of bins
    (``F.adaptive_max_pool2d(x, (l, l))``) and flattened per sample in (C, l, l) order; the
    levels are concatenated. The bins scale with the input, so the output length depends on C
    and the levels only, never on H, W. That is why SPP-net can feed a fully-connected head
    from a proposal's window of *any* size: it runs the convolutions once per image and pools
    each proposal's window of the feature map into the same fixed-length vector (where R-CNN
    warped every crop to 227 × 227 and ran the whole network on each). Fast R-CNN's RoI pooling
    is the one-level case (ops.roi_pool pools a box like adaptive_max_pool2d pools its crop:
    docs/detection_ops.md). Level 1 is the global max of each channel.
    """

    def __init__(self, levels=(1, 2, 4)):
        super().__init__()
        levels = tuple(levels) if isinstance(levels, (tuple, list)) else (levels,)
        if not levels or not all(isinstance(l, numbers.Integral) and not isinstance(l, bool)
                                 and l >= 1 for l in levels):
            raise ValueError(f"SpatialPyramidPooling: levels must be a non-empty sequence of "
                             f"ints >= 1, got {levels!r}")
        self.levels = tuple(int(l) for l in levels)

    def output_features(self, channels):
        """The output length for ``channels`` input channels: C * sum(l*l)."""
        return channels * sum(l * l for l in self.levels)

    def forward(self, x):
        n, c = x.shape[:2]
        pooled = [F.adaptive_max_pool2d(x, (l, l)).reshape(n, c * l * l) for l in self.levels]
        return pooled[0] if len(pooled) == 1 else F.cat(pooled, 1)

    def extra_repr(self):
        return f"levels={self.levels}"
