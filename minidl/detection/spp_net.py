"""SPP-net (He et al. 2014; CS231n lecture 8): convolve the image once, pyramid-pool each proposal.

The step between R-CNN and Fast R-CNN in the lecture's story:

* **R-CNN** (rcnn.py) warps every proposal to a fixed crop and runs the whole CNN on each crop —
  ~100 CNN forwards per image, most of them recomputing the same overlapping pixels.
* **SPP-net** runs the convolutional layers **once per image**. Each proposal is projected onto
  the feature map (corners × 1/stride, rounded; the window is inclusive), and a **spatial pyramid
  pooling** layer (``nn.SpatialPyramidPooling``: ``adaptive_max_pool2d`` to 1×1, 2×2 and 4×4
  bins) turns that window — whatever its size — into a vector of fixed length D·(1 + 4 + 16).
  Fully connected layers (``box_head.BoxHead``) classify it and regress its box.
* **Fast R-CNN** (fast_rcnn.py) keeps the idea and fixes the training: one RoI-pooling level, and
  end-to-end training of the convolutional layers too.

Training here follows the paper's recipe, and that is the point of the comparison. The
convolutional layers are not trained by the detector: they come from a network trained before
(the paper: ImageNet; here the CNN of ``rcnn_shapes``, R-CNN's softmax-fine-tuned crop
classifier, which has exactly this backbone) and stay **frozen**; only the layers after the
pyramid are trained. Why the paper stopped there (Fast R-CNN, sec. 2.3): back-propagating
through SPP is possible but inefficient when a mini-batch takes its RoIs from many images —
each RoI's receptive field can span its whole image. Fast R-CNN samples many RoIs from few
images and trains everything; the price SPP-net pays is features that were never tuned for
detection (docs/lecture8.md measures it).

Two implementations of the pooling, checked equal in tests/test_spp_net.py:

* ``pyramid_pool_regions``: the textbook — cut each window out of the feature map and call the
  SPP layer on it, one proposal at a time;
* ``pyramid_pool_regions_batched``: the same numbers from ``roi_pool`` at each level (RoI max
  pooling of a rounded, inclusive window *is* adaptive max pooling of that window) — one kernel
  call per level for all proposals; what ``SPPNet`` uses.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..models.blocks import conv_relu, downsampling_backbone
from ..ops import roi_pool
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device
from .box_head import BoxHead, detection_loss
from .fast_rcnn import rois_with_batch_index
from .postprocess import postprocess_per_image
from .roi_sampling import BOX_CODER_WEIGHTS, sample_rois

#: The pyramid of the paper's detection network (He et al. 2014, sec. 4: {1×1, 2×2, 3×3, 6×6}
#: for 13×13 maps; 1, 2, 4 suit the 16×16 feature maps of 64×64 images).
PYRAMID_LEVELS = (1, 2, 4)


def feature_windows(rois, spatial_scale, height, width):
    """The feature-map window of each RoI -> (K, 5) int64 ``(b, row0, row1, col0, col1)``, inclusive.

    rois (K, 5) are ``(batch index, x1, y1, x2, y2)`` in image pixels. Corners are scaled by
    ``spatial_scale`` (= 1 / feature stride) and rounded half away from zero (``roi_pool``'s
    convention), the window keeps at least one cell and is clipped to the (height, width) map —
    a box touching the image's right edge would otherwise reach one cell past the map.
    """
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 5)
    corners = rois[:, 1:] * spatial_scale
    cells = (np.sign(corners) * np.floor(np.abs(corners) + 0.5)).astype(np.int64)   # x1, y1, x2, y2
    row0 = np.clip(cells[:, 1], 0, height - 1)
    col0 = np.clip(cells[:, 0], 0, width - 1)
    row1 = np.clip(np.maximum(cells[:, 3], row0), row0, height - 1)
    col1 = np.clip(np.maximum(cells[:, 2], col0), col0, width - 1)
    return np.stack([rois[:, 0].astype(np.int64), row0, row1, col0, col1], axis=1)


def pyramid_pool_regions(feature_map, rois, spatial_scale, levels=PYRAMID_LEVELS):
    """The textbook SPP of every RoI: feature_map (N, D, h, w) Tensor, rois (K, 5) -> (K, D·Σl²).

    For each RoI, its window is cut out of its image's feature map and pooled by
    ``nn.SpatialPyramidPooling`` — the window may have any size, the output length is fixed.
    """
    spp = nn.SpatialPyramidPooling(levels)
    pooled = [spp(feature_map[b:b + 1, :, r0:r1 + 1, c0:c1 + 1])
              for b, r0, r1, c0, c1 in feature_windows(rois, spatial_scale, *feature_map.shape[2:])]
    if not pooled:
        return Tensor(np.zeros((0, feature_map.shape[1] * sum(l * l for l in levels)), np.float32))
    return F.concat(pooled, axis=0)


def pyramid_pool_regions_batched(feature_map, rois, spatial_scale, levels=PYRAMID_LEVELS):
    """``pyramid_pool_regions`` with one ``roi_pool`` call per pyramid level -> (K, D·Σl²).

    Each window is handed to ``roi_pool`` in feature-map cells (spatial scale 1, integer corners),
    where RoI max pooling is adaptive max pooling of the window. Same layout: for each level the
    (D, l, l) block flattened, levels concatenated.
    """
    windows = feature_windows(rois, spatial_scale, *feature_map.shape[2:])
    cell_rois = windows[:, [0, 3, 1, 4, 2]].astype(np.float32)      # (b, col0, row0, col1, row1)
    blocks = [roi_pool(feature_map, cell_rois, level, spatial_scale=1.0).reshape(len(cell_rois), -1)
              for level in levels]
    return F.concat(blocks, axis=1)


class SPPNet(nn.Module):
    """Backbone once per image + spatial pyramid pooling per proposal + box head.

    Args:
        num_classes: object classes C (the head predicts C + 1 scores).
        widths: backbone stages, as ``RCNN`` and ``FastRCNN`` (feature stride ``2**len(widths)``).
        levels: pyramid levels (bins per side).
        hidden: width of the head's two fully connected layers.
        image_scale: the image is resized by this factor (bilinear) before the backbone. R-CNN's
            CNN learnt from objects warped to fill a 32×32 crop; at 2× a 64×64 scene's 7–28 px
            shapes come closer to that size (the paper picks, per proposal, the scale of an image
            pyramid at which the window is nearest to 224×224 for the same reason).
    """

    def __init__(self, num_classes, widths=(16, 64), levels=PYRAMID_LEVELS, hidden=256, image_scale=1,
                 batch_norm=True, rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.num_classes, self.levels = int(num_classes), tuple(int(l) for l in levels)
        if not (isinstance(image_scale, (int, float)) and image_scale > 0):
            raise ValueError(f"image_scale must be a positive number, got {image_scale!r}")
        self.image_scale = image_scale
        # the same layers as RCNN.cnn, so R-CNN's trained CNN can be copied in (copy_backbone_from)
        self.backbone = nn.Sequential(*downsampling_backbone(widths, first_stride=2, batch_norm=batch_norm, rng=rng),
                                      conv_relu(widths[-1], widths[-1], batch_norm=batch_norm, rng=rng))
        self.feature_stride = 2 ** len(widths)
        self.head = BoxHead(widths[-1] * sum(l * l for l in self.levels), num_classes, hidden, rng=rng)

    def copy_backbone_from(self, rcnn):
        """Take the convolutional layers of a trained ``RCNN`` (its ``cnn``): SPP-net's pre-trained,
        frozen features."""
        self.backbone.load_state_dict(rcnn.cnn.state_dict())
        return self

    @property
    def spatial_scale(self):
        """Image pixels -> feature-map cells (the image is resized by ``image_scale`` first)."""
        return self.image_scale / self.feature_stride

    def features(self, images):
        """Images (N, 3, H, W) -> feature map (N, D, H·k/s, W·k/s) with k = ``image_scale``,
        without gradient (the backbone is frozen)."""
        self.backbone.eval()                  # frozen: batch norm uses its stored statistics
        with no_grad():
            if self.image_scale != 1:
                images = F.interpolate(images, scale_factor=self.image_scale, mode="bilinear", align_corners=False)
            return self.backbone(images - 0.5)

    def forward(self, images, rois):
        """images (N, 3, H, W), rois (K, 5) -> ``(class_logits (K, C+1), box_deltas (K, 4C))``."""
        pooled = pyramid_pool_regions_batched(self.features(images), rois, self.spatial_scale, self.levels)
        return self.head(pooled)

    def trainable_parameters(self):
        """The head's parameters: what SPP-net fine-tunes (the backbone stays as it was)."""
        return self.head.parameters()

    @property
    def box_coder_weights(self):
        return BOX_CODER_WEIGHTS

    def loss(self, images, proposals, targets, rois_per_image=64, positive_fraction=0.25, rng=None):
        """Multi-task loss of the head on RoIs sampled as for Fast R-CNN -> ``(total, cls, reg)``."""
        rng = np.random.default_rng(rng)
        sampled = [sample_rois(p, t["boxes"], t["labels"], rois_per_image, positive_fraction, rng=rng)
                   for p, t in zip(proposals, targets)]
        images = images if isinstance(images, Tensor) else Tensor(host_float32(images), device=model_device(self))
        logits, deltas = self(images, rois_with_batch_index([s["rois"] for s in sampled]))
        return detection_loss(logits, deltas, np.concatenate([s["labels"] for s in sampled]),
                              np.concatenate([s["regression_targets"] for s in sampled]))

    def detect(self, images, proposals, score_threshold=0.05, nms_threshold=0.5, max_detections=100):
        """Detections per image: images (N, 3, H, W), proposals a list of (P_i, 4) -> list of dicts."""
        images = host_float32(images)
        self.eval()
        with no_grad():
            logits, deltas = self(Tensor(images, device=model_device(self)), rois_with_batch_index(proposals))
        return postprocess_per_image(logits.numpy(), deltas.numpy(), proposals, images.shape[2:],
                                     self.box_coder_weights, score_threshold, nms_threshold, max_detections)
