"""How good is a model? The evaluation metrics of CS231n lecture 8, in NumPy.

* classification: ``accuracy``;
* semantic segmentation: ``confusion_matrix``, ``pixel_accuracy``, ``iou_per_class``, ``mean_iou``;
* classification + localization: ``mean_box_iou`` (IoU of each predicted box with its ground truth);
* pose: ``pck`` (Percentage of Correct Keypoints);
* detection: ``voc_map`` (PASCAL VOC AP at IoU 0.5) and ``coco_map`` (COCO's AP averaged over
  IoU thresholds 0.50:0.05:0.95).

Every function accepts minidl ``Tensor`` s or arrays (NumPy or CuPy) and computes on the CPU.

Boxes are ``(x1, y1, x2, y2)`` in continuous pixel coordinates, area ``(x2 - x1) * (y2 - y1)``
(torchvision's and COCO's convention; the old VOC devkit added 1 pixel to widths, we do not) —
the convention of ``minidl.ops.box_iou``, which the detection metrics use.
"""
from __future__ import annotations

import numpy as np

from .backend import to_numpy
from .ops.boxes import box_iou      # pairwise (N, M) IoU; 0 for two empty boxes
from .autograd import Tensor


def _np(x, name="input"):
    """A NumPy array from a Tensor, NumPy/CuPy array or nested list."""
    if x is None:
        raise TypeError(f"{name} must be an array or Tensor, got None")
    return to_numpy(x.data if isinstance(x, Tensor) else x)


def _class_indices(pred, target):
    """``pred`` as class indices: scores ``(N, C, ...)`` are reduced by argmax over axis 1."""
    pred, target = _np(pred, "pred"), _np(target, "target")
    if pred.ndim == target.ndim + 1:
        pred = pred.argmax(axis=1)
    if pred.shape != target.shape:
        raise ValueError(f"pred must have target's shape {target.shape} (class indices) or "
                         f"(N, C) + target.shape[1:] (scores), got {pred.shape}")
    return pred, target


# ---- classification and segmentation -------------------------------------------------------------

def accuracy(pred, target, ignore_index=None) -> float:
    """Fraction of ``pred == target`` (``pred``: class indices, or scores with the class axis 1).

    Elements where ``target == ignore_index`` are not counted.
    """
    pred, target = _class_indices(pred, target)
    keep = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    if not keep.any():
        return float("nan")
    return float((pred[keep] == target[keep]).mean())


