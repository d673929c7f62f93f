"""YOLO v1 (minidl/detection/yolo.py): cell assignment, responsible predictor, loss terms by hand,
float64 gradient check, decoding, a tiny overfit, bad arguments."""
import numpy as np
import pytest

from minidl import functional as F
from minidl import optim
from minidl.data import ShapesDataset
from minidl.detection.yolo import (YOLODetector, decode_outputs, responsible_predictors, yolo_loss,
                                   yolo_targets)
from minidl.gradcheck import gradcheck
from minidl.metrics import voc_map
from minidl.autograd import Tensor


def logit(p):
    p = np.asarray(p, np.float64)
    return np.log(p / (1 - p))


def raw_outputs(n, s, b, c, box=(0.5, 0.5, 0.5, 0.5), confidence=0.2):
    """Raw outputs (N, S, S, B*5 + C) float64 whose sigmoids are ``box`` and ``confidence`` everywhere."""
    out = np.zeros((n, s, s, 5 * b + c))
    for k in range(b):
        out[..., 5 * k:5 * k + 4] = logit(box)
        out[..., 5 * k + 4] = logit(confidence)
    return out


def set_predictor(out, image, row, col, k, box=None, confidence=None):
    if box is not None:
        out[image, row, col, 5 * k:5 * k + 4] = logit(box)
    if confidence is not None:
        out[image, row, col, 5 * k + 4] = logit(confidence)


def target(boxes, labels):
    return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4), "labels": np.asarray(labels, np.int64)}


# ---- which cell is responsible ------------------------------------------------------------------

def test_targets_assign_the_cell_containing_the_centre():
    # 32-px image, 4×4 grid of 8-px cells. Centre (13, 21): column 1, row 2 — a YOLO that swaps
    # rows and columns (or rounds instead of flooring) puts it in another cell.
    t = yolo_targets([target([[9, 16, 17, 26]], [3])], grid=4, image_size=32)
    assert t["object"].sum() == 1 and t["object"][0, 2, 1]
    assert t["labels"][0, 2, 1] == 3 and (np.delete(t["labels"].ravel(), 2 * 4 + 1) == -1).all()
    np.testing.assert_allclose(t["coords"][0, 2, 1], [13 / 8 - 1, 21 / 8 - 2, np.sqrt(8 / 32), np.sqrt(10 / 32)],
                               rtol=1e-6)
    np.testing.assert_allclose(t["boxes"][0, 2, 1], [9, 16, 17, 26])
    assert (t["coords"][~t["object"]] == 0).all()


def test_targets_border_rule_and_shared_cells():
    # A centre exactly on a border goes to the cell right of / below it (half-open cells): (16, 8)
    # -> column 2, row 1. A centre on the image's right edge stays in the last column.
    t = yolo_targets([target([[12, 4, 20, 12], [28, 0, 36, 4]], [0, 1])], grid=4, image_size=32)
    assert t["object"][0, 1, 2] and t["labels"][0, 1, 2] == 0
    np.testing.assert_allclose(t["coords"][0, 1, 2, :2], [0, 0])
    assert t["object"][0, 0, 3] and t["labels"][0, 0, 3] == 1
    np.testing.assert_allclose(t["coords"][0, 0, 3, 0], 1.0)
    assert t["object"].sum() == 2
    # Two centres in one cell: the larger object keeps it (one class per cell), whatever the order.
    for order in ([0, 1], [1, 0]):
        boxes, labels = np.array([[1, 1, 5, 5], [0, 0, 7, 7]])[order], np.array([2, 4])[order]
        t = yolo_targets([target(boxes, labels)], grid=4, image_size=32)
        assert t["object"].sum() == 1 and t["labels"][0, 0, 0] == 4
    # an image without objects: no responsible cell
    assert not yolo_targets([target(np.zeros((0, 4)), [])], 4, 32)["object"].any()


# ---- responsible predictor and the loss terms by hand ------------------------------------------

GT = [2, 2, 10, 12]          # centre (6, 7) in cell (0, 0) of a 16-px image, 2×2 grid; w = 8, h = 10


def _two_predictor_case(better):
    """One object; predictor ``better`` of its cell is the 8×8 box on its centre (IoU 0.8), the
    other a 2×2 box (IoU 0.05). Confidences: 0.3 (predictor 0), 0.6 (predictor 1), 0.2 elsewhere."""
    out = raw_outputs(1, 2, 2, 3, confidence=0.2)
    good, bad = (0.75, 0.875, np.sqrt(8 / 16), np.sqrt(8 / 16)), (0.75, 0.875, np.sqrt(2 / 16), np.sqrt(2 / 16))
    set_predictor(out, 0, 0, 0, better, box=good)
    set_predictor(out, 0, 0, 0, 1 - better, box=bad)
    set_predictor(out, 0, 0, 0, 0, confidence=0.3)
    set_predictor(out, 0, 0, 0, 1, confidence=0.6)
    out[0, 0, 0, 10:] = [0.0, 1.0, 0.0]
    return out, yolo_targets([target([GT], [1])], grid=2, image_size=16)


