"""Losses: values against hand-written NumPy formulas, gradchecks, options, bad input."""
import numpy as np
import pytest

import minidl.functional as F
from minidl import tensor
from minidl.gradcheck import gradcheck

R = np.random.default_rng(2)


def np_log_softmax(s, axis=1):
    s = s - s.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def test_cross_entropy_value_matches_formula():
    s, y = R.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    expected = -np_log_softmax(s)[np.arange(5), y].mean()
    assert F.cross_entropy(tensor(s), y).item() == pytest.approx(expected, rel=1e-12)
    assert F.cross_entropy(tensor(s), tensor(y), reduction="sum").item() == pytest.approx(expected * 5)
    per = F.cross_entropy(tensor(s), y, reduction="none").numpy()
    assert np.allclose(per, -np_log_softmax(s)[np.arange(5), y])


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    s, y = R.standard_normal((3, 4)), np.array([2, 0, 1])
    x = tensor(s, requires_grad=True)
    F.cross_entropy(x, y, reduction="sum").backward()
    p = np.exp(np_log_softmax(s))
    p[np.arange(3), y] -= 1
    assert np.allclose(x.grad.numpy(), p)


def test_cross_entropy_weights_and_ignore_index():
    s, y = R.standard_normal((6, 3)), np.array([0, 1, 2, -100, 1, 0])
    w = np.array([0.2, 1.0, 3.0])
    valid = y != -100
    lp = np_log_softmax(s)[np.arange(6)[valid], y[valid]]
    expected = -(w[y[valid]] * lp).sum() / w[y[valid]].sum()   # PyTorch's weighted mean
    got = F.cross_entropy(tensor(s), y, weight=w, ignore_index=-100).item()
    assert got == pytest.approx(expected, rel=1e-12)
    x = tensor(s, requires_grad=True)
    F.cross_entropy(x, y, weight=w).backward()
    assert np.all(x.grad.numpy()[3] == 0)          # ignored row: no gradient


def test_cross_entropy_ignored_position_with_minus_inf_class_0_adds_nothing():
    """An ignored position stands in class 0 for its label; a −∞ score there (a masked-out class)
    must not turn the loss into 0 · (−∞) = NaN — PyTorch gives the other positions' loss."""
    s = np.array([[-np.inf, 1.0, 2.0], [0.5, 1.0, -1.0]])
    y = np.array([-100, 1])
    expected = -np_log_softmax(s[1:])[0, 1]
    for reduction, want in (("mean", expected), ("sum", expected)):
        assert F.cross_entropy(tensor(s), y, reduction=reduction).item() == pytest.approx(want, rel=1e-12)
    per = F.cross_entropy(tensor(s), y, reduction="none").numpy()
    assert per[0] == 0 and per[1] == pytest.approx(expected, rel=1e-12)
    x = tensor(s, requires_grad=True)
    F.cross_entropy(x, y).backward()
    assert np.all(x.grad.numpy()[0] == 0) and np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradcheck_4d_segmentation(reduction, device):
    s = R.standard_normal((2, 3, 4, 5))
    y = R.integers(0, 3, (2, 4, 5))
    y[0, 0, 0] = 255
    w = np.array([1.0, 2.0, 0.5])
    gradcheck(lambda a: F.cross_entropy(a, y, weight=w, ignore_index=255, reduction=reduction), [s],
              device=device)


def test_cross_entropy_uint8_labels_equal_int64_labels():
    """Small-int labels (uint8 masks, 255 ignored) index the label scores as int64 labels do: the
    flat index label·S + … would wrap in uint8 at S = 256 positions."""
    s = R.standard_normal((2, 4, 16, 16))
    y = R.integers(0, 4, (2, 16, 16)).astype(np.uint8)
    y[1, 3, :5] = 255
    results = []
    for labels in (y, y.astype(np.int64)):
        x = tensor(s, requires_grad=True)
        loss = F.cross_entropy(x, labels, ignore_index=255)
        loss.backward()
        results.append((loss.item(), x.grad.numpy()))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])
    assert np.all(results[0][1][1, :, 3, :5] == 0)                # ignored: no gradient


