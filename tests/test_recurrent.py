"""Sequence models (lecture 10): the cells' hand-written backward passes, backpropagation through
time, embeddings and the temporal loss — float64 gradchecks, comparisons with PyTorch (skipped
when torch is not installed) and bad-input errors."""
import math

import numpy as np
import pytest

import minidl.functional as F
import minidl.nn as nn
from minidl.autograd import Tensor
from minidl.gradcheck import gradcheck

R = np.random.default_rng(10)
N, D, H, T = 3, 4, 5, 4
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def rand(*shape, scale=1.0):
    return R.standard_normal(shape) * scale


def cell_args(kind, bias=True, projected=False):
    """Random float64 arguments of one cell step: x, h, (c,) w_ih, w_hh, b_ih, b_hh."""
    G = GATES[kind]
    x = rand(N, G * H) if projected else rand(N, D)
    args = [x, rand(N, H)] + ([rand(N, H)] if kind == "lstm" else [])
    args += [None if projected else rand(G * H, D, scale=0.5), rand(G * H, H, scale=0.5)]
    return args + ([rand(G * H), rand(G * H)] if bias else [None, None])


def cell_fn(kind):
    """The cell as a function of its arguments with one output (LSTM: h' and c' side by side)."""
    if kind == "lstm":
        return lambda *a: F.concat(list(F.lstm_cell(*a)), axis=1)
    if kind == "gru":
        return F.gru_cell
    return lambda *a: F.rnn_cell(*a, nonlinearity=kind[4:])


# ---- gradchecks: every cell w.r.t. every input ----------------------------------------------
@pytest.mark.parametrize("kind", sorted(GATES))
@pytest.mark.parametrize("variant", ["bias", "no_bias", "projected"])
def test_cell_gradcheck(kind, variant, device):
    args = cell_args(kind, bias=variant != "no_bias", projected=variant == "projected")
    errors = gradcheck(cell_fn(kind), args, device=device)
    n_float = sum(a is not None for a in args)
    assert sum(e is not None for e in errors) == n_float          # every tensor input was checked


def test_cell_values_follow_the_equations():
    x, h, c, w_ih, w_hh, b_ih, b_hh = cell_args("lstm")
    sig = lambda v: 1 / (1 + np.exp(-v))                           # noqa: E731
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
    h1, c1 = F.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)
    np.testing.assert_allclose(c1.numpy(), f * c + i * g, rtol=1e-12)
    np.testing.assert_allclose(h1.numpy(), o * np.tanh(f * c + i * g), rtol=1e-12)

    x, h, w_ih, w_hh, b_ih, b_hh = cell_args("gru")
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    r, z = sig(gi[:, :H] + gh[:, :H]), sig(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    np.testing.assert_allclose(F.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh).numpy(), (1 - z) * n + z * h, rtol=1e-12)

    x, h, w_ih, w_hh, b_ih, b_hh = cell_args("rnn_relu")
    expected = np.maximum(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 0)
    np.testing.assert_allclose(F.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, "relu").numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("kind", sorted(GATES))
def test_projected_input_equals_the_full_cell(kind):
    """w_ih=None with x W_ihᵀ + b_ih passed in gives the same step (what the layers rely on)."""
    args = cell_args(kind)
    k = 3 if kind == "lstm" else 2                      # position of w_ih
    projected = list(args)
    projected[0], projected[k], projected[k + 2] = args[0] @ args[k].T + args[k + 2], None, None
    np.testing.assert_allclose(cell_fn(kind)(*projected).numpy(), cell_fn(kind)(*args).numpy(), rtol=1e-12)


def test_sigmoid_gates_do_not_overflow_on_huge_preactivations():
    x, h, c, w_ih, w_hh, b_ih, b_hh = cell_args("lstm")
    h1, c1 = F.lstm_cell(x * 1e4, h, c, w_ih, w_hh, b_ih, b_hh)
    assert np.isfinite(h1.numpy()).all() and np.isfinite(c1.numpy()).all()
    assert np.abs(h1.numpy()).max() <= 1


