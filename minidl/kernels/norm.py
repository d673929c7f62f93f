"""norm: the four passes of batch / instance normalization (used by minidl/functional/norm.py).

x is (N, C, ...); its statistics are taken per *group* — channel c over (N, H, W) for batch
norm (C groups), plane (n, c) over (H, W) for instance norm (N·C groups, ``per_instance``):

    norm_statistics(x)                     mean, var (biased) per group
    norm_forward(x, mean, var, γ, β)       y = (x - mean) / sqrt(var + eps) · γ + β
    norm_backward_sums(dy, x, mean, var)   Σ dy and Σ dy·x_hat per group   (-> dβ, dγ)
    norm_backward_input(dy, x, ...)        dx = γ/σ · (dy - mean(dy) - x_hat · mean(dy·x_hat))
                                           (dx = γ/σ · dy when the statistics were fixed)
    norm_backward(dy, x, ...)              the last two for statistics from x (training), in one
                                           pass over the groups on the CPU (each group's arrays
                                           read the second time from cache)

A ReLU fused onto the output (``relu=True``; minidl.nn.fuse_norm_relu): the forward writes
max(y, 0) in the same pass, and the two backward passes take that output as ``relu_out`` and
read dy · (relu_out > 0) where they read dy — the ReLU's own formulas (kernels/relu.py): the
outputs equal normalization followed by ReLU bit for bit, the gradients up to the order of the
per-group sums, with one whole-array pass fewer each way.

The ``*_reference`` functions are the readable NumPy/CuPy definitions; the dispatchers run the
C++ kernel (csrc/norm/) on NumPy arrays and the CUDA one on CuPy arrays. Why kernels: in NumPy
these are ~10 whole-array passes and several new arrays per direction; the kernels read x two
or three times and write one array, and keep x instead of a normalized copy (docs/lecture8.md).
"""
from __future__ import annotations

import math

from .. import backend
from . import aligned, launch, native_for
from .relu import relu_backward_reference, relu_forward_reference


def _grouped(x, per_instance):
    """x (N, C, ...) -> a (N, C, P) view and the axes one group's values lie along."""
    return (x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:])),   # (not -1: N may be 0)
            (2,) if per_instance else (0, 2))


def _per_group(a, x, per_instance):
    """A (G,) vector broadcast against x's (N, C, P) view."""
    n, c = x.shape[:2]
    return a.reshape(n, c, 1) if per_instance else a.reshape(1, c, 1)


def _per_channel(a, c):
    return None if a is None else a.reshape(1, c, 1)


# ---- the NumPy references -----------------------------------------------------------------------
def norm_statistics_reference(x, per_instance):
    """Mean and biased variance of each group, the variance from the centred values (not
    E[x²] - E[x]², which cancels catastrophically in float32 when |mean| >> std)."""
    x3, axes = _grouped(x, per_instance)
    mean = x3.mean(axis=axes, keepdims=True)
    var = ((x3 - mean) ** 2).mean(axis=axes)
    return mean.reshape(-1), var.reshape(-1)


def _x_hat(x, mean, var, eps, per_instance):
    """x_hat = (x - mean) / sqrt(var + eps) in x's (N, C, P) view, and inv_std (G,)."""
    x3, _ = _grouped(x, per_instance)
    inv_std = 1 / backend.get_array_module(x).sqrt(var + eps)
    return (x3 - _per_group(mean, x, per_instance)) * _per_group(inv_std, x, per_instance), inv_std


def norm_forward_reference(x, mean, var, weight, bias, eps, per_instance, relu=False):
    out, _ = _x_hat(x, mean, var, eps, per_instance)
    if weight is not None:
        out = out * _per_channel(weight, x.shape[1])
    if bias is not None:
        out = out + _per_channel(bias, x.shape[1])
    out = out.reshape(x.shape)
    return relu_forward_reference(out) if relu else out


def _incoming_gradient(dy, relu_out):
    """dy, or dy gated by a fused ReLU's output (relu_out; None: no ReLU fused)."""
    return dy if relu_out is None else relu_backward_reference(dy, relu_out)


