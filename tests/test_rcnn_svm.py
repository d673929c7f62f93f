"""R-CNN stages 2-4 (minidl/detection/feature_cache.py, rcnn_svm.py): the feature cache on disk, the
hand-written hinge gradient, hard negative mining, the ridge box regressors, the SVM detector.

Real features come from the committed ``rcnn_shapes`` weights on 8 tiny scenes with jittered
ground-truth proposals (no selective search), so the file runs in a few seconds.
"""
import json
import os

import numpy as np
import pytest

from minidl.data import ShapesDataset
from minidl.detection.feature_cache import (MANIFEST, FeatureCacheError, load_feature_cache, region_features,
                                            write_feature_cache)
from minidl.detection.rcnn_svm import (REGRESSION_WEIGHTS, RCNNWithSVMs, fit_ridge, hinge_loss, mine_hard_negatives,
                                       regression_examples, train_box_regressors, train_linear_svm,
                                       train_rcnn_with_svms, train_svm_with_hard_negatives, train_svms)
from minidl.detection.roi_sampling import jitter_proposals
from minidl.gradcheck import numerical_grad
from minidl.models import pretrained
from minidl.ops import box_iou, decode_boxes, encode_boxes


@pytest.fixture(scope="module")
def rcnn():
    return pretrained.load_pretrained("rcnn_shapes")


@pytest.fixture(scope="module")
def scenes():
    ds = ShapesDataset(8, 64, "scene", seed=0)
    items = [ds[i] for i in range(8)]
    images = np.stack([im for im, _ in items])
    targets = [t for _, t in items]
    rng = np.random.default_rng(0)
    proposals = [jitter_proposals(t["boxes"], (64, 64), 40, rng, random_fraction=0.3) for t in targets]
    return images, targets, proposals


@pytest.fixture(scope="module")
def cache(rcnn, scenes, tmp_path_factory):
    images, targets, proposals = scenes
    return write_feature_cache(rcnn, images, targets, proposals, str(tmp_path_factory.mktemp("cache")),
                               batch_size=64, progress=False)


# ---- hinge loss and the SVM ----------------------------------------------------------------------

def test_hinge_loss_value_and_gradient_match_central_differences():
    # Catches a wrong hand-written gradient (sign, missing 1/N, the reg term, the active mask) and
    # a loss that regularizes the bias or sums instead of averaging the hinge.
    rng = np.random.default_rng(0)
    X, w, b = rng.standard_normal((30, 7)), rng.standard_normal(7), 0.3
    y = np.where(rng.random(30) < 0.5, -1.0, 1.0)
    reg = 0.7
    assert np.abs(1 - y * (X @ w + b)).min() > 1e-3          # no sample on the kink
    loss, dw, db = hinge_loss(w, b, X, y, reg)
    expected = np.maximum(0, 1 - y * (X @ w + b)).mean() + 0.5 * reg * (w @ w)
    assert loss == pytest.approx(expected, rel=1e-12)
    num_w = numerical_grad(lambda v: hinge_loss(v, b, X, y, reg)[0], w.copy())
    num_b = numerical_grad(lambda v: hinge_loss(w, float(v[0]), X, y, reg)[0], np.array([b]))
    np.testing.assert_allclose(dw, num_w, rtol=1e-6, atol=1e-8)
    assert db == pytest.approx(num_b[0], rel=1e-6, abs=1e-8)


def test_svm_separates_a_separable_toy_set_with_margin():
    # Catches an update of the wrong sign or a broken training loop: the classes are separable
    # with a wide gap, so the trained SVM must classify all of them with margin close to 1.
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal([0.5, 0.5], 0.1, (40, 2)), rng.normal([-0.5, -0.5], 0.1, (60, 2))])
    y = np.r_[np.ones(40), -np.ones(60)]
    w, b, losses = train_linear_svm(X, y, reg=1e-4, steps=500, lr=1.0)
    assert np.all(np.sign(X @ w + b) == y)
    assert (y * (X @ w + b)).min() > 0.8
    assert losses[-1] < 0.1 * losses[0]
    # deterministic given the seed (also with minibatches)
    w1, b1, _ = train_linear_svm(X, y, steps=50, batch_size=16, rng=3)
    w2, b2, _ = train_linear_svm(X, y, steps=50, batch_size=16, rng=3)
    np.testing.assert_array_equal(w1, w2)
    assert b1 == b2


