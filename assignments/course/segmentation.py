"""Assignment 5 — down, up, and every pixel: semantic segmentation (CS231n lecture 8).

What the notebook teaches (each part is written by the student, checked against frozen results of
minidl's own implementation plus a property that defines the technique):

1. ``unpool``          down- and up-sampling without weights: nearest-neighbour and "bed of nails"
                       unpooling, max pooling that remembers its *switches* (argmax positions) and max
                       unpooling that puts every value back at its switch (``minidl.functional.pool``).
2. ``transpose_conv``  transpose convolution as a scatter: every input pixel times the filter, *added*
                       into the output at ``stride`` times its position, overlaps summed, padding cropped
                       (``F.conv_transpose2d``); checked as the adjoint of conv2d and as col2im(Wᵀ x).
3. ``sliding``         sliding-window segmentation with the committed patch classifier, counting the
                       forward passes; the given code times it against one pass of the committed FCN.
4. ``pixel_loss``      per-pixel softmax cross-entropy on (N, C, H, W) scores, stable, with class weights
                       and ignore_index (``F.cross_entropy``), float64 gradient check.
5. ``miou``            confusion matrix, IoU per class (NaN for a class absent from truth and prediction)
                       and their mean over present classes (``minidl.metrics``, the same semantics).
6. ``fcn``             a down-and-up fully convolutional network (strided convs down, transpose convs up,
                       1×1 conv to class scores), trained by the given loop with the student's loss.

Assumptions (decisions made for time on 2 shared CPU cores, the notebook must grade in ~90 s):
- Parts 1–2 work on NumPy arrays (the lesson is the indexing, not autograd); the transpose conv gets no
  gradient check, its "gradient" statement is the adjoint test ⟨conv(a), y⟩ = ⟨a, convT(y)⟩.
- Pooling/unpooling use non-overlapping k×k windows (stride = k, H and W divisible by k), PyTorch's
  switch layout (flat index into each H·W plane) and tie rule (the first maximum in row-major order).
- Part 3's frozen case is a 32×32 crop (the reference sliding window takes 4.5 s on a full 64×64 scene and
  make_references must stay fast); the timing and the figure run the student's function on a 64×64 scene.
  Its labels are compared by agreement (≥ 99.5 %), not bit-for-bit: a different batching changes float32
  sums in the last bit, which may flip an argmax at a near-tie.
- Part 6 trains on 32×32 scenes with three shape classes (circle, square, triangle → 4 classes per pixel):
  with all five classes a network that trains in ~30 s reaches only mIoU ≈ 0.35 at this size (tiny shapes,
  too few steps); with three, the solution reaches ≈ 0.55 in 800 steps (about 20 s alone on 2 cores), variants
  without skips or with one conv per stage ≈ 0.49, the all-background baseline ≈ 0.22, the threshold 0.40.
  The training uses class weights (background 0.2, the recipe of benchmarks/train_lecture8.py, undone before
  the argmax by subtracting log w) and flips/rotations of the 1,200 scenes.
  The committed 6-class FCN (trained on 64×64) is shown on the same scenes upsampled ×2.
"""
from __future__ import annotations

import numpy as np

from .spec import part, trials

STEM = "05_segmentation"

PARTS = [
    part("unpool", "Part 1 — unpooling, and max pooling that remembers its switches", 3,
         forbid=["unpool_nearest", "unpool_bed_of_nails", "max_pool2d", "max_unpool2d", "MaxPool2d",
                 "MaxUnpool2d", "interpolate", "Upsample", "UnpoolNearest", "UnpoolBedOfNails"]),
    part("transpose_conv", "Part 2 — transpose convolution as a scatter", 3,
         forbid=["conv_transpose2d", "ConvTranspose2d", "col2im", "col2im_reference", "conv2d", "Conv2d",
                 "_conv_gemm_transposed"]),
    part("sliding", "Part 3 — sliding-window segmentation, and why it is slow", 2,
         forbid=["sliding_window_segment", "extract_patches", "PatchClassifier", "FCN", "segment"]),
    part("pixel_loss", "Part 4 — per-pixel cross-entropy", 2,
         forbid=["cross_entropy", "log_softmax", "softmax", "nll_loss", "logsumexp", "CrossEntropy"]),
    part("miou", "Part 5 — confusion matrix and mean IoU", 2,
         forbid=["mean_iou", "confusion_matrix", "iou_per_class", "pixel_accuracy"]),
    part("fcn", "Part 6 — a fully convolutional network, down and up", 3, requires=["pixel_loss"],
         forbid=["FCN", "load_pretrained", "pretrained", "downsampling_backbone", "transpose_conv_relu", "conv_relu",
                 "cross_entropy", "log_softmax", "mean_iou", "confusion_matrix", "iou_per_class"]),
]


