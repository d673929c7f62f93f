"""Train every lecture-8 model on the shapes world, print its metric and time, save its weights.

    flock /tmp/minidl-bench.lock python benchmarks/train_lecture8.py --task all
    python benchmarks/train_lecture8.py --task fcn_shapes [--steps N] [--no-save | --record-only] [--device cuda]

Tasks (``minidl.models.pretrained.CONFIGS``): fcn_shapes, fcn_unpool_shapes, patch_classifier_shapes
(the sliding-window baseline), localizer_shapes, pose_shapes, fast_rcnn_shapes, rcnn_shapes,
ssd_shapes, yolo_shapes, spp_net_shapes. Each trains with seed 0 for a fixed number of steps (so the saved ``.npz`` is
reproduced up to BLAS rounding), evaluates on held-out images (dataset seed 1) and prints one
``METRIC <task> <metric>=<value> ... steps=N train_seconds=S device=D`` line with its headline
metric, then one ``RESULT {...}`` JSON line with every measure (the metric per class, the
training seconds, the inference time).

``--device cuda`` trains the same model from the same initial weights on the same batches on a
GPU (the data is generated on the host and each batch is copied to the model's device), so its
metric can be compared with a CPU run of the same ``--steps``; add ``--no-save`` to keep the
committed weights. A saved run also writes its training record (seconds, steps, metric, processor)
to ``minidl/weights/training_records.json``, which the tour's detector table reads;
``--record-only`` re-trains to time the committed recipe but keeps the committed weights.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minidl import backend, functional as F, optim                  # noqa: E402
from minidl.data import ShapesDataset                                 # noqa: E402
from minidl.metrics import accuracy, mean_box_iou, mean_iou, pck, voc_map   # noqa: E402
from minidl.models import pretrained                                  # noqa: E402
from minidl.autograd import Tensor                                      # noqa: E402

SIZE = 64


def scenes(n, seed):
    """Images (n, 3, 64, 64) and target dicts of ``n`` scene images."""
    ds = ShapesDataset(n, SIZE, "scene", seed=seed)
    items = [ds[i] for i in range(n)]
    return np.stack([im for im, _ in items]), [t for _, t in items]


def singles(n, seed, mode="single"):
    ds = ShapesDataset(n, SIZE, mode, seed=seed)
    items = [ds[i] for i in range(n)]
    images = np.stack([im for im, _ in items])
    return (images, np.array([t["labels"][0] for _, t in items]), np.stack([t["boxes"][0] for _, t in items]),
            np.stack([t["keypoints"][0] for _, t in items]))


def batches(n, batch_size, steps, seed=0):
    """``steps`` index batches: reshuffled passes over range(n), from a fixed generator."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < steps:
        order = rng.permutation(n)
        out.extend(order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size))
    return out[:steps]


