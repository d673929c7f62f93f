"""Convolution as matrix multiplication: conv2d and conv_transpose2d (lecture 8).

Lecture idea: a convolution is a linear map, so it *is* a matrix X: ``conv(a) = X a``. We never
build X (it is mostly zeros); we build the column matrix instead (``kernels.im2col``: one column
per output pixel, holding the receptive field it sees) and the convolution becomes one GEMM,

    out (F, N*oh*ow) = W (F, C*kh*kw) @ cols (C*kh*kw, N*oh*ow)       (per group)

A *transpose convolution* multiplies by Xᵀ — the same matrix used the other way round:

    conv_transpose(a) = Xᵀ a = col2im(Wᵀ @ a)

and so the two are each other's backward pass:

    conv2d:            forward  W @ im2col(x)       backward dx = col2im(Wᵀ @ dy)   <- transpose conv
    conv_transpose2d:  forward  col2im(Wᵀ @ x)      backward dx = W @ im2col(dy)    <- conv
    both:              dW = Σ_batch (conv's output side) @ im2col(conv's input side)ᵀ

The three chunked helpers of ``functional/conv_gemm.py`` (``_conv_gemm``,
``_conv_gemm_transposed``, ``_conv_weight_grad``) are all the arithmetic there is; the two
Functions here only choose which one plays which role. The fast lane, behind one check in
``Conv2d``: a stride-1 convolution equals the transpose convolution of its flipped filters, so
each direction may run on the side that copies fewer column rows (``functional/conv_dual.py``).

Memory and speed: the batch is processed in chunks whose columns stay under
``kernels.im2col.MAX_COLUMN_BYTES`` (cache-sized, written into reused buffers), so the column
matrix of the whole batch is never built (see conv_gemm.py). ``conv2d_naive`` is the textbook loop version, kept to
check against and to show what the GEMM formulation saves.
"""
from __future__ import annotations

import numbers
from collections import namedtuple

import numpy as np

from .. import backend
from ..kernels.im2col import check_geometry, conv_output_size
from ..pairs import as_pair
from ..autograd import Function, Tensor, is_grad_enabled
from . import conv_direct, conv_dual, conv_pointwise, conv_winograd
from .conv_gemm import _bias_grad, _conv_gemm, _conv_gemm_transposed, _conv_weight_grad
from .shape import pad as _pad_tensor
from ._args import tensor_args

# The hyper-parameters of one convolution, each (height, width) pairs of ints.
Geometry = namedtuple("Geometry", "kernel stride padding dilation groups")