def test_mining_adds_exactly_the_margin_violators():
    # Catches mining with the wrong threshold (score > 0 instead of > -1, or >= vs >), the wrong
    # side, or re-adding negatives already in the training set.
    X = np.array([[-3.0], [-1.5], [-1.0], [-0.5], [0.0], [2.0], [-0.2]])
    w, b = np.array([1.0]), 0.0                               # scores = X[:, 0]
    candidates = np.array([0, 1, 2, 3, 4, 5, 6])
    active = np.array([4])
    np.testing.assert_array_equal(mine_hard_negatives(w, b, X, candidates, active), [3, 5, 6])


def test_hard_negative_rounds_add_the_hard_ones_and_end_clean():
    # Many easy negatives far away and 20 hard ones next to the positives: the random start
    # (10 negatives) almost surely misses the hard ones, mining must add them, and at the end no
    # candidate negative is left inside the margin. Catches mining that never runs, that adds
    # the easy negatives, or an SVM not retrained after adding them.
    rng = np.random.default_rng(2)
    positives = rng.normal([1.0, 0.0], 0.05, (20, 2))
    hard = rng.normal([0.6, 0.0], 0.05, (20, 2))
    easy = rng.normal([-1.0, 0.0], 0.05, (400, 2))
    X = np.concatenate([positives, hard, easy])
    pos, neg = np.arange(20), np.arange(20, 440)
    w, b, rounds = train_svm_with_hard_negatives(X, pos, neg, reg=1e-4, initial_negatives=10, max_rounds=10,
                                                 steps=400, lr=1.0, rng=0)
    assert rounds[0]["negatives"] == 10 and rounds[0]["added"] > 0
    for r, nxt in zip(rounds, rounds[1:]):
        assert nxt["negatives"] == r["negatives"] + r["added"]     # the log counts what was added
    assert rounds[-1]["added"] == 0
    assert np.all(X[neg] @ w + b <= -1 + 1e-9)                # no violator left
    assert np.all(X[20:40] @ w + b < 0) and np.all(X[pos] @ w + b > 0)


def test_svms_on_cached_features_classify_their_training_regions(cache):
    # The SVMs train on standardized fc7 and return weights for raw fc7. Catches the
    # standardization not folded back (raw-feature scores shifted) and positives/negatives chosen
    # by the wrong rule: on raw cached fc7 the ground-truth boxes of class c must score > 0 and the
    # proposals below 0.3 IoU with every class-c object < 0, nearly all of them.
    W, b, rounds = train_svms(cache, verbose=False)
    fc7 = np.asarray(cache.fc7)
    for c in range(5):
        scores = fc7 @ W[c] + b[c]
        positives = np.asarray(cache.is_gt) & (np.asarray(cache.gt_labels) == c)
        negatives = np.asarray(cache.class_iou)[:, c] < 0.3
        assert positives.sum() == rounds[c][0]["positives"] > 0
        assert (scores[positives] > 0).mean() >= 0.9 and (scores[negatives] < 0).mean() >= 0.95, c


# ---- ridge box regressors ------------------------------------------------------------------------

def test_ridge_recovers_a_known_linear_map():
    # Catches a solve of the wrong system (X Xᵀ, missing centring, regularized bias).
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 12)) + 5.0                  # far from zero mean: the bias matters
    A, c = rng.standard_normal((12, 4)), rng.standard_normal(4)
    T = X @ A + c + 1e-6 * rng.standard_normal((300, 4))
    W, bias = fit_ridge(X, T, 1e-8)
    np.testing.assert_allclose(W, A, atol=1e-4)
    np.testing.assert_allclose(bias, c, atol=1e-3)
    W_big, _ = fit_ridge(X, T, 1e6)                          # a huge λ shrinks W towards 0, not the bias
    assert np.abs(W_big).max() < 0.1 * np.abs(A).max()


def _mean_iou_after(cache, W, bias, cls, rows):
    pool5, boxes, gt = (np.asarray(a[rows], np.float64) for a in (cache.pool5, cache.boxes, cache.gt_boxes))
    moved = decode_boxes(pool5 @ W[cls] + bias[cls], boxes, REGRESSION_WEIGHTS)
    return float(np.diag(box_iou(moved, gt)).mean()), float(np.diag(box_iou(boxes, gt)).mean())


