"""im2col / col2im: the C++ kernels against the NumPy reference (bit for bit), the transpose
relation, the batch chunking bound, reused buffers, and argument checks."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import minidl
from minidl import kernels
from minidl.kernels import im2col as K

needs_cpu_kernels = pytest.mark.skipif(not kernels.available()["cpu"],
                                       reason="minidl._C is not built (python setup.py build_ext --inplace)")


@st.composite
def conv_cases(draw):
    """A random convolution geometry whose (dilated) kernel fits in the padded input —
    including 1×1 kernels, kernels exactly as large as the padded input, odd and non-square."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    min_h, min_w = max(1, dh * (kh - 1) + 1 - 2 * ph), max(1, dw * (kw - 1) + 1 - 2 * pw)
    h = draw(st.integers(min_h, min_h + 9))
    w = draw(st.integers(min_w, min_w + 9))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw), dtype


EXAMPLES = [
    ((2, 3, 5, 5), (1, 1), (1, 1), (0, 0), (1, 1), np.float32),   # 1×1 kernel
    ((1, 2, 3, 3), (5, 5), (1, 1), (1, 1), (1, 1), np.float64),   # kernel = padded input
    ((2, 1, 7, 4), (3, 2), (2, 3), (1, 0), (2, 1), np.float32),   # odd, non-square, strided
    ((1, 2, 9, 9), (3, 3), (1, 1), (1, 1), (1, 1), np.float64),   # stride 1, same width: block copy
    ((2, 2, 9, 8), (4, 4), (2, 2), (1, 1), (1, 1), np.float32),   # transpose-conv geometry, stride 2
    ((1, 2, 6, 6), (3, 3), (1, 1), (2, 2), (2, 2), np.float64),   # dilated "same" conv
    ((1, 2, 1, 3), (3, 3), (1, 1), (1, 1), (1, 1), np.float32),   # same width, rows all padding
    ((1, 1, 1, 1), (3, 3), (2, 2), (1, 1), (1, 1), np.float32),   # a single pixel
]


@needs_cpu_kernels
@settings(max_examples=150, deadline=None)
@given(conv_cases())
@example(EXAMPLES[0])
@example(EXAMPLES[1])
@example(EXAMPLES[2])
@example(EXAMPLES[3])
@example(EXAMPLES[4])
@example(EXAMPLES[5])
@example(EXAMPLES[6])
@example(EXAMPLES[7])
def test_kernels_equal_the_reference_exactly(case):
    shape, k, s, p, d, dtype = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    reference = K.im2col_reference(x, k, s, p, d)
    cols = rng.standard_normal(reference.shape).astype(dtype)
    expected = K.col2im_reference(cols, shape, k, s, p, d)
    # Both CPU forms: "native" (im2col_cpu_fast.cpp, whole runs) and "body" (im2col_cpu.cpp,
    # one call per element of the im2col.h body that the CUDA kernels call).
    for form in ("native", "body"):
        with kernels.using(form):
            native = K.im2col(x, k, s, p, d)
            assert native.dtype == dtype and native.shape == K.column_shape(shape, k, s, p, d)
            np.testing.assert_array_equal(native, reference, err_msg=form)
            np.testing.assert_array_equal(K.col2im(cols, shape, k, s, p, d), expected, err_msg=form)
            # Column matrices with padded rows (column_workspace's layout): the same values,
            # and nothing written into the pad.
            base = np.full((cols.shape[0], cols.shape[1] + 3), np.nan, dtype=dtype)
            padded = base[:, :cols.shape[1]]
            np.testing.assert_array_equal(K.im2col(x, k, s, p, d, out=padded), reference,
                                          err_msg=form)
            assert np.isnan(base[:, cols.shape[1]:]).all()
            padded[...] = cols
            out = np.full(shape, np.nan, dtype=dtype)     # every pixel must be written
            np.testing.assert_array_equal(K.col2im(padded, shape, k, s, p, d, out=out), expected,
                                          err_msg=form)


