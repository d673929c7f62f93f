"""Keep freed memory for the next array: glibc's allocator told not to hand it back at once.

A training step allocates and frees the same arrays again and again: each op's output, each
gradient, the im2col columns. glibc's malloc serves a large request (above a threshold that
starts at 128 KB and moves with what was freed) with fresh pages from the kernel and returns
them when the array is freed; it also gives the top of its heap back once more than a
threshold of it is free. Either way, the next array of that size is new memory again, and
each of its 4 KB pages costs a page fault — the kernel finds and zeroes a page — on first
write. Measured on the lecture-8 FCN's training step (Zen 4, 2 cores): ~900 page faults per
step, 3-4 ms of the step in the kernel; with the two thresholds fixed high, 2-4 faults, ~1.3 ms,
and the epoch 0.628 -> 0.584 s (medians of 4 fresh processes each; docs/performance.md).

So ``import minidl`` fixes both thresholds: arrays up to 32 MB (glibc's largest allowed
value) come from the heap and return to it, and the heap is trimmed only beyond 256 MB of free
space. Memory freed by a step stays with the process (its footprint is its peak, as with
PyTorch's caching allocators) and is reused by the next. Only on Linux with glibc; skipped when
you set either threshold yourself (``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, or
``glibc.malloc.mmap_threshold`` / ``trim_threshold`` in ``GLIBC_TUNABLES``) or
``MINIDL_DEFAULT_MALLOC=1``.
"""
from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3      # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 256 * 2**20


def keep_freed_memory() -> bool:
    """Set the two thresholds (see the module docstring); True when they were set."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if os.environ.get("MINIDL_DEFAULT_MALLOC") == "1" or "MALLOC_MMAP_THRESHOLD_" in os.environ \
            or "MALLOC_TRIM_THRESHOLD_" in os.environ or "malloc.mmap_threshold" in tunables \
            or "malloc.trim_threshold" in tunables:
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success, 0 when glibc refuses the value
    mmap_set = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    trim_set = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return mmap_set and trim_set
