"""SPP-net (minidl/detection/spp_net.py): the pyramid pooling of proposal windows, the frozen
backbone, and that the detector learns; plus sliding-window detection (sliding_window.py)."""
import numpy as np
import pytest

from minidl import optim
from minidl.data import ShapesDataset
from minidl.detection.proposals import proposal_recall, sliding_window_proposals
from minidl.detection.roi_sampling import jitter_proposals
from minidl.detection.sliding_window import WINDOW_LADDER, sliding_window_detect, windows_for_recall
from minidl.detection.spp_net import (SPPNet, feature_windows, pyramid_pool_regions,
                                      pyramid_pool_regions_batched)
from minidl.metrics import voc_map
from minidl.autograd import Tensor


def _feature_map_and_rois(rng, n=2, d=3, h=16, w=16, k=24, stride=4):
    fmap = rng.permutation(n * d * h * w).reshape(n, d, h, w).astype(np.float64)   # tie-free
    x1 = rng.uniform(-6, 60, k)
    y1 = rng.uniform(-6, 60, k)
    side_w, side_h = rng.uniform(0.5, 50, k), rng.uniform(0.5, 50, k)
    rois = np.stack([rng.integers(n, size=k), x1, y1, x1 + side_w, y1 + side_h], 1)
    return fmap, rois.astype(np.float32), 1.0 / stride


def test_textbook_and_batched_pyramid_pooling_agree():
    # catches: a window projected with other rounding than roi_pool's, levels concatenated in another
    # order, or a block flattened (l, l, D) instead of (D, l, l)
    fmap, rois, scale = _feature_map_and_rois(np.random.default_rng(0))
    textbook = pyramid_pool_regions(Tensor(fmap), rois, scale).numpy()
    batched = pyramid_pool_regions_batched(Tensor(fmap), rois, scale).numpy()
    assert textbook.shape == batched.shape == (len(rois), 3 * (1 + 4 + 16))
    np.testing.assert_array_equal(textbook, batched)


def test_pyramid_level_one_is_the_window_maximum_for_any_window_size():
    # catches: a pyramid whose length depends on the window, or a level-1 bin that misses cells
    rng = np.random.default_rng(1)
    fmap = rng.normal(size=(1, 2, 16, 16))
    for box in ([0, 0, 0, 3, 3], [0, 8, 4, 60, 20], [0, 20, 20, 21, 22]):
        roi = np.array([box], np.float32)
        pooled = pyramid_pool_regions(Tensor(fmap), roi, 0.25).numpy()
        assert pooled.shape == (1, 2 * 21)
        b, r0, r1, c0, c1 = feature_windows(roi, 0.25, 16, 16)[0]
        window = fmap[b, :, r0:r1 + 1, c0:c1 + 1]
        np.testing.assert_array_equal(pooled[0, :2], window.max(axis=(1, 2)))


def test_feature_windows_round_like_roi_pool_and_stay_on_the_map():
    # x 9.9 / 4 = 2.475 -> 2; 10 / 4 = 2.5 -> 3 (half away from zero); a degenerate box keeps one
    # cell; a box to the image's right edge (64 / 4 = 16) stops at the last cell, 15
    rois = np.array([[1, 9.9, 10, 30, 18], [0, 20, 20, 19, 19], [0, -3, 40, 64, 64]], np.float32)
    np.testing.assert_array_equal(feature_windows(rois, 0.25, 16, 16),
                                  [[1, 3, 5, 2, 8], [0, 5, 5, 5, 5], [0, 10, 15, 0, 15]])


def test_batched_pooling_routes_the_same_gradient_as_the_textbook():
    # the head's gradient reaches the feature map through either path identically
    fmap, rois, scale = _feature_map_and_rois(np.random.default_rng(2), k=10)
    upstream = np.random.default_rng(3).normal(size=(10, 3 * 21))
    grads = []
    for pool in (pyramid_pool_regions, pyramid_pool_regions_batched):
        x = Tensor(fmap, requires_grad=True)
        (pool(x, rois, scale) * Tensor(upstream)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-12)
    assert np.abs(grads[0]).sum() > 0


