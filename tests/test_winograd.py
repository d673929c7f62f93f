"""Winograd F(2×2, 3×3) and F(4×4, 3×3): the transforms and their adjoints == reference bit for
bit (both CPU forms), the lane == im2col's conv within float rounding (values and gradients), the
tile rule, gradcheck, bad arguments to the bindings."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import backend, kernels
from minidl import functional as F
from minidl.functional import conv_winograd
from minidl.gradcheck import gradcheck
from minidl.kernels import direct_conv as direct_kernels
from minidl.kernels import winograd as W

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")


@st.composite
def winograd_cases(draw):
    """Both tiles (F(2×2, 3×3) and F(4×4, 3×3)), sizes down to 1×1 (with padding 1–2), output
    sizes of every remainder mod 4 (tiles hanging over the edge), every padding in [0, 2] per
    axis, float32 and float64."""
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, 3 - 2 * ph), 13))
    w = draw(st.integers(max(1, 3 - 2 * pw), 13))
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, c, h, w), f, (ph, pw), dtype, draw(st.sampled_from(W.TILES))


def transforms(x, weight, bias, padding, tile):
    """y through the three transforms and the (m + 2)² products, in the current kernel mode."""
    n, _, h, w = x.shape
    oh, ow = W.output_size(h, w, padding)
    th, tw = W.tiles(oh, ow, tile)
    v = np.full((W.blocks(tile), x.shape[1], n * th * tw), np.nan, x.dtype)   # every entry written
    W.input_transform(x, padding, v, tile)
    m = W.filter_transform(weight, tile) @ v
    y = np.full((n, weight.shape[0], oh, ow), np.nan, x.dtype)
    W.output_transform(m, bias, y, tile)
    return v, y


@native
@settings(max_examples=120, deadline=None)
@given(winograd_cases())
def test_kernels_equal_the_reference_bit_for_bit(case):
    shape, f, padding, dtype, tile = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal((f, shape[1], 3, 3)).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype)
    with kernels.using("reference"):
        v_ref, y_ref = transforms(x, weight, bias, padding, tile)
    for form in ("native", "body"):       # winograd_cpu_fast.cpp and the per-tile body form
        with kernels.using(form):
            v, y = transforms(x, weight, bias, padding, tile)
        np.testing.assert_array_equal(v, v_ref, err_msg=form)
        np.testing.assert_array_equal(y, y_ref, err_msg=form)
    # ... and the algorithm is the convolution: within float rounding of im2col's
    expected = F.conv2d(minidl.Tensor(x), minidl.Tensor(weight), minidl.Tensor(bias), padding=padding)
    scale = max(1.0, float(np.abs(expected.numpy()).max()))
    tol = (2e-6 if tile == 2 else 1e-5) if dtype == np.float32 else (1e-14 if tile == 2 else 1e-13)
    np.testing.assert_allclose(y_ref, expected.numpy(), rtol=0, atol=tol * scale * shape[1])


@native
@settings(max_examples=80, deadline=None)
@given(winograd_cases())
def test_adjoint_kernels_equal_the_reference_and_are_the_transposes(case):
    """The backward's kernels: bit for bit with the reference, and the adjoints they claim to be:
    <input_transform(x), dV> = <x, input_adjoint(dV)>, <output_transform(M), dy> = <M, output_adjoint(dy)>."""
    shape, f, padding, dtype, tile = case
    n, c, h, w = shape
    oh, ow = W.output_size(h, w, padding)
    th, tw = W.tiles(oh, ow, tile)
    p, b = n * th * tw, W.blocks(tile)
    rng = np.random.default_rng(1)
    x, dv = rng.standard_normal(shape), rng.standard_normal((b, c, p))
    m, dy = rng.standard_normal((b, f, p)), rng.standard_normal((n, f, oh, ow))
    x, dv, m, dy = (a.astype(dtype) for a in (x, dv, m, dy))
    results = {}
    for mode in ("reference", "native", "body"):
        with kernels.using(mode):
            dm = np.full((b, f, p), np.nan, dtype)
            dx = np.full(shape, np.nan, dtype)
            results[mode] = (W.output_adjoint(dy, dm, tile), W.input_adjoint(dv, padding, dx, tile))
    for mode in ("native", "body"):
        for got, expected in zip(results[mode], results["reference"]):
            np.testing.assert_array_equal(got, expected, err_msg=mode)
    dm, dx = (a.astype(np.float64) for a in results["reference"])
    v = W.input_transform_reference(x.astype(np.float64), padding, tile=tile)
    y = W.output_transform_reference(m.astype(np.float64), None, np.empty((n, f, oh, ow)), tile)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose((v * dv).sum(), (x * dx).sum(), rtol=tol, atol=tol)
    np.testing.assert_allclose((y * dy).sum(), (m * dm).sum(), rtol=tol, atol=tol)


@native
@pytest.mark.parametrize("tile", W.TILES)
@pytest.mark.parametrize("shape, padding", [((1, 2, 21, 70), (1, 1)), ((2, 1, 30, 40), (0, 2)),
                                            ((1, 1, 11, 140), (2, 0)), ((1, 2, 150, 3), (0, 0))])
def test_kernels_over_several_blocks_of_tile_rows(tile, shape, padding):
    """The fast transforms and their adjoints work on blocks of whole tile rows (enough rows for
    kBlockTiles = 64 tiles): rows of 1–69 tiles make blocks of 1–64 rows, in five of the eight
    cases with a shorter last block (the hypothesis cases above fit in one block) — bit for bit
    with the reference."""
    n, c, h, w = shape
    oh, ow = W.output_size(h, w, padding)
    th, tw = W.tiles(oh, ow, tile)
    rng = np.random.default_rng(3)
    dv = rng.standard_normal((W.blocks(tile), c, n * th * tw)).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    dy = rng.standard_normal((n, c, oh, ow)).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    results = {}
    for mode in ("reference", "native"):
        with kernels.using(mode):
            results[mode] = (W.input_adjoint(dv, padding, np.full(shape, np.nan, np.float32), tile),
                             W.output_transform(dv, bias, np.full((n, c, oh, ow), np.nan, np.float32), tile),
                             W.output_adjoint(dy, np.full(dv.shape, np.nan, np.float32), tile),
                             W.input_transform(x, padding, np.full(dv.shape, np.nan, np.float32), tile))
    for got, expected in zip(results["native"], results["reference"]):
        np.testing.assert_array_equal(got, expected)


@native
@pytest.mark.parametrize("tile", W.TILES)
def test_padded_blocks_are_accepted_and_the_pad_is_never_written(tile):
    """conv_winograd's buffers space the blocks of V and M apart (off 4 KB multiples)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    b, p = W.blocks(tile), 2 * W.tiles(8, 8, tile)[0] ** 2
    base = np.full((b, 3 * p + 16), np.nan, np.float32)
    v = base[:, :3 * p].reshape(b, 3, p)
    for form in ("native", "body"):
        with kernels.using(form):
            W.input_transform(x, (1, 1), v, tile)
        np.testing.assert_array_equal(v, W.input_transform_reference(x, (1, 1), tile=tile))
        assert np.isnan(base[:, 3 * p:]).all()


