"""Normalization layers: batch norm, instance norm, conditional instance norm.

Lecture idea: normalize activations to zero mean and unit variance, then let the network
re-scale them with a learned (γ, β):  y = γ · (x - μ) / sqrt(σ² + eps) + β.
What differs is *over which axes* μ and σ² are taken:

    batch norm      over (N, H, W) for each channel — statistics of the whole batch; at test time
                    the running averages collected during training are used instead
    instance norm   over (H, W) for each image and channel — removes each image's contrast, the
                    normalization of style transfer networks
    conditional IN  instance norm whose (γ, β) are picked per image from a table of S styles:
                    "one network, many styles" (Dumoulin et al.); mixing rows interpolates styles

One Function (``_Normalize``) does the arithmetic for all of them; its backward is the classic
batch-norm gradient, which accounts for μ and σ² depending on x when they are input statistics.
"""
from __future__ import annotations

import math


from .. import backend
from ..tensor import Function, Tensor
from .matmul import matmul


def _per_channel_sum(a, axes, b=None):
    """Σ over ``axes`` of a (or of a·b when b is given), keepdims; a, b (N, C, *spatial).

    ``axes`` is (0, 2, ...) for batch norm, (2, ...) for instance norm. Written as matrix
    products — a (N, C, P) @ ones (P,) for sums, batched (1, P) @ (P, 1) dot products for Σ a·b —
    so BLAS does the reductions: on every core, without the a·b temporary, 4–8× faster than
    ``(a * b).sum(axis=axes)`` at the FCN's sizes (measured, docs/lecture8.md).
    """
    xp = backend.get_array_module(a)
    n, c = a.shape[:2]
    a3 = a.reshape(n, c, -1)                                   # (N, C, P), P = spatial size
    if b is None:
        sums = a3 @ xp.ones(a3.shape[2], dtype=a.dtype)        # (N, C)
    else:
        sums = (a3[:, :, None, :] @ b.reshape(n, c, -1, 1))[:, :, 0, 0]
    if 0 in axes:                                              # batch statistics: over N too
        sums = sums.sum(axis=0, keepdims=True)
    return sums.reshape(sums.shape + (1,) * (a.ndim - 2))


def _statistics(x, axes):
    """Mean and biased variance of x over ``axes`` (keepdims), and x - mean (reused by the
    normalization). The variance is taken of the centred values, not as E[x²] - E[x]², which
    cancels catastrophically in float32 when |mean| >> std."""
    count = math.prod(x.shape[a] for a in axes)
    mean = _per_channel_sum(x, axes) / count
    centred = x - mean
    var = _per_channel_sum(centred, axes, centred) / count
    return mean, var, centred


