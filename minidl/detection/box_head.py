"""The two-branch head of R-CNN-style detectors and its multi-task loss (CS231n lecture 8).

Whatever describes a region — the CNN features of a warped crop (R-CNN) or the RoI-pooled
features of a shared feature map (Fast R-CNN) — the same head reads it:

* a **classifier**: C + 1 scores (background + C object classes), softmax cross-entropy;
* a **box regressor**: 4 offsets *per class* ``(dx, dy, dw, dh)`` that move the region onto the
  object (``minidl.ops.encode_boxes``); only the 4 numbers of the RoI's true class are trained,
  and only for foreground RoIs — a background region has no box to regress to.

``detection_loss`` = cross-entropy + ``box_weight`` · smooth-L1(offsets of the true class), the
regression summed over foreground RoIs and divided by the number of RoIs (torchvision's choice,
so the two terms keep the same scale when the foreground fraction changes).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor


class BoxHead(nn.Module):
    """Region features (K, D) -> ``(class_logits (K, C + 1), box_deltas (K, 4·C))``.

    Two fully connected layers with ReLU shared by both branches, then the two linear outputs.
    """

    def __init__(self, in_features, num_classes, hidden=256, rng=None):
        super().__init__()
        self.num_classes = int(num_classes)
        self.shared = nn.Sequential(nn.Linear(in_features, hidden, rng=rng), nn.ReLU(),
                                    nn.Linear(hidden, hidden, rng=rng), nn.ReLU())
        self.classifier = nn.Linear(hidden, self.num_classes + 1, rng=rng)
        self.box_regressor = nn.Linear(hidden, 4 * self.num_classes, rng=rng)

    def forward(self, region_features):
        h = self.shared(region_features.reshape(region_features.shape[0], -1))
        return self.classifier(h), self.box_regressor(h)


def detection_loss(class_logits, box_deltas, labels, regression_targets, box_weight=1.0, beta=1.0 / 9):
    """Multi-task loss of a region head -> ``(total, classification, regression)`` scalar Tensors.

    class_logits (K, C + 1); box_deltas (K, 4·C); labels (K,) with 0 = background and c + 1 =
    class c; regression_targets (K, 4) (encoded offsets; ignored for background RoIs).
    """
    labels = np.asarray(labels.numpy() if isinstance(labels, Tensor) else labels, dtype=np.int64)
    targets = np.asarray(regression_targets.numpy() if isinstance(regression_targets, Tensor)
                         else regression_targets, dtype=np.float32)
    k, four_c = box_deltas.shape
    if class_logits.shape[0] != k or labels.shape != (k,) or targets.shape != (k, 4):
        raise ValueError(f"detection_loss: expected class_logits (K, C+1), box_deltas (K, 4C), labels (K,), "
                         f"regression_targets (K, 4) with K = {k}; got {tuple(class_logits.shape)}, "
                         f"{tuple(box_deltas.shape)}, {labels.shape}, {targets.shape}")
    classification = F.cross_entropy(class_logits, labels)
    # Select the 4 columns of each foreground RoI's own class with a 0/1 mask: the other classes'
    # offsets get zero loss and zero gradient.
    mask = np.zeros((k, four_c), dtype=np.float32)
    full_targets = np.zeros((k, four_c), dtype=np.float32)
    for i in np.flatnonzero(labels > 0):
        columns = slice(4 * (labels[i] - 1), 4 * labels[i])
        mask[i, columns] = 1.0
        full_targets[i, columns] = targets[i]
    device = box_deltas.device
    regression = F.smooth_l1_loss(box_deltas * Tensor(mask, device=device), Tensor(full_targets, device=device),
                                  reduction="sum", beta=beta)
    regression = regression / float(max(k, 1))
    return classification + regression * box_weight, classification, regression
