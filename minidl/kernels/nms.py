"""nms: greedy non-maximum suppression — the NumPy reference and the dispatch to C++/CUDA.

Greedy NMS: visit the boxes by decreasing score; keep a box unless a box kept before it
overlaps it with IoU > iou_threshold. The reference below is that sentence as a loop: take the
best remaining box, keep it, drop every remaining box it suppresses (one vectorized IoU per
kept box), repeat. The compiled kernels (csrc/nms/) do the same IoU tests in blocks of 64
columns packed into 64-bit words, in parallel (see csrc/nms/nms.h): the CUDA kernels and the
CPU's textbook form (nms_cpu.cpp, ``minidl.kernels.use("body")``) compute every word with the
body of nms.h and then walk the rows; the CPU's fast form (nms_cpu_fast.cpp, the default)
computes only the words of kept rows, while it walks.

Arithmetic shared by every path, so that they keep the same boxes even when an IoU lands
exactly on the threshold: IoU = inter / (area_i + area_j - inter) in the boxes' dtype, areas
max(0, x2 - x1) * max(0, y2 - y1), and the comparison ``IoU > iou_threshold`` made in float64
(as torchvision's CPU kernel does). ``labels`` restricts suppression to boxes of equal label
(batched_nms). Inputs are validated by minidl.ops.nms; these functions trust them.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from . import contiguous, fast_cpu_form, launch, native_for


def _decreasing_score_order(scores, xp):
    """Indices by decreasing score; a stable sort, so equal scores keep the lower index first."""
    return xp.argsort(-scores, kind="stable")


def nms_reference(boxes, scores, iou_threshold, labels=None):
    """boxes (N, 4), scores (N,), labels (N,) int or None -> kept indices (int64), best first."""
    xp = backend.get_array_module(boxes)
    order = _decreasing_score_order(scores, xp)
    x1, y1, x2, y2 = (boxes[order, k] for k in range(4))
    zero = boxes.dtype.type(0)
    area = xp.maximum(zero, x2 - x1) * xp.maximum(zero, y2 - y1)
    sorted_labels = None if labels is None else labels[order]
    remaining = xp.arange(order.shape[0])       # positions in sorted order, not yet decided
    kept = []
    while remaining.shape[0] > 0:
        i, rest = int(remaining[0]), remaining[1:]
        kept.append(i)
        w = xp.maximum(zero, xp.minimum(x2[i], x2[rest]) - xp.maximum(x1[i], x1[rest]))
        h = xp.maximum(zero, xp.minimum(y2[i], y2[rest]) - xp.maximum(y1[i], y1[rest]))
        inter = w * h
        union = area[i] + area[rest] - inter
        iou = inter / xp.where(union > 0, union, 1)
        # Two empty boxes have no IoU (0/0): they never suppress each other, like the kernels.
        suppressed = (union > 0) & (iou.astype(xp.float64) > iou_threshold)
        if sorted_labels is not None:
            suppressed &= sorted_labels[rest] == sorted_labels[i]
        remaining = rest[~suppressed]
    return order[xp.asarray(kept, dtype=xp.int64)].astype(xp.int64)


def nms(boxes, scores, iou_threshold, labels=None):
    """Kept indices (int64) by decreasing score; C++ / CUDA when built, else the reference.

    boxes (N, 4) and scores (N,) of one float dtype, labels (N,) int64 or None.
    """
    xp = backend.get_array_module(boxes)
    native = native_for(boxes)
    if native is None or boxes.dtype.name not in ("float32", "float64"):
        return nms_reference(boxes, scores, iou_threshold, labels)
    boxes = contiguous(boxes, xp)
    scores = contiguous(scores, xp, boxes.dtype)
    if labels is not None:
        labels = contiguous(labels, xp, xp.int64)
    if xp is np:
        keep = xp.empty(boxes.shape[0], dtype=xp.int64)
        count = launch(native, "nms", (boxes, scores, labels, keep),
                       options=(float(iou_threshold),), fast=fast_cpu_form())
        return keep[:count]
    return _nms_cuda(native, xp, boxes, scores, float(iou_threshold), labels)


def _nms_cuda(native, xp, boxes, scores, iou_threshold, labels):
    """Sort on the device, compute the (N, ceil(N/64)) suppression words, walk them on the device."""
    n = boxes.shape[0]
    if n == 0:
        return xp.zeros(0, dtype=xp.int64)
    order = _decreasing_score_order(scores, xp)           # CuPy's argsort is a stable sort
    x1, y1, x2, y2 = (xp.ascontiguousarray(boxes[order, k]) for k in range(4))
    area = xp.maximum(0, x2 - x1) * xp.maximum(0, y2 - y1)
    label = xp.ascontiguousarray(labels[order]) if labels is not None else None
    words = (n + 63) // 64
    mask = xp.empty((n, words), dtype=xp.uint64)
    removed = xp.zeros(words, dtype=xp.uint64)
    keep = xp.empty(n, dtype=xp.uint8)
    launch(native, "nms_mask", (x1, y1, x2, y2, area, label, mask), sizes=(n,),
           options=(iou_threshold,))
    launch(native, "nms_keep", (mask, removed, keep), sizes=(n,))
    return order[keep.astype(bool)].astype(xp.int64)
