"""The GPU path end to end: device round trips, every layer's forward and backward on CuPy equal
to the CPU's, no hidden host transfers inside them, and a small training run that follows the
CPU's loss curve. Skipped without a CUDA GPU (CuPy + a device); `bash benchmarks/gpu.sh` runs it.

"No hidden host transfers": a forward and backward pass on the GPU should only queue work on
the device. Any copy to the host (``.get()``, ``float(a)``, ``bool(a)``, ``if a.any():``) makes
the Python thread wait for the GPU and costs a round trip per call. CuPy can refuse every
synchronization in a block (``cupyx.allow_synchronize(False)``, deprecated but still shipped):
each op below runs inside such a block, so a transfer fails the test at the line that made it.

The input checks that must read device data (labels inside [0, C), finite boxes, RoI batch
indices) are the exception, and a named one: they go through ``backend.any_true``, which the
tests let through and count.
"""
import contextlib
import warnings

import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import backend, nn, ops, optim

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not minidl.cuda_available(), reason="no CUDA GPU (CuPy + device)")]


@contextlib.contextmanager
def no_host_sync(monkeypatch):
    """Fail on any device synchronization (a device-to-host copy) inside the block, except the
    input checks that go through ``backend.any_true``; yields the list of checks that ran."""
    import cupyx
    checks = []

    def counted_check(mask):
        checks.append(mask.shape)
        with cupyx.allow_synchronize(True):
            return bool(mask.any())

    monkeypatch.setattr(backend, "any_true", counted_check)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guard = cupyx.allow_synchronize(False)
        with guard:
            import cupy
            with pytest.raises(cupyx.DeviceSynchronized):    # the guard works in this CuPy
                cupy.zeros(1).get()
            yield checks


def as_float(a):
    return backend.to_numpy(a).astype(np.float64)


# ---- device round trips ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_tensor_round_trip_keeps_values_and_dtype(dtype):
    a = (np.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    t = minidl.tensor(a, device="cuda")
    assert t.device == "cuda" and backend.is_cupy_array(t.data) and t.dtype == a.dtype
    back = t.cpu()
    assert back.device == "cpu" and isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), a)
    np.testing.assert_array_equal(minidl.tensor(a).to("cuda").to("cpu").numpy(), a)


def test_module_round_trip_moves_every_parameter_and_buffer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU())
    before = {k: v.copy() for k, v in model.state_dict().items()}    # state_dict: host copies
    model.to("cuda")
    assert all(p.device == "cuda" for p in model.parameters())
    bn = model[1]
    assert backend.is_cupy_array(bn.running_mean) and backend.is_cupy_array(bn.running_var)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    model.cpu()
    for k, v in model.state_dict().items():
        assert isinstance(v, np.ndarray)
        np.testing.assert_array_equal(v, before[k])


# ---- every layer on the GPU equals the CPU, without a host transfer -------------------------
def _boxes(rng, k, size, images):
    xy = rng.uniform(0, size * 0.7, (k, 2))
    wh = rng.uniform(2, size * 0.5, (k, 2))
    return np.concatenate([rng.integers(0, images, (k, 1)), xy, xy + wh], 1).astype(np.float32)


def _cases():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 13, 11)).astype(np.float32)
    w = (rng.standard_normal((8, 6, 3, 3)) * 0.2).astype(np.float32)
    wt = (rng.standard_normal((6, 5, 4, 4)) * 0.2).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    gamma, beta = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    labels = rng.integers(0, 6, (4, 13, 11))
    rois = _boxes(rng, 9, 13 * 8, 4)
    # name -> (function of the input Tensors, inputs); the function returns one Tensor
    return {
        "conv2d_stride2": (lambda a, k, c: F.conv2d(a, k, c, 2, 1), [x, w, b]),
        "conv2d_dilated": (lambda a, k: F.conv2d(a, k, None, 1, 2, dilation=2), [x, w]),
        "conv_transpose2d": (lambda a, k: F.conv_transpose2d(a, k, None, 2, 1), [x, wt]),
        "max_pool2d": (lambda a: F.max_pool2d(a, 3, 2, 1), [x]),
        "avg_pool2d": (lambda a: F.avg_pool2d(a, 2), [x]),
        "batch_norm_train": (lambda a, g, bb: F.batch_norm(a, None, None, g, bb, training=True), [x, gamma, beta]),
        "instance_norm": (lambda a, g, bb: F.instance_norm(a, weight=g, bias=bb), [x, gamma, beta]),
        "bilinear": (lambda a: F.interpolate(a, scale_factor=2, mode="bilinear", align_corners=False), [x]),
        "relu_sigmoid_tanh": (lambda a: F.relu(a) + F.sigmoid(a) * F.tanh(a), [x]),
        "cross_entropy_pixels": (lambda a: F.cross_entropy(a, minidl.tensor(labels, device=a.device)), [x]),
        "linear_softmax": (lambda a, k: F.softmax(F.linear(a.reshape(4, -1)[:, :54], k.reshape(8, 54)), 1),
                           [x, w]),
        "roi_pool": (lambda a: ops.roi_pool(a, minidl.tensor(rois, device=a.device), (3, 2), 1 / 8), [x]),
        "roi_align": (lambda a: ops.roi_align(a, minidl.tensor(rois, device=a.device), (3, 3), 1 / 8, 2, True),
                      [x]),
    }


