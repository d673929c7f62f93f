"""Dense-captioning mAP (Johnson, Karpathy & Fei-Fei, DenseCap, CVPR 2016): boxes and words at once.

A dense captioner answers with regions *and* a sentence for each. Detection's mAP asks "is the box
right?"; DenseCap's metric asks "is the box right **and** does its caption say the right thing?".
It sweeps a 2-D grid of thresholds — box IoU ∈ {0.3, 0.4, 0.5, 0.6, 0.7} × caption similarity
(METEOR) ∈ {0.05, 0.10, 0.15, 0.20, 0.25} — computes an average precision at each of the 25 points
and reports their mean. With the caption threshold left out (every caption counts) the same
records give the detection-only figure ``detection_map``.

The procedure, as DenseCap's evaluation code does it:

1. **Merge ground truth**: boxes of one image that overlap by IoU ≥ 0.7 describe the same thing;
   they become one box (their mean) carrying all their captions as references.
2. **Assign** (per image, detections in descending score): each detection goes to the ground-truth
   box it overlaps most (any overlap). The first detection to reach a ground truth may count;
   later ones on the same box are duplicates and never count, whatever their IoU. A detection
   that overlaps nothing has no references at all.
3. **Score the words**: each assigned detection's caption against its box's reference captions
   (``similarity``, by default ``metrics.meteor_exact`` — exact-match METEOR, see there).
4. **Rank** every detection of every image by score; a detection is a true positive at
   (IoU t, similarity s) when it is the first on its box, its IoU ≥ t and its similarity > s.
   Recall = TP / #(merged) ground-truth boxes; AP is the 101-point max-interpolated precision
   (the mean over recall levels r = 0, 0.01, …, 1 of the best precision at recall ≥ r).

Departures, stated: METEOR here matches exact words only (no stems, synonyms or paraphrases,
which the shapes grammar does not need); IoU uses continuous coordinates without DenseCap's
"+1 pixel" (minidl's box convention, ``minidl.ops.box_iou``).
"""
from __future__ import annotations

import numpy as np

from ..metrics import _coco_ap_101
from ..ops.boxes import box_iou

DENSECAP_IOU_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
DENSECAP_SIMILARITY_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25)
#: DenseCap's METEOR thresholds were set for free-form sentences; a 3-4-word grammar caption that
#: shares "a" and the shape name with the truth already clears them. This grid asks for most of the
#: words (METEOR > 0.9: the exact caption, for these lengths); docs/captioning.md compares the two.
STRICT_SIMILARITY_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
MERGE_IOU = 0.7


