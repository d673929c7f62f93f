"""Human pose estimation as regression (CS231n lecture 8): predict the (x, y) of K keypoints.

The lecture's recipe (Toshev & Szegedy's DeepPose): a CNN outputs 2K numbers, the coordinates of
the K joints, and is trained with an L2 loss against the true coordinates — localization with K
"points" instead of one box. Two heads are offered:

* ``head="fc"``: exactly that — flatten the features, a linear layer -> 2K numbers in [0, 1]
  (fractions of the image size).
* ``head="soft_argmax"`` (default): still regression trained with L2 on the coordinates, but the
  coordinates are *computed* from the feature grid: one score map per keypoint (a 1×1 conv),
  a softmax over its H'·W' cells turns it into a probability map ``p``, and the keypoint is the
  expected cell centre ``Σ p(cell) · centre(cell)`` (the "soft-argmax" of integral regression).
  This keeps the convolution's translation equivariance — a figure moved by 8 pixels moves its
  maps by one cell — instead of asking a linear layer to learn positions from scratch, so it is
  far more accurate for the same training time. The soft-argmax is differentiable, so the L2
  loss trains the maps end to end.

Coordinates are in pixels: ``(x, y)`` with pixel (i, j) covering ``[j, j+1) × [i, i+1)``.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device
from .blocks import conv_relu, downsampling_backbone

POSE_HEADS = ("soft_argmax", "fc")


def soft_argmax(score_maps, stride):
    """Expected position of each map: (N, K, h, w) scores -> (N, K, 2) ``(x, y)`` in pixels.

    Cell (i, j) of a map with ``stride`` pixels per cell is centred at ((j + 0.5)·stride,
    (i + 0.5)·stride); softmax over the h·w cells gives the weights.
    """
    n, k, h, w = score_maps.shape
    probabilities = F.softmax(score_maps.reshape(n, k, h * w), axis=-1)          # (N, K, h·w)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    centres = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)  # (h·w, 2)
    return probabilities @ Tensor(centres, device=probabilities.device)          # (N, K, 2)


class PoseRegressor(nn.Module):
    """(N, 3, S, S) -> keypoints (N, K, 2) in pixels.

    Args:
        num_keypoints: K (14 for the stick figures of ``ShapesDataset(mode="pose")``).
        image_size: input side S.
        widths: backbone stage channels (first stage stride 2; each later one halves again).
        head: ``"soft_argmax"`` or ``"fc"`` (module docstring).
        upsample: soft-argmax head only: one transpose-conv step (stride ×2 finer grid, with the
            previous stage's features added as a skip) before the score maps.
    """

    def __init__(self, num_keypoints=14, image_size=64, widths=(16, 32, 64, 64), head="soft_argmax",
                 upsample=True, hidden=256, batch_norm=True, rng=None):
        super().__init__()
        if head not in POSE_HEADS:
            raise ValueError(f"head must be one of {POSE_HEADS}, got {head!r}")
        rng = np.random.default_rng(rng)
        self.num_keypoints, self.image_size, self.head = int(num_keypoints), int(image_size), head
        self.stages = downsampling_backbone(widths, first_stride=2, batch_norm=batch_norm, rng=rng)
        self.stride = 2 ** len(widths)                      # stride of the last stage
        if self.image_size % self.stride:
            raise ValueError(f"image_size {image_size} must be divisible by {self.stride}")
        self.upsample = bool(upsample) and head == "soft_argmax"
        if head == "fc":
            cells = self.image_size // self.stride
            self.regressor = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * cells * cells, hidden, rng=rng),
                                           nn.ReLU(), nn.Linear(hidden, 2 * self.num_keypoints, rng=rng))
            return
        channels = widths[-1]
        if self.upsample:
            self.up = nn.Sequential(nn.ConvTranspose2d(widths[-1], widths[-2], 4, stride=2, padding=1, rng=rng),
                                    nn.ReLU())
            self.refine = conv_relu(widths[-2], widths[-2], batch_norm=batch_norm, rng=rng)
            channels = widths[-2]
        self.score_maps = nn.Conv2d(channels, self.num_keypoints, 1, rng=rng)

    @property
    def map_stride(self):
        """Pixels per cell of the score maps."""
        return self.stride // 2 if self.upsample else self.stride

    def forward(self, x):
        if x.ndim != 4 or x.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(f"PoseRegressor: input must be (N, C, {self.image_size}, {self.image_size}), "
                             f"got shape {tuple(x.shape)}")
        x = x - 0.5                                  # centred pixels
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        if self.head == "fc":
            return self.regressor(x).reshape(x.shape[0], self.num_keypoints, 2) * float(self.image_size)
        if self.upsample:
            x = self.refine(self.up(x) + features[-2])
        return soft_argmax(self.score_maps(x), self.map_stride)


class KeypointLoss:
    """L2 regression loss on keypoints, for ``fit``: ``mean((pred - true)² / S²)`` over x and y.

    Called as ``loss(predictions (N, K, 2), keypoints (N, K, 2 or 3))`` (a visibility column is
    ignored: occluded joints still have a known position). Dividing by the image size S² makes the
    loss independent of the image size (coordinates as fractions of the image: predicting every joint
    at the centre gives about 0.045 on the shapes stick figures, at 32 and at 64 pixels).
    """

    def __init__(self, image_size):
        self.image_size = float(image_size)

    def __call__(self, predicted, keypoints):
        true = keypoints[:, :, :2] if keypoints.shape[-1] == 3 else keypoints
        return F.mse_loss(predicted / self.image_size, true / self.image_size)


def predict_keypoints(model, images, batch_size=128):
    """Keypoints (N, K, 2) in pixels (NumPy) for images (N, 3, S, S); the model runs on its device."""
    images = host_float32(images)
    device = model_device(model)
    model.eval()
    out = []
    with no_grad():
        for start in range(0, len(images), batch_size):
            out.append(model(Tensor(images[start:start + batch_size], device=device)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.num_keypoints, 2), np.float32)
