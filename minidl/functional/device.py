"""Moving a tensor between devices and dtypes, differentiably: ``x.to(device, dtype)``.

The gradient goes back the way the value came: to the input's device, in the input's dtype.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function


class ToDeviceDtype(Function):
    """Move/cast: backward moves/casts the gradient back to where the input lived."""

    @staticmethod
    def forward(ctx, a, device, dtype):
        ctx.device, ctx.dtype = backend.device_of(a), a.dtype
        out = backend.to_device(a, device) if device is not None else a
        return out.astype(dtype, copy=False) if dtype is not None else out

    @staticmethod
    def backward(ctx, g):
        return backend.to_device(g, ctx.device).astype(ctx.dtype, copy=False), None, None


def to_device_dtype(a, device=None, dtype=None):
    if device is not None:
        device = backend.normalize_device(device)
    if (device is None or device == a.device) and (dtype is None or a.dtype == dtype):
        return a
    return ToDeviceDtype.apply(a, device, dtype)
