"""Operators and methods of Tensor (``x + y``, ``x @ w``, ``x.sum(1)``, ``x.relu()``, ``x[i]``).

They are thin aliases of the functional API, attached here so that every op is *defined* in
exactly one place (its Function in minidl/functional) and ``grep "def relu"`` finds it.
"""
from __future__ import annotations

from ..autograd import Tensor
from . import activation as A
from . import elementwise as E
from . import select as Sel
from .device import to_device_dtype
from .matmul import matmul
from . import reduce as R
from . import shape as S


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _compare(op):
    """Comparisons give a boolean Tensor (not differentiable), like PyTorch."""
    def method(self, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))
    return method


_METHODS = {
    "__add__": E.add, "__radd__": _reflected(E.add),
    "__sub__": E.sub, "__rsub__": _reflected(E.sub),
    "__mul__": E.mul, "__rmul__": _reflected(E.mul),
    "__truediv__": E.div, "__rtruediv__": _reflected(E.div),
    "__neg__": E.neg, "__pow__": E.pow, "__rpow__": _reflected(E.pow),
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__getitem__": S.getitem,
    "__lt__": _compare(lambda a, b: a < b), "__le__": _compare(lambda a, b: a <= b),
    "__gt__": _compare(lambda a, b: a > b), "__ge__": _compare(lambda a, b: a >= b),
    "__eq__": _compare(lambda a, b: a == b), "__ne__": _compare(lambda a, b: a != b),
    "exp": E.exp, "log": E.log, "sqrt": E.sqrt, "abs": E.abs, "clip": Sel.clip, "clamp": Sel.clip,
    "pow": E.pow, "maximum": Sel.maximum, "minimum": Sel.minimum,
    "sum": R.sum, "mean": R.mean, "max": R.max, "min": R.min, "var": R.var, "std": R.std,
    "argmax": R.argmax, "argmin": R.argmin,
    "matmul": matmul,
    "reshape": S.reshape, "view": S.reshape, "permute": S.permute, "transpose": S.transpose,
    "flatten": S.flatten, "squeeze": S.squeeze, "unsqueeze": S.unsqueeze,
    "expand": S.broadcast_to, "broadcast_to": S.broadcast_to,
    "relu": A.relu, "sigmoid": A.sigmoid, "tanh": A.tanh,
    "softmax": A.softmax, "log_softmax": A.log_softmax,
    "to": to_device_dtype,      # x.to(device=None, dtype=None): differentiable, the gradient moves back
}


def attach():
    for name, fn in _METHODS.items():
        setattr(Tensor, name, fn)
    # __eq__ is elementwise, so keep hashing by identity (tensors are dict keys in the engine).
    Tensor.__hash__ = object.__hash__
