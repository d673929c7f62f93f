"""A small CNN classifier for lecture 12's class-based techniques (saliency, occlusion, class
visualization, fooling images, guided backprop, the randomization check).

No pretrained ImageNet network can be downloaded here, so minidl trains its own: a VGG-like
stack of 3×3 convolutions, batch norm and 2×2 max pools on the shapes world
(``minidl.data.ShapesDataset``, single-object mode, 32×32 RGB, 5 classes: circle, square,
triangle, ellipse, star)::

    input (N, 3, 32, 32), pixels in [0, 1] (centred inside the model: x − 0.5)
    features.0  conv 3→16  3×3 pad 1 → (N, 16, 32, 32)  .1 BN  .2 ReLU   .3 maxpool 2  → 16×16
    features.4  conv 16→32 3×3 pad 1 → (N, 32, 16, 16)  .5 BN  .6 ReLU   .7 maxpool 2  → 8×8
    features.8  conv 32→64 3×3 pad 1 → (N, 64, 8, 8)    .9 BN  .10 ReLU  .11 maxpool 2 → 4×4
    classifier.0 Flatten → classifier.1 Linear 1024→64 → classifier.2 ReLU ("last-layer features")
    classifier.3 Linear 64→5 (class scores)

Batch norm is there for training speed (without it this net sits at chance for hundreds of
steps on the textured backgrounds); in eval mode it is a fixed per-channel affine map, so
every visualization sees an ordinary conv net. 32×32 keeps training a few minutes on 2 CPU
cores (64×64 costs 4× more per step).

The committed weights (``minidl/weights/shapes_classifier.npz``, ~0.5 MB) are reproduced by
``benchmarks/train_vis_classifier.py``; ``load_shapes_classifier()`` builds the model and
loads them (``allow_pickle=False``).
"""
from __future__ import annotations

import os

from .. import nn
from ..nn.module import load_npz
from ..data.shapes import SHAPE_CLASSES

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
SHAPES_CLASSIFIER_WEIGHTS = os.path.join(WEIGHTS_DIR, "shapes_classifier.npz")

#: the name of the 64-d penultimate layer (input to the last Linear): "last-layer features"
FEATURE_LAYER = "classifier.2"


class ShapesClassifier(nn.Module):
    """``features`` (conv/ReLU/pool blocks) then ``classifier`` (Flatten, Linear, ReLU, Linear)."""

    def __init__(self, num_classes=len(SHAPE_CLASSES), in_channels=3, image_size=32,
                 widths=(16, 32, 64), hidden=64, rng=None):
        super().__init__()
        if image_size % 2 ** len(widths):
            raise ValueError(f"image_size must be divisible by 2**len(widths) = {2 ** len(widths)}, got {image_size}")
        layers, channels = [], in_channels
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1, rng=rng), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** len(widths)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, hidden, rng=rng),
                                        nn.ReLU(), nn.Linear(hidden, num_classes, rng=rng))
        self.num_classes, self.image_size, self.in_channels = num_classes, image_size, in_channels

    def forward(self, x):
        # Centre the [0, 1] pixels so the first layer sees zero-mean inputs (faster training);
        # visualizations can then stay in image space, [0, 1], with 0.5 as the neutral grey.
        return self.classifier(self.features(x - 0.5))


def load_shapes_classifier(path=SHAPES_CLASSIFIER_WEIGHTS):
    """The trained ``ShapesClassifier`` (eval mode) from the committed ``.npz`` weights."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: run `python benchmarks/train_vis_classifier.py` to train it")
    model = ShapesClassifier()
    arrays = load_npz(path)                  # a damaged file: a CheckpointError naming it
    # The file stores every array as float32, batch norm's int64 step counters included.
    model.load_state_dict({k: v for k, v in arrays.items() if not k.startswith("meta_")}, cast=True)
    return model.eval()