def test_regressor_moves_real_training_proposals_towards_their_ground_truth(cache):
    # Catches regression targets of the wrong direction (encode(proposal, gt) instead of
    # encode(gt, proposal)) or features/targets misaligned: with the right targets the fitted
    # regressors raise the mean IoU of the training proposals; fitted to the reversed targets
    # the same check fails (shown below, so the test can tell the two apart).
    W, bias, report = train_box_regressors(cache)
    assert report["lambda"] in (1, 10, 100, 1000, 10000, 100000)
    for cls in range(5):
        rows, targets = regression_examples(cache, cls)
        rows = rows[~np.asarray(cache.is_gt)[rows]]           # proposals only (gt boxes need no move)
        if len(rows) < 10:
            continue
        after, before = _mean_iou_after(cache, W, bias, cls, rows)
        assert after > before + 0.02, (cls, before, after)
        wrong_targets = encode_boxes(np.asarray(cache.boxes[rows]), np.asarray(cache.gt_boxes[rows]))
        Ww, bw = fit_ridge(np.asarray(cache.pool5[rows]), wrong_targets, report["lambda"])
        wrong, _ = _mean_iou_after(cache, Ww[None].repeat(5, 0), bw[None].repeat(5, 0), cls, rows)
        assert wrong < before, (cls, before, wrong)


# ---- the feature cache ---------------------------------------------------------------------------

