"""The committed shapes classifier and the lecture-12 techniques on a *trained* conv net."""
import os

import numpy as np
import pytest

from minidl import Tensor, train
from minidl.data import ShapesDataset
from minidl.models import ShapesClassifier, load_shapes_classifier
from minidl.models.classifier import SHAPES_CLASSIFIER_WEIGHTS
from minidl.vis import fooling_image, model_randomization_check, occlusion_heatmap

pytestmark = pytest.mark.skipif(not os.path.exists(SHAPES_CLASSIFIER_WEIGHTS),
                                reason="run benchmarks/train_vis_classifier.py to make the weights")


@pytest.fixture(scope="module")
def model():
    return load_shapes_classifier()


@pytest.fixture(scope="module")
def data():
    ds = ShapesDataset(60, size=32, mode="single", seed=123)
    images, targets = zip(*(ds[i] for i in range(len(ds))))
    return np.stack(images), np.array([t["labels"][0] for t in targets]), np.stack([t["boxes"][0] for t in targets])


def test_weights_file_is_small_plain_npz_and_model_is_accurate(model, data):
    assert os.path.getsize(SHAPES_CLASSIFIER_WEIGHTS) < 2_000_000
    with np.load(SHAPES_CLASSIFIER_WEIGHTS, allow_pickle=False) as f:
        stored = float(f["meta_test_accuracy"])
        assert set(ShapesClassifier().state_dict()) <= set(f.files)
    images, labels, _ = data
    accuracy = (train.predict(model, images).argmax(1) == labels).mean()
    assert stored > 0.75 and accuracy > 0.7


def test_occlusion_lowers_the_score_most_on_the_object(model, data):
    images, labels, boxes = data
    predicted = train.predict(model, images).argmax(1)
    hits, tried = 0, 0
    for i in np.flatnonzero(predicted == labels)[:10]:
        result = occlusion_heatmap(model, images[i], int(labels[i]), patch_size=8, stride=4, fill_value=0.5)
        ys, xs = result.positions
        iy, ix = np.unravel_index(np.argmin(result.heatmap), result.heatmap.shape)
        cy, cx = ys[iy] + 4, xs[ix] + 4                      # centre of the most harmful occluder
        x1, y1, x2, y2 = boxes[i]
        hits += bool(x1 - 2 <= cx <= x2 + 2 and y1 - 2 <= cy <= y2 + 2)
        tried += 1
    assert tried >= 5 and hits >= 0.8 * tried


def test_fooling_a_trained_model_needs_only_a_small_perturbation(model, data):
    images, labels, _ = data
    scores = train.predict(model, images)
    for i in np.flatnonzero(scores.argmax(1) == labels)[:3]:
        target = int(np.argsort(scores[i])[-2])              # the runner-up class
        result = fooling_image(model, images[i], target, lr=0.1, max_steps=300)
        assert result.success
        assert int(model(Tensor(result.image[None])).data.argmax()) == target
        assert result.relative_l2 < 0.1                      # invisible next to the image


def test_randomization_changes_saliency_more_than_guided_backprop(model, data):
    images, labels, _ = data
    # Adebayo et al.: guided backprop maps stay more similar to themselves when the weights are
    # randomized than plain gradients do. Measured here (16 images, randomization seeds 0-2):
    # Spearman rho 0.19-0.23 for saliency vs 0.26-0.30 for guided backprop -- the direction held
    # for every seed and both trained classifiers we tried, the gap is much smaller than for
    # deep ImageNet nets (this net has 3 conv layers).
    check = model_randomization_check(model, images[:16], labels[:16], rng=0)
    sal, gb = check.mean_similarity["saliency"], check.mean_similarity["guided_backprop"]
    assert gb > sal + 0.03
    assert check.trained["saliency"].shape == (16, 32, 32)
