"""Losses: cross_entropy (+ its temporal form), multi_margin_loss (multiclass SVM), l1, mse,
smooth_l1, BCE with logits.

Lecture idea: a loss turns scores into one number to minimize. Softmax cross-entropy,
``-log softmax(s)[y]``, has the famous gradient ``softmax(s) - onehot(y)`` — computed here in
one Function so the student sees it. Segmentation is classification at every pixel: the same
loss on (N, C, H, W) scores and (N, H, W) labels. Box regression (localization, detection)
uses L2 or smooth L1 (Fast R-CNN); multi-label targets use the sigmoid BCE. A captioning
RNN (lecture 10) classifies the next word at every time step: the temporal cross-entropy.

``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``, as in PyTorch.
"""
from __future__ import annotations

import numbers

from .. import backend
from ..autograd import Function, Tensor
from . import elementwise as E
from .activation import relu
from .select import where
from ._args import tensor_args

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss, reduction):
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _labels(target, like, name="target"):
    """Integer labels as an array on the device of ``like`` (Tensors, arrays and lists accepted)."""
    data = target.data if isinstance(target, Tensor) else target
    xp = backend.get_array_module(like)
    data = xp.asarray(data)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {data.dtype}")
    return data


def _class_labels(target, input, fn):
    """``_labels`` for (N, C) scores: target must be (N,) with every label in [0, C) — a −1
    would otherwise index the last class silently, and an (N, 1) target would broadcast."""
    if input.ndim != 2:
        raise ValueError(f"{fn}: input must be (N, C), got shape {input.shape}")
    t = _labels(target, input.data)
    n, c = input.shape
    if t.shape != (n,):
        raise ValueError(f"{fn}: target has shape {t.shape}, expected ({n},) for input of shape {input.shape}")
    if backend.any_true((t < 0) | (t >= c)):
        raise ValueError(f"{fn}: target holds labels outside [0, {c})")
    return t


class CrossEntropy(Function):
    """Softmax cross-entropy over axis 1 of (N, C) or (N, C, d1, ...) scores.

    Worked in the (N, C, S) layout (S = d1*d2*..., 1 for plain (N, C) scores): the softmax
    reduces over the class axis while the S positions stay contiguous, so a segmentation loss
    over 64×64 pixels and 6 classes is a few whole-array passes, not 65,536 rows of 6.
    """

    @staticmethod
    def forward(ctx, scores, target, weight, ignore_index, reduction):
        xp = backend.get_array_module(scores)
        n, c = scores.shape[:2]
        s = xp.ascontiguousarray(scores.reshape(n, c, -1))          # (N, C, S), C order: the
        # flat label indices below address it (a permuted or transposed input is copied once)
        t = target.reshape(n, 1, -1)                                # (N, 1, S)
        valid = t != ignore_index
        t_safe = xp.where(valid, t, 0)
        shifted = s - s.max(axis=1, keepdims=True)                  # exp cannot overflow
        # log softmax is needed only at the correct class: log p(y) = shifted[y] − log Σ exp
        # (one value per position, not a whole (N, C, S) pass). `label_at`: where each
        # position's label score lies in the flat (N, C, S) array — one take, and the backward's
        # one-hot subtraction, at N·S places instead of passes over all N·C·S values.
        label_at = _label_positions(t_safe, c, xp)                  # (N, 1, S) flat indices
        picked = shifted.reshape(-1).take(label_at)
        e = xp.exp(shifted, out=shifted)                            # (shifted is not needed again)
        e_sum = e.sum(axis=1, keepdims=True)                        # softmax = e / e_sum
        picked -= xp.log(e_sum)
        # an ignored position picked class 0 as a stand-in: keep its −∞ (class 0 masked out)
        # from making 0 · (−∞) = NaN in the loss — it adds nothing, as in PyTorch
        picked = xp.where(valid, picked, 0)
        w = valid.astype(scores.dtype)
        if weight is not None:
            w = w * weight[t_safe]
        losses = -picked * w                                        # (N, 1, S)
        ctx.save_for_backward(e, e_sum, label_at, w)
        ctx.shape, ctx.reduction = scores.shape, reduction
        if reduction == "none":
            return losses.reshape(target.shape)
        if reduction == "sum":
            return losses.sum()
        ctx.total_weight = w.sum()
        # PyTorch's mean divides by the summed weights of the non-ignored targets; with every
        # target ignored that is 0/0 = NaN, as in PyTorch (divided by NaN: without a warning).
        return losses.sum() / xp.where(ctx.total_weight > 0, ctx.total_weight, xp.nan)

    @staticmethod
    def backward(ctx, g):
        e, e_sum, label_at, w = ctx.saved_tensors
        xp = backend.get_array_module(e)
        if ctx.reduction == "none":
            scale = w * g.reshape(w.shape)
        elif ctx.reduction == "sum":
            scale = w * g
        else:
            # every target ignored: total_weight = 0 and every w = 0. PyTorch's loss is then NaN
            # (0/0) but its gradient is zero; dividing by a tiny number instead keeps 0 · finite = 0.
            scale = w * (g / xp.maximum(ctx.total_weight, xp.finfo(w.dtype).tiny))
        # d = (softmax(s) − onehot(y)) · scale: the softmax and the scale in one pass (both per
        # position), then the one-hot's −scale at each position's label only
        d = (e * (scale / e_sum)).reshape(-1)                       # (flat, in C order)
        d[label_at] -= scale
        return d.reshape(ctx.shape), None, None, None, None


