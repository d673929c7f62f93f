"""Tests of minidl.metrics on hand-worked examples and against brute-force reference computations."""
import numpy as np
import pytest

from minidl import metrics as M
from minidl.autograd import Tensor

# ---- classification and segmentation -------------------------------------------------------------

# 9 "pixels" of 3 classes:
#   target 0 0 0 | 1 1 | 2 2 2 2
#   pred   0 0 1 | 1 2 | 2 2 0 2
# rows = truth, columns = prediction:
#   class 0: predicted 0, 0, 1       → [2, 1, 0]
#   class 1: predicted 1, 2          → [0, 1, 1]
#   class 2: predicted 2, 2, 0, 2    → [1, 0, 3]
TARGET = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
PRED = np.array([0, 0, 1, 1, 2, 2, 2, 0, 2])
CONFUSION = [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
# IoU = TP / (row sum + column sum - TP):
#   class 0: 2 / (3 + 3 - 2) = 2/4 = 0.5
#   class 1: 1 / (2 + 2 - 1) = 1/3
#   class 2: 3 / (4 + 4 - 3) = 3/5 = 0.6
# mIoU = (0.5 + 1/3 + 0.6) / 3 = 0.47777...; pixel accuracy = (2 + 1 + 3) / 9 = 2/3
IOUS = [0.5, 1 / 3, 0.6]


def test_confusion_matrix_iou_and_pixel_accuracy_by_hand():
    cm = M.confusion_matrix(PRED, TARGET, 3)
    np.testing.assert_array_equal(cm, CONFUSION)
    assert cm.dtype == np.int64
    np.testing.assert_allclose(M.iou_per_class(cm), IOUS)
    miou, per_class = M.mean_iou(PRED, TARGET, 3)
    assert miou == pytest.approx((0.5 + 1 / 3 + 0.6) / 3)
    assert M.pixel_accuracy(PRED, TARGET) == pytest.approx(2 / 3)
    assert M.accuracy(Tensor(PRED), TARGET) == pytest.approx(2 / 3)


def test_absent_classes_are_excluded_and_ignore_index_skipped():
    # a 4th class in neither pred nor target: IoU NaN, the mean is unchanged
    miou, per_class = M.mean_iou(PRED, TARGET, 4)
    assert np.isnan(per_class[3]) and miou == pytest.approx(np.mean(IOUS))
    # ignored pixels (255, VOC's "void") change nothing, whatever was predicted there
    target = np.concatenate([TARGET, [255, 255]])
    pred = np.concatenate([PRED, [1, 2]])
    np.testing.assert_array_equal(M.confusion_matrix(pred, target, 3, ignore_index=255), CONFUSION)
    assert M.pixel_accuracy(pred, target, ignore_index=255) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="target values"):
        M.confusion_matrix(pred, target, 3)


def test_segmentation_metrics_take_scores_with_the_class_axis_1():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, 3, 4, 5))                 # (N, C, H, W) logits
    target = rng.integers(0, 3, size=(2, 4, 5))
    labels = scores.argmax(axis=1)
    np.testing.assert_array_equal(M.confusion_matrix(Tensor(scores), target, 3),
                                  M.confusion_matrix(labels, target, 3))
    assert M.accuracy(scores, target) == pytest.approx((labels == target).mean())
    with pytest.raises(ValueError, match="pred must have"):
        M.accuracy(scores[:, :, :3], target)


# ---- localization and pose ---------------------------------------------------------------------

def test_mean_box_iou_by_hand():
    # [0,0,10,10] vs [5,0,15,10]: overlap 5×10 = 50, union 100 + 100 - 50 = 150 → 1/3; identical boxes → 1
    pred = np.array([[0, 0, 10, 10], [0, 0, 2, 2]])
    target = np.array([[5, 0, 15, 10], [0, 0, 2, 2]])
    assert M.mean_box_iou(pred, target) == pytest.approx((1 / 3 + 1) / 2)
    assert M.mean_box_iou([[0, 0, 1, 1]], [[2, 2, 3, 3]]) == 0.0
    with pytest.raises(ValueError, match="pred_boxes"):
        M.mean_box_iou(np.zeros((2, 3)), np.zeros((2, 3)))


