"""Captions from a template grammar: the words that describe a generated shapes scene.

Captioning (CS231n lecture 10) needs images *and* sentences. COCO's sentences were written by
people; the shapes world (``minidl.data.shapes``) knows every object's class, box and painted
colour exactly, so a small grammar can write true sentences for it instead:

    object  := "a" [size] colour shape              "a small red circle", "a blue square"
    scene   := object | object relation object      "a small red circle left of a blue square"
    relation:= "left of" | "right of" | "above" | "below"

Lecture 8's *dense captioning* (DenseCap = object detection + captioning) describes every
region on its own, so ``region_captions`` gives one object description per box; lecture 10's
image captioning describes the whole picture, and like COCO's five references per image,
``scene_captions`` gives several true sentences for one scene.

The words are chosen from the labels, never from pixels:

* **colour** — the hue of the object's base colour (``target["colours"]``). The generator draws
  hue uniformly with saturation and value in [0.5, 1] (``shapes._random_colour``), so every
  colour has a well-defined hue and no object is grey, black or white; the hue circle is cut into
  eight named bins (``COLOUR_BINS``). A dark orange (value 0.5) looks brown but is named by its hue.
* **size** — the longer side of the object's *visible* box over the image side (``min(H, W)``):
  "small" below ``SMALL_BELOW`` = 0.22, "large" from ``LARGE_FROM`` = 0.32, no word in between.
  Scene radii are 0.08–0.22·side, so a circle's box side 2r spans 0.16–0.44: small ⇔ r < 0.11,
  large ⇔ r ≥ 0.16. The unnamed middle band is a gap: an object a pixel smaller or larger never
  jumps from "small" to "large", and 0.22·64 = 14.08 px, 0.32·64 = 20.48 px fall between whole
  pixel sizes. Measured on 7,403 objects of 3,000 scenes (64 px, seed 0): 35 % small, 37 % no
  word, 28 % large.
* **shape** — the class name (``SHAPE_CLASSES``, or the dataset's own ``classes``).
* **relation** — from the offset between the two visible boxes' centres: its dominant axis picks
  horizontal ("left of" / "right of") or vertical ("above" / "below"; image y grows downwards).
  A tie goes to the horizontal words.

Every caption is lower-case words separated by single spaces, without punctuation, so
``caption.split()`` is the tokenizer (``vocab.py``).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..data.shapes import SHAPE_CLASSES

#: (name, start hue in degrees): a hue h is named by the last bin whose start is <= h; hues from
#: 345° wrap around to "red". Widths follow how hue names are used, not equal slices.
COLOUR_BINS = (
    ("red", 0.0), ("orange", 15.0), ("yellow", 45.0), ("green", 75.0), ("cyan", 165.0),
    ("blue", 195.0), ("purple", 255.0), ("pink", 290.0), ("red", 345.0),
)
COLOUR_NAMES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")

SMALL_BELOW = 0.22     # longer visible-box side / image side below this: "small"
LARGE_FROM = 0.32      # ... from this up: "large"; in between: no size word
SIZE_WORDS = ("small", "large")
RELATION_WORDS = ("left of", "right of", "above", "below")


# ---- the words of one object --------------------------------------------------------------------

def hue_degrees(rgb):
    """Hue in [0, 360) of an RGB colour in [0, 1]^3 (the inverse of HSV → RGB's hue).

    The largest channel decides the 120° sector (red 0°, green 120°, blue 240°); the difference
    of the other two, over the chroma ``max - min``, says how far into the neighbours it leans.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.shape != (3,) or not np.all(np.isfinite(rgb)):
        raise ValueError(f"rgb must be 3 finite numbers, got {rgb!r}")
    r, g, b = rgb
    high, low = rgb.max(), rgb.min()
    chroma = high - low
    if chroma == 0:
        return 0.0                                # grey: hue undefined, call it 0 (never drawn)
    if high == r:
        hue = ((g - b) / chroma) % 6
    elif high == g:
        hue = (b - r) / chroma + 2
    else:
        hue = (r - g) / chroma + 4
    return float(60.0 * hue) % 360.0


def colour_name(rgb):
    """The name of an RGB colour in [0, 1]^3 by its hue (``COLOUR_BINS``): ``(1, .2, .1)`` -> "red"."""
    hue = hue_degrees(rgb)
    name = COLOUR_BINS[0][0]
    for bin_name, start in COLOUR_BINS:
        if hue >= start:
            name = bin_name
    return name


def _image_side(image_size):
    """``image_size`` (int or (height, width)) -> the shorter side, the unit of ``size_word``."""
    if isinstance(image_size, numbers.Integral):
        side = int(image_size)
    else:
        try:
            height, width = (int(s) for s in image_size)
        except (TypeError, ValueError):
            raise ValueError(f"image_size must be an int or a (height, width) pair, got {image_size!r}") from None
        side = min(height, width)
    if side <= 0:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return side


def size_word(box, image_size):
    """"small", "large" or "" (no word) for a box ``(x1, y1, x2, y2)`` in an image of ``image_size``."""
    box = np.asarray(box, dtype=np.float64)
    if box.shape != (4,):
        raise ValueError(f"box must be (x1, y1, x2, y2), got shape {box.shape}")
    extent = max(box[2] - box[0], box[3] - box[1]) / _image_side(image_size)
    if extent < SMALL_BELOW:
        return "small"
    if extent >= LARGE_FROM:
        return "large"
    return ""


def _check_target(target, k=None):
    """The number of objects K of a target dict with the keys the grammar reads."""
    if not isinstance(target, dict):
        raise TypeError(f"target must be a ShapesDataset target dict, got {type(target).__name__}")
    missing = [key for key in ("labels", "boxes", "colours") if key not in target]
    if missing:
        raise ValueError(f"target lacks {missing}; make it with minidl.data.ShapesDataset (which records colours)")
    count = len(target["labels"])
    if len(target["boxes"]) != count or len(target["colours"]) != count:
        raise ValueError(f"target has {count} labels but {len(target['boxes'])} boxes and "
                         f"{len(target['colours'])} colours")
    if k is not None and (not isinstance(k, numbers.Integral) or not 0 <= k < count):
        raise ValueError(f"k must be an object index in [0, {count}), got {k!r}")
    return count


def describe_object(target, k, image_size, classes=SHAPE_CLASSES):
    """"a [size] colour shape" for object ``k`` of a ``ShapesDataset`` target: "a small red circle".

    ``classes`` names the labels (the dataset's ``classes``; pose mode: ``("person",)``).
    """
    _check_target(target, k)
    label = int(target["labels"][k])
    if not 0 <= label < len(classes):
        raise ValueError(f"label {label} of object {k} is not an index into classes={tuple(classes)}")
    words = ["a", size_word(target["boxes"][k], image_size), colour_name(target["colours"][k]), classes[label]]
    return " ".join(w for w in words if w)      # the empty size word leaves no double space


def relation(box_a, box_b):
    """Where box ``a`` is relative to box ``b``: "left of", "right of", "above" or "below".

    By the dominant axis of the offset between the centres (ties: horizontal).
    """
    box_a, box_b = np.asarray(box_a, np.float64), np.asarray(box_b, np.float64)
    if box_a.shape != (4,) or box_b.shape != (4,):
        raise ValueError(f"box_a and box_b must be (x1, y1, x2, y2), got shapes {box_a.shape}, {box_b.shape}")
    dx = (box_b[0] + box_b[2] - box_a[0] - box_a[2]) / 2      # > 0: b lies to the right of a
    dy = (box_b[1] + box_b[3] - box_a[1] - box_a[3]) / 2      # > 0: b lies below a (y grows down)
    if abs(dx) >= abs(dy):
        return "left of" if dx > 0 else "right of"
    return "above" if dy > 0 else "below"


# ---- captions of regions and of whole scenes ----------------------------------------------------

def region_captions(target, image_size, classes=SHAPE_CLASSES):
    """One caption per object, in target order: the object's own description.

    A dense captioner sees only the features inside a region, so a region's caption may only use
    what is in it (no relations to objects outside).
    """
    return [describe_object(target, k, image_size, classes) for k in range(_check_target(target))]


def _object_order(target):
    """Object indices, largest visible-box area first (ties: lower index first)."""
    boxes = np.asarray(target["boxes"], np.float64).reshape(-1, 4)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return [int(k) for k in np.argsort(-areas, kind="stable")]


def scene_captions(target, image_size, max_captions=5, classes=SHAPE_CLASSES):
    """Up to ``max_captions`` true sentences about the whole scene (the references of one image).

    One object: its description. Two or more: "<object a> <relation> <object b>" for ordered
    pairs of objects. Objects are ranked by visible-box area (largest first) and the pairs are
    listed so that the biggest objects come first: the pairs of ranks (0, 1), (1, 0), (0, 2),
    (2, 0), (1, 2), (2, 1), (0, 3), ... — each unordered pair ``{a < b}`` in order of ``(b, a)``,
    the larger object as the subject first. No objects: an empty list.
    """
    count = _check_target(target)
    if not isinstance(max_captions, numbers.Integral) or max_captions < 1:
        raise ValueError(f"max_captions must be a positive int, got {max_captions!r}")
    describe = [describe_object(target, k, image_size, classes) for k in range(count)]
    if count <= 1:
        return describe
    order = _object_order(target)
    pairs = [(a, b) for high in range(1, count) for low in range(high) for a, b in ((low, high), (high, low))]
    captions = []
    for a, b in pairs[:max_captions]:
        ka, kb = order[a], order[b]
        captions.append(f"{describe[ka]} {relation(target['boxes'][ka], target['boxes'][kb])} {describe[kb]}")
    return captions


def grammar_words(classes=SHAPE_CLASSES):
    """Every word the grammar can write (sorted): a vocabulary that covers all its captions."""
    words = {"a", *SIZE_WORDS, *COLOUR_NAMES, *classes}
    for phrase in RELATION_WORDS:
        words.update(phrase.split())
    return sorted(words)
