"""A small VGG-style multi-scale feature extractor for texture synthesis and style transfer
(lecture 12).

Gatys et al. use ImageNet-trained VGG-19 features at ``relu1_1, relu2_1, relu3_1, relu4_1``
(+ ``relu4_2`` for content). Downloading it is impossible here, so ``VGGFeatures`` keeps the
*architecture idea* at a size a CPU runs quickly — blocks of 3×3 convolutions + ReLU
separated by 2× pooling, layers named like VGG's (``conv2_1``, ``relu2_1``, ``pool2``) — and
uses **random weights** by default. That is a published result, not a workaround:
Ustyuzhaninov et al. (2017) synthesize good textures from random shallow networks, because a
Gram matrix over many random filters at several scales is already a rich texture statistic.
Two things make random features work well:

* average pooling (Gatys's own recommendation for synthesis: smoother gradients than max);
* each filter normalized to zero mean (so it responds to structure, not brightness) and
  scaled so every layer's activations have a similar size, so no layer dominates the loss.

Inputs are images in [0, 1]; the model centres them (x − 0.5).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import backend, nn


class VGGFeatures(nn.Sequential):
    """``blocks[i]`` = number of 3×3 convs of block ``i+1`` and ``widths[i]`` their channels.

    Layer names: ``conv{b}_{k}``, ``relu{b}_{k}`` and ``pool{b}`` (no pool after the last
    block), so ``forward_until(model, x, "relu3_1")`` and ``capture_activations`` work by name.
    """

    def __init__(self, widths=(32, 64, 128, 128), blocks=(1, 2, 2, 2), in_channels=3, pooling="avg",
                 rng=None):
        if len(widths) != len(blocks):
            raise ValueError(f"widths and blocks must have the same length, got {widths} and {blocks}")
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        rng = backend.get_rng(rng)
        layers, channels = OrderedDict(), in_channels
        for b, (width, count) in enumerate(zip(widths, blocks), start=1):
            for k in range(1, count + 1):
                layers[f"conv{b}_{k}"] = nn.Conv2d(channels, width, 3, padding=1, rng=rng)
                layers[f"relu{b}_{k}"] = nn.ReLU()
                channels = width
            if b < len(widths):
                layers[f"pool{b}"] = nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2)
        super().__init__(layers)
        self.widths, self.blocks = tuple(widths), tuple(blocks)
        self.random_init_(rng)

    def random_init_(self, rng=None):
        """Random filters for texture work: zero-mean per filter, Kaiming scale (variance 2/fan_in,
        keeps activations at a similar size through ReLU layers), biases 0."""
        rng = backend.get_rng(rng)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                w = rng.standard_normal(module.weight.shape)
                w -= w.mean(axis=(1, 2, 3), keepdims=True)
                w *= np.sqrt(2.0 / w[0].size) / (w.std(axis=(1, 2, 3), keepdims=True) + 1e-12)
                module.weight.data = backend.to_device(w.astype(module.weight.dtype), module.weight.device)
                if module.bias is not None:
                    module.bias.data = module.bias.data * 0
        return self

    def forward(self, x):
        return super().forward(x - 0.5)


#: the style layers Gatys et al. use, mapped onto VGGFeatures' names; the content layer is one
#: block lower than their conv4_2 because this network is shallower (relu4_1 already sees 1/8 scale)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYER = "relu3_1"
