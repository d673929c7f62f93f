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

One Function (``_Normalize``) serves all of them; its backward is the classic batch-norm
gradient, which accounts for μ and σ² depending on x when they are input statistics. The passes
over the data (statistics, normalization, the backward's sums and dx) are the kernels of
``minidl.kernels.norm`` (NumPy reference, C++, CUDA; docs/norm.md).

``relu=True`` (keyword, a minidl extension; set by ``minidl.nn.fuse_norm_relu``) is
normalization *followed by ReLU* as one Function: the kernels write max(y, 0) in the
normalizing pass and gate the gradient by that output in the backward's passes — the output of
``relu(batch_norm(x))`` bit for bit, the gradients up to the order of their sums, without the
ReLU's own pass over the activation each way (docs/norm.md, docs/performance.md).
"""
from __future__ import annotations

import math


import numpy as np

from .. import backend
from ..kernels import norm as kernels
from ..autograd import Function, Tensor
from .matmul import matmul
from ._args import flag, number, tensor_args


class _Normalize(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias; weight/bias per channel (axis 1).

    mean, var: one value per group — (C,) for batch norm, (N*C,) for instance norm
    (``per_instance``). ``input_stats``: they were computed from x, so the backward includes
    their dependence on x; False for fixed (running) statistics. The passes themselves are the
    kernels of ``minidl.kernels.norm`` (NumPy reference, C++, CUDA); x, not a normalized copy,
    is what the backward keeps.
    """

    returns_fresh_grads = True     # every gradient is a new array (the engine may adopt it)

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, per_instance, input_stats, eps, relu=False):
        x = backend.get_array_module(x).ascontiguousarray(x)
        out = kernels.norm_forward(x, mean, var, weight, bias, eps, per_instance, relu)
        # A fused ReLU's output is kept too: its sign gates the gradient (None: no ReLU).
        ctx.save_for_backward(x, weight, mean, var, out if relu else None)
        ctx.per_instance, ctx.input_stats, ctx.eps = per_instance, input_stats, eps
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, var, relu_out = ctx.saved_tensors
        if relu_out is not None and _relu_backward_is_overridden():
            raise RuntimeError("a ReLU fused into a normalization (nn.fuse_norm_relu) cannot take "
                               "the overridden ReLU backward (guided backprop): use a model whose "
                               "norms have fused_relu = False")
        grad = backend.get_array_module(grad).ascontiguousarray(grad)
        need_dx, need_dw, need_db = ctx.needs_input_grad[:3]
        # Σ grad and Σ grad·x_hat per group: dβ and dγ (summed over the images for instance
        # norm), and — when μ, σ came from x — the two means dx needs:
        # dx = (γ/σ) (grad - mean(grad) - x_hat · mean(grad · x_hat)).
        sums = (None, None)
        d_x = None
        if need_dx and ctx.input_stats:
            # training: the sums and dx in one pass over the groups (kernels.norm_backward)
            d_x, *sums = kernels.norm_backward(grad, x, mean, var, weight, ctx.eps,
                                               ctx.per_instance, relu_out)
        elif need_dw or need_db:
            sums = kernels.norm_backward_sums(grad, x, mean, var, ctx.eps, ctx.per_instance,
                                              relu_out)
        per_channel = (x.shape[0] if ctx.per_instance else 1, x.shape[1])   # groups -> (n, C)
        d_bias = sums[0].reshape(per_channel).sum(axis=0) if need_db else None
        d_weight = sums[1].reshape(per_channel).sum(axis=0) if need_dw else None
        if need_dx and d_x is None:      # fixed statistics: dx = γ/σ · dy
            d_x = kernels.norm_backward_input(grad, x, mean, var, weight, ctx.eps, *sums,
                                              input_stats=ctx.input_stats,
                                              per_instance=ctx.per_instance, relu_out=relu_out)
        return d_x, d_weight, d_bias, None, None


def _relu_backward_is_overridden():
    from ..autograd import _backward_overrides
    from .activation import ReLU
    return ReLU in _backward_overrides()


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


def _frozen(running, dtype, xp):
    """A copy of a running statistic for this call: the backward recomputes x_hat from it, and
    the module's buffer may be updated in place (by a training step) before that backward."""
    return xp.array(running, dtype=dtype, copy=True)


def _update_running(running, value, momentum):
    """running ← (1 - momentum)·running + momentum·value, in place (it is a module's buffer)."""
    running *= 1 - momentum
    running += momentum * value.astype(running.dtype, copy=False)


