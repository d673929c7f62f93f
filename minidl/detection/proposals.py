"""Region proposals: where might the objects be? (CS231n lecture 8, before R-CNN can classify them.)

A detector that classifies *every* window of every size and shape is hopeless, so R-CNN first asks
a cheap, class-agnostic algorithm for a few hundred to two thousand candidate boxes ("proposals")
and runs the CNN only on those. Two ways to get them:

* ``sliding_window_proposals`` — the brute-force baseline: every window of a few scales and aspect
  ratios, slid over the image with a stride. It knows nothing about the image, so with a budget
  of a few hundred boxes its windows are too coarse to fit objects tightly.
* ``selective_search`` — Uijlings et al., "Selective Search for Object Recognition" (IJCV 2013):
  start from an over-segmentation (Felzenszwalb & Huttenlocher's graph-based superpixels), then
  greedily merge the two most similar *neighbouring* regions until one region is left. Every
  region ever formed is a proposal: small ones early, whole objects as soon as their parts have
  merged. Similarity mixes colour (histogram intersection), texture (gradient-orientation
  histograms), size (merge small regions first) and fill (merge regions that fit each other's
  bounding box). Diversity comes from running several *strategies* — colour spaces, similarity
  sets, segmentation scales ``k`` — and pooling their boxes.

``proposal_recall`` measures the result: the fraction of ground-truth boxes that some proposal
covers with IoU ≥ 0.5 — a detector cannot find an object no proposal covers.

The over-segmentation comes from scikit-image (``skimage.segmentation.felzenszwalb``, an optional
dependency: ``pip install minidl[data]``); the grouping is written here.
Boxes are ``(x1, y1, x2, y2)`` float32 in continuous pixel coordinates (a pixel box is ``(j, i, j+1, i+1)``).
"""
from __future__ import annotations

import heapq
import numbers

import numpy as np

from ..backend import get_rng, to_numpy
from ..ops.boxes import box_iou
from ..autograd import Tensor

# ---- the brute-force baseline ---------------------------------------------------------------------


def _positions(length, window, stride):
    """Start offsets of a window sliding over ``length`` pixels, the last one flush with the end."""
    starts = np.arange(0, length - window + 1e-6, stride, dtype=np.float64)
    if len(starts) == 0 or starts[-1] < length - window - 1e-6:
        starts = np.append(starts, length - window)     # so the far border is covered too
    return starts


def sliding_window_proposals(image_size, scales=(16, 32, 64), aspect_ratios=(0.5, 1.0, 2.0), stride=8):
    """Every window of every scale and aspect ratio, at steps of ``stride`` pixels: (N, 4) float32.

    Args:
        image_size: ``(height, width)`` (or an int for a square image).
        scales: window sizes in pixels: a window of scale ``s`` and aspect ratio ``r = h / w`` is
            ``w = s / sqrt(r)`` wide and ``h = s * sqrt(r)`` high (the area stays ``s²``;
            torchvision's anchor convention), shrunk to the image if larger.
        aspect_ratios: the ``h / w`` ratios.
        stride: step in pixels, one int for all scales or one per scale (coarser steps for larger
            windows keep the count down without losing overlap).

    The count is ``Σ_windows ceil((W - w) / stride + 1) · ceil((H - h) / stride + 1)``: it grows with
    the square of 1/stride — the cost the brute force pays for tight boxes.
    """
    height, width = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    scales = np.asarray(scales, dtype=np.float64).reshape(-1)
    strides = np.broadcast_to(np.asarray(stride, dtype=np.float64), scales.shape) if np.ndim(stride) == 0 \
        else np.asarray(stride, dtype=np.float64)
    if strides.shape != scales.shape or np.any(strides <= 0):
        raise ValueError(f"stride must be a positive number or one per scale ({len(scales)}), got {stride!r}")
    if np.any(scales <= 0) or np.any(np.asarray(aspect_ratios) <= 0):
        raise ValueError("scales and aspect_ratios must be positive")
    boxes = []
    for scale, step in zip(scales, strides):
        for ratio in aspect_ratios:
            w = min(scale / np.sqrt(ratio), width)
            h = min(scale * np.sqrt(ratio), height)
            xs, ys = np.meshgrid(_positions(width, w, step), _positions(height, h, step))
            xs, ys = xs.ravel(), ys.ravel()
            boxes.append(np.stack([xs, ys, xs + w, ys + h], axis=1))
    boxes = np.unique(np.concatenate(boxes).round(3), axis=0)      # shrunk windows can coincide
    return boxes.astype(np.float32)


