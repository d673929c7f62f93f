"""index_add: ``out[index[i]] += src[i]`` — the backward of gathering rows ``x[index]``.

A row gathered twice must receive two gradients, so a plain ``out[index] += src`` (which
writes each repeated row once) is wrong; ``numpy.add.at`` is right but slow. The kernel
(csrc/index_add/) gives each column to one thread, which walks the rows in order: the sum is
deterministic and needs no atomics.
"""
from __future__ import annotations

from .. import backend
from . import aligned, contiguous, launch, native_for


def index_add_reference(out, index, src):
    """The definition, in NumPy/CuPy: accumulate ``src[i]`` into ``out[index[i]]`` (in place)."""
    xp = backend.get_array_module(out)
    xp.add.at(out, index, src)
    return out


def index_add(out, index, src):
    """In place ``out[index[i]] += src[i]``; out (R, ...), index (n,) int64, src (n, ...)."""
    xp = backend.get_array_module(out)
    index = contiguous(index, xp, xp.int64)
    native = native_for(out)
    if (native is None or out.dtype.kind != "f" or not out.flags.c_contiguous or not aligned(out)
            or out.ndim == 0):
        return index_add_reference(out, index, src)
    src = contiguous(src, xp, out.dtype)
    if xp is backend.np:          # the binding checks shapes and index range
        launch(native, "index_add", (index, src, out))
        return out
    rows = out.shape[0]        # the CUDA binding cannot read device memory: checked here
    if index.ndim != 1 or src.shape != (index.shape[0],) + out.shape[1:]:
        raise ValueError(f"index_add: src of shape {src.shape} and index of shape {index.shape} "
                         f"do not match out of shape {out.shape}")
    if index.size and backend.any_true((index < -rows) | (index >= rows)):
        raise ValueError(f"index_add: index out of range for {rows} rows")
    launch(native, "index_add", (index, src, out),
           sizes=(index.shape[0], rows, out.size // max(rows, 1)))
    return out
