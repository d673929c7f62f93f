"""Cascading randomization sanity check of attribution methods (Adebayo et al., 2018; lecture 12).

``sanity_check.py`` compares a method's map on the trained model with its map on a *fully*
random copy. Adebayo et al.'s cascading version shows *where* a method stops caring: it
randomizes the weights layer by layer from the top (the class scores) down, and after each step
compares the new map with the trained one::

    step 0: trained model                                  ρ = 1 by definition
    step 1: last layer random                              ρ₁
    step 2: last two layers random                         ρ₂ ...

If a map explains what the model learned, ρ drops as soon as the top layer is random (the class
score it explains is then meaningless). A method whose ρ stays high is mostly showing the
input (edges) or the architecture, not the learned function. The similarity is the Spearman
rank correlation of the absolute maps (max over colour channels), per image, as in the paper.

``attribution_sanity_check`` runs any set of methods (the six of ``METHODS`` by name, or your
own functions); ``plot_attribution_sanity`` draws the maps and the ρ curves.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backend
from ._common import as_batch, as_targets, check_positive_int
from .attribution import check_layer, grad_cam, guided_grad_cam, integrated_gradients, smoothgrad
from .guided_backprop import guided_backprop
from .saliency import input_gradient
from .sanity_check import randomize_weights, spearman_rank_correlation

#: the methods known by name; each ``fn(model, images, targets, layer, steps, samples, seed)``
METHODS = {
    "saliency": lambda m, x, t, layer, steps, samples, seed: input_gradient(m, x, t),
    "guided_backprop": lambda m, x, t, layer, steps, samples, seed: guided_backprop(m, x, t),
    "grad_cam": lambda m, x, t, layer, steps, samples, seed: grad_cam(m, x, t, layer),
    "guided_grad_cam": lambda m, x, t, layer, steps, samples, seed: guided_grad_cam(m, x, t, layer),
    "integrated_gradients": lambda m, x, t, layer, steps, samples, seed: integrated_gradients(m, x, t, steps=steps),
    "smoothgrad": lambda m, x, t, layer, steps, samples, seed: smoothgrad(m, x, t, samples=samples, rng=seed),
}
NEEDS_LAYER = ("grad_cam", "guided_grad_cam")


class AttributionSanity(NamedTuple):
    images: np.ndarray       #: (N, C, H, W) the images explained (host copy, for plotting)
    steps: list              #: step names: "trained", then the layer group randomized at each step
    maps: dict               #: method -> (S + 1, N, H, W) absolute maps, step 0 = trained model
    correlation: dict        #: method -> (S + 1, N) Spearman ρ between each step's map and the trained one
    mean_correlation: dict   #: method -> (S + 1,) ρ averaged over the images


def weight_layer_groups(model):
    """The default cascade: one group per layer with a weight matrix/kernel (Linear, Conv), from
    the output down. A module with only 1-D parameters (batch norm's scale and shift) joins the
    group of the weight layer before it, so "conv + BN" is randomized as one step."""
    groups = []
    for name, module in model.named_modules():
        params = [p for p in module._parameters.values() if p is not None]
        if not params:
            continue
        if any(p.ndim > 1 for p in params) or not groups:
            groups.append([name])
        else:
            groups[-1].append(name)
    return groups[::-1]


def _abs_map(attribution, n):
    """``(N, H, W)`` host array: |map|, maxed over channels for ``(N, C, H, W)`` attributions."""
    a = np.abs(backend.to_numpy(attribution)).astype(np.float64)
    if a.ndim == 4:
        a = a.max(axis=1)
    return a.reshape(n, *a.shape[-2:])


def attribution_sanity_check(model, images, targets, methods=tuple(METHODS), layers_order=None, rng=0,
                             layer=None, steps=32, samples=25):
    """Maps of each method as the model is randomized from the top layer down, and their
    Spearman rank correlation with the trained model's map.

    methods: names from ``METHODS`` or a dict ``{name: fn(model, images, targets) -> map}``
        (map ``(N, C, H, W)`` or ``(N, H, W)``).
    layers_order: the cascade, top first: a list whose items are a module name or a list of
        names randomized together (default: ``weight_layer_groups(model)``).
    rng: seed or Generator for the random weights. SmoothGrad reuses one fixed noise seed on
        every model, so only the weights differ between steps.
    layer: the Grad-CAM layer (needed by "grad_cam" and "guided_grad_cam").
    steps, samples: integrated-gradients path steps and SmoothGrad samples.
    """
    x, _ = as_batch(images, model=model)
    labels = as_targets(targets, x.shape[0])
    steps, samples = check_positive_int(steps, "steps"), check_positive_int(samples, "samples")
    rng = backend.get_rng(rng)
    seed = int(rng.integers(2 ** 31))               # SmoothGrad's noise, the same on every model
    if isinstance(methods, dict):
        fns = {name: (lambda fn: lambda m, *_: fn(m, x, labels))(fn) for name, fn in methods.items()}
    else:
        methods = [methods] if isinstance(methods, str) else list(methods)
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f"methods must be names in {list(METHODS)} or a dict of functions, got {methods}")
        if any(m in NEEDS_LAYER for m in methods):
            check_layer(model, layer)
        fns = {m: METHODS[m] for m in methods}

    groups = weight_layer_groups(model) if layers_order is None else \
        [[g] if isinstance(g, str) else list(g) for g in layers_order]
    for g in groups:
        for name in g:
            check_layer(model, name, "layers_order")

    # The cascade: each step randomizes one more group of the previous step's copy.
    models, current = [model], model
    for g in groups:
        current = randomize_weights(current, rng, layers=g)
        models.append(current)

    n = x.shape[0]
    maps, correlation = {}, {}
    for name, fn in fns.items():
        stack = np.stack([_abs_map(fn(m, x, labels, layer, steps, samples, seed), n) for m in models])
        maps[name] = stack                                                       # (S + 1, N, H, W)
        correlation[name] = np.array([[spearman_rank_correlation(stack[0, i], s[i]) for i in range(n)]
                                      for s in stack])                          # (S + 1, N)
    names = ["trained"] + [" + ".join(g) for g in groups]
    return AttributionSanity(backend.to_numpy(x), names, maps, correlation,
                             {k: v.mean(axis=1) for k, v in correlation.items()})


def plot_attribution_sanity(result, image_index=0, size=1.25, cmap="inferno"):
    """A Figure: (a) one row per method — the input, then its map on the trained model and after
    each cascading randomization step (each map scaled to its own 99th percentile, as ranks are
    what is compared); (b) mean Spearman ρ vs the number of layer groups randomized."""
    from matplotlib.figure import Figure

    methods, n_steps = list(result.maps), len(result.steps)
    if not 0 <= image_index < result.images.shape[0]:
        raise ValueError(f"image_index must lie in [0, {result.images.shape[0]}), got {image_index}")
    ncols = n_steps + 1
    curve_rows = 3                                 # the line plot takes the height of 3 map rows
    fig = Figure(figsize=(size * ncols + 1.2, size * (len(methods) + curve_rows) + 0.9), layout="constrained")
    grid = fig.add_gridspec(len(methods) + curve_rows, ncols)
    image = np.clip(result.images[image_index].transpose(1, 2, 0), 0, 1)
    for row, method in enumerate(methods):
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_ylabel(method.replace("_", " "), fontsize=8, rotation=0, ha="right", va="center")
        if row == 0:
            ax.set_title("input", fontsize=8)
        for step in range(n_steps):
            m = result.maps[method][step, image_index]
            ax = fig.add_subplot(grid[row, step + 1])
            ax.imshow(m, cmap=cmap, vmin=0, vmax=np.percentile(m, 99) or 1.0, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(f"ρ={result.correlation[method][step, image_index]:.2f}", fontsize=7, labelpad=1)
            if row == 0:
                title = "trained" if step == 0 else "random:\n" + result.steps[step].replace(" + ", "\n")
                ax.set_title(title, fontsize=7)
    ax = fig.add_subplot(grid[len(methods):, :])
    x = np.arange(n_steps)
    for method in methods:
        ax.plot(x, result.mean_correlation[method], marker="o", label=method.replace("_", " "))
    ax.axhline(0, color="grey", lw=0.8, ls=":")
    ax.set_xticks(x, ["none"] + [f"{i}: {s}" for i, s in enumerate(result.steps[1:], 1)], rotation=30,
                  ha="right", fontsize=7)
    ax.set_ylim(min(-0.1, min(float(v.min()) for v in result.mean_correlation.values()) - 0.05), 1.05)
    ax.set_title(f"mean over {result.images.shape[0]} images", fontsize=8)
    ax.set_xlabel("layers randomized (cumulative, from the top)", fontsize=8)
    ax.set_ylabel("Spearman ρ with\ntrained map (mean)", fontsize=8)
    ax.legend(fontsize=7, loc="upper right", ncols=2)
    ax.grid(alpha=0.3)
    fig.suptitle("Cascading randomization, top layer first: does the map depend on the learned weights?\n"
                 f"|map| of image {image_index}, each scaled to its own 99th percentile; ρ = Spearman rank "
                 "correlation with the trained map", fontsize=9)
    return fig
