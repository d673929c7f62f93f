"""Semantic segmentation (CS231n lecture 8): label every pixel, two ways.

1. **Sliding window** (the naive idea of the lecture): cut a patch around every pixel, classify
   the patch with a small CNN, give the pixel the patch's class. ``PatchClassifier`` +
   ``sliding_window_segment``. It works, but neighbouring patches overlap almost entirely, so the
   same convolutions are recomputed for every one of the H·W patches — very slow.

2. **Fully convolutional network** (``FCN``): convolutions only, so the whole image goes through
   the network once and every pixel gets its scores (N, num_classes, H, W) together — the shared
   computation the sliding window repeats. Full resolution everywhere would be expensive, so the
   network is an *encoder–decoder*: it downsamples (stride-2 convolutions, or max pooling) to a
   coarse grid where each cell sees a large receptive field, then upsamples back to H×W:

   * ``upsampling="transpose"``: strided-conv encoder, learned **transpose convolutions** (4×4,
     stride 2, then batch norm and ReLU) in the decoder;
   * ``upsampling="unpool"``: max-pool encoder that remembers *where* each maximum was, and
     **max-unpooling** in the decoder that puts each value back at that position (zeros
     elsewhere), followed by a 3×3 conv that fills the gaps (SegNet's decoder).

   ``skips=True`` adds each encoder stage's features to the decoder stage of the same size (FCN's
   "skip" connections): the coarse grid knows *what*, the early layers know *where* exactly.
   ``first_stride=2`` starts with a stride-2 convolution, so no 3×3 convolution runs at H×W (about
   twice as fast); the class scores come out at H/2×W/2 and are **bilinearly interpolated** to
   H×W (the fixed upsampling FCN-32s/8s start their last layer from). Interpolating *scores*, not
   labels, places a boundary between two pixels of the coarse grid where the scores cross.

Training is per-pixel cross-entropy: ``F.cross_entropy(scores (N, C, H, W), mask (N, H, W))``.
When most pixels are background the plain mean is dominated by them (the network first learns
"background everywhere", then "object vs background", and the *shape* of each object last), so
the lecture-8 recipe weights the classes and removes the weights from the trained network with
``remove_class_weights_`` (see there and docs/lecture8.md).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device
from .blocks import conv_relu, downsampling_backbone, transpose_conv_relu

UPSAMPLING_MODES = ("transpose", "unpool")


class FCN(nn.Module):
    """Encoder–decoder segmenter: (N, 3, H, W) -> per-pixel class scores (N, num_classes, H, W).

    Args:
        num_classes: output classes per pixel (for shapes scenes: 1 background + 5 shapes = 6).
        widths: channels of each encoder stage; stage i has stride ``first_stride * 2**i``, so H
            and W must be divisible by ``first_stride * 2**(len(widths) - 1)``.
        upsampling: ``"transpose"`` or ``"unpool"`` (see the module docstring).
        skips: add encoder features to the decoder at each resolution.
        first_stride: 1 (stage 0 at full resolution) or 2 (stage 0 at half resolution; the
            scores of the final 1×1 convolution are bilinearly interpolated to full resolution).
        batch_norm: BatchNorm2d after every 3×3 convolution (``blocks.conv_relu``) and every
            decoder transpose convolution (``blocks.transpose_conv_relu``).
        rng: seed or Generator for the weight initialisation.
    """

    def __init__(self, num_classes, widths=(16, 32, 64, 64), upsampling="transpose", skips=True,
                 first_stride=1, batch_norm=True, in_channels=3, rng=None):
        super().__init__()
        if upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {upsampling!r}")
        if first_stride not in (1, 2):
            raise ValueError(f"first_stride must be 1 or 2, got {first_stride!r}")
        rng = np.random.default_rng(rng)
        self.num_classes, self.widths = int(num_classes), tuple(widths)
        self.upsampling, self.skips, self.first_stride = upsampling, bool(skips), int(first_stride)
        if upsampling == "transpose":
            self.encoder = downsampling_backbone(self.widths, in_channels, first_stride, batch_norm, rng=rng)
        else:
            # Max-pool encoder: pool (remembering the argmax), then two 3×3 convs per stage.
            stages, previous = [], in_channels
            for i, width in enumerate(self.widths):
                stride = first_stride if i == 0 else 1
                stages.append(nn.Sequential(conv_relu(previous, width, stride, batch_norm, rng=rng),
                                            conv_relu(width, width, batch_norm=batch_norm, rng=rng)))
                previous = width
            self.encoder = nn.ModuleList(stages)
            self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
            self.unpool = nn.MaxUnpool2d(2, stride=2)
        # Decoder step i (deepest first) goes from stage i's resolution/width to stage i-1's.
        self.up = nn.ModuleList()
        self.refine = nn.ModuleList()
        for i in range(len(self.widths) - 1, 0, -1):
            wide, narrow = self.widths[i], self.widths[i - 1]
            if upsampling == "transpose":
                self.up.append(transpose_conv_relu(wide, narrow, batch_norm, rng=rng))
            else:
                self.up.append(conv_relu(wide, narrow, batch_norm=batch_norm, rng=rng))   # then unpool
            self.refine.append(conv_relu(narrow, narrow, batch_norm=batch_norm, rng=rng))
        # Per-pixel class scores at stage 0's resolution (a 1×1 conv is a linear classifier per cell);
        # with first_stride=2 they are bilinearly interpolated to H×W in forward.
        self.classifier = nn.Conv2d(self.widths[0], self.num_classes, 1, rng=rng)

    def forward(self, x):
        """x (N, C_in, H, W) -> scores (N, num_classes, H, W)."""
        factor = self.first_stride * 2 ** (len(self.widths) - 1)
        if x.ndim != 4 or x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"FCN: input must be (N, C, H, W) with H and W divisible by {factor}, "
                             f"got shape {tuple(x.shape)}")
        x = x - 0.5                                 # centre the [0, 1] pixels
        features, indices = [], []
        for i, stage in enumerate(self.encoder):
            if self.upsampling == "unpool" and i > 0:
                x, where = self.pool(x)            # where: flat argmax positions, (N, C, H/2, W/2)
                indices.append((where, features[-1].shape))
            x = stage(x)
            features.append(x)
        for step, (up, refine) in enumerate(zip(self.up, self.refine)):
            level = len(self.widths) - 2 - step     # the encoder stage we come back to
            if self.upsampling == "transpose":
                x = up(x)
            else:
                where, size = indices[level]
                x = self.unpool(up(x), where, output_size=size)
            if self.skips:
                x = x + features[level]
            x = refine(x)
        scores = self.classifier(x)
        if self.first_stride > 1:
            scores = F.interpolate(scores, scale_factor=self.first_stride, mode="bilinear", align_corners=False)
        return scores


# ---- the sliding-window baseline --------------------------------------------------------------

class PatchClassifier(nn.Module):
    """Classify the centre pixel of a (N, 3, P, P) patch -> scores (N, num_classes).

    Three 3×3 conv stages (the last two with stride 2) and two linear layers. The patch size P
    is fixed at construction because the first linear layer's input size depends on it. For a
    fair baseline P must let the patch see the whole object around its centre pixel: the shapes
    of 64×64 scenes are up to ~28 px across, hence P = 33 for the committed weights.
    """

    def __init__(self, num_classes, patch_size=21, widths=(16, 32, 32), hidden=64, in_channels=3,
                 batch_norm=True, rng=None):
        super().__init__()
        if patch_size % 2 != 1:
            raise ValueError(f"patch_size must be odd (the pixel sits at the centre), got {patch_size}")
        rng = np.random.default_rng(rng)
        self.patch_size, self.num_classes = int(patch_size), int(num_classes)
        layers, previous, size = [], in_channels, patch_size
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(conv_relu(previous, width, stride, batch_norm, rng=rng))
            size = (size - 1) // stride + 1                  # 3×3, padding 1: ceil(size / stride)
            previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(previous * size * size, hidden, rng=rng), nn.ReLU(),
                                  nn.Linear(hidden, self.num_classes, rng=rng))

    def forward(self, patches):
        return self.head(self.features(patches - 0.5))


def extract_patches(images, patch_size, centres=None):
    """Patches around pixels: images (N, C, H, W) -> (M, C, P, P) (edges padded with zeros).

    ``centres``: (M, 3) integer rows (image index, row i, column j); ``None`` takes every pixel
    of every image in order (M = N·H·W), the sliding window.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    half = patch_size // 2
    if centres is not None:
        # Pad only the images the centres point into (a training batch samples a few of
        # thousands: padding them all on every call would copy the whole data set).
        centres = np.asarray(centres)
        used, which = np.unique(centres[:, 0], return_inverse=True)
        images, centres = images[used], np.column_stack([which.reshape(-1), centres[:, 1:]])
    padded = np.pad(images, ((0, 0), (0, 0), (half, half), (half, half)))
    # windows[n, c, i, j] is the (P, P) window whose top-left corner is padded pixel (i, j), i.e.
    # the window centred on image pixel (i, j): a strided view, no copy yet.
    windows = np.lib.stride_tricks.sliding_window_view(padded, (patch_size, patch_size), axis=(2, 3))
    if centres is None:
        n, c, h, w = images.shape
        return np.ascontiguousarray(windows.transpose(0, 2, 3, 1, 4, 5)).reshape(n * h * w, c, patch_size, patch_size)
    return np.ascontiguousarray(windows[centres[:, 0], :, centres[:, 1], centres[:, 2]])