@pytest.mark.parametrize("tile", W.TILES)
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_conv2d_on_the_lane_equals_the_plain_side(dtype, tol, tile, monkeypatch):
    """Values, input and weight gradients of a conv the rule sends to Winograd (128 channels)
    against the same conv with the lane off, through either tile; the forward's relative error is
    what the docs quote (F(4×4, 3×3)'s larger constants: 3× the float32 bound)."""
    monkeypatch.setattr(conv_winograd, "TILE", tile)
    if tile == 4 and dtype == np.float32:
        tol *= 3
    rng = np.random.default_rng(2)
    x64, w64 = rng.standard_normal((2, 128, 9, 6)), rng.standard_normal((128, 128, 3, 3)) * 0.05
    b64 = rng.standard_normal(128)
    results = {}
    for enabled in (True, False):
        monkeypatch.setattr(conv_winograd, "enabled", enabled)
        x, w, b = (minidl.Tensor(a.astype(dtype), requires_grad=True) for a in (x64, w64, b64))
        assert conv_winograd.takes(x.data, w.data, F.conv.Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1)) == enabled
        y = F.conv2d(x, w, b, padding=1)
        (y * y).sum().backward()
        results[enabled] = [y.numpy(), x.grad.numpy(), w.grad.numpy()]
    for got, expected in zip(results[True], results[False]):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol * np.abs(expected).max())


def counted(monkeypatch, module, name):
    """Replace module.name by a wrapper that counts its calls; the list of calls."""
    calls, original = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: calls.append(1) or original(*a))
    return calls


def winograd_operands(seed, batch):
    """(rng, w, x): a 128 → 128 3×3 weight and a (batch, 128, 6, 6) input, both needing gradients."""
    rng = np.random.default_rng(seed)
    w = minidl.Tensor(0.05 * rng.standard_normal((128, 128, 3, 3)).astype(np.float32), requires_grad=True)
    x = minidl.Tensor(rng.standard_normal((batch, 128, 6, 6)).astype(np.float32), requires_grad=True)
    return rng, w, x


