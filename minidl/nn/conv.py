"""Convolution layers: Conv2d and ConvTranspose2d (PyTorch's arguments and weight layouts).

Lecture 8: strided convolutions downsample, transpose convolutions upsample — and a transpose
convolution is the backward pass of a convolution (see minidl/functional/conv.py).

    Conv2d.weight           (out_channels, in_channels / groups, kh, kw)
    ConvTranspose2d.weight  (in_channels, out_channels / groups, kh, kw)

Both start from PyTorch's default initialization (``nn.init.default_init_``), drawn from
``rng`` (a numpy Generator or a seed) so that a model is reproducible.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..pairs import as_pair
from . import init
from .module import Module, Parameter


class _ConvNd(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                 bias, padding_mode, transposed, rng, dtype):
        super().__init__()
        for value, name in ((in_channels, "in_channels"), (out_channels, "out_channels"),
                            (groups, "groups")):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = as_pair(kernel_size, "kernel_size", 1)
        self.stride = as_pair(stride, "stride", 1)
        self.padding = padding if isinstance(padding, str) else as_pair(padding, "padding", 0)
        self.dilation = as_pair(dilation, "dilation", 1)
        self.padding_mode = padding_mode
        dtype = dtype or backend.default_dtype
        # conv: (C_out, C_in / groups, kh, kw); transpose conv: (C_in, C_out / groups, kh, kw)
        weight_shape = (in_channels, out_channels // groups) if transposed else \
            (out_channels, in_channels // groups)
        self.weight = Parameter(np.empty(weight_shape + self.kernel_size, dtype=dtype))
        self.bias = Parameter(np.empty(out_channels, dtype=dtype)) if bias else None
        init.default_init_(self.weight, self.bias, rng)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D convolution; input (N, C_in, H, W) -> (N, C_out, H_out, W_out) with
    ``H_out = (H + 2*padding - dilation*(kh - 1) - 1) // stride + 1``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", rng=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, False, rng, dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    """Transpose convolution (upsampling by ``stride``); input (N, C_in, H, W) ->
    (N, C_out, H_out, W_out) with
    ``H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1``.

    ``forward(x, output_size=None)``: like PyTorch, an ``output_size`` (H_out, W_out) picks the
    output_padding that produces it (the sizes a strided conv maps onto the same input size).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 rng=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, True, rng, dtype)
        if isinstance(self.padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair, got {padding!r}")
        self.output_padding = as_pair(output_padding, "output_padding", 0)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-2:]
        if len(tuple(output_size)) not in (2, 4):
            raise ValueError(f"ConvTranspose2d: output_size must be (H, W) or (N, C, H, W), got {output_size}")
        smallest = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                    zip(x.shape[2:], self.stride, self.padding, self.dilation, self.kernel_size)]
        extra = tuple(int(want) - low for want, low in zip(size, smallest))
        for e, s, d in zip(extra, self.stride, self.dilation):
            if not 0 <= e < max(s, d):
                raise ValueError(f"ConvTranspose2d: output_size {tuple(size)} is not reachable: "
                                 f"sizes from {tuple(smallest)} to "
                                 f"{tuple(lo + max(s, d) - 1 for lo, s, d in zip(smallest, self.stride, self.dilation))}")
        return extra

    def forward(self, x, output_size=None):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups, self.dilation)

    def extra_repr(self):
        text = super().extra_repr()
        return text + (f", output_padding={self.output_padding}" if self.output_padding != (0, 0) else "")
