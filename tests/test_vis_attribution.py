"""Grad-CAM, guided Grad-CAM, integrated gradients, SmoothGrad and the cascading sanity check: each
test checks a defining property (completeness, the CAM identity, ...) on a tiny float64 model."""
import numpy as np
import pytest

from minidl import Tensor, nn
from minidl.vis import (attribution_sanity_check, completeness_gap, grad_cam, guided_backprop,
                        guided_grad_cam, input_gradient, integrated_gradients, plot_attribution_sanity,
                        smoothgrad, spearman_rank_correlation)
from minidl.vis._common import resize


def mlp(rng, act=nn.ReLU, sizes=(3 * 6 * 6, 24, 16, 5)):
    layers = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, rng=rng, dtype=np.float64))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean(axis=(2, 3))


def cam_net(rng, pool=False):
    """conv → ReLU [→ maxpool] → global average pool → linear: Zhou et al.'s CAM architecture."""
    layers = [nn.Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, GlobalAvgPool(), nn.Linear(4, 5, rng=rng, dtype=np.float64))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def score(model, x, c):
    return model(Tensor(x)).data[:, c]


# ---- integrated gradients ------------------------------------------------------------------------

def test_integrated_gradients_of_linear_model_is_input_difference_times_weight(rng):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 5, rng=rng, dtype=np.float64))
    images = rng.standard_normal((2, 3, 6, 6))
    baseline = rng.standard_normal((3, 6, 6))
    w = model[1].weight.data
    for rule in ("midpoint", "trapezoid"):
        got = integrated_gradients(model, images, [1, 3], baseline=baseline, steps=1, rule=rule)
        np.testing.assert_allclose(got[0], (images[0] - baseline) * w[1].reshape(3, 6, 6), rtol=1e-12)
        np.testing.assert_allclose(got[1], (images[1] - baseline) * w[3].reshape(3, 6, 6), rtol=1e-12)
    # default baseline = black image: x ⊙ w
    np.testing.assert_allclose(integrated_gradients(model, images[0], 2), images[0] * w[2].reshape(3, 6, 6),
                               rtol=1e-12)


def test_integrated_gradients_completeness_smooth_net(rng):
    model = mlp(rng, act=nn.Tanh)
    images = 3 * rng.standard_normal((3, 3, 6, 6))          # large enough to bend the tanh
    targets = [0, 2, 4]
    gaps = {}
    for steps in (4, 16, 64):
        attr = integrated_gradients(model, images, targets, steps=steps)
        gap, delta = completeness_gap(model, images, targets, attr)
        np.testing.assert_allclose(delta, score(model, images, targets)[[0, 1, 2], [0, 1, 2]]
                                   - score(model, np.zeros_like(images), targets)[[0, 1, 2], [0, 1, 2]])
        gaps[steps] = np.abs(gap / delta).max()
    assert gaps[64] < 0.01
    # a second-order rule: 4× the steps, ~16× smaller error (ask for at least 8×)
    assert gaps[16] < gaps[4] / 8 and gaps[64] < gaps[16] / 8


def test_integrated_gradients_completeness_relu_net(rng):
    # A ReLU net's gradient is piecewise constant along the path: the quadrature error shrinks,
    # but more slowly, so more steps and a looser bound.
    model = mlp(rng)
    images = 3 * rng.standard_normal((3, 3, 6, 6))
    attr = integrated_gradients(model, images, [1, 1, 3], steps=256)
    gap, delta = completeness_gap(model, images, [1, 1, 3], attr)
    assert np.abs(gap / delta).max() < 0.03                   # measured: 1.2 %
    coarse = integrated_gradients(model, images, [1, 1, 3], steps=16)
    assert np.abs(gap).sum() < 0.2 * np.abs(completeness_gap(model, images, [1, 1, 3], coarse)[0]).sum()


def test_integrated_gradients_batching_does_not_change_result(rng):
    model = mlp(rng)
    images = rng.standard_normal((3, 3, 6, 6))
    a = integrated_gradients(model, images, [0, 1, 2], steps=7, batch_size=5)     # paths span batches
    b = integrated_gradients(model, images, [0, 1, 2], steps=7, batch_size=64)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    # and each image on its own gives the same as in the batch
    np.testing.assert_allclose(integrated_gradients(model, images[1], 1, steps=7), a[1], rtol=1e-12)


# ---- Grad-CAM ------------------------------------------------------------------------------------

