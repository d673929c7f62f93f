"""Train the small CNN used by lecture 12's class-based visualizations and save its weights.

    python benchmarks/train_vis_classifier.py [--train 8000] [--epochs 16] [--out minidl/weights/shapes_classifier.npz]

Data: ``ShapesDataset(mode="single")`` 32×32 RGB images of one shape each (5 classes), train
seed 0, test seed 1 (disjoint generators, so the test images are new). Model:
``minidl.models.ShapesClassifier``. Adam, cross-entropy, fixed seeds: rerunning reproduces the
committed ``.npz`` (up to BLAS rounding). The test accuracy is printed and stored in the file
as ``meta_test_accuracy``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minidl import functional as F  # noqa: E402
from minidl import optim, train  # noqa: E402
from minidl.data import ShapesDataset  # noqa: E402
from minidl.models.classifier import SHAPES_CLASSIFIER_WEIGHTS, ShapesClassifier  # noqa: E402


def shapes_arrays(n, seed, size=32):
    """``(images (n, 3, size, size) float32, labels (n,) int64)`` of single-shape images."""
    data = ShapesDataset(n, size=size, mode="single", seed=seed, target_keys="labels")
    images, labels = zip(*(data[i] for i in range(n)))
    return np.stack(images), np.concatenate(labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=8000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--out", default=SHAPES_CLASSIFIER_WEIGHTS)
    args = parser.parse_args(argv)

    x_train, y_train = shapes_arrays(args.train, seed=0)
    x_test, y_test = shapes_arrays(args.test, seed=1)
    rng = np.random.default_rng(0)
    model = ShapesClassifier(rng=rng)
    order_rng = np.random.default_rng(1)

    class Batches:                       # reshuffled every epoch, from a fixed generator
        def __len__(self):
            return -(-len(x_train) // args.batch_size)

        def __iter__(self):
            order = order_rng.permutation(len(x_train))
            for i in range(0, len(order), args.batch_size):
                idx = order[i:i + args.batch_size]
                yield x_train[idx], y_train[idx]

    def test_accuracy(m):
        return float((train.predict(m, x_test, batch_size=200).argmax(1) == y_test).mean())

    opt = optim.Adam(model.parameters(), lr=args.lr)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    start = time.time()
    history = train.fit(model, Batches(), F.cross_entropy, opt, epochs=args.epochs, scheduler=sched,
                        eval_fn=test_accuracy, seed=0)
    accuracy = history["eval"][-1]
    print(f"epochs {args.epochs} x {args.train} images, {time.time() - start:.0f} s; "
          f"test accuracy per epoch {history['eval']}; final {accuracy:.4f}")
    state = {k: np.asarray(v, dtype=np.float32) for k, v in model.state_dict().items()}
    np.savez_compressed(args.out, **state, meta_test_accuracy=np.float64(accuracy),
                        meta_train_images=np.int64(args.train), meta_test_images=np.int64(args.test),
                        meta_epochs=np.int64(args.epochs))
    print(f"saved {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")
    return accuracy


if __name__ == "__main__":
    main()
