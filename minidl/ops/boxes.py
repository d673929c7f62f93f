"""Box utilities for detection (CS231n lecture 8): areas, IoU, formats, the Fast R-CNN box
parametrization, SSD-style anchors and anchor-to-ground-truth matching.

Conventions (torchvision's): a box is float (x1, y1, x2, y2) in image pixels, x to the right
and y down, corners continuous (a box [0, 0, 10, 10] has area 100). Every function takes
Tensors or NumPy/CuPy arrays and returns the same kind, computed on the data's device
(``xp = get_array_module(boxes)``). They are not differentiable: they compute training targets
and post-process predictions.

Where minidl differs from torchvision, on degenerate boxes only:
* an inverted box (x2 < x1 or y2 < y1) has area 0 — torchvision multiplies the signed sides,
  so a box inverted along both axes gets a positive area;
* the IoU of two empty boxes (union 0) is 0 — torchvision returns 0/0 = NaN.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from ..pairs import as_pair
from ._utils import (boxes_array, check_number, finite_check, like, raise_first_failed,
                     size_pair, unwrap, upcast)

_FORMATS = ("xyxy", "xywh", "cxcywh")


def _last_axis_boxes(boxes, name):
    """boxes (..., 4) as an array (any leading shape)."""
    array, was_tensor = unwrap(boxes, name)
    if array.ndim < 1 or array.shape[-1] != 4:
        raise ValueError(f"{name}: expected shape (..., 4), got {tuple(array.shape)}")
    return array, was_tensor


def box_area(boxes, fmt="xyxy"):
    """Area of each box: (..., 4) -> (...). Negative sides count as 0 (an empty box).

    Small dtypes are widened first (``upcast``): float16 boxes give float32 areas, integer
    boxes int64 areas — a 300 × 300 float16 box has area 90000 > 65504, the float16 maximum.
    """
    b, was_tensor = _last_axis_boxes(boxes, "boxes")
    if b.dtype.kind not in "fiub":
        raise TypeError(f"boxes: expected real numbers, got dtype {b.dtype}")
    b = upcast(b)
    if not isinstance(fmt, str) or fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {_FORMATS}, got {fmt!r}")
    xp = backend.get_array_module(b)
    if fmt == "xyxy":
        w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    else:
        w, h = b[..., 2], b[..., 3]
    return like(xp.maximum(w, 0) * xp.maximum(h, 0), was_tensor)


def box_iou(boxes1, boxes2):
    """Intersection over union of every pair: boxes1 (N, 4), boxes2 (M, 4) -> (N, M).

    IoU = |A ∩ B| / |A ∪ B| = inter / (area_a + area_b - inter); 0 when the union is empty.
    Computed in a wide type (``upcast``): float16 or integer boxes give a float32 IoU, float64
    boxes a float64 one.
    """
    a, was_tensor = boxes_array(boxes1, "boxes1", float_only=False)
    b, _ = boxes_array(boxes2, "boxes2", float_only=False)
    for name, array in (("boxes1", a), ("boxes2", b)):
        if array.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected real numbers, got dtype {array.dtype}")
    a, b = upcast(a), upcast(b)
    floats = [x.dtype for x in (a, b) if x.dtype.kind == "f"]   # integer corners: a float32 IoU
    dtype = max(floats, key=lambda d: d.itemsize) if floats else np.dtype(np.float32)
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    xp = backend.get_array_module(a, b)
    area_a, area_b = box_area(a), box_area(b)
    top_left = xp.maximum(a[:, None, :2], b[None, :, :2])          # (N, M, 2)
    bottom_right = xp.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = xp.maximum(bottom_right - top_left, 0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    iou = inter / xp.where(union > 0, union, 1)                     # 0/1 = 0 for empty unions
    return like(iou, was_tensor)


def box_convert(boxes, in_fmt, out_fmt):
    """Convert between 'xyxy' (corners), 'xywh' (top-left + size), 'cxcywh' (centre + size)."""
    b, was_tensor = _last_axis_boxes(boxes, "boxes")
    for name, fmt in (("in_fmt", in_fmt), ("out_fmt", out_fmt)):
        if not isinstance(fmt, str) or fmt not in _FORMATS:
            raise ValueError(f"{name} must be one of {_FORMATS}, got {fmt!r}")
    xp = backend.get_array_module(b)
    p, q, r, s = (upcast(b[..., k]) for k in range(4))   # int8 x + w must not wrap
    if in_fmt == "xywh":                          # everything goes through xyxy
        p, q, r, s = p, q, p + r, q + s
    elif in_fmt == "cxcywh":
        p, q, r, s = p - 0.5 * r, q - 0.5 * s, p + 0.5 * r, q + 0.5 * s
    if out_fmt == "xywh":
        p, q, r, s = p, q, r - p, s - q
    elif out_fmt == "cxcywh":
        p, q, r, s = (p + r) / 2, (q + s) / 2, r - p, s - q
    out = xp.stack([p, q, r, s], axis=-1)
    if b.dtype.kind in "iu" and out.size:   # back to the input's integer type only if it fits
        info = np.iinfo(b.dtype)
        if backend.any_true((out < info.min) | (out > info.max)):
            raise ValueError(f"box_convert: the converted boxes do not fit in {b.dtype}; "
                             f"convert a wider dtype (e.g. boxes.astype(int64))")
    return like(out.astype(b.dtype, copy=False), was_tensor)


def clip_boxes_to_image(boxes, size):
    """Clip (..., 4) boxes into an image of size (height, width): x to [0, W], y to [0, H]."""
    b, was_tensor = _last_axis_boxes(boxes, "boxes")
    height, width = size_pair(size, "size")
    xp = backend.get_array_module(b)
    x = xp.clip(b[..., 0::2], 0, width)
    y = xp.clip(b[..., 1::2], 0, height)
    return like(xp.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], axis=-1), was_tensor)


def remove_small_boxes(boxes, min_size):
    """Indices (int64) of the boxes whose width and height are both >= min_size."""
    b, was_tensor = boxes_array(boxes, "boxes", float_only=False)
    b = upcast(b)                        # an inverted uint8 box must not wrap to a huge width
    min_size = check_number(min_size, "min_size")
    xp = backend.get_array_module(b)
    keep = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
    return like(xp.nonzero(keep)[0].astype(xp.int64), was_tensor)


def encode_boxes(reference_boxes, proposals, weights=(1.0, 1.0, 1.0, 1.0)):
    """Regression targets that turn each proposal into its reference box (Fast R-CNN, eq. 6-9).

    With proposal P (centre px, py, size pw, ph) and reference box G (gx, gy, gw, gh):
        dx = wx (gx - px) / pw,   dy = wy (gy - py) / ph,
        dw = ww log(gw / pw),     dh = wh log(gh / ph).
    Offsets relative to the proposal's size make the targets scale-invariant; the logs make
    size changes symmetric (doubling and halving are ±log 2). reference_boxes, proposals (N, 4)
    -> (N, 4). torchvision's argument order (reference first).
    """
    g, was_tensor = boxes_array(reference_boxes, "reference_boxes")
    p, _ = boxes_array(proposals, "proposals")
    if g.shape != p.shape:
        raise ValueError(f"reference_boxes {tuple(g.shape)} and proposals {tuple(p.shape)} differ")
    xp = backend.get_array_module(g, p)
    wx, wy, ww, wh = (float(w) for w in weights)
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    px, py = p[:, 0] + 0.5 * pw, p[:, 1] + 0.5 * ph
    gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    gx, gy = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
    targets = xp.stack([wx * (gx - px) / pw, wy * (gy - py) / ph,
                        ww * xp.log(gw / pw), wh * xp.log(gh / ph)], axis=1)
    return like(targets.astype(g.dtype, copy=False), was_tensor)


def decode_boxes(rel_codes, boxes, weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=math.log(1000.0 / 16)):
    """Apply regression outputs to boxes (the inverse of encode_boxes).

    rel_codes (N, 4·k) (k box predictions per box, e.g. one per class), boxes (N, 4) -> (N, 4·k).
    dw and dh are clamped at bbox_xform_clip = log(1000/16) before exp, as in torchvision, so an
    untrained regressor cannot produce an overflowing size (at most 62.5× the box).
    """
    codes, was_tensor = unwrap(rel_codes, "rel_codes")
    b, _ = boxes_array(boxes, "boxes")
    if codes.ndim != 2 or codes.shape[1] % 4 or codes.shape[0] != b.shape[0]:
        raise ValueError(f"rel_codes must be (N, 4·k) with N = {b.shape[0]} boxes, "
                         f"got {tuple(codes.shape)}")
    xp = backend.get_array_module(codes, b)
    b = b.astype(codes.dtype, copy=False)
    wx, wy, ww, wh = (float(w) for w in weights)
    width, height = b[:, 2:3] - b[:, 0:1], b[:, 3:4] - b[:, 1:2]
    cx, cy = b[:, 0:1] + 0.5 * width, b[:, 1:2] + 0.5 * height
    dx, dy = codes[:, 0::4] / wx, codes[:, 1::4] / wy
    dw = xp.minimum(codes[:, 2::4] / ww, bbox_xform_clip)
    dh = xp.minimum(codes[:, 3::4] / wh, bbox_xform_clip)
    pred_cx, pred_cy = dx * width + cx, dy * height + cy
    half_w, half_h = 0.5 * xp.exp(dw) * width, 0.5 * xp.exp(dh) * height
    out = xp.stack([pred_cx - half_w, pred_cy - half_h, pred_cx + half_w, pred_cy + half_h], axis=2)
    return like(out.reshape(codes.shape).astype(codes.dtype, copy=False), was_tensor)


def anchor_grid(feature_size, stride, sizes, aspect_ratios=(1.0,), dtype=np.float32, device="cpu"):
    """SSD-style anchors (default boxes) for one feature map -> (H·W·A, 4) in image pixels.

    Cell (i, j) of an H×W feature map with the given stride (pixels per cell, an int or (sy, sx))
    is centred at ((j + 0.5)·sx, (i + 0.5)·sy). It gets A = len(sizes)·len(aspect_ratios) anchors:
    for each size s (outer) and aspect ratio r = width / height (inner, SSD's convention;
    torchvision's AnchorGenerator uses height / width), a box of width s·√r and height s/√r
    (area s²). Order: cell-major, row by row, the A anchors of a cell together — the order of a
    conv head's output (N, A·4, H, W) permuted to (N, H, W, A, 4).
    """
    height, width = as_pair(feature_size, "feature_size", 1)
    if isinstance(stride, numbers.Real):
        stride = (stride, stride)
    if not isinstance(stride, (tuple, list)) or len(stride) != 2:
        raise ValueError(f"stride must be a positive number or a pair (sy, sx), got {stride!r}")
    sy, sx = (check_number(v, "stride", minimum=1e-12) for v in stride)
    for name, values in (("sizes", sizes), ("aspect_ratios", aspect_ratios)):
        if not isinstance(values, (tuple, list)) or not values:
            raise ValueError(f"{name} must be a non-empty tuple of positive numbers, got {values!r}")
        if min(check_number(v, name) for v in values) <= 0:
            raise ValueError(f"{name} must be positive, got {values!r}")
    xp = backend.get_array_module(backend.to_device(backend.as_array([0.0]), device))
    half = xp.asarray([[-s * math.sqrt(r), -s / math.sqrt(r), s * math.sqrt(r), s / math.sqrt(r)]
                       for s in sizes for r in aspect_ratios], dtype=xp.float64) / 2   # (A, 4)
    cy, cx = xp.meshgrid((xp.arange(height) + 0.5) * sy, (xp.arange(width) + 0.5) * sx, indexing="ij")
    centres = xp.stack([cx, cy, cx, cy], axis=-1).reshape(-1, 1, 4)   # (H·W, 1, 4)
    return (centres + half[None]).reshape(-1, 4).astype(dtype)


def match_anchors(anchors, gt_boxes, pos_threshold=0.5, neg_threshold=0.4,
                  allow_low_quality_matches=True):
    """Assign each anchor to a ground-truth box by IoU -> int64 (num_anchors,).

    For each anchor take its best ground truth (highest IoU; the first on ties):
      IoU >= pos_threshold                 -> that ground truth's index (a positive);
      IoU <  neg_threshold                 -> -1 (a negative: background);
      neg_threshold <= IoU < pos_threshold -> -2 (ignored by the loss: too ambiguous).
    With allow_low_quality_matches (SSD's rule), each ground truth then also claims its own best
    anchor (the first on ties, if it overlaps it at all), so no object goes unmatched; when two
    ground truths share a best anchor the later one gets it (SSD's reference code does the same).
    No ground truth: every anchor is negative.
    """
    a, was_tensor = boxes_array(anchors, "anchors")
    g, _ = boxes_array(gt_boxes, "gt_boxes")
    g = backend.to_device(g, backend.device_of(a))
    raise_first_failed([finite_check(a, "anchors"), finite_check(g, "gt_boxes")])   # one device read
    pos = check_number(pos_threshold, "pos_threshold")
    neg = check_number(neg_threshold, "neg_threshold")
    if neg > pos:
        raise ValueError(f"neg_threshold ({neg}) must be <= pos_threshold ({pos})")
    xp = backend.get_array_module(a, g)
    matches = xp.full(a.shape[0], -1, dtype=xp.int64)
    if g.shape[0] == 0 or a.shape[0] == 0:
        return like(matches, was_tensor)
    iou = box_iou(g, a)                                   # (M, N)
    best_gt = xp.argmax(iou, axis=0)
    best_iou = iou[best_gt, xp.arange(a.shape[0])]
    matches = xp.where(best_iou >= pos, best_gt, xp.where(best_iou < neg, -1, -2)).astype(xp.int64)
    if allow_low_quality_matches:
        best_anchor = backend.to_numpy(xp.argmax(iou, axis=1))
        overlaps = backend.to_numpy(iou.max(axis=1)) > 0
        for j in range(g.shape[0]):                       # in order: a later gt wins a shared anchor
            if overlaps[j]:
                matches[int(best_anchor[j])] = j
    return like(matches, was_tensor)
