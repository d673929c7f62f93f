"""Every committed lecture-8 detector on several held-out sets: mAP@0.5 spread and seconds per image.

    flock /tmp/minidl-bench.lock python benchmarks/compare_detectors.py [--scenes 200] [--seeds 1 2 3]

For each held-out set (``ShapesDataset(scenes, 64, "scene", seed=s)``; the detectors trained on
seed 0) it runs selective search once, then every detector of the tour's table
(``minidl.tour.detection.DETECTORS``): sliding windows classified by R-CNN's CNN (the window grid
with selective search's recall at IoU ≥ 0.7, on ``--window-scenes`` scenes: ~10,000 CNN forwards
each), R-CNN with SVMs + ridge, R-CNN with its softmax head, SPP-net, Fast R-CNN, YOLO, SSD.
Prints one row per detector with the mean mAP and its range over the sets, the seconds per image
(median over the sets; detectors run one image at a time, as in the tour) and the training cost
from ``minidl/weights/training_records.json``; then one ``RESULT {json}`` line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minidl.data import ShapesDataset                                              # noqa: E402
from minidl.detection.proposals import proposal_recall, selective_search         # noqa: E402
from minidl.detection.rcnn_svm import RCNNWithSVMs                                # noqa: E402
from minidl.detection.sliding_window import sliding_window_detect, windows_for_recall   # noqa: E402
from minidl.metrics import voc_map                                                 # noqa: E402
from minidl.models import pretrained                                               # noqa: E402
from minidl.tour.detection import DETECTORS, SVM_WEIGHTS, _training_cost           # noqa: E402


def load(key, name):
    model = pretrained.load_pretrained(name)
    return RCNNWithSVMs.load(SVM_WEIGHTS, model) if key == "rcnn_svm" else model


def run_one(model, source, images, proposals, windows):
    """Detections of ``images`` one at a time, and the network seconds per image."""
    start = time.perf_counter()
    out = []
    for i in range(len(images)):
        if source == "windows":
            out.append(sliding_window_detect(model, images[i:i + 1], windows)[0])
        elif source == "proposals":
            out.append(model.detect(images[i:i + 1], proposals[i:i + 1])[0])
        else:
            out.append(model.detect(images[i:i + 1])[0])
    return out, (time.perf_counter() - start) / len(images)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=200, help="held-out scenes per set")
    parser.add_argument("--window-scenes", type=int, default=10, help="scenes per set for the sliding windows")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="dataset seeds of the held-out sets")
    args = parser.parse_args(argv)
    models = {key: load(key, name) for key, name, _, _ in DETECTORS}
    per_key = {key: {"map": [], "seconds": [], "images": 0} for key, *_ in DETECTORS}
    extra = {"proposal_seconds": [], "proposals_per_image": [], "windows_per_image": [], "recall_0.7": []}
    for seed in args.seeds:
        ds = ShapesDataset(args.scenes, 64, "scene", seed=seed)
        items = [ds[i] for i in range(args.scenes)]
        images, targets = np.stack([a for a, _ in items]), [t for _, t in items]
        start = time.perf_counter()
        proposals = [selective_search(im, mode="fast", min_size=20) for im in images]
        extra["proposal_seconds"].append((time.perf_counter() - start) / len(images))
        extra["proposals_per_image"].append(float(np.mean([len(p) for p in proposals])))
        recall = proposal_recall(proposals, [t["boxes"] for t in targets], 0.7)
        windows, config, window_recall = windows_for_recall([t["boxes"] for t in targets], 64, recall, 0.7)
        extra["windows_per_image"].append(len(windows))
        extra["recall_0.7"].append((recall, window_recall))
        for key, _, label, source in DETECTORS:
            count = args.window_scenes if source == "windows" else args.scenes
            detections, seconds = run_one(models[key], source, images[:count], proposals[:count], windows)
            m = voc_map(detections, targets[:count], 5)["map"]
            boxes = extra["proposal_seconds"][-1] if source == "proposals" else 0.0
            per_key[key]["map"].append(m)
            per_key[key]["seconds"].append(seconds + boxes)
            per_key[key]["images"] = count
            print(f"seed {seed}  {key:10s} mAP@0.5 {m:.3f}  {seconds + boxes:.4f} s/img  ({count} scenes)", flush=True)

    print(f"\nheld-out sets: seeds {args.seeds}; selective search {np.mean(extra['proposals_per_image']):.0f} "
          f"proposals/img in {np.median(extra['proposal_seconds']):.4f} s; windows at equal recall (IoU 0.7): "
          f"{extra['windows_per_image']}, recalls (proposals, windows) {extra['recall_0.7']}")
    print(f"{'detector':58s} {'mAP@0.5 mean [min, max]':>24s} {'s/img':>8s}  training")
    rows = {}
    for key, name, label, _ in DETECTORS:
        maps = per_key[key]["map"]
        record = pretrained.training_record("rcnn_svm_shapes" if key == "rcnn_svm" else name) or {}
        rows[key] = {"label": label, "map_mean": float(np.mean(maps)), "map_min": float(np.min(maps)),
                     "map_max": float(np.max(maps)), "maps": maps, "images_per_set": per_key[key]["images"],
                     "seconds_per_image": float(np.median(per_key[key]["seconds"])),
                     "train_seconds": record.get("train_seconds"), "cache_mb": record.get("cache_mb")}
        print(f"{label:58s} {np.mean(maps):8.3f} [{np.min(maps):.3f}, {np.max(maps):.3f}] "
              f"{rows[key]['seconds_per_image']:8.4f}  {'; '.join(_training_cost(key, name))}")
    print("RESULT " + json.dumps({"seeds": args.seeds, "scenes": args.scenes, **extra, "detectors": rows},
                                 default=float))


if __name__ == "__main__":
    main()
