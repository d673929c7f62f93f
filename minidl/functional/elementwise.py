"""Elementwise arithmetic: + - * / neg pow exp log sqrt abs (select.py: clip, maximum, where).

Lecture idea: backpropagation is the chain rule applied one small op at a time. Each
Function below is a "gate": forward computes the value, backward multiplies the incoming
gradient by the local derivative. Binary ops broadcast like NumPy, so their backward has to
*sum* the gradient over the broadcast dimensions to get back to each operand's shape
(``unbroadcast``).
"""
from __future__ import annotations

import numbers

from .. import backend
from ..autograd import Function, Tensor
from ._args import tensor, tensor_args


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: undo NumPy broadcasting in the backward pass.

    Broadcasting (3,1) against (3,4) copies the operand 4 times; each copy receives a
    gradient, and the operand's gradient is their sum.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    g = grad.sum(axis=axes, keepdims=True) if axes else grad
    return g.reshape(shape)


def _shape(a):
    return getattr(a, "shape", ())


def _operand(x, like, name="operand", op="elementwise op"):
    """Tensors pass through; Python real numbers stay scalars (they adopt the other operand's
    dtype); arrays and lists become Tensors on the device of ``like``; anything else (None, a
    string, a complex number) is a TypeError naming the operand."""
    if isinstance(x, Tensor) or (isinstance(x, numbers.Real) and not isinstance(x, str)):
        return x
    x = tensor(x, name, op)                         # checks the kind and dtype
    ref = like.data if isinstance(like, Tensor) else like
    return Tensor(backend.get_array_module(ref).asarray(x.data))


def _binary(fn, a, b, *options, op=None):
    op = op or fn.__name__.lower()
    if not isinstance(a, Tensor):
        a = _operand(a, b, "a", op)
    if not isinstance(b, Tensor):
        b = _operand(b, a, "b", op)
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.device != b.device:
        raise ValueError(f"operands are on different devices: {a.device} and {b.device}")
    try:
        return fn.apply(a, b, *options)
    except ValueError as error:          # NumPy's message names no argument: say which op
        if "broadcast" not in str(error):
            raise
        raise ValueError(f"{op}: a of shape {_shape(a)} and b of shape {_shape(b)} do not "
                         f"broadcast to one shape") from None


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = _shape(a), _shape(b)
        return a + b

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[1])


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = _shape(a), _shape(b)
        return a - b

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(-g, ctx.shapes[1])


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        da = unbroadcast(g * b, _shape(a)) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * a, _shape(b)) if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        da = unbroadcast(g / b, _shape(a)) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-g * a / (b * b), _shape(b)) if ctx.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """a ** b for a tensor base; b is a tensor or a number. d/da = b a^(b-1), d/db = a^b log a."""

    @staticmethod
    def forward(ctx, a, b):
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        xp = backend.get_array_module(a)
        da = None
        if ctx.needs_input_grad[0]:
            # b = 0: a^0 = 1 is constant, so d/da = 0 — also at a = 0, where b·a^(b−1) = 0·∞ = NaN
            base = xp.where(b == 0, 1, a)              # 1^(−1) = 1: no ∞ computed where b = 0
            local = xp.where(b == 0, 0, b * base ** (b - 1))
            da = unbroadcast(g * local, _shape(a))
        db = None
        if ctx.needs_input_grad[1]:
            safe = xp.where(a > 0, a, 1)           # a^b log(a) is taken as 0 where a <= 0
            db = unbroadcast(g * out * xp.log(safe), _shape(b))
        return da, db


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = backend.get_array_module(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved_tensors[0]


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return backend.get_array_module(a).log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved_tensors[0]


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = backend.get_array_module(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved_tensors[0])


class Abs(Function):
    """|a|; the subgradient at 0 is taken as 0 (``sign(0) = 0``), as in PyTorch."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return backend.get_array_module(a).abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * backend.get_array_module(g).sign(ctx.saved_tensors[0])


# ---- the functional API ------------------------------------------------------------------
def add(a, b):
    return _binary(Add, a, b)


def sub(a, b):
    return _binary(Sub, a, b)


def mul(a, b):
    return _binary(Mul, a, b)


def div(a, b):
    return _binary(Div, a, b)


@tensor_args("a")
def neg(a):
    return Neg.apply(a)


def pow(a, exponent):  # noqa: A001 (mirrors torch.pow)
    """``a ** exponent``; a number base is turned into a tensor like ``exponent``."""
    if isinstance(a, numbers.Real) and isinstance(exponent, Tensor):
        a = Tensor(backend.get_array_module(exponent.data).asarray(a, dtype=exponent.dtype))
    return _binary(Pow, a, exponent)


def as_float_input(a):
    """Integer or bool input to a floating-point function (exp, log, sqrt, sigmoid, tanh) becomes
    the default float dtype first, as in PyTorch: computed in its own dtype, sigmoid of an int
    array would round to 0/1 and exp of a bool array would come out as float16."""
    data = a.data if isinstance(a, Tensor) else a
    kind = getattr(getattr(data, "dtype", None), "kind", None)
    if kind is None:                                   # Python numbers and lists
        data = backend.get_array_module(data).asarray(data) if hasattr(data, "__array__") else data
        kind = getattr(getattr(data, "dtype", None), "kind", "f")
    if kind in "biu":                                  # ints and bools carry no gradient
        return Tensor(data.astype(backend.default_dtype))
    return a


@tensor_args("a")
def exp(a):
    return Exp.apply(as_float_input(a))


@tensor_args("a")
def log(a):
    return Log.apply(as_float_input(a))


@tensor_args("a")
def sqrt(a):
    return Sqrt.apply(as_float_input(a))


@tensor_args("a")
def abs(a):  # noqa: A001
    return Abs.apply(a)
