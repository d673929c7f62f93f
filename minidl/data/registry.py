"""Small real images that ship *inside* pip packages: no download, available offline.

* scikit-learn's handwritten ``digits`` (1,797 grey 8×8 images, 10 classes) — a tiny classifier;
* scikit-learn's two sample photos (``china``, ``flower``, 427×640 RGB);
* scikit-image's ``skimage.data`` pictures (``astronaut``, ``coffee``, ``chelsea``, ``camera``, ...)
  — the images that lecture 12's visualizations (saliency, style transfer, ...) can run on.

Both packages are optional extras of minidl (``pip install minidl[data]``); without them the
loaders raise an ImportError that says so. Images come back as float32 arrays in [0, 1] laid out
``(C, H, W)`` (C = 1 for grey, 3 for colour), minidl's layout.
"""
from __future__ import annotations

import numpy as np

from .dataset import TensorDataset

#: the ``skimage.data`` images stored in the scikit-image package itself (no download needed).
SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "checkerboard", "chelsea", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
    "microaneurysms", "moon", "page", "retina", "rocket", "text",
)


def _require(module: str, package: str):
    """Import an optional dependency, or explain how to install it."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise ImportError(f"this loader needs {package}, an optional dependency of minidl: "
                          f"pip install minidl[data]  (or: pip install {package})") from error


def to_chw_float(image) -> np.ndarray:
    """(H, W) or (H, W, C) image (uint8, bool or float) → (C, H, W) float32 in [0, 1].

    An alpha channel (RGBA) is dropped: minidl's models take grey or RGB inputs.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        image = image.astype(np.float32) / 65535.0
    else:
        image = np.clip(image.astype(np.float32), 0.0, 1.0)
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def load_digits():
    """scikit-learn's handwritten digits: ``(images, labels)``.

    ``images``: (1797, 1, 8, 8) float32 in [0, 1] (the pixel counts 0..16 divided by 16);
    ``labels``: (1797,) int64 in 0..9.
    """
    datasets = _require("sklearn.datasets", "scikit-learn")
    digits = datasets.load_digits()
    images = (digits.images.astype(np.float32) / 16.0)[:, None]
    return images, digits.target.astype(np.int64)


def digits_dataset():
    """``load_digits()`` as a ``TensorDataset`` of ``(image (1, 8, 8), label)`` samples."""
    return TensorDataset(*load_digits())


def load_sample_images():
    """scikit-learn's two sample photos as ``{"china": (3, 427, 640), "flower": (3, 427, 640)}``."""
    datasets = _require("sklearn.datasets", "scikit-learn")
    bunch = datasets.load_sample_images()
    names = [str(f).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0] for f in bunch.filenames]
    return {name: to_chw_float(image) for name, image in zip(names, bunch.images)}


def load_sample_image(name):
    """One of scikit-learn's sample photos by name (``"china"`` or ``"flower"``): (3, H, W)."""
    images = load_sample_images()
    if name not in images:
        raise ValueError(f"name must be one of {sorted(images)}, got {name!r}")
    return images[name]


def load_skimage(name):
    """The ``skimage.data`` image ``name`` (one of ``SKIMAGE_IMAGES``) as (C, H, W) float32 in [0, 1].

    e.g. ``load_skimage("astronaut")`` → (3, 512, 512), ``load_skimage("camera")`` → (1, 512, 512).
    """
    if name not in SKIMAGE_IMAGES:
        raise ValueError(f"name must be one of {SKIMAGE_IMAGES} (images shipped with scikit-image), got {name!r}")
    data = _require("skimage.data", "scikit-image")
    return to_chw_float(getattr(data, name)())
