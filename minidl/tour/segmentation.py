"""Tour chapter (lecture 8): semantic segmentation — sliding window vs fully convolutional network.

Loads the committed weights (``benchmarks/train_lecture8.py``), evaluates both approaches on
held-out shapes scenes, times them per image, and shows predicted masks next to the truth.
"""
from __future__ import annotations

import time

import numpy as np

from ..data import ShapesDataset
from ..data.shapes import SHAPE_CLASSES
from ..metrics import mean_iou
from ..models.segmentation import segment, sliding_window_segment
from . import _pretrained


def _scenes(n, seed=1):
    ds = ShapesDataset(n, 64, "scene", seed=seed)
    items = [ds[i] for i in range(n)]
    return np.stack([a for a, _ in items]), np.stack([t["semantic_mask"] for _, t in items])


def run(report, quick=False, device="cpu"):
    import matplotlib.pyplot as plt

    report.section("Lecture 8 — semantic segmentation")
    n_eval, n_sliding = (8, 1) if quick else (200, 5)
    images, masks = _scenes(n_eval)
    fcn, _ = _pretrained.load("fcn_shapes", report, device)          # segment() feeds them on their device
    patch, _ = _pretrained.load("patch_classifier_shapes", report, device)

    start = time.perf_counter()
    fcn_pred = segment(fcn, images)
    fcn_seconds = (time.perf_counter() - start) / n_eval
    fcn_miou = mean_iou(fcn_pred, masks, 6)[0]
    start = time.perf_counter()
    sliding_pred = sliding_window_segment(patch, images[:n_sliding])
    sliding_seconds = (time.perf_counter() - start) / n_sliding
    sliding_miou = mean_iou(sliding_pred, masks[:n_sliding], 6)[0]
    results = {"seg_fcn_miou": fcn_miou, "seg_fcn_seconds_per_image": fcn_seconds,
               "seg_sliding_miou": sliding_miou, "seg_sliding_seconds_per_image": sliding_seconds}
    rows = [["fully convolutional (transpose conv)", n_eval, fcn_miou, fcn_seconds],
            [f"sliding window ({patch.patch_size}×{patch.patch_size} patch per pixel)", n_sliding, sliding_miou,
             sliding_seconds]]
    unpool_path = _pretrained.pretrained.weights_path("fcn_unpool_shapes")
    if not quick and _pretrained.os.path.exists(unpool_path):
        unpool = _pretrained.pretrained.load_pretrained("fcn_unpool_shapes").to(device)
        report.model("fcn_unpool_shapes", "loaded from minidl/weights/fcn_unpool_shapes.npz (committed)",
                     "python benchmarks/train_lecture8.py --task fcn_unpool_shapes")
        start = time.perf_counter()
        unpool_miou = mean_iou(segment(unpool, images), masks, 6)[0]
        rows.insert(1, ["fully convolutional (max-unpooling)", n_eval, unpool_miou,
                        (time.perf_counter() - start) / n_eval])
        results["seg_fcn_unpool_miou"] = unpool_miou
    report.text("The sliding window classifies a patch around every one of the 64×64 pixels: 4,096 CNN "
                "forwards per image that recompute almost the same convolutions. The fully convolutional "
                "encoder–decoder computes all pixels' scores in one forward pass.")
    report.table(rows, ["method", "images", "mIoU", "seconds / image"])

    shown = min(4, n_eval)
    fig, axes = plt.subplots(shown, 4, figsize=(9, 2.3 * shown), squeeze=False)
    cmap = plt.get_cmap("tab10", 6)
    for r in range(shown):
        panels = [images[r].transpose(1, 2, 0), masks[r], fcn_pred[r],
                  sliding_pred[r] if r < n_sliding else None]
        for c, (panel, title) in enumerate(zip(panels, ["image", "ground truth", "FCN", "sliding window"])):
            ax = axes[r, c]
            ax.axis("off")
            if panel is None:
                continue
            ax.imshow(panel, cmap=None if c == 0 else cmap, vmin=0, vmax=5, interpolation="nearest")
            if r == 0:
                ax.set_title(title, fontsize=9)
    from matplotlib.patches import Patch
    fig.legend(handles=[Patch(color=cmap(k), label=name) for k, name in enumerate(("background",) + SHAPE_CLASSES)],
               loc="upper center", ncol=6, fontsize=8, frameon=False)
    report.figure(fig, "Predicted segmentation masks vs ground truth on held-out scenes.")

    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.barh([row[0] for row in rows], [row[3] for row in rows], color=["tab:blue"] * (len(rows) - 1) + ["tab:red"])
    ax.set(xscale="log", xlabel="seconds per 64×64 image (log scale)")
    report.figure(fig, "Inference time per image: the sliding window repeats work the FCN shares.")
    return results
