"""Recurrent cells and word embeddings: embedding, rnn_cell, lstm_cell, gru_cell (+ split_steps).

Lecture idea (CS231n lecture 10, RNNs): a recurrent network applies the *same* cell at every
time step, ``h_t = cell(x_t, h_{t-1})``. Each cell step below is ONE Function whose backward is
derived by hand, next to its forward. Backpropagation *through time* needs no code of its own:
the sequence layers (minidl/nn/recurrent.py) call the cell once per step, the autograd graph
chains the steps, and ``loss.backward()`` walks them in reverse — the gradient reaching h_{t-1}
is the cell's dh output at step t, and each shared weight receives the sum over the steps.

Every cell is an affine map, ``gates = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh`` (N, G·H) with G = 1
(RNN), 4 (LSTM: blocks i, f, g, o) or 3 (GRU: r, z, n) in PyTorch's layouts w_ih (G·H, D),
w_hh (G·H, H), followed by gate math. The sequence layers *hoist* the input term out of the
time loop: x_t W_ihᵀ + b_ih for all T steps is one (T·N, D) GEMM before the loop, and the cell
gets ``w_ih=None`` and that pre-projected input (N, G·H) — one GEMM with T times the rows runs
faster than T small ones, forward and backward (docs/recurrent.md has the numbers).
``embedding`` turns word indices into vectors (rows of a (V, D) table), for the captioners of
lectures 8 and 10. Shapes: N batch, D input size, H hidden size, V vocabulary, T time steps.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from ..kernels.index_add import index_add
from ._args import integer, tensor, tensor_args


# ---- the embedding table ----------------------------------------------------------------------
class Embedding(Function):
    """out[...] = weight[indices[...]]; backward: dweight[v] = sum of the gradients of every
    position that read row v (a word used twice gets two contributions: index_add, not `=`)."""

    returns_fresh_grads = True

    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        ctx.save_for_backward(indices)
        ctx.shape, ctx.padding_idx = weight.shape, padding_idx
        return weight[indices]                                      # (*, D)

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_tensors
        xp = backend.get_array_module(g)
        dweight = xp.zeros(ctx.shape, dtype=g.dtype)
        index_add(dweight, indices.reshape(-1), g.reshape(-1, ctx.shape[1]))
        if ctx.padding_idx is not None:
            dweight[ctx.padding_idx] = 0                            # the padding row never learns
        return dweight, None, None


@tensor_args("weight")
def embedding(indices, weight, padding_idx=None):
    """Look up rows of ``weight`` (V, D): integer ``indices`` of any shape (*) -> (*, D).

    ``padding_idx`` (an int in [-V, V) or None): that row receives no gradient, as in
    ``torch.nn.functional.embedding`` (its value is whatever the table holds; nn.Embedding
    starts it at zero). Indices must be integers in [0, V).
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, embedding_dim), got {weight.shape}")
    if weight.dtype not in (np.float32, np.float64):
        raise TypeError(f"embedding: weight must be float32 or float64, got dtype {weight.dtype}")
    V = weight.shape[0]
    data = indices.data if isinstance(indices, Tensor) else tensor(indices, "indices", "embedding").data
    if data.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers (int32/int64), got dtype {data.dtype}")
    data = backend.to_device(data, weight.device)                   # on the table's device
    if data.size and backend.any_true((data < 0) | (data >= V)):
        raise ValueError(f"embedding: indices must be in [0, {V}) for a table of {V} rows, "
                         f"got values in [{int(data.min())}, {int(data.max())}]")
    if padding_idx is not None:
        padding_idx = integer(padding_idx, "padding_idx", "embedding")
        if not -V <= padding_idx < V:
            raise ValueError(f"embedding: padding_idx must be in [{-V}, {V}) or None, got {padding_idx}")
        padding_idx %= V                                            # a negative one counts from the end
    return Embedding.apply(weight, data, padding_idx)


