"""DataLoader: turn a dataset into a stream of mini-batches (PyTorch's ``DataLoader``, single process).

Stochastic gradient descent wants each step to see a random mini-batch, and each epoch to
visit every sample once in a new order. ``DataLoader`` does exactly that:

1. pick an order of the indices (``shuffle=True``: a fresh permutation each epoch);
2. cut it into chunks of ``batch_size`` (``drop_last=True`` drops a short last chunk);
3. fetch the samples of a chunk and *collate* them into one batch.

Shuffling is reproducible: ``rng`` is a ``numpy.random.Generator`` or an int seed, and each
``iter(loader)`` (each epoch) draws the next permutation from it. Two loaders made with the
same seed therefore produce the same sequence of epochs.

Batches are NumPy arrays; the training loop wraps them in ``Tensor`` s and moves them to the
device (the data side stays on the CPU, as in PyTorch).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..backend import get_rng, to_numpy
from ..autograd import Tensor


def _is_number(x) -> bool:
    return isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, (str, bytes))


def default_collate(batch):
    """Combine a list of samples into one batch.

    * arrays (or Tensors) of one shape are stacked: ``N`` arrays ``(C, H, W)`` → ``(N, C, H, W)``;
    * arrays of different shapes — e.g. the ``(K_i, 4)`` boxes of images holding different numbers
      of objects — cannot be stacked and are returned as a list of the ``N`` arrays;
    * numbers become a 1-D array: Python ints → int64, Python floats → float32 (minidl's default
      dtype), NumPy scalars keep their dtype;
    * dicts (e.g. detection targets) are kept as a list of the ``N`` dicts (torchvision's detection
      convention: each image has its own number of boxes);
    * tuples/lists are collated field by field: ``[(img, label), ...]`` → ``(images, labels)``;
    * anything else (strings, None, ...) is returned as a list.

    Note that arrays whose shapes *happen* to agree are stacked; put variable-length arrays in a
    dict (as ``ShapesDataset`` does) to always get lists.
    """
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError("default_collate expects a non-empty list of samples")
    first = batch[0]
    if isinstance(first, dict):
        return list(batch)
    if isinstance(first, (tuple, list)):
        if any(not isinstance(s, (tuple, list)) or len(s) != len(first) for s in batch):
            raise ValueError("every sample of a batch must be a tuple/list of the same length")
        return tuple(default_collate([s[i] for s in batch]) for i in range(len(first)))
    if isinstance(first, Tensor):
        batch = [to_numpy(s.data) if isinstance(s, Tensor) else s for s in batch]   # Tensors → arrays
        first = batch[0]
    if isinstance(first, np.ndarray):
        if all(isinstance(s, np.ndarray) and s.shape == first.shape for s in batch):
            return np.stack(batch)
        return list(batch)
    if _is_number(first) and all(_is_number(s) for s in batch):
        if all(isinstance(s, np.generic) for s in batch):
            return np.array(batch)
        if all(isinstance(s, numbers.Integral) for s in batch):
            return np.array(batch, dtype=np.int64)
        return np.array(batch, dtype=np.float32)
    return list(batch)


class DataLoader:
    """Iterate over ``dataset`` in mini-batches.

    Args:
        dataset: a map-style dataset (``__len__`` and ``__getitem__``).
        batch_size: samples per batch (a positive int).
        shuffle: visit the samples in a new random order each epoch.
        drop_last: drop the last batch when it is shorter than ``batch_size``.
        collate_fn: list of samples → batch (default: ``default_collate``).
        rng: ``numpy.random.Generator`` or int seed for the shuffling; ``None`` uses minidl's
            default generator as it is when the loader is made (so call ``minidl.manual_seed``
            before creating the loader).

    ``len(loader)`` is the number of batches per epoch.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None, rng=None):
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError("collate_fn must be callable")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        # An int seed becomes one Generator owned by the loader: each epoch draws the next
        # permutation from it, so epoch 2 differs from epoch 1 but both are reproducible.
        self.rng = get_rng(rng) if shuffle or rng is not None else None

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _epoch_order(self) -> np.ndarray:
        n = len(self.dataset)
        return self.rng.permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self):
        order = self._epoch_order()
        for start in range(0, len(order), self.batch_size):
            indices = order[start:start + self.batch_size]
            if self.drop_last and len(indices) < self.batch_size:
                return
            yield self.collate_fn([self.dataset[int(i)] for i in indices])
