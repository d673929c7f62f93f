"""Tensor and reverse-mode automatic differentiation (the autograd engine).

A ``Tensor`` wraps an array (``.data``: NumPy on the CPU, CuPy on a GPU). Every differentiable
operation is a ``Function`` subclass with a ``forward`` and a ``backward`` written side by side:

* ``forward(ctx, *arrays, **options)`` computes the output *array(s)* and may save what the
  backward pass needs on ``ctx`` (``ctx.save_for_backward(...)`` or plain attributes);
* ``backward(ctx, *grad_outputs)`` receives dLoss/dOutput (one array per output) and returns
  dLoss/dInput, one entry per positional input (``None`` where there is no gradient).

``Function.apply(...)`` runs forward and, when some input requires a gradient, records a node
(the ``ctx``) that points back to the inputs: that is the computation graph. ``loss.backward()``
walks the graph once in reverse topological order (iteratively, so deep graphs cannot hit
Python's recursion limit) and *adds* gradients into ``.grad`` of the leaf tensors — a tensor
used twice receives the sum of both contributions (the multivariate chain rule).

A leaf's first gradient is copied, so ``.grad`` never changes when something else does — unless
the Function declares that its backward returns fresh arrays no one else holds
(``returns_fresh_grads = True``, e.g. a convolution's weight gradient, just made by a GEMM): then
``.grad`` adopts the array, which saves a copy per weight and step.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from . import backend

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def _grad_mode(enabled: bool):
    previous = is_grad_enabled()
    _state.grad_enabled = enabled
    try:
        yield
    finally:
        _state.grad_enabled = previous


@contextlib.contextmanager
def override_backward(function, backward):
    """Replace ``function``'s backward rule inside a ``with`` block (for every call site).

    ``backward(ctx, *grad_outputs)`` has the signature of ``Function.backward``. Guided
    backpropagation (lecture 12) uses it to change ReLU's rule whether a model calls
    ``nn.ReLU`` modules or ``F.relu`` — the override lives in the engine, not in hooks on
    particular modules, so no ReLU can be missed. Overrides nest; the previous one returns
    when the block ends.
    """
    overrides = _backward_overrides()
    previous = overrides.get(function)
    overrides[function] = backward
    try:
        yield
    finally:
        if previous is None:
            overrides.pop(function, None)
        else:
            overrides[function] = previous


def _backward_overrides():
    if not hasattr(_state, "overrides"):
        _state.overrides = {}
    return _state.overrides


def no_grad():
    """Context manager (and decorator) that records no graph: for evaluation and updates."""
    return _grad_mode(False)


def enable_grad():
    return _grad_mode(True)


class Context:
    """One node of the graph: remembers the Function, its inputs and what forward saved."""

    def __init__(self, function, args):
        self.function = function
        self.inputs = args                      # positional args of apply (Tensors or not)
        self.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        self.saved_tensors = ()
        self.outputs_meta = ()                  # (shape, dtype, xp) of each output

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays


class Function:
    """Base class of every differentiable operation (see the module docstring)."""

    #: True when ``backward`` returns arrays it has just made and keeps nowhere (not on ``ctx``,
    #: not the incoming gradient or a view of it, not one array for two inputs): the engine may
    #: then hand them to a leaf's ``.grad`` without copying. False (the safe default): copied.
    returns_fresh_grads = False

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = Context(cls, args)
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *arrays, **kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        record = is_grad_enabled() and any(ctx.needs_input_grad)
        results = []
        for i, o in enumerate(outs):
            t = Tensor._wrap(o, record)
            if record:
                t._ctx, t._output_index = ctx, i
            results.append(t)
        if record:
            ctx.outputs_meta = tuple((o.shape, o.dtype, backend.get_array_module(o)) for o in outs)
        else:
            ctx.inputs = ()                     # nothing will walk back: drop the references
        return tuple(results) if isinstance(out, tuple) else results[0]


class Tensor:
    """An n-dimensional array that can remember how it was computed.

    ``data`` is the NumPy/CuPy array (writable); ``grad`` is a Tensor filled by ``backward()``.
    """

    __array_priority__ = 1000  # so ``ndarray * Tensor`` calls Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = backend.as_array(data, dtype=dtype, device=device)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None            # the node that produced this tensor (None for leaves)
        self._output_index = 0
        self._retain_grad = False

    @classmethod
    def _wrap(cls, array, requires_grad=False):
        """A Tensor around an array an op computed: no copy, no dtype change (NumPy scalars
        from full reductions become 0-d arrays)."""
        t = cls.__new__(cls)
        t.data = array if isinstance(array, np.ndarray) or backend.is_cupy_array(array) \
            else np.asarray(array)
        t.requires_grad, t.grad, t._ctx, t._output_index, t._retain_grad = \
            requires_grad, None, None, 0, False
        return t

    # ---- basic properties -------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self._ctx is None)
    T = property(lambda self: self.transpose())

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extra = f", device='{self.device}'" if self.device != "cpu" else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({body}, dtype={self.dtype}{extra}{grad})"

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def numpy(self) -> np.ndarray:
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    # ---- devices, dtypes, graph control ----------------------------------------------
    # to(device=None, dtype=None): a differentiable copy on another device / with another dtype,
    # attached by functional/methods.py with the other ops (its Function lives in device.py)
    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def astype(self, dtype):
        return self.to(dtype=dtype)

    def detach(self):
        """Same data, cut from the graph (shares memory, like PyTorch)."""
        return Tensor._wrap(self.data)

    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retain_grad = True
        return self

    def zero_grad(self):
        self.grad = None

    # ---- the backward pass ------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires a gradient."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input of the computation had requires_grad=True)")
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() without a grad argument needs a scalar output, "
                                   f"got shape {self.shape}; pass grad= of the same shape")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"grad has shape {grad.shape}, expected the output's shape {self.shape}")
        if self._ctx is None:
            _accumulate(self, grad)
            return
        run_backward(self, grad)


def _accumulate(t, g, owned=False):
    """Add g into t.grad (allocating it on first use).

    The first gradient is copied — another tensor, a saved value or the caller may hold the
    same array — unless the caller owns it (``owned``: a Function with ``returns_fresh_grads``
    made it): then t.grad adopts it (that copy was 5 % of a conv's fwd+bwd), if it has the dtype
    and the C-contiguous layout a copy would have (PyTorch likewise adopts only layout-matching
    gradients). Later gradients are added out of place, never into an array someone else may see.
    """
    if t.grad is None:
        adopt = owned and g.dtype == t.dtype and g.flags.c_contiguous
        t.grad = Tensor._wrap(g) if adopt else Tensor(g.copy() if g.dtype == t.dtype else g.astype(t.dtype))
    else:
        t.grad.data = t.grad.data + g


def _topological_order(root):
    """Nodes reachable from ``root`` with every node after all nodes it depends on (iterative DFS)."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for a in node.inputs:
            if isinstance(a, Tensor) and a._ctx is not None and id(a._ctx) not in visited:
                stack.append((a._ctx, False))
    return order


def run_backward(output, grad):
    """Propagate ``grad`` (dL/d output) through the graph that produced ``output``."""
    pending = {id(output._ctx): [None] * len(output._ctx.outputs_meta)}
    pending[id(output._ctx)][output._output_index] = grad
    for node in reversed(_topological_order(output._ctx)):
        grads_out = pending.pop(id(node), None)
        if grads_out is None:
            continue
        # Outputs nobody used get a zero gradient (e.g. the second result of a two-output op).
        grads_out = [g if g is not None else xp.zeros(shape, dtype)
                     for g, (shape, dtype, xp) in zip(grads_out, node.outputs_meta)]
        override = _backward_overrides().get(node.function)
        grads_in = (override or node.function.backward)(node, *grads_out)
        grads_in = list(grads_in) if isinstance(grads_in, tuple) else [grads_in]
        grads_in += [None] * (len(node.inputs) - len(grads_in))
        # fresh arrays by the Function's own declaration (an override makes no such promise)
        fresh = node.function.returns_fresh_grads and override is None
        for i, (a, needed) in enumerate(zip(node.inputs, node.needs_input_grad)):
            g = grads_in[i]
            if not needed or g is None:
                continue
            if g.shape != a.shape:
                raise RuntimeError(f"{node.function.__name__}.backward returned a gradient of shape "
                                   f"{g.shape} for an input of shape {a.shape}")
            if g.dtype != a.dtype:   # a gradient has its tensor's dtype (float32 y in a float64 loss)
                g = g.astype(a.dtype)
            if a._ctx is None or a._retain_grad:
                # a leaf may adopt g only if it is fresh and no other input receives it too;
                # a non-leaf's retained .grad is always a copy (g also flows on to its node)
                owned = fresh and a._ctx is None and sum(h is g for h in grads_in) == 1
                _accumulate(a, g, owned=owned)
            if a._ctx is not None:
                slots = pending.setdefault(id(a._ctx), [None] * len(a._ctx.outputs_meta))
                k = a._output_index
                slots[k] = g if slots[k] is None else slots[k] + g


def tensor(data, requires_grad=False, dtype=None, device=None) -> Tensor:
    """Create a Tensor from Python data, a NumPy/CuPy array or another Tensor (copies the data)."""
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.get_array_module(data)
    copied = xp.array(data) if xp is not np or isinstance(data, np.ndarray) else data
    return Tensor(copied, requires_grad=requires_grad, dtype=dtype, device=device)


# The operators and methods (x + y, x.sum(), x.relu(), ...) live with their Functions in
# minidl/functional; functional/methods.py attaches them to Tensor when the package is imported.
