"""Winograd F(2×2, 3×3): the transforms and their adjoints == reference bit for bit (both CPU
forms), the lane == im2col's conv within float rounding (values and gradients), gradcheck, bad
arguments to the bindings."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import backend, kernels
from minidl import functional as F
from minidl.functional import conv_winograd
from minidl.gradcheck import gradcheck
from minidl.kernels import winograd as W

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")


@st.composite
def winograd_cases(draw):
    """Sizes down to 1×1 (with padding 1–2), odd and even outputs (tiles hanging over the edge),
    every padding in [0, 2] per axis, float32 and float64."""
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, 3 - 2 * ph), 11))
    w = draw(st.integers(max(1, 3 - 2 * pw), 11))
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, c, h, w), f, (ph, pw), dtype


def transforms(x, weight, bias, padding):
    """y through the three transforms and the 16 products, in the current kernel mode."""
    n, _, h, w = x.shape
    oh, ow = W.output_size(h, w, padding)
    th, tw = W.tiles(oh, ow)
    v = np.full((16, x.shape[1], n * th * tw), np.nan, x.dtype)        # every entry must be written
    W.input_transform(x, padding, v)
    m = W.filter_transform(weight) @ v
    y = np.full((n, weight.shape[0], oh, ow), np.nan, x.dtype)
    W.output_transform(m, bias, y)
    return v, y


@native
@settings(max_examples=120, deadline=None)
@given(winograd_cases())
def test_kernels_equal_the_reference_bit_for_bit(case):
    shape, f, padding, dtype = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal((f, shape[1], 3, 3)).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype)
    with kernels.using("reference"):
        v_ref, y_ref = transforms(x, weight, bias, padding)
    for form in ("native", "body"):       # winograd_cpu_fast.cpp and the per-tile body form
        with kernels.using(form):
            v, y = transforms(x, weight, bias, padding)
        np.testing.assert_array_equal(v, v_ref, err_msg=form)
        np.testing.assert_array_equal(y, y_ref, err_msg=form)
    # ... and the algorithm is the convolution: within float rounding of im2col's
    expected = F.conv2d(minidl.Tensor(x), minidl.Tensor(weight), minidl.Tensor(bias), padding=padding)
    scale = max(1.0, float(np.abs(expected.numpy()).max()))
    tol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y_ref, expected.numpy(), rtol=0, atol=tol * scale * shape[1])


@native
@settings(max_examples=80, deadline=None)
@given(winograd_cases())
def test_adjoint_kernels_equal_the_reference_and_are_the_transposes(case):
    """The backward's kernels: bit for bit with the reference, and the adjoints they claim to be:
    <input_transform(x), dV> = <x, input_adjoint(dV)>, <output_transform(M), dy> = <M, output_adjoint(dy)>."""
    shape, f, padding, dtype = case
    n, c, h, w = shape
    oh, ow = W.output_size(h, w, padding)
    th, tw = W.tiles(oh, ow)
    p = n * th * tw
    rng = np.random.default_rng(1)
    x, dv = rng.standard_normal(shape), rng.standard_normal((16, c, p))
    m, dy = rng.standard_normal((16, f, p)), rng.standard_normal((n, f, oh, ow))
    x, dv, m, dy = (a.astype(dtype) for a in (x, dv, m, dy))
    results = {}
    for mode in ("reference", "native", "body"):
        with kernels.using(mode):
            dm = np.full((16, f, p), np.nan, dtype)
            dx = np.full(shape, np.nan, dtype)
            results[mode] = (W.output_adjoint(dy, dm), W.input_adjoint(dv, padding, dx))
    for mode in ("native", "body"):
        for got, expected in zip(results[mode], results["reference"]):
            np.testing.assert_array_equal(got, expected, err_msg=mode)
    dm, dx = (a.astype(np.float64) for a in results["reference"])
    v = W.input_transform_reference(x.astype(np.float64), padding)
    y = W.output_transform_reference(m.astype(np.float64), None, np.empty((n, f, oh, ow)))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose((v * dv).sum(), (x * dx).sum(), rtol=tol, atol=tol)
    np.testing.assert_allclose((y * dy).sum(), (m * dm).sum(), rtol=tol, atol=tol)


@native
def test_padded_blocks_are_accepted_and_the_pad_is_never_written():
    """conv_winograd's buffers space the 16 blocks of V and M apart (off 4 KB multiples)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    p = 2 * 16
    base = np.full((16, 3 * p + 16), np.nan, np.float32)
    v = base[:, :3 * p].reshape(16, 3, p)
    for form in ("native", "body"):
        with kernels.using(form):
            W.input_transform(x, (1, 1), v)
        np.testing.assert_array_equal(v, W.input_transform_reference(x, (1, 1)))
        assert np.isnan(base[:, 3 * p:]).all()


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_conv2d_on_the_lane_equals_the_plain_side(dtype, tol, monkeypatch):
    """Values, input and weight gradients of a conv the rule sends to Winograd (128 channels)
    against the same conv with the lane off; the forward's relative error is what the docs quote."""
    rng = np.random.default_rng(2)
    x64, w64 = rng.standard_normal((2, 128, 9, 6)), rng.standard_normal((128, 128, 3, 3)) * 0.05
    b64 = rng.standard_normal(128)
    results = {}
    for enabled in (True, False):
        monkeypatch.setattr(conv_winograd, "enabled", enabled)
        x, w, b = (minidl.Tensor(a.astype(dtype), requires_grad=True) for a in (x64, w64, b64))
        assert conv_winograd.takes(w.data, F.conv.Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1)) == enabled
        y = F.conv2d(x, w, b, padding=1)
        (y * y).sum().backward()
        results[enabled] = [y.numpy(), x.grad.numpy(), w.grad.numpy()]
    for got, expected in zip(results[True], results[False]):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol * np.abs(expected).max())


