"""R-CNN's feature cache (Girshick et al. 2014; CS231n lecture 8): CNN features of every proposal, on disk.

R-CNN did not train its classifiers end to end. After fine-tuning the CNN (stage 1) it ran the
network once over every warped proposal of every training image and **wrote the features to
disk** (stage 2); the linear SVMs (stage 3) and the box regressors (stage 4) were then trained
from that cache, many passes over it without touching the CNN again. The lecture's complaint —
"training is slow and takes a lot of disk space" — is this file: hundreds of gigabytes for PASCAL
VOC in the paper; here ``size_mb`` says how much for the shapes world.

Two features are kept per region (names from the paper's AlexNet):

* ``pool5`` (K, D·P·P): the max-pooled conv features of the crop (``roi_pool`` over the whole
  warped region), what the **box regressor** reads;
* ``fc7`` (K, hidden): the output of the head's two shared fully connected layers (after ReLU),
  what the **SVMs** read.

and, per region: its image index, its box, whether it *is* a ground-truth box (the SVMs'
positives), its best-overlapping ground truth (box, label 0..C-1, IoU) and its highest IoU with
the ground truth of each class (the SVMs' negatives are the regions below 0.3 for that class).

On disk: one ``.npy`` per array, written batch by batch through ``np.lib.format.open_memmap``
(the features never need to fit in memory), and a small ``manifest.json`` written **last and
atomically** (temporary file + ``os.replace``): a cache without its manifest is incomplete and
``load_feature_cache`` refuses it, so a crash mid-way never leaves a cache that looks complete.
Loading maps the ``.npy`` files back read-only (``mmap_mode="r"``, no pickle).
"""
from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np

from ..ops import box_iou
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device
from .fast_rcnn import rois_with_batch_index
from .rcnn import warp_regions

MANIFEST = "manifest.json"
CACHE_VERSION = 1


class FeatureCacheError(RuntimeError):
    """The cache directory holds no complete, consistent feature cache."""


def iter_region_features(rcnn, images, rois, batch_size=256, progress=False, desc="features"):
    """Yield ``(start, pool5 (B, D·P·P), fc7 (B, hidden))`` float32 NumPy arrays for consecutive
    batches of ``rois`` (K, 5) = (image index, x1, y1, x2, y2) of ``images`` (N, 3, H, W).

    Each batch is warped (``warp_regions``) and run through the fine-tuned network exactly as
    ``rcnn.detect`` does; a forward hook on ``head.shared`` reads its input (pool5, flattened)
    and its output (fc7), so the features are the very activations the softmax head sees.
    """
    images = host_float32(images)
    rois = np.asarray(rois, np.float32).reshape(-1, 5)
    captured = {}

    def grab(module, inputs, output):
        captured["pool5"], captured["fc7"] = inputs[0], output

    handle = rcnn.head.shared.register_forward_hook(grab)
    rcnn.eval()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(rois), desc=desc, unit="region", mininterval=0.5, leave=False)
    try:
        device = model_device(rcnn)
        with no_grad():
            for start in range(0, len(rois), batch_size):
                crops = warp_regions(images, rois[start:start + batch_size], rcnn.crop_size)
                rcnn(Tensor(crops, device=device))
                yield start, captured["pool5"].numpy(), captured["fc7"].numpy()
                if bar is not None:
                    bar.update(len(crops))
    finally:
        handle.remove()
        if bar is not None:
            bar.close()


def region_features(rcnn, images, proposals, batch_size=256):
    """``(pool5 (K, D·P·P), fc7 (K, hidden))`` of the proposals (a list of (P_i, 4) boxes, one per
    image), stacked in order: rows of image 0 first. In memory — for detection, not for training."""
    rois = rois_with_batch_index(proposals)
    pool5, fc7 = [], []
    for _, p5, f7 in iter_region_features(rcnn, images, rois, batch_size):
        pool5.append(p5)
        fc7.append(f7)
    if not pool5:
        return (np.zeros((0, rcnn.head.shared[0].in_features), np.float32),
                np.zeros((0, rcnn.head.shared[-2].out_features), np.float32))
    return np.concatenate(pool5), np.concatenate(fc7)


