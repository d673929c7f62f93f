"""Saliency maps: which pixels, changed a little, would change the class score most? (lecture 12)

Simonyan et al. (2014): for an image ``I`` and the score ``s_c`` of class ``c`` (before the
softmax), the gradient ``∂s_c/∂I`` says how much each pixel value matters *locally*. The
saliency map is its magnitude, maxed over the colour channels::

    M[i, j] = max_k |∂s_c / ∂I[k, i, j]|                       (H, W) per image

One backward pass gives it for a whole batch, because the images of a batch do not interact:
``∂(Σ_n s_{c_n}(I_n)) / ∂I_n = ∂s_{c_n}(I_n) / ∂I_n``.

``input_gradient`` is the shared first step of saliency, guided backpropagation and the
randomization sanity check: the gradient of any per-image objective with respect to the
pixels.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Tensor
from ._common import as_batch, as_targets, class_scores, frozen_eval_copy, layer_output


def input_gradient(model, images, targets=None, objective=None):
    """``∂objective/∂images`` as an array ``(N, C, H, W)`` (or ``(C, H, W)`` for one image).

    targets: class index per image (or one int): the objective is the class score ``s_c``.
    objective: alternatively a function ``objective(model, x) -> (N,) Tensor`` (e.g.
        ``unit_objective(layer, channel)`` for an intermediate neuron). Exactly one is given.
    The model is put in eval mode (dropout off, batch norm uses its running statistics) and
    its weights get no gradient.
    """
    if (targets is None) == (objective is None):
        raise TypeError("pass exactly one of targets= (class indices) and objective= (a function)")
    x_data, single = as_batch(images, model=model)
    if targets is not None:
        labels = as_targets(targets, x_data.shape[0])
        objective = lambda m, x: class_scores(m, x, labels)  # noqa: E731
    restore = frozen_eval_copy(model)
    try:
        x = Tensor(x_data, requires_grad=True)
        value = objective(model, x)
        value.sum().backward()
    finally:
        restore()
    grad = x.grad.data
    return grad[0] if single else grad


def unit_objective(layer, channel, y=None, x=None):
    """An ``objective`` for ``input_gradient``: one channel of a layer's output.

    With ``(y, x)`` the objective is the single unit at that position (a "neuron" of the
    lecture's intermediate-feature figures); without, the channel's activation summed over
    the feature map (``(N, C)`` outputs of Linear layers: just the unit ``channel``)."""
    def objective(model, inp):
        act = layer_output(model, inp, layer)
        if act.ndim == 2:
            return act[:, channel]
        if y is None:
            return act[:, channel].sum(axis=(1, 2))
        return act[:, channel, y, x]
    return objective


def saliency_map(model, images, targets):
    """Simonyan et al.'s saliency: ``max over channels of |∂s_c/∂pixel|``.

    images: ``(N, C, H, W)`` or one ``(C, H, W)`` image (array or Tensor).
    targets: the class index of each image (or one int for all).
    Returns an array ``(N, H, W)`` (``(H, W)`` for one image), on the model's device.
    """
    grad = input_gradient(model, images, targets)
    xp = backend.get_array_module(grad)
    return xp.abs(grad).max(axis=-3)
