"""The direct K×K convolution (minidl/kernels/direct_conv.py, csrc/direct_conv/): the fast CPU form
(AVX-512 and AVX2), the textbook loops and the NumPy reference agree on every hypothesis case of
K = 3, 5, 7, 9 and stride 1 and 2 (float64 to 1e-12, float32 to float rounding) and write every
output; the
conv_direct lane gives the plain im2col side's values and gradients; the lane's rule; float64
gradcheck through the lane; bad arguments to the bindings; the CUDA kernels against the CPU."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import backend, kernels
from minidl import functional as F
from minidl.functional import conv_direct
from minidl.functional.conv import Geometry
from minidl.gradcheck import gradcheck
from minidl.kernels import direct_conv as D

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")


@st.composite
def direct_cases(draw):
    """Every compiled kernel size K (3 most often: the lane's usual case), outputs down to 1×1 and
    widths on both sides of the fast form's 8 and 16 lanes (partial vectors), filter counts on both
    sides of its blocks of 8 and 4, every padding in [0, K − 1] per axis, stride 1 and 2 (odd and
    even input widths: the de-interleaved rows), an empty batch, with and without bias, float32
    and float64."""
    k = draw(st.sampled_from([3, 3, 3, 5, 7, 9]))
    ph, pw = draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))
    stride = draw(st.sampled_from([1, 2]))
    h = draw(st.integers(max(1, k - 2 * ph), 12 + k))
    w = draw(st.integers(max(1, k - 2 * pw), (37 if stride == 1 else 70) + k))
    n, c, f = draw(st.integers(0, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 19))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, c, h, w), f, k, (ph, pw), stride, draw(st.booleans()), dtype


def cpu_flags():
    """/proc/cpuinfo's text on Linux (its flags lines), '' elsewhere."""
    import platform
    if platform.system() != "Linux":
        return ""
    with open("/proc/cpuinfo") as f:
        return f.read()


def tolerance(dtype):
    return 1e-12 if dtype == np.float64 else 2e-6


def close(a, b, dtype):
    """Equal within the dtype's rounding, relative to the largest magnitude (sums of many terms)."""
    scale = max(1.0, float(np.abs(b).max(initial=0)))
    np.testing.assert_allclose(a, b, rtol=0, atol=tolerance(dtype) * scale * 10)


@native
@settings(max_examples=200, deadline=None)
@given(direct_cases())
def test_fast_form_textbook_loops_and_reference_agree(case):
    shape, f, k, padding, stride, with_bias, dtype = case
    rng = np.random.default_rng(sum(shape) + f)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((f, shape[1], k, k)).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype) if with_bias else None
    oh, ow = D.output_size(*shape[2:], padding, stride, k)
    dy = rng.standard_normal((shape[0], f, oh, ow)).astype(dtype)
    y_ref = D.conv_reference(x, w, padding, bias, stride=stride)
    dw_ref = D.weight_grad_reference(x, dy, padding, stride=stride, kernel_size=k)
    # the fast form with its widest vectors (AVX-512 where the CPU has it) and with AVX2 only
    for mode, lanes in (("native", 16), ("native", 8), ("body", 16)):
        with kernels.using(mode), D.vector_lanes(lanes):
            y = D.conv(x, w, padding, bias, out=np.full(y_ref.shape, np.nan, dtype), stride=stride)
            dw = D.weight_grad(x, dy, padding, out=np.full(w.shape, np.nan, dtype), stride=stride,
                               kernel_size=k)
        assert not np.isnan(y).any() and not np.isnan(dw).any(), f"{mode}, {lanes}: an output was not written"
        close(y, y_ref, dtype)
        close(dw, dw_ref, dtype)


@native
def test_fast_form_runs_vectorized_code_where_the_cpu_has_avx2_and_fma():
    """On this CPU (x86-64 with AVX2 + FMA: every machine the project runs on) the fast form is
    the vectorized one — else the lane would not be taken and nothing here would measure it."""
    flags = cpu_flags()
    if not (" avx2" in flags and " fma" in flags):
        pytest.skip("this CPU lacks AVX2 or FMA")
    assert D.fast_form_available()


@native
def test_the_forward_runs_avx512_where_the_cpu_has_it_and_avx2_when_told():
    flags = cpu_flags()
    if not (" avx2" in flags and " fma" in flags):
        pytest.skip("this CPU lacks AVX2 or FMA")
    assert D.widest_lanes() == (16 if " avx512f" in flags else 8)
    with D.vector_lanes(8):
        assert D.widest_lanes() == 8
    assert D.widest_lanes() == (16 if " avx512f" in flags else 8)
    with pytest.raises(ValueError, match="lanes must be 8"):
        minidl._C.direct_conv_set_lanes(4)


