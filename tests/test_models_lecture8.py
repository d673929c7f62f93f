"""Lecture-8 models: output shapes, bad inputs, tiny overfits, soft-argmax, weights round trip."""
import numpy as np
import pytest

from minidl import functional as F
from minidl import optim
from minidl.data import ShapesDataset
from minidl.metrics import mean_iou
from minidl.models.localization import LocalizationLoss, Localizer, localize
from minidl.models.pose import KeypointLoss, PoseRegressor, soft_argmax
from minidl import nn
from minidl.models.blocks import transpose_conv_relu
from minidl.models.segmentation import (FCN, PatchClassifier, extract_patches, remove_class_weights_, segment,
                                        sliding_window_segment)
from minidl.autograd import Tensor


def _scenes(n, size=32, seed=0):
    ds = ShapesDataset(n, size, "scene", seed=seed, max_objects=2)
    items = [ds[i] for i in range(n)]
    return np.stack([a for a, _ in items]), np.stack([t["semantic_mask"] for _, t in items])


def _train(model, loss_fn, steps, lr=1e-2):
    opt = optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


# ---- segmentation ----------------------------------------------------------------------------

@pytest.mark.parametrize("upsampling", ["transpose", "unpool"])
@pytest.mark.parametrize("first_stride", [1, 2])
def test_fcn_output_shape(upsampling, first_stride):
    model = FCN(6, widths=(4, 8, 8), upsampling=upsampling, first_stride=first_stride, rng=0)
    out = model(Tensor(np.random.default_rng(0).random((2, 3, 16, 24), dtype=np.float32)))
    assert out.shape == (2, 6, 16, 24)


def test_fcn_rejects_bad_sizes():
    model = FCN(6, widths=(4, 8, 8), rng=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        model(Tensor(np.zeros((1, 3, 18, 16), np.float32)))
    with pytest.raises(ValueError, match="upsampling"):
        FCN(6, upsampling="bilinear")


@pytest.mark.parametrize("upsampling", ["transpose", "unpool"])
@pytest.mark.parametrize("first_stride", [1, 2])
def test_fcn_overfits_a_few_scenes(upsampling, first_stride):
    images, masks = _scenes(4)
    model = FCN(6, widths=(8, 16, 16), upsampling=upsampling, first_stride=first_stride, rng=0)
    losses = _train(model, lambda: F.cross_entropy(model(Tensor(images)), masks), 60)
    assert losses[-1] < 0.3 * losses[0]
    correct = segment(model, images) == masks
    assert correct.mean() > 0.97
    # 96 % of these pixels are background, so "all background" would pass the line above: the
    # objects' own pixels must get their shape's class too
    assert correct[masks > 0].mean() > 0.6


def test_transpose_conv_relu_doubles_the_size():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 8, 5, 7)).astype(np.float32))
    with_bn, plain = transpose_conv_relu(8, 4, batch_norm=True, rng=0), transpose_conv_relu(8, 4, rng=0)
    assert with_bn(x).shape == plain(x).shape == (2, 4, 10, 14)
    assert with_bn[0].bias is None and isinstance(with_bn[1], nn.BatchNorm2d)
    assert plain[0].bias is not None and len(plain) == 2
    # batch norm in training mode: each channel of the output is a ReLU of zero-mean unit-variance values,
    # so about half the units are active from the first step (none of them is dead at init)
    active = (with_bn(x).numpy() > 0).mean(axis=(0, 2, 3))
    assert np.all((active > 0.3) & (active < 0.7))


def test_remove_class_weights_recovers_the_class_frequencies():
    """Weighted cross-entropy on constant scores converges to softmax ∝ w·p; removing the weights gives p."""
    rng = np.random.default_rng(0)
    p = np.array([0.8, 0.15, 0.05])
    labels = rng.choice(3, size=2000, p=p)
    p = np.bincount(labels, minlength=3) / labels.size           # the sample's own frequencies
    weight = np.array([0.2, 1.0, 2.0], np.float32)
    layer = nn.Linear(1, 3, rng=0)                                  # zero input: the scores are the bias
    inputs = Tensor(np.zeros((labels.size, 1), np.float32))
    _train(layer, lambda: F.cross_entropy(layer(inputs), labels, weight=weight), 400, lr=5e-2)

    def softmax(b):
        e = np.exp(b - b.max())
        return e / e.sum()
    weighted = weight * p / (weight * p).sum()
    np.testing.assert_allclose(softmax(layer.bias.numpy()), weighted, atol=5e-3)
    remove_class_weights_(layer, weight)
    np.testing.assert_allclose(softmax(layer.bias.numpy()), p, atol=5e-3)
    with pytest.raises(ValueError, match="class_weight"):
        remove_class_weights_(layer, [1.0, 2.0])
    with pytest.raises(ValueError, match="class_weight"):
        remove_class_weights_(layer, [1.0, 0.0, 1.0])