def test_the_transformed_filters_are_kept_for_dx_only_and_freed_by_the_backward(monkeypatch):
    """U = G W Gᵀ is computed once: the forward keeps it for the backward's dx when x needs a
    gradient (and gradients are recorded), the backward uses it and lets it go; with x not
    needing a gradient nothing is kept. The gradients are those of U recomputed from W."""
    calls = counted(monkeypatch, W, "filter_transform")
    _, w, x = winograd_operands(seed=3, batch=1)
    y = F.conv2d(x, w, padding=1)
    assert y._ctx.winograd_u is not None and len(calls) == 1
    y.sum().backward()
    assert y._ctx.winograd_u is None and len(calls) == 1            # dx took the kept U
    dx_kept = x.grad.numpy()
    x.grad = w.grad = None
    monkeypatch.setattr(conv_winograd, "transformed_filters", lambda *a: None)   # recompute in backward
    F.conv2d(x, w, padding=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), dx_kept)
    monkeypatch.undo()
    frozen_input = minidl.Tensor(x.data)                               # x needs no gradient
    y = F.conv2d(frozen_input, w, padding=1)
    assert getattr(y._ctx, "winograd_u", None) is None


def test_the_input_transform_is_kept_for_dw_when_the_batch_is_one_chunk(monkeypatch):
    """V = Bᵀ x B is computed once per training step: the forward keeps it (a fresh array, not
    the reused workspace) when W needs a gradient and the batch is one chunk, the backward's dW
    uses it and lets it go — dW equal to the one from V recomputed; with several chunks, or no
    gradient for W, nothing is kept."""
    calls = counted(monkeypatch, W, "input_transform")
    rng, w, x = winograd_operands(seed=4, batch=2)
    y = F.conv2d(x, w, padding=1)
    kept = y._ctx.winograd_v
    assert kept is not None and len(calls) == 1
    with minidl.no_grad():      # another conv's forward in between: it reuses the workspace
        F.conv2d(minidl.Tensor(rng.standard_normal((2, 128, 6, 6)).astype(np.float32)), w, padding=1)
    calls.clear()
    (y * y).sum().backward()
    assert y._ctx.winograd_v is None and calls == []                  # dW took the kept V
    dw_kept = w.grad.numpy()
    w.grad = x.grad = None
    monkeypatch.setattr(conv_winograd, "MAX_V_BYTES", 1)               # one image per chunk
    y = F.conv2d(x, w, padding=1)
    assert y._ctx.winograd_v is None                                   # never whole: not kept
    calls.clear()
    (y * y).sum().backward()
    assert len(calls) == 2                                             # transformed again, per chunk
    np.testing.assert_allclose(w.grad.numpy(), dw_kept, rtol=1e-5, atol=1e-5 * np.abs(dw_kept).max())
    one_image = minidl.Tensor(x.data[:1])                              # one chunk, over the bound
    assert F.conv2d(one_image, w, padding=1)._ctx.winograd_v is None
    monkeypatch.undo()
    frozen = minidl.Tensor(w.data)                                     # W needs no gradient
    assert getattr(F.conv2d(x, frozen, padding=1)._ctx, "winograd_v", None) is None


def test_the_rule_takes_only_3x3_stride_1_with_many_channels():
    geometry = F.conv.Geometry
    big, small = np.zeros((128, 128, 3, 3)), np.zeros((128, 64, 3, 3))
    x = np.zeros((2, 128, 16, 16))                 # 512 outputs per filter
    assert conv_winograd.takes(x, big, geometry((3, 3), (1, 1), (1, 1), (1, 1), 1))
    assert conv_winograd.takes(x, big, geometry((3, 3), (1, 1), (0, 2), (1, 1), 1))
    assert not conv_winograd.takes(x, small, geometry((3, 3), (1, 1), (1, 1), (1, 1), 1))
    assert not conv_winograd.takes(x, big, geometry((3, 3), (2, 2), (1, 1), (1, 1), 1))
    assert not conv_winograd.takes(x, big, geometry((3, 3), (1, 1), (3, 3), (1, 1), 1))
    assert not conv_winograd.takes(x, big, geometry((3, 3), (1, 1), (1, 1), (2, 2), 1))
    assert not conv_winograd.takes(x, big, geometry((3, 3), (1, 1), (1, 1), (1, 1), 2))
    assert not conv_winograd.takes(x, np.zeros((128, 128, 5, 5)), geometry((5, 5), (1, 1), (1, 1), (1, 1), 1))