def norm_backward_sums_reference(dy, x, mean, var, eps, per_instance, relu_out=None):
    dy3, axes = _grouped(_incoming_gradient(dy, relu_out), per_instance)
    x_hat, _ = _x_hat(x, mean, var, eps, per_instance)
    return dy3.sum(axis=axes).reshape(-1), (dy3 * x_hat).sum(axis=axes).reshape(-1)


def norm_backward_input_reference(dy, x, mean, var, weight, eps, sum_dy, sum_dy_xhat,
                                  input_stats, per_instance, relu_out=None):
    dy3, axes = _grouped(_incoming_gradient(dy, relu_out), per_instance)
    x_hat, inv_std = _x_hat(x, mean, var, eps, per_instance)
    scale = _per_group(inv_std, x, per_instance)
    if weight is not None:
        scale = scale * _per_channel(weight, x.shape[1])
    if not input_stats:                      # fixed statistics: a plain per-channel affine map
        return (scale * dy3).reshape(x.shape)
    count = dy3.shape[2] * (1 if per_instance else dy3.shape[0])    # values per group
    mean_dy = _per_group(sum_dy / count, x, per_instance)
    mean_dy_xhat = _per_group(sum_dy_xhat / count, x, per_instance)
    return (scale * (dy3 - mean_dy - x_hat * mean_dy_xhat)).reshape(x.shape)


# ---- dispatch -----------------------------------------------------------------------------------
# (dtypes compared as dtypes: ``dtype.name`` is a Python-level property, ~2 µs a call, and this
# check runs three times per normalization per training step)
_FLOAT_DTYPES = (backend.np.dtype("float32"), backend.np.dtype("float64"))


def _native(x, *others):
    """The compiled module for these arrays, or None: float32/float64, C-contiguous and aligned,
    all alike."""
    native = native_for(x)
    arrays = (x,) + tuple(a for a in others if a is not None)
    if native is None or x.dtype not in _FLOAT_DTYPES or x.ndim < 2 or x.size == 0:
        return None
    if not all(a.dtype == x.dtype and a.flags.c_contiguous and aligned(a) for a in arrays):
        return None
    return native


def _groups(x, per_instance):
    return x.shape[0] * x.shape[1] if per_instance else x.shape[1]


def _plane(x):
    return x.size // (x.shape[0] * x.shape[1])


def _check_cuda(name, x, vectors, like):
    """The CUDA launchers take raw pointers: check here what the C++ binding checks on the CPU."""
    for arg, (a, length) in vectors.items():
        if a is not None and a.shape != (length,):
            raise ValueError(f"{name}: {arg} has shape {a.shape}, expected ({length},)")
    for arg, a in like.items():
        if a.shape != x.shape:
            raise ValueError(f"{name}: {arg} has shape {a.shape}, expected {x.shape}")


#: Whether CuPy arrays run the CUDA kernels' fused-ReLU form. Until a GPU run has checked it
#: (issue 15: tests/test_norm_kernels.py's CUDA tests), a ReLU fused onto the normalization runs
#: as its own pass on a GPU (CuPy's elementwise kernels) around the unfused CUDA kernels.
FUSED_RELU_ON_GPU = False


def _relu_not_fused_on_gpu(dy, relu_out):
    """(dy, relu_out) for the launch: on CuPy arrays, without FUSED_RELU_ON_GPU, dy gated here
    and no relu_out."""
    if relu_out is not None and backend.is_cupy_array(dy) and not FUSED_RELU_ON_GPU:
        return relu_backward_reference(dy, relu_out), None
    return dy, relu_out


def _like(**arrays):
    """The arrays that must have x's shape, for _check_cuda (an absent relu_out: None, left out)."""
    return {name: a for name, a in arrays.items() if a is not None}


def _sizes(x):
    """(batch, channels, plane) of x (N, C, ...): what the CUDA launchers are told."""
    return x.shape[0], x.shape[1], _plane(x)


