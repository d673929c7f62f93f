"""Non-maximum suppression (CS231n lecture 8): turn many overlapping detections into one per object.

A detector scores thousands of boxes and every object lights up several near-identical ones.
Greedy NMS keeps the best box, deletes the boxes that overlap it too much, and repeats on what
is left. The kernels live in minidl/kernels/nms.py (NumPy reference) and csrc/nms/ (C++, CUDA).

Conventions — torchvision's, stated exactly because implementations disagree here:
* boxes (N, 4) float (x1, y1, x2, y2); scores (N,) (cast to the boxes' dtype); float16 boxes
  are computed in float32 (as torchvision's box ops upcast), since their areas overflow;
* box j is suppressed by a kept box i when IoU(i, j) > iou_threshold, *strictly*; the IoU is
  computed in the boxes' dtype and compared in float64 (like torchvision's CPU kernel), so
  every minidl path keeps the same boxes even when an IoU equals the threshold;
* the result: int64 indices of the kept boxes by decreasing score; equal scores are ordered by
  index (a stable sort), so the result is deterministic — also on the GPU;
* an inverted box (x2 < x1 or y2 < y1) has area 0: it never suppresses and is never suppressed
  (unless iou_threshold < 0); two empty boxes have no IoU (0/0) and never suppress each other;
* NaN or inf in boxes or scores raise a ValueError: a NaN score has no place in an order (torch
  would sort it first, as the best box) and a NaN coordinate has no IoU. (The kernels themselves
  stay in bounds on such input: NaN scores sort last there, NaN boxes never suppress.)
Empty input -> an empty int64 result.
"""
from __future__ import annotations

import numbers

from .. import backend, kernels
from ..kernels import nms as nms_kernels
from ._utils import boxes_array, finite_check, like, raise_first_failed, unwrap, upcast


def _check(boxes, scores, iou_threshold):
    b, was_tensor = boxes_array(boxes, "boxes")
    s, _ = unwrap(scores, "scores")
    if s.ndim != 1 or s.shape[0] != b.shape[0]:
        raise ValueError(f"scores: expected shape ({b.shape[0]},) for {b.shape[0]} boxes, "
                         f"got {tuple(s.shape)}")
    if s.dtype.kind not in "fiu":
        raise TypeError(f"scores: expected real numbers, got dtype {s.dtype}")
    if not isinstance(iou_threshold, numbers.Real) or iou_threshold != iou_threshold:
        raise ValueError(f"iou_threshold must be a number, got {iou_threshold!r}")
    xp = backend.get_array_module(b)
    s = xp.asarray(s)                    # on the boxes' device, checked before any cast
    raise_first_failed([finite_check(b, "boxes"), finite_check(s, "scores")])   # one device read
    b = upcast(b)           # float16 areas overflow at 65504 (a 256-px box): compute in float32
    return b, s.astype(b.dtype, copy=False), float(iou_threshold), was_tensor


def nms(boxes, scores, iou_threshold):
    """Greedy NMS: indices (int64) of the kept boxes, by decreasing score.

    boxes (N, 4) (x1, y1, x2, y2), scores (N,), iou_threshold: suppress IoU > iou_threshold.
    """
    b, s, threshold, was_tensor = _check(boxes, scores, iou_threshold)
    return like(nms_kernels.nms(b, s, threshold), was_tensor)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS within each category: boxes of different idxs never suppress each other.

    boxes (N, 4), scores (N,), idxs (N,) integer category of each box -> kept indices (int64) by
    decreasing score. Three ways to keep the categories apart, all equal to running nms on each
    category separately:
    * the compiled kernels take the categories directly: they sort by (category, score) and run
      each category's greedy pass on its own (exact, one call);
    * without them, torchvision's choice by size: for small inputs (N·4 <= 4,000 on the CPU,
      100,000 on a GPU) the *coordinate trick* — shift each category's boxes by
      category × (coordinate span + 1) so boxes of different categories cannot overlap, then one
      nms (the shift can move an IoU by a rounding error); for larger inputs a loop over the
      categories (fewer IoUs: none across categories).
    """
    b, s, threshold, was_tensor = _check(boxes, scores, iou_threshold)
    xp = backend.get_array_module(b)
    labels, _ = unwrap(idxs, "idxs")
    labels = xp.asarray(labels)
    if labels.shape != (b.shape[0],) or (labels.dtype.kind not in "iu" and b.shape[0]):
        raise ValueError(f"idxs: expected ({b.shape[0]},) integer categories, "
                         f"got shape {tuple(labels.shape)} dtype {labels.dtype}")
    labels = labels.astype(xp.int64, copy=False)
    if b.shape[0] == 0:
        return like(xp.zeros(0, dtype=xp.int64), was_tensor)
    if kernels.native_for(b) is not None:
        keep = nms_kernels.nms(b, s, threshold, labels)
    elif b.size > (4000 if xp is backend.np else 100_000):
        keep = _batched_nms_per_category(b, s, labels, threshold)
    else:
        keep = _batched_nms_coordinate_trick(b, s, labels, threshold)
    return like(keep, was_tensor)


def _batched_nms_coordinate_trick(boxes, scores, labels, iou_threshold):
    """Move each category to its own region of the plane, then one plain nms.

    torchvision shifts by category × (max coordinate + 1), which only separates the categories
    when no coordinate is below -1; the span (max - min + 1) works for any coordinates.
    """
    span = boxes.max() - boxes.min() + 1
    shifted = boxes + (labels.astype(boxes.dtype) * span)[:, None]
    return nms_kernels.nms(shifted, scores, iou_threshold)


def _batched_nms_per_category(boxes, scores, labels, iou_threshold):
    """nms on each category, then all kept boxes by decreasing score (stable: ties by index)."""
    xp = backend.get_array_module(boxes)
    keep_mask = xp.zeros(boxes.shape[0], dtype=bool)
    for category in backend.to_numpy(xp.unique(labels)):
        members = xp.nonzero(labels == category)[0]
        keep_mask[members[nms_kernels.nms(boxes[members], scores[members], iou_threshold)]] = True
    kept = xp.nonzero(keep_mask)[0]
    return kept[xp.argsort(-scores[kept], kind="stable")].astype(xp.int64)
