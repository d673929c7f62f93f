"""Classification + localization (CS231n lecture 8): *what* is the one object, and *where*.

One image holds one object. A shared CNN backbone turns the image into a feature vector; two
heads read it:

* a **class head** — a linear layer giving class scores, trained with softmax cross-entropy;
* a **box head** — a linear layer giving 4 numbers, the box ``(x1, y1, x2, y2)`` divided by the
  image size (so targets lie in [0, 1] whatever the image size), trained as *regression* with an
  L2 or smooth-L1 loss.

The two losses are added into one **multi-task loss**, ``L = L_cls + box_weight · L_box``; the
weight is a hyper-parameter that balances them (the gradient of the sum trains the shared
backbone for both tasks at once).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device
from .blocks import downsampling_backbone

BOX_LOSSES = ("l2", "smooth_l1")


class Localizer(nn.Module):
    """(N, 3, H, W) -> ``(class_scores (N, num_classes), boxes (N, 4))``, boxes as fractions of (W, H, W, H).

    Args:
        num_classes: object classes.
        image_size: input side (int) — fixes the size of the flattened feature map.
        widths: channels of the backbone stages (each halves the size; the first has stride 2).
        hidden: width of the shared fully connected layer after the backbone.
        batch_norm: BatchNorm2d after each convolution of the backbone.
    """

    def __init__(self, num_classes, image_size=64, widths=(16, 32, 64, 64), hidden=128, batch_norm=True,
                 rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.num_classes, self.image_size = int(num_classes), int(image_size)
        self.backbone = nn.Sequential(*downsampling_backbone(widths, first_stride=2, batch_norm=batch_norm, rng=rng))
        cells = self.image_size // 2 ** len(widths)                      # side of the last feature map
        if cells < 1 or self.image_size % 2 ** len(widths):
            raise ValueError(f"image_size {image_size} must be divisible by 2**len(widths) = {2 ** len(widths)}")
        self.shared = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * cells * cells, hidden, rng=rng), nn.ReLU())
        self.class_head = nn.Linear(hidden, self.num_classes, rng=rng)
        self.box_head = nn.Linear(hidden, 4, rng=rng)

    def forward(self, x):
        if x.ndim != 4 or x.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(f"Localizer: input must be (N, C, {self.image_size}, {self.image_size}), "
                             f"got shape {tuple(x.shape)}")
        h = self.shared(self.backbone(x - 0.5))      # centred pixels
        return self.class_head(h), self.box_head(h)


class LocalizationLoss:
    """Multi-task loss ``cross_entropy + box_weight · box_loss`` for ``fit(..., loss_fn=...)``.

    Called as ``loss(model, images, (labels, boxes))`` with ``labels`` (N,) and pixel ``boxes``
    (N, 4); the boxes are divided by the image size here, so the regression target is in [0, 1].
    ``box_loss``: ``"l2"`` (mean squared error) or ``"smooth_l1"`` (Huber: L2 near 0, L1 far away,
    so a few bad predictions do not dominate the gradient).
    """

    takes_model = True   # fit passes (model, inputs, targets): the model has two outputs

    def __init__(self, box_weight=1.0, box_loss="smooth_l1", beta=0.05):
        if box_loss not in BOX_LOSSES:
            raise ValueError(f"box_loss must be one of {BOX_LOSSES}, got {box_loss!r}")
        self.box_weight, self.box_loss, self.beta = float(box_weight), box_loss, float(beta)
        self.last = {}   # the two parts of the last loss, for logging

    def __call__(self, model, images, targets):
        labels, boxes = targets
        scores, pred_boxes = model(images)
        size = float(images.shape[-1])
        target_boxes = boxes / size
        classification = F.cross_entropy(scores, labels)
        if self.box_loss == "l2":
            regression = F.mse_loss(pred_boxes, target_boxes)
        else:
            regression = F.smooth_l1_loss(pred_boxes, target_boxes, beta=self.beta)
        self.last = {"classification": float(classification.item()), "box": float(regression.item())}
        return classification + regression * self.box_weight


def localize(model, images, batch_size=128):
    """Predicted ``(labels (N,), boxes (N, 4) in pixels)`` for images (N, 3, H, W), as NumPy
    arrays; the model runs on its own device."""
    images = host_float32(images)
    device = model_device(model)
    model.eval()
    labels, boxes = [], []
    with no_grad():
        for start in range(0, len(images), batch_size):
            scores, box = model(Tensor(images[start:start + batch_size], device=device))
            labels.append(scores.numpy().argmax(1))
            boxes.append(box.numpy() * images.shape[-1])
    return np.concatenate(labels), np.concatenate(boxes)
