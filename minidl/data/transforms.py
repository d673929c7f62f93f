"""Data augmentation that keeps the labels consistent with the image (torchvision.transforms.v2 style).

Flipping or cropping a detection/segmentation/pose image is only half the job: the boxes, masks
and keypoints must move with the pixels, or the network learns from wrong labels. Every function
here takes an image ``(C, H, W)`` (float) and an optional ``target`` dict and returns both,
transformed together. Target keys understood (those of ``ShapesDataset``; others pass through):

* ``boxes`` (K, 4) ``(x1, y1, x2, y2)``, ``labels`` (K,), ``masks`` (K, H, W),
  ``keypoints`` (K, P, 3) ``(x, y, visibility)`` — per-instance: an instance dropped by a crop is
  removed from all four;
* ``semantic_mask`` (H, W).

Coordinates are continuous pixel coordinates (pixel column ``j`` spans ``[j, j+1)``), so a
horizontal flip maps ``x`` to ``W - x`` and a box ``(x1, x2)`` to ``(W - x2, W - x1)``.

The random transforms draw from their own ``rng`` (a ``numpy.random.Generator`` or int seed;
``None`` = minidl's default generator), so an augmented training run is reproducible.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..backend import get_rng

PER_INSTANCE_KEYS = ("boxes", "labels", "masks", "keypoints", "colours")


def _check_image(image):
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise ValueError(f"image must be a (C, H, W) NumPy array, got "
                         f"{getattr(image, 'shape', type(image).__name__)}")
    return image.shape[1], image.shape[2]


def _copy_target(target):
    return None if target is None else dict(target)


def _invisible_to_zero(keypoints):
    """Keypoints whose visibility is 0 carry no position: keep them as (0, 0, 0)."""
    keypoints[keypoints[..., 2] == 0] = 0.0
    return keypoints


def hflip(image, target=None, flip_permutation=None):
    """Mirror the image left ↔ right, with its boxes, masks and keypoints.

    ``flip_permutation``: a sequence with one entry per keypoint type giving, for each output
    keypoint, which input keypoint it comes from — after a flip the person's left wrist is where
    the right wrist was drawn (e.g. ``POSE_FLIP_PERMUTATION``). ``None`` keeps the order.
    """
    _, width = _check_image(image)
    image = image[:, :, ::-1].copy()
    target = _copy_target(target)
    if target is None:
        return image, None
    if "boxes" in target:
        boxes = np.asarray(target["boxes"], dtype=np.float32).copy()
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        target["boxes"] = boxes
    if "masks" in target:
        target["masks"] = np.asarray(target["masks"])[..., ::-1].copy()
    if "semantic_mask" in target:
        target["semantic_mask"] = np.asarray(target["semantic_mask"])[..., ::-1].copy()
    if "keypoints" in target:
        keypoints = np.asarray(target["keypoints"], dtype=np.float32).copy()
        keypoints[..., 0] = width - keypoints[..., 0]
        if flip_permutation is not None:
            perm = np.asarray(flip_permutation, dtype=np.int64)
            if perm.shape != keypoints.shape[1:2] or sorted(perm.tolist()) != list(range(len(perm))):
                raise ValueError(f"flip_permutation must be a permutation of range({keypoints.shape[1]}), "
                                 f"got {list(flip_permutation)}")
            keypoints = keypoints[:, perm]
        target["keypoints"] = _invisible_to_zero(keypoints)
    return image, target


def crop(image, target, top, left, height, width, min_size=1.0):
    """Cut the window ``[top, top + height) × [left, left + width)`` out of the image and labels.

    Boxes are shifted and clipped to the window (as in torchvision, a clipped box can be looser
    than the cropped mask of a non-rectangular object); a box narrower or lower than ``min_size``
    pixels after clipping is dropped together with its label, mask and keypoints. Keypoints that
    fall outside the window become "not labelled" (visibility 0). The semantic mask is cut as is:
    pixels of a dropped sliver keep their class, which is still the right per-pixel label.
    """
    img_h, img_w = _check_image(image)
    top, left, height, width = (int(v) for v in (top, left, height, width))
    if height < 1 or width < 1 or top < 0 or left < 0 or top + height > img_h or left + width > img_w:
        raise ValueError(f"crop window top={top}, left={left}, height={height}, width={width} "
                         f"must lie inside the ({img_h}, {img_w}) image")
    image = image[:, top:top + height, left:left + width].copy()
    target = _copy_target(target)
    if target is None:
        return image, None
    keep = None
    if "boxes" in target:
        boxes = np.asarray(target["boxes"], dtype=np.float32) - np.array([left, top, left, top], np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
        target["boxes"] = boxes
    if "masks" in target:
        target["masks"] = np.asarray(target["masks"])[:, top:top + height, left:left + width].copy()
    if "semantic_mask" in target:
        target["semantic_mask"] = np.asarray(target["semantic_mask"])[top:top + height, left:left + width].copy()
    if "keypoints" in target:
        keypoints = np.asarray(target["keypoints"], dtype=np.float32).copy()
        keypoints[..., 0] -= left
        keypoints[..., 1] -= top
        outside = ((keypoints[..., 0] < 0) | (keypoints[..., 0] > width)
                   | (keypoints[..., 1] < 0) | (keypoints[..., 1] > height))
        keypoints[outside, 2] = 0
        target["keypoints"] = _invisible_to_zero(keypoints)
    if keep is not None:
        for key in PER_INSTANCE_KEYS:
            if key in target:
                target[key] = np.asarray(target[key])[keep]
    return image, target


def _crop_size(size):
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f"size must be an int or a (height, width) pair, got {size}")
    return size


def center_crop(image, target, size, min_size=1.0):
    """Crop the central ``size`` (int or ``(height, width)``) window; see ``crop``."""
    img_h, img_w = _check_image(image)
    height, width = _crop_size(size)
    return crop(image, target, (img_h - height) // 2, (img_w - width) // 2, height, width, min_size)


def normalize(image, mean, std):
    """``(image - mean[c]) / std[c]`` per channel ``c``: zero-centred inputs train faster."""
    _check_image(image)
    channels = image.shape[0]
    mean = np.asarray(mean, dtype=np.float32).reshape(-1)
    std = np.asarray(std, dtype=np.float32).reshape(-1)
    if mean.shape[0] not in (1, channels) or std.shape[0] not in (1, channels):
        raise ValueError(f"mean and std must have 1 or C={channels} values, got {mean.shape[0]} and {std.shape[0]}")
    if np.any(std == 0):
        raise ValueError("std must not contain zeros")
    return ((image - mean[:, None, None]) / std[:, None, None]).astype(np.float32)


# ---- the same as callable objects, to put in a Compose --------------------------------------

class Compose:
    """Apply ``transforms`` one after another: ``Compose([RandomHorizontalFlip(), Normalize(m, s)])``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, target=None):
        for transform in self.transforms:
            image, target = transform(image, target)
        return image, target