def test_cache_round_trips_values_and_manifest(cache, rcnn, scenes):
    # Catches features written to the wrong rows (a batch offset), regions and labels out of step,
    # or a size that does not describe the files.
    images, targets, proposals = scenes
    loaded = load_feature_cache(cache.cache_dir)
    regions = [np.concatenate([p, t["boxes"]]) for p, t in zip(proposals, targets)]
    pool5, fc7 = region_features(rcnn, images, regions, batch_size=50)
    np.testing.assert_allclose(loaded.pool5, pool5, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.fc7, fc7, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(loaded.boxes, np.concatenate(regions))
    np.testing.assert_array_equal(loaded.image_index, np.repeat(np.arange(8), [len(r) for r in regions]))
    gt = np.asarray(loaded.is_gt)
    np.testing.assert_array_equal(loaded.gt_labels[gt], np.concatenate([t["labels"] for t in targets]))
    np.testing.assert_allclose(loaded.gt_iou[gt], 1.0)
    with open(os.path.join(cache.cache_dir, MANIFEST)) as f:
        manifest = json.load(f)
    assert manifest["count"] == len(loaded) == sum(len(r) for r in regions) and manifest["num_images"] == 8
    on_disk = sum(os.path.getsize(os.path.join(cache.cache_dir, n)) for n in os.listdir(cache.cache_dir))
    assert loaded.size_mb == pytest.approx(on_disk / 1e6)
    assert isinstance(loaded.pool5, np.memmap)                # mapped from disk, not read into memory


def test_interrupted_write_leaves_no_valid_looking_cache(rcnn, scenes, tmp_path):
    # Catches a manifest written before the arrays, or an old manifest left in place while the
    # arrays under it are overwritten.
    images, targets, proposals = scenes
    folder = str(tmp_path / "c")
    write_feature_cache(rcnn, images[:2], targets[:2], proposals[:2], folder, progress=False)
    assert load_feature_cache(folder).count > 0
    calls = []

    def fail_on_second_batch(module, inputs, output):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")

    handle = rcnn.head.shared.register_forward_hook(fail_on_second_batch)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_feature_cache(rcnn, images, targets, proposals, folder, batch_size=32, progress=False)
    finally:
        handle.remove()
    assert not os.path.exists(os.path.join(folder, MANIFEST))
    with pytest.raises(FeatureCacheError, match="manifest.json is missing"):
        load_feature_cache(folder)
    # a kill leaves the arrays (no clean-up runs) but never the manifest: still refused
    np.save(os.path.join(folder, "pool5.npy"), np.zeros((3, 1024), np.float32))
    with pytest.raises(FeatureCacheError):
        load_feature_cache(folder)


def test_cache_with_a_truncated_array_is_refused(rcnn, scenes, tmp_path):
    images, targets, proposals = scenes
    folder = str(tmp_path / "c")
    write_feature_cache(rcnn, images[:2], targets[:2], proposals[:2], folder, progress=False)
    np.save(os.path.join(folder, "fc7.npy"), np.zeros((5, 256), np.float32))
    with pytest.raises(FeatureCacheError, match="fc7"):
        load_feature_cache(folder)


# ---- the detector --------------------------------------------------------------------------------

def test_detect_with_hand_set_weights(rcnn, scenes):
    # Catches labels shifted by one (1..C), the regressor of the wrong class, decoding with other
    # coder weights, boxes not clipped, scores that are not fc7·w + b.
    images, _, _ = scenes
    C = 5
    W, b = np.zeros((C, 256)), np.full(C, -5.0)
    b[2] = 3.0                                                # every region: class 2, margin 3
    R, rb = np.zeros((C, 1024, 4)), np.zeros((C, 4))
    rb[2] = [0.1, 0.0, np.log(2.0), 0.0]                      # shift by 0.1 w, double the width
    rb[0] = [0.0, 0.0, np.log(0.5), np.log(0.5)]              # (class 0 would halve it)
    detector = RCNNWithSVMs(rcnn, W, b, R, rb)
    proposals = [np.array([[0, 0, 10, 10], [30, 30, 40, 40]], np.float32), np.array([[20, 20, 30, 30]], np.float32)]
    dets = detector.detect(images[:2], proposals, score_threshold=0.0)
    np.testing.assert_array_equal(dets[0]["labels"], [2, 2])
    np.testing.assert_allclose(dets[0]["scores"], [3, 3])
    # centre 5 -> 6, width 10 -> 20: x from -4 (clipped to 0) to 16
    np.testing.assert_allclose(dets[0]["boxes"], [[0, 0, 16, 10], [26, 30, 46, 40]], atol=1e-4)
    np.testing.assert_allclose(dets[1]["boxes"], [[16, 20, 36, 30]], atol=1e-4)
    # with real weights the scores are the SVM margins fc7·w + b of the proposals
    rng = np.random.default_rng(4)
    W, b = rng.standard_normal((C, 256)) * 0.1, rng.standard_normal(C)
    detector = RCNNWithSVMs(rcnn, W, b, R, np.zeros((C, 4)))
    _, fc7 = region_features(rcnn, images[:1], proposals[:1])
    dets = detector.detect(images[:1], proposals[:1], nms_threshold=0.3)
    margins = fc7 @ W.T + b                                   # (2, C); the two boxes do not overlap
    np.testing.assert_allclose(np.sort(dets[0]["scores"]), np.sort(margins.ravel()), rtol=1e-4, atol=1e-4)


def test_save_load_round_trip(rcnn, scenes, tmp_path):
    # Catches weights lost or transposed on the way to disk, and SVMs loaded onto another CNN.
    images, _, proposals = scenes
    rng = np.random.default_rng(5)
    detector = RCNNWithSVMs(rcnn, rng.standard_normal((5, 256)), rng.standard_normal(5),
                            rng.standard_normal((5, 1024, 4)) * 1e-3, rng.standard_normal((5, 4)) * 0.1)
    path = str(tmp_path / "svm.npz")
    detector.save(path)
    with np.load(path, allow_pickle=False) as f:              # plain arrays, no pickle
        assert set(f.files) >= {"svm_weights", "svm_biases", "regressor_weights", "regressor_biases"}
    again = RCNNWithSVMs.load(path, rcnn)
    for name in ("svm_weights", "svm_biases", "regressor_weights", "regressor_biases"):
        np.testing.assert_array_equal(getattr(again, name), getattr(detector, name))
    a, b = detector.detect(images[:2], proposals[:2]), again.detect(images[:2], proposals[:2])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["boxes"], y["boxes"])
        np.testing.assert_array_equal(x["labels"], y["labels"])
    with pytest.raises(ValueError, match="another RCNN"):
        RCNNWithSVMs.load(path, pretrained.build("rcnn_shapes", rng=1))


def test_pipeline_report(rcnn, scenes, tmp_path):
    # Stages 2-4 end to end on 8 scenes: the report describes what happened.
    images, targets, proposals = scenes
    detector, report = train_rcnn_with_svms(rcnn, images, targets, str(tmp_path / "c"), proposals=proposals,
                                            svm_steps=100, max_rounds=2, initial_negatives=50, progress=False)
    assert report["cached_regions"] == sum(len(p) + len(t["boxes"]) for p, t in zip(proposals, targets))
    assert report["cache_mb"] == pytest.approx(load_feature_cache(str(tmp_path / "c")).size_mb)
    assert len(report["svm_rounds"]) == 5 and all(r[0]["negatives"] <= 50 for r in report["svm_rounds"])
    for key in ("stage2_cache_seconds", "stage3_svm_seconds", "stage4_regression_seconds"):
        assert report[key] >= 0
    assert detector.svm_weights.shape == (5, 256)