def test_the_rule_takes_only_3x3_stride_1_with_many_channels():
    geometry = F.conv.Geometry
    big, small = np.zeros((128, 128, 3, 3)), np.zeros((128, 64, 3, 3))
    assert conv_winograd.takes(big, geometry((3, 3), (1, 1), (1, 1), (1, 1), 1))
    assert conv_winograd.takes(big, geometry((3, 3), (1, 1), (0, 2), (1, 1), 1))
    assert not conv_winograd.takes(small, geometry((3, 3), (1, 1), (1, 1), (1, 1), 1))
    assert not conv_winograd.takes(big, geometry((3, 3), (2, 2), (1, 1), (1, 1), 1))
    assert not conv_winograd.takes(big, geometry((3, 3), (1, 1), (3, 3), (1, 1), 1))
    assert not conv_winograd.takes(big, geometry((3, 3), (1, 1), (1, 1), (2, 2), 1))
    assert not conv_winograd.takes(big, geometry((3, 3), (1, 1), (1, 1), (1, 1), 2))
    assert not conv_winograd.takes(np.zeros((128, 128, 5, 5)), geometry((5, 5), (1, 1), (1, 1), (1, 1), 1))


def test_gradcheck_through_the_lane(monkeypatch):
    """float64 central differences through a conv that runs forward and backward on the lane."""
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1)
    rng = np.random.default_rng(3)
    x = minidl.Tensor(rng.standard_normal((2, 3, 5, 4)), requires_grad=True)
    w = minidl.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = minidl.Tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(1, 2)), (x, w, b))


@native
def test_bindings_refuse_bad_arguments_naming_them():
    from minidl import _C
    x = np.zeros((1, 2, 4, 4), np.float32)
    v = np.zeros((16, 2, 4), np.float32)
    with pytest.raises(ValueError, match=r"padding must be in \[0, 2\]"):
        _C.winograd_input_transform(x, v, 3, 1)
    with pytest.raises(ValueError, match="V has shape"):
        _C.winograd_input_transform(x, np.zeros((16, 2, 5), np.float32), 1, 1)
    with pytest.raises(TypeError, match="V"):
        _C.winograd_input_transform(x, v.astype(np.float64), 1, 1)
    with pytest.raises(ValueError, match="contiguous within each"):
        _C.winograd_input_transform(x, np.zeros((16, 4, 2), np.float32).transpose(0, 2, 1), 1, 1)
    with pytest.raises(ValueError, match="larger than the padded input"):
        _C.winograd_input_transform(np.zeros((1, 2, 1, 1), np.float32), v, 0, 0)
    with pytest.raises(ValueError, match="M has shape"):
        _C.winograd_output_transform(np.zeros((16, 3, 4), np.float32), None, np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="dM has shape"):
        _C.winograd_output_adjoint(np.zeros((1, 2, 4, 4), np.float32), np.zeros((16, 3, 4), np.float32))
    with pytest.raises(ValueError, match="dx: expected a C-contiguous array"):
        _C.winograd_input_adjoint(np.zeros((16, 2, 4), np.float32),
                                  np.zeros((1, 2, 4, 8), np.float32)[..., ::2], 1, 1)
    with pytest.raises(ValueError, match="bias has shape"):
        _C.winograd_output_transform(np.zeros((16, 2, 4), np.float32), np.zeros(3, np.float32),
                                     np.zeros((1, 2, 4, 4), np.float32))


