"""Sequence layers: Embedding; RNNCell, LSTMCell, GRUCell; RNN, LSTM, GRU (PyTorch's API).

Lecture idea (CS231n lecture 10): a recurrent layer unrolls one cell over time,
``h_t = cell(x_t, h_{t-1})`` with the *same* weights at every step, and a multi-layer RNN feeds
layer l's hidden sequence to layer l + 1 as its input. The math of a step is one Function in
minidl/functional/recurrent.py; this file only holds the weights and runs the loop over time —
backpropagation through time is the autograd engine walking that loop backwards.

PyTorch's semantics, so a ``torch.nn.LSTM`` state dict loads 1:1 (same names and shapes):

* parameters ``weight_ih_l{k}`` (G·H, D or H), ``weight_hh_l{k}`` (G·H, H), ``bias_ih_l{k}``,
  ``bias_hh_l{k}`` (G·H,) with G = 1 (RNN), 4 (LSTM, gates i, f, g, o), 3 (GRU, gates r, z, n);
  the cells name them ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``; Embedding ``weight``.
  Every weight starts from U(−1/√H, 1/√H) (Embedding: N(0, 1), the padding row 0), drawn from
  ``rng`` (a numpy Generator or seed) in that order.
* input (T, N, D), or (N, T, D) with ``batch_first=True``, or unbatched (T, D); initial state
  ``h0`` (num_layers, N, H) (LSTM: a tuple ``(h0, c0)``), zeros when omitted. Returns
  ``output, h_n``: the last layer's h at every step (T, N, H) (batch_first: (N, T, H)) and every
  layer's last h (num_layers, N, H); LSTM returns ``output, (h_n, c_n)``.
* ``dropout`` p: in training mode, dropout on each layer's output except the last one's.

Not supported (a NotImplementedError says so): ``bidirectional=True``, LSTM ``proj_size > 0``,
and packed (variable-length) sequences — pad them and mask the loss instead
(``F.temporal_softmax_cross_entropy(..., mask=...)`` / ``ignore_index``).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor
from ..functional.recurrent import split_steps
from . import init
from .module import Module, Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _size(value, name, owner):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def _as_tensor(x, name, owner):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
        return Tensor._wrap(x)
    raise TypeError(f"{owner}: {name} must be a Tensor, got {type(x).__name__}")


class Embedding(Module):
    """A (num_embeddings, embedding_dim) table of word vectors: integer indices (*) -> (*, embedding_dim)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, rng=None, dtype=None):
        super().__init__()
        self.num_embeddings = _size(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _size(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if not isinstance(padding_idx, numbers.Integral) or isinstance(padding_idx, bool) \
                    or not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be an int in [{-num_embeddings}, "
                                 f"{num_embeddings}) or None, got {padding_idx!r}")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype or backend.default_dtype))
        init.normal_(self.weight, 0.0, 1.0, rng)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0                  # a padding word is "nothing" at first

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self):
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


def _uniform_init(module, hidden_size, rng):
    """PyTorch's reset_parameters for every recurrent layer: each weight ~ U(−1/√H, 1/√H)."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        init.uniform_(p, -bound, bound, rng)


def _step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One cell step -> (h', c') (c' is None except for the LSTM)."""
    if mode == "LSTM":
        return F.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)
    if mode == "GRU":
        return F.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh), None
    return F.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, "tanh" if mode == "RNN_TANH" else "relu"), None


