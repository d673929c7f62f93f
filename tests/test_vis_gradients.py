"""Lecture-12 gradient techniques: each test checks the technique's defining property on a tiny model."""
import numpy as np
import pytest

from minidl import Tensor, nn
from minidl import functional as F
from minidl.gradcheck import numerical_grad
from minidl.vis import (class_visualization, deepdream, fooling_image, guided_backprop, input_gradient,
                        randomize_weights, saliency_map, spearman_rank_correlation, unit_objective)


def mlp(rng, dtype=np.float32, sizes=(3 * 6 * 6, 24, 16, 5)):
    layers = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, rng=rng, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class FunctionalReLUNet(nn.Module):
    """The same computation as ``mlp`` but calling ``F.relu`` (inplace=True) instead of nn.ReLU."""

    def __init__(self, seq):
        super().__init__()
        self.l1, self.l2, self.l3 = seq[1], seq[3], seq[5]

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        x = F.relu(self.l1(x), inplace=True)
        x = F.relu(self.l2(x))
        return self.l3(x)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_saliency_is_max_over_channels_of_abs_numerical_gradient(rng):
    model = mlp(rng, np.float64)
    images = rng.standard_normal((2, 3, 6, 6))
    targets = np.array([1, 4])
    maps = saliency_map(model, images, targets)
    assert maps.shape == (2, 6, 6)
    for n in range(2):
        x = images[n:n + 1].copy()
        num = numerical_grad(lambda a: model(Tensor(a)).data[0, targets[n]], x)
        np.testing.assert_allclose(maps[n], np.abs(num[0]).max(axis=0), rtol=1e-6, atol=1e-9)
    # one image in, one map out
    assert saliency_map(model, images[0], 1).shape == (6, 6)


def _guided_reference(model, image, target):
    """Guided backprop written out by hand for Flatten-Linear-ReLU-Linear-ReLU-Linear."""
    w1, b1 = model[1].weight.data, model[1].bias.data
    w2, b2 = model[3].weight.data, model[3].bias.data
    w3 = model[5].weight.data
    h1 = np.maximum(image.reshape(-1) @ w1.T + b1, 0)
    h2 = np.maximum(h1 @ w2.T + b2, 0)
    g = w3[target]
    g = g * (h2 > 0) * (g > 0)
    g = g @ w2
    g = g * (h1 > 0) * (g > 0)
    return (g @ w1).reshape(image.shape)


def test_guided_backprop_matches_hand_rule_and_passes_only_positive_gradients(rng):
    model = mlp(rng, np.float64)
    images = rng.standard_normal((3, 3, 6, 6))
    got = guided_backprop(model, images, 2)
    for n in range(3):
        np.testing.assert_allclose(got[n], _guided_reference(model, images[n], 2), rtol=1e-9, atol=1e-12)
    # The gradient leaving every ReLU (w.r.t. its input) is >= 0 under the guided rule, and is
    # not under plain backprop: capture the ReLU inputs with hooks and keep their gradients.
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].retain_grad()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    guided_backprop(model, images, 2)
    assert len(seen) == 2 and all((t.grad.data >= 0).all() for t in seen)
    seen.clear()
    input_gradient(model, images, 2)
    assert any((t.grad.data < 0).any() for t in seen)
    for h in hooks:
        h.remove()
    # it differs from the plain gradient
    assert not np.allclose(got, input_gradient(model, images, 2))


def test_guided_backprop_same_for_nn_relu_and_functional_relu(rng):
    model = mlp(rng, np.float64)
    functional = FunctionalReLUNet(model)
    images = rng.standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(guided_backprop(model, images, [0, 3]),
                               guided_backprop(functional, images, [0, 3]), rtol=1e-12)
    # the override is gone after the call: plain gradients are plain again
    np.testing.assert_allclose(input_gradient(functional, images, [0, 3]),
                               input_gradient(model, images, [0, 3]), rtol=1e-12)


