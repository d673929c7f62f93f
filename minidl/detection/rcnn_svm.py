"""R-CNN trained as the paper did: post-hoc linear SVMs and ridge box regressors (Girshick et al. 2014).

CS231n lecture 8 lists R-CNN's "ad hoc training objectives": (1) fine-tune the CNN with a
softmax classifier; (2) cache the CNN features of every proposal; (3) train one **linear SVM per
class** on the cached fc7 features; (4) train one **bounding-box regressor per class** by least
squares on the cached pool5 features. ``RCNN`` (rcnn.py) with its committed weights is stage 1;
``feature_cache.py`` is stage 2; this file is stages 3 and 4 and the detector they make.

**SVMs (stage 3).** One binary SVM per class c, one-vs-rest, as the paper chose its examples:
positives = the ground-truth boxes of class c; negatives = proposals whose IoU with *every*
ground truth of class c is below 0.3 (proposals in between are ignored). There is no background
SVM: a region every SVM scores low is background. Negatives vastly outnumber positives, so the
paper used **hard negative mining**: train on a random subset of negatives, score all cached
negatives, add those inside the margin (score > −1: they still cost hinge loss), retrain; repeat
until no negative is added or a round limit is reached.

Hinge-loss convention (the same as assignment 7's one-vs-rest SVM, ``assignments/course/detectors.py``
part "svm", for one class): scores ``s = X w + b``, labels ``y ∈ {−1, +1}``,

    L(w, b) = (1/N) Σ_i max(0, 1 − y_i s_i)  +  (reg / 2) ‖w‖²        (the bias is not regularized)

**Box regressors (stage 4).** For class c, proposals whose best ground truth is of class c with
IoU ≥ 0.6; targets ``t = encode_boxes(gt, proposal)`` with weights (1, 1, 1, 1) (the paper's
eq. 1-4); features pool5; ridge regression in closed form, ``W = (XᵀX + λI)⁻¹ XᵀT`` on centred X
and T (the bias, the means' difference, is not regularized). The paper fixed λ = 1000; here λ is
chosen from a grid by the squared error on a held-out fifth of the training *images*, then the
regressors are refitted on all of them.

The result, ``RCNNWithSVMs``, scores a proposal by the SVMs' margins and moves it with its
class's regressor. ``benchmarks/train_rcnn_svm.py`` compares it with the softmax head: on 600
training scenes (71,307 cached regions, 370 MB, stages 2-4 in 63 s on 2 shared cores) it measured
mAP@0.5 0.450 for SVMs + ridge (0.446 without the regressors) against 0.374 for the softmax head of
the same network, mean over 200 held-out scenes of each of dataset seeds 1, 2, 3 — the paper's
direction too (54.2 vs 50.9 mAP on VOC 2007).
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from ..nn.module import load_npz, save_npz
from ..ops import batched_nms, clip_boxes_to_image, decode_boxes, encode_boxes, remove_small_boxes
from ..train import host_float32
from .feature_cache import load_feature_cache, region_features, write_feature_cache

#: The paper's box-coder weights for the regressor's targets: plain (dx, dy, dw, dh).
REGRESSION_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


# ---- stage 3: one binary linear SVM ---------------------------------------------------------------

def hinge_loss(w, b, X, y, reg):
    """Binary SVM loss and its gradient, written by hand -> ``(loss, dw (D,), db)``.

    w (D,), b a scalar, X (N, D), y (N,) in {−1, +1}. ``L = mean_i max(0, 1 − y_i (x_i·w + b))
    + reg/2 ‖w‖²``. A sample inside the margin (``y s < 1``) contributes ``−y_i x_i / N`` to dw and
    ``−y_i / N`` to db; one outside contributes nothing (the hinge is flat there).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    w = np.asarray(w)
    if X.ndim != 2 or w.shape != (X.shape[1],) or y.shape != (X.shape[0],):
        raise ValueError(f"hinge_loss: expected w (D,), X (N, D), y (N,); got w {w.shape}, X {X.shape}, y {y.shape}")
    n = max(len(y), 1)
    scores = X @ w + b
    margins = 1.0 - y * scores
    active = margins > 0                                   # inside the margin or misclassified
    loss = np.maximum(margins, 0).sum() / n + 0.5 * reg * float(w @ w)
    d_scores = np.where(active, -y, 0).astype(X.dtype) / n   # dL/ds_i
    return float(loss), X.T @ d_scores + reg * w, float(d_scores.sum())


