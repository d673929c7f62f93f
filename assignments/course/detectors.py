"""Assignment 7 — from sliding windows to single-shot detectors (CS231n lecture 8).

The notebook walks the lecture's history of object detection, one technique per part, each written by the
student and checked against frozen results of minidl's own implementation:

1. sliding windows: every window of a few scales and aspect ratios (``sliding_window_proposals``), counted and
   turned into CNN forward passes and seconds (the committed R-CNN's CNN timed on warped windows);
2. selective search: the similarity of two regions (colour + texture histogram intersection, size, fill) and
   the greedy hierarchical grouping (``hierarchical_grouping``) on a given Felzenszwalb over-segmentation;
   recall at IoU 0.5 of the student's proposals vs sliding windows;
3. R-CNN's warp: crop + bilinear resize of every proposal (``rcnn.warp_regions``, RoIAlign's sampling);
4. R-CNN's post-hoc SVMs: one-vs-rest hinge loss + L2 with a hand-written gradient on cached features of the
   committed ``rcnn_shapes`` network; held-out accuracy (simplified labelling: one IoU rule for all classes and a
   background SVM, unlike the paper's ground-truth-only positives; the markdown says so);
5. Fast R-CNN: the backward of RoI max pooling (argmax switches, summed where bins overlap);
6. Fast R-CNN's multi-task loss (``box_head.detection_loss``): softmax cross-entropy + smooth-L1 on the true
   class's offsets of the foreground RoIs;
7. single-shot detector: the anchor grid, anchor matching (``ops.match_anchors``) and the encoded per-anchor
   targets (``SingleShotDetector.assign_targets``), with a figure of the matched anchors;
8. the single-shot detector's loss: per-anchor softmax cross-entropy with hard negative mining
   (``negative_ratio`` = 3 negatives per positive, at least 8, the highest-loss ones) + smooth-L1 on the positives'
   offsets (``SingleShotDetector.loss``);
9. PASCAL VOC mAP (``metrics.voc_map`` / ``average_precision``), then the committed R-CNN, Fast R-CNN and
   single-shot detectors compared on held-out scenes with the student's mAP (table + precision-recall figure).

Assumptions: assignment 3 (IoU, NMS, RoI pooling forward) is done, so a plain NumPy IoU (``box_iou_np``) is given
here and minidl's ``box_iou`` is forbidden where IoU is part of the lesson (parts 7 and 9); the
feature extraction for selective search (``region_features``, Felzenszwalb) and the SVM features are given;
SSD's loss (part 8) is checked on given scores and offsets of random anchors, frozen through
``SingleShotDetector.loss`` itself (a stand-in for the network returns them). VOC matching uses the
devkit's strict ``IoU > 0.5``, as minidl does.
"""
from __future__ import annotations

import numpy as np

from course.spec import part, trials

STEM = "07_detectors"

PARTS = [
    part("sliding", "Part 1 — sliding windows and their cost", 2,
         forbid=["sliding_window_proposals", "_positions", "selective_search"]),
    part("selective", "Part 2 — selective search: similarity and greedy grouping", 3,
         forbid=["selective_search", "hierarchical_grouping", "region_features", "_similarity",
                 "sliding_window_proposals"]),
    part("warp", "Part 3 — R-CNN: warp each proposal to a fixed crop", 2,
         forbid=["warp_regions", "roi_align", "RoIAlignFunction", "roi_align_forward", "roi_align_reference",
                 "interpolation_matrix", "resize", "zoom", "map_coordinates", "interpolate"]),
    part("svm", "Part 4 — R-CNN's one-vs-rest linear SVMs", 2,
         forbid=["multi_margin_loss", "cross_entropy", "LinearSVC", "SVC"]),
    part("roi_backward", "Part 5 — Fast R-CNN: RoI max pooling backward", 2,
         forbid=["roi_pool", "RoIPool", "RoIPoolFunction", "roi_pool_backward", "roi_pool_reference",
                 "roi_align"]),
    part("box_loss", "Part 6 — Fast R-CNN's multi-task loss", 2,
         forbid=["detection_loss", "cross_entropy", "smooth_l1_loss", "log_softmax", "softmax", "nll_loss",
                 "logsumexp", "l1_loss", "huber_loss"]),
    part("ssd", "Part 7 — single-shot detector: anchors, matching, targets", 3,
         forbid=["anchor_grid", "match_anchors", "encode_boxes", "assign_targets", "box_iou",
                 "SingleShotDetector"]),
    part("ssd_loss", "Part 8 — single-shot detector: per-anchor loss with hard negative mining", 2,
         forbid=["SingleShotDetector", "cross_entropy", "smooth_l1_loss", "log_softmax", "softmax", "nll_loss",
                 "logsumexp", "l1_loss", "huber_loss", "detection_loss"]),
    part("map", "Part 9 — mean average precision", 2,
         forbid=["voc_map", "average_precision", "coco_map", "_coco_ap_101", "box_iou", "precision_recall_curve",
                 "average_precision_score"]),
]

