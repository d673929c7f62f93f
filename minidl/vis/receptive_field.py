"""Receptive fields: which input pixels can one unit of a feature map see? (CS231n lecture 12)

Lecture idea: to visualize what a unit of layer L responds to, show the image patches that
excite it most ("maximally activating patches", Girshick et al. 2014) — and for that we need
the patch of the input that the unit is computed from: its *receptive field*. Deeper units
see bigger patches: two 3x3 convolutions see 5x5, three see 7x7 (VGG's argument for stacking
small kernels), and every stride multiplies how fast the field grows.

The arithmetic, per spatial axis, for a layer with kernel k, stride s, padding p, dilation d
(effective kernel k_eff = d (k - 1) + 1), in *input-pixel* units:

    jump_out  = jump_in * s                      distance between neighbouring units
    size_out  = size_in + (k_eff - 1) * jump_in  each extra kernel tap reaches one jump further
    first_out = first_in - p * jump_in           top/left input pixel of unit 0 (padding
                                                 shifts the window left of the image)

starting from a single input pixel (size 1, jump 1, first 0). Unit ``i`` then sees input
pixels ``first + i * jump ... first + i * jump + size - 1`` — the whole box, although with
dilation or stride some pixels inside it contribute nothing.

Layers are read through PyTorch's attribute names (``kernel_size``, ``stride``, ``padding``,
``dilation``), so Conv2d, MaxPool2d and AvgPool2d of minidl (or PyTorch, or any stand-in
object with those attributes) work. Activations, normalizations and dropout act per pixel
and leave the field unchanged. Anything else that moves pixels (upsampling, transposed
convolutions, adaptive pooling, Flatten/Linear) raises a TypeError instead of a wrong answer.
"""
from __future__ import annotations

from typing import NamedTuple

from ..pairs import as_pair

#: layers that act on each pixel separately (class names): the receptive field is unchanged
POINTWISE_LAYERS = frozenset({
    "Identity", "ReLU", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Sigmoid", "Tanh", "Softplus",
    "Dropout", "Dropout2d", "BatchNorm1d", "BatchNorm2d", "InstanceNorm2d", "ConditionalInstanceNorm2d",
    "GroupNorm", "LayerNorm", "LocalResponseNorm",
})

#: names of layers that have a kernel_size but are *not* a sliding window over the input
_UPSAMPLING_MARKERS = ("Transpose", "Unpool", "Upsample")


class ReceptiveField(NamedTuple):
    """The receptive field of the units of one layer's output, per axis ``(along H, along W)``."""
    name: str                   #: position in the stack: "0", "3", or "features.2" when nested
    layer: str                  #: the layer's class name
    size: tuple                 #: (h, w) input pixels covered by one unit
    jump: tuple                 #: (h, w) input-pixel distance between neighbouring units
    first: tuple                #: (y, x) top-left input pixel of unit (0, 0); negative = in the padding

    @property
    def start(self):
        """(y, x) centre of unit (0, 0)'s field, in input pixel coordinates (may be fractional)."""
        return tuple(f + (s - 1) / 2 for f, s in zip(self.first, self.size))


def _pair(value, name, layer):
    return as_pair(value, f"{type(layer).__name__}.{name}")


def layer_geometry(layer):
    """``(kernel, stride, padding, dilation)`` of a sliding-window layer, each an (h, w) pair.

    stride None (PyTorch pooling's default) means stride = kernel_size; a missing stride,
    padding or dilation means 1, 0, 1. padding "valid" is 0; "same" is PyTorch's
    (k_eff - 1) // 2 on the top/left (it needs stride 1).
    """
    kernel = _pair(layer.kernel_size, "kernel_size", layer)
    stride = getattr(layer, "stride", 1)
    stride = kernel if stride is None else _pair(stride, "stride", layer)
    dilation = _pair(getattr(layer, "dilation", 1), "dilation", layer)
    padding = getattr(layer, "padding", 0)
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        if stride != (1, 1):
            raise ValueError(f"{type(layer).__name__}: padding='same' needs stride 1, got {stride}")
        padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    else:
        padding = _pair(padding, "padding", layer)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"{type(layer).__name__}: kernel_size, stride, dilation must be >= 1 and "
                         f"padding >= 0, got {kernel}, {stride}, {dilation}, {padding}")
    return kernel, stride, padding, dilation