@pytest.mark.parametrize("better", [0, 1])
def test_responsible_predictor_is_the_best_overlapping_one(better):
    # Catches: always taking predictor 0, or taking the most confident one (predictor 1 here).
    out, t = _two_predictor_case(better)
    responsible, iou = responsible_predictors(out, t, num_boxes=2, image_size=16)
    expected = np.zeros((1, 2, 2, 2), bool)
    expected[0, 0, 0, better] = True
    np.testing.assert_array_equal(responsible, expected)
    np.testing.assert_allclose(iou[0, 0, 0, better], 64 / 80, rtol=1e-6)
    np.testing.assert_allclose(iou[0, 0, 0, 1 - better], 4 / 80, rtol=1e-6)


@pytest.mark.parametrize("rescore", [True, False])
def test_loss_terms_by_hand(rescore):
    # Predictor 1 is responsible. Catches: coordinates from the wrong predictor, w instead of √w,
    # λ_noobj on every predictor (or only on empty cells), a confidence target other than IoU / 1,
    # class loss outside the object's cell, no division by the batch size.
    out, t = _two_predictor_case(better=1)
    out, t2 = np.concatenate([out, out]), yolo_targets([target([GT], [1])] * 2, grid=2, image_size=16)
    total, coord, obj, noobj, cls = yolo_loss(Tensor(out), t2, num_boxes=2, image_size=16, rescore=rescore)
    assert t["object"].sum() == 1
    np.testing.assert_allclose(coord.item(), 5.0 * (np.sqrt(8 / 16) - np.sqrt(10 / 16)) ** 2, rtol=1e-6)   # float32 targets
    np.testing.assert_allclose(obj.item(), (0.6 - (0.8 if rescore else 1.0)) ** 2, rtol=1e-9)
    np.testing.assert_allclose(noobj.item(), 0.5 * (0.3 ** 2 + 6 * 0.2 ** 2), rtol=1e-9)
    np.testing.assert_allclose(cls.item(), -np.log(np.e / (np.e + 2)), rtol=1e-9)
    np.testing.assert_allclose(total.item(), coord.item() + obj.item() + noobj.item() + cls.item(), rtol=1e-12)


def test_noobject_weight_only_on_non_responsible_predictors():
    out, t = _two_predictor_case(better=1)
    base = [v.item() for v in yolo_loss(Tensor(out), t, 2, 16)]
    responsible_higher, loser_higher = out.copy(), out.copy()
    set_predictor(responsible_higher, 0, 0, 0, 1, confidence=0.9)
    set_predictor(loser_higher, 0, 0, 0, 0, confidence=0.9)
    r = [v.item() for v in yolo_loss(Tensor(responsible_higher), t, 2, 16)]
    loser = [v.item() for v in yolo_loss(Tensor(loser_higher), t, 2, 16)]
    assert r[3] == pytest.approx(base[3]) and r[2] != pytest.approx(base[2])      # only the object term moves
    assert loser[2] == pytest.approx(base[2])                                        # ... and vice versa
    assert loser[3] == pytest.approx(base[3] + 0.5 * (0.9 ** 2 - 0.3 ** 2))


def test_sqrt_size_makes_small_box_errors_cost_more():
    # The same 2-px width and height error on a 4-px box and on a 24-px box: through √w the
    # small box's error costs more (with w itself both would cost the same).
    def coord_loss(size):
        box = [16 - size / 2, 16 - size / 2, 16 + size / 2, 16 + size / 2]
        t = yolo_targets([target([box], [0])], grid=1, image_size=32)
        out = raw_outputs(1, 1, 1, 2, box=(0.5, 0.5, np.sqrt((size + 2) / 32), np.sqrt((size + 2) / 32)))
        return yolo_loss(Tensor(out), t, num_boxes=1, image_size=32)[1].item()
    small, big = coord_loss(4), coord_loss(24)
    np.testing.assert_allclose(small, 5.0 * 2 * (np.sqrt(6 / 32) - np.sqrt(4 / 32)) ** 2, rtol=1e-5)
    assert small > 3 * big


# ---- gradients -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rescore", [True, False])
def test_loss_gradcheck_float64(rescore):
    # The gradient of every term w.r.t. the raw outputs (sigmoids, √-space coordinates, CE) against
    # central differences. The assignment (argmax, IoU target) is held fixed: it is a constant of
    # the loss, computed without gradient.
    rng = np.random.default_rng(0)
    out = rng.normal(0, 1, (2, 3, 3, 2 * 5 + 3))
    t = yolo_targets([target([[2, 3, 11, 9], [14, 14, 23, 22]], [0, 2]), target([[5, 5, 20, 10]], [1])],
                     grid=3, image_size=24)
    assignment = responsible_predictors(out, t, 2, 24)
    assert assignment[0].sum() == 3

    def loss(p):
        return F.stack(list(yolo_loss(p, t, 2, 24, rescore=rescore, assignment=assignment)))
    gradcheck(loss, [out], tol=1e-6)


# ---- decoding and detection ----------------------------------------------------------------------