def test_unit_objective_and_weights_untouched(rng):
    model = mlp(rng, np.float64)
    images = rng.standard_normal((1, 3, 6, 6))
    g = input_gradient(model, images, objective=unit_objective("2", 5))
    w1 = model[1].weight.data
    h1 = images.reshape(-1) @ w1.T + model[1].bias.data
    np.testing.assert_allclose(g.reshape(-1), w1[5] * (h1[5] > 0), rtol=1e-12)
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_input_checks(rng):
    model = mlp(rng)
    with pytest.raises(ValueError, match="images"):
        saliency_map(model, np.zeros((6, 6), np.float32), 0)
    with pytest.raises(ValueError, match="targets"):
        saliency_map(model, np.zeros((2, 3, 6, 6), np.float32), [0, 1, 2])
    with pytest.raises(ValueError, match="targets must lie"):
        saliency_map(model, np.zeros((1, 3, 6, 6), np.float32), 7)
    with pytest.raises(TypeError, match="exactly one"):
        input_gradient(model, np.zeros((1, 3, 6, 6), np.float32))


def test_fooling_image_reaches_target_with_bounded_perturbation(rng):
    model = mlp(rng)
    image = rng.random((3, 6, 6)).astype(np.float32)
    scores = model(Tensor(image[None])).data[0]
    target = int(np.argsort(scores)[-3])          # the third most likely class
    lr = 0.05
    result = fooling_image(model, image, target, lr=lr, max_steps=500)
    assert result.success
    assert int(model(Tensor(result.image[None])).data.argmax()) == target
    # each step moves the image by exactly lr (L2), so the perturbation is at most steps * lr
    assert 0 < result.l2 <= result.steps * lr * (1 + 1e-4)
    assert result.linf == pytest.approx(float(np.abs(result.perturbation).max()))
    np.testing.assert_allclose(result.image - image, result.perturbation, atol=1e-6)
    assert result.relative_l2 == pytest.approx(result.l2 / np.linalg.norm(image), rel=1e-5)


def test_fooling_image_already_target_takes_no_step(rng):
    model = mlp(rng)
    image = rng.random((3, 6, 6)).astype(np.float32)
    predicted = int(model(Tensor(image[None])).data.argmax())
    result = fooling_image(model, image, predicted)
    assert result.success and result.steps == 0 and result.l2 == 0


def test_class_visualization_increases_regularized_score(rng):
    model = mlp(rng)
    result = class_visualization(model, 3, (3, 6, 6), num_steps=40, lr=0.2, l2_reg=1e-3, blur_every=10,
                                 blur_sigma=0.5, max_jitter=0, rng=1, progress_bar=False)
    assert result.image.shape == (3, 6, 6)
    assert result.objective[-1] > result.objective[0] + 0.5
    # the objective is the score minus the L2 penalty
    from minidl.vis.class_visualization import regularized_class_score
    obj, score, _ = regularized_class_score(model, result.image[None], 3, 1e-3)
    assert obj == pytest.approx(score - 1e-3 * float((result.image ** 2).sum()), rel=1e-5)
    assert obj > result.objective[0] + 0.5


def test_class_visualization_is_reproducible_with_rng(rng):
    model = mlp(rng)
    kw = dict(num_steps=5, max_jitter=1, clip_small_norm_percentile=10,
              clip_small_contribution_percentile=10, progress_bar=False)
    a = class_visualization(model, 0, (3, 6, 6), rng=3, **kw).image
    b = class_visualization(model, 0, (3, 6, 6), rng=3, **kw).image
    np.testing.assert_array_equal(a, b)
    assert (a == 0).any()                      # the clipping zeroed the weakest pixels


def test_deepdream_increases_layer_energy(rng):
    model = mlp(rng)
    image = rng.random((3, 6, 6)).astype(np.float32)
    result = deepdream(model, image, "2", num_octaves=1, steps_per_octave=15, lr=0.02, max_jitter=0,
                       rng=0, progress_bar=False)
    assert result.objective[-1] > 1.2 * result.objective[0]
    # "gradient = activation" is gradient ascent on 0.5 * ||a||^2: check one step's direction
    from minidl.vis.deepdream import dream_step
    x = image[None].astype(np.float64)
    model64 = model.double()
    g = input_gradient(model64, x, objective=lambda m, inp: 0.5 * (m[:3](inp) ** 2).sum(axis=1))
    stepped, _ = dream_step(model64, x, "2", lr=1.0)
    np.testing.assert_allclose(stepped - x, g / np.abs(g).mean(), rtol=1e-9)