@tensor_args("x", "weight", "bias", optional=("weight", "bias"))
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, relu=False):
    """Batch normalization over (N, *) for each channel; x (N, C) or (N, C, H, W, ...).

    training: normalize with the batch mean and *biased* variance, and (when given) update the
    running statistics in place with the *unbiased* variance, as PyTorch does.
    Otherwise: normalize with running_mean / running_var.
    relu: return max(·, 0) of the result, fused into the same passes (module docstring).
    """
    training = flag(training, "training", "batch_norm")
    relu = flag(relu, "relu", "batch_norm")
    eps = number(eps, "eps", "batch_norm", minimum=0.0)
    momentum = number(momentum, "momentum", "batch_norm", minimum=0.0, maximum=1.0)
    channels = x.shape[1] if isinstance(x, Tensor) and x.ndim >= 2 else None
    _check_affine("batch_norm", x, weight, bias, channels)
    rm, rv = _data(running_mean), _data(running_var)
    for value, arg in ((rm, "running_mean"), (rv, "running_var")):
        if value is not None and not (isinstance(value, np.ndarray) or backend.is_cupy_array(value)):
            raise TypeError(f"batch_norm: {arg} must be None, an array or a Tensor (it is updated "
                            f"in place), got {type(value).__name__}")
        if value is not None and tuple(value.shape) != (channels,):
            raise ValueError(f"batch_norm: {arg} must have shape ({channels},), got {tuple(value.shape)}")
    xp = backend.get_array_module(x.data)
    if training:
        count = x.size // channels
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        data = xp.ascontiguousarray(x.data)
        mean, var = kernels.norm_statistics(data, per_instance=False)   # (C,), biased
        if rm is not None:
            _update_running(rm, mean, momentum)
        if rv is not None:
            _update_running(rv, var * (count / (count - 1)), momentum)   # unbiased
    else:
        if rm is None or rv is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
        mean, var = _frozen(rm, x.dtype, xp), _frozen(rv, x.dtype, xp)
    return _Normalize.apply(x, weight, bias, mean, var, per_instance=False, input_stats=training,
                            eps=eps, relu=relu)


@tensor_args("x", "weight", "bias", optional=("weight", "bias"))
def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5, *, relu=False):
    """Instance normalization: each (image, channel) plane to zero mean, unit (biased) variance.

    x (N, C, H, W) (or (N, C, L)). With running statistics given and ``use_input_stats``, they
    are updated with the batch average of the per-instance statistics (PyTorch's behaviour);
    ``use_input_stats=False`` normalizes with them instead. relu: as in ``batch_norm``.
    """
    use_input_stats = flag(use_input_stats, "use_input_stats", "instance_norm")
    relu = flag(relu, "relu", "instance_norm")
    eps = number(eps, "eps", "instance_norm", minimum=0.0)
    momentum = number(momentum, "momentum", "instance_norm", minimum=0.0, maximum=1.0)
    channels = x.shape[1] if isinstance(x, Tensor) and x.ndim >= 2 else None
    _check_affine("instance_norm", x, weight, bias, channels)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: input must have shape (N, C, H, W) or (N, C, L), got {x.shape}")
    rm, rv = _data(running_mean), _data(running_var)
    xp = backend.get_array_module(x.data)
    if not use_input_stats:                 # fixed per-channel statistics: C groups, as batch norm
        if rm is None or rv is None:
            raise ValueError("instance_norm: running_mean and running_var are needed when "
                             "use_input_stats=False")
        mean, var = _frozen(rm, x.dtype, xp), _frozen(rv, x.dtype, xp)
        return _Normalize.apply(x, weight, bias, mean, var, per_instance=False, input_stats=False,
                                eps=eps, relu=relu)
    count = math.prod(x.shape[2:])
    if count <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element per channel, got "
                         f"input of shape {x.shape}")
    mean, var = kernels.norm_statistics(xp.ascontiguousarray(x.data), per_instance=True)  # (N*C,)
    if rm is not None:
        _update_running(rm, mean.reshape(x.shape[:2]).mean(axis=0), momentum)
    if rv is not None:
        _update_running(rv, (var.reshape(x.shape[:2]) * (count / (count - 1))).mean(axis=0), momentum)
    return _Normalize.apply(x, weight, bias, mean, var, per_instance=True, input_stats=True, eps=eps,
                            relu=relu)


@tensor_args("x", "style", "weight", "bias")
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
        if s.size and backend.any_true((s < 0) | (s >= num_styles)):
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