# ---- shared by the three cells ------------------------------------------------------------------
def _affine(x, h, w_ih, w_hh, b_ih, b_hh):
    """(x W_ihᵀ + b_ih, h W_hhᵀ + b_hh), each (N, G·H); w_ih None: x is already the first."""
    gi = x if w_ih is None else x @ w_ih.T
    gh = h @ w_hh.T
    if b_hh is not None:
        gh += b_hh                                                  # gh is new: added in place
    return (gi if b_ih is None else gi + b_ih), gh


def _affine_grads(need, x, h, w_ih, w_hh, dgi, dgh):
    """Backward of ``_affine`` (matmul.py's rule, dA = dC Bᵀ and dB = Aᵀ dC) for the inputs
    (x, h, w_ih, w_hh, b_ih, b_hh) flagged in ``need``; a bias's gradient is its gates' column sum."""
    nx, nh, nwi, nwh, nbi, nbh = need
    dx = (dgi if w_ih is None else dgi @ w_ih) if nx else None
    dh = dgh @ w_hh if nh else None
    dwi = dgi.T @ x if nwi and w_ih is not None else None
    dwh = dgh.T @ h if nwh else None
    return dx, dh, dwi, dwh, dgi.sum(axis=0) if nbi else None, dgh.sum(axis=0) if nbh else None


def _sigmoid_(a, xp):
    """σ(a) in place, as 0.5·tanh(a/2) + 0.5: the same function, one transcendental, no overflow."""
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


# ---- the cells ---------------------------------------------------------------------------------
class RNNCell(Function):
    """h' = tanh(a) (or relu(a)), a = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh.
    Backward: da = dh' ⊙ (1 − h'²) (tanh) or dh' ⊙ [h' > 0] (relu); then the affine rule."""

    returns_fresh_grads = True

    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity):
        xp = backend.get_array_module(h)
        gi, a = _affine(x, h, w_ih, w_hh, b_ih, b_hh)
        a += gi
        out = xp.tanh(a, out=a) if nonlinearity == "tanh" else xp.maximum(a, 0, out=a)
        ctx.save_for_backward(x, h, w_ih, w_hh, out)
        ctx.nonlinearity = nonlinearity
        return out                                                  # (N, H)

    @staticmethod
    def backward(ctx, g):
        x, h, w_ih, w_hh, out = ctx.saved_tensors
        da = g * (1 - out * out) if ctx.nonlinearity == "tanh" else g * (out > 0)
        return (*_affine_grads(ctx.needs_input_grad[:6], x, h, w_ih, w_hh, da, da), None)


class LSTMCell(Function):
    """i, f, o = σ(·), g = tanh(·) of the four H-column blocks of the gates;
    c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c').  Two outputs (h', c'), so two incoming gradients.

    Backward (dh', dc' in; σ' = σ(1 − σ), tanh' = 1 − tanh²):
        dc  = dc' + dh' ⊙ o ⊙ (1 − tanh²(c'))       (c' reaches the loss directly and through h')
        d(pre-activations) i, f, g, o = dc ⊙ g ⊙ i(1−i),  dc ⊙ c ⊙ f(1−f),  dc ⊙ i ⊙ (1−g²),
                                        dh' ⊙ tanh(c') ⊙ o(1−o)
        dc_prev = dc ⊙ f                               (the "gradient highway": no weight matrix)
    """

    returns_fresh_grads = True

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh):
        xp = backend.get_array_module(h)
        H = h.shape[1]
        gi, a = _affine(x, h, w_ih, w_hh, b_ih, b_hh)
        a += gi                                                     # (N, 4H) pre-activations
        _sigmoid_(a[:, :2 * H], xp)                                 # i, f (activated in place)
        xp.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])           # g
        _sigmoid_(a[:, 3 * H:], xp)                                 # o
        i, f, gg, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c_new = f * c + i * gg
        tc = xp.tanh(c_new)
        ctx.save_for_backward(x, h, c, w_ih, w_hh, a, tc)
        return o * tc, c_new

    @staticmethod
    def backward(ctx, dh_new, dc_new):
        x, h, c, w_ih, w_hh, a, tc = ctx.saved_tensors
        H = h.shape[1]
        i, f, gg, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        dc = dc_new + dh_new * o * (1 - tc * tc)
        da = backend.get_array_module(a).empty_like(a)
        da[:, :H] = dc * gg * i * (1 - i)
        da[:, H:2 * H] = dc * c * f * (1 - f)
        da[:, 2 * H:3 * H] = dc * i * (1 - gg * gg)
        da[:, 3 * H:] = dh_new * tc * o * (1 - o)
        need = ctx.needs_input_grad
        dx, dh, dwi, dwh, dbi, dbh = _affine_grads(need[:2] + need[3:], x, h, w_ih, w_hh, da, da)
        return dx, dh, dc * f if need[2] else None, dwi, dwh, dbi, dbh


