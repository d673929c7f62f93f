"""From raw detector outputs to a list of detections: decode, threshold, per-class NMS (lecture 8).

A detector scores many candidate boxes (proposals or anchors) for every class and predicts
offsets that refine each box. Post-processing turns that into the final answer of one image:

1. softmax the scores; every (box, class) pair becomes a candidate with that class's probability;
2. **decode** the offsets of that class onto the box (``minidl.ops.decode_boxes``) and clip the
   result to the image;
3. drop candidates below ``score_threshold`` and degenerate (tiny) boxes;
4. **non-maximum suppression per class** (``minidl.ops.batched_nms``): of boxes of one class that
   overlap more than ``nms_threshold``, keep only the best-scoring one;
5. keep the ``max_detections`` best.
"""
from __future__ import annotations

import numpy as np

from ..ops import batched_nms, clip_boxes_to_image, decode_boxes, remove_small_boxes


def _softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def postprocess_detections(class_logits, box_deltas, boxes, image_size, weights=(1.0, 1.0, 1.0, 1.0),
                           score_threshold=0.05, nms_threshold=0.5, max_detections=100, min_size=1.0,
                           pre_nms_top_n=1000):
    """Detections of one image -> ``{"boxes" (D, 4), "scores" (D,), "labels" (D,)}`` (labels 0..C-1).

    class_logits (K, C + 1) with column 0 = background; box_deltas (K, 4·C) (per class) or (K, 4)
    (one offset for all classes, as in SSD); boxes (K, 4) the proposals/anchors the offsets refer
    to; image_size (height, width); weights: the box coder's weights used for the targets.
    """
    logits = np.asarray(class_logits, dtype=np.float32)
    deltas = np.asarray(box_deltas, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    k, num_scores = logits.shape
    num_classes = num_scores - 1
    if deltas.shape not in ((k, 4), (k, 4 * num_classes)) or boxes.shape[0] != k:
        raise ValueError(f"postprocess_detections: expected box_deltas (K, 4) or (K, {4 * num_classes}) and "
                         f"boxes (K, 4) with K = {k}; got {deltas.shape} and {boxes.shape}")
    scores = _softmax(logits)[:, 1:]                                        # (K, C)
    decoded = decode_boxes(deltas, boxes, weights)                          # (K, 4) or (K, 4C)
    decoded = np.broadcast_to(decoded.reshape(k, -1, 4), (k, num_classes, 4))
    decoded = clip_boxes_to_image(decoded.reshape(-1, 4), image_size)       # (K·C, 4)
    labels = np.tile(np.arange(num_classes), k)
    scores = scores.reshape(-1)
    keep = np.flatnonzero(scores > score_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")[:pre_nms_top_n]]
    keep = keep[remove_small_boxes(decoded[keep], min_size)]
    keep = keep[batched_nms(decoded[keep], scores[keep], labels[keep], nms_threshold)][:max_detections]
    return {"boxes": decoded[keep].astype(np.float32), "scores": scores[keep].astype(np.float32),
            "labels": labels[keep].astype(np.int64)}


def postprocess_per_image(class_logits, box_deltas, proposals, image_size, weights, score_threshold,
                          nms_threshold, max_detections):
    """``postprocess_detections`` on each image's slice of the stacked RoI outputs.

    The region-based detectors (R-CNN, Fast R-CNN) score the proposals of all images in one
    batch: rows ``[start, start + len(proposals[i]))`` belong to image i.
    """
    out, start = [], 0
    for p in proposals:
        stop = start + len(p)
        out.append(postprocess_detections(class_logits[start:stop], box_deltas[start:stop], p, image_size,
                                          weights, score_threshold, nms_threshold, max_detections))
        start = stop
    return out
