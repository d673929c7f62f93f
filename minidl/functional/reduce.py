"""Reductions: sum, mean, max, min, var (over axes, with keepdims) and argmax/argmin.

Lecture idea: a reduction's backward *broadcasts* the incoming gradient back over the axes
that were reduced (sum copies it, mean copies it divided by the count, max routes it to the
winners). The axis is the first positional argument (``axis=``; PyTorch's ``dim=`` and
``keepdim=`` are accepted too).
"""
from __future__ import annotations

import builtins

from .. import backend
from ..autograd import Function, Tensor
from .elementwise import Sqrt
from ._args import tensor_args


def normalize_axis(axis, ndim, name="axis"):
    """Return a sorted tuple of non-negative axes (all axes for ``None``); check the range."""
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, (int, tuple, list)) or isinstance(axis, bool):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {axis!r}")
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, int) or isinstance(a, bool):
            raise TypeError(f"{name} must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"{name}={a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} repeats an axis: {axis!r}")
    return tuple(sorted(out))


def _single_axis(axis, ndim, op):
    """argmax/argmin take one axis (NumPy's rule), checked like the others."""
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int or None, got {axis!r}")
    return normalize_axis(axis, ndim, f"{op}: axis")[0]


def _options(axis, dim, keepdims, keepdim):
    """Merge the NumPy-style and PyTorch-style spellings of the reduction arguments."""
    if dim is not None:
        if axis is not None:
            raise TypeError("pass either axis= or dim=, not both")
        axis = dim
    return axis, bool(keepdims or keepdim)


def _expand(g, shape, axes, keepdims):
    """Give the reduced gradient back its reduced axes (size 1) so it broadcasts over ``shape``."""
    if not keepdims:
        full = list(shape)
        for a in axes:
            full[a] = 1
        g = g.reshape(full)
    return g


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, axes, keepdims
        return a.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        xp = backend.get_array_module(g)
        return xp.broadcast_to(_expand(g, ctx.shape, ctx.axes, ctx.keepdims), ctx.shape).copy(), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, axes, keepdims
        return a.mean(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        xp = backend.get_array_module(g)
        count = 1
        for a in ctx.axes:
            count *= ctx.shape[a]
        g = _expand(g, ctx.shape, ctx.axes, ctx.keepdims) / count
        return xp.broadcast_to(g, ctx.shape).copy(), None, None


class MaxMin(Function):
    """max/min over axes. Ties share the gradient equally (the average of the subgradients;
    PyTorch's ``amax`` does the same)."""

    @staticmethod
    def forward(ctx, a, axes, keepdims, largest):
        out = a.max(axis=axes, keepdims=True) if largest else a.min(axis=axes, keepdims=True)
        ctx.save_for_backward(a, out)
        ctx.axes, ctx.keepdims = axes, keepdims
        return out if keepdims else out.reshape([n for i, n in enumerate(a.shape) if i not in axes])

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved_tensors
        winners = (a == out).astype(g.dtype)
        winners /= winners.sum(axis=ctx.axes, keepdims=True)
        return winners * _expand(g, a.shape, ctx.axes, ctx.keepdims), None, None, None


class Var(Function):
    """Variance over axes; ``unbiased=True`` divides by n-1 (torch.var's default), else by n."""

    @staticmethod
    def forward(ctx, a, axes, keepdims, unbiased):
        n = 1
        for ax in axes:
            n *= a.shape[ax]
        denom = n - 1 if unbiased else n
        if denom <= 0:
            raise ValueError(f"var over {n} element(s) with unbiased={unbiased} divides by {denom}")
        centered = a - a.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdims, ctx.denom = axes, keepdims, denom
        return (centered * centered).sum(axis=axes, keepdims=keepdims) / denom

    @staticmethod
    def backward(ctx, g):
        (centered,) = ctx.saved_tensors
        # d/dx_i sum_j (x_j - mean)^2 / d = 2 (x_i - mean) / d  (the mean's own terms sum to 0)
        return 2 * centered * _expand(g, centered.shape, ctx.axes, ctx.keepdims) / ctx.denom, None, None, None


def _reduce(fn, x, axis, dim, keepdims, keepdim, *extra, op):
    axis, keepdims = _options(axis, dim, keepdims, keepdim)
    name = f"{op}: {'dim' if dim is not None else 'axis'}"
    return fn.apply(x, normalize_axis(axis, x.ndim, name), keepdims, *extra)


@tensor_args("x")
def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=False):  # noqa: A001
    return _reduce(Sum, x, axis, dim, keepdims, keepdim, op="sum")


@tensor_args("x")
def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    return _reduce(Mean, x, axis, dim, keepdims, keepdim, op="mean")


@tensor_args("x")
def max(x, axis=None, keepdims=False, *, dim=None, keepdim=False):  # noqa: A001
    """Maximum values over ``axis`` (values only; use ``argmax`` for the indices)."""
    return _reduce(MaxMin, x, axis, dim, keepdims, keepdim, True, op="max")


@tensor_args("x")
def min(x, axis=None, keepdims=False, *, dim=None, keepdim=False):  # noqa: A001
    return _reduce(MaxMin, x, axis, dim, keepdims, keepdim, False, op="min")


@tensor_args("x")
def var(x, axis=None, keepdims=False, unbiased=True, *, dim=None, keepdim=False):
    return _reduce(Var, x, axis, dim, keepdims, keepdim, unbiased, op="var")


class _SqrtOfVariance(Sqrt):
    """sqrt for ``std`` (``Sqrt``'s forward): where the variance is 0 (a constant slice)
    d sqrt(v)/dv = 1/(2·0) = ∞ would meet var's zero gradient and give ∞·0 = NaN; like PyTorch,
    that gradient is 0."""

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        xp = backend.get_array_module(out)
        return g / (2 * xp.where(out == 0, xp.inf, out))          # 1/∞ = 0 where std = 0


@tensor_args("x")
def std(x, axis=None, keepdims=False, unbiased=True, *, dim=None, keepdim=False):
    return _SqrtOfVariance.apply(var(x, axis, keepdims, unbiased, dim=dim, keepdim=keepdim))


@tensor_args("x")
def argmax(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    """Indices of the maxima (an int64 Tensor; not differentiable)."""
    axis, keepdims = _options(axis, dim, keepdims, keepdim)
    data = x.data if isinstance(x, Tensor) else x
    if axis is not None:
        axis = _single_axis(axis, data.ndim, "argmax")
    return Tensor(data.argmax(axis=axis, keepdims=keepdims))


@tensor_args("x")
def argmin(x, axis=None, keepdims=False, *, dim=None, keepdim=False):
    axis, keepdims = _options(axis, dim, keepdims, keepdim)
    data = x.data if isinstance(x, Tensor) else x
    if axis is not None:
        axis = _single_axis(axis, data.ndim, "argmin")
    return Tensor(data.argmin(axis=axis, keepdims=keepdims))
