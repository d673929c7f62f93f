"""Argument handling shared by the detection ops: Tensor-or-array in, same kind out, and the
checks that turn bad boxes into a ValueError naming the argument (never a crash in a kernel).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..pairs import as_pair


def unwrap(x, name):
    """(array, was_tensor) for a Tensor, a NumPy/CuPy array or Python data."""
    if isinstance(x, Tensor):
        return x.data, True
    if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
        return x, False
    try:
        return backend.as_array(x), False
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name}: expected a Tensor or an array, got {type(x).__name__}") from error


def like(array, was_tensor):
    """Return the result as a Tensor when the input was one (not differentiable), else the array."""
    return Tensor._wrap(array) if was_tensor else array


def boxes_array(boxes, name, float_only=True):
    """boxes as an (N, 4) array; a TypeError for non-numeric data, ValueError for other shapes."""
    array, was_tensor = unwrap(boxes, name)
    if float_only and array.dtype.kind != "f":
        raise TypeError(f"{name}: expected floating-point boxes, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4) = (x1, y1, x2, y2) per box, "
                         f"got {tuple(array.shape)}")
    return array, was_tensor


def upcast(array):
    """The array in a type wide enough for box arithmetic (as torchvision's ``_upcast``).

    Areas are products of two sides: in float16 a 256 × 256 box already overflows 65504, and
    in int8/uint8 a side of 128 wraps. Float16 boxes compute in float32, integer and bool boxes
    in int64 (unsigned ones too: ``x2 - x1`` of an inverted uint8 box would wrap to a huge
    width); float32/float64 stay as they are.
    """
    xp = backend.get_array_module(array)
    if array.dtype.kind == "f" and array.dtype.itemsize < 4:
        return array.astype(xp.float32)
    if array.dtype.kind in "iub":
        return array.astype(xp.int64)
    return array


def raise_first_failed(checks):
    """checks: ``[(bad, message), ...]`` with boolean arrays on one device. All of them are read
    at once (on a GPU each read waits for the queued work: one wait, not one per check); a
    ValueError carries the message of the first check whose ``bad`` holds a True."""
    if not checks:
        return
    xp = backend.get_array_module(checks[0][0])
    flags = xp.stack([xp.any(bad) for bad, _ in checks])
    if backend.any_true(flags):
        failed = backend.to_numpy(flags)              # the error path: a second read is fine
        raise ValueError(next(message for (_, message), f in zip(checks, failed) if f))


def finite_check(array, name):
    """The check that ``array`` holds no NaN or ±inf (they would make every comparison lie)."""
    xp = backend.get_array_module(array)
    return ~xp.isfinite(array), f"{name} contains NaN or inf; boxes and scores must be finite"


def check_finite(array, name):
    """ValueError when the array holds NaN or ±inf."""
    bad, message = finite_check(array, name)
    if backend.any_true(bad):
        raise ValueError(message)


def check_number(value, name, minimum=None):
    """A finite real number (optionally >= minimum), returned as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def size_pair(value, name):
    """An image or feature-map size (height, width): a pair of non-negative numbers -> floats."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (height, width), got {value!r}")
    return tuple(check_number(v, f"{name}[{i}]", minimum=0.0) for i, v in enumerate(value))


def convert_boxes_to_roi_format(boxes, dtype, xp):
    """A list of per-image (Ki, 4) boxes -> one (K, 5) array whose column 0 is the image index."""
    parts = []
    for i, b in enumerate(boxes):
        b, _ = boxes_array(b, f"boxes[{i}]", float_only=False)
        b = backend.to_device(b, "cuda" if xp is not np else "cpu").astype(dtype, copy=False)
        parts.append(xp.concatenate([xp.full((b.shape[0], 1), i, dtype=dtype), b], axis=1))
    return xp.concatenate(parts, axis=0) if parts else xp.zeros((0, 5), dtype=dtype)


def roi_inputs(input, boxes, output_size, spatial_scale, op):
    """Validate the arguments of roi_pool / roi_align -> (input array, rois (K, 5), (ph, pw), scale).

    rois are cast to the input's dtype and moved to its device; batch indices must be integers
    in [0, N) and every coordinate finite.
    """
    x, _ = unwrap(input, "input")
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}")
    xp = backend.get_array_module(x)
    if isinstance(boxes, (list, tuple)):
        rois = convert_boxes_to_roi_format(boxes, x.dtype, xp)
    else:
        rois, _ = unwrap(boxes, "boxes")
        if rois.ndim != 2 or rois.shape[1] != 5:
            raise ValueError(f"{op}: boxes must be a (K, 5) array of (batch index, x1, y1, x2, y2) "
                             f"or a list of (Ki, 4) boxes, got shape {tuple(rois.shape)}")
        if rois.dtype.kind not in "fiu":
            raise TypeError(f"{op}: boxes must be numeric, got dtype {rois.dtype}")
        rois = backend.to_device(rois, "cuda" if xp is not np else "cpu").astype(x.dtype, copy=False)
    batch = rois[:, 0]
    raise_first_failed([finite_check(rois, f"{op}: boxes"),
                        ((batch < 0) | (batch >= x.shape[0]) | (batch != xp.floor(batch)),
                         f"{op}: boxes[:, 0] must be integer batch indices in [0, {x.shape[0]}) "
                         f"for an input batch of {x.shape[0]}")])
    size = as_pair(output_size, f"{op}: output_size", 1)
    scale = check_number(spatial_scale, f"{op}: spatial_scale", minimum=0.0)
    return x, rois, size, scale
