"""Freeze the expected results of the notebooks' checks: ``minidl/grade/references/<assignment>.npz``.

A check must not find its expected answer by calling minidl's implementation of the technique at
check time — an answer could call it too. So this script calls the reference implementations
once, on inputs drawn from fixed seeds, and saves inputs and results (``minidl.grade.frozen``).
Run it after changing a case below or an implementation the cases come from; the test suite
recomputes every case and fails when a committed file no longer matches the library.

    python assignments/make_references.py              # rewrite all four files
    python assignments/make_references.py 02_convolution
"""
from __future__ import annotations

import sys

import numpy as np

import minidl
import minidl.functional as F
from minidl import Tensor, nn, ops, tensor, vis
from minidl.grade.frozen import REFERENCES, save_cases
from minidl.kernels.im2col import im2col_reference

import course                      # assignments/course/: notebooks 5–9 (this script's folder is on sys.path)
from course.spec import trials


# ---- 01 autograd -------------------------------------------------------------------------------

def autograd_cases():
    labels = np.array([0, 2, 1, 1, 3])
    sigmoid = lambda x: F.sigmoid(tensor(x))                                  # noqa: E731
    cross_entropy = lambda s, y: F.cross_entropy(tensor(s), y)                # noqa: E731
    return {
        "sigmoid": trials(sigmoid, lambda rng: (rng.standard_normal((4, 5)) * 10,), range(3)),
        "sigmoid extreme": trials(sigmoid, lambda rng: (np.array([-1000.0, 1000.0, 0.0, -40.0, 40.0]),), [0]),
        "cross entropy": trials(cross_entropy, lambda rng: (rng.standard_normal((5, 4)) * 3, labels), range(3)),
        "cross entropy extreme": trials(cross_entropy, lambda rng: (rng.standard_normal((5, 4)) * 1000, labels),
                                        [10]),
    }


# ---- 02 convolution ----------------------------------------------------------------------------

def convolution_cases():
    cases = {}
    for k, stride, pad in [(3, 1, 1), (3, 2, 0), (1, 1, 0), (5, 2, 2)]:
        cases[f"im2col k={k} stride={stride} pad={pad}"] = trials(
            lambda x, k, s, p: im2col_reference(x, (k, k), (s, s), (p, p), (1, 1)),
            lambda rng, k=k, stride=stride, pad=pad: (rng.standard_normal((2, 3, 7, 6)), k, stride, pad), range(2))
    cases["conv2d"] = trials(
        lambda x, w, b, stride, pad: F.conv2d(tensor(x), tensor(w), tensor(b), stride=stride, padding=pad),
        lambda rng: (rng.standard_normal((2, 3, 8, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4), 2, 1),
        range(3))
    return cases


# ---- 03 detection ------------------------------------------------------------------------------

def random_boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(5, 50, (n, 2))], 1)


def detection_cases():
    cases = {"box_iou": trials(lambda a, b: ops.box_iou(a, b),
                               lambda rng: (random_boxes(rng, 7), random_boxes(rng, 5)), range(3))}
    for threshold in (0.3, 0.5, 0.7):
        # seed 1 rounds the scores to one decimal: many ties, which the stable sort must order by index
        cases[f"nms {threshold}"] = trials(
            lambda b, s, t: ops.nms(b, s, t),
            lambda rng, t=threshold: (random_boxes(rng, 60),
                                      np.round(rng.random(60), 1) if rng.integers(2) else rng.random(60), t),
            range(4))
    cases["roi_pool"] = trials(
        lambda f, box: ops.roi_pool(tensor(f[None]), tensor(np.concatenate([[0.0], box])[None]), (3, 3), 0.5).numpy()[0],
        lambda rng: (rng.standard_normal((2, 12, 10)), np.array([*rng.uniform(0, 8, 2), *rng.uniform(10, 22, 2)])),
        range(6))
    return cases


# ---- 04 visualization ----------------------------------------------------------------------------

def visualization_cases():
    from minidl.data import ShapesDataset
    from minidl.models import load_shapes_classifier
    model = load_shapes_classifier()
    for p in model.parameters():
        p.requires_grad = False
    data = ShapesDataset(8, size=32, mode="single", seed=0, target_keys="labels")   # as in the notebook
    images = np.stack([data[i][0] for i in range(8)])

    def some_images(rng):
        return images[rng.choice(8, 4, replace=False)], rng.integers(0, 5, 4)

    cases = {"saliency": trials(lambda x, t: vis.saliency_map(model, x, t), some_images, range(2)),
             "guided backprop": trials(lambda x, t: vis.guided_backprop(model, x, t), some_images, range(3, 5))}
    fooling = []
    for i in range(3):
        with minidl.no_grad():
            target = int(model(Tensor(images[i:i + 1])).numpy()[0].argmin())
        result = vis.fooling_image(model, images[i], target, lr=0.1, max_steps=100, value_range=(0, 1))
        fooling.append(((images[i], target), result.image))
    cases["fooling image"] = fooling
    cases["gram matrix"] = trials(lambda f: vis.gram_matrix(Tensor(f)),
                                  lambda rng: (rng.standard_normal((2, 4, 5, 3)),), range(3))
    weights = {"a": 2.0, "b": 0.5}
    cases["style loss"] = trials(
        lambda fa, fb, ga, gb: vis.style_loss({"a": Tensor(fa), "b": Tensor(fb)}, {"a": ga, "b": gb}, weights),
        lambda rng: (rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5, 2, 3)),
                     0.3 * rng.standard_normal((1, 3, 3)), 0.3 * rng.standard_normal((1, 5, 5))), range(3, 6))
    cases["total variation"] = trials(lambda x: vis.total_variation(Tensor(x)),
                                      lambda rng: (rng.standard_normal((2, 3, 5, 4)),), range(3))

    def features_of(image, layer):
        with minidl.no_grad():
            return nn.forward_until(model, Tensor(image[None]), layer).numpy()

    for layer in ("features.6", "features.10"):
        def loss(x, target, layer=layer, tv_weight=5e-3):
            diff = features_of(x[0], layer) - target
            return (diff * diff).sum() / (target * target).sum() + tv_weight * vis.total_variation(Tensor(x)).item()
        cases[f"inversion loss {layer}"] = trials(
            loss, lambda rng, layer=layer: (rng.random((1, 3, 32, 32)).astype(np.float32),
                                            features_of(images[rng.integers(8)], layer)), range(2))
    return cases


BUILDERS = {"01_autograd": autograd_cases, "02_convolution": convolution_cases,
            "03_detection": detection_cases, "04_visualization": visualization_cases}


def _course_builder(stem):
    return lambda: course.load(stem).reference_cases()


for _stem in course.MODULES:                    # notebooks 5–9: each module has its reference_cases()
    BUILDERS[_stem] = _course_builder(_stem)


def main(argv):
    for name in argv or BUILDERS:
        if name not in BUILDERS:
            print(f"unknown assignment {name!r}; known: {', '.join(BUILDERS)}", file=sys.stderr)
            return 2
        cases = BUILDERS[name]()
        save_cases(REFERENCES / f"{name}.npz", cases)
        print(f"wrote minidl/grade/references/{name}.npz ({sum(len(v) for v in cases.values())} trials)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