# ---- the two Functions: the same three GEMMs in two roles -----------------------------------
class Conv2d(Function):
    """y = W * x + b.  forward: W @ im2col(x); backward: dx = col2im(Wᵀ @ dy) (a transpose conv)
    and dW = Σ rows(dy) @ im2col(x)ᵀ.

    The fast lanes: a 1×1 conv is one matrix product per image (``conv_pointwise.py``); a 3×3
    stride-1 conv with many channels runs as Winograd's F(2×2, 3×3) or F(4×4, 3×3)
    (``conv_winograd.py``), one with fewer channels — and 5×5, 7×7, 9×9 ones — (stride 1 or 2)
    as a direct convolution without a column matrix (``conv_direct.py``); a stride-1 conv is also
    the transpose conv of its flipped filters, and either direction may run on that dual side when
    it copies fewer column rows (``conv_dual.py``).
    All give this plain side's numbers (to rounding), checked in tests/test_conv.py.
    """

    returns_fresh_grads = True     # every gradient is a new array (the engine may adopt it)

    @staticmethod
    def forward(ctx, x, weight, bias, geom):
        xp = backend.get_array_module(x)
        x, weight = xp.ascontiguousarray(x), xp.ascontiguousarray(weight)
        ctx.save_for_backward(x, weight)
        ctx.geom = geom
        if conv_pointwise.takes(geom):
            return conv_pointwise.forward(x, weight, bias)
        if conv_winograd.takes(x, weight, geom):
            u = conv_winograd.transformed_filters(x, weight, geom.padding)    # U = G W Gᵀ
            recording = is_grad_enabled()
            if recording and ctx.needs_input_grad[0]:
                ctx.winograd_u = u      # the backward's dx needs the same U: kept, not recomputed
            # ... and its dW the same V = Bᵀ x B (kept when the batch is one chunk)
            out, ctx.winograd_v = conv_winograd.forward(
                x, weight, geom.padding, bias, u=u, keep_v=recording and ctx.needs_input_grad[1])
            return out
        if conv_direct.takes(x, weight, geom):
            return conv_direct.forward(x, weight, geom, bias)
        if conv_dual.takes(weight, geom):
            return conv_dual.forward(x, weight, geom, bias)
        return _conv_gemm(x, weight, geom, bias)                # W @ im2col(x) + b

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_out = backend.get_array_module(grad_out).ascontiguousarray(grad_out)
        need_dx, need_dw = ctx.needs_input_grad[:2]
        db = _bias_grad(grad_out) if ctx.needs_input_grad[2] else None
        if conv_pointwise.takes(ctx.geom):
            return (*conv_pointwise.backward(x, weight, grad_out, need_dx, need_dw), db)
        if conv_winograd.takes(x, weight, ctx.geom) and (need_dx or need_dw):
            u, ctx.winograd_u = getattr(ctx, "winograd_u", None), None     # (their memory
            v, ctx.winograd_v = getattr(ctx, "winograd_v", None), None     #  freed)
            return (*conv_winograd.backward(x, weight, grad_out, ctx.geom.padding, need_dx, need_dw,
                                            u=u, v=v), db)
        if conv_direct.takes(x, weight, ctx.geom, "backward"):
            return (*conv_direct.backward(x, weight, grad_out, ctx.geom, need_dx, need_dw), db)
        if conv_dual.takes(weight, ctx.geom, "backward", need_dx, need_dw):
            return (*conv_dual.backward(x, weight, grad_out, ctx.geom, need_dx, need_dw), db)
        dx = dw = None
        if need_dx:                 # dx = col2im(Wᵀ @ dy), and dW from the same rows of dy
            result = _conv_gemm_transposed(grad_out, weight, ctx.geom, x.shape,
                                           weight_grad_with=x if need_dw else None)
            dx, dw = result if need_dw else (result, None)
        elif need_dw:               # a first layer: dW = Σ rows(dy) @ im2col(x)ᵀ alone
            dw = _conv_weight_grad(x, grad_out, ctx.geom, weight)
        return dx, dw, db


class ConvTranspose2d(Function):
    """y = Wᵀ * x + b.  forward: col2im(Wᵀ @ x); backward: dx = W @ im2col(dy) (a convolution).

    weight (C_in, C_out/G, kh, kw) is the weight of the convolution that maps y back to x.
    """

    returns_fresh_grads = True     # every gradient is a new array (the engine may adopt it)

    @staticmethod
    def forward(ctx, x, weight, bias, geom, out_shape):
        xp = backend.get_array_module(x)
        ctx.in_size = x.shape[2:]
        # The convolution of the output has floor(output_padding / stride) more rows (columns)
        # than x when output_padding >= stride (allowed when dilation > stride): those extra
        # outputs of the conv are simply not there — zeros in x, as in PyTorch.
        conv_size = [conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                     zip(out_shape[2:], geom.kernel, geom.stride, geom.padding, geom.dilation)]
        if tuple(conv_size) != x.shape[2:]:
            x = xp.pad(x, ((0, 0), (0, 0), (0, conv_size[0] - x.shape[2]),
                           (0, conv_size[1] - x.shape[3])))
        x, weight = xp.ascontiguousarray(x), xp.ascontiguousarray(weight)
        ctx.save_for_backward(x, weight)
        ctx.geom = geom
        out = _conv_gemm_transposed(x, weight, geom, out_shape)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_out = backend.get_array_module(grad_out).ascontiguousarray(grad_out)
        need_dx, need_dw = ctx.needs_input_grad[:2]
        dx = dw = None
        if need_dx:                                  # dx and dW share im2col(grad_out)
            result = _conv_gemm(grad_out, weight, ctx.geom, weight_grad_with=x if need_dw else None)
            dx, dw = result if need_dw else (result, None)
            h, w = ctx.in_size
            dx = dx[:, :, :h, :w]
        elif need_dw:
            dw = _conv_weight_grad(grad_out, x, ctx.geom, weight)
        db = _bias_grad(grad_out) if ctx.needs_input_grad[2] else None
        return dx, dw, db


