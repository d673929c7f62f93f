"""Pooling, unpooling and interpolation: PyTorch's values, indices and gradients; gradient
checks (max pooling on tie-free inputs); the unpooling variants; argument errors."""
import importlib

import numpy as np
import pytest

import minidl
from minidl import Tensor, nn
from minidl import functional as F
from minidl.gradcheck import gradcheck


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is the reference for pooling semantics")


def distinct(shape, rng):
    """Values without ties (a random permutation, spread out): max pooling is differentiable."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)


def pool_configs(rng, count):
    for _ in range(count):
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        size = tuple(int(max(rng.integers(1, 10), dd * (kk - 1) + 1)) for kk, dd in zip(k, d))
        yield k, s, p, d, size, bool(rng.integers(0, 2))


def test_max_pool2d_matches_torch_values_and_indices():
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    for k, s, p, d, (h, w), ceil in pool_configs(rng, 60):
        x = rng.standard_normal((2, 3, h, w))
        if rng.random() < 0.5:
            x = np.round(x)                     # many ties: the first maximum must win
        tv, ti = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, d, ceil, True)
        v, i = F.max_pool2d(Tensor(x), k, s, p, d, ceil, return_indices=True)
        assert v.shape == tuple(tv.shape)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        grad = rng.standard_normal(v.shape)
        xs, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        F.max_pool2d(xs, k, s, p, d, ceil).backward(grad)
        torch.nn.functional.max_pool2d(tx, k, s, p, d, ceil).backward(torch.tensor(grad))
        np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool2d_nan_and_minus_inf_like_torch():
    torch = torch_or_skip()
    x = np.array([[[[1.0, np.nan, 3.0], [-np.inf, -np.inf, 0.0], [np.nan, 2.0, -np.inf]]]])
    for k, s in ((2, 1), (3, 1), (2, 2)):
        tv, ti = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, 0, 1, False, True)
        v, i = F.max_pool2d(Tensor(x), k, s, return_indices=True)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
    only_inf = np.full((1, 1, 2, 2), -np.inf)
    v, i = F.max_pool2d(Tensor(only_inf), 2, padding=1, return_indices=True)
    tv, ti = torch.nn.functional.max_pool2d(torch.tensor(only_inf), 2, 2, 1, 1, False, True)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


@pytest.mark.parametrize("kernel,stride,padding,dilation", [(2, None, 0, 1), (3, 2, 1, 1), ((3, 2), 1, (1, 0), 1),
                                                            (2, 1, 1, 2), (3, (2, 1), 1, (1, 2))])
def test_max_pool2d_gradcheck(kernel, stride, padding, dilation):
    x = distinct((2, 2, 7, 6), np.random.default_rng(1))
    gradcheck(lambda x_: F.max_pool2d(x_, kernel, stride, padding, dilation), [x])


def test_avg_pool2d_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    for k, s, p, _, (h, w), ceil in pool_configs(rng, 60):
        x = rng.standard_normal((2, 2, h, w))
        include, override = bool(rng.integers(0, 2)), [None, 3][int(rng.integers(0, 2))]
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil, include, override)
        xs = Tensor(x, requires_grad=True)
        y = F.avg_pool2d(xs, k, s, p, ceil, include, override)
        assert y.shape == tuple(ty.shape)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        grad = rng.standard_normal(y.shape)
        y.backward(grad)
        ty.backward(torch.tensor(grad))
        np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding,ceil,include", [(2, None, 0, False, True), (3, 2, 1, True, True),
                                                                ((3, 2), 1, (1, 0), False, False), (3, 2, 1, True, False)])
def test_avg_pool2d_gradcheck(kernel, stride, padding, ceil, include):
    x = np.random.default_rng(3).standard_normal((2, 2, 7, 6))
    gradcheck(lambda x_: F.avg_pool2d(x_, kernel, stride, padding, ceil, include), [x])


def test_max_unpool2d_puts_values_back_like_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    for hw, k, s, p, size in (((8, 8), 2, 2, 0, None), ((8, 7), 3, 2, 1, (8, 7)), ((8, 7), 2, 2, 0, (2, 3, 8, 7)),
                              ((9, 9), 3, 3, 0, None), ((7, 7), 3, 3, 1, None)):
        x = distinct((2, 3) + hw, rng)
        pooled, idx = F.max_pool2d(Tensor(x), k, s, p, return_indices=True)
        tp, ti = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, return_indices=True)
        src = Tensor(pooled.numpy(), requires_grad=True)
        tsrc = tp.clone().requires_grad_(True)
        out = F.max_unpool2d(src, idx, k, s, p, size)
        tout = torch.nn.functional.max_unpool2d(tsrc, ti, k, s, p, size)
        np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
        grad = rng.standard_normal(out.shape)
        out.backward(grad)
        tout.backward(torch.tensor(grad))
        np.testing.assert_array_equal(src.grad.numpy(), tsrc.grad.numpy())
    gradcheck(lambda v: F.max_unpool2d(v, idx, 3, 3, 1), [pooled.numpy()])   # the last case


def test_max_unpool2d_errors():
    x = Tensor(np.ones((1, 1, 2, 2)))
    idx = np.zeros((1, 1, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="indices"):
        F.max_unpool2d(x, np.zeros((1, 1, 2, 3), dtype=np.int64), 2)
    with pytest.raises(TypeError, match="indices"):
        F.max_unpool2d(x, idx.astype(np.float64), 2)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\)"):
        F.max_unpool2d(x, idx + 16, 2)
    with pytest.raises(ValueError, match="output_size"):
        F.max_unpool2d(x, idx, 2, output_size=(9, 9))


def test_unpool_nearest_and_bed_of_nails():
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    near = F.unpool_nearest(Tensor(x), 2).numpy()[0, 0]
    np.testing.assert_array_equal(near, [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    nails = F.unpool_bed_of_nails(Tensor(x), 2).numpy()[0, 0]
    np.testing.assert_array_equal(nails, [[0, 0, 1, 0], [0, 0, 0, 0], [2, 0, 3, 0], [0, 0, 0, 0]])
    assert F.unpool_nearest(Tensor(x), (2, 3)).shape == (1, 1, 4, 6)
    assert F.unpool_bed_of_nails(Tensor(x), (3, 1)).shape == (1, 1, 6, 2)
    y = np.random.default_rng(5).standard_normal((2, 2, 3, 4))
    gradcheck(lambda v: F.unpool_nearest(v, (2, 3)), [y])
    gradcheck(lambda v: F.unpool_bed_of_nails(v, (3, 2)), [y])
    with pytest.raises(ValueError, match="scale_factor"):
        F.unpool_nearest(Tensor(x), 0)


def test_unpool_nearest_is_torch_nearest_upsampling():
    torch = torch_or_skip()
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(
        F.unpool_nearest(Tensor(x), 3).numpy(),
        torch.nn.functional.interpolate(torch.tensor(x), scale_factor=3, mode="nearest").numpy())


@pytest.mark.parametrize("dense_max", [None, 0], ids=["matrix-form", "gather"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_matches_torch(dtype, dense_max, monkeypatch):
    """Both forms of the bilinear forward (dense A_h x A_wᵀ for small inputs, the gather for
    large ones: DENSE_MAX_SIZE = 0 forces it) against PyTorch."""
    torch = torch_or_skip()
    if dense_max is not None:
        monkeypatch.setattr(importlib.import_module("minidl.functional.interpolate"), "DENSE_MAX_SIZE",
                            dense_max)
    rng = np.random.default_rng(7)
    for trial in range(80):
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        x = rng.standard_normal((2, 2, h, w)).astype(dtype)
        mode = ("nearest", "bilinear")[trial % 2]
        if trial % 4 < 2:
            options = dict(size=tuple(int(v) for v in rng.integers(1, 25, 2)))
        else:
            options = dict(scale_factor=tuple(float(v) for v in rng.choice([0.5, 1 / 3, 1.1, 1.5, 1.7, 2, 2.5, 3], 2)))
        if mode == "bilinear":
            options["align_corners"] = bool(rng.integers(0, 2))
        xs, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        try:
            ty = torch.nn.functional.interpolate(tx, mode=mode, **options)
        except RuntimeError:          # torch refuses an empty output: so must we
            with pytest.raises(ValueError):
                F.interpolate(xs, mode=mode, **options)
            continue
        y = F.interpolate(xs, mode=mode, **options)
        assert y.shape == tuple(ty.shape) and y.dtype == dtype
        tol = 1e-5 if dtype == np.float32 else 1e-12
        if mode == "nearest":       # pure selection: bit for bit
            np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
        else:
            np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
        grad = rng.standard_normal(y.shape).astype(dtype)
        y.backward(grad)
        ty.backward(torch.tensor(grad))
        np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("scale_factor", [(1.1, 2.0), (1.1, 1.1), (2.0, 1.15), (1.05, 1.19)])
def test_bilinear_keeps_an_axis_whose_size_a_scale_factor_keeps(scale_factor):
    """floor(5 * 1.1) = 5: PyTorch leaves such an axis as it is (no resampling with 1/1.1,
    which would shift every sample by up to half a pixel); values and gradients match."""
    torch = torch_or_skip()
    x = np.random.default_rng(9).standard_normal((2, 3, 5, 6))
    xs, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.interpolate(xs, scale_factor=scale_factor, mode="bilinear", align_corners=False)
    ty = torch.nn.functional.interpolate(tx, scale_factor=scale_factor, mode="bilinear",
                                         align_corners=False)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    grad = np.random.default_rng(10).standard_normal(y.shape)
    y.backward(grad)
    ty.backward(torch.tensor(grad))
    np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("options", [dict(size=(7, 5), mode="nearest"), dict(scale_factor=2, mode="bilinear"),
                                     dict(size=(3, 9), mode="bilinear", align_corners=True)])
def test_interpolate_gradcheck(options):
    x = np.random.default_rng(8).standard_normal((2, 2, 4, 5))
    gradcheck(lambda v: F.interpolate(v, **options), [x])


def test_interpolate_errors():
    x = Tensor(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, mode="nearest", align_corners=True)
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x, size=8, scale_factor=2)
    with pytest.raises(ValueError, match="mode"):
        F.interpolate(x, size=8, mode="bicubic")
    with pytest.raises(ValueError, match="scale_factor"):
        F.interpolate(x, scale_factor=-2)


def test_pool_argument_errors():
    x = Tensor(np.ones((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="kernel_size"):
        F.max_pool2d(x, 5)
    with pytest.raises(ValueError, match="padding"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(TypeError, match="stride"):
        F.avg_pool2d(x, 2, stride=1.5)
    with pytest.raises(ValueError, match="stride"):
        F.max_pool2d(x, 2, stride=-1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.max_pool2d(Tensor(np.ones((4, 4))), 2)


def test_pooling_layers():
    rng = np.random.default_rng(9)
    x = Tensor(distinct((2, 3, 6, 6), rng))
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    pooled, idx = pool(x)
    restored = unpool(pooled, idx).numpy()
    # max unpooling keeps each window's maximum in place and zeros the rest
    is_max = x.numpy() == F.max_pool2d(x, 2).numpy().repeat(2, 2).repeat(2, 3)
    np.testing.assert_array_equal(restored, np.where(is_max, x.numpy(), 0))
    assert nn.AvgPool2d(3, stride=1, padding=1)(x).shape == (2, 3, 6, 6)
    assert nn.Upsample(scale_factor=2, mode="bilinear")(x).shape == (2, 3, 12, 12)
    assert nn.Upsample(size=(5, 7))(x).shape == (2, 3, 5, 7)
    assert not list(pool.parameters())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not minidl.cuda_available(), reason="needs a CUDA GPU")])])
def test_pooling_runs_on_every_device(device):
    x = distinct((2, 2, 6, 5), np.random.default_rng(10))
    results = {}
    for where in {"cpu", device}:
        xs = Tensor(x, requires_grad=True, device=where)
        v, i = F.max_pool2d(xs, 3, 2, 1, return_indices=True)
        y = (F.max_unpool2d(v, i, 3, 2, 1, (6, 5)).sum() + F.avg_pool2d(xs, 2).sum()
             + (F.interpolate(xs, scale_factor=1.5, mode="bilinear") ** 2).sum()
             + F.unpool_nearest(xs, 2).sum() + F.unpool_bed_of_nails(xs, 2).sum())
        y.backward()
        results[where] = (y.numpy(), xs.grad.numpy())
    for a, b in zip(results["cpu"], results[device]):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_bilinear_above_the_dense_size_gathers_and_matches_torch():
    torch = torch_or_skip()
    module = importlib.import_module("minidl.functional.interpolate")   # (F.interpolate is the function)
    x = np.random.default_rng(3).standard_normal((1, 2, module.DENSE_MAX_SIZE + 6, 5))
    y = F.interpolate(Tensor(x), size=(90, 9), mode="bilinear")
    ty = torch.nn.functional.interpolate(torch.tensor(x), size=(90, 9), mode="bilinear")
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, shape", [((2, 2), (2, 3, 8, 6)), ((3, 2), (1, 4, 9, 10)), ((1, 1), (2, 2, 3, 5)),
                                      ((2, 3), (3, 1, 4, 12))])
def test_max_pool_on_the_adaptive_lane_equals_the_tap_loop(k, shape, dtype, monkeypatch):
    """Windows that tile the input run on the compiled adaptive kernel (the lane in
    functional/pool.py): values, indices and the input gradient equal the tap loop's, bit for
    bit — ties (rounded values: the first maximum wins), NaN (the last one wins) and a plane of
    -inf (its first position) included."""
    from minidl import kernels
    from minidl.functional import pool
    if not kernels.available()["cpu"]:
        pytest.skip("minidl._C is not built")
    rng = np.random.default_rng(sum(shape))
    x0 = np.round(rng.standard_normal(shape) * 2).astype(dtype)
    x0[0, 0, 0, 0] = np.nan
    x0[0, 0, -1, -k[1]:] = np.nan
    x0[-1, -1] = -np.inf
    g0 = rng.standard_normal((shape[0], shape[1], shape[2] // k[0], shape[3] // k[1])).astype(dtype)
    results = {}
    for lane in (True, False):
        if not lane:
            monkeypatch.setattr(pool, "_windows_are_adaptive_bins", lambda *args: False)
        x = Tensor(x0.copy(), requires_grad=True)
        assert pool._windows_are_adaptive_bins(x.data, k, k, (0, 0), (1, 1), g0.shape[2:]) == lane
        y, index = F.max_pool2d(x, k, return_indices=True)
        y.backward(g0)
        results[lane] = (y.numpy(), index.numpy(), x.grad.numpy())
    for lane_value, plain_value in zip(results[True], results[False]):
        np.testing.assert_array_equal(lane_value, plain_value)


def test_the_adaptive_lane_takes_only_windows_that_tile_the_input():
    from minidl import kernels
    from minidl.functional import pool
    x = np.zeros((1, 2, 8, 8), np.float32)
    takes = pool._windows_are_adaptive_bins
    assert takes(x, (2, 2), (2, 2), (0, 0), (1, 1), (4, 4)) == kernels.available()["cpu"]
    assert not takes(x, (2, 2), (1, 1), (0, 0), (1, 1), (7, 7))                  # overlapping
    assert not takes(x, (2, 2), (2, 2), (1, 1), (1, 1), (5, 5))                  # padded
    assert not takes(x, (2, 2), (2, 2), (0, 0), (2, 2), (3, 3))                  # dilated
    assert not takes(np.zeros((1, 2, 9, 8), np.float32), (2, 2), (2, 2), (0, 0), (1, 1), (5, 4))  # ceil_mode
    assert not takes(x.astype(np.float16), (2, 2), (2, 2), (0, 0), (1, 1), (4, 4))  # no compiled kernel
    with kernels.using("reference"):
        assert not takes(x, (2, 2), (2, 2), (0, 0), (1, 1), (4, 4))
