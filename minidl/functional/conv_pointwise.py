"""The fast lane of 1×1 convolutions: one matrix product per image, no column matrix.

The lesson is in conv.py (conv = W @ im2col(x)). A 1×1 convolution (stride 1, no padding) mixes
the channels of each pixel and nothing else, so for one image x[n], seen as a (C, H·W) matrix —
which is already how an (N, C, H, W) array lies in memory — it *is* the product

    y[n] (F, H·W) = W (F, C) @ x[n] (C, H·W)

and its im2col is the identity up to a reordering. The plain side still pays for that reordering:
im2col copies x into column rows (C, N·H·W), the GEMM's (F, N·H·W) result is transposed back to
(N, F, H·W), and the backward copies dy into rows and col2im's dx out of them again — four copies
of whole activations around products of a few multiply-adds per value (the FCN's 16 → 6 score
layer: 0.24 + 0.35 ms on the plain side, 0.05 ms per product here). This lane, behind one check
in ``Conv2d`` (``takes``), multiplies the images where they lie:

    forward   y[n]  = W @ x[n]                 (N, F, H·W)  one stacked matmul
    backward  dx[n] = Wᵀ @ dy[n]               (N, C, H·W)  one stacked matmul
              dW    = Σ_n dy[n] @ x[n]ᵀ        (F, C)       summed image by image (no (N, F, C) stack)

Only array-module calls (``xp.matmul``), so NumPy and CuPy arrays of any float dtype take the same
lane; the products are the plain side's, in another order of summation (tests/test_conv.py
compares the two). ``enabled = False`` switches the lane off.
"""
from __future__ import annotations

from .. import backend

#: False: 1×1 convolutions run on the plain side (or the dual side) of conv.py
enabled = True


def takes(geom):
    """A 1×1 kernel, stride 1, no padding, one group (dilation means nothing for one tap)."""
    return (enabled and geom.kernel == (1, 1) and geom.stride == (1, 1)
            and geom.padding == (0, 0) and geom.groups == 1)


def forward(x, weight, bias=None):
    """conv2d(x, weight, bias) for a weight (F, C, 1, 1): x (N, C, H, W) -> (N, F, H, W)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    f = weight.shape[0]
    out = xp.matmul(weight.reshape(f, c), x.reshape(n, c, h * w))           # (N, F, H·W)
    if bias is not None:
        out += bias.reshape(1, f, 1)
    return out.reshape(n, f, h, w)


def backward(x, weight, grad_out, need_dx=True, need_dw=True):
    """(dx, dW) of ``forward`` (None where not needed)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    f = weight.shape[0]
    dy = grad_out.reshape(n, f, h * w)
    dx = dw = None
    if need_dx:
        dx = xp.matmul(weight.reshape(f, c).T, dy).reshape(n, c, h, w)
    if need_dw:
        x_rows = x.reshape(n, c, h * w)
        dw = xp.zeros((f, c), dtype=x.dtype)
        product = xp.empty((f, c), dtype=x.dtype)
        for i in range(n):                  # Σ_n dy[n] @ x[n]ᵀ, one (F, C) product at a time
            xp.matmul(dy[i], x_rows[i].T, out=product)
            dw += product
        dw = dw.reshape(weight.shape)
    return dx, dw
