"""Gradient checking: compare backward() with central finite differences, in float64.

Lecture idea: an analytic gradient is only trusted after it matches the numerical one,

    df/dx_i ≈ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),

whose error is O(eps²). float32 has ~7 digits, too few for this comparison, so every check
runs in float64. A non-scalar output is reduced to a scalar with a fixed random projection
``L = sum(out * R)``: the check then covers every output element at once.

``rel_error(a, b) = max|a - b| / max(max(|a| + |b|), tiny)`` — one relative error for the
whole array (it does not blow up on individual near-zero entries).
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` with a report naming the input and the worst index."""


def rel_error(a, b, tiny=1e-12) -> float:
    a, b = backend.to_numpy(getattr(a, "data", a)), backend.to_numpy(getattr(b, "data", b))
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a) + np.abs(b))), tiny)
    return float(np.max(np.abs(a - b))) / scale


def numerical_grad(f, x, eps=1e-6):
    """Central-difference gradient of a scalar function ``f`` at array ``x`` (same shape as x).

    ``f`` is called with ``x`` itself after each element is perturbed in place (and restored).
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)                 # a view: writing into it perturbs x
    for i in range(flat.size):
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(f(x))
        flat[i] = old - eps
        minus = float(f(x))
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(fn, inputs, eps=1e-6, tol=1e-6, seed=0, raise_exception=True, device="cpu"):
    """Check ``fn(*inputs)``'s gradients with respect to every floating-point input.

    inputs: arrays or Tensors; floating ones are copied to float64 Tensors that require a
    gradient, others (integer labels, indices, bools) are passed through unchanged.
    Returns a list with the worst relative error per checked input (None for skipped ones);
    raises ``GradcheckError`` with a readable report when an error exceeds ``tol``.
    ``device="cuda"`` runs ``fn`` on the GPU (the finite differences are still taken on the host).
    """
    # The projection's stream is salted: drawn from plain default_rng(seed) it would equal a test input
    # drawn from default_rng(0) of the output's shape, and for a scale-invariant op with a symmetric
    # Jacobian (instance/batch norm: J x = 0) the projected gradient Jᵀx would vanish — a correct
    # backward would fail on a 0/0 relative error.
    rng = np.random.default_rng((seed, 0x67726164))
    arrays, checked = [], []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else x
        if hasattr(data, "dtype") and data.dtype.kind == "f":
            arrays.append(backend.to_numpy(data).astype(np.float64))
            checked.append(True)
        else:
            arrays.append(x)
            checked.append(False)

    def as_inputs(requires_grad):
        return [Tensor(a.copy(), requires_grad=requires_grad, device=device) if c else a
                for a, c in zip(arrays, checked)]

    ts = as_inputs(True)
    out = fn(*ts)
    if out.dtype != np.float64:
        raise GradcheckError(f"gradcheck: the output has dtype {out.dtype}; an op downcast float64 input")
    projection = backend.to_device(rng.standard_normal(out.shape), device)
    (out * projection).sum().backward()

    def scalar(*xs):
        with_values = [Tensor(x, device=device) if c else x for x, c in zip(xs, checked)]
        from .autograd import no_grad
        with no_grad():
            return float((fn(*with_values).data * projection).sum())  # float() syncs the GPU

    errors, problems = [], []
    for k, (a, c) in enumerate(zip(arrays, checked)):
        if not c:
            errors.append(None)
            continue
        xs = list(arrays)
        xs[k] = a.copy()
        numeric = numerical_grad(lambda v, xs=xs, k=k: scalar(*xs[:k], v, *xs[k + 1:]), xs[k], eps)
        analytic = ts[k].grad.numpy() if ts[k].grad is not None else np.zeros_like(a)
        err = rel_error(analytic, numeric)
        errors.append(err)
        if not err <= tol:
            worst = np.unravel_index(np.argmax(np.abs(analytic - numeric)), a.shape) if a.size else ()
            problems.append(f"input {k} (shape {a.shape}): relative error {err:.3e} > tol {tol:.0e}; "
                            f"worst at index {tuple(int(i) for i in worst)}: analytic "
                            f"{analytic[worst]:.6g} vs numerical {numeric[worst]:.6g}")
    if problems and raise_exception:
        raise GradcheckError("gradcheck failed:\n  " + "\n  ".join(problems))
    return errors
