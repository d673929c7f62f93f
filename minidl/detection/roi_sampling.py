"""Training targets of region-based detectors (R-CNN, Fast R-CNN): which RoIs, which labels.

A region-based detector classifies *proposals* (candidate boxes). To train it we must say, for
each proposal, what the right answer is:

* its **label**: the class of the ground-truth box it overlaps most if that IoU is at least
  ``fg_iou`` (a *foreground* RoI), otherwise 0 = background (``bg_iou`` bounds the IoU range that
  counts as background; in between, the proposal is too ambiguous and is not used);
* its **regression target**: for a foreground RoI, the offsets ``encode_boxes(gt, roi)`` that would
  move the proposal onto its ground-truth box (Fast R-CNN's parametrization, eq. 6-9).

Most proposals are background, so a mini-batch **samples** RoIs: at most ``positive_fraction``
of ``batch_size`` foreground ones, the rest background (Fast R-CNN: 25 % of 64 RoIs per image).
The ground-truth boxes themselves are added to the proposals, so every object has at least one
perfect positive. At training time proposals can also be made by **jittering** the ground truth
(``jitter_proposals``): cheap, and it controls the IoU spread the regressor learns from.

Label convention: 0 = background, ``c + 1`` = object class ``c`` (detectors output C + 1 scores).
"""
from __future__ import annotations

import numpy as np

from ..ops import box_iou, encode_boxes

#: Box-coder weights of the regression targets (torchvision's Fast R-CNN default): scaling the
#: offsets up makes their variance near 1, which balances the regression and classification losses.
BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def jitter_proposals(gt_boxes, image_size, count=64, rng=None, scale=0.25, random_fraction=0.5):
    """Training proposals near and away from the ground truth -> (count, 4) float32 boxes.

    ``(1 - random_fraction)·count`` boxes are ground-truth boxes whose centre is shifted and whose
    sides are rescaled by up to ``scale`` of their size (IoUs spread from ~0.3 to 1); the others are
    random boxes anywhere in the image (mostly background). ``image_size`` = (height, width).
    """
    rng = np.random.default_rng(rng)
    height, width = image_size
    gt = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    n_near = int(round(count * (1.0 - random_fraction))) if len(gt) else 0
    boxes = []
    if n_near:
        source = gt[rng.integers(len(gt), size=n_near)]
        w, h = source[:, 2] - source[:, 0], source[:, 3] - source[:, 1]
        cx, cy = source[:, 0] + w / 2, source[:, 1] + h / 2
        cx = cx + rng.uniform(-scale, scale, n_near) * w
        cy = cy + rng.uniform(-scale, scale, n_near) * h
        w = w * np.exp(rng.uniform(-scale, scale, n_near) * 2)
        h = h * np.exp(rng.uniform(-scale, scale, n_near) * 2)
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
    n_random = count - n_near
    side = min(height, width)
    w = rng.uniform(0.1, 0.5, n_random) * side
    h = w * np.exp(rng.uniform(-0.5, 0.5, n_random))
    x1, y1 = rng.uniform(0, width - w), rng.uniform(0, np.maximum(height - h, 1e-3))
    boxes.append(np.stack([x1, y1, x1 + w, y1 + h], axis=1))
    out = np.concatenate(boxes).astype(np.float32)
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height)
    return out


def assign_rois(proposals, gt_boxes, gt_labels, fg_iou=0.5, bg_iou=(0.0, 0.5)):
    """Label every proposal -> ``(labels (P,), matched_gt (P,))``.

    ``labels``: ``c + 1`` for a foreground RoI (IoU with its best ground truth >= ``fg_iou``),
    0 for background (``bg_iou[0] <= IoU < bg_iou[1]``), -1 for ignored. ``matched_gt``: index of
    the best-overlapping ground-truth box (0 when there is none).
    """
    proposals = np.asarray(proposals, dtype=np.float32).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    if len(gt_boxes) != len(gt_labels):
        raise ValueError(f"gt_boxes ({len(gt_boxes)}) and gt_labels ({len(gt_labels)}) differ in length")
    if len(gt_boxes) == 0:
        return np.zeros(len(proposals), np.int64), np.zeros(len(proposals), np.int64)
    iou = box_iou(proposals, gt_boxes)                 # (P, G)
    matched = iou.argmax(axis=1)
    best = iou[np.arange(len(proposals)), matched]
    labels = np.full(len(proposals), -1, dtype=np.int64)
    labels[(best >= bg_iou[0]) & (best < bg_iou[1])] = 0
    foreground = best >= fg_iou
    labels[foreground] = gt_labels[matched[foreground]] + 1
    return labels, matched.astype(np.int64)


def sample_rois(proposals, gt_boxes, gt_labels, batch_size=64, positive_fraction=0.25, fg_iou=0.5,
                bg_iou=(0.0, 0.5), rng=None, add_gt=True, weights=BOX_CODER_WEIGHTS):
    """Sample a training mini-batch of RoIs of one image.

    Returns a dict: ``rois`` (B, 4), ``labels`` (B,) (0 = background), ``regression_targets``
    (B, 4) (zeros for background RoIs), ``matched_gt`` (B,) (the ground-truth index of a foreground
    RoI, −1 for background: what a dense captioner needs to find the RoI's caption), with B <= ``batch_size``: at most
    ``round(positive_fraction · batch_size)`` foreground RoIs (fewer if there are fewer), then
    background ones to fill the batch (fewer if there are fewer). Sampling is without replacement.
    """
    rng = np.random.default_rng(rng)
    proposals = np.asarray(proposals, dtype=np.float32).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    if add_gt:
        proposals = np.concatenate([proposals, gt_boxes])
    labels, matched = assign_rois(proposals, gt_boxes, gt_labels, fg_iou, bg_iou)
    positives, negatives = np.flatnonzero(labels > 0), np.flatnonzero(labels == 0)
    n_pos = min(len(positives), int(round(positive_fraction * batch_size)))
    n_neg = min(len(negatives), batch_size - n_pos)
    keep = np.concatenate([rng.choice(positives, n_pos, replace=False),
                           rng.choice(negatives, n_neg, replace=False)]).astype(np.int64)
    rois, labels = proposals[keep], labels[keep]
    targets = np.zeros((len(keep), 4), dtype=np.float32)
    fg = labels > 0
    if fg.any():
        targets[fg] = encode_boxes(gt_boxes[matched[keep][fg]], rois[fg], weights)
    matched_gt = np.where(fg, matched[keep], -1).astype(np.int64)
    return {"rois": rois, "labels": labels, "regression_targets": targets, "matched_gt": matched_gt}
