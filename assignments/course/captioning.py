"""Assignment 10 — recurrent networks and captioning (CS231n lecture 10; lecture 8's dense-captioning aside).

What the notebook teaches, CS231n-style: NumPy functions with a hand-written backward, the student writes the math.

1. ``step_forward`` — one LSTM step ``lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c, cache)``
   with CS231n's layout: ``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)``, the 4H axis in gate order i, f, o, g. The
   markdown sets it beside PyTorch's (and ``minidl.functional.lstm_cell``'s) order i, f, g, o with (4H, D) weights.
2. ``step_backward`` — ``lstm_step_backward(dnext_h, dnext_c, cache) -> (dx, dprev_h, dprev_c, dWx, dWh, db)``,
   checked against frozen values and against central differences of the student's own forward.
3. ``temporal_loss`` — ``temporal_softmax_loss(x, y, mask) -> (loss, dx)``: softmax cross-entropy summed over the
   kept tokens and divided by N (CS231n's convention; minidl's ``F.temporal_softmax_cross_entropy`` averages over
   the kept tokens instead, as PyTorch's ``cross_entropy`` with ``ignore_index`` does), numerically stable (the
   check runs scores of ±1000 with floating-point overflow made an error).
4. ``sequence`` — ``lstm_forward`` over (N, T, D) and backpropagation through time ``lstm_backward``, built on
   parts 1 and 2, gradient-checked; then a given demo plots the gradient norm reaching each input against how
   many steps back it is, for a vanilla RNN and the student's LSTM (forget-gate bias 0 and 2), and checks that the
   additive cell-state path keeps it alive.

Where the expected values come from: minidl's autograd engine over its own primitives (``@``, slicing,
``F.sigmoid``, ``F.tanh``, ``F.stack``; ``F.cross_entropy(..., ignore_index, reduction="sum") / N`` for the loss),
with the gradients from ``.backward()`` — not from ``minidl.functional.recurrent`` / ``minidl.nn.recurrent``, which
were being written at the same time and are not needed here. The typical wrong answers that a check recognises by
name (PyTorch's gate order, a missing tanh derivative, the forget gate left out of dprev_c, a cell-state gradient not
carried back, dprev_h not added) are frozen too, from a NumPy version of the solution with that one mistake; the
builder asserts that the mistake-free NumPy version equals the autograd reference first.

The notebook ends after part 4 with a given, ungraded section: the committed ``image_captioner_shapes`` model's
LSTM weights, converted to CS231n's layout, drive greedy captioning through the student's ``lstm_step_forward``,
compared word for word with minidl's own ``nn.LSTM`` (it agrees when part 1 is right).
"""
from __future__ import annotations

import numpy as np

from .spec import part, trials

STEM = "10_captioning"

LSTM_FORBID = ["lstm_cell", "LSTMCell", "LSTM", "lstm", "lstm_step", "lstm_layer"]
BY_HAND = ["backward", "gradcheck", "numerical_grad", "check_gradients"]     # autograd or differences would do the work
LOSS_FORBID = ["temporal_softmax_cross_entropy", "cross_entropy", "log_softmax", "softmax", "logsumexp",
               "nll_loss", "CrossEntropy", "LogSoftmax", "Softmax"]

PARTS = [
    part("step_forward", "Part 1 — one LSTM step, forward", 3, forbid=LSTM_FORBID),
    part("step_backward", "Part 2 — one LSTM step, backward", 3, requires=["step_forward"],
         forbid=LSTM_FORBID + BY_HAND),
    part("temporal_loss", "Part 3 — the temporal softmax loss with a mask", 2, forbid=LOSS_FORBID + BY_HAND),
    part("sequence", "Part 4 — an LSTM over a sequence and backpropagation through time", 3,
         requires=["step_forward", "step_backward"], forbid=LSTM_FORBID + BY_HAND),
]

