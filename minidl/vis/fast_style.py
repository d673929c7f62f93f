"""Fast style transfer: train a network to stylize in one forward pass (Johnson et al., 2016;
lecture 12).

Gatys's style transfer optimizes every output image from scratch. Johnson et al. instead train
a feed-forward *transform network* ``f_W`` (``minidl.models.TransformNet``) on many content
images with the very same loss (``style_transfer.StyleLoss``: content + Gram-matrix style +
TV, measured by a fixed feature extractor)::

    W* = argmin_W  Σ_images  L_style-transfer( f_W(content), content, style )

After training, stylizing is one forward pass. Ulyanov et al. (2017) found that *instance*
normalization (statistics per image) instead of batch normalization makes the stylized
images much better — contrast is a per-image property; and Dumoulin et al. (2017) train one
network for many styles with *conditional* instance norm (a scale and shift per style):
mixing the per-style scales/shifts with weights interpolates between styles.

``train_fast_style`` is that training loop; the style of each batch is picked in turn from
``style_images`` (one-hot style weights for a conditional network).
"""
from __future__ import annotations

import time

import numpy as np

from .. import backend
from ..optim import Adam
from ..autograd import Tensor, no_grad
from ._common import as_batch, check_positive_int, frozen_eval_copy, progress
from .style_transfer import StyleLoss


def style_weights(num_styles, style, batch_size):
    """``(N, S)`` mixing weights: ``style`` an int (one-hot), or a length-S vector of weights."""
    if isinstance(style, (int, np.integer)):
        if not 0 <= style < num_styles:
            raise ValueError(f"style must be in [0, {num_styles}), got {style}")
        w = np.zeros(num_styles, dtype=backend.default_dtype)
        w[style] = 1
    else:
        w = np.asarray(style, dtype=backend.default_dtype)
        if w.shape != (num_styles,):
            raise ValueError(f"style weights must have shape ({num_styles},), got {w.shape}")
    return np.broadcast_to(w, (batch_size, num_styles)).copy()


def _run(net, x, style):
    """``net(x)`` for a single-style network, ``net(x, weights)`` for a conditional one."""
    if getattr(net, "num_styles", 1) > 1 or style is not None:
        weights = style_weights(net.num_styles, 0 if style is None else style, x.shape[0])
        return net(x, Tensor(backend.to_device(weights, x.device)))
    return net(x)


def train_fast_style(net, loss_model, content_images, style_images, content_layer, style_layers,
                     content_weight=1.0, style_layer_weights=None, tv_weight=0.0, epochs=1,
                     batch_size=4, lr=1e-3, rng=None, progress_bar=True, max_steps=None):
    """Train the transform network ``net`` on ``content_images (N, C, H, W)``.

    style_images: one style image ``(C, H', W')`` or a list of them (a conditional network
        with ``net.num_styles == len(style_images)``; batch ``b`` uses style ``b mod S``).
    loss_model: the fixed feature extractor measuring the loss (its weights are not trained).
    Returns a history dict: ``loss`` (per step), ``style``/``content`` terms, ``seconds``,
    ``images_seen``.
    """
    contents, _ = as_batch(content_images, "content_images", model=net)
    styles = [style_images] if getattr(style_images, "ndim", 0) == 3 else list(style_images)
    num_styles = getattr(net, "num_styles", 1)
    if len(styles) != num_styles:
        raise ValueError(f"net has {num_styles} style(s) but {len(styles)} style image(s) were given")
    batch_size = check_positive_int(batch_size, "batch_size")
    rng = backend.get_rng(rng)
    restore = frozen_eval_copy(loss_model)
    history = {"loss": [], "style": [], "content": [], "seconds": 0.0, "images_seen": 0}
    start = time.perf_counter()
    try:
        losses = [StyleLoss(loss_model, s, content_layer, style_layers, content_weight,
                            style_layer_weights, tv_weight) for s in styles]
        opt = Adam(net.parameters(), lr=lr)
        net.train()
        steps_per_epoch = -(-len(contents) // batch_size)
        total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
        bar = progress(range(total), progress_bar, "fast style")
        step = 0
        for _ in bar:
            if step % steps_per_epoch == 0:
                order = rng.permutation(len(contents))
            idx = order[(step % steps_per_epoch) * batch_size:(step % steps_per_epoch + 1) * batch_size]
            x = Tensor(contents[idx])
            style = step % num_styles
            loss_fn = losses[style]
            out = _run(net, x, style if num_styles > 1 else None)
            loss = loss_fn(out, loss_fn.content_features(x.data))
            opt.zero_grad()
            loss.backward()
            opt.step()
            history["loss"].append(float(loss.item()))
            history["style"].append(loss_fn.last.get("style", 0.0))
            history["content"].append(loss_fn.last.get("content", 0.0))
            history["images_seen"] += len(idx)
            step += 1
    finally:
        restore()
        net.eval()
    history["seconds"] = time.perf_counter() - start
    return history


def stylize(net, images, style=None, batch_size=16):
    """Run the trained ``net`` on ``images (N, C, H, W)`` or ``(C, H, W)`` without a graph.

    style: for a conditional network, a style index or a vector of mixing weights
    (e.g. ``[0.5, 0.5]`` halfway between styles 0 and 1)."""
    x, single = as_batch(images, model=net)
    net.eval()
    outs = []
    with no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(_run(net, Tensor(x[i:i + batch_size]), style).data)
    out = backend.get_array_module(x).concatenate(outs)
    return out[0] if single else out