def train_linear_svm(X, y, reg=1e-5, steps=2000, lr=2.0, momentum=0.9, batch_size=None, w=None, b=0.0, rng=0):
    """Minimize ``hinge_loss`` by (sub)gradient descent with momentum -> ``(w, b, losses)``.

    Full batch by default (``batch_size=None``: deterministic); with ``batch_size`` each step uses a
    minibatch drawn from ``rng`` (deterministic given the seed). The learning rate decays along a
    cosine from ``lr`` to 0, which lets the non-smooth hinge settle. ``w``, ``b``: a warm start
    (hard negative mining retrains from the previous round's SVM). Features should be scaled to
    norms of order 1 for the default ``lr`` (``RCNNWithSVMs`` standardizes fc7 first).
    """
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    if set(np.unique(y).tolist()) - {-1.0, 1.0}:
        raise ValueError(f"train_linear_svm: y must hold only -1 and +1, got values {np.unique(y)[:5]}")
    rng = np.random.default_rng(rng)
    w = np.zeros(X.shape[1]) if w is None else np.array(w, np.float64)
    b = float(b)
    vw, vb, losses = np.zeros_like(w), 0.0, []
    for step in range(steps):
        rows = slice(None) if batch_size is None else rng.choice(len(X), min(batch_size, len(X)), replace=False)
        loss, dw, db = hinge_loss(w, b, X[rows], y[rows], reg)
        rate = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
        vw, vb = momentum * vw - rate * dw, momentum * vb - rate * db
        w, b = w + vw, b + vb
        losses.append(loss)
    return w, b, losses


def mine_hard_negatives(w, b, X, candidates, active, margin=-1.0):
    """Indices of ``candidates`` not yet in ``active`` whose score ``X[i]·w + b`` exceeds ``margin``.

    With y = −1 a negative costs hinge loss exactly when its score is above −1: these are the
    *hard* negatives the next round must see. X (M, D) is indexed by candidate index (the cache's
    rows); scored in chunks so a memmap is read piece by piece.
    """
    candidates = np.sort(np.asarray(candidates, np.int64))
    scores = np.concatenate([np.asarray(X[candidates[start:start + 8192]], np.float64) @ w + b
                             for start in range(0, len(candidates), 8192)] or [np.zeros(0)])
    hard = candidates[scores > margin]
    return np.setdiff1d(hard, active)


def train_svm_with_hard_negatives(X, positives, negatives, reg=1e-5, initial_negatives=500, max_rounds=5,
                                  steps=2000, lr=2.0, rng=0, log=None):
    """One class's SVM by R-CNN's hard negative mining -> ``(w, b, rounds)``.

    X (M, D) the (standardized) features of every cached region; positives, negatives: row indices.
    Round 0 trains on all positives and ``initial_negatives`` random negatives; each later round
    adds every negative inside the margin (``mine_hard_negatives``) and retrains from the previous
    SVM, until none is added or ``max_rounds`` rounds of mining have run. ``rounds``: one dict per
    training (``negatives`` used, ``added`` for the next round, ``loss``).
    """
    rng = np.random.default_rng(rng)
    positives, negatives = np.asarray(positives, np.int64), np.asarray(negatives, np.int64)
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError(f"train_svm_with_hard_negatives: need positives and negatives, got {len(positives)} "
                         f"and {len(negatives)}")
    active = np.sort(rng.choice(negatives, min(initial_negatives, len(negatives)), replace=False))
    w, b, rounds = None, 0.0, []
    for round_index in range(max_rounds + 1):
        rows = np.concatenate([positives, active])
        y = np.r_[np.ones(len(positives)), -np.ones(len(active))]
        w, b, losses = train_linear_svm(np.asarray(X[rows], np.float64), y, reg, steps, lr, w=w, b=b)
        added = mine_hard_negatives(w, b, X, negatives, active) if round_index < max_rounds else np.zeros(0, np.int64)
        rounds.append({"round": round_index, "positives": int(len(positives)), "negatives": int(len(active)),
                       "added": int(len(added)), "loss": round(losses[-1], 5)})
        if log is not None:
            log(rounds[-1])
        if len(added) == 0:
            break
        active = np.union1d(active, added)
    return w, b, rounds


