"""The image transformation network of fast style transfer (Johnson et al., 2016; lecture 12).

A small fully convolutional encoder / residual trunk / decoder::

    (N, 3, H, W) → conv 9×9 → norm → ReLU                              (N, c0, H, W)
                 → conv 3×3 stride 2 → norm → ReLU                     (N, c1, H/2, W/2)
                 → conv 3×3 stride 2 → norm → ReLU                     (N, c2, H/4, W/4)
                 → residual blocks: x + norm(conv(ReLU(norm(conv(x)))))
                 → upsample ×2 (nearest) → conv 3×3 → norm → ReLU      (N, c1, H/2, W/2)
                 → upsample ×2 (nearest) → conv 3×3 → norm → ReLU      (N, c0, H, W)
                 → conv 9×9 → sigmoid                                  (N, 3, H, W) in [0, 1]

Downsampling first makes the residual trunk cheap and its receptive field large; nearest
upsampling + conv instead of a transposed conv avoids checkerboard artifacts (Odena et al.,
2016).

Borders: every conv zero-pads, and zeros (grey, after the ``x - 0.5`` centring) at the edge are
a pattern the network happily paints with the style's strongest colours — dark/coloured stripes
along the border. Johnson et al. therefore *reflection*-pad the input (by 40 px for 256×256)
and cut the margin off the output: the zero-padding artifacts are then made in the margin and
thrown away. ``border=8`` does that here (the tour's networks use it; the default 0 keeps the
plain network, which ``benchmarks/bench_style.py``'s PyTorch twin mirrors). Reflection padding
is ``F.pad(x, (b, b, b, b), mode="reflect")``: plain indexing with mirrored indices.

``norm`` is chosen by name:

* ``"instance"`` — InstanceNorm2d (Ulyanov et al.: much better stylization than batch norm);
* ``"batch"``    — BatchNorm2d (Johnson's original, for the comparison);
* ``"conditional"`` — ConditionalInstanceNorm2d with ``num_styles`` scale/shift pairs
  (Dumoulin et al.): one network, many styles; ``forward(x, style_weights)`` with
  ``style_weights (N, num_styles)`` mixing them (one-hot = one style).
"""
from __future__ import annotations

from .. import nn
from ..functional.activation import relu, sigmoid
from ..functional.shape import pad

NORMS = ("instance", "batch", "conditional")


class _NormAct(nn.Module):
    """conv → norm → (ReLU); the norm gets the style weights when it is conditional."""

    def __init__(self, conv, norm, activation=True, upsample=False):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest") if upsample else None
        self.conv, self.norm, self.activation = conv, norm, activation
        # Instance / batch norm apply the ReLU in their own passes (minidl.nn.fuse_norm_relu:
        # the same values, one pass over the activation fewer each way); conditional IN cannot.
        if activation and type(norm) in (nn.InstanceNorm2d, nn.BatchNorm2d):
            norm.fused_relu = True

    def forward(self, x, style=None):
        if self.upsample is not None:
            x = self.upsample(x)
        x = self.conv(x)
        x = self.norm(x, style) if style is not None else self.norm(x)
        # asked of the norm at every call: a norm swapped in later (a student's) gets its ReLU here
        relu_done = getattr(self.norm, "fused_relu", False)
        return relu(x) if self.activation and not relu_done else x


class ResidualBlock(nn.Module):
    def __init__(self, channels, make_norm, rng=None):
        super().__init__()
        self.first = _NormAct(nn.Conv2d(channels, channels, 3, padding=1, rng=rng), make_norm(channels))
        self.second = _NormAct(nn.Conv2d(channels, channels, 3, padding=1, rng=rng), make_norm(channels),
                               activation=False)

    def forward(self, x, style=None):
        return x + self.second(self.first(x, style), style)


class TransformNet(nn.Module):
    def __init__(self, channels=(16, 32, 64), num_residual=3, norm="instance", num_styles=1, border=0, rng=None):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if norm == "conditional" and num_styles < 1:
            raise ValueError(f"num_styles must be >= 1, got {num_styles}")
        if border < 0 or border % 2:
            raise ValueError(f"border must be a non-negative even number (H + 2·border stays divisible by 4), got {border}")
        self.norm_kind, self.num_styles = norm, num_styles if norm == "conditional" else 1
        self.border = border

        def make_norm(c):
            if norm == "instance":
                return nn.InstanceNorm2d(c, affine=True)
            if norm == "batch":
                return nn.BatchNorm2d(c)
            return nn.ConditionalInstanceNorm2d(c, num_styles)

        c0, c1, c2 = channels
        self.encoder = nn.ModuleList([
            _NormAct(nn.Conv2d(3, c0, 9, padding=4, rng=rng), make_norm(c0)),
            _NormAct(nn.Conv2d(c0, c1, 3, stride=2, padding=1, rng=rng), make_norm(c1)),
            _NormAct(nn.Conv2d(c1, c2, 3, stride=2, padding=1, rng=rng), make_norm(c2)),
        ])
        self.residual = nn.ModuleList([ResidualBlock(c2, make_norm, rng) for _ in range(num_residual)])
        self.decoder = nn.ModuleList([
            _NormAct(nn.Conv2d(c2, c1, 3, padding=1, rng=rng), make_norm(c1), upsample=True),
            _NormAct(nn.Conv2d(c1, c0, 3, padding=1, rng=rng), make_norm(c0), upsample=True),
        ])
        self.output = nn.Conv2d(c0, 3, 9, padding=4, rng=rng)

    def forward(self, x, style_weights=None):
        """x: (N, 3, H, W) in [0, 1], H and W divisible by 4; style_weights: (N, num_styles)
        for a conditional network (required then), else None."""
        if (self.norm_kind == "conditional") != (style_weights is not None):
            raise TypeError("style_weights (N, num_styles) must be given exactly when norm='conditional'")
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"x must have shape (N, 3, H, W) with H, W divisible by 4, got {x.shape}")
        b = self.border
        h = (pad(x, (b, b, b, b), mode="reflect") if b else x) - 0.5
        for layer in self.encoder:
            h = layer(h, style_weights)
        for block in self.residual:
            h = block(h, style_weights)
        for layer in self.decoder:
            h = layer(h, style_weights)
        out = sigmoid(self.output(h))
        return out[:, :, b:out.shape[2] - b, b:out.shape[3] - b] if b else out
