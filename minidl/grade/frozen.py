"""Expected results frozen as data, and the check that compares a student's function with them.

A check that calls minidl's own ``vis.saliency_map`` to find the expected answer can be passed by an
answer that calls ``vis.saliency_map`` too. So the expected answers are computed once, by
``assignments/make_references.py`` from minidl's reference implementations, and committed as small
``.npz`` files in ``minidl/grade/references/`` (one per notebook). A notebook's check cell loads
them with ``frozen_cases("02_convolution")`` and calls ``check_cases``.

The file layout, readable with ``np.load`` alone (no pickle):

    "<case name>/<i>/args/<j>"      argument j of trial i (a 0-d array stands for a Python number)
    "<case name>/<i>/expected"      the expected result of trial i

``check_cases`` prints one line per check ("... — OK") and raises an ``AssertionError`` whose
message names the function and, when it recognises a typical mistake (a missing ``return``,
transposed axes, a flipped sign, a constant factor, an overflow), says so.
"""
from __future__ import annotations

import os
import pathlib
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..gradcheck import rel_error

REFERENCES = pathlib.Path(__file__).resolve().parent / "references"


@dataclass
class Case:
    """One trial: the arguments to call the student's function with, and the expected result."""
    args: tuple
    expected: np.ndarray


# ---- storage ---------------------------------------------------------------------------------

def _to_python(a):
    a = np.asarray(a)
    return a.item() if a.ndim == 0 else a


