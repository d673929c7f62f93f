"""Assignment 6 — what and where: classification + localization, and human pose as regression (lecture 8).

What the notebook teaches (CS231n lecture 8, "classification + localization" and "human pose estimation"):

1. ``box_losses`` — box regression is regression: L2, L1 and smooth-L1 (Huber with PyTorch's ``beta``:
   ``0.5 d²/beta`` for ``|d| < beta``, else ``|d| − 0.5 beta``) with ``"mean" | "sum" | "none"`` reductions,
   written with Tensor operations so autograd gives the gradient. Frozen against ``F.mse_loss``,
   ``F.l1_loss``, ``F.smooth_l1_loss``; float64 gradient checks; a figure of the three losses and their
   gradients against the error (why smooth-L1: a bounded gradient for outliers, smooth at 0).
2. ``multitask`` — the lecture's multi-task loss ``softmax cross-entropy + box_weight · box loss``, the
   cross-entropy from primitives with a stable log-softmax, the box loss = the student's smooth-L1 on boxes
   divided by the image size. Frozen against ``minidl.models.localization.LocalizationLoss`` (its default
   ``box_loss="smooth_l1"``, ``beta=0.05``, boxes divided by ``images.shape[-1]``), at ±1000 scores with
   overflow made an error, and gradient-checked.
3. ``weight`` — choose the weight of the multi-task loss by a validation metric, not by the loss (losses of
   different weights are different functions, not comparable). The metric is the fraction of validation
   images whose class is right AND whose box has IoU ≥ 0.5 with the truth ("correct localization"); the
   student writes the paired IoU, the metric and ``my_choose_weight``. Given code trains a small localizer
   for weights 0.1, 1, 10, 100 with the student's multi-task loss and plots both rankings.
   Assumption: to keep the sweep within seconds on 2 CPU cores, the localizer is a *head* (Flatten → Linear
   4096→64 → ReLU → class Linear 64→5 and box Linear 64→4) on top of the frozen conv features
   (``features.10``, (64, 8, 8)) of the committed 32×32 shapes classifier (``load_shapes_classifier``):
   transfer learning, as the lecture's slide does with an ImageNet backbone. Training the full
   ``Localizer`` from scratch at 32×32 stays near chance on held-out images in the time available
   (measured: validation accuracy ≈ 0.2 after 300 steps). With the features cached, the four trainings
   take ~6 s. Measured (and asserted by the check): the final training loss ranks 0.1 best, the metric 10.
4. ``pose`` — pose as keypoint regression: the L2 keypoint loss exactly as ``minidl.models.pose.KeypointLoss``
   (``mean(((pred − true)/S)²)`` over N, K and x/y; the visibility column is ignored, as the library does:
   an occluded joint still has a known position) and PCK exactly as ``minidl.metrics.pck`` (distance ≤
   ``alpha · max(w, h)`` of the person's box, keypoints with visibility 0 not counted, ``min_visibility=1``).
   Evaluated on the committed ``load_pretrained("pose_shapes")`` (64×64 stick figures, dataset seed 1):
   frozen PCK values at several alphas, a skeleton figure and a PCK(alpha) curve next to the frozen one.
   Also checked: the loss is invariant to scaling image and coordinates by 2 (the point of dividing by S), and
   ``my_pck`` returns NaN when no keypoint is counted (as ``pck`` does). Truth is drawn white and predictions red
   dashed, both outlined in black, because the stick figures and shapes take any hue.

Note on the brief: it asked for the keypoint loss "over visible keypoints only"; ``KeypointLoss`` (the frozen
reference) uses every keypoint, so the notebook follows the library and says so.
"""
from __future__ import annotations

import numpy as np

from .spec import part, trials

STEM = "06_localization_pose"

BOX_LOSS_FORBID = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "LocalizationLoss", "BOX_LOSSES"]

PARTS = [
    part("box_losses", "Part 1 — box regression losses: L2, L1, smooth-L1", 3, forbid=BOX_LOSS_FORBID),
    part("multitask", "Part 2 — the multi-task loss: cross-entropy + weight × box loss", 3,
         requires=["box_losses"],
         forbid=BOX_LOSS_FORBID + ["cross_entropy", "log_softmax", "softmax", "logsumexp", "nll_loss",
                                   "CrossEntropy"]),
    part("weight", "Part 3 — choose the weight by a validation metric, not by the loss", 3,
         requires=["box_losses", "multitask"],
         forbid=["box_iou", "mean_box_iou", "box_area", "generalized_box_iou", "accuracy", "localize",
                 "LocalizationLoss"]),
    part("pose", "Part 4 — human pose as keypoint regression: the L2 loss and PCK", 3,
         forbid=["KeypointLoss", "pck", "mse_loss", "l1_loss", "smooth_l1_loss", "predict_keypoints"]),
]

