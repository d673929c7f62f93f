"""Author the solution notebooks from the cell lists below (run once after editing a cell list).

Keeping the cells as Python strings makes the notebooks reviewable in a diff; the generated
``*_solution.ipynb`` files are what students and the tests use.

    python assignments/build_notebooks.py                    # every notebook
    python assignments/build_notebooks.py 05_segmentation    # only these

Notebooks 1–4 are written out below; the later ones each live in one module of ``course/``
(cells, parts, frozen cases and mutations together, see course/__init__.py).
"""
from __future__ import annotations

import pathlib
import sys

import nbformat

import course
from course.spec import part
from kernel_part_cells import KERNEL_CELLS

HERE = pathlib.Path(__file__).resolve().parent


def notebook(name, cells, parts):
    """cells: ("md", text) | ("code", text) (given code) | ("answer", part, text) | ("check", part, text).
    parts: the grading spec, [{"name", "title", "points", "forbid", "requires"}] (minidl.grade reads it)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    stem = name.replace("_solution.ipynb", "")
    nb.metadata["minidl"] = {"assignment": stem, "number": int(stem[:2]), "parts": parts}
    names = {p["name"] for p in parts}
    for i, (kind, *rest) in enumerate(cells):
        text = rest[-1].strip("\n")
        cell = nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        if kind in ("answer", "check"):
            if rest[0] not in names:
                raise ValueError(f"{name}: cell {i} belongs to an undeclared part {rest[0]!r}")
            cell.metadata["minidl"] = {"part": rest[0], "role": kind}
        cell.id = f"cell-{i:02d}"      # fixed ids: rebuilding a notebook changes only what was edited
        nb.cells.append(cell)
    for p in parts:                  # the grader scores a part by its cells: each needs both kinds
        roles = {c.metadata["minidl"]["role"] for c in nb.cells if c.metadata.get("minidl", {}).get("part") == p["name"]}
        if roles != {"answer", "check"}:
            raise ValueError(f"{name}: part {p['name']!r} needs an answer cell and a check cell, has {sorted(roles)}")
    return nb


AUTOGRAD_PARTS = [
    part("sigmoid", "Part 1 — the sigmoid gate", 3, forbid=["sigmoid", "Sigmoid", "expit"]),
    part("cross_entropy", "Part 2 — softmax cross-entropy from primitives", 3,
         forbid=["cross_entropy", "log_softmax", "softmax", "nll_loss", "logsumexp"]),
    part("train", "Part 3 — train a two-layer network", 2, forbid=["cross_entropy", "sigmoid", "fit"],
         requires=["sigmoid", "cross_entropy"]),
]

AUTOGRAD = [
    ("md", """
# Assignment 1 — autograd from the inside

You will write a differentiable operation for minidl the way every op in `minidl/functional` is written:
a `Function` with a `forward` and a `backward` side by side, then prove it right with a gradient check
(central differences in float64), and finally train a small network with it.

Run a cell with Shift+Enter. Write your code where a cell says `TODO` (delete the `raise NotImplementedError`
line). Each **check** cell prints one line per check and says OK, or stops with a message that says what is off.
`pytest -m assignment1_sigmoid` runs the checks of one part on your notebook (in `work/`), and
`python -m minidl.grade work/01_autograd.ipynb` grades the whole notebook as the TA will (see the README).
The expected results are fixed data computed once from minidl's own implementation; an answer that simply
calls that implementation (`F.sigmoid`, `F.cross_entropy`) scores 0 for the part.
"""),
    ("code", """
import numpy as np
import minidl
import minidl.functional as F
from minidl import Function, tensor, backend
from minidl.checks import check_at_least, check_gradients
from minidl.grade.frozen import check_cases, frozen_cases

cases = frozen_cases("01_autograd")       # the expected results of this notebook's checks
"""),
    ("md", """
## Part 1 — the sigmoid gate (3 points)

Forward: $\\sigma(x) = 1 / (1 + e^{-x})$. Backward: $\\partial L/\\partial x = \\partial L/\\partial y \\cdot \\sigma(x)(1-\\sigma(x))$.

Write both. Use `xp = backend.get_array_module(x)` instead of `np` so your op also runs on a GPU, and make the
forward *stable*: `exp(-x)` overflows for very negative `x` — compute with `exp(-|x|)` in two branches.
The check runs your forward at ±1000 with overflow turned into an error, so the textbook formula fails it.
Save what backward needs with `ctx.save_for_backward(...)`.
"""),
    ("answer", "sigmoid", """
class MySigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        xp = backend.get_array_module(x)
        ### BEGIN SOLUTION
        e = xp.exp(-xp.abs(x))
        out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(out)
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_out):
        ### BEGIN SOLUTION
        (out,) = ctx.saved_tensors
        return grad_out * out * (1 - out)
        ### END SOLUTION
"""),
    ("check", "sigmoid", """
# check: values on random inputs, then at ±1000 (overflow is an error here), then the gradient check
check_cases("MySigmoid forward", lambda x: MySigmoid.apply(tensor(x)), cases["sigmoid"], tol=1e-12)
check_cases("MySigmoid at ±1000, stable", lambda x: MySigmoid.apply(tensor(x)), cases["sigmoid extreme"],
            tol=1e-12, strict=True)
check_gradients("MySigmoid backward", MySigmoid.apply, [np.random.default_rng(0).standard_normal((3, 4))])
"""),
    ("md", """
## Part 2 — a softmax classifier's loss, from primitives (3 points)

Write the mean softmax cross-entropy of scores `s` (N, C) for labels `y` (N,) using only minidl tensor
operations (`.max`, `.exp`, `.sum`, `.log`, indexing `s[rows, y]`, arithmetic). Subtract the row maximum
first (a constant shift does not change softmax but keeps `exp` finite: the check feeds scores of ±1000).
The autograd engine gives you the gradient for free — the gradient check compares it with central differences.
"""),
    ("answer", "cross_entropy", """