CELLS = [
    ("md", """
# Assignment 10 — recurrent networks and captioning

A convolutional network maps one image to one answer. Language is a **sequence**: a caption is a variable number
of words, each depending on the ones before. A recurrent network (CS231n lecture 10) reads or writes a sequence
one step at a time, carrying a hidden state `h_t` from step to step with the **same** weights at every step:

    h_t = f_W(h_{t-1}, x_t)

Image captioning ("Show and Tell", Vinyals et al. 2015) puts the two together: a CNN describes the image with a
vector, the vector sets the recurrent network's initial state, and the network writes the caption word by word,
each step scoring the whole vocabulary. Lecture 8's **dense captioning** (DenseCap, Johnson et al. 2016) does the
same for every region a detector proposes: detection (assignments 3 and 7) and a recurrent language model on
each region's feature, trained jointly.

The vanilla recurrence `h_t = tanh(x_t Wx + h_{t-1} Wh + b)` is hard to train over long sequences: backpropagation
multiplies the gradient by `Whᵀ` and a tanh derivative at every step, so it vanishes (or explodes). The **LSTM**
(Hochreiter & Schmidhuber 1997) adds a cell state `c_t` updated *additively*, which is what this notebook is about.

You write, as NumPy functions with a hand-written backward (CS231n's `rnn_layers.py` style):
1. one LSTM step, forward;
2. its backward, checked against central differences;
3. the temporal softmax loss of a batch of captions, with a mask for the padding;
4. an LSTM over a whole sequence and backpropagation through time — then you see the gradient survive where a
   vanilla RNN's vanishes.

Run a cell with Shift+Enter; write your code where a cell says `TODO` (delete the `raise NotImplementedError`
line). Each **check** cell prints one line per check and says OK, or stops with a message that says what is off.
`pytest -m assignment10_step_forward` (`_step_backward`, `_temporal_loss`, `_sequence`) checks one part of your
notebook in `work/`; `python -m minidl.grade work/10_captioning.ipynb` grades all of it. The expected values are
fixed data computed once with minidl's autograd engine; an answer that calls minidl's own LSTM or losses — or
autograd's `.backward()` — scores 0 for its part. Everything here is float64 NumPy.
"""),
    ("code", """
import numpy as np
import matplotlib.pyplot as plt
from minidl.checks import check_at_least
from minidl.gradcheck import numerical_grad, rel_error
from minidl.grade.frozen import Case, check_cases, frozen_cases

cases = frozen_cases("10_captioning")      # the expected results of this notebook's checks


def frozen_trials(name, args_of=None):
    # the frozen trials `name`; results stored without their arguments take those of the trials `args_of`
    if args_of is None:
        return cases[name]
    return [Case(a.args, c.expected) for a, c in zip(cases[args_of], cases[name])]


def sigmoid(x):
    # a numerically stable logistic function (given): exp of a non-positive number only
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _same(got, expected, tol):
    got = np.asarray(got, dtype=float) if got is not None else None
    return got is not None and got.shape == np.shape(expected) and rel_error(got, np.asarray(expected, float)) <= tol


def check_frozen(name, fn, trials, tol, hint="", mistakes=(), strict=False):
    # fn(*case.args) against every frozen case: one printed line with OK, or an error that says what is off.
    # mistakes: [(what to fix, the cases a typical wrong answer gives)]: named when your result is that answer.
    try:
        return check_cases(name, fn, trials, tol=tol, hint=hint, strict=strict)
    except AssertionError as error:
        message = str(error)
        for fix, wrong in mistakes:
            try:
                recognised = all(_same(fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in c.args]),
                                       c.expected, tol) for c in wrong)
            except Exception:
                recognised = False
            if recognised:
                raise AssertionError(f"{name} wrong: {fix}") from None
        if hint and hint not in message:
            message += f" — {hint}"
        raise AssertionError(message) from None


def check_numerical(name, analytic, f, x, tol=1e-6, hint=""):
    # your gradient `analytic` against central differences of the scalar function f at x
    numerical = numerical_grad(f, x.copy())
    analytic = np.asarray(analytic, dtype=float) if analytic is not None else None
    if analytic is None or analytic.shape != numerical.shape:
        raise AssertionError(f"{name}: your gradient has shape {None if analytic is None else analytic.shape}, "
                             f"the input has {numerical.shape}")
    err = rel_error(analytic, numerical)
    print(f"{name} vs central differences: relative error {err:.2e} (tolerance {tol:.0e}) — "
          f"{'OK' if err <= tol else 'WRONG'}")
    if not err <= tol:
        raise AssertionError(f"{name}: relative error {err:.2e} against central differences" + (f" — {hint}" if hint else ""))
"""),
    # ---------------------------------------------------------------- part 1
    ("md", """
## Part 1 — one LSTM step, forward (3 points)

An LSTM keeps two states of size H: the hidden state `h` (what the step outputs) and the **cell state** `c` (its
memory). A step computes four **gates** from one matrix product, in CS231n's layout:

    a      = x @ Wx + prev_h @ Wh + b           (N, 4H)     x (N, D), prev_h (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,)
    i      = sigmoid(a[:, 0:H])                 (N, H)      input gate:  how much of the candidate to write
    f      = sigmoid(a[:, H:2H])                (N, H)      forget gate: how much of the old memory to keep
    o      = sigmoid(a[:, 2H:3H])               (N, H)      output gate: how much of the memory to show
    g      = tanh(a[:, 3H:4H])                  (N, H)      the candidate values ("gate gate"), in (-1, 1)
    next_c = f * prev_c + i * g                 (N, H)      (* is elementwise)
    next_h = o * tanh(next_c)                   (N, H)

**Gate order.** The 4H axis is cut into four blocks of H. CS231n (and this notebook) orders them **i, f, o, g**.
PyTorch's `nn.LSTMCell` orders them **i, f, g, o** and stores the weights the other way round; minidl's
`F.lstm_cell` follows PyTorch:

| | CS231n (here) | PyTorch `nn.LSTMCell`, minidl `F.lstm_cell` |
|---|---|---|
| gate blocks along 4H | i, f, o, g | i, f, g, o |
| input weights | `Wx` (D, 4H): `x @ Wx` | `weight_ih` (4H, D): `x @ weight_ih.T` |
| hidden weights | `Wh` (H, 4H): `prev_h @ Wh` | `weight_hh` (4H, H): `prev_h @ weight_hh.T` |
| bias | `b` (4H,) | `bias_ih + bias_hh` (two vectors, added) |

So CS231n weights become PyTorch's by reordering the blocks and transposing:
`perm = np.r_[0:2*H, 3*H:4*H, 2*H:3*H]` (i, f, then g, then o); `weight_ih = Wx[:, perm].T`,
`weight_hh = Wh[:, perm].T`, `bias_ih = b[perm]`, `bias_hh = 0`. Nothing about the LSTM changes, only where
each gate's weights sit — and mixing the two up gives an LSTM that runs without an error and computes nonsense
(the check recognises that one).

Write `lstm_step_forward`. Return the `cache` your backward (part 2) will need: a tuple of whatever arrays you
choose (the inputs, the gates, `tanh(next_c)`). Use the given stable `sigmoid`.
"""),
    ("answer", "step_forward", """
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    # x (N, D), prev_h (N, H), prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,), gates in the order i, f, o, g
    # -> (next_h (N, H), next_c (N, H), cache)
    ### BEGIN SOLUTION
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
    return next_h, next_c, cache
    ### END SOLUTION
"""),
    ("check", "step_forward", """
# 4 frozen trials, N = 3, D = 4, H = 5; the last with pre-activations of size ~10 (saturated gates)
pytorch_order = "the gates are in PyTorch's order i, f, g, o; here the blocks of a are i, f, o, g (CS231n): o = a[:, 2H:3H], g = a[:, 3H:]"
step = "lstm step next_h"                  # the trials' arguments (x, prev_h, prev_c, Wx, Wh, b)
check_frozen("lstm_step_forward next_c", lambda *args: lstm_step_forward(*args)[1],
             frozen_trials("lstm step next_c", step), tol=1e-9,
             hint="next_c = f * prev_c + i * g: did you use the forget gate (a[:, H:2H]) on prev_c?",
             mistakes=[(pytorch_order, frozen_trials("lstm step next_c, gates i f g o", step))])
check_frozen("lstm_step_forward next_h", lambda *args: lstm_step_forward(*args)[0], frozen_trials(step), tol=1e-9,
             hint="next_h = o * tanh(next_c), with the output gate o = sigmoid(a[:, 2H:3H])",
             mistakes=[(pytorch_order, frozen_trials("lstm step next_h, gates i f g o", step))])
# a property: with the forget gate shut (b_f = -1000) and the input gate shut (b_i = -1000) the memory is empty
x, prev_h, prev_c, Wx, Wh, b = cases[step][0].args
H = prev_h.shape[1]
shut = b.copy()
shut[:2 * H] = -1000.0
_, empty_c, _ = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, shut)
print(f"next_c with the input and forget gates shut: largest |value| {np.abs(empty_c).max():.1e} — "
      f"{'OK' if np.abs(empty_c).max() < 1e-12 else 'WRONG'}")
assert np.abs(empty_c).max() < 1e-12, "with i = f = 0, next_c = 0 * prev_c + 0 * g must be 0: check which block is which gate"
"""),
    # ---------------------------------------------------------------- part 2
    ("md", """
## Part 2 — one LSTM step, backward (3 points)

Given the upstream gradients `dnext_h = ∂L/∂next_h` and `dnext_c = ∂L/∂next_c` (both (N, H)) and your cache, return
`(dx, dprev_h, dprev_c, dWx, dWh, db)`, each the shape of its input. Work backwards through the forward's lines,
with the local derivatives

    d sigmoid(z)/dz = s (1 − s)      with s = sigmoid(z)        (use the gate values you cached)
    d tanh(z)/dz    = 1 − tanh(z)²

Two things to get right:

* `next_c` reaches the loss **two ways**: directly (`dnext_c`, from the next step) and through
  `next_h = o * tanh(next_c)`. The total gradient on the cell state is
  `dc = dnext_c + dnext_h * o * (1 − tanh(next_c)²)`.
* `dprev_c = dc * f`: the only thing between the old and the new memory is an elementwise product with the forget
  gate — no weight matrix, no squashing. Part 4 shows what that buys.

Then the gradients of the four gates give `da` (N, 4H), **in the same block order i, f, o, g**, and `a = x @ Wx +
prev_h @ Wh + b` gives the rest as for any affine layer: `dx = da @ Wx.T`, `dWx = x.T @ da`, and so on; `db` sums
over the batch. No autograd: NumPy arrays in, NumPy arrays out.
"""),
    ("answer", "step_backward", """
def lstm_step_backward(dnext_h, dnext_c, cache):
    # dnext_h (N, H), dnext_c (N, H), cache from lstm_step_forward
    # -> (dx (N, D), dprev_h (N, H), dprev_c (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,))
    ### BEGIN SOLUTION
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    do = dnext_h * tanh_c
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    di, df, dg = dc * g, dc * prev_c, dc * i
    dprev_c = dc * f
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)], axis=1)
    dx, dprev_h = da @ Wx.T, da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db
    ### END SOLUTION
"""),
    ("check", "step_backward", """
def step_cache(x, prev_h, prev_c, Wx, Wh, b):     # the cache of your part-1 forward (part 2 builds on it)
    try:
        return lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)[2]
    except NotImplementedError as e:
        raise NotImplementedError(f"lstm_step_backward is checked with the cache of your lstm_step_forward "
                                  f"(part 1), which raised: {e}") from None


def step_gradient(k):                              # output k of your backward on a frozen trial's inputs
    return lambda x, h, c, Wx, Wh, b, dnext_h, dnext_c: lstm_step_backward(dnext_h, dnext_c,
                                                                           step_cache(x, h, c, Wx, Wh, b))[k]

no_tanh = ("next_c also reaches the loss through next_h = o * tanh(next_c): dc = dnext_c + dnext_h * o * "
           "(1 - tanh(next_c)**2) — the tanh derivative is missing")
hints = {"dx": "dx = da @ Wx.T, da (N, 4H) the gradients of the pre-activations in the order i, f, o, g: "
               "sigmoid' = s(1 - s) for i, f, o and tanh' = 1 - g**2 for g",
         "dprev_h": "dprev_h = da @ Wh.T",
         "dprev_c": "dprev_c = dc * f, dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2)",
         "dWx": "dWx = x.T @ da (D, 4H)", "dWh": "dWh = prev_h.T @ da (H, 4H)", "db": "db = da summed over the batch"}
backward = "lstm step backward dx"       # the trials' arguments (x, prev_h, prev_c, Wx, Wh, b, dnext_h, dnext_c)
mistakes = {"dx": [(no_tanh, frozen_trials("lstm step backward dx, no tanh derivative", backward))],
            "dprev_c": [(no_tanh, frozen_trials("lstm step backward dprev_c, no tanh derivative", backward)),
                        ("dprev_c = dc * f: did you multiply by the forget gate?",
                         frozen_trials("lstm step backward dprev_c, no forget gate", backward))]}
for k, name in enumerate(["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"]):
    check_frozen(f"lstm_step_backward {name}", step_gradient(k),
                 frozen_trials(f"lstm step backward {name}", backward), tol=1e-9, hint=hints[name],
                 mistakes=mistakes.get(name, ()))

# against central differences of your forward: L = sum(next_h * dnext_h) + sum(next_c * dnext_c)
rng = np.random.default_rng(7)
N, D, H = 2, 3, 4
inputs = [rng.standard_normal(shape) for shape in [(N, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)]]
dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
grads = lstm_step_backward(dnext_h, dnext_c, step_cache(*inputs))
for k, name in enumerate(["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"]):
    def loss_of(v, k=k):
        args = list(inputs)
        args[k] = v
        next_h, next_c, _ = lstm_step_forward(*args)
        return np.sum(next_h * dnext_h) + np.sum(next_c * dnext_c)
    check_numerical(f"lstm_step_backward {name}", grads[k], loss_of, inputs[k], hint=hints[name])
"""),
    # ---------------------------------------------------------------- part 3
    ("md", """
## Part 3 — the temporal softmax loss with a mask (2 points)

A captioning network outputs, at every time step, scores over the vocabulary: `x` (N, T, V). The truth is the
next word, `y` (N, T) ints in [0, V). Captions have different lengths, so a batch is **padded** to the longest one
and a boolean `mask` (N, T) says which positions hold a real word (True) and which are padding (False): padding
must add nothing to the loss and get no gradient. The loss of a batch, CS231n's convention:

    p[n, t]  = softmax(x[n, t])                                            (V,)
    loss     = −(1/N) Σ_n Σ_t mask[n, t] · log p[n, t, y[n, t]]            a float
    dx[n, t] = mask[n, t] · (p[n, t] − onehot(y[n, t])) / N                (N, T, V)

It divides by **N, the number of captions**: each caption's loss is the sum over its words, averaged over the
batch, so a long caption weighs more than a short one. minidl's `F.temporal_softmax_cross_entropy` (like
PyTorch's `cross_entropy` with `ignore_index`) divides by the number of **kept tokens**, `mask.sum()`, instead: the
mean over words. The two differ by the constant factor `mask.sum() / N` (the mean caption length), and so do
their gradients — with plain SGD that is a different learning rate, with Adam it hardly matters. Use N here.

Compute the log-softmax **stably**: with `m` the maximum of each row of scores,
`log p = (x − m) − log Σ_v exp(x_v − m)` — `exp` never sees a positive number. The check runs scores of ±1000
with floating-point overflow turned into an error. Vectorize: reshape to (N·T, V) rows.
"""),
    ("answer", "temporal_loss", """
def temporal_softmax_loss(x, y, mask):
    # x (N, T, V) scores, y (N, T) ints in [0, V), mask (N, T) bool -> (loss float, dx (N, T, V))
    ### BEGIN SOLUTION
    N, T, V = x.shape
    rows, labels, keep = x.reshape(N * T, V), y.reshape(N * T), mask.reshape(N * T)
    shifted = rows - rows.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    scale = 1.0 / N                      # CS231n: summed over the kept tokens, averaged over the N captions
    loss = -np.sum(keep * log_probs[np.arange(N * T), labels]) * scale
    dx = np.exp(log_probs)
    dx[np.arange(N * T), labels] -= 1
    dx *= keep[:, None] * scale
    return loss, dx.reshape(N, T, V)
    ### END SOLUTION
"""),
    ("check", "temporal_loss", """
def per_kept_token(trials):    # what dividing by mask.sum() instead of N gives
    return [Case(c.args, c.expected * c.args[0].shape[0] / c.args[2].sum()) for c in trials]


def times(trials, factor):
    return [Case(c.args, c.expected * factor(c)) for c in trials]

kept = ("divided by the number of kept tokens (mask.sum(), the mean over words, as F.temporal_softmax_cross_entropy "
        "does); CS231n's loss divides by N, the number of captions")
all_tokens = "divided by N * T (every position, padding included); divide the sum over kept tokens by N"
no_mask = "the padding counts: multiply each position's loss and gradient by mask[n, t]"
loss_hint = "−(1/N) · Σ over kept (n, t) of log softmax(x[n, t])[y[n, t]]"
dx_hint = "dx off by a factor? dx = mask · (softmax − onehot(y)) / N: did you divide by N?"
loss_trials, dx_trials = cases["temporal loss"], frozen_trials("temporal loss dx", "temporal loss")   # args (x, y, mask)
check_frozen("temporal_softmax_loss loss", lambda x, y, m: temporal_softmax_loss(x, y, m)[0], loss_trials,
             tol=1e-10, hint=loss_hint,
             mistakes=[(kept, per_kept_token(loss_trials)),
                       (all_tokens, times(loss_trials, lambda c: 1 / c.args[2].shape[1])),
                       (no_mask, frozen_trials("temporal loss, mask ignored", "temporal loss"))])
check_frozen("temporal_softmax_loss dx", lambda x, y, m: temporal_softmax_loss(x, y, m)[1], dx_trials,
             tol=1e-10, hint=dx_hint,
             mistakes=[(kept, per_kept_token(dx_trials)),
                       ("dx off by a factor of N: did you divide dx by N?",
                        times(dx_trials, lambda c: c.args[0].shape[0])),
                       (no_mask, frozen_trials("temporal loss dx, mask ignored", "temporal loss"))])
stable = "overflow: subtract each row's max before exp (log p = (x − m) − log Σ exp(x − m))"
check_frozen("temporal_softmax_loss loss at scores of ±1000", lambda x, y, m: temporal_softmax_loss(x, y, m)[0],
             cases["temporal loss extreme"], tol=1e-10, hint=stable, strict=True)
check_frozen("temporal_softmax_loss dx at scores of ±1000", lambda x, y, m: temporal_softmax_loss(x, y, m)[1],
             frozen_trials("temporal loss extreme dx", "temporal loss extreme"), tol=1e-10, hint=stable, strict=True)

x, y, mask = cases["temporal loss"][0].args
check_numerical("temporal_softmax_loss dx", temporal_softmax_loss(x, y, mask)[1],
                lambda v: temporal_softmax_loss(v, y, mask)[0], x, hint=dx_hint)
_, dx = temporal_softmax_loss(x, y, mask)
padding = np.abs(dx[~mask]).max() if (~mask).any() else 0.0
print(f"largest |dx| at padded positions: {padding:.1e} — {'OK' if padding == 0 else 'WRONG'}")
assert padding == 0, "padded positions (mask False) must get exactly zero gradient"
"""),
    # ---------------------------------------------------------------- part 4
    ("md", """
## Part 4 — an LSTM over a sequence, and backpropagation through time (3 points)

Unroll your step over T time steps with the **same** weights at every step:

    c_0 = 0                        (N, H)      the initial cell state (CS231n's convention); h_0 is given
    h_t, c_t = lstm_step_forward(x[:, t], h_{t−1}, c_{t−1}, Wx, Wh, b)        for t = 0 .. T−1
    h = the stack of every h_t     (N, T, H)

`lstm_forward(x, h0, Wx, Wh, b)` takes `x` (N, T, D) and `h0` (N, H) and returns `(h, cache)` (the cache: the
list of the step caches). `lstm_backward(dh, cache)` takes `dh` (N, T, H) — the gradient of the loss with respect
to **every** hidden state, e.g. from a vocabulary layer at every step — and returns `(dx, dh0, dWx, dWh, db)`.

**Backpropagation through time** is part 2 in a loop running backwards, `t = T−1 .. 0`, carrying two gradients
from each step to the one before:

* the hidden state `h_t` reaches the loss twice — through `dh[:, t]` directly and through step t+1 — so the
  upstream `dnext_h` of step t is `dh[:, t] + dprev_h` (the `dprev_h` returned by step t+1; zero at t = T−1);
* the cell state reaches the loss only through the next step: `dnext_c` of step t is the `dprev_c` of step t+1
  (zero at the last step);
* the weights are shared, so their gradients are the **sums** over all steps; `dh0` is the last `dprev_h`.
"""),
    ("answer", "sequence", """
def lstm_forward(x, h0, Wx, Wh, b):
    # x (N, T, D), h0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,) -> (h (N, T, H), cache)
    ### BEGIN SOLUTION
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    prev_h, prev_c, caches = h0, np.zeros_like(h0), []
    for t in range(T):
        prev_h, prev_c, step = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(step)
    return h, caches
    ### END SOLUTION


def lstm_backward(dh, cache):
    # dh (N, T, H), cache from lstm_forward -> (dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,))
    ### BEGIN SOLUTION
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx, dWh, db = np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros(4 * H)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db
    ### END SOLUTION
"""),
    ("check", "sequence", """
# frozen trials: N = 2, T = 5, D = 3, H = 4
check_frozen("lstm_forward h", lambda *args: lstm_forward(*args)[0], cases["lstm forward h"],
             tol=1e-9, hint="c_0 = 0; h[:, t] is the next_h of step t, fed back as prev_h with next_c as prev_c")


def sequence_gradient(k):                  # output k of your lstm_backward on a frozen trial
    return lambda x, h0, Wx, Wh, b, dh: lstm_backward(dh, lstm_forward(x, h0, Wx, Wh, b)[1])[k]

hints = {"dx": "loop t = T-1 .. 0 with dnext_h = dh[:, t] + dprev_h and dnext_c = dprev_c of step t + 1",
         "dh0": "dh0 is the dprev_h of step 0", "dWx": "sum dWx over every step (the weights are shared): +=",
         "dWh": "sum dWh over every step: +=", "db": "sum db over every step: +="}
backward = "lstm backward dx"            # the trials' arguments (x, h0, Wx, Wh, b, dh)
mistakes = [("the cell-state gradient is not carried back: dnext_c of step t is the dprev_c of step t + 1",
             frozen_trials("lstm backward dx, cell gradient not carried", backward)),
            ("h_t reaches the loss through dh[:, t] AND through step t + 1: dnext_h = dh[:, t] + dprev_h",
             frozen_trials("lstm backward dx, dprev_h not added", backward))]
for k, name in enumerate(["dx", "dh0", "dWx", "dWh", "db"]):
    check_frozen(f"lstm_backward {name}", sequence_gradient(k), frozen_trials(f"lstm backward {name}", backward),
                 tol=1e-9, hint=hints[name], mistakes=mistakes if name == "dx" else ())

# against central differences of your lstm_forward: L = sum(h * dh)
rng = np.random.default_rng(3)
N, T, D, H = 2, 3, 3, 4
inputs = [rng.standard_normal(shape) for shape in [(N, T, D), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)]]
dh = rng.standard_normal((N, T, H))
grads = lstm_backward(dh, lstm_forward(*inputs)[1])
for k, name in enumerate(["dx", "dh0", "dWx", "dWh", "db"]):
    def loss_of(v, k=k):
        args = list(inputs)
        args[k] = v
        return np.sum(lstm_forward(*args)[0] * dh)
    check_numerical(f"lstm_backward {name}", grads[k], loss_of, inputs[k], hint=hints[name])
"""),
    ("md", """
### Why the cell state keeps gradients alive

Follow the gradient backwards from a loss at the last step T to an input `s` steps earlier.

* **Vanilla RNN**, `h_t = tanh(x_t Wx + h_{t−1} Wh + b)`: each step back multiplies the gradient by
  `diag(1 − h_t²) · Whᵀ`. Over s steps that is a product of s such matrices; with the tanh derivative ≤ 1 and `Wh`
  of spectral radius around 1, its norm shrinks geometrically (or, with larger weights, explodes).
* **LSTM**: along the cell state, `c_t = f_t * c_{t−1} + i_t * g_t`, so `∂c_t/∂c_{t−1} = diag(f_t)` — your
  `dprev_c = dc * f`. No weight matrix and no squashing function on this path: the gradient is only scaled by the
  forget gates, and where the network keeps `f_t` close to 1 it flows back almost unchanged (as the identity
  shortcut of a ResNet does across layers).

The given code below measures it: a loss `L = Σ h_T · r` on the last hidden state only (`r` random), the gradient
`∂L/∂x_t` from **your** `lstm_backward`, and its norm against how many steps back `t` is; the vanilla RNN, its
backward written out, gets the same inputs and the same weight scale (each weight ~ N(0, 1/fan-in)). The LSTM runs
twice: with forget-gate bias 0 (then `f ≈ sigmoid(0) = 0.5` and the cell path also halves the gradient every step)
and with forget-gate bias 2 (`f ≈ 0.9`) — which is why LSTMs are commonly initialized with a positive forget-gate
bias (Gers et al. 2000; Jozefowicz et al. 2015 recommend 1).
"""),
    ("check", "sequence", """
def rnn_input_gradients(x, Wx, Wh, b, r):
    # vanilla RNN from h0 = 0: the norm of dL/dx_t for L = sum(h_T * r), per t (given: forward + backward)
    N, T, _ = x.shape
    hs = [np.zeros((N, Wh.shape[0]))]
    for t in range(T):
        hs.append(np.tanh(x[:, t] @ Wx + hs[-1] @ Wh + b))
    dh, norms = r, np.zeros(T)
    for t in reversed(range(T)):
        da = dh * (1 - hs[t + 1] ** 2)
        norms[t] = np.linalg.norm(da @ Wx.T)
        dh = da @ Wh.T
    return norms


def lstm_input_gradients(x, Wx, Wh, b, r):
    # your LSTM from h0 = 0: the norm of dL/dx_t for L = sum(h_T * r), per t
    h, cache = lstm_forward(x, np.zeros((x.shape[0], Wh.shape[0])), Wx, Wh, b)
    dh = np.zeros_like(h)
    dh[:, -1] = r
    return np.linalg.norm(lstm_backward(dh, cache)[0], axis=(0, 2))


rng = np.random.default_rng(0)
N, T, D, H = 8, 50, 16, 32
x = rng.standard_normal((N, T, D))
r = rng.standard_normal((N, H))
rnn_norms = rnn_input_gradients(x, rng.standard_normal((D, H)) / np.sqrt(D), rng.standard_normal((H, H)) / np.sqrt(H),
                                np.zeros(H), r)
Wx, Wh = rng.standard_normal((D, 4 * H)) / np.sqrt(D), rng.standard_normal((H, 4 * H)) / np.sqrt(H)
lstm_norms = {}
for forget_bias in (0.0, 2.0):
    b = np.zeros(4 * H)
    b[H:2 * H] = forget_bias                      # the forget gate's block (order i, f, o, g)
    lstm_norms[forget_bias] = lstm_input_gradients(x, Wx, Wh, b, r)

steps_back = np.arange(T)[::-1]                   # x_t is T - 1 - t steps before the loss
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.semilogy(steps_back, rnn_norms, label="vanilla RNN")
ax.semilogy(steps_back, lstm_norms[0.0], label="your LSTM, forget-gate bias 0")
ax.semilogy(steps_back, lstm_norms[2.0], label="your LSTM, forget-gate bias 2")
ax.set(xlabel="steps between the input x_t and the loss at step T", ylabel="||dL/dx_t||",
       title="how much gradient reaches an input, by how far back it is")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
for name, norms in (("vanilla RNN", rnn_norms), ("LSTM, forget bias 0", lstm_norms[0.0]),
                    ("LSTM, forget bias 2", lstm_norms[2.0])):
    print(f"{name:>20}: ||dL/dx|| at 0 / 10 / 40 steps back: {norms[-1]:.1e} / {norms[-11]:.1e} / {norms[-41]:.1e}")
ratio = lstm_norms[2.0][-41] / rnn_norms[-41]
check_at_least("log10 of the LSTM's (forget bias 2) over the vanilla RNN's gradient 40 steps back",
               np.log10(ratio), 3, hint="the cell-state path should carry the gradient back: dprev_c = dc * f")
"""),
    ("md", """
## What you have built

`lstm_forward` / `lstm_backward` with `temporal_softmax_loss` on top are the whole training side of a captioning
language model: embed the previous words, run the LSTM from an initial state that the image's CNN feature sets,
score the vocabulary at every step with an affine layer, and train on the masked loss. minidl's own recurrent
layers (`minidl.functional.lstm_cell`, PyTorch's gate order and weight layout, with autograd doing the backward
you wrote here) are what its captioning models are built from.
"""),
    ("md", """
## Given: captioning with a trained model — your LSTM step writes the sentences (0 points)

minidl ships a trained captioner, `image_captioner_shapes` (`benchmarks/train_captioning.py` trained it on 20,000
generated scenes; `docs/captioning.md` gives its scores). It is a CNN that turns a 64×64 scene into a feature
vector `f` (F = 256), and an LSTM language model over 25 tokens whose first state is set from `f`:
`h0 = tanh(f @ W_h + b_h)`, `c0 = f @ W_c + b_c`. This model also reads `f` at **every** step: its input is
`x_t = [embedding of the previous word, f]` (D = 64 + 256).

The cell below takes the LSTM's weights out of the model, converts them from PyTorch's layout to yours (the table
of part 1, the other way round), and writes captions by **greedy decoding** — start with `<start>`, run one step
of **your** `lstm_step_forward`, score the vocabulary `h @ W_out + b_out`, feed the best word back in, stop at
`<end>` — then compares them with the captions minidl's own `nn.LSTM` writes. Nothing here is graded; if your
part 1 is right the two agree word for word.
"""),
    ("code", """
import textwrap

from minidl import Tensor, no_grad
from minidl.captioning import shapes_vocabulary
from minidl.captioning.vocab import caption_data
from minidl.data import ShapesDataset
from minidl.models.pretrained import load_pretrained

captioner = load_pretrained("image_captioner_shapes")
decoder, vocab = captioner.decoder, shapes_vocabulary()
H = decoder.hidden_size
to_cs231n = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]     # PyTorch's blocks i, f, g, o -> i, f, o, g
lstm = decoder.lstm
Wx = lstm.weight_ih_l0.numpy().T[:, to_cs231n].astype(np.float64)       # (D, 4H)
Wh = lstm.weight_hh_l0.numpy().T[:, to_cs231n].astype(np.float64)       # (H, 4H)
b = (lstm.bias_ih_l0.numpy() + lstm.bias_hh_l0.numpy())[to_cs231n].astype(np.float64)
W_embed = decoder.embed.weight.numpy().astype(np.float64)               # (V, 64)
W_out = decoder.output.weight.numpy().T.astype(np.float64)              # (H, V)
b_out = decoder.output.bias.numpy().astype(np.float64)

images, references = caption_data(ShapesDataset(40, 64, "scene", seed=1), "scene")   # held-out scenes
lone = [k for k, refs in enumerate(references) if len(refs) == 1]      # one object: one reference
shown = lone[:4] + [k for k in range(len(references)) if k not in lone][:4]    # 4 with one object, 4 with more
images, references = images[shown], [references[k] for k in shown]
with no_grad():
    f = captioner.encode(Tensor(images))                                # (N, F) from the CNN
    h0, c0 = decoder.initial_state(f)
f, h, c = f.numpy().astype(np.float64), h0.numpy()[0].astype(np.float64), c0.numpy()[0].astype(np.float64)


def greedy_captions(f, h, c, max_length=12):
    words, said, done = np.full(len(f), vocab.start_index), [], np.zeros(len(f), bool)
    for t in range(max_length):
        x = np.concatenate([W_embed[words], f], axis=1)                 # (N, 64 + 256)
        h, c, _ = lstm_step_forward(x, h, c, Wx, Wh, b)                 # your part 1
        words = np.where(done, vocab.pad_index, (h @ W_out + b_out).argmax(axis=1))
        done |= words == vocab.end_index
        said.append(words)
    return [vocab.decode(row) for row in np.stack(said, axis=1)]


try:
    mine = greedy_captions(f, h, c)
except NotImplementedError:
    mine = None
    print("Part 1 (lstm_step_forward) is not written yet: come back when its check says OK.")
if mine is not None:
    nn_lstm_captions = captioner.caption(images, vocab, max_length=12)  # minidl's nn.LSTM, greedy
    agree = sum(m == o for m, o in zip(mine, nn_lstm_captions))
    print(f"your LSTM step and minidl's nn.LSTM write the same caption for {agree} of {len(mine)} scenes")
    fig, axes = plt.subplots(2, 4, figsize=(11, 6.6))
    for k, ax in enumerate(axes.flat):
        ax.imshow(images[k].transpose(1, 2, 0))
        verdict = "(one of the references)" if mine[k] in references[k] else "true: " + references[k][0]
        ax.set_title(textwrap.fill("yours: " + mine[k], 40) + "\\n" + textwrap.fill(verdict, 40), fontsize=7,
                     loc="left")
        ax.axis("off")
    fig.tight_layout()
    plt.show()
"""),
    ("md", """
Read each title against its picture. The top row has one object per scene, the bottom row two or more: one
vector for the whole scene names a lone object exactly right about 40 % of the time (31–49 % on three held-out
sets), a scene of several objects almost never (1–2 %): the sentence nearly always gets a shape, a colour or a
size of one of them wrong (`docs/captioning.md`). `python -m minidl.tour --only
captioning` shows the same model with beam search and its BLEU and CIDEr-D scores, and the dense captioner of
lecture 8, which describes each box from its own features and names three objects in four exactly: one such
sentence for every box a detector finds.
"""),
]