CELLS = [
    ("md", """
# Assignment 6 — what and where: classification + localization, and human pose as regression

Lecture 8 goes from *what* is in an image to *where* it is. With exactly **one** object per image, "where" is
four numbers: a network with one backbone and two heads outputs class scores (a classification problem) and a
box `(x1, y1, x2, y2)` (a **regression** problem), trained with the sum of the two losses — the
**multi-task loss**. Human pose estimation is the same idea with K points instead of one box: regress the
`(x, y)` of every joint (DeepPose) with an L2 loss, and measure it with PCK.

You write:
1. the three box regression losses (L2, L1, smooth-L1) and look at their gradients;
2. the multi-task loss, softmax cross-entropy from primitives + weight × box loss;
3. a validation metric for localization, and choose the loss weight with it — not with the loss;
4. the keypoint regression loss and PCK, evaluated on minidl's committed pose network.

Run a cell with Shift+Enter; write your code where a cell says `TODO` (delete the `raise NotImplementedError`
line). Each **check** cell prints one line per check and says OK, or stops with a message that says what is off.
`pytest -m assignment6_box_losses` (`_multitask`, `_weight`, `_pose`) checks one part of your notebook in `work/`;
`python -m minidl.grade work/06_localization_pose.ipynb` grades all of it. Expected values are fixed data computed
once from minidl's own implementations (`minidl.functional` losses, `minidl.models.localization.LocalizationLoss`,
`minidl.models.pose.KeypointLoss`, `minidl.metrics.pck`); an answer that calls them scores 0 for the part.
Boxes follow PyTorch: `(x1, y1, x2, y2)` in pixels.
"""),
    ("code", """
import numpy as np
import matplotlib.pyplot as plt
import minidl
import minidl.functional as F
from minidl import Tensor, nn, optim, tensor
from minidl.checks import check_at_least, check_close, check_gradients
from minidl.data import SHAPE_CLASSES, ShapesDataset
from minidl.data.shapes import POSE_SKELETON
from minidl.grade.frozen import check_cases, frozen_cases

cases = frozen_cases("06_localization_pose")      # the expected results of this notebook's checks

def as_array(x):                                  # a Tensor's values (or anything array-like) as NumPy
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)
"""),
    ("md", """
## Part 1 — box regression losses: L2, L1, smooth-L1 (3 points)

The box head predicts `pred` (N, 4); the truth is `target` (N, 4). With the elementwise error `d = pred − target`:

    L2 (squared error):   d²
    L1:                   |d|
    smooth-L1 (Huber):    0.5 d² / beta     where |d| < beta
                          |d| − 0.5 beta    elsewhere              (beta = 0: plain L1, see below)

then a **reduction** over all N·4 numbers: `"mean"` (the default), `"sum"`, or `"none"` (the (N, 4) array of
per-number losses) — PyTorch's `mse_loss`, `l1_loss` and `smooth_l1_loss(..., beta=...)`.

Smooth-L1 (Fast R-CNN) is the compromise: near 0 it is the parabola (smooth, its gradient `d/beta` shrinks as the
box gets right), far away it is L1 (the gradient is ±1 however wrong the box, so one outlier cannot dominate a
batch the way it does with L2's gradient `2d`). The two pieces meet with equal value and slope at `|d| = beta`.

Write the three with Tensor operations (`-`, `*`, `/`, `.abs()`, `.sum()`, `.mean()`) so autograd gives the
gradients. For the two branches of smooth-L1 use `F.where(mask, a, b)` with a boolean NumPy mask on the **absolute**
error: with `abs_d = d.abs()` (a Tensor), `mask = abs_d.numpy() < beta` (the same as `np.abs(d.numpy()) < beta`; not
`d.numpy() < beta`, which would put every large negative error in the quadratic branch). `F.where` computes both
branches, so **special-case `beta == 0`**: return the plain L1 loss without computing `0.5 d² / beta` (a division by
0: a RuntimeWarning, and NaN gradients in the unused branch). The check includes a `beta = 0` case.
`pred` and `target` are Tensors of the same shape. Put the reduction in the helper `my_reduce`.
"""),
    ("answer", "box_losses", """
def my_reduce(loss, reduction):
    # loss: a Tensor of per-number losses -> its mean, its sum, or itself ("none")
    ### BEGIN SOLUTION
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r}")
    ### END SOLUTION


def my_l2_loss(pred, target, reduction="mean"):
    # pred, target: Tensors of the same shape, e.g. (N, 4) -> my_reduce of (pred - target)²: a scalar Tensor
    # ("mean", "sum") or a Tensor of pred's shape ("none")
    ### BEGIN SOLUTION
    d = pred - target
    return my_reduce(d * d, reduction)
    ### END SOLUTION


def my_l1_loss(pred, target, reduction="mean"):
    # pred, target: Tensors of the same shape -> my_reduce of |pred - target|
    ### BEGIN SOLUTION
    return my_reduce((pred - target).abs(), reduction)
    ### END SOLUTION


def my_smooth_l1_loss(pred, target, beta=1.0, reduction="mean"):
    # pred, target: Tensors of the same shape, beta >= 0 a float -> my_reduce of the per-number smooth-L1
    # (mask on |d|, not d; beta == 0: plain L1)
    ### BEGIN SOLUTION
    d = (pred - target).abs()
    if beta == 0:
        return my_reduce(d, reduction)
    loss = F.where(d.numpy() < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return my_reduce(loss, reduction)
    ### END SOLUTION
"""),
    ("check", "box_losses", """
# values against frozen results of F.mse_loss / F.l1_loss / F.smooth_l1_loss; errors d of size ~0.01 to ~3
T = tensor
check_cases("my_l2_loss", lambda p, t, r: my_l2_loss(T(p), T(t), r), cases["l2"], tol=1e-12,
            hint="the square of pred - target, then the reduction over all N*4 numbers")
check_cases("my_l1_loss", lambda p, t, r: my_l1_loss(T(p), T(t), r), cases["l1"], tol=1e-12)
check_cases("my_smooth_l1_loss", lambda p, t, b, r: my_smooth_l1_loss(T(p), T(t), b, r), cases["smooth l1"],
            tol=1e-12, hint="0.5 d^2 / beta where |d| < beta (the mask on |d|, not d), else |d| - 0.5 beta; "
                 "beta = 0 is plain L1")
rng = np.random.default_rng(0)
pred, target = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
check_gradients("my_l2_loss gradient", lambda p: my_l2_loss(p, T(target)), [pred])
check_gradients("my_l1_loss gradient (sum)", lambda p: my_l1_loss(p, T(target), "sum"), [pred])
check_gradients("my_smooth_l1_loss gradient, beta 0.5", lambda p: my_smooth_l1_loss(p, T(target), 0.5), [pred])

# the figure: loss and gradient against the error d, yours (lines) next to the frozen expected ones (dots)
(errors,), expected_losses = cases["loss curves"][0].args, cases["loss curves"][0].expected
names = ["L2", "L1", "smooth-L1 (beta 1)"]
fns = [my_l2_loss, my_l1_loss, lambda p, t, r: my_smooth_l1_loss(p, t, 1.0, r)]
losses, grads = [], []
for fn in fns:
    e = Tensor(errors.copy(), requires_grad=True)
    losses.append(as_array(fn(e, T(np.zeros_like(errors)), "none")))
    fn(e, T(np.zeros_like(errors)), "sum").backward()
    grads.append(as_array(e.grad))
check_close("loss curves (reduction 'none')", np.stack(losses), expected_losses, tol=1e-12)
check_close("gradient curves", np.stack(grads), cases["gradient curves"][0].expected, tol=1e-12)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for k, (name, colour) in enumerate(zip(names, ["tab:blue", "tab:orange", "tab:green"])):
    axes[0].plot(errors, losses[k], color=colour, label=f"{name} (yours)")
    axes[0].plot(errors[::8], expected_losses[k, ::8], "o", ms=3, color=colour)
    axes[1].plot(errors, grads[k], color=colour, label=f"{name} (yours)")
    axes[1].plot(errors[::8], cases["gradient curves"][0].expected[k, ::8], "o", ms=3, color=colour)
axes[0].set(title="loss of one coordinate vs its error d (dots: expected)", xlabel="d = pred - target", ylim=(0, 4))
axes[1].set(title="gradient dL/dd (dots: expected)", xlabel="d = pred - target", ylim=(-3.2, 3.2))
axes[0].legend(fontsize=8)
plt.show()
"""),
    ("md", """
The right panel is the argument for smooth-L1: L2's gradient grows with the error (an outlier box pulls hardest),
L1's jumps from −1 to +1 at 0 (no gentle approach to the optimum), smooth-L1's is L2's near 0 and L1's (±1)
beyond `beta`.

## Part 2 — the multi-task loss (3 points)

One backbone, two heads: `scores` (N, C) for the class and `pred_boxes` (N, 4) for the box. The lecture adds the
two losses into one scalar so a single backward pass trains the shared backbone for both tasks:

    L = cross_entropy(scores, labels) + box_weight · smooth_l1(pred_boxes, boxes / image_size, beta)

as `minidl.models.localization.LocalizationLoss` (its default `box_loss="smooth_l1"`, `beta=0.05`) does:

* `cross_entropy`: the mean over the N images of `−log softmax(scores)[n, labels[n]]`, from primitives, with a
  **stable log-softmax**: `log softmax(s) = (s − m) − log Σ_c exp(s_c − m)` with `m` the row maximum (detached:
  shifting by a constant does not change the result, but keeps `exp` finite; the check feeds scores of ±1000).
* the box loss: the box head predicts boxes **as fractions of the image size** (targets in [0, 1] whatever the
  image size), so the pixel boxes `boxes` (N, 4) are divided by `image_size` before your `my_smooth_l1_loss`
  (mean reduction) compares them with `pred_boxes`.

`scores` and `pred_boxes` are Tensors, `labels` (N,) ints, `boxes` (N, 4) a NumPy array in pixels.
"""),
    ("answer", "multitask", """
def my_multitask_loss(scores, pred_boxes, labels, boxes, image_size, box_weight=1.0, beta=0.05):
    # scores (N, C) Tensor, pred_boxes (N, 4) Tensor (fractions of the image), labels (N,) ints,
    # boxes (N, 4) NumPy array in pixels, image_size S an int, box_weight and beta floats
    # -> a scalar Tensor: mean cross-entropy + box_weight * my_smooth_l1_loss(pred_boxes, boxes / S, beta) (mean)
    ### BEGIN SOLUTION
    shifted = scores - scores.max(axis=1, keepdims=True).detach()
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    classification = -log_probs[np.arange(scores.shape[0]), labels].mean()
    regression = my_smooth_l1_loss(pred_boxes, Tensor(boxes / float(image_size)), beta)
    return classification + box_weight * regression
    ### END SOLUTION
"""),
    ("check", "multitask", """
# frozen values of LocalizationLoss(box_weight, "smooth_l1", beta) on random scores / boxes (image size 32 or 64)
def my_multitask_loss_on_arrays(s, pb, y, b, size, w, beta):
    return my_multitask_loss(tensor(s), tensor(pb), y, b, size, w, beta)

check_cases("my_multitask_loss", my_multitask_loss_on_arrays, cases["multitask"], tol=1e-10,
            hint="mean cross-entropy + box_weight * smooth-L1 (mean) of pred_boxes vs boxes / image_size")
check_cases("my_multitask_loss with scores of ±1000, stable", my_multitask_loss_on_arrays,
            cases["multitask extreme"], tol=1e-10, strict=True)
check_cases("my_multitask_loss with box_weight 0: the cross-entropy alone", my_multitask_loss_on_arrays,
            cases["multitask weight 0"], tol=1e-10)
rng = np.random.default_rng(3)
labels, boxes = np.array([0, 4, 2, 2, 1]), rng.uniform(0, 32, (5, 4))
check_gradients("my_multitask_loss gradient (scores, pred_boxes)",
                lambda s, pb: my_multitask_loss(s, pb, labels, boxes, 32, 2.0, 0.05),
                [rng.standard_normal((5, 5)), rng.uniform(0, 1, (5, 4))])
"""),
    ("md", """
## Part 3 — choose the weight by a validation metric, not by the loss (3 points)

`box_weight` is a hyper-parameter, and the lecture warns: **you cannot pick it by the loss**. The loss with weight
10 is a different function from the loss with weight 0.1 — a bigger weight makes a bigger loss even for a better
model, so "lowest final training loss" just picks the smallest weight. Pick it by what you care about, measured on
held-out images: here **correct localization**, the fraction of validation images whose predicted class is right
**and** whose predicted box has IoU ≥ 0.5 with the true box:

    iou[n]  = area(pred_boxes[n] ∩ boxes[n]) / area(pred_boxes[n] ∪ boxes[n])            (N,)
    metric  = mean over n of  [pred_labels[n] == labels[n]  and  iou[n] >= iou_threshold]

Write `my_paired_iou(a, b)` (a and b (N, 4) NumPy arrays; box n of `a` against box n of `b` only, not all pairs;
intersection width/height clamped at 0), `my_correct_localization(...)` and `my_choose_weight(results)`:
`results` is `{weight: {"losses": [training loss per step], "metric": validation metric}}`; return the weight
with the highest metric. Ties: return the **first** of the tied weights in the dict's order (what
`max(results, key=...)` does; a dict keeps its insertion order). The check tests this on a toy sweep with a tie,
and compares your choice on the real sweep with `max(weights, key=metric)`.

Then the check trains one localizer per weight in `(0.1, 1, 10, 100)` with **your** multi-task loss (given code).
To keep it to seconds, the localizer is a small head on top of the frozen convolutional features of minidl's trained
32×32 shapes classifier — transfer learning, as the lecture does with an ImageNet backbone:

    images (N, 3, 32, 32) --classifier features.10, frozen--> (N, 64, 8, 8) --Flatten, Linear, ReLU--> (N, 64)
        --class Linear--> scores (N, 5)        --box Linear--> boxes (N, 4), fractions of the image size
"""),
    ("answer", "weight", """
def my_paired_iou(a, b):
    # a, b: (N, 4) boxes (x1, y1, x2, y2) -> (N,) IoU of a[n] with b[n]
    ### BEGIN SOLUTION
    top_left = np.maximum(a[:, :2], b[:, :2])
    bottom_right = np.minimum(a[:, 2:], b[:, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a + area_b - inter)
    ### END SOLUTION


def my_correct_localization(pred_labels, pred_boxes, labels, boxes, iou_threshold=0.5):
    # -> a float in [0, 1]: the fraction of images with the right class AND IoU >= iou_threshold
    ### BEGIN SOLUTION
    correct = (np.asarray(pred_labels) == np.asarray(labels)) & (my_paired_iou(pred_boxes, boxes) >= iou_threshold)
    return float(correct.mean())
    ### END SOLUTION


def my_choose_weight(results):
    # results: {weight: {"losses": [...], "metric": float}} -> the weight (a key) with the highest metric;
    # ties: the first such key in the dict's order
    ### BEGIN SOLUTION
    return max(results, key=lambda w: results[w]["metric"])
    ### END SOLUTION
"""),
    ("check", "weight", """
check_cases("my_paired_iou", my_paired_iou, cases["paired iou"], tol=1e-12,
            hint="box n of a against box n of b: (N,), not the (N, N) matrix; no overlap gives 0, not a negative")
check_cases("my_correct_localization", my_correct_localization, cases["correct localization"], tol=1e-12,
            hint="an image counts when its class is right AND its IoU >= the threshold (>=, not >)")
toy = {0.1: {"losses": [0.5, 0.1], "metric": 0.2}, 1.0: {"losses": [1.0, 0.4], "metric": 0.7},
       10.0: {"losses": [5.0, 2.0], "metric": 0.5}}
chosen_toy = my_choose_weight(toy)
print(f"my_choose_weight on a toy sweep: {chosen_toy} (expected 1.0) — {'OK' if chosen_toy == 1.0 else 'WRONG'}")
assert chosen_toy == 1.0, "my_choose_weight: return the weight (a key of results) whose metric is highest"
tie = {0.1: {"losses": [0.5], "metric": 0.2}, 1.0: {"losses": [1.0], "metric": 0.7},
       10.0: {"losses": [5.0], "metric": 0.7}, 100.0: {"losses": [9.0], "metric": 0.7}}
chosen_tie = my_choose_weight(tie)
print(f"my_choose_weight with a three-way tie at 0.7: {chosen_tie} (expected 1.0, the first) — "
      f"{'OK' if chosen_tie == 1.0 else 'WRONG'}")
assert chosen_tie == 1.0, "my_choose_weight: on a tie, return the first tied weight in the dict's order"

# ---- the sweep (given): a small localizer head per weight, trained with YOUR multi-task loss ----
from minidl.models import load_shapes_classifier

def shapes_data(n, seed):                  # single-shape 32x32 images: (images, labels (n,), boxes (n, 4) pixels)
    data = ShapesDataset(n, size=32, mode="single", seed=seed, target_keys=("labels", "boxes"))
    items = [data[i] for i in range(n)]
    return (np.stack([x for x, _, _ in items]), np.array([y[0] for _, y, _ in items]),
            np.stack([b[0] for _, _, b in items]))

backbone = load_shapes_classifier()        # trained on 32x32 shapes; we keep its conv features frozen
def backbone_features(images):
    with minidl.no_grad():
        return nn.forward_until(backbone, Tensor(images), "features.10").numpy()   # (N, 64, 8, 8)

train_images, train_labels, train_boxes = shapes_data(800, seed=0)
val_images, val_labels, val_boxes = shapes_data(200, seed=1)     # held-out: a different dataset seed
train_features, val_features = backbone_features(train_images), backbone_features(val_images)

class LocalizerHead(nn.Module):             # features -> (class scores (N, 5), boxes (N, 4) as fractions)
    def __init__(self, rng):
        super().__init__()
        self.shared = nn.Sequential(nn.Flatten(), nn.Linear(64 * 8 * 8, 64, rng=rng), nn.ReLU())
        self.class_head, self.box_head = nn.Linear(64, 5, rng=rng), nn.Linear(64, 4, rng=rng)
    def forward(self, features):
        h = self.shared(features)
        return self.class_head(h), self.box_head(h)

def train_localizer(box_weight, steps=500, batch_size=32, lr=1e-3):
    head, order = LocalizerHead(np.random.default_rng(0)), np.random.default_rng(0)
    opt, losses = optim.Adam(head.parameters(), lr=lr), []
    for step in range(steps):
        idx = order.choice(len(train_features), batch_size, replace=False)
        scores, boxes = head(Tensor(train_features[idx]))
        loss = my_multitask_loss(scores, boxes, train_labels[idx], train_boxes[idx], 32, box_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    with minidl.no_grad():
        scores, boxes = head(Tensor(val_features))
    return losses, scores.numpy().argmax(axis=1), boxes.numpy() * 32

weights = (0.1, 1.0, 10.0, 100.0)
results, predictions = {}, {}
for w in weights:
    losses, pred_labels, pred_boxes = train_localizer(w)
    predictions[w] = pred_labels, pred_boxes
    results[w] = {"losses": losses, "metric": my_correct_localization(pred_labels, pred_boxes, val_labels, val_boxes)}
    print(f"box_weight {w:>5}: final training loss {np.mean(losses[-20:]):.3f}, validation accuracy "
          f"{np.mean(pred_labels == val_labels):.3f}, mean IoU {my_paired_iou(pred_boxes, val_boxes).mean():.3f}, "
          f"correct localization {results[w]['metric']:.3f}")
chosen = my_choose_weight(results)
by_metric = max(weights, key=lambda w: results[w]["metric"])
by_loss = min(weights, key=lambda w: np.mean(results[w]["losses"][-20:]))
print(f"chosen by your metric: {chosen}; the metric's argmax: {by_metric}; the final loss's argmin: {by_loss}")
assert chosen == by_metric, f"my_choose_weight returned {chosen}, the highest metric is at {by_metric}"
assert by_metric != by_loss, "this sweep should show the two rankings disagree (does your loss use box_weight?)"
check_at_least("correct localization at the chosen weight", results[chosen]["metric"], 0.4,
               hint="check my_correct_localization and the box normalization of my_multitask_loss")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for w in weights:
    curve = np.convolve(results[w]["losses"], np.ones(20) / 20, mode="valid")
    axes[0].plot(curve, label=f"weight {w:g}")
axes[0].set(yscale="log", xlabel="step", title="training loss (moving mean of 20):\\nNOT comparable across weights")
axes[0].legend(fontsize=8)
colours = ["tab:red" if w == chosen else "tab:gray" for w in weights]
axes[1].bar([f"{w:g}" for w in weights], [results[w]["metric"] for w in weights], color=colours)
axes[1].set(xlabel="box_weight", ylim=(0, 1),
            title=f"validation correct localization\\n(red: your choice, {chosen:g}; the loss would pick {by_loss:g})")
plt.tight_layout()
plt.show()

import matplotlib.patheffects as pe
outlined = [pe.withStroke(linewidth=2.6, foreground="black")]  # the shapes take any hue: outline the boxes
fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for row, w in enumerate((by_loss, chosen)):
    for k in range(8):
        ax = axes[row, k]
        ax.imshow(val_images[k].transpose(1, 2, 0))
        for box, colour, style in ((val_boxes[k], "white", "-"), (predictions[w][1][k], "red", "--")):
            x1, y1, x2, y2 = box
            ax.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour, lw=1.2,
                                       linestyle=style, path_effects=outlined))
        ax.set_title(f"w={w:g}: {SHAPE_CLASSES[predictions[w][0][k]]}", fontsize=7)
        ax.set_axis_off()
fig.suptitle("validation images: true box white, predicted box red dashed, predicted class in the title; "
             f"top: weight {by_loss:g} (lowest loss), bottom: weight {chosen:g} (your choice)", fontsize=9)
plt.tight_layout()
plt.show()
"""),
    ("md", """
The left panel only shows that each run trained: a curve for weight 100 sits higher because its loss multiplies the
box term by 100, not because its model is worse. The right panel is the comparison that means something. With a
small weight the cross-entropy dominates the shared layer and the boxes are worse (the mean IoU printed above);
with a huge one the box term drowns the classification (the accuracy falls). The metric finds the balance in between; the loss would always say "smallest".

## Part 4 — human pose as keypoint regression: the L2 loss and PCK (3 points)

DeepPose's idea: a CNN outputs the `(x, y)` of K = 14 joints, trained with an L2 loss on the coordinates — the box
regression of part 1 with 14 points. minidl's `KeypointLoss` divides the pixel coordinates by the image size `S`
and averages over everything:

    pred (N, K, 2) pixels, keypoints (N, K, 3) = (x, y, visibility)
    loss = mean over n, k and x/y of ((pred − keypoints[..., :2]) / S)²

The visibility column is **ignored** by the loss (an occluded joint still has a known position in these images).
Dividing by `S` makes the loss independent of the image size: the same figure drawn at size 2S, with errors twice as
many pixels, has the same loss (the check tests this). For scale, the check prints the loss of a trivial predictor
that puts every joint at the image centre (≈ 0.045 on these figures) next to the committed network's.

**PCK** (Percentage of Correct Keypoints, the bounding-box version of Yang & Ramanan, as `minidl.metrics.pck`): a
predicted keypoint is correct when its distance to the true one is **at most** `alpha · max(w, h)` of the person's
box `(x1, y1, x2, y2)` (w = x2 − x1, h = y2 − y1), so the score does not depend on how large the person is drawn:

    size[n]   = max(x2 − x1, y2 − y1) of boxes[n]                             (N,)
    d[n, k]   = ‖pred[n, k] − keypoints[n, k, :2]‖₂                          (N, K)
    counted   = keypoints[n, k, 2] >= 1        (visibility 0 = not labelled: not in the denominator)
    PCK       = #(d[n, k] <= alpha · size[n]  and counted) / #counted          a float

With no counted keypoint at all (#counted = 0) PCK is undefined: return `float("nan")`, as `minidl.metrics.pck`
does (the check tests this case).

Write both with NumPy (`pred` and `keypoints` are arrays; `my_keypoint_loss` also accepts and returns Tensors for the
gradient check: use only `-`, `*`, `/`, indexing and `.mean()` on it). The check evaluates the committed pose network
(`minidl.models.load_pretrained("pose_shapes")`, a soft-argmax head trained with this L2 loss on 64×64 stick figures)
on 64 held-out figures with your functions.
"""),
    ("answer", "pose", """
def my_keypoint_loss(pred, keypoints, image_size):
    # pred (N, K, 2), keypoints (N, K, 2 or 3) (Tensors or arrays) -> the mean squared error of the coordinates / S
    ### BEGIN SOLUTION
    true = keypoints[:, :, :2] if keypoints.shape[-1] == 3 else keypoints
    d = (pred - true) / float(image_size)
    return (d * d).mean()
    ### END SOLUTION


def my_pck(pred, keypoints, boxes, alpha=0.2):
    # pred (N, K, 2), keypoints (N, K, 3), boxes (N, 4) -> a float in [0, 1]; float("nan") when nothing is counted
    ### BEGIN SOLUTION
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])            # (N,)
    distance = np.linalg.norm(pred[..., :2] - keypoints[..., :2], axis=-1)              # (N, K)
    counted = keypoints[..., 2] >= 1
    if not counted.any():
        return float("nan")
    correct = (distance <= alpha * size[:, None]) & counted
    return float(correct.sum() / counted.sum())
    ### END SOLUTION
"""),
    ("check", "pose", """
check_cases("my_keypoint_loss", lambda p, k, s: my_keypoint_loss(p, k, s), cases["keypoint loss"], tol=1e-10,
            hint="mean over N, K and the two coordinates of ((pred - true) / S)^2; the visibility column is not a "
                 "coordinate")
pred, keypoints, size = cases["keypoint loss"][0].args
check_gradients("my_keypoint_loss gradient", lambda p: my_keypoint_loss(p, keypoints, size), [pred])
doubled = np.concatenate([2 * keypoints[..., :2], keypoints[..., 2:]], axis=-1)
check_close("my_keypoint_loss is independent of the image size (everything x2, S x2)",
            my_keypoint_loss(2 * pred, doubled, 2 * size), my_keypoint_loss(pred, keypoints, size), tol=1e-12)
check_cases("my_pck on random predictions (some keypoints with visibility 0)", my_pck, cases["pck"], tol=1e-12,
            hint="correct when distance <= alpha * max(w, h) of the box; keypoints with visibility 0 are not counted")
check_cases("my_pck with distances exactly alpha * size", my_pck, cases["pck boundary"], tol=1e-12,
            hint="a keypoint exactly at the radius is correct (<=, not <)")
pck_pred, pck_keypoints, pck_boxes, _ = cases["pck"][0].args
unlabelled = np.concatenate([pck_keypoints[..., :2], np.zeros_like(pck_keypoints[..., 2:])], axis=-1)
no_counted = my_pck(pck_pred, unlabelled, pck_boxes, 0.2)
print(f"my_pck with every visibility 0: {no_counted} (expected nan) — {'OK' if np.isnan(no_counted) else 'WRONG'}")
assert np.isnan(no_counted), "my_pck: with no counted keypoint (every visibility 0) return float('nan')"

# ---- the committed pose network on held-out stick figures (given) ----
from minidl.models import load_pretrained

pose_model = load_pretrained("pose_shapes")                     # eval mode; (N, 3, 64, 64) -> (N, 14, 2) pixels
figures = ShapesDataset(64, size=64, mode="pose", seed=1)       # held-out: the weights were trained on seed 0
items = [figures[i] for i in range(64)]
pose_images = np.stack([x for x, _ in items])
true_keypoints = np.stack([t["keypoints"][0] for _, t in items])      # (64, 14, 3)
person_boxes = np.stack([t["boxes"][0] for _, t in items])            # (64, 4)
with minidl.no_grad():
    predicted_keypoints = pose_model(Tensor(pose_images)).numpy()     # (64, 14, 2)

check_cases("my_keypoint_loss of the committed model", lambda: my_keypoint_loss(predicted_keypoints, true_keypoints, 64),
            cases["pose model loss"], tol=1e-4)
centre_loss = float(as_array(my_keypoint_loss(np.full(predicted_keypoints.shape, 32.0), true_keypoints, 64)))
print(f"for scale: every joint at the image centre scores {centre_loss:.4f}, the committed network "
      f"{float(as_array(my_keypoint_loss(predicted_keypoints, true_keypoints, 64))):.5f}")
check_cases("my_pck of the committed model", lambda alpha: my_pck(predicted_keypoints, true_keypoints, person_boxes, alpha),
            cases["pose model pck"], tol=2e-3)
check_at_least("PCK@0.1 of the committed model", my_pck(predicted_keypoints, true_keypoints, person_boxes, 0.1), 0.85)

alphas = np.array([a for (a,) in (c.args for c in cases["pose model pck"])])
yours = [my_pck(predicted_keypoints, true_keypoints, person_boxes, a) for a in alphas]
import matplotlib.patheffects as pe
outlined = [pe.withStroke(linewidth=2.6, foreground="black")]  # the figures and backgrounds take any hue: outline both
fig = plt.figure(figsize=(12, 4.6))
grid = fig.add_gridspec(2, 5)
for k in range(6):
    ax = fig.add_subplot(grid[k // 3, k % 3])
    ax.imshow(pose_images[k].transpose(1, 2, 0))
    for points, colour, style in ((true_keypoints[k], "white", "-"), (predicted_keypoints[k], "red", "--")):
        for a, b in POSE_SKELETON:
            ax.plot([points[a, 0] - 0.5, points[b, 0] - 0.5], [points[a, 1] - 0.5, points[b, 1] - 0.5], style,
                    color=colour, lw=1.2, path_effects=outlined)
        ax.scatter(points[:, 0] - 0.5, points[:, 1] - 0.5, s=8, color=colour, edgecolors="black", linewidths=0.5,
                   zorder=3)
    ax.set_title(f"figure {k}", fontsize=8)
    ax.set_axis_off()
ax = fig.add_subplot(grid[:, 3:])
ax.plot(alphas, yours, "-", color="tab:blue", label="your my_pck")
ax.plot(alphas, [float(c.expected) for c in cases["pose model pck"]], "o", ms=4, color="black", label="expected (frozen)")
ax.set(xlabel="alpha (radius / box size)", ylabel="PCK", ylim=(0, 1.02),
       title="PCK vs alpha\\n(pose network, 64 held-out figures)")
ax.legend(fontsize=8)
fig.suptitle("held-out stick figures: true skeleton white, predicted red dashed (left); PCK yours vs frozen (right)",
             fontsize=9)
plt.tight_layout()
plt.show()
"""),
    ("md", """
## What else lecture 8 shows, in minidl

`minidl.models.localization.Localizer` is the full classification + localization network trained end to end on
64×64 shapes (`load_pretrained("localizer_shapes")`, accuracy 0.97, mean box IoU 0.76); `minidl.models.pose` has
both DeepPose heads, the plain fully connected regressor (`head="fc"`) and the soft-argmax head used here, which
keeps the convolution's translation equivariance. `python -m minidl.tour --only localization` shows both;
`docs/lecture8.md` lists how they were trained. Detection (many objects, so a variable number of boxes) is the
next assignment.
"""),
]


