"""Basic layers: Linear, Sequential, activations, Dropout, Flatten, Identity.

Each layer is a Module whose ``forward`` calls one function of ``minidl.functional`` — the
layer only holds the parameters and the options, the math lives in the Function.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import backend
from .. import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x Wᵀ + b; weight (out_features, in_features), bias (out_features,) — PyTorch's layout.

    Input (N, in_features) or (N, *, in_features): extra axes are flattened and restored.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=None):
        super().__init__()
        for value, name in ((in_features, "in_features"), (out_features, "out_features")):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Linear: {name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        dtype = dtype or backend.default_dtype
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty(out_features, dtype=dtype)) if bias else None
        init.default_init_(self.weight, self.bias, rng)

    def forward(self, x):
        if x.ndim == 2:
            return F.linear(x, self.weight, self.bias)
        lead = x.shape[:-1]
        return F.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias).reshape(*lead, self.out_features)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; ``Sequential(a, b)`` or ``Sequential(OrderedDict(name=a, ...))``.
    Children are named "0", "1", ... (or by the dict), so ``model[1]`` and ``len(model)`` work."""

    def __init__(self, *modules):
        super().__init__()
        items = modules[0].items() if len(modules) == 1 and isinstance(modules[0], OrderedDict) \
            else ((str(i), m) for i, m in enumerate(modules))
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {name!r} is a {type(m).__name__}, not a Module")
            self.add_module(name, m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return Sequential(*mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of Modules whose parameters are registered (children "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Dropout(Module):
    """Inverted dropout in training mode, identity in eval mode (``model.eval()``)."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if not isinstance(p, (int, float, np.floating)) or isinstance(p, bool) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a number in [0, 1), got {p!r}")
        self.p, self.rng = p, rng

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Flatten axes start_dim..end_dim (default: everything after the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)


class Identity(Module):
    def forward(self, x):
        return x
