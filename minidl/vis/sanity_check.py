"""Sanity check of saliency methods by model randomization (Adebayo et al., 2018; lecture 12).

If a saliency map explains the *trained model*, it must change when the model's weights are
replaced by random ones. Adebayo et al. found that some methods barely change — guided
backpropagation most notably: its maps look like edge detectors of the input whatever the
weights, because the guided ReLU rule (drop negative gradients) reconstructs image structure
on its own. Plain gradients (saliency) change a lot.

``randomize_weights`` makes the randomized copy; ``model_randomization_check`` computes the
maps of each method on both models and compares them with the Spearman rank correlation of
the absolute maps (as in the paper): close to 1 = the method ignores what the model learned.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backend
from ._common import deep_copy
from .guided_backprop import guided_backprop
from .saliency import input_gradient

METHODS = {
    "saliency": lambda model, images, targets: input_gradient(model, images, targets),
    "guided_backprop": lambda model, images, targets: guided_backprop(model, images, targets),
}


def randomize_weights(model, rng=None, layers=None):
    """A copy of ``model`` whose parameters are redrawn at random (the original is untouched).

    Each parameter tensor with more than one dimension (weights) is replaced by Gaussian noise
    with the same standard deviation as the trained tensor (so activations keep their scale);
    1-D tensors (biases, normalization shifts) are set to their mean. layers: only modules
    whose name starts with one of these prefixes (default: all) — "cascading" randomization
    from the top layer down is a sequence of growing ``layers`` lists.
    """
    rng = backend.get_rng(rng)
    copy = deep_copy(model)
    for name, p in copy.named_parameters():
        if layers is not None and not any(name == l or name.startswith(l + ".") for l in layers):
            continue
        xp = backend.get_array_module(p.data)
        if p.ndim > 1:
            std = float(p.data.std()) or 1.0
            noise = rng.standard_normal(p.shape).astype(p.dtype) * std
            p.data = xp.asarray(backend.to_device(noise, p.device))
        else:
            p.data = xp.full_like(p.data, float(p.data.mean()))
    return copy


def average_ranks(values):
    """Ranks 0..n-1 of a 1-D array, ties sharing the mean of their ranks (``scipy.stats.rankdata``
    minus 1). Ties matter here: guided-backprop maps hold many exact zeros, and ranking tied
    zeros by position would invent a correlation between any two maps with zeros in the same
    places."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # start of each run of equal values, and its length
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    lengths = np.diff(np.r_[starts, len(values)])
    mean_rank = starts + (lengths - 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, lengths)
    return ranks


def spearman_rank_correlation(a, b):
    """Spearman's ρ between two arrays of the same size: the Pearson correlation of their
    (tie-averaged) ranks. 0 when either array is constant."""
    a = np.asarray(backend.to_numpy(a), dtype=np.float64).ravel()
    b = np.asarray(backend.to_numpy(b), dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same size, got {a.size} and {b.size}")
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else 0.0


class RandomizationCheck(NamedTuple):
    trained: dict          #: method -> (N, H, W) absolute maps (max over channels) of the trained model
    randomized: dict       #: method -> the same for the randomized model
    similarity: dict       #: method -> (N,) Spearman ρ between trained and randomized maps
    mean_similarity: dict  #: method -> float, mean over the images


def model_randomization_check(model, images, targets, methods=("saliency", "guided_backprop"),
                              rng=None, randomized_model=None):
    """Maps of each method on the trained and the randomized model, and their similarity.

    methods: names from ``METHODS`` or ``{name: fn(model, images, targets) -> gradient}``.
    randomized_model: a ready randomized copy (default: ``randomize_weights(model, rng)``).
    """
    if not isinstance(methods, dict):
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"methods must be names in {sorted(METHODS)} or a dict of functions, got {unknown}")
        methods = {m: METHODS[m] for m in methods}
    randomized_model = randomized_model if randomized_model is not None else randomize_weights(model, rng)
    trained, randomized, similarity = {}, {}, {}
    for name, fn in methods.items():
        a = np.abs(backend.to_numpy(fn(model, images, targets))).max(axis=-3)
        b = np.abs(backend.to_numpy(fn(randomized_model, images, targets))).max(axis=-3)
        a, b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
        trained[name], randomized[name] = a, b
        similarity[name] = np.array([spearman_rank_correlation(x, y) for x, y in zip(a, b)])
    return RandomizationCheck(trained, randomized, similarity,
                              {k: float(v.mean()) for k, v in similarity.items()})