CELLS = [
    ("md", """
# Assignment 7 — from sliding windows to single-shot detectors (lecture 8)

Assignment 3 built the small pieces every detector uses (IoU, NMS, RoI pooling). This notebook follows the
lecture's story of detection itself, from the brute force to the detectors in use today:

| part | idea | the lecture's point |
|---|---|---|
| 1 | sliding windows | "apply a CNN to a huge number of locations and scales" — count them, time them |
| 2 | selective search | a few hundred class-agnostic *region proposals* instead |
| 3–4 | R-CNN | warp every proposal to a fixed crop, a CNN per crop, then linear SVMs on its features |
| 5–6 | Fast R-CNN | convolve once, RoI-pool each region (its backward), one multi-task loss |
| 7–8 | single-shot (SSD) | no proposals: anchors at every cell, matched to the objects; a loss per anchor |
| 9 | mAP | how all of them are compared |

Boxes are `(x1, y1, x2, y2)` in pixels, as in PyTorch. The images are 64×64 scenes of `minidl.data.ShapesDataset`
(5 classes: circle, square, triangle, ellipse, star); the networks are minidl's committed ones
(`minidl.models.load_pretrained("rcnn_shapes" | "fast_rcnn_shapes" | "ssd_shapes")`).

Write your code where a cell says `TODO`. `pytest -m assignment7_warp` (or `_sliding`, `_selective`, `_svm`,
`_roi_backward`, `_box_loss`, `_ssd`, `_ssd_loss`, `_map`) checks one part of your notebook in `work/`;
`python -m minidl.grade work/07_detectors.ipynb` grades all of it. The expected results are fixed data computed
once from minidl's implementation; an answer that calls that implementation (`sliding_window_proposals`,
`hierarchical_grouping`, `warp_regions`, `roi_pool`, `detection_loss`, `match_anchors`, `voc_map`, ...) scores 0
for the part. In parts 7 and 9 that includes minidl's `box_iou` (assignment 3's `ops.box_iou`): use the given
NumPy `box_iou_np` instead.
"""),
    ("code", """
import time
import numpy as np
import matplotlib.pyplot as plt
import matplotlib.patches as patches
import minidl
import minidl.functional as F
from minidl import Function, Tensor, nn, tensor
from minidl.checks import check_at_least, check_close, check_gradients
from minidl.grade.frozen import check_cases, frozen_cases
from minidl.gradcheck import numerical_grad, rel_error
from minidl.data import ShapesDataset
from minidl.data.shapes import SHAPE_CLASSES
from minidl.models import load_pretrained

cases = frozen_cases("07_detectors")       # the expected results of this notebook's checks


def box_iou_np(a, b):
    # plain NumPy IoU (assignment 3): a (M, 4), b (N, 4) -> (M, N)
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def draw_boxes(ax, boxes, color, lw=1.0, alpha=1.0):
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
        ax.add_patch(patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=color,
                                       lw=lw, alpha=alpha))


scenes = ShapesDataset(8, 64, "scene", seed=1)          # held-out scenes (the networks trained on seed 0)
scene_images = np.stack([scenes[i][0] for i in range(8)])
scene_targets = [scenes[i][1] for i in range(8)]
rcnn = load_pretrained("rcnn_shapes")                   # committed weights: loading is cheap
"""),
    # ---------------------------------------------------------------- part 1
    ("md", """
## Part 1 — sliding windows and their cost (2 points)

The brute-force detector classifies *every* window. A window of scale `s` and aspect ratio `r = h / w` is
`w = s / √r` wide and `h = s·√r` high (area `s²`, torchvision's anchor convention; **part 7's SSD anchors use the
opposite convention, `r = w / h`**), shrunk to the image when
larger (`w = min(w, W)`, `h = min(h, H)`). It slides with step `stride` (one number, or one per scale) over an
image of `(H, W)` pixels; along one axis of length `L` the start offsets are

    starts = np.arange(0, L - w + 1e-6, stride)          # float64
    if there is none, or starts[-1] < L - w - 1e-6:  append L - w    (the far border is covered too)

Every `(x, y)` pair of starts gives a box `(x, y, x + w, y + h)` (rows: y outer, x inner, as `np.meshgrid(xs, ys)`
ravelled). Collect all scales (outer) and ratios (inner), then remove duplicates the way minidl does —
`np.unique(boxes.round(3), axis=0)` (shrunk windows can coincide; this also sorts the rows) — and return
float32 `(N, 4)`. `image_size` is an int (square) or `(H, W)`.

The check compares your boxes with frozen ones, then turns the count for a 480×640 photo into CNN forward
passes and seconds with the committed R-CNN network.
"""),
    ("answer", "sliding", """
def my_sliding_windows(image_size, scales, aspect_ratios, stride):
    # -> (N, 4) float32 boxes, unique rows (sorted by np.unique)
    ### BEGIN SOLUTION
    if np.ndim(image_size) == 0:
        height = width = int(image_size)
    else:
        height, width = (int(v) for v in image_size)
    scales = np.asarray(scales, np.float64).reshape(-1)
    strides = np.broadcast_to(np.asarray(stride, np.float64), scales.shape)

    def starts(length, window, step):
        s = np.arange(0, length - window + 1e-6, step, dtype=np.float64)
        if len(s) == 0 or s[-1] < length - window - 1e-6:
            s = np.append(s, length - window)
        return s

    boxes = []
    for scale, step in zip(scales, strides):
        for ratio in np.asarray(aspect_ratios, np.float64).reshape(-1):
            w = min(scale / np.sqrt(ratio), width)
            h = min(scale * np.sqrt(ratio), height)
            xs, ys = np.meshgrid(starts(width, w, step), starts(height, h, step))
            xs, ys = xs.ravel(), ys.ravel()
            boxes.append(np.stack([xs, ys, xs + w, ys + h], axis=1))
    return np.unique(np.concatenate(boxes).round(3), axis=0).astype(np.float32)
    ### END SOLUTION
"""),
    ("check", "sliding", """
check_cases("my_sliding_windows", my_sliding_windows, cases["sliding windows"], tol=1e-6,
            hint="w = s / sqrt(r), h = s * sqrt(r), shrunk to the image; starts from np.arange(0, L - w + 1e-6, "
                 "stride) plus L - w when the border is not reached; np.unique(boxes.round(3), axis=0)")

# The cost: how many windows has a 480x640 photo, and how long would the R-CNN network need for all of them?
photo = my_sliding_windows((480, 640), scales=(32, 64, 128, 256), aspect_ratios=(0.5, 1.0, 2.0), stride=8)
small = my_sliding_windows(64, scales=(16, 32, 64), aspect_ratios=(0.5, 1.0, 2.0), stride=8)
from minidl.detection.rcnn import warp_regions             # given here; you write it in part 3
from minidl.detection.fast_rcnn import rois_with_batch_index
crops = warp_regions(scene_images[:1], rois_with_batch_index([small[:256]]), rcnn.crop_size)   # (256, 3, 32, 32)
with minidl.no_grad():
    rcnn(Tensor(crops))                                    # warm-up
    start = time.perf_counter()
    rcnn(Tensor(crops))
    per_window = (time.perf_counter() - start) / len(crops)
print(f"64x64 scene: {len(small)} windows; 480x640 photo: {len(photo)} windows")
print(f"this CPU: {1e3 * per_window:.3f} ms per 32x32 window -> {len(photo) * per_window:.1f} s per photo for a "
      f"tiny 32x32 CNN; at ~100 windows/s (an AlexNet-size CNN on 227x227 crops, one GPU) "
      f"{len(photo) / 100 / 60:.0f} minutes per photo")
check_at_least("windows of a 480x640 photo", len(photo), 30000,
               hint="four scales x three ratios at stride 8 give tens of thousands of windows")

fig, ax = plt.subplots(1, 3, figsize=(8, 2.8))
for a, scale in zip(ax, (16, 32, 64)):
    a.imshow(scene_images[0].transpose(1, 2, 0))
    w = my_sliding_windows(64, scales=(scale,), aspect_ratios=(0.5, 1.0, 2.0), stride=8)
    draw_boxes(a, w[::max(1, len(w) // 12)], "red", alpha=0.7)
    a.set_title(f"scale {scale}: {len(w)} windows (some drawn)", fontsize=8)
    a.axis("off")
plt.show()
"""),
    # ---------------------------------------------------------------- part 2
    ("md", """
## Part 2 — selective search: similarity and greedy grouping (3 points)

Selective search (Uijlings et al., 2013) starts from an over-segmentation into `R` superpixels (Felzenszwalb's
graph-based segmentation, given) and greedily merges the two most similar **neighbouring** regions until one is
left; every region ever formed is a proposal. Each region `i` has (given, `minidl.detection.proposals.region_features`):
`colour[i]` (L1-normalized colour histogram), `texture[i]` (L1-normalized gradient-orientation histogram),
`size[i]` (pixels), `boxes[i]` (its bounding box). The similarity of regions `a` and `b` is a sum of the terms
named in `measures` (a string, a subset of `"CTSF"`), each in [0, 1]:

    C: Σ_k min(colour[a, k], colour[b, k])                  histogram intersection
    T: Σ_k min(texture[a, k], texture[b, k])
    S: 1 − (size[a] + size[b]) / image_area                  merge small regions first
    F: 1 − (area(BB_ab) − size[a] − size[b]) / image_area    BB_ab: the box around both; regions that fit together

`my_similarity(a, others, ...)` scores `a` (an int, or an index array as long as `others`) against each region in
`others` (an index array) → `(len(others),)`.

`my_hierarchical_grouping` merges. Keep arrays for `2R − 1` regions (region `R + t` is made by merge `t`), a set
of neighbours per region, and a **max-heap** of `(−similarity, a, b)` for every neighbouring pair `a < b`
(`heapq`; on equal similarity the smaller `(a, b)` comes first). Repeat until the heap is empty:

1. pop the best pair; if `a` or `b` was already merged away, skip it (a stale entry);
2. the new region `t`: histograms = the size-weighted mean `(size[a]·h[a] + size[b]·h[b]) / (size[a] + size[b])`,
   size = the sum, box = the box around both boxes; `a` and `b` are no longer alive;
3. its neighbours = the neighbours of `a` and `b` except `a`, `b`; in their neighbour sets replace `a`, `b` by `t`;
4. push `(−my_similarity(t, r), r, t)` for each neighbour `r` (one call for all of them is convenient; the push order
   does not matter: no two heap entries are equal, so the pops come out in the same order whatever it is).

Return the boxes of all regions formed, oldest first: float32 `(2R − 1, 4)`. The check then runs your grouping
on 8 strategies (HSV and Lab colour, two segmentation scales, measures `"CTSF"` and `"TSF"`: the paper's fast
mode) and compares the recall of the pooled proposals with sliding windows.
"""),
    ("code", """
import heapq
import skimage.segmentation
from minidl.detection import proposals as proposals_lib


def oversegment(image, space="hsv", k=100, min_size=20):
    # the given first steps of selective search: Felzenszwalb superpixels of one (3, H, W) image and their features
    colour_image = proposals_lib.convert_colour(image.transpose(1, 2, 0).astype(np.float64), space)
    labels = proposals_lib._relabel(skimage.segmentation.felzenszwalb(
        colour_image, scale=k, sigma=0.8, min_size=min_size, channel_axis=-1))
    colour, texture, size, boxes = proposals_lib.region_features(labels, colour_image)
    pairs = proposals_lib._neighbour_pairs(labels)          # (P, 2) neighbouring regions a < b
    return colour, texture, size, boxes, pairs, float(labels.size)
"""),
    ("answer", "selective", """
def my_similarity(a, others, colour, texture, size, boxes, image_area, measures):
    # -> (len(others),) float64: the sum of the measures named in `measures`
    ### BEGIN SOLUTION
    total = np.zeros(len(others))
    if "C" in measures:
        total += np.minimum(colour[a], colour[others]).sum(axis=1)
    if "T" in measures:
        total += np.minimum(texture[a], texture[others]).sum(axis=1)
    if "S" in measures:
        total += 1.0 - (size[a] + size[others]) / image_area
    if "F" in measures:
        x1 = np.minimum(boxes[a, 0], boxes[others, 0])
        y1 = np.minimum(boxes[a, 1], boxes[others, 1])
        x2 = np.maximum(boxes[a, 2], boxes[others, 2])
        y2 = np.maximum(boxes[a, 3], boxes[others, 3])
        total += 1.0 - ((x2 - x1) * (y2 - y1) - size[a] - size[others]) / image_area
    return total
    ### END SOLUTION


def my_hierarchical_grouping(colour0, texture0, size0, boxes0, pairs, image_area, measures):
    # -> (2R - 1, 4) float32: the boxes of the R superpixels, then of each merged region in merge order
    ### BEGIN SOLUTION
    n = len(size0)
    capacity = 2 * n - 1
    colour = np.zeros((capacity, colour0.shape[1]))
    texture = np.zeros((capacity, texture0.shape[1]))
    size, boxes = np.zeros(capacity), np.zeros((capacity, 4))
    colour[:n], texture[:n], size[:n], boxes[:n] = colour0, texture0, size0, boxes0
    alive = np.zeros(capacity, bool)
    alive[:n] = True
    neighbours = [set() for _ in range(capacity)]
    for a, b in np.asarray(pairs).tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    sims = my_similarity(pairs[:, 0], pairs[:, 1], colour, texture, size, boxes, image_area, measures)
    heap = [(-s, a, b) for s, (a, b) in zip(sims.tolist(), np.asarray(pairs).tolist())]
    heapq.heapify(heap)
    new = n
    while heap:
        _, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue
        total = size[a] + size[b]
        colour[new] = (size[a] * colour[a] + size[b] * colour[b]) / total
        texture[new] = (size[a] * texture[a] + size[b] * texture[b]) / total
        size[new] = total
        boxes[new] = [min(boxes[a, 0], boxes[b, 0]), min(boxes[a, 1], boxes[b, 1]),
                      max(boxes[a, 2], boxes[b, 2]), max(boxes[a, 3], boxes[b, 3])]
        alive[a] = alive[b] = False
        alive[new] = True
        around = (neighbours[a] | neighbours[b]) - {a, b}
        for r in around:
            neighbours[r] -= {a, b}
            neighbours[r].add(new)
        neighbours[new] = around
        if around:
            others = np.fromiter(around, dtype=np.int64)
            sims = my_similarity(new, others, colour, texture, size, boxes, image_area, measures)
            for s, r in zip(sims.tolist(), others.tolist()):
                heapq.heappush(heap, (-s, r, new))
        new += 1
    return boxes[:new].astype(np.float32)
    ### END SOLUTION
"""),
    ("check", "selective", """
check_cases("my_similarity", my_similarity, cases["similarity"], tol=1e-12,
            hint="C and T: sum of the elementwise minimum of the histograms; S and F are 1 - (...) / image_area")
check_cases("my_hierarchical_grouping", my_hierarchical_grouping, cases["grouping"], tol=0,
            hint="pop the most similar pair (heapq with -similarity), skip pairs with a merged region, the new "
                 "region's histograms are the size-weighted mean, push its similarity to each new neighbour")

# Your grouping on the paper's fast mode: 2 colour spaces x 2 scales x 2 similarity sets, boxes pooled
start = time.perf_counter()
mine = []
for image in scene_images:
    boxes = []
    for space in ("hsv", "lab"):
        for k in (50, 100):
            colour, texture, size, region_boxes, pairs, area = oversegment(image, space, k)
            for measures in ("CTSF", "TSF"):
                boxes.append(my_hierarchical_grouping(colour, texture, size, region_boxes, pairs, area, measures))
    mine.append(np.unique(np.concatenate(boxes), axis=0))
seconds = (time.perf_counter() - start) / len(scene_images)
windows = proposals_lib.sliding_window_proposals(64)          # 16, 32, 64 px x 3 ratios, stride 8


def recall(props, iou=0.5):
    hits = [box_iou_np(t["boxes"], p).max(axis=1) >= iou for p, t in zip(props, scene_targets)]
    return float(np.concatenate(hits).mean())


print(f"selective search (yours): {np.mean([len(p) for p in mine]):.0f} boxes per image, "
      f"recall@0.5 {recall(mine):.2f}, {seconds:.2f} s per image")
print(f"sliding windows:          {len(windows)} boxes per image, recall@0.5 {recall([windows] * 8):.2f}")
check_at_least("recall@0.5 of your selective search", recall(mine), 0.9)

fig, ax = plt.subplots(1, 2, figsize=(6, 3))
for a, props, title in ((ax[0], mine[0], "selective search (yours)"), (ax[1], windows, "sliding windows")):
    a.imshow(scene_images[0].transpose(1, 2, 0))
    best = np.unique(box_iou_np(scene_targets[0]["boxes"], props).argmax(axis=1))
    draw_boxes(a, props[best], "red", lw=1.5)
    draw_boxes(a, scene_targets[0]["boxes"], "lime")
    a.set_title(f"{title}: {len(props)} boxes,\\nbest one per object (red), truth (green)", fontsize=8)
    a.axis("off")
plt.show()
"""),
    # ---------------------------------------------------------------- part 3
    ("md", """
## Part 3 — R-CNN: warp each proposal to a fixed crop (2 points)

R-CNN's CNN takes a fixed input size, so every proposal, whatever its shape, is cropped and stretched to
`S × S` pixels (the paper's anisotropic "warp"). minidl samples the image **bilinearly** (RoIAlign with
`aligned=True`, 2×2 samples per output pixel, averaged). For a RoI `(b, x1, y1, x2, y2)` of image `b`:

    x1, y1, x2, y2 = x1 − 0.5, y1 − 0.5, x2 − 0.5, y2 − 0.5     (pixel centres sit at integer + 0.5)
    bin_w = (x2 − x1) / S,  bin_h = (y2 − y1) / S
    output pixel (i, j) samples  y = y1 + i·bin_h + (g + 0.5)·bin_h / 2,  x = x1 + j·bin_w + (g' + 0.5)·bin_w / 2
                                 for g, g' ∈ {0, 1}, and averages the 4 values (divide by 4)

One sample at `(y, x)` on an image `(C, H, W)`: if `y < −1` or `y > H` or `x < −1` or `x > W` it contributes 0
(but still counts in the average). Otherwise clamp `y = max(y, 0)`, `y_lo = int(y)`; if `y_lo ≥ H − 1` then
`y_lo = y_hi = H − 1` and `y = y_lo`, else `y_hi = y_lo + 1`; the same for `x`. The value is

    (1−ly)(1−lx)·I[y_lo, x_lo] + (1−ly)·lx·I[y_lo, x_hi] + ly(1−lx)·I[y_hi, x_lo] + ly·lx·I[y_hi, x_hi],   ly = y − y_lo, lx = x − x_lo

Bilinear interpolation is separable: you may build for each RoI a row-weight matrix `R_y (S, H)` and a column-weight
matrix `R_x (S, W)` (each summing its two samples) and compute `R_y @ image @ R_x.T / 4` for all channels at
once — or loop. `images (N, C, H, W)`, `rois (K, 5)` → float32 `(K, C, S, S)`.
"""),
    ("answer", "warp", """
def my_warp_regions(images, rois, crop_size):
    # images (N, C, H, W), rois (K, 5) = (batch index, x1, y1, x2, y2) -> (K, C, S, S) float32
    ### BEGIN SOLUTION
    N, C, H, W = images.shape
    S = int(crop_size)

    def weights(start, bin_size, size):          # (S, size): the summed weights of each output row's 2 samples
        r = np.zeros((S, size))
        for p in range(S):
            for g in range(2):
                v = start + p * bin_size + (g + 0.5) * bin_size / 2
                if v < -1 or v > size:
                    continue
                v = max(v, 0.0)
                lo = int(v)
                if lo >= size - 1:
                    lo = hi = size - 1
                    v = float(lo)
                else:
                    hi = lo + 1
                frac = v - lo
                r[p, lo] += 1 - frac
                r[p, hi] += frac
        return r

    out = np.zeros((len(rois), C, S, S), np.float32)
    for k, (b, x1, y1, x2, y2) in enumerate(np.asarray(rois, np.float64)):
        x1, y1, x2, y2 = x1 - 0.5, y1 - 0.5, x2 - 0.5, y2 - 0.5
        r_y = weights(y1, (y2 - y1) / S, H)
        r_x = weights(x1, (x2 - x1) / S, W)
        out[k] = r_y @ images[int(b)].astype(np.float64) @ r_x.T / 4
    return out
    ### END SOLUTION
"""),
    ("check", "warp", """
check_cases("my_warp_regions", my_warp_regions, cases["warp"], tol=1e-5,
            hint="shift the corners by -0.5 (aligned), 2x2 samples per output pixel at (g + 0.5) * bin / 2, "
                 "samples beyond -1 or H contribute 0 but count, clamp to [0, H - 1], divide by 4")
# the defining property: bilinear sampling reproduces a linear ramp I[y, x] = 0.3 x + 0.7 y exactly, so each output
# pixel is the ramp at its bin's centre (pixel centres at integer + 0.5: x = x1 - 0.5 + (j + 0.5) * bin_w)
yy, xx = np.mgrid[0:20, 0:20]
ramp = np.broadcast_to(0.3 * xx + 0.7 * yy, (1, 2, 20, 20)).astype(np.float32)
x1, y1, x2, y2, S = 4.0, 6.0, 14.0, 12.0, 5
centres_x = x1 - 0.5 + (np.arange(S) + 0.5) * (x2 - x1) / S
centres_y = y1 - 0.5 + (np.arange(S) + 0.5) * (y2 - y1) / S
check_close("a warped linear ramp is the ramp at the bin centres",
            my_warp_regions(ramp, np.array([[0, x1, y1, x2, y2]]), S),
            np.broadcast_to(0.3 * centres_x[None, :] + 0.7 * centres_y[:, None], (1, 2, S, S)), tol=1e-6)

# the ground-truth boxes of scene 0, warped: expected (frozen, minidl) above, yours below
boxes = scene_targets[0]["boxes"]
rois = np.concatenate([np.zeros((len(boxes), 1), np.float32), boxes], axis=1)
expected_crops = cases["warp scene"][0].expected
mine = my_warp_regions(scene_images[:1], rois, 32)
check_close("warped objects of scene 0", mine, expected_crops, tol=1e-5)
fig, ax = plt.subplots(2, len(boxes) + 1, figsize=(1.6 * (len(boxes) + 1), 3.4), squeeze=False)
ax[0, 0].imshow(scene_images[0].transpose(1, 2, 0)); draw_boxes(ax[0, 0], boxes, "lime"); ax[0, 0].set_title("scene 0, objects", fontsize=8)
ax[1, 0].axis("off")
for i in range(len(boxes)):
    ax[0, i + 1].imshow(expected_crops[i].transpose(1, 2, 0).clip(0, 1)); ax[0, i + 1].set_title("expected", fontsize=8)
    ax[1, i + 1].imshow(mine[i].transpose(1, 2, 0).clip(0, 1)); ax[1, i + 1].set_title("yours", fontsize=8)
for a in ax.ravel():
    a.axis("off")
plt.show()
"""),
    # ---------------------------------------------------------------- part 4
    ("md", """
## Part 4 — R-CNN's one-vs-rest linear SVMs (2 points)

R-CNN did not classify with the CNN's softmax: it cached the CNN features of every warped proposal and trained
one **linear SVM per class** on them (one-vs-rest). Here the features are the 256 activations of the committed
R-CNN's fully connected layers (`head.shared`, its "fc7"), for proposals of training scenes labelled by IoU with
the objects: class `c + 1` at IoU ≥ 0.5, background `0` below 0.3 (the rest is dropped). With `K = 6` classes
(background included), features `X (N, D)`, weights `W (D, K)`, biases `b (K,)` and targets `t_ik = +1` if
`y_i = k` else `−1`:

    S = X W + b                      (N, K) scores
    L = (1/N) Σ_i Σ_k max(0, 1 − t_ik · S_ik)  +  (reg / 2) · ‖W‖²      (the bias is not regularized)

Write the loss **and its gradient by hand** (no autograd): `dS_ik = −t_ik · [1 − t_ik S_ik > 0] / N`,
`dW = Xᵀ dS + reg · W`, `db = Σ_i dS_i`. Return `(loss, dW, db)`. The check compares with frozen values,
checks the gradient against central differences, then trains the SVMs with a given gradient-descent loop and
expects at least 70 % accuracy on regions of held-out scenes (predict `argmax_k S_ik`; about 60 % are background).

*What R-CNN itself did:* its SVMs took only the **ground-truth boxes** as positives of their class and proposals
with IoU < 0.3 to every object of that class as its negatives (IoU ≥ 0.5 was the rule for fine-tuning the CNN), and
there was one SVM per object class and **no background SVM** (a region every SVM rejects is background). This
notebook simplifies: one IoU labelling for all regions (ground-truth boxes included) and background as a 6th
one-vs-rest class, so a region is classified by the argmax of the six scores.
"""),
    ("answer", "svm", """
def my_svm_loss(W, b, X, y, reg):
    # W (D, K), b (K,), X (N, D), y (N,) ints in [0, K) -> (loss float, dW (D, K), db (K,))
    ### BEGIN SOLUTION
    N, K = X.shape[0], W.shape[1]
    scores = X @ W + b
    t = -np.ones((N, K))
    t[np.arange(N), y] = 1.0
    margins = np.maximum(0.0, 1.0 - t * scores)
    loss = margins.sum() / N + 0.5 * reg * (W * W).sum()
    d_scores = -t * (margins > 0) / N
    return loss, X.T @ d_scores + reg * W, d_scores.sum(axis=0)
    ### END SOLUTION
"""),
    ("check", "svm", """
def svm_parts(W, b, X, y, reg):
    loss, dW, db = my_svm_loss(W, b, X, y, reg)
    return np.concatenate([[loss], np.ravel(dW), np.ravel(db)])

check_cases("my_svm_loss (loss, dW, db)", svm_parts, cases["svm loss"], tol=1e-10,
            hint="the hinge is max(0, 1 - t * s) with t = +1 for the true class and -1 for every other; "
                 "divide the hinge sum by N; reg / 2 * ||W||^2, the bias not regularized")
rng = np.random.default_rng(5)
W0, b0, X0, y0 = rng.standard_normal((7, 4)), rng.standard_normal(4), rng.standard_normal((9, 7)), rng.integers(0, 4, 9)
_, dW, db = my_svm_loss(W0, b0, X0, y0, 0.3)
check_close("dW vs central differences", dW, numerical_grad(lambda w: my_svm_loss(w, b0, X0, y0, 0.3)[0], W0.copy()), 1e-6)
check_close("db vs central differences", db, numerical_grad(lambda v: my_svm_loss(W0, v, X0, y0, 0.3)[0], b0.copy()), 1e-6)

# cached R-CNN features of labelled proposals (given), then the SVMs trained with your loss
from minidl.detection.proposals import selective_search
from minidl.detection.rcnn import warp_regions
from minidl.detection.fast_rcnn import rois_with_batch_index


def labelled_region_features(seed, n):
    ds = ShapesDataset(n, 64, "scene", seed=seed)
    images, boxes, labels = [], [], []
    for i in range(n):
        image, target = ds[i]
        props = np.concatenate([selective_search(image, mode="single", min_size=20), target["boxes"]])
        iou = box_iou_np(props, target["boxes"])
        label = np.where(iou.max(1) >= 0.5, target["labels"][iou.argmax(1)] + 1, np.where(iou.max(1) < 0.3, 0, -1))
        images.append(image); boxes.append(props[label >= 0]); labels.append(label[label >= 0])
    crops = warp_regions(np.stack(images), rois_with_batch_index(boxes), rcnn.crop_size)
    with minidl.no_grad(), nn.capture_activations(rcnn, ["head.shared"]) as acts:
        rcnn(Tensor(crops))
    return acts["head.shared"].numpy().astype(np.float64), np.concatenate(labels)


X_train, y_train = labelled_region_features(seed=2, n=40)
X_test, y_test = labelled_region_features(seed=3, n=20)
mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-6
X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
W, b = np.zeros((X_train.shape[1], 6)), np.zeros(6)
losses = []
for step in range(300):                                     # plain gradient descent
    loss, dW, db = my_svm_loss(W, b, X_train, y_train, 1e-4)
    W, b = W - 0.2 * dW, b - 0.2 * db
    losses.append(loss)
train_acc = float(((X_train @ W + b).argmax(1) == y_train).mean())
test_acc = float(((X_test @ W + b).argmax(1) == y_test).mean())
print(f"{len(y_train)} training regions, {len(y_test)} held-out; loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
      f"accuracy train {train_acc:.3f}, held-out {test_acc:.3f} (background only: {(y_test == 0).mean():.3f})")
check_at_least("held-out accuracy of your SVMs", test_acc, 0.7)
"""),
    # ---------------------------------------------------------------- part 5
    ("md", """
## Part 5 — Fast R-CNN: RoI max pooling backward (2 points)

Fast R-CNN trains end to end: the loss's gradient flows from the head through RoI pooling into the shared
backbone. Each output cell `(k, c, ph, pw)` of a max pool came from one input position, its **argmax** (the
"switch" the forward recorded): the backward sends the cell's gradient there and nowhere else. Bins of one RoI
can overlap by a row (floor/ceil), and RoIs overlap each other, so one input position can be the argmax of several
cells: their gradients **add up**.

The forward is given (assignment 3 wrote it): it returns `argmax (K, C, PH, PW)` int64, the flat index `h·W + w`
of the maximum within image `int(rois[k, 0])`, or `−1` where a bin was empty (no gradient). Write
`my_roi_pool_backward(grad_output (K, C, PH, PW), argmax, rois (K, 5), input_shape (N, C, H, W))` → `grad_input`
of `input_shape`. Careful: `g[idx] += v` with repeated indices adds only once in NumPy — use `np.add.at`.
"""),
    ("code", """
from minidl.kernels import roi_pool as roi_pool_kernels


def pool_with_switches(features, rois, output_size, spatial_scale):
    # given: RoI max pooling forward -> (output (K, C, PH, PW), argmax (K, C, PH, PW))
    return roi_pool_kernels.roi_pool_forward(features, rois, output_size, spatial_scale)
"""),
    ("answer", "roi_backward", """
def my_roi_pool_backward(grad_output, argmax, rois, input_shape):
    # -> (N, C, H, W) array: each cell's gradient added at its argmax in image int(rois[k, 0])
    ### BEGIN SOLUTION
    N, C, H, W = (int(v) for v in input_shape)
    grad_input = np.zeros((N, C, H * W), dtype=grad_output.dtype)
    K = grad_output.shape[0]
    batch = np.broadcast_to(np.asarray(rois[:, 0]).astype(np.int64)[:, None, None, None], argmax.shape)
    channel = np.broadcast_to(np.arange(C)[None, :, None, None], argmax.shape)
    hit = argmax >= 0
    np.add.at(grad_input, (batch[hit], channel[hit], argmax[hit]), grad_output[hit])
    return grad_input.reshape(N, C, H, W)
    ### END SOLUTION


class MyRoIPool(Function):
    @staticmethod
    def forward(ctx, features, rois, output_size=(2, 2), spatial_scale=1.0):
        output, argmax = pool_with_switches(features, rois, output_size, spatial_scale)
        ctx.save_for_backward(argmax, rois)
        ctx.input_shape = features.shape
        return output

    @staticmethod
    def backward(ctx, grad_output):
        argmax, rois = ctx.saved_tensors
        return my_roi_pool_backward(grad_output, argmax, rois, ctx.input_shape), None
"""),
    ("check", "roi_backward", """
check_cases("my_roi_pool_backward", my_roi_pool_backward, cases["roi pool backward"], tol=1e-12,
            hint="each cell's gradient goes to grad_input[int(rois[k, 0]), c].flat[argmax]; where bins or RoIs share "
                 "an argmax the gradients must add up (np.add.at), and argmax -1 gets nothing")
features = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
rois = np.array([[0, 0, 0, 9, 7], [1, 2, 1, 14, 15], [0, 4, 4, 15, 13], [1, 0, 0, 5, 4.0]])
check_gradients("MyRoIPool (your backward), overlapping bins and RoIs",
                lambda x: MyRoIPool.apply(x, rois, output_size=(3, 3), spatial_scale=0.5), [features])
"""),
    # ---------------------------------------------------------------- part 6
    ("md", """
## Part 6 — Fast R-CNN's multi-task loss (2 points)

The box head of R-CNN/Fast R-CNN gives every RoI `C + 1` class scores and `4·C` box offsets (4 per class). Its loss
(`K` RoIs, labels `0` = background, `c + 1` = class `c`; `regression_targets (K, 4)`: the encoded offsets to
the RoI's object):

    classification = mean_i  −log softmax(class_logits_i)[labels_i]          (subtract the row max first)
    regression     = (1/K) Σ_{i: labels_i > 0}  Σ_{j=0..3} smoothL1(box_deltas[i, 4(labels_i − 1) + j] − t_ij)
    smoothL1(d)    = 0.5·d²/β  if |d| < β,  else |d| − 0.5·β          (β = 1/9)
    total          = classification + regression

Only the 4 offsets of the RoI's **true class** are trained, only for foreground RoIs, and the sum is divided by
**all** `K` RoIs (torchvision's choice). Use minidl tensor operations (`.max`, `.exp`, `.log`, `.sum`, `.abs()`,
indexing, `F.where(condition_array, a, b)`, multiplying by a 0/1 mask array) so autograd gives the gradient; return
`(total, classification, regression)` scalar Tensors.
"""),
    ("answer", "box_loss", """
def my_detection_loss(class_logits, box_deltas, labels, regression_targets, beta=1.0 / 9):
    # class_logits (K, C+1) Tensor, box_deltas (K, 4C) Tensor, labels (K,) ints, regression_targets (K, 4) array
    ### BEGIN SOLUTION
    K, four_c = box_deltas.shape
    shifted = class_logits - class_logits.max(axis=1, keepdims=True).detach()
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    classification = -log_probs[np.arange(K), labels].mean()
    mask = np.zeros((K, four_c))
    full_targets = np.zeros((K, four_c))
    for i in np.flatnonzero(labels > 0):
        mask[i, 4 * (labels[i] - 1):4 * labels[i]] = 1.0
        full_targets[i, 4 * (labels[i] - 1):4 * labels[i]] = regression_targets[i]
    d = (box_deltas * mask - full_targets).abs()
    regression = F.where(d.data < beta, 0.5 * d * d / beta, d - 0.5 * beta).sum() / float(max(K, 1))
    return classification + regression, classification, regression
    ### END SOLUTION
"""),
    ("check", "box_loss", """
def loss_parts(logits, deltas, labels, targets):
    return np.array([float(v.item()) for v in my_detection_loss(tensor(logits), tensor(deltas), labels, targets)])

check_cases("my_detection_loss (total, classification, regression)", loss_parts, cases["detection loss"], tol=1e-6,
            hint="regression: only the 4 columns of the true class, only labels > 0, summed and divided by all K "
                 "RoIs; smooth-L1 with beta = 1/9")
logits, deltas, labels, targets = cases["detection loss"][0].args
check_gradients("my_detection_loss gradient", lambda lo, de: my_detection_loss(lo, de, labels, targets)[0],
                [logits, deltas])
# large scores must not overflow
check_cases("my_detection_loss at scores of ±1000, stable", loss_parts, cases["detection loss extreme"], tol=1e-6,
            strict=True)
"""),
    # ---------------------------------------------------------------- part 7
    ("md", """
## Part 7 — single-shot detector: anchors, matching, targets (3 points)

A single-shot detector (SSD) has no proposals: at every cell of a feature map sit `A` fixed **anchors**, and a
conv head predicts for each anchor `C + 1` scores and 4 offsets, in one forward pass. Three pieces:

**Anchors** (`my_anchor_grid`): cell `(i, j)` of an `H×W` map with `stride` pixels per cell is centred at
`((j + 0.5)·stride, (i + 0.5)·stride)`; it gets, for each size `s` (outer loop) and aspect ratio `r = w / h`
(inner; SSD's convention), a box `s·√r` wide and `s/√r` high. **Careful: here `r = w / h`, the opposite of part 1's
sliding windows (`r = h / w`): ratio 2 is a wide anchor here, a tall window there.** Order: cell-major, row by row, the `A` anchors of a
cell together → float32 `(H·W·A, 4)`.

**Matching** (`my_match_anchors`): with `iou = IoU(gt, anchors)` `(G, A)`, each anchor takes its best ground
truth (argmax, the first on ties): IoU ≥ `pos_threshold` → that gt's index, IoU < `neg_threshold` → −1
(background), in between → −2 (ignored). Then each ground truth `j = 0, 1, ...` in order also **claims its own
best anchor** (argmax over anchors, if that IoU > 0), so no object goes unmatched (a later gt wins a shared anchor).
No ground truth: all −1. → int64 `(A,)`. Compute the IoU with the given NumPy `box_iou_np`: minidl's `box_iou`
(assignment 3's `ops.box_iou`) is forbidden in this part — an answer that calls it scores 0.

**Targets** (`my_assign_targets`, thresholds 0.5 / 0.4): labels `(A,)` = `gt_label + 1` for a matched anchor,
`0` for background, `−1` for ignored; box targets `(A, 4)` float32, zero except for the positives, which get the
encoding of their gt box `G` relative to the anchor `P` (centres and sizes, SSD's weights `(10, 10, 5, 5)`):

    (10·(gx − px)/pw,  10·(gy − py)/ph,  5·log(gw/pw),  5·log(gh/ph))

The check uses the committed SSD's 1920 anchors (16×16 cells at stride 4, sizes 8 and 13; 8×8 at stride 8, sizes
20 and 30; ratios 1, 2, ½) and draws the positive anchors of one scene: the frozen expected ones beside yours.
"""),
    ("answer", "ssd", """
def my_anchor_grid(feature_size, stride, sizes, aspect_ratios):
    # feature_size (H, W), stride (pixels per cell) -> (H * W * A, 4) float32
    ### BEGIN SOLUTION
    H, W = (int(v) for v in feature_size)
    half = np.array([[-s * np.sqrt(r), -s / np.sqrt(r), s * np.sqrt(r), s / np.sqrt(r)]
                     for s in np.ravel(sizes) for r in np.ravel(aspect_ratios)]) / 2          # (A, 4)
    cy, cx = np.meshgrid((np.arange(H) + 0.5) * stride, (np.arange(W) + 0.5) * stride, indexing="ij")
    centres = np.stack([cx, cy, cx, cy], axis=-1).reshape(-1, 1, 4)
    return (centres + half[None]).reshape(-1, 4).astype(np.float32)
    ### END SOLUTION


def my_match_anchors(anchors, gt_boxes, pos_threshold=0.5, neg_threshold=0.4):
    # -> (A,) int64: gt index, -1 background, -2 ignored
    ### BEGIN SOLUTION
    matches = np.full(len(anchors), -1, dtype=np.int64)
    if len(gt_boxes) == 0:
        return matches
    iou = box_iou_np(gt_boxes, anchors)                                   # (G, A)
    best_gt = iou.argmax(axis=0)
    best_iou = iou[best_gt, np.arange(len(anchors))]
    matches = np.where(best_iou >= pos_threshold, best_gt, np.where(best_iou < neg_threshold, -1, -2)).astype(np.int64)
    for j in range(len(gt_boxes)):
        if iou[j].max() > 0:
            matches[int(iou[j].argmax())] = j
    return matches
    ### END SOLUTION


def my_assign_targets(anchors, gt_boxes, gt_labels):
    # -> labels (A,) int64 (0 background, c + 1, -1 ignored), box_targets (A, 4) float32
    ### BEGIN SOLUTION
    matches = my_match_anchors(anchors, gt_boxes, 0.5, 0.4)
    positive = matches >= 0
    labels = np.where(positive, np.asarray(gt_labels)[np.maximum(matches, 0)] + 1 if len(gt_labels) else 0,
                      np.where(matches == -1, 0, -1)).astype(np.int64)
    box_targets = np.zeros((len(anchors), 4), np.float32)
    if positive.any():
        g = np.asarray(gt_boxes, np.float64)[matches[positive]]
        p = np.asarray(anchors, np.float64)[positive]
        pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
        px, py = p[:, 0] + 0.5 * pw, p[:, 1] + 0.5 * ph
        gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
        gx, gy = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
        box_targets[positive] = np.stack([10 * (gx - px) / pw, 10 * (gy - py) / ph,
                                          5 * np.log(gw / pw), 5 * np.log(gh / ph)], axis=1)
    return labels, box_targets
    ### END SOLUTION
"""),
    ("check", "ssd", """
check_cases("my_anchor_grid", my_anchor_grid, cases["anchor grid"], tol=1e-6,
            hint="centres at (j + 0.5) * stride, sizes outer and ratios inner, width s * sqrt(r), height s / sqrt(r); "
                 "cell-major order (the A anchors of a cell together)")
check_cases("my_match_anchors", my_match_anchors, cases["match anchors"], tol=0,
            hint=">= pos_threshold positive, < neg_threshold background (-1), in between ignored (-2); then each "
                 "gt in order claims its best anchor")
ssd = load_pretrained("ssd_shapes")
anchors = ssd.anchors                                  # (1920, 4): 16x16 cells x 6 anchors + 8x8 cells x 6 anchors
check_cases("my_assign_targets labels", lambda b, l: my_assign_targets(anchors, b, l)[0], cases["ssd labels"], tol=0,
            hint="gt label + 1 for positives, 0 for background, -1 for ignored anchors")
check_cases("my_assign_targets box targets", lambda b, l: my_assign_targets(anchors, b, l)[1], cases["ssd box targets"],
            tol=1e-5, hint="(10 dx / pw, 10 dy / ph, 5 log(gw / pw), 5 log(gh / ph)) from the centres; zeros elsewhere")

image, target = ShapesDataset(4, 64, "scene", seed=11)[0]       # the scene of the first frozen case
labels, box_targets = my_assign_targets(anchors, target["boxes"], target["labels"])
matches = my_match_anchors(anchors, target["boxes"])
expected_labels = cases["ssd labels"][0].expected
fig, ax = plt.subplots(1, 3, figsize=(9.6, 3.4))
ax[0].imshow(image.transpose(1, 2, 0))
draw_boxes(ax[0], anchors[6 * 136:6 * 137], "yellow")                 # the 6 anchors of fine cell (8, 8)
draw_boxes(ax[0], anchors[1536 + 6 * 27:1536 + 6 * 28], "cyan")       # and of coarse cell (3, 3)
ax[0].set_title("anchors of one fine cell (yellow)\\nand one coarse cell (cyan)", fontsize=8)
ax[1].imshow(image.transpose(1, 2, 0))
draw_boxes(ax[1], anchors[expected_labels > 0], "red", lw=0.8)
draw_boxes(ax[1], target["boxes"], "lime", lw=1.5)
ax[1].set_title(f"expected positive anchors ({(expected_labels > 0).sum()}),\\nground truth in green", fontsize=8)
ax[2].imshow(image.transpose(1, 2, 0))
colours = plt.cm.tab10(np.arange(10))
for j in range(len(target["boxes"])):
    draw_boxes(ax[2], anchors[matches == j], colours[j], lw=0.8)
draw_boxes(ax[2], target["boxes"], "lime", lw=1.5)
ax[2].set_title(f"your positive anchors ({(labels > 0).sum()}), one colour per object;\\n"
                f"{(labels == -1).sum()} ignored, {(labels == 0).sum()} background", fontsize=8)
for a in ax:
    a.axis("off")
plt.show()
"""),
    # ---------------------------------------------------------------- part 8
    ("md", """
## Part 8 — the single-shot detector's loss: every anchor, and hard negative mining (2 points)

With the targets of part 7, SSD's loss is a sum over **anchors**: each anchor is a tiny classifier (`C + 1`
scores) and a tiny box regressor (4 offsets). But nearly all anchors are background (here ~1900 of 1920), so
a plain mean would teach the network to say "background" everywhere. SSD keeps, per image, only the
**hardest negatives** — the background anchors with the highest classification loss, `negative_ratio` times as
many as the image's positives (`negative_ratio = 3` by default; at least 8, at most all of them) — and ignores the
rest:

    scores (N, A, C+1), deltas (N, A, 4), labels (N, A) in {-1 ignored, 0 background, c+1}, box_targets (N, A, 4)
    ce[n, a]       = −log softmax(scores[n, a])[labels[n, a]]        (0 where the label is −1; stable: subtract the max)
    negatives of image n: anchors with label 0; keep the count = min(#negatives_n, max(negative_ratio·#positives_n, 8))
                   with the largest ce (a stable sort of −ce: ties keep the lower index)
    P              = max(total number of positives in the batch, 1)
    classification = Σ over positives and kept negatives of ce / P
    regression     = Σ over positives, over the 4 offsets of smoothL1(deltas − box_targets) / P     (β = 1)
    total          = classification + regression

The choice of *which* negatives is made on the values (NumPy, no gradient); the sum over them is a Tensor
expression so autograd gives the gradient. Return `(total, classification, regression)`.
"""),
    ("answer", "ssd_loss", """
def my_multibox_loss(scores, deltas, labels, box_targets, negative_ratio=3):
    # scores (N, A, C+1) Tensor, deltas (N, A, 4) Tensor, labels (N, A) ints, box_targets (N, A, 4) array
    ### BEGIN SOLUTION
    n, a, c1 = scores.shape
    flat = scores.reshape(n * a, c1)
    shifted = flat - flat.max(axis=1, keepdims=True).detach()
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    safe = np.where(labels < 0, 0, labels).reshape(-1)
    ce = -log_probs[np.arange(n * a), safe].reshape(n, a) * (labels >= 0).astype(np.float64)
    selected = labels > 0
    values = ce.numpy()
    for i in range(n):
        negatives = np.flatnonzero(labels[i] == 0)
        count = min(len(negatives), max(negative_ratio * int(selected[i].sum()), 8))
        hardest = negatives[np.argsort(-values[i, negatives], kind="stable")[:count]]
        selected[i, hardest] = True
    num_positive = float(max((labels > 0).sum(), 1))
    classification = (ce * selected.astype(np.float64)).sum() / num_positive
    d = (deltas * (labels > 0).astype(np.float64)[..., None] - box_targets).abs()
    regression = F.where(d.data < 1.0, 0.5 * d * d, d - 0.5).sum() / num_positive
    return classification + regression, classification, regression
    ### END SOLUTION
"""),
    ("check", "ssd_loss", """
def multibox_parts(scores, deltas, labels, box_targets):
    return np.array([float(v.item()) for v in my_multibox_loss(tensor(scores), tensor(deltas), labels, box_targets)])

check_cases("my_multibox_loss (total, classification, regression)", multibox_parts, cases["multibox loss"],
            tol=1e-6, hint="count positives over the whole batch; per image keep max(negative_ratio x its positives, "
                            "8) negatives with the largest cross-entropy; ignored anchors (-1) add nothing")
scores, deltas, labels, box_targets = cases["multibox loss"][0].args
check_gradients("my_multibox_loss gradient", lambda s, d: my_multibox_loss(s, d, labels, box_targets)[0],
                [scores, deltas])
check_cases("my_multibox_loss at scores of ±1000, stable", multibox_parts, cases["multibox loss extreme"], tol=1e-6,
            strict=True)

# what hard negative mining keeps: the background anchors the committed SSD finds hardest on one scene
ssd = load_pretrained("ssd_shapes")
image, target = ShapesDataset(4, 64, "scene", seed=11)[0]
with minidl.no_grad():
    scene_scores, scene_deltas = ssd(Tensor(image[None]))
scene_labels, scene_box_targets = ssd.assign_targets([target])
logp = scene_scores.numpy()[0] - scene_scores.numpy()[0].max(1, keepdims=True)
logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
ce = -logp[np.arange(len(ssd.anchors)), np.maximum(scene_labels[0], 0)]
negatives = np.flatnonzero(scene_labels[0] == 0)
kept = negatives[np.argsort(-ce[negatives], kind="stable")[:max(3 * int((scene_labels[0] > 0).sum()), 8)]]
total, classification, regression = my_multibox_loss(scene_scores, scene_deltas, scene_labels, scene_box_targets)
fig, ax = plt.subplots(1, 2, figsize=(7.4, 3.6))
ax[0].imshow(image.transpose(1, 2, 0))
draw_boxes(ax[0], ssd.anchors[scene_labels[0] > 0], "lime", lw=0.8)
draw_boxes(ax[0], ssd.anchors[kept], "red", lw=0.8)
ax[0].set_title(f"{(scene_labels[0] > 0).sum()} positive anchors (green), the {len(kept)}\\n"
                f"hardest of {len(negatives)} negatives (red)", fontsize=8)
ax[0].axis("off")
ax[1].hist([ce[negatives], ce[kept]], bins=30, log=True, label=["all negatives", "kept (hardest)"])
ax[1].set_xlabel("classification loss of a background anchor")
ax[1].legend(fontsize=8)
ax[1].set_title(f"your loss on this scene: {float(total.item()):.3f}\\n(classification {float(classification.item()):.3f}, "
                f"regression {float(regression.item()):.3f})", fontsize=8)
plt.tight_layout()
plt.show()
"""),
    # ---------------------------------------------------------------- part 9
    ("md", """
## Part 9 — mean average precision (2 points)

PASCAL VOC's metric. For one class `c`: rank the detections of class `c` of **all** images by descending score
(a stable sort: ties keep their order — image by image, then detection by detection). Going down the list, a
detection is a true positive when its best-overlapping ground-truth box of class `c` in its image (argmax of the
IoU; none → false positive) has **IoU > 0.5** (the devkit's strict inequality) and was not matched before;
otherwise it is a false positive (a duplicate, or a poor box). Then

    recall_r = TP_r / #ground truths of class c,      precision_r = TP_r / r          (after the r-th detection)

`my_pr_curve(preds, targets, c)` returns `(recall, precision, n_truth)`: the two curves over the ranked
detections of class `c` (arrays as long as that list) and the number of ground-truth boxes of class `c`.
`my_average_precision(recall, precision)` is the **all-point interpolated** area: prepend recall 0 / precision 0,
append recall 1 / precision 0, make precision monotone from the right (`p_i = max(p_i, p_{i+1}, ...)`), and sum
`(r_{i+1} − r_i) · p_{i+1}` where the recall changes. mAP = the mean AP over classes that have ground truth
(`NaN` for the others): `my_voc_map` returns `(mAP, ap_per_class)`. `preds` / `targets` are lists with one dict
per image (`boxes`, `scores`, `labels` / `boxes`, `labels`), as the detectors and `ShapesDataset` give them.
Compute the IoU with the given NumPy `box_iou_np`: minidl's `box_iou` (assignment 3's `ops.box_iou`) is forbidden in
this part — an answer that calls it scores 0.

Edge cases, as `minidl.metrics.voc_map`: a class without ground truth gets AP `NaN` and does not count in the mean
(tested); when **no** class has ground truth, mAP is `NaN` (tested; avoid dividing by a count of zero). For such a
class `my_pr_curve` still ranks the detections, all false positives, and its recall is defined as `TP / max(n_truth, 1)`
(all zeros) — not tested, since `my_voc_map` gives that class `NaN` whatever the curve is.
"""),
    ("answer", "map", """
def my_pr_curve(preds, targets, c, iou_threshold=0.5):
    # -> (recall, precision) arrays over the ranked detections of class c, and the number of gt boxes of class c
    ### BEGIN SOLUTION
    ranked, ious, n_truth = [], [], 0
    for i, (p, t) in enumerate(zip(preds, targets)):
        det = np.asarray(p["labels"]) == c
        gt = np.asarray(t["labels"]) == c
        ious.append(box_iou_np(np.asarray(p["boxes"])[det], np.asarray(t["boxes"])[gt]))
        n_truth += int(gt.sum())
        ranked.extend((s, i, j) for j, s in enumerate(np.asarray(p["scores"], np.float64)[det]))
    order = np.argsort(-np.array([r[0] for r in ranked], np.float64), kind="stable")
    taken = [np.zeros(m.shape[1], bool) for m in ious]
    tp = np.zeros(len(order))
    for rank, d in enumerate(order):
        _, i, j = ranked[d]
        if ious[i].shape[1] == 0:
            continue
        best = int(np.argmax(ious[i][j]))
        if ious[i][j, best] > iou_threshold and not taken[i][best]:
            tp[rank], taken[i][best] = 1, True
    tp = np.cumsum(tp)
    return tp / max(n_truth, 1), tp / np.arange(1, len(tp) + 1), n_truth
    ### END SOLUTION


def my_average_precision(recall, precision):
    # -> float: the area under the interpolated precision/recall curve
    ### BEGIN SOLUTION
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))
    ### END SOLUTION


def my_voc_map(preds, targets, num_classes, iou_threshold=0.5):
    # -> (mAP float, ap_per_class (num_classes,) with NaN for classes without ground truth)
    ### BEGIN SOLUTION
    ap = np.full(num_classes, np.nan)
    for c in range(num_classes):
        recall, precision, n_truth = my_pr_curve(preds, targets, c, iou_threshold)
        if n_truth:
            ap[c] = my_average_precision(recall, precision)
    valid = ~np.isnan(ap)
    return (float(ap[valid].mean()) if valid.any() else float("nan")), ap
    ### END SOLUTION
"""),
    ("check", "map", """
check_cases("my_average_precision", lambda r, p: np.array(my_average_precision(r, p)), cases["average precision"],
            tol=1e-12, hint="pad with (0, 0) and (1, 0), precision = running max from the right, sum (r[i+1] - r[i]) "
                            "* p[i+1] where the recall changes")


def as_dicts(dets, gts, n_images):
    # frozen flat arrays -> one dict per image: dets (D, 7) = image, box, score, label; gts (G, 6) = image, box, label
    preds = [{"boxes": dets[dets[:, 0] == i, 1:5], "scores": dets[dets[:, 0] == i, 5],
              "labels": dets[dets[:, 0] == i, 6].astype(np.int64)} for i in range(n_images)]
    targets = [{"boxes": gts[gts[:, 0] == i, 1:5], "labels": gts[gts[:, 0] == i, 5].astype(np.int64)}
               for i in range(n_images)]
    return preds, targets


check_cases("my_voc_map AP per class", lambda d, g, n, c: my_voc_map(*as_dicts(d, g, n), c)[1], cases["voc ap"],
            tol=1e-12, hint="rank all images' detections of a class together (stable sort by -score); a detection "
                            "matches its best-IoU gt if IoU > 0.5 and that gt is still free, else it is a false positive")

d, g, n, c = cases["voc ap"][0].args
check_close("my_voc_map: mAP is the mean AP over classes", np.array(my_voc_map(*as_dicts(d, g, n), c)[0]),
            np.array(np.nanmean(cases["voc ap"][0].expected)), tol=1e-12)
only_class_0 = [dict(t, labels=np.zeros_like(t["labels"])) for t in as_dicts(d, g, n)[1]]
m, ap = my_voc_map(as_dicts(d, g, n)[0], only_class_0, c)
if not (np.isfinite(ap[0]) and np.isnan(ap[1:]).all() and abs(m - ap[0]) < 1e-12):
    raise AssertionError(f"my_voc_map: classes without ground truth must have AP NaN and not count in the mean, "
                         f"got mAP {m}, AP {ap}")
no_truth = [dict(t, boxes=np.zeros((0, 4)), labels=np.zeros(0, np.int64)) for t in as_dicts(d, g, n)[1]]
m, ap = my_voc_map(as_dicts(d, g, n)[0], no_truth, c)
if not (np.isnan(m) and np.isnan(ap).all()):
    raise AssertionError(f"my_voc_map: with no ground truth at all, mAP and every AP must be NaN, got {m}, {ap}")
print("my_voc_map: classes without ground truth get NaN, and mAP is NaN when no class has any — OK")

# the committed detectors on held-out scenes, scored with your mAP
from minidl.detection.proposals import selective_search
detectors = {"R-CNN": rcnn, "Fast R-CNN": load_pretrained("fast_rcnn_shapes"), "single-shot": load_pretrained("ssd_shapes")}
start = time.perf_counter()
scene_proposals = [selective_search(image, mode="fast", min_size=20) for image in scene_images]
proposal_seconds = (time.perf_counter() - start) / len(scene_images)
rows, all_detections = [], {}
for name, model in detectors.items():
    start = time.perf_counter()
    if name == "single-shot":
        detections = [model.detect(scene_images[i:i + 1])[0] for i in range(len(scene_images))]
    else:
        detections = [model.detect(scene_images[i:i + 1], scene_proposals[i:i + 1])[0] for i in range(len(scene_images))]
    seconds = (time.perf_counter() - start) / len(scene_images) + (0 if name == "single-shot" else proposal_seconds)
    m, ap = my_voc_map(detections, scene_targets, len(SHAPE_CLASSES))
    rows.append((name, m, seconds))
    all_detections[name] = detections
print(f"{'detector':<12} {'mAP@0.5 (yours)':>16} {'s / image':>10}   ({len(scene_images)} held-out scenes; "
      f"selective search {proposal_seconds:.2f} s / image)")
for name, m, seconds in rows:
    print(f"{name:<12} {m:>16.3f} {seconds:>10.3f}")
check_at_least("mAP of the committed Fast R-CNN, with your metric", rows[1][1], 0.5)

fig, ax = plt.subplots(1, 3, figsize=(10, 2.9), sharey=True)
for a, (name, detections) in zip(ax, all_detections.items()):
    for c, cls in enumerate(SHAPE_CLASSES):
        recall, precision, n_truth = my_pr_curve(detections, scene_targets, c)
        if n_truth:
            a.step(np.concatenate([[0], recall]), np.concatenate([[1], precision]), where="post", label=cls, lw=1)
    a.set(xlabel="recall", xlim=(0, 1.02), ylim=(0, 1.05))
    a.set_title(f"{name}: your P-R curves", fontsize=9)
ax[0].set_ylabel("precision")
ax[-1].legend(fontsize=7)
plt.show()
"""),
    ("md", """
## What else lecture 8 shows, in minidl

`minidl.detection.selective_search` is the full algorithm (ranking and strategies); `RCNN`, `FastRCNN` and
`SingleShotDetector` train with `python benchmarks/train_lecture8.py` (`SingleShotDetector.loss` is your
part 8 with the network's forward pass in front);
`metrics.coco_map` averages AP over IoU thresholds 0.5…0.95. `python -m minidl.tour --only detection` compares
the three detectors on 100 scenes.
"""),
]