#: containers whose children run one after the other, in order (walked into)
SEQUENTIAL_CONTAINERS = frozenset({"Sequential", "ModuleList"})


def _is_sequential(obj):
    return isinstance(obj, (list, tuple)) or type(obj).__name__ in SEQUENTIAL_CONTAINERS


def _flatten(layers, prefix=""):
    """Yield ``(name, layer)`` for every leaf layer, walking into nested sequential containers.

    Other modules with children (a residual block, say) are *not* walked into: their
    children's order says nothing about how data flows through them.
    """
    items = enumerate(layers) if isinstance(layers, (list, tuple)) else layers.named_children()
    for name, layer in items:
        if _is_sequential(layer):
            yield from _flatten(layer, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", layer


def receptive_fields(layers, pointwise=()):
    """The receptive field after each layer of a stack, as a list of ``ReceptiveField``.

    layers: a ``Sequential`` (nested ones are walked into), a ``ModuleList`` or a plain list of
        layers — anything with ``kernel_size`` (and optionally ``stride``, ``padding``,
        ``dilation``) counts as a sliding window; the layers must be applied in that order.
    pointwise: extra layer classes (or class names) to treat as per-pixel, i.e. identity.

    Raises TypeError for a layer whose effect on the pixel grid is unknown.
    """
    pointwise_names = POINTWISE_LAYERS | {p if isinstance(p, str) else p.__name__ for p in pointwise}
    if not _is_sequential(layers):
        layers = [layers]                      # a single layer
    size, jump, first = (1, 1), (1, 1), (0, 0)
    fields = []
    for name, layer in _flatten(layers):
        kind = type(layer).__name__
        if any(marker in kind for marker in _UPSAMPLING_MARKERS) or hasattr(layer, "output_padding"):
            raise TypeError(f"layer {name} ({kind}) upsamples; receptive_fields only follows "
                            f"sliding-window layers (convolutions, pooling) and per-pixel layers")
        if hasattr(layer, "kernel_size"):
            kernel, stride, padding, dilation = layer_geometry(layer)
            k_eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
            size = tuple(r + (k - 1) * j for r, k, j in zip(size, k_eff, jump))
            first = tuple(f - p * j for f, p, j in zip(first, padding, jump))
            jump = tuple(j * s for j, s in zip(jump, stride))
        elif kind not in pointwise_names:
            raise TypeError(f"layer {name} ({kind}) has no kernel_size and is not a known per-pixel "
                            f"layer, so its effect on the receptive field is unknown; if it acts on "
                            f"each pixel separately pass pointwise=({kind!r},), and stop the stack "
                            f"before Flatten/Linear/adaptive pooling (their units see the whole image)")
        fields.append(ReceptiveField(name, kind, size, jump, first))
    return fields


def patch_for_unit(rf, y, x, image_size):
    """The input-image box that unit ``(y, x)`` of a feature map sees, clipped to the image.

    rf: a ``ReceptiveField`` (one entry of ``receptive_fields(...)``).
    y, x: the unit's row and column in that layer's output.
    image_size: ``H`` (square) or ``(H, W)`` of the input image.

    Returns ``(x1, y1, x2, y2)`` ints, minidl's box order, end-exclusive, so the patch is
    ``image[..., y1:y2, x1:x2]``. Near the border the field hangs over the padding and the box
    is smaller than ``rf.size``.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if not (isinstance(y, int) and isinstance(x, int)) or y < 0 or x < 0:
        raise ValueError(f"y and x must be non-negative ints (a feature-map position), got {y!r}, {x!r}")
    top = rf.first[0] + y * rf.jump[0]
    left = rf.first[1] + x * rf.jump[1]
    y1, y2 = max(top, 0), min(top + rf.size[0], height)
    x1, x2 = max(left, 0), min(left + rf.size[1], width)
    if y1 >= y2 or x1 >= x2:
        raise ValueError(f"unit (y={y}, x={x}) sees nothing of a {height}x{width} image: its field "
                         f"rows [{top}, {top + rf.size[0]}), columns [{left}, {left + rf.size[1]}) "
                         f"lie outside it (is the position inside the feature map?)")
    return x1, y1, x2, y2
