"""adaptive_max_pool2d and SpatialPyramidPooling: C++ == NumPy reference (bit for bit), exact
PyTorch bins, gradcheck, == torch, bad input, SPP shapes, and the roi_pool equivalence that the
SPP-net detector relies on. The CUDA test at the end skips without a GPU."""
from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.functional as F
from minidl import kernels, nn, ops
from minidl.gradcheck import gradcheck
from minidl.kernels.adaptive_max_pool import (adaptive_max_pool2d_backward_reference,
                                              adaptive_max_pool2d_reference, bin_edges)
from minidl.autograd import Tensor

import raw_bindings as raw

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")


def awkward_input(rng, shape, dtype):
    """Random values with ties (integers in a small range) and special planes: a NaN, a plane
    of -inf, two NaNs in one bin — where the tie and NaN rules decide the argmax."""
    x = rng.integers(-3, 4, shape).astype(dtype) + (rng.random(shape) < 0.5) * rng.random(shape)
    x = x.astype(dtype)
    n, c, h, w = shape
    x[0, 0, h // 2, w // 2] = np.nan
    if c > 1:
        x[0, 1] = -np.inf
    if n > 1:
        x[1, 0, 0, :] = np.nan                                   # several NaNs in one bin
    return x


# ---- the compiled kernel equals the NumPy reference, bit for bit ---------------------------
shapes = dict(seed=st.integers(0, 10**6), h=st.integers(1, 13), w=st.integers(1, 13),
              out_h=st.integers(1, 9), out_w=st.integers(1, 9),
              dtype=st.sampled_from([np.float32, np.float64]))


@native
@settings(max_examples=80, deadline=None)
@given(**shapes)
def test_native_equals_reference_bit_for_bit(seed, h, w, out_h, out_w, dtype):
    # Sizes cover H not divisible by out (overlapping bins) and out > H (repeated rows).
    # Catches: an off-by-one bin edge in adaptive_max_pool.h, another tie or NaN rule, a
    # backward that adds overlapping cells in another order (or races) — last bits differ.
    rng = np.random.default_rng(seed)
    x = awkward_input(rng, (2, 3, h, w), dtype)
    ref_output, ref_argmax = adaptive_max_pool2d_reference(x, (out_h, out_w))
    for mode in ("native", "body"):                   # the fast CPU form and the textbook loop
        with kernels.using(mode):
            output, argmax = kernels.adaptive_max_pool.adaptive_max_pool2d_forward(x, (out_h, out_w))
        assert output.dtype == dtype and argmax.dtype == np.int64
        np.testing.assert_array_equal(output, ref_output)         # NaN == NaN here
        np.testing.assert_array_equal(argmax, ref_argmax)
    grad = rng.standard_normal(output.shape).astype(dtype)
    grad_input = kernels.adaptive_max_pool.adaptive_max_pool2d_backward(grad, argmax, x.shape)
    ref_grad = adaptive_max_pool2d_backward_reference(grad, ref_argmax, x.shape)
    assert grad_input.dtype == dtype
    np.testing.assert_array_equal(grad_input, ref_grad)


@pytest.mark.parametrize("h, w, out", [(7, 5, (3, 2)), (4, 4, (6, 5)), (1, 1, (3, 3)),
                                       (13, 11, (4, 4)), (5, 9, (1, 1)), (6, 6, (6, 6))])
def test_reference_is_the_max_over_pytorchs_bins(h, w, out):
    # An independent definition: bins from exact rationals, max by Python's max().
    # Catches: a reference with round() or float bins, or rows and columns swapped.
    rng = np.random.default_rng(1)
    x = rng.permutation(2 * 3 * h * w).reshape(2, 3, h, w).astype(np.float64)   # no ties
    output, argmax = adaptive_max_pool2d_reference(x, out)
    for i in range(out[0]):
        r0, r1 = math.floor(Fraction(i * h, out[0])), math.ceil(Fraction((i + 1) * h, out[0]))
        assert bin_edges(i, out[0], h) == (r0, r1)
        for j in range(out[1]):
            c0, c1 = math.floor(Fraction(j * w, out[1])), math.ceil(Fraction((j + 1) * w, out[1]))
            for n in range(2):
                for c in range(3):
                    best = max(x[n, c, r0:r1, c0:c1].ravel())
                    assert output[n, c, i, j] == best
                    assert x[n, c].ravel()[argmax[n, c, i, j]] == best


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.int64])
def test_other_dtypes_run_the_reference_and_keep_their_dtype(dtype):
    # Like max_pool2d, any real dtype pools (the max is exact); the compiled kernels take only
    # float32/float64. Catches: a float16 or int input sent to _C (TypeError) or upcast.
    x = np.arange(2 * 3 * 5 * 7).reshape(2, 3, 5, 7).astype(dtype)
    y = F.adaptive_max_pool2d(Tensor(x), (2, 3))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.numpy(), adaptive_max_pool2d_reference(x, (2, 3))[0])


