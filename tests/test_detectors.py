"""Detectors of lecture 8: RoI sampling, target assignment, post-processing, small overfits."""
import numpy as np
import pytest

from minidl import optim
from minidl.data import ShapesDataset
from minidl.data import ShapesDataset
from minidl.detection.box_head import detection_loss
from minidl.detection.postprocess import postprocess_detections
from minidl.detection.roi_sampling import (BOX_CODER_WEIGHTS, assign_rois, jitter_proposals,
                                           sample_rois)
from minidl.ops import box_iou, decode_boxes, encode_boxes
from minidl.autograd import Tensor

GT_BOXES = np.array([[10, 10, 30, 30], [40, 35, 60, 60]], np.float32)
GT_LABELS = np.array([2, 0])


def _proposals_around(rng, count=200):
    return jitter_proposals(GT_BOXES, (64, 64), count, rng, random_fraction=0.5)


# ---- RoI assignment and sampling ------------------------------------------------------------

def test_assign_rois_thresholds_by_hand():
    proposals = np.array([[10, 10, 30, 30],      # IoU 1 with gt 0 -> class 2 + 1
                          [10, 10, 30, 20],      # IoU 0.5 with gt 0 -> foreground
                          [10, 10, 30, 19],      # IoU 0.45 -> background
                          [0, 0, 5, 5],          # no overlap -> background
                          [40, 35, 60, 60]], np.float32)
    labels, matched = assign_rois(proposals, GT_BOXES, GT_LABELS, fg_iou=0.5, bg_iou=(0.0, 0.5))
    np.testing.assert_array_equal(labels, [3, 3, 0, 0, 1])
    np.testing.assert_array_equal(matched[[0, 1, 4]], [0, 0, 1])
    labels, _ = assign_rois(proposals, GT_BOXES, GT_LABELS, fg_iou=0.5, bg_iou=(0.1, 0.5))
    assert labels[3] == -1                           # below bg_iou[0]: ignored


def test_sample_rois_positive_fraction_and_targets():
    rng = np.random.default_rng(0)
    proposals = _proposals_around(rng, 400)
    out = sample_rois(proposals, GT_BOXES, GT_LABELS, batch_size=64, positive_fraction=0.25, rng=1)
    labels = out["labels"]
    assert labels.shape == (64,) and (labels > 0).sum() == 16 and (labels == 0).sum() == 48
    iou = box_iou(out["rois"], GT_BOXES).max(axis=1)
    assert (iou[labels > 0] >= 0.5).all() and (iou[labels == 0] < 0.5).all()
    # Decoding the regression targets of the positives gives back their ground-truth boxes.
    fg = labels > 0
    decoded = decode_boxes(out["regression_targets"][fg], out["rois"][fg], BOX_CODER_WEIGHTS)
    best = box_iou(out["rois"][fg], GT_BOXES).argmax(axis=1)
    np.testing.assert_allclose(decoded, GT_BOXES[best], atol=1e-3)
    np.testing.assert_array_equal(labels[fg], GT_LABELS[best] + 1)
    assert not out["regression_targets"][~fg].any()


def test_sample_rois_with_few_positives_fills_with_negatives():
    proposals = np.array([[0, 0, 5, 5], [50, 0, 60, 8], [0, 50, 6, 60]], np.float32)
    out = sample_rois(proposals, GT_BOXES[:1], GT_LABELS[:1], batch_size=8, positive_fraction=0.5, rng=0)
    # Only the added ground-truth box is a positive; the three proposals are the negatives.
    assert (out["labels"] > 0).sum() == 1 and (out["labels"] == 0).sum() == 3


def test_jitter_proposals_inside_image_and_overlapping():
    boxes = jitter_proposals(GT_BOXES, (64, 64), 100, rng=0)
    assert boxes.shape == (100, 4)
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= 64).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    assert (box_iou(boxes, GT_BOXES).max(axis=1) >= 0.5).sum() >= 20


# ---- loss and post-processing ----------------------------------------------------------------

def test_detection_loss_trains_only_the_true_class_offsets():
    rng = np.random.default_rng(0)
    logits = Tensor(rng.normal(size=(3, 4)).astype(np.float32), requires_grad=True)
    deltas = Tensor(rng.normal(size=(3, 12)).astype(np.float32), requires_grad=True)
    labels = np.array([2, 0, 1])
    targets = rng.normal(size=(3, 4)).astype(np.float32)
    total, cls, reg = detection_loss(logits, deltas, labels, targets)
    total.backward()
    grad = deltas.grad.numpy()
    assert np.abs(grad[0, 4:8]).sum() > 0 and not grad[0, :4].any() and not grad[0, 8:].any()
    assert not grad[1].any()                          # background: no box loss
    assert np.abs(grad[2, :4]).sum() > 0 and not grad[2, 4:].any()
    np.testing.assert_allclose(total.item(), cls.item() + reg.item(), rtol=1e-6)