# ---- frozen expected results ----------------------------------------------------------------------
# The expected values: minidl's autograd over its primitives. The mistakes: a NumPy version of the solution
# with one mistake each (the builder checks that the version without mistakes equals the autograd one).

def _autograd_step(x, h, c, Wx, Wh, b):
    """One LSTM step on minidl Tensors (gate order i, f, o, g) -> (next_h, next_c) Tensors."""
    import minidl.functional as F
    H = h.shape[1]
    a = x @ Wx + h @ Wh + b
    i, f, o = F.sigmoid(a[:, :H]), F.sigmoid(a[:, H:2 * H]), F.sigmoid(a[:, 2 * H:3 * H])
    g = F.tanh(a[:, 3 * H:])
    next_c = f * c + i * g
    return o * F.tanh(next_c), next_c


def _leaves(arrays):
    from minidl import Tensor
    return [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]


def _step_reference(x, h, c, Wx, Wh, b, dnext_h=None, dnext_c=None):
    """(next_h, next_c) and, given the upstream gradients, (dx, dprev_h, dprev_c, dWx, dWh, db) by autograd."""
    from minidl import tensor
    leaves = _leaves([x, h, c, Wx, Wh, b])
    next_h, next_c = _autograd_step(*leaves)
    if dnext_h is None:
        return next_h.numpy(), next_c.numpy()
    ((next_h * tensor(dnext_h)).sum() + (next_c * tensor(dnext_c)).sum()).backward()
    return tuple(t.grad.numpy() for t in leaves)


