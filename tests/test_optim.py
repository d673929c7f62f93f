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


@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.1, False), (0.1, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_for_a_whole_group_equals_adam_parameter_by_parameter(weight_decay, decoupled, dtype):
    """foreach=True (the moments in flat arrays, one update for many parameters) gives the values
    of foreach=False (Adam._update_one per parameter) bit for bit, step after step — also when a
    parameter misses a gradient on one step (from then on it has taken one step fewer and is
    updated apart from the others) — and the optimizer state holds each parameter's own m and v
    either way."""
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (5,), (2, 3, 3), (1,)]
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    runs = {}
    for foreach in (True, False):
        params = [nn.Parameter(v.copy()) for v in values]
        opt = optim.Adam(params, lr=0.05, weight_decay=weight_decay,
                         decoupled_weight_decay=decoupled, foreach=foreach)
        history = []
        for step in range(6):
            opt.zero_grad()
            loss = sum(((p * p) * (i + 1)).sum() for i, p in enumerate(params))
            loss.backward()
            if step == 3:
                params[1].grad = None                         # no gradient for one parameter
            opt.step()
            history.append([p.data.copy() for p in params])
        runs[foreach] = (history, [(opt.state[id(p)]["m"].copy(), opt.state[id(p)]["v"].copy(),
                                    opt.state[id(p)]["step"]) for p in params])
    for got, expected in zip(runs[True][0], runs[False][0]):
        for a, b in zip(got, expected):
            assert a.dtype == dtype and np.array_equal(a, b)
    for (m1, v1, t1), (m2, v2, t2) in zip(runs[True][1], runs[False][1]):
        assert np.array_equal(m1, m2) and np.array_equal(v1, v2) and t1 == t2


def test_adam_updates_parameters_in_buckets_and_the_rest_one_by_one(monkeypatch):
    """Parameters with a gradient, the same step count and dtype share one flat update; a lone
    parameter (another dtype, or one that missed a step) takes the one-parameter update, with
    moments of its own (not a view keeping a flat array alive); a parameter listed twice sends
    the group parameter by parameter; a group appended after construction is updated too."""
    calls = []
    update_one = optim.Adam._update_one
    monkeypatch.setattr(optim.Adam, "_update_one",
                        staticmethod(lambda group, p, *a: calls.append(p) or update_one(group, p, *a)))

    def step(opt, params, skip=()):
        opt.zero_grad()
        sum((p * p).sum() for p in params).backward()
        for p in skip:
            p.grad = None
        opt.step()

    a, b, c = (nn.Parameter(np.ones(s, np.float32)) for s in (3, (2, 2), 4))
    opt = optim.Adam([a, b, c], lr=0.1)
    step(opt, [a, b, c])
    step(opt, [a, b, c])
    assert calls == []                                               # one flat update
    step(opt, [a, b, c], skip=[c])                                   # c misses a step
    step(opt, [a, b, c])
    assert calls == [c] and opt.state[id(c)]["step"] == 3 and opt.state[id(a)]["step"] == 4
    assert opt.state[id(c)]["m"].base is None                        # its own moments now
    assert opt.state[id(a)]["m"].base is not None                    # a view of the pair's flat m

    calls.clear()
    d = nn.Parameter(np.ones(2, np.float64))                         # another dtype: alone
    opt = optim.Adam([a, b, d], lr=0.1)
    step(opt, [a, b, d])
    assert calls == [d]

    calls.clear()
    opt = optim.Adam([a, b, a], lr=0.1)                              # a listed twice
    step(opt, [a, b])
    assert calls == [a, b, a] and opt.state[id(a)]["step"] == 2

    calls.clear()
    opt = optim.Adam([a], lr=0.1)
    opt.param_groups.append(dict(opt.param_groups[0], params=[b, c]))
    before = b.data.copy()
    step(opt, [a, b, c])
    assert not np.array_equal(b.data, before) and calls == [a]      # [b, c] flat, a alone


def test_adam_rejects_moments_of_another_shape_in_both_forms():
    """A parameter whose data was replaced by an array of another shape keeps moments of the old
    shape: both forms refuse (NumPy's broadcast error), neither broadcasts old moments silently."""
    for foreach in (True, False):
        a, b = nn.Parameter(np.ones(1, np.float32)), nn.Parameter(np.ones(3, np.float32))
        opt = optim.Adam([a, b], lr=0.1, foreach=foreach)
        (a.sum() + b.sum()).backward()
        opt.step()
        a.data = np.ones(5, np.float32)
        opt.zero_grad()
        (a.sum() + b.sum()).backward()
        with pytest.raises(ValueError):
            opt.step()


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