# ---- the public ops -------------------------------------------------------------------------
def _check_operands(name, x, weight, bias, groups, in_channels_axis):
    """Shared checks of conv2d / conv_transpose2d: types, ranks, dtypes, channels, groups."""
    for value, arg in ((x, "input"), (weight, "weight")):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name}: {arg} must be a Tensor, got {type(value).__name__}")
    if weight.ndim != 4:
        raise ValueError(f"{name}: weight must have 4 dimensions, got shape {weight.shape}")
    if x.ndim != 4:
        raise ValueError(f"{name}: input must have shape (N, C, H, W), got {x.shape}")
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    if x.dtype != weight.dtype or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: input ({x.dtype}) and weight ({weight.dtype}) must have the "
                        "same dtype, float32 or float64 (the im2col kernels' types)")
    if x.device != weight.device:
        raise ValueError(f"{name}: input is on {x.device} but weight on {weight.device}")
    expected = weight.shape[1] * groups if in_channels_axis == 1 else weight.shape[0]
    if x.shape[1] != expected:
        layout = "(F, C/groups, kh, kw)" if in_channels_axis == 1 else "(C_in, C_out/groups, kh, kw)"
        raise ValueError(f"{name}: input has {x.shape[1]} channels but weight of shape "
                         f"{weight.shape} {layout} with groups={groups} expects {expected}")
    out_channels = weight.shape[0] if in_channels_axis == 1 else weight.shape[1] * groups
    if weight.shape[0] % groups:
        raise ValueError(f"{name}: weight.shape[0] = {weight.shape[0]} is not divisible by "
                         f"groups={groups}")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (out_channels,)):
        raise ValueError(f"{name}: bias must be a Tensor of shape ({out_channels},), got "
                         f"{getattr(bias, 'shape', type(bias).__name__)}")
    return out_channels


