"""Normalization layers: BatchNorm2d, InstanceNorm2d, ConditionalInstanceNorm2d.

BatchNorm2d keeps running averages of the batch statistics as *buffers* (``register_buffer``:
saved by ``state_dict`` but not trained) and uses them in ``eval()`` mode — PyTorch's names
``running_mean``, ``running_var``, ``num_batches_tracked``, so state dicts line up.
ConditionalInstanceNorm2d holds one (γ, β) row per style (lecture 12's "one network, many
styles"): ``forward(x, style)`` with style indices (N,) or mixing weights (N, num_styles).
``fused_relu`` (False unless ``minidl.nn.fuse_norm_relu`` set it) applies the ReLU that
followed the layer inside its own passes (functional/norm.py).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from .module import Module, Parameter


class _Norm(Module):
    def __init__(self, num_features, eps, momentum, affine, track_running_stats, dtype):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or isinstance(num_features, bool) \
                or num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.fused_relu = False                   # see minidl.nn.fuse_norm_relu
        dtype = dtype or backend.default_dtype
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def _check_input(self, x):
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[1]} channels, expected "
                             f"num_features={self.num_features}")

    def _momentum(self):
        """The averaging factor of this step; momentum=None means a cumulative average."""
        if self.training and self.track_running_stats:
            self.num_batches_tracked[...] += 1     # in place: assigning would unregister the buffer
            if self.momentum is None:
                return 1.0 / float(self.num_batches_tracked)
        return 0.0 if self.momentum is None else self.momentum

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}"
                + (", fused_relu=True" if self.fused_relu else ""))


class BatchNorm2d(_Norm):
    """Batch norm over (N, H, W) per channel; running statistics in eval mode."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x):
        self._check_input(x)
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch_stats, self._momentum(), self.eps, relu=self.fused_relu)


class InstanceNorm2d(_Norm):
    """Instance norm over (H, W) per image and channel; affine=False by default (as PyTorch)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x):
        self._check_input(x)
        use_input_stats = self.training or not self.track_running_stats
        return F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               use_input_stats, self._momentum(), self.eps, relu=self.fused_relu)


class ConditionalInstanceNorm2d(Module):
    """Instance norm with a learned (γ, β) per style: weight, bias (num_styles, num_features),
    initialized to γ = 1, β = 0. ``forward(x, style)``: style indices (N,) or mixing weights
    (N, num_styles)."""

    def __init__(self, num_features, num_styles, eps=1e-5, dtype=None):
        super().__init__()
        for value, name in ((num_features, "num_features"), (num_styles, "num_styles")):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"ConditionalInstanceNorm2d: {name} must be a positive int, got {value!r}")
        self.num_features, self.num_styles, self.eps = num_features, num_styles, eps
        dtype = dtype or backend.default_dtype
        self.weight = Parameter(np.ones((num_styles, num_features), dtype=dtype))
        self.bias = Parameter(np.zeros((num_styles, num_features), dtype=dtype))

    def forward(self, x, style):
        return F.conditional_instance_norm(x, style, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, num_styles={self.num_styles}, eps={self.eps}"
