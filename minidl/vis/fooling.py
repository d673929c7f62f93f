"""Fooling images (adversarial examples): a tiny change that flips the prediction (lecture 12).

Szegedy et al. (2014): starting from an image the network classifies correctly, do gradient
*ascent* on the score of another class ``t`` until the network predicts ``t``::

    I ← I + lr · g / ‖g‖₂,     g = ∂ log softmax(s)_t / ∂I

(normalizing the step makes ``lr`` a step length in pixel units, whatever the score scale).
The objective is the target's log-probability ``s_t − log Σ_k exp s_k``, not the raw score
``s_t`` (``objective="score"``): a ReLU network with batch norm is close to positively
homogeneous, so the direction that raises ``s_t`` often raises every score — more contrast —
and the prediction never changes. The log-probability only rises when ``s_t`` gains on the
others.
The perturbation that suffices is usually invisible — the network's decision boundary passes
very close to every natural image, in some direction a person would never notice.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend
from ..functional.activation import log_softmax
from ..autograd import Tensor
from ._common import as_batch, as_targets, frozen_eval_copy, one_hot_like, progress


class FoolingResult(NamedTuple):
    image: object          #: (C, H, W) the fooling image
    perturbation: object   #: (C, H, W) fooling image − original
    steps: int             #: gradient steps taken
    success: bool          #: the model predicts the target class for ``image``
    linf: float            #: max |perturbation|
    l2: float              #: ‖perturbation‖₂
    relative_l2: float     #: ‖perturbation‖₂ / ‖original‖₂


def fooling_image(model, image, target, lr=1.0, max_steps=100, value_range=None, objective="log_prob",
                  progress_bar=False):
    """Push ``image (C, H, W)`` towards class ``target`` until ``model`` predicts it.

    lr: length (L2, pixel units) of each normalized gradient step.
    objective: ``"log_prob"`` (log-softmax of the target, default) or ``"score"`` (raw ``s_t``).
    value_range: optional ``(low, high)`` the pixels are clamped to after every step.
    Returns a ``FoolingResult``; ``success`` is False if ``max_steps`` were not enough.
    """
    x_data, single = as_batch(image, "image", model=model)
    if not single:
        raise ValueError(f"image must be one image (C, H, W), got shape {tuple(x_data.shape)}")
    target_arr = as_targets(target, 1, "target")
    if objective not in ("log_prob", "score"):
        raise ValueError(f"objective must be 'log_prob' or 'score', got {objective!r}")
    xp = backend.get_array_module(x_data)
    original = x_data.copy()
    restore = frozen_eval_copy(model)
    steps, success = 0, False
    try:
        for _ in progress(range(max_steps + 1), progress_bar, "fooling"):
            x = Tensor(x_data, requires_grad=True)
            scores = model(x)
            if int(scores.data.argmax(axis=1)[0]) == int(target_arr[0]):
                success = True
                break
            if steps == max_steps:
                break
            picked = log_softmax(scores, axis=1) if objective == "log_prob" else scores
            (picked * one_hot_like(picked, target_arr)).sum().backward()
            g = x.grad.data
            x_data = x_data + lr * g / (float(xp.sqrt((g * g).sum())) + 1e-12)
            if value_range is not None:
                x_data = xp.clip(x_data, *value_range)
            steps += 1
    finally:
        restore()
    delta = (x_data - original)[0]
    l2 = float(xp.sqrt((delta * delta).sum()))
    return FoolingResult(x_data[0], delta, steps, success, float(xp.abs(delta).max()), l2,
                         l2 / (float(xp.sqrt((original * original).sum())) + 1e-12))