@native
@pytest.mark.parametrize("shape, filters, kernel, padding, stride", [
    ((16, 64, 8, 8), 64, 3, (1, 1), 1),     # the FCN's 8×8 layer: 4 full pairs of rows
    ((2, 5, 7, 6), 11, 3, (1, 1), 1),       # odd out_h: the last pair has no second row
    ((3, 4, 9, 5), 9, 5, (2, 2), 1),        # rows of 5 outputs, K = 5
    ((1, 3, 15, 15), 17, 3, (1, 1), 2),     # stride 2: 8×8 outputs from de-interleaved rows
    ((1, 2, 13, 6), 3, 7, (3, 3), 1),       # one partial filter block, K = 7
])
def test_rows_of_at_most_8_outputs_two_to_a_register_equal_the_one_row_form(
        shape, filters, kernel, padding, stride):
    """With AVX-512, rows of ≤ 8 outputs go two to a register (rows oy and oy + 1 in its low and
    high lanes, masked loads and stores); with AVX2 only, one row per register. Each output is the
    same sum in the same order either way, so the two agree bit for bit — a wrong mask would put a
    row's values into its neighbour or leave outputs unwritten (NaN)."""
    if D.widest_lanes() < 16:
        pytest.skip("this CPU has no AVX-512 (only the one-row form runs)")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((filters, shape[1], kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    oh, ow = D.output_size(*shape[2:], padding, stride, kernel)
    assert ow <= 8
    outputs = {}
    for lanes in (16, 8):
        with kernels.using("native"), D.vector_lanes(lanes):
            outputs[lanes] = D.conv(x, w, padding, bias, out=np.full((shape[0], filters, oh, ow), np.nan,
                                                                    np.float32), stride=stride)
    assert not np.isnan(outputs[16]).any()
    np.testing.assert_array_equal(outputs[16], outputs[8])
    close(outputs[16], D.conv_reference(x.astype(np.float64), w.astype(np.float64), padding,
                                        bias.astype(np.float64), stride=stride), np.float32)


@native
def test_noncontiguous_inputs_are_copied_not_misread():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 9, 20)).astype(np.float32)[..., ::2]        # (2, 5, 9, 10), strided
    w = rng.standard_normal((6, 5, 3, 3)).astype(np.float32)
    close(D.conv(x, w, (1, 1)), D.conv_reference(x, w, (1, 1)), np.float32)


@native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, filters, size, kernel, padding, stride", [
    (16, 16, (12, 20), 3, (1, 1), 1), (3, 10, (9, 9), 3, (1, 1), 1), (9, 5, (7, 11), 3, (0, 2), 1),
    (20, 33, (5, 17), 3, (2, 1), 1), (3, 16, (12, 34), 3, (1, 1), 2), (16, 32, (9, 33), 3, (1, 0), 2),
    (10, 9, (6, 41), 3, (2, 2), 2),
    (32, 64, (16, 16), 3, (1, 1), 2),       # 8-wide rows: float32's forward on the lane (with
                                            # AVX-512), its backward plain; float64 forced
    (3, 16, (14, 21), 9, (4, 4), 1), (16, 3, (14, 21), 9, (4, 4), 1),     # the style net's 9×9 layers
    (8, 12, (9, 40), 5, (2, 3), 2), (5, 9, (11, 12), 7, (3, 6), 1)])