# ---- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("shape, out", [((2, 3, 7, 5), (3, 2)), ((1, 2, 3, 4), (5, 6)),
                                        ((2, 2, 6, 6), 1)])
def test_gradcheck(mode, shape, out):
    # Tie-free input (distinct values 0.1 apart, far more than eps): the max is differentiable.
    # Overlapping bins (7 -> 3) and out > H make one input collect several gradients.
    # Catches: a backward that writes (=) instead of adding (+=), or routes to the wrong place.
    rng = np.random.default_rng(2)
    x = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)
    with kernels.using(mode):
        gradcheck(lambda t: F.adaptive_max_pool2d(t, out), [x], eps=1e-6, tol=1e-6)


# ---- against PyTorch -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h, w, out", [(7, 5, (3, 2)), (4, 4, (6, 5)), (13, 11, (4, 4)),
                                       (1, 1, (2, 3)), (10, 9, (None, 4)), (8, 8, 1)])
def test_matches_torch(dtype, h, w, out):
    # Catches: any difference from PyTorch's bins, tie rule, NaN rule or index layout.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = awkward_input(rng, (2, 3, h, w), dtype)
    y, index = F.adaptive_max_pool2d(Tensor(x), out, return_indices=True)
    ty, tindex = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(x), out,
                                                         return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(index.numpy(), tindex.numpy())
    finite = np.nan_to_num(x, nan=0.0, neginf=0.0)            # NaN-free for the gradients
    t = Tensor(finite, requires_grad=True)
    grad = rng.standard_normal(y.shape).astype(dtype)
    (F.adaptive_max_pool2d(t, out) * Tensor(grad)).sum().backward()
    tt = torch.from_numpy(finite).requires_grad_(True)
    (torch.nn.functional.adaptive_max_pool2d(tt, out) * torch.from_numpy(grad)).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-6, atol=1e-6)


