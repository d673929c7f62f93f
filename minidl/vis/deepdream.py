"""DeepDream: amplify whatever a layer already sees in an image (lecture 12).

Mordvintsev et al. (2015): run the image to layer L, *set the gradient at L equal to its
activation* and backpropagate to the image — that is gradient ascent on ``½‖a_L(I)‖²``, so
features the layer detects weakly get stronger ("if you see a dog, make it more doggy").
Tricks from the original code:

* jitter the image by a random roll before each step;
* normalize the step by the mean absolute gradient (``lr`` is then in pixel units);
* octaves: process a pyramid of downscaled images from the smallest up, carrying the
  "detail" (what the dreaming added) to the next scale, so patterns appear at several sizes.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend
from ..autograd import Tensor
from ._common import (as_batch, check_positive_int, frozen_eval_copy, jitter, layer_output,
                      progress_counter, resize)


class DeepDreamResult(NamedTuple):
    image: object        #: (C, H, W) the dreamed image
    objective: list      #: ½‖a_L‖² (divided by the number of units) before each step, all octaves


def dream_step(model, image, layer, lr, dy=0, dx=0):
    """One DeepDream step on an ``(1, C, H, W)`` array; returns ``(new image, ½ mean a²)``."""
    xp = backend.get_array_module(image)
    x = Tensor(jitter(image, dy, dx), requires_grad=True)
    act = layer_output(model, x, layer)
    # The lecture's formulation: the gradient arriving at layer L *is* its activation.
    act.backward(grad=act.data)
    g = jitter(x.grad.data, -dy, -dx)
    objective = 0.5 * float((act.data * act.data).mean())
    return image + lr * g / (float(xp.abs(g).mean()) + 1e-12), objective


def deepdream(model, image, layer, num_octaves=3, octave_scale=1.4, steps_per_octave=10, lr=0.01,
              max_jitter=4, value_range=None, rng=None, progress_bar=True):
    """Dream ``image (C, H, W)`` at ``layer`` (a name in ``model.named_modules()``).

    The model must accept inputs of every octave's size (a fully convolutional trunk up to
    ``layer``); with ``num_octaves=1`` only the original size is used.
    Returns a ``DeepDreamResult``.
    """
    x, single = as_batch(image, "image", model=model)
    if not single:
        raise ValueError(f"image must be one image (C, H, W), got shape {tuple(x.shape)}")
    num_octaves = check_positive_int(num_octaves, "num_octaves")
    steps_per_octave = check_positive_int(steps_per_octave, "steps_per_octave")
    rng = backend.get_rng(rng)
    xp = backend.get_array_module(x)
    octaves = [x]
    for _ in range(num_octaves - 1):
        h, w = octaves[-1].shape[2:]
        octaves.append(resize(octaves[-1], (max(int(round(h / octave_scale)), 1),
                                            max(int(round(w / octave_scale)), 1))))
    detail = xp.zeros_like(octaves[-1])
    objectives = []
    bar = progress_counter(num_octaves * steps_per_octave, progress_bar, "deepdream")
    restore = frozen_eval_copy(model)
    try:
        for base in reversed(octaves):                 # smallest first
            if detail.shape != base.shape:
                detail = resize(detail, base.shape[2:])
            dreamed = base + detail
            for _ in range(steps_per_octave):
                dy, dx = rng.integers(-max_jitter, max_jitter + 1, size=2) if max_jitter else (0, 0)
                dreamed, objective = dream_step(model, dreamed, layer, lr, dy, dx)
                objectives.append(objective)
                bar.update()
                if value_range is not None:
                    dreamed = xp.clip(dreamed, *value_range)
            detail = dreamed - base
    finally:
        bar.close()
        restore()
    return DeepDreamResult(dreamed[0], objectives)