def train_steps(model, step_fn, steps, lr, log_every=100, warmup=0):
    """Adam with a cosine learning-rate decay over ``steps``; ``step_fn(step) -> loss Tensor``.

    ``warmup > 0`` ramps the rate up linearly over the first ``warmup`` steps (a large rate on
    freshly initialised batch-norm statistics can otherwise throw the first steps far off).
    """
    opt = optim.Adam(model.parameters(), lr=lr)
    start, losses = time.perf_counter(), []
    model.train()
    for step in range(steps):
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
        for group in opt.param_groups:
            group["lr"] = lr * ramp * 0.5 * (1 + np.cos(np.pi * step / steps))
        loss = step_fn(step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        if (step + 1) % log_every == 0:
            print(f"  step {step + 1}/{steps}  loss {np.mean(losses[-log_every:]):.4f}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    model.eval()
    return time.perf_counter() - start, losses


def cpu_name():
    """The CPU model (``/proc/cpuinfo``), for the training records: timings depend on it."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


def per_image_seconds(fn, images, repeats=1):
    start = time.perf_counter()
    for _ in range(repeats):
        for i in range(len(images)):
            fn(images[i:i + 1])
    return (time.perf_counter() - start) / (repeats * len(images))


# ---- tasks ----------------------------------------------------------------------------------------

#: Per-pixel loss weight of each class for the segmenters: background (~90 % of the pixels of a
#: scene) counts 0.2, each shape class 1. Undone after training (``remove_class_weights_``).
SEGMENTATION_CLASS_WEIGHT = np.array([0.2, 1, 1, 1, 1, 1], np.float32)


def segmentation_report(pred, target):
    """mIoU and IoU per class (with names) of (N, H, W) predicted labels."""
    from minidl.data.shapes import SHAPE_CLASSES
    miou, per_class = mean_iou(pred, target, 6)
    names = ("background",) + SHAPE_CLASSES
    return {"mIoU": miou, "iou_per_class": {n: round(float(v), 3) for n, v in zip(names, per_class)}}


def task_fcn(name, steps, device="cpu", n_train=8000, batch_size=16, lr=2e-2, warmup=200):
    """Per-pixel cross-entropy, class-weighted (SEGMENTATION_CLASS_WEIGHT), on 8,000 scenes.

    The recipe (docs/lecture8.md): Adam at 2e-2 with a 200-step warm-up and cosine decay, batch
    16; the weighted loss makes the objects' pixels count, and folding ``-log w`` into the
    classifier's bias afterwards turns the scores back into those of the unweighted loss.
    """
    from minidl.models.segmentation import remove_class_weights_, segment
    model = pretrained.build(name).to(device)
    start = time.perf_counter()
    x, t = scenes(n_train, 0)
    y = np.stack([d["semantic_mask"] for d in t])
    xt, tt = scenes(200, 1)
    yt = np.stack([d["semantic_mask"] for d in tt])
    data_seconds = time.perf_counter() - start
    print(f"  {n_train} training + 200 held-out scenes generated in {data_seconds:.1f} s", flush=True)
    plan = batches(n_train, batch_size, steps)
    weight = SEGMENTATION_CLASS_WEIGHT

    def step(s):
        return F.cross_entropy(model(Tensor(x[plan[s]], device=device)), y[plan[s]], weight=weight)
    seconds, _ = train_steps(model, step, steps, lr, warmup=warmup)
    weighted = mean_iou(segment(model, xt), yt, 6)[0]
    remove_class_weights_(model.classifier, weight)
    return model, {**segmentation_report(segment(model, xt), yt), "mIoU_before_removing_weights": weighted,
                   "train_seconds": seconds, "data_seconds": data_seconds,
                   "seconds_per_image": per_image_seconds(lambda im: segment(model, im), xt[:50])}


def task_patch(name, steps, device="cpu", n_train=2000, batch_size=128, lr=3e-3, eval_images=50):
    """The sliding-window baseline: a patch classifier trained on patches around sampled pixels.

    Half of each batch is centred on object pixels (backgrounds would otherwise dominate); that
    sampling acts like a class weight (object classes ~5x as frequent as in the scenes), removed
    after training like the FCN's (``remove_class_weights_``).
    """
    from minidl.models.segmentation import extract_patches, remove_class_weights_, sliding_window_segment
    model = pretrained.build(name).to(device)
    x, t = scenes(n_train, 0)
    y = np.stack([d["semantic_mask"] for d in t])
    rng = np.random.default_rng(0)
    objects = np.argwhere(y > 0)          # (image, row, column) of every object pixel
    half = batch_size // 2

    def sample(step):
        pick_obj = objects[rng.integers(len(objects), size=half)]
        pick_any = np.stack([rng.integers(n_train, size=batch_size - half),
                             rng.integers(SIZE, size=batch_size - half),
                             rng.integers(SIZE, size=batch_size - half)], 1)
        centres = np.concatenate([pick_obj, pick_any])
        patches = extract_patches(x, model.patch_size, centres)
        return F.cross_entropy(model(Tensor(patches, device=device)), y[centres[:, 0], centres[:, 1], centres[:, 2]])
    seconds, _ = train_steps(model, sample, steps, lr)
    frequency = np.bincount(y.ravel(), minlength=6) / y.size             # in the scenes
    sampled = (batch_size - half) / batch_size * frequency                # in the training batches
    sampled[1:] += half / batch_size * frequency[1:] / frequency[1:].sum()
    remove_class_weights_(model.head[-1], sampled / frequency)
    xt, tt = scenes(eval_images, 1)
    yt = np.stack([d["semantic_mask"] for d in tt])
    start = time.perf_counter()
    pred = sliding_window_segment(model, xt)
    per_image = (time.perf_counter() - start) / len(xt)
    return model, {**segmentation_report(pred, yt), "train_seconds": seconds, "seconds_per_image": per_image,
                   "eval_images": len(xt)}


def task_localizer(name, steps, device="cpu", n_train=4000, batch_size=32, lr=3e-3):
    from minidl.models.localization import LocalizationLoss, localize
    model = pretrained.build(name).to(device)
    x, labels, boxes, _ = singles(n_train, 0)
    xt, lt, bt, _ = singles(500, 1)
    loss_fn = LocalizationLoss(box_weight=1.0, box_loss="smooth_l1")
    plan = batches(n_train, batch_size, steps)
    seconds, _ = train_steps(model, lambda s: loss_fn(model, Tensor(x[plan[s]], device=device),
                                                      (labels[plan[s]], Tensor(boxes[plan[s]], device=device))),
                             steps, lr)
    pl, pb = localize(model, xt)
    return model, {"accuracy": accuracy(pl, lt), "mean_box_iou": mean_box_iou(pb, bt), "train_seconds": seconds,
                   "seconds_per_image": per_image_seconds(lambda im: localize(model, im), xt[:100])}


def task_pose(name, steps, device="cpu", n_train=4000, batch_size=32, lr=3e-3):
    from minidl.models.pose import KeypointLoss, predict_keypoints
    model = pretrained.build(name).to(device)
    x, _, boxes, keypoints = singles(n_train, 0, "pose")
    xt, _, bt, kt = singles(500, 1, "pose")
    loss_fn = KeypointLoss(SIZE)
    plan = batches(n_train, batch_size, steps)
    seconds, _ = train_steps(model, lambda s: loss_fn(model(Tensor(x[plan[s]], device=device)),
                                                      Tensor(keypoints[plan[s]], device=device)), steps, lr)
    pk = predict_keypoints(model, xt)
    return model, {"PCK@0.1": pck(pk, kt, bt, alpha=0.1), "PCK@0.2": pck(pk, kt, bt, alpha=0.2),
                   "train_seconds": seconds,
                   "seconds_per_image": per_image_seconds(lambda im: predict_keypoints(model, im), xt[:100])}


def test_proposals(images):
    """Selective search ("fast" mode, small superpixels for 64-px scenes) per image, and its time."""
    from minidl.detection.proposals import selective_search
    start = time.perf_counter()
    proposals = [selective_search(im, mode="fast", min_size=20) for im in images]
    return proposals, (time.perf_counter() - start) / len(images)


def task_region_detector(name, steps, device="cpu", **kw):
    """R-CNN / Fast R-CNN: ``model.loss`` and ``model.detect`` take host images and run the network
    on the model's device (proposals, RoI sampling and NMS stay on the host)."""
    return train_region_detector(pretrained.build(name).to(device), steps, **kw)


def train_region_detector(model, steps, n_train=3000, batch_size=8, lr=2e-3, rois_per_image=64):
    """Train a region-based detector on jittered ground-truth proposals -> ``(model, result)``."""
    from minidl.detection.roi_sampling import jitter_proposals
    x, t = scenes(n_train, 0)
    plan = batches(n_train, batch_size, steps)
    rng = np.random.default_rng(0)

    def step(s):
        idx = plan[s]
        proposals = [jitter_proposals(t[i]["boxes"], (SIZE, SIZE), 64, rng) for i in idx]
        return model.loss(x[idx], proposals, [t[i] for i in idx], rois_per_image=rois_per_image, rng=rng)[0]
    seconds, _ = train_steps(model, step, steps, lr)
    return model, {**evaluate_region_detector(model), "train_seconds": seconds}


def evaluate_region_detector(model, n_test=200, seed=1):
    """mAP@0.5 on held-out scenes with selective-search proposals, and the seconds per image
    (proposals + network, one image at a time over the first 50)."""
    xt, tt = scenes(n_test, seed)
    proposals, proposal_seconds = test_proposals(xt)
    detections = model.detect(xt, proposals)
    start = time.perf_counter()
    for i in range(50):
        model.detect(xt[i:i + 1], proposals[i:i + 1])
    model_seconds = (time.perf_counter() - start) / 50
    return {"mAP@0.5": voc_map(detections, tt, 5)["map"],
            "network_seconds_per_image": model_seconds, "proposal_seconds_per_image": proposal_seconds,
            "seconds_per_image": model_seconds + proposal_seconds,
            "proposals_per_image": float(np.mean([len(p) for p in proposals]))}


def task_spp_net(name, steps, device="cpu", **kw):
    """SPP-net: R-CNN's trained CNN (``rcnn_shapes``) as the frozen backbone, only the head trained.

    The same data, proposals and RoI sampling as ``task_region_detector``; the backbone runs once
    per image without gradient, the pyramid-pooled windows feed the head. Its training seconds are
    the head's only: add R-CNN's (the backbone's) for the whole recipe.
    """
    model = pretrained.build(name).copy_backbone_from(pretrained.load_pretrained("rcnn_shapes")).to(device)
    return train_region_detector(model, steps, **kw)


def task_single_shot(name, steps, device="cpu", n_train=3000, batch_size=16, lr=3e-3):
    """Detectors without proposals (SSD, YOLO): ``model.loss(images, targets)`` and ``model.detect(images)``."""
    model = pretrained.build(name).to(device)
    x, t = scenes(n_train, 0)
    plan = batches(n_train, batch_size, steps)
    seconds, _ = train_steps(model, lambda s: model.loss(x[plan[s]], [t[i] for i in plan[s]])[0], steps, lr)
    xt, tt = scenes(200, 1)
    detections = model.detect(xt)
    return model, {"mAP@0.5": voc_map(detections, tt, 5)["map"], "train_seconds": seconds,
                   "seconds_per_image": per_image_seconds(model.detect, xt[:50])}


TASKS = {   # name: (function, default steps = the steps of the committed weights)
    "fcn_shapes": (task_fcn, 3000),
    "fcn_unpool_shapes": (task_fcn, 3000),
    "patch_classifier_shapes": (task_patch, 2000),
    "localizer_shapes": (task_localizer, 1200),
    "pose_shapes": (task_pose, 500),
    "fast_rcnn_shapes": (task_region_detector, 2000),
    "rcnn_shapes": (task_region_detector, 300),
    "ssd_shapes": (task_single_shot, 3000),
    "yolo_shapes": (functools.partial(task_single_shot, n_train=8000), 3000),   # 3000 scenes overfit (see docs)
    "spp_net_shapes": (task_spp_net, 1000),
}


#: the headline metric(s) of each task's METRIC line
HEADLINE = {"fcn_shapes": ("mIoU",), "fcn_unpool_shapes": ("mIoU",), "patch_classifier_shapes": ("mIoU",),
            "localizer_shapes": ("accuracy", "mean_box_iou"), "pose_shapes": ("PCK@0.1", "PCK@0.2"),
            "fast_rcnn_shapes": ("mAP@0.5",), "rcnn_shapes": ("mAP@0.5",), "ssd_shapes": ("mAP@0.5",),
            "yolo_shapes": ("mAP@0.5",), "spp_net_shapes": ("mAP@0.5",)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", nargs="+", default=["all"], help=f"one or more of {list(TASKS)} or all")
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--no-save", action="store_true", help="do not write minidl/weights/<task>.npz")
    parser.add_argument("--record-only", action="store_true",
                        help="keep the committed weights but write the run's training record (how long the "
                             "committed recipe takes to train, for the tour's table)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="train and evaluate on this device (cuda: needs CuPy and a GPU)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not backend.cuda_available():
        parser.error("--device cuda: no usable GPU (CuPy is not installed, or it finds no CUDA device or driver)")
    names = list(TASKS) if args.task == ["all"] else args.task
    for name in names:
        if name not in TASKS:
            parser.error(f"unknown task {name!r}; choose from {list(TASKS)}")
    device = backend.device_name(args.device)
    for name in names:
        fn, steps = TASKS[name]
        steps = args.steps or steps
        print(f"[{name}] training {steps} steps on {device} ...", flush=True)
        model, result = fn(name, steps, device=args.device)
        result = {"task": name, "steps": steps, "device": device, **result}
        print(f"METRIC {name} " + " ".join(f"{k}={result[k]:.4f}" for k in HEADLINE[name])
              + f" steps={steps} train_seconds={result['train_seconds']:.1f} device={args.device}", flush=True)
        if not args.no_save:
            path = pretrained.weights_path(name)
            if args.record_only:        # the committed weights stay; this run only measured the recipe
                result["note"] = "re-trained only to time the recipe; the committed weights were kept"
            else:
                model.save(path)
            result["weights_kib"] = round(os.path.getsize(path) / 1024, 1)
            pretrained.save_training_record(name, {**{k: (round(v, 4) if isinstance(v, float) else v)
                                                      for k, v in result.items() if not isinstance(v, dict)},
                                                   "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d")})
        print("RESULT " + json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}),
              flush=True)


if __name__ == "__main__":
    main()