# ---- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, words", [
    (lambda: F.adaptive_max_pool2d(Tensor(np.ones((3, 4, 4))), 2), ValueError, ["input", "(N, C, H, W)"]),
    (lambda: F.adaptive_max_pool2d(Tensor(np.ones((1, 1, 0, 4))), 2), ValueError, ["H × W"]),
    (lambda: F.adaptive_max_pool2d(Tensor(np.ones((1, 1, 4, 4))), 0), ValueError, ["output_size"]),
    (lambda: F.adaptive_max_pool2d(Tensor(np.ones((1, 1, 4, 4))), (2, -1)), ValueError, ["output_size"]),
    (lambda: F.adaptive_max_pool2d(Tensor(np.ones((1, 1, 4, 4))), "2"), TypeError, ["output_size"]),
    (lambda: F.adaptive_max_pool2d(Tensor(np.ones((1, 1, 4, 4))), 2.5), TypeError, ["output_size"]),
    (lambda: F.adaptive_max_pool2d(Tensor(np.ones((1, 1, 4, 4))), (2, 2, 2)), TypeError, ["output_size"]),
    (lambda: F.adaptive_max_pool2d(Tensor(np.ones((1, 1, 4, 4))), None), TypeError, ["output_size"]),
    (lambda: F.adaptive_max_pool2d("image", 2), TypeError, ["adaptive_max_pool2d", "x"]),
    (lambda: nn.SpatialPyramidPooling((1, 0)), ValueError, ["levels"]),
])
def test_bad_input_raises_an_error_naming_the_argument(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


@native
def test_binding_refuses_bad_arrays_without_crashing():
    # The bindings check before touching memory. Catches: a missing check (a crash or garbage).
    from minidl import _C
    x = np.ones((1, 2, 4, 4))
    with pytest.raises(TypeError, match="input"):
        raw.adaptive_max_pool2d_forward(x.astype(np.int32), 2, 2)
    with pytest.raises(ValueError, match="input"):
        raw.adaptive_max_pool2d_forward(np.ones((2, 4, 4)), 2, 2)
    with pytest.raises(ValueError, match="output_size"):
        raw.adaptive_max_pool2d_forward(x, 0, 2)
    with pytest.raises(ValueError, match="height and width"):
        raw.adaptive_max_pool2d_forward(np.ones((1, 2, 0, 4)), 2, 2)
    with pytest.raises(ValueError, match=r"argmax must have shape \(1, 2, 2, 2\)"):   # outputs disagree
        _C.adaptive_max_pool2d_forward(x, np.empty((1, 2, 2, 2)), np.empty((1, 2, 2, 3), np.int64))
    # (Sizes that overflow cannot reach _C, whose outputs are real arrays; _C_cuda takes sizes
    # as ints and refuses them: tests/test_binding_contract.py.)
    _, argmax = raw.adaptive_max_pool2d_forward(x, 2, 2)
    with pytest.raises(ValueError, match="argmax"):
        raw.adaptive_max_pool2d_backward(np.ones((1, 2, 2, 3)), argmax, 4, 4)
    with pytest.raises(TypeError, match="argmax"):
        raw.adaptive_max_pool2d_backward(np.ones((1, 2, 2, 2)), argmax.astype(np.int32), 4, 4)
    # a corrupted switch routes nothing instead of writing outside the plane
    grad = raw.adaptive_max_pool2d_backward(np.ones((1, 2, 2, 2)), np.full((1, 2, 2, 2), 99), 4, 4)
    assert not grad.any()


# ---- SpatialPyramidPooling ---------------------------------------------------------------------
@pytest.mark.parametrize("h, w", [(1, 1), (5, 7), (16, 16), (3, 40)])
def test_spp_length_is_fixed_and_level_one_is_the_global_max(h, w):
    # Catches: an output length that depends on H, W; levels in the wrong order; a sample's
    # block flattened in (l, l, C) instead of (C, l, l) order.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    spp = nn.SpatialPyramidPooling((1, 2, 4))
    y = spp(Tensor(x))
    assert y.shape == (2, 3 * (1 + 4 + 16)) == (2, spp.output_features(3))
    np.testing.assert_array_equal(y.numpy()[:, :3], x.max(axis=(2, 3)))
    blocks = [F.adaptive_max_pool2d(Tensor(x), (l, l)).numpy().reshape(2, -1) for l in (1, 2, 4)]
    np.testing.assert_array_equal(y.numpy(), np.concatenate(blocks, axis=1))
    np.testing.assert_array_equal(y.numpy()[:, 3:7], blocks[1][:, :4])  # channel 0's 2×2 block


def test_spp_is_differentiable_and_a_module():
    # Catches: a layer that breaks the graph (no gradient reaches the input).
    x = Tensor(np.random.default_rng(5).standard_normal((2, 3, 9, 6)), requires_grad=True)
    spp = nn.SpatialPyramidPooling((1, 3))
    spp(x).sum().backward()
    assert x.grad.shape == x.shape and x.grad.numpy().sum() > 0
    assert "levels=(1, 3)" in repr(spp)
    y = nn.AdaptiveMaxPool2d((2, 3))(x)
    assert y.shape == (2, 3, 2, 3)


# ---- roi_pool of an integer box == adaptive_max_pool2d of its crop ------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pooled", [1, 2, 3, 4, 5, 6, 7, 8])
def test_roi_pool_of_an_integer_box_is_adaptive_pool_of_the_crop(dtype, pooled):
    # roi_pool (spatial_scale 1, integer box inside the map) cuts the inclusive box
    # y1..y2 × x1..x2 into floor/ceil bins of size (y2 - y1 + 1) / P, which are adaptive
    # pooling's bins of the crop x[b, :, y1:y2+1, x1:x2+1] — values, switches and gradients.
    # (The bins are computed in floats there: on maps up to 28 wide no rounding crosses an
    # integer for P <= 8; see the test below for where one does.)
    # Catches: an SPP-net detector whose adaptive pooling of a window is not Fast R-CNN's
    # RoI pooling of the same box (an off-by-one box end, exclusive vs inclusive sizes).
    rng = np.random.default_rng(pooled)
    x = rng.standard_normal((2, 3, 28, 28)).astype(dtype)
    xs, ys = np.sort(rng.integers(0, 28, (2, 20, 2)), axis=2)       # x1 <= x2, y1 <= y2
    boxes = np.stack([rng.integers(0, 2, 20), xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)
    rois = Tensor(boxes.astype(dtype))
    t = Tensor(x, requires_grad=True)
    pooled_rois = ops.roi_pool(t, rois, pooled, spatial_scale=1.0)
    grad = rng.standard_normal(pooled_rois.shape).astype(dtype)
    (pooled_rois * Tensor(grad)).sum().backward()
    want_grad = np.zeros_like(x)
    for k, (b, x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        crop = Tensor(x[b:b + 1, :, y1:y2 + 1, x1:x2 + 1].copy(), requires_grad=True)
        pooled_crop = F.adaptive_max_pool2d(crop, (pooled, pooled))
        np.testing.assert_array_equal(pooled_rois.numpy()[k], pooled_crop.numpy()[0])
        (pooled_crop * Tensor(grad[k:k + 1])).sum().backward()
        want_grad[b, :, y1:y2 + 1, x1:x2 + 1] += crop.grad.numpy()[0]
    # (the sums over overlapping boxes are added in another order here: close, not bit-equal)
    np.testing.assert_allclose(t.grad.numpy(), want_grad, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-5)


def test_roi_pool_and_adaptive_pool_differ_where_a_float_bin_edge_rounds_up():
    # roi_pool computes bin ends as ceil((i+1) * (size / P)) in the dtype; adaptive pooling
    # in exact integers. In float64 with P = 7 and a 29-row box, 7 * fl(29/7) > 29, so
    # roi_pool's last bin row-end is y2 + 2 — one row *below* the box (unless the map ends
    # there). A large value on that row shows it. (Documented in docs/detection_ops.md.)
    assert math.ceil(7 * (29.0 / 7)) == 30 and bin_edges(6, 7, 29)[1] == 29
    x = np.zeros((1, 1, 40, 8))
    x[0, 0, 29, :] = 5.0                                    # the row just below rows 0..28
    rois = np.array([[0, 0, 0, 7, 28]], dtype=np.float64)  # x1=0, y1=0, x2=7, y2=28: 29 rows
    by_roi = ops.roi_pool(Tensor(x), rois, 7).numpy()[0, 0]
    by_crop = F.adaptive_max_pool2d(Tensor(x[:, :, 0:29, 0:8]), 7).numpy()[0, 0]
    assert by_roi[6].max() == 5.0 and by_crop[6].max() == 0.0
    np.testing.assert_array_equal(by_roi[:6], by_crop[:6])


# ---- CUDA (skips without a GPU) ----------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not minidl.cuda_available(), reason="no CUDA GPU (CuPy + device)")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_equals_reference_bit_for_bit(dtype):
    # The same body on the GPU: forward values, switches and the per-plane backward (no
    # atomics) equal the reference exactly. Catches: a launch that indexes cells or planes
    # differently from the CPU loop.
    import cupy
    rng = np.random.default_rng(6)
    for h, w, out in [(13, 11, (4, 4)), (4, 5, (6, 7)), (32, 20, (1, 1)), (9, 9, (2, 2))]:
        x = awkward_input(rng, (3, 5, h, w), dtype)
        output, argmax = kernels.adaptive_max_pool.adaptive_max_pool2d_forward(cupy.asarray(x), out)
        ref_output, ref_argmax = adaptive_max_pool2d_reference(x, out)
        np.testing.assert_array_equal(cupy.asnumpy(output), ref_output)
        np.testing.assert_array_equal(cupy.asnumpy(argmax), ref_argmax)
        grad = rng.standard_normal(ref_output.shape).astype(dtype)
        grad_input = kernels.adaptive_max_pool.adaptive_max_pool2d_backward(
            cupy.asarray(grad), argmax, x.shape)
        np.testing.assert_array_equal(cupy.asnumpy(grad_input),
                                      adaptive_max_pool2d_backward_reference(grad, ref_argmax, x.shape))
    x = rng.standard_normal((2, 3, 10, 7)).astype(np.float32)
    spp = nn.SpatialPyramidPooling((1, 2, 4))
    t = minidl.tensor(x, device="cuda", requires_grad=True)
    spp(t).sum().backward()
    c = Tensor(x, requires_grad=True)
    spp(c).sum().backward()
    np.testing.assert_array_equal(spp(t).cpu().numpy(), spp(c).numpy())
    np.testing.assert_array_equal(t.grad.cpu().numpy(), c.grad.numpy())