@needs_cpu_kernels
def test_stride_two_phase_path_equals_the_reference_on_a_grid():
    """Stride (2, 2) runs through a plane's four phases in the fast C++ form (csrc/im2col/
    im2col_phases.h): every tap offset parity, odd and even sizes (phases of unequal width),
    offsets below zero (padding) and past the plane, dilations that keep or flip parity."""
    rng = np.random.default_rng(3)
    checked = 0
    for h, w in [(1, 1), (2, 5), (5, 2), (8, 8), (9, 7), (6, 11)]:
        for kh, kw in [(1, 1), (2, 3), (3, 3), (4, 2)]:
            for ph, pw in [(0, 0), (1, 1), (2, 0), (3, 3)]:
                for dh, dw in [(1, 1), (2, 1), (1, 3)]:
                    if h + 2 * ph < dh * (kh - 1) + 1 or w + 2 * pw < dw * (kw - 1) + 1:
                        continue
                    geometry = ((kh, kw), (2, 2), (ph, pw), (dh, dw))
                    dtype = (np.float32, np.float64)[checked % 2]
                    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
                    np.testing.assert_array_equal(K.im2col(x, *geometry), K.im2col_reference(x, *geometry))
                    cols = rng.standard_normal(K.column_shape(x.shape, *geometry)).astype(dtype)
                    np.testing.assert_array_equal(K.col2im(cols, x.shape, *geometry),
                                                  K.col2im_reference(cols, x.shape, *geometry))
                    checked += 1
    assert checked > 200


