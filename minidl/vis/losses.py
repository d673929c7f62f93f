"""The losses of feature inversion, neural texture synthesis and style transfer (lecture 12).

* ``gram_matrix``: the *style* of a feature map — which channels fire together, with the
  spatial arrangement averaged away (Gatys et al., 2015). For features ``F`` of shape
  ``(C, H·W)``: ``G = F Fᵀ / (C·H·W)``, a ``(C, C)`` matrix of channel co-occurrences.
* ``style_loss``: squared Frobenius distance between Gram matrices, summed over layers with
  weights (low layers: small patterns; high layers: larger structures).
* ``content_loss``: mean squared difference of one layer's features (what is where).
* ``total_variation``: sum of squared differences between neighbouring pixels — the
  smoothness prior of feature inversion (Mahendran & Vedaldi, 2015) and style transfer.

All are built from minidl ops, so autograd differentiates them.
"""
from __future__ import annotations

from .. import functional as F


def gram_matrix(features, normalize=True):
    """``(N, C, H, W)`` features → ``(N, C, C)`` Gram matrices ``F Fᵀ`` (/ C·H·W if ``normalize``)."""
    if features.ndim != 4:
        raise ValueError(f"features must have shape (N, C, H, W), got {features.shape}")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = F.gram(flat)                                      # (N, C, L) @ (N, L, C)
    return gram / (c * h * w) if normalize else gram


def style_loss(features, target_grams, weights):
    """``Σ_l w_l ‖G(features[l]) − target_grams[l]‖²_F`` (summed over the batch too).

    features: ``{layer: (N, C, H, W) Tensor}``; target_grams: ``{layer: (1 or N, C, C) array}``;
    weights: ``{layer: float}`` (a layer missing from ``weights`` is not used).
    """
    total = None
    for layer, w in weights.items():
        diff = gram_matrix(features[layer]) - target_grams[layer]
        term = (diff * diff).sum() * w
        total = term if total is None else total + term
    return total


def content_loss(features, target):
    """Mean squared difference between ``features`` and ``target`` (same shape)."""
    diff = features - target
    return (diff * diff).mean()


def total_variation(images):
    """``Σ (I[i+1, j] − I[i, j])² + (I[i, j+1] − I[i, j])²`` over ``(N, C, H, W)`` images."""
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {images.shape}")
    dy = images[:, :, 1:, :] - images[:, :, :-1, :]
    dx = images[:, :, :, 1:] - images[:, :, :, :-1]
    return (dy * dy).sum() + (dx * dx).sum()
