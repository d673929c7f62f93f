"""Module and Parameter: how a network holds its weights and its sub-networks.

Lecture idea: a network is a function with parameters. ``Module`` finds its parameters by
looking at its own attributes (a ``Parameter`` or another ``Module`` assigned in ``__init__``
is registered automatically, as in PyTorch), so ``model.parameters()`` hands every weight to
the optimizer, ``model.state_dict()`` names every weight for saving, and ``model.train()`` /
``model.eval()`` switch dropout and batch norm for the whole tree at once.

Forward hooks (``register_forward_hook``) let code look inside a model without changing it:
lecture 12's visualizations capture activations by layer name with them.

Checkpoints (``model.save(path)`` / ``model.load(path)``, bottom of this file) are ``.npz`` files
of plain arrays. Saving is atomic (a crash mid-save keeps the previous file), loading never
unpickles, and ``load_state_dict`` is all or nothing: it checks every key, shape and dtype
before changing a single weight.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from .. import backend
from ..autograd import Tensor


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

    def load_state_dict(self, state, strict=True, cast=False):
        """Copy arrays into the parameters/buffers, keeping each one's device and dtype.

        All or nothing: every key, shape and dtype is checked (and every array converted)
        before the first one is assigned, so a load that fails leaves the model as it was.

        strict: a missing or unexpected key is a ``KeyError``; without it they are skipped.
        cast: a stored dtype other than the model's is a ``TypeError`` naming the key and both
            dtypes, unless ``cast=True`` converts it (e.g. weights stored in float16 to halve the
            file, loaded into a float32 model). A shape mismatch is always a ``ValueError``.
        """
        own = dict(self.named_parameters())
        buffers = {k: (m, attr) for k, m, attr in self.named_buffers()}
        missing = [k for k in list(own) + list(buffers) if k not in state]
        unexpected = [k for k in state if k not in own and k not in buffers]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        # Phase 1: check and convert everything; nothing in the model changes yet.
        updates = []
        for k, value in state.items():
            if k not in own and k not in buffers:
                continue
            value = np.asarray(backend.to_numpy(value.data if isinstance(value, Tensor) else value))
            if value.dtype.kind not in "biufc":          # object/string arrays are not weights
                raise TypeError(f"load_state_dict: {k!r} holds {value.dtype} data, not numbers")
            if k in own:
                what, current = "parameter", own[k].data
            else:
                m, attr = buffers[k]
                what, current = "buffer", getattr(m, attr)
            if current is None or not hasattr(current, "dtype"):    # an unset buffer takes the array
                updates.append((k, value.copy()))
                continue
            if value.shape != current.shape:
                raise ValueError(f"load_state_dict: {what} {k!r} has shape {value.shape} in the state "
                                 f"but {current.shape} in the model")
            if value.dtype != current.dtype and not cast:
                raise TypeError(f"load_state_dict: {what} {k!r} is {value.dtype} in the state but "
                                f"{current.dtype} in the model; pass cast=True to convert it")
            # astype copies: the model never shares memory with the caller's arrays.
            updates.append((k, backend.to_device(value.astype(current.dtype), backend.device_of(current))))
        # Phase 2: plain assignments, which cannot fail halfway.
        for k, value in updates:
            if k in own:
                own[k].data = value
            else:
                m, attr = buffers[k]
                object.__setattr__(m, attr, value)
        return self

    def save(self, path):
        """Save the state dict to ``path`` exactly (no suffix added) as an ``.npz`` of plain arrays.

        Atomic: the old file at ``path`` is replaced only once the new one is complete on disk,
        so a crash or ``kill -9`` mid-save leaves the previous checkpoint intact (see ``save_npz``).
        """
        save_npz(path, self.state_dict())

    def load(self, path, strict=True, cast=False):
        """Load a file written by ``save``: all or nothing, ``strict`` and ``cast`` as in
        ``load_state_dict``. Raises ``FileNotFoundError`` when ``path`` does not exist and
        ``CheckpointError`` (a ``ValueError``) naming it when it is not a complete checkpoint."""
        return self.load_state_dict(load_npz(path), strict=strict, cast=cast)

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


# ---- checkpoint files ------------------------------------------------------------------------
#
# A checkpoint is an ``.npz`` file: a zip archive holding one ``.npy`` file per array, named by
# the state-dict key. Two things make it safe to rely on:
#   * writing is atomic — the data goes to a temporary file in the same folder, is forced to disk
#     (fsync), and only then renamed over the target (``os.replace`` is atomic on one file
#     system). A reader, or a crash at any moment, sees the old file or the new one, never half.
#   * reading never unpickles (``allow_pickle=False``: a file can carry data, not code) and reads
#     every array before returning, so a truncated or corrupt file fails here, with its name.

# What a damaged zip or .npy raises while being read (a wrong CRC, a cut-off member, a header
# the zip reader does not support, a garbled .npy header, an object array and pickle refused).
_DAMAGED = (zipfile.BadZipFile, EOFError, ValueError, OSError, zlib.error, NotImplementedError, RuntimeError)


class CheckpointError(ValueError):
    """A file that is not a complete minidl checkpoint: truncated, corrupt, or not an ``.npz``
    of plain arrays. The message names the file."""


def save_npz(path, arrays):
    """Write ``arrays`` (name -> array) to ``path`` atomically as an ``.npz`` of plain arrays.

    ``path`` is the file written, whatever its suffix (``np.savez`` given a name would append
    ``.npz``). If anything fails — an exception, a full disk, the process killed — the previous
    file at ``path`` is untouched; after an exception no temporary file is left behind
    (only a kill, which runs no clean-up, can leave a hidden ``.<name>.*.tmp`` next to it).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path!r}: the folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            # What np.savez does, written out: one uncompressed .npy member per array. Writing
            # through our own file object keeps the name exact, and allow_pickle=False refuses
            # object arrays here rather than producing a file that cannot be loaded.
            with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, array in arrays.items():
                    with zf.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                        np.lib.format.write_array(member, backend.to_numpy(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())        # the bytes are on disk before the rename makes them visible
        os.chmod(tmp, 0o644)            # mkstemp makes the file private; a checkpoint is not
        os.replace(tmp, path)
    except BaseException:               # KeyboardInterrupt too: never leave the temporary file
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)               # make the rename itself durable


