"""Choosing the localizer's box-loss weight by a validation metric (CS231n lecture 8).

The multi-task loss of classification + localization is ``L = cross-entropy + box_weight · box
loss``. The weight — and the form of the box loss, L2 or smooth L1 — changes the loss function
itself, so the final losses of two settings are values of two different functions and say
nothing about which model is better: choose by a metric on held-out data. Here the metric is
**correct localization** (``metrics.correct_localization``: right class and box IoU ≥ 0.5).

To train many settings in seconds, every setting keeps the committed localizer's convolutional
backbone **frozen** (its features are computed once, ``backbone_features``) and trains a fresh
copy of the fully connected part (shared layer, class head, box head: ``LocalizerHeads``) — the
part whose gradient the weight balances. Caveat: that backbone was trained with smooth L1 at
weight 1, which may favour settings near it. ``minidl.train.sweep`` runs the grid; the tour's
localization chapter and ``benchmarks/sweep_localization.py`` (3 seeds, docs/sweep.md) call
``weight_sweep``.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..metrics import accuracy, correct_localization, mean_box_iou
from ..autograd import Tensor, no_grad
from ..train import config_grid, model_device, sweep
from .localization import Localizer

SWEEP_AXES = dict(box_weight=(0.1, 1.0, 10.0, 100.0), box_loss=("l2", "smooth_l1"))


def backbone_features(localizer, images, batch_size=250):
    """The localizer's backbone output (N, C, h, w) for images (N, 3, H, W), as a NumPy array, in
    eval mode (batch norm uses its running statistics): computed once, reused by every setting."""
    localizer.eval()
    device = model_device(localizer)
    with no_grad():
        return np.concatenate([localizer.backbone(Tensor(images[i:i + batch_size], device=device) - 0.5).numpy()
                               for i in range(0, len(images), batch_size)])


class LocalizerHeads(nn.Module):
    """The fully connected part of a ``Localizer`` (shared layer -> class head, box head) run on
    backbone features: ``Localizer.forward`` minus the backbone. Holding the modules of a full
    ``localizer`` (not copies), so training these trains that localizer."""

    def __init__(self, localizer):
        super().__init__()
        self.shared, self.class_head, self.box_head = localizer.shared, localizer.class_head, localizer.box_head

    def forward(self, features):
        h = self.shared(features)
        return self.class_head(h), self.box_head(h)


def heads_loss(heads, features, labels, boxes, box_weight, box_loss, image_size=64, beta=0.05):
    """``LocalizationLoss(box_weight, box_loss, beta)`` computed from features instead of images
    (that class reads the image size from the images): cross-entropy + box_weight · box loss on
    boxes divided by the image size. ``benchmarks/sweep_localization.py`` checks the two agree."""
    scores, pred_boxes = heads(features)
    target = Tensor(boxes / float(image_size), device=pred_boxes.device)
    if box_loss == "l2":
        regression = F.mse_loss(pred_boxes, target)
    else:
        regression = F.smooth_l1_loss(pred_boxes, target, beta=beta)
    return F.cross_entropy(scores, labels) + regression * box_weight


def train_heads(backbone_from, features, labels, boxes, config, steps, seed, batch_size=32, lr=3e-3):
    """A fresh ``Localizer`` (init ``seed``) whose backbone is ``backbone_from``'s (frozen) and whose
    fully connected part trains ``steps`` Adam steps (cosine decay) of the multi-task loss of
    ``config`` (``box_weight``, ``box_loss``) on the cached ``features``. Returns ``(localizer,
    final loss)``, the final loss being the mean over the last 20 steps."""
    localizer = Localizer(backbone_from.num_classes, backbone_from.image_size, rng=seed).to(model_device(backbone_from))
    localizer.backbone = backbone_from.backbone           # shared and never updated: the optimizer skips it
    heads = LocalizerHeads(localizer).train()
    optimizer = optim.Adam(heads.parameters(), lr=lr)
    schedule = optim.CosineAnnealingLR(optimizer, steps)
    order, losses, device = np.random.default_rng(seed), [], model_device(localizer)
    for _ in range(steps):
        idx = order.choice(len(features), batch_size, replace=False)
        loss = heads_loss(heads, Tensor(features[idx], device=device), labels[idx], boxes[idx],
                          config["box_weight"], config["box_loss"], backbone_from.image_size)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.item()))
    return localizer.eval(), float(np.mean(losses[-20:]))


def evaluate_heads(localizer, features, labels, boxes):
    """Correct localization, accuracy and mean box IoU of ``localizer`` on held-out features
    (the same numbers ``localize`` on the images gives, without rerunning the frozen backbone)."""
    with no_grad():
        scores, pred = LocalizerHeads(localizer)(Tensor(features, device=model_device(localizer)))
    pred_labels, pred_boxes = scores.numpy().argmax(1), pred.numpy() * localizer.image_size
    return {"correct localization": correct_localization(pred_labels, pred_boxes, labels, boxes),
            "accuracy": accuracy(pred_labels, labels), "mean box IoU": mean_box_iou(pred_boxes, boxes)}


def weight_sweep(backbone_from, train, held_out, steps, seed=0, progress=False):
    """The sweep of ``SWEEP_AXES`` (box weight × box loss): ``train``/``held_out`` are
    ``(images, labels, boxes)``; returns the ``SweepResult`` chosen by correct localization."""
    features, labels, boxes = backbone_features(backbone_from, train[0]), train[1], train[2]
    val_features = backbone_features(backbone_from, held_out[0])
    return sweep(config_grid(**SWEEP_AXES),
                 lambda config: train_heads(backbone_from, features, labels, boxes, config, steps, seed),
                 lambda localizer: evaluate_heads(localizer, val_features, held_out[1], held_out[2]),
                 "correct localization", progress=progress)
