"""Ops that pick, per element, one of their inputs: clip, maximum / minimum, where.

Lecture idea (backprop "gates"): a max gate is a *gradient router* — the gradient goes to the
input that was chosen and the other gets none, as a ReLU (max(0, x)) passes it only where x > 0.
Ties and NaN follow PyTorch's rules, written out at each Function.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function, Tensor
from ._args import number, tensor_args
from .elementwise import _binary, _operand, _shape, unbroadcast


class Clip(Function):
    """clip(a, low, high); the gradient flows only where low <= a <= high (inclusive, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a, low, high):
        xp = backend.get_array_module(a)
        ctx.save_for_backward(a)
        ctx.bounds = low, high
        return xp.clip(a, low, high)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        low, high = ctx.bounds
        keep = backend.get_array_module(a).ones(a.shape, dtype=bool)
        if low is not None:
            keep &= a >= low
        if high is not None:
            keep &= a <= high
        return g * keep, None, None


def _chooses_a(a, b, pick_a, xp):
    """Where maximum/minimum takes ``a``: where ``pick_a(a, b)`` holds, or where ``a`` is NaN.

    NaN propagates (as in NumPy and PyTorch): a comparison with NaN is False, so a plain
    ``where(a > b, a, b)`` would silently drop a NaN ``a`` and return ``b``. When ``b`` is NaN,
    ``pick_a`` is False and ``b`` (the NaN) is taken already."""
    return pick_a(a, b) | (a != a)          # a != a holds exactly where a is NaN


class _Select(Function):
    """maximum / minimum: the gradient goes to the chosen operand; ties split it in half.

    PyTorch's rule, exactly: an operand gets no gradient only where the *other* one strictly
    wins. So where a NaN is involved (no comparison holds) both operands receive it in full —
    the output is NaN either way, and this keeps the NaN visible in both gradients."""

    @staticmethod
    def forward(ctx, a, b, pick_a):
        xp = backend.get_array_module(a, b)
        ctx.save_for_backward(a, b)
        ctx.pick_a = pick_a
        return xp.where(_chooses_a(a, b, pick_a, xp), a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = backend.get_array_module(g)
        tie = a == b
        wa = xp.where(tie, 0.5, ~ctx.pick_a(b, a)).astype(g.dtype)     # 0 where b strictly wins
        wb = xp.where(tie, 0.5, ~ctx.pick_a(a, b)).astype(g.dtype)     # 0 where a strictly wins
        return unbroadcast(g * wa, _shape(a)), unbroadcast(g * wb, _shape(b)), None


class Where(Function):
    """where(cond, a, b): the gradient goes to a where cond holds and to b elsewhere."""

    @staticmethod
    def forward(ctx, cond, a, b):
        xp = backend.get_array_module(cond, a, b)
        ctx.cond = cond
        ctx.shapes = _shape(a), _shape(b)
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        zero = g.dtype.type(0)
        xp = backend.get_array_module(g)
        return (None, unbroadcast(xp.where(ctx.cond, g, zero), ctx.shapes[0]),
                unbroadcast(xp.where(ctx.cond, zero, g), ctx.shapes[1]))


# ---- the functional API ------------------------------------------------------------------
@tensor_args("a")
def clip(a, min=None, max=None):  # noqa: A002 (torch.clamp's argument names)
    if min is None and max is None:
        raise ValueError("clip needs at least one of min= and max=")
    for name, bound in (("min", min), ("max", max)):     # checked, passed as given (ints stay ints)
        if bound is not None:
            number(bound, name, "clip", allow_inf=True)
    return Clip.apply(a, min, max)


clamp = clip


def _greater(x, y):
    return x > y


def _less(x, y):
    return x < y


def maximum(a, b):
    return _binary(_Select, a, b, _greater, op="maximum")


def minimum(a, b):
    return _binary(_Select, a, b, _less, op="minimum")


@tensor_args("condition")
def where(condition, a, b):
    """Elementwise ``a if condition else b`` (torch.where); condition is a bool array/Tensor."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    like = a if isinstance(a, Tensor) else b
    if not isinstance(a, Tensor):
        a = _operand(a, like, "a", "where")
    if not isinstance(b, Tensor):
        b = _operand(b, like, "b", "where")
    shapes = (_shape(cond), _shape(a), _shape(b))
    try:
        return Where.apply(cond, a, b)
    except ValueError as error:
        if "broadcast" not in str(error):
            raise
        raise ValueError(f"where: condition, a and b of shapes {shapes} do not broadcast to one "
                         f"shape") from None
