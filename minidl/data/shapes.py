"""A synthetic "shapes" world: labelled images for every task of CS231n lecture 8, made offline.

Lecture 8 goes from *classification + localization* (one object: what and where), to *pose*
(where are the K keypoints of a person), *semantic segmentation* (a class per pixel) and *object
detection* (every object: class + box). Real datasets for these (PASCAL VOC, COCO, LSP) are big
downloads; here one generator draws small RGB scenes whose labels are exact by construction:

* a noisy, textured background (gradients, stripes, checks, smooth blobs);
* 1..N filled shapes of several classes (circle, square, triangle, ellipse, star) with random
  colour, size, rotation and position; later shapes are drawn on top of earlier ones, so objects
  can be partly occluded — each keeps at least half of its own area visible;
* labels computed from the very masks that were painted: boxes are tight around the *visible*
  pixels, the semantic mask is the painted class map, and each object's base colour is recorded
  (so ``minidl.captioning.grammar`` can say "a small red circle").

Drawing is vectorized NumPy rasterization: each shape is an inside-test evaluated at every pixel
centre at once (an implicit equation for circles/ellipses, the even-odd rule for polygons, a
distance-to-segment test for the stick figure's limbs).

Coordinates: pixel ``(row i, column j)`` covers the square ``[j, j+1) × [i, i+1)`` and its centre
is ``(j + 0.5, i + 0.5)``. Boxes are ``(x1, y1, x2, y2)`` in these continuous coordinates, so the
box of a mask whose pixels span columns ``j0..j1`` and rows ``i0..i1`` is ``(j0, i0, j1 + 1, i1 + 1)``
and its area ``(x2 - x1) * (y2 - y1)`` counts pixels (torchvision's convention, no "+1").

Every sample is a pure function of ``(seed, index)``: the item's random generator is
``numpy.random.default_rng([seed, index])``, so a dataset is reproducible and any item can be
made on its own, in any order.
"""
from __future__ import annotations

import numbers

import numpy as np

from .dataset import Dataset, _check_index

SHAPE_CLASSES = ("circle", "square", "triangle", "ellipse", "star")

#: keypoints of a shape in scene/single mode: slot 0 = centre, slots 1..5 = vertices (padded).
NUM_SHAPE_KEYPOINTS = 6