class GRUCell(Function):
    """r, z = σ(gi + gh) of the first two blocks; n = tanh(gi_n + r ⊙ gh_n); h' = (1 − z) ⊙ n + z ⊙ h
    with gi = x W_ihᵀ + b_ih, gh = h W_hhᵀ + b_hh (PyTorch's GRU: r gates gh_n *including* b_hn).

    Backward (dh' in):  dn = dh' ⊙ (1 − z),  dz = dh' ⊙ (h − n),  da_n = dn ⊙ (1 − n²),
        dr = da_n ⊙ gh_n;  d(pre-activations) r, z = dr ⊙ r(1−r), dz ⊙ z(1−z);
        dgi = [da_r, da_z, da_n],  dgh = [da_r, da_z, da_n ⊙ r],  dh = dgh W_hh + dh' ⊙ z.
    """

    returns_fresh_grads = True

    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih, b_hh):
        xp = backend.get_array_module(h)
        H = h.shape[1]
        gi, gh = _affine(x, h, w_ih, w_hh, b_ih, b_hh)
        rz = _sigmoid_(gi[:, :2 * H] + gh[:, :2 * H], xp)            # (N, 2H): r then z
        r, z = rz[:, :H], rz[:, H:]
        n = xp.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        ctx.save_for_backward(x, h, w_ih, w_hh, rz, n, gh[:, 2 * H:])
        return n + z * (h - n)                                      # = (1 − z) n + z h

    @staticmethod
    def backward(ctx, g):
        x, h, w_ih, w_hh, rz, n, gh_n = ctx.saved_tensors
        H = h.shape[1]
        r, z = rz[:, :H], rz[:, H:]
        da_n = g * (1 - z) * (1 - n * n)
        dgi = backend.get_array_module(g).empty((g.shape[0], 3 * H), dtype=g.dtype)
        dgi[:, :H] = da_n * gh_n * r * (1 - r)
        dgi[:, H:2 * H] = g * (h - n) * z * (1 - z)
        dgi[:, 2 * H:] = da_n
        dgh = dgi.copy()
        dgh[:, 2 * H:] *= r
        dx, dh, dwi, dwh, dbi, dbh = _affine_grads(ctx.needs_input_grad, x, h, w_ih, w_hh, dgi, dgh)
        if dh is not None:
            dh += g * z                                             # h' = ... + z ⊙ h directly
        return dx, dh, dwi, dwh, dbi, dbh