@pytest.mark.parametrize("layout", ["channels_last_4d", "transposed_2d"])
def test_cross_entropy_of_non_contiguous_scores_equals_contiguous(layout):
    """Scores that are a permuted view (channels-last logits seen as NCHW, or a transposed (N, C)
    matrix) give the loss and gradient of the same scores made contiguous."""
    if layout == "channels_last_4d":
        base = R.standard_normal((2, 5, 6, 4))                      # (N, H, W, C)
        make = lambda t: t.permute(0, 3, 1, 2)                      # noqa: E731
        y = R.integers(0, 4, (2, 5, 6))
    else:
        base = R.standard_normal((4, 7))                            # (C, N)
        make = lambda t: t.transpose(1, 0)                          # noqa: E731
        y = R.integers(0, 4, (7,))
    results = []
    for contiguous in (False, True):
        x = tensor(base, requires_grad=True)
        scores = make(x)
        if contiguous:                                              # the same values, C order
            scores = scores.reshape(-1).reshape(scores.shape)
        assert scores.data.flags.c_contiguous == contiguous
        loss = F.cross_entropy(scores, y, reduction="sum")
        loss.backward()
        results.append((loss.item(), x.grad.numpy()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)


def test_cross_entropy_4d_equals_flattened_2d():
    s, y = R.standard_normal((2, 3, 4, 5)), R.integers(0, 3, (2, 4, 5))
    flat = s.transpose(0, 2, 3, 1).reshape(-1, 3)
    assert F.cross_entropy(tensor(s), y).item() == pytest.approx(
        F.cross_entropy(tensor(flat), y.reshape(-1)).item(), rel=1e-12)


def test_multi_margin_loss_matches_svm_formula():
    s, y = R.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    margins = np.maximum(0, s - s[np.arange(4), y][:, None] + 1.0)
    margins[np.arange(4), y] = 0
    assert F.multi_margin_loss(tensor(s), y).item() == pytest.approx(margins.sum(1).mean() / 5)
    gradcheck(lambda a: F.multi_margin_loss(a, y, reduction="sum"), [s])


def test_regression_losses_values_and_gradients():
    a, b = R.standard_normal((4, 3)), R.standard_normal((4, 3))
    d = a - b
    assert F.mse_loss(tensor(a), tensor(b)).item() == pytest.approx((d ** 2).mean())
    assert F.l1_loss(tensor(a), b, reduction="sum").item() == pytest.approx(np.abs(d).sum())
    beta = 0.5
    sl1 = np.where(np.abs(d) < beta, 0.5 * d ** 2 / beta, np.abs(d) - 0.5 * beta)
    assert F.smooth_l1_loss(tensor(a), tensor(b), beta=beta).item() == pytest.approx(sl1.mean())
    assert F.smooth_l1_loss(tensor(a), tensor(b), beta=0).item() == pytest.approx(np.abs(d).mean())
    for fn in (F.mse_loss, F.l1_loss, lambda x, y: F.smooth_l1_loss(x, y, beta=0.7)):
        gradcheck(fn, [a, b])


def test_bce_with_logits_stable_and_correct():
    x, t = R.standard_normal((5, 2)) * 3, R.integers(0, 2, (5, 2)).astype(float)
    p = 1 / (1 + np.exp(-x))
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    assert F.binary_cross_entropy_with_logits(tensor(x), tensor(t)).item() == pytest.approx(expected)
    pw = np.array([2.0, 0.5])
    expected_pw = -(pw * t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    assert F.binary_cross_entropy_with_logits(tensor(x), t, pos_weight=pw).item() == pytest.approx(expected_pw)
    huge = F.binary_cross_entropy_with_logits(tensor(np.array([1000.0, -1000.0])), np.array([0.0, 1.0]))
    assert huge.item() == pytest.approx(1000.0)
    gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw), [x, t])


def test_nll_of_log_softmax_equals_cross_entropy():
    s, y = R.standard_normal((4, 3)), np.array([1, 0, 2, 2])
    assert F.nll_loss(F.log_softmax(tensor(s), 1), y).item() == pytest.approx(F.cross_entropy(tensor(s), y).item())


@pytest.mark.parametrize("weight", [None, np.array([1.0, 2.0, 0.5])])
def test_cross_entropy_with_every_target_ignored_has_zero_gradient(weight):
    """PyTorch: the mean over no targets is NaN (0/0), but the gradient is zero, not NaN."""
    s = tensor(R.standard_normal((3, 3)), requires_grad=True)
    loss = F.cross_entropy(s, np.array([-100, -100, -100]), weight=weight)
    assert np.isnan(loss.item())
    loss.backward()
    assert np.array_equal(s.grad.data, np.zeros((3, 3)))
    # one target kept: that row gets softmax − onehot, the others nothing
    s2 = tensor(s.data.copy(), requires_grad=True)
    F.cross_entropy(s2, np.array([-100, 1, -100])).backward()
    p = np.exp(s.data[1]) / np.exp(s.data[1]).sum()
    np.testing.assert_allclose(s2.grad.data[1], p - np.eye(3)[1], rtol=1e-6)
    assert not s2.grad.data[[0, 2]].any()


BAD = [
    (lambda: F.cross_entropy(tensor(np.ones((3, 4))), np.array([0, 1])), ValueError, r"target has shape \(2,\), expected \(3,\)"),
    (lambda: F.cross_entropy(tensor(np.ones((2, 4))), np.array([0, 4])), ValueError, r"outside \[0, 4\)"),
    (lambda: F.cross_entropy(tensor(np.ones((2, 4))), np.array([0.5, 1.0])), TypeError, "integer"),
    (lambda: F.cross_entropy(tensor(np.ones((2, 4))), np.array([0, 1]), weight=np.ones(3)), ValueError, "weight"),
    (lambda: F.cross_entropy(tensor(np.ones((2, 4))), np.array([0, 1]), reduction="avg"), ValueError, "reduction"),
    (lambda: F.mse_loss(tensor(np.ones((2, 4))), np.ones((4, 2))), ValueError, r"\(4, 2\)"),
    (lambda: F.smooth_l1_loss(tensor(np.ones(2)), np.ones(2), beta=-1), ValueError, "beta"),
    # a −1 label would index the last class; an (N, 1) target would broadcast to (N, N)
    (lambda: F.nll_loss(tensor(np.ones((2, 4))), np.array([0, -1])), ValueError, r"nll_loss: .*outside \[0, 4\)"),
    (lambda: F.nll_loss(tensor(np.ones((2, 4))), np.array([[0], [1]])), ValueError, r"nll_loss: target has shape \(2, 1\)"),
    (lambda: F.nll_loss(tensor(np.ones(4)), np.array([0])), ValueError, r"nll_loss: input must be \(N, C\)"),
    (lambda: F.multi_margin_loss(tensor(np.ones((2, 4))), np.array([0, -1])), ValueError, r"multi_margin_loss: .*outside"),
    (lambda: F.multi_margin_loss(tensor(np.ones((2, 4))), np.array([0, 4])), ValueError, r"outside \[0, 4\)"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_input(i):
    fn, err, pattern = BAD[i]
    with pytest.raises(err, match=pattern):
        fn()