def test_correct_localization_needs_the_class_and_the_box():
    # image 0: right class, IoU 1/3 (< 0.5) -> wrong; image 1: right class, IoU 1 -> right;
    # image 2: IoU 1 but wrong class -> wrong. A metric that checked only one of the two would give 2/3.
    pred = np.array([[0, 0, 10, 10], [0, 0, 2, 2], [0, 0, 4, 4]])
    target = np.array([[5, 0, 15, 10], [0, 0, 2, 2], [0, 0, 4, 4]])
    np.testing.assert_allclose(M.paired_box_iou(pred, target), [1 / 3, 1, 1])
    assert M.correct_localization([1, 2, 3], pred, [1, 2, 0], target) == pytest.approx(1 / 3)
    assert M.correct_localization([1, 2, 3], pred, [1, 2, 0], target, iou_threshold=0.3) == pytest.approx(2 / 3)


def test_pck_by_hand():
    # instance 1: box 10×20 → size 20, radius 0.1·20 = 2; instance 2: box 50×40 → size 50, radius 5
    boxes = np.array([[0, 0, 10, 20], [0, 0, 50, 40]])
    target = np.array([[[1, 1, 2], [5, 5, 2], [9, 9, 0]],
                       [[10, 10, 2], [20, 20, 1], [30, 30, 2]]], dtype=np.float32)
    pred = np.array([[[2, 2], [5, 8], [0, 0]],            # √2 ≤ 2 ✓, 3 > 2 ✗, not labelled
                     [[13, 14], [20, 26], [30, 30]]])     # 5 ≤ 5 ✓, 6 > 5 ✗, 0 ✓
    # scored: 5 labelled keypoints, 3 correct
    assert M.pck(pred, target, boxes, alpha=0.1) == pytest.approx(3 / 5)
    np.testing.assert_allclose(M.pck(pred, target, boxes, alpha=0.1, per_keypoint=True), [1.0, 0.0, 1.0])
    # only visible (v = 2) keypoints: the occluded (20, 20) drops out → 3 / 4
    assert M.pck(pred, target, boxes, alpha=0.1, min_visibility=2) == pytest.approx(3 / 4)
    # a larger tolerance (alpha 0.2: radii 4 and 10) makes every scored keypoint correct
    # ((5, 8) is 3 ≤ 4 away, (20, 26) is 6 ≤ 10 away) → 5 / 5; a tighter one (0.05: radii 1 and 2.5)
    # keeps only the exact (30, 30) → 1 / 5
    assert M.pck(pred, target, boxes, alpha=0.2) == pytest.approx(1.0)
    assert M.pck(pred, target, boxes, alpha=0.05) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="boxes"):
        M.pck(pred, target, boxes[:1])


# ---- detection: a small worked AP case -----------------------------------------------------------

def _worked_detection_case():
    """Image A has ground truths g1 = [0,0,10,10] and g2 = [20,20,30,30]; image B has g3 = [0,0,10,10].

    Five detections of the one class, by descending score:
      d1 0.9 A [0,0,10,10]       IoU 1 with g1                 → TP
      d2 0.8 A [0,0,10,10]       best overlap g1 already taken → FP (duplicate)
      d3 0.7 B [50,50,60,60]     no overlap                    → FP
      d4 0.6 B [0,0,10,9]        IoU 90/100 = 0.9 with g3      → TP
      d5 0.5 A [100,100,110,110] no overlap                    → FP
    """
    preds = [{"boxes": np.array([[0, 0, 10, 10], [0, 0, 10, 10], [100, 100, 110, 110]]),
              "scores": np.array([0.9, 0.8, 0.5]), "labels": np.array([0, 0, 0])},
             {"boxes": np.array([[50, 50, 60, 60], [0, 0, 10, 9]]),
              "scores": np.array([0.7, 0.6]), "labels": np.array([0, 0])}]
    targets = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), "labels": np.array([0, 0])},
               {"boxes": np.array([[0, 0, 10, 10]]), "labels": np.array([0])}]
    return preds, targets


