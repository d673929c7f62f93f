"""Neural texture synthesis by matching Gram matrices (Gatys et al., 2015; lecture 12).

A texture is described by the Gram matrices of a CNN's features at several layers — which
feature channels co-occur, averaged over all positions, so *where* things are is discarded and
only *what kind of stuff* remains. Synthesis starts from noise and does gradient descent on
the image until its Gram matrices match those of the texture::

    x* = argmin_x  Σ_l w_l ‖G_l(x) − G_l(texture)‖²_F

Matching only low layers reproduces small features (colours, edges); adding higher layers
reproduces larger structures. It works with a *random-weight* VGG too (Ustyuzhaninov et al.,
2017): many random filters already form a rich enough description at these scales.
Compare ``texture_nonparametric.py`` (Efros–Leung, quilting): copying pixels instead of
matching statistics.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend
from ..autograd import Tensor, no_grad
from ..nn.inspect import layer_outputs
from ._common import as_batch, frozen_eval_copy
from ._optimize import optimize_image
from .losses import gram_matrix, style_loss


class TextureResult(NamedTuple):
    image: object        #: (C, H', W') the synthesized texture
    losses: list         #: style loss per step (evaluation)


def style_targets(model, image, layers):
    """``{layer: (1, C, C) Gram matrix}`` of ``image (C, H, W)`` at each layer (no graph)."""
    x, _ = as_batch(image, "image", model=model)
    with no_grad():
        feats = layer_outputs(model, Tensor(x), layers)
    return {name: gram_matrix(f).data.copy() for name, f in feats.items()}


def _layer_weights(layers, layer_weights):
    if layer_weights is None:
        return {name: 1.0 for name in layers}
    if isinstance(layer_weights, dict):
        return {name: float(layer_weights[name]) for name in layers}
    if len(layer_weights) != len(layers):
        raise ValueError(f"layer_weights must have one weight per layer ({len(layers)}), got {layer_weights!r}")
    return {name: float(w) for name, w in zip(layers, layer_weights)}


def synthesize_texture_gram(model, texture, layers, layer_weights=None, size=None, num_steps=200,
                            lr=0.05, optimizer="adam", init_scale=0.1, value_range=None, rng=None,
                            progress_bar=True):
    """Synthesize a texture like ``texture (C, H, W)`` by matching Gram matrices at ``layers``.

    layers: names of layers of ``model`` (e.g. ``["relu1_1", "relu2_1", "relu3_1"]``).
    layer_weights: one weight per layer (list or dict; default 1 each).
    size: ``(H', W')`` of the output (default: the texture's size) — any size works, since
        Gram matrices do not depend on the number of positions.
    Returns a ``TextureResult``.
    """
    sample, single = as_batch(texture, "texture", model=model)
    if not single:
        raise ValueError(f"texture must be one image (C, H, W), got shape {tuple(sample.shape)}")
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one layer")
    weights = _layer_weights(layers, layer_weights)
    size = tuple(sample.shape[2:]) if size is None else tuple(size)
    rng = backend.get_rng(rng)
    restore = frozen_eval_copy(model)
    try:
        targets = style_targets(model, sample[0], layers)
        noise = rng.standard_normal((1, sample.shape[1], *size)).astype(sample.dtype)
        start = sample.mean(axis=(2, 3), keepdims=True) + init_scale * backend.to_device(
            noise, backend.device_of(sample))

        def loss_fn(x):
            return style_loss(layer_outputs(model, x, layers), targets, weights)

        image, losses = optimize_image(loss_fn, start, num_steps, optimizer, lr, value_range,
                                       progress_bar, "texture synthesis")
        with no_grad():
            losses.append(float(loss_fn(Tensor(image)).item()))          # the final image's loss
    finally:
        restore()
    return TextureResult(image[0], losses)