def load_cases(path) -> dict[str, list[Case]]:
    """Read a references file: {case name: [Case, ...]} in trial order."""
    grouped: dict[str, dict[int, dict]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            name, trial, kind, *j = key.split("/")      # "<name>/<i>/args/<j>" or "<name>/<i>/expected"
            slot = grouped.setdefault(name, {}).setdefault(int(trial), {"args": {}})
            if kind == "args":
                slot["args"][int(j[0])] = _to_python(data[key])
            else:
                slot["expected"] = data[key]
    return {name: [Case(tuple(t["args"][j] for j in sorted(t["args"])), t["expected"])
                   for _, t in sorted(trials.items())]
            for name, trials in grouped.items()}


def frozen_cases(assignment: str) -> dict[str, list[Case]]:
    """The frozen cases of one notebook, e.g. ``frozen_cases("02_convolution")``."""
    path = REFERENCES / f"{assignment}.npz"
    if not path.exists():
        raise FileNotFoundError(f"no frozen references for {assignment!r} ({path}); "
                                "a TA makes them with python assignments/make_references.py")
    return load_cases(path)


def _plain_array(a, what):
    a = np.asarray(backend.to_numpy(getattr(a, "data", a)))
    if a.dtype == object:       # would need pickle to load: references are numbers only
        raise TypeError(f"{what}: not numeric data ({type(a.flat[0]).__name__ if a.size else 'empty object array'})")
    return a


def save_cases(path, cases: dict[str, list[tuple]]):
    """Write {case name: [(args tuple, expected array), ...]} to ``path`` atomically: the data goes
    to a temporary file first and replaces the old file only once complete, so a failed save never
    destroys the previous references."""
    arrays = {}
    for name, trials in cases.items():
        if "/" in name:
            raise ValueError(f"case name {name!r} must not contain '/'")
        for i, (args, expected) in enumerate(trials):
            for j, a in enumerate(args):
                arrays[f"{name}/{i}/args/{j}"] = _plain_array(a, f"{name!r} trial {i} argument {j}")
            arrays[f"{name}/{i}/expected"] = _plain_array(expected, f"{name!r} trial {i} expected result")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.chmod(tmp, 0o644)            # mkstemp makes it private; a references file is for everyone
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ---- comparison --------------------------------------------------------------------------------

def _as_numpy(x):
    return np.asarray(backend.to_numpy(getattr(x, "data", x)))


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


def diagnose(got: np.ndarray, expected: np.ndarray) -> str:
    """A hint for a wrong result when the mistake is a recognisable one, else ''."""
    if got.shape != expected.shape:
        if got.ndim == expected.ndim and sorted(got.shape) == sorted(expected.shape):
            return "the axes look transposed or permuted: compare the axis order with the description"
        if got.size == expected.size:
            return "the right number of values in the wrong shape: a reshape is missing or wrong"
        return ""
    if got.dtype.kind in "fc" and not np.all(np.isfinite(got)) and np.all(np.isfinite(expected)):
        return ("your result has NaN or inf where the expected one is finite: an overflow? "
                "(subtract the maximum before exp, use exp(-|x|))")
    if expected.dtype.kind not in "fc" or not np.any(expected):
        return ""
    if rel_error(got, -expected) < 1e-6:
        return "your result is exactly the negative of the expected one: a sign is flipped"
    scale = float(np.vdot(got.ravel(), expected.ravel()) / np.vdot(expected.ravel(), expected.ravel()))
    if abs(scale - 1) > 1e-3 and scale != 0 and rel_error(got, scale * expected) < 1e-6:
        return f"your result is the expected one times {scale:.4g}: a missing or extra constant factor"
    return ""


class _StrictFloatingPoint:
    """Overflow, division by zero and invalid operations raise (underflow to 0 is fine): how a
    check demands a numerically stable formula instead of accepting one with a RuntimeWarning."""

    def __enter__(self):
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("error", RuntimeWarning)
        self._errstate = np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")
        self._errstate.__enter__()

    def __exit__(self, *exc):
        self._errstate.__exit__(*exc)
        self._warnings.__exit__(*exc)
        return False


def check_cases(name, fn, cases, tol=1e-6, hint="", strict=False):
    """Call ``fn(*case.args)`` for every frozen case and compare with ``case.expected``.

    tol: the largest relative error accepted (``minidl.gradcheck.rel_error``); 0 means exact, which
    is also how integer results (indices) are always compared. strict: floating-point overflow,
    division by zero and invalid operations inside ``fn`` fail the check (a stability test).
    hint: added to the failure message (what to look at for this particular function).
    """
    worst = 0.0
    for t, case in enumerate(cases):
        args = tuple(_copy(a) for a in case.args)     # the student's function may write into them
        expected = np.asarray(case.expected)
        try:
            if strict:
                with _StrictFloatingPoint():
                    got = fn(*args)
            else:
                got = fn(*args)
        except (FloatingPointError, RuntimeWarning) as e:
            raise AssertionError(f"{name}: your code raised a floating-point error on trial {t} ({e}): the "
                                 "formula is not numerically stable for these inputs") from None
        if got is None:
            raise AssertionError(f"{name}: your function returned None (did you forget `return`?)")
        got = _as_numpy(got)
        extra = f" — {hint}" if hint else ""
        if got.shape != expected.shape:
            why = diagnose(got, expected)
            raise AssertionError(f"{name}: on trial {t} your result has shape {got.shape}, expected "
                                 f"{expected.shape}" + (f" — {why}" if why else "") + extra)
        if expected.dtype.kind in "iub" or tol == 0:
            wrong = int(np.sum(got != expected))
            err = 0.0 if wrong == 0 else float("inf")
            if wrong:
                at = tuple(int(i) for i in np.argwhere(got != expected)[0])
                why = diagnose(got, expected)
                raise AssertionError(f"{name}: on trial {t}, {wrong} of {expected.size} values differ; the first "
                                     f"at index {at}: yours {got[at]}, expected {expected[at]}"
                                     + (f" — {why}" if why else "") + extra)
        else:
            err = rel_error(got.astype(np.float64), expected.astype(np.float64))
            if not err <= tol:      # also catches NaN
                why = diagnose(got, expected)
                raise AssertionError(f"{name}: relative error {err:.2e} on trial {t} exceeds {tol:.0e}"
                                     + (f" — {why}" if why else "") + extra)
        worst = max(worst, err)
    print(f"{name}: {len(cases)} frozen case{'s' if len(cases) != 1 else ''}, worst relative error "
          f"{worst:.2e} (tolerance {tol:.0e}) — OK")
    return worst
