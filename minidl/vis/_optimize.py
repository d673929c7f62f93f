"""Optimize an *image* (not weights) against a loss: the loop shared by feature inversion,
texture synthesis and style transfer.

Two optimizers: Adam (minidl.optim.Adam on the image as the only parameter; works on CPU and
GPU) and L-BFGS, the quasi-Newton method Gatys et al. used, through ``scipy.optimize``
(CPU only: scipy calls back with float64 NumPy vectors; each call runs minidl forward and
backward and hands back the loss and its gradient).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..nn.module import Parameter
from ..optim import Adam
from ..autograd import Tensor
from ._common import check_positive_int, progress

OPTIMIZERS = ("adam", "lbfgs")


def optimize_image(loss_fn, image, num_steps, optimizer="adam", lr=0.05, value_range=None,
                   progress_bar=True, desc="optimizing"):
    """Minimize ``loss_fn(x: Tensor) -> scalar Tensor`` over the image array ``image``.

    value_range: optional ``(low, high)`` clamp (after every Adam step; as bounds for L-BFGS).
    Returns ``(image array, losses list)`` — one loss per evaluation (L-BFGS may evaluate the
    loss more than once per iteration while it searches along a direction).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    num_steps = check_positive_int(num_steps, "num_steps")
    losses = []
    if optimizer == "adam":
        x = Parameter(image.copy())
        opt = Adam([x], lr=lr)
        xp = backend.get_array_module(image)
        for _ in progress(range(num_steps), progress_bar, desc):
            loss = loss_fn(x)
            opt.zero_grad()
            loss.backward()
            losses.append(float(loss.item()))
            opt.step()
            if value_range is not None:
                x.data = xp.clip(x.data, *value_range)
        return x.data, losses
    return _lbfgs(loss_fn, image, num_steps, value_range, progress_bar, desc, losses)


def _lbfgs(loss_fn, image, num_steps, value_range, progress_bar, desc, losses):
    from scipy.optimize import minimize

    if backend.is_cupy_array(image):
        raise ValueError("optimizer='lbfgs' runs through scipy on the CPU; use 'adam' for GPU images")
    shape, dtype = image.shape, image.dtype
    bar = progress(range(num_steps), progress_bar, desc)
    ticks = iter(bar)

    def value_and_grad(flat):
        x = Tensor(flat.reshape(shape).astype(dtype), requires_grad=True)
        loss = loss_fn(x)
        loss.backward()
        losses.append(float(loss.item()))
        return float(loss.item()), x.grad.data.astype(np.float64).ravel()

    bounds = None if value_range is None else [value_range] * image.size
    result = minimize(value_and_grad, image.astype(np.float64).ravel(), jac=True, method="L-BFGS-B",
                      bounds=bounds, callback=lambda _: next(ticks, None),
                      options={"maxiter": num_steps, "maxfun": 2 * num_steps})
    return result.x.reshape(shape).astype(dtype), losses