def my_cross_entropy(s, y):
    ### BEGIN SOLUTION
    shifted = s - s.max(axis=1, keepdims=True).detach()
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[np.arange(s.shape[0]), y].mean()
    ### END SOLUTION
"""),
    ("check", "cross_entropy", """
check_cases("my_cross_entropy value", lambda s, y: my_cross_entropy(tensor(s), y), cases["cross entropy"],
            tol=1e-10)
check_cases("my_cross_entropy at scores of ±1000, stable", lambda s, y: my_cross_entropy(tensor(s), y),
            cases["cross entropy extreme"], tol=1e-10, strict=True)
labels = np.array([0, 2, 1, 1, 3])
check_gradients("my_cross_entropy gradient", lambda s: my_cross_entropy(s, labels),
                [np.random.default_rng(1).standard_normal((5, 4))])
"""),
    ("md", """
## Part 3 — train a two-layer network with your pieces (2 points)

Use `MySigmoid` as the hidden nonlinearity and `my_cross_entropy` as the loss on the spiral data (given below):
the forward pass, the loss, zeroing the gradients, the backward pass and the optimizer step. The check expects a
training accuracy above 90 %.
"""),
    ("code", """
from minidl import nn, optim
from minidl.tour.mlp import spirals

X, y = spirals(n_per_class=100, rng=0)          # X (300, 2), y (300,) in {0, 1, 2}
rng = np.random.default_rng(0)
fc1, fc2 = nn.Linear(2, 64, rng=rng), nn.Linear(64, 3, rng=rng)
opt = optim.Adam(list(fc1.parameters()) + list(fc2.parameters()), lr=0.05)
"""),
    ("answer", "train", """
