"""Sliding-window detection (CS231n lecture 8): a CNN classifier applied at every window.

The first idea for detection: slide a box over the image at many positions, scales and aspect
ratios (``proposals.sliding_window_proposals``), and ask a CNN classifier "object or background,
and which class?" at each one. The lecture's objection is the count: "need to apply CNN to a huge
number of locations, scales, and aspect ratios — very computationally expensive". Region
proposals (selective search) answer it by looking at the pixels first and proposing ~100 boxes
that are likely to hold an object.

To make the comparison fair, both use **the same classifier** — R-CNN's CNN (``RCNN``: warp a
box to a fixed crop, classify it into C + 1 classes, refine the box) — and the windows are chosen
to give **the same recall** as the proposals: ``windows_for_recall`` walks a ladder of window
sets, each denser than the last, and stops at the first whose recall on the given ground truth
reaches the target. What differs is then only how many boxes the CNN must look at
(docs/lecture8.md measures it: ~100 proposals against ~10,000 windows per 64×64 scene).
"""
from __future__ import annotations

from .proposals import proposal_recall, sliding_window_proposals

#: Window sets from sparse to dense (about 70 to 10,000 windows on a 64×64 image): (scales in
#: pixels, aspect ratios h / w, stride in pixels). The shapes scenes' objects are 7–28 px wide.
WINDOW_LADDER = (
    ((16, 32), (1.0,), 8),
    ((12, 16, 24, 32), (1.0,), 8),
    ((12, 16, 24, 32), (1.0,), 4),
    ((10, 14, 20, 28), (0.5, 1.0, 2.0), 4),
    ((10, 13, 16, 20, 24, 28), (0.5, 1.0, 2.0), 4),
    ((10, 14, 20, 28), (0.5, 1.0, 2.0), 2),
    ((10, 13, 16, 20, 24, 28), (0.5, 1.0, 2.0), 2),
    ((8, 10, 12, 14, 16, 20, 24, 28), (0.5, 0.75, 1.0, 1.33, 2.0), 2),
)


def windows_for_recall(gt_boxes, image_size, target_recall, iou_threshold=0.5, ladder=WINDOW_LADDER):
    """The sparsest window set of ``ladder`` whose recall reaches ``target_recall``.

    Args:
        gt_boxes: list of (G_i, 4) ground-truth boxes, one array per image (the same windows are
            used on every image, so the recall is pooled over all of them).
        image_size: ``(height, width)`` or an int.
        target_recall: e.g. the recall of selective search on the same images.
        iou_threshold: a ground-truth box counts as found by a window with at least this IoU.

    Returns ``(windows (K, 4), config, recall)`` with ``config = (scales, aspect_ratios, stride)``;
    if no set reaches the target, the densest one (its recall tells by how much it falls short).
    """
    if not 0.0 <= float(target_recall) <= 1.0:
        raise ValueError(f"target_recall must be in [0, 1], got {target_recall!r}")
    if not ladder:
        raise ValueError("ladder must list at least one (scales, aspect_ratios, stride) window set")
    for config in ladder:
        windows = sliding_window_proposals(image_size, *config)
        recall = proposal_recall([windows] * len(gt_boxes), list(gt_boxes), iou_threshold)
        if recall >= target_recall:
            break
    return windows, config, recall


def sliding_window_detect(detector, images, windows, **detect_kwargs):
    """Classify every window of every image with a region classifier -> detections per image.

    ``detector`` is any region-based detector with ``detect(images, proposals)`` (``RCNN``: one
    CNN forward per window); the windows play the part of the proposals, the same set on every
    image. Post-processing (score threshold, box refinement, per-class NMS) is the detector's.
    """
    return detector.detect(images, [windows] * len(images), **detect_kwargs)
