"""Checkers for the assignment notebooks: tell a student whether their code is right.

Each check compares the student's function with minidl's reference on random inputs (several
seeds, shapes the student did not choose) and, for differentiable code, runs a float64
gradient check. It prints one line per check with the worst relative error, and raises an
AssertionError with a hint when the result is wrong — so a notebook cell either says "OK" or
says what is off.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .gradcheck import gradcheck, rel_error


def _as_numpy(x):
    return backend.to_numpy(getattr(x, "data", x))


def check_close(name, got, expected, tol=1e-6):
    """Compare one result with the expected value; print the relative error; raise when off."""
    got, expected = _as_numpy(got), _as_numpy(expected)
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: your result has shape {got.shape}, expected {expected.shape}")
    err = rel_error(got, expected)
    status = "OK" if err <= tol else "WRONG"
    print(f"{name}: relative error {err:.2e} (tolerance {tol:.0e}) — {status}")
    if err > tol:
        raise AssertionError(f"{name}: relative error {err:.2e} exceeds {tol:.0e}")
    return err


def check_function(name, student_fn, reference_fn, make_inputs, trials=3, tol=1e-6, seed=0):
    """Call both functions on ``make_inputs(rng)`` for ``trials`` seeds and compare the outputs.

    make_inputs(rng) returns a tuple of positional arguments (arrays/Tensors/numbers).
    """
    worst = 0.0
    for t in range(trials):
        args = make_inputs(np.random.default_rng(seed + t))
        expected = reference_fn(*args)
        got = student_fn(*args)
        if got is None:
            raise AssertionError(f"{name}: your function returned None (did you forget `return`?)")
        got_np, exp_np = _as_numpy(got), _as_numpy(expected)
        if got_np.shape != exp_np.shape:
            raise AssertionError(f"{name}: on trial {t} your result has shape {got_np.shape}, "
                                 f"expected {exp_np.shape}")
        worst = max(worst, rel_error(got_np, exp_np))
    status = "OK" if worst <= tol else "WRONG"
    print(f"{name}: worst relative error over {trials} random trials {worst:.2e} — {status}")
    if worst > tol:
        raise AssertionError(f"{name}: relative error {worst:.2e} exceeds {tol:.0e}")
    return worst


def check_gradients(name, fn, inputs, tol=1e-6):
    """Gradient check of ``fn(*inputs)`` (float64 central differences), printed per input."""
    errors = gradcheck(fn, inputs, tol=tol, raise_exception=False)
    checked = [e for e in errors if e is not None]
    for i, e in enumerate(errors):
        if e is not None:
            print(f"{name}: gradient of input {i}: relative error {e:.2e} — {'OK' if e <= tol else 'WRONG'}")
    if any(e > tol for e in checked):
        raise AssertionError(f"{name}: a gradient is wrong (relative error {max(checked):.2e}); "
                             "check your backward pass")
    return errors