def _cam(model, images, c):
    """Zhou et al.'s class activation map ReLU(Σ_k w_{c,k} A_k) at the ReLU, by hand."""
    conv = model[0]
    a = np.maximum(conv(Tensor(images)).data, 0)
    if isinstance(model[2], nn.MaxPool2d):
        a = model[2](Tensor(a)).data
    w = model[-1].weight.data[c]                                  # (K,)
    return np.maximum(np.einsum("k,nkhw->nhw", w, a), 0)


def test_grad_cam_equals_class_activation_map_over_hw(rng):
    model = cam_net(rng)
    images = rng.standard_normal((2, 3, 6, 6))
    for c in range(5):
        got = grad_cam(model, images, c, "1")
        assert got.shape == (2, 6, 6) and (got >= 0).all()
        np.testing.assert_allclose(got, _cam(model, images, c) / 36, rtol=1e-10, atol=1e-14)
    assert (grad_cam(model, images, 0, "1") > 0).any()
    # one image in, one map out
    assert grad_cam(model, images[0], 3, "1").shape == (6, 6)


def test_grad_cam_on_coarser_layer_is_upsampled_cam(rng):
    model = cam_net(rng, pool=True)                               # the layer "2" is (N, 4, 3, 3)
    images = rng.standard_normal((2, 3, 6, 6))
    got = grad_cam(model, images, [1, 4], "2")
    want = np.stack([_cam(model, images[i:i + 1], c)[0] / 9 for i, c in enumerate([1, 4])])
    np.testing.assert_allclose(got, resize(want[:, None], (6, 6))[:, 0], rtol=1e-10, atol=1e-14)


def test_grad_cam_layer_validation(rng):
    model = cam_net(rng)
    images = rng.standard_normal((1, 3, 6, 6))
    with pytest.raises(ValueError, match=r"layer must be the name.*valid names: \['0', '1', '2', '3'\]"):
        grad_cam(model, images, 0, "conv")
    with pytest.raises(ValueError, match="layer must produce a feature map"):
        grad_cam(model, images, 0, "3")
    with pytest.raises(ValueError, match="layer"):
        guided_grad_cam(model, images, 0, None)


def test_guided_grad_cam_is_guided_backprop_times_cam(rng):
    model = cam_net(rng, pool=True)
    images = rng.standard_normal((3, 3, 6, 6))
    got = guided_grad_cam(model, images, 2, "1")
    cam = grad_cam(model, images, 2, "1")
    assert got.shape == (3, 3, 6, 6)
    np.testing.assert_allclose(got, guided_backprop(model, images, 2) * cam[:, None], rtol=1e-12)
    zero = cam == 0
    assert zero.any() and (got.transpose(1, 0, 2, 3)[:, zero] == 0).all()


# ---- SmoothGrad ----------------------------------------------------------------------------------

def test_smoothgrad_without_noise_is_input_gradient(rng):
    model = mlp(rng)
    images = rng.standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(smoothgrad(model, images, [1, 2], samples=3, noise_level=0.0, rng=0),
                               input_gradient(model, images, [1, 2]), rtol=1e-12)


def test_smoothgrad_reproducible_and_averaging_reduces_variance(rng):
    model = mlp(rng)
    images = rng.standard_normal((2, 3, 6, 6))
    a = smoothgrad(model, images, 1, samples=10, rng=7)
    np.testing.assert_array_equal(a, smoothgrad(model, images, 1, samples=10, rng=7))
    # the noise does not depend on how the samples are batched
    np.testing.assert_allclose(a, smoothgrad(model, images, 1, samples=10, rng=7, batch_size=4), rtol=1e-12)
    assert not np.allclose(a, smoothgrad(model, images, 1, samples=10, rng=8))
    assert not np.allclose(a, input_gradient(model, images, 1))
    reference = smoothgrad(model, images, 1, samples=400, rng=1)
    err = {n: np.linalg.norm(smoothgrad(model, images, 1, samples=n, rng=2) - reference) for n in (1, 50)}
    assert err[50] < 0.5 * err[1]


class SumOfSquares(nn.Module):
    """One class score, ``Σ x²``: its gradient ``2x`` shows the noise SmoothGrad added."""

    def forward(self, x):
        return (x * x).sum(axis=(1, 2, 3)).reshape(x.shape[0], 1)


