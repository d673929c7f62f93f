"""YOLO (Redmon et al. 2016, "You Only Look Once", v1; CS231n lecture 8): detection as one regression.

SSD (``single_shot.py``) still thinks in anchors: thousands of preset boxes, each matched to the
objects by IoU. YOLO v1 is simpler still. It cuts the image into an **S × S grid**; the cell that
contains an object's *centre* is responsible for that object, and every cell predicts, in one
forward pass,

* B boxes, each ``(x, y, √w, √h, confidence)``: the box centre as an offset inside the cell, its
  width and height relative to the image (through their square roots), and how sure the cell is
  that this box holds an object (trained towards 1; the paper: towards the box's IoU with it);
* one class distribution ``Pr(class | object)`` for the cell (not per box: a cell names one class).

The output is a tensor (N, S, S, B·5 + C). At test time a box's class score is
``confidence × Pr(class | object)``; thresholding and per-class NMS give the detections.

The loss (paper eq. 3: squared errors; cross-entropy for the class here), divided by the batch size:

    λ_coord Σ_resp [(x − x̂)² + (y − ŷ)² + (√w − √ŵ)² + (√h − √ĥ)²]      (coordinates)
    +       Σ_resp (C − 1)²       (the paper: (C − IoU)², ``rescore``)      (confidence, objects)
    + λ_noobj Σ_not-resp C²                                                 (confidence, no object)
    +       Σ_cells-with-object CE(class scores, class)                     (classification)

"resp" are the **responsible predictors**: in the cell of an object, of its B predictors the one
whose current box overlaps the object best (IoU computed without gradient). So the B predictors
of a cell specialise (one on tall boxes, one on small ones, ...). Every other predictor, in empty
cells and the losers in object cells, is pushed to confidence 0, down-weighted by λ_noobj = 0.5
since there are far more of them; λ_coord = 5 raises the box terms. Predicting √w rather than w
makes the same error cost more on a small box than on a big one (d√w = dw / 2√w): an error of
2 px matters more on a 10-px box than on a 28-px box.

Choices of this implementation (the paper's are noted):

* **parametrisation**: all five box outputs go through a sigmoid: x, y land inside the cell
  (0..1), √w, √h in 0..1 (the whole image at most), the confidence in 0..1. The paper used linear
  outputs and needed a learning-rate warm-up because early steps diverged; bounded outputs (as
  YOLO v2 did for x, y) train from the first step with the same Adam recipe as the SSD.
* **confidence target**: 1 for the responsible predictor (a plain objectness, ``rescore=False``,
  the default), not the paper's IoU (``rescore=True``, darknet's name). Measured on the shapes
  scenes (benchmarks/train_lecture8.py recipe, 3000 steps, mAP@0.5 on 200 held-out scenes): target
  1 gave 0.840 / 0.909 (3000 / 8000 training scenes), the IoU target 0.816 / 0.897. Early in
  training the IoUs are small, so the IoU target first teaches the cells that *do* hold an object
  a low confidence; the class score ``confidence × Pr(class)`` ranks well enough without it.
* **classification**: softmax cross-entropy in the cells with an object, not the paper's squared
  error on probabilities: it is the loss of every other classifier in minidl, its gradient does
  not vanish when the softmax saturates on the wrong class, and the scores are probabilities.
* **head**: the paper ends with two fully connected layers (each cell sees the whole 448-px
  image); here a stride-8 conv backbone (``minidl.models.blocks``) plus a 3×3 conv and a 1×1 conv
  give every cell a receptive field of 59 px, enough for 64-px scenes, at a fraction of the weights.
* **grid S = 8, B = 2** for 64 × 64 scenes with 10–28-px shapes: 8-px cells are smaller than
  nearly all objects, so a cell holds at most one object's centre — measured on 500 scenes
  (1224 objects): 0.8 % of the objects share their centre cell with another (S = 4: 5.8 %,
  S = 16: 0.25 %, but 4× the cells, most of them empty). B = 2 as in the paper: two shapes of box
  per cell (wide / tall, small / large) to specialise on.
* **overfitting**: with one cell per object, a scene gives the class head only a few training
  examples (SSD's matching gives each object several positive anchors). Trained on 3000 scenes the
  detector reaches mAP@0.5 0.97 on 300 of its training scenes but 0.84 on 300 held-out ones
  (class-agnostic 0.91: most of the gap is the class; the SSD: 0.98 / 0.93); trained on 8000
  scenes, 0.909 held-out (the committed recipe). The paper's dropout (0.5,
  before the output conv here, ``dropout=``) did not help: 0.724 on 3000 scenes.
* **two objects in one cell**: a cell predicts one class, so only one can be learned (YOLO v1's
  known limit); the larger one keeps the cell.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..models.blocks import conv_relu, downsampling_backbone
from ..ops import batched_nms, clip_boxes_to_image, remove_small_boxes
from ..autograd import Tensor, no_grad
from ..train import host_float32, model_device


def _check_grid(grid, image_size):
    for name, value in (("grid", grid), ("image_size", image_size)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if image_size % grid:
        raise ValueError(f"image_size ({image_size}) must be a multiple of grid ({grid})")


# ---- training targets: which cell is responsible --------------------------------------------------

def yolo_targets(targets, grid, image_size):
    """Per-cell training targets of a batch: the cell containing an object's centre is responsible.

    targets: a list (one per image) of dicts with ``"boxes"`` (K, 4) x1y1x2y2 pixels and
    ``"labels"`` (K,) ints in 0..C-1. Returns a dict of NumPy arrays, S = grid:

    * ``"object"`` (N, S, S) bool: the cell (row i, column j) is responsible for an object;
    * ``"coords"`` (N, S, S, 4) float32: that object as the network predicts it, ``(x, y, √w, √h)``
      — centre offset inside the cell in [0, 1], square roots of width and height / image size;
    * ``"boxes"`` (N, S, S, 4) float32: the object's box x1y1x2y2 in pixels (for the IoUs);
    * ``"labels"`` (N, S, S) int64: its class, -1 in cells without an object.

    The cell of a centre (cx, cy) is column ``j = floor(cx / cell)``, row ``i = floor(cy / cell)``,
    cell = image_size / S: cells are half-open, ``[j·cell, (j+1)·cell)``, so a centre exactly on the
    border between two cells belongs to the one to its right (below); a centre on the image's right
    (bottom) edge, or outside the image, is clipped into the last (first) cell. When several
    centres fall into one cell the largest object (by area; the first listed on a tie) keeps it.
    """
    _check_grid(grid, image_size)
    if not isinstance(targets, (list, tuple)):
        raise TypeError(f"targets must be a list of dicts with 'boxes' and 'labels', got {type(targets).__name__}")
    n, s, cell = len(targets), int(grid), image_size / grid
    out = {"object": np.zeros((n, s, s), bool), "coords": np.zeros((n, s, s, 4), np.float32),
           "boxes": np.zeros((n, s, s, 4), np.float32), "labels": np.full((n, s, s), -1, np.int64)}
    for b, t in enumerate(targets):
        boxes = np.asarray(backend.to_numpy(getattr(t["boxes"], "data", t["boxes"])), np.float64)
        labels = np.asarray(backend.to_numpy(getattr(t["labels"], "data", t["labels"])))
        boxes = boxes.reshape(-1, 4) if boxes.size == 0 else boxes
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"targets[{b}]['boxes']: expected shape (K, 4) x1y1x2y2, got {boxes.shape}")
        if labels.shape != (len(boxes),) or (len(labels) and labels.dtype.kind not in "iu"):
            raise ValueError(f"targets[{b}]['labels']: expected ({len(boxes)},) integers, "
                             f"got shape {labels.shape} dtype {labels.dtype}")
        if (labels < 0).any():
            raise ValueError(f"targets[{b}]['labels']: class labels must be >= 0, got {labels.tolist()}")
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        if (w <= 0).any() or (h <= 0).any():
            raise ValueError(f"targets[{b}]['boxes']: every box needs x2 > x1 and y2 > y1")
        cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
        col = np.clip(np.floor(cx / cell), 0, s - 1).astype(int)
        row = np.clip(np.floor(cy / cell), 0, s - 1).astype(int)
        for k in np.argsort(-(w * h), kind="stable"):        # largest first: it keeps a shared cell
            i, j = row[k], col[k]
            if out["object"][b, i, j]:
                continue
            out["object"][b, i, j] = True
            out["coords"][b, i, j] = (cx[k] / cell - j, cy[k] / cell - i,
                                      np.sqrt(w[k] / image_size), np.sqrt(h[k] / image_size))
            out["boxes"][b, i, j] = boxes[k]
            out["labels"][b, i, j] = labels[k]
    return out


# ---- from network outputs to boxes -----------------------------------------------------------------

def _split(outputs, num_boxes):
    """(N, S, S, B·5 + C) -> box part (N, S, S, B, 5) and class scores (N, S, S, C) (Tensors or arrays)."""
    n, s, s2, depth = outputs.shape
    return outputs[..., :5 * num_boxes].reshape(n, s, s2, num_boxes, 5), outputs[..., 5 * num_boxes:]


def _check_outputs(outputs, num_boxes, name="predictions"):
    if not isinstance(num_boxes, numbers.Integral) or isinstance(num_boxes, bool) or num_boxes < 1:
        raise ValueError(f"num_boxes must be a positive int, got {num_boxes!r}")
    shape = tuple(outputs.shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] <= 5 * num_boxes:
        raise ValueError(f"{name}: expected (N, S, S, B*5 + C) with B = {num_boxes} and C >= 1, got {shape}")


def cell_boxes(xywh, image_size):
    """Boxes x1y1x2y2 in pixels from (N, S, S, B, 4) ``(x, y, √w, √h)`` (cell offsets, sqrt sizes).

    A predictor of cell (row i, column j) has its centre at ``((j + x)·cell, (i + y)·cell)`` and
    size ``(√w)²·image_size × (√h)²·image_size``. An array in, an array of the same kind out.
    """
    xp = backend.get_array_module(xywh)
    s = xywh.shape[1]
    cell = image_size / s
    offsets = xp.arange(s, dtype=xywh.dtype)
    cx = (offsets[None, None, :, None] + xywh[..., 0]) * cell        # column j along axis 2
    cy = (offsets[None, :, None, None] + xywh[..., 1]) * cell        # row i along axis 1
    w, h = xywh[..., 2] ** 2 * image_size, xywh[..., 3] ** 2 * image_size
    return xp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def decode_outputs(outputs, num_boxes, image_size):
    """Raw outputs (N, S, S, B·5 + C) array -> ``(boxes (N, S, S, B, 4) pixels, confidence
    (N, S, S, B), class probabilities (N, S, S, C))`` — sigmoid on the box part, softmax on the classes."""
    _check_outputs(outputs, num_boxes, "outputs")
    xp = backend.get_array_module(outputs)
    box_part, class_scores = _split(outputs, num_boxes)
    box_part = 1 / (1 + xp.exp(-box_part))
    e = xp.exp(class_scores - class_scores.max(axis=-1, keepdims=True))
    return cell_boxes(box_part[..., :4], image_size), box_part[..., 4], e / e.sum(axis=-1, keepdims=True)


def _paired_iou(a, b):
    """IoU of boxes a (..., 4) and b (..., 4) pair by pair (broadcast), 0 for empty unions."""
    xp = backend.get_array_module(a)
    wh = xp.maximum(xp.minimum(a[..., 2:], b[..., 2:]) - xp.maximum(a[..., :2], b[..., :2]), 0)
    inter = wh[..., 0] * wh[..., 1]
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
             - inter)
    return inter / xp.where(union > 0, union, 1)


def responsible_predictors(predictions, targets, num_boxes, image_size):
    """Which of the B predictors of each object's cell is responsible -> ``(responsible (N, S, S, B)
    bool, iou (N, S, S, B))`` (NumPy, no gradient).

    In a cell with an object, the predictor whose decoded box has the highest IoU with the
    object's box (the first one on a tie); ``iou`` is every predictor's IoU with its cell's object
    (0 in empty cells). predictions: the raw outputs (N, S, S, B·5 + C), Tensor or array.
    """
    raw = backend.to_numpy(getattr(predictions, "data", predictions))
    _check_outputs(raw, num_boxes)
    boxes = decode_outputs(raw.astype(np.float64), num_boxes, image_size)[0]     # (N, S, S, B, 4)
    iou = _paired_iou(boxes, targets["boxes"][:, :, :, None, :].astype(np.float64))
    iou = np.where(targets["object"][..., None], iou, 0.0)
    best = np.argmax(iou, axis=-1)                                               # first on a tie
    responsible = (np.arange(num_boxes) == best[..., None]) & targets["object"][..., None]
    return responsible, iou


# ---- the loss --------------------------------------------------------------------------------------

def yolo_loss(predictions, targets, num_boxes=2, image_size=64, lambda_coord=5.0, lambda_noobj=0.5,
              rescore=False, assignment=None):
    """YOLO v1's loss of raw outputs -> ``(total, coord, confidence_object, confidence_noobject,
    classification)``, scalar Tensors, each already weighted (total = their sum), summed over the
    batch and divided by the batch size N (module docstring for the terms).

    predictions: Tensor (N, S, S, B·5 + C), the network's raw outputs; targets: ``yolo_targets``'s
    dict for the same S. assignment: ``responsible_predictors``'s ``(responsible, iou)``, computed
    here when None (passing it fixes the assignment, e.g. for a gradient check: the argmax and
    the IoU target are constants of the loss, not functions of the outputs).
    """
    if not isinstance(predictions, Tensor):
        raise TypeError(f"predictions must be a Tensor (N, S, S, B*5 + C), got {type(predictions).__name__}")
    _check_outputs(predictions, num_boxes)
    n, s = predictions.shape[:2]
    if not isinstance(targets, dict) or targets.get("object") is None or targets["object"].shape != (n, s, s):
        raise ValueError(f"targets: expected yolo_targets(...) for {n} images and grid {s} "
                         f"(targets['object'] of shape {(n, s, s)})")
    for name, value in (("lambda_coord", lambda_coord), ("lambda_noobj", lambda_noobj)):
        if not isinstance(value, numbers.Real) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    responsible, iou = assignment if assignment is not None else \
        responsible_predictors(predictions, targets, num_boxes, image_size)
    device, dtype = predictions.device, predictions.dtype

    def const(array):
        return Tensor(np.asarray(array).astype(dtype), device=device)

    box_part, class_scores = _split(predictions, num_boxes)
    box_part = F.sigmoid(box_part)                                     # (N, S, S, B, 5) all in (0, 1)
    xywh, confidence = box_part[..., :4], box_part[..., 4]
    resp = const(responsible)
    coord = ((xywh - const(targets["coords"][:, :, :, None, :])) ** 2 * resp.unsqueeze(-1)).sum() \
        * (lambda_coord / n)
    confidence_target = const(iou if rescore else np.ones_like(iou))
    confidence_object = ((confidence - confidence_target) ** 2 * resp).sum() / n
    confidence_noobject = (confidence ** 2 * const(~responsible)).sum() * (lambda_noobj / n)
    labels = targets["labels"].reshape(-1)
    classification = F.cross_entropy(class_scores.reshape(n * s * s, -1), labels, ignore_index=-1,
                                     reduction="sum") / n
    total = coord + confidence_object + confidence_noobject + classification
    return total, coord, confidence_object, confidence_noobject, classification


# ---- the detector ----------------------------------------------------------------------------------

class YOLODetector(nn.Module):
    """Conv backbone + head: images (N, 3, H, H) -> raw outputs (N, S, S, B·5 + C) (module docstring).

    Args:
        num_classes: object classes C.
        image_size: input side H (a multiple of ``grid``).
        grid: cells per side S; the backbone's stride ``2 ** len(widths)`` must equal image_size / S.
        boxes_per_cell: predictors B per cell.
        widths: backbone stages (first stride 2, then ×2 each): (16, 32, 64) -> stride 8.
        head_width: channels of the head's 3×3 conv before the 1×1 output conv.
        lambda_coord, lambda_noobj, rescore: the loss's weights and confidence target (``yolo_loss``).
        dropout: drop probability on the head's features during training (the paper uses 0.5).
    """

    def __init__(self, num_classes, image_size=64, grid=8, boxes_per_cell=2, widths=(16, 32, 64), head_width=64,
                 lambda_coord=5.0, lambda_noobj=0.5, rescore=False, dropout=0.0, batch_norm=True, rng=None):
        super().__init__()
        _check_grid(grid, image_size)
        if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if not isinstance(boxes_per_cell, numbers.Integral) or boxes_per_cell < 1:
            raise ValueError(f"boxes_per_cell must be a positive int, got {boxes_per_cell!r}")
        stride = 2 ** len(widths)
        if image_size // grid != stride:
            raise ValueError(f"grid {grid} needs a backbone of stride {image_size // grid} on {image_size}-px "
                             f"images, but widths {tuple(widths)} give stride {stride}")
        rng = np.random.default_rng(rng)
        self.num_classes, self.image_size, self.grid = int(num_classes), int(image_size), int(grid)
        self.boxes_per_cell = int(boxes_per_cell)
        self.lambda_coord, self.lambda_noobj, self.rescore = float(lambda_coord), float(lambda_noobj), bool(rescore)
        self.stages = downsampling_backbone(widths, first_stride=2, batch_norm=batch_norm, rng=rng)
        # Dropout before the output conv, as the paper (after its first fully connected layer);
        # off by default: on the shapes scenes it cost accuracy (module docstring).
        self.head = nn.Sequential(conv_relu(widths[-1], head_width, batch_norm=batch_norm, rng=rng),
                                  nn.Dropout(dropout, rng=rng),             # identity at 0
                                  nn.Conv2d(head_width, 5 * self.boxes_per_cell + self.num_classes, 1, rng=rng))

    def forward(self, images):
        if images.ndim != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(f"YOLODetector: input must be (N, 3, {self.image_size}, {self.image_size}), "
                             f"got shape {tuple(images.shape)}")
        x = images - 0.5                                  # centred pixels
        for stage in self.stages:
            x = stage(x)
        return self.head(x).permute(0, 2, 3, 1)          # (N, S, S, B·5 + C): one vector per cell

    def loss(self, images, targets):
        """``yolo_loss`` of a batch -> ``(total, coord, confidence_object, confidence_noobject,
        classification)``; images (N, 3, H, H) host array or Tensor, targets: list of dicts."""
        images = images if isinstance(images, Tensor) else Tensor(host_float32(images), device=model_device(self))
        if len(targets) != len(images):
            raise ValueError(f"targets: expected {len(images)} dicts (one per image), got {len(targets)}")
        return yolo_loss(self(images), yolo_targets(targets, self.grid, self.image_size), self.boxes_per_cell,
                         self.image_size, self.lambda_coord, self.lambda_noobj, self.rescore)

    def detect(self, images, score_threshold=0.05, nms_threshold=0.5, max_detections=100):
        """Detections per image: a list of dicts ``boxes`` (D, 4) x1y1x2y2 pixels, ``scores`` (D,)
        = confidence × Pr(class | object), ``labels`` (D,) in 0..C-1; per-class NMS."""
        if not isinstance(score_threshold, numbers.Real) or not isinstance(nms_threshold, numbers.Real) \
                or not 0 <= nms_threshold <= 1:
            raise ValueError(f"score_threshold must be a number and nms_threshold in [0, 1], "
                             f"got {score_threshold!r}, {nms_threshold!r}")
        if not isinstance(max_detections, numbers.Integral) or max_detections < 1:
            raise ValueError(f"max_detections must be a positive int, got {max_detections!r}")
        images = host_float32(images)
        self.eval()
        with no_grad():
            outputs = self(Tensor(images, device=model_device(self))).numpy()
        boxes, confidence, probabilities = decode_outputs(outputs, self.boxes_per_cell, self.image_size)
        return [self._postprocess(boxes[i], confidence[i], probabilities[i], score_threshold, nms_threshold,
                                  max_detections) for i in range(len(images))]

    def _postprocess(self, boxes, confidence, probabilities, score_threshold, nms_threshold, max_detections):
        """One image: every (predictor, class) pair is a candidate; threshold, clip, per-class NMS."""
        c = self.num_classes
        scores = (confidence[..., None] * probabilities[:, :, None, :]).reshape(-1)     # (S·S·B·C,)
        boxes = np.repeat(boxes.reshape(-1, 4), c, axis=0)                             # same order
        labels = np.tile(np.arange(c), len(boxes) // c)
        keep = np.flatnonzero(scores > score_threshold)
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        boxes = clip_boxes_to_image(boxes[keep], (self.image_size, self.image_size))
        small = remove_small_boxes(boxes, 1.0)
        keep, boxes = keep[small], boxes[small]
        kept = batched_nms(boxes, scores[keep], labels[keep], nms_threshold)[:max_detections]
        return {"boxes": boxes[kept].astype(np.float32), "scores": scores[keep][kept].astype(np.float32),
                "labels": labels[keep][kept].astype(np.int64)}
