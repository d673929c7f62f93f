"""Feature inversion: which image has these features? (lecture 12)

Mahendran & Vedaldi (2015) reconstruct an image from its representation ``φ_L(I₀)`` at layer
L by optimizing a new image::

    x* = argmin_x  ‖φ_L(x) − φ_L(I₀)‖² / ‖φ_L(I₀)‖²  +  λ_TV · TV(x)

The total-variation prior keeps x piecewise smooth, as natural images are. Reconstructions
from low layers are nearly exact; from higher layers only the layout and the parts the
network cares about survive — a picture of what information each layer keeps.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend
from ..autograd import Tensor, no_grad
from ._common import as_batch, frozen_eval_copy, layer_output
from ._optimize import optimize_image
from .losses import total_variation


class InversionResult(NamedTuple):
    image: object             #: (C, H, W) reconstruction
    losses: list              #: total loss per step
    feature_errors: list      #: ‖φ(x) − φ(I₀)‖² / ‖φ(I₀)‖² per step


def invert_features(model, image, layer, tv_weight=1e-3, num_steps=200, lr=0.05, optimizer="adam",
                    init_scale=0.1, value_range=None, rng=None, progress_bar=True):
    """Reconstruct ``image (C, H, W)`` from its features at ``layer`` (``None``: the model output).

    init: noise with std ``init_scale`` (drawn from ``rng``) around the image's mean pixel.
    Returns an ``InversionResult``.
    """
    x0, single = as_batch(image, "image", model=model)
    if not single:
        raise ValueError(f"image must be one image (C, H, W), got shape {tuple(x0.shape)}")
    rng = backend.get_rng(rng)
    restore = frozen_eval_copy(model)
    try:
        with no_grad():
            target = layer_output(model, Tensor(x0), layer).data.copy()
        scale = float((target * target).sum()) + 1e-12
        xp = backend.get_array_module(x0)
        noise = backend.to_device(rng.standard_normal(x0.shape).astype(x0.dtype), backend.device_of(x0))
        start = x0.mean(axis=(2, 3), keepdims=True) + init_scale * xp.asarray(noise)

        errors = []

        def feature_error(x):
            diff = layer_output(model, x, layer) - target
            return (diff * diff).sum() / scale

        def loss_fn(x):
            error = feature_error(x)
            errors.append(float(error.item()))      # logged for free: computed for the loss anyway
            return error + tv_weight * total_variation(x)

        result, losses = optimize_image(loss_fn, start, num_steps, optimizer, lr, value_range,
                                        progress_bar, "feature inversion")
        with no_grad():
            errors.append(float(feature_error(Tensor(result)).item()))   # the final image's error
    finally:
        restore()
    return InversionResult(result[0], losses, errors)