def _sequence_reference(x, h0, Wx, Wh, b, dh=None):
    """h (N, T, H) and, given dh, (dx, dh0, dWx, dWh, db) by autograd through the unrolled LSTM (c_0 = 0)."""
    import minidl.functional as F
    from minidl import tensor
    leaves = _leaves([x, h0, Wx, Wh, b])
    xt, h, w_x, w_h, bias = leaves
    c = tensor(np.zeros_like(h0))
    hs = []
    for t in range(x.shape[1]):
        h, c = _autograd_step(xt[:, t], h, c, w_x, w_h, bias)
        hs.append(h)
    out = F.stack(hs, axis=1)
    if dh is None:
        return out.numpy()
    (out * tensor(dh)).sum().backward()
    return tuple(t.grad.numpy() for t in leaves)


def _temporal_reference(x, y, mask, want_dx=False):
    """CS231n's temporal softmax loss: minidl's cross-entropy summed over the kept tokens, divided by N."""
    import minidl.functional as F
    from minidl import Tensor
    N, T, V = x.shape
    scores = Tensor(np.array(x, dtype=np.float64), requires_grad=True)
    labels = np.where(mask, y, -100).reshape(N * T)
    loss = F.cross_entropy(scores.reshape(N * T, V), labels, ignore_index=-100, reduction="sum") / N
    if not want_dx:
        return np.float64(loss.item())
    loss.backward()
    return scores.grad.numpy()


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _np_step_forward(x, h, c, Wx, Wh, b):
    H = h.shape[1]
    a = x @ Wx + h @ Wh + b
    i, f, o, g = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
    next_c = f * c + i * g
    return o * np.tanh(next_c), next_c, (x, h, c, Wx, Wh, i, f, o, g, np.tanh(next_c))