def test_extract_patches_centres_and_sliding_window_agree():
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 8, 10), dtype=np.float32)
    patches = extract_patches(images, 5)
    assert patches.shape == (2 * 8 * 10, 3, 5, 5)
    k = 1 * 80 + 3 * 10 + 4                                   # image 1, row 3, column 4
    np.testing.assert_array_equal(patches[k], images[1, :, 1:6, 2:7])
    np.testing.assert_array_equal(patches[0, :, :2, :], 0)   # zero padding at the corner
    model = PatchClassifier(4, patch_size=5, widths=(4, 4), hidden=8, rng=0)
    labels = sliding_window_segment(model, images, batch_size=37)
    assert labels.shape == (2, 8, 10)
    expected = model(Tensor(extract_patches(images, 5, np.array([[1, 3, 4], [0, 7, 9]])))).numpy().argmax(1)
    np.testing.assert_array_equal(labels[[1, 0], [3, 7], [4, 9]], expected)


def test_patch_classifier_needs_odd_patch():
    with pytest.raises(ValueError, match="odd"):
        PatchClassifier(3, patch_size=8)


# ---- classification + localization -------------------------------------------------------------

def _singles(n, mode="single", size=32):
    ds = ShapesDataset(n, size, mode, seed=0)
    items = [ds[i] for i in range(n)]
    return (np.stack([a for a, _ in items]), np.array([t["labels"][0] for _, t in items]),
            np.stack([t["boxes"][0] for _, t in items]), np.stack([t["keypoints"][0] for _, t in items]))


def test_localizer_shapes_and_overfit():
    images, labels, boxes, _ = _singles(8)
    model = Localizer(5, image_size=32, widths=(8, 16, 16), hidden=32, rng=0)
    scores, box = model(Tensor(images))
    assert scores.shape == (8, 5) and box.shape == (8, 4)
    loss_fn = LocalizationLoss(box_weight=5.0)
    losses = _train(model, lambda: loss_fn(model, Tensor(images), (labels, Tensor(boxes))), 60)
    assert losses[-1] < 0.2 * losses[0]
    predicted_labels, predicted_boxes = localize(model, images)
    assert (predicted_labels == labels).mean() == 1.0
    from minidl.metrics import mean_box_iou
    assert mean_box_iou(predicted_boxes, boxes) > 0.6
    with pytest.raises(ValueError, match="box_loss"):
        LocalizationLoss(box_loss="l3")


# ---- pose --------------------------------------------------------------------------------------

def test_soft_argmax_of_a_sharp_peak_is_the_cell_centre():
    maps = np.full((1, 2, 4, 5), -50.0, np.float32)
    maps[0, 0, 2, 3] = 50.0
    maps[0, 1, 0, 0] = 50.0
    out = soft_argmax(Tensor(maps), stride=8).numpy()
    np.testing.assert_allclose(out[0], [[(3 + 0.5) * 8, (2 + 0.5) * 8], [4.0, 4.0]], atol=1e-3)


@pytest.mark.parametrize("head", ["soft_argmax", "fc"])
def test_pose_regressor_shapes_and_overfit(head):
    images, _, _, keypoints = _singles(4, "pose")
    model = PoseRegressor(14, image_size=32, widths=(8, 16, 16), head=head, hidden=32, rng=0)
    assert model(Tensor(images)).shape == (4, 14, 2)
    loss_fn = KeypointLoss(32)
    losses = _train(model, lambda: loss_fn(model(Tensor(images)), Tensor(keypoints)), 60)
    assert losses[-1] < 0.25 * losses[0]


# ---- weights ------------------------------------------------------------------------------------

def test_weights_round_trip_through_npz(tmp_path):
    from minidl.models import pretrained
    images, _ = _scenes(2, size=64)
    for name in ("fcn_shapes", "ssd_shapes"):
        model = pretrained.build(name, rng=1)
        model.eval()
        path = tmp_path / f"{name}.npz"
        model.save(path)
        with np.load(path, allow_pickle=False) as f:
            assert all(f[k].dtype != object for k in f.files)
        again = pretrained.build(name, rng=2).load(path).eval()
        a, b = model(Tensor(images)), again(Tensor(images))
        a, b = (a, b) if isinstance(a, Tensor) else (a[0], b[0])
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="unknown pretrained"):
        pretrained.weights_path("nope")