class _CellBase(Module):
    """A single step; input (N, D) or unbatched (D,), state (N, H) / (H,) or None (zeros)."""

    def __init__(self, mode, input_size, hidden_size, bias=True, rng=None, dtype=None):
        super().__init__()
        name, self.mode = type(self).__name__, mode
        self.input_size = _size(input_size, "input_size", name)
        self.hidden_size = _size(hidden_size, "hidden_size", name)
        self.bias = bool(bias)
        G, H, dtype = _GATES[self.mode], self.hidden_size, dtype or backend.default_dtype
        self.weight_ih = Parameter(np.empty((G * H, self.input_size), dtype))
        self.weight_hh = Parameter(np.empty((G * H, H), dtype))
        self.bias_ih = Parameter(np.empty(G * H, dtype)) if bias else None
        self.bias_hh = Parameter(np.empty(G * H, dtype)) if bias else None
        _uniform_init(self, H, rng)

    def _run(self, input, states):
        """One step from ``states`` ([h] or [h, c], None: zeros) -> (h', c'), c' None but for the LSTM."""
        name = type(self).__name__
        x = _as_tensor(input, "input", name)
        if x.ndim not in (1, 2):
            raise ValueError(f"{name}: input must be (N, {self.input_size}) or unbatched "
                             f"({self.input_size},), got shape {x.shape}")
        unbatched = x.ndim == 1                      # torch's unbatched form: run it as N = 1
        shape = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)
        full = []
        for k, s in enumerate(states):
            if s is None:
                s = Tensor(backend.get_array_module(x.data).zeros(shape, self.weight_hh.dtype))
            s = _as_tensor(s, "hx", name)
            if s.shape != shape:
                which = "hx" if len(states) == 1 else f"hx[{k}]"
                raise ValueError(f"{name}: {which} must have shape {shape} for input of shape {x.shape}, "
                                 f"got {s.shape}")
            full.append(s.unsqueeze(0) if unbatched else s)
        if unbatched:
            x = x.unsqueeze(0)
        h, c = _step(self.mode, x, full[0], full[1] if len(full) > 1 else None,
                     self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if unbatched:
            h, c = h.squeeze(0), (c.squeeze(0) if c is not None else None)
        return h, c

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class RNNCell(_CellBase):
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu): ``cell(input, hx=None) -> h'``."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", rng=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         bias, rng, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        return self._run(input, [hx])[0]


class LSTMCell(_CellBase):
    """One LSTM step: ``cell(input, (h, c)=None) -> (h', c')``; gates i, f, g, o."""

    def __init__(self, input_size, hidden_size, bias=True, rng=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, rng, dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c) or None, got {type(hx).__name__}")
        return self._run(input, list(hx) if hx is not None else [None, None])


class GRUCell(_CellBase):
    """One GRU step: ``cell(input, hx=None) -> h'``; gates r, z, n."""

    def __init__(self, input_size, hidden_size, bias=True, rng=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, rng, dtype)

    def forward(self, input, hx=None):
        return self._run(input, [hx])[0]