# ---- stage 4: ridge box regressors ----------------------------------------------------------------

def fit_ridge(X, T, lam):
    """Ridge regression in closed form: X (N, D), T (N, K) -> ``(W (D, K), bias (K,))``.

    Centring X and T first leaves the bias out of the penalty: ``W = (XcᵀXc + λI)⁻¹ XcᵀTc``,
    ``bias = mean(T) − mean(X) W``. Solved in float64 (D×D system).
    """
    X = np.asarray(X, np.float64)
    T = np.asarray(T, np.float64)
    if X.ndim != 2 or T.ndim != 2 or len(X) != len(T) or len(X) == 0:
        raise ValueError(f"fit_ridge: expected X (N, D), T (N, K) with N > 0; got {X.shape}, {T.shape}")
    x_mean, t_mean = X.mean(0), T.mean(0)
    Xc, Tc = X - x_mean, T - t_mean
    W = np.linalg.solve(Xc.T @ Xc + lam * np.eye(X.shape[1]), Xc.T @ Tc)
    return W, t_mean - x_mean @ W


def regression_examples(cache, cls, min_iou=0.6):
    """Rows of the cache that train class ``cls``'s regressor, and their targets ->
    ``(rows (M,), targets (M, 4))``: regions whose best ground truth is of class ``cls`` with IoU ≥
    ``min_iou``; targets ``encode_boxes(gt, region)`` (paper weights 1, 1, 1, 1)."""
    rows = np.flatnonzero((np.asarray(cache.gt_labels) == cls) & (np.asarray(cache.gt_iou) >= min_iou))
    targets = encode_boxes(np.asarray(cache.gt_boxes[rows]), np.asarray(cache.boxes[rows]), REGRESSION_WEIGHTS)
    return rows, np.asarray(targets, np.float64)


def train_box_regressors(cache, lambdas=(1, 10, 100, 1000, 10000, 100000), min_iou=0.6, val_fraction=0.2, rng=0):
    """Stage 4: one ridge regressor per class on pool5 -> ``(W (C, D, 4), bias (C, 4), report)``.

    λ is chosen once for all classes: the images are split (``val_fraction`` held out, from
    ``rng``), every class is fitted on the rest for each λ of the grid, and the λ with the smallest
    summed squared error of the held-out targets wins; then every class is refitted on all images.
    """
    rng = np.random.default_rng(rng)
    num_classes = cache.manifest["num_classes"]
    num_images = cache.manifest["num_images"]
    held_out = np.zeros(num_images, bool)
    held_out[rng.choice(num_images, max(1, int(round(val_fraction * num_images))), replace=False)] = True
    examples = [regression_examples(cache, c, min_iou) for c in range(num_classes)]
    features = [np.asarray(cache.pool5[rows], np.float64) for rows, _ in examples]
    image_of = np.asarray(cache.image_index)
    errors = {}
    for lam in lambdas:
        total = 0.0
        for (rows, targets), X in zip(examples, features):
            val = held_out[image_of[rows]]
            if val.all() or not val.any():
                continue
            W, bias = fit_ridge(X[~val], targets[~val], lam)
            total += float(((X[val] @ W + bias - targets[val]) ** 2).sum())
        errors[lam] = total
    best = min(errors, key=errors.get)
    dim = cache.pool5.shape[1]
    W_all, b_all = np.zeros((num_classes, dim, 4)), np.zeros((num_classes, 4))
    for c, ((rows, targets), X) in enumerate(zip(examples, features)):
        if len(rows):
            W_all[c], b_all[c] = fit_ridge(X, targets, best)
    report = {"lambda": best, "validation_sse": {str(k): round(v, 4) for k, v in errors.items()},
              "examples_per_class": [int(len(rows)) for rows, _ in examples]}
    return W_all.astype(np.float32), b_all.astype(np.float32), report