def _np_step_backward(dnext_h, dnext_c, cache, tanh_derivative=True, forget_on_dprev_c=True):
    """The backward of one step; a flag set to False makes the mistake it names."""
    x, h, c, Wx, Wh, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * ((1 - tanh_c ** 2) if tanh_derivative else 1)
    do = dnext_h * tanh_c
    da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f), do * o * (1 - o), dc * i * (1 - g ** 2)], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f if forget_on_dprev_c else dc, x.T @ da, h.T @ da, da.sum(axis=0)


def _np_sequence_backward(x, h0, Wx, Wh, b, dh, carry_cell=True, add_dprev_h=True):
    """(dx, dh0, dWx, dWh, db) of the unrolled LSTM; a flag set to False makes the mistake it names."""
    caches, h, c = [], h0, np.zeros_like(h0)
    for t in range(x.shape[1]):
        h, c, cache = _np_step_forward(x[:, t], h, c, Wx, Wh, b)
        caches.append(cache)
    N, T, H = dh.shape
    dx, dWx, dWh, db = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        upstream_h = dh[:, t] + dprev_h if add_dprev_h else dh[:, t]
        upstream_c = dprev_c if carry_cell else np.zeros((N, H))
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = _np_step_backward(upstream_h, upstream_c, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def _gates_i_f_g_o(W):
    """The weights whose CS231n reading (i, f, o, g) equals PyTorch's reading (i, f, g, o) of W: a student who
    reads W's blocks in PyTorch's order computes the correct LSTM of these."""
    H = W.shape[-1] // 4
    return W[..., np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]]