def _label_positions(labels, classes, xp):
    """Flat indices into an (N, C, S) array of the labels' entries: labels (N, 1, S) -> (N, 1, S),
    n·C·S + label·S + s."""
    n, _, size = labels.shape
    base = xp.arange(n).reshape(n, 1, 1) * (classes * size) + xp.arange(size)
    return labels.astype(xp.int64, copy=False) * size + base   # (uint8 labels · S would wrap)


@tensor_args("input", "target", "weight", optional=("weight",))
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Softmax cross-entropy (torch.nn.functional.cross_entropy).

    input: scores (N, C) or (N, C, d1, ...); target: labels (N,) or (N, d1, ...) in [0, C)
    or ``ignore_index`` (those positions add no loss and no gradient); weight: (C,) class
    weights. ``"mean"`` divides by the sum of the weights of the non-ignored targets.
    """
    _check_reduction(reduction)
    if input.ndim < 2:
        raise ValueError(f"cross_entropy: input must be (N, C) or (N, C, d1, ...), got shape {input.shape}")
    t = _labels(target, input.data)
    expected = (input.shape[0],) + input.shape[2:]
    if t.shape != expected:
        raise ValueError(f"cross_entropy: target has shape {t.shape}, expected {expected} "
                         f"for input of shape {input.shape}")
    C = input.shape[1]
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if backend.any_true(bad):
        raise ValueError(f"cross_entropy: target holds labels outside [0, {C}) "
                         f"(other than ignore_index={ignore_index})")
    w = None
    if weight is not None:
        w = weight.data if isinstance(weight, Tensor) else backend.get_array_module(input.data).asarray(weight)
        if w.shape != (C,):
            raise ValueError(f"cross_entropy: weight has shape {w.shape}, expected ({C},)")
        w = w.astype(input.dtype, copy=False)
    return CrossEntropy.apply(input, t, w, ignore_index, reduction)


@tensor_args("scores")
def temporal_softmax_cross_entropy(scores, targets, mask=None, ignore_index=-100, reduction="mean"):
    """Cross-entropy of a sequence model's word scores at every time step (lecture 10).

    scores (N, T, V) float32/float64; targets (N, T) integer words in [0, V); ``mask`` (N, T)
    bool or 0/1: False/0 drops a token, as does a target equal to ``ignore_index`` (padding).
    A dropped token adds no loss and no gradient (and its target is not checked).
    ``"mean"``: over the kept tokens — torch's ``cross_entropy(scores.reshape(-1, V),
    targets.reshape(-1), ignore_index=...)``; NaN when nothing is kept. (CS231n's
    ``temporal_softmax_loss`` divides the sum by N instead: use ``"sum"`` and divide.)
    ``"sum"``; ``"none"``: the (N, T) losses, 0 at dropped tokens. The rows are flattened to
    (N·T, V) and handed to the CrossEntropy Function above: one softmax, one gradient rule.
    """
    op = "temporal_softmax_cross_entropy"
    _check_reduction(reduction)
    if scores.ndim != 3:
        raise ValueError(f"{op}: scores must be (N, T, V), got shape {scores.shape}")
    if scores.dtype.name not in ("float32", "float64"):
        raise TypeError(f"{op}: scores must be float32 or float64, got dtype {scores.dtype}")
    n, steps, v = scores.shape
    xp = backend.get_array_module(scores.data)
    t = backend.to_device(targets.data if isinstance(targets, Tensor) else targets, scores.device)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer word indices, got dtype {t.dtype}")
    t = t.astype(xp.int64, copy=False)       # uint8 words and a negative ignore_index compare right
    if t.shape != (n, steps):
        raise ValueError(f"{op}: targets must be (N, T) = {(n, steps)} for scores {scores.shape}, got {t.shape}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    keep = t != ignore_index
    if mask is not None:
        m = backend.to_device(mask.data if isinstance(mask, Tensor) else mask, scores.device)
        if m.shape != (n, steps):
            raise ValueError(f"{op}: mask must be (N, T) = {(n, steps)}, got shape {m.shape}")
        if m.dtype.kind not in "biuf" or (m.dtype.kind != "b" and backend.any_true((m != 0) & (m != 1))):
            raise ValueError(f"{op}: mask must be boolean or hold only 0 and 1, got dtype {m.dtype}")
        keep &= m.astype(bool)
    if backend.any_true(keep & ((t < 0) | (t >= v))):
        raise ValueError(f"{op}: targets hold words outside [0, {v}) at kept positions "
                         f"(only ignore_index={ignore_index} or masked-out positions may)")
    t = xp.where(keep, t, ignore_index).reshape(-1)        # a dropped token is an ignored one
    loss = CrossEntropy.apply(scores.reshape(n * steps, v), t, None, int(ignore_index), reduction)
    return loss.reshape(n, steps) if reduction == "none" else loss


@tensor_args("input", "target")
def nll_loss(input, target, reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C): -input[i, target[i]]."""
    t = _class_labels(target, input, "nll_loss")
    picked = input[backend.get_array_module(input.data).arange(input.shape[0]), t]
    return _reduce(-picked, reduction)