# ---- the detector ---------------------------------------------------------------------------------

class RCNNWithSVMs:
    """The fine-tuned ``RCNN`` (features only) + per-class linear SVMs on fc7 + ridge regressors on pool5.

    svm_weights (C, H), svm_biases (C,): a region's score for class c is ``fc7·w_c + b_c``, the
    SVM's margin (> 0: class c; no background class). regressor_weights (C, D, 4),
    regressor_biases (C, 4): the offsets ``pool5 · W_c + b_c`` (``encode_boxes`` convention, weights
    1, 1, 1, 1) that move a region detected as class c.
    """

    def __init__(self, rcnn, svm_weights, svm_biases, regressor_weights, regressor_biases):
        c = rcnn.num_classes
        hidden, dim = rcnn.head.shared[-2].out_features, rcnn.head.shared[0].in_features
        self.rcnn = rcnn
        self.svm_weights = np.asarray(svm_weights, np.float32)
        self.svm_biases = np.asarray(svm_biases, np.float32)
        self.regressor_weights = np.asarray(regressor_weights, np.float32)
        self.regressor_biases = np.asarray(regressor_biases, np.float32)
        expected = {"svm_weights": (c, hidden), "svm_biases": (c,), "regressor_weights": (c, dim, 4),
                    "regressor_biases": (c, 4)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"RCNNWithSVMs: {name} must be {shape} for this RCNN, got {getattr(self, name).shape}")

    @property
    def num_classes(self):
        return self.rcnn.num_classes

    def score_and_regress(self, pool5, fc7, boxes):
        """Cached or fresh features of K regions -> ``(scores (K, C), boxes (K, C, 4))``: the SVM
        margins and each class's regressed box (not clipped)."""
        k = len(boxes)
        scores = np.asarray(fc7, np.float32) @ self.svm_weights.T + self.svm_biases
        c, dim = self.num_classes, self.regressor_weights.shape[1]
        flat = self.regressor_weights.transpose(1, 0, 2).reshape(dim, 4 * c)      # (D, 4C), class-major
        deltas = np.asarray(pool5, np.float32) @ flat + self.regressor_biases.reshape(-1)
        regressed = decode_boxes(deltas, np.asarray(boxes, np.float32).reshape(-1, 4), REGRESSION_WEIGHTS)
        return scores, np.asarray(regressed).reshape(k, c, 4)

    def detect(self, images, proposals, score_threshold=-np.inf, nms_threshold=0.3, max_detections=100,
               batch_size=256):
        """Detections per image -> list of dicts ``boxes`` (D, 4), ``scores`` (D,) = SVM margins,
        ``labels`` (D,) in 0..C-1.

        Every (proposal, class) pair with margin > ``score_threshold`` is a candidate; its box is
        the class's regressed box clipped to the image; per-class NMS at ``nms_threshold`` (the
        paper's 0.3), then the ``max_detections`` best. The default keeps every candidate: the SVMs
        saw only exact ground-truth boxes as positives, so a well-placed proposal often scores
        below −1, and a threshold there cuts recall (mAP@0.5 on 100 tuning scenes, dataset seed 4:
        0.376 at −1, 0.480 at −3 and without a threshold).
        """
        images = host_float32(images)
        if len(proposals) != len(images):
            raise ValueError(f"detect: {len(images)} images but {len(proposals)} proposal arrays")
        pool5, fc7 = region_features(self.rcnn, images, proposals, batch_size)
        out, start = [], 0
        for p in proposals:
            p = np.asarray(p, np.float32).reshape(-1, 4)
            stop = start + len(p)
            scores, boxes = self.score_and_regress(pool5[start:stop], fc7[start:stop], p)
            out.append(select_detections(scores, boxes, images.shape[2:], score_threshold, nms_threshold,
                                         max_detections))
            start = stop
        return out

    def arrays(self):
        return {"svm_weights": self.svm_weights, "svm_biases": self.svm_biases,
                "regressor_weights": self.regressor_weights, "regressor_biases": self.regressor_biases,
                "rcnn_fingerprint": rcnn_fingerprint(self.rcnn)}

    def save(self, path):
        """Write the SVM and regressor weights (not the RCNN's: those are ``rcnn_shapes``) atomically
        as an ``.npz`` (``minidl.nn.module.save_npz``), with a fingerprint of the RCNN they belong to."""
        save_npz(path, self.arrays())
        return self

    @classmethod
    def load(cls, path, rcnn):
        """The detector saved at ``path`` on top of ``rcnn``; ValueError if ``rcnn`` is not the
        network whose features the SVMs were trained on (its fingerprint differs)."""
        arrays = load_npz(path)
        expected = rcnn_fingerprint(rcnn)
        if not np.allclose(arrays["rcnn_fingerprint"], expected, rtol=1e-5):
            raise ValueError(f"{path}: these SVMs were trained on the features of another RCNN (fingerprint "
                             f"{arrays['rcnn_fingerprint']} != {expected})")
        return cls(rcnn, arrays["svm_weights"], arrays["svm_biases"], arrays["regressor_weights"],
                   arrays["regressor_biases"])


