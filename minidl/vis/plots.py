"""Plotting helpers for the lecture-12 figures: embeddings, image grids, filter grids.

Lecture idea: "visualizing and understanding" is mostly *looking*: at the first-layer filters
(oriented edges and colour blobs, like AlexNet's), at images laid out by a t-SNE of their
features, at rows of nearest neighbours. These helpers make those figures.

Every function builds a ``matplotlib.figure.Figure`` directly — never through ``pyplot`` — and
returns it: nothing is shown, no global figure is left open, and it works the same headless
(the Agg backend writes the PNG on ``fig.savefig(path)``), in a script and in a notebook
(Jupyter displays a returned Figure).

Images use minidl's layout: one image ``(C, H, W)`` with C = 1 or 3, or ``(H, W)``; a batch
``(N, C, H, W)`` or ``(N, H, W)``. NumPy/CuPy arrays and Tensors are accepted.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from .. import backend
from ..autograd import Tensor


def _to_numpy(x, name):
    """A NumPy copy of an array, a Tensor (its data) or nested lists."""
    if isinstance(x, Tensor):
        x = x.data
    x = backend.to_numpy(x)
    if x.dtype == object:
        raise TypeError(f"{name} must be a numeric array or a Tensor, got {type(x).__name__} of objects")
    return x


def _as_nchw(images, name="images"):
    """Batch of images -> float ``(N, 3, H, W)`` (grey images repeated on the 3 channels)."""
    images = _to_numpy(images, name).astype(np.float64)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have shape (N, C, H, W) with C = 1 or 3, or (N, H, W), "
                         f"got {images.shape}")
    return np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images


def _rescale(images, low, high):
    """Map [low, high] linearly onto [0, 1] (a constant image becomes 0)."""
    return (images - low) / max(high - low, 1e-12)


def image_grid(images, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False,
               pad_value=0.0):
    """Lay a batch of images out in a grid; returns an ``(H, W, 3)`` float array (``imshow``-able).

    Arguments as torchvision's ``make_grid``: ``nrow`` images per row; ``padding`` pixels
    between them, filled with ``pad_value``; ``normalize=True`` maps ``value_range`` (default:
    the min and max of the batch) to [0, 1], or each image's own min/max with
    ``scale_each=True`` — what you want for images whose ranges differ, like gradients or
    class visualizations. Values are not clipped (``show_image_grid`` clips for display).
    """
    images = _as_nchw(images)
    if not isinstance(nrow, (int, np.integer)) or nrow < 1:
        raise ValueError(f"nrow must be a positive int, got {nrow!r}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if normalize:
        if scale_each:
            images = np.stack([_rescale(im, *(value_range or (im.min(), im.max()))) for im in images])
        else:
            images = _rescale(images, *(value_range or (images.min(), images.max())))
    n, _, h, w = images.shape
    columns = min(nrow, n)
    rows = math.ceil(n / columns)
    grid_shape = (rows * (h + padding) + padding, columns * (w + padding) + padding, 3)
    grid = np.full(grid_shape, pad_value, dtype=np.float64)
    for i, image in enumerate(images):
        top = padding + (i // columns) * (h + padding)
        left = padding + (i % columns) * (w + padding)
        grid[top:top + h, left:left + w] = image.transpose(1, 2, 0)
    return grid


def show_image_grid(images, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False,
                    pad_value=0.0, title=None, scale=1.5):
    """``image_grid`` drawn in a Figure (clipped to [0, 1], no axes); returns the Figure.

    scale: inches per 32 pixels of the grid.
    """
    grid = np.clip(image_grid(images, nrow, padding, normalize, value_range, scale_each, pad_value), 0.0, 1.0)
    return _grid_figure(grid, scale / 32, title)


def _grid_figure(grid, inches_per_pixel, title):
    """A Figure showing an (H, W[, 3]) grid without axes, at least 2 inches on each side."""
    fig = Figure(figsize=(max(grid.shape[1] * inches_per_pixel, 2.0), max(grid.shape[0] * inches_per_pixel, 2.0)))
    ax = fig.add_subplot()
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def show_filter_grid(weights, nrow=None, max_filters=64, max_channels=16, title=None, scale=1.0):
    """The filters of a conv layer, ``weights (F, C, kh, kw)``, as a grid; returns the Figure.

    Each filter is min-max normalized on its own (the scale of a filter says nothing about
    what it looks for, only its pattern does — the convention of the lecture's AlexNet
    conv1 picture). With C = 3 (a first layer reading RGB) each filter is one colour tile,
    ``nrow`` per row (default ~square). Otherwise each row is one filter and each column one
    of its input channels, in grey (up to ``max_filters`` rows and ``max_channels`` columns).
    """
    weights = _to_numpy(weights, "weights").astype(np.float64)
    if weights.ndim != 4:
        raise ValueError(f"weights must have shape (F, C, kh, kw), got {weights.shape}")
    weights = weights[:max_filters]
    n_filters, channels = weights.shape[:2]
    if channels == 3:
        tiles = weights
        per_row = nrow or math.ceil(math.sqrt(n_filters))
    else:
        channels = min(channels, max_channels)
        tiles = weights[:, :channels].reshape(-1, 1, *weights.shape[2:])   # filter-major
        per_row = channels
    grid = image_grid(tiles, nrow=per_row, padding=1, normalize=True, scale_each=True, pad_value=1.0)
    return _grid_figure(grid, scale / 16, title)


def plot_embedding(points, labels=None, images=None, class_names=None, max_thumbnails=60,
                   thumbnail_zoom=1.0, title=None, figsize=(7, 7), rng=0):
    """A 2-D embedding (t-SNE, PCA) as a scatter coloured by class; returns the Figure.

    points: ``(N, 2)``; labels: ``(N,)`` ints (one colour per class, legend with
    ``class_names``) or None; images: optional ``(N, C, H, W)`` / ``(N, H, W)`` drawn as
    thumbnails at their points — up to ``max_thumbnails``, picked in random order (``rng``)
    but skipping any that would land on top of one already drawn, so the picture shows the
    layout rather than a pile of images.
    """
    from matplotlib import colormaps
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    points = _to_numpy(points, "points").astype(np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {points.shape}")
    n = len(points)
    labels = np.zeros(n, dtype=np.int64) if labels is None else _to_numpy(labels, "labels")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape (N,) = ({n},), got {labels.shape}")

    fig = Figure(figsize=figsize)
    ax = fig.add_subplot()
    classes = np.unique(labels)
    palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    colour_of = {c: palette(i % palette.N) for i, c in enumerate(classes)}
    for c in classes:
        chosen = labels == c
        name = class_names[int(c)] if class_names is not None else str(c)
        ax.scatter(points[chosen, 0], points[chosen, 1], s=12, color=colour_of[c], label=name)
    if len(classes) > 1 or class_names is not None:
        ax.legend(loc="best", fontsize="small", markerscale=1.5)

    if images is not None:
        images = _as_nchw(images)
        if len(images) != n:
            raise ValueError(f"images must hold one image per point ({n}), got {len(images)}")
        span = np.ptp(points, axis=0).max() or 1.0
        min_gap = span / math.sqrt(max(max_thumbnails, 1)) / 2       # thumbnails may not overlap much
        placed = []
        for i in backend.get_rng(rng).permutation(n):
            if len(placed) >= max_thumbnails:
                break
            if placed and np.min(np.linalg.norm(points[placed] - points[i], axis=1)) < min_gap:
                continue
            placed.append(i)
            thumb = np.clip(_rescale(images[i], images[i].min(), images[i].max()), 0, 1).transpose(1, 2, 0)
            box = AnnotationBbox(OffsetImage(thumb, zoom=thumbnail_zoom), points[i], frameon=True,
                                 pad=0.1, bboxprops=dict(edgecolor=colour_of[labels[i]]))
            ax.add_artist(box)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig
