"""Box utilities: torchvision comparisons, hand-worked cases, anchors and anchor matching."""
import math

import numpy as np
import pytest

import minidl
from minidl import ops


def random_boxes(rng, n, dtype=np.float64):
    xy = rng.uniform(-50, 300, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(0.5, 120, (n, 2))], axis=1).astype(dtype)


@pytest.fixture
def tv():
    pytest.importorskip("torch", reason="torch is only used to compare with torchvision")
    return pytest.importorskip("torchvision", reason="comparison with torchvision.ops")


def test_area_iou_convert_clip_small_match_torchvision(tv):
    import torch
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 30), random_boxes(rng, 20)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    np.testing.assert_allclose(ops.box_area(a), tv.ops.box_area(ta).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ops.box_iou(a, b), tv.ops.box_iou(ta, tb).numpy(), rtol=1e-12)
    for i in ("xyxy", "xywh", "cxcywh"):
        for o in ("xyxy", "xywh", "cxcywh"):
            np.testing.assert_allclose(ops.box_convert(a, i, o), tv.ops.box_convert(ta, i, o).numpy(),
                                       rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ops.clip_boxes_to_image(a, (100, 200)),
                                  tv.ops.clip_boxes_to_image(ta, (100, 200)).numpy())
    np.testing.assert_array_equal(ops.remove_small_boxes(a, 40.0), tv.ops.remove_small_boxes(ta, 40.0).numpy())


def test_iou_by_hand_and_degenerate_boxes():
    a = np.array([[0, 0, 2, 2], [0, 0, 0, 0], [5, 5, 3, 3]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 0, 0]], np.float32)
    iou = ops.box_iou(a, b)
    np.testing.assert_allclose(iou, [[1 / 7, 0], [0, 0], [0, 0]])   # empty union: 0, not NaN
    assert ops.box_area(a).tolist() == [4, 0, 0]                    # inverted box: area 0


def test_box_convert_round_trip_and_bad_format():
    rng = np.random.default_rng(1)
    a = random_boxes(rng, 10)
    np.testing.assert_allclose(ops.box_convert(ops.box_convert(a, "xyxy", "cxcywh"), "cxcywh", "xyxy"), a)
    with pytest.raises(ValueError, match="in_fmt"):
        ops.box_convert(a, "xyz", "xyxy")
    with pytest.raises(ValueError, match="boxes"):
        ops.box_iou(np.zeros((3, 5)), a)


def test_encode_decode_match_torchvision_box_coder(tv):
    import torch
    from torchvision.models.detection._utils import BoxCoder
    rng = np.random.default_rng(2)
    gt, proposals = random_boxes(rng, 25, np.float32), random_boxes(rng, 25, np.float32)
    weights = (10.0, 10.0, 5.0, 5.0)
    coder = BoxCoder(weights)
    expected = coder.encode_single(torch.from_numpy(gt), torch.from_numpy(proposals)).numpy()
    codes = ops.encode_boxes(gt, proposals, weights)
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-5)
    codes3 = rng.normal(0, 2, (25, 12)).astype(np.float32)           # 3 predictions per box
    expected = coder.decode_single(torch.from_numpy(codes3), torch.from_numpy(proposals)).numpy()
    np.testing.assert_allclose(ops.decode_boxes(codes3, proposals, weights), expected, rtol=1e-5, atol=1e-3)


def test_decode_inverts_encode_and_clamps_sizes():
    rng = np.random.default_rng(3)
    gt, proposals = random_boxes(rng, 40), random_boxes(rng, 40)
    proposals[:, 2:] = proposals[:, :2] + np.maximum(proposals[:, 2:] - proposals[:, :2], 5)  # size ratio < 62.5
    np.testing.assert_allclose(ops.decode_boxes(ops.encode_boxes(gt, proposals), proposals), gt, rtol=1e-9)
    huge = ops.decode_boxes(np.array([[0, 0, 50.0, 50.0]]), np.array([[0, 0, 10.0, 20.0]]))
    np.testing.assert_allclose(huge[0, 2] - huge[0, 0], 10 * 1000 / 16)   # exp(log(1000/16))·w
    np.testing.assert_allclose(huge[0, 3] - huge[0, 1], 20 * 1000 / 16)


def test_tensors_in_tensors_out():
    a = minidl.tensor(np.array([[0, 0, 2, 2], [1, 1, 3, 3]], np.float32))
    for result in (ops.box_area(a), ops.box_iou(a, a), ops.box_convert(a, "xyxy", "xywh"),
                   ops.remove_small_boxes(a, 1.0), ops.match_anchors(a, a)):
        assert isinstance(result, minidl.Tensor)
    assert isinstance(ops.box_area(a.numpy()), np.ndarray)


def test_anchor_grid_layout_sizes_and_ratios():
    anchors = ops.anchor_grid((2, 3), 16, sizes=(32, 64), aspect_ratios=(0.5, 1.0, 2.0))
    assert anchors.shape == (2 * 3 * 6, 4) and anchors.dtype == np.float32
    cells = anchors.reshape(2, 3, 6, 4)
    centres = (cells[..., :2] + cells[..., 2:]) / 2
    np.testing.assert_allclose(centres[1, 2], np.tile([[2.5 * 16, 1.5 * 16]], (6, 1)))
    w, h = (cells[0, 0, :, 2] - cells[0, 0, :, 0]), (cells[0, 0, :, 3] - cells[0, 0, :, 1])
    np.testing.assert_allclose(w * h, [32 ** 2] * 3 + [64 ** 2] * 3, rtol=1e-6)
    np.testing.assert_allclose(w / h, [0.5, 1, 2, 0.5, 1, 2], rtol=1e-6)   # ratio = width / height
    assert ops.anchor_grid((4, 2), (8, 4), (10,)).shape == (8, 4)


def test_match_anchors_by_hand():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 12], [0, 0, 10, 15], [0, 0, 10, 20],
                        [50, 50, 60, 60], [100, 100, 101, 101]], np.float32)
    gt = np.array([[0, 0, 10, 10], [100, 100, 140, 140]], np.float32)
    # IoUs with gt 0: 1, 10/12, 10/15, 0.5, 0, 0; with gt 1: anchor 5 has 1/1600
    assert ops.match_anchors(anchors, gt, 0.7, 0.6, False).tolist() == [0, 0, -2, -1, -1, -1]
    assert ops.match_anchors(anchors, gt, 0.7, 0.5, False).tolist() == [0, 0, -2, -2, -1, -1]
    # low-quality matches: gt 1 claims its best anchor even at IoU 1/1600
    assert ops.match_anchors(anchors, gt, 0.7, 0.5, True).tolist() == [0, 0, -2, -2, -1, 1]
    assert ops.match_anchors(anchors, np.zeros((0, 4), np.float32)).tolist() == [-1] * 6


def test_match_anchors_against_brute_force():
    rng = np.random.default_rng(4)
    anchors, gt = random_boxes(rng, 300), random_boxes(rng, 7)
    matches = ops.match_anchors(anchors, gt, 0.5, 0.3, allow_low_quality_matches=True)
    iou = ops.box_iou(gt, anchors)
    expected = []
    for n in range(300):
        best = int(np.argmax(iou[:, n]))
        v = iou[best, n]
        expected.append(best if v >= 0.5 else (-1 if v < 0.3 else -2))
    for j in range(7):
        if iou[j].max() > 0:
            expected[int(np.argmax(iou[j]))] = j
    assert matches.tolist() == expected


def test_match_anchors_bad_input():
    a = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="neg_threshold"):
        ops.match_anchors(a, a, 0.3, 0.5)
    with pytest.raises(ValueError, match="gt_boxes"):
        ops.match_anchors(a, np.array([[0, 0, np.nan, 1]], np.float32))


def test_box_ops_on_device(device):
    rng = np.random.default_rng(5)
    a, b = random_boxes(rng, 9, np.float32), random_boxes(rng, 6, np.float32)
    expected = ops.box_iou(a, b), ops.match_anchors(a, b)
    ad, bd = minidl.tensor(a, device=device), minidl.tensor(b, device=device)
    np.testing.assert_allclose(ops.box_iou(ad, bd).numpy(), expected[0], rtol=1e-6)
    np.testing.assert_array_equal(ops.match_anchors(ad, bd).numpy(), expected[1])
    assert math.isclose(float(ops.box_area(ad).numpy().sum()), float(ops.box_area(a).sum()), rel_tol=1e-6)