@needs_cpu_kernels
@pytest.mark.parametrize("form", ["native", "body"])
@pytest.mark.parametrize("kernel", [1, 3])
def test_stride_two_on_threads_equals_the_reference(kernel, form):
    """Large enough (>= 4M elements) for the kernels' OpenMP branch, where every thread of the
    fast form has its own phase buffer; the 1×1 kernel takes the plain strided copy in im2col."""
    x = np.random.default_rng(4).standard_normal((16, 64, 64, 64)).astype(np.float32)
    geometry = ((kernel, kernel), (2, 2), (kernel // 2,) * 2, (1, 1))
    cols = np.random.default_rng(5).standard_normal(K.column_shape(x.shape, *geometry)).astype(np.float32)
    with kernels.using(form):
        np.testing.assert_array_equal(K.im2col(x, *geometry), K.im2col_reference(x, *geometry))
        np.testing.assert_array_equal(K.col2im(cols, x.shape, *geometry),
                                      K.col2im_reference(cols, x.shape, *geometry))


def test_im2col_of_a_small_image_by_hand():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    # 2×2 kernel, stride 1, no padding: 4 receptive fields, one per column.
    expected = np.array([[0, 1, 3, 4],      # tap (0, 0) of each field
                         [1, 2, 4, 5],      # tap (0, 1)
                         [3, 4, 6, 7],      # tap (1, 0)
                         [4, 5, 7, 8]], dtype=np.float64)
    for mode in ("reference", "native", "body"):
        with kernels.using(mode):
            np.testing.assert_array_equal(K.im2col(x, (2, 2)), expected)
    # col2im of all-ones columns counts how many fields see each pixel.
    counts = K.col2im(np.ones((4, 4)), (1, 1, 3, 3), (2, 2))
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


@pytest.mark.parametrize("mode", ["reference", "native", "body"])
@pytest.mark.parametrize("geometry", [((3, 3), (1, 1), (1, 1), (1, 1)), ((3, 2), (2, 1), (0, 1), (1, 2))])
def test_col2im_is_the_transpose_of_im2col(mode, geometry):
    """<im2col(x), c> == <x, col2im(c)> for all x, c: col2im multiplies by the transpose."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 7))
    with kernels.using(mode):
        cols = K.im2col(x, *geometry)
        c = rng.standard_normal(cols.shape)
        back = K.col2im(c, x.shape, *geometry)
    np.testing.assert_allclose((cols * c).sum(), (x * back).sum(), rtol=1e-12)


def test_batch_chunks_respect_the_bound():
    chunks = K.batch_chunks(10, bytes_per_image=300, limit=1000)
    assert [(c.start, c.stop) for c in chunks] == [(0, 3), (3, 6), (6, 8), (8, 10)]   # 3,3,2,2: balanced
    assert [c.stop - c.start for c in K.batch_chunks(32, bytes_per_image=2, limit=10)] == [5, 5, 5, 5, 4, 4, 4]
    assert K.batch_chunks(3, bytes_per_image=5000, limit=1000) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert K.batch_chunks(4, bytes_per_image=1, limit=10**9) == [slice(0, 4)]
    assert K.batch_chunks(0, bytes_per_image=8) == []


def test_chunked_conv_equals_unchunked(monkeypatch):
    """A tiny MAX_COLUMN_BYTES (one image per chunk) and a huge one (the whole batch at once)
    give the same forward values and gradients."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 8, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    wt_ = rng.standard_normal((3, 2, 3, 3))

    def run():
        xt, wt, bt = (minidl.Tensor(a, requires_grad=True) for a in (x, w, b))
        y = minidl.functional.conv2d(xt, wt, bt, stride=(2, 1), padding=1)
        (y * y).sum().backward()
        tt = minidl.Tensor(wt_, requires_grad=True)
        z = minidl.functional.conv_transpose2d(xt, tt, None, stride=2, padding=1, output_padding=1)
        (z * z).sum().backward()
        return y.numpy(), z.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy(), tt.grad.numpy()

    monkeypatch.setattr(K, "MAX_COLUMN_BYTES", 1)
    chunked = run()
    monkeypatch.setattr(K, "MAX_COLUMN_BYTES", 2**40)
    whole = run()
    monkeypatch.setattr(K, "MAX_COLUMN_BYTES", 2 * 27 * (4 * 7) * 8)      # conv2d: 2 images a chunk
    pairs = run()
    for a, b_, c in zip(chunked, whole, pairs):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(c, b_, rtol=1e-12, atol=1e-12)


def test_conv_never_builds_columns_above_the_bound(monkeypatch):
    """Every column buffer conv2d asks for stays under MAX_COLUMN_BYTES (one image at least)."""
    sizes = []
    real_im2col = K.im2col_into

    def spy(x, *args, **kwargs):
        out = real_im2col(x, *args, **kwargs)
        sizes.append(out.nbytes)
        return out

    import minidl.functional.conv_gemm as conv_gemm
    monkeypatch.setattr(conv_gemm, "im2col_into", spy)
    monkeypatch.setattr(K, "MAX_COLUMN_BYTES", 3 * 9 * 36 * 8 * 2)   # exactly two images
    x = minidl.Tensor(np.ones((7, 3, 6, 6)), requires_grad=True)
    w = minidl.Tensor(np.ones((4, 3, 3, 3)), requires_grad=True)   # F >= C: the im2col(x) side
    y = minidl.functional.conv2d(x, w, padding=1)
    assert len(sizes) == 4           # the forward's im2col(x): chunks of 2, 2, 2, 1 images
    y.sum().backward()               # the backward's im2col(dy) (the dual side): 36 rows per
    assert len(sizes) == 4 + 7       # pixel, 10368 bytes per image: one image per chunk
    assert max(sizes) <= K.MAX_COLUMN_BYTES


def test_workspace_is_reused():
    a = K.workspace("test", (4, 5), np.float32)
    b = K.workspace("test", (2, 3), np.float32)
    assert np.shares_memory(a, b)
    c = K.workspace("test", (40, 50), np.float32)      # larger: a new buffer
    assert c.shape == (40, 50)
    assert not np.shares_memory(K.workspace("other", (2, 3), np.float32), c)
    K.release_workspace()


def test_workspace_does_not_keep_arrays_above_the_bound(monkeypatch):
    """One oversized request (a single huge image) must not pin its memory after the call."""
    monkeypatch.setattr(K, "MAX_COLUMN_BYTES", 1000)
    small = K.workspace("bound_test", (10, 10), np.float32)                 # 400 bytes: kept
    assert np.shares_memory(small, K.workspace("bound_test", (10, 10), np.float32))
    big = K.workspace("bound_test_big", (30, 30), np.float32)               # 3600 bytes
    assert big.shape == (30, 30)
    assert not np.shares_memory(big, K.workspace("bound_test_big", (30, 30), np.float32))
    assert ("bound_test_big", np.dtype(np.float32).str) not in K._scratch.buffers


@pytest.mark.parametrize("mode", ["reference", "native"])
def test_bad_arguments_raise_clear_errors(mode):
    x = np.zeros((1, 2, 4, 4), dtype=np.float32)
    with kernels.using(mode):
        with pytest.raises(ValueError, match="kernel_size"):
            K.im2col(x, (7, 3), padding=1)                    # 7 > 4 + 2*1
        with pytest.raises(ValueError, match="stride"):
            K.im2col(x, 3, stride=0)
        with pytest.raises(TypeError, match="stride"):
            K.im2col(x, 3, stride=1.5)
        with pytest.raises(ValueError, match="padding"):
            K.im2col(x, 3, padding=-1)
        with pytest.raises(TypeError, match="x must be float32 or float64"):
            K.im2col(x.astype(np.int32), 3)
        with pytest.raises(ValueError, match="out must be"):
            K.im2col(x, 3, out=np.zeros((18, 5), dtype=np.float32))
        with pytest.raises(ValueError, match="cols has shape"):
            K.col2im(np.zeros((18, 5), dtype=np.float32), x.shape, 3)
        with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
            K.im2col(x[0], 3)


@needs_cpu_kernels
def test_the_binding_checks_before_touching_memory():
    """Called directly (bypassing the Python checks), the C++ binding still refuses bad input."""
    native = minidl.kernels._load("_C")
    x = np.zeros((1, 2, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="cols has shape"):
        native.im2col(x, np.zeros((18, 3), dtype=np.float32), 3, 3, 1, 1, 0, 0, 1, 1)
    with pytest.raises(TypeError, match="float32"):
        native.im2col(x, np.zeros((18, 4), dtype=np.float64), 3, 3, 1, 1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="larger than the padded input"):
        native.col2im(np.zeros((50, 1), dtype=np.float32), x, 5, 5, 1, 1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        native.im2col(np.zeros((1, 2, 4, 8), dtype=np.float32)[..., ::2],
                      np.zeros((18, 4), dtype=np.float32), 3, 3, 1, 1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="stride"):
        native.im2col(x, np.zeros((18, 4), dtype=np.float32), 3, 3, 0, 1, 0, 0, 1, 1)


@pytest.mark.gpu
@pytest.mark.skipif(not kernels.available()["cuda"], reason="needs minidl._C_cuda and a CUDA GPU")
def test_cuda_kernels_equal_the_cpu_kernels():
    from minidl import backend
    rng = np.random.default_rng(3)
    for shape, k, s, p, d, dtype in EXAMPLES:
        x = rng.standard_normal(shape).astype(dtype)
        gx = backend.to_device(x, "cuda")
        np.testing.assert_array_equal(backend.to_numpy(K.im2col(gx, k, s, p, d)), K.im2col(x, k, s, p, d))
        cols = rng.standard_normal(K.column_shape(shape, k, s, p, d)).astype(dtype)
        gcols = backend.to_device(cols, "cuda")
        np.testing.assert_array_equal(backend.to_numpy(K.col2im(gcols, shape, k, s, p, d)),
                                      K.col2im(cols, shape, k, s, p, d))


def test_column_workspace_pads_rows_that_are_a_multiple_of_4kb():
    """Rows of 1024 float32 (4 KB) get one cache line more between them; other lengths none.
    The view's values are what the kernels write (test_kernels_equal_the_reference_exactly)."""
    padded = K.column_workspace(9, 1024, np.float32)
    assert padded.shape == (9, 1024) and padded.strides == ((1024 + 16) * 4, 4)
    plain = K.column_workspace(9, 1000, np.float32)
    assert plain.shape == (9, 1000) and plain.flags.c_contiguous
    assert K.column_workspace(1, 1024, np.float64).flags.c_contiguous    # one row: nothing to gain


def test_a_padded_column_buffer_that_fills_the_bound_is_still_reused(monkeypatch):
    """batch_chunks fills the bound with *unpadded* columns; the pad on top must not make
    the workspace hand out a fresh array at every call."""
    monkeypatch.setattr(K, "MAX_COLUMN_BYTES", 9 * 1024 * 4)        # exactly (9, 1024) float32
    first = K.column_workspace(9, 1024, np.float32)
    assert first.strides[0] > 1024 * 4                                   # padded
    assert np.shares_memory(first, K.column_workspace(9, 1024, np.float32))


@needs_cpu_kernels
def test_native_kernels_reject_columns_without_contiguous_rows():
    x = np.zeros((1, 2, 5, 5), np.float32)
    cols_t = np.zeros((25, 18), np.float32).T                  # (18, 25) with column stride 18
    native = kernels._load("_C")
    with pytest.raises(ValueError, match="cols must have contiguous rows"):
        native.im2col(x, cols_t, 3, 3, 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="cols must have contiguous rows"):
        native.col2im(cols_t, x, 3, 3, 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="out must be C-contiguous or with contiguous rows"):
        K.im2col(x, 3, 1, 1, out=cols_t)