CELLS = [
    ("md", """
# Assignment 5 — down, up, and every pixel: semantic segmentation (lecture 8)

Semantic segmentation gives **every pixel** a class: the input is an image `(N, 3, H, W)`, the output
class scores `(N, C, H, W)` and the labels `(N, H, W)`. Lecture 8 gets there in three steps:

* the naive idea — a **sliding window**: classify a patch around every pixel. It works, and it is very slow,
  because neighbouring patches repeat almost all of each other's work;
* a **fully convolutional** network computes all pixels' scores in one pass — but convolutions at full
  resolution everywhere are expensive, so it goes **down** (strided convolutions, pooling) and back **up**
  (unpooling, **transpose convolutions**);
* trained with a **per-pixel cross-entropy** and measured with the **mean intersection over union**.

You write each piece: unpooling and max pooling with switches (part 1), transpose convolution (part 2),
the sliding window (part 3), the per-pixel loss (part 4), mIoU (part 5) and a down-and-up network that the
given loop trains with your loss (part 6).

Write your code where a cell says `TODO` (delete the `raise NotImplementedError` line). Each **check** cell
prints one line per check and says OK, or stops with a message that says what is off.
`pytest -m assignment5_unpool` (`_transpose_conv`, `_sliding`, `_pixel_loss`, `_miou`, `_fcn`) checks one part
of your notebook in `work/`; `python -m minidl.grade work/05_segmentation.ipynb` grades all of it. The expected
results are fixed data computed once from minidl's own implementation; an answer that calls it
(`F.max_unpool2d`, `F.conv_transpose2d`, `sliding_window_segment`, `F.cross_entropy`, `metrics.mean_iou`,
`FCN`) scores 0 for the part.

The data: `minidl.data.ShapesDataset(n, size, mode="scene")` draws scenes of filled shapes (circle, square,
triangle, ellipse, star) on a textured background; its `semantic_mask` (H, W) is 0 for the background and
`1 + class` on each shape's pixels. Two trained models are committed (`minidl/weights/`, no download):
a patch classifier (33×33 patch → class of its centre pixel) and an FCN, both trained on 64×64 scenes.
"""),
    ("code", """
import time
import numpy as np
import matplotlib.pyplot as plt
import minidl
import minidl.functional as F
from minidl import Tensor, nn, optim, tensor
from minidl.checks import check_at_least, check_close, check_decreases, check_gradients
from minidl.data import SHAPE_CLASSES, ShapesDataset
from minidl.grade.frozen import check_cases, frozen_cases
from minidl.models import load_pretrained

cases = frozen_cases("05_segmentation")      # the expected results of this notebook's checks

patch_classifier = load_pretrained("patch_classifier_shapes")   # (M, 3, 33, 33) patches -> (M, 6) scores
fcn = load_pretrained("fcn_shapes")                             # (N, 3, H, W) -> (N, 6, H, W) scores
CLASS_NAMES = ("background",) + SHAPE_CLASSES
FCN_CLASSES = ("circle", "square", "triangle")                  # the scenes of part 6 (labels 1..3)
CMAP = plt.get_cmap("tab10", 6)                                 # one colour per class 0..5

def show(rows, titles, size=2.0, classes=6):
    # rows: a list of rows of panels, each an image (3, H, W) in [0, 1] or a label map (H, W) of ints drawn in
    # the class colours; titles: of the first row's panels; a legend names the first `classes` classes
    from matplotlib.patches import Patch
    fig, axes = plt.subplots(len(rows), len(rows[0]), figsize=(size * len(rows[0]), size * len(rows) + 0.5),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            panel, ax = np.asarray(panel), axes[r, c]
            if panel.ndim == 3:
                ax.imshow(np.clip(panel.transpose(1, 2, 0), 0, 1))
            else:
                ax.imshow(panel, cmap=CMAP, vmin=0, vmax=5, interpolation="nearest")
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
            ax.set_axis_off()
    fig.legend(handles=[Patch(color=CMAP(k), label=CLASS_NAMES[k]) for k in range(classes)], loc="lower center",
               ncol=classes, fontsize=7, frameon=False)
    plt.show()

def show_numbers(grids, titles, size=1.9):
    # small 2-D arrays drawn as tables of their values
    fig, axes = plt.subplots(1, len(grids), figsize=(size * len(grids), size), squeeze=False)
    for ax, grid, title in zip(axes[0], grids, titles):
        grid = np.asarray(grid, dtype=float)
        ax.imshow(grid, cmap="Blues", vmin=min(0, grid.min()), vmax=max(grid.max(), 1e-9))
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([]); ax.set_yticks([])
    plt.show()
"""),
    ("md", """
## Part 1 — down and up without weights (3 points)

**Down.** A segmentation network shrinks its feature maps so that each cell sees a large part of the image
cheaply. Two ways, both `(N, C, H, W) → (N, C, H/2, W/2)`: **pooling** (max or mean of each 2×2 window, no
weights) and a **strided convolution** (a 3×3 conv with stride 2: a *learned* downsampling). The given cell
below shows both on a 4×4 example.

**Up.** To get back to `H×W` the network needs the opposite. Without weights ("unpooling", the lecture's slide),
for a scale `s`, `(N, C, H, W) → (N, C, s·H, s·W)`:

    nearest neighbour   out[n, c, i, j] = x[n, c, i // s, j // s]           every value fills its s×s block
    "bed of nails"      out[n, c, s·i, s·j] = x[n, c, i, j], 0 elsewhere      the value in the block's top-left corner

and **max unpooling**, the partner of max pooling: "remember which element was max" during pooling and put
each value back *there* when upsampling (zeros elsewhere) — so the details of *where* survive the trip down.

Write four functions on NumPy arrays (non-overlapping k×k windows: stride = k, H and W divisible by k):

* `my_unpool_nearest(x, s)` and `my_unpool_bed_of_nails(x, s)`;
* `my_max_pool2d_with_switches(x, k)` → `(values (N, C, H/k, W/k), switches (N, C, H/k, W/k))`: the **switch**
  of a window is the position of its maximum as a flat index into its image plane, `row * W + col` (PyTorch's
  `return_indices=True` layout), int64. **Ties** (tested: one frozen input has many equal values): the
  **first** maximum of the window in row-major order wins — scanning the window's rows top to bottom, each row
  left to right. Hint: `x.reshape(N, C, H//k, k, W//k, k)` puts each window on axes 3 (row in the window) and 5
  (column); `.transpose(0, 1, 2, 4, 3, 5)` makes those two axes adjacent, so that `.reshape(N, C, H//k, W//k, k*k)`
  lists each window's values in row-major order and `np.argmax(..., axis=-1)` returns the first maximum
  (without the transpose the flattened axis mixes windows and the switches are wrong);
* `my_max_unpool2d(x, switches, out_size)` → `(N, C, *out_size)`: zeros, then each value at its switch
  (`np.put_along_axis` on the flattened planes, or fancy indexing).

The check compares with frozen results of `minidl.functional.pool` (random inputs and one with ties) and
tests the defining property: max-unpooling the pooled values and pooling again gives the same values back.
"""),
    ("code", """
# the "down" half, given: a 4x4 image shrunk to 2x2 by pooling and by a stride-2 convolution
x4 = np.arange(16.0).reshape(1, 1, 4, 4)
print("input               ", x4.shape, "\\n", x4[0, 0])
print("max pool 2x2        ", F.max_pool2d(tensor(x4), 2).shape, "\\n", F.max_pool2d(tensor(x4), 2).numpy()[0, 0])
print("average pool 2x2    ", F.avg_pool2d(tensor(x4), 2).numpy()[0, 0].tolist())
mean_filter = np.full((1, 1, 3, 3), 1 / 9)         # a conv can learn any filter; this one averages 3x3
print("3x3 conv, stride 2, padding 1", F.conv2d(tensor(x4), tensor(mean_filter), stride=2, padding=1).numpy()[0, 0].round(2).tolist())
"""),
    ("answer", "unpool", """
def my_unpool_nearest(x, s):
    # x (N, C, H, W) -> (N, C, s*H, s*W): each value fills its s×s block
    ### BEGIN SOLUTION
    return x.repeat(s, axis=2).repeat(s, axis=3)
    ### END SOLUTION


def my_unpool_bed_of_nails(x, s):
    # x (N, C, H, W) -> (N, C, s*H, s*W): each value at the top-left of its s×s block, zeros elsewhere
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    out = np.zeros((N, C, s * H, s * W), dtype=x.dtype)
    out[:, :, ::s, ::s] = x
    return out
    ### END SOLUTION


def my_max_pool2d_with_switches(x, k):
    # x (N, C, H, W) -> values (N, C, H//k, W//k), switches (N, C, H//k, W//k) int64 = row * W + col of each max
    N, C, H, W = x.shape
    oh, ow = H // k, W // k
    ### BEGIN SOLUTION
    windows = x.reshape(N, C, oh, k, ow, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, oh, ow, k * k)
    best = windows.argmax(axis=-1)                      # the first maximum of each window wins ties
    values = np.take_along_axis(windows, best[..., None], axis=-1)[..., 0]
    rows = np.arange(oh)[:, None] * k + best // k       # back to image coordinates
    cols = np.arange(ow)[None, :] * k + best % k
    return values, (rows * W + cols).astype(np.int64)
    ### END SOLUTION


def my_max_unpool2d(x, switches, out_size):
    # x, switches (N, C, h, w); out_size (H, W) -> (N, C, H, W): x[n, c, i, j] at flat position switches[n, c, i, j]
    N, C = x.shape[:2]
    H, W = out_size
    ### BEGIN SOLUTION
    out = np.zeros((N, C, H * W), dtype=x.dtype)
    np.put_along_axis(out, switches.reshape(N, C, -1), x.reshape(N, C, -1), axis=2)
    return out.reshape(N, C, H, W)
    ### END SOLUTION
"""),
    ("check", "unpool", """
check_cases("my_unpool_nearest", my_unpool_nearest, cases["unpool nearest"], tol=0,
            hint="out[n, c, i, j] = x[n, c, i // s, j // s]: repeat along both spatial axes")
check_cases("my_unpool_bed_of_nails", my_unpool_bed_of_nails, cases["unpool bed of nails"], tol=0,
            hint="the value goes to the top-left corner (s*i, s*j) of its block, zeros elsewhere")
check_cases("my_max_pool2d_with_switches: values", lambda x, k: my_max_pool2d_with_switches(x, k)[0],
            cases["max pool values"], tol=0, hint="the maximum of each non-overlapping k×k window")
check_cases("my_max_pool2d_with_switches: switches", lambda x, k: my_max_pool2d_with_switches(x, k)[1],
            cases["max pool switches"], tol=0,
            hint="a switch is row * W + col in the *input* plane (not the index inside the window); "
                 "ties go to the first maximum in row-major order")
check_cases("my_max_unpool2d", lambda v, s, h, w: my_max_unpool2d(v, s, (h, w)), cases["max unpool"], tol=0,
            hint="zeros everywhere except at each switch, which receives its pooled value")
# the defining property: unpool at the switches, pool again -> the same values and switches
x = np.random.default_rng(7).random((2, 3, 6, 8)) + 0.1          # positive: the zeros of unpooling never win
values, switches = my_max_pool2d_with_switches(x, 2)
again, same = my_max_pool2d_with_switches(my_max_unpool2d(values, switches, (6, 8)), 2)
check_close("max-unpool then max-pool gives the pooled values back", again, values, tol=0)
check_close("... at the same switches", same, switches, tol=0)
# the lecture's pictures: a 4x4 input, its 2x2 max pool, and the three ways back up
x = np.array([[1., 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]])[None, None]
values, switches = my_max_pool2d_with_switches(x, 2)
expected = np.array([[0, 0, 6, 0], [0, 5, 0, 0], [0, 0, 0, 0], [7, 0, 0, 8]])    # the slide's answer
check_close("the slide's 4×4 example: max pool, then max unpool", my_max_unpool2d(values, switches, (4, 4))[0, 0],
            expected, tol=0)
show_numbers([x[0, 0], values[0, 0], switches[0, 0], my_unpool_nearest(values, 2)[0, 0],
              my_unpool_bed_of_nails(values, 2)[0, 0], my_max_unpool2d(values, switches, (4, 4))[0, 0], expected],
             ["input 4×4", "max pool 2×2\\n(yours)", "switches row*4+col\\n(yours)", "nearest\\n(yours)",
              "bed of nails\\n(yours)", "max unpool\\n(yours)", "max unpool\\n(expected)"])
"""),
    ("md", """
## Part 2 — transpose convolution: learnable upsampling (3 points)

Unpooling has no weights. A **transpose convolution** learns how to upsample. Lecture 8 describes it as a
*scatter*: each input value **multiplies the whole filter** and the weighted copy is **added** into the
output; the copy moves `stride` pixels in the output for every pixel in the input, so neighbouring copies
overlap and **the overlaps are summed**. In 1-D, input `[a, b]`, filter `[x, y, z]`, stride 2:

    output = [a·x,  a·y,  a·z + b·x,  b·y,  b·z]         (the middle sum is an overlap)

With channels, input `x` `(N, C_in, H, W)` and weight `w` `(C_in, C_out, k, k)` (PyTorch's layout for
`conv_transpose2d`): input pixel `(a, b)` adds `Σ_c x[n, c, a, b] · w[c, :, :, :]` — a `(N, C_out, k, k)` block —
into the output window starting at `(stride·a, stride·b)`. Scatter into a zero buffer of
`(H−1)·stride + k + output_padding` rows (and likewise columns): its last `output_padding` rows/columns receive
nothing from the scatter and stay zero. Then **crop** `padding` rows/columns from every side of the buffer
(padding of the transpose conv *removes* output, the opposite of a conv; the crop at the bottom/right may
remove some or all of those zero rows): the result is
`buffer[:, :, padding : padding + H_out, padding : padding + W_out]` with

    H_out = (H − 1)·stride − 2·padding + k + output_padding

The lecture's example: a 2×2 input, a 3×3 filter, stride 2, padding 1 gives `(2−1)·2 − 2 + 3 = 3`, so the
4×4 of the slide needs `output_padding=1` (PyTorch's way to pick between the input sizes 3×3 and 4×4 that a
stride-2 conv would both shrink to 2×2).

Why "transpose": a convolution is a matrix product `conv(a) = X a` (assignment 2), and this op is `Xᵀ`. So it
is the conv's backward pass, `⟨conv(a), y⟩ = ⟨a, convT(y)⟩` for all `a`, `y` (the adjoint identity), and it
equals `col2im(Wᵀ x)` — the GEMM of assignment 2 run backwards. Its other names: **deconvolution** (a bad
name: deconvolution is the inverse of a convolution, which this is not), **upconvolution**, **fractionally
strided convolution** (stride 1/2), **backward strided convolution**.

Write `my_conv_transpose2d(x, w, stride, padding, output_padding)` on NumPy arrays as that scatter: loop over
the input pixels `(a, b)` (or, faster, over the k×k taps `(i, j)` with strided slices, as in assignment 2).
`np.einsum("nc,cdij->ndij", x[:, :, a, b], w)` is the block one pixel adds. The check compares with frozen
results of `F.conv_transpose2d`, then tests the adjoint identity against `F.conv2d` and the col2im identity.
"""),
    ("answer", "transpose_conv", """
def my_conv_transpose2d(x, w, stride=1, padding=0, output_padding=0):
    # x (N, C_in, H, W), w (C_in, C_out, k, k) -> (N, C_out, H_out, W_out)
    N, C_in, H, W = x.shape
    _, C_out, k, _ = w.shape
    out_h = (H - 1) * stride - 2 * padding + k + output_padding
    out_w = (W - 1) * stride - 2 * padding + k + output_padding
    ### BEGIN SOLUTION
    full = np.zeros((N, C_out, (H - 1) * stride + k + output_padding, (W - 1) * stride + k + output_padding),
                    dtype=np.result_type(x, w))
    for a in range(H):
        for b in range(W):
            # input pixel (a, b), all its channels, times the filter: added where the filter lands
            full[:, :, a * stride:a * stride + k, b * stride:b * stride + k] += np.einsum("nc,cdij->ndij", x[:, :, a, b], w)
    return full[:, :, padding:padding + out_h, padding:padding + out_w]
    ### END SOLUTION
"""),
    ("check", "transpose_conv", """
shape_hint = ("H_out = (H-1)*stride - 2*padding + k + output_padding: scatter into a zero buffer of "
              "(H-1)*stride + k + output_padding rows/cols, then keep buffer[:, :, padding:padding+H_out, padding:padding+W_out]")
check_cases("my_conv_transpose2d: the lecture's 2×2 -> 4×4 (3×3 filter, stride 2, padding 1, output_padding 1)",
            my_conv_transpose2d, cases["transpose conv lecture"], tol=1e-12, hint=shape_hint)
check_cases("my_conv_transpose2d: channels, strides 1-3, paddings", my_conv_transpose2d, cases["transpose conv"],
            tol=1e-12, hint=shape_hint + "; weight is (C_in, C_out, k, k): sum over the input channels")
rng = np.random.default_rng(5)
for (N, C_in, C_out, H, k, s, p) in [(2, 3, 2, 4, 4, 2, 1), (1, 2, 3, 3, 3, 3, 0), (2, 1, 2, 5, 3, 1, 1)]:
    w = rng.standard_normal((C_in, C_out, k, k))
    y = rng.standard_normal((N, C_in, H, H))                            # the transpose conv's input
    up = my_conv_transpose2d(y, w, s, p)                                # (N, C_out, H_out, H_out)
    a = rng.standard_normal(up.shape)
    down = F.conv2d(tensor(a), tensor(w), stride=s, padding=p).numpy()  # conv with the same weight: C_out -> C_in
    check_close(f"adjoint of conv2d (k={k}, stride={s}, padding={p}): <conv(a), y> == <a, convT(y)>",
                np.array(np.vdot(a, up)), np.array(np.vdot(down, y)), tol=1e-10)
    from minidl.kernels.im2col import col2im
    cols = w.reshape(C_in, -1).T @ y.transpose(1, 0, 2, 3).reshape(C_in, -1)       # Wᵀ x: (C_out*k*k, N*H*W)
    check_close(f"equals col2im(Wᵀ x) (k={k}, stride={s}, padding={p})", up, col2im(cols, up.shape, k, s, p), tol=1e-10)

# the lecture's pictures: 1-D [a, b] * [x, y, z] with stride 2, and the 2-D 2×2 -> 4×4 with an all-ones filter
row_filter = np.zeros((1, 1, 3, 3))
row_filter[0, 0, 1] = [1.0, 10.0, 100.0]             # a 3×3 filter that is 1-D: only its middle row is non-zero
one_d = my_conv_transpose2d(np.array([1.0, 2.0]).reshape(1, 1, 1, 2), row_filter, 2)[0, 0, 1]
print("1-D: [a, b] = [1, 2], filter [x, y, z] = [1, 10, 100], stride 2 ->", one_d,
      "  (a·z + b·x = 100 + 2 in the middle)")
ones = np.ones((1, 1, 3, 3))
full = my_conv_transpose2d(np.ones((1, 1, 2, 2)), ones, 2, 0)
cropped = my_conv_transpose2d(np.ones((1, 1, 2, 2)), ones, 2, 1, 1)
expected = np.array([[1, 2, 1, 1], [2, 4, 2, 2], [1, 2, 1, 1], [1, 2, 1, 1]])     # worked out by hand
check_close("the slide's 2×2 -> 4×4 with a 3×3 filter of ones", cropped[0, 0], expected, tol=0)
show_numbers([np.ones((2, 2)), full[0, 0], cropped[0, 0], expected],
             ["input 2×2 (ones)", "stride-2 scatter of a 3×3\\nones filter (yours)",
              "padding 1 cropped,\\noutput_padding 1 (yours)", "expected 4×4"], size=2.6)
"""),
    ("md", """
## Part 3 — sliding-window segmentation, and why it is slow (2 points)

The naive idea: for each pixel `(i, j)`, cut the `P×P` patch **centred** on it (zero padding outside the image),
classify the patch with a CNN, and give the pixel the patch's class. The committed `patch_classifier` takes
patches `(M, 3, 33, 33)` (`patch_classifier.patch_size` is 33) and returns scores `(M, 6)` (background + 5 shapes).

    image (3, H, W) --pad P//2--> (3, H+P-1, W+P-1) --every (i, j)--> patches (H·W, 3, P, P) --CNN--> (H·W, 6) --argmax--> (H, W)

The patch of pixel `(i, j)` is `padded[:, i:i+P, j:j+P]`. Run the patches through the model in batches of
`batch_size` (inside `with minidl.no_grad():`, `model(Tensor(batch)).numpy()`), and count the **forward passes**:
every patch is one CNN evaluation (batching runs many at once, but the network still does each one's full work).

Write `my_sliding_window_segment(model, image, batch_size)` → `(labels (H, W) int64, number of patches classified)`.
The check uses two fake "models" that return a pixel of the patch as its scores (the centre pixel: labels =
argmax over channels of the image; the top-left pixel: the zero padding must be right) and compares with the
frozen labels of the committed classifier on a 32×32 image. Then the given code segments a 64×64 scene with your
function and with **one** forward pass of the committed FCN, and times both.
"""),
    ("answer", "sliding", """
def my_sliding_window_segment(model, image, batch_size=1024):
    # image (C, H, W) -> labels (H, W) int64, number of patches classified (= CNN forward passes)
    C, H, W = image.shape
    P = model.patch_size
    ### BEGIN SOLUTION
    half = P // 2
    padded = np.pad(image, ((0, 0), (half, half), (half, half)))
    centres = [(i, j) for i in range(H) for j in range(W)]
    labels = np.empty(H * W, dtype=np.int64)
    passes = 0
    with minidl.no_grad():
        for start in range(0, H * W, batch_size):
            batch = np.stack([padded[:, i:i + P, j:j + P] for i, j in centres[start:start + batch_size]])
            labels[start:start + len(batch)] = model(Tensor(batch)).numpy().argmax(axis=1)
            passes += len(batch)
    return labels.reshape(H, W), passes
    ### END SOLUTION
"""),
    ("check", "sliding", """
class PixelOfPatch:
    # a fake "classifier": the scores of a patch are the channels of one of its pixels
    def __init__(self, patch_size, row, col):
        self.patch_size, self.row, self.col = patch_size, row, col
    def __call__(self, patches):
        patches = patches.numpy() if isinstance(patches, Tensor) else np.asarray(patches)
        return Tensor(patches[:, :, self.row, self.col])
    def eval(self):
        return self

img = np.random.default_rng(3).random((4, 7, 9)).astype(np.float32)      # 4 "classes", a 7×9 image
labels, passes = my_sliding_window_segment(PixelOfPatch(5, 2, 2), img, batch_size=10)
check_close("centre of each patch (P=5): labels = argmax over channels of the image", labels, img.argmax(axis=0), tol=0)
labels, _ = my_sliding_window_segment(PixelOfPatch(5, 0, 0), img, batch_size=10)
expected = np.pad(img, ((0, 0), (2, 2), (2, 2)))[:, :7, :9].argmax(axis=0)   # 2 rows/cols up-left, zeros outside
check_close("top-left of each patch: the patch of pixel (i, j) is padded[:, i:i+P, j:j+P], zero padding", labels,
            expected, tol=0)
check_close("forward passes counted: one per pixel", np.array(passes), np.array(7 * 9), tol=0)

(case,) = cases["sliding window"]
labels, passes = my_sliding_window_segment(patch_classifier, *case.args)
if labels.shape != case.expected.shape:
    raise AssertionError(f"my_sliding_window_segment: labels have shape {labels.shape}, expected {case.expected.shape}")
check_at_least("agreement with the frozen sliding-window labels (committed classifier, 32×32 crop)",
               (labels == case.expected).mean(), 0.995,
               hint="centre each patch on its pixel: pad P//2 zeros on every side, patch = padded[:, i:i+P, j:j+P]; "
                    "the label is the argmax of the model's scores over axis 1")

# given: the price of the sliding window, on a full 64×64 scene, against one pass of the FCN
scene_data = ShapesDataset(1, 64, "scene", seed=20, target_keys="semantic_mask")
scene, scene_mask = scene_data[0]
start = time.perf_counter()
sliding_labels, sliding_passes = my_sliding_window_segment(patch_classifier, scene)
sliding_seconds = time.perf_counter() - start
start = time.perf_counter()
with minidl.no_grad():
    fcn_labels = fcn(Tensor(scene[None])).numpy()[0].argmax(axis=0)
fcn_seconds = time.perf_counter() - start
print(f"sliding window: {sliding_passes} patch classifications (forward passes), {sliding_seconds:.2f} s")
print(f"fully convolutional: 1 forward pass of the whole image, {fcn_seconds:.3f} s "
      f"({sliding_seconds / fcn_seconds:.0f}× faster)")
fig, axes = plt.subplots(1, 2, figsize=(8, 1.8))
methods = ["FCN (1 pass)", f"sliding window ({sliding_passes} patches)"]
axes[0].barh(methods, [1, sliding_passes], color=["tab:blue", "tab:red"])
axes[0].set(xscale="log", title="forward passes per 64×64 image (log)")
axes[1].barh(methods, [fcn_seconds, sliding_seconds], color=["tab:blue", "tab:red"])
axes[1].set(xscale="log", title="seconds per 64×64 image (log)")
plt.tight_layout()
plt.show()
show([[scene, scene_mask, sliding_labels, fcn_labels]],
     ["64×64 scene", "ground truth", "sliding window (yours)", "committed FCN (one pass)"], size=2.2)
"""),
    ("md", """
## Part 4 — per-pixel cross-entropy (2 points)

A segmentation network is trained like a classifier — at every pixel. For scores `s` `(N, C, H, W)` (a Tensor)
and labels `y` `(N, H, W)` (ints):

    log p[n, c, i, j] = s[n, c, i, j] − log Σ_c' exp(s[n, c', i, j])        (log-softmax over axis 1)
    loss = − Σ_(n,i,j counted) w[y] · log p[n, y[n,i,j], i, j]  /  Σ_(n,i,j counted) w[y]

* **stable**: subtract the maximum over the classes first (`s.max(axis=1, keepdims=True).detach()`); the check
  feeds scores of ±1000 with overflow turned into an error;
* **ignore_index**: pixels whose label equals it (e.g. 255, "void" in PASCAL VOC) add nothing, and are not
  counted in the mean; `None` counts every pixel;
* **weight** `(C,)`, optional (`None` = all ones): the loss of a pixel of class `c` counts `w[c]` times and the mean
  divides by the sum of the counted pixels' weights (PyTorch's rule). Why: ~90 % of a shapes scene is background;
  a plain mean lets the network sit for a long time at "everything is background". Part 6 trains with the
  background weighted 0.2.

Use minidl tensor operations (`.max`, `.exp`, `.sum`, `.log`, arithmetic, and indexing with four integer arrays
`logp[n, y[n, i, j], i, j]` — `np.nonzero(mask)` gives `n, i, j` of the counted pixels). The autograd engine
does the backward; the check compares the values with frozen results of `F.cross_entropy` and the gradient with
central differences in float64.
"""),
    ("answer", "pixel_loss", """
def my_pixel_cross_entropy(scores, labels, weight=None, ignore_index=None):
    # scores: (N, C, H, W) Tensor; labels: (N, H, W) ints; weight: (C,) array or None -> scalar Tensor
    labels = np.asarray(labels)
    ### BEGIN SOLUTION
    shifted = scores - scores.max(axis=1, keepdims=True).detach()
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    counted = np.ones(labels.shape, dtype=bool) if ignore_index is None else labels != ignore_index
    n, i, j = np.nonzero(counted)
    y = labels[n, i, j]
    w = np.ones(scores.shape[1]) if weight is None else np.asarray(weight, dtype=np.float64)
    pixel_weight = w[y].astype(scores.dtype)
    return -(log_probs[n, y, i, j] * pixel_weight).sum() / float(pixel_weight.sum())
    ### END SOLUTION
"""),
    ("check", "pixel_loss", """
check_cases("my_pixel_cross_entropy", lambda s, y: my_pixel_cross_entropy(tensor(s), y), cases["pixel ce"],
            tol=1e-10, hint="log-softmax over the class axis 1, pick each pixel's label, mean over all N*H*W pixels")
check_cases("my_pixel_cross_entropy at scores of ±1000, stable", lambda s, y: my_pixel_cross_entropy(tensor(s), y),
            cases["pixel ce extreme"], tol=1e-10, strict=True)
check_cases("my_pixel_cross_entropy, ignore_index=255", lambda s, y: my_pixel_cross_entropy(tensor(s), y, ignore_index=255),
            cases["pixel ce ignore"], tol=1e-10,
            hint="ignored pixels add no loss and are not counted in the mean")
check_cases("my_pixel_cross_entropy, class weights and ignore_index=255",
            lambda s, y, w: my_pixel_cross_entropy(tensor(s), y, weight=w, ignore_index=255),
            cases["pixel ce weighted"], tol=1e-10,
            hint="weighted mean: sum of w[y] * loss over the counted pixels, divided by the sum of their w[y]")
s0, y0, w0 = cases["pixel ce weighted"][0].args
check_gradients("my_pixel_cross_entropy gradient (weights, ignore_index)",
                lambda s: my_pixel_cross_entropy(s, y0, weight=w0, ignore_index=255), [s0])
"""),
    ("md", """
## Part 5 — confusion matrix and mean IoU (2 points)

Pixel accuracy is a poor measure when 90 % of the pixels are background ("all background" scores 90 %). The
standard measure is the **mean intersection over union** over the classes, computed from one confusion matrix
over all the pixels of the data set (PASCAL VOC's definition):

    cm[t, p] = number of pixels of true class t predicted as p          (C, C), rows truth, columns prediction
    IoU_c = TP / (TP + FP + FN) = cm[c, c] / (row c sum + column c sum − cm[c, c])
    mIoU = mean of IoU_c over the classes present (in the truth or the prediction)

A class that appears neither in the truth nor in the prediction has IoU 0/0: return **NaN** for it in
`my_iou_per_class` and leave it out of the mean. If no class is present at all (no pixel is counted, e.g. every
target is `ignore_index`), `my_mean_iou` returns `miou = NaN` (tested).

`ignore_index` looks at the **target** only: a pixel whose target equals it is dropped from the confusion
matrix whatever its prediction (tested with predictions of 255 at those pixels). A *prediction* equal to
`ignore_index` is not special: at a counted pixel every prediction must be a class in `0 … num_classes−1` (a
network's argmax always is; what happens otherwise — `minidl.metrics` raises a `ValueError` — is not tested).

Write `my_confusion_matrix(pred, target, num_classes, ignore_index)` (any shapes; `np.add.at` or `np.bincount`
of `t * C + p`), `my_iou_per_class(cm)` and `my_mean_iou(pred, target, num_classes, ignore_index)` →
`(miou, iou per class)`. The check compares with frozen results of `minidl.metrics` (the same semantics).
"""),
    ("answer", "miou", """
def my_confusion_matrix(pred, target, num_classes, ignore_index=None):
    # pred, target: int arrays of the same shape -> (num_classes, num_classes) int64, [truth, prediction]
    ### BEGIN SOLUTION
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (target, pred), 1)
    return cm
    ### END SOLUTION


def my_iou_per_class(cm):
    # (C, C) confusion matrix -> (C,) float IoU per class, NaN where the class is in neither truth nor prediction
    ### BEGIN SOLUTION
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    return np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    ### END SOLUTION


def my_mean_iou(pred, target, num_classes, ignore_index=None):
    # -> (miou: float, per_class: (C,) array)
    ### BEGIN SOLUTION
    per_class = my_iou_per_class(my_confusion_matrix(pred, target, num_classes, ignore_index))
    present = ~np.isnan(per_class)
    return (float(per_class[present].mean()) if present.any() else float("nan")), per_class
    ### END SOLUTION
"""),
    ("check", "miou", """
check_cases("my_confusion_matrix", lambda p, t: my_confusion_matrix(p, t, 5), cases["confusion matrix"], tol=0,
            hint="rows are the truth, columns the prediction: cm[t, p] += 1 for every pixel")
check_cases("my_confusion_matrix, ignore_index=255", lambda p, t: my_confusion_matrix(p, t, 5, 255),
            cases["confusion matrix ignore"], tol=0, hint="skip the pixels whose *target* is ignore_index")
nan_as = lambda v: np.nan_to_num(np.asarray(v, dtype=np.float64), nan=-1.0)      # NaN compared as -1
check_cases("my_iou_per_class (NaN shown as -1)", lambda p, t: nan_as(my_iou_per_class(my_confusion_matrix(p, t, 5))),
            cases["iou per class"], tol=1e-12,
            hint="IoU = TP / (row sum + column sum - TP); NaN (not 0) for a class absent from truth and prediction")
check_cases("my_mean_iou", lambda p, t: np.array(my_mean_iou(p, t, 5)[0]), cases["mean iou"], tol=1e-12,
            hint="the mean over the classes whose IoU is not NaN (np.isnan), from one confusion matrix of all pixels")
check_cases("my_mean_iou, ignore_index=255", lambda p, t: np.array(my_mean_iou(p, t, 5, 255)[0]),
            cases["mean iou ignore"], tol=1e-12)
truth = np.random.default_rng(0).integers(0, 4, (3, 8, 8))
check_close("a perfect prediction has mIoU 1", np.array(my_mean_iou(truth, truth, 6)[0]), np.array(1.0), tol=0)
# ignore_index concerns the target: the prediction at an ignored pixel does not matter, even when it is 255
(case,) = cases["confusion matrix ignore"][:1]
p, t = case.args
check_close("confusion matrix: predictions of 255 at the ignored pixels change nothing",
            my_confusion_matrix(np.where(t == 255, 255, p), t, 5, 255), case.expected, tol=0)
empty = my_mean_iou(truth, np.full_like(truth, 255), 6, 255)[0]
if not np.isnan(empty):
    raise AssertionError(f"my_mean_iou: with every target ignored no class is present, expected NaN, got {empty}")
print("my_mean_iou with every target ignored: NaN — OK")
"""),
    ("md", """
## Part 6 — a fully convolutional network, down and up (3 points)

Now build the network of the lecture: convolutions only, so the whole image goes through once and every pixel
gets its scores, with a **downsampling** half (stride-2 convolutions: cheap, each cell sees a large receptive
field) and an **upsampling** half (transpose convolutions, part 2's op with learned filters) back to `H×W`,
and a final **1×1 convolution** that turns each pixel's feature vector into class scores. For 32×32 inputs:

| layer | what | output shape |
|---|---|---|
| input | image | (N, 3, 32, 32) |
| down 1 | 3×3 conv, stride 2, padding 1 (+ a 3×3 conv) | (N, 16, 16, 16) |
| down 2 | 3×3 conv, stride 2, padding 1 (+ a 3×3 conv) | (N, 32, 8, 8) |
| down 3 | 3×3 conv, stride 2, padding 1 (+ a 3×3 conv) | (N, 64, 4, 4) |
| up 3 | 4×4 transpose conv, stride 2, padding 1 (+ down 2's output: a skip) | (N, 32, 8, 8) |
| up 2 | 4×4 transpose conv, stride 2, padding 1 (+ down 1's output) | (N, 16, 16, 16) |
| up 1 | 4×4 transpose conv, stride 2, padding 1 | (N, 16, 32, 32) |
| classifier | 1×1 conv | (N, num_classes, 32, 32) |

A 4×4 transpose conv with stride 2 and padding 1 doubles the size exactly: `(H−1)·2 − 2 + 4 = 2H`. Put
`nn.BatchNorm2d` and `nn.ReLU` after every conv and transpose conv except the 1×1 classifier. The convs and
transpose convs that a batch norm follows get `bias=False` (batch norm subtracts the mean, which cancels a
bias); the 1×1 classifier has no batch norm after it and **keeps** its bias (the default). Subtract 0.5 from
the input (pixels are in [0, 1]).

The "skips" in the table add the encoder's feature map of the same size to the decoder's feature map
(e.g. `u = up3(d3) + d2`; the reference solution does this). That is a U-Net-like skip connection (U-Net
concatenates the two maps instead of adding them); the FCN of Long et al. does something related but different:
it adds *class-score* maps, computed by 1×1 score layers from earlier layers, to the upsampled final scores.
Skips are optional here: the check does not require them, and this notebook does not measure what they change.

Use `nn.Conv2d(c_in, c_out, k, stride=, padding=, bias=, rng=rng)`, `nn.ConvTranspose2d(...)` with the same
arguments, and `nn.Sequential`. minidl's own segmentation network and its building blocks (`FCN`,
`downsampling_backbone`, `conv_relu`, `transpose_conv_relu` of `minidl.models.blocks`) are off limits; helpers
you define yourself may have any name.

Write `MySegmenter(num_classes, rng)`: any down-and-up design in this spirit that maps `(N, 3, H, W)` to
`(N, num_classes, H, W)` for H, W divisible by 8. The given loop trains it for 800 steps (Adam, batches of 16,
your part-4 loss with the background weighted 0.2) on 1,200 scenes of 32×32 with three shape classes
(circle, square, triangle: 4 classes per pixel), flipped and rotated, in 20–40 s. The check expects:

* the output shape: a `(2, 3, 32, 32)` input gives scores `(2, 4, 32, 32)`;
* the training loss to fall at least **2×**: the mean loss of the last 50 steps at most half that of the
  first 50 steps;
* a mean IoU on 100 held-out scenes of at least **0.40** (computed after subtracting `log(weight)` from the
  scores to undo the class weights) — predicting "background" everywhere scores about 0.22.
"""),
    ("answer", "fcn", """
class MySegmenter(nn.Module):
    def __init__(self, num_classes, rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        ### BEGIN SOLUTION
        def norm_relu(layer, channels):
            return nn.Sequential(layer, nn.BatchNorm2d(channels), nn.ReLU())

        def down(c_in, c_out):      # halves H and W
            return nn.Sequential(
                norm_relu(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False, rng=rng), c_out),
                norm_relu(nn.Conv2d(c_out, c_out, 3, padding=1, bias=False, rng=rng), c_out))

        def up(c_in, c_out):        # doubles H and W
            return norm_relu(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False, rng=rng), c_out)

        self.down1, self.down2, self.down3 = down(3, 16), down(16, 32), down(32, 64)
        self.up3, self.up2, self.up1 = up(64, 32), up(32, 16), up(16, 16)
        self.classifier = nn.Conv2d(16, num_classes, 1, rng=rng)
        ### END SOLUTION

    def forward(self, x):
        # x (N, 3, H, W) Tensor in [0, 1] -> class scores (N, num_classes, H, W)
        ### BEGIN SOLUTION
        d1 = self.down1(x - 0.5)             # (N, 16, H/2, W/2)
        d2 = self.down2(d1)                  # (N, 32, H/4, W/4)
        d3 = self.down3(d2)                  # (N, 64, H/8, W/8)
        u = self.up3(d3) + d2                # (N, 32, H/4, W/4)
        u = self.up2(u) + d1                 # (N, 16, H/2, W/2)
        return self.classifier(self.up1(u))  # (N, num_classes, H, W)
        ### END SOLUTION
"""),
    ("check", "fcn", """
net = MySegmenter(len(FCN_CLASSES) + 1, rng=0)
with minidl.no_grad():
    out = net(Tensor(np.zeros((2, 3, 32, 32), np.float32)))
if tuple(out.shape) != (2, 4, 32, 32):
    raise AssertionError(f"MySegmenter: a (2, 3, 32, 32) input gave scores of shape {tuple(out.shape)}, expected "
                         "(2, 4, 32, 32): as many scores as classes, at every pixel of the input")
print("MySegmenter: (2, 3, 32, 32) -> (2, 4, 32, 32) — OK")

def scenes(n, seed):        # n 32×32 scenes with three shape classes -> images (n, 3, 32, 32), masks (n, 32, 32)
    data = ShapesDataset(n, 32, "scene", seed=seed, classes=FCN_CLASSES, target_keys="semantic_mask")
    items = [data[i] for i in range(n)]
    return np.stack([im for im, _ in items]), np.stack([m for _, m in items])

start = time.perf_counter()
train_x, train_y = scenes(1200, 0)
test_x, test_y = scenes(100, 1)
class_weight = np.array([0.2, 1.0, 1.0, 1.0])
opt = optim.Adam(net.parameters(), lr=1e-2)
rng = np.random.default_rng(0)
steps, losses = 800, []
net.train()
for step in range(steps):
    for group in opt.param_groups:          # a short warm-up, then cosine decay
        group["lr"] = 1e-2 * min(1.0, (step + 1) / 50) * 0.5 * (1 + np.cos(np.pi * step / steps))
    idx = rng.integers(0, len(train_x), 16)
    xb, yb = np.rot90(train_x[idx], step % 4, axes=(2, 3)), np.rot90(train_y[idx], step % 4, axes=(1, 2))
    if step % 8 >= 4:                       # rotations and flips: the shapes do not care
        xb, yb = xb[..., ::-1], yb[..., ::-1]
    loss = my_pixel_cross_entropy(net(Tensor(np.ascontiguousarray(xb))), np.ascontiguousarray(yb), weight=class_weight)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
print(f"trained {steps} steps in {time.perf_counter() - start:.1f} s (with making the scenes)")
net.eval()
with minidl.no_grad():
    scores = net(Tensor(test_x)).numpy()
# the weighted loss makes every object a little too big: subtract log(weight) from the scores to undo it
predicted = (scores - np.log(class_weight)[None, :, None, None]).argmax(axis=1)

from minidl.metrics import mean_iou         # the library's metric (your my_mean_iou agrees, part 5)
baseline, _ = mean_iou(np.zeros_like(test_y), test_y, 4)
miou, per_class = mean_iou(predicted, test_y, 4)
print(f"all-background baseline mIoU {baseline:.3f}; yours per class:",
      ", ".join(f"{n} {v:.2f}" for n, v in zip(CLASS_NAMES, per_class)))
check_decreases("training loss, first 50 steps -> last 50", [np.mean(losses[:50]), np.mean(losses[-50:])], 2)
check_at_least("mean IoU on 100 held-out 32×32 scenes", miou, 0.40,
               hint="down with stride-2 convs, up with 4×4 stride-2 transpose convs, batch norm + ReLU after each, "
                    "a 1×1 conv to class scores at full resolution")

# the committed FCN (trained on 64×64 scenes; 6 scores: background + 5 shapes, of which the first 4 are used here):
# shown on the same scenes upsampled ×2
shown = [k for k in range(len(test_y)) if len(np.unique(test_y[k])) >= 3][:3]      # scenes with 2+ classes of shape
with minidl.no_grad():
    committed = fcn(Tensor(test_x[shown].repeat(2, axis=2).repeat(2, axis=3))).numpy()[:, :4, ::2, ::2].argmax(axis=1)
show([[test_x[k], test_y[k], predicted[k], c] for k, c in zip(shown, committed)],
     ["held-out scene", "ground truth", "MySegmenter (yours)", "committed FCN (input ×2)"], size=1.9, classes=4)
"""),
    ("md", """
## What else lecture 8 does with these pieces, in minidl

`minidl.models.segmentation.FCN` is the encoder–decoder of part 6 with options: `upsampling="unpool"` (a
max-pool encoder that remembers its switches and a max-unpool decoder, SegNet's design — part 1's ops) or
`"transpose"` (part 2's), skip connections, and a half-resolution start whose scores are bilinearly
interpolated. `benchmarks/train_lecture8.py --task fcn_shapes` trains the committed one (mIoU ≈ 0.9 on 64×64
scenes with five classes), and `python -m minidl.tour --only segmentation` compares it with the sliding window.
"""),
]


