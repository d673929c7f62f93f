"""Fast R-CNN (Girshick 2015; CS231n lecture 8): convolve the image once, pool each region.

R-CNN runs a CNN on every warped proposal, so overlapping proposals recompute the same
convolutions. Fast R-CNN swaps the order: the **backbone runs once per image** and gives a feature
map (N, D, H/s, W/s); each proposal is projected onto it (``spatial_scale = 1/s``) and **RoI
pooling** (``minidl.ops.roi_pool``) max-pools the features inside it into a fixed (D, P, P) grid;
a ``BoxHead`` classifies the region and regresses its box. Training is end to end with the
multi-task loss (``box_head.detection_loss``) on sampled RoIs (``roi_sampling.sample_rois``):
gradients flow from the head through RoI pooling into the shared backbone.

Per image the backbone costs the same whatever the number of proposals; only the small head
runs per RoI — so inference time is dominated by the proposals (selective search), not the CNN.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..models.blocks import conv_relu, downsampling_backbone
from ..ops import roi_pool
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device
from .box_head import BoxHead, detection_loss
from .postprocess import postprocess_per_image
from .roi_sampling import BOX_CODER_WEIGHTS, sample_rois


def rois_with_batch_index(boxes_per_image):
    """List of (K_i, 4) boxes -> (ΣK_i, 5) RoIs ``(batch index, x1, y1, x2, y2)`` (float32)."""
    parts = [np.concatenate([np.full((len(b), 1), i, np.float32), np.asarray(b, np.float32).reshape(-1, 4)], 1)
             for i, b in enumerate(boxes_per_image)]
    return np.concatenate(parts) if parts else np.zeros((0, 5), np.float32)


class FastRCNN(nn.Module):
    """Shared backbone + RoI pooling + box head.

    Args:
        num_classes: object classes C (the head predicts C + 1 scores).
        widths: backbone stage channels; the first stage has stride 2 and each later one halves
            again, so the feature stride is ``2**len(widths)`` (4 for two stages).
        roi_size: RoI pooling output (P×P cells).
        hidden: width of the box head's two fully connected layers.
    """

    def __init__(self, num_classes, widths=(16, 64), roi_size=4, hidden=256, batch_norm=True, rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.num_classes, self.roi_size = int(num_classes), int(roi_size)
        self.backbone = nn.Sequential(*downsampling_backbone(widths, first_stride=2, batch_norm=batch_norm, rng=rng),
                                      conv_relu(widths[-1], widths[-1], batch_norm=batch_norm, rng=rng))
        self.feature_stride = 2 ** len(widths)
        self.head = BoxHead(widths[-1] * roi_size * roi_size, num_classes, hidden, rng=rng)

    def features(self, images):
        """Images (N, 3, H, W) -> shared feature map (N, D, H/s, W/s)."""
        return self.backbone(images - 0.5)           # centred pixels

    def forward(self, images, rois):
        """images (N, 3, H, W), rois (K, 5) -> ``(class_logits (K, C+1), box_deltas (K, 4C))``."""
        feature_map = self.features(images)
        pooled = roi_pool(feature_map, rois, self.roi_size, spatial_scale=1.0 / self.feature_stride)
        return self.head(pooled)

    @property
    def box_coder_weights(self):
        return BOX_CODER_WEIGHTS

    def loss(self, images, proposals, targets, rois_per_image=64, positive_fraction=0.25, rng=None):
        """Multi-task loss on one mini-batch -> ``(total, classification, regression)``.

        proposals: list of (P_i, 4) boxes per image (selective search, jittered ground truth, ...);
        targets: list of dicts with ``boxes`` and ``labels``. RoIs are sampled per image.
        """
        rng = np.random.default_rng(rng)
        sampled = [sample_rois(p, t["boxes"], t["labels"], rois_per_image, positive_fraction, rng=rng)
                   for p, t in zip(proposals, targets)]
        rois = rois_with_batch_index([s["rois"] for s in sampled])
        images = images if isinstance(images, Tensor) else Tensor(images, device=model_device(self))
        logits, deltas = self(images, rois)
        return detection_loss(logits, deltas, np.concatenate([s["labels"] for s in sampled]),
                              np.concatenate([s["regression_targets"] for s in sampled]))

    def detect(self, images, proposals, score_threshold=0.05, nms_threshold=0.5, max_detections=100):
        """Detections per image: images (N, 3, H, W), proposals a list of (P_i, 4) -> list of dicts.

        The network runs on the model's device; post-processing (NMS) on the host."""
        images = host_float32(images)
        self.eval()
        with no_grad():
            logits, deltas = self(Tensor(images, device=model_device(self)), rois_with_batch_index(proposals))
        logits, deltas = logits.numpy(), deltas.numpy()
        return postprocess_per_image(logits, deltas, proposals, images.shape[2:], self.box_coder_weights,
                                     score_threshold, nms_threshold, max_detections)