@tensor_args("input", "target")
def multi_margin_loss(input, target, margin=1.0, reduction="mean"):
    """Multiclass SVM hinge loss with PyTorch's definition (p=1):
    ``loss_i = sum_{j != y_i} max(0, margin - s_{y_i} + s_j) / C``.

    CS231n's SVM loss is the same sum without the division by C (``C * multi_margin_loss``).
    """
    t = _class_labels(target, input, "multi_margin_loss")
    xp = backend.get_array_module(input.data)
    N, C = input.shape
    correct = input[xp.arange(N), t].reshape(N, 1)
    not_target = (xp.arange(C)[None, :] != t[:, None]).astype(input.dtype)
    margins = relu(input - correct + margin) * not_target
    return _reduce(margins.sum(axis=1) / C, reduction)


def _pair(input, target, name):
    if not isinstance(target, Tensor):
        target = Tensor(backend.get_array_module(input.data).asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"{name}: target has shape {target.shape}, expected input's shape {input.shape}")
    return target


@tensor_args("input", "target")
def mse_loss(input, target, reduction="mean"):
    """Mean squared error (L2 regression loss)."""
    d = input - _pair(input, target, "mse_loss")
    return _reduce(d * d, reduction)


@tensor_args("input", "target")
def l1_loss(input, target, reduction="mean"):
    return _reduce(E.abs(input - _pair(input, target, "l1_loss")), reduction)


@tensor_args("input", "target")
def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Fast R-CNN's box loss: ``0.5 d²/beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``
    (quadratic near zero, linear far away, so outliers do not dominate). beta=0 gives L1."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    d = E.abs(input - _pair(input, target, "smooth_l1_loss"))
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(where(d.data < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


@tensor_args("input", "target", "weight", "pos_weight", optional=("weight", "pos_weight"))
def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction="mean"):
    """Sigmoid + binary cross-entropy in one stable formula:
    ``loss = (1 - t) x + (1 + (pw - 1) t) * softplus(-x)``, with
    ``softplus(-x) = log(1 + e^{-|x|}) + max(-x, 0)`` so large |x| never overflows."""
    t = _pair(input, target, "binary_cross_entropy_with_logits")
    softplus_neg = E.log(1 + E.exp(-E.abs(input))) + relu(-input)
    if pos_weight is not None:
        loss = (1 - t) * input + (1 + (pos_weight - 1) * t) * softplus_neg
    else:
        loss = (1 - t) * input + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
