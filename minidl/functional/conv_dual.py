"""The fast lane of conv2d: a stride-1 convolution computed as the transpose convolution of its
flipped filters, when that side copies fewer column rows.

The lesson is in conv.py (conv = W @ im2col(x), its backward a transpose conv). This file is an
optimization behind one check in ``Conv2d`` (``takes``), with the same three GEMM helpers of
conv_gemm.py in swapped roles. Why it holds: a stride-1 conv2d(x, W, padding p) equals
conv_transpose2d(x, V, padding d·(k-1) - p), V = W rotated by 180° in space with its in/out
channels swapped. Why it pays: the GEMM helpers copy one column-matrix row per (channel, kernel
tap) per output pixel, so the side with fewer channels × taps copies less —

    forward   plain: im2col(x), C·k rows (+ F to reorder the result)   dual: col2im, F·k rows (+ C)
    backward  plain: col2im for dx and im2col(x) for dW, C·k rows each (+ F: rows of dy)
              dual:  one im2col(dy), F·k rows, for both (+ C: rows of x, for dW)

with k = kh·kw. The 16 -> 3 channel 9×9 output conv of the style-transfer net runs both
directions as its dual (5.3× smaller columns); a 3×3 conv with F = C runs its forward plainly and
its backward as the dual (9F + C instead of F + 18C rows). Measured in docs/conv.md. ``enabled``
switches the lane off (tests compare both sides; set it to False to read the plain path run).
"""
from __future__ import annotations

from .. import backend
from ..kernels.im2col import conv_output_size
from .conv_gemm import _conv_gemm, _conv_gemm_transposed, _conv_weight_grad

#: False: every conv runs on the plain side of conv.py
enabled = True


def takes(weight, geom, direction="forward", need_dx=True, need_dw=True):
    """Whether this direction ("forward" or "backward") of the conv runs here, on the dual side
    (the direction where ``conv_direct.takes`` has it: after the operands)."""
    return enabled and has_dual(geom) and fewer_rows_on_dual(weight, direction, need_dx, need_dw)


def has_dual(geom):
    """Stride 1, one group and padding ≤ d·(k-1) (so the dual's padding is not negative)."""
    return (geom.stride == (1, 1) and geom.groups == 1
            and all(p <= d * (k - 1) for p, d, k in zip(geom.padding, geom.dilation, geom.kernel)))


def fewer_rows_on_dual(weight, direction, need_dx=True, need_dw=True):
    """The row counts of the module docstring's table: True where the dual copies fewer."""
    f, c, k = weight.shape[0], weight.shape[1], weight.shape[2] * weight.shape[3]
    if direction == "forward":
        return f * k + c < c * k + f
    plain = f + (c * k if need_dx else 0) + (c * k if need_dw else 0)
    dual = f * k + (c if need_dw else 0)
    return dual < plain


def flipped_dual(weight, geom):
    """(V, its geometry): V = W rotated by 180° in space, in/out channels swapped,
    (F, C, kh, kw) -> (C, F, kh, kw); padding d·(k-1) - p."""
    xp = backend.get_array_module(weight)
    v = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    padding = tuple(d * (k - 1) - p for d, k, p in zip(geom.dilation, geom.kernel, geom.padding))
    return v, geom._replace(padding=padding)


def forward(x, weight, geom, bias):
    """conv2d(x, W) as conv_transpose(x, V) = col2im(Vᵀ @ x), plus the bias."""
    v, dual_geom = flipped_dual(weight, geom)
    oh, ow = (conv_output_size(s, k, 1, p, d) for s, k, p, d in
              zip(x.shape[2:], geom.kernel, geom.padding, geom.dilation))
    out = _conv_gemm_transposed(x, v, dual_geom, (x.shape[0], weight.shape[0], oh, ow))
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def backward(x, weight, grad_out, geom, need_dx, need_dw):
    """(dx, dW) of conv2d as the backward of conv_transpose(x, V): dx = V @ im2col(dy), and dV
    from the same im2col(dy); dW is dV flipped and swapped back."""
    v, dual_geom = flipped_dual(weight, geom)
    dx = dv = None
    if need_dx:
        result = _conv_gemm(grad_out, v, dual_geom, weight_grad_with=x if need_dw else None)
        dx, dv = result if need_dw else (result, None)
    elif need_dw:
        dv = _conv_weight_grad(grad_out, x, dual_geom, v)
    dw = None if dv is None else dv[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)     # V -> W
    return dx, dw
