"""Class visualization by gradient ascent: the image a network finds most "class-c-like" (lecture 12).

Simonyan et al. (2014) search for ``I* = argmax_I s_c(I) − λ‖I‖²``: start from noise, step
along the gradient of the regularized score. Pure gradient ascent finds high-frequency
patterns no natural image has; Yosinski et al. (2015) add *periodic* image-space regularizers
between the steps, each a crude prior on natural images:

* jitter: roll the image by a random offset before each step (and back after), so the result
  cannot depend on exact pixel positions;
* Gaussian blur every ``blur_every`` steps: penalizes high frequencies;
* clipping pixels with small norm to 0 (``clip_small_norm_percentile``) and pixels with a small
  contribution ``|I ⊙ ∂s_c/∂I|`` (``clip_small_contribution_percentile``): keeps only the
  parts of the image that matter, the rest stays at the (zero) mean;
* clamping to the valid pixel range.

The L2 term enters the gradient analytically: ``∂(s_c − λ‖I‖²)/∂I = ∂s_c/∂I − 2λI``.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend
from ..autograd import Tensor
from ..train import model_device
from ._common import (as_targets, check_positive_int, frozen_eval_copy, gaussian_blur, jitter,
                      one_hot_like, progress)


class ClassVisualizationResult(NamedTuple):
    image: object          #: (C, H, W) the visualization
    objective: list        #: s_c(I) − λ‖I‖² before each step
    scores: list           #: s_c(I) before each step


def regularized_class_score(model, image, target, l2_reg, image_mean=0.0):
    """``(s_c(I) − λ‖I − m‖², s_c(I), its gradient)`` for one image ``(1, C, H, W)`` array;
    ``m = image_mean`` is the "zero" of image space (0 for centred inputs, 0.5 for [0, 1])."""
    restore = frozen_eval_copy(model)
    try:
        x = Tensor(image, requires_grad=True)
        scores = model(x)
        score = (scores * one_hot_like(scores, as_targets(target, 1, "target"))).sum()
        score.backward()
    finally:
        restore()
    s = float(score.item())
    delta = image - image_mean
    return s - l2_reg * float((delta * delta).sum()), s, x.grad.data - 2 * l2_reg * delta


def class_visualization(model, target, image_shape, num_steps=200, lr=1.0, l2_reg=1e-3,
                        blur_every=10, blur_sigma=0.5, max_jitter=4,
                        clip_small_norm_percentile=None, clip_small_contribution_percentile=None,
                        value_range=None, image_mean=0.0, init_scale=0.1, rng=None, progress_bar=True):
    """Gradient ascent on ``s_target(I) − l2_reg·‖I‖²`` from small random noise.

    image_shape: ``(C, H, W)`` of the model's input.
    lr: step length; each step is ``lr · g / max|g|`` (normalized so the scale of the scores
        does not matter).
    blur_every / blur_sigma: blur period (0 = never) and its std in pixels.
    max_jitter: random roll of up to this many pixels per axis before each step (0 = none).
    clip_small_*_percentile: Yosinski's clipping, e.g. 20 zeroes the weakest 20 % of pixels.
    value_range: optional ``(low, high)`` clamp after every step.
    image_mean: the neutral image value (0 for centred inputs; 0.5 for a model fed [0, 1]
        images): the start is ``image_mean`` + noise of std ``init_scale``, and the L2 penalty
        and the clipping act on ``I − image_mean``.
    rng: a ``numpy.random.Generator`` or seed (noise and jitter); progress_bar: tqdm on/off.
    Returns a ``ClassVisualizationResult``.
    """
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    num_steps = check_positive_int(num_steps, "num_steps")
    rng = backend.get_rng(rng)
    device = model_device(model)
    image = backend.to_device((image_mean + init_scale * rng.standard_normal((1, *image_shape))).astype(
        backend.default_dtype), device)
    xp = backend.get_array_module(image)
    objectives, scores = [], []
    for step in progress(range(num_steps), progress_bar, "class visualization"):
        dy, dx = (rng.integers(-max_jitter, max_jitter + 1, size=2) if max_jitter else (0, 0))
        shifted = jitter(image, dy, dx)
        objective, score, grad = regularized_class_score(model, shifted, target, l2_reg, image_mean)
        objectives.append(objective)
        scores.append(score)
        shifted = shifted + lr * grad / (float(xp.abs(grad).max()) + 1e-12)
        image = jitter(shifted, -dy, -dx)
        grad = jitter(grad, -dy, -dx)
        if value_range is not None:
            image = xp.clip(image, *value_range)
        if blur_every and (step + 1) % blur_every == 0:
            image = gaussian_blur(image, blur_sigma)
        # Yosinski's clipping sets weak pixels back to the neutral value image_mean.
        if clip_small_norm_percentile:
            delta = image - image_mean
            norm = xp.sqrt((delta * delta).sum(axis=1, keepdims=True))
            image = image_mean + delta * (norm >= xp.percentile(norm, clip_small_norm_percentile))
        if clip_small_contribution_percentile:
            delta = image - image_mean
            contribution = xp.abs(delta * grad).sum(axis=1, keepdims=True)
            keep = contribution >= xp.percentile(contribution, clip_small_contribution_percentile)
            image = image_mean + delta * keep
    return ClassVisualizationResult(image[0], objectives, scores)