CASES = _cases()
# The ops whose input checks read device data once per pass (backend.any_true); the others none.
CHECKS_READ = {"cross_entropy_pixels": 1, "roi_pool": 1, "roi_align": 1}


def _forward_backward(fn, arrays, device):
    inputs = [minidl.tensor(a, device=device, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    upstream = minidl.tensor(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32),
                             device=device)
    (out * upstream).sum().backward()
    return out.data, [t.grad.data for t in inputs]


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_on_gpu_equals_cpu_without_host_transfers(name, monkeypatch):
    fn, arrays = CASES[name]
    want_out, want_grads = _forward_backward(fn, arrays, "cpu")
    _forward_backward(fn, arrays, "cuda")            # warm-up: CuPy compiles its kernels once
    with no_host_sync(monkeypatch) as checks:
        out, grads = _forward_backward(fn, arrays, "cuda")
    assert len(checks) == CHECKS_READ.get(name, 0), f"{len(checks)} input checks read the device"
    assert backend.is_cupy_array(out) and all(backend.is_cupy_array(g) for g in grads)
    scale = max(1.0, float(np.abs(want_out).max()))
    np.testing.assert_allclose(as_float(out), want_out, rtol=1e-4, atol=1e-5 * scale)
    for got, want in zip(grads, want_grads):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(as_float(got), want, rtol=1e-4, atol=1e-4 * scale)


def test_nms_on_gpu_keeps_the_cpu_boxes():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 300, (3000, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (3000, 2))], 1).astype(np.float32)
    scores = rng.random(3000).astype(np.float32)
    want = ops.nms(minidl.tensor(boxes), minidl.tensor(scores), 0.5).numpy()
    got = ops.nms(minidl.tensor(boxes, device="cuda"), minidl.tensor(scores, device="cuda"), 0.5)
    assert got.device == "cuda"
    np.testing.assert_array_equal(got.numpy(), want)


# ---- the same student code trains on the GPU --------------------------------------------------
def _train(device, steps=25):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 16, 16)).astype(np.float32)
    y = (x[:, 0, :8].mean((1, 2)) > x[:, 1, 8:].mean((1, 2))).astype(np.int64)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, rng=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1, rng=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 8 * 8, 2, rng=3)).to(device)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = minidl.tensor(x, device=device), minidl.tensor(y, device=device)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss)               # kept on the device: read once at the end
    return np.array([float(loss.item()) for loss in losses])


def test_training_on_gpu_follows_the_cpu_loss_curve():
    cpu, gpu = _train("cpu"), _train("cuda")
    assert gpu[-1] < 0.5 * gpu[0]                         # it learns
    np.testing.assert_allclose(gpu, cpu, rtol=2e-2, atol=1e-3)   # float32, other sum orders


def test_a_training_step_makes_no_host_transfer(monkeypatch):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, rng=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.MaxPool2d(2), nn.ConvTranspose2d(8, 4, 2, stride=2, rng=2)).to("cuda")
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = minidl.tensor(rng.standard_normal((4, 3, 16, 16)).astype(np.float32), device="cuda")
    y = minidl.tensor(rng.integers(0, 4, (4, 16, 16)), device="cuda")

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step()                                                # warm-up: CuPy compiles its kernels
    with no_host_sync(monkeypatch) as checks:
        loss = step()
    assert len(checks) == 1                               # cross_entropy's label range check
    assert np.isfinite(loss.item())
