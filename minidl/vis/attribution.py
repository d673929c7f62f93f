"""Attribution methods beside saliency: Grad-CAM, guided Grad-CAM, integrated gradients, SmoothGrad
(lecture 12: which parts of the input made the network say "circle"?).

A saliency map (``saliency.py``) is the raw gradient ``∂s_c/∂x``: local, noisy, and blind to
features that are already saturated. The four methods here fix one weakness each:

* **Grad-CAM** (Selvaraju et al., 2017) looks at a *layer* instead of the pixels. With the
  activations ``A`` ``(N, K, h, w)`` of a late conv layer and the gradient of the class score
  ``s_c`` with respect to them, each channel gets a weight (its gradient averaged over space)
  and the map is the weighted sum of the channels, negative evidence cut off::

      α_k = 1/(h·w) Σ_ij ∂s_c/∂A_k[i, j]            (N, K)
      L   = ReLU(Σ_k α_k A_k)                         (N, h, w), upsampled bilinearly to (N, H, W)

  Coarse (one value per feature-map cell) but class-discriminative. For a network ending in
  "global average pool + linear", ``α_k = w_{c,k}/(h·w)`` and Grad-CAM is exactly the class
  activation map (CAM) of Zhou et al. (2016) divided by ``h·w``.
* **Guided Grad-CAM** multiplies guided backprop (pixel-sharp, but not class-specific) by the
  upsampled Grad-CAM map (class-specific, but coarse).
* **Integrated gradients** (Sundararajan et al., 2017) average the gradient along the straight
  path from a baseline ``x′`` (a black image by default) to ``x``::

      IG(x) = (x − x′) ⊙ ∫₀¹ ∂s_c/∂x (x′ + α(x − x′)) dα

  By the fundamental theorem of calculus for path integrals, the attributions sum to
  ``s_c(x) − s_c(x′)`` ("completeness"); the integral is approximated by a quadrature rule over
  ``steps`` path points, so ``completeness_gap`` measures how good the approximation is.
* **SmoothGrad** (Smilkov et al., 2017) averages the gradient over copies of the image with
  Gaussian noise added: ``1/n Σ ∂s_c/∂x (x + ε_i)``, ``ε_i ~ N(0, σ²)``, ``σ = noise_level ·
  (max(x) − min(x))``. The gradient of a ReLU network jumps from point to point; the average
  keeps what is common to the neighbourhood and looks much less noisy.

All four work on any minidl model and follow ``saliency_map``'s conventions: images ``(N, C, H,
W)`` or one ``(C, H, W)`` image (array or Tensor; cast to the model's dtype and moved to its
device), targets a class index per image (or one int), results as arrays on the model's device
(``(C, H, W)``/``(H, W)`` for one image). ``sanity_attribution.py`` checks which of them
actually depend on the learned weights.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..nn.inspect import capture_activations
from ..autograd import Tensor, no_grad
from ._common import as_batch, as_targets, check_positive_int, class_scores, frozen_eval_copy, resize
from .guided_backprop import guided_backprop
from .saliency import input_gradient


# ---- Grad-CAM ---------------------------------------------------------------------------------

def check_layer(model, layer, name="layer"):
    """``layer`` must be the name of a submodule (``model.named_modules()``), else a ValueError
    that lists the valid names."""
    names = [n for n, _ in model.named_modules() if n]
    if not isinstance(layer, str) or layer not in names:
        raise ValueError(f"{name} must be the name of a submodule of the model, got {layer!r}; "
                         f"valid names: {names}")
    return layer


def grad_cam_weights(model, x, labels, layer):
    """Activations ``A`` ``(N, K, h, w)`` of ``layer`` and the Grad-CAM channel weights
    ``α = mean over (h, w) of ∂s_c/∂A`` ``(N, K)``, for a prepared batch ``x``."""
    restore = frozen_eval_copy(model)
    try:
        # The weights are frozen, so nothing in the graph would require a gradient; letting the
        # input require one makes every tensor downstream of it (the activation included) part
        # of the graph. The input's own gradient is a by-product we do not use.
        x = Tensor(x, requires_grad=True)
        with capture_activations(model, layer) as acts:
            score = class_scores(model, x, labels)
        if layer not in acts:
            raise ValueError(f"layer {layer!r} was not called during model(images)")
        act = acts[layer]
        if act.ndim != 4:
            raise ValueError(f"layer must produce a feature map (N, K, h, w), {layer!r} gives shape {act.shape}")
        act.retain_grad()        # a non-leaf tensor: ask the engine to keep its .grad
        score.sum().backward()   # images do not interact, so one backward serves the batch
    finally:
        restore()
    return act.data, act.grad.data.mean(axis=(2, 3))


def grad_cam(model, images, targets, layer):
    """Selvaraju et al.'s Grad-CAM: ``ReLU(Σ_k α_k A_k)`` at ``layer``, resized to the image.

    layer: the name of a module whose output is a feature map ``(N, K, h, w)`` — usually the
        last convolution's ReLU (``"features.10"`` in the shapes classifier).
    Returns ``(N, H, W)`` (``(H, W)`` for one image), non-negative, on the model's device.
    """
    check_layer(model, layer)
    x, single = as_batch(images, model=model)
    labels = as_targets(targets, x.shape[0])
    act, alpha = grad_cam_weights(model, x, labels, layer)
    xp = backend.get_array_module(act)
    cam = xp.maximum((alpha[:, :, None, None] * act).sum(axis=1), 0)      # (N, h, w)
    # Bilinear interpolation of non-negative values stays non-negative: no second ReLU needed.
    cam = resize(cam[:, None], x.shape[-2:])[:, 0]                       # (N, H, W)
    return cam[0] if single else cam


def guided_grad_cam(model, images, targets, layer):
    """Guided backprop ``(N, C, H, W)`` times the Grad-CAM map ``(N, H, W)`` (broadcast over the
    channels): sharp like guided backprop, class-specific like Grad-CAM. Same shape as images."""
    check_layer(model, layer)
    x, single = as_batch(images, model=model)
    labels = as_targets(targets, x.shape[0])
    guided = guided_backprop(model, x, labels)
    cam = grad_cam(model, x, labels, layer)
    out = guided * cam[:, None]
    return out[0] if single else out


# ---- integrated gradients ---------------------------------------------------------------------

_RULES = ("midpoint", "trapezoid")


def path_weights(steps, rule="midpoint"):
    """Points ``α`` in [0, 1] on the path and quadrature weights (summing to 1) for ∫₀¹ f(α) dα.

    midpoint: ``α = (k + ½)/steps``, equal weights — ``steps`` gradients, exact for linear f.
    trapezoid: ``α = k/steps``, k = 0..steps, end points weighted ½ — ``steps + 1`` gradients.
    Both have an error of order 1/steps² for a smooth integrand (a ReLU network's gradient is
    only piecewise constant along the path, so there the error shrinks more slowly).
    """
    steps = check_positive_int(steps, "steps")
    if rule == "midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    if rule == "trapezoid":
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
        return np.arange(steps + 1) / steps, weights
    raise ValueError(f"rule must be one of {_RULES}, got {rule!r}")


def _baseline_like(baseline, x):
    """The baseline as an array shaped like the batch ``x`` (zeros = a black image by default)."""
    xp = backend.get_array_module(x)
    if baseline is None:
        return xp.zeros_like(x)
    b = baseline.data if isinstance(baseline, Tensor) else baseline
    b = xp.asarray(backend.to_device(b, backend.device_of(x)), dtype=x.dtype)
    if b.shape not in (x.shape, x.shape[1:]):
        raise ValueError(f"baseline must have the images' shape {tuple(x.shape)} or one image's "
                         f"{tuple(x.shape[1:])}, got {tuple(b.shape)}")
    return xp.broadcast_to(b, x.shape).copy()


def integrated_gradients(model, images, targets, baseline=None, steps=32, rule="midpoint", batch_size=64):
    """Sundararajan et al.'s integrated gradients ``(x − x′) ⊙ mean gradient on the path x′ → x``.

    baseline: ``x′``, shaped like ``images`` or like one image (default: zeros, a black image).
    steps: number of quadrature intervals (``rule`` = "midpoint" or "trapezoid", see
        ``path_weights``). batch_size: path points (over all images) per forward/backward pass.
    Returns ``(N, C, H, W)`` (``(C, H, W)`` for one image); ``completeness_gap`` checks it.
    """
    x, single = as_batch(images, model=model)
    labels = as_targets(targets, x.shape[0])
    batch_size = check_positive_int(batch_size, "batch_size")
    alphas, weights = path_weights(steps, rule)
    x0 = _baseline_like(baseline, x)
    xp = backend.get_array_module(x)
    n = x.shape[0]
    # Every (image, α) pair is one path point; they are independent, so any grouping into
    # batches gives the same gradients. Point p belongs to image p // len(alphas).
    total = n * len(alphas)
    avg_grad = xp.zeros_like(x)
    for start in range(0, total, batch_size):
        p = np.arange(start, min(start + batch_size, total))
        img, a = p // len(alphas), alphas[p % len(alphas)]
        a_dev = xp.asarray(a, dtype=x.dtype)[:, None, None, None]
        img_dev = xp.asarray(img)
        points = x0[img_dev] + a_dev * (x[img_dev] - x0[img_dev])          # (B, C, H, W)
        grad = input_gradient(model, points, labels[img])
        grad *= xp.asarray(weights[p % len(alphas)], dtype=x.dtype)[:, None, None, None]
        # add each image's weighted gradients to its average (an image's path may span batches)
        for i in np.unique(img):
            rows = np.flatnonzero(img == i)       # contiguous: points are ordered image by image
            avg_grad[i] += grad[rows[0]:rows[-1] + 1].sum(axis=0)
    out = (x - x0) * avg_grad
    return out[0] if single else out


def completeness_gap(model, images, targets, attributions, baseline=None):
    """``Σ attributions − (s_c(x) − s_c(x′))`` per image ``(N,)`` (a NumPy array): zero for exact
    integrated gradients, so it measures the quadrature error. Also returns the score difference
    ``s_c(x) − s_c(x′)`` ``(N,)`` to make the gap relative: ``(gap, delta)``."""
    x, _ = as_batch(images, model=model)
    labels = as_targets(targets, x.shape[0])
    attr = backend.to_numpy(attributions.data if isinstance(attributions, Tensor) else attributions)
    if attr.size != x.size:
        raise ValueError(f"attributions must have the images' shape {tuple(x.shape)}, got {tuple(attr.shape)}")
    attr = attr.reshape(x.shape[0], -1).astype(np.float64)
    x0 = _baseline_like(baseline, x)
    restore = frozen_eval_copy(model)
    try:
        with no_grad():
            delta = (class_scores(model, Tensor(x), labels) - class_scores(model, Tensor(x0), labels)).numpy()
    finally:
        restore()
    return attr.sum(axis=1) - delta, delta


# ---- SmoothGrad -------------------------------------------------------------------------------

def smoothgrad(model, images, targets, samples=25, noise_level=0.15, rng=None, batch_size=64):
    """Smilkov et al.'s SmoothGrad: the input gradient averaged over ``samples`` noisy copies.

    noise_level: the noise std as a fraction of each image's value range, ``σ = noise_level ·
        (max − min)`` (the paper finds 10–20 % works best; 0 gives the plain gradient).
    rng: seed or ``numpy.random.Generator`` for the noise (same seed → same map).
    batch_size: noisy images per forward/backward pass.
    Returns the averaged (signed) gradient, same shape as ``images``.
    """
    samples = check_positive_int(samples, "samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(noise_level, numbers.Real) or not noise_level >= 0:
        raise ValueError(f"noise_level must be a number >= 0, got {noise_level!r}")
    rng = backend.get_rng(rng)
    x, single = as_batch(images, model=model)
    labels = as_targets(targets, x.shape[0])
    xp = backend.get_array_module(x)
    n = x.shape[0]
    sigma = noise_level * (x.reshape(n, -1).max(axis=1) - x.reshape(n, -1).min(axis=1))   # (N,)
    sigma = sigma[None, :, None, None, None]
    total = xp.zeros_like(x)
    per_pass = max(1, batch_size // n)            # whole noisy copies of the batch per pass
    for start in range(0, samples, per_pass):
        k = min(per_pass, samples - start)
        # Drawn on the host in float64, sample by sample: the noise is the same whatever
        # batch_size, and the same on CPU and GPU for one seed.
        noise = xp.asarray(backend.to_device(rng.standard_normal((k,) + x.shape), backend.device_of(x)))
        noisy = (x[None] + (sigma * noise).astype(x.dtype)).reshape((k * n,) + x.shape[1:])
        grad = input_gradient(model, noisy, np.tile(labels, k))
        total += grad.reshape((k,) + x.shape).sum(axis=0)
    out = total / samples
    return out[0] if single else out
