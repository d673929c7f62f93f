"""Neural style transfer (Gatys et al., 2016; lecture 12): the content of one image painted in
the style of another, by optimizing the image.

    x* = argmin_x  α · ‖φ_c(x) − φ_c(content)‖²                       (content: one layer)
                 + Σ_l β_l ‖G_l(x) − G_l(style)‖²_F                   (style: Gram matrices)
                 + γ · TV(x)                                          (smoothness)

Starting from the content image (or noise), the optimizer trades content against style;
``content_weight``/``style_weights`` set the balance. Every output image needs its own
optimization (hundreds of forward/backward passes) — ``fast_style.py`` trains a network that
does it in one forward pass instead.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend
from ..autograd import Tensor, no_grad
from ..train import model_device
from ..nn.inspect import layer_outputs
from ._common import as_batch, frozen_eval_copy
from ._optimize import optimize_image
from .losses import content_loss, style_loss, total_variation
from .texture_gram import _layer_weights, style_targets


class StyleTransferResult(NamedTuple):
    image: object          #: (C, H, W) the stylized image
    losses: list           #: total loss per step (evaluation)
    parts: dict            #: {"content", "style", "tv"}: each term's value per step


class StyleLoss:
    """The Gatys loss as a callable ``loss(images Tensor) -> scalar Tensor`` (also used to
    train the fast style networks). Targets are computed once, without a graph."""

    def __init__(self, model, style_image, content_layer, style_layers, content_weight=1.0,
                 style_weights=None, tv_weight=0.0):
        self.model, self.content_layer = model, content_layer
        self.style_layers = list(style_layers)
        self.content_weight, self.tv_weight = float(content_weight), float(tv_weight)
        self.style_weights = _layer_weights(self.style_layers, style_weights)
        self.style_grams = style_targets(model, style_image, self.style_layers)
        self.layers = self.style_layers + ([content_layer] if content_layer is not None else [])
        self.last = {}

    def content_features(self, content):
        """``content``'s features at the content layer (the target of the content term), on the
        loss model's device."""
        x = Tensor(content, device=model_device(self.model))
        with no_grad():
            return layer_outputs(self.model, x, [self.content_layer])[self.content_layer].data.copy()

    def __call__(self, x, content_features=None):
        feats = layer_outputs(self.model, x, self.layers)
        total = style = style_loss(feats, self.style_grams, self.style_weights)
        parts = {"style": float(style.item())}
        if content_features is not None and self.content_weight:
            content = content_loss(feats[self.content_layer], content_features)
            parts["content"] = float(content.item())
            total = total + self.content_weight * content
        if self.tv_weight:
            tv = total_variation(x)
            parts["tv"] = float(tv.item())
            total = total + self.tv_weight * tv
        self.last = parts
        return total


def style_transfer(model, content, style, content_layer, style_layers, content_weight=1.0,
                   style_weights=None, tv_weight=1e-4, num_steps=200, lr=0.02, optimizer="adam",
                   init="content", value_range=(0.0, 1.0), rng=None, progress_bar=True):
    """Paint ``content (C, H, W)`` in the style of ``style (C, H', W')`` (any size).

    content_layer / style_layers: layer names of ``model`` (a feature extractor such as
        ``minidl.models.VGGFeatures``); style_weights: one per style layer (default 1 each).
    init: ``"content"`` (start from the content image) or ``"noise"``.
    optimizer: ``"adam"`` or ``"lbfgs"`` (Gatys's choice; CPU only).
    Returns a ``StyleTransferResult``.
    """
    content_batch, single = as_batch(content, "content", model=model)
    if not single:
        raise ValueError(f"content must be one image (C, H, W), got shape {tuple(content_batch.shape)}")
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    rng = backend.get_rng(rng)
    restore = frozen_eval_copy(model)
    try:
        loss = StyleLoss(model, style, content_layer, style_layers, content_weight, style_weights, tv_weight)
        target = loss.content_features(content_batch)
        start = content_batch.copy()
        if init == "noise":
            noise = rng.uniform(0, 1, content_batch.shape).astype(content_batch.dtype)
            start = backend.to_device(noise, backend.device_of(content_batch))
        parts = {"content": [], "style": [], "tv": []}

        def loss_fn(x):
            value = loss(x, target)
            for k in parts:
                parts[k].append(loss.last.get(k, 0.0))
            return value

        image, losses = optimize_image(loss_fn, start, num_steps, optimizer, lr, value_range,
                                       progress_bar, "style transfer")
    finally:
        restore()
    return StyleTransferResult(image[0], losses, parts)