def label_regions(boxes, gt_boxes, gt_labels, num_classes):
    """What each region overlaps: boxes (K, 4) against one image's ground truth ->
    ``(gt_box (K, 4), gt_label (K,), gt_iou (K,), class_iou (K, C))``.

    ``gt_*`` describe the best-overlapping ground truth (label -1, IoU 0 when the image has none);
    ``class_iou[k, c]`` is the highest IoU of region k with any ground truth of class c (0 if none).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    k = len(boxes)
    class_iou = np.zeros((k, num_classes), np.float32)
    if len(gt_boxes) == 0:
        return np.zeros((k, 4), np.float32), np.full(k, -1, np.int64), np.zeros(k, np.float32), class_iou
    iou = np.asarray(box_iou(boxes, gt_boxes), np.float32)         # (K, G)
    best = iou.argmax(axis=1)
    for c in np.unique(gt_labels):
        class_iou[:, c] = iou[:, gt_labels == c].max(axis=1)
    return gt_boxes[best], gt_labels[best], iou[np.arange(k), best], class_iou


def _directory_mb(folder, names):
    return sum(os.path.getsize(os.path.join(folder, n)) for n in names) / 1e6


def write_feature_cache(rcnn, images, targets, proposals, cache_dir, batch_size=256, progress=True):
    """Stage 2 of R-CNN: features of every region of every image, written to ``cache_dir``.

    images (N, 3, H, W); targets: N dicts with ``boxes`` (G, 4) and ``labels`` (G,) in 0..C-1;
    proposals: N arrays (P_i, 4). The regions of image i are its proposals followed by its
    ground-truth boxes (R-CNN's SVM positives). Returns the loaded ``FeatureCache``; its
    ``manifest`` records the seconds taken and the size in MB.

    An existing manifest in ``cache_dir`` is deleted *before* anything is overwritten, and the new
    one is written only after every array is complete and flushed. On an exception the partial
    ``.npy`` files are removed as well.
    """
    images = host_float32(images)
    if images.ndim != 4 or len(targets) != len(images) or len(proposals) != len(images):
        raise ValueError(f"write_feature_cache: expected images (N, C, H, W) with N targets and N proposal "
                         f"arrays; got images {images.shape}, {len(targets)} targets, {len(proposals)} proposals")
    start_time = time.perf_counter()
    num_classes = rcnn.num_classes
    os.makedirs(cache_dir, exist_ok=True)
    manifest_path = os.path.join(cache_dir, MANIFEST)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)               # the old cache is invalid from the first byte we write

    # Regions and their labels (small: computed in memory, before any feature).
    regions = [np.concatenate([np.asarray(p, np.float32).reshape(-1, 4),
                               np.asarray(t["boxes"], np.float32).reshape(-1, 4)]) for p, t in zip(proposals, targets)]
    is_gt = np.concatenate([np.r_[np.zeros(len(r) - len(t["boxes"]), bool), np.ones(len(t["boxes"]), bool)]
                            for r, t in zip(regions, targets)]) if regions else np.zeros(0, bool)
    labelled = [label_regions(r, t["boxes"], t["labels"], num_classes) for r, t in zip(regions, targets)]
    rois = rois_with_batch_index(regions)
    count = len(rois)
    if count == 0:
        raise ValueError("write_feature_cache: no regions (no proposals and no ground-truth boxes) to cache")
    pool5_dim, fc7_dim = rcnn.head.shared[0].in_features, rcnn.head.shared[-2].out_features
    metadata = {
        "image_index": rois[:, 0].astype(np.int32),
        "boxes": rois[:, 1:].copy(),
        "is_gt": is_gt,
        "gt_boxes": np.concatenate([lab[0] for lab in labelled]) if labelled else np.zeros((0, 4), np.float32),
        "gt_labels": np.concatenate([lab[1] for lab in labelled]) if labelled else np.zeros(0, np.int64),
        "gt_iou": np.concatenate([lab[2] for lab in labelled]) if labelled else np.zeros(0, np.float32),
        "class_iou": (np.concatenate([lab[3] for lab in labelled]) if labelled
                      else np.zeros((0, num_classes), np.float32)),
    }
    shapes = {"pool5": ((count, pool5_dim), np.float32), "fc7": ((count, fc7_dim), np.float32),
              **{name: (a.shape, a.dtype) for name, a in metadata.items()}}
    files = {name: f"{name}.npy" for name in shapes}
    try:
        arrays = {name: np.lib.format.open_memmap(os.path.join(cache_dir, files[name]), mode="w+",
                                                  dtype=dtype, shape=shape)
                  for name, (shape, dtype) in shapes.items()}
        for name, a in metadata.items():
            arrays[name][...] = a
        for start, pool5, fc7 in iter_region_features(rcnn, images, rois, batch_size, progress, "stage 2: features"):
            arrays["pool5"][start:start + len(pool5)] = pool5
            arrays["fc7"][start:start + len(fc7)] = fc7
        for a in arrays.values():
            a.flush()                          # every byte on disk before the manifest says so
        del arrays
    except BaseException:                      # KeyboardInterrupt too: leave no half cache behind
        for name in files.values():
            try:
                os.remove(os.path.join(cache_dir, name))
            except OSError:
                pass
        raise
    seconds = time.perf_counter() - start_time
    manifest = {"version": CACHE_VERSION, "count": count, "num_images": len(images), "num_classes": num_classes,
                "crop_size": rcnn.crop_size, "seconds": round(seconds, 3),
                "arrays": {name: {"file": files[name], "shape": list(shape), "dtype": np.dtype(dtype).str}
                           for name, (shape, dtype) in shapes.items()},
                "array_mb": round(_directory_mb(cache_dir, files.values()), 3)}
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".tmp", dir=cache_dir)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, manifest_path)         # atomic: the cache becomes valid in one step
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    cache = load_feature_cache(cache_dir)
    if progress:
        print(f"feature cache: {count} regions of {len(images)} images, {cache.size_mb:.1f} MB in {cache_dir}, "
              f"{seconds:.1f} s", flush=True)
    return cache


class FeatureCache:
    """A loaded cache: each array of the manifest as a read-only memmap attribute (``pool5``,
    ``fc7``, ``boxes``, ``image_index``, ``is_gt``, ``gt_boxes``, ``gt_labels``, ``gt_iou``,
    ``class_iou``), plus ``manifest``, ``count`` and ``size_mb`` (the files on disk)."""

    def __init__(self, cache_dir, manifest, arrays):
        self.cache_dir, self.manifest = cache_dir, manifest
        self.arrays = arrays
        for name, a in arrays.items():
            setattr(self, name, a)
        self.count = manifest["count"]

    @property
    def size_mb(self):
        """Megabytes (10⁶ bytes) of every file of the cache, manifest included."""
        return _directory_mb(self.cache_dir, [MANIFEST] + [m["file"] for m in self.manifest["arrays"].values()])

    def __len__(self):
        return self.count


def load_feature_cache(cache_dir):
    """Map a cache written by ``write_feature_cache`` back (read-only memmaps, ``allow_pickle=False``).

    Raises ``FeatureCacheError`` when the manifest is missing (an interrupted or never-finished
    write), unreadable, of another version, or when an array file is missing or does not have the
    shape and dtype the manifest records.
    """
    manifest_path = os.path.join(cache_dir, MANIFEST)
    if not os.path.exists(manifest_path):
        raise FeatureCacheError(f"{cache_dir!r} holds no complete feature cache: {MANIFEST} is missing "
                                f"(the write was interrupted or never ran)")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise FeatureCacheError(f"{manifest_path!r} is unreadable: {e}") from e
    if manifest.get("version") != CACHE_VERSION:
        raise FeatureCacheError(f"{manifest_path!r}: cache version {manifest.get('version')!r}, "
                                f"expected {CACHE_VERSION}; rebuild the cache")
    arrays = {}
    for name, meta in manifest["arrays"].items():
        path = os.path.join(cache_dir, meta["file"])
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise FeatureCacheError(f"feature cache {cache_dir!r}: array {name!r} ({path}) unreadable: {e}") from e
        if list(a.shape) != meta["shape"] or a.dtype.str != meta["dtype"]:
            raise FeatureCacheError(f"feature cache {cache_dir!r}: {name!r} is {a.shape} {a.dtype.str}, the manifest "
                                    f"says {tuple(meta['shape'])} {meta['dtype']}")
        arrays[name] = a
    return FeatureCache(cache_dir, manifest, arrays)
