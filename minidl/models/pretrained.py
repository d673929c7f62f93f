"""The lecture-8 models with committed weights: configurations and ``load_pretrained(name)``.

``benchmarks/train_lecture8.py`` trains each model below with a fixed seed and saves its state
dict as ``minidl/weights/<name>.npz`` (plain arrays, loaded with ``allow_pickle=False``); the tour
and the notebooks rebuild the same architecture from ``CONFIGS`` and load the weights, so they can
show trained models without training them first.

All are trained on 64×64 ``ShapesDataset`` images: segmentation and detection on scenes (5 shape
classes), localization on single shapes, pose on stick figures (14 keypoints).
"""
from __future__ import annotations

import os

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")

#: name -> (module path, class name, keyword arguments of the constructor)
CONFIGS = {
    "fcn_shapes": ("minidl.models.segmentation", "FCN",
                   dict(num_classes=6, widths=(16, 32, 64), upsampling="transpose", first_stride=2)),
    "fcn_unpool_shapes": ("minidl.models.segmentation", "FCN",
                          dict(num_classes=6, widths=(16, 32, 64), upsampling="unpool", first_stride=2)),
    "patch_classifier_shapes": ("minidl.models.segmentation", "PatchClassifier",
                                dict(num_classes=6, patch_size=33)),
    "localizer_shapes": ("minidl.models.localization", "Localizer", dict(num_classes=5, image_size=64)),
    "pose_shapes": ("minidl.models.pose", "PoseRegressor", dict(num_keypoints=14, image_size=64)),
    "fast_rcnn_shapes": ("minidl.detection.fast_rcnn", "FastRCNN", dict(num_classes=5)),
    "rcnn_shapes": ("minidl.detection.rcnn", "RCNN", dict(num_classes=5)),
    "ssd_shapes": ("minidl.detection.single_shot", "SingleShotDetector", dict(num_classes=5, image_size=64)),
    "yolo_shapes": ("minidl.detection.yolo", "YOLODetector", dict(num_classes=5, image_size=64)),
    "spp_net_shapes": ("minidl.detection.spp_net", "SPPNet", dict(num_classes=5, image_scale=2)),
    # Captioners (benchmarks/train_captioning.py): 25 tokens = the 4 special tokens + the 21 words of
    # the shapes grammar (minidl.captioning.vocab.shapes_vocabulary(); a test checks the two agree).
    "image_captioner_shapes": ("minidl.captioning.captioner", "ImageCaptioner",
                               dict(vocab_size=25, feed_features=True)),
    "dense_captioner_shapes": ("minidl.captioning.dense", "DenseCaptioner", dict(num_classes=5, vocab_size=25)),
}


def weights_path(name):
    """Where the weights of model ``name`` live (``minidl/weights/<name>.npz``)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown pretrained model {name!r}; choose from {sorted(CONFIGS)}")
    return os.path.join(WEIGHTS_DIR, f"{name}.npz")


#: What ``benchmarks/train_lecture8.py`` measured when it trained each committed model (training
#: seconds, steps, machine, date, headline metric): the tour's and the docs' training-time column.
RECORDS_PATH = os.path.join(WEIGHTS_DIR, "training_records.json")


def training_record(name):
    """The record of the run that produced ``minidl/weights/<name>.npz`` (a dict), or None."""
    import json
    if not os.path.exists(RECORDS_PATH):
        return None
    with open(RECORDS_PATH) as f:
        return json.load(f).get(name)


def save_training_record(name, record):
    """Add or replace ``name``'s record (written to a temporary file, then renamed into place)."""
    import json
    records = {}
    if os.path.exists(RECORDS_PATH):
        with open(RECORDS_PATH) as f:
            records = json.load(f)
    records[name] = record
    tmp = RECORDS_PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(records, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, RECORDS_PATH)


def build(name, rng=0, **overrides):
    """A freshly initialised model with the architecture of ``name`` (``overrides`` change its
    constructor arguments: ablations in the training scripts; the committed weights need none)."""
    import importlib
    module, cls, kwargs = CONFIGS[name] if name in CONFIGS else (None, None, None)
    if module is None:
        raise ValueError(f"unknown pretrained model {name!r}; choose from {sorted(CONFIGS)}")
    return getattr(importlib.import_module(module), cls)(**{**kwargs, **overrides}, rng=rng)


def retrain_command(name):
    """The command that trains ``name`` and writes its weights (the captioners have their own script)."""
    script = "train_captioning.py" if name in ("image_captioner_shapes", "dense_captioner_shapes") else "train_lecture8.py"
    return f"python benchmarks/{script} --task {name}"


def load_pretrained(name):
    """The model ``name`` with its committed weights, in eval mode."""
    path = weights_path(name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: run `{retrain_command(name)}`")
    return build(name).load(path).eval()