def test_voc_ap_by_hand():
    # ranks: TP FP FP TP FP; 3 ground truths
    #   recall    1/3 1/3 1/3 2/3 2/3
    #   precision 1   1/2 1/3 1/2 2/5
    # interpolated precision: 1 up to recall 1/3, max(1/2, 2/5) = 1/2 up to 2/3, 0 beyond (g2 is never found)
    # AP = 1/3·1 + 1/3·1/2 = 1/2
    preds, targets = _worked_detection_case()
    result = M.voc_map(preds, targets)
    assert result["map"] == pytest.approx(0.5)
    np.testing.assert_allclose(result["ap_per_class"], [0.5])
    assert M.average_precision([1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3], [1, 1 / 2, 1 / 3, 1 / 2, 2 / 5]) == pytest.approx(0.5)


def test_coco_map_by_hand():
    # For thresholds 0.50 ... 0.90 (d4's IoU is exactly 0.9 ≥ t) the ranking is the VOC one.
    # 101 recall levels 0, 0.01, ..., 1: levels 0 .. 0.33 (34 of them) are reached by d1 at precision 1,
    # levels 0.34 .. 0.66 (33) by d4 at interpolated precision 1/2, levels ≥ 0.67 never → 0.
    #   AP = (34·1 + 33·0.5) / 101 = 50.5 / 101 = 0.5
    # At 0.95 d4 is a FP: only levels 0 .. 0.33 → AP = 34 / 101.
    # mAP = (9 · 0.5 + 34/101) / 10
    preds, targets = _worked_detection_case()
    result = M.coco_map(preds, targets)
    assert result["map_50"] == pytest.approx(0.5) and result["map_75"] == pytest.approx(0.5)
    np.testing.assert_allclose(result["ap"][:, 0], [0.5] * 9 + [34 / 101])
    assert result["map"] == pytest.approx((9 * 0.5 + 34 / 101) / 10)


def test_coco_matches_the_best_unmatched_box_where_voc_counts_a_duplicate():
    # g1 = [0,0,10,10], g2 = [5,0,15,10]. d1 (0.9) = g1 → TP. d2 (0.8) = [2,0,12,10]:
    # IoU with g1 = 80/120 = 0.667 (taken), with g2 = 70/130 = 0.538.
    # VOC: d2's best box is taken → FP → recall 1/2, 1/2, precision 1, 1/2 → AP = 1/2.
    # COCO at 0.5: d2 takes g2 (0.538 ≥ 0.5) → TP → recall 1/2, 1, precision 1, 1 → AP = 1.
    preds = [{"boxes": np.array([[0, 0, 10, 10], [2, 0, 12, 10]]), "scores": np.array([0.9, 0.8]),
              "labels": np.array([0, 0])}]
    targets = [{"boxes": np.array([[0, 0, 10, 10], [5, 0, 15, 10]]), "labels": np.array([0, 0])}]
    assert M.voc_map(preds, targets)["map"] == pytest.approx(0.5)
    assert M.coco_map(preds, targets, iou_thresholds=[0.5])["map"] == pytest.approx(1.0)


def test_classes_without_ground_truth_are_excluded():
    preds, targets = _worked_detection_case()
    preds[0]["labels"] = np.array([0, 0, 2])     # d5 becomes a class-2 detection; class 1 never appears
    result = M.voc_map(preds, targets, num_classes=3)
    assert np.isnan(result["ap_per_class"][1]) and np.isnan(result["ap_per_class"][2])
    assert result["map"] == pytest.approx(result["ap_per_class"][0])
    coco = M.coco_map(preds, targets, num_classes=3)
    assert np.isnan(coco["ap_per_class"][1]) and coco["map"] == pytest.approx(coco["ap_per_class"][0])


def test_detection_inputs_are_checked():
    preds, targets = _worked_detection_case()
    with pytest.raises(ValueError, match="one dict per image"):
        M.voc_map(preds[:1], targets)
    del preds[0]["scores"]
    with pytest.raises(ValueError, match="scores"):
        M.coco_map(preds, targets)


# ---- detection: against an independent brute-force computation --------------------------------