@pytest.mark.skipif(not backend.cuda_available(), reason="no CUDA GPU (CuPy + device) on this machine")
def test_cuda_transforms_equal_the_cpu_bit_for_bit():
    """The CUDA transforms (one thread per tile, the same bodies) against the CPU's."""
    import cupy as cp
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5, 9, 7)).astype(np.float32)
    m = rng.standard_normal((16, 4, 2 * 5 * 4)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    v_cpu = W.input_transform(x, (1, 1), np.empty((16, 5, 2 * 5 * 4), np.float32))
    y_cpu = W.output_transform(m, bias, np.empty((2, 4, 9, 7), np.float32))
    v_gpu = W.input_transform(cp.asarray(x), (1, 1), cp.empty((16, 5, 2 * 5 * 4), cp.float32))
    y_gpu = W.output_transform(cp.asarray(m), cp.asarray(bias), cp.empty((2, 4, 9, 7), cp.float32))
    np.testing.assert_array_equal(cp.asnumpy(v_gpu), v_cpu)
    np.testing.assert_array_equal(cp.asnumpy(y_gpu), y_cpu)
    dy = rng.standard_normal((2, 4, 9, 7)).astype(np.float32)
    dm_cpu = W.output_adjoint(dy, np.empty((16, 4, 40), np.float32))
    dx_cpu = W.input_adjoint(v_cpu, (1, 1), np.empty(x.shape, np.float32))
    dm_gpu = W.output_adjoint(cp.asarray(dy), cp.empty((16, 4, 40), cp.float32))
    dx_gpu = W.input_adjoint(cp.asarray(v_cpu), (1, 1), cp.empty(x.shape, cp.float32))
    np.testing.assert_array_equal(cp.asnumpy(dm_gpu), dm_cpu)
    np.testing.assert_array_equal(cp.asnumpy(dx_gpu), dx_cpu)


def test_an_empty_batch_gets_zero_gradients(monkeypatch):
    """No chunk runs for N = 0: dW must still be the zeros the plain side gives, not garbage."""
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1)
    x = minidl.Tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    w = minidl.Tensor(np.ones((4, 3, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((4, 3, 3, 3)))


def test_dispatchers_check_the_arrays_they_write():
    """What _C_cuda could not see (it receives pointers) is checked before any kernel runs."""
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(TypeError, match="dtype"):
        W.input_transform(x, (1, 1), np.zeros((16, 2, 4), np.float64))
    with pytest.raises(ValueError, match="shape"):
        W.input_transform(x, (1, 1), np.zeros((16, 2, 5), np.float32))
    with pytest.raises(ValueError, match="M has shape"):
        W.output_transform(np.zeros((16, 2, 5), np.float32), None, np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="dV has shape"):
        W.input_adjoint(np.zeros((16, 2, 5), np.float32), (1, 1), np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        W.output_adjoint(x, np.zeros((16, 2, 4), np.float64))


@native
@pytest.mark.parametrize("form", ["native", "body"])
def test_empty_planes_allocate_nothing(form):
    """Zero channels with a huge width: nothing to do, and the fast form must not size its row
    buffers from the width (16 TB) before noticing."""
    with kernels.using(form):
        W.input_transform(np.zeros((1, 0, 1, 2**40), np.float32), (1, 1), np.zeros((16, 0, 2**39), np.float32))
        W.input_adjoint(np.zeros((16, 0, 2**19 * 2**19), np.float32), (1, 1),
                        np.zeros((1, 0, 2**20, 2**20), np.float32))


def test_no_bias_leaves_negative_zeros_alone():
    """Without a bias nothing is added (a + 0 would turn -0.0 into +0.0): bit for bit, sign of
    zero included, in every form."""
    m = np.full((16, 1, 1), -0.0, np.float32)          # every sum of -0.0s stays -0.0
    for mode in ("reference", "native", "body"):
        with kernels.using(mode):
            y = W.output_transform(m, None, np.empty((1, 1, 1, 1), np.float32))
        assert np.signbit(y[0, 0, 0, 0]), mode
