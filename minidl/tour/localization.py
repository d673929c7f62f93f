"""Tour chapter (lecture 8): classification + localization, and pose estimation as regression.

Both reuse the committed weights: the localizer (class head + box head, multi-task loss) on
single shapes, and the pose regressor (14 keypoints, L2 on coordinates) on stick figures.

A live sweep (``minidl.models.localization_sweep``) shows the lecture's warning about the
multi-task loss ``L_cls + box_weight · L_box``: the weight and the form of the box loss change the
loss function, so final losses of different settings are not comparable; a validation metric
(correct localization) chooses. ``benchmarks/sweep_localization.py`` runs it over 3 seeds
(docs/sweep.md).
"""
from __future__ import annotations

import numpy as np

from ..data import ShapesDataset
from ..data.shapes import POSE_SKELETON, SHAPE_CLASSES
from ..metrics import accuracy, mean_box_iou, pck
from ..models.localization import localize
from ..models.localization_sweep import weight_sweep
from ..models.pose import predict_keypoints
from . import _pretrained


def _data(n, mode, seed=1):
    ds = ShapesDataset(n, 64, mode, seed=seed)
    items = [ds[i] for i in range(n)]
    return (np.stack([a for a, _ in items]), np.array([t["labels"][0] for _, t in items]),
            np.stack([t["boxes"][0] for _, t in items]), np.stack([t["keypoints"][0] for _, t in items]))


def _sweep_panel(report, model, held_out, quick):
    n_train, steps = (300, 60) if quick else (2000, 300)
    images, labels, boxes, _ = _data(n_train, "single", seed=2)
    result = weight_sweep(model, (images, labels, boxes), held_out, steps)
    best, by_loss = result.best, result.best_by_loss
    name = lambda row: f"{row.config['box_loss']}, weight {row.config['box_weight']:g}"   # noqa: E731
    report.text(f"Choosing the box-loss weight (lecture 8): L = cross-entropy + weight · box loss. The weight and "
                f"the form of the box loss change the loss itself, so choose them by a validation metric. For each "
                f"of {len(result.rows)} settings, a fresh fully connected part (shared layer + both heads) is "
                f"trained for {steps} steps on {n_train} other images (dataset seed 2) on top of the committed "
                f"backbone, frozen; all are evaluated on the {len(held_out[1])} held-out images above by correct "
                "localization (right class and box IoU ≥ 0.5).")
    rows, header = result.table()
    report.table(rows, header)
    report.figure(result.plot(),
                  f"Left: final training loss per setting; the lowest (hatched) is {name(by_loss)}. Right: held-out "
                  f"correct localization; the highest (red) is {name(best)} "
                  f"({best.metrics['correct localization']:.3f}, vs {by_loss.metrics['correct localization']:.3f} "
                  "for the lowest loss). The losses of different settings are different functions, so their "
                  "values are not comparable.")
    # numbers only (the summary is compared across devices); the picks' names are in the caption
    return {"loc_sweep_metric_pick_correct_localization": best.metrics["correct localization"],
            "loc_sweep_loss_pick_correct_localization": by_loss.metrics["correct localization"]}


def _draw_box(ax, box, colour):
    import matplotlib.patches as patches
    x1, y1, x2, y2 = box
    ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour, lw=1.5))


def run(report, quick=False, device="cpu"):
    import matplotlib.pyplot as plt

    n = 16 if quick else 500
    report.section("Lecture 8 — classification + localization")
    images, labels, boxes, _ = _data(n, "single")
    model, _ = _pretrained.load("localizer_shapes", report, device)
    predicted_labels, predicted_boxes = localize(model, images)
    acc, iou = accuracy(predicted_labels, labels), mean_box_iou(predicted_boxes, boxes)
    report.text(f"One backbone, two heads: class scores (softmax cross-entropy) and the box (x1, y1, x2, y2) "
                f"regressed with smooth L1, trained with the sum of the two losses. On {n} held-out images: "
                f"accuracy {acc:.3f}, mean box IoU {iou:.3f}.")
    fig, axes = plt.subplots(2, 4, figsize=(9, 4.8))
    for ax, k in zip(axes.ravel(), range(8)):
        ax.imshow(images[k].transpose(1, 2, 0))
        _draw_box(ax, boxes[k], "lime")
        _draw_box(ax, predicted_boxes[k], "red")
        ok = predicted_labels[k] == labels[k]
        ax.set_title(f"{SHAPE_CLASSES[predicted_labels[k]]}" + ("" if ok else f" (is {SHAPE_CLASSES[labels[k]]})"),
                     fontsize=8, color="black" if ok else "red")
        ax.axis("off")
    report.figure(fig, "Classification + localization: predicted box (red) vs ground truth (green), "
                       "predicted class as the title.")
    sweep_results = _sweep_panel(report, model, (images, labels, boxes), quick)

    report.section("Lecture 8 — human pose estimation as regression")
    images, _, boxes, keypoints = _data(n, "pose")
    model, _ = _pretrained.load("pose_shapes", report, device)
    predicted = predict_keypoints(model, images)
    pck_01, pck_02 = pck(predicted, keypoints, boxes, alpha=0.1), pck(predicted, keypoints, boxes, alpha=0.2)
    report.text(f"14 keypoints regressed with an L2 loss on their (x, y) (soft-argmax head). On {n} held-out "
                f"stick figures: PCK@0.1 {pck_01:.3f}, PCK@0.2 {pck_02:.3f} (a keypoint is correct within "
                "0.1 / 0.2 × the larger side of the person's box).")
    fig, axes = plt.subplots(2, 4, figsize=(9, 4.8))
    for ax, k in zip(axes.ravel(), range(8)):
        ax.imshow(images[k].transpose(1, 2, 0))
        for points, colour in ((keypoints[k], "lime"), (predicted[k], "red")):
            for a, b in POSE_SKELETON:
                ax.plot([points[a, 0] - 0.5, points[b, 0] - 0.5], [points[a, 1] - 0.5, points[b, 1] - 0.5],
                        color=colour, lw=1)
            ax.scatter(points[:, 0] - 0.5, points[:, 1] - 0.5, s=6, color=colour)
        ax.axis("off")
    report.figure(fig, "Pose: predicted skeleton (red) vs ground truth (green).")
    return {"loc_accuracy": acc, "loc_mean_box_iou": iou, **sweep_results, "pose_pck_0.1": pck_01,
            "pose_pck_0.2": pck_02}
