"""The one check for a layer's (height, width) hyper-parameters: ``as_pair``.

kernel_size, stride, padding, dilation, output_padding, output sizes and scale factors are
each "an int, or a pair of ints" in PyTorch's API; every layer, op and kernel of minidl reads
them through this function, so the rule and its error messages are the same everywhere.
"""
from __future__ import annotations

import numbers


def as_pair(value, name, minimum=0):
    """An int or a pair of ints (each >= ``minimum``) -> a tuple of two Python ints.

    TypeError when it is neither (a float, a string, a bool, three numbers); ValueError when a
    number is below ``minimum``. ``name`` is the argument's name, as the caller wrote it.
    """
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                   for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(values[0]), int(values[1])
