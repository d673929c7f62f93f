"""roi_pool / roi_align: C++ == NumPy reference == torchvision, gradchecks, guards, bad input."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import kernels, ops
from minidl.gradcheck import gradcheck
from minidl.kernels.roi_align import roi_align_backward_reference, roi_align_reference
from minidl.kernels.roi_pool import roi_pool_backward_reference, roi_pool_reference

import raw_bindings as raw

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")


def make_rois(rng, k, batch, image_size, dtype):
    """RoIs inside, partly outside and wholly outside the image; some smaller than a bin."""
    x1y1 = rng.uniform(-0.5 * image_size, 1.2 * image_size, (k, 2))
    wh = rng.choice([0.3, 2.0, 0.2 * image_size, image_size], (k, 2)) * rng.uniform(0.5, 1.5, (k, 2))
    batch_index = rng.integers(0, batch, (k, 1))
    return np.concatenate([batch_index, x1y1, x1y1 + wh], axis=1).astype(dtype)


roi_cases = dict(seed=st.integers(0, 10**6), k=st.integers(0, 12), h=st.integers(1, 12),
                 w=st.integers(1, 12), out=st.sampled_from([(1, 1), (2, 3), (7, 7)]),
                 scale=st.sampled_from([1.0, 0.5, 1 / 16]), dtype=st.sampled_from([np.float32, np.float64]))


@native
@settings(max_examples=60, deadline=None)
@given(**roi_cases)
def test_roi_pool_native_equals_reference(seed, k, h, w, out, scale, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    x[0, 0, 0, :] = 1.0                                            # ties: the first position wins
    rois = make_rois(rng, k, 2, max(h, w) / scale, dtype)
    output, argmax = kernels.roi_pool.roi_pool_forward(x, rois, out, scale)
    ref_output, ref_argmax = roi_pool_reference(x, rois, out, scale)
    np.testing.assert_array_equal(output, ref_output)              # same arithmetic: exact
    np.testing.assert_array_equal(argmax, ref_argmax)
    grad = rng.standard_normal(output.shape).astype(dtype)
    np.testing.assert_allclose(kernels.roi_pool.roi_pool_backward(grad, argmax, rois, x.shape),
                               roi_pool_backward_reference(grad, argmax, rois, x.shape),
                               rtol=1e-5, atol=1e-5)


@native
@settings(max_examples=60, deadline=None)
@given(sampling_ratio=st.sampled_from([-1, 0, 1, 2]), aligned=st.booleans(), **roi_cases)
def test_roi_align_native_equals_reference(seed, k, h, w, out, scale, dtype, sampling_ratio, aligned):
    """Both C++ forms — "native" (roi_align_cpu_fast.cpp) and "body" (roi_align_cpu.cpp, the loop
    over the body the CUDA kernels call) — against the NumPy reference on every case."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    rois = make_rois(rng, k, 2, max(h, w) / scale, dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    args = (out, scale, sampling_ratio, aligned)
    expected = roi_align_reference(x, rois, *args)
    grad = rng.standard_normal(expected.shape).astype(dtype)
    bargs = (x.shape, scale, sampling_ratio, aligned)
    expected_grad = roi_align_backward_reference(grad, rois, *bargs)
    for form in ("native", "body"):
        with kernels.using(form):
            np.testing.assert_allclose(kernels.roi_align.roi_align_forward(x, rois, *args), expected,
                                       **tol, err_msg=form)
            np.testing.assert_allclose(kernels.roi_align.roi_align_backward(grad, rois, *bargs),
                                       expected_grad, **tol, err_msg=form)


# ---- torchvision: values and gradients ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op, options", [
    ("roi_pool", {}),
    ("roi_align", dict(sampling_ratio=-1, aligned=False)),
    ("roi_align", dict(sampling_ratio=2, aligned=False)),
    ("roi_align", dict(sampling_ratio=-1, aligned=True)),
    ("roi_align", dict(sampling_ratio=0, aligned=True)),
])
def test_matches_torchvision(mode, dtype, op, options):
    torch = pytest.importorskip("torch", reason="torch is only used to compare with torchvision")
    tv = pytest.importorskip("torchvision", reason="comparison with torchvision's RoI ops")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 13, 17)).astype(dtype)
    rois = make_rois(rng, 40, 2, 17 * 8, dtype)
    grad = rng.standard_normal((40, 4, 5, 3)).astype(dtype)
    xt = torch.from_numpy(x).requires_grad_()
    expected = getattr(tv.ops, op)(xt, torch.from_numpy(rois), (5, 3), 1 / 8, **options)
    expected.backward(torch.from_numpy(grad))
    with kernels.using(mode):
        xm = minidl.tensor(x, requires_grad=True)
        got = getattr(ops, op)(xm, rois, (5, 3), 1 / 8, **options)
        got.backward(grad)
    # roi_pool: the same arithmetic as torchvision, bit for bit. roi_align: the C++ forward sums
    # the separable form (rows, then columns), the backward forms (grad / count) · w rather than
    # (grad · w) / count, the reference uses matrix products: equal within float rounding.
    close = dict(rtol=1e-5, atol=1e-6 if dtype == np.float32 else 1e-12)
    tol = dict(rtol=0, atol=0) if op == "roi_pool" else close
    np.testing.assert_allclose(got.numpy(), expected.detach().numpy(), **tol)
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), **tol)