def test_spearman_rank_correlation():
    a = np.array([1.0, 5.0, 2.0, 9.0])
    assert spearman_rank_correlation(a, a ** 3) == pytest.approx(1.0)
    assert spearman_rank_correlation(a, -a) == pytest.approx(-1.0)
    scipy_stats = pytest.importorskip("scipy.stats", reason="scipy gives the reference Spearman rho")
    r = np.random.default_rng(0)
    x, y = r.random(50), r.random(50)
    assert spearman_rank_correlation(x, y) == pytest.approx(scipy_stats.spearmanr(x, y)[0])
    # ties (exact zeros, as in guided-backprop maps) get average ranks, like scipy
    x[:20], y[:20] = 0, 0
    y[30:] = 0
    assert spearman_rank_correlation(x, y) == pytest.approx(scipy_stats.spearmanr(x, y)[0])
    assert spearman_rank_correlation(x, np.zeros(50)) == 0.0


def test_randomize_weights_copies(rng):
    model = mlp(rng)
    before = [p.data.copy() for p in model.parameters()]
    random = randomize_weights(model, rng=1)
    for b, p, q in zip(before, model.parameters(), random.parameters()):
        np.testing.assert_array_equal(b, p.data)          # original untouched
        assert not np.array_equal(p.data, q.data) or p.ndim == 1
    only_top = randomize_weights(model, rng=1, layers=["5"])
    np.testing.assert_array_equal(only_top[1].weight.data, model[1].weight.data)
    assert not np.array_equal(only_top[5].weight.data, model[5].weight.data)


def test_image_operations():
    from minidl.vis._common import gaussian_blur, jitter, resize
    r = np.random.default_rng(0)
    x = r.random((2, 3, 9, 11))
    np.testing.assert_allclose(gaussian_blur(np.full((1, 1, 5, 6), 0.3), 1.0), 0.3, rtol=1e-12)
    blurred = gaussian_blur(x, 1.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    assert abs(blurred.mean() - x.mean()) < 0.02
    np.testing.assert_array_equal(jitter(jitter(x, 2, -3), -2, 3), x)
    np.testing.assert_allclose(resize(x, (9, 11)), x, rtol=1e-12)
    up = resize(x, (18, 22))
    np.testing.assert_allclose(resize(np.full((1, 1, 4, 4), 0.7), (7, 3)), 0.7)
    torch = pytest.importorskip("torch", reason="PyTorch's bilinear interpolate is the reference for resize")
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=(18, 22), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(up, ref.numpy(), rtol=1e-10, atol=1e-12)


def test_deepdream_with_octaves_on_a_conv_model(rng):
    w = rng.standard_normal((6, 3, 3, 3)) * 0.3

    class Trunk(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(w)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(F.conv2d(x, self.w, None, 1, 1))

    image = rng.random((3, 20, 20))
    result = deepdream(Trunk(), image, "act", num_octaves=3, octave_scale=1.5, steps_per_octave=4, lr=0.02,
                       max_jitter=2, rng=0, progress_bar=False)
    assert result.image.shape == (3, 20, 20) and len(result.objective) == 12
    assert result.objective[-1] > result.objective[-4]       # the last octave (full size) still climbs


def test_float64_images_are_cast_to_the_models_dtype(rng):
    """A float64 photo (what skimage and NumPy give) works with a float32 network: the techniques
    cast it to the parameters' dtype instead of failing inside the first layer."""
    conv_net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 6 * 6, 5, rng=rng))
    image = rng.random((3, 6, 6))                                   # float64
    sal = saliency_map(conv_net, image, 2)
    assert sal.shape == (6, 6) and sal.dtype == np.float32 and np.isfinite(sal).all()
    guided = guided_backprop(conv_net, image, 2)
    assert guided.dtype == np.float32
    fooled = fooling_image(conv_net, image, 1, max_steps=5)
    assert fooled.image.dtype == np.float32 and fooled.image.shape == image.shape