# ---- frozen cases ---------------------------------------------------------------------------------------

def _random_boxes(rng, n, lo=0, hi=60, smin=4, smax=30):
    xy = rng.uniform(lo, hi, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(smin, smax, (n, 2))], 1)


def reference_cases():
    import skimage.segmentation

    from minidl import Tensor, ops
    from minidl.data import ShapesDataset
    from minidl.detection import proposals as P
    from minidl.detection.box_head import detection_loss
    from minidl.detection.rcnn import warp_regions
    from minidl.kernels import roi_pool as roi_pool_kernels
    from minidl.metrics import average_precision, voc_map
    from minidl.models import pretrained

    cases = {}
    # part 1
    configs = [(64, (16, 32, 64), (0.5, 1.0, 2.0), 8), ((48, 80), (20, 40), (1.0, 2.0), (4, 8)),
               ((30, 50), (12, 64), (0.5, 1.0), 6), ((37, 41), (10,), (0.25, 1.0, 3.0), 5)]
    cases["sliding windows"] = [(c, np.asarray(P.sliding_window_proposals(*c))) for c in configs]

    # part 2
    def sim_args(rng):
        n = 7
        colour = rng.random((n, 12))
        texture = rng.random((n, 16))
        size = rng.integers(5, 60, n).astype(np.float64)
        boxes = _random_boxes(rng, n, 0, 20, 2, 10).round()
        measures = ["CTSF", "TSF", "C", "SF"][rng.integers(4)]
        a = int(rng.integers(n)) if rng.random() < 0.5 else rng.integers(0, n, 5)
        return (a, rng.integers(0, n, 5), colour / colour.sum(1, keepdims=True),
                texture / texture.sum(1, keepdims=True), size, boxes, 400.0, measures)
    cases["similarity"] = trials(P._similarity, sim_args, range(6))

    def overseg(image, space, k):
        colour_image = P.convert_colour(image.transpose(1, 2, 0).astype(np.float64), space)
        labels = P._relabel(skimage.segmentation.felzenszwalb(colour_image, scale=k, sigma=0.8, min_size=20,
                                                              channel_axis=-1))
        colour, texture, size, boxes = P.region_features(labels, colour_image)
        return colour, texture, size, boxes, P._neighbour_pairs(labels), float(labels.size)

    ds = ShapesDataset(3, 48, "scene", seed=7)
    grouping = []
    for i, (space, k, measures) in enumerate((("hsv", 100, "CTSF"), ("lab", 50, "TSF"), ("hsv", 50, "CTSF"))):
        args = overseg(ds[i][0], space, k) + (measures,)
        c, t, s, b, pairs, area, m = args
        expected = P.hierarchical_grouping(np.zeros(int(area)), None, m, features=((c, t, s, b), pairs))
        grouping.append((args, expected))
    cases["grouping"] = grouping

    # part 3
    def warp_args(rng):
        images = rng.random((2, 3, 12, 10)).astype(np.float32)
        k = 5
        xy = rng.uniform(-3, 8, (k, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1.5, 9, (k, 2))], 1)
        rois = np.concatenate([rng.integers(0, 2, (k, 1)), boxes], 1).astype(np.float32)
        return images, rois, int(rng.integers(3, 6))
    cases["warp"] = trials(warp_regions, warp_args, range(4))
    scenes = ShapesDataset(8, 64, "scene", seed=1)
    image, target = scenes[0]
    boxes = target["boxes"]
    rois = np.concatenate([np.zeros((len(boxes), 1), np.float32), boxes], axis=1)
    cases["warp scene"] = [((rois,), warp_regions(image[None], rois, 32))]

    # part 4: the one-vs-rest SVM loss has no minidl function; its definition, written once here
    def svm_reference(W, b, X, y, reg):
        n, k = X.shape[0], W.shape[1]
        t = -np.ones((n, k))
        t[np.arange(n), y] = 1.0
        margins = np.maximum(0.0, 1.0 - t * (X @ W + b))
        d = -t * (margins > 0) / n
        return np.concatenate([[margins.sum() / n + 0.5 * reg * (W * W).sum()], (X.T @ d + reg * W).ravel(),
                               d.sum(0)])
    cases["svm loss"] = trials(svm_reference, lambda rng: (rng.standard_normal((6, 4)), rng.standard_normal(4),
                                                           rng.standard_normal((10, 6)), rng.integers(0, 4, 10),
                                                           float(rng.uniform(0.01, 1))), range(3))

    # part 5
    def backward_args(rng):
        features = rng.standard_normal((2, 3, 9, 8))
        rois = np.concatenate([rng.integers(0, 2, (5, 1)), _random_boxes(rng, 5, -2, 12, 2, 12)], 1)
        output, argmax = roi_pool_kernels.roi_pool_forward(features, rois, (3, 3), 0.5)
        return rng.standard_normal(output.shape), argmax, rois, np.array(features.shape), features

    def backward_reference(grad_output, argmax, rois, shape, features):
        x = Tensor(features, requires_grad=True)
        ops.roi_pool(x, rois, (3, 3), 0.5).backward(grad=grad_output)
        return x.grad.numpy()
    cases["roi pool backward"] = [(args[:4], backward_reference(*args))
                                  for args in (backward_args(np.random.default_rng(s)) for s in range(4))]

    # part 6
    def loss_args(rng, scale=3.0):
        k, c = 8, 3
        labels = rng.integers(0, c + 1, k)
        labels[:2] = [0, 2]
        return (rng.standard_normal((k, c + 1)) * scale, rng.standard_normal((k, 4 * c)) * 0.3, labels,
                rng.standard_normal((k, 4)) * 0.3)

    def loss_reference(logits, deltas, labels, targets):
        return np.array([float(v.item()) for v in detection_loss(Tensor(logits), Tensor(deltas), labels, targets)])
    cases["detection loss"] = trials(loss_reference, loss_args, range(3))
    cases["detection loss extreme"] = trials(loss_reference, lambda rng: loss_args(rng, 1000.0), [10])

    # part 7
    cases["anchor grid"] = [(args, ops.anchor_grid(tuple(args[0]), args[1], tuple(args[2]), tuple(args[3])))
                            for args in (((4, 5), 8, (10, 20), (1.0, 2.0, 0.5)), ((3, 2), 16, (24,), (1.0,)),
                                         ((2, 3), 4, (6, 9, 12), (0.5, 1.0)))]

    def match_args(rng):
        anchors = _random_boxes(rng, 40, 0, 40, 4, 20).astype(np.float32)
        gt = anchors[rng.choice(40, 3, replace=False)] + rng.normal(0, 2, (3, 4)).astype(np.float32)
        return anchors, gt, 0.5, 0.4
    cases["match anchors"] = trials(lambda a, g, p, n: ops.match_anchors(a, g, p, n), match_args, range(4))
    ssd = pretrained.build("ssd_shapes")
    ssd_scenes = ShapesDataset(4, 64, "scene", seed=11)
    labels, box_targets = [], []
    for i in range(4):
        t = ssd_scenes[i][1]
        lab, tg = ssd.assign_targets([t])
        labels.append(((t["boxes"], t["labels"]), lab[0]))
        box_targets.append(((t["boxes"], t["labels"]), tg[0]))
    cases["ssd labels"], cases["ssd box targets"] = labels, box_targets

    # part 8: SingleShotDetector.loss itself, with a stand-in for the network and the target assignment
    from minidl.detection.single_shot import SingleShotDetector

    class GivenOutputs:
        def __init__(self, scores, deltas, labels, box_targets):
            self.outputs, self.targets = (Tensor(scores), Tensor(deltas)), (labels, box_targets)

        def assign_targets(self, targets):
            return self.targets

        def __call__(self, images):
            return self.outputs

    def multibox_reference(scores, deltas, labels, box_targets):
        parts = SingleShotDetector.loss(GivenOutputs(scores, deltas, labels, box_targets), Tensor(np.zeros(1)), None)
        return np.array([float(v.item()) for v in parts])

    def multibox_args(rng, scale=2.0):
        n, a, c1 = 2, 40, 4
        labels = rng.choice([-1, 0, 0, 0, 0, 0, 0, 1, 2, 3], size=(n, a)).astype(np.int64)
        labels[1, :] = np.where(labels[1] > 0, 0, labels[1])            # image 1: no objects -> 8 negatives
        labels[1, :3] = 0
        box_targets = rng.normal(0, 1, (n, a, 4)) * (labels > 0)[..., None]
        return (rng.normal(0, scale, (n, a, c1)), rng.normal(0, 1.5, (n, a, 4)), labels, box_targets)

    cases["multibox loss"] = trials(multibox_reference, multibox_args, range(3))
    cases["multibox loss extreme"] = trials(multibox_reference, lambda rng: multibox_args(rng, 1000.0), [7])

    # part 9
    def ap_args(rng):
        n = int(rng.integers(5, 15))
        tp = rng.random(n) < 0.6
        cum = np.cumsum(tp)
        return cum / (tp.sum() + rng.integers(0, 3)), cum / np.arange(1, n + 1)
    cases["average precision"] = trials(lambda r, p: np.array(average_precision(r, p)), ap_args, range(4))

    def voc_args(rng):
        n_images, c = 4, 3
        gts, dets = [], []
        for i in range(n_images):
            g = int(rng.integers(2, 5))
            boxes = _random_boxes(rng, g, 0, 40, 8, 20)
            labels = rng.integers(0, c, g)
            gts.append(np.concatenate([np.full((g, 1), i), boxes, labels[:, None]], 1))
            for box, label in zip(boxes, labels):        # some good, some poor detections, some duplicates
                for _ in range(int(rng.integers(0, 3))):
                    dets.append([i, *(box + rng.normal(0, 3, 4)), round(float(rng.random()), 1),
                                 label if rng.random() < 0.85 else (label + 1) % c])
            for _ in range(2):                           # false alarms
                dets.append([i, *_random_boxes(rng, 1, 0, 40, 8, 20)[0], round(float(rng.random()), 1),
                             rng.integers(c)])
        gts = np.concatenate(gts)
        gts[:c, 5] = np.arange(c)                         # every class has ground truth
        return np.array(dets, np.float64), gts, n_images, c

    def voc_reference(dets, gts, n_images, c):
        preds = [{"boxes": dets[dets[:, 0] == i, 1:5], "scores": dets[dets[:, 0] == i, 5],
                  "labels": dets[dets[:, 0] == i, 6].astype(np.int64)} for i in range(n_images)]
        targets = [{"boxes": gts[gts[:, 0] == i, 1:5], "labels": gts[gts[:, 0] == i, 5].astype(np.int64)}
                   for i in range(n_images)]
        return voc_map(preds, targets, c)["ap_per_class"]
    cases["voc ap"] = trials(voc_reference, voc_args, range(4))
    return cases