def test_list_of_boxes_equals_roi_format():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    per_image = [rng.uniform(0, 60, (4, 4)).astype(np.float32) for _ in range(2)]
    per_image = [np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1) for b in per_image]
    rois = np.concatenate([np.concatenate([np.full((4, 1), i, np.float32), b], 1)
                           for i, b in enumerate(per_image)])
    for op in (ops.roi_pool, ops.roi_align):
        np.testing.assert_array_equal(op(x, per_image, 3, 1 / 8).numpy(), op(x, rois, 3, 1 / 8).numpy())


# ---- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradcheck_roi_pool(mode, seed):
    rng = np.random.default_rng(seed)
    x = rng.permutation(2 * 2 * 8 * 8).reshape(2, 2, 8, 8) / 10.0     # distinct values: no argmax ties
    rois = np.array([[0, 0, 0, 60, 40], [1, 10, 5, 50, 70], [1, -20, -20, 20, 20], [0, 30, 30, 31, 31]])
    with kernels.using(mode):
        gradcheck(lambda t: ops.roi_pool(t, rois, (3, 2), 1 / 8), [x], eps=1e-6, tol=1e-6)


@pytest.mark.parametrize("mode", ["native", "body", "reference"])
@pytest.mark.parametrize("aligned, sampling_ratio", [(False, -1), (True, 2), (True, -1)])
def test_gradcheck_roi_align(mode, aligned, sampling_ratio):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 8, 8))
    rois = np.array([[0, 3, 5, 60, 40], [1, 10.5, 5, 50, 70.2], [1, -20, -20, 20, 20], [0, 30, 30, 31, 31]])
    with kernels.using(mode):
        gradcheck(lambda t: ops.roi_align(t, rois, (3, 2), 1 / 8, sampling_ratio, aligned), [x],
                  eps=1e-6, tol=1e-6)


@native
@pytest.mark.parametrize("form", ["native", "body"])
@pytest.mark.parametrize("op", ["roi_pool", "roi_align"])
def test_cpu_backward_is_bit_reproducible(op, form):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 32, 20, 20)).astype(np.float32)
    rois = make_rois(rng, 200, 2, 320, np.float32)
    grads = []
    for _ in range(3):
        xm = minidl.tensor(x, requires_grad=True)
        with kernels.using(form):
            getattr(ops, op)(xm, rois, 7, 1 / 16).sum().backward()
        grads.append(xm.grad.numpy())
    assert all(np.array_equal(grads[0], g) for g in grads[1:])


# ---- edge cases and bad input ------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("op", [ops.roi_pool, ops.roi_align])
def test_empty_boxes_give_empty_output(mode, op):
    x = minidl.tensor(np.ones((2, 3, 5, 5), np.float32), requires_grad=True)
    with kernels.using(mode):
        for boxes in (np.zeros((0, 5), np.float32), [np.zeros((0, 4), np.float32)] * 2):
            out = op(x, boxes, (2, 4))
            assert out.shape == (0, 3, 2, 4) and out.dtype == np.float32
            out.sum().backward()
            assert x.grad.shape == (2, 3, 5, 5) and not x.grad.numpy().any()