def test_postprocess_perfect_proposal_gives_the_ground_truth_box():
    gt = np.array([[12.0, 14.0, 40.0, 38.0]], np.float32)
    proposals = np.array([[10, 10, 36, 36], [11, 12, 38, 37], [45, 45, 60, 60]], np.float32)
    num_classes = 3
    logits = np.full((3, num_classes + 1), -5.0, np.float32)
    logits[0, 2], logits[1, 2] = 8.0, 6.0              # both proposals say "class 1", the first more
    logits[2, 0] = 8.0                                 # background
    deltas = np.zeros((3, 4 * num_classes), np.float32)
    deltas[0, 4:8] = encode_boxes(gt, proposals[:1], BOX_CODER_WEIGHTS)[0]
    deltas[1, 4:8] = encode_boxes(gt + 1, proposals[1:2], BOX_CODER_WEIGHTS)[0]
    out = postprocess_detections(logits, deltas, proposals, (64, 64), BOX_CODER_WEIGHTS,
                                 score_threshold=0.5, nms_threshold=0.5)
    assert out["labels"].tolist() == [1]             # the duplicate was suppressed by NMS
    np.testing.assert_allclose(out["boxes"][0], gt[0], atol=1e-3)
    assert out["scores"][0] > 0.99


def test_postprocess_class_agnostic_deltas_and_clipping():
    anchors = np.array([[-10, -10, 20, 20]], np.float32)
    logits = np.array([[0.0, 10.0]], np.float32)
    out = postprocess_detections(logits, np.zeros((1, 4), np.float32), anchors, (16, 16))
    np.testing.assert_allclose(out["boxes"], [[0, 0, 16, 16]])
    with pytest.raises(ValueError, match="box_deltas"):
        postprocess_detections(logits, np.zeros((1, 8), np.float32), anchors, (16, 16))


# ---- the detectors -----------------------------------------------------------------------------

def _scene_batch(n=2, size=32):
    ds = ShapesDataset(n, size, "scene", seed=3, max_objects=3)
    items = [ds[i] for i in range(n)]
    return np.stack([a for a, _ in items]), [t for _, t in items]


def test_ssd_anchor_targets_by_hand():
    from minidl.detection.single_shot import SSD_BOX_WEIGHTS, SingleShotDetector
    model = SingleShotDetector(3, image_size=32, widths=(4, 8, 8), anchor_sizes=((8,), (16,)), rng=0)
    assert model.anchors.shape == (16 * 16 // 4 * 3 + 4 * 4 * 3, 4)
    anchor = model.anchors[5]
    labels, box_targets = model.assign_targets([{"boxes": anchor[None], "labels": np.array([2])}])
    assert labels[0, 5] == 3
    np.testing.assert_allclose(box_targets[0, 5], 0, atol=1e-6)
    overlap = box_iou(model.anchors, anchor[None])[:, 0]
    assert (labels[0][overlap < 0.4] == 0).all()
    assert (labels[0][(overlap >= 0.4) & (overlap < 0.5)] == -1).all()
    logits, deltas = model(Tensor(np.zeros((2, 3, 32, 32), np.float32)))
    assert logits.shape == (2, len(model.anchors), 4) and deltas.shape == (2, len(model.anchors), 4)
    # decode(encode) of the matched ground truth is the ground truth again
    decoded = decode_boxes(box_targets[0, 5:6], model.anchors[5:6], SSD_BOX_WEIGHTS)
    np.testing.assert_allclose(decoded[0], anchor, atol=1e-4)


def test_ssd_overfits_two_scenes():
    from minidl.detection.single_shot import SingleShotDetector
    images, targets = _scene_batch()
    model = SingleShotDetector(5, image_size=32, widths=(8, 16, 16), anchor_sizes=((6, 10), (14, 20)), rng=0)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss = model.loss(images, targets)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.3 * first
    detections = model.detect(images)
    assert set(detections[0]) == {"boxes", "scores", "labels"}


@pytest.mark.parametrize("kind", ["fast_rcnn", "rcnn"])
def test_region_detectors_overfit_two_scenes(kind):
    from minidl.detection.fast_rcnn import FastRCNN
    from minidl.detection.rcnn import RCNN
    images, targets = _scene_batch()
    model = (FastRCNN(5, widths=(8, 16), hidden=32, rng=0) if kind == "fast_rcnn"
             else RCNN(5, crop_size=16, widths=(8, 16), hidden=32, rng=0))
    opt = optim.Adam(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    proposals = [jitter_proposals(t["boxes"], (32, 32), 48, rng) for t in targets]
    losses = []
    for _ in range(60):
        loss = model.loss(images, proposals, targets, rois_per_image=32, rng=0)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.4 * losses[0]
    # Detecting with the ground-truth boxes as proposals finds every object of these scenes with
    # mostly the right class (boxes after 60 steps are close, not yet exact: IoU threshold 0.3).
    detections = model.detect(images, [t["boxes"] for t in targets])
    from minidl.metrics import voc_map
    assert voc_map(detections, targets, 5, iou_threshold=0.3)["map"] > 0.6   # untrained: ~0


def test_warp_regions_resamples_the_box():
    from minidl.detection.rcnn import warp_regions
    ys, xs = np.mgrid[0:16, 0:16].astype(np.float32)
    image = np.stack([xs, ys, xs + ys])[None]              # linear ramps: bilinear is exact
    crops = warp_regions(image, np.array([[0, 4, 2, 12, 10]], np.float32), 8)
    assert crops.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(crops[0, 0, 0], np.arange(4, 12) + 0.0, atol=1e-5)
    np.testing.assert_allclose(crops[0, 1, :, 0], np.arange(2, 10) + 0.0, atol=1e-5)
