"""Weight initialization: Kaiming (He) and Xavier (Glorot), uniform and normal.

Lecture idea: weights must start at a scale that keeps activations from vanishing or exploding
through many layers. Xavier keeps the variance for tanh-like layers (Var(w) = 2 / (fan_in +
fan_out)); Kaiming doubles it for ReLU, which zeroes half of its inputs (Var(w) = 2 / fan_in).
Every function takes an explicit ``rng`` (numpy Generator or seed); results are reproducible.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend


def fan_in_out(shape):
    """(fan_in, fan_out) of a weight: Linear (out, in); Conv (F, C, kh, kw) counts C*kh*kw in."""
    if len(shape) < 2:
        raise ValueError(f"fan in/out needs a weight with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _gain(nonlinearity, a=0.0):
    gains = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0),
             "leaky_relu": math.sqrt(2.0 / (1 + a * a))}
    if nonlinearity not in gains:
        raise ValueError(f"nonlinearity must be one of {sorted(gains)}, got {nonlinearity!r}")
    return gains[nonlinearity]


def _fill(tensor, values):
    tensor.data = backend.to_device(values.astype(tensor.dtype), tensor.device)
    return tensor


def uniform_(tensor, a=0.0, b=1.0, rng=None):
    return _fill(tensor, backend.get_rng(rng).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    return _fill(tensor, backend.get_rng(rng).normal(mean, std, tensor.shape))


def zeros_(tensor):
    return _fill(tensor, np.zeros(tensor.shape))


def ones_(tensor):
    return _fill(tensor, np.ones(tensor.shape))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    fan = fan_in_out(tensor.shape)[0 if mode == "fan_in" else 1]
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, rng)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    fan = fan_in_out(tensor.shape)[0 if mode == "fan_in" else 1]
    return normal_(tensor, 0.0, _gain(nonlinearity, a) / math.sqrt(fan), rng)


def xavier_uniform_(tensor, gain=1.0, rng=None):
    fan_in, fan_out = fan_in_out(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng)


def xavier_normal_(tensor, gain=1.0, rng=None):
    fan_in, fan_out = fan_in_out(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def default_init_(weight, bias=None, rng=None):
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=√5), i.e. U(±1/√fan_in), and
    the bias from U(±1/√fan_in). Layers call this so a new layer matches PyTorch's scale."""
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        bound = 1 / math.sqrt(fan_in_out(weight.shape)[0])
        uniform_(bias, -bound, bound, rng)