def test_the_rule_takes_64_channels_only_for_large_outputs():
    """From MIN_CHANNELS_LARGE_OUTPUT (64) channels where the conv has at least
    MIN_OUTPUTS_FOR_FEWER_CHANNELS (8192) outputs per filter, N·out_h·out_w, and runs where that
    was timed (float32 NumPy, the fast kernels, an AVX2 CPU); fewer channels never."""
    if not (kernels.available()["cpu"] and direct_kernels.fast_form_available()):
        pytest.skip("the 64-channel rule applies only where the direct lane's AVX2 form runs")
    same = F.conv.Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1)
    valid = F.conv.Geometry((3, 3), (1, 1), (0, 0), (1, 1), 1)
    w64, w32 = np.zeros((64, 64, 3, 3), np.float32), np.zeros((32, 64, 3, 3), np.float32)

    def x(n, size):
        return np.zeros((n, 64, size, size), np.float32)
    assert conv_winograd.takes(x(1, 128), w64, same)           # VGG16 conv1_2: 16384 outputs
    assert conv_winograd.takes(x(8, 32), w64, same)            # 8192
    assert not conv_winograd.takes(x(7, 32), w64, same)        # 7168
    assert not conv_winograd.takes(x(8, 32), w64, valid)       # 8 · 30² = 7200
    assert not conv_winograd.takes(x(16, 8), w64, same)        # the FCN's 8² layer: 1024
    assert not conv_winograd.takes(x(4, 128), w32, same)       # 32 channels: never
    assert not conv_winograd.takes(x(1, 128), np.zeros((64, 64, 5, 5), np.float32),
                                   F.conv.Geometry((5, 5), (1, 1), (2, 2), (1, 1), 1))
    large = np.zeros((1, 64, 128, 128), np.float32)
    assert conv_winograd.takes(large, w64, same)
    assert not conv_winograd.takes(large.astype(np.float64), w64, same)   # where it was not timed
    with kernels.using("reference"):
        assert not conv_winograd.takes(large, w64, same)
    assert conv_winograd.takes(large.astype(np.float64), np.zeros((128, 128, 3, 3)), same)


def test_the_tile_rule_takes_f4x4_for_large_outputs():
    """F(4×4, 3×3) from MIN_OUTPUTS_FOR_F4 outputs per filter (N·out_h·out_w) on, F(2×2, 3×3) below;
    TILE forces one."""
    threshold = conv_winograd.MIN_OUTPUTS_FOR_F4
    assert conv_winograd.tile_for(np.zeros((1, 1, 64, 64)), (1, 1)) == (4 if 64 * 64 >= threshold else 2)
    assert conv_winograd.tile_for(np.zeros((4, 1, 32, 32)), (1, 1)) == (4 if 4 * 32 * 32 >= threshold else 2)
    assert conv_winograd.tile_for(np.zeros((1, 1, 16, 16)), (1, 1)) == 2
    assert conv_winograd.tile_for(np.zeros((1, 1, 18, 18)), (0, 0)) == 2      # 16² outputs
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_winograd, "TILE", 4)
        assert conv_winograd.tile_for(np.zeros((1, 1, 16, 16)), (1, 1)) == 4


@pytest.mark.parametrize("tile", W.TILES)
def test_gradcheck_through_the_lane(tile, monkeypatch):
    """float64 central differences through a conv that runs forward and backward on the lane."""
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_winograd, "TILE", tile)
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
    with pytest.raises(ValueError, match=r"tile must be 2 \(F\(2x2, 3x3\)\) or 4"):
        _C.winograd_input_transform(x, v, 1, 1, 3)
    with pytest.raises(ValueError, match=r"V has shape \(16, 2, 4\), expected \(36, 2, 1\)"):
        _C.winograd_input_transform(x, v, 1, 1, 4)
    with pytest.raises(ValueError, match="tile must be"):
        _C.winograd_output_adjoint(np.zeros((1, 2, 4, 4), np.float32), np.zeros((36, 2, 1), np.float32), 8)


@pytest.mark.skipif(not backend.cuda_available(), reason="no CUDA GPU (CuPy + device) on this machine")
def test_cuda_transforms_equal_the_cpu_bit_for_bit():
    """The CUDA transforms (one thread per tile, the same bodies) against the CPU's: bit for bit
    for F(2×2, 3×3) (additions), to rounding for F(4×4, 3×3)."""
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
    # F(4×4, 3×3): multiply-adds, which nvcc may fuse — equal to rounding
    th, tw = W.tiles(9, 7, 4)
    p4 = 2 * th * tw
    m4 = rng.standard_normal((36, 4, p4)).astype(np.float32)
    dv4 = rng.standard_normal((36, 5, p4)).astype(np.float32)
    for op, args, shape in ((W.input_transform, (x, (1, 1)), (36, 5, p4)),
                            (W.output_transform, (m4, bias), (2, 4, 9, 7)),
                            (W.output_adjoint, (dy,), (36, 4, p4)),
                            (W.input_adjoint, (dv4, (1, 1)), x.shape)):
        cpu = op(*args, np.empty(shape, np.float32), 4)
        gpu = op(*(cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args),
                 cp.empty(shape, cp.float32), 4)
        np.testing.assert_allclose(cp.asnumpy(gpu), cpu, rtol=1e-5, atol=1e-5, err_msg=op.__name__)


