"""A single-shot detector (SSD, Liu et al. 2016; CS231n lecture 8): no proposals, one pass.

Region-based detectors first propose boxes, then classify each. A single-shot detector instead
fixes a dense set of **anchors** ("default boxes", ``minidl.ops.anchor_grid``): at every cell of
a feature map, A boxes of a few sizes and aspect ratios centred on the cell. For each anchor one
convolutional head predicts C + 1 class scores and another the 4 offsets that turn the anchor
into the object's box — all anchors of all cells at once, in a single forward pass. Anchors of
small sizes live on a fine feature map (stride 4), large ones on a coarser map (stride 8) whose
cells see more of the image.

Training (the "MultiBox" loss):

* **matching** (``minidl.ops.match_anchors``): an anchor with IoU >= 0.5 with a ground-truth box
  is a positive for that object (and each object claims its best anchor), IoU < 0.4 is
  background, in between is ignored;
* classification: cross-entropy, but with **hard negative mining** — background anchors vastly
  outnumber objects, so only the negatives with the highest loss are kept, 3 per positive;
* localization: smooth-L1 on the offsets ``encode_boxes(gt, anchor)`` of the positives;
* both summed and divided by the number of positives.

Inference: softmax, decode every anchor's offsets, threshold, per-class NMS
(``postprocess.postprocess_detections``, with one class-agnostic offset per anchor).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..models.blocks import downsampling_backbone
from ..ops import anchor_grid, encode_boxes, match_anchors
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device
from .postprocess import postprocess_detections

#: SSD's box coder weights (variances 0.1 and 0.2).
SSD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class SingleShotDetector(nn.Module):
    """Backbone + per-level conv heads over anchors: (N, 3, S, S) -> ``(class_logits (N, A_total, C+1),
    box_deltas (N, A_total, 4))``, anchors in ``self.anchors`` (A_total, 4).

    Args:
        num_classes: object classes C.
        image_size: input side S (anchors are laid out for it).
        widths: backbone stages (first stride 2, then ×2 each): (16, 32, 64) gives maps at
            strides 2, 4, 8; the heads read the last ``len(anchor_sizes)`` of them.
        anchor_sizes: one tuple of anchor sizes (pixels) per head level, finest level first.
        aspect_ratios: width / height of the anchors (SSD's convention).
    """

    def __init__(self, num_classes, image_size=64, widths=(16, 32, 64), anchor_sizes=((8, 13), (20, 30)),
                 aspect_ratios=(1.0, 2.0, 0.5), batch_norm=True, rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.num_classes, self.image_size = int(num_classes), int(image_size)
        self.anchor_sizes, self.aspect_ratios = tuple(map(tuple, anchor_sizes)), tuple(aspect_ratios)
        self.stages = downsampling_backbone(widths, first_stride=2, batch_norm=batch_norm, rng=rng)
        self.levels = list(range(len(widths) - len(self.anchor_sizes), len(widths)))   # stage indices
        if self.levels[0] < 0:
            raise ValueError("more anchor levels than backbone stages")
        self.class_heads, self.box_heads, anchors = nn.ModuleList(), nn.ModuleList(), []
        for level, sizes in zip(self.levels, self.anchor_sizes):
            a = len(sizes) * len(self.aspect_ratios)
            stride = 2 ** (level + 1)
            self.class_heads.append(nn.Conv2d(widths[level], a * (num_classes + 1), 3, padding=1, rng=rng))
            self.box_heads.append(nn.Conv2d(widths[level], a * 4, 3, padding=1, rng=rng))
            cells = self.image_size // stride
            anchors.append(anchor_grid((cells, cells), stride, sizes, self.aspect_ratios))
        self.anchors = np.concatenate(anchors)

    @staticmethod
    def _flatten(head_output, values):
        """(N, A·values, H, W) -> (N, H·W·A, values): the anchor order of ``anchor_grid``."""
        n, _, h, w = head_output.shape
        return head_output.permute(0, 2, 3, 1).reshape(n, -1, values)

    def forward(self, images):
        if images.ndim != 4 or images.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(f"SingleShotDetector: input must be (N, 3, {self.image_size}, {self.image_size}), "
                             f"got shape {tuple(images.shape)}")
        features, x = [], images - 0.5               # centred pixels
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        logits, deltas = [], []
        for level, class_head, box_head in zip(self.levels, self.class_heads, self.box_heads):
            logits.append(self._flatten(class_head(features[level]), self.num_classes + 1))
            deltas.append(self._flatten(box_head(features[level]), 4))
        return F.cat(logits, axis=1), F.cat(deltas, axis=1)

    def assign_targets(self, targets, pos_threshold=0.5, neg_threshold=0.4):
        """Per-anchor training targets for a batch -> ``(labels (N, A), box_targets (N, A, 4))``.

        labels: 0 = background, c + 1 = class c, -1 = ignored; box_targets: encoded offsets of each
        positive anchor's ground truth (zeros elsewhere).
        """
        labels = np.zeros((len(targets), len(self.anchors)), np.int64)
        box_targets = np.zeros((len(targets), len(self.anchors), 4), np.float32)
        for i, t in enumerate(targets):
            gt_boxes = np.asarray(t["boxes"], np.float32).reshape(-1, 4)
            gt_labels = np.asarray(t["labels"], np.int64).reshape(-1)
            matches = match_anchors(self.anchors, gt_boxes, pos_threshold, neg_threshold)
            positive = matches >= 0
            labels[i] = np.where(positive, gt_labels[np.maximum(matches, 0)] + 1 if len(gt_labels) else 0,
                                 np.where(matches == -1, 0, -1))
            if positive.any():
                box_targets[i, positive] = encode_boxes(gt_boxes[matches[positive]], self.anchors[positive],
                                                        SSD_BOX_WEIGHTS)
        return labels, box_targets

    def loss(self, images, targets, negative_ratio=3, box_weight=1.0):
        """MultiBox loss of a batch -> ``(total, classification, regression)`` (module docstring)."""
        labels, box_targets = self.assign_targets(targets)
        images = images if isinstance(images, Tensor) else Tensor(images, device=model_device(self))
        logits, deltas = self(images)
        n, a = labels.shape
        per_anchor = F.cross_entropy(logits.reshape(n * a, -1), np.where(labels < 0, -100, labels).reshape(-1),
                                     ignore_index=-100, reduction="none").reshape(n, a)
        # Hard negative mining, per image: the `negative_ratio × positives` background anchors with
        # the highest loss are kept (at least a few, so an image without objects still teaches).
        selected = labels > 0
        losses = per_anchor.numpy()
        for i in range(n):
            negatives = np.flatnonzero(labels[i] == 0)
            count = min(len(negatives), max(negative_ratio * int(selected[i].sum()), 8))
            hardest = negatives[np.argsort(-losses[i, negatives], kind="stable")[:count]]
            selected[i, hardest] = True
        num_positive = float(max((labels > 0).sum(), 1))
        device = deltas.device
        classification = (per_anchor * Tensor(selected.astype(np.float32), device=device)).sum() / num_positive
        positive = Tensor((labels > 0).astype(np.float32)[..., None], device=device)
        regression = F.smooth_l1_loss(deltas * positive, Tensor(box_targets, device=device),
                                      reduction="sum") / num_positive
        return classification + regression * box_weight, classification, regression

    def detect(self, images, score_threshold=0.05, nms_threshold=0.45, max_detections=100):
        """Detections per image (list of dicts ``boxes``, ``scores``, ``labels``)."""
        images = host_float32(images)
        self.eval()
        with no_grad():
            logits, deltas = self(Tensor(images, device=model_device(self)))
        logits, deltas = logits.numpy(), deltas.numpy()
        return [postprocess_detections(logits[i], deltas[i], self.anchors, images.shape[2:], SSD_BOX_WEIGHTS,
                                       score_threshold, nms_threshold, max_detections)
                for i in range(len(images))]