def test_conv2d_on_the_lane_equals_the_plain_side(dtype, channels, filters, size, kernel, padding,
                                                  stride, monkeypatch):
    """Values and both gradients of F.conv2d with the lane on (forced for float64) and off."""
    rng = np.random.default_rng(channels)
    x0 = rng.standard_normal((3, channels) + size).astype(dtype)
    w0 = rng.standard_normal((filters, channels, kernel, kernel)).astype(dtype)
    b0 = rng.standard_normal(filters).astype(dtype)
    geom = Geometry((kernel, kernel), (stride, stride), padding, (1, 1), 1)
    monkeypatch.setattr(conv_direct, "forced", dtype == np.float64)
    results = {}
    for enabled in (True, False):
        monkeypatch.setattr(conv_direct, "enabled", enabled)
        assert conv_direct.takes(x0, w0, geom) == enabled
        x, w, b = (minidl.Tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y = F.conv2d(x, w, b, stride=stride, padding=padding)
        (y * y).sum().backward()
        results[enabled] = [y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()]
    for lane, plain in zip(results[True], results[False]):
        close(lane, plain, dtype)


@native
def test_the_rule_takes_few_channel_square_odd_kernels_stride_1_or_2_float32_on_the_cpu():
    x = np.zeros((1, 16, 8, 8), np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    plain = Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1)
    assert conv_direct.takes(x, w, plain)
    s2 = plain._replace(stride=(2, 2))
    for direction in ("forward", "backward"):
        assert not conv_direct.takes(x, w, s2, direction)                          # 4-wide rows
        wide = np.zeros((1, 16, 8, 32), np.float32)
        assert conv_direct.takes(wide, w, s2, direction)                           # 16-wide rows
    eight = np.zeros((1, 16, 16, 16), np.float32)                                  # 8-wide rows:
    pairs = D.widest_lanes() >= 16                     # the forward takes them two to an AVX-512
    assert conv_direct.takes(eight, w, s2, "forward") == pairs                     # register
    assert not conv_direct.takes(eight, w, s2, "backward")
    with D.vector_lanes(8):                                                        # AVX2 only
        assert not conv_direct.takes(eight, w, s2, "forward")
    with pytest.raises(ValueError, match="direction"):
        conv_direct.takes(wide, w, s2, "sideways")
    assert not conv_direct.takes(x.astype(np.float64), w, plain)                     # dgemm's job
    assert not conv_direct.takes(x, w, plain._replace(stride=(3, 3)))
    assert not conv_direct.takes(x, w, plain._replace(stride=(1, 2)))
    assert not conv_direct.takes(x, w, plain._replace(dilation=(2, 2)))
    assert not conv_direct.takes(x, w, plain._replace(padding=(3, 1)))
    assert not conv_direct.takes(x, w[:, :8], plain._replace(groups=2))
    for k in (5, 7, 9):                                                            # larger kernels
        assert conv_direct.takes(x, np.zeros((16, 16, k, k), np.float32), plain._replace(kernel=(k, k)))
    assert not conv_direct.takes(x, w, plain._replace(kernel=(9, 9), padding=(9, 0)))  # padding > K − 1
    for kernel in ((4, 4), (11, 11), (3, 5), (1, 1)):                             # not compiled
        assert not conv_direct.takes(x, np.zeros((16, 16) + kernel, np.float32), plain._replace(kernel=kernel))
    wide = np.zeros((128, 128, 3, 3), np.float32)
    assert not conv_direct.takes(np.zeros((1, 128, 8, 8), np.float32), wide, plain)    # Winograd's
    with kernels.using("reference"):
        assert not conv_direct.takes(x, w, plain)


@native
def test_gradcheck_through_the_lane(monkeypatch):
    """float64 central differences through a conv whose forward, dx and dW run on the lane
    (forced: in float64 the rule leaves convs on im2col), and a stride-2 one (forward and dW on
    the lane, dx on col2im)."""
    monkeypatch.setattr(conv_direct, "forced", True)
    rng = np.random.default_rng(3)
    x = minidl.Tensor(rng.standard_normal((2, 3, 5, 9)), requires_grad=True)
    w = minidl.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = minidl.Tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(1, 2)), (x, w, b))
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=(1, 2)), (x, w, b))
    w5 = minidl.Tensor(rng.standard_normal((4, 3, 5, 5)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(2, 4)), (x, w5, b))


