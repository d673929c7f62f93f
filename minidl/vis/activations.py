"""Looking at activations: features for neighbours/embeddings and maximally activating patches
(lecture 12).

* ``extract_features``: run a batch of images to a layer and flatten — the "last-layer
  features" whose nearest neighbours (``embedding.nearest_neighbors``) are semantically similar
  images even when their pixels are far apart, and whose PCA / t-SNE (``embedding.py``) cluster
  by class.
* ``max_activating_patches``: for one channel of one layer, the image patches where it fires
  most (Girshick et al., 2014) — each patch is the *receptive field* of the unit
  (``receptive_field.py``), so it shows exactly what the unit could see.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad
from ._common import as_batch, check_positive_int, layer_output, progress
from .receptive_field import _flatten, patch_for_unit, receptive_fields


def extract_features(model, images, layer=None, batch_size=128, progress_bar=False):
    """``(N, D)`` NumPy features of ``images (N, C, H, W)`` at ``layer`` (``None``: the model
    output), flattened per image, computed in batches without a graph in eval mode."""
    x, _ = as_batch(images, model=model)
    batch_size = check_positive_int(batch_size, "batch_size")
    was_training = getattr(model, "training", False)
    model.eval()
    out = []
    try:
        with no_grad():
            for i in progress(range(0, len(x), batch_size), progress_bar, "features"):
                f = layer_output(model, Tensor(x[i:i + batch_size]), layer).data
                out.append(backend.to_numpy(f).reshape(len(f), -1))
    finally:
        model.train(was_training)
    return np.concatenate(out)


def receptive_field_of(model, layer):
    """The ``ReceptiveField`` of ``layer`` in a (nested) Sequential ``model``: the layers up to
    and including it, in order, through ``receptive_fields``."""
    prefix = []
    for name, module in _flatten(model):
        prefix.append(module)
        if name == layer:
            break
    else:
        raise ValueError(f"layer {layer!r} is not a leaf layer of the model's Sequential stack")
    return receptive_fields(prefix)[-1]


class Patch(NamedTuple):
    image_index: int
    y: int                 #: unit row in the feature map
    x: int                 #: unit column
    activation: float
    box: tuple             #: (x1, y1, x2, y2) in the image, end-exclusive
    pixels: object         #: (C, y2 - y1, x2 - x1) the patch


def max_activating_patches(model, images, layer, channel, k=9, batch_size=64, rf_model=None,
                           progress_bar=False, one_per_image=False):
    """The ``k`` image patches that activate ``channel`` of ``layer`` most, strongest first.

    Every unit of the channel's map in every image competes (a unit at most once per image
    position). rf_model: the Sequential whose leaf layers define the receptive field
    (default: ``model``; pass e.g. ``model.features`` when the model wraps its trunk).
    one_per_image: keep only each image's strongest unit, then the ``k`` best images (as in
    Zeiler & Fergus' figures) — otherwise neighbouring units of one image give near-copies.
    Returns a list of ``Patch``.
    """
    x, _ = as_batch(images, model=model)
    k = check_positive_int(k, "k")
    rf = receptive_field_of(rf_model if rf_model is not None else model, layer)
    maps = []
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            for i in progress(range(0, len(x), batch_size), progress_bar, "activations"):
                act = layer_output(model, Tensor(x[i:i + batch_size]), layer).data
                if act.ndim != 4:
                    raise ValueError(f"layer {layer!r} must output (N, C, H, W) feature maps, got {act.shape}")
                if not 0 <= channel < act.shape[1]:
                    raise ValueError(f"channel must be in [0, {act.shape[1]}), got {channel}")
                maps.append(backend.to_numpy(act[:, channel]))
    finally:
        model.train(was_training)
    maps = np.concatenate(maps)                                  # (N, h, w)
    if one_per_image:
        per_image = maps.reshape(len(maps), -1)
        best = np.argsort(-per_image.max(axis=1), kind="stable")[:k]       # the k images whose best unit wins
        order = best * per_image.shape[1] + per_image[best].argmax(axis=1)  # flat index of that unit
    else:
        order = np.argsort(-maps.ravel(), kind="stable")[:k]
    patches = []
    for flat in order:
        n, y, xx = np.unravel_index(flat, maps.shape)
        box = patch_for_unit(rf, int(y), int(xx), tuple(x.shape[2:]))
        x1, y1, x2, y2 = box
        patches.append(Patch(int(n), int(y), int(xx), float(maps[n, y, xx]), box,
                             backend.to_numpy(x[n, :, y1:y2, x1:x2])))
    return patches
