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


def well_conditioned_trials(reference, make_args, count, tol, seeds=range(50), wiggle=1e-5, tries=5):
    """Like ``trials``, but only trials whose answer float32 rounding cannot move: ``count`` of them.

    An iterative reference (several Adam steps on an image) can be chaotic for some inputs: a ReLU that
    flips or a pixel that reaches a clip bound one step earlier changes the answer by far more than the
    rounding that caused it. BLAS kernels round differently on different processors, so such a trial
    would fail a correct answer on a student's laptop. A trial is kept when multiplying each float
    argument by (1 + wiggle * N(0, 1)), ``tries`` times, moves the answer by at most tol / 4 (tol: the
    grading tolerance, measured as ``rel_error``). wiggle 1e-5 is about 80 float32 ulps: wide enough to
    find a knife edge near the trajectory that one processor's rounding happens to miss. (Measured on the
    Gram-synthesis trials: stable ones move by at most 6e-5, chaotic ones by 7.5e-3 or more, on AMD Zen
    and on OpenBLAS's Sandy Bridge kernels alike.) That is not a promise that every machine keeps the same
    trials — one trial rejected where the references were frozen passed on another AMD EPYC — so a builder
    passes ``seeds`` = the seeds it froze, and a machine where one of them is unstable raises here.
    """
    from minidl.gradcheck import rel_error

    def wiggled(a, rng):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return (a * (1 + wiggle * rng.standard_normal(a.shape))).astype(a.dtype)
        return a

    out = []
    for seed in seeds:
        args = make_args(np.random.default_rng(seed))
        answer = as_numpy(reference(*args))
        rng = np.random.default_rng(10_000 + seed)
        if all(rel_error(as_numpy(reference(*(wiggled(a, rng) for a in args))), answer) <= tol / 4
               for _ in range(tries)):
            out.append((args, answer))
            if len(out) == count:
                return out
    raise RuntimeError(f"well_conditioned_trials: only {len(out)} of {count} trials are stable to rounding "
                       f"within {tol / 4:g} among seeds {seeds}")