# ---- selective search: features of regions --------------------------------------------------------

COLOUR_BINS = 25         # per channel (the paper's choice)
TEXTURE_BINS = 10        # per orientation and channel
ORIENTATIONS = 8


def _require_skimage():
    try:
        import skimage.color  # noqa: F401
        import skimage.segmentation  # noqa: F401
        import scipy.ndimage  # noqa: F401
    except ImportError as error:
        raise ImportError("selective_search needs scikit-image (Felzenszwalb's over-segmentation), an optional "
                          "dependency of minidl: pip install minidl[data]  (or: pip install scikit-image)") from error
    import scipy.ndimage
    import skimage
    return skimage, scipy.ndimage


def convert_colour(rgb, space):
    """(H, W, 3) RGB in [0, 1] → (H, W, C) image in ``space``, every channel scaled to [0, 1].

    ``"rgb"``; ``"hsv"``; ``"lab"``; ``"rgi"`` (normalized r, g and intensity: invariant to shadows);
    ``"h"`` (hue only) and ``"i"`` (intensity only): the paper's complementary colour spaces.
    """
    skimage, _ = _require_skimage()
    if space == "rgb":
        out = rgb
    elif space in ("hsv", "h"):
        out = skimage.color.rgb2hsv(rgb)
        out = out[..., :1] if space == "h" else out
    elif space == "lab":
        lab = skimage.color.rgb2lab(rgb)
        out = np.stack([lab[..., 0] / 100.0, (lab[..., 1] + 128) / 255.0, (lab[..., 2] + 128) / 255.0], axis=-1)
    elif space in ("rgi", "i"):
        total = rgb.sum(axis=-1, keepdims=True)
        intensity = total / 3.0
        if space == "i":
            out = intensity
        else:
            rg = np.where(total > 0, rgb[..., :2] / np.maximum(total, 1e-12), 1.0 / 3.0)
            out = np.concatenate([rg, intensity], axis=-1)
    else:
        raise ValueError(f"colour space must be one of {COLOUR_SPACES}, got {space!r}")
    return np.clip(out, 0.0, 1.0).astype(np.float64)


COLOUR_SPACES = ("rgb", "hsv", "lab", "rgi", "h", "i")


def _region_histograms(labels, values, n_regions, bins):
    """(n_regions, bins) histograms of ``values`` in [0, 1] (H, W) over each region of ``labels``.

    One ``bincount`` does all regions: pixel p adds 1 to bin ``labels[p] * bins + bin(values[p])``.
    """
    index = np.minimum((values * bins).astype(np.int64), bins - 1)
    return np.bincount((labels * bins + index).ravel(), minlength=n_regions * bins).reshape(n_regions, bins)


def _texture_responses(image, ndimage):
    """(channels * ORIENTATIONS) maps in [0, 1]: rectified Gaussian derivatives (σ = 1) in 8 directions.

    The derivative along direction θ is ``cos θ · ∂x + sin θ · ∂y``; keeping only its positive part
    for θ = 0°, 45°, ..., 315° separates "bright-to-dark" from "dark-to-bright" edges.
    """
    maps = []
    angles = np.arange(ORIENTATIONS) * 2 * np.pi / ORIENTATIONS
    for c in range(image.shape[-1]):
        gx = ndimage.gaussian_filter(image[..., c], sigma=1.0, order=(0, 1))
        gy = ndimage.gaussian_filter(image[..., c], sigma=1.0, order=(1, 0))
        for theta in angles:
            response = np.maximum(np.cos(theta) * gx + np.sin(theta) * gy, 0.0)
            peak = response.max()
            maps.append(response / peak if peak > 0 else response)
    return maps