MUTATIONS = {
    "warp without the half-pixel shift": (
        "warp", "x1, y1, x2, y2 = x1 - 0.5, y1 - 0.5, x2 - 0.5, y2 - 0.5", "pass", {"warp"}, "my_warp_regions",
        ["warp"]),
    "RoI pool backward with fancy-index += (overlaps add once)": (
        "roi_backward", "np.add.at(grad_input, (batch[hit], channel[hit], argmax[hit]), grad_output[hit])",
        "grad_input[batch[hit], channel[hit], argmax[hit]] += grad_output[hit]", {"roi_backward"},
        "my_roi_pool_backward", ["roi_backward"]),
    "hard negative mining keeps the easiest negatives": (
        "ssd_loss", "hardest = negatives[np.argsort(-values[i, negatives], kind=\"stable\")[:count]]",
        "hardest = negatives[np.argsort(values[i, negatives], kind=\"stable\")[:count]]", {"ssd_loss"},
        "my_multibox_loss", ["ssd_loss"]),
    "metrics.voc_map inside my_voc_map": (
        "map", "    ap = np.full(num_classes, np.nan)",
        "    from minidl import metrics\n    r = metrics.voc_map(preds, targets, num_classes)\n"
        "    return r[\"map\"], r[\"ap_per_class\"]\n"
        "    ap = np.full(num_classes, np.nan)", {"map"}, "calls minidl's own voc_map", ["map"]),
}