def rcnn_fingerprint(rcnn):
    """(2,) float64: sum and sum of squares of every parameter and buffer — changes when the CNN is retrained."""
    values = [np.asarray(v, np.float64) for v in rcnn.state_dict().values()]
    return np.array([sum(v.sum() for v in values), sum((v * v).sum() for v in values)])


def select_detections(scores, boxes, image_size, score_threshold, nms_threshold, max_detections, min_size=1.0):
    """One image: scores (K, C), per-class boxes (K, C, 4) -> ``{"boxes", "scores", "labels"}``
    after clipping, thresholding, dropping tiny boxes and per-class NMS (as ``postprocess.py``,
    without its softmax: SVM margins are already comparable scores)."""
    k, c = scores.shape
    boxes = np.asarray(clip_boxes_to_image(boxes.reshape(-1, 4), image_size))
    scores, labels = scores.reshape(-1), np.tile(np.arange(c), k)
    keep = np.flatnonzero(scores > score_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    keep = keep[np.asarray(remove_small_boxes(boxes[keep], min_size))]
    keep = keep[np.asarray(batched_nms(boxes[keep], scores[keep], labels[keep], nms_threshold))][:max_detections]
    return {"boxes": boxes[keep].astype(np.float32), "scores": scores[keep].astype(np.float32),
            "labels": labels[keep].astype(np.int64)}


# ---- stages 2-4 -----------------------------------------------------------------------------------

def train_svms(cache, reg=1e-5, neg_iou=0.3, initial_negatives=500, max_rounds=5, steps=2000, lr=2.0, rng=0,
               verbose=True):
    """Stage 3: one SVM per class on the cache's fc7 -> ``(weights (C, H), biases (C,), rounds per class)``.

    fc7 is standardized (mean and standard deviation over all cached regions, then divided by
    √H so rows have norm ~1) so one learning rate suits every class; the scaling is folded back
    into the returned weights, which apply to raw fc7. The defaults (reg 1e-5, 2000 steps at rate
    2) were picked on 100 tuning scenes of dataset seed 4 with a 300-scene cache, not on the seeds
    the benchmark reports (mAP@0.5 0.480; reg 1e-4: 0.456, 1e-3 with 1000 steps: 0.451; 1000 or
    3000 steps at reg 1e-5: 0.485, 0.481 — the step count matters little).
    """
    fc7 = np.asarray(cache.fc7, np.float64)
    mean, std = fc7.mean(0), fc7.std(0) + 1e-6
    X = (fc7 - mean) / std / np.sqrt(fc7.shape[1])      # rows of norm ~1
    num_classes = cache.manifest["num_classes"]
    is_gt, gt_labels, class_iou = np.asarray(cache.is_gt), np.asarray(cache.gt_labels), np.asarray(cache.class_iou)
    weights, biases, all_rounds = np.zeros((num_classes, fc7.shape[1])), np.zeros(num_classes), []
    seeds = np.random.default_rng(rng).integers(2 ** 31, size=num_classes)
    for c in range(num_classes):
        positives = np.flatnonzero(is_gt & (gt_labels == c))
        negatives = np.flatnonzero(class_iou[:, c] < neg_iou)

        def log(r, c=c):
            if verbose:
                print(f"  SVM class {c} round {r['round']}: {r['positives']} positives, {r['negatives']} negatives, "
                      f"loss {r['loss']:.4f}, {r['added']} hard negatives added", flush=True)
        w, b, rounds = train_svm_with_hard_negatives(X, positives, negatives, reg, initial_negatives, max_rounds,
                                                     steps, lr, seeds[c], log)
        scale = std * np.sqrt(fc7.shape[1])
        weights[c], biases[c] = w / scale, b - (mean / scale) @ w     # s = ((x - m)/scale)·w + b
        all_rounds.append(rounds)
    return weights.astype(np.float32), biases.astype(np.float32), all_rounds


def default_cache_dir():
    """``$MINIDL_CACHE/rcnn_features`` or ``~/.cache/minidl/rcnn_features`` (never inside the repository)."""
    root = os.environ.get("MINIDL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "minidl")
    return os.path.join(root, "rcnn_features")


def train_rcnn_with_svms(rcnn, images, targets, cache_dir=None, proposals=None, svm_reg=1e-5, max_rounds=5,
                         initial_negatives=500, svm_steps=2000, lambdas=(1, 10, 100, 1000, 10000, 100000),
                         batch_size=256, progress=True, rng=0):
    """R-CNN's stages 2-4 on top of a fine-tuned ``rcnn`` -> ``(RCNNWithSVMs, report)``.

    proposals: one (P_i, 4) array per image, or None for selective search as the detectors use it
    (``selective_search(image, mode="fast", min_size=20)``). The report holds the seconds of each
    stage, the cache's size in MB and region count, the λ chosen, and the hard-negative rounds.
    """
    from .proposals import selective_search
    cache_dir = cache_dir or tempfile.mkdtemp(prefix="minidl-rcnn-features-")
    images = host_float32(images)
    report = {}
    if proposals is None:
        start = time.perf_counter()
        proposals = [selective_search(im, mode="fast", min_size=20) for im in images]
        report["proposal_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    write_feature_cache(rcnn, images, targets, proposals, cache_dir, batch_size, progress)
    cache = load_feature_cache(cache_dir)
    report.update(stage2_cache_seconds=time.perf_counter() - start, cache_mb=cache.size_mb,
                  cached_regions=cache.count, cache_dir=cache_dir)
    start = time.perf_counter()
    W, b, rounds = train_svms(cache, svm_reg, initial_negatives=initial_negatives, max_rounds=max_rounds,
                              steps=svm_steps, rng=rng, verbose=progress)
    report.update(stage3_svm_seconds=time.perf_counter() - start, svm_rounds=rounds)
    start = time.perf_counter()
    R, rb, ridge = train_box_regressors(cache, lambdas, rng=rng)
    report.update(stage4_regression_seconds=time.perf_counter() - start, ridge=ridge)
    return RCNNWithSVMs(rcnn, W, b, R, rb), report