def _results_only(trials_):
    """Trials stored without their arguments (the notebook takes them from the trials computed on the same
    seeds that keep them): every argument array is stored once, not once per output and per mistake."""
    return [((), expected) for _, expected in trials_]


def reference_cases():
    from minidl.gradcheck import rel_error

    def step_args(scale):
        def make(rng):
            N, D, H = 3, 4, 5
            return (rng.standard_normal((N, D)) * scale, rng.standard_normal((N, H)), rng.standard_normal((N, H)),
                    rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)) * 0.5,
                    rng.standard_normal(4 * H))
        return make

    def step_trials(output, swapped=False):
        def reference(x, h, c, Wx, Wh, b):
            if swapped:
                Wx, Wh, b = _gates_i_f_g_o(Wx), _gates_i_f_g_o(Wh), _gates_i_f_g_o(b)
            return _step_reference(x, h, c, Wx, Wh, b)[output]
        return trials(reference, step_args(1.0), range(3)) + trials(reference, step_args(5.0), [3])

    cases = {"lstm step next_h": step_trials(0), "lstm step next_c": _results_only(step_trials(1)),
             "lstm step next_h, gates i f g o": _results_only(step_trials(0, swapped=True)),
             "lstm step next_c, gates i f g o": _results_only(step_trials(1, swapped=True))}

    def backward_args(rng):
        N, H = 3, 5                 # D = 4 comes from step_args
        return (*step_args(1.0)(rng), rng.standard_normal((N, H)), rng.standard_normal((N, H)))

    names = ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"]
    seeds = range(10, 13)
    for k, name in enumerate(names):
        cases[f"lstm step backward {name}"] = trials(
            lambda x, h, c, Wx, Wh, b, dnh, dnc, k=k: _step_reference(x, h, c, Wx, Wh, b, dnh, dnc)[k],
            backward_args, seeds)

    def np_backward(k, **mistake):
        def run(x, h, c, Wx, Wh, b, dnh, dnc):
            return _np_step_backward(dnh, dnc, _np_step_forward(x, h, c, Wx, Wh, b)[2], **mistake)[k]
        return run

    for k, name in enumerate(names):       # the NumPy version without a mistake is the reference itself
        for (args, expected) in cases[f"lstm step backward {name}"]:
            assert rel_error(np_backward(k)(*args), expected) < 1e-12, f"NumPy LSTM step backward {name}"
        if name != "dx":
            cases[f"lstm step backward {name}"] = _results_only(cases[f"lstm step backward {name}"])
    cases["lstm step backward dx, no tanh derivative"] = _results_only(
        trials(np_backward(0, tanh_derivative=False), backward_args, seeds))
    cases["lstm step backward dprev_c, no tanh derivative"] = _results_only(
        trials(np_backward(2, tanh_derivative=False), backward_args, seeds))
    cases["lstm step backward dprev_c, no forget gate"] = _results_only(
        trials(np_backward(2, forget_on_dprev_c=False), backward_args, seeds))

    def loss_args(scale):
        def make(rng):
            N, T, V = 3, 5, 6
            lengths = rng.integers(0, T + 1, N)
            lengths[0] = T                                        # one full caption, the others padded
            mask = np.arange(T)[None, :] < lengths[:, None]
            if mask.sum() == N:                                   # keep "divided by kept tokens" distinguishable
                mask[1, :2] = True
            return rng.standard_normal((N, T, V)) * scale, rng.integers(0, V, (N, T)), mask
        return make

    cases["temporal loss"] = trials(_temporal_reference, loss_args(2.0), range(20, 23))
    cases["temporal loss dx"] = _results_only(trials(
        lambda x, y, m: _temporal_reference(x, y, m, want_dx=True), loss_args(2.0), range(20, 23)))
    cases["temporal loss, mask ignored"] = _results_only(trials(
        lambda x, y, m: _temporal_reference(x, y, np.ones_like(m)), loss_args(2.0), range(20, 23)))
    cases["temporal loss dx, mask ignored"] = _results_only(trials(
        lambda x, y, m: _temporal_reference(x, y, np.ones_like(m), want_dx=True), loss_args(2.0), range(20, 23)))
    cases["temporal loss extreme"] = trials(_temporal_reference, loss_args(1000.0), range(30, 32))
    cases["temporal loss extreme dx"] = _results_only(trials(
        lambda x, y, m: _temporal_reference(x, y, m, want_dx=True), loss_args(1000.0), range(30, 32)))

    def sequence_args(rng):
        N, T, D, H = 2, 5, 3, 4
        return (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((D, 4 * H)),
                rng.standard_normal((H, 4 * H)) * 0.5, rng.standard_normal(4 * H))

    cases["lstm forward h"] = trials(_sequence_reference, sequence_args, range(40, 43))

    def gradient_args(rng):
        args = sequence_args(rng)
        return (*args, rng.standard_normal(args[0].shape[:2] + (args[1].shape[1],)))

    sequence_names = ["dx", "dh0", "dWx", "dWh", "db"]
    for k, name in enumerate(sequence_names):
        cases[f"lstm backward {name}"] = trials(lambda *args, k=k: _sequence_reference(*args)[k], gradient_args,
                                                range(50, 53))
        for (args, expected) in cases[f"lstm backward {name}"]:
            assert rel_error(_np_sequence_backward(*args)[k], expected) < 1e-12, f"NumPy LSTM backward {name}"
        if name != "dx":
            cases[f"lstm backward {name}"] = _results_only(cases[f"lstm backward {name}"])
    cases["lstm backward dx, cell gradient not carried"] = _results_only(trials(
        lambda *args: _np_sequence_backward(*args, carry_cell=False)[0], gradient_args, range(50, 53)))
    cases["lstm backward dx, dprev_h not added"] = _results_only(trials(
        lambda *args: _np_sequence_backward(*args, add_dprev_h=False)[0], gradient_args, range(50, 53)))
    return cases


