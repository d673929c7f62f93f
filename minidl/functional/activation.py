"""Activations: relu, leaky_relu, sigmoid, tanh, softmax, log_softmax.

Lecture idea: a nonlinearity's backward is the incoming gradient times its local slope.
ReLU passes the gradient where its input was positive and blocks it elsewhere — the rule
that guided backpropagation (lecture 12) modifies. softmax and log_softmax subtract the
row maximum before exponentiating, so large logits never overflow (the result is unchanged
because softmax(x) = softmax(x - c)).
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..kernels import relu as kernels
from .elementwise import as_float_input
from .reduce import normalize_axis
from ._args import number, tensor_args


class ReLU(Function):
    # The two passes are kernels (minidl/kernels/relu.py: the NumPy reference is the formula in
    # each comment; csrc/relu/ the C++ pass that gives the same values faster).
    @staticmethod
    def forward(ctx, x):
        out = kernels.relu_forward(x)              # max(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return kernels.relu_backward(g, out)       # g * (out > 0)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.slope = negative_slope
        return backend.get_array_module(x).where(x > 0, x, x * negative_slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return backend.get_array_module(g).where(x > 0, g, g * ctx.slope), None


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        xp = backend.get_array_module(x)
        # Two branches so exp never overflows: 1/(1+e^-x) for x>=0, e^x/(1+e^x) for x<0.
        e = xp.exp(-xp.abs(x))
        out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return g * s * (1 - s)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = backend.get_array_module(x).tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * (1 - t * t)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = backend.get_array_module(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        # Jacobian-vector product of softmax: s * (g - sum(g * s)).
        return s * (g - (g * s).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = backend.get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (logp,) = ctx.saved_tensors
        xp = backend.get_array_module(g)
        return g - xp.exp(logp) * g.sum(axis=ctx.axis, keepdims=True), None


@tensor_args("x")
def relu(x, inplace=False):
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility; minidl never mutates."""
    return ReLU.apply(x)


@tensor_args("x")
def leaky_relu(x, negative_slope=0.01, inplace=False):
    return LeakyReLU.apply(x, number(negative_slope, "negative_slope", "leaky_relu"))


@tensor_args("x")
def sigmoid(x):
    return Sigmoid.apply(as_float_input(x))


@tensor_args("x")
def tanh(x):
    return Tanh.apply(as_float_input(x))


def _softmax_axis(x, axis, dim, op):
    axis = dim if dim is not None else axis
    if axis is None:
        raise TypeError(f"{op} needs an axis: dim=1 (or axis=1) for (N, C) scores")
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{op}: dim must be one int, got {axis!r}")
    return normalize_axis(axis, x.ndim, f"{op}: dim")[0]


@tensor_args("x")
def softmax(x, axis=None, *, dim=None):
    return Softmax.apply(x, _softmax_axis(x, axis, dim, "softmax"))


@tensor_args("x")
def log_softmax(x, axis=None, *, dim=None):
    return LogSoftmax.apply(x, _softmax_axis(x, axis, dim, "log_softmax"))
