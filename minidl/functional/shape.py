"""Shape ops: reshape, transpose/permute, flatten, indexing, concat, stack, pad, squeeze.

Lecture idea: these ops move numbers around without changing them, so their backward moves
the gradient back the same way — reshape reshapes it back, transpose applies the inverse
permutation, indexing *scatter-adds* it into a zero array (an index used twice receives two
gradients), concat splits it, pad crops it.
"""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from .. import backend
from ..kernels.index_add import index_add
from ..autograd import Function, Tensor
from ._args import axis as axis_arg
from ._args import int_tuple, number, tensor_args, tensor_list


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, axes):
        ctx.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))  # inverse permutation
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse), None


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return backend.get_array_module(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        from .elementwise import unbroadcast
        return unbroadcast(g, ctx.shape), None


def _is_basic_index(index):
    """True when indexing is a view (ints, slices, None, ...): no position repeats."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (numbers.Integral, slice, type(None), type(Ellipsis))) for i in items)


def _is_row_index(index):
    """A 1-D integer array selecting rows (the case the index_add kernel handles)."""
    return hasattr(index, "dtype") and index.ndim == 1 and index.dtype.kind in "iu"


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return a[index]

    @staticmethod
    def backward(ctx, g):
        xp = backend.get_array_module(g)
        full = xp.zeros(ctx.shape, dtype=g.dtype)
        if _is_basic_index(ctx.index):
            full[ctx.index] = g
        elif _is_row_index(ctx.index):
            # x[rows] with an integer array: rows may repeat, each repetition adds its gradient.
            index_add(full, ctx.index, g)
        else:
            # General integer/boolean indexing: add.at accumulates every repetition.
            xp.add.at(full, ctx.index, g)
        return full, None


class Concat(Function):
    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        ctx.splits = list(itertools.accumulate(a.shape[axis] for a in arrays))[:-1]
        return backend.get_array_module(*arrays).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        xp = backend.get_array_module(g)
        return (None, *xp.split(g, ctx.splits, axis=ctx.axis))


class Pad(Function):
    @staticmethod
    def forward(ctx, a, widths, value):
        ctx.crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, a.shape))
        return backend.get_array_module(a).pad(a, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.crop], None, None


# ---- the functional API ------------------------------------------------------------------
@tensor_args("x")
def reshape(x, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    target = _resolve_shape(x.shape, int_tuple(shape, "shape", "reshape"))
    return x if target == x.shape else Reshape.apply(x, target)


def _resolve_shape(old, new):
    """Fill in one -1 of ``new`` and check that the element counts agree."""
    size, known = math.prod(old), math.prod(n for n in new if n != -1)
    error = ValueError(f"cannot reshape a tensor of shape {old} ({size} elements) into shape {new}")
    if new.count(-1) > 1 or any(n < -1 for n in new):
        raise error
    if -1 in new:
        if known == 0 or size % known:
            raise error
        new = tuple(size // known if n == -1 else n for n in new)
    if math.prod(new) != size:
        raise error
    return new


@tensor_args("x")
def permute(x, *axes):
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    axes = int_tuple(axes, "axes", "permute")
    if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute needs a permutation of {x.ndim} axes, got {tuple(axes)}")
    return Permute.apply(x, tuple(a % x.ndim for a in axes))


@tensor_args("x")
def transpose(x, dim0=None, dim1=None):
    """Swap two axes (PyTorch); with no axes, reverse them all (NumPy's ``.T``)."""
    if dim0 is None and dim1 is None:
        return Permute.apply(x, tuple(reversed(range(x.ndim))))
    dim0, dim1 = axis_arg(dim0, x.ndim, "dim0", "transpose"), axis_arg(dim1, x.ndim, "dim1", "transpose")
    axes = list(range(x.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return Permute.apply(x, tuple(axes))


@tensor_args("x")
def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one (torch.flatten)."""
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = axis_arg(start_dim, x.ndim, "start_dim", "flatten"), axis_arg(end_dim, x.ndim, "end_dim", "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim ({start_dim}) comes after end_dim ({end_dim})")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


@tensor_args("x")
def squeeze(x, axis=None):
    if axis is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    a = axis_arg(axis, x.ndim, "axis", "squeeze")
    if x.ndim == 0 or x.shape[a] != 1:
        return x
    return reshape(x, x.shape[:a] + x.shape[a + 1:])


@tensor_args("x")
def unsqueeze(x, axis):
    a = axis_arg(axis, x.ndim + 1, "axis", "unsqueeze")    # one more place: after the last axis
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


@tensor_args("x")
def broadcast_to(x, shape):
    shape = int_tuple(shape, "shape", "broadcast_to")
    if len(shape) < x.ndim or any(old not in (1, new) for old, new in zip(x.shape[::-1], shape[::-1])):
        raise ValueError(f"broadcast_to: a tensor of shape {x.shape} cannot be broadcast to {shape}")
    return x if shape == x.shape else BroadcastTo.apply(x, shape)


expand = broadcast_to


def _raw_index(index):
    """Tensors inside an index become their arrays (integer or boolean)."""
    if isinstance(index, tuple):
        return tuple(_raw_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return tuple(index) if any(isinstance(i, (slice, type(None), type(Ellipsis))) for i in index) \
            else index                       # a list of integers: xp.asarray below
    return index


@tensor_args("x")
def getitem(x, index):
    """``x[index]`` with slices, integers, integer arrays and boolean masks."""
    xp = backend.get_array_module(x.data)

    def on_device(i):  # integer lists/arrays become index arrays of the data's module (GPU/CPU)
        return xp.asarray(i) if isinstance(i, (list, np.ndarray)) or backend.is_cupy_array(i) else i
    index = _raw_index(index)
    index = tuple(on_device(i) for i in index) if isinstance(index, tuple) else on_device(index)
    return GetItem.apply(x, index)


def _check_same(tensors, what):
    if not tensors:
        raise ValueError(f"{what} needs at least one tensor")
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"{what}: tensors are on different devices {sorted(devices)}")


def concat(tensors, axis=0, *, dim=None):
    tensors = tensor_list(tensors, "tensors", "concat")
    _check_same(tensors, "concat")
    if tensors[0].ndim == 0:
        raise ValueError("concat: zero-dimensional tensors cannot be concatenated (use stack)")
    axis = axis_arg(dim if dim is not None else axis, tensors[0].ndim, "dim", "concat")
    ref = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.ndim != len(ref) or any(a != b for k, (a, b) in enumerate(zip(t.shape, ref)) if k != axis):
            raise ValueError(f"concat along axis {axis}: tensor {i} has shape {t.shape}, "
                             f"incompatible with tensor 0's shape {ref}")
    return Concat.apply(axis, *tensors)


cat = concat


def stack(tensors, axis=0, *, dim=None):
    tensors = tensor_list(tensors, "tensors", "stack")
    _check_same(tensors, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack needs tensors of one shape, got {sorted(shapes)}")
    axis = axis_arg(dim if dim is not None else axis, tensors[0].ndim + 1, "dim", "stack")
    return concat([unsqueeze(t, axis) for t in tensors], axis)


@tensor_args("x")
def pad(x, pad, mode="constant", value=0.0):
    """Padding with PyTorch's ``pad`` order: (left, right, top, bottom, ...) from the *last* axis
    backwards, e.g. ``pad(x, (1, 1, 2, 2))`` pads W by 1 and H by 2.

    mode "constant" fills with ``value``; mode "reflect" mirrors the array at its edges without
    repeating the edge (row ``-k`` is row ``k``, as ``torch.nn.ReflectionPad2d``), so each pad
    must be smaller than its axis. Reflection is plain indexing with mirrored indices, so its
    gradient (each source pixel collects the gradients of all its copies) comes from indexing.
    """
    if mode not in ("constant", "reflect"):
        raise ValueError(f"pad supports mode='constant' or 'reflect', got {mode!r}")
    pad = int_tuple(pad, "pad", "pad")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad must hold (before, after) pairs for at most {x.ndim} axes, got {pad}")
    if any(int(p) != p or p < 0 for p in pad):
        raise ValueError(f"pad widths must be non-negative integers, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if mode == "reflect":
        return _reflect(x, widths)
    return Pad.apply(x, tuple(widths), number(value, "value", "pad", allow_inf=True))


def _reflect(x, widths):
    """x indexed, axis by axis, with mirrored indices: before, ..., 1, 0, 1, ..., n-1, n-2, ..."""
    xp = backend.get_array_module(x.data)
    for axis, (before, after) in enumerate(widths):
        if not before and not after:
            continue
        n = x.shape[axis]
        if max(before, after) >= n:
            raise ValueError(f"pad: reflection padding {(before, after)} must be smaller than the "
                             f"size {n} of axis {axis}")
        i = xp.abs(xp.arange(-before, n + after))
        x = x[(slice(None),) * axis + (n - 1 - xp.abs(n - 1 - i),)]
    return x