def _scenes(n=2, size=32):
    ds = ShapesDataset(n, size, "scene", seed=3, max_objects=3)
    items = [ds[i] for i in range(n)]
    return np.stack([a for a, _ in items]), [t for _, t in items]


def test_copied_backbone_is_rcnns_cnn_and_stays_frozen():
    # catches: a backbone that is trained (SPP-net's conv layers are fixed) or not R-CNN's
    from minidl.detection.rcnn import RCNN
    rcnn = RCNN(5, crop_size=16, widths=(8, 16), hidden=32, rng=1).eval()
    model = SPPNet(5, widths=(8, 16), hidden=32, rng=0).copy_backbone_from(rcnn)
    images, targets = _scenes()
    np.testing.assert_allclose(model.features(Tensor(images)).numpy(), rcnn.cnn(Tensor(images) - 0.5).numpy(),
                               atol=1e-6)
    before = {k: v.copy() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.copy() for k, v in model.head.state_dict().items()}
    opt = optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    proposals = [jitter_proposals(t["boxes"], (32, 32), 32, 0) for t in targets]
    loss = model.loss(images, proposals, targets, rois_per_image=16, rng=0)[0]
    opt.zero_grad()
    loss.backward()
    opt.step()
    for k, v in model.backbone.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert any(not np.array_equal(v, head_before[k]) for k, v in model.head.state_dict().items())


def test_spp_net_head_learns_two_scenes():
    # the head alone (random frozen backbone) fits two scenes: loss drops and the ground-truth boxes
    # used as proposals are classified right (untrained: mAP ~0)
    images, targets = _scenes()
    model = SPPNet(5, widths=(8, 16), hidden=64, rng=0)
    opt = optim.Adam(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    proposals = [jitter_proposals(t["boxes"], (32, 32), 48, rng) for t in targets]
    losses = []
    model.train()
    for _ in range(80):
        loss = model.loss(images, proposals, targets, rois_per_image=32, rng=0)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.4 * losses[0]
    detections = model.detect(images, [t["boxes"] for t in targets])
    assert voc_map(detections, targets, 5, iou_threshold=0.3)["map"] > 0.6


# ---- sliding-window detection ------------------------------------------------------------------

def test_windows_for_recall_takes_the_sparsest_set_that_reaches_the_target():
    # catches: a search that returns a denser set than needed, or stops before the target
    ds = ShapesDataset(10, 64, "scene", seed=1)
    gt = [ds[i][1]["boxes"] for i in range(10)]
    recalls = [proposal_recall([sliding_window_proposals(64, *c)] * 10, gt) for c in WINDOW_LADDER]
    target = sorted(set(recalls))[len(set(recalls)) // 2]
    windows, config, recall = windows_for_recall(gt, 64, target)
    first = next(i for i, r in enumerate(recalls) if r >= target)
    assert config == WINDOW_LADDER[first] and recall == recalls[first] >= target
    assert len(windows) == len(sliding_window_proposals(64, *config))
    # an unreachable target returns the densest set and its (short) recall
    _, config, recall = windows_for_recall(gt, 64, 1.0, iou_threshold=0.99)
    assert config == WINDOW_LADDER[-1] and recall < 1.0
    with pytest.raises(ValueError, match="target_recall"):
        windows_for_recall(gt, 64, 1.5)


def test_sliding_window_detect_classifies_every_window_with_the_region_classifier():
    # the committed R-CNN classifies windows of held-out scenes: objects are found
    from minidl.models.pretrained import load_pretrained
    rcnn = load_pretrained("rcnn_shapes")
    ds = ShapesDataset(3, 64, "scene", seed=1)
    images = np.stack([ds[i][0] for i in range(3)])
    targets = [ds[i][1] for i in range(3)]
    windows = sliding_window_proposals(64, *WINDOW_LADDER[3])
    detections = sliding_window_detect(rcnn, images, windows)
    assert len(detections) == 3
    assert voc_map(detections, targets, 5, iou_threshold=0.5)["map"] > 0.3   # random boxes: ~0