# ---- frozen expected results ----------------------------------------------------------------------

def _boxes(rng, n, low=0.0, high=32.0, min_size=4.0, max_size=20.0):
    xy = rng.uniform(low, high - max_size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(min_size, max_size, (n, 2))], 1)


def reference_cases():
    import minidl
    import minidl.functional as F
    from minidl import Tensor, tensor
    from minidl.data import ShapesDataset
    from minidl.metrics import pck
    from minidl.models import load_pretrained
    from minidl.models.localization import LocalizationLoss
    from minidl.models.pose import KeypointLoss
    from minidl.ops import box_iou

    def pred_target(rng):          # (6, 4) errors from ~0.01 to ~3: both branches of smooth-L1 for beta 0.05 .. 1
        target = rng.uniform(0, 1, (6, 4))
        return target + rng.standard_normal((6, 4)) * np.exp(rng.uniform(np.log(0.01), np.log(3), (6, 4))), target

    cases = {}
    reductions = ["mean", "sum", "none"]
    cases["l2"], cases["l1"], cases["smooth l1"] = [], [], []
    for k, r in enumerate(reductions):
        cases["l2"] += trials(lambda p, t, r: F.mse_loss(tensor(p), tensor(t), reduction=r),
                              lambda rng, r=r: (*pred_target(rng), r), [2 * k, 2 * k + 1])
        cases["l1"] += trials(lambda p, t, r: F.l1_loss(tensor(p), tensor(t), reduction=r),
                              lambda rng, r=r: (*pred_target(rng), r), [10 + 2 * k, 11 + 2 * k])
    for k, (beta, r) in enumerate([(1.0, "mean"), (0.05, "mean"), (0.5, "sum"), (0.2, "none"), (0.0, "mean"),
                                   (0.05, "sum"), (2.0, "mean")]):
        cases["smooth l1"] += trials(lambda p, t, b, r: F.smooth_l1_loss(tensor(p), tensor(t), reduction=r, beta=b),
                                     lambda rng, beta=beta, r=r: (*pred_target(rng), beta, r), [20 + k])
    errors = np.linspace(-3, 3, 121)
    curve_fns = [F.mse_loss, F.l1_loss, lambda p, t, reduction: F.smooth_l1_loss(p, t, reduction=reduction, beta=1.0)]

    def curves(e):
        return np.stack([fn(tensor(e), tensor(np.zeros_like(e)), reduction="none").numpy() for fn in curve_fns])

    def gradient_curves(e):
        out = []
        for fn in curve_fns:
            x = Tensor(e.copy(), requires_grad=True)
            fn(x, tensor(np.zeros_like(e)), reduction="sum").backward()
            out.append(x.grad.numpy())
        return np.stack(out)

    cases["loss curves"] = [((errors,), curves(errors))]
    cases["gradient curves"] = [((errors,), gradient_curves(errors))]

    def localization_loss(s, pb, y, b, size, w, beta):
        loss = LocalizationLoss(box_weight=w, box_loss="smooth_l1", beta=beta)
        return loss(lambda images: (tensor(s), tensor(pb)), np.zeros((len(y), 3, size, size)), (y, b))

    def multitask_args(scale, weight=None):
        def make(rng):
            n, c = 6, 5
            size = int(rng.choice([32, 64]))
            boxes = _boxes(rng, n, high=float(size), max_size=size / 2)
            pred = boxes / size + rng.standard_normal((n, 4)) * np.exp(rng.uniform(np.log(0.005), np.log(0.3), (n, 4)))
            w = float(rng.choice([0.1, 1.0, 10.0])) if weight is None else weight
            return (rng.standard_normal((n, c)) * scale, pred, rng.integers(0, c, n), boxes, size, w,
                    float(rng.choice([0.05, 0.1])))
        return make

    cases["multitask"] = trials(localization_loss, multitask_args(3.0), range(4))
    cases["multitask extreme"] = trials(localization_loss, multitask_args(1000.0), range(10, 12))
    cases["multitask weight 0"] = trials(localization_loss, multitask_args(3.0, weight=0.0), range(20, 22))

    def paired(rng):
        a = _boxes(rng, 8)
        b = np.where(rng.random((8, 1)) < 0.7, a + rng.normal(0, 3, (8, 4)), _boxes(rng, 8))   # most overlap
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
        b[0] = a[0] + np.array([40.0, 0, 40, 0])                                               # one disjoint pair
        return a, b

    cases["paired iou"] = trials(lambda a, b: np.diag(box_iou(a, b)), paired, range(3))

    def correct_args(rng):
        a, b = paired(rng)
        labels = rng.integers(0, 5, 8)
        pred_labels = np.where(rng.random(8) < 0.7, labels, rng.integers(0, 5, 8))
        return pred_labels, a, labels, b, float(rng.choice([0.5, 0.3, 0.7]))

    def correct_reference(pred_labels, pred_boxes, labels, boxes, threshold):
        return np.float64(np.mean((pred_labels == labels) & (np.diag(box_iou(pred_boxes, boxes)) >= threshold)))

    cases["correct localization"] = trials(correct_reference, correct_args, range(5))
    # a pair with IoU exactly 0.5: (0, 0, 4, 2) and (0, 0, 2, 4)? -> 4 / (8 + 8 - 4) = 1/3; (0,0,4,4) vs (0,0,4,2): 0.5
    exact = (np.array([1, 2]), np.array([[0.0, 0, 4, 4], [0, 0, 4, 4]]), np.array([1, 2]),
             np.array([[0.0, 0, 4, 2], [0, 0, 4, 1]]), 0.5)
    cases["correct localization"].append((exact, correct_reference(*exact)))

    def keypoint_args(rng):
        n, size = int(rng.integers(2, 5)), int(rng.choice([32, 64]))
        true = rng.uniform(0, size, (n, 14, 2))
        keypoints = np.concatenate([true, rng.integers(0, 3, (n, 14, 1)).astype(float)], axis=2)
        return true + rng.normal(0, 3, (n, 14, 2)), keypoints, size

    cases["keypoint loss"] = trials(lambda p, k, s: KeypointLoss(s)(tensor(p), tensor(k)), keypoint_args, range(3))

    def pck_args(rng):
        n = 5
        true = rng.uniform(10, 54, (n, 14, 2))
        boxes = np.concatenate([true.min(axis=1), true.max(axis=1)], axis=1)
        visibility = rng.choice([0.0, 1.0, 2.0], (n, 14), p=[0.2, 0.2, 0.6])
        pred = true + rng.normal(0, 4, (n, 14, 2))
        return pred, np.concatenate([true, visibility[..., None]], axis=2), boxes, float(rng.choice([0.05, 0.1, 0.2]))

    cases["pck"] = trials(lambda p, k, b, a: np.float64(pck(p, k, b, alpha=a)), pck_args, range(4))

    def boundary_args(rng):      # every error is (3, 4) pixels = 5 = alpha * size exactly (size 20, alpha 0.25)
        true = rng.integers(10, 40, (3, 14, 2)).astype(float)
        boxes = np.array([[10.0, 10, 30, 25], [5, 5, 20, 25], [0, 0, 20, 20]])
        signs = rng.choice([-1.0, 1.0], (3, 14, 2))
        pred = true + signs * np.array([3.0, 4.0]) * (rng.random((3, 14, 1)) < 0.5) \
            + signs * np.array([4.0, 4.0]) * (rng.random((3, 14, 1)) < 0.2)
        keypoints = np.concatenate([true, np.full((3, 14, 1), 2.0)], axis=2)
        return pred, keypoints, boxes, 0.25

    cases["pck boundary"] = trials(lambda p, k, b, a: np.float64(pck(p, k, b, alpha=a)), boundary_args, range(2))

    # the committed pose network on the notebook's 64 held-out figures (dataset seed 1)
    model = load_pretrained("pose_shapes")
    figures = ShapesDataset(64, size=64, mode="pose", seed=1)
    items = [figures[i] for i in range(64)]
    images = np.stack([x for x, _ in items])
    keypoints = np.stack([t["keypoints"][0] for _, t in items])
    boxes = np.stack([t["boxes"][0] for _, t in items])
    with minidl.no_grad():
        predicted = model(Tensor(images)).numpy()
    cases["pose model loss"] = [((), KeypointLoss(64)(tensor(predicted), tensor(keypoints)).numpy())]
    cases["pose model pck"] = [((float(a),), np.float64(pck(predicted, keypoints, boxes, alpha=float(a))))
                               for a in (0.02, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)]
    return cases


MUTATIONS = {
    "smooth-L1 linear branch off by 0.5 beta": (
        "box_losses", "d - 0.5 * beta)", "d - beta)", {"box_losses", "multitask"}, "my_smooth_l1_loss",
        ["box_losses", "multitask"]),
    "pixel boxes not divided by the image size": (
        "multitask", "Tensor(boxes / float(image_size))", "Tensor(boxes)", {"multitask"}, "my_multitask_loss",
        ["multitask"]),
    "PCK radius from the smaller box side": (
        "pose", "size = np.maximum(", "size = np.minimum(", {"pose"}, "my_pck", ["pose"]),
}
