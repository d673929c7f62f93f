"""R-CNN (Girshick et al. 2014; CS231n lecture 8): warp every proposal, run a CNN on each.

The first CNN detector, and the slow baseline of the lecture:

1. region proposals (selective search, ``minidl.detection.selective_search``): ~100-2000 boxes;
2. **warp** each proposal to a fixed size (here bilinear resampling of the box's pixels with
   ``roi_align`` at spatial scale 1 — the "warped image regions" of the paper);
3. a CNN classifies each warped region (C + 1 classes) and regresses a box correction
   (``box_head.BoxHead``, trained with a softmax and a smooth-L1 loss — the paper's first stage,
   "fine-tune the CNN with a softmax classifier"). The paper then threw the softmax away and
   trained one linear SVM per class and a ridge box regressor on CNN features cached on disk:
   ``rcnn_svm.py`` builds exactly that on top of this model, for the comparison.

The cost is one full CNN forward *per proposal*: neighbouring and overlapping proposals share
most pixels, yet each is convolved again. Fast R-CNN (fast_rcnn.py) removes exactly that.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..models.blocks import conv_relu, downsampling_backbone
from ..ops import roi_align, roi_pool
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device
from .box_head import BoxHead, detection_loss
from .fast_rcnn import rois_with_batch_index
from .postprocess import postprocess_per_image
from .roi_sampling import BOX_CODER_WEIGHTS, sample_rois


def warp_regions(images, rois, crop_size):
    """Crop and resize regions: images (N, C, H, W), rois (K, 5) -> (K, C, crop, crop) float32 array
    (on the images' device).

    Bilinear sampling (``roi_align`` with ``aligned=True``, 2×2 samples per output pixel), so a
    thin box is stretched to a square exactly like the paper's anisotropic warp.
    """
    images = images.data if isinstance(images, Tensor) else np.asarray(images, dtype=np.float32)
    with no_grad():
        crops = roi_align(images, np.asarray(rois, np.float32), crop_size, spatial_scale=1.0,
                          sampling_ratio=2, aligned=True)
    return crops.data


class RCNN(nn.Module):
    """A CNN on warped regions: crops (K, 3, S, S) -> ``(class_logits (K, C+1), box_deltas (K, 4C))``.

    For a fair comparison with ``FastRCNN`` the network is the same: the same backbone (stride-2
    stem, ``widths`` stages, one more 3×3 conv), the same P×P max pooling (``roi_pool`` over the
    whole crop) and the same ``BoxHead``. The only difference is *where* the backbone runs: on
    every warped proposal here, once per image there.
    """

    def __init__(self, num_classes, crop_size=32, widths=(16, 64), roi_size=4, hidden=256, batch_norm=True,
                 rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.num_classes, self.crop_size, self.roi_size = int(num_classes), int(crop_size), int(roi_size)
        self.feature_stride = 2 ** len(widths)
        if self.crop_size % self.feature_stride:
            raise ValueError(f"crop_size {crop_size} must be a multiple of the feature stride {self.feature_stride}")
        self.cnn = nn.Sequential(*downsampling_backbone(widths, first_stride=2, batch_norm=batch_norm, rng=rng),
                                 conv_relu(widths[-1], widths[-1], batch_norm=batch_norm, rng=rng))
        self.head = BoxHead(widths[-1] * roi_size * roi_size, num_classes, hidden, rng=rng)

    def forward(self, crops):
        features = self.cnn(crops - 0.5)                           # centred pixels
        whole = np.zeros((crops.shape[0], 5), np.float32)          # one RoI = the whole crop
        whole[:, 0] = np.arange(crops.shape[0])
        whole[:, 3:] = self.crop_size
        return self.head(roi_pool(features, whole, self.roi_size, spatial_scale=1.0 / self.feature_stride))

    @property
    def box_coder_weights(self):
        return BOX_CODER_WEIGHTS

    def loss(self, images, proposals, targets, rois_per_image=32, positive_fraction=0.25, rng=None):
        """Multi-task loss on RoIs sampled as for Fast R-CNN, each warped and classified on its own."""
        rng = np.random.default_rng(rng)
        sampled = [sample_rois(p, t["boxes"], t["labels"], rois_per_image, positive_fraction, rng=rng)
                   for p, t in zip(proposals, targets)]
        crops = warp_regions(images, rois_with_batch_index([s["rois"] for s in sampled]), self.crop_size)
        logits, deltas = self(Tensor(crops, device=model_device(self)))
        return detection_loss(logits, deltas, np.concatenate([s["labels"] for s in sampled]),
                              np.concatenate([s["regression_targets"] for s in sampled]))

    def detect(self, images, proposals, score_threshold=0.05, nms_threshold=0.5, max_detections=100,
               batch_size=256):
        """Detections per image (list of dicts): one CNN forward per proposal, in batches."""
        images = host_float32(images)
        crops = warp_regions(images, rois_with_batch_index(proposals), self.crop_size)
        device = model_device(self)
        self.eval()
        logits, deltas = [], []
        with no_grad():
            for start in range(0, len(crops), batch_size):
                lo, de = self(Tensor(crops[start:start + batch_size], device=device))
                logits.append(lo.numpy())
                deltas.append(de.numpy())
        logits = np.concatenate(logits) if logits else np.zeros((0, self.num_classes + 1), np.float32)
        deltas = np.concatenate(deltas) if deltas else np.zeros((0, 4 * self.num_classes), np.float32)
        return postprocess_per_image(logits, deltas, proposals, images.shape[2:], self.box_coder_weights,
                                     score_threshold, nms_threshold, max_detections)