# ---- frozen expected results -------------------------------------------------------------------------

def reference_cases():
    import minidl.functional as F
    from minidl import metrics, tensor
    from minidl.data import ShapesDataset
    from minidl.models import load_pretrained
    from minidl.models.segmentation import sliding_window_segment

    cases = {}
    # part 1: pooling and unpooling
    shapes = [((2, 3, 4, 6), 2), ((1, 2, 6, 3), 3), ((1, 1, 2, 2), 4)]
    cases["unpool nearest"] = [((x, s), F.unpool_nearest(tensor(x), s).numpy()) for x, s in
                               ((np.random.default_rng(i).standard_normal(shape), s) for i, (shape, s) in enumerate(shapes))]
    cases["unpool bed of nails"] = [((x, s), F.unpool_bed_of_nails(tensor(x), s).numpy()) for x, s in
                                    ((np.random.default_rng(10 + i).standard_normal(shape), s)
                                     for i, (shape, s) in enumerate(shapes))]
    pool_inputs = [(np.random.default_rng(20).standard_normal((2, 3, 4, 6)), 2),
                   (np.random.default_rng(21).standard_normal((1, 2, 6, 9)), 3),
                   (np.random.default_rng(22).integers(0, 3, (2, 2, 4, 4)).astype(np.float64), 2)]   # many ties
    pooled = [F.max_pool2d(tensor(x), k, return_indices=True) for x, k in pool_inputs]
    cases["max pool values"] = [((x, k), v.numpy()) for (x, k), (v, _) in zip(pool_inputs, pooled)]
    cases["max pool switches"] = [((x, k), np.asarray(i.numpy(), dtype=np.int64)) for (x, k), (_, i) in zip(pool_inputs, pooled)]
    unpool = []
    for (x, k), (v, i) in zip(pool_inputs, pooled):
        switches = np.asarray(i.numpy(), dtype=np.int64)
        values = np.random.default_rng(30 + k).standard_normal(v.shape)          # new values at the switches
        h, w = x.shape[2:]
        unpool.append(((values, switches, h, w), F.max_unpool2d(tensor(values), switches, k, output_size=(h, w)).numpy()))
    cases["max unpool"] = unpool

    # part 2: transpose convolution, weight (C_in, C_out, k, k)
    def transpose(x, w, s, p, op):
        return F.conv_transpose2d(tensor(x), tensor(w), stride=s, padding=p, output_padding=op).numpy()
    rng = np.random.default_rng(40)
    x, w = rng.standard_normal((1, 1, 2, 2)), rng.standard_normal((1, 1, 3, 3))
    cases["transpose conv lecture"] = [((x, w, 2, 1, 1), transpose(x, w, 2, 1, 1))]
    configs = [((2, 3, 4, 5), (3, 2, 4, 4), 2, 1, 0), ((1, 2, 3, 3), (2, 4, 3, 3), 1, 1, 0),
               ((2, 2, 3, 4), (2, 3, 3, 3), 3, 0, 2), ((1, 3, 2, 3), (3, 1, 2, 2), 2, 0, 0),
               ((1, 2, 3, 3), (2, 2, 5, 5), 2, 2, 1)]
    out = []
    for t, (xs, ws, s, p, op) in enumerate(configs):
        rng = np.random.default_rng(50 + t)
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        out.append(((x, w, s, p, op), transpose(x, w, s, p, op)))
    cases["transpose conv"] = out

    # part 3: the committed patch classifier on a 32×32 crop of a scene
    model = load_pretrained("patch_classifier_shapes")
    image = ShapesDataset(1, 64, "scene", seed=20, target_keys="semantic_mask")[0][0][:, 16:48, 16:48]
    image = np.ascontiguousarray(image)
    cases["sliding window"] = [((image,), sliding_window_segment(model, image[None])[0])]

    # part 4: per-pixel cross-entropy
    def ce(s, y, w=None, ignore=-100):
        return F.cross_entropy(tensor(s), y, weight=w, ignore_index=ignore)
    cases["pixel ce"] = trials(ce, lambda rng: (rng.standard_normal((2, 4, 3, 5)) * 3, rng.integers(0, 4, (2, 3, 5))),
                               range(3))
    cases["pixel ce extreme"] = trials(ce, lambda rng: (rng.standard_normal((2, 3, 4, 4)) * 1000,
                                                        rng.integers(0, 3, (2, 4, 4))), [10])

    def with_void(rng, shape, classes):
        y = rng.integers(0, classes, shape)
        y[rng.random(shape) < 0.3] = 255
        return y
    cases["pixel ce ignore"] = trials(lambda s, y: ce(s, y, ignore=255),
                                      lambda rng: (rng.standard_normal((2, 4, 3, 5)) * 3, with_void(rng, (2, 3, 5), 4)),
                                      range(20, 23))
    cases["pixel ce weighted"] = trials(lambda s, y, w: ce(s, y, w, 255),
                                        lambda rng: (rng.standard_normal((2, 4, 3, 5)) * 3, with_void(rng, (2, 3, 5), 4),
                                                     rng.uniform(0.2, 2.0, 4)), range(30, 33))

    # part 5: confusion matrix, IoU per class, mIoU (5 classes; class 4 absent from some trials)
    def labels(rng, classes=4, void=False):
        t = rng.integers(0, classes, (2, 6, 7))
        p = np.where(rng.random(t.shape) < 0.6, t, rng.integers(0, classes, t.shape))
        if void:
            t[rng.random(t.shape) < 0.2] = 255
        return p, t
    cases["confusion matrix"] = trials(lambda p, t: metrics.confusion_matrix(p, t, 5), labels, range(40, 42))
    cases["confusion matrix ignore"] = trials(lambda p, t: metrics.confusion_matrix(p, t, 5, 255),
                                              lambda rng: labels(rng, 5, True), range(42, 44))
    cases["iou per class"] = trials(
        lambda p, t: np.nan_to_num(metrics.iou_per_class(metrics.confusion_matrix(p, t, 5)), nan=-1.0),
        lambda rng: labels(rng, int(rng.integers(3, 6))), range(50, 54))
    cases["mean iou"] = trials(lambda p, t: np.array(metrics.mean_iou(p, t, 5)[0]),
                               lambda rng: labels(rng, int(rng.integers(3, 6))), range(50, 54))
    cases["mean iou ignore"] = trials(lambda p, t: np.array(metrics.mean_iou(p, t, 5, 255)[0]),
                                      lambda rng: labels(rng, 4, True), range(60, 62))
    return cases


# ---- mutations that tests/test_grade.py grades and expects to fail exactly these parts ---------------

MUTATIONS = {
    "switches as the index inside the window": (
        "unpool", "return values, (rows * W + cols).astype(np.int64)", "return values, best.astype(np.int64)",
        {"unpool"}, "my_max_pool2d_with_switches: switches", ["unpool"]),
    "transpose conv without cropping the padding": (
        "transpose_conv", "return full[:, :, padding:padding + out_h, padding:padding + out_w]",
        "return full[:, :, :out_h, :out_w]", {"transpose_conv"}, "my_conv_transpose2d", ["transpose_conv"]),
    "absent classes count as IoU 0": (
        "miou", "return np.where(union > 0, tp / np.maximum(union, 1), np.nan)",
        "return np.where(union > 0, tp / np.maximum(union, 1), 0.0)", {"miou"}, "my_iou_per_class", ["miou"]),
}
