"""Module and Parameter: how a network holds its weights and its sub-networks.

Lecture idea: a network is a function with parameters. ``Module`` finds its parameters by
looking at its own attributes (a ``Parameter`` or another ``Module`` assigned in ``__init__``
is registered automatically, as in PyTorch), so ``model.parameters()`` hands every weight to
the optimizer, ``model.state_dict()`` names every weight for saving, and ``model.train()`` /
``model.eval()`` switch dropout and batch norm for the whole tree at once.

Forward hooks (``register_forward_hook``) let code look inside a model without changing it:
lecture 12's visualizations capture activations by layer name with them.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a learnable weight: it requires a gradient and a Module registers it."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: subclass it, set attributes in ``__init__``, write ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration by assignment ------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before assigning attributes")
        is_buffer = name in self._buffers and not isinstance(value, (Parameter, Module))
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif is_buffer:
            self._buffers[name] = True       # assigning a new array to a buffer keeps it a buffer
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """State that is saved with the model but not trained (e.g. batch norm's running mean)."""
        object.__setattr__(self, name, array)
        self._buffers[name] = True

    def register_parameter(self, name, param):
        setattr(self, name, param)

    def add_module(self, name, module):
        setattr(self, name, module)

    # ---- calling ----------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_hook(self, hook):
        """``hook(module, inputs, output)`` runs after every forward; returning a value replaces
        the output. Returns a handle whose ``remove()`` unregisters the hook."""
        key = object()
        self._forward_hooks[key] = hook
        return _HookHandle(self._forward_hooks, key)

    # ---- walking the tree -------------------------------------------------------------
    def named_modules(self, prefix=""):
        """Yield ``(name, module)`` for this module and every descendant, depth first."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix=""):
        seen = set()
        for mod_name, m in self.named_modules(prefix):
            for k, p in m._parameters.items():
                if p is not None and id(p) not in seen:  # a shared weight is listed once
                    seen.add(id(p))
                    yield (f"{mod_name}.{k}" if mod_name else k), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        for mod_name, m in self.named_modules():
            for k in m._buffers:
                yield (f"{mod_name}.{k}" if mod_name else k), m, k

    def get_submodule(self, name):
        """The module at a dotted path, e.g. ``model.get_submodule("features.3")``."""
        m = self
        for part in name.split(".") if name else []:
            if part not in m._modules:
                raise KeyError(f"{type(m).__name__} has no submodule {part!r} (path {name!r}); "
                               f"children: {list(m._modules)}")
            m = m._modules[part]
        return m

    def apply(self, fn):
        """Call ``fn(module)`` on every submodule and on self (children first), e.g. for init."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    # ---- modes, gradients, devices ----------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag=True):
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def to(self, device=None, dtype=None):
        """Move/cast every parameter and buffer in place (the same Parameter objects, so an
        optimizer built before ``to`` still holds them)."""
        for p in self.parameters():
            data = backend.to_device(p.data, device) if device is not None else p.data
            p.data = data.astype(dtype) if dtype is not None else data
            if p.grad is not None:
                p.grad = None
        for _, m, k in self.named_buffers():
            value = getattr(m, k)
            if value is not None and hasattr(value, "dtype"):
                value = backend.to_device(value, device) if device is not None else value
                if dtype is not None and value.dtype.kind == "f":
                    value = value.astype(dtype)
                object.__setattr__(m, k, value)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    # ---- saving and loading -----------------------------------------------------------
    def state_dict(self):
        """Name -> NumPy array (copied to the host) of every parameter and buffer."""
        state = OrderedDict((k, backend.to_numpy(p.data).copy()) for k, p in self.named_parameters())
        for k, m, attr in self.named_buffers():
            value = getattr(m, attr)
            if value is not None:
                state[k] = backend.to_numpy(value).copy()
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters/buffers (keeping each one's device and dtype).

        With ``strict`` a missing or unexpected key is an error; a shape mismatch always is.
        """
        own = dict(self.named_parameters())
        buffers = {k: (m, attr) for k, m, attr in self.named_buffers()}
        missing = [k for k in list(own) + list(buffers) if k not in state]
        unexpected = [k for k in state if k not in own and k not in buffers]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for k, value in state.items():
            value = backend.to_numpy(getattr(value, "data", value))
            if k in own:
                p = own[k]
                if value.shape != p.shape:
                    raise ValueError(f"load_state_dict: {k!r} has shape {value.shape} in the state "
                                     f"but {p.shape} in the model")
                p.data = backend.to_device(value.astype(p.dtype), p.device)
            elif k in buffers:
                m, attr = buffers[k]
                current = getattr(m, attr)
                if current is not None and hasattr(current, "shape") and current.shape != value.shape:
                    raise ValueError(f"load_state_dict: buffer {k!r} has shape {value.shape} in the "
                                     f"state but {current.shape} in the model")
                device = backend.device_of(current) if current is not None else "cpu"
                dtype = current.dtype if current is not None and hasattr(current, "dtype") else value.dtype
                object.__setattr__(m, attr, backend.to_device(value.astype(dtype), device))
        return self

    def save(self, path):
        """Save the state dict as a ``.npz`` file (plain arrays; loading needs no pickle)."""
        np.savez(path, **self.state_dict())

    def load(self, path, strict=True):
        with np.load(path, allow_pickle=False) as f:
            return self.load_state_dict({k: f[k] for k in f.files}, strict=strict)

    # ---- printing ---------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"  ({k}): " + repr(m).replace("\n", "\n  ") for k, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")


class _HookHandle:
    def __init__(self, table, key):
        self.table, self.key = table, key

    def remove(self):
        self.table.pop(self.key, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
