"""R-CNN trained as the paper did: stages 2-4 on top of the committed softmax-fine-tuned ``rcnn_shapes``.

    flock /tmp/minidl-bench.lock python benchmarks/train_rcnn_svm.py [--n-train 600] [--no-save]
                                                                      [--cache-dir DIR] [--keep-cache]

Stage 1 (fine-tune the CNN with a softmax classifier) is ``rcnn_shapes`` (benchmarks/train_lecture8.py).
This script runs ``minidl.detection.rcnn_svm.train_rcnn_with_svms`` on ``--n-train`` scenes of
dataset seed 0 — selective search proposals, stage 2 (features of every proposal and ground-truth
box cached on disk), stage 3 (one-vs-rest linear SVMs on fc7 with hard negative mining), stage 4
(ridge box regressors on pool5) — then evaluates mAP@0.5 on 200 held-out scenes of dataset seeds
1, 2 and 3 for the SVM + ridge detector, the same SVMs without the regressors, and the softmax
head (``rcnn.detect``), all with the same selective-search proposals. Seconds per image: each
detector run image by image on 50 scenes of seed 1 (proposals excluded, timed apart).

Prints a table and one ``RESULT {json}`` line; saves ``minidl/weights/rcnn_svm_shapes.npz``
(``RCNNWithSVMs.load(path, load_pretrained("rcnn_shapes"))``). The feature cache goes to
``--cache-dir`` (default ``~/.cache/minidl/rcnn_features``, never inside the repository) and is
deleted at the end unless ``--keep-cache``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minidl.detection.rcnn_svm import RCNNWithSVMs, default_cache_dir, train_rcnn_with_svms   # noqa: E402
from minidl.metrics import voc_map                                          # noqa: E402
from minidl.models import pretrained                                        # noqa: E402
from train_lecture8 import cpu_name, scenes, test_proposals as proposals_of   # noqa: E402  (same data, same proposals)

WEIGHTS = os.path.join(pretrained.WEIGHTS_DIR, "rcnn_svm_shapes.npz")


def seconds_per_image(detect, images, proposals):
    start = time.perf_counter()
    for i in range(len(images)):
        detect(images[i:i + 1], proposals[i:i + 1])
    return (time.perf_counter() - start) / len(images)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=600, help="training scenes (dataset seed 0)")
    parser.add_argument("--n-test", type=int, default=200, help="held-out scenes per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="held-out dataset seeds")
    parser.add_argument("--cache-dir", default=None, help="where the feature cache goes (not inside the repo)")
    parser.add_argument("--keep-cache", action="store_true", help="keep the feature cache afterwards")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {WEIGHTS}")
    args = parser.parse_args(argv)
    cache_dir = os.path.abspath(args.cache_dir or default_cache_dir())
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.commonpath([cache_dir, repo]) == repo:
        parser.error(f"--cache-dir {cache_dir} is inside the repository; choose a folder outside it")

    rcnn = pretrained.load_pretrained("rcnn_shapes")
    images, targets = scenes(args.n_train, 0)
    print(f"stages 2-4 on {args.n_train} training scenes; cache in {cache_dir}", flush=True)
    detector, report = train_rcnn_with_svms(rcnn, images, targets, cache_dir)
    stages = report["stage2_cache_seconds"] + report["stage3_svm_seconds"] + report["stage4_regression_seconds"]
    if not args.no_save:
        detector.save(WEIGHTS)
    if not args.keep_cache:
        shutil.rmtree(cache_dir, ignore_errors=True)

    no_regression = RCNNWithSVMs(rcnn, detector.svm_weights, detector.svm_biases,
                                 np.zeros_like(detector.regressor_weights), np.zeros_like(detector.regressor_biases))
    heads = {"svm+ridge": detector.detect, "svm only": no_regression.detect, "softmax": rcnn.detect}
    maps = {name: {} for name in heads}
    timing = {}
    for seed in args.seeds:
        xt, tt = scenes(args.n_test, seed)
        proposals, proposal_seconds = proposals_of(xt)
        for name, detect in heads.items():
            maps[name][seed] = voc_map(detect(xt, proposals), tt, 5)["map"]
        if seed == args.seeds[0]:
            timing["proposals"] = proposal_seconds
            for name in ("svm+ridge", "softmax"):
                timing[name] = seconds_per_image(heads[name], xt[:50], proposals[:50])
        print(f"  seed {seed}: " + ", ".join(f"{n} {maps[n][seed]:.3f}" for n in heads), flush=True)

    print(f"\nR-CNN stages 2-4 on {args.n_train} scenes: {report['cached_regions']} regions cached, "
          f"{report['cache_mb']:.0f} MB; proposals {report['proposal_seconds']:.1f} s, "
          f"stage 2 (cache) {report['stage2_cache_seconds']:.1f} s, "
          f"stage 3 (SVMs) {report['stage3_svm_seconds']:.1f} s, "
          f"stage 4 (ridge, λ = {report['ridge']['lambda']}) {report['stage4_regression_seconds']:.1f} s; "
          f"stages 2-4 {stages:.1f} s")
    print("hard-negative rounds per class (negatives used in the last round): " + ", ".join(
        f"{len(r)} ({r[-1]['negatives']})" for r in report["svm_rounds"]))
    print(f"\n| head | mAP@0.5 seed {' | seed '.join(map(str, args.seeds))} | mean | s / image (network) |")
    print("|---" * (len(args.seeds) + 3) + "|")
    for name in heads:
        values = [maps[name][s] for s in args.seeds]
        sec = f"{timing[name]:.4f}" if name in timing else "(as svm+ridge)"
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.3f} | {sec} |")
    print(f"selective search: {timing['proposals']:.4f} s / image")
    result = {"n_train": args.n_train, "n_test": args.n_test, "cached_regions": report["cached_regions"],
              "cache_mb": round(report["cache_mb"], 1), "proposal_seconds": round(report["proposal_seconds"], 2),
              "stage2_cache_seconds": round(report["stage2_cache_seconds"], 2),
              "stage3_svm_seconds": round(report["stage3_svm_seconds"], 2),
              "stage4_regression_seconds": round(report["stage4_regression_seconds"], 2),
              "stages_2_4_seconds": round(stages, 2), "ridge_lambda": report["ridge"]["lambda"],
              "hard_negative_rounds": [len(r) for r in report["svm_rounds"]],
              "final_negatives": [r[-1]["negatives"] for r in report["svm_rounds"]],
              "map": {name: {str(s): round(v, 4) for s, v in m.items()} for name, m in maps.items()},
              "mean_map": {name: round(float(np.mean(list(m.values()))), 4) for name, m in maps.items()},
              "seconds_per_image": {k: round(v, 4) for k, v in timing.items()}}
    if not args.no_save:
        result["weights_kib"] = round(os.path.getsize(WEIGHTS) / 1024, 1)
        # the record the tour and compare_detectors.py read: training = selective search on the
        # training scenes + stages 2-4 (stage 1, the softmax fine-tuning, is rcnn_shapes' record)
        pretrained.save_training_record("rcnn_svm_shapes", {
            "train_seconds": round(report["proposal_seconds"] + stages, 1), "steps": args.n_train,
            "n_train_scenes": args.n_train, "cache_mb": result["cache_mb"], "cached_regions": report["cached_regions"],
            "stage_seconds": {"proposals": result["proposal_seconds"], "cache": result["stage2_cache_seconds"],
                              "svms": result["stage3_svm_seconds"], "ridge": result["stage4_regression_seconds"]},
            "mAP@0.5": result["mean_map"]["svm+ridge"], "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d")})
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