class _Normalize(Function):
    """y = (x - mean) * rsqrt(var + eps) * weight + bias; weight/bias per channel (axis 1).

    ``axes``: the axes the statistics were reduced over when they are computed from x (then
    the backward includes their dependence on x); None when mean/var are fixed (running stats).
    ``centred``: x - mean when the caller already has it (from the variance); it is reused in
    place as x_hat instead of subtracting again.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, axes, eps, centred=None):
        channel = (1, -1) + (1,) * (x.ndim - 2)             # (C,) -> broadcastable (1, C, 1, ...)
        inv_std = 1.0 / backend.get_array_module(x).sqrt(var + eps)
        x_hat = x - mean if centred is None else centred   # (in place from here: one new array)
        x_hat *= inv_std
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.axes, ctx.channel = axes, channel
        if weight is None:
            return x_hat if bias is None else x_hat + bias.reshape(channel)
        out = x_hat * weight.reshape(channel)
        if bias is not None:
            out += bias.reshape(channel)
        return out

    @staticmethod
    def backward(ctx, grad):
        x_hat, inv_std, weight = ctx.saved_tensors
        every = tuple(a for a in range(grad.ndim) if a != 1)       # dγ, dβ: over all but C
        need_x_stats = ctx.needs_input_grad[0] and ctx.axes is not None
        d_weight = d_bias = d_x = None
        if ctx.needs_input_grad[1]:
            d_weight = _per_channel_sum(grad, every, x_hat).reshape(-1)      # Σ grad · x_hat
        if ctx.needs_input_grad[2]:
            d_bias = _per_channel_sum(grad, every).reshape(-1)               # Σ grad
        if ctx.needs_input_grad[0]:
            # d_hat = γ·grad is the gradient reaching x_hat; dx = d_hat / σ for fixed statistics.
            scale = inv_std if weight is None else inv_std * weight.reshape(ctx.channel)
            if not need_x_stats:                             # fixed statistics: a plain affine map
                d_x = grad * scale
            else:
                # x_hat = (x - μ)/σ with μ, σ computed from x over `axes` (m values each):
                # dx = (1/σ) (d_hat - mean(d_hat) - x_hat · mean(d_hat · x_hat)), and γ factors
                # out of the brackets: dx = (γ/σ) (grad - mean(grad) - x_hat · mean(grad · x_hat)).
                count = math.prod(grad.shape[a] for a in ctx.axes)
                d_x = x_hat * (_per_channel_sum(grad, ctx.axes, x_hat) / -count)
                d_x += grad
                d_x -= _per_channel_sum(grad, ctx.axes) / count
                d_x *= scale
        return d_x, d_weight, d_bias, None, None


def _data(a):
    return a.data if isinstance(a, Tensor) else a


def _check_affine(name, x, weight, bias, channels):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name}: input must have shape (N, C, ...), got {x.shape}")
    for value, arg in ((weight, "weight"), (bias, "bias")):
        if value is not None and tuple(value.shape) != (channels,):
            raise ValueError(f"{name}: {arg} must have shape ({channels},), got {tuple(value.shape)}")


def _update_running(running, value, momentum):
    """running ← (1 - momentum)·running + momentum·value, in place (it is a module's buffer)."""
    running *= 1 - momentum
    running += momentum * value.astype(running.dtype, copy=False)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over (N, *) for each channel; x (N, C) or (N, C, H, W, ...).

    training: normalize with the batch mean and *biased* variance, and (when given) update the
    running statistics in place with the *unbiased* variance, as PyTorch does.
    Otherwise: normalize with running_mean / running_var.
    """
    channels = x.shape[1] if isinstance(x, Tensor) and x.ndim >= 2 else None
    _check_affine("batch_norm", x, weight, bias, channels)
    rm, rv = _data(running_mean), _data(running_var)
    for value, arg in ((rm, "running_mean"), (rv, "running_var")):
        if value is not None and tuple(value.shape) != (channels,):
            raise ValueError(f"batch_norm: {arg} must have shape ({channels},), got {tuple(value.shape)}")
    xp = backend.get_array_module(x.data)
    channel = (1, channels) + (1,) * (x.ndim - 2)
    if training:
        axes = tuple(a for a in range(x.ndim) if a != 1)
        count = x.size // channels
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        mean, var, centred = _statistics(x.data, axes)             # biased: divides by count
        if rm is not None:
            _update_running(rm, mean.reshape(-1), momentum)
        if rv is not None:
            _update_running(rv, var.reshape(-1) * (count / (count - 1)), momentum)   # unbiased
    else:
        if rm is None or rv is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
        axes, centred = None, None
        mean, var = xp.asarray(rm, dtype=x.dtype).reshape(channel), xp.asarray(rv, dtype=x.dtype).reshape(channel)
    return _Normalize.apply(x, weight, bias, mean, var, axes=axes, eps=eps, centred=centred)


def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Instance normalization: each (image, channel) plane to zero mean, unit (biased) variance.

    x (N, C, H, W) (or (N, C, L)). With running statistics given and ``use_input_stats``, they
    are updated with the batch average of the per-instance statistics (PyTorch's behaviour);
    ``use_input_stats=False`` normalizes with them instead.
    """
    channels = x.shape[1] if isinstance(x, Tensor) and x.ndim >= 2 else None
    _check_affine("instance_norm", x, weight, bias, channels)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: input must have shape (N, C, H, W) or (N, C, L), got {x.shape}")
    rm, rv = _data(running_mean), _data(running_var)
    xp = backend.get_array_module(x.data)
    if not use_input_stats:
        if rm is None or rv is None:
            raise ValueError("instance_norm: running_mean and running_var are needed when "
                             "use_input_stats=False")
        channel = (1, channels) + (1,) * (x.ndim - 2)
        mean, var = xp.asarray(rm, dtype=x.dtype).reshape(channel), xp.asarray(rv, dtype=x.dtype).reshape(channel)
        return _Normalize.apply(x, weight, bias, mean, var, axes=None, eps=eps)
    axes = tuple(range(2, x.ndim))
    count = math.prod(x.shape[2:])
    if count <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element per channel, got "
                         f"input of shape {x.shape}")
    mean, var, centred = _statistics(x.data, axes)
    if rm is not None:
        _update_running(rm, mean.reshape(x.shape[:2]).mean(axis=0), momentum)
    if rv is not None:
        _update_running(rv, (var.reshape(x.shape[:2]) * (count / (count - 1))).mean(axis=0), momentum)
    return _Normalize.apply(x, weight, bias, mean, var, axes=axes, eps=eps, centred=centred)


