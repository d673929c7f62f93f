"""Tour chapter (lecture 8): object detection, in the order the lecture tells it.

Sliding windows → R-CNN (as the paper trained it: softmax fine-tuning, post-hoc SVMs and a ridge
box regressor; and with a softmax head) → SPP-net → Fast R-CNN → single-shot detectors (YOLO,
SSD). Committed weights, held-out scenes: mAP@0.5 (PASCAL VOC) of each detector, the time per
image split into proposals (selective search) and network, what training cost (from
``minidl/weights/training_records.json``, written by the runs that made the weights), and
detections drawn on the images.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..data import ShapesDataset
from ..data.shapes import SHAPE_CLASSES
from ..detection.proposals import proposal_recall, selective_search, sliding_window_proposals
from ..detection.sliding_window import WINDOW_LADDER, sliding_window_detect, windows_for_recall
from ..metrics import voc_map
from ..models import pretrained
from . import _pretrained

#: key, weights, label (what each detector changes), input: "windows", "proposals" or "image".
DETECTORS = (
    ("sliding", "rcnn_shapes", "sliding windows + R-CNN's CNN", "windows"),
    ("rcnn_svm", "rcnn_shapes", "R-CNN as published: CNN + SVMs + ridge box regressor", "proposals"),
    ("rcnn", "rcnn_shapes", "R-CNN, softmax head (warp + CNN per proposal)", "proposals"),
    ("spp_net", "spp_net_shapes", "SPP-net (conv once, pyramid-pool each window; conv frozen)", "proposals"),
    ("fast_rcnn", "fast_rcnn_shapes", "Fast R-CNN (shared features + RoI pool, end to end)", "proposals"),
    ("yolo", "yolo_shapes", "YOLO (S×S grid, B boxes per cell)", "image"),
    ("ssd", "ssd_shapes", "SSD (anchors on two feature maps)", "image"),
)

SVM_WEIGHTS = os.path.join(pretrained.WEIGHTS_DIR, "rcnn_svm_shapes.npz")


def _draw(ax, image, detections, target):
    """Ground truth (green) and the detector's G highest-scoring boxes (red), G = the number of
    objects: one rule for every detector, whatever its scores mean (probabilities or SVM margins)."""
    import matplotlib.patches as patches
    ax.imshow(image.transpose(1, 2, 0))
    for x1, y1, x2, y2 in target["boxes"]:
        ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="lime", lw=1))
    top = np.argsort(-np.asarray(detections["scores"]), kind="stable")[:len(target["boxes"])]
    for (x1, y1, x2, y2), score, label in zip(detections["boxes"][top], detections["scores"][top],
                                              detections["labels"][top]):
        ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="red", lw=1))
        # white on red, inside the image's top edge: readable on any background colour
        ax.text(x1, max(y1 - 1, 4), f"{SHAPE_CLASSES[label]} {score:.2f}", color="white", fontsize=6,
                va="bottom", bbox=dict(facecolor="red", edgecolor="none", pad=0.6, alpha=0.85))
    ax.axis("off")


def _load_detector(key, name, report, device):
    """The committed detector of ``key`` (the SVM R-CNN wraps the committed R-CNN's CNN)."""
    model, trained = _pretrained.load(name, report, device)
    if key != "rcnn_svm":
        return model, trained
    from ..detection.rcnn_svm import RCNNWithSVMs
    retrain = "python benchmarks/train_rcnn_svm.py"
    if not (trained and os.path.exists(SVM_WEIGHTS)):
        report.model("rcnn_svm_shapes", "MISSING: this row is skipped", retrain)
        return None, False
    report.model("rcnn_svm_shapes", "loaded from minidl/weights/rcnn_svm_shapes.npz (committed): SVMs + ridge "
                 "regressors on the committed R-CNN's features", retrain)
    return RCNNWithSVMs.load(SVM_WEIGHTS, model), True


def _training_cost(key, name):
    """``(training seconds text, disk text)`` from the records of the runs that made the weights."""
    record = pretrained.training_record("rcnn_svm_shapes" if key == "rcnn_svm" else name)
    if record is None:
        return "not recorded", "—"
    seconds = record.get("train_seconds")
    text = f"{seconds:.0f} s, {record.get('steps', '?')} steps" if seconds is not None else "?"
    if key in ("rcnn_svm", "spp_net"):
        base = pretrained.training_record("rcnn_shapes")
        base_seconds = base.get("train_seconds") if base else None
        what = "proposals, feature cache, SVMs, ridge" if key == "rcnn_svm" else "head"
        text = (f"{base_seconds:.0f} s fine-tuning + {seconds:.0f} s {what}" if base_seconds is not None
                else f"{seconds:.0f} s {what} (+ R-CNN's fine-tuning)")
    if key == "sliding":
        text = "R-CNN's CNN, as is"
    disk = f"{record['cache_mb']:.0f} MB feature cache" if key == "rcnn_svm" and "cache_mb" in record else "none"
    return text, disk


def _timing_story(rows, results):
    """The timing figure's caption, from the measured numbers (which detectors ran decides what it says)."""
    seconds = {key: results[f"det_{key}_seconds_per_image"] for key, *_ in DETECTORS
               if f"det_{key}_seconds_per_image" in results}
    network = {row[0]: row[7] for row in rows}
    label = {key: lab for key, _, lab, _ in DETECTORS}
    parts = []
    if "sliding" in seconds and "rcnn" in seconds:
        boxes = {row[0]: row[4] for row in rows}
        parts.append(f"The sliding windows classify {boxes[label['sliding']] / boxes[label['rcnn']]:.0f}× as many "
                     f"boxes as R-CNN and spend {network[label['sliding']] / network[label['rcnn']]:.0f}× its "
                     f"network time.")
    if "rcnn" in seconds:
        proposals = next(row[6] for row in rows if row[0] == label["rcnn"])
        ratio = network[label["rcnn"]] / proposals
        parts.append(f"R-CNN's CNN over every warped proposal takes {ratio:.1f}× as long as selective search "
                     f"itself." if ratio >= 1 else f"R-CNN's CNN over every warped proposal takes "
                     f"{ratio:.1f}× selective search's time: here the proposals dominate.")
    shared = [k for k in ("spp_net", "fast_rcnn") if k in seconds]
    if "rcnn" in seconds and shared:
        speedups = ", ".join(f"{label[k].split(' (')[0]} {network[label['rcnn']] / network[label[k]]:.0f}×"
                             for k in shared)
        parts.append(f"Convolving the image once makes the network part faster than R-CNN's ({speedups}), "
                     f"so selective search becomes the bottleneck.")
    single = [k for k in ("yolo", "ssd") if k in seconds]
    if single and shared:
        parts.append("Without proposals, " + " and ".join(label[k].split(" (")[0] for k in single)
                     + f" take {max(seconds[k] for k in single) * 1000:.1f} ms or less per image in all.")
    return " ".join(parts)


def run(report, quick=False, device="cpu"):
    import matplotlib.pyplot as plt

    report.section("Lecture 8 — object detection")
    n = 6 if quick else 100
    n_slow = min(n, 3 if quick else 20)         # R-CNN variants: a CNN forward per proposal
    n_windows = 1 if quick else 3               # sliding windows: ~10,000 CNN forwards per image
    ds = ShapesDataset(n, 64, "scene", seed=1)
    items = [ds[i] for i in range(n)]
    images, targets = np.stack([a for a, _ in items]), [t for _, t in items]
    gt = [t["boxes"] for t in targets]

    start = time.perf_counter()
    proposals = [selective_search(im, mode="fast", min_size=20) for im in images]
    proposal_seconds = (time.perf_counter() - start) / n
    ss_recall = {iou: proposal_recall(proposals, gt, iou) for iou in (0.5, 0.7)}

    # -- sliding windows: how many windows reach selective search's recall? ----------------------
    ladder = [(len(sliding_window_proposals(64, *c)), *(proposal_recall([sliding_window_proposals(64, *c)] * n, gt, iou)
                                                        for iou in (0.5, 0.7))) for c in WINDOW_LADDER]
    windows, config, window_recall = windows_for_recall(gt, 64, ss_recall[0.7], iou_threshold=0.7)
    report.text(f"Sliding windows first. Selective search proposes {np.mean([len(p) for p in proposals]):.0f} "
                f"boxes per image and finds {ss_recall[0.7]:.0%} of the objects at IoU ≥ 0.7 "
                f"({ss_recall[0.5]:.0%} at 0.5). The sparsest grid of windows that finds as many "
                f"({window_recall:.0%} at 0.7) has {len(windows):,} windows per image: scales {config[0]} px, "
                f"aspect ratios {config[1]}, stride {config[2]} px.")
    fig, ax = plt.subplots(figsize=(6.5, 3))
    counts = [row[0] for row in ladder]
    ax.plot(counts, [row[1] for row in ladder], "o-", color="tab:blue", label="sliding windows, IoU ≥ 0.5")
    ax.plot(counts, [row[2] for row in ladder], "s-", color="tab:orange", label="sliding windows, IoU ≥ 0.7")
    mean_props = np.mean([len(p) for p in proposals])
    ax.plot([mean_props], [ss_recall[0.5]], "*", ms=13, color="tab:blue", label="selective search, IoU ≥ 0.5")
    ax.plot([mean_props], [ss_recall[0.7]], "*", ms=13, color="tab:orange", label="selective search, IoU ≥ 0.7")
    ax.set(xscale="log", xlabel="boxes per 64×64 image (log scale)", ylabel="recall (objects found)", ylim=(0, 1.03))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    report.figure(fig, f"Recall of the window grids of WINDOW_LADDER (lines, sparsest to densest) against "
                       f"selective search (stars) on {n} held-out scenes: the windows need about "
                       f"{len(windows) / mean_props:.0f}× as many boxes for the same recall at IoU ≥ 0.7.")

    # -- every detector on the same held-out scenes -----------------------------------------------
    rows, results, all_detections = [], {}, {}
    for key, name, label, source in DETECTORS:
        model, _ = _load_detector(key, name, report, device)
        if model is None:
            continue
        count = {"windows": n_windows, "proposals": n_slow if key.startswith("rcnn") else n}.get(source, n)
        start = time.perf_counter()
        if source == "windows":
            detections = [sliding_window_detect(model, images[i:i + 1], windows)[0] for i in range(count)]
        elif source == "proposals":
            detections = [model.detect(images[i:i + 1], proposals[i:i + 1])[0] for i in range(count)]
        else:
            detections = [model.detect(images[i:i + 1])[0] for i in range(count)]
        network = (time.perf_counter() - start) / count
        boxes = {"windows": 0.0, "proposals": proposal_seconds}.get(source, 0.0)
        m = voc_map(detections, targets[:count], len(SHAPE_CLASSES))["map"]
        cost, disk = _training_cost(key, name)
        per_image = {"windows": len(windows), "proposals": round(float(mean_props))}.get(source, "—")
        rows.append([label, cost, disk, count, per_image, m, boxes, network, boxes + network])
        results.update({f"det_{key}_map50": m, f"det_{key}_seconds_per_image": boxes + network})
        all_detections[key] = detections
    report.text("Each detector below replaced the one above it. R-CNN runs its CNN on every warped proposal "
                "(as published: the CNN fine-tuned with a softmax, then one linear SVM per class and a "
                "least-squares box regressor trained on features cached on disk); SPP-net convolves the image "
                "once and pyramid-pools each proposal's window, but keeps the convolutions frozen; Fast R-CNN "
                "trains everything with one multi-task loss; YOLO and SSD need no proposals. "
                "mAP on the first 'images' held-out scenes (R-CNN rows fewer: a CNN forward per box); "
                "training times are the records of minidl/weights/training_records.json: the runs that made "
                "the committed weights, or re-trained their recipe to time it (docs/lecture8.md gives the "
                "mAP's spread over three held-out sets of 200 scenes).")
    report.table(rows, ["detector", "training", "disk while training", "images", "boxes classified / image",
                        "mAP@0.5", "proposals s/img", "network s/img", "total s/img"])

    keys = [k for k in ("sliding", "rcnn_svm", "spp_net", "fast_rcnn", "yolo", "ssd") if k in all_detections]
    fig, axes = plt.subplots(len(keys), 3, figsize=(6.6, 2.25 * len(keys)), squeeze=False)
    for r, key in enumerate(keys):
        for c in range(3):
            if c < len(all_detections[key]):
                _draw(axes[r, c], images[c], all_detections[key][c], targets[c])
            axes[r, c].axis("off")
        axes[r, 0].set_title(dict((k, l) for k, _, l, _ in DETECTORS)[key].split(" (")[0], fontsize=8, loc="left")
    report.figure(fig, "Ground truth (green) and each detector's highest-scoring boxes (red), as many as the "
                       "scene has objects, on the first held-out scenes, one detector per row. Scores are class "
                       "probabilities, except the published R-CNN's: SVM margins (negative ones included).")

    # two bars per detector, not stacked: on a log axis a stacked segment's length means nothing
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(rows) + 0.8))
    names = [row[0].split(" (")[0] for row in rows]
    y = np.arange(len(rows))
    proposal_bars = [row[6] if row[6] > 0 else np.nan for row in rows]      # nothing drawn where there are none
    ax.barh(y - 0.2, proposal_bars, height=0.4, color="tab:orange", label="proposals (selective search)")
    ax.barh(y + 0.2, [row[7] for row in rows], height=0.4, color="tab:blue", label="network")
    ax.set_yticks(y, names)
    ax.set(xlabel="seconds per 64×64 image (log scale)", xscale="log")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    report.figure(fig, "Inference time per image (log scale), measured above. " + _timing_story(rows, results))
    return results
