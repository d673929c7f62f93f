"""Author the solution notebooks from the cell lists below (run once after editing a cell list).

Keeping the cells as Python strings makes the notebooks reviewable in a diff; the generated
``*_solution.ipynb`` files are what students and the tests use.

    python assignments/build_notebooks.py
"""
from __future__ import annotations

import pathlib

import nbformat

HERE = pathlib.Path(__file__).resolve().parent


def notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, (kind, text) in enumerate(cells):
        text = text.strip("\n")
        cell = nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        cell.id = f"cell-{i:02d}"      # fixed ids: rebuilding a notebook changes only what was edited
        nb.cells.append(cell)
    return nb


AUTOGRAD = [
    ("md", """
# Assignment 1 — autograd from the inside

You will write a differentiable operation for minidl the way every op in `minidl/functional` is written:
a `Function` with a `forward` and a `backward` side by side, then prove it right with a gradient check
(central differences in float64), and finally train a small network with it.

Run a cell with Shift+Enter. Each **check** cell prints the relative error and says OK or WRONG.
Run only this assignment's tests with `pytest -m assignment1`.
"""),
    ("code", """
import numpy as np
import minidl
import minidl.functional as F
from minidl import Function, tensor, backend
from minidl.checks import check_function, check_gradients
"""),
    ("md", """
## Part 1 — the sigmoid gate

Forward: $\\sigma(x) = 1 / (1 + e^{-x})$. Backward: $\\partial L/\\partial x = \\partial L/\\partial y \\cdot \\sigma(x)(1-\\sigma(x))$.

Write both. Use `xp = backend.get_array_module(x)` instead of `np` so your op also runs on a GPU, and make the
forward *stable*: `exp(-x)` overflows for very negative `x` — compute with `exp(-|x|)` in two branches.
Save what backward needs with `ctx.save_for_backward(...)`.
"""),
    ("code", """
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
    ("code", """
# check: values against minidl's sigmoid (including huge inputs), then the gradient check
check_function("sigmoid forward", lambda x: MySigmoid.apply(tensor(x)), lambda x: F.sigmoid(tensor(x)),
               lambda rng: (rng.standard_normal((4, 5)) * 10,))
check_function("sigmoid at +-1000", lambda x: MySigmoid.apply(tensor(x)), lambda x: F.sigmoid(tensor(x)),
               lambda rng: (np.array([-1000.0, 1000.0, 0.0]),), trials=1)
check_gradients("sigmoid backward", MySigmoid.apply, [np.random.default_rng(0).standard_normal((3, 4))])
"""),
    ("md", """
## Part 2 — a softmax classifier's loss, from primitives

Write the mean softmax cross-entropy of scores `s` (N, C) for labels `y` (N,) using only minidl tensor
operations (`.max`, `.exp`, `.sum`, `.log`, indexing `s[rows, y]`, arithmetic). Subtract the row maximum
first (a constant shift does not change softmax but keeps `exp` finite). The autograd engine gives you the
gradient for free — the check compares it with `F.cross_entropy`'s hand-written backward.
"""),
    ("code", """
def my_cross_entropy(s, y):
    ### BEGIN SOLUTION
    shifted = s - s.max(axis=1, keepdims=True).detach()
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[np.arange(s.shape[0]), y].mean()
    ### END SOLUTION
"""),
    ("code", """
labels = np.array([0, 2, 1, 1, 3])
check_function("cross-entropy value", lambda s: my_cross_entropy(tensor(s), labels),
               lambda s: F.cross_entropy(tensor(s), labels), lambda rng: (rng.standard_normal((5, 4)) * 3,))
check_gradients("cross-entropy gradient", lambda s: my_cross_entropy(s, labels),
                [np.random.default_rng(1).standard_normal((5, 4))])
"""),
    ("md", """
## Part 3 — train a two-layer network with your pieces

Use `MySigmoid` as the hidden nonlinearity and `my_cross_entropy` as the loss on the spiral data. The check
expects a training accuracy above 90 %.
"""),
    ("code", """
from minidl import nn, optim
from minidl.tour.mlp import spirals

X, y = spirals(n_per_class=100, rng=0)
rng = np.random.default_rng(0)
fc1, fc2 = nn.Linear(2, 64, rng=rng), nn.Linear(64, 3, rng=rng)
opt = optim.Adam(list(fc1.parameters()) + list(fc2.parameters()), lr=0.05)
for step in range(400):
    ### BEGIN SOLUTION
    scores = fc2(MySigmoid.apply(fc1(tensor(X))))
    loss = my_cross_entropy(scores, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    ### END SOLUTION
accuracy = float((fc2(MySigmoid.apply(fc1(tensor(X)))).numpy().argmax(1) == y).mean())
print(f"training accuracy {accuracy:.3f}")
assert accuracy > 0.9, "train longer or check your loss/backward"
"""),
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
Run only this assignment's checks with `pytest -m assignment2`.
"""),
    ("code", """
import numpy as np
import minidl
import minidl.functional as F
from minidl import tensor
from minidl.kernels.im2col import im2col_reference
from minidl.checks import check_function, check_close
"""),
    ("md", """
## Part 1 — im2col with loops

Write `my_im2col(x, k, stride, pad)` for a square k×k kernel. The straightforward version loops over every
output position; the fast version loops only over the k×k *taps* `(i, j)` and copies a strided slice of the
padded image for each (that is what minidl does). Either passes the check; try the fast one.
`out_h = (H + 2*pad - k) // stride + 1`.
"""),
    ("code", """
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
    ("code", """
for k, stride, pad in [(3, 1, 1), (3, 2, 0), (1, 1, 0), (5, 2, 2)]:
    check_function(f"im2col k={k} stride={stride} pad={pad}",
                   lambda x: my_im2col(x, k, stride, pad),
                   lambda x: im2col_reference(x, (k, k), (stride, stride), (pad, pad), (1, 1)),
                   lambda rng: (rng.standard_normal((2, 3, 7, 6)),), tol=0)
"""),
    ("md", """
## Part 2 — convolution as one matrix product

With the columns, a convolution with weights `w` (F, C, k, k) and bias `b` (F,) is
`out = w.reshape(F, -1) @ cols + b[:, None]`, reshaped from `(F, N*out_h*out_w)` to `(N, F, out_h, out_w)`.
"""),
    ("code", """
def my_conv2d(x, w, b, stride, pad):
    N, C, H, W = x.shape
    Fo, _, k, _ = w.shape
    out_h, out_w = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    ### BEGIN SOLUTION
    out = w.reshape(Fo, -1) @ my_im2col(x, k, stride, pad) + b[:, None]
    return out.reshape(Fo, N, out_h, out_w).transpose(1, 0, 2, 3)
    ### END SOLUTION
"""),
    ("code", """
check_function("conv2d", lambda x, w, b: my_conv2d(x, w, b, 2, 1),
               lambda x, w, b: F.conv2d(tensor(x), tensor(w), tensor(b), stride=2, padding=1),
               lambda rng: (rng.standard_normal((2, 3, 8, 7)), rng.standard_normal((4, 3, 3, 3)),
                            rng.standard_normal(4)), tol=1e-10)
"""),
    ("md", """
## Part 3 — the matrix X, and transpose convolution as Xᵀ

Build the explicit matrix `X` of a conv with fixed weights by applying `F.conv2d` to every basis image
`e_k` (a 1 in one pixel): column k of X is `conv(e_k)` flattened. Then check the lecture's identity:
`conv_transpose2d(a)` with the *same* weights equals `Xᵀ a`.
"""),
    ("code", """
rng = np.random.default_rng(0)
C, Fo, H, W, k, stride, pad = 2, 3, 5, 5, 3, 2, 1
weight = rng.standard_normal((Fo, C, k, k))

def conv(a):  # a: (C, H, W) -> (Fo, out_h, out_w)
    return F.conv2d(tensor(a[None]), tensor(weight), stride=stride, padding=pad).numpy()[0]

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
    ("code", """
a = rng.standard_normal((C, H, W))
check_close("conv(a) == X a", conv(a).ravel(), X @ a.ravel(), tol=1e-12)
y = rng.standard_normal(conv(a).shape)
transpose = F.conv_transpose2d(tensor(y[None]), tensor(weight), stride=stride, padding=pad).numpy()[0]
check_close("conv_transpose(y) == X^T y", transpose.ravel(), X.T @ y.ravel(), tol=1e-12)
"""),
]

DETECTION = [
    ("md", """
# Assignment 3 — detection building blocks: IoU, non-maximum suppression, RoI pooling

Every detector of lecture 8 scores many overlapping boxes and keeps the best ones with **NMS**; Fast R-CNN
crops a fixed-size feature map per region with **RoI pooling**. Boxes are `(x1, y1, x2, y2)` in pixels.
Run only this assignment's checks with `pytest -m assignment3`.
"""),
    ("code", """
import numpy as np
import minidl
from minidl import ops, tensor
from minidl.checks import check_function
"""),
    ("md", """
## Part 1 — IoU of two sets of boxes

`box_iou(a, b)` returns the (M, N) matrix of intersection over union. Use broadcasting: the intersection's
top-left corner is the elementwise max of the two top-left corners, its bottom-right the min. Clamp widths
and heights at 0 (boxes that do not overlap).
"""),
    ("code", """
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
    ("code", """
def random_boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(5, 50, (n, 2))], 1)

check_function("box_iou", my_box_iou, lambda a, b: ops.box_iou(a, b),
               lambda rng: (random_boxes(rng, 7), random_boxes(rng, 5)), tol=1e-12)
"""),
    ("md", """
## Part 2 — greedy NMS

Sort the boxes by decreasing score (ties: lower index first — use a stable sort of `-scores`). Repeatedly keep
the best remaining box and drop every remaining box whose IoU with it is **strictly greater** than the
threshold (torchvision's rule). Return the kept indices in the order they were kept.
"""),
    ("code", """
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
    ("code", """
for threshold in (0.3, 0.5, 0.7):
    check_function(f"nms iou={threshold}", lambda b, s: my_nms(b, s, threshold),
                   lambda b, s: ops.nms(b, s, threshold),
                   lambda rng: (random_boxes(rng, 60), rng.random(60)), tol=0)
"""),
    ("md", """
## Part 3 — RoI max pooling for one region

Fast R-CNN's RoI pooling with torchvision's arithmetic: scale the box by `spatial_scale` and **round** each
coordinate; the region is `roi_w = max(x2 - x1 + 1, 1)` wide (the legacy inclusive "+1"); bin `(ph, pw)` covers
rows `floor(ph * roi_h / PH) + y1` up to `ceil((ph + 1) * roi_h / PH) + y1` (exclusive), clipped to the feature
map; an empty bin outputs 0. Write it for one image `feature` (C, H, W) and one box.
"""),
    ("code", """
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
    ("code", """
def reference(feature, box):
    rois = np.concatenate([[0.0], box])[None]
    return ops.roi_pool(tensor(feature[None]), tensor(rois), (3, 3), 0.5).numpy()[0]

check_function("roi_pool", lambda f, b: my_roi_pool_one(f, b, (3, 3), 0.5), reference,
               lambda rng: (rng.standard_normal((2, 12, 10)), np.array([*rng.uniform(0, 8, 2), *rng.uniform(10, 22, 2)])),
               trials=5, tol=0)
"""),
]

VISUALIZATION = [
    ("md", """
# Assignment 4 — visualizing and understanding CNNs

Lecture 12 asks what a trained CNN has learned. Most of its answers use one tool, the **gradient with respect
to the image** instead of the weights: backpropagate a class score to the pixels (saliency maps, guided
backprop), climb it (fooling images), or descend a loss defined on the features until an image has the
features you want (texture synthesis with Gram matrices, feature inversion with a total-variation prior).

You write each technique in a few lines; every check compares your function with minidl's own implementation
in `minidl.vis` on random inputs and tests a property that defines it (a numerical gradient, a float64
gradient check, "the model now predicts the target", "the loss fell 10×").

Models (no downloads): `minidl.models.load_shapes_classifier()` is a 3-conv + batch-norm classifier trained by
minidl on 32×32 images of `minidl.data.ShapesDataset` (5 classes: circle, square, triangle, ellipse, star;
weights committed in `minidl/weights/shapes_classifier.npz`). Textures use a small `VGGFeatures` network with
**random** weights (random filters are enough for Gram statistics, see `docs/vis.md`).
Run only this assignment's checks with `pytest -m assignment4`.
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
from minidl.checks import (check_close, check_decreases, check_fooling_image, check_function, check_gradients,
                           check_guided_relu_rule, check_saliency)

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
## Part 1 — saliency maps (Simonyan et al., 2014)

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
    ("code", """
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
    ("code", """
# check: the trained classifier, random images and random target classes, against minidl.vis.saliency_map;
# then the defining property on the tiny float64 net: max over channels of |numerical gradient|
check_function("saliency vs minidl.vis.saliency_map", lambda x, t: my_saliency_map(model, x, t),
               lambda x, t: vis.saliency_map(model, x, t),
               lambda rng: (images[rng.choice(8, 4, replace=False)], rng.integers(0, 5, 4)), tol=1e-5)
check_saliency("saliency vs numerical gradient (tiny float64 net)", my_saliency_map, tiny,
               np.random.default_rng(1).standard_normal((2, 3, 6, 6)), np.array([1, 3]))
saliency = my_saliency_map(model, images[:4], labels[:4])
show([list(images[:4]), list(saliency)], [[SHAPE_CLASSES[c] for c in labels[:4]], ["saliency"] * 4])
"""),
    ("md", """
## Part 2 — guided backpropagation (Springenberg et al., 2015)

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
    ("code", """
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
    ("code", """
check_guided_relu_rule("guided ReLU rule", my_guided_relu_backward)
check_function("guided backprop vs minidl.vis.guided_backprop", lambda x, t: my_guided_backprop(model, x, t),
               lambda x, t: vis.guided_backprop(model, x, t),
               lambda rng: (images[rng.choice(8, 4, replace=False)], rng.integers(0, 5, 4)), tol=1e-5)
check_function("guided backprop, tiny float64 net", lambda x, t: my_guided_backprop(tiny, x, t),
               lambda x, t: vis.guided_backprop(tiny, x, t),
               lambda rng: (rng.standard_normal((3, 3, 6, 6)), rng.integers(0, 5, 3)), tol=1e-10)
# the override must end with the with-block: plain gradients are plain again
check_saliency("saliency after guided backprop (override removed)", my_saliency_map, tiny,
               np.random.default_rng(2).standard_normal((1, 3, 6, 6)), np.array([2]))
guided = my_guided_backprop(model, images[:4], labels[:4])
show([list(images[:4]), list(saliency), list(vis.guided_backprop_image(guided))],
     [[SHAPE_CLASSES[c] for c in labels[:4]], ["saliency"] * 4, ["guided backprop"] * 4])
"""),
    ("md", """
## Part 3 — fooling images (Szegedy et al., 2014)

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
    ("code", """
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
    ("code", """
fooled = []
for i in range(3):
    with minidl.no_grad():
        target = int(model(Tensor(images[i:i + 1])).numpy()[0].argmin())   # the class the model finds least likely
    fooled.append(my_fooling_image(model, images[i], target))
    name = f"image {i}: {SHAPE_CLASSES[labels[i]]} -> {SHAPE_CLASSES[target]}"
    check_fooling_image(name, model, images[i], fooled[-1], target, max_relative_l2=0.1)
    reference = vis.fooling_image(model, images[i], target, lr=0.1, max_steps=100, value_range=(0, 1))
    check_close(name + ", same image as minidl.vis.fooling_image", fooled[-1], reference.image, tol=1e-4)
show([list(images[:3]), fooled, [0.5 + 10 * (f - im) for f, im in zip(fooled, images)]],
     [["original"] * 3, ["fooling image"] * 3, ["difference x10"] * 3])
"""),
    ("md", """
## Part 4 — Gram matrices and texture synthesis (Gatys et al., 2015)

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
    ("code", """
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
    ("code", """
check_function("gram matrix vs minidl.vis.gram_matrix", lambda f: my_gram_matrix(Tensor(f)),
               lambda f: vis.gram_matrix(Tensor(f)), lambda rng: (rng.standard_normal((2, 4, 5, 3)),), tol=1e-10)
check_gradients("gram matrix gradient", my_gram_matrix, [np.random.default_rng(0).standard_normal((2, 3, 4, 5))])
# the defining property: the Gram matrix does not care where things are
f = np.random.default_rng(1).standard_normal((1, 4, 6, 6))
shuffled = f.reshape(1, 4, 36)[:, :, np.random.default_rng(2).permutation(36)].reshape(1, 4, 6, 6)
check_close("gram matrix of spatially shuffled features", my_gram_matrix(Tensor(shuffled)), my_gram_matrix(Tensor(f)),
            tol=1e-12)

weights = {"a": 2.0, "b": 0.5}
def style_inputs(rng):   # two layers of different sizes and their target Gram matrices
    fa, fb = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5, 2, 3))
    return fa, fb, 0.3 * rng.standard_normal((1, 3, 3)), 0.3 * rng.standard_normal((1, 5, 5))
check_function("style loss vs minidl.vis.style_loss",
               lambda fa, fb, ga, gb: my_style_loss({"a": Tensor(fa), "b": Tensor(fb)}, {"a": ga, "b": gb}, weights),
               lambda fa, fb, ga, gb: vis.style_loss({"a": Tensor(fa), "b": Tensor(fb)}, {"a": ga, "b": gb}, weights),
               style_inputs, tol=1e-10)
fa, fb, ga, gb = style_inputs(np.random.default_rng(3))
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
## Part 5 — total variation and feature inversion (Mahendran & Vedaldi, 2015)

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
    ("code", """
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
    ("code", """
check_function("total variation vs minidl.vis.total_variation", lambda x: my_total_variation(Tensor(x)),
               lambda x: vis.total_variation(Tensor(x)), lambda rng: (rng.standard_normal((2, 3, 5, 4)),), tol=1e-10)
check_gradients("total variation gradient", my_total_variation,
                [np.random.default_rng(0).standard_normal((2, 3, 5, 4))])
# defining property: a ramp I[..., i, j] = a*j has TV = N*C*H*(W-1)*a^2 (only horizontal steps, each of size a)
ramp = np.broadcast_to(0.1 * np.arange(7.0), (2, 3, 5, 7))
check_close("total variation of a ramp", my_total_variation(Tensor(ramp)), np.array(2 * 3 * 5 * 6 * 0.1 ** 2),
            tol=1e-12)

def features_of(image, layer):
    with minidl.no_grad():
        return nn.forward_until(model, Tensor(image[None]), layer).numpy()

def reference_loss(x, target, layer, tv_weight):    # the same loss from minidl's pieces
    diff = features_of(x[0], layer) - target
    return (diff * diff).sum() / (target * target).sum() + tv_weight * vis.total_variation(Tensor(x)).item()

for layer in ("features.6", "features.10"):
    check_function(f"inversion loss at {layer}",
                   lambda x, t: inversion_loss(Tensor(x), t, layer, 5e-3),
                   lambda x, t: reference_loss(x, t, layer, 5e-3),
                   lambda rng: (rng.random((1, 3, 32, 32)).astype(np.float32),
                                features_of(images[rng.integers(8)], layer)),
                   tol=1e-5)
"""),
    ("md", """
Invert image 0 from conv2 and conv3 (with the TV prior) and from conv3 without it. The checks: the relative feature
error falls at least 10-fold, and the prior makes the reconstruction at least twice as smooth (lower TV).
"""),
    ("code", """
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

NOTEBOOKS = {"01_autograd_solution.ipynb": AUTOGRAD, "02_convolution_solution.ipynb": CONVOLUTION,
             "03_detection_solution.ipynb": DETECTION, "04_visualization_solution.ipynb": VISUALIZATION}


def main():
    for name, cells in NOTEBOOKS.items():
        nbformat.write(notebook(cells), HERE / name)
        print("wrote", name)


if __name__ == "__main__":
    main()
