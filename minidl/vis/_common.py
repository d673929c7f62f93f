"""Shared plumbing of the lecture-12 techniques: input checks, class scores, image operations.

Every technique of minidl.vis works on *any* minidl model: it only calls ``model(x)`` (and, for
layer-based techniques, reads a layer's output through forward hooks). What they share lives
here: turning user input into a ``(N, C, H, W)`` batch, picking the score of one class per
image, and the small non-differentiable image operations that the optimization-based
techniques apply between gradient steps (Gaussian blur, jitter by rolling, resizing for
DeepDream's octaves). All of them use ``xp`` (NumPy or CuPy), never NumPy by name, so an
image on the GPU stays there.
"""
from __future__ import annotations

import copy
import numbers

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad
from ..nn.inspect import forward_until
from ..train import model_device


def as_batch(images, name="images", ndim_single=3, model=None):
    """A float array ``(N, C, H, W)`` copied from an array/Tensor ``(N, C, H, W)`` or ``(C, H, W)``.

    With ``model`` the copy takes the dtype of the model's parameters and lands on the model's
    device (a float64 NumPy photo fed to a float32 network on the GPU is cast and moved, instead
    of failing in the first convolution), so every technique's results live where the model
    does; without one, the data stays on its device, float input keeps its dtype and integer
    input becomes the default float dtype.
    Returns ``(array, was_single)`` so a function given one image can return one map.
    """
    data = images.data if isinstance(images, Tensor) else images
    if model is not None:
        data = backend.to_device(data, model_device(model))
    xp = backend.get_array_module(data)
    data = xp.asarray(data)
    dtype = _float_dtype(data, model)
    if data.ndim == ndim_single:
        return data[None].astype(dtype, copy=True), True
    if data.ndim != ndim_single + 1:
        raise ValueError(f"{name} must have shape (N, C, H, W) or (C, H, W), got shape {tuple(data.shape)}")
    return data.astype(dtype, copy=True), False


def _float_dtype(data, model=None):
    for parameter in (model.parameters() if model is not None else ()):
        return parameter.dtype
    return data.dtype if data.dtype.kind == "f" else backend.default_dtype


def as_targets(targets, n, name="targets"):
    """Class indices as an int array of length ``n`` (one int is broadcast to every image)."""
    if isinstance(targets, Tensor):
        targets = targets.numpy()
    arr = np.asarray(backend.to_numpy(targets) if backend.is_cupy_array(targets) else targets)
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an int or {n} ints (one class per image), got {targets!r}")
    return arr.astype(np.int64)


def one_hot_like(scores, targets):
    """A ``(N, K)`` array of zeros with a 1 at each image's target class (on the scores' device)."""
    xp = backend.get_array_module(scores.data)
    n, k = scores.shape
    if targets.min() < 0 or targets.max() >= k:
        raise ValueError(f"targets must lie in [0, {k}) for a model with {k} classes, got {targets.tolist()}")
    mask = xp.zeros((n, k), dtype=scores.dtype)
    mask[xp.arange(n), xp.asarray(targets)] = 1
    return mask


def class_scores(model, x, targets):
    """``(N,)`` Tensor: the unnormalized score ``s_c(x)`` of each image's target class.

    Picking by a one-hot mask (rather than indexing) keeps it one multiply + sum, and its
    gradient w.r.t. the scores is exactly that mask.
    """
    scores = model(x)
    if scores.ndim != 2:
        raise ValueError(f"the model must return class scores of shape (N, K), got {scores.shape}")
    return (scores * one_hot_like(scores, targets)).sum(axis=1)


def layer_output(model, x, layer):
    """The output of ``layer`` (a name in ``model.named_modules()``) for input ``x``; later
    layers are not run. ``layer=None`` means the model's own output."""
    return model(x) if layer is None else forward_until(model, x, layer)


def progress(iterable, enabled, desc):
    """Wrap ``iterable`` in a tqdm bar when ``enabled`` (long-running techniques show one)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, leave=False, mininterval=0.5)


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def progress_counter(total, enabled, desc):
    """A tqdm bar to ``update()`` by hand (for loops that are not one flat iterable), or a
    do-nothing stand-in when disabled."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False, mininterval=0.5)


def check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def frozen_eval_copy(model):
    """``model`` in eval mode with no parameter requiring a gradient (techniques that optimize
    the *image* should not accumulate gradients into the weights). Returns a function that
    restores the previous state."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = getattr(model, "training", False)
    for p, _ in flags:
        p.requires_grad = False
    model.eval()

    def restore():
        for p, flag in flags:
            p.requires_grad = flag
        model.train(was_training)
    return restore


def deep_copy(model):
    """An independent copy of a model (weights included)."""
    return copy.deepcopy(model)


# ---- non-differentiable image operations (applied between gradient steps) -----------------

def gaussian_kernel1d(sigma, xp=np):
    radius = max(int(3 * sigma + 0.5), 1)
    t = xp.arange(-radius, radius + 1, dtype=np.float64)
    k = xp.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(images, sigma):
    """Blur ``(N, C, H, W)`` images with a Gaussian of std ``sigma`` pixels.

    Separable: one 1-D pass along H, then one along W (2·(2r+1) multiply-adds per pixel instead
    of (2r+1)²). Borders repeat the edge pixel, so the image does not darken at its edge.
    """
    if sigma <= 0:
        return images
    xp = backend.get_array_module(images)
    k = gaussian_kernel1d(sigma, xp)
    r = (len(k) - 1) // 2
    out = images.astype(np.float64)
    for axis in (2, 3):
        size = out.shape[axis]
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = xp.pad(out, pad, mode="edge")
        acc = xp.zeros_like(out)
        for i in range(len(k)):                 # tap i reads the window shifted by i - r
            window = [slice(None)] * 4
            window[axis] = slice(i, i + size)
            acc += k[i] * padded[tuple(window)]
        out = acc
    return out.astype(images.dtype)


def jitter(images, dy, dx):
    """Roll ``(N, C, H, W)`` images by ``(dy, dx)`` pixels (wrapping around); roll back with
    ``-dy, -dx``. Random jitter keeps gradient ascent from exploiting a fixed pixel grid."""
    xp = backend.get_array_module(images)
    return xp.roll(images, (int(dy), int(dx)), axis=(2, 3))


def resize(images, size):
    """Bilinear resize of ``(N, C, H, W)`` arrays to ``size = (H', W')``, no gradient: the values
    of ``F.interpolate(..., mode="bilinear", align_corners=False)`` (pixel centres aligned)."""
    from ..functional.interpolate import interpolate
    with no_grad():
        return interpolate(Tensor(images), size=tuple(size), mode="bilinear", align_corners=False).data


