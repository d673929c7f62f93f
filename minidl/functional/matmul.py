"""Matrix multiplication (batched, broadcasting like ``numpy.matmul``), ``linear`` and ``gram``.

Lecture idea: for ``C = A @ B`` the gradients are again matrix products,
``dA = dC @ Bᵀ`` and ``dB = Aᵀ @ dC`` — the shapes tell you which one it must be. Every
fully connected layer and (after im2col) every convolution is this one op, so its speed is
the speed of the framework: it runs on BLAS (NumPy) or cuBLAS (CuPy).
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function, Tensor
from .elementwise import unbroadcast
from ._args import tensor_args


class MatMul(Function):
    """(..., n, k) @ (..., k, m) -> (..., n, m), both operands at least 2-D."""

    returns_fresh_grads = True     # every gradient is a new array (the engine may adopt it)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return backend.get_array_module(a, b).matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = backend.get_array_module(g)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = unbroadcast(xp.matmul(g, xp.swapaxes(b, -1, -2)), a.shape)
        if ctx.needs_input_grad[1]:
            db = unbroadcast(xp.matmul(xp.swapaxes(a, -1, -2), g), b.shape)
        return da, db


class Linear(Function):
    """y = x Wᵀ + b with W of shape (out, in) (PyTorch's layout), x of shape (N, in).

    One fused op instead of matmul + transpose + add: three GEMMs in total for forward and
    backward and no temporary graph nodes — the MLP benchmark depends on this.
    """

    returns_fresh_grads = True     # every gradient is a new array (the engine may adopt it)

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        dx = g @ weight if ctx.needs_input_grad[0] else None
        dw = g.T @ x if ctx.needs_input_grad[1] else None
        db = g.sum(axis=0) if ctx.needs_input_grad[2] else None
        return dx, dw, db


class Gram(Function):
    """G = X Xᵀ for X (N, C, L): (N, C, C), one product per image — the Gram matrix of style.

    One op instead of ``x @ x.transpose``: as two operands of a MatMul, X would get two
    gradients, ``dG @ X`` and ``(Xᵀ @ dG)ᵀ``, two products and a sum. They are one:
    dX = (dG + dGᵀ) X — a single product, half the backward's work (the Gatys and fast-style
    steps spend ~10 % of their time in Gram matrices: docs/performance.md).
    """

    returns_fresh_grads = True     # every gradient is a new array (the engine may adopt it)

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        xp = backend.get_array_module(x)
        return xp.matmul(x, xp.swapaxes(x, -1, -2))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        xp = backend.get_array_module(g)
        return xp.matmul(g + xp.swapaxes(g, -1, -2), x)


def _check_operand(t, name):
    if not isinstance(t, Tensor):
        raise TypeError(f"matmul: {name} must be a Tensor, got {type(t).__name__}")
    if t.ndim == 0:
        raise ValueError(f"matmul: {name} must have at least one dimension, got a scalar")


@tensor_args("a", "b")
def matmul(a, b):
    """``a @ b`` with NumPy's rules: 1-D operands are promoted to a row/column and the added
    axis is removed from the result; leading (batch) axes broadcast."""
    _check_operand(a, "a")
    _check_operand(b, "b")
    if a.device != b.device:
        raise ValueError(f"matmul: a is on {a.device} and b on {b.device}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul of shapes {a.shape} and {b.shape}: inner dimensions "
                         f"{a.shape[-1]} and {b.shape[-2 if b.ndim > 1 else 0]} differ")
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    try:
        out = MatMul.apply(a2, b2)
    except ValueError as e:  # non-broadcastable batch dimensions
        raise ValueError(f"matmul of shapes {a.shape} and {b.shape}: {e}") from None
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


@tensor_args("x", "weight", "bias", optional=("bias",))
def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` for x of shape (N, in), weight (out, in), bias (out,)."""
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be (out_features, in_features), got shape {weight.shape}")
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} needs shape (N, {weight.shape[1]}) "
                         f"for a weight of shape {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    return Linear.apply(x, weight, bias)


@tensor_args("x")
def gram(x):
    """``x @ x.transpose(-1, -2)`` for x of shape (N, C, L): the (N, C, C) Gram matrices."""
    if x.ndim != 3:
        raise ValueError(f"gram: x must have shape (N, C, L), got {x.shape}")
    return Gram.apply(x)
