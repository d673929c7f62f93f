"""Argument checks shared by the functional ops.

A bad argument should get a ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
wrong value) that names the op and the argument and says what was expected — not an
``AttributeError: 'str' object has no attribute 'ndim'`` from three calls deep. These helpers
are that first line of every public op; the Functions behind them can then assume their inputs.

What counts as a tensor input here: a ``Tensor``; a NumPy/CuPy array of bools, integers or
floats; or Python numbers and (rectangular) lists of them, which become arrays. Strings, None,
dicts, object and complex arrays are refused.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers

import numpy as np

from .. import backend
from ..autograd import Tensor

_REAL_KINDS = "biuf"          # bool, signed int, unsigned int, float


def _describe(value):
    return type(value).__name__


def tensor(value, name, op, optional=False):
    """``value`` as a Tensor the op can compute on (a constant unless it already was a Tensor).

    Tensors pass unchanged; real NumPy/CuPy arrays are wrapped without a copy (their dtype
    kept); numbers and lists become arrays first (floats as float32, as ``torch.tensor``);
    anything else is a TypeError naming ``op`` and ``name``. ``optional``: None is allowed too.
    """
    if value is None and optional:
        return None
    if isinstance(value, Tensor):
        data = value.data
    elif isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        data = value
    elif isinstance(value, (numbers.Real, list, tuple)) and not isinstance(value, str):
        try:
            data = backend.as_array(value)
        except (TypeError, ValueError) as error:      # ragged lists, lists of strings, ...
            raise TypeError(f"{op}: {name} must be a Tensor or an array of numbers, got a "
                            f"{_describe(value)} that is not a rectangular array of numbers "
                            f"({error})") from None
    else:
        raise TypeError(f"{op}: {name} must be a Tensor or an array of numbers, "
                        f"got {_describe(value)}")
    if data.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{op}: {name} must hold real numbers (bool, int or float), "
                        f"got dtype {data.dtype}")
    return value if isinstance(value, Tensor) else Tensor._wrap(data)


def tensor_args(*names, optional=()):
    """Decorator: check the parameters ``names`` of a public op with ``tensor`` on every call.

    The positions are looked up once, when the op is defined, so a call costs a few tuple
    lookups (ops run thousands of times per epoch). ``optional`` names may also be None.
    """
    def decorate(fn):
        params = list(inspect.signature(fn).parameters)
        positions = [(n, params.index(n)) for n in names]
        op = fn.__name__

        indices = [i for _, i in positions]

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            # Fast path: every checked argument was passed positionally as a Tensor (the
            # common case inside a model): nothing to check or convert.
            if len(args) > indices[-1] and all(isinstance(args[i], Tensor) for i in indices):
                return fn(*args, **kwargs)
            if positions:
                args = list(args)
                for name, i in positions:
                    if i < len(args):
                        args[i] = tensor(args[i], name, op, name in optional)
                    elif name in kwargs:
                        kwargs[name] = tensor(kwargs[name], name, op, name in optional)
            return fn(*args, **kwargs)
        return checked
    return decorate


def tensor_list(values, name, op):
    """A non-empty list/tuple of tensor inputs (for cat / stack)."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{op}: {name} must be a list or tuple of Tensors, got {_describe(values)}")
    if not values:
        raise ValueError(f"{op}: {name} must hold at least one Tensor")
    return [tensor(v, f"{name}[{i}]", op) for i, v in enumerate(values)]


def integer(value, name, op, minimum=None):
    """A Python/NumPy integer (not a bool), optionally >= minimum, as an int."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    return int(value)


def flag(value, name, op):
    """A yes/no option (True/False, or 0/1) as a bool; a dict or an array is not one."""
    if not isinstance(value, (bool, np.bool_)) and not (isinstance(value, numbers.Integral)
                                                        and value in (0, 1)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r:.60}")
    return bool(value)


def axis(value, ndim, name, op):
    """One axis of a tensor with ``ndim`` dimensions, in [-ndim, ndim) -> non-negative int.
    (``unsqueeze`` and ``stack`` pass ndim + 1: they insert an axis.)"""
    value = integer(value, name, op)
    if not -max(ndim, 1) <= value < max(ndim, 1):
        raise ValueError(f"{op}: {name}={value} is out of range for a tensor with {ndim} "
                         f"dimensions (expected {-max(ndim, 1)} <= {name} < {max(ndim, 1)})")
    return value % max(ndim, 1)


def number(value, name, op, minimum=None, maximum=None, allow_inf=False):
    """A finite real number (not a bool) in [minimum, maximum], as a float (±inf allowed too
    with ``allow_inf``; NaN never: it would make every comparison with it False)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{op}: {name} must be {'a number, not NaN' if allow_inf else 'finite'}, "
                         f"got {value}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{op}: {name} must be in [{minimum}, {maximum}], got {value}")
    return value


def int_tuple(value, name, op):
    """A sequence of ints (a shape, a permutation, pad widths) -> a tuple of ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{op}: {name} must be a tuple of ints, got {value!r}")
    return tuple(integer(v, f"{name}[{i}]", op) for i, v in enumerate(value))
