"""Tests of minidl.vis.receptive_field on hand-made layer stand-ins (objects with PyTorch's
Conv2d / MaxPool2d attribute names), so they do not depend on the conv layers."""
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import nn
from minidl.vis.receptive_field import layer_geometry, patch_for_unit, receptive_fields


def conv(k, s=1, p=0, d=1):
    """A Conv2d stand-in: PyTorch stores these as pairs."""
    return SimpleNamespace(kernel_size=(k, k), stride=(s, s), padding=(p, p), dilation=(d, d))


def pool(k, s=None, p=0):
    """A MaxPool2d stand-in: PyTorch keeps ints, and stride=None means stride = kernel_size."""
    return SimpleNamespace(kernel_size=k, stride=s, padding=p, dilation=1)


class StubConv(nn.Module):
    """A Module stand-in, so that Sequential accepts it."""

    def __init__(self, k, s=1, p=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = (k, k), (s, s), (p, p), (1, 1)


def test_two_3x3_convolutions_see_5x5():
    last = receptive_fields([conv(3), conv(3)])[-1]
    assert last.size == (5, 5) and last.jump == (1, 1) and last.first == (0, 0)
    assert last.start == (2.0, 2.0)


def test_a_stride_2_conv_then_a_conv_see_7x7_with_jump_2():
    first, second = receptive_fields([conv(3, s=2), conv(3)])
    assert first.size == (3, 3) and first.jump == (2, 2)
    assert second.size == (7, 7) and second.jump == (2, 2)


def test_alexnet_pool5_sees_195_pixels():
    # torchvision's AlexNet features, with activations in between (per-pixel: no change)
    features = nn.Sequential(StubConv(11, 4, 2), nn.ReLU(), StubConv(1), nn.ReLU())  # nested part
    layers = [features, pool(3, 2), conv(5, p=2), nn.ReLU(), pool(3, 2), conv(3, p=1), nn.ReLU(),
              conv(3, p=1), nn.Dropout(0.5), conv(3, p=1), pool(3, 2)]
    fields = receptive_fields(layers)
    assert [f.name for f in fields[:4]] == ["0.0", "0.1", "0.2", "0.3"]
    assert fields[1].size == fields[0].size == (11, 11) and fields[1].layer == "ReLU"
    assert [f.size[0] for f in fields if f.layer == "SimpleNamespace"] == [19, 51, 67, 99, 131, 163, 195]
    assert fields[-1].jump == (32, 32)


def test_non_square_kernels_dilation_and_int_attributes():
    layer = SimpleNamespace(kernel_size=(3, 1), stride=(1, 2), padding=(1, 0), dilation=(2, 1))
    (field,) = receptive_fields([layer])
    assert field.size == (5, 1) and field.jump == (1, 2) and field.first == (-1, 0)
    assert layer_geometry(pool(2)) == ((2, 2), (2, 2), (0, 0), (1, 1))    # stride None -> kernel
    same = SimpleNamespace(kernel_size=5, stride=1, padding="same", dilation=1)
    assert receptive_fields([same])[0].first == (-2, -2)


def test_patch_for_unit_maps_and_clips_the_box():
    rf = receptive_fields([conv(3, s=2, p=1), conv(3, p=1)])[-1]          # size 7, jump 2, first -3
    assert rf.size == (7, 7) and rf.first == (-3, -3)
    assert patch_for_unit(rf, 4, 5, 32) == (7, 5, 14, 12)                 # (x1, y1, x2, y2)
    assert patch_for_unit(rf, 0, 0, 32) == (0, 0, 4, 4)                   # hangs over the padding
    assert patch_for_unit(rf, 15, 0, (32, 20)) == (0, 27, 4, 32)          # bottom border, H != W
    with pytest.raises(ValueError, match="outside"):
        patch_for_unit(rf, 0, 40, 32)
    with pytest.raises(ValueError, match="non-negative"):
        patch_for_unit(rf, -1, 0, 32)


def test_unknown_spatial_layers_raise_a_clear_error():
    with pytest.raises(TypeError, match="Flatten"):
        receptive_fields([conv(3), nn.Flatten()])
    with pytest.raises(TypeError, match="Linear"):
        receptive_fields([nn.Linear(4, 2)])
    transposed = type("ConvTranspose2d", (), dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)))()
    with pytest.raises(TypeError, match="upsamples"):
        receptive_fields([transposed])

    class Swish(nn.Module):
        def forward(self, x):
            return x
    with pytest.raises(TypeError, match="pointwise"):
        receptive_fields([conv(3), Swish()])
    assert receptive_fields([conv(3), Swish()], pointwise=(Swish,))[-1].size == (3, 3)
    with pytest.raises(TypeError, match="kernel_size"):
        receptive_fields([SimpleNamespace(kernel_size="3")])


# ---- against a brute-force walk back through the layers -----------------------------------------

def seen_input_pixels(geometries, unit, sizes=None):
    """Input indices (1-D) that feed output ``unit``: walk the window of each layer backwards.

    A layer (k, s, p, d) computes unit o from inputs o*s - p + d*t, t = 0..k-1. Without
    ``sizes`` nothing is clipped (padding positions are kept), so the hull must equal the
    arithmetic's box exactly; with ``sizes`` (the length of each layer's input) only real
    positions are kept.
    """
    seen = {unit}
    for i, (k, s, p, d) in reversed(list(enumerate(geometries))):
        seen = {o * s - p + d * t for o in seen for t in range(k)}
        if sizes is not None:
            seen = {i_ for i_ in seen if 0 <= i_ < sizes[i]}
    return seen


layer_strategy = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2))


@settings(max_examples=60, deadline=None)
@given(st.lists(layer_strategy, min_size=1, max_size=5), st.integers(0, 6))
def test_arithmetic_matches_brute_force(geometries, unit):
    rf = receptive_fields([conv(k, s, p, d) for k, s, p, d in geometries])[-1]
    seen = seen_input_pixels(geometries, unit)
    top, bottom = min(seen), max(seen) + 1
    assert rf.first[0] + unit * rf.jump[0] == top and rf.first[1] + unit * rf.jump[1] == top
    assert rf.size == (bottom - top, bottom - top)

    image = 40
    if bottom <= 0 or top >= image:
        with pytest.raises(ValueError, match="outside"):
            patch_for_unit(rf, unit, unit, image)
        return
    x1, y1, x2, y2 = patch_for_unit(rf, unit, unit, image)
    assert (y1, y2) == (x1, x2) == (max(top, 0), min(bottom, image))
    # On a real 40-pixel image, the pixels that actually feed the unit lie inside the box
    # (fewer of them when a layer's output size was rounded down or the field hits padding;
    # none at all for a unit that only sees an intermediate layer's padding).
    sizes = [image]
    for k, s, p, d in geometries:
        sizes.append((sizes[-1] + 2 * p - d * (k - 1) - 1) // s + 1)
    if min(sizes) > 0 and unit < sizes[-1]:
        real = seen_input_pixels(geometries, unit, sizes)
        assert all(y1 <= i < y2 for i in real)