MUTATIONS = {
    "gates in PyTorch's order i, f, g, o": (
        "step_forward", "sigmoid(a[:, 2 * H:3 * H])\n    g = np.tanh(a[:, 3 * H:])",
        "sigmoid(a[:, 3 * H:])\n    g = np.tanh(a[:, 2 * H:3 * H])", {"step_forward"}, "PyTorch's order",
        ["step_forward"]),
    "forget gate not applied to prev_c": (
        "step_forward", "next_c = f * prev_c + i * g", "next_c = prev_c + i * g", {"step_forward"},
        "did you use the forget gate", ["step_forward"]),
    "next_h without the tanh of next_c": (
        "step_forward", "next_h = o * tanh_c", "next_h = o * next_c", {"step_forward"}, "o * tanh(next_c)",
        ["step_forward"]),
    "backward without the tanh derivative": (
        "step_backward", "dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)", "dc = dnext_c + dnext_h * o",
        {"step_backward"}, "the tanh derivative is missing", ["step_backward"]),
    "dprev_c without the forget gate": (
        "step_backward", "dprev_c = dc * f", "dprev_c = dc", {"step_backward"}, "multiply by the forget gate",
        ["step_backward"]),
    "dWx with the product the wrong way round": (
        "step_backward", "dWx = x.T @ da", "dWx = da.T @ x", {"step_backward"}, "transposed", ["step_backward"]),
    "sigmoid derivative on the output gate left out": (
        "step_backward", "do * o * (1 - o)", "do", {"step_backward"}, "sigmoid' = s(1 - s)", ["step_backward"]),
    "temporal loss divided by the kept tokens": (
        "temporal_loss", "scale = 1.0 / N ", "scale = 1.0 / keep.sum() ", {"temporal_loss"},
        "divided by the number of kept tokens", ["temporal_loss"]),
    "temporal loss without the max shift": (
        "temporal_loss", "shifted = rows - rows.max(axis=1, keepdims=True)", "shifted = rows", {"temporal_loss"},
        "subtract each row's max", ["temporal_loss"]),
    "temporal loss ignoring the mask": (
        "temporal_loss", "keep = x.reshape(N * T, V), y.reshape(N * T), mask.reshape(N * T)",
        "keep = x.reshape(N * T, V), y.reshape(N * T), np.ones(N * T)", {"temporal_loss"}, "the padding counts",
        ["temporal_loss"]),
    "temporal loss dx not divided by N": (
        "temporal_loss", "dx *= keep[:, None] * scale", "dx *= keep[:, None]", {"temporal_loss"},
        "did you divide dx by N?", ["temporal_loss"]),
    "F.cross_entropy inside temporal_softmax_loss": (
        "temporal_loss", "    N, T, V = x.shape\n",
        "    import minidl.functional as F\n    N, T, V = x.shape\n"
        "    F.cross_entropy(x.reshape(N * T, V), np.where(mask, y, -100).reshape(-1), reduction='sum')\n",
        {"temporal_loss"}, "calls minidl's own cross_entropy", ["temporal_loss"]),
    "BPTT without carrying the cell-state gradient": (
        "sequence", "lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])",
        "lstm_step_backward(dh[:, t] + dprev_h, np.zeros((N, H)), cache[t])", {"sequence"},
        "the cell-state gradient is not carried back", ["sequence"]),
    "BPTT without adding dprev_h to dh[:, t]": (
        "sequence", "lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])",
        "lstm_step_backward(dh[:, t], dprev_c, cache[t])", {"sequence"}, "dnext_h = dh[:, t] + dprev_h",
        ["sequence"]),
    "BPTT overwriting dWx instead of summing it": (
        "sequence", "dWx += dWx_t", "dWx = dWx_t", {"sequence"}, "sum dWx over every step", ["sequence"]),
}