def merge_ground_truth(boxes, captions, merge_iou=MERGE_IOU):
    """Merge boxes that overlap by IoU ≥ ``merge_iou`` -> ``(boxes (G', 4), references: list of lists)``.

    Greedy, as DenseCap: repeatedly take the remaining box with the most remaining neighbours
    (itself included), replace it and those neighbours by their mean box, pooling their captions.
    ``captions[g]`` is one caption (str) or a list of reference captions.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    refs = [[c] if isinstance(c, str) else list(c) for c in captions]
    if len(refs) != len(boxes):
        raise ValueError(f"merge_ground_truth: {len(boxes)} boxes but {len(refs)} captions")
    close = box_iou(boxes, boxes) >= merge_iou          # (G, G), symmetric, True on the diagonal
    remaining = np.ones(len(boxes), bool)
    merged_boxes, merged_refs = [], []
    while remaining.any():
        neighbours = close & remaining[None, :] & remaining[:, None]
        centre = int(np.argmax(neighbours.sum(1)))      # the remaining box with most neighbours
        group = np.flatnonzero(neighbours[centre])
        merged_boxes.append(boxes[group].mean(0))
        merged_refs.append([r for g in group for r in refs[g]])
        remaining[group] = False
    return np.array(merged_boxes, np.float64).reshape(-1, 4), merged_refs


def _assign(pred_boxes, pred_scores, gt_boxes):
    """Per image: each detection's best-overlap ground truth (−1: none), its IoU, and whether it
    is the first (highest-scoring) detection on that ground truth."""
    ious = box_iou(pred_boxes, gt_boxes) if len(gt_boxes) else np.zeros((len(pred_boxes), 0))
    best = np.full(len(pred_boxes), -1)
    overlap = np.zeros(len(pred_boxes))
    first = np.zeros(len(pred_boxes), bool)
    used = np.zeros(len(gt_boxes), bool)
    for d in np.argsort(-pred_scores, kind="stable"):
        if ious.shape[1] == 0 or ious[d].max() <= 0:
            continue                                    # overlaps nothing: no references
        j = int(np.argmax(ious[d]))
        best[d], overlap[d] = j, ious[d, j]
        first[d], used[j] = not used[j], True
    return best, overlap, first


def _check_image(i, pred, truth):
    for key, d, name in (("boxes", pred, "predictions"), ("scores", pred, "predictions"),
                         ("captions", pred, "predictions"), ("boxes", truth, "ground_truths"),
                         ("captions", truth, "ground_truths")):
        if key not in d:
            raise ValueError(f"{name}[{i}] must have a {key!r} entry")
    boxes = np.asarray(pred["boxes"], np.float64).reshape(-1, 4)
    scores = np.asarray(pred["scores"], np.float64).reshape(-1)
    if not len(boxes) == len(scores) == len(pred["captions"]):
        raise ValueError(f"predictions[{i}]: boxes, scores and captions must have the same length, got "
                         f"{len(boxes)}, {len(scores)}, {len(pred['captions'])}")
    return boxes, scores


def dense_captioning_map(predictions, ground_truths, similarity=None,
                         iou_thresholds=DENSECAP_IOU_THRESHOLDS,
                         similarity_thresholds=DENSECAP_SIMILARITY_THRESHOLDS, merge_iou=MERGE_IOU):
    """DenseCap's mean AP over IoU × caption-similarity thresholds.

    Args:
        predictions: one dict per image: ``boxes`` (P, 4), ``scores`` (P,), ``captions`` (P strings).
        ground_truths: one dict per image: ``boxes`` (G, 4), ``captions`` (G strings, or G lists of
            reference strings).
        similarity: ``similarity(candidate: str, references: list[str]) -> float`` (default:
            ``minidl.captioning.metrics.meteor_exact``).

    Returns a dict: ``map`` (mean of the AP grid), ``ap`` (len(iou) × len(similarity) array),
    ``detection_map`` (mean over IoU thresholds of the AP ignoring captions), ``detection_ap``,
    the thresholds, and ``num_ground_truth`` (after merging).
    """
    if similarity is None:
        from .metrics import meteor_exact as similarity
    if len(predictions) != len(ground_truths):
        raise ValueError(f"predictions and ground_truths must hold one dict per image, got "
                         f"{len(predictions)} and {len(ground_truths)}")
    scores, overlaps, firsts, words = [], [], [], []
    num_truth = 0
    for i, (pred, truth) in enumerate(zip(predictions, ground_truths)):
        p_boxes, p_scores = _check_image(i, pred, truth)
        gt_boxes, gt_refs = merge_ground_truth(truth["boxes"], truth["captions"], merge_iou)
        best, overlap, first = _assign(p_boxes, p_scores, gt_boxes)
        num_truth += len(gt_boxes)
        for d in range(len(p_boxes)):
            scores.append(p_scores[d])
            overlaps.append(overlap[d])
            firsts.append(first[d])
            # A detection that matches nothing is a false positive at every threshold: its
            # words need no score (-inf keeps it below every similarity threshold).
            words.append(similarity(pred["captions"][d], gt_refs[best[d]]) if best[d] >= 0 else -np.inf)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    overlaps, firsts, words = (np.asarray(a)[order] for a in (overlaps, firsts, words))

    def ap(tp):
        if num_truth == 0:
            return float("nan")
        tp_cum = np.cumsum(tp)
        recall = tp_cum / num_truth
        precision = tp_cum / np.arange(1, len(tp) + 1)
        return _coco_ap_101(recall, precision)          # mean over r of max precision at recall ≥ r

    grid = np.array([[ap(firsts & (overlaps >= t) & (words > s)) for s in similarity_thresholds]
                     for t in iou_thresholds])
    detection = np.array([ap(firsts & (overlaps >= t)) for t in iou_thresholds])
    return {"map": float(np.mean(grid)), "ap": grid, "detection_map": float(np.mean(detection)),
            "detection_ap": detection, "iou_thresholds": tuple(iou_thresholds),
            "similarity_thresholds": tuple(similarity_thresholds), "num_ground_truth": num_truth}


def best_box_captions(predictions, ground_truths, iou_threshold=0.5):
    """The simpler per-box view: for every ground-truth object, the caption of the detection that
    overlaps it most — whatever that detection's score — if that IoU reaches ``iou_threshold``
    (else ``None``: the object was missed).

    predictions as ``dense_captioning_map``; ground_truths: one dict per image with ``boxes``
    (G, 4) and ``captions``, exactly G strings (one true caption per box). Returns a flat list over
    all images' objects of ``(candidate or None, true caption)``.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"predictions and ground_truths must hold one dict per image, got "
                         f"{len(predictions)} and {len(ground_truths)}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold!r}")
    pairs = []
    for i, (pred, truth) in enumerate(zip(predictions, ground_truths)):
        p_boxes, _ = _check_image(i, pred, truth)
        gt_boxes = np.asarray(truth["boxes"], np.float64).reshape(-1, 4)
        captions = list(truth["captions"])
        if len(captions) != len(gt_boxes) or not all(isinstance(c, str) for c in captions):
            raise ValueError(f"ground_truths[{i}]['captions'] must be one string per box: {len(gt_boxes)} boxes, "
                             f"got {len(captions)} captions of types {sorted({type(c).__name__ for c in captions})}")
        ious = box_iou(gt_boxes, p_boxes) if len(p_boxes) else np.zeros((len(gt_boxes), 0))
        for g, caption in enumerate(captions):
            j = int(np.argmax(ious[g])) if ious.shape[1] else -1
            pairs.append((pred["captions"][j] if j >= 0 and ious[g, j] >= iou_threshold else None, caption))
    return pairs


def dense_caption_scores(predictions, ground_truths):
    """The figures this project reports for a dense captioner, from one set of predictions.

    ``map`` (DenseCap's grid), ``strict_map`` (``STRICT_SIMILARITY_THRESHOLDS``), ``detection_map``;
    and the per-box view of ``best_box_captions``: ``objects_found`` (share of true objects with a
    detection at IoU ≥ 0.5), ``box_exact`` (share of those whose caption is exactly the object's),
    and the ``pairs`` themselves. Arguments as ``best_box_captions``.
    """
    scores = dense_captioning_map(predictions, ground_truths)
    strict = dense_captioning_map(predictions, ground_truths, similarity_thresholds=STRICT_SIMILARITY_THRESHOLDS)
    pairs = best_box_captions(predictions, ground_truths)
    found = [cand == ref for cand, ref in pairs if cand is not None]
    return {"map": scores["map"], "strict_map": strict["map"], "detection_map": scores["detection_map"],
            "objects_found": len(found) / max(len(pairs), 1), "box_exact": float(np.mean(found)) if found else 0.0,
            "pairs": pairs}
