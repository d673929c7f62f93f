"""The three chunked GEMMs that are all the arithmetic of conv2d and conv_transpose2d.

    _conv_gemm(image, W)                 out = W @ im2col(image)          (N, C, H, W) -> (N, F, oh, ow)
    _conv_gemm_transposed(grad, W)       image = col2im(Wᵀ @ rows(grad))  (N, F, oh, ow) -> (N, C, H, W)
    _conv_weight_grad(image, grad, W)    dW = Σ grad @ im2col(image)ᵀ     -> W's shape (F, C/G, kh, kw)

``rows(a)`` is a (N, F, oh, ow) array rearranged as the (F, N*oh*ow) matrix a GEMM produces
and consumes. Each helper cuts the batch into chunks whose column matrix stays under
``kernels.im2col.MAX_COLUMN_BYTES`` and writes it into a reused buffer (``workspace``), so the
columns of the whole batch are never built. A backward pass that needs two of the products
from the same columns asks one helper for both (``weight_grad_with=``). Which helper plays
which role is decided in ``functional/conv.py``, which also validated the geometry once
(``kernels.im2col.check_geometry``): the helpers call ``im2col_into``/``col2im_into``, which do
not check it again chunk after chunk.
"""
from __future__ import annotations

from .. import backend
from ..kernels.im2col import (batch_chunks, col2im_into, column_workspace, conv_output_size,
                              im2col_into, workspace)


def _rows_of(a, name):
    """(n, F, oh, ow) -> (F, n*oh*ow): the layout of a GEMM result (a view when n == 1)."""
    n, f = a.shape[:2]
    if n == 1:
        return a.reshape(f, -1)
    rows = workspace(name, (f, n, a[0, 0].size), a.dtype, backend.get_array_module(a))
    rows[...] = a.reshape(n, f, -1).transpose(1, 0, 2)
    return rows.reshape(f, -1)