def test_smoothgrad_noise_scale_is_fraction_of_each_images_range(rng):
    images = rng.random((2, 3, 16, 16))
    images[1] = 4 * images[1] - 1                               # value range ~4 instead of ~1
    value_range = images.reshape(2, -1).max(axis=1) - images.reshape(2, -1).min(axis=1)
    grad = smoothgrad(SumOfSquares(), images, 0, samples=1, noise_level=0.2, rng=0)
    noise = (grad - 2 * images) / 2                               # with one sample: the noise itself
    np.testing.assert_allclose(noise.reshape(2, -1).std(axis=1), 0.2 * value_range, rtol=0.1)


# ---- bad inputs ----------------------------------------------------------------------------------

def test_bad_arguments_name_the_argument(rng):
    model = mlp(rng)
    images = rng.standard_normal((2, 3, 6, 6))
    with pytest.raises(ValueError, match="steps"):
        integrated_gradients(model, images, 0, steps=0)
    with pytest.raises(ValueError, match="rule"):
        integrated_gradients(model, images, 0, rule="simpson")
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(model, images, 0, baseline=np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match="targets"):
        integrated_gradients(model, images, [0, 1, 2])
    with pytest.raises(ValueError, match="samples"):
        smoothgrad(model, images, 0, samples=0)
    with pytest.raises(ValueError, match="noise_level"):
        smoothgrad(model, images, 0, noise_level=-0.1)
    with pytest.raises(ValueError, match="targets"):
        smoothgrad(model, images, [0])
    with pytest.raises(ValueError, match="attributions"):
        completeness_gap(model, images, 0, np.zeros((2, 3, 6, 5)))
    with pytest.raises(ValueError, match="images"):
        grad_cam(cam_net(rng), np.zeros((6, 6)), 0, "1")


# ---- the cascading randomization check ------------------------------------------------------------

def test_attribution_sanity_check_on_shapes_classifier():
    from matplotlib.figure import Figure

    from minidl.data import ShapesDataset
    from minidl.models.classifier import load_shapes_classifier
    model = load_shapes_classifier()
    data = ShapesDataset(2, size=32, mode="single", seed=3, target_keys="labels")
    images, labels = zip(*(data[i] for i in range(2)))
    images, labels = np.stack(images), np.concatenate(labels)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    result = attribution_sanity_check(model, images, labels, layer="features.10", steps=4, samples=2, rng=0)
    assert result.steps == ["trained", "classifier.3", "classifier.1", "features.8 + features.9",
                            "features.4 + features.5", "features.0 + features.1"]
    assert set(result.correlation) == {"saliency", "guided_backprop", "grad_cam", "guided_grad_cam",
                                       "integrated_gradients", "smoothgrad"}
    for name, rho in result.correlation.items():
        assert rho.shape == (6, 2) and result.maps[name].shape == (6, 2, 32, 32)
        assert np.all((rho >= -1 - 1e-12) & (rho <= 1 + 1e-12))
        np.testing.assert_allclose(rho[0], 1.0)                  # the trained map vs itself
        np.testing.assert_allclose(result.mean_correlation[name], rho.mean(axis=1))
        # the stored correlation is the one of the stored maps
        assert rho[-1, 1] == pytest.approx(spearman_rank_correlation(result.maps[name][0, 1],
                                                                     result.maps[name][-1, 1]))
    # a fully random model gives maps unlike the trained one's, for every method
    assert all(result.mean_correlation[k][-1] < 0.9 for k in result.mean_correlation)
    # the trained model was not touched
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    fig = plot_attribution_sanity(result)
    assert isinstance(fig, Figure) and len(fig.axes) == 6 * 7 + 1
    with pytest.raises(ValueError, match="layer"):
        attribution_sanity_check(model, images, labels, methods=["grad_cam"])
    with pytest.raises(ValueError, match="methods"):
        attribution_sanity_check(model, images, labels, methods=["lime"])
    with pytest.raises(ValueError, match="layers_order"):
        attribution_sanity_check(model, images, labels, methods=["saliency"], layers_order=["fc"])
    # your own method and cascade
    own = attribution_sanity_check(model, images, labels, methods={"grad": lambda m, x, t: input_gradient(m, x, t)},
                                   layers_order=["classifier.3", ["features.8", "features.9"]])
    assert own.steps == ["trained", "classifier.3", "features.8 + features.9"]
    assert own.correlation["grad"].shape == (3, 2)
