"""Occlusion sensitivity: slide a grey square over the image and watch the class score (lecture 12).

Zeiler & Fergus (2014): if hiding a region of the image makes the network much less sure of
the right class, the network was using that region. For every position of a
``patch_size × patch_size`` occluder (moved by ``stride``), the occluded image is scored; the
heatmap holds the target class's score (probability by default) at each occluder position.
Low values mark regions the prediction depends on.

Every occluded copy is an independent input, so they are scored in batches of ``batch_size``
— one forward pass per batch instead of one per position (no gradients needed).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backend
from ..functional.activation import softmax
from ..autograd import Tensor, no_grad
from ._common import as_batch, check_positive_int, progress


class OcclusionResult(NamedTuple):
    heatmap: object       #: (nY, nX) target score with the occluder at each grid position
    baseline: float       #: the score of the unoccluded image
    pixel_drop: object    #: (H, W) mean score *drop* over the occluder positions covering a pixel
    positions: tuple      #: (ys, xs) top-left pixel of the occluder for each heatmap row / column


def _starts(size, patch, stride):
    """Top-left positions along one axis; the last one touches the border so nothing is skipped."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def occlusion_heatmap(model, image, target, patch_size=8, stride=4, fill_value=0.5,
                      score="probability", batch_size=64, progress_bar=False):
    """Occlusion map of one image ``(C, H, W)`` for class ``target``.

    patch_size: side of the square occluder (pixels); stride: its step.
    fill_value: what the occluder paints: a number (0.5 = mid grey for images in [0, 1]) or
        ``"mean"`` (the image's per-channel mean — occludes without adding an edge of new
        colour).
    score: ``"probability"`` (softmax of the scores, Zeiler & Fergus) or ``"logit"`` (raw score).
    Returns an ``OcclusionResult``.
    """
    x, single = as_batch(image, "image", model=model)
    if not single:
        raise ValueError(f"image must be one image (C, H, W), got shape {tuple(x.shape)}")
    _, c, h, w = x.shape
    patch_size = check_positive_int(patch_size, "patch_size")
    stride = check_positive_int(stride, "stride")
    batch_size = check_positive_int(batch_size, "batch_size")
    if patch_size > min(h, w):
        raise ValueError(f"patch_size must be at most the image side min(H, W) = {min(h, w)}, got {patch_size}")
    if score not in ("probability", "logit"):
        raise ValueError(f"score must be 'probability' or 'logit', got {score!r}")
    xp = backend.get_array_module(x)
    fill = x.mean(axis=(2, 3), keepdims=True)[0] if isinstance(fill_value, str) and fill_value == "mean" \
        else xp.asarray(float(fill_value), dtype=x.dtype)
    ys, xs = _starts(h, patch_size, stride), _starts(w, patch_size, stride)
    positions = [(y, x0) for y in ys for x0 in xs]

    def scores_of(batch):
        out = model(Tensor(batch))
        if out.ndim != 2:
            raise ValueError(f"the model must return class scores (N, K), got shape {out.shape}")
        out = softmax(out, axis=1) if score == "probability" else out
        return out.data[:, target]

    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            baseline = float(scores_of(x)[0])
            values = []
            chunks = range(0, len(positions), batch_size)
            for start in progress(chunks, progress_bar, "occlusion"):
                chunk = positions[start:start + batch_size]
                batch = xp.repeat(x, len(chunk), axis=0)          # (B, C, H, W) copies
                for b, (y, x0) in enumerate(chunk):
                    batch[b, :, y:y + patch_size, x0:x0 + patch_size] = fill
                values.append(scores_of(batch))
    finally:
        model.train(was_training)
    heatmap = xp.concatenate(values).reshape(len(ys), len(xs))
    # Per pixel: the average drop over all occluder positions that covered it.
    drop_sum = xp.zeros((h, w), dtype=np.float64)
    count = xp.zeros((h, w), dtype=np.float64)
    for (y, x0), v in zip(positions, heatmap.ravel().tolist()):
        drop_sum[y:y + patch_size, x0:x0 + patch_size] += baseline - v
        count[y:y + patch_size, x0:x0 + patch_size] += 1
    return OcclusionResult(heatmap, baseline, drop_sum / xp.maximum(count, 1), (ys, xs))