for step in range(400):
    ### BEGIN SOLUTION
    scores = fc2(MySigmoid.apply(fc1(tensor(X))))
    loss = my_cross_entropy(scores, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    ### END SOLUTION
"""),
    ("check", "train", """
with minidl.no_grad():
    accuracy = float((fc2(MySigmoid.apply(fc1(tensor(X)))).numpy().argmax(1) == y).mean())
check_at_least("training accuracy", accuracy, 0.9, hint="train all 400 steps, and check your loss and backward")
"""),
]

CONVOLUTION_PARTS = [
    part("im2col", "Part 1 — im2col with loops", 3,
         forbid=["im2col", "im2col_reference", "conv2d", "conv2d_naive", "conv_gemm", "Conv2d"]),
    part("conv2d", "Part 2 — convolution as one matrix product", 3, requires=["im2col"],
         forbid=["conv2d", "conv2d_naive", "conv_gemm", "Conv2d", "im2col", "im2col_reference",
                 "conv_transpose2d", "correlate", "convolve", "correlate2d", "convolve2d", "fftconvolve"]),
    part("matrix", "Part 3 — the matrix X, and transpose convolution as Xᵀ", 2,
         forbid=["conv_transpose2d", "ConvTranspose2d", "col2im"]),
]

CONVOLUTION = [
    ("md", """
# Assignment 2 — convolution is a matrix multiplication

Lecture 8: a convolution multiplies the input by a big sparse matrix, `conv(a) = X a`, and a *transpose*
convolution multiplies by its transpose, `Xᵀ a`. minidl computes conv as **im2col + one GEMM**: im2col
copies every receptive field into a column, then `W @ cols` does all dot products at once.

Column layout used by minidl (`minidl/kernels/im2col.py`): for x of shape (N, C, H, W),
`cols` has shape `(C*kh*kw, N*out_h*out_w)` with
`cols[(c, i, j), (n, oy, ox)] = x_padded[n, c, oy*stride + i, ox*stride + j]`.

Write your code where a cell says `TODO`. `pytest -m assignment2_im2col` (or `_conv2d`, `_matrix`) checks one
part of your notebook in `work/`; `python -m minidl.grade work/02_convolution.ipynb` grades all of it. The
expected results are fixed data; an answer that calls minidl's own `im2col` or `F.conv2d` scores 0 for the part.
"""),
    ("code", """
import numpy as np
import minidl
import minidl.functional as F
from minidl import tensor
from minidl.checks import check_close
from minidl.grade.frozen import check_cases, frozen_cases

cases = frozen_cases("02_convolution")       # the expected results of this notebook's checks
"""),
    ("md", """
## Part 1 — im2col with loops (3 points)

Write `my_im2col(x, k, stride, pad)` for a square k×k kernel. The straightforward version loops over every
output position; the fast version loops only over the k×k *taps* `(i, j)` and copies a strided slice of the
padded image for each (that is what minidl does). Either passes the check; try the fast one.
`out_h = (H + 2*pad - k) // stride + 1`.
"""),
    ("answer", "im2col", """
def my_im2col(x, k, stride, pad):
    N, C, H, W = x.shape
    out_h, out_w = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    ### BEGIN SOLUTION
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((C, k, k, N, out_h, out_w), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            window = xp[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride]
            cols[:, i, j] = window.transpose(1, 0, 2, 3)
    return cols.reshape(C * k * k, N * out_h * out_w)
    ### END SOLUTION
"""),
    ("check", "im2col", """
layout = "rows are (c, i, j), columns (n, oy, ox): cols[(c,i,j), (n,oy,ox)] = x_padded[n, c, oy*stride+i, ox*stride+j]"
for k, stride, pad in [(3, 1, 1), (3, 2, 0), (1, 1, 0), (5, 2, 2)]:
    check_cases(f"my_im2col k={k} stride={stride} pad={pad}", my_im2col, cases[f"im2col k={k} stride={stride} pad={pad}"],
                tol=0, hint=layout)
"""),
    ("md", """
## Part 2 — convolution as one matrix product (3 points)

With the columns, a convolution with weights `w` (F, C, k, k) and bias `b` (F,) is
`out = w.reshape(F, -1) @ cols + b[:, None]`, reshaped from `(F, N*out_h*out_w)` to `(N, F, out_h, out_w)`.
Use your `my_im2col`.
"""),
    ("answer", "conv2d", """
def my_conv2d(x, w, b, stride, pad):
    N, C, H, W = x.shape
    Fo, _, k, _ = w.shape
    out_h, out_w = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    ### BEGIN SOLUTION
    out = w.reshape(Fo, -1) @ my_im2col(x, k, stride, pad) + b[:, None]
    return out.reshape(Fo, N, out_h, out_w).transpose(1, 0, 2, 3)
    ### END SOLUTION
"""),
    ("check", "conv2d", """
check_cases("my_conv2d stride=2 pad=1", my_conv2d, cases["conv2d"], tol=1e-10,
            hint="the GEMM gives (F, N*out_h*out_w): reshape to (F, N, out_h, out_w), then move N to the front")
"""),
    ("md", """
## Part 3 — the matrix X, and transpose convolution as Xᵀ (2 points)

Build the explicit matrix `X` of a conv with fixed weights by applying `conv` (given below) to every basis image
`e_k` (a 1 in one pixel): column k of X is `conv(e_k)` flattened. Then the check tests the lecture's identity:
`conv_transpose2d(y)` with the *same* weights equals `Xᵀ y`.
"""),
    ("code", """
rng = np.random.default_rng(0)
C, Fo, H, W, k, stride, pad = 2, 3, 5, 5, 3, 2, 1
weight = rng.standard_normal((Fo, C, k, k))

def conv(a):  # a: (C, H, W) -> (Fo, out_h, out_w)
    return F.conv2d(tensor(a[None]), tensor(weight), stride=stride, padding=pad).numpy()[0]
"""),
    ("answer", "matrix", """
# X: (Fo*out_h*out_w, C*H*W), column idx = conv(e_idx).ravel()
### BEGIN SOLUTION
columns = []
for idx in range(C * H * W):
    e = np.zeros(C * H * W)
    e[idx] = 1.0
    columns.append(conv(e.reshape(C, H, W)).ravel())
X = np.stack(columns, axis=1)
### END SOLUTION
print("X has shape", X.shape)
"""),
    ("check", "matrix", """
a = rng.standard_normal((C, H, W))
check_close("conv(a) == X a", conv(a).ravel(), X @ a.ravel(), tol=1e-12)
y = rng.standard_normal(conv(a).shape)
transpose = F.conv_transpose2d(tensor(y[None]), tensor(weight), stride=stride, padding=pad).numpy()[0]
check_close("conv_transpose(y) == X^T y", transpose.ravel(), X.T @ y.ravel(), tol=1e-12)
"""),
]

# The C++ part is checked token by token: the student's header must not include or call the real body.
# (Its header includes roi_pool/roi_pool.h for RoiPoolGeometry, the given RoI geometry.)
KERNEL_FORBID = ["minidl::roi_pool_cell", "minidl::roi_pool_window", "roi_pool_window", "PoolWindow"]

DETECTION_PARTS = [
    part("iou", "Part 1 — IoU of two sets of boxes", 2, forbid=["box_iou", "box_area", "generalized_box_iou"]),
    part("nms", "Part 2 — greedy non-maximum suppression", 3, requires=["iou"],
         forbid=["nms", "batched_nms", "box_iou", "nms_reference"]),
    part("roi_pool", "Part 3 — RoI max pooling for one region", 3,
         forbid=["roi_pool", "RoIPool", "roi_pool_reference", "roi_pool_forward", "roi_align"]),
    part("roi_pool_kernel", "Part 4 — RoI pooling in C++, one body for CPU and GPU", 4,
         forbid=KERNEL_FORBID),
]

DETECTION = [
    ("md", """
# Assignment 3 — detection building blocks: IoU, non-maximum suppression, RoI pooling

Every detector of lecture 8 scores many overlapping boxes and keeps the best ones with **NMS**; Fast R-CNN
crops a fixed-size feature map per region with **RoI pooling**. Boxes are `(x1, y1, x2, y2)` in pixels.
Part 4 writes RoI pooling once more, as the C++ body that minidl's CPU loop and CUDA kernel both call.

Write your code where a cell says `TODO`. `pytest -m assignment3_nms` (`_iou`, `_roi_pool`, `_roi_pool_kernel`)
checks one part of your notebook in `work/`; `python -m minidl.grade work/03_detection.ipynb` grades all of it.
The expected results are fixed data; an answer that calls minidl's own `ops.box_iou`, `ops.nms` or
`ops.roi_pool` scores 0 for the part.
"""),
    ("code", """
import numpy as np
import minidl
from minidl.grade.frozen import check_cases, frozen_cases

cases = frozen_cases("03_detection")       # the expected results of this notebook's checks
"""),
    ("md", """
## Part 1 — IoU of two sets of boxes (2 points)

`my_box_iou(a, b)` returns the (M, N) matrix of intersection over union of boxes `a` (M, 4) and `b` (N, 4).
Use broadcasting: the intersection's top-left corner is the elementwise max of the two top-left corners, its
bottom-right the min. Clamp widths and heights at 0 (boxes that do not overlap).
"""),
    ("answer", "iou", """
def my_box_iou(a, b):
    ### BEGIN SOLUTION
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)
    ### END SOLUTION
"""),
    ("check", "iou", """
check_cases("my_box_iou", my_box_iou, cases["box_iou"], tol=1e-12,
            hint="the result is (M, N): rows are the boxes of a; non-overlapping boxes have IoU 0, not negative")
"""),
    ("md", """
## Part 2 — greedy NMS (3 points)

Sort the boxes by decreasing score (ties: lower index first — use a stable sort of `-scores`). Repeatedly keep
the best remaining box and drop every remaining box whose IoU with it is **strictly greater** than the
threshold (torchvision's rule). Return the kept indices in the order they were kept. Use your `my_box_iou`.
"""),
    ("answer", "nms", """
def my_nms(boxes, scores, iou_threshold):
    ### BEGIN SOLUTION
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best = order[0]
        keep.append(best)
        ious = my_box_iou(boxes[best:best + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.array(keep, dtype=np.int64)
    ### END SOLUTION
"""),
    ("check", "nms", """
for threshold in (0.3, 0.5, 0.7):
    check_cases(f"my_nms iou_threshold={threshold}", my_nms, cases[f"nms {threshold}"], tol=0,
                hint="keep boxes in decreasing score order; drop a box only when its IoU is > the threshold")
"""),
    ("md", """
## Part 3 — RoI max pooling for one region (3 points)

Fast R-CNN's RoI pooling with torchvision's arithmetic: scale the box by `spatial_scale` and **round** each
coordinate; the region is `roi_w = max(x2 - x1 + 1, 1)` wide (the legacy inclusive "+1"); bin `(ph, pw)` covers
rows `floor(ph * roi_h / PH) + y1` up to `ceil((ph + 1) * roi_h / PH) + y1` (exclusive), clipped to the feature
map; an empty bin outputs 0. Write it for one image `feature` (C, H, W) and one box.
"""),
    ("answer", "roi_pool", """
def my_roi_pool_one(feature, box, output_size, spatial_scale):
    C, H, W = feature.shape
    PH, PW = output_size
    out = np.zeros((C, PH, PW), dtype=feature.dtype)
    ### BEGIN SOLUTION
    x1, y1, x2, y2 = (int(np.round(v * spatial_scale)) for v in box)
    roi_h, roi_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
    for ph in range(PH):
        for pw in range(PW):
            hs = min(max(int(np.floor(ph * roi_h / PH)) + y1, 0), H)
            he = min(max(int(np.ceil((ph + 1) * roi_h / PH)) + y1, 0), H)
            ws = min(max(int(np.floor(pw * roi_w / PW)) + x1, 0), W)
            we = min(max(int(np.ceil((pw + 1) * roi_w / PW)) + x1, 0), W)
            if he > hs and we > ws:
                out[:, ph, pw] = feature[:, hs:he, ws:we].max(axis=(1, 2))
    ### END SOLUTION
    return out
"""),
    ("check", "roi_pool", """
check_cases("my_roi_pool_one (3, 3) bins, spatial_scale 0.5", lambda f, b: my_roi_pool_one(f, b, (3, 3), 0.5),
            cases["roi_pool"], tol=0,
            hint="an off-by-one? the region is x2 - x1 + 1 wide (inclusive), a bin ends at ceil(...) + y1 exclusive, "
                 "and the box corners are rounded after scaling")
"""),
] + KERNEL_CELLS

VISUALIZATION = [
    ("md", """
# Assignment 4 — visualizing and understanding CNNs

Lecture 12 asks what a trained CNN has learned. Most of its answers use one tool, the **gradient with respect
to the image** instead of the weights: backpropagate a class score to the pixels (saliency maps, guided
backprop), climb it (fooling images), or descend a loss defined on the features until an image has the
features you want (texture synthesis with Gram matrices, feature inversion with a total-variation prior).

You write each technique in a few lines. The checks compare your function with results computed once by
minidl's own implementation in `minidl.vis` (fixed data, so an answer that calls `minidl.vis` scores 0 for
the part) and test a property that defines the technique (a numerical gradient, a float64 gradient check,
"the model now predicts the target", "the loss fell 20×").

Models (no downloads): `minidl.models.load_shapes_classifier()` is a 3-conv + batch-norm classifier trained by
minidl on 32×32 images of `minidl.data.ShapesDataset` (5 classes: circle, square, triangle, ellipse, star;
weights committed in `minidl/weights/shapes_classifier.npz`). Textures use a small `VGGFeatures` network with
**random** weights (random filters are enough for Gram statistics, see `docs/vis.md`).
Write your code where a cell says `TODO`. `pytest -m assignment4_saliency` (`_guided`, `_fooling`, `_texture`,
`_inversion`) checks one part of your notebook in `work/`; `python -m minidl.grade work/04_visualization.ipynb`
grades all of it.
"""),
    ("code", """
import numpy as np
import matplotlib.pyplot as plt
import minidl
import minidl.functional as F
from minidl import Tensor, nn, optim, vis
from minidl.functional.activation import ReLU
from minidl.data import SHAPE_CLASSES, ShapesDataset, load_skimage
from minidl.models import VGGFeatures, load_shapes_classifier
from minidl.checks import (check_close, check_decreases, check_fooling_image, check_gradients,
                           check_guided_relu_rule, check_saliency)
from minidl.grade.frozen import check_cases, frozen_cases

cases = frozen_cases("04_visualization")    # the expected results of this notebook's checks

model = load_shapes_classifier()            # eval mode: batch norm uses its running statistics
for p in model.parameters():                # we differentiate with respect to images, never the weights
    p.requires_grad = False
data = ShapesDataset(8, size=32, mode="single", seed=0, target_keys="labels")
images = np.stack([data[i][0] for i in range(8)])          # (8, 3, 32, 32) float32, pixels in [0, 1]
labels = np.concatenate([data[i][1] for i in range(8)])    # (8,) class indices
with minidl.no_grad():
    predicted = model(Tensor(images)).numpy().argmax(axis=1)
print("labels   ", [SHAPE_CLASSES[c] for c in labels])
print("predicted", [SHAPE_CLASSES[c] for c in predicted])

# a tiny float64 conv net for the numerical checks (float32 has too few digits for finite differences)
rng = np.random.default_rng(0)
tiny = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2),
                     nn.Flatten(), nn.Linear(4 * 3 * 3, 5, rng=rng, dtype=np.float64)).eval()
for p in tiny.parameters():
    p.requires_grad = False

def show(rows, titles=None, cmap="gray", size=1.6):
    # rows: a list of rows, each a list of (C, H, W) images in [0, 1] or (H, W) maps
    fig, axes = plt.subplots(len(rows), len(rows[0]), figsize=(size * len(rows[0]), size * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            img = np.asarray(img)
            axes[r, c].imshow(np.clip(img.transpose(1, 2, 0), 0, 1) if img.ndim == 3 else img, cmap=cmap)
            axes[r, c].set_axis_off()
            if titles is not None:
                axes[r, c].set_title(titles[r][c], fontsize=8)
    plt.show()
"""),
    ("md", """
## Part 1 — saliency maps (Simonyan et al., 2014) (3 points)

Which pixels matter for the score `s_c` of class `c` (before the softmax)? Linearize the network around the
image: `s_c(I + δ) ≈ s_c(I) + ∂s_c/∂I · δ`. The pixels with a large `|∂s_c/∂I|` are the ones that, changed a
little, change the score most. The saliency map is that magnitude, maxed over the colour channels:

    images (N, 3, H, W) --model--> scores (N, K)      pick s_{c_n} per image --> (N,)
    gradient ∂s_{c_n}/∂I_n : (N, 3, H, W)            M[n, i, j] = max_k |∂s_{c_n}/∂I_n[k, i, j]| : (N, H, W)

One backward pass serves the whole batch: images of a batch do not interact, so the gradient of
`Σ_n s_{c_n}(I_n)` with respect to image `n` is the gradient of its own score.

Write `my_input_gradient` (make `x = Tensor(images, requires_grad=True)`, run the model, pick each image's target
score with `scores[np.arange(N), targets]`, sum, backward, return `x.grad.numpy()`) and `my_saliency_map` on top of
it. `my_input_gradient` is reused in part 2.
"""),
    ("answer", "saliency", """
def my_input_gradient(model, images, targets):
    # images: (N, C, H, W) array; targets: (N,) ints  ->  ∂s_target/∂images, an (N, C, H, W) array
    ### BEGIN SOLUTION
    x = Tensor(images, requires_grad=True)
    scores = model(x)                                         # (N, K)
    scores[np.arange(images.shape[0]), targets].sum().backward()
    return x.grad.numpy()
    ### END SOLUTION


def my_saliency_map(model, images, targets):
    # -> (N, H, W): max over channels of |∂s_target/∂pixel|
    ### BEGIN SOLUTION
    return np.abs(my_input_gradient(model, images, targets)).max(axis=1)
    ### END SOLUTION
"""),
    ("check", "saliency", """
# check: the trained classifier on some of the images with random target classes (expected maps computed once
# by minidl.vis.saliency_map); then the defining property on the tiny float64 net: max over channels of
# |numerical gradient|
check_cases("my_saliency_map", lambda x, t: my_saliency_map(model, x, t), cases["saliency"], tol=1e-5,
            hint="the map is (N, H, W): the absolute gradient, maxed over the colour channels")
check_saliency("saliency vs numerical gradient (tiny float64 net)", my_saliency_map, tiny,
               np.random.default_rng(1).standard_normal((2, 3, 6, 6)), np.array([1, 3]))
saliency = my_saliency_map(model, images[:4], labels[:4])
show([list(images[:4]), list(saliency)], [[SHAPE_CLASSES[c] for c in labels[:4]], ["saliency"] * 4])
"""),
    ("md", """
## Part 2 — guided backpropagation (Springenberg et al., 2015) (3 points)

Saliency maps are noisy: positive and negative contributions cancel along the way. Guided backprop changes
**one rule of the backward pass**. A ReLU `out = max(x, 0)` normally passes the incoming gradient `g` where its
input was positive; the guided rule also drops negative gradients, so only paths of positive evidence reach
the image:

    normal ReLU backward:   g * (out > 0)
    guided ReLU backward:   g * (out > 0) * (g > 0)          g, out: the ReLU's output shape, e.g. (N, 16, 32, 32)

minidl swaps a Function's backward rule in the engine with `minidl.override_backward(ReLU, rule)` (a `with`
block): every ReLU call inside it uses `rule(ctx, g)` instead of `ReLU.backward`, whether the model uses
`nn.ReLU` modules or `F.relu` calls. ReLU's forward saved its output: `(out,) = ctx.saved_tensors`.
When the block ends, the normal rule is back.

Write the rule, then `my_guided_backprop` = your `my_input_gradient` inside the override. The result is a
signed image `(N, 3, H, W)`; `vis.guided_backprop_image` maps it to [0, 1] for display.

(Adebayo et al., 2018, warn that the crisp look is mostly the rule's doing: guided-backprop maps barely change
when the weights are randomized. `vis.model_randomization_check` runs that sanity check.)
"""),
    ("answer", "guided", """
def my_guided_relu_backward(ctx, g):
    # g: the gradient arriving at the ReLU's output; return the gradient for its input (same shape)
    ### BEGIN SOLUTION
    (out,) = ctx.saved_tensors
    return g * (out > 0) * (g > 0)
    ### END SOLUTION


def my_guided_backprop(model, images, targets):
    # -> (N, C, H, W): ∂s_target/∂images with every ReLU's backward replaced by the guided rule
    ### BEGIN SOLUTION
    with minidl.override_backward(ReLU, my_guided_relu_backward):
        return my_input_gradient(model, images, targets)
    ### END SOLUTION
"""),
    ("check", "guided", """
check_guided_relu_rule("guided ReLU rule", my_guided_relu_backward)
check_cases("my_guided_backprop", lambda x, t: my_guided_backprop(model, x, t), cases["guided backprop"], tol=1e-5,
            hint="run my_input_gradient inside `with minidl.override_backward(ReLU, my_guided_relu_backward):`")
# the override must end with the with-block: plain gradients are plain again
check_saliency("saliency after guided backprop (override removed)", my_saliency_map, tiny,
               np.random.default_rng(2).standard_normal((1, 3, 6, 6)), np.array([2]))
guided = my_guided_backprop(model, images[:4], labels[:4])
show([list(images[:4]), list(saliency), list(vis.guided_backprop_image(guided))],
     [[SHAPE_CLASSES[c] for c in labels[:4]], ["saliency"] * 4, ["guided backprop"] * 4])
"""),
    ("md", """
## Part 3 — fooling images (Szegedy et al., 2014) (3 points)

Gradient *ascent* on the image: starting from an image the network classifies correctly, push it towards
another class `t` until the network predicts `t`. Each step moves the image a fixed distance `lr` (in pixel
units, L2) along the normalized gradient, then clips the pixels to [0, 1]:

    g = ∂ log softmax(s(I))_t / ∂I        (1, 3, H, W)
    I ← clip(I + lr · g / ‖g‖₂, 0, 1)

Ascend the target's **log-probability** (`F.log_softmax(scores, axis=1)[0, t]`), not the raw score `s_t`: this
network is nearly positively homogeneous (ReLU + batch norm), so the direction that raises `s_t` also raises every
other score (more contrast, same winner). The log-probability only rises when `s_t` gains on the others.

Before each step, stop if the model already predicts `t`; take at most `max_steps` steps. The perturbation that
suffices is a few percent of the image — the decision boundary passes close to every natural image.
"""),
    ("answer", "fooling", """
def my_fooling_image(model, image, target, lr=0.1, max_steps=100):
    # image: (C, H, W) in [0, 1]  ->  (C, H, W) image that the model classifies as `target`
    x = image[None].copy()                          # (1, C, H, W): update this array step by step
    ### BEGIN SOLUTION
    for step in range(max_steps + 1):
        xt = Tensor(x, requires_grad=True)
        scores = model(xt)                                    # (1, K)
        if int(scores.numpy().argmax(axis=1)[0]) == target or step == max_steps:
            break
        F.log_softmax(scores, axis=1)[0, target].backward()
        g = xt.grad.numpy()
        x = np.clip(x + lr * g / (np.sqrt((g * g).sum()) + 1e-12), 0, 1)
    ### END SOLUTION
    return x[0]
"""),
    ("check", "fooling", """
fooled = []
for i in range(3):
    with minidl.no_grad():
        target = int(model(Tensor(images[i:i + 1])).numpy()[0].argmin())   # the class the model finds least likely
    fooled.append(my_fooling_image(model, images[i], target))
    name = f"image {i}: {SHAPE_CLASSES[labels[i]]} -> {SHAPE_CLASSES[target]}"
    check_fooling_image(name, model, images[i], fooled[-1], target, max_relative_l2=0.1)
check_cases("my_fooling_image, the same steps as the description", lambda im, t: my_fooling_image(model, im, t),
            cases["fooling image"], tol=1e-4,
            hint="ascend log_softmax(scores)[0, t], normalize the step by the gradient's L2 norm, clip to [0, 1], "
                 "and stop as soon as the model predicts the target")
show([list(images[:3]), fooled, [0.5 + 10 * (f - im) for f, im in zip(fooled, images)]],
     [["original"] * 3, ["fooling image"] * 3, ["difference x10"] * 3])
"""),
    ("md", """
## Part 4 — Gram matrices and texture synthesis (Gatys et al., 2015) (3 points)

The *style* of an image at one layer: which feature channels fire **together**, averaged over all positions, so
*where* things are is thrown away and only *what kind of stuff* remains. For the features `φ` of one image,
reshape them to `F` of shape `(C, H·W)` and take all channel inner products:

    features (N, C, H, W) --reshape--> F (N, C, H·W)        G = F Fᵀ / (C·H·W)  : (N, C, C)

(minidl normalizes by `C·H·W`, so layers of different sizes give comparable numbers.) Use `reshape`,
`permute(0, 2, 1)` and `@` on the Tensor. The style loss compares Gram matrices at several layers `l`:

    style_loss = Σ_l w_l ‖G(features[l]) − target_grams[l]‖²_F        (summed over the batch too; a scalar)

`target_grams[l]` is an array `(1, C, C)` (the texture's Gram matrix, broadcast over the batch). Descending it
from noise synthesizes a new sample of the texture: the same statistics, none of the same pixels.
"""),
    ("answer", "texture", """
def my_gram_matrix(features):
    # (N, C, H, W) Tensor -> (N, C, C) Tensor, normalized by C*H*W
    ### BEGIN SOLUTION
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.permute(0, 2, 1) / (c * h * w)
    ### END SOLUTION


def my_style_loss(features, target_grams, weights):
    # features {layer: (N, C, H, W) Tensor}; target_grams {layer: (1, C, C) array}; weights {layer: float}
    # -> scalar Tensor: sum over the layers in `weights` of w * ||G(features[layer]) - target_grams[layer]||_F^2
    ### BEGIN SOLUTION
    total = 0.0
    for layer, w in weights.items():
        diff = my_gram_matrix(features[layer]) - target_grams[layer]
        total = total + w * (diff * diff).sum()
    return total
    ### END SOLUTION
"""),
    ("check", "texture", """
check_cases("my_gram_matrix", lambda f: my_gram_matrix(Tensor(f)), cases["gram matrix"], tol=1e-10,
            hint="G = F F^T / (C*H*W) with F the features reshaped to (N, C, H*W)")
check_gradients("gram matrix gradient", my_gram_matrix, [np.random.default_rng(0).standard_normal((2, 3, 4, 5))])
# the defining property: the Gram matrix does not care where things are
f = np.random.default_rng(1).standard_normal((1, 4, 6, 6))
shuffled = f.reshape(1, 4, 36)[:, :, np.random.default_rng(2).permutation(36)].reshape(1, 4, 6, 6)
check_close("gram matrix of spatially shuffled features", my_gram_matrix(Tensor(shuffled)), my_gram_matrix(Tensor(f)),
            tol=1e-12)

weights = {"a": 2.0, "b": 0.5}   # two layers of different sizes, features (2, 3, 4, 4) and (2, 5, 2, 3)
check_cases("my_style_loss",
            lambda fa, fb, ga, gb: my_style_loss({"a": Tensor(fa), "b": Tensor(fb)}, {"a": ga, "b": gb}, weights),
            cases["style loss"], tol=1e-10, hint="sum over the layers of weight * squared Frobenius norm, summed over the batch")
fa, fb, ga, gb = cases["style loss"][0].args
check_gradients("style loss gradient", lambda fa, fb: my_style_loss({"a": fa, "b": fb}, {"a": ga, "b": gb}, weights),
                [fa, fb])
"""),
    ("md", """
Now synthesize a texture with your loss. `optimize_image` (given) runs Adam on the **pixels** — the image is
the only parameter, the network stays fixed — and keeps them in [0, 1]. The texture is a 32×32 tinted crop of
scikit-image's brick wall; the features come from a random-weight `VGGFeatures` with three blocks
(`relu1_1` (16, 32, 32), `relu2_1` (32, 16, 16), `relu3_1` (64, 8, 8)). The check expects the style loss to fall
at least 20-fold in 80 steps.
"""),
    ("code", """
def optimize_image(loss_fn, start, num_steps, lr):
    # Adam on the pixels of start (1, C, H, W), clipped to [0, 1] after every step -> (image, losses)
    x = nn.Parameter(start.copy())
    opt = optim.Adam([x], lr=lr)
    losses = []
    for _ in range(num_steps):
        loss = loss_fn(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        x.data = np.clip(x.data, 0, 1)
        losses.append(float(loss.item()))
    return x.data, losses

vgg = VGGFeatures(widths=(16, 32, 64), blocks=(1, 1, 1), rng=0)
for p in vgg.parameters():
    p.requires_grad = False
style_layers = ["relu1_1", "relu2_1", "relu3_1"]

def vgg_features(x):
    with nn.capture_activations(vgg, style_layers) as acts:
        vgg(x)
    return acts

brick = load_skimage("brick")[:, :128, :128].reshape(1, 32, 4, 32, 4).mean(axis=(2, 4))   # (1, 32, 32)
texture = (brick * np.array([1.0, 0.8, 0.6], np.float32)[:, None, None])[None]            # (1, 3, 32, 32)
"""),
    ("check", "texture", """
with minidl.no_grad():
    texture_grams = {layer: my_gram_matrix(f).numpy() for layer, f in vgg_features(Tensor(texture)).items()}
style_weights = {layer: 1e5 for layer in style_layers}
noise = texture.mean(axis=(2, 3), keepdims=True) + 0.1 * np.random.default_rng(0).standard_normal(texture.shape)
synthesized, losses = optimize_image(lambda x: my_style_loss(vgg_features(x), texture_grams, style_weights),
                                     noise.astype(np.float32), num_steps=80, lr=0.05)
check_decreases("texture synthesis with your style loss", losses, 20)
show([[texture[0], noise[0], synthesized[0]]], [["texture", "start (noise)", "synthesized"]], size=2.2)
"""),
    ("md", """
## Part 5 — total variation and feature inversion (Mahendran & Vedaldi, 2015) (3 points)

Which image has these features? Feature inversion starts from noise and descends the feature mismatch at one
layer `L`. Many images match, most of them full of high-frequency noise, so a **prior** picks a natural-looking
one: the total variation, the sum of squared differences between neighbouring pixels:

    TV(I) = Σ (I[:, :, i+1, j] − I[:, :, i, j])² + Σ (I[:, :, i, j+1] − I[:, :, i, j])²
    images (N, C, H, W) -> a scalar

Compute both terms with slices (`x[:, :, 1:, :] - x[:, :, :-1, :]` is the vertical one, shape (N, C, H−1, W)).
Then the inversion loss, relative to the size of the target features `φ₀ = φ_L(I₀)`:

    loss(x) = ‖φ_L(x) − φ₀‖² / ‖φ₀‖²  +  tv_weight · TV(x)

with `φ_L(x) = nn.forward_until(model, x, layer)` (runs the classifier up to layer `layer`, e.g. `"features.6"`,
the ReLU of conv2, (1, 32, 16, 16)). Low layers keep almost everything; deeper layers keep the layout and what the
classifier cares about.
"""),
    ("answer", "inversion", """
def my_total_variation(images):
    # (N, C, H, W) Tensor -> scalar Tensor
    ### BEGIN SOLUTION
    dy = images[:, :, 1:, :] - images[:, :, :-1, :]
    dx = images[:, :, :, 1:] - images[:, :, :, :-1]
    return (dy * dy).sum() + (dx * dx).sum()
    ### END SOLUTION


def inversion_loss(x, target, layer, tv_weight):
    # x: (1, C, H, W) Tensor; target: the original image's features at `layer` (an array) -> scalar Tensor
    ### BEGIN SOLUTION
    diff = nn.forward_until(model, x, layer) - target
    return (diff * diff).sum() / float((target * target).sum()) + tv_weight * my_total_variation(x)
    ### END SOLUTION
"""),
    ("check", "inversion", """
check_cases("my_total_variation", lambda x: my_total_variation(Tensor(x)), cases["total variation"], tol=1e-10,
            hint="both terms are sums of squared differences of neighbours: rows (axis 2) and columns (axis 3)")
check_gradients("total variation gradient", my_total_variation,
                [np.random.default_rng(0).standard_normal((2, 3, 5, 4))])
# defining property: a ramp I[..., i, j] = a*j has TV = N*C*H*(W-1)*a^2 (only horizontal steps, each of size a)
ramp = np.broadcast_to(0.1 * np.arange(7.0), (2, 3, 5, 7))
check_close("total variation of a ramp", my_total_variation(Tensor(ramp)), np.array(2 * 3 * 5 * 6 * 0.1 ** 2),
            tol=1e-12)

for layer in ("features.6", "features.10"):
    check_cases(f"inversion_loss at {layer}, tv_weight 5e-3", lambda x, t: inversion_loss(Tensor(x), t, layer, 5e-3),
                cases[f"inversion loss {layer}"], tol=1e-5,
                hint="the feature term is divided by ||target||^2; the TV term is multiplied by tv_weight")
"""),
    ("md", """
Invert image 0 from conv2 and conv3 (with the TV prior) and from conv3 without it. The checks: the relative feature
error falls at least 10-fold, and the prior makes the reconstruction at least twice as smooth (lower TV).
"""),
    ("check", "inversion", """
def features_of(image, layer):      # the classifier's features of one (C, H, W) image at `layer`
    with minidl.no_grad():
        return nn.forward_until(model, Tensor(image[None]), layer).numpy()

original = images[0]
start = (original.mean(axis=(1, 2), keepdims=True)
         + 0.1 * np.random.default_rng(0).standard_normal(original.shape))[None].astype(np.float32)
inverted = {}
for layer, tv_weight in (("features.6", 5e-3), ("features.10", 5e-3), ("features.10", 0.0)):
    target = features_of(original, layer)
    result, _ = optimize_image(lambda x: inversion_loss(x, target, layer, tv_weight), start, num_steps=150, lr=0.05)
    inverted[layer, tv_weight] = result
    with minidl.no_grad():
        errors = [float(inversion_loss(Tensor(x), target, layer, 0.0).item()) for x in (start, result)]
    check_decreases(f"feature error, inverting {layer} (tv_weight {tv_weight})", errors, 10)
with minidl.no_grad():
    tv = [float(my_total_variation(Tensor(inverted["features.10", w])).item()) for w in (0.0, 5e-3)]
check_decreases("total variation of the conv3 inversion, without -> with the prior", tv, 2)
show([[original, inverted["features.6", 5e-3][0], inverted["features.10", 5e-3][0], inverted["features.10", 0.0][0]]],
     [["original", "from conv2 + TV", "from conv3 + TV", "from conv3, no TV"]], size=2)
"""),
    ("md", """
## What else lecture 12 shows, in `minidl.vis`

Every technique has a reference implementation that works on any minidl model (`docs/vis.md` lists them):
occlusion (`occlusion_heatmap`), class visualization by regularized gradient ascent (`class_visualization`),
DeepDream (`deepdream`), the randomization sanity check (`model_randomization_check`), nearest neighbours /
PCA / t-SNE of features, maximally activating patches, Gatys style transfer (`style_transfer`: your three losses
together, content + style + TV) and fast style transfer (`train_fast_style`).
`python -m minidl.tour --only visualize` runs all of them and writes the figures.
"""),
]

VISUALIZATION_PARTS = [
    part("saliency", "Part 1 — saliency maps", 3, forbid=["saliency_map", "input_gradient"]),
    part("guided", "Part 2 — guided backpropagation", 3, requires=["saliency"],
         forbid=["guided_backprop", "guided_relu_backward", "input_gradient", "saliency_map"]),
    part("fooling", "Part 3 — fooling images", 3, forbid=["fooling_image"]),
    part("texture", "Part 4 — Gram matrices and texture synthesis", 3,
         forbid=["gram_matrix", "style_loss", "texture_gram", "StyleLoss", "synthesize_texture",
                 "synthesize_texture_gram"]),
    part("inversion", "Part 5 — total variation and feature inversion", 3,
         forbid=["total_variation", "feature_inversion", "invert_features", "content_loss"]),
]

NOTEBOOKS = {"01_autograd_solution.ipynb": (AUTOGRAD, AUTOGRAD_PARTS),
             "02_convolution_solution.ipynb": (CONVOLUTION, CONVOLUTION_PARTS),
             "03_detection_solution.ipynb": (DETECTION, DETECTION_PARTS),
             "04_visualization_solution.ipynb": (VISUALIZATION, VISUALIZATION_PARTS)}


def cells_and_parts(stem):
    """(cells, parts) of notebook ``stem``: 1–4 from this file, 5–9 from their course module."""
    name = f"{stem}_solution.ipynb"
    if name in NOTEBOOKS:
        return NOTEBOOKS[name]
    module = course.load(stem)
    return module.CELLS, module.PARTS


def main(argv=()):
    stems = argv or [name.replace("_solution.ipynb", "") for name in NOTEBOOKS] + list(course.MODULES)
    for stem in stems:
        name = f"{stem}_solution.ipynb"
        nbformat.write(notebook(name, *cells_and_parts(stem)), HERE / name)
        print("wrote", name)


if __name__ == "__main__":
    main(sys.argv[1:])