# ---- batch norm on a GPU: through the planes ------------------------------------------------
# The CUDA reductions give one block to each group. Per instance that is N*C blocks; for batch
# norm only C (3-128 in the course's models) on a GPU of 132 multiprocessors, so most of it
# idles: measured on an H200, batch norm fwd+bwd of (32, 64, 64, 64) took 0.79 ms where
# instance norm took 0.24-0.34 (docs/gpu.md). So for large activations batch norm asks the
# per-plane kernels on a GPU and combines the N planes of each channel, exactly:
#   mean_c = mean over n of mean_nc                          (every plane has P values)
#   var_c  = mean over n of var_nc + mean over n of (mean_nc - mean_c)²
# (the variance of a union of equal-sized parts), and Σ over a channel = Σ over its planes.
# The combination costs ~8 more small launches, which only pay where the reduction itself is
# long: (32, 64, 64, 64) 0.79 -> 0.64 ms, but (16, 128, 32, 32) 0.39-0.57 -> 1.00 ms and the
# FCN's epoch (16 x 64 x 64 per channel) 436 -> 579 ms (one process each, docs/gpu.md).
PLANES_ROUTE_MIN_VALUES = 2**17          # values per channel (N*H*W) from which it is taken


def use_planes_for_batch_norm(x):
    """True where batch norm should go through the per-plane kernels: CuPy arrays with at
    least PLANES_ROUTE_MIN_VALUES values per channel in planes of at least 64."""
    return (backend.is_cupy_array(x) and _plane(x) >= 64
            and x.shape[0] * _plane(x) >= PLANES_ROUTE_MIN_VALUES)


def batch_statistics_by_planes(x):
    """Batch norm's (mean, var) (C,) from the per-plane statistics (see above)."""
    n, c = x.shape[:2]
    mean_p, var_p = norm_statistics(x, per_instance=True)
    mean_p, var_p = mean_p.reshape(n, c), var_p.reshape(n, c)
    mean = mean_p.mean(axis=0)
    return mean, var_p.mean(axis=0) + ((mean_p - mean) ** 2).mean(axis=0)


def batch_backward_sums_by_planes(dy, x, mean, var, eps, relu_out=None):
    """Batch norm's (Σ dy, Σ dy·x_hat) (C,) as sums of the per-plane sums: each plane is given
    its channel's mean and var (x_hat is the channel's), then the N planes are added."""
    xp = backend.get_array_module(x)
    n, c = x.shape[:2]
    _check_cuda("norm_backward_sums", x, {"mean": (mean, c), "var": (var, c)},
                _like(dy=dy, relu_out=relu_out))
    per_plane = [xp.ascontiguousarray(xp.broadcast_to(a, (n, c))).reshape(-1) for a in (mean, var)]
    sum_dy, sum_dy_xhat = norm_backward_sums(dy, x, *per_plane, eps, per_instance=True,
                                             relu_out=relu_out)
    return sum_dy.reshape(n, c).sum(axis=0), sum_dy_xhat.reshape(n, c).sum(axis=0)


def norm_statistics(x, per_instance):
    """(mean, var) of each group of x (N, C, ...): (C,) for batch norm, (N*C,) per instance."""
    native = _native(x)
    if native is None:
        return norm_statistics_reference(x, per_instance)
    if not per_instance and use_planes_for_batch_norm(x):
        return batch_statistics_by_planes(x)
    xp = backend.get_array_module(x)
    g = _groups(x, per_instance)
    mean, var = xp.empty(g, dtype=x.dtype), xp.empty(g, dtype=x.dtype)
    launch(native, "norm_statistics", (x, mean, var), sizes=_sizes(x), options=(per_instance,))
    return mean, var


def norm_forward(x, mean, var, weight, bias, eps, per_instance, relu=False):
    """y = (x - mean) / sqrt(var + eps) · weight + bias; mean, var (groups,); weight, bias (C,) or
    None. ``relu``: max(y, 0) instead (a fused ReLU)."""
    native = _native(x, mean, var, weight, bias)
    if native is None:
        return norm_forward_reference(x, mean, var, weight, bias, eps, per_instance, relu)
    if relu and backend.is_cupy_array(x) and not FUSED_RELU_ON_GPU:
        return relu_forward_reference(norm_forward(x, mean, var, weight, bias, eps, per_instance))
    xp = backend.get_array_module(x)
    out = xp.empty_like(x)
    if xp is not backend.np:
        g, c = _groups(x, per_instance), x.shape[1]
        _check_cuda("norm_forward", x, {"mean": (mean, g), "var": (var, g), "weight": (weight, c),
                                        "bias": (bias, c)}, {})
    launch(native, "norm_forward", (x, mean, var, weight, bias, out), sizes=_sizes(x),
           options=(eps, per_instance, relu))
    return out