def conditional_instance_norm(x, style, weight, bias, eps=1e-5):
    """Instance norm with one (γ, β) per style: y = γ_s · IN(x) + β_s (Dumoulin et al.).

    x (N, C, H, W); weight, bias (S, C): row s holds style s's (γ, β).
    style: integer indices (N,) — image n uses style[n] — or mixing weights (N, S): image n
    uses Σ_s style[n, s]·(γ_s, β_s), which blends styles. (Indices are the one-hot case.)
    """
    for value, arg in ((weight, "weight"), (bias, "bias")):
        if not isinstance(value, Tensor) or value.ndim != 2:
            raise ValueError(f"conditional_instance_norm: {arg} must be a Tensor of shape "
                             f"(num_styles, C), got {getattr(value, 'shape', type(value).__name__)}")
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"conditional_instance_norm: input must be a Tensor of shape (N, C, H, W), "
                         f"got {getattr(x, 'shape', type(x).__name__)}")
    num_styles, channels = weight.shape
    if tuple(bias.shape) != (num_styles, channels) or x.shape[1] != channels:
        raise ValueError(f"conditional_instance_norm: weight {weight.shape} and bias {bias.shape} "
                         f"must both be (num_styles, {x.shape[1]}) for an input of {x.shape}")
    n = x.shape[0]
    xp = backend.get_array_module(x.data)
    s = xp.asarray(_data(style))                    # indices or weights, on x's device
    if s.dtype.kind in "iu":
        if s.shape != (n,):
            raise ValueError(f"conditional_instance_norm: integer style must have shape ({n},), got {s.shape}")
        if s.size and bool(((s < 0) | (s >= num_styles)).any()):
            raise ValueError(f"conditional_instance_norm: style indices must lie in [0, {num_styles})")
        mixing = Tensor._wrap(xp.eye(num_styles, dtype=x.dtype)[s])      # one-hot rows
    elif s.dtype.kind == "f":
        if tuple(s.shape) != (n, num_styles):
            raise ValueError(f"conditional_instance_norm: style weights must have shape "
                             f"({n}, {num_styles}), got {tuple(s.shape)}")
        mixing = style if isinstance(style, Tensor) else Tensor._wrap(s.astype(x.dtype, copy=False))
    else:
        raise TypeError(f"conditional_instance_norm: style must be integer indices or float "
                        f"mixing weights, got dtype {s.dtype}")
    gamma = matmul(mixing, weight).reshape(n, channels, 1, 1)       # (N, C): each image's γ
    beta = matmul(mixing, bias).reshape(n, channels, 1, 1)
    return instance_norm(x, eps=eps) * gamma + beta