def test_decode_hand_set_outputs():
    out = raw_outputs(1, 4, 2, 3, box=(0.25, 0.75, np.sqrt(6 / 32), np.sqrt(4 / 32)), confidence=0.8)
    out[0, 1, 2, 10:] = [0.0, np.log(3.0), 0.0]
    boxes, confidence, probabilities = decode_outputs(out, num_boxes=2, image_size=32)
    # cell (row 1, column 2): centre ((2 + 0.25)·8, (1 + 0.75)·8) = (18, 14), size 6 × 4
    np.testing.assert_allclose(boxes[0, 1, 2, 1], [15, 12, 21, 16], rtol=1e-6)
    np.testing.assert_allclose(confidence[0, 1, 2], [0.8, 0.8], rtol=1e-6)
    np.testing.assert_allclose(probabilities[0, 1, 2], [0.2, 0.6, 0.2], rtol=1e-6)


def test_detect_turns_the_head_output_into_boxes():
    # Every cell outputs the same hand-set vector (head's last conv: zero weights, set bias).
    # Catches row/column swaps in decoding, scores other than confidence × class probability,
    # and labels off by one.
    model = YOLODetector(3, image_size=32, grid=4, boxes_per_cell=1, widths=(4, 4, 4), head_width=4, rng=0)
    last = model.head[-1]
    last.weight.data[:] = 0
    last.bias.data[:] = np.concatenate([logit([0.25, 0.75, np.sqrt(4 / 32), np.sqrt(2 / 32), 0.5]),
                                        [0.0, 0.0, np.log(6.0)]]).astype(np.float32)
    detections = model.detect(np.zeros((1, 3, 32, 32), np.float32), score_threshold=0.1)[0]
    assert len(detections["boxes"]) == 16                                   # one per cell, none overlap
    np.testing.assert_array_equal(detections["labels"], 2)
    np.testing.assert_allclose(detections["scores"], 0.5 * 6 / 8, rtol=1e-5)
    expected = {(8 * j + 2 - 2, 8 * i + 6 - 1, 8 * j + 2 + 2, 8 * i + 6 + 1) for i in range(4) for j in range(4)}
    assert {tuple(np.round(b, 4)) for b in detections["boxes"].tolist()} == expected
    assert model.detect(np.zeros((1, 3, 32, 32)), score_threshold=0.5)[0]["boxes"].shape == (0, 4)


def test_overfits_two_scenes():
    ds = ShapesDataset(2, 32, "scene", seed=3, max_objects=3)
    images, targets = np.stack([ds[i][0] for i in range(2)]), [ds[i][1] for i in range(2)]
    model = YOLODetector(5, image_size=32, grid=4, widths=(8, 16, 16), head_width=32, rng=0)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        model.train()
        loss = model.loss(images, targets)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.1 * np.mean(losses[:5])
    detections = model.detect(images)
    assert voc_map(detections, targets, 5, iou_threshold=0.3)["map"] > 0.6


# ---- shapes and bad arguments --------------------------------------------------------------------

def test_shapes_and_bad_arguments():
    model = YOLODetector(5, image_size=32, grid=4, widths=(4, 8, 8), head_width=8, rng=0)
    out = model(Tensor(np.zeros((2, 3, 32, 32), np.float32)))
    assert out.shape == (2, 4, 4, 2 * 5 + 5)
    losses = model.loss(np.zeros((1, 3, 32, 32), np.float32), [target([[1, 1, 9, 9]], [4])])
    assert len(losses) == 5 and all(v.shape == () for v in losses)
    with pytest.raises(ValueError, match="grid"):
        YOLODetector(5, image_size=64, grid=7)                       # 64 is no multiple of 7
    with pytest.raises(ValueError, match="stride"):
        YOLODetector(5, image_size=64, grid=4, widths=(8, 16, 32))   # stride 8 gives an 8×8 grid
    with pytest.raises(ValueError, match="input must be"):
        model(Tensor(np.zeros((1, 3, 16, 16), np.float32)))
    with pytest.raises(ValueError, match="targets"):
        model.loss(np.zeros((2, 3, 32, 32), np.float32), [target([[1, 1, 9, 9]], [4])])
    with pytest.raises(ValueError, match="boxes"):
        yolo_targets([{"boxes": np.zeros((2, 3)), "labels": np.zeros(2, np.int64)}], 4, 32)
    with pytest.raises(ValueError, match="labels"):
        yolo_targets([target([[1, 1, 9, 9]], [-1])], 4, 32)
    with pytest.raises(ValueError, match="x2 > x1"):
        yolo_targets([target([[9, 1, 1, 9]], [0])], 4, 32)
    t = yolo_targets([target([[1, 1, 9, 9]], [0])], 4, 32)
    with pytest.raises(ValueError, match="predictions"):
        yolo_loss(Tensor(np.zeros((1, 4, 4, 10))), t, num_boxes=2)  # no class scores
    with pytest.raises(ValueError, match="targets"):
        yolo_loss(Tensor(np.zeros((1, 2, 2, 13))), t, num_boxes=2)  # grid 2 vs targets for grid 4
    with pytest.raises(ValueError, match="max_detections"):
        model.detect(np.zeros((1, 3, 32, 32), np.float32), max_detections=0)
