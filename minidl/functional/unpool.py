"""Upsampling without weights: the "unpooling" slide of lecture 8 (segmentation).

A segmentation network shrinks its feature maps (pool.py) and must grow them back:

    nearest neighbour   unpool_nearest       each value fills its whole k×k block
    "bed of nails"      unpool_bed_of_nails  the value in the block's top-left corner, zeros elsewhere
    max unpooling       max_unpool2d         the value goes back where max_pool2d found it
    interpolation       interpolate          nearest or bilinear resampling (interpolate.py)

Max unpooling needs the indices that ``max_pool2d(..., return_indices=True)`` remembered: the
encoder's pooling and the decoder's unpooling are paired layer by layer.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from ..pairs import as_pair
from .pool import check_input
from ._args import tensor_args


class MaxUnpool2d(Function):
    @staticmethod
    def forward(ctx, x, indices, out_hw):
        xp = backend.get_array_module(x)
        n, c = x.shape[:2]
        planes = xp.arange(n * c).reshape(n, c, 1, 1) * (out_hw[0] * out_hw[1])
        ctx.positions = (planes + indices).reshape(-1)     # flat positions in the output
        ctx.shape = x.shape
        out = xp.zeros(n * c * out_hw[0] * out_hw[1], dtype=x.dtype)
        out[ctx.positions] = x.reshape(-1)
        return out.reshape(n, c, *out_hw)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(-1)[ctx.positions].reshape(ctx.shape), None, None   # a gather


@tensor_args("x", "indices")
def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put every value of x back at the position ``indices`` says (from
    ``max_pool2d(..., return_indices=True)``), zeros elsewhere. Output (N, C, Ho, Wo) with
    ``Ho = (H - 1)*stride - 2*padding + kernel_size`` unless ``output_size`` is given."""
    check_input(x, "max_unpool2d")
    indices_data = indices.data if isinstance(indices, Tensor) else indices
    if indices_data is None or tuple(indices_data.shape) != x.shape:
        raise ValueError(f"max_unpool2d: indices must have the input's shape {x.shape}, got "
                         f"{getattr(indices_data, 'shape', None)}")
    if indices_data.dtype.kind not in "iu":
        raise TypeError(f"max_unpool2d: indices must be integers, got {indices_data.dtype}")
    k = as_pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)
    default = [(x.shape[2 + a] - 1) * s[a] - 2 * p[a] + k[a] for a in (0, 1)]
    if output_size is None:
        out_hw = tuple(default)
    else:
        out_hw = tuple(int(v) for v in tuple(output_size)[-2:])
        if len(tuple(output_size)) not in (2, 4):
            raise ValueError(f"max_unpool2d: output_size must be (H, W) or (N, C, H, W), got {output_size}")
        for a in (0, 1):
            if not default[a] - s[a] < out_hw[a] < default[a] + s[a]:
                raise ValueError(f"max_unpool2d: output_size {out_hw} must be within one stride of "
                                 f"the default {tuple(default)}")
    if min(out_hw) < 1:
        raise ValueError(f"max_unpool2d: the output size {out_hw} is not positive")
    xp = backend.get_array_module(x)
    indices_data = xp.asarray(indices_data, dtype=np.int64)
    if indices_data.size and backend.any_true((indices_data < 0) | (indices_data >= out_hw[0] * out_hw[1])):
        raise ValueError(f"max_unpool2d: indices must lie in [0, {out_hw[0] * out_hw[1]}) for an "
                         f"output of size {out_hw}")
    return MaxUnpool2d.apply(x, indices_data, out_hw)


class UnpoolNearest(Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.repeat(scale[0], axis=2).repeat(scale[1], axis=3)

    @staticmethod
    def backward(ctx, grad):
        n, c, h, w = grad.shape
        (sh, sw) = ctx.scale          # every input fed an sh×sw block: sum the block's gradient
        return grad.reshape(n, c, h // sh, sh, w // sw, sw).sum(axis=(3, 5)), None


@tensor_args("x")
def unpool_nearest(x, scale_factor=2):
    """Nearest-neighbour unpooling: each value fills a scale×scale block, (N, C, H, W) ->
    (N, C, H*sh, W*sw)."""
    check_input(x, "unpool_nearest")
    return UnpoolNearest.apply(x, as_pair(scale_factor, "scale_factor", 1))


class UnpoolBedOfNails(Function):
    @staticmethod
    def forward(ctx, x, scale):
        xp = backend.get_array_module(x)
        n, c, h, w = x.shape
        ctx.scale = scale
        out = xp.zeros((n, c, h * scale[0], w * scale[1]), dtype=x.dtype)
        out[:, :, ::scale[0], ::scale[1]] = x
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad[:, :, ::ctx.scale[0], ::ctx.scale[1]].copy(), None


@tensor_args("x")
def unpool_bed_of_nails(x, scale_factor=2):
    """"Bed of nails" unpooling: each value in the top-left corner of its scale×scale block,
    zeros elsewhere; (N, C, H, W) -> (N, C, H*sh, W*sw)."""
    check_input(x, "unpool_bed_of_nails")
    return UnpoolBedOfNails.apply(x, as_pair(scale_factor, "scale_factor", 1))
