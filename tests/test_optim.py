"""Optimizers and schedules: update rules against hand-written formulas, convergence, train.fit."""
import math

import numpy as np
import pytest

import minidl.functional as F
from minidl import nn, optim, tensor, train


def quadratic_param(value):
    p = nn.Parameter(np.array(value, dtype=np.float64))
    return p


def test_sgd_momentum_nesterov_weight_decay_rule():
    p = quadratic_param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    v = np.zeros(2)
    x = p.data.copy()
    for step in range(3):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        g = 2 * x + 0.01 * x
        v = g if step == 0 else 0.9 * v + g
        x = x - 0.1 * (g + 0.9 * v)
    assert np.allclose(p.data, x)


def test_adam_and_adamw_rule():
    for cls, decoupled in ((optim.Adam, False), (optim.AdamW, True)):
        p = quadratic_param([0.5, 3.0])
        opt = cls([p], lr=0.01, weight_decay=0.1)
        m = v = np.zeros(2)
        x = p.data.copy()
        for t in range(1, 4):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
            g = 2 * x
            if decoupled:
                x = x * (1 - 0.01 * 0.1)
            else:
                g = g + 0.1 * x
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            x = x - 0.01 / (1 - 0.9 ** t) * m / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        assert np.allclose(p.data, x), cls.__name__


def test_optimizers_minimize_a_quadratic():
    for make in (lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
                 lambda ps: optim.Adam(ps, lr=0.1)):
        p = quadratic_param([3.0, -4.0])
        opt = make([p])
        for _ in range(300):
            opt.zero_grad()
            ((p - 1.0) ** 2).sum().backward()
            opt.step()
        assert np.allclose(p.data, 1.0, atol=1e-3)


def test_param_groups_and_skips_params_without_grad():
    a, b = quadratic_param([1.0]), quadratic_param([1.0])
    opt = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b]}], lr=0.0)
    (a * 2).sum().backward()
    opt.step()
    assert a.data[0] == pytest.approx(-1.0) and b.data[0] == 1.0


def test_schedulers():
    p = quadratic_param([1.0])
    opt = optim.SGD([p], lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt2 = optim.SGD([p], lr=1.0)
    cos = optim.CosineAnnealingLR(opt2, T_max=4, eta_min=0.1)
    for _ in range(2):
        cos.step()
    assert cos.get_last_lr()[0] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 2)) / 2)


def test_bad_hyperparameters():
    p = quadratic_param([1.0])
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)


def test_fit_learns_xor_like_data_and_is_seeded():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]

    def run():
        m = nn.Sequential(nn.Linear(2, 32, rng=0), nn.ReLU(), nn.Linear(32, 2, rng=1))
        hist = train.fit(m, batches, F.cross_entropy, optim.Adam(m.parameters(), lr=0.03), epochs=25,
                         progress=False, seed=0,
                         eval_fn=lambda mod: float((train.predict(mod, X).argmax(1) == y).mean()))
        return hist

    h1, h2 = run(), run()
    assert h1["loss"] == h2["loss"]
    assert h1["epoch_loss"][-1] < 0.3 * h1["epoch_loss"][0]
    assert h1["eval"][-1] > 0.95


# fit() with NaN/infinite losses and weights (raise / skip): tests/test_train_faults.py
