"""Tour chapter (lecture 8): object detection — R-CNN vs Fast R-CNN vs a single-shot detector.

Committed weights, held-out scenes: mAP@0.5 (PASCAL VOC) of each detector, the time per image
split into proposals (selective search) and network, and detections drawn on the images.
"""
from __future__ import annotations

import time

import numpy as np

from ..data import ShapesDataset
from ..data.shapes import SHAPE_CLASSES
from ..detection.proposals import selective_search
from ..metrics import voc_map
from . import _pretrained


def _draw(ax, image, detections, target, threshold=0.5):
    import matplotlib.patches as patches
    ax.imshow(image.transpose(1, 2, 0))
    for x1, y1, x2, y2 in target["boxes"]:
        ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="lime", lw=1))
    for (x1, y1, x2, y2), score, label in zip(detections["boxes"], detections["scores"], detections["labels"]):
        if score < threshold:
            continue
        ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="red", lw=1))
        # white on red, inside the image's top edge: readable on any background colour
        ax.text(x1, max(y1 - 1, 4), f"{SHAPE_CLASSES[label]} {score:.2f}", color="white", fontsize=7,
                va="bottom", bbox=dict(facecolor="red", edgecolor="none", pad=0.8, alpha=0.85))
    ax.axis("off")


def run(report, quick=False, device="cpu"):
    import matplotlib.pyplot as plt

    report.section("Lecture 8 — object detection")
    n = 6 if quick else 100
    ds = ShapesDataset(n, 64, "scene", seed=1)
    items = [ds[i] for i in range(n)]
    images, targets = np.stack([a for a, _ in items]), [t for _, t in items]

    start = time.perf_counter()
    proposals = [selective_search(im, mode="fast", min_size=20) for im in images]
    proposal_seconds = (time.perf_counter() - start) / n
    rows, results, all_detections = [], {}, {}
    for key, name, label in (("rcnn", "rcnn_shapes", "R-CNN (warp + CNN per proposal)"),
                             ("fast_rcnn", "fast_rcnn_shapes", "Fast R-CNN (shared features + RoI pool)"),
                             ("ssd", "ssd_shapes", "single-shot (anchors, no proposals)")):
        model, _ = _pretrained.load(name, report, device)   # proposals and NMS stay on the host
        count = min(n, 20) if key == "rcnn" else n                  # R-CNN is the slow one
        start = time.perf_counter()
        if key == "ssd":
            detections = [model.detect(images[i:i + 1])[0] for i in range(count)]
        else:
            detections = [model.detect(images[i:i + 1], proposals[i:i + 1])[0] for i in range(count)]
        network = (time.perf_counter() - start) / count
        props = 0.0 if key == "ssd" else proposal_seconds
        m = voc_map(detections, targets[:count], len(SHAPE_CLASSES))["map"]
        rows.append([label, count, m, props, network, props + network])
        results.update({f"det_{key}_map50": m, f"det_{key}_seconds_per_image": props + network})
        all_detections[key] = detections
    report.text(f"Selective search gives {np.mean([len(p) for p in proposals]):.0f} proposals per image. "
                "R-CNN runs its CNN on every warped proposal; Fast R-CNN runs the backbone once and pools "
                "each proposal from the shared feature map; the single-shot detector needs no proposals.")
    report.table(rows, ["detector", "images", "mAP@0.5", "proposals s/img", "network s/img", "total s/img"])

    fig, axes = plt.subplots(3, 4, figsize=(9, 7))
    for r, key in enumerate(("rcnn", "fast_rcnn", "ssd")):
        for c in range(4):
            if c < len(all_detections[key]):
                _draw(axes[r, c], images[c], all_detections[key][c], targets[c])
            axes[r, c].axis("off")
        axes[r, 0].set_title(key, fontsize=9, loc="left")
    report.figure(fig, "Detections with score >= 0.5 (red) and ground truth (green): R-CNN, Fast R-CNN, single-shot.")

    fig, ax = plt.subplots(figsize=(6.5, 2.4))
    names = [row[0].split(" (")[0] for row in rows]
    ax.barh(names, [row[3] for row in rows], color="tab:orange", label="proposals (selective search)")
    ax.barh(names, [row[4] for row in rows], left=[row[3] for row in rows], color="tab:blue", label="network")
    ax.set(xlabel="seconds per 64×64 image")
    ax.legend(fontsize=8)
    report.figure(fig, "Inference time per image.")
    return results