def _fsync_folder(folder):
    """Flush a folder's entry list to disk (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_npz(path):
    """Read every array of an ``.npz`` file into a dict (name -> NumPy array), without pickle.

    Raises ``FileNotFoundError`` when ``path`` does not exist, and ``CheckpointError`` naming
    ``path`` when it is not a complete ``.npz`` of plain arrays (truncated by a crash, corrupt,
    a pickle, a single ``.npy``, or holding object arrays, which would need pickle).
    """
    path = os.fspath(path)
    what = f"{path!r} is not a valid, complete minidl checkpoint (.npz of plain arrays)"
    with open(path, "rb") as fh:        # FileNotFoundError names the file
        try:
            loaded = np.load(fh, allow_pickle=False)
        except _DAMAGED as e:
            raise CheckpointError(f"{what}: {type(e).__name__}: {e}") from e
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{what}: it holds a single .npy array, not named arrays")
        arrays = {}
        with loaded:
            for key in loaded.files:
                try:
                    # Reading each array here (not lazily later) is what finds a damaged member.
                    arrays[key] = loaded[key]
                except _DAMAGED as e:
                    raise CheckpointError(f"{what}: entry {key!r}: {type(e).__name__}: {e}") from e
                if not isinstance(arrays[key], np.ndarray):     # a zip member that is no .npy
                    raise CheckpointError(f"{what}: entry {key!r} is not an array")
    return arrays
