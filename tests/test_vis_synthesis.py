"""Lecture-12 synthesis by optimization: feature inversion, Gram-matrix textures, style transfer,
fast style transfer with (conditional) instance norm."""
import numpy as np
import pytest

from minidl import Tensor, nn
from minidl import functional as F
from minidl.vis import (content_loss, gram_matrix, invert_features, style_loss, style_targets, style_transfer,
                        synthesize_texture_gram, total_variation)


class TinyConvNet(nn.Module):
    """Two 3×3 conv + ReLU stages (the second with stride 2), named so layers can be picked."""

    def __init__(self, rng, width=8):
        super().__init__()
        self.w1 = nn.Parameter(rng.standard_normal((width, 3, 3, 3)).astype(np.float32) * 0.4)
        self.w2 = nn.Parameter(rng.standard_normal((width, width, 3, 3)).astype(np.float32) * 0.2)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        h = self.relu1(F.conv2d(x - 0.5, self.w1, None, 1, 1))
        return self.relu2(F.conv2d(h, self.w2, None, 2, 1))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_gram_matrix_definition(rng):
    f = rng.standard_normal((2, 4, 3, 5))
    g = gram_matrix(Tensor(f)).data
    for n in range(2):
        flat = f[n].reshape(4, -1)
        np.testing.assert_allclose(g[n], flat @ flat.T / (4 * 15), rtol=1e-12)
    np.testing.assert_allclose(gram_matrix(Tensor(f), normalize=False).data[1], f[1].reshape(4, -1) @ f[1].reshape(4, -1).T)
    with pytest.raises(ValueError, match="features"):
        gram_matrix(Tensor(f[0]))


def test_total_variation_and_losses(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    expected = (np.diff(x, axis=2) ** 2).sum() + (np.diff(x, axis=3) ** 2).sum()
    assert float(total_variation(Tensor(x)).item()) == pytest.approx(expected)
    assert float(total_variation(Tensor(np.ones((1, 3, 4, 4)))).item()) == 0
    y = rng.standard_normal(x.shape)
    assert float(content_loss(Tensor(x), y).item()) == pytest.approx(((x - y) ** 2).mean())
    grams = {"a": gram_matrix(Tensor(y)).data}
    s = style_loss({"a": Tensor(x)}, grams, {"a": 2.0})
    assert float(s.item()) == pytest.approx(2 * ((gram_matrix(Tensor(x)).data - grams["a"]) ** 2).sum())


def test_feature_inversion_reduces_feature_error_tenfold(rng):
    model = TinyConvNet(rng)
    image = rng.random((3, 12, 12)).astype(np.float32)
    result = invert_features(model, image, "relu1", tv_weight=1e-4, num_steps=60, lr=0.05, rng=0,
                             progress_bar=False)
    assert result.image.shape == (3, 12, 12)
    assert result.feature_errors[-1] <= result.feature_errors[0] / 10
    # the weights were not touched and got no gradient
    assert model.w1.grad is None and model.w1.requires_grad


def test_feature_inversion_lbfgs(rng):
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 16, rng=rng), nn.ReLU())
    image = rng.random((3, 4, 4)).astype(np.float32)
    # before the ReLU the problem is convex (no dead units to get stuck on): L-BFGS solves it
    result = invert_features(model, image, "1", tv_weight=0.0, num_steps=30, optimizer="lbfgs",
                             rng=0, progress_bar=False)
    assert result.feature_errors[-1] <= result.feature_errors[0] / 10


def test_gram_texture_synthesis_reduces_style_loss_tenfold(rng):
    model = TinyConvNet(rng)
    yy, xx = np.mgrid[:16, :16]
    texture = np.stack([0.5 + 0.5 * np.sin(xx), 0.5 + 0.5 * np.cos(yy / 1.5), (xx + yy) % 4 / 4.0]).astype(np.float32)
    result = synthesize_texture_gram(model, texture, ["relu1", "relu2"], layer_weights=[1.0, 1.0], size=(12, 20),
                                     num_steps=80, lr=0.05, rng=0, progress_bar=False)
    assert result.image.shape == (3, 12, 20)                 # any output size
    assert result.losses[-1] <= result.losses[0] / 10
    # the reported final loss is the loss of the returned image
    targets = style_targets(model, texture, ["relu1", "relu2"])
    from minidl.nn.inspect import layer_outputs
    final = style_loss(layer_outputs(model, Tensor(result.image[None]), ["relu1", "relu2"]), targets,
                       {"relu1": 1.0, "relu2": 1.0})
    assert float(final.item()) == pytest.approx(result.losses[-1], rel=1e-4)


def test_style_transfer_trades_content_for_style(rng):
    model = TinyConvNet(rng)
    content = rng.random((3, 12, 12)).astype(np.float32)
    style = np.zeros((3, 12, 12), np.float32)
    style[0, ::2] = 1.0                                       # red stripes
    result = style_transfer(model, content, style, "relu1", ["relu1", "relu2"], content_weight=1.0,
                            style_weights=[10.0, 10.0], tv_weight=1e-3, num_steps=40, lr=0.03,
                            progress_bar=False)
    parts = result.parts
    assert parts["content"][0] == pytest.approx(0.0, abs=1e-10)    # starts at the content image
    assert parts["style"][-1] < parts["style"][0] / 2
    assert result.losses[-1] < result.losses[0]
    assert result.image.min() >= 0 and result.image.max() <= 1      # clamped to the image range
    with pytest.raises(ValueError, match="init"):
        style_transfer(model, content, style, "relu1", ["relu1"], init="zeros", num_steps=1, progress_bar=False)