def _conv_gemm(image, weight, geom, bias=None, weight_grad_with=None):
    """out = W @ im2col(image), chunk by chunk.   image (N, C, H, W) -> out (N, F, oh, ow).

    The forward of conv2d, and the input gradient of conv_transpose2d. A transpose conv's
    backward also needs its weight gradient, Σ im2col(image) @ rows(other)ᵀ, from the *same*
    columns: pass the other side as ``weight_grad_with`` (N, C', oh, ow) to get
    ``(out, dW)`` with im2col done once.
    """
    xp = backend.get_array_module(image)
    n, c, h, w = image.shape
    f, g = weight.shape[0], geom.groups
    oh, ow = (conv_output_size(s, k, st, p, d) for s, k, st, p, d in
              zip((h, w), geom.kernel, geom.stride, geom.padding, geom.dilation))
    rows, pixels = weight[0].size * g, oh * ow                 # C*kh*kw, oh*ow
    w3 = weight.reshape(g, f // g, rows // g)
    out = xp.empty((n, f, oh, ow), dtype=image.dtype)
    grad_wt = None if weight_grad_with is None else _WeightGrad(weight, g)
    for chunk in batch_chunks(n, rows * pixels * image.itemsize, xp=xp):
        m = chunk.stop - chunk.start
        cols = im2col_into(image[chunk], *geom[:4], out=column_workspace(rows, m * pixels, image.dtype, xp))
        target = out[chunk]
        if m == 1:   # the GEMM result (F, oh*ow) already is the (1, F, oh, ow) output
            xp.matmul(w3, cols.reshape(g, rows // g, pixels), out=target.reshape(g, f // g, pixels))
            if bias is not None:
                target += bias.reshape(1, f, 1, 1)
        else:
            result = xp.matmul(w3, cols.reshape(g, rows // g, m * pixels),
                               out=workspace("rows", (g, f // g, m * pixels), image.dtype, xp))
            if bias is not None:   # on the contiguous result: faster than in the transposed copy
                per_filter = result.reshape(f, -1)
                per_filter += bias.reshape(f, 1)
            target.reshape(m, f, pixels)[...] = result.reshape(f, m, pixels).transpose(1, 0, 2)
        if grad_wt is not None:
            grad_wt.add(cols, _rows_of(weight_grad_with[chunk], "rows"))
    return out if grad_wt is None else (out, grad_wt.result())


def _conv_gemm_transposed(grad_out, weight, geom, image_shape, weight_grad_with=None):
    """image = col2im(Wᵀ @ grad_out), chunk by chunk.   (N, F, oh, ow) -> (N, C, H, W).

    The input gradient of conv2d, and the forward of conv_transpose2d. conv2d's backward also
    needs dW = Σ im2col(x) @ rows(grad_out)ᵀ: pass x as ``weight_grad_with`` to get
    ``(image, dW)`` with grad_out rearranged into rows once.
    """
    xp = backend.get_array_module(grad_out)
    n, f, oh, ow = grad_out.shape
    g = geom.groups
    rows, pixels = weight[0].size * g, oh * ow
    w3t = weight.reshape(g, f // g, rows // g).transpose(0, 2, 1)  # (G, C/G*kh*kw, F/G)
    image = xp.empty(image_shape, dtype=grad_out.dtype)
    grad_wt = None if weight_grad_with is None else _WeightGrad(weight, g)
    for chunk in batch_chunks(n, rows * pixels * grad_out.itemsize, xp=xp):
        m = chunk.stop - chunk.start
        g_rows = _rows_of(grad_out[chunk], "rows")
        cols = column_workspace(rows, m * pixels, grad_out.dtype, xp).reshape(g, rows // g, -1)
        xp.matmul(w3t, g_rows.reshape(g, f // g, m * pixels), out=cols)
        col2im_into(cols.reshape(rows, m * pixels), *geom[:4], out=image[chunk])
        if grad_wt is not None:   # the columns buffer is free again: im2col(x) goes there
            x_cols = im2col_into(weight_grad_with[chunk], *geom[:4],
                                 out=column_workspace(rows, m * pixels, grad_out.dtype, xp))
            grad_wt.add(x_cols, g_rows)
    return image if grad_wt is None else (image, grad_wt.result())


class _WeightGrad:
    """Accumulates dWᵀ = Σ over chunks of cols @ g_rowsᵀ, per group, for a weight of the shape
    of ``weight`` (F, C/G, kh, kw); cols (C*kh*kw, m*pixels), g_rows (F, m*pixels).

    Computed as dWᵀ, not dW = g_rows @ colsᵀ: the same products, but BLAS runs this
    orientation 1.2-1.9× faster at conv shapes (measured, docs/conv.md), and the small
    (C*kh*kw, F) result costs nothing to transpose back.
    """

    def __init__(self, weight, groups):
        xp = backend.get_array_module(weight)
        self.shape, self.groups, self.f = weight.shape, groups, weight.shape[0]
        rows = weight[0].size * groups                          # C*kh*kw
        self.sum = xp.zeros((groups, rows // groups, self.f // groups), dtype=weight.dtype)
        self.partial = workspace("weight_partial", self.sum.shape, weight.dtype, xp)

    def add(self, cols, g_rows):
        g = self.groups
        cols = cols.reshape(g, cols.shape[0] // g, -1)
        g_rows = g_rows.reshape(g, self.f // g, -1)
        backend.get_array_module(cols).matmul(cols, g_rows.transpose(0, 2, 1), out=self.partial)
        self.sum += self.partial

    def result(self):
        """dW in the weight's shape — a transposed view of the sum where it can be (one group):
        the caller's final layout (the dual's flip, the engine's gradient) is then one copy."""
        return self.sum.transpose(0, 2, 1).reshape(self.shape)


def _bias_grad(grad_out):
    """db = Σ of grad_out (N, F, oh, ow) over images and pixels -> (F,), as (N*F, P) @ ones(P)
    then a sum over N: a matrix-vector product that BLAS runs on every core, 2-6x faster
    than ``sum(axis=(0, 2, 3))`` here (0.13 -> 0.02 ms for 16x128x16x16)."""
    xp = backend.get_array_module(grad_out)
    n, f, oh, ow = grad_out.shape        # (sizes spelled out: n may be 0)
    per_image = grad_out.reshape(n * f, oh * ow) @ xp.ones(oh * ow, dtype=grad_out.dtype)
    return per_image.reshape(n, f).sum(axis=0)


def _conv_weight_grad(image, grad_out, geom, weight):
    """dW = Σ over the batch of grad_out @ im2col(image)ᵀ, chunk by chunk -> weight's shape
    (F, C/G, kh, kw) — on its own, when the input gradient is not needed."""
    xp = backend.get_array_module(image)
    n, rows, pixels = grad_out.shape[0], weight[0].size * geom.groups, grad_out[0, 0].size
    grad_wt = _WeightGrad(weight, geom.groups)
    for chunk in batch_chunks(n, rows * pixels * image.itemsize, xp=xp):
        m = chunk.stop - chunk.start
        cols = im2col_into(image[chunk], *geom[:4], out=column_workspace(rows, m * pixels, image.dtype, xp))
        grad_wt.add(cols, _rows_of(grad_out[chunk], "rows"))
    return grad_wt.result()