POSE_KEYPOINT_NAMES = (
    "head", "neck",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
#: limbs of the stick figure as pairs of keypoint indices (drawn as thick segments).
POSE_SKELETON = (
    (0, 1), (1, 2), (1, 3), (2, 4), (4, 6), (3, 5), (5, 7),
    (8, 9), (8, 10), (10, 12), (9, 11), (11, 13),
)
#: ``keypoints[:, POSE_FLIP_PERMUTATION]`` relabels left ↔ right after a horizontal flip.
POSE_FLIP_PERMUTATION = (0, 1, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12)

MODES = ("scene", "single", "pose")

# Visibility flags of keypoints (COCO's convention).
NOT_LABELLED, OCCLUDED, VISIBLE = 0, 1, 2

_MIN_VISIBLE_FRACTION = 0.5   # an object may lose at most half of its area to later objects
_MIN_PIXELS = 12              # ... and keeps at least this many visible pixels


# ---- rasterization: inside-tests evaluated at every pixel centre ------------------------------

def _pixel_centres(height, width):
    """Two (H, W) arrays: x and y of each pixel centre."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs + 0.5, ys + 0.5


def _ellipse_mask(xs, ys, cx, cy, a, b, angle):
    """Pixels inside the ellipse with semi-axes ``a`` (along ``angle``) and ``b``."""
    dx, dy = xs - cx, ys - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = dx * c + dy * s, -dx * s + dy * c     # coordinates in the ellipse's own frame
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _polygon_mask(xs, ys, vertices):
    """Pixels inside a (possibly non-convex) polygon, by the even-odd rule.

    A horizontal ray from each pixel centre to the right crosses the boundary an odd number of
    times exactly when the centre is inside. Each edge is tested against all pixels at once.
    """
    inside = np.zeros(xs.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if y0 == y1:
            continue                              # a horizontal edge never crosses the ray
        spans_row = (y0 > ys) != (y1 > ys)
        x_cross = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
        inside ^= spans_row & (xs < x_cross)
    return inside


def _capsule_mask(xs, ys, p0, p1, radius):
    """Pixels within ``radius`` of the segment p0–p1 (a thick line with round ends)."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
    return (xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2 <= radius * radius


def _regular_polygon(cx, cy, radius, n, angle):
    """(n, 2) vertices on a circle of ``radius``, the first one at ``angle``."""
    t = angle + 2 * np.pi * np.arange(n) / n
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def _shape_geometry(kind, cx, cy, radius, angle, rng):
    """Mask function and keypoints of one shape whose vertices lie within ``radius`` of its centre.

    Returns ``(draw, vertices)``: ``draw(xs, ys)`` is the (H, W) bool mask, ``vertices`` the
    (V, 2) corner points used as keypoints (V = 0 for a circle).
    """
    if kind == "circle":
        return (lambda xs, ys: _ellipse_mask(xs, ys, cx, cy, radius, radius, 0.0)), np.zeros((0, 2))
    if kind == "ellipse":
        b = radius * rng.uniform(0.35, 0.6)       # clearly elongated, so it is not a circle
        ends = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        vertices = np.array([[cx, cy]]) + np.concatenate([ends[:1] * radius, ends[1:] * b,
                                                          -ends[:1] * radius, -ends[1:] * b])
        return (lambda xs, ys: _ellipse_mask(xs, ys, cx, cy, radius, b, angle)), vertices
    if kind in ("square", "triangle"):
        vertices = _regular_polygon(cx, cy, radius, 4 if kind == "square" else 3, angle)
        return (lambda xs, ys: _polygon_mask(xs, ys, vertices)), vertices
    if kind == "star":
        tips = _regular_polygon(cx, cy, radius, 5, angle)
        notches = _regular_polygon(cx, cy, radius * 0.45, 5, angle + np.pi / 5)
        outline = np.stack([tips, notches], axis=1).reshape(10, 2)   # tip, notch, tip, ...
        return (lambda xs, ys: _polygon_mask(xs, ys, outline)), tips
    raise ValueError(f"unknown shape class {kind!r}; expected one of {SHAPE_CLASSES}")


# ---- colours and backgrounds --------------------------------------------------------------------

def _random_colour(rng):
    """A saturated RGB colour in [0, 1]^3 (random hue; HSV → RGB by hand)."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return (v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


def _smooth_noise(rng, height, width, cells):
    """(3, H, W) smooth random field: a (cells+1)² grid of colours, bilinearly interpolated."""
    grid = rng.uniform(-1, 1, size=(3, cells + 1, cells + 1)).astype(np.float32)
    gy = np.linspace(0, cells, height, dtype=np.float32)
    gx = np.linspace(0, cells, width, dtype=np.float32)
    y0 = np.minimum(gy.astype(int), cells - 1)
    x0 = np.minimum(gx.astype(int), cells - 1)
    wy, wx = (gy - y0)[:, None], (gx - x0)[None, :]
    top = grid[:, y0][:, :, x0] * (1 - wx) + grid[:, y0][:, :, x0 + 1] * wx
    bottom = grid[:, y0 + 1][:, :, x0] * (1 - wx) + grid[:, y0 + 1][:, :, x0 + 1] * wx
    return top * (1 - wy) + bottom * wy


def _background(rng, height, width, xs, ys):
    """(3, H, W) textured background and its mean colour: one of four textures plus noise."""
    base = rng.uniform(0.15, 0.85, size=3).astype(np.float32)
    texture = rng.integers(4)
    theta = rng.uniform(0, np.pi)
    along = (xs * np.cos(theta) + ys * np.sin(theta)) / max(height, width)   # ~[0, 1.4]
    if texture == 0:       # linear gradient towards a second colour
        other = rng.uniform(0.15, 0.85, size=3).astype(np.float32)
        image = base[:, None, None] + (other - base)[:, None, None] * (0.5 * along)[None]
    elif texture == 1:     # stripes
        freq = rng.uniform(3, 10)
        image = base[:, None, None] + 0.12 * np.sin(2 * np.pi * freq * along + rng.uniform(0, 6.3))[None]
    elif texture == 2:     # checks
        period = rng.uniform(6, 16)
        checks = (np.floor(xs / period) + np.floor(ys / period)) % 2
        image = base[:, None, None] + 0.1 * (checks - 0.5)[None]
    else:                  # smooth colour blobs
        image = base[:, None, None] + 0.15 * _smooth_noise(rng, height, width, int(rng.integers(2, 6)))
    image = image + rng.normal(0, rng.uniform(0.01, 0.05), size=image.shape)
    return image.astype(np.float32), base


def _paint(image, mask, colour, rng, xs, ys):
    """Fill ``mask`` with ``colour``, lightly shaded (a linear ramp) and noisy, in place."""
    theta = rng.uniform(0, 2 * np.pi)
    ramp = 0.08 * (np.cos(theta) * xs[mask] + np.sin(theta) * ys[mask]) / max(xs.shape)
    noise = rng.normal(0, 0.02, size=(3, ramp.size))
    image[:, mask] = colour[:, None] + ramp[None] + noise


def _contrasting_colour(rng, background_colour, min_distance=0.35):
    """A random colour at least ``min_distance`` (RGB Euclidean) from the background's."""
    colour = _random_colour(rng)
    for _ in range(20):
        if np.linalg.norm(colour - background_colour) >= min_distance:
            break
        colour = _random_colour(rng)
    return colour


# ---- labels from masks -------------------------------------------------------------------------

def mask_to_box(mask):
    """Tight ``(x1, y1, x2, y2)`` box around the True pixels of an (H, W) mask (float32).

    Uses the continuous pixel convention of the module docstring: the box of a single pixel
    ``(i, j)`` is ``(j, i, j + 1, i + 1)``. An empty mask gives ``(0, 0, 0, 0)``.
    """
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return np.zeros(4, dtype=np.float32)
    i0, i1 = np.flatnonzero(rows)[[0, -1]]
    j0, j1 = np.flatnonzero(cols)[[0, -1]]
    return np.array([j0, i0, j1 + 1, i1 + 1], dtype=np.float32)


def _keypoint_visibility(points, occluder, height, width):
    """VISIBLE, or OCCLUDED where the pixel under a point is covered by ``occluder`` (H, W)."""
    cols = np.clip(np.floor(points[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.floor(points[:, 1]).astype(int), 0, height - 1)
    return np.where(occluder[rows, cols], OCCLUDED, VISIBLE).astype(np.float32)


def _targets(labels, visible_masks, keypoints, height, width, colours):
    """The target dict shared by all modes (see ``ShapesDataset``); ``colours``: K RGB triples."""
    k = len(labels)
    masks = np.stack(visible_masks) if k else np.zeros((0, height, width), dtype=bool)
    semantic = np.zeros((height, width), dtype=np.int64)
    for label, mask in zip(labels, masks):
        semantic[mask] = label + 1
    return {
        "labels": np.asarray(labels, dtype=np.int64).reshape(k),
        "boxes": np.stack([mask_to_box(m) for m in masks]) if k else np.zeros((0, 4), np.float32),
        "masks": masks,
        "semantic_mask": semantic,
        "keypoints": np.asarray(keypoints, dtype=np.float32),
        "colours": np.asarray(colours, dtype=np.float32).reshape(k, 3),
    }


# ---- the three kinds of images ----------------------------------------------------------------

def _height_width(size):
    """``size`` (int or pair) as a (height, width) tuple of ints."""
    return (int(size), int(size)) if isinstance(size, numbers.Integral) else (int(size[0]), int(size[1]))


def _place_shapes(rng, height, width, xs, ys, classes, count, radius_range, existing=None):
    """Sample up to ``count`` shapes that fit in the image and occlude earlier ones at most halfway.

    Returns a list of dicts (class index, full mask, vertices, centre) in drawing order. Earlier
    objects in ``existing`` (full masks) are protected by the same occlusion rule.
    """
    shapes = []
    protected = list(existing or [])            # full masks of every object drawn so far
    visible = [m.copy() for m in protected]
    side = min(height, width)
    for _ in range(10 * count):
        if len(shapes) == count:
            break
        label = int(rng.integers(len(classes)))
        radius = rng.uniform(*radius_range) * side
        cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
        draw, vertices = _shape_geometry(classes[label], cx, cy, radius, rng.uniform(0, 2 * np.pi), rng)
        full = draw(xs, ys)
        if full.sum() < _MIN_PIXELS:
            continue
        still_visible = [v & ~full for v in visible]
        if any(sv.sum() < max(_MIN_VISIBLE_FRACTION * p.sum(), _MIN_PIXELS)
               for sv, p in zip(still_visible, protected)):
            continue                              # would hide too much of an earlier object
        visible = still_visible + [full.copy()]
        protected.append(full)
        shapes.append({"label": label, "full": full, "vertices": vertices, "centre": (cx, cy)})
    return shapes, visible[len(visible) - len(shapes):] if shapes else []


def _shape_keypoints(shape, occluder, height, width):
    """(NUM_SHAPE_KEYPOINTS, 3) rows (x, y, visibility): centre, then vertices, then zero padding."""
    points = np.concatenate([np.array([shape["centre"]]), shape["vertices"]]).astype(np.float32)
    out = np.zeros((NUM_SHAPE_KEYPOINTS, 3), dtype=np.float32)
    out[:len(points), :2] = points
    out[:len(points), 2] = _keypoint_visibility(points, occluder, height, width)
    return out


def make_shapes_image(rng, size=64, classes=SHAPE_CLASSES, max_objects=4, single=False):
    """One scene (``single=False``: 1..max_objects shapes) or one large shape (``single=True``).

    Returns ``(image, target)``; see ``ShapesDataset`` for the target keys.
    """
    height, width = _height_width(size)
    xs, ys = _pixel_centres(height, width)
    image, background_colour = _background(rng, height, width, xs, ys)
    if single:
        count, radius_range = 1, (0.15, 0.4)
    else:
        count, radius_range = int(rng.integers(1, max_objects + 1)), (0.08, 0.22)
    shapes, visible = _place_shapes(rng, height, width, xs, ys, classes, count, radius_range)
    colours = []
    for shape in shapes:
        # Kept for the target only: the draws (colour, then paint) happen in the same order as
        # before colours were recorded, so every image and label stays bit-identical.
        colours.append(_contrasting_colour(rng, background_colour))
        _paint(image, shape["full"], colours[-1], rng, xs, ys)
    keypoints = []
    for k, shape in enumerate(shapes):
        covered_later = np.zeros((height, width), dtype=bool)
        for later in shapes[k + 1:]:
            covered_later |= later["full"]
        keypoints.append(_shape_keypoints(shape, covered_later, height, width))
    keypoints = np.stack(keypoints) if keypoints else np.zeros((0, NUM_SHAPE_KEYPOINTS, 3), np.float32)
    target = _targets([s["label"] for s in shapes], visible, keypoints, height, width, colours)
    return np.clip(image, 0, 1).astype(np.float32), target


def _stick_figure_keypoints(rng):
    """(14, 2) keypoints of a random pose, in units of the figure's height, hip centre at 0.

    The figure faces the viewer, so the person's *left* side is on the image's right (+x).
    Limb angles are measured from "hanging straight down", positive = away from the body.
    """
    def limb(start, side, first_angle, bend, lengths):
        a1 = np.radians(first_angle)
        a2 = a1 + np.radians(bend)
        middle = start + lengths[0] * np.array([side * np.sin(a1), np.cos(a1)])
        end = middle + lengths[1] * np.array([side * np.sin(a2), np.cos(a2)])
        return middle, end

    neck = np.array([0.0, -0.36])
    tilt = np.radians(rng.uniform(-15, 15))
    head = neck + 0.14 * np.array([np.sin(tilt), -np.cos(tilt)])
    points = {"head": head, "neck": neck}
    for side, name in ((+1, "left"), (-1, "right")):
        shoulder = neck + np.array([side * 0.11, 0.03])
        hip = np.array([side * 0.07, 0.0])
        elbow, wrist = limb(shoulder, side, rng.uniform(-20, 170), rng.uniform(-90, 90), (0.16, 0.15))
        knee, ankle = limb(hip, side, rng.uniform(-5, 45), rng.uniform(-35, 25), (0.24, 0.22))
        points.update({f"{name}_shoulder": shoulder, f"{name}_elbow": elbow, f"{name}_wrist": wrist,
                       f"{name}_hip": hip, f"{name}_knee": knee, f"{name}_ankle": ankle})
    return np.stack([points[n] for n in POSE_KEYPOINT_NAMES])


def make_pose_image(rng, size=64, max_distractors=2):
    """One stick-figure "person" (thick limbs, round head) plus a few distractor shapes.

    Some distractors are drawn behind the figure, some in front of it; a keypoint whose pixel is
    covered by a front distractor is flagged OCCLUDED (1), the others VISIBLE (2).
    Returns ``(image, target)`` with one instance (label 0, "person").
    """
    height, width = _height_width(size)
    xs, ys = _pixel_centres(height, width)
    image, background_colour = _background(rng, height, width, xs, ys)
    side = min(height, width)

    # Pose in figure units, rotated by a whole-body lean, then scaled and placed to fit the image.
    body = _stick_figure_keypoints(rng)
    lean = np.radians(rng.uniform(-20, 20))
    rotation = np.array([[np.cos(lean), -np.sin(lean)], [np.sin(lean), np.cos(lean)]])
    body = body @ rotation.T
    figure_height = rng.uniform(0.6, 0.95) * side
    limb_radius = max(1.0, 0.03 * figure_height)
    head_radius = 0.07 * figure_height
    margin = head_radius + 1.0
    extent = body.max(axis=0) - body.min(axis=0)
    figure_height = min(figure_height, *((np.array([width, height]) - 2 * margin) / extent))
    points = body * figure_height
    low = margin - points.min(axis=0)
    high = np.array([width, height]) - margin - points.max(axis=0)
    points = (points + rng.uniform(low, np.maximum(low, high))).astype(np.float32)

    figure = _ellipse_mask(xs, ys, *points[0], head_radius, head_radius, 0.0)
    for a, b in POSE_SKELETON:
        figure |= _capsule_mask(xs, ys, points[a], points[b], limb_radius)
    hip_centre = (points[8] + points[9]) / 2
    figure |= _capsule_mask(xs, ys, points[1], hip_centre, 1.5 * limb_radius)     # the torso

    n_distractors = int(rng.integers(0, max_distractors + 1))
    in_front = rng.uniform(size=n_distractors) < 0.5
    behind, _ = _place_shapes(rng, height, width, xs, ys, SHAPE_CLASSES, int((~in_front).sum()), (0.06, 0.14))
    for shape in behind:
        _paint(image, shape["full"], _contrasting_colour(rng, background_colour), rng, xs, ys)
    figure_colour = _contrasting_colour(rng, background_colour)
    _paint(image, figure, figure_colour, rng, xs, ys)
    front, _ = _place_shapes(rng, height, width, xs, ys, SHAPE_CLASSES, int(in_front.sum()), (0.06, 0.12),
                             existing=[figure])
    occluder = np.zeros((height, width), dtype=bool)
    for shape in front:
        _paint(image, shape["full"], _contrasting_colour(rng, background_colour), rng, xs, ys)
        occluder |= shape["full"]

    keypoints = np.concatenate([points, _keypoint_visibility(points, occluder, height, width)[:, None]], 1)
    target = _targets([0], [figure & ~occluder], keypoints[None], height, width, [figure_colour])
    return np.clip(image, 0, 1).astype(np.float32), target


# ---- the Dataset ------------------------------------------------------------------------------

class ShapesDataset(Dataset):
    """``n`` generated images of the shapes world; item ``i`` depends only on ``(seed, i)``.

    Args:
        n: number of images.
        size: image side (int) or ``(height, width)``; 64–128 px is a good range.
        mode: ``"scene"`` — 1..``max_objects`` shapes (detection, segmentation);
            ``"single"`` — one large shape (classification + localization);
            ``"pose"`` — one stick-figure person with 14 named keypoints (pose estimation).
        seed: the dataset's seed.
        classes: names of the shape classes to draw (a subset of ``SHAPE_CLASSES``); the class
            index used in labels is the position in this tuple.
        max_objects: most shapes per scene image.
        transform: ``transform(image, target) -> (image, target)`` applied to every sample (see
            ``minidl.data.transforms``; its randomness comes from its own generator).
        target_keys: what a sample holds besides the image. ``None``: the whole target dict;
            a key (e.g. ``"semantic_mask"``): ``(image, target[key])``; a tuple of keys:
            ``(image, target[k1], target[k2], ...)`` — handy with the DataLoader, which stacks
            fixed-shape arrays into batches.

    Each sample is ``(image, target)`` with ``image`` a (3, H, W) float32 array in [0, 1] and
    ``target`` a dict for the ``K`` objects of the image (K = 1 in "single" and "pose" modes):

    ==================  ==========  =======  ===========================================================
    key                 shape       dtype    meaning
    ==================  ==========  =======  ===========================================================
    ``labels``          (K,)        int64    class index in ``classes`` (pose: 0 = person)
    ``boxes``           (K, 4)      float32  ``(x1, y1, x2, y2)`` tight around the visible pixels
    ``masks``           (K, H, W)   bool     visible pixels of each object (instance masks)
    ``semantic_mask``   (H, W)      int64    0 = background, ``label + 1`` on each object's pixels
    ``keypoints``       (K, P, 3)   float32  ``(x, y, visibility)``; visibility 0 = none, 1 = occluded,
                                             2 = visible. Shapes: P = 6 (centre, then up to 5 vertices:
                                             square 4 corners, triangle 3, star 5 tips, ellipse 4 axis
                                             ends; unused slots are 0). Pose: P = 14, ordered as
                                             ``POSE_KEYPOINT_NAMES``.
    ``colours``         (K, 3)      float32  RGB in [0, 1]: the base colour each object was painted with
                                             (a random hue, saturation and value in [0.5, 1]; the pixels
                                             add a faint shading ramp and noise). Pose: the stick
                                             figure's colour (distractors are not instances, so their
                                             colours are not listed).
    ``image_id``        int                  the index ``i``
    ==================  ==========  =======  ===========================================================

    ``colours`` is per-instance like ``boxes``: ``transforms.crop`` drops its rows with the objects
    it crops away (``transforms.PER_INSTANCE_KEYS``).

    The vertex order of a shape follows its drawing rotation, so it is only defined up to the
    shape's symmetry; the centre (slot 0) is always well defined.
    """

    def __init__(self, n, size=64, mode="scene", seed=0, classes=SHAPE_CLASSES, max_objects=4,
                 transform=None, target_keys=None):
        if not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        size = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
        if len(size) != 2 or min(size) < 16 or not all(isinstance(s, numbers.Integral) for s in size):
            raise ValueError(f"size must be an int >= 16 or a (height, width) pair of them, got {size!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        classes = tuple(classes)
        if not classes or any(c not in SHAPE_CLASSES for c in classes):
            raise ValueError(f"classes must be a non-empty subset of {SHAPE_CLASSES}, got {classes}")
        if not isinstance(max_objects, numbers.Integral) or max_objects < 1:
            raise ValueError(f"max_objects must be a positive int, got {max_objects!r}")
        self.n, self.size, self.mode, self.seed = int(n), (int(size[0]), int(size[1])), mode, int(seed)
        self.classes = ("person",) if mode == "pose" else classes
        self.max_objects = int(max_objects)
        self.transform = transform
        self.target_keys = target_keys

    @property
    def num_classes(self) -> int:
        """Number of object classes (the semantic mask has ``num_classes + 1`` values)."""
        return len(self.classes)

    def __len__(self):
        return self.n

    def generate(self, index):
        """The untransformed ``(image, target)`` of item ``index``."""
        index = _check_index(index, self.n)
        rng = np.random.default_rng([self.seed, index])
        if self.mode == "pose":
            image, target = make_pose_image(rng, self.size)
        else:
            image, target = make_shapes_image(rng, self.size, self.classes, self.max_objects,
                                              single=self.mode == "single")
        target["image_id"] = index
        return image, target

    def __getitem__(self, index):
        image, target = self.generate(index)
        if self.transform is not None:
            image, target = self.transform(image, target)
        if self.target_keys is None:
            return image, target
        if isinstance(self.target_keys, str):
            return image, target[self.target_keys]
        return (image, *(target[k] for k in self.target_keys))