def sliding_window_segment(model, images, batch_size=2048):
    """Segment ``images`` (N, C, H, W) by classifying the patch around every pixel -> (N, H, W) labels.

    N·H·W forward passes of ``model`` (a ``PatchClassifier``), in batches: this is the
    "repeated work" the fully convolutional network avoids. The patches are cut on the host and
    each batch runs on the model's device; the labels come back as a NumPy array.
    """
    images = host_float32(images)
    n, _, h, w = images.shape
    labels = np.empty(n * h * w, dtype=np.int64)
    device = model_device(model)
    model.eval()
    with no_grad():
        for k in range(n):                        # one image at a time keeps the patch array small
            patches = extract_patches(images[k:k + 1], model.patch_size)
            for start in range(0, len(patches), batch_size):
                best = model(Tensor(patches[start:start + batch_size], device=device)).data.argmax(1)
                labels[k * h * w + start: k * h * w + start + len(best)] = backend.to_numpy(best)
    return labels.reshape(n, h, w)


def remove_class_weights_(layer, class_weight):
    """Subtract ``log(class_weight)`` from ``layer.bias`` in place (the last layer of a classifier).

    Why: per-pixel cross-entropy is dominated by the background (~90 % of the pixels of a shapes
    scene), so we train with class weights ``w_c`` (background < 1) to get more gradient from the
    objects. A network trained with weighted cross-entropy learns scores whose softmax is
    proportional to ``w_c · p(c | x)`` instead of ``p(c | x)`` (the weighted loss is the ordinary
    one on data where class c is ``w_c`` times as frequent), so its argmax favours the
    up-weighted classes and draws every object a pixel too large. Subtracting ``log w_c`` from
    the score of class c undoes exactly that factor; as the scores are ``W·h + b`` it is a change
    of the bias ``b`` (and bilinear upsampling after the layer keeps a constant constant).

    The same correction undoes a *sampling* prior: training on examples where class c is
    ``r_c`` times as frequent as in the test data acts like the class weight ``w_c = r_c``.
    """
    weight = np.asarray(class_weight, dtype=np.float64)
    if layer.bias is None or weight.shape != tuple(layer.bias.shape) or not (weight > 0).all():
        raise ValueError(f"class_weight must hold one positive weight per output of the layer "
                         f"({None if layer.bias is None else tuple(layer.bias.shape)}), got {weight.shape}")
    xp = backend.get_array_module(layer.bias.data)
    layer.bias.data = layer.bias.data - xp.asarray(np.log(weight), dtype=layer.bias.dtype)
    return layer


def segment(model, images, batch_size=32):
    """Per-pixel labels of a segmentation network: images (N, C, H, W) -> (N, H, W) int64 NumPy.

    Each batch runs on the model's device (``model.to("cuda")`` first for the GPU); only the
    labels (the argmax over classes) are copied back to the host."""
    images = host_float32(images)
    device = model_device(model)
    model.eval()
    out = []
    with no_grad():
        for start in range(0, len(images), batch_size):
            scores = model(Tensor(images[start:start + batch_size], device=device))
            out.append(backend.to_numpy(scores.data.argmax(1)).astype(np.int64, copy=False))
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[2:], np.int64)
