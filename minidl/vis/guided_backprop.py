"""Guided backpropagation: an image-like map of what a class (or a neuron) looks for (lecture 12).

Springenberg et al. (2015) change one rule of the backward pass. A ReLU normally passes the
incoming gradient where its *input* was positive (``g * (out > 0)``). Guided backprop also
drops negative gradients — it keeps only the paths along which the pixel *increases* the
output through positive evidence::

    normal ReLU backward:   g * (out > 0)
    guided ReLU backward:   g * (out > 0) * (g > 0)

The result looks much crisper than a saliency map. It is implemented with
``minidl.override_backward``: the rule is swapped in the engine for every call of the ReLU
Function, so it applies whether a model uses ``nn.ReLU`` modules or ``F.relu`` calls (and
``inplace=True`` variants, which minidl implements without mutation). No hook per module,
no special case per model.

Caution (Adebayo et al., 2018; see ``sanity_check.py``): the crispness is largely a property
of the *rule*, not of what the network learned — guided-backprop maps barely change when
the weights are replaced by random ones.
"""
from __future__ import annotations

from .. import backend
from ..functional.activation import ReLU
from ..autograd import override_backward
from .saliency import input_gradient


def guided_relu_backward(ctx, g):
    """The guided ReLU rule: pass ``g`` where the ReLU was active *and* ``g`` is positive."""
    (out,) = ctx.saved_tensors
    return g * (out > 0) * (g > 0)


def guided_backprop(model, images, targets=None, objective=None):
    """``∂objective/∂image`` with every ReLU's backward replaced by the guided rule.

    images: ``(N, C, H, W)`` or ``(C, H, W)``; targets: class index per image (or one int), or
    ``objective(model, x) -> (N,) Tensor`` (e.g. ``saliency.unit_objective(layer, channel)``
    for an intermediate neuron, as in the lecture's figures).
    Returns the signed gradient, same shape as ``images`` (use ``guided_backprop_image`` to
    display it).
    """
    with override_backward(ReLU, guided_relu_backward):
        return input_gradient(model, images, targets=targets, objective=objective)


def guided_backprop_image(grad):
    """Scale a gradient ``(..., C, H, W)`` to a displayable image in [0, 1]: zero maps to grey
    0.5 and ±3 standard deviations to 0 / 1 (each image on its own)."""
    xp = backend.get_array_module(grad)
    axes = tuple(range(grad.ndim - 3, grad.ndim))
    std = grad.std(axis=axes, keepdims=True) + 1e-12
    return xp.clip(0.5 + grad / (6 * std), 0.0, 1.0)
