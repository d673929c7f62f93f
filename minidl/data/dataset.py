"""Map-style datasets: anything with ``__len__`` and ``__getitem__`` (PyTorch's ``torch.utils.data``).

A dataset answers one question — "what is sample ``i``?" — and nothing else. Batching and
shuffling live in ``DataLoader`` (``loader.py``), augmentation in ``transforms.py``. Keeping the
three apart is what lets the same training loop run on generated shapes, digits or photos
(CS231n lecture 8 trains every task of the lecture on such datasets).

Samples are NumPy arrays (or tuples/dicts of them). The training loop turns a batch into a
``Tensor`` and moves it to the device; the data side never touches the GPU.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..backend import get_rng, to_numpy


class Dataset:
    """Base class of map-style datasets: subclasses define ``__len__`` and ``__getitem__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


def _check_index(index, length: int, name: str = "index") -> int:
    """An int index in ``[-length, length)`` turned non-negative; IndexError otherwise (like lists)."""
    if not isinstance(index, numbers.Integral) or isinstance(index, bool):
        raise TypeError(f"{name} must be an int, got {type(index).__name__}")
    index = int(index)
    if not -length <= index < length:
        raise IndexError(f"{name} {index} is out of range for a dataset of length {length}")
    return index % length


class TensorDataset(Dataset):
    """Sample ``i`` is ``tuple(a[i] for a in arrays)``: e.g. ``TensorDataset(images, labels)``.

    Every array must have the same length along axis 0. Tensors are accepted and stored as
    NumPy arrays (the loader hands out NumPy batches).
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(to_numpy(getattr(a, "data", a)) for a in arrays)
        lengths = [a.shape[0] if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = [a.shape for a in self.arrays]
            raise ValueError(f"TensorDataset arrays must share their first dimension, got shapes {shapes}")

    def __getitem__(self, index):
        index = _check_index(index, len(self))
        return tuple(a[index] for a in self.arrays)

    def __len__(self):
        return self.arrays[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (a view: nothing is copied)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if not -n <= i < n]
        if bad:
            raise IndexError(f"Subset indices {bad[:5]} are out of range for a dataset of length {n}")

    def __getitem__(self, index):
        return self.dataset[self.indices[_check_index(index, len(self))]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, rng=None):
    """Split ``dataset`` into non-overlapping random ``Subset`` s of the given ``lengths``.

    ``lengths`` are either integers summing to ``len(dataset)``, or fractions summing to 1: then
    each part gets ``floor(fraction * n)`` samples and the leftover samples are dealt one by one
    to the parts in order (PyTorch's rule). ``rng`` is a ``numpy.random.Generator`` or an int
    seed (``None``: minidl's default generator, reset by ``minidl.manual_seed``), so a split is
    reproducible: ``random_split(ds, [0.8, 0.2], rng=0)`` always gives the same two halves.
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("lengths must not be empty")
    if any(not isinstance(x, numbers.Real) or x < 0 for x in lengths):
        raise ValueError(f"lengths must be non-negative numbers, got {lengths}")
    if all(isinstance(x, numbers.Integral) for x in lengths):
        counts = [int(x) for x in lengths]
    elif abs(sum(lengths) - 1.0) < 1e-6 and all(x <= 1 for x in lengths):
        counts = [int(np.floor(n * x)) for x in lengths]
        for i in range(n - sum(counts)):      # deal the remainder round-robin
            counts[i % len(counts)] += 1
    else:
        raise ValueError(f"lengths must be integers summing to len(dataset)={n} or fractions summing to 1, "
                         f"got {lengths}")
    if sum(counts) != n:
        raise ValueError(f"sum of lengths {sum(counts)} does not equal len(dataset)={n}")
    order = get_rng(rng).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[start:stop].tolist()) for start, stop in zip(bounds[:-1], bounds[1:])]
