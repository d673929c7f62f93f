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
    for kind, text in cells:
        text = text.strip("\n")
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text))
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

NOTEBOOKS = {"01_autograd_solution.ipynb": AUTOGRAD, "02_convolution_solution.ipynb": CONVOLUTION,
             "03_detection_solution.ipynb": DETECTION}


def main():
    for name, cells in NOTEBOOKS.items():
        nbformat.write(notebook(cells), HERE / name)
        print("wrote", name)


if __name__ == "__main__":
    main()
