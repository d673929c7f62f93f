"""Dropout: during training, zero each activation with probability p and scale the rest by 1/(1-p).

Lecture idea (regularization): the "inverted dropout" scaling keeps the expected activation
unchanged, so at test time the layer is the identity. The mask is drawn once in forward and
reused by backward: the gradient flows only through the units that were kept.
"""
from __future__ import annotations

import numbers

from .. import backend
from ..autograd import Function
from ._args import flag, tensor_args


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p, rng):
        xp = backend.get_array_module(x)
        keep = backend.random_uniform(x.shape, xp, x.dtype, rng) >= p
        ctx.mask = keep.astype(x.dtype) / (1 - p)
        return x * ctx.mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask, None, None


@tensor_args("x")
def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout; the identity when ``training`` is False or ``p == 0``.

    rng: a numpy.random.Generator or int seed for the CPU mask (default: minidl's generator).
    """
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise TypeError(f"dropout: p must be a number in [0, 1), got {p!r}")
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
    if not flag(training, "training", "dropout") or p == 0:
        return x
    return Dropout.apply(x, p, rng)