class RandomHorizontalFlip:
    """``hflip`` with probability ``p`` (see ``hflip`` for ``flip_permutation``)."""

    def __init__(self, p=0.5, flip_permutation=None, rng=None):
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p, self.flip_permutation, self.rng = p, flip_permutation, get_rng(rng)

    def __call__(self, image, target=None):
        if self.rng.random() < self.p:
            return hflip(image, target, self.flip_permutation)
        return image, _copy_target(target)


class RandomCrop:
    """Crop a ``size`` window at a uniformly random position (see ``crop`` for the labels)."""

    def __init__(self, size, min_size=1.0, rng=None):
        self.size, self.min_size, self.rng = _crop_size(size), min_size, get_rng(rng)

    def __call__(self, image, target=None):
        img_h, img_w = _check_image(image)
        height, width = self.size
        if height > img_h or width > img_w:
            raise ValueError(f"crop size {self.size} is larger than the ({img_h}, {img_w}) image")
        top = int(self.rng.integers(0, img_h - height + 1))
        left = int(self.rng.integers(0, img_w - width + 1))
        return crop(image, target, top, left, height, width, self.min_size)


class CenterCrop:
    """Crop the central ``size`` window (deterministic; for evaluation)."""

    def __init__(self, size, min_size=1.0):
        self.size, self.min_size = _crop_size(size), min_size

    def __call__(self, image, target=None):
        return center_crop(image, target, self.size, self.min_size)


class Normalize:
    """Per-channel ``(image - mean) / std``; the target is unchanged."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, image, target=None):
        return normalize(image, self.mean, self.std), target