def test_an_empty_batch_gets_zero_gradients(monkeypatch):
    monkeypatch.setattr(conv_direct, "forced", True)
    x = minidl.Tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    w = minidl.Tensor(np.ones((4, 3, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((4, 3, 3, 3)))


@native
def test_bindings_refuse_bad_arguments_naming_them():
    from minidl import _C
    x = np.zeros((1, 2, 4, 4), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    y = np.zeros((1, 3, 4, 4), np.float32)
    padded = np.zeros((1, 2, 6, 6), np.float32)
    with pytest.raises(ValueError, match=r"padding must be in \[0, 2\] for a 3x3 kernel"):
        _C.direct_conv(x, w, None, y, padded, 3, 1, 1)
    with pytest.raises(ValueError, match=r"w must have shape \(F, C, K, K\)"):
        _C.direct_conv(x, np.zeros((3, 2, 5, 3), np.float32), None, y, padded, 1, 1, 1)
    with pytest.raises(ValueError, match="kernel must be 3x3, 5x5, 7x7 or 9x9, got 4"):
        _C.direct_conv(x, np.zeros((3, 2, 4, 4), np.float32), None, y, padded, 1, 1, 1)
    with pytest.raises(ValueError, match="the 9x9 kernel is larger than the padded input"):
        _C.direct_conv(x, np.zeros((3, 2, 9, 9), np.float32), None, y, padded, 1, 1, 1)
    with pytest.raises(ValueError, match="w has 3 input channels, x has 2"):
        _C.direct_conv(x, np.zeros((3, 3, 3, 3), np.float32), None, y, padded, 1, 1, 1)
    with pytest.raises(ValueError, match="bias has shape"):
        _C.direct_conv(x, w, np.zeros(4, np.float32), y, padded, 1, 1, 1)
    with pytest.raises(ValueError, match="y must have shape"):
        _C.direct_conv(x, w, None, np.zeros((1, 3, 5, 4), np.float32), padded, 1, 1, 1)
    with pytest.raises(ValueError, match="padded must have shape"):
        _C.direct_conv(x, w, None, y, np.zeros((1, 2, 4, 4), np.float32), 1, 1, 1)
    with pytest.raises(TypeError, match="w"):
        _C.direct_conv(x, w.astype(np.float64), None, y, padded, 1, 1, 1)
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        _C.direct_conv(x, w, None, y, padded, 1, 1, 3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        _C.direct_conv(np.zeros((1, 2, 1, 1), np.float32), w, None, y, padded, 0, 0, 1)
    with pytest.raises(ValueError, match="dy has shape"):
        _C.direct_conv_weight_grad(x, np.zeros((1, 3, 5, 4), np.float32), np.zeros((3, 2, 3, 3), np.float32),
                                      padded, 1, 1, 1)
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        _C.direct_conv_weight_grad(x, y, np.zeros((3, 2, 3, 3), np.float32), padded, 1, 1, 0)
    with pytest.raises(ValueError, match=r"dW must have shape \(F, C, K, K\)"):
        _C.direct_conv_weight_grad(x, y, np.zeros((3, 2, 3, 2), np.float32), padded, 1, 1, 1)


def test_dispatchers_check_what_they_write():
    x = np.zeros((1, 2, 4, 4), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="out has shape"):
        D.conv(x, w, (1, 1), out=np.zeros((1, 3, 4, 5), np.float32))
    with pytest.raises(TypeError, match="out has dtype"):
        D.conv(x, w, (1, 1), out=np.zeros((1, 3, 4, 4), np.float64))
    with pytest.raises(ValueError, match=r"padding must be two values in \[0, 2\]"):
        D.conv(x, w, (3, 1))
    with pytest.raises(ValueError, match="the kernel must be square with K in"):
        D.conv(x, np.zeros((3, 2, 11, 11), np.float32), (1, 1))
    with pytest.raises(ValueError, match=r"weight must have shape \(F, C, K, K\)"):
        D.conv(x, np.zeros((3, 2, 3, 5), np.float32), (1, 1))
    with pytest.raises(ValueError, match="the kernel must be square with K in"):
        D.weight_grad(x, np.zeros((1, 3, 4, 4), np.float32), (1, 1), kernel_size=2)
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        D.conv(x, w, (1, 1), stride=3)
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        D.weight_grad(x, np.zeros((1, 3, 4, 4), np.float32), (1, 1), stride=(2, 2))
    with pytest.raises(ValueError, match="dy has shape"):
        D.weight_grad(x, np.zeros((1, 3, 4, 5), np.float32), (1, 1))


@pytest.mark.skipif(not backend.cuda_available(), reason="no CUDA GPU (CuPy + device) on this machine")
def test_cuda_kernels_equal_the_cpu_bodies():
    """One CUDA thread per output / per filter tap, the same bodies as the textbook loops, K = 3
    and 9, stride 1 and 2 (nvcc may fuse a multiply and an add: equal to rounding)."""
    import cupy as cp
    rng = np.random.default_rng(5)
    for dtype, stride, k in [(dtype, stride, k) for dtype in (np.float32, np.float64)
                             for stride in (1, 2) for k in (3, 9)]:
        x = rng.standard_normal((2, 5, 9, 13)).astype(dtype)
        w = rng.standard_normal((11, 5, k, k)).astype(dtype)
        bias = rng.standard_normal(11).astype(dtype)
        padding = (k // 2, k // 2)
        dy = rng.standard_normal((2, 11, *D.output_size(9, 13, padding, stride, k))).astype(dtype)
        with kernels.using("body"):
            y_cpu = D.conv(x, w, padding, bias, stride=stride)
            dw_cpu = D.weight_grad(x, dy, padding, stride=stride, kernel_size=k)
        y_gpu = D.conv(cp.asarray(x), cp.asarray(w), padding, cp.asarray(bias), stride=stride)
        dw_gpu = D.weight_grad(cp.asarray(x), cp.asarray(dy), padding, stride=stride, kernel_size=k)
        close(cp.asnumpy(y_gpu), y_cpu, dtype)
        close(cp.asnumpy(dw_gpu), dw_cpu, dtype)
