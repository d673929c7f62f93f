"""Tour chapter: a two-layer MLP learns a non-linear decision boundary (two interleaved spirals).

Shows the whole training loop of minidl: data as arrays, a Sequential model, cross-entropy,
Adam, ``train.fit`` with a progress bar, then the loss curve and the decision regions.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn, optim, train


def spirals(n_per_class=200, classes=3, noise=0.2, rng=0):
    """CS231n's spiral toy data: ``classes`` arms of points in 2-D, labels 0..classes-1."""
    rng = np.random.default_rng(rng)
    X, y = [], []
    for c in range(classes):
        r = np.linspace(0.0, 1.0, n_per_class)
        t = np.linspace(c * 4, (c + 1) * 4, n_per_class) + rng.standard_normal(n_per_class) * noise
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(n_per_class, c))
    return np.concatenate(X).astype(np.float32), np.concatenate(y).astype(np.int64)


def run(report, quick=False, device="cpu"):
    import matplotlib.pyplot as plt

    report.section("1. A multi-layer perceptron on spirals")
    X, y = spirals(rng=0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(2, 100, rng=rng), nn.ReLU(), nn.Linear(100, 100, rng=rng), nn.ReLU(),
                          nn.Linear(100, 3, rng=rng)).to(device)      # fit and predict move the batches there
    epochs = 20 if quick else 300
    order = rng.permutation(len(X))
    batches = [(X[order[i:i + 100]], y[order[i:i + 100]]) for i in range(0, len(X), 100)]
    hist = train.fit(model, batches, F.cross_entropy, optim.Adam(model.parameters(), lr=1e-2),
                     epochs=epochs, seed=0, progress=not quick)
    acc = float((train.predict(model, X).argmax(1) == y).mean())
    report.model("spirals MLP", f"trained during this run ({epochs} epochs, {hist['seconds']:.0f} s)",
                 "it is retrained every run")
    report.text(f"2-100-100-3 ReLU network, Adam lr 1e-2, {epochs} epochs of 6 batches "
                f"({hist['seconds']:.1f} s): training accuracy {acc:.3f}.")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(hist["epoch_loss"])
    ax1.set(xlabel="epoch", ylabel="mean cross-entropy", title="training loss", yscale="log")
    g = np.linspace(-1.1, 1.1, 200, dtype=np.float32)
    gx, gy = np.meshgrid(g, g)
    regions = train.predict(model, np.c_[gx.ravel(), gy.ravel()]).argmax(1).reshape(gx.shape)
    ax2.contourf(gx, gy, regions, alpha=0.3, levels=[-0.5, 0.5, 1.5, 2.5], cmap="brg")
    ax2.scatter(X[:, 0], X[:, 1], c=y, s=8, cmap="brg")
    ax2.set(title=f"decision regions (accuracy {acc:.2f})", aspect="equal")
    report.figure(fig, "Loss curve and the learned decision regions of the MLP.")
    return {"mlp_train_accuracy": acc}