def confusion_matrix(pred, target, num_classes, ignore_index=None) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: entry ``[t, p]`` = #elements of true class t predicted p.

    Rows are the truth, columns the prediction (scikit-learn's convention). Works for any shape
    (labels of images, or of every pixel of a segmentation). Elements whose target equals
    ``ignore_index`` (e.g. 255, "void" in VOC) are skipped.
    """
    pred, target = _class_indices(pred, target)
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    pred, target = pred.astype(np.int64).ravel(), target.astype(np.int64).ravel()
    for name, values in (("pred", pred), ("target", target)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} values must lie in [0, num_classes={num_classes}), "
                             f"got range [{values.min()}, {values.max()}]")
    # Each (t, p) pair gets its own bin t * C + p; one bincount counts them all.
    return np.bincount(target * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def pixel_accuracy(pred, target, ignore_index=None) -> float:
    """Fraction of correctly labelled pixels (the same as ``accuracy`` over all pixels)."""
    return accuracy(pred, target, ignore_index)


def iou_per_class(confusion) -> np.ndarray:
    """IoU of each class from a confusion matrix: TP / (TP + FP + FN).

    For class c: TP = ``cm[c, c]``, FN = row c minus TP (pixels of c predicted otherwise),
    FP = column c minus TP (pixels predicted c that are not). A class that appears neither in
    the target nor in the prediction has a 0 / 0 IoU: it is returned as NaN, and ``mean_iou``
    leaves it out of the mean (a class the model never had to find says nothing either way).
    """
    cm = _np(confusion, "confusion").astype(np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix, got shape {cm.shape}")
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(pred, target, num_classes, ignore_index=None):
    """Mean intersection-over-union of a segmentation: ``(miou, per_class_iou)``.

    ``miou`` is the mean of ``iou_per_class`` over the classes present in the target or the
    prediction (absent classes are NaN in ``per_class_iou`` and excluded), computed from one
    confusion matrix over *all* the pixels given — the dataset-level mIoU of PASCAL VOC, not a
    mean of per-image scores.
    """
    per_class = iou_per_class(confusion_matrix(pred, target, num_classes, ignore_index))
    valid = ~np.isnan(per_class)
    return (float(per_class[valid].mean()) if valid.any() else float("nan")), per_class


# ---- localization and pose -----------------------------------------------------------------------

def _check_boxes(boxes, name):
    boxes = _np(boxes, name).astype(np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as (x1, y1, x2, y2), got {boxes.shape}")
    return boxes


def _box_area(boxes):
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def paired_box_iou(pred_boxes, target_boxes) -> np.ndarray:
    """IoU of ``pred_boxes[i]`` with ``target_boxes[i]`` (both (N, 4) x1y1x2y2) -> (N,); no overlap
    (or two empty boxes) gives 0."""
    pred, target = _check_boxes(pred_boxes, "pred_boxes"), _check_boxes(target_boxes, "target_boxes")
    if pred.shape != target.shape:
        raise ValueError(f"pred_boxes and target_boxes must have the same shape, got {pred.shape} and {target.shape}")
    top_left = np.maximum(pred[:, :2], target[:, :2])
    bottom_right = np.minimum(pred[:, 2:], target[:, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = _box_area(pred) + _box_area(target) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mean_box_iou(pred_boxes, target_boxes) -> float:
    """Mean IoU of ``pred_boxes[i]`` with ``target_boxes[i]`` (both (N, 4)): localization quality."""
    iou = paired_box_iou(pred_boxes, target_boxes)
    return float(np.mean(iou)) if len(iou) else float("nan")


def correct_localization(pred_labels, pred_boxes, labels, boxes, iou_threshold=0.5) -> float:
    """Fraction of single-object images whose class is right AND whose box has IoU >= ``iou_threshold``
    with the truth — classification and localization judged together (assignment 6's metric)."""
    right_class = np.asarray(pred_labels).reshape(-1) == np.asarray(labels).reshape(-1)
    return float(np.mean(right_class & (paired_box_iou(pred_boxes, boxes) >= iou_threshold)))


def pck(pred, target, boxes, alpha=0.2, visible=None, per_keypoint=False, min_visibility=1):
    """Percentage of Correct Keypoints: the fraction of keypoints predicted within a radius of the truth.

    A predicted keypoint is correct when its distance to the true one is at most
    ``alpha * max(h, w)`` of the instance's ground-truth box (``boxes``: ``(x1, y1, x2, y2)``) —
    the bounding-box normalization of Yang & Ramanan's PCK; MPII's PCKh uses the head size instead.
    Dividing by the object size makes the score independent of how large the person is drawn.

    Args:
        pred: (..., K, 2) predicted (x, y) (extra columns such as a score are ignored).
        target: (..., K, 2) or (..., K, 3) true keypoints; with 3 columns the third is the
            visibility (COCO's 0 = not labelled, 1 = labelled but occluded, 2 = visible) and only
            keypoints with visibility >= ``min_visibility`` are scored.
        boxes: (..., 4) one reference box per instance (same leading shape as the keypoints).
        alpha: the tolerance as a fraction of the box size (PCK@0.2 is common).
        visible: optional (..., K) bool mask overriding the visibility column.
        per_keypoint: return a (K,) array (one PCK per keypoint type) instead of one number.
        min_visibility: 1 (default) scores every labelled keypoint, occluded ones included (their
            true position is known, as in MPII/LSP); 2 scores only the visible ones.

    Keypoints that are not scored do not count in the denominator; with none at all, NaN.
    """
    pred, target, boxes = _np(pred, "pred"), _np(target, "target"), _np(boxes, "boxes")
    if target.ndim < 2 or target.shape[-1] not in (2, 3):
        raise ValueError(f"target must have shape (..., K, 2) or (..., K, 3), got {target.shape}")
    if pred.shape[:-1] != target.shape[:-1] or pred.shape[-1] < 2:
        raise ValueError(f"pred must have shape {target.shape[:-1] + (2,)}, got {pred.shape}")
    if boxes.shape != target.shape[:-2] + (4,):
        raise ValueError(f"boxes must have shape {target.shape[:-2] + (4,)} (one box per instance), got {boxes.shape}")
    if visible is None:
        visible = (target[..., 2] >= min_visibility if target.shape[-1] == 3
                   else np.ones(target.shape[:-1], bool))
    visible = _np(visible, "visible").astype(bool)
    if visible.shape != target.shape[:-1]:
        raise ValueError(f"visible must have shape {target.shape[:-1]}, got {visible.shape}")
    size = np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])      # (...,)
    distance = np.linalg.norm(pred[..., :2].astype(np.float64) - target[..., :2], axis=-1)  # (..., K)
    correct = (distance <= alpha * size[..., None]) & visible
    k = target.shape[-2]
    correct, visible = correct.reshape(-1, k), visible.reshape(-1, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        if per_keypoint:
            return correct.sum(axis=0) / visible.sum(axis=0)
        return float(correct.sum() / visible.sum()) if visible.any() else float("nan")


# ---- detection: average precision ----------------------------------------------------------------

def average_precision(recall, precision) -> float:
    """Area under the interpolated precision/recall curve (PASCAL VOC 2010+, "all points").

    ``recall``, ``precision``: the curve over the ranked detections (recall non-decreasing).
    Precision is first made monotone — at each recall it becomes the best precision reachable at
    that recall *or higher* — then the area under that staircase is summed exactly at the points
    where the recall changes.
    """
    recall, precision = _np(recall, "recall").astype(np.float64), _np(precision, "precision").astype(np.float64)
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]        # p[i] = max(p[i:]) — the interpolation
    steps = np.flatnonzero(r[1:] != r[:-1])          # where recall moves
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def _coco_ap_101(recall, precision) -> float:
    """COCO's AP: the interpolated precision read at 101 recall levels 0, 0.01, ..., 1, averaged.

    At recall level r the precision is that of the first ranked detection reaching recall ≥ r
    (after the same monotone interpolation as VOC), or 0 when recall r is never reached.
    """
    precision = np.maximum.accumulate(np.asarray(precision, np.float64)[::-1])[::-1]
    levels = np.linspace(0.0, 1.0, 101)
    first = np.searchsorted(recall, levels, side="left")
    sampled = np.where(first < len(precision), precision[np.minimum(first, len(precision) - 1)], 0.0) \
        if len(precision) else np.zeros(101)
    return float(sampled.mean())