def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _brute_force_ap(preds, targets, cls, threshold, coco):
    """Loops only: rank all detections of ``cls``; match; AP from the definition of interpolated precision."""
    dets = []
    for i, p in enumerate(preds):
        mine = [(float(s), i, list(b)) for b, s, lab in zip(p["boxes"], p["scores"], p["labels"]) if lab == cls]
        mine.sort(key=lambda d: -d[0])
        dets += mine[:100] if coco else mine
    gts = {i: [list(b) for b, lab in zip(t["boxes"], t["labels"]) if lab == cls] for i, t in enumerate(targets)}
    n_truth = sum(len(g) for g in gts.values())
    if n_truth == 0:
        return None
    dets.sort(key=lambda d: -d[0])
    used = {i: [False] * len(g) for i, g in gts.items()}
    hits = []
    for _, i, box in dets:
        best, best_iou = None, -1.0
        for j, g in enumerate(gts[i]):
            if coco and used[i][j]:
                continue
            if _iou(box, g) > best_iou:
                best, best_iou = j, _iou(box, g)
        ok = best is not None and (best_iou >= threshold if coco else best_iou > threshold) and not used[i][best]
        if ok:
            used[i][best] = True
        hits.append(ok)
    recalls, precisions, tp = [], [], 0
    for k, hit in enumerate(hits):
        tp += hit
        recalls.append(tp / n_truth)
        precisions.append(tp / (k + 1))

    def best_precision_at_recall(r):
        reached = [p for p, rr in zip(precisions, recalls) if rr >= r - 1e-12]
        return max(reached) if reached else 0.0

    if coco:
        return sum(best_precision_at_recall(r / 100) for r in range(101)) / 101
    ap, previous = 0.0, 0.0
    for r in sorted(set(recalls)):
        if r > previous:
            ap += (r - previous) * best_precision_at_recall(r)
            previous = r
    return ap


def _random_detection_case(seed, n_images=6, n_classes=3):
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for _ in range(n_images):
        g = int(rng.integers(0, 5))
        xy = rng.uniform(0, 40, size=(g, 2))
        gt_boxes = np.concatenate([xy, xy + rng.uniform(5, 20, size=(g, 2))], axis=1)
        gt_labels = rng.integers(0, n_classes, size=g)
        # detections: jittered copies of some ground truths (some twice) plus random boxes
        picks = rng.integers(0, max(g, 1), size=int(rng.integers(0, 2 * g + 1))) if g else np.zeros(0, int)
        jittered = gt_boxes[picks] + rng.normal(0, 1.2, size=(len(picks), 4))
        labels = np.where(rng.random(len(picks)) < 0.8, gt_labels[picks], rng.integers(0, n_classes, len(picks)))
        n_random = int(rng.integers(0, 4))
        xy = rng.uniform(0, 40, size=(n_random, 2))
        random_boxes = np.concatenate([xy, xy + rng.uniform(5, 20, size=(n_random, 2))], axis=1)
        preds.append({"boxes": np.concatenate([jittered, random_boxes]),
                      "scores": rng.random(len(picks) + n_random),
                      "labels": np.concatenate([labels, rng.integers(0, n_classes, n_random)])})
        targets.append({"boxes": gt_boxes, "labels": gt_labels})
    return preds, targets


@pytest.mark.parametrize("seed", range(12))
def test_ap_matches_brute_force_on_random_cases(seed):
    preds, targets = _random_detection_case(seed)
    voc = M.voc_map(preds, targets, num_classes=3)
    coco = M.coco_map(preds, targets, num_classes=3)
    for c in range(3):
        expected = _brute_force_ap(preds, targets, c, 0.5, coco=False)
        if expected is None:
            assert np.isnan(voc["ap_per_class"][c]) and np.isnan(coco["ap_per_class"][c])
            continue
        assert voc["ap_per_class"][c] == pytest.approx(expected, abs=1e-12)
        for t, threshold in enumerate(M.COCO_IOU_THRESHOLDS):
            assert coco["ap"][t, c] == pytest.approx(_brute_force_ap(preds, targets, c, threshold, coco=True),
                                                     abs=1e-9)


def test_perfect_detections_score_one():
    _, targets = _random_detection_case(3)
    preds = [{"boxes": t["boxes"], "labels": t["labels"], "scores": np.ones(len(t["labels"]))} for t in targets]
    assert M.voc_map(preds, targets)["map"] == pytest.approx(1.0)
    assert M.coco_map(preds, targets)["map"] == pytest.approx(1.0)
