"""Small building blocks shared by the lecture-8 models: conv + ReLU stages and a stride-2 backbone.

Lecture 8's models (segmenter, localizer, pose regressor, detectors) all start the same way: a
stack of 3×3 convolutions that turns an image (N, 3, H, W) into a grid of feature vectors
(N, C, H/s, W/s). Downsampling uses stride-2 convolutions (a learned pooling) so the grid gets
coarser while each cell "sees" a larger receptive field. Keeping the stacks here makes each
model file about its own idea (its heads and its loss).
"""
from __future__ import annotations

from .. import nn
from ..nn import init


def he_init_(conv, rng=None):
    """Re-initialise a conv layer for ReLU (He et al.: std = sqrt(2 / fan_in), zero bias); returns it.

    PyTorch's default init (uniform with a = √5) shrinks the activations a little at every layer;
    without batch normalization that slows the start of training of a deep plain ReLU stack.
    """
    init.kaiming_normal_(conv.weight, nonlinearity="relu", rng=rng)
    if conv.bias is not None:
        init.zeros_(conv.bias)
    return conv


def conv_relu(in_channels, out_channels, stride=1, batch_norm=False, rng=None):
    """3×3 convolution (padding 1: size kept at stride 1, halved at stride 2, He init) then ReLU.

    ``batch_norm=True`` puts a BatchNorm2d between the two (and drops the conv's bias, which the
    normalization would cancel): each channel is re-centred and re-scaled per batch, which lets a
    plain stack train with a larger learning rate and leave the all-background plateau sooner.
    """
    conv = he_init_(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=not batch_norm,
                              rng=rng), rng)
    if batch_norm:
        return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU())
    return nn.Sequential(conv, nn.ReLU())


def transpose_conv_relu(in_channels, out_channels, batch_norm=False, rng=None):
    """4×4 transpose convolution, stride 2, padding 1 (size doubled exactly) then ReLU.

    The learned upsampling of an FCN decoder. ``batch_norm=True`` puts a BatchNorm2d between the
    two (no conv bias), as ``conv_relu`` does: without it the upsampled features start at a small
    scale (PyTorch's default init) and most of the ReLUs after them stay off for a long time.
    """
    conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=not batch_norm, rng=rng)
    if batch_norm:
        return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU())
    return nn.Sequential(conv, nn.ReLU())


def downsampling_backbone(widths, in_channels=3, first_stride=1, batch_norm=False, rng=None):
    """A ModuleList of stages; stage ``i`` halves the size (except stage 0) and has ``widths[i]`` channels.

    Stage 0: a 3×3 conv with ``first_stride`` then a 3×3 conv. Stage i > 0: a stride-2 3×3 conv
    followed by a 3×3 conv. So the output of stage ``i`` has stride ``first_stride * 2**i``: for
    widths (16, 32, 64) and a 64×64 input the stages give 64×64×16, 32×32×32 and 16×16×64.
    ``first_stride=2`` skips the (costly) full-resolution convolutions when the model does not
    need full-resolution outputs.
    """
    stages = []
    previous = in_channels
    for i, width in enumerate(widths):
        stages.append(nn.Sequential(
            conv_relu(previous, width, stride=first_stride if i == 0 else 2, batch_norm=batch_norm, rng=rng),
            conv_relu(width, width, batch_norm=batch_norm, rng=rng)))
        previous = width
    return nn.ModuleList(stages)