def norm_backward_sums(dy, x, mean, var, eps, per_instance, relu_out=None):
    """(Σ dy, Σ dy·x_hat) over each group: dβ and dγ before summing groups into channels.
    ``relu_out``: the output of a fused ReLU (dy is gated by its sign), or None."""
    native = _native(x, dy, mean, var, relu_out)
    if native is None:
        return norm_backward_sums_reference(dy, x, mean, var, eps, per_instance, relu_out)
    dy, relu_out = _relu_not_fused_on_gpu(dy, relu_out)
    if not per_instance and use_planes_for_batch_norm(x):
        return batch_backward_sums_by_planes(dy, x, mean, var, eps, relu_out)
    xp = backend.get_array_module(x)
    g = _groups(x, per_instance)
    sum_dy, sum_dy_xhat = xp.empty(g, dtype=x.dtype), xp.empty(g, dtype=x.dtype)
    if xp is not backend.np:
        _check_cuda("norm_backward_sums", x, {"mean": (mean, g), "var": (var, g)},
                    _like(dy=dy, relu_out=relu_out))
    launch(native, "norm_backward_sums", (dy, relu_out, x, mean, var, sum_dy, sum_dy_xhat),
           sizes=_sizes(x), options=(eps, per_instance))
    return sum_dy, sum_dy_xhat


def norm_backward_input(dy, x, mean, var, weight, eps, sum_dy, sum_dy_xhat, input_stats,
                        per_instance, relu_out=None):
    """dx of the normalization (see the module docstring); sums from ``norm_backward_sums``
    (ignored when ``input_stats`` is False: fixed statistics); ``relu_out`` as there."""
    xp = backend.get_array_module(x)
    if sum_dy is None:                       # fixed statistics: the sums are not used
        sum_dy = sum_dy_xhat = xp.zeros(_groups(x, per_instance), dtype=x.dtype)
    native = _native(x, dy, mean, var, weight, sum_dy, sum_dy_xhat, relu_out)
    if native is None:
        return norm_backward_input_reference(dy, x, mean, var, weight, eps, sum_dy, sum_dy_xhat,
                                             input_stats, per_instance, relu_out)
    dy, relu_out = _relu_not_fused_on_gpu(dy, relu_out)
    dx = xp.empty_like(x)
    if xp is not backend.np:
        g, c = _groups(x, per_instance), x.shape[1]
        _check_cuda("norm_backward_input", x, {"mean": (mean, g), "var": (var, g),
                                               "weight": (weight, c), "sum_dy": (sum_dy, g),
                                               "sum_dy_xhat": (sum_dy_xhat, g)},
                    _like(dy=dy, relu_out=relu_out))
    launch(native, "norm_backward_input",
           (dy, relu_out, x, mean, var, weight, sum_dy, sum_dy_xhat, dx),
           sizes=_sizes(x), options=(eps, input_stats, per_instance))
    return dx


def norm_backward(dy, x, mean, var, weight, eps, per_instance, relu_out=None):
    """(dx, Σ dy, Σ dy·x_hat) of a normalization whose statistics came from x (training): what
    ``norm_backward_sums`` then ``norm_backward_input`` give, in one launch on the CPU, which
    computes each group's sums and then at once its dx, while the group's dy, x and relu_out are
    still in cache (the two launches each stream the whole arrays from memory). Elsewhere (the
    reference, CuPy arrays) it is those two calls."""
    native = _native(x, dy, mean, var, weight, relu_out)
    if native is None or backend.is_cupy_array(x):
        sums = norm_backward_sums(dy, x, mean, var, eps, per_instance, relu_out)
        dx = norm_backward_input(dy, x, mean, var, weight, eps, *sums, input_stats=True,
                                 per_instance=per_instance, relu_out=relu_out)
        return (dx, *sums)
    xp = backend.get_array_module(x)
    g = _groups(x, per_instance)
    sum_dy, sum_dy_xhat = xp.empty(g, dtype=x.dtype), xp.empty(g, dtype=x.dtype)
    dx = xp.empty_like(x)
    launch(native, "norm_backward", (dy, relu_out, x, mean, var, weight, sum_dy, sum_dy_xhat, dx),
           options=(eps, per_instance))
    return dx, sum_dy, sum_dy_xhat