@native
@pytest.mark.parametrize("shape, tile", [((1, 2, 6, 150), 2), ((1, 2, 6, 150), 4),
                                         ((1, 64, 130, 130), 2), ((1, 256, 130, 130), 4)],
                         ids=["wide-rows-F2", "wide-rows-F4", "threads-F2", "threads-F4"])
def test_wide_rows_and_threads_equal_the_reference_bit_for_bit(shape, tile):
    """Rows of many tiles (the vector loops' full-width bodies, which the hypothesis sizes do not
    reach) and inputs large enough for the fast form's OpenMP threads (64 channels at 130² for
    F(2×2), 256 for F(4×4)): all four transforms of both CPU forms against the reference, bit for
    bit."""
    n, c, h, w = shape
    rng = np.random.default_rng(4)
    oh, ow = W.output_size(h, w, (1, 1))
    th, tw = W.tiles(oh, ow, tile)
    b, p = W.blocks(tile), n * th * tw
    x = rng.standard_normal(shape).astype(np.float32)
    blocks = rng.standard_normal((b, c, p)).astype(np.float32)       # as M (F = C) and as dV
    dy = rng.standard_normal((n, c, oh, ow)).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    results = {}
    for mode in ("reference", "native", "body"):
        with kernels.using(mode):
            results[mode] = (W.input_transform(x, (1, 1), np.empty((b, c, p), np.float32), tile),
                             W.output_transform(blocks, None, np.empty((n, c, oh, ow), np.float32), tile),
                             W.output_adjoint(dy, np.empty((b, c, p), np.float32), tile),
                             W.input_adjoint(blocks, (1, 1), np.empty(shape, np.float32), tile))
    for mode in ("native", "body"):
        for name, got, expected in zip(("input", "output", "output adjoint", "input adjoint"),
                                       results[mode], results["reference"]):
            np.testing.assert_array_equal(got, expected, err_msg=f"{mode}: {name}")


@pytest.mark.parametrize("tile", W.TILES)
def test_an_empty_batch_gets_zero_gradients(tile, monkeypatch):
    """No chunk runs for N = 0: dW must still be the zeros the plain side gives, not garbage."""
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_winograd, "TILE", tile)
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
    with pytest.raises(ValueError, match=r"tile must be one of \(2, 4\)"):
        W.input_transform(x, (1, 1), np.zeros((16, 2, 4), np.float32), tile=3)
    with pytest.raises(ValueError, match=r"shape \(16, 2, 4\), expected \(36, 2, 1\)"):
        W.input_transform(x, (1, 1), np.zeros((16, 2, 4), np.float32), tile=4)


@native
@pytest.mark.parametrize("tile", W.TILES)
@pytest.mark.parametrize("form", ["native", "body"])
def test_empty_planes_allocate_nothing(form, tile):
    """Zero channels with a huge width: nothing to do, and the fast form must not size its row
    buffers from the width (16 TB) before noticing."""
    b = W.blocks(tile)
    with kernels.using(form):
        W.input_transform(np.zeros((1, 0, 1, 2**40), np.float32), (1, 1),
                          np.zeros((b, 0, W.tiles(1, 2**40, tile)[1]), np.float32), tile)
        W.input_adjoint(np.zeros((b, 0, W.tiles(2**20, 2**20, tile)[0] ** 2), np.float32), (1, 1),
                        np.zeros((1, 0, 2**20, 2**20), np.float32), tile)


def test_no_bias_leaves_negative_zeros_alone():
    """Without a bias nothing is added (a + 0 would turn -0.0 into +0.0): bit for bit, sign of
    zero included, in every form."""
    for tile in W.TILES:
        m = np.full((W.blocks(tile), 1, 1), -0.0, np.float32)     # every sum of -0.0s stays -0.0
        for mode in ("reference", "native", "body"):
            with kernels.using(mode):
                y = W.output_transform(m, None, np.empty((1, 1, 1, 1), np.float32), tile)
            assert np.signbit(y[0, 0, 0, 0]), (mode, tile)