class _RNNBase(Module):
    """The multi-layer loop shared by RNN, LSTM and GRU (see the module docstring)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, rng=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if bidirectional:
            raise NotImplementedError(f"{name}: bidirectional=True is not supported by minidl")
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size > 0 (LSTM with projections) is not supported by minidl")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be a number in [0, 1), got {dropout!r}")
        self.mode, self.dropout = mode, float(dropout)
        self.input_size = _size(input_size, "input_size", name)
        self.hidden_size = _size(hidden_size, "hidden_size", name)
        self.num_layers = _size(num_layers, "num_layers", name)
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        # one Generator for the weights, then every dropout mask (None: minidl's default one)
        self.rng = None if rng is None else backend.get_rng(rng)
        G, H, dtype = _GATES[mode], self.hidden_size, dtype or backend.default_dtype
        for k in range(self.num_layers):                   # PyTorch's names and order
            setattr(self, f"weight_ih_l{k}", Parameter(np.empty((G * H, self.input_size if k == 0 else H), dtype)))
            setattr(self, f"weight_hh_l{k}", Parameter(np.empty((G * H, H), dtype)))
            if bias:
                setattr(self, f"bias_ih_l{k}", Parameter(np.empty(G * H, dtype)))
                setattr(self, f"bias_hh_l{k}", Parameter(np.empty(G * H, dtype)))
        _uniform_init(self, H, self.rng)

    def _layer(self, k):
        get = lambda n: getattr(self, f"{n}_l{k}", None)   # noqa: E731 (biases may be absent)
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _initial(self, hx, n, unbatched, name):
        """The initial state of every layer as (num_layers, N, H) (unbatched: N = 1)."""
        L, H, w = self.num_layers, self.hidden_size, self.weight_hh_l0
        if hx is None:
            return Tensor(backend.get_array_module(w.data).zeros((L, n, H), w.dtype))
        hx, shape = _as_tensor(hx, name, type(self).__name__), (L, H) if unbatched else (L, n, H)
        if hx.shape != shape:
            raise ValueError(f"{type(self).__name__}: {name} must be (num_layers, N, hidden_size) = {shape}"
                             f"{' (unbatched input: (num_layers, hidden_size))' if unbatched else ''}, "
                             f"got shape {hx.shape}")
        if hx.dtype != w.dtype:
            raise TypeError(f"{type(self).__name__}: {name} has dtype {hx.dtype}, the weights {w.dtype}")
        return hx.unsqueeze(1) if unbatched else hx

    def forward(self, input, hx=None):
        name = type(self).__name__
        x = _as_tensor(input, "input", name)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            layout = "(N, T, D)" if self.batch_first else "(T, N, D)"
            raise ValueError(f"{name}: input must be {layout} or unbatched (T, D) with D = input_size = "
                             f"{self.input_size}, got shape {x.shape}")
        if x.dtype != self.weight_hh_l0.dtype:
            raise TypeError(f"{name}: input has dtype {x.dtype} but the weights {self.weight_hh_l0.dtype} "
                            f"(cast the input, or the module with .double() / .float())")
        unbatched = x.ndim == 2
        x = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if self.batch_first else x)  # (T, N, D)
        T, n = x.shape[0], x.shape[1]
        if T == 0:
            raise ValueError(f"{name}: input has no time steps (shape {tuple(input.shape)})")
        if self.mode == "LSTM":
            if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
                raise TypeError(f"LSTM: hx must be a tuple (h0, c0) or None, got {type(hx).__name__}")
            h0, c0 = hx if hx is not None else (None, None)
            cs = split_steps(self._initial(c0, n, unbatched, "c0"))
        else:
            h0, cs = hx, [None] * self.num_layers
        hs = split_steps(self._initial(h0, n, unbatched, "h0"))
        h_n, c_n = [], []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer(k)
            # x_t W_ihᵀ + b_ih for every t at once: one (T·N, D) GEMM instead of T small ones.
            projected = F.linear(x.reshape(T * n, x.shape[2]), w_ih, b_ih).reshape(T, n, -1)
            h, c, outputs = hs[k], cs[k], []
            for x_t in split_steps(projected):
                h, c = _step(self.mode, x_t, h, c, None, w_hh, None, b_hh)
                outputs.append(h)
            x = F.stack(outputs)                                              # (T, N, H)
            h_n.append(h)
            c_n.append(c)
            if self.dropout and self.training and k < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True, self.rng)
        output = x.squeeze(1) if unbatched else (x.transpose(0, 1) if self.batch_first else x)
        h_n = F.stack(h_n).squeeze(1) if unbatched else F.stack(h_n)         # (L, N, H) / (L, H)
        if self.mode != "LSTM":
            return output, h_n
        return output, (h_n, F.stack(c_n).squeeze(1) if unbatched else F.stack(c_n))

    def extra_repr(self):
        extra = "".join(f", {k}={getattr(self, k, default)!r}" for k, default in
                        (("num_layers", 1), ("nonlinearity", "tanh"), ("bias", True), ("batch_first", False),
                         ("dropout", 0.0)) if getattr(self, k, default) != default)
        return f"{self.input_size}, {self.hidden_size}{extra}"


class RNN(_RNNBase):
    """Elman RNN, h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh) (or relu), ``num_layers`` stacked."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, rng=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, rng=rng, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """Long short-term memory, ``num_layers`` stacked: ``lstm(input, (h0, c0)=None) -> output, (h_n, c_n)``."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, rng=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, rng, dtype)


class GRU(_RNNBase):
    """Gated recurrent unit, ``num_layers`` stacked: ``gru(input, h0=None) -> output, h_n``."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, rng=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, rng=rng, dtype=dtype)