# ---- backpropagation through time: whole multi-layer modules --------------------------------
def _module_fn(module, names):
    """fn(x, h0, [c0,] *weights) running ``module`` with gradcheck's tensors as its weights.
    (object.__setattr__: the module reads the attribute, without registering a new Parameter.)"""
    lstm = isinstance(module, nn.LSTM)

    def fn(x, h0, *rest):
        c0, weights = (rest[0], rest[1:]) if lstm else (None, rest)
        for name, w in zip(names, weights):
            object.__setattr__(module, name, w)
        out, state = module(x, (h0, c0) if lstm else h0)
        states = list(state) if lstm else [state]
        return F.concat([out.reshape(-1)] + [s.reshape(-1) for s in states], axis=0)
    return fn


@pytest.mark.parametrize("cls, kw", [(nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"}), (nn.LSTM, {}),
                                     (nn.GRU, {})], ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_two_layer_sequence_gradcheck_through_time(cls, kw, batch_first):
    m = cls(3, 4, num_layers=2, batch_first=batch_first, rng=1, dtype=np.float64, **kw)
    names = [n for n, _ in m.named_parameters()]
    x = rand(2, 3, 3) if batch_first else rand(3, 2, 3)            # T = 3 steps, N = 2
    states = [rand(2, 2, 4)] * (2 if cls is nn.LSTM else 1)
    errors = gradcheck(_module_fn(m, names), [x, *states, *[p.numpy() for p in m.parameters()]])
    assert all(e is not None for e in errors)


def test_gradient_of_a_shared_weight_is_the_sum_over_time_steps():
    """BPTT in one sentence: W_hh's gradient of an unrolled RNN is Σ_t (its step-t gradient)."""
    m = nn.RNN(D, H, rng=2, dtype=np.float64)
    x = Tensor(rand(T, N, D))
    out, _ = m(x)
    out.sum().backward()
    outs, w_hh = out.numpy(), m.weight_hh_l0.numpy()
    total, dh = np.zeros_like(w_hh), np.zeros((N, H))
    for t in reversed(range(T)):         # L = Σ_t Σ h_t: dL/dh_t = 1 + what flows back from t + 1
        da = (dh + 1.0) * (1 - outs[t] ** 2)
        total += da.T @ (outs[t - 1] if t > 0 else np.zeros((N, H)))      # step t's share of dW_hh
        dh = da @ w_hh
    np.testing.assert_allclose(m.weight_hh_l0.grad.numpy(), total, rtol=1e-10)


def test_split_steps_gradcheck_and_values():
    x = rand(3, 2, 4)
    steps = F.split_steps(x)
    assert len(steps) == 3 and all(np.array_equal(s.numpy(), x[t]) for t, s in enumerate(steps))
    gradcheck(lambda a: F.concat([s * (t + 1) for t, s in enumerate(F.split_steps(a))], axis=0), [x])


# ---- embedding ---------------------------------------------------------------------------------
def test_embedding_values_and_gradcheck_with_repeated_indices():
    weight = rand(6, 3)
    idx = np.array([[0, 2, 2], [5, 2, 0]])
    np.testing.assert_array_equal(F.embedding(idx, weight).numpy(), weight[idx])
    gradcheck(lambda w: F.embedding(idx, w), [weight])
    w = Tensor(weight, requires_grad=True)
    F.embedding(idx, w).sum().backward()
    assert w.grad.numpy()[2].tolist() == [3.0] * 3 and w.grad.numpy()[1].tolist() == [0.0] * 3


@pytest.mark.parametrize("padding_idx", [2, -4])
def test_embedding_padding_row_gets_no_gradient(padding_idx):
    w = Tensor(rand(6, 3), requires_grad=True)
    F.embedding(Tensor(np.array([2, 2, 1])), w, padding_idx=padding_idx).sum().backward()
    assert not w.grad.numpy()[2].any() and w.grad.numpy()[1].tolist() == [1.0] * 3


def test_embedding_module_init_and_padding():
    e = nn.Embedding(50, 40, padding_idx=0, rng=3)
    w = e.weight.numpy()
    assert w.dtype == np.float32 and not w[0].any()
    assert abs(w[1:].std() - 1) < 0.05 and abs(w[1:].mean()) < 0.05     # N(0, 1)
    np.testing.assert_array_equal(nn.Embedding(50, 40, padding_idx=0, rng=3).weight.numpy(), w)
    assert e(np.array([[3, 0]])).shape == (1, 2, 40)
    assert [n for n, _ in e.named_parameters()] == ["weight"]


# ---- the temporal loss ---------------------------------------------------------------------
def test_temporal_loss_gradcheck_with_mask_and_ignore_index():
    scores, targets = rand(2, 5, 4), R.integers(0, 4, (2, 5))
    targets[0, 1] = -1                                             # ignored
    mask = np.ones((2, 5), bool)
    mask[1, 3:] = False
    targets[1, 4] = 99                                             # masked out: not even checked
    for reduction in ("mean", "sum", "none"):
        gradcheck(lambda s: F.temporal_softmax_cross_entropy(s, targets, mask, -1, reduction), [scores])


def test_temporal_loss_values_and_dropped_tokens():
    scores, targets = rand(2, 3, 4), np.array([[1, 0, 3], [2, 2, 0]])
    mask = np.array([[1, 1, 0], [1, 0, 1]])
    logp = scores - scores.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    per = -np.take_along_axis(logp, targets[..., None], -1)[..., 0] * mask
    none = F.temporal_softmax_cross_entropy(scores, targets, mask, reduction="none")
    np.testing.assert_allclose(none.numpy(), per, rtol=1e-12)
    assert none.numpy()[0, 2] == 0 and none.numpy()[1, 1] == 0
    assert F.temporal_softmax_cross_entropy(scores, targets, mask, reduction="sum").item() == pytest.approx(per.sum())
    assert F.temporal_softmax_cross_entropy(scores, targets, mask).item() == pytest.approx(per.sum() / 4)
    uint8 = F.temporal_softmax_cross_entropy(scores, targets.astype(np.uint8), mask)     # -100 vs uint8
    assert uint8.item() == pytest.approx(per.sum() / 4)
    # ignore_index=0 drops the targets 0 at [0, 1] and [1, 2] too: 2 tokens left
    ig = F.temporal_softmax_cross_entropy(scores, targets, mask, ignore_index=0).item()
    assert ig == pytest.approx((per[0, 0] + per[1, 0]) / 2)
    s = Tensor(scores, requires_grad=True)
    F.temporal_softmax_cross_entropy(s, targets, mask.astype(bool)).backward()
    assert not s.grad.numpy()[0, 2].any() and not s.grad.numpy()[1, 1].any()
    assert np.isnan(F.temporal_softmax_cross_entropy(scores, targets, np.zeros((2, 3), bool)).item())


# ---- modules: parameters, init, shapes, dropout ------------------------------------------------
def test_parameter_names_shapes_and_init_bounds():
    m = nn.LSTM(6, 8, num_layers=2, rng=0)
    shapes = {n: p.shape for n, p in m.named_parameters()}
    assert list(shapes) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                            "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"]
    assert shapes["weight_ih_l0"] == (32, 6) and shapes["weight_ih_l1"] == (32, 8) and shapes["bias_hh_l1"] == (32,)
    values = np.concatenate([p.numpy().ravel() for p in m.parameters()])
    bound = 1 / math.sqrt(8)
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.95 * bound
    assert abs(values.std() - bound / math.sqrt(3)) < 0.02               # U(-b, b) has std b/√3
    assert [n for n, _ in nn.GRU(3, 4, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert [n for n, _ in nn.GRUCell(3, 4).named_parameters()] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    np.testing.assert_array_equal(nn.LSTM(6, 8, num_layers=2, rng=0).weight_hh_l1.numpy(), m.weight_hh_l1.numpy())


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_shapes_of_outputs_and_states(cls):
    m = cls(D, H, num_layers=3, batch_first=True, rng=0)
    out, state = m(Tensor(rand(N, T, D).astype(np.float32)))
    h_n = state[0] if cls is nn.LSTM else state
    assert out.shape == (N, T, H) and h_n.shape == (3, N, H) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy()[:, -1], h_n.numpy()[-1], rtol=1e-6)   # last step, top layer
    out1, state1 = m(Tensor(rand(T, D).astype(np.float32)))                           # unbatched
    assert out1.shape == (T, H) and (state1[1] if cls is nn.LSTM else state1).shape == (3, H)


def test_dropout_only_between_layers_and_only_in_training():
    x = Tensor(rand(T, N, D))
    one = nn.GRU(D, H, dropout=0.5, rng=0, dtype=np.float64)                  # no layer above: no dropout
    np.testing.assert_array_equal(one(x)[0].numpy(), one.eval()(x)[0].numpy())
    two = nn.GRU(D, H, num_layers=2, dropout=0.5, rng=0, dtype=np.float64)
    plain = nn.GRU(D, H, num_layers=2, rng=0, dtype=np.float64)
    train = two(x)[0].numpy()
    assert not np.allclose(train, plain(x)[0].numpy())
    np.testing.assert_array_equal(two.eval()(x)[0].numpy(), plain(x)[0].numpy())
    again = nn.GRU(D, H, num_layers=2, dropout=0.5, rng=0, dtype=np.float64)(x)[0].numpy()
    np.testing.assert_array_equal(again, train)                               # seeded: reproducible


def test_layer_equals_a_loop_of_cells():
    """nn.LSTM is the cell unrolled over time (with the input GEMM hoisted out of the loop)."""
    m = nn.LSTM(D, H, rng=4, dtype=np.float64)
    cell = nn.LSTMCell(D, H, rng=0, dtype=np.float64)
    for a, b in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), m.parameters()):
        getattr(cell, a).data = b.data
    x = rand(T, N, D)
    out, (h_n, c_n) = m(Tensor(x))
    state = None
    for t in range(T):
        state = cell(Tensor(x[t]), state)
        np.testing.assert_allclose(out.numpy()[t], state[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(c_n.numpy()[0], state[1].numpy(), rtol=1e-12)


# ---- against PyTorch -------------------------------------------------------------------------
def _torch_pair(cls, tcls, torch, dtype, **kw):
    m = cls(D, H, rng=5, dtype=dtype, **kw)
    t = tcls(D, H, **kw).to(getattr(torch, np.dtype(dtype).name))
    t.load_state_dict({k: torch.tensor(p.numpy()) for k, p in m.named_parameters()})    # 1:1 names
    return m, t


MODULES = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]


@pytest.mark.parametrize("name, kw", MODULES, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("layers, bias, with_state", [(1, True, False), (2, True, True), (3, False, True)])
def test_module_matches_torch(name, kw, batch_first, layers, bias, with_state, device):
    torch = pytest.importorskip("torch")
    m, t = _torch_pair(getattr(nn, name), getattr(torch.nn, name), torch, np.float64, num_layers=layers,
                       bias=bias, batch_first=batch_first, **kw)
    m.to(device)
    x = rand(N, T, D) if batch_first else rand(T, N, D)
    states = [rand(layers, N, H) for _ in range(2 if name == "LSTM" else 1)] if with_state else []
    xm, xt = Tensor(x, requires_grad=True, device=device), torch.tensor(x, requires_grad=True)
    sm = [Tensor(s, requires_grad=True, device=device) for s in states]
    st = [torch.tensor(s, requires_grad=True) for s in states]
    pack = (lambda s: tuple(s) if name == "LSTM" else s[0]) if with_state else (lambda s: None)
    out_m, hn_m = m(xm, pack(sm))
    out_t, hn_t = t(xt, pack(st))
    finals_m = list(hn_m) if name == "LSTM" else [hn_m]
    finals_t = list(hn_t) if name == "LSTM" else [hn_t]
    np.testing.assert_allclose(out_m.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(finals_m, finals_t):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    g_out = rand(*out_t.shape)
    g_fin = [rand(*f.shape) for f in finals_t]
    loss_m = (out_m * Tensor(g_out, device=device)).sum()
    loss_t = (out_t * torch.tensor(g_out)).sum()
    for a, b, g in zip(finals_m, finals_t, g_fin):
        loss_m = loss_m + (a * Tensor(g, device=device)).sum()
        loss_t = loss_t + (b * torch.tensor(g)).sum()
    loss_m.backward()
    loss_t.backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for a, b in zip(sm, st):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)
    tp = dict(t.named_parameters())
    for k, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[k].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_float32_unbatched_module_matches_torch(name):
    torch = pytest.importorskip("torch")
    m, t = _torch_pair(getattr(nn, name), getattr(torch.nn, name), torch, np.float32, num_layers=2)
    x = rand(T, D).astype(np.float32)
    out_m, _ = m(Tensor(x))
    out_t, _ = t(torch.tensor(x))
    np.testing.assert_allclose(out_m.numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_module_matches_torch(name, batched):
    torch = pytest.importorskip("torch")
    m, t = _torch_pair(getattr(nn, name), getattr(torch.nn, name), torch, np.float64)
    x = rand(N, D) if batched else rand(D)
    shape = (N, H) if batched else (H,)
    hx = [rand(*shape) for _ in range(2 if name == "LSTMCell" else 1)]
    xm, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    for state in (None, hx):
        if state is None:
            args_m, args_t = (), ()
        elif name == "LSTMCell":
            args_m, args_t = ((Tensor(hx[0]), Tensor(hx[1])),), ((torch.tensor(hx[0]), torch.tensor(hx[1])),)
        else:
            args_m, args_t = (Tensor(hx[0]),), (torch.tensor(hx[0]),)
        om, ot = m(xm, *args_m), t(xt, *args_t)
        om = F.concat(list(om), axis=-1) if name == "LSTMCell" else om
        ot = torch.cat(list(ot), dim=-1) if name == "LSTMCell" else ot
        np.testing.assert_allclose(om.numpy(), ot.detach().numpy(), rtol=1e-10, atol=1e-12)
        (om * om).sum().backward()
        (ot * ot).sum().backward()
        np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(m.weight_hh.grad.numpy(), t.weight_hh.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    e = nn.Embedding(7, 3, padding_idx=1, rng=0, dtype=np.float64)
    te = torch.nn.Embedding(7, 3, padding_idx=1).double()
    te.load_state_dict({"weight": torch.tensor(e.weight.numpy())})
    idx = np.array([[1, 4, 4, 6], [0, 1, 2, 4]])
    g = rand(2, 4, 3)
    out_m, out_t = e(idx), te(torch.tensor(idx))
    np.testing.assert_array_equal(out_m.numpy(), out_t.detach().numpy())
    (out_m * Tensor(g)).sum().backward()
    (out_t * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(e.weight.grad.numpy(), te.weight.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_temporal_loss_matches_torch_cross_entropy(reduction):
    torch = pytest.importorskip("torch")
    scores, targets = rand(3, 5, 6), R.integers(0, 6, (3, 5))
    targets[0, :2] = targets[2, 4] = 0                                  # 0 = padding, ignored
    s = Tensor(scores, requires_grad=True)
    st = torch.tensor(scores, requires_grad=True)
    got = F.temporal_softmax_cross_entropy(s, targets, ignore_index=0, reduction=reduction)
    want = torch.nn.functional.cross_entropy(st.reshape(-1, 6), torch.tensor(targets).reshape(-1),
                                             ignore_index=0, reduction=reduction)
    want = want.reshape(3, 5) if reduction == "none" else want
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)
    g = rand(*got.shape)
    got.backward(g)
    want.backward(torch.tensor(g))
    np.testing.assert_allclose(s.grad.numpy(), st.grad.numpy(), rtol=1e-12, atol=1e-15)
    # a mask instead of the padding index: the same tokens dropped, the same loss
    by_mask = F.temporal_softmax_cross_entropy(scores, targets, mask=targets != 0, reduction=reduction)
    np.testing.assert_allclose(by_mask.numpy(), want.detach().numpy(), rtol=1e-12)


# ---- bad input ------------------------------------------------------------------------------
def _lstm_args(**change):
    args = dict(zip(["input", "hx", "cx", "w_ih", "w_hh", "b_ih", "b_hh"],
                    [a.astype(np.float32) for a in cell_args("lstm")]))
    args.update(change)
    return args


f32 = lambda *s: np.zeros(s, np.float32)                              # noqa: E731
SEQ = nn.LSTM(D, H, num_layers=2, rng=0)
BAD = [
    (lambda: F.lstm_cell(**_lstm_args(input=f32(N, D + 1))), ValueError, r"input must be \(N, 4\)"),
    (lambda: F.lstm_cell(**_lstm_args(input=f32(D))), ValueError, "input must be"),
    (lambda: F.lstm_cell(**_lstm_args(hx=f32(N, H + 1))), ValueError, "hx must have shape"),
    (lambda: F.lstm_cell(**_lstm_args(cx=f32(N + 1, H))), ValueError, "cx must have shape"),
    (lambda: F.lstm_cell(**_lstm_args(w_hh=f32(3 * H, H))), ValueError, r"w_hh must be \(4\*hidden_size"),
    (lambda: F.lstm_cell(**_lstm_args(w_ih=f32(3 * H, D))), ValueError, "w_ih must be"),
    (lambda: F.lstm_cell(**_lstm_args(b_ih=f32(H))), ValueError, "b_ih must have shape"),
    (lambda: F.lstm_cell(**_lstm_args(hx=np.zeros((N, H)))), TypeError, "hx has dtype float64"),
    (lambda: F.lstm_cell(**_lstm_args(input=np.zeros((N, D), np.float16))), TypeError, "input has dtype float16"),
    (lambda: F.lstm_cell(**_lstm_args(input="words")), TypeError, "input must be a Tensor"),
    (lambda: F.gru_cell(f32(N, 3 * H + 1), f32(N, H), None, f32(3 * H, H)), ValueError, "pre-projected"),
    (lambda: F.rnn_cell(f32(N, D), f32(N, H), f32(H, D), f32(H, H), nonlinearity="sigmoid"), ValueError,
     "nonlinearity"),
    (lambda: F.embedding(np.array([0.0, 1.0]), f32(5, 3)), TypeError, "indices must be integers"),
    (lambda: F.embedding(np.array([True]), f32(5, 3)), TypeError, "indices must be integers"),
    (lambda: F.embedding(np.array([0, 5]), f32(5, 3)), ValueError, r"in \[0, 5\)"),
    (lambda: F.embedding(np.array([-1]), f32(5, 3)), ValueError, r"in \[0, 5\)"),
    (lambda: F.embedding(np.array([0]), f32(5)), ValueError, "weight must be"),
    (lambda: F.embedding(np.array([0]), np.zeros((5, 3), np.int64)), TypeError, "weight must be float"),
    (lambda: F.embedding(np.array([0]), f32(5, 3), padding_idx=5), ValueError, "padding_idx"),
    (lambda: F.embedding(np.array([0]), f32(5, 3), padding_idx=1.0), TypeError, "padding_idx"),
    (lambda: nn.Embedding(5, 0), ValueError, "embedding_dim must be a positive int"),
    (lambda: nn.Embedding(5, 3, padding_idx=7), ValueError, "padding_idx"),
    (lambda: F.temporal_softmax_cross_entropy(f32(2, 3), np.zeros((2, 3), int)), ValueError,
     r"scores must be \(N, T, V\)"),
    (lambda: F.temporal_softmax_cross_entropy(np.zeros((2, 3, 4), np.float16), np.zeros((2, 3), int)),
     TypeError, "float32 or float64"),
    (lambda: F.temporal_softmax_cross_entropy(np.zeros((2, 3, 4), np.int64), np.zeros((2, 3), int)),
     TypeError, "float32 or float64"),
    (lambda: F.temporal_softmax_cross_entropy(f32(2, 3, 4), np.zeros((2, 3))), TypeError, "integer"),
    (lambda: F.temporal_softmax_cross_entropy(f32(2, 3, 4), np.zeros((3, 2), int)), ValueError,
     r"targets must be \(N, T\)"),
    (lambda: F.temporal_softmax_cross_entropy(f32(2, 3, 4), np.full((2, 3), 4)), ValueError, "outside"),
    (lambda: F.temporal_softmax_cross_entropy(f32(2, 3, 4), np.zeros((2, 3), int), mask=np.ones(3, bool)),
     ValueError, r"mask must be \(N, T\)"),
    (lambda: F.temporal_softmax_cross_entropy(f32(2, 3, 4), np.zeros((2, 3), int), mask=np.full((2, 3), 2)),
     ValueError, "0 and 1"),
    (lambda: F.temporal_softmax_cross_entropy(f32(2, 3, 4), np.zeros((2, 3), int), reduction="avg"),
     ValueError, "reduction"),
    (lambda: SEQ(Tensor(f32(T, N, D + 1))), ValueError, r"input must be \(T, N, D\)"),
    (lambda: SEQ(Tensor(f32(T, N, 1, D))), ValueError, "input must be"),
    (lambda: SEQ(Tensor(np.zeros((T, N, D)))), TypeError, "input has dtype float64"),
    (lambda: SEQ(Tensor(f32(0, N, D))), ValueError, "no time steps"),
    (lambda: SEQ(Tensor(f32(T, N, D)), Tensor(f32(2, N, H))), TypeError, r"tuple \(h0, c0\)"),
    (lambda: SEQ(Tensor(f32(T, N, D)), (Tensor(f32(1, N, H)), Tensor(f32(2, N, H)))), ValueError,
     r"h0 must be \(num_layers, N, hidden_size\)"),
    (lambda: SEQ(Tensor(f32(T, N, D)), (Tensor(f32(2, N, H)), Tensor(f32(2, N, H + 1)))), ValueError, "c0"),
    (lambda: SEQ(Tensor(f32(T, D)), (Tensor(f32(2, 1, H)), Tensor(f32(2, 1, H)))), ValueError, "unbatched"),
    (lambda: SEQ([[1.0]]), TypeError, "input must be a Tensor"),
    (lambda: nn.GRU(D, H)(Tensor(f32(T, N, D)), Tensor(np.zeros((1, N, H)))), TypeError, "h0 has dtype"),
    (lambda: nn.LSTM(D, H, bidirectional=True), NotImplementedError, "bidirectional"),
    (lambda: nn.LSTM(D, H, proj_size=2), NotImplementedError, "proj_size"),
    (lambda: nn.GRU(D, H, dropout=1.0), ValueError, "dropout"),
    (lambda: nn.RNN(D, 0), ValueError, "hidden_size must be a positive int"),
    (lambda: nn.RNN(D, H, nonlinearity="gelu"), ValueError, "nonlinearity"),
    (lambda: nn.LSTMCell(D, H)(Tensor(f32(N, D)), Tensor(f32(N, H))), TypeError, r"tuple \(h, c\)"),
    (lambda: nn.GRUCell(D, H)(Tensor(f32(N, D)), Tensor(f32(N + 1, H))), ValueError, "hx must have shape"),
    (lambda: nn.RNNCell(D, H)(Tensor(f32(2, N, D))), ValueError, "input must be"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_input_raises_a_clear_error(i):
    call, error, match = BAD[i]
    with pytest.raises(error, match=match):
        call()