def _l1_normalize(hist):
    hist = hist.astype(np.float64)
    return hist / np.maximum(hist.sum(axis=1, keepdims=True), 1e-12)


def _relabel(labels):
    """Labels renumbered 0..R-1 in order of their values (a bincount, no sort)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.min() < 0:
        raise ValueError("labels must be non-negative region ids")
    present = np.bincount(labels.ravel()) > 0
    return (np.cumsum(present) - 1)[labels]


def region_features(labels, colour_image):
    """Features of each superpixel of ``labels`` (H, W, ids 0..R-1) for the similarity measures.

    Returns ``(colour, texture, size, boxes)``: L1-normalized colour histograms (R, 25·C), texture
    histograms (R, 8·10·C), sizes in pixels (R,) and tight boxes (R, 4).
    """
    _, ndimage = _require_skimage()
    n = int(labels.max()) + 1
    colour = np.concatenate([_region_histograms(labels, colour_image[..., c], n, COLOUR_BINS)
                             for c in range(colour_image.shape[-1])], axis=1)
    texture = np.concatenate([_region_histograms(labels, m, n, TEXTURE_BINS)
                              for m in _texture_responses(colour_image, ndimage)], axis=1)
    size = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    # Boxes: mark which columns (rows) each region touches, then take the first and last marked.
    height, width = labels.shape
    in_column = np.zeros((n, width), bool)
    in_column[labels, np.arange(width)[None, :]] = True
    in_row = np.zeros((n, height), bool)
    in_row[labels, np.arange(height)[:, None]] = True
    boxes = np.stack([in_column.argmax(axis=1), in_row.argmax(axis=1),
                      width - in_column[:, ::-1].argmax(axis=1), height - in_row[:, ::-1].argmax(axis=1)],
                     axis=1).astype(np.float64)
    return _l1_normalize(colour), _l1_normalize(texture), size, boxes


def _neighbour_pairs(labels):
    """(P, 2) pairs ``a < b`` of regions that touch (4-connectivity)."""
    first = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])   # left of | above
    second = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])    # right of | below
    differ = first != second
    low, high = np.minimum(first, second)[differ], np.maximum(first, second)[differ]
    n = int(labels.max()) + 1
    codes = np.unique(low * n + high)          # one int per pair: a 1-D unique is much faster
    return np.stack([codes // n, codes % n], axis=1)


# ---- selective search: hierarchical grouping -------------------------------------------------------

SIMILARITIES = "CTSF"    # Colour, Texture, Size, Fill


def _similarity(a, others, colour, texture, size, boxes, image_area, measures):
    """Similarity of region ``a`` to each region in ``others`` (an index array): a sum of terms in [0, 1].

    ``a`` may also be an index array as long as ``others``: then pair ``(a[i], others[i])`` is scored.
    """
    total = np.zeros(len(others))
    if "C" in measures:       # histogram intersection: the shared part of two colour distributions
        total += np.minimum(colour[a], colour[others]).sum(axis=1)
    if "T" in measures:
        total += np.minimum(texture[a], texture[others]).sum(axis=1)
    if "S" in measures:       # small regions first, so one region does not swallow the image piece by piece
        total += 1.0 - (size[a] + size[others]) / image_area
    if "F" in measures:       # how much of the joint bounding box the two regions fill
        x1 = np.minimum(boxes[a, 0], boxes[others, 0])
        y1 = np.minimum(boxes[a, 1], boxes[others, 1])
        x2 = np.maximum(boxes[a, 2], boxes[others, 2])
        y2 = np.maximum(boxes[a, 3], boxes[others, 3])
        total += 1.0 - ((x2 - x1) * (y2 - y1) - size[a] - size[others]) / image_area
    return total


def hierarchical_grouping(labels, colour_image, measures=SIMILARITIES, features=None):
    """Merge an over-segmentation bottom-up; return the boxes of all regions, oldest first: (2R - 1, 4).

    Regions ``0..R-1`` are the superpixels of ``labels`` (H, W); region ``R + t`` is the one made
    by the t-th merge. A max-heap holds the similarity of every pair of neighbours; an entry is
    stale (skipped) once one of its two regions has been merged away. After a merge, the new
    region's histograms are the size-weighted mean of its parts (no pixel has to be revisited),
    and its similarity to each of its neighbours is pushed.

    ``features``: the ``(region_features(labels, colour_image), neighbour pairs)`` of ``labels``
    when already computed (strategies that differ only in ``measures`` share them).
    """
    if not measures or set(measures) - set(SIMILARITIES):
        raise ValueError(f"measures must be a non-empty combination of {SIMILARITIES!r}, got {measures!r}")
    if features is None:
        labels = _relabel(labels)
        features = region_features(labels, colour_image), _neighbour_pairs(labels)
    (colour0, texture0, size0, boxes0), pairs = features
    n = len(size0)
    capacity = 2 * n - 1
    colour = np.zeros((capacity, colour0.shape[1]))
    texture = np.zeros((capacity, texture0.shape[1]))
    size, boxes = np.zeros(capacity), np.zeros((capacity, 4))
    colour[:n], texture[:n], size[:n], boxes[:n] = colour0, texture0, size0, boxes0
    image_area = float(np.asarray(labels).size)
    alive = np.zeros(capacity, bool)
    alive[:n] = True
    neighbours = [set() for _ in range(capacity)]
    for a, b in pairs.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    # the initial similarities of all pairs at once (``_similarity`` broadcasts over index arrays)
    sims = _similarity(pairs[:, 0], pairs[:, 1], colour, texture, size, boxes, image_area, measures)
    heap = [(-s, a, b) for s, (a, b) in zip(sims.tolist(), pairs.tolist())]
    heapq.heapify(heap)

    new = n
    while heap:
        _, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue                                   # stale: one side was merged already
        total = size[a] + size[b]
        colour[new] = (size[a] * colour[a] + size[b] * colour[b]) / total
        texture[new] = (size[a] * texture[a] + size[b] * texture[b]) / total
        size[new] = total
        boxes[new] = [min(boxes[a, 0], boxes[b, 0]), min(boxes[a, 1], boxes[b, 1]),
                      max(boxes[a, 2], boxes[b, 2]), max(boxes[a, 3], boxes[b, 3])]
        alive[a] = alive[b] = False
        alive[new] = True
        around = (neighbours[a] | neighbours[b]) - {a, b}
        for r in around:
            neighbours[r] -= {a, b}
            neighbours[r].add(new)
        neighbours[new] = around
        if around:
            others = np.fromiter(around, dtype=np.int64)
            sims = _similarity(new, others, colour, texture, size, boxes, image_area, measures)
            for s, r in zip(sims.tolist(), others.tolist()):
                heapq.heappush(heap, (-s, r, new))
        new += 1
    # Disconnected parts of the image (impossible for one segmentation of a rectangle, but cheap
    # to allow) simply leave several top regions: only the regions actually formed are returned.
    return boxes[:new].astype(np.float32)


#: strategies as (colour space, Felzenszwalb k, similarity measures); "fast" is the paper's fast mode.
STRATEGIES = {
    "single": [("hsv", 100, "CTSF")],
    "fast": [(space, k, sims) for space in ("hsv", "lab") for k in (50, 100) for sims in ("CTSF", "TSF")],
    "quality": [(space, k, sims) for space in ("hsv", "lab", "rgi", "h", "i") for k in (50, 100, 150, 300)
                for sims in ("CTSF", "TSF", "F", "S")],
}


def selective_search(image, mode="fast", max_proposals=2000, strategies=None, sigma=0.8, min_size=None,
                     rng=0):
    """Selective search proposals for one image: (N, 4) float32 boxes, best-ranked first, N ≤ max_proposals.

    Args:
        image: (3, H, W) RGB (or (1, H, W) grey) float array or Tensor in [0, 1].
        mode: a preset of ``STRATEGIES``: ``"single"`` (1 strategy), ``"fast"`` (8: HSV and Lab,
            k = 50 and 100, similarities colour+texture+size+fill and texture+size+fill — the
            paper's fast mode), ``"quality"`` (80).
        max_proposals: keep at most this many boxes.
        strategies: explicit list of ``(colour space, k, measures)`` overriding ``mode``.
        sigma: Gaussian smoothing before the over-segmentation (the paper's 0.8).
        min_size: smallest superpixel in pixels (default: ``k``, as in the paper's code); lower it
            for tiny objects in small images.
        rng: seed or Generator of the ranking's random factor.

    Ranking (the paper's): within a strategy, the region formed by the last merge has position 1,
    the one before it 2, and so on down to the superpixels; each box gets the score
    ``position × u`` with ``u ~ U(0, 1)``; all strategies' boxes are sorted by that score and exact
    duplicates are removed, keeping the best rank. Large regions, which each strategy produces
    few of, thus tend to come first while the random factor still mixes in small ones.
    """
    skimage, _ = _require_skimage()
    image = to_numpy(image.data if isinstance(image, Tensor) else image)
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (3, H, W) RGB or (1, H, W) grey, got shape {image.shape}")
    if not isinstance(max_proposals, numbers.Integral) or max_proposals < 1:
        raise ValueError(f"max_proposals must be a positive int, got {max_proposals!r}")
    if strategies is None:
        if mode not in STRATEGIES:
            raise ValueError(f"mode must be one of {tuple(STRATEGIES)}, got {mode!r}")
        strategies = STRATEGIES[mode]
    rgb = np.clip(np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image, 0, 1).transpose(1, 2, 0)
    rgb = rgb.astype(np.float64)
    rng = get_rng(rng)

    computed = {}       # (space, k) → labels and region features, shared by the similarity variants
    all_boxes, all_scores = [], []
    for space, k, measures in strategies:
        if (space, k) not in computed:
            colour_image = convert_colour(rgb, space)
            labels = _relabel(skimage.segmentation.felzenszwalb(
                colour_image, scale=k, sigma=sigma, min_size=int(k if min_size is None else min_size),
                channel_axis=-1))
            computed[space, k] = labels, (region_features(labels, colour_image), _neighbour_pairs(labels))
        labels, features = computed[space, k]
        boxes = hierarchical_grouping(labels, None, measures, features=features)
        position = np.arange(len(boxes), 0, -1)        # last merge → 1, first superpixel → len
        all_boxes.append(boxes)
        all_scores.append(position * rng.random(len(boxes)))
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    boxes = boxes[np.argsort(scores, kind="stable")]
    _, first = np.unique(boxes, axis=0, return_index=True)     # first occurrence = best rank
    return boxes[np.sort(first)][:max_proposals]


# ---- evaluation ---------------------------------------------------------------------------------------

def best_overlaps(proposals, gt_boxes):
    """(G,) for each ground-truth box, the best IoU any proposal reaches (0 without proposals)."""
    proposals = np.asarray(to_numpy(proposals), dtype=np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(to_numpy(gt_boxes), dtype=np.float64).reshape(-1, 4)
    if len(gt_boxes) == 0:
        return np.zeros(0)
    if len(proposals) == 0:
        return np.zeros(len(gt_boxes))
    return box_iou(gt_boxes, proposals).max(axis=1)


def proposal_recall(proposals, gt_boxes, iou_threshold=0.5) -> float:
    """Fraction of ground-truth boxes covered by some proposal with IoU ≥ ``iou_threshold``.

    ``proposals`` (P, 4) and ``gt_boxes`` (G, 4) for one image, or two lists with one array per
    image: then the recall is pooled over all ground-truth boxes of all images. NaN without any
    ground truth.
    """
    if isinstance(proposals, (list, tuple)) and isinstance(gt_boxes, (list, tuple)):
        if len(proposals) != len(gt_boxes):
            raise ValueError(f"proposals and gt_boxes must list the same images, got {len(proposals)} "
                             f"and {len(gt_boxes)}")
        overlaps = np.concatenate([best_overlaps(p, g) for p, g in zip(proposals, gt_boxes)] or [np.zeros(0)])
    else:
        overlaps = best_overlaps(proposals, gt_boxes)
    return float((overlaps >= iou_threshold).mean()) if len(overlaps) else float("nan")