@pytest.mark.parametrize("mode", ["native", "body", "reference"])
def test_rois_outside_the_map_pool_zeros(mode):
    x = np.ones((1, 2, 4, 4), np.float32)
    rois = np.array([[0, 100, 100, 200, 200], [0, -90, -90, -50, -50]], np.float32)
    with kernels.using(mode):
        assert not ops.roi_pool(x, rois, 2).numpy().any()
        assert not ops.roi_align(x, rois, 2).numpy().any()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(boxes=np.zeros((2, 4), np.float32)), ValueError, "boxes"),
    (dict(boxes=np.array([[2, 0, 0, 1, 1]], np.float32)), ValueError, "batch"),
    (dict(boxes=np.array([[-1, 0, 0, 1, 1]], np.float32)), ValueError, "batch"),
    (dict(boxes=np.array([[0.5, 0, 0, 1, 1]], np.float32)), ValueError, "batch"),
    (dict(boxes=np.array([[0, 0, np.nan, 1, 1]], np.float32)), ValueError, "NaN"),
    (dict(boxes=np.array([[0, 0, 0, np.inf, 1]], np.float32)), ValueError, "NaN or inf"),
    (dict(spatial_scale=-0.5), ValueError, "spatial_scale"),
    (dict(spatial_scale=float("nan")), ValueError, "spatial_scale"),
    (dict(output_size=0), ValueError, "output_size"),
    (dict(output_size=(2, -1)), ValueError, "output_size"),
    (dict(input=np.ones((2, 5, 5), np.float32)), ValueError, "input"),
    (dict(input=np.ones((2, 1, 5, 5), np.int64)), TypeError, "input"),
    (dict(boxes=[np.zeros((1, 5), np.float32)]), ValueError, "boxes"),
])
@pytest.mark.parametrize("op", [ops.roi_pool, ops.roi_align])
def test_bad_input_raises_naming_the_argument(op, kwargs, error, match):
    args = dict(input=np.ones((2, 1, 5, 5), np.float32), boxes=np.array([[0, 0, 0, 3, 3]], np.float32),
                output_size=2, spatial_scale=1.0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        op(**args)


@native
def test_kernels_stay_in_bounds_on_non_finite_rois_given_directly():
    """The ops reject these; the C++ bodies must still never turn NaN/inf or a bad batch index
    into a memory access: such RoIs pool 0 (argmax -1) and receive no gradient."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    bad = np.array([[0, np.nan, 0, 3, 3], [0, 0, np.inf, 3, 3], [0, -np.inf, -np.inf, np.inf, np.inf],
                    [np.nan, 0, 0, 3, 3], [7, 0, 0, 3, 3], [-3, 0, 0, 3, 3], [np.inf, 0, 0, 3, 3],
                    [0, 1e30, 1e30, 1e31, 1e31], [1, -1e30, 0, 1e30, 3]], np.float32)
    for scale in (1.0, 1e20):
        output, argmax = raw.roi_pool_forward(x, bad, scale, 2, 2)
        assert not output.any() and (argmax == -1).all()
        grad = np.ones_like(output)
        assert not raw.roi_pool_backward(grad, argmax, bad, 2, 6, 6).any()
        for aligned, fast in itertools.product((False, True), (False, True)):
            assert not raw.roi_align_forward(x, bad, scale, 2, 2, -1, aligned, fast).any()
            assert not raw.roi_align_backward(grad, bad, scale, 2, 6, 6, -1, aligned, fast).any()
    # corrupted argmax switches are ignored, not followed
    good = np.array([[0, 0, 0, 3, 3]], np.float32)
    _, argmax = raw.roi_pool_forward(x, good, 1.0, 2, 2)
    argmax[0, 0, 0, 0], argmax[0, 1, 0, 0] = 10**9, -5
    g = raw.roi_pool_backward(np.ones((1, 3, 2, 2), np.float32), argmax, good, 2, 6, 6)
    assert g.sum() == 12 - 2


@native
def test_kernels_check_shapes():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="rois"):
        raw.roi_align_forward(x, np.zeros((2, 4), np.float32), 1.0, 2, 2, -1, False)
    with pytest.raises(TypeError, match="rois"):
        raw.roi_pool_forward(x, np.zeros((2, 5), np.float64), 1.0, 2, 2)
    with pytest.raises(ValueError, match="spatial_scale"):
        raw.roi_pool_forward(x, np.zeros((2, 5), np.float32), -1.0, 2, 2)
    with pytest.raises(ValueError, match="argmax"):
        raw.roi_pool_backward(np.zeros((2, 1, 2, 2), np.float32), np.zeros((2, 1, 2, 3), np.int64),
                             np.zeros((2, 5), np.float32), 1, 4, 4)


def test_huge_roi_adaptive_grid_is_capped():
    x = np.ones((1, 1, 4, 4), np.float32)
    rois = np.array([[0, -1e6, -1e6, 1e6, 1e6]], np.float32)   # ~4e5 samples per bin uncapped
    out = ops.roi_align(x, rois, 1)
    assert out.shape == (1, 1, 1, 1) and np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("op", ["roi_pool", "roi_align"])
@pytest.mark.parametrize("deterministic", [False, True])
def test_device_matches_cpu(device, op, deterministic):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    rois = make_rois(rng, 64, 2, 96, np.float32)
    grad = rng.standard_normal((64, 8, 3, 3)).astype(np.float32)
    results = []
    for dev in ("cpu", device):
        xm = minidl.tensor(x, requires_grad=True, device=dev)
        out = getattr(ops, op)(xm, minidl.tensor(rois, device=dev), 3, 1 / 8, deterministic=deterministic)
        out.backward(minidl.tensor(grad, device=dev))
        results.append((out.numpy(), xm.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-5)
