"""minidl.data — datasets made or shipped offline, transforms that keep labels consistent, DataLoader.

* ``dataset.py``: ``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``
* ``loader.py``: ``DataLoader`` (seeded shuffling), ``default_collate``
* ``transforms.py``: flips, crops, normalization on ``(C, H, W)`` images + target dicts
* ``shapes.py``: ``ShapesDataset`` — generated scenes for classification + localization, pose,
  segmentation and detection (CS231n lecture 8)
* ``registry.py``: scikit-learn digits and sample photos, scikit-image pictures (optional extras)
"""
from . import transforms  # noqa: F401
from .dataset import Dataset, Subset, TensorDataset, random_split
from .loader import DataLoader, default_collate
from .registry import (SKIMAGE_IMAGES, digits_dataset, load_digits, load_sample_image, load_sample_images,
                       load_skimage, to_chw_float)
from .shapes import (MODES, NUM_SHAPE_KEYPOINTS, POSE_FLIP_PERMUTATION, POSE_KEYPOINT_NAMES, POSE_SKELETON,
                     SHAPE_CLASSES, ShapesDataset, make_pose_image, make_shapes_image, mask_to_box)

__all__ = [
    "Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "default_collate", "transforms",
    "ShapesDataset", "SHAPE_CLASSES", "MODES", "NUM_SHAPE_KEYPOINTS", "POSE_KEYPOINT_NAMES", "POSE_SKELETON",
    "POSE_FLIP_PERMUTATION", "make_shapes_image", "make_pose_image", "mask_to_box",
    "load_digits", "digits_dataset", "load_sample_images", "load_sample_image", "load_skimage", "SKIMAGE_IMAGES",
    "to_chw_float",
]