def _same_padding(x, kernel, stride, dilation):
    """padding='same' (stride 1): pad (d*(k-1))//2 on each side, the odd pixel on the right/bottom
    (as PyTorch does). Returns (x, symmetric padding)."""
    if stride != (1, 1):
        raise ValueError(f"conv2d: padding='same' needs stride 1, got stride={stride}")
    total = [d * (k - 1) for d, k in zip(dilation, kernel)]
    if total[0] % 2 or total[1] % 2:
        x = _pad_tensor(x, (0, total[1] % 2, 0, total[0] % 2))
    return x, (total[0] // 2, total[1] // 2)


def _unbatched(x):
    """PyTorch accepts a single (C, H, W) image: give it a batch axis (undone by the caller)."""
    return (x.reshape(1, *x.shape), True) if isinstance(x, Tensor) and x.ndim == 3 else (x, False)


@tensor_args("x", "weight", "bias", optional=("bias",))
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in every DL framework), PyTorch's semantics.

    x (N, C, H, W) or (C, H, W); weight (F, C/groups, kh, kw); bias (F,) or None.
    stride, padding, dilation: int or (h, w); padding may also be "valid" (0) or "same" (stride 1).
    Returns (N, F, oh, ow) with ``oh = (H + 2*padding - dilation*(kh-1) - 1) // stride + 1``.
    """
    x, unbatched = _unbatched(x)
    _check_operands("conv2d", x, weight, bias, groups, in_channels_axis=1)
    kernel = weight.shape[2:]
    stride, dilation = as_pair(stride, "stride", 1), as_pair(dilation, "dilation", 1)
    if padding == "valid":
        padding = 0
    if padding == "same":
        x, padding = _same_padding(x, kernel, stride, dilation)
    elif isinstance(padding, str):
        raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = as_pair(padding, "padding", 0)
    check_geometry(x.shape, kernel, stride, padding, dilation, op="conv2d")  # the one check
    out = Conv2d.apply(x, weight, bias, geom=Geometry(kernel, stride, padding, dilation, groups))
    return out.reshape(out.shape[1:]) if unbatched else out


@tensor_args("x", "weight", "bias", optional=("bias",))
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transpose ("fractionally strided", "deconvolution") convolution, PyTorch's semantics.

    The adjoint of conv2d with the same weight: it maps a conv's output shape back to its input
    shape, upsampling by ``stride``. x (N, C_in, H, W); weight (C_in, C_out/groups, kh, kw).
    Output (N, C_out, H_out, W_out) with
    ``H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1``;
    output_padding (< stride or < dilation) adds rows/columns at the bottom/right that the
    convolution would have ignored (they only receive the bias).
    """
    x, unbatched = _unbatched(x)
    out_channels = _check_operands("conv_transpose2d", x, weight, bias, groups, in_channels_axis=0)
    kernel = weight.shape[2:]
    stride, dilation = as_pair(stride, "stride", 1), as_pair(dilation, "dilation", 1)
    padding = as_pair(padding, "padding", 0)
    output_padding = as_pair(output_padding, "output_padding", 0)
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller "
                             f"than either stride {stride} or dilation {dilation}")
    size = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in
            zip(x.shape[2:], stride, padding, dilation, kernel, output_padding)]
    if min(size) < 1:
        raise ValueError(f"conv_transpose2d: the output size {tuple(size)} is not positive "
                         f"(input {x.shape[2:]}, padding {padding} too large)")
    geom = Geometry(kernel, stride, padding, dilation, groups)
    out = ConvTranspose2d.apply(x, weight, bias, geom=geom,
                                out_shape=(x.shape[0], out_channels, *size))
    return out.reshape(out.shape[1:]) if unbatched else out


@tensor_args("x", "weight", "bias", optional=("bias",))
def conv2d_naive(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The definition, one output value at a time (no gradient; for checking and timing):

        out[n, f, y, x] = b[f] + Σ_{c, i, j} W[f, c, i, j] · x_pad[n, g*C/G + c, y*s + i*d, x*s + j*d]

    with g = f // (F/G) the group of filter f. Four Python loops: compare its time with conv2d.
    """
    _check_operands("conv2d_naive", x, weight, bias, groups, 1)
    xs, ws = (v.data if isinstance(v, Tensor) else v for v in (x, weight))
    bs = bias.data if isinstance(bias, Tensor) else bias
    xp = backend.get_array_module(xs)
    (sh, sw), (ph, pw), (dh, dw) = (as_pair(stride, "stride", 1), as_pair(padding, "padding", 0),
                                    as_pair(dilation, "dilation", 1))
    n_img, _, h, w = xs.shape
    f_all, c_per_group, kh, kw = ws.shape
    check_geometry(x.shape, (kh, kw), (sh, sw), (ph, pw), (dh, dw), op="conv2d_naive")
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    x_pad = xp.pad(xs, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = xp.zeros((n_img, f_all, oh, ow), dtype=xs.dtype)
    filters_per_group = f_all // groups
    for n in range(n_img):
        for f in range(f_all):
            c0 = (f // filters_per_group) * c_per_group
            for y in range(oh):
                for x_ in range(ow):
                    field = x_pad[n, c0:c0 + c_per_group,
                                  y * sh:y * sh + dh * (kh - 1) + 1:dh,
                                  x_ * sw:x_ * sw + dw * (kw - 1) + 1:dw]
                    out[n, f, y, x_] = (field * ws[f]).sum() + (bs[f] if bs is not None else 0)
    return Tensor._wrap(out)