def _unpack_detections(preds, targets):
    """Validate the list-of-dicts inputs and return them as NumPy arrays."""
    if len(preds) != len(targets):
        raise ValueError(f"preds and targets must hold one dict per image, got {len(preds)} and {len(targets)}")
    images = []
    for i, (p, t) in enumerate(zip(preds, targets)):
        for key, d, name in (("boxes", p, "preds"), ("scores", p, "preds"), ("labels", p, "preds"),
                             ("boxes", t, "targets"), ("labels", t, "targets")):
            if key not in d:
                raise ValueError(f"{name}[{i}] must have a {key!r} entry")
        p_boxes = _np(p["boxes"], "boxes").astype(np.float64).reshape(-1, 4)
        t_boxes = _np(t["boxes"], "boxes").astype(np.float64).reshape(-1, 4)
        p_scores = _np(p["scores"], "scores").astype(np.float64).reshape(-1)
        p_labels = _np(p["labels"], "labels").astype(np.int64).reshape(-1)
        t_labels = _np(t["labels"], "labels").astype(np.int64).reshape(-1)
        if not len(p_boxes) == len(p_scores) == len(p_labels) or len(t_boxes) != len(t_labels):
            raise ValueError(f"image {i}: boxes, scores and labels must have the same length")
        images.append((p_boxes, p_scores, p_labels, t_boxes, t_labels))
    return images


def _num_classes(images, num_classes):
    if num_classes is not None:
        return int(num_classes)
    labels = [lab for im in images for lab in (im[2], im[4]) if len(lab)]
    return int(max(lab.max() for lab in labels)) + 1 if labels else 0


def voc_map(preds, targets, num_classes=None, iou_threshold=0.5):
    """PASCAL VOC mean average precision at one IoU threshold (VOC 2010+ all-point AP).

    Args:
        preds: one dict per image: ``boxes`` (D, 4), ``scores`` (D,), ``labels`` (D,).
        targets: one dict per image: ``boxes`` (G, 4), ``labels`` (G,) (e.g. ``ShapesDataset``'s).
        num_classes: number of classes (default: the largest label seen + 1).
        iou_threshold: a detection can match a ground truth only with IoU > this (the devkit's
            strict inequality).

    For each class, the detections of all images are ranked by descending score (ties keep
    input order). Going down the list, a detection is a true positive when its best-overlapping
    ground-truth box of that class in its image has IoU > threshold and was not matched before;
    otherwise (no overlap, or the best box already taken: a duplicate) it is a false positive.
    Recall = TP / #ground truths, precision = TP / #detections so far, and AP = ``average_precision``.

    Returns ``{"map": mean over classes that have ground truth, "ap_per_class": (C,) with NaN for
    classes without ground truth}``. Not implemented: VOC's "difficult" flags.
    """
    images = _unpack_detections(preds, targets)
    num_classes = _num_classes(images, num_classes)
    ap = np.full(num_classes, np.nan)
    for c in range(num_classes):
        n_truth = 0
        ranked = []       # (score, image, detection index in the image) of every detection of class c
        per_image = []
        for i, (p_boxes, p_scores, p_labels, t_boxes, t_labels) in enumerate(images):
            det, gt = p_labels == c, t_labels == c
            ious = box_iou(p_boxes[det], t_boxes[gt])                     # (D_c, G_c) for this image
            per_image.append(ious)
            n_truth += int(gt.sum())
            ranked.extend((s, i, j) for j, s in enumerate(p_scores[det]))
        if n_truth == 0:
            continue
        scores = np.array([r[0] for r in ranked])
        order = np.argsort(-scores, kind="stable")
        taken = [np.zeros(ious.shape[1], bool) for ious in per_image]
        tp = np.zeros(len(order))
        for rank, d in enumerate(order):
            _, i, j = ranked[d]
            ious = per_image[i]
            if ious.shape[1] == 0:
                continue
            best = int(np.argmax(ious[j]))
            if ious[j, best] > iou_threshold and not taken[i][best]:
                tp[rank], taken[i][best] = 1, True
        tp_cum = np.cumsum(tp)
        recall = tp_cum / n_truth
        precision = tp_cum / np.arange(1, len(tp) + 1)
        ap[c] = average_precision(recall, precision)
    valid = ~np.isnan(ap)
    return {"map": float(ap[valid].mean()) if valid.any() else float("nan"), "ap_per_class": ap}


COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def coco_map(preds, targets, num_classes=None, iou_thresholds=COCO_IOU_THRESHOLDS, max_detections=100):
    """COCO-style mAP: AP averaged over IoU thresholds 0.50, 0.55, ..., 0.95 and over classes.

    Same inputs as ``voc_map``. Following pycocotools' ``COCOeval`` (bbox, area "all"):

    * per image and class, detections are ranked by score and only the top ``max_detections``
      kept (COCO's maxDets = 100);
    * matching, per threshold t: each detection in rank order takes the *unmatched* ground truth
      with the highest IoU ≥ t (unlike VOC, a detection whose best box is taken can still match
      another one);
    * over all images, precision/recall as in VOC, then ``_coco_ap_101`` (precision read at 101
      recall levels) instead of VOC's exact area;
    * a class without ground truth is left out (pycocotools marks it -1).

    Differences kept on purpose (minidl has no such annotations): no area ranges (small/medium/
    large), no crowd or ignore regions, a single ``max_detections`` setting.

    Returns ``{"map", "map_50", "map_75", "ap_per_class" (C,) averaged over thresholds,
    "ap" (T, C)}`` with NaN for classes without ground truth.
    """
    images = _unpack_detections(preds, targets)
    num_classes = _num_classes(images, num_classes)
    thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    ap = np.full((len(thresholds), num_classes), np.nan)
    for c in range(num_classes):
        all_scores, all_tp, n_truth = [], [], 0
        for p_boxes, p_scores, p_labels, t_boxes, t_labels in images:
            det = np.flatnonzero(p_labels == c)
            det = det[np.argsort(-p_scores[det], kind="mergesort")][:max_detections]
            gt = t_labels == c
            n_truth += int(gt.sum())
            ious = box_iou(p_boxes[det], t_boxes[gt])
            all_scores.append(p_scores[det])
            all_tp.append(_coco_match(ious, thresholds))                     # (T, D_c)
        if n_truth == 0:
            continue
        scores = np.concatenate(all_scores)
        tp = np.concatenate(all_tp, axis=1)[:, np.argsort(-scores, kind="mergesort")]
        tp_cum = np.cumsum(tp, axis=1)
        recall = tp_cum / n_truth
        precision = tp_cum / (np.arange(1, tp.shape[1] + 1) + np.spacing(1))
        for t in range(len(thresholds)):
            ap[t, c] = _coco_ap_101(recall[t], precision[t])
    valid = ~np.isnan(ap[0]) if ap.size else np.zeros(num_classes, bool)

    def mean(values):
        return float(values[..., valid].mean()) if valid.any() else float("nan")

    def at(threshold):
        hits = np.flatnonzero(np.isclose(thresholds, threshold))
        return mean(ap[hits[0]]) if len(hits) else float("nan")

    with np.errstate(invalid="ignore"):
        per_class = ap.mean(axis=0)
    return {"map": mean(ap), "map_50": at(0.5), "map_75": at(0.75), "ap_per_class": per_class, "ap": ap}


def _coco_match(ious, thresholds):
    """(T, D) true-positive flags of score-ranked detections against ground truths, per threshold."""
    n_det, n_gt = ious.shape
    tp = np.zeros((len(thresholds), n_det))
    for t, threshold in enumerate(thresholds):
        taken = np.zeros(n_gt, bool)
        for d in range(n_det):
            candidates = np.where(taken, -1.0, ious[d])
            if n_gt == 0:
                break
            # pycocotools keeps the *last* ground truth among equal IoUs: search from the end
            best = n_gt - 1 - int(np.argmax(candidates[::-1]))
            if candidates[best] >= min(threshold, 1 - 1e-10):
                taken[best] = True
                tp[t, d] = 1
    return tp
