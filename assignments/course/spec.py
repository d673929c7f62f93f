"""Helpers shared by every notebook's cell list: the grading spec of a part, and frozen trials."""
from __future__ import annotations

import numpy as np


def part(name, title, points, forbid=(), requires=()):
    """One graded part: ``forbid`` names an answer may not use (minidl's own version of the technique),
    ``requires`` the parts whose functions it builds on."""
    return {"name": name, "title": title, "points": points, "forbid": list(forbid), "requires": list(requires)}


def as_numpy(x):
    """A Tensor's values as a NumPy array; any other value through np.asarray."""
    from minidl import Tensor, backend
    return backend.to_numpy(x.data) if isinstance(x, Tensor) else np.asarray(x)


def trials(reference, make_args, seeds):
    """[(args, reference(*args)) for each seed]: make_args(rng) draws the arguments of one trial."""
    out = []
    for seed in seeds:
        args = make_args(np.random.default_rng(seed))
        out.append((args, as_numpy(reference(*args))))
    return out