# ---- argument checks and the public functions ----------------------------------------------
def _check_cell(op, G, x, h, w_ih, w_hh, b_ih, b_hh, c=None):
    """Shapes, dtypes and devices of a cell's arguments (G gate blocks of H rows each)."""
    if w_hh.ndim != 2 or w_hh.shape[0] != G * w_hh.shape[1]:
        raise ValueError(f"{op}: w_hh must be ({G}*hidden_size, hidden_size), got shape {w_hh.shape}")
    GH, H = w_hh.shape
    if w_ih is not None and (w_ih.ndim != 2 or w_ih.shape[0] != GH):
        raise ValueError(f"{op}: w_ih must be ({GH}, input_size) for hidden_size {H}, got shape {w_ih.shape}")
    D = GH if w_ih is None else w_ih.shape[1]
    if x.ndim != 2 or x.shape[1] != D:
        what = "the pre-projected x W_ihᵀ + b_ih, as w_ih is None" if w_ih is None else "input_size of w_ih"
        raise ValueError(f"{op}: input must be (N, {D}) ({what}), got shape {x.shape}")
    for name, t in (("hx", h), ("cx", c), ("b_ih", b_ih), ("b_hh", b_hh)):
        shape = (GH,) if name[0] == "b" else (x.shape[0], H)       # biases (G·H,), states (N, H)
        if t is not None and t.shape != shape:
            raise ValueError(f"{op}: {name} must have shape {shape} for input of shape {x.shape} and "
                             f"hidden_size {H}, got {t.shape}")
    for name, t in (("input", x), ("hx", h), ("cx", c), ("w_ih", w_ih), ("b_ih", b_ih), ("b_hh", b_hh)):
        if t is not None and (t.dtype != w_hh.dtype or t.dtype not in (np.float32, np.float64)):
            raise TypeError(f"{op}: {name} has dtype {t.dtype}; every tensor must have one dtype, "
                            f"float32 or float64 (w_hh: {w_hh.dtype})")
        if t is not None and t.device != w_hh.device:
            raise ValueError(f"{op}: {name} is on {t.device} but w_hh on {w_hh.device}")


@tensor_args("input", "hx", "w_ih", "w_hh", "b_ih", "b_hh", optional=("w_ih", "b_ih", "b_hh"))
def rnn_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One Elman RNN step: input (N, D), hx (N, H) -> h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (N, H).

    w_ih (H, D), w_hh (H, H), biases (H,); ``nonlinearity`` "tanh" or "relu".
    ``w_ih=None``: ``input`` is the pre-projected x W_ihᵀ + b_ih, (N, H) (see the module docstring).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_cell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    _check_cell("rnn_cell", 1, input, hx, w_ih, w_hh, b_ih, b_hh)
    return RNNCell.apply(input, hx, w_ih, w_hh, b_ih, b_hh, nonlinearity)


@tensor_args("input", "hx", "cx", "w_ih", "w_hh", "b_ih", "b_hh", optional=("w_ih", "b_ih", "b_hh"))
def lstm_cell(input, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: input (N, D), hx and cx (N, H) -> (h', c'), each (N, H).

    w_ih (4H, D), w_hh (4H, H), biases (4H,), gate blocks in PyTorch's order i, f, g, o.
    ``w_ih=None``: ``input`` is the pre-projected x W_ihᵀ + b_ih, (N, 4H).
    """
    _check_cell("lstm_cell", 4, input, hx, w_ih, w_hh, b_ih, b_hh, c=cx)
    return LSTMCell.apply(input, hx, cx, w_ih, w_hh, b_ih, b_hh)


@tensor_args("input", "hx", "w_ih", "w_hh", "b_ih", "b_hh", optional=("w_ih", "b_ih", "b_hh"))
def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step: input (N, D), hx (N, H) -> h' (N, H) (PyTorch's r, z, n equations, GRUCell).

    w_ih (3H, D), w_hh (3H, H), biases (3H,), gate blocks in the order r, z, n.
    ``w_ih=None``: ``input`` is the pre-projected x W_ihᵀ + b_ih, (N, 3H).
    """
    _check_cell("gru_cell", 3, input, hx, w_ih, w_hh, b_ih, b_hh)
    return GRUCell.apply(input, hx, w_ih, w_hh, b_ih, b_hh)


# ---- cutting a sequence into its time steps ----------------------------------------------------
class SplitSteps(Function):
    """(T, ...) -> T tensors x[0], ..., x[T-1] as ONE node with T outputs. T separate ``x[t]``
    slices would each send back a zero-filled (T, ...) gradient: O(T²) work for a sequence."""

    @staticmethod
    def forward(ctx, x):
        return tuple(x[t] for t in range(x.shape[0]))

    @staticmethod
    def backward(ctx, *grads):
        return backend.get_array_module(grads[0]).stack(grads)


@tensor_args("x")
def split_steps(x):
    """The steps of a time-major sequence (T, ...) as a tuple of T tensors (torch.unbind(x, 0))."""
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"split_steps: x must have at least one step along axis 0, got shape {x.shape}")
    return SplitSteps.apply(x)
