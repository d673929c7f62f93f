"""Fast style transfer: the transform network, batch vs instance norm, conditional instance norm
and style interpolation, and the training loop."""
import numpy as np
import pytest

from minidl import Tensor, nn
from minidl import functional as F
from minidl.models import TransformNet
from minidl.vis import stylize, train_fast_style
from minidl.vis.fast_style import style_weights

_NEEDED = ("Conv2d", "InstanceNorm2d", "BatchNorm2d", "ConditionalInstanceNorm2d", "Upsample")
if not all(hasattr(nn, name) for name in _NEEDED):      # the conv/norm layers land in a parallel change
    pytest.skip(f"minidl.nn lacks some of {_NEEDED}", allow_module_level=True)


class TinyLossNet(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.w1 = nn.Parameter(rng.standard_normal((6, 3, 3, 3)).astype(np.float32) * 0.4)
        self.relu1 = nn.ReLU()

    def forward(self, x):
        return self.relu1(F.conv2d(x - 0.5, self.w1, None, 1, 1))


def tiny_net(norm, num_styles=1, seed=0):
    return TransformNet(channels=(4, 6, 8), num_residual=1, norm=norm, num_styles=num_styles,
                        rng=np.random.default_rng(seed))


def _distinct_style_params(net, rng):
    """Give every style its own scale/shift (fresh networks start with identical ones)."""
    for name, p in net.named_parameters():
        if ".norm." in name and p.ndim == 2:                     # (num_styles, C) tables
            p.data = (1 + 0.5 * rng.standard_normal(p.shape)).astype(p.dtype)


def test_style_interpolation_endpoints_equal_the_single_styles():
    rng = np.random.default_rng(0)
    net = tiny_net("conditional", num_styles=3)
    _distinct_style_params(net, rng)
    x = rng.random((2, 3, 8, 8)).astype(np.float32)
    one_hot_0 = stylize(net, x, style=[1.0, 0.0, 0.0])
    np.testing.assert_array_equal(one_hot_0, stylize(net, x, style=0))
    assert not np.allclose(one_hot_0, stylize(net, x, style=1), atol=1e-4)     # styles differ
    mixed = stylize(net, x, style=[0.5, 0.5, 0.0])
    assert not np.allclose(mixed, one_hot_0, atol=1e-4) and not np.allclose(mixed, stylize(net, x, style=1), atol=1e-4)


def test_conditional_instance_norm_mixes_scale_and_shift_linearly():
    rng = np.random.default_rng(1)
    net = tiny_net("conditional", num_styles=2)
    _distinct_style_params(net, rng)
    norm = net.encoder[0].norm
    x = Tensor(rng.standard_normal((2, 4, 5, 5)).astype(np.float32))
    w = Tensor(np.array([[1.0, 0.0], [0.3, 0.7]], np.float32))
    out = norm(x, w).data
    ref0 = norm(x, Tensor(np.array([[1.0, 0.0]] * 2, np.float32))).data
    ref1 = norm(x, Tensor(np.array([[0.0, 1.0]] * 2, np.float32))).data
    np.testing.assert_allclose(out[0], ref0[0], rtol=1e-6)
    # the normalized map is shared, scale and shift are affine in the weights
    np.testing.assert_allclose(out[1], 0.3 * ref0[1] + 0.7 * ref1[1], rtol=1e-4, atol=1e-5)


def test_instance_norm_net_treats_images_independently_batch_norm_does_not():
    rng = np.random.default_rng(2)
    x = rng.random((3, 3, 8, 8)).astype(np.float32)
    inst = tiny_net("instance")
    inst.train()
    np.testing.assert_allclose(inst(Tensor(x)).data[:1], inst(Tensor(x[:1])).data, rtol=1e-5, atol=1e-6)
    batch = tiny_net("batch")
    batch.train()                              # training mode: statistics of the batch
    assert not np.allclose(batch(Tensor(x)).data[:1], batch(Tensor(x[:1] * 0.5 + 0.2)).data, atol=1e-4)
    assert not np.allclose(batch(Tensor(x)).data[:1], batch(Tensor(x[:2])).data[:1], atol=1e-5)


def test_transform_net_checks():
    with pytest.raises(ValueError, match="norm"):
        TransformNet(norm="layer")
    net = tiny_net("instance")
    with pytest.raises(ValueError, match="divisible by 4"):
        net(Tensor(np.zeros((1, 3, 6, 8), np.float32)))
    with pytest.raises(TypeError, match="style_weights"):
        tiny_net("conditional", 2)(Tensor(np.zeros((1, 3, 8, 8), np.float32)))
    with pytest.raises(ValueError, match="style"):
        style_weights(2, 5, 1)
    assert net(Tensor(np.zeros((1, 3, 8, 12), np.float32))).shape == (1, 3, 8, 12)


@pytest.mark.parametrize("norm", ["instance", "conditional"])
def test_train_fast_style_lowers_the_loss(norm):
    rng = np.random.default_rng(3)
    loss_net = TinyLossNet(rng)
    contents = rng.random((2, 3, 8, 8)).astype(np.float32)
    stripes = (np.arange(8) % 2).astype(np.float32)
    styles = [np.array([1.0, 0.2, 0.2], np.float32)[:, None, None] * stripes * np.ones((3, 8, 8), np.float32),
              np.array([0.1, 0.3, 1.0], np.float32)[:, None, None] * stripes[:, None] * np.ones((3, 8, 8), np.float32)]
    num_styles = 2 if norm == "conditional" else 1
    net = tiny_net(norm, num_styles)
    hist = train_fast_style(net, loss_net, contents, styles[:num_styles] if num_styles > 1 else styles[0],
                            "relu1", ["relu1"], content_weight=1.0, style_layer_weights=[10.0], epochs=30,
                            batch_size=2, lr=1e-2, rng=0, progress_bar=False)
    losses = np.array(hist["loss"])
    assert len(losses) == 30 and hist["images_seen"] == 60
    # same batch every step (2 images, batch 2): the loss of each style goes down
    for s in range(num_styles):
        assert losses[s::num_styles][-3:].mean() < 0.8 * losses[s]
    assert loss_net.w1.grad is None                     # the loss network is fixed
    with pytest.raises(ValueError, match="style"):
        train_fast_style(net, loss_net, contents, [styles[0]] * 3, "relu1", ["relu1"], progress_bar=False)
