"""Checkers for the assignment notebooks: tell a student whether their code is right.

Every check here tests a *property* that defines the technique (a float64 gradient check against
central differences, the saliency map against a numerical gradient, "the model now predicts the
target", "the loss fell 20-fold") — never a live call of minidl's implementation of the very thing
the student writes, which an answer could call too. Comparisons with expected values use frozen
data instead (``minidl.grade.frozen.check_cases``).

Each prints one line with its figure and OK, or raises an AssertionError that says what is off —
so a notebook cell either says "OK" or explains. ``python -m minidl.grade`` counts those errors.
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


def check_gradients(name, fn, inputs, tol=1e-6):
    """Gradient check of ``fn(*inputs)`` (float64 central differences), printed per input."""
    errors = gradcheck(fn, inputs, tol=tol, raise_exception=False)
    checked = [e for e in errors if e is not None]
    for i, e in enumerate(errors):
        if e is not None:
            print(f"{name}: gradient of input {i}: relative error {e:.2e} — {'OK' if e <= tol else 'WRONG'}")
    if any(not e <= tol for e in checked):
        raise AssertionError(f"{name}: a gradient is wrong (relative error {max(checked):.2e}); "
                             "check your backward pass: a sign, a missing factor, the saved values")
    return errors


# ---- lecture 12 (assignment 4): gradients with respect to the image -------------------------

def check_saliency(name, saliency_fn, model, images, targets, eps=1e-6, tol=1e-6):
    """Compare ``saliency_fn(model, images, targets)`` with ``max_c |numerical ∂s_t/∂pixel|``.

    The numerical gradient is taken by central differences of the target score of each image,
    so ``model`` and ``images`` must be float64 (float32 has too few digits for it).
    """
    from .gradcheck import numerical_grad
    from .autograd import Tensor, no_grad
    images = np.asarray(_as_numpy(images))
    if images.dtype != np.float64:
        raise ValueError(f"{name}: the numerical check needs float64 images (and model), got {images.dtype}")
    targets = np.broadcast_to(np.asarray(targets), (images.shape[0],))
    got = _as_numpy(saliency_fn(model, images.copy(), targets))
    expected = []
    with no_grad():
        for n in range(images.shape[0]):
            num = numerical_grad(lambda a, n=n: float(model(Tensor(a)).data[0, targets[n]]),
                                 images[n:n + 1].copy(), eps)
            expected.append(np.abs(num[0]).max(axis=0))
    return check_close(name, got, np.stack(expected), tol)


def check_guided_relu_rule(name, rule, trials=3, seed=0):
    """Install ``rule`` as ReLU's backward (``minidl.override_backward``) and compare the gradient
    reaching a ReLU's input with the guided rule ``g · (x > 0) · (g > 0)``, exactly. Also checks
    that the ordinary rule ``g · (x > 0)`` is back once the ``with`` block has ended."""
    from .functional.activation import ReLU, relu
    from .autograd import Tensor, override_backward
    worst = 0.0
    for t in range(trials):
        rng = np.random.default_rng(seed + t)
        x, g = rng.standard_normal((4, 7)), rng.standard_normal((4, 7))
        xt = Tensor(x, requires_grad=True)
        with override_backward(ReLU, rule):
            relu(xt).backward(grad=g)
        if xt.grad is None:
            raise AssertionError(f"{name}: no gradient reached the ReLU's input (does your rule return it?)")
        got = _as_numpy(xt.grad)
        if got.shape != x.shape:
            raise AssertionError(f"{name}: your rule returned shape {got.shape}, expected {x.shape}")
        worst = max(worst, rel_error(got, g * (x > 0) * (g > 0)))
    plain = Tensor(x, requires_grad=True)
    relu(plain).backward(grad=g)
    if rel_error(plain.grad.data, g * (x > 0)) != 0:
        raise AssertionError(f"{name}: ReLU's ordinary backward did not come back after the override")
    status = "OK" if worst == 0 else "WRONG"
    print(f"{name}: worst relative error over {trials} random trials {worst:.2e} — {status}")
    if worst:
        raise AssertionError(f"{name}: the guided rule passes g only where x > 0 and g > 0")
    return worst


def check_fooling_image(name, model, original, fooled, target, max_relative_l2=0.1):
    """The model predicts ``target`` for ``fooled`` (C, H, W), and the perturbation is small:
    prints ``‖fooled − original‖₂ / ‖original‖₂`` and OK when it is at most ``max_relative_l2``."""
    from .autograd import Tensor, no_grad
    original, fooled = _as_numpy(original), _as_numpy(fooled)
    if fooled.shape != original.shape:
        raise AssertionError(f"{name}: your image has shape {fooled.shape}, expected {original.shape}")
    with no_grad():
        predicted = int(model(Tensor(fooled[None])).data.argmax(axis=1)[0])
    relative = float(np.linalg.norm(fooled - original) / max(np.linalg.norm(original), 1e-12))
    ok = predicted == int(target) and relative <= max_relative_l2
    print(f"{name}: predicted {predicted} (target {int(target)}), relative perturbation ‖δ‖₂/‖I‖₂ "
          f"{relative:.2e} (at most {max_relative_l2:.0e}) — {'OK' if ok else 'WRONG'}")
    if predicted != int(target):
        raise AssertionError(f"{name}: the model still predicts {predicted}, not {int(target)}: take more steps")
    if relative > max_relative_l2:
        raise AssertionError(f"{name}: the perturbation is {relative:.2e} of the image, more than "
                             f"{max_relative_l2:.0e}: normalize the step and stop once fooled")
    return relative


def check_decreases(name, losses, factor):
    """An optimization lowered its loss at least ``factor``-fold (first value vs last)."""
    losses = [float(v) for v in losses]
    if len(losses) < 2:
        raise AssertionError(f"{name}: need the loss of at least two steps, got {len(losses)}")
    first, last = losses[0], losses[-1]
    ratio = first / last if last > 0 else float("inf")
    status = "OK" if ratio >= factor else "WRONG"
    print(f"{name}: loss {first:.3g} → {last:.3g}, {ratio:.1f}× lower (need ≥ {factor:g}×) — {status}")
    if ratio < factor:
        raise AssertionError(f"{name}: the loss fell only {ratio:.1f}×, expected ≥ {factor:g}×")
    return ratio


def check_at_least(name, value, threshold, hint=""):
    """A figure of merit (an accuracy, a score) reached ``threshold``."""
    value = float(value)
    ok = value >= threshold
    print(f"{name}: {value:.3f} (need ≥ {threshold:g}) — {'OK' if ok else 'WRONG'}")
    if not ok:
        raise AssertionError(f"{name}: {value:.3f} is below {threshold:g}" + (f" — {hint}" if hint else ""))
    return value
