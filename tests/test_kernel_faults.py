"""Faults an ASan + UBSan build found by feeding generated calls to the raw ``minidl._C``
bindings (issue 19). Each used to crash the process — an out-of-bounds write, an abort from an
exception inside an OpenMP region, a hang — or to be undefined behaviour; each must now be a
ValueError / TypeError naming the argument, or a defined result.

A former crash runs in a fresh Python (``run_expecting``): there a crash is a signal (a negative
return code) or a timeout instead of a dead test session. The child catches the expected
exception and prints a marker. The last test runs the sanitizer job itself (.ci/sanitize,
docs/sanitize.md) when MINIDL_SANITIZE_TEST=1.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minidl import kernels, ops
from minidl.kernels import im2col as K
from minidl.kernels.roi_align import roi_align_backward_reference, roi_align_reference

import raw_bindings as raw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")

PRELUDE = """\
import numpy as np
import minidl
from minidl import _C, kernels, ops
from minidl.kernels import roi_align as RA
"""


def run_expecting(body, error, match, timeout=20):
    """Run ``body`` in a fresh Python: it must raise ``error`` with ``match`` in its message
    (``error=None``: it must simply finish)."""
    body = textwrap.dedent(body).strip()
    if error is None:
        script = PRELUDE + body + "\nprint('FINISHED')\n"
    else:
        script = PRELUDE + "try:\n" + textwrap.indent(body, "    ") + f"""
except {error} as e:
    print("RAISED:", str(e))
else:
    print("NO ERROR")
"""
    try:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s (expected {error or 'an end'}):\n{body}")
    assert proc.returncode == 0, (f"exited with code {proc.returncode} (negative: killed by that "
                                  f"signal)\n{proc.stdout}{proc.stderr[-3000:]}")
    marker = "RAISED:" if error else "FINISHED"
    assert marker in proc.stdout and match in proc.stdout, proc.stdout


# ---- 1. im2col geometry: sizes that used to wrap around in int64 ---------------------------
# kernel 2^33 × 2^31: C*kh*kw = 2^64 wrapped to 0, so a cols with 0 rows passed the shape
# check and the kernel wrote kh*kw runs past it (segfault / endless loop).
WRAPPING_KERNEL = "x = np.zeros((1, 1, 1, 1), np.float32)\ncols = np.zeros((0, 1), np.float32)\n"


@native
@pytest.mark.parametrize("call", [
    "_C.im2col(x, cols, 2**33, 2**31, 2**40, 2**40, 2**32, 2**30, 1, 1)",
    "_C.im2col(x, cols, 2**33, 2**31, 2**40, 2**40, 2**32, 2**30, 1, 1, fast=False)",
    "_C.col2im(cols, x, 2**33, 2**31, 2**40, 2**40, 2**32, 2**30, 1, 1)",
    "_C.col2im(cols, x, 2**33, 2**31, 2**40, 2**40, 2**32, 2**30, 1, 1, fast=False)",
])
def test_zero_row_cols_from_a_wrapping_kernel_size_is_refused(call):
    run_expecting(WRAPPING_KERNEL + call, "ValueError", "channels * kernel_h * kernel_w")


@native
@pytest.mark.parametrize("call, match", [
    # H + 2 * padding overflows
    ("_C.im2col(x, cols, 1, 1, 1, 1, 2**62, 0, 1, 1)", "2 * padding"),
    # dilation * (kernel - 1) overflows (it wrapped negative: "the kernel fits")
    ("_C.col2im(cols, x, 3, 1, 1, 1, 0, 0, 2**62, 1, fast=False)", "dilation * (kernel_size - 1)"),
    # out_h * out_w of a huge padding overflows the column count
    ("_C.im2col(x, cols, 1, 1, 1, 1, 2**61, 2**61, 1, 1)", "batch * out_h * out_w"),
])
def test_huge_geometry_overflow_is_refused(call, match):
    run_expecting("x = np.zeros((1, 1, 4, 4), np.float32)\ncols = np.zeros((1, 16), np.float32)\n"
                  + call, "ValueError", match)


@native
@pytest.mark.parametrize("args, match", [
    ((0, 3, 1, 1, 0, 0, 1, 1), "kernel_size must be >= 1"),
    ((3, -3, 1, 1, 0, 0, 1, 1), "kernel_size must be >= 1"),
    ((3, 3, 0, 1, 0, 0, 1, 1), "stride must be >= 1"),
    ((3, 3, 1, -2, 0, 0, 1, 1), "stride must be >= 1"),
    ((3, 3, 1, 1, -1, 0, 1, 1), "padding must be >= 0"),
    ((3, 3, 1, 1, 0, 0, 0, 1), "dilation must be >= 1"),
    ((3, 3, 1, 1, 0, 0, 1, -1), "dilation must be >= 1"),
    ((5, 3, 1, 1, 0, 0, 1, 1), "larger than the padded input"),     # a negative output size
    ((3, 3, 1, 1, 0, 0, 2, 1), "larger than the padded input"),
])
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", ["im2col", "col2im"])
def test_bad_hyper_parameters_name_the_argument(name, fast, args, match):
    from minidl import _C
    x, cols = np.zeros((1, 2, 4, 4), np.float32), np.zeros((18, 4), np.float32)
    fn = getattr(_C, name)
    with pytest.raises(ValueError, match=match):
        fn(x, cols, *args, fast=fast) if name == "im2col" else fn(cols, x, *args, fast=fast)


@native
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", ["im2col", "col2im"])
def test_an_empty_cols_is_accepted_whatever_its_strides(name, fast):
    """NumPy gives an empty array strides of 0; nothing is read or written through them."""
    from minidl import _C
    x, cols = np.zeros((1, 0, 0, 1), np.float32), np.zeros((0, 2), np.float32)   # out 2 × 1
    fn = getattr(_C, name)
    args = (1, 1, 1, 1, 1, 0, 1, 1)
    fn(x, cols, *args, fast=fast) if name == "im2col" else fn(cols, x, *args, fast=fast)


@native
@pytest.mark.parametrize("shape, geometry", [
    ((3, 4, 3, 3), ((1, 3), (2**63 - 1, 2**63 - 1), (2, 5), (3, 5))),   # a + stride - 1 overflowed
    ((2, 3, 5, 4), ((2, 3), (2**62, 3), (1, 0), (1, 1))),
    ((1, 3, 2, 0), ((2, 1), (2, 2), (1, 1), (1, 2))),   # a plane of width 0: null + offset
    ((1, 2, 0, 3), ((3, 3), (2, 2), (2, 1), (1, 1))),   # height 0, through the stride-2 phases
    ((1, 2, 0, 4), ((3, 3), (1, 1), (2, 1), (1, 1))),   # height 0, one block copy per tap
])
def test_extreme_but_valid_geometry_equals_the_reference(shape, geometry):
    """Valid calls whose index arithmetic UBSan caught overflowing or offsetting a null plane
    (.ci/sanitize runs this test on the sanitizer build)."""
    from minidl import _C
    k, s, p, d = geometry
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    cols_shape = K.column_shape(shape, k, s, p, d)
    expected = K.im2col_reference(x, k, s, p, d)
    for fast in (True, False):
        cols = np.full(cols_shape, np.nan)
        _C.im2col(x, cols, *k, *s, *p, *d, fast=fast)
        np.testing.assert_array_equal(cols, expected)
    cols = rng.standard_normal(cols_shape)
    expected = K.col2im_reference(cols, shape, k, s, p, d)
    for fast in (True, False):
        out = np.full(shape, np.nan)
        _C.col2im(cols, out, *k, *s, *p, *d, fast=fast)
        np.testing.assert_array_equal(out, expected)


def test_python_dispatch_refuses_sizes_beyond_int64():
    x = np.zeros((1, 1, 4, 4), np.float32)
    for mode in ("native", "reference"):
        with kernels.using(mode):
            with pytest.raises(ValueError, match="padding must be < 2\\*\\*63"):
                K.im2col(x, 1, padding=2**63)
            with pytest.raises(ValueError, match="column matrix"):
                K.im2col(x, 1, padding=2**40)
            with pytest.raises(ValueError, match="padding: the padded input height"):
                K.im2col(x[:0, :0], 1, padding=2**62)                 # empty, yet refused
            with pytest.raises(ValueError, match="dilation: the dilated kernel"):
                K.im2col(x, 3, dilation=2**62)


# ---- 2. exceptions inside OpenMP regions; 3. bounds on output_size and sampling_ratio ---------
@native
@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("op", ["roi_pool", "roi_align"])
def test_zero_channels_with_a_huge_output_size_names_output_size(op, mode):
    """A (2^20)² table of bins was allocated inside the OpenMP region: std::bad_alloc there
    aborted the process (zero channels: the output itself is empty, so nothing failed before)."""
    run_expecting(f"""
        kernels.use({mode!r})
        ops.{op}(np.zeros((1, 0, 4, 4), np.float32), np.array([[0, 0, 0, 3, 3]], np.float32),
                 (2**20, 2**20))""", "ValueError", f"{op}: output_size must be in [1, 4096]")


@native
@pytest.mark.parametrize("call", [
    "_C.roi_pool_forward(x, rois, empty(2**20, 2**20), empty(2**20, 2**20, np.int64), 1.0)",
    "_C.roi_align_forward(x, rois, empty(2**20, 2**20), 1.0, 2, False)",
    "_C.roi_align_forward(x, rois, empty(0, 7), 1.0, 2, False)",
])
def test_raw_bindings_bound_the_output_size(call):
    """The pooled size is the output's (allocated by the caller: empty with zero channels)."""
    run_expecting("x = np.zeros((1, 0, 4, 4), np.float32)\n"
                  "rois = np.array([[0, 0, 0, 3, 3]], np.float32)\n"
                  "def empty(h, w, dtype=np.float32):\n"
                  "    return np.empty((1, 0, h, w), dtype)\n" + call,
                  "ValueError", "output_size must be in [1, 4096]")


@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("op", ["roi_pool", "roi_align"])
def test_the_largest_output_size_with_zero_channels_is_an_empty_result(op, mode):
    """The bound itself is accepted, and an empty output builds no table and visits no bin
    (the reference used to loop over all 4096² bins in Python)."""
    run_expecting(f"""
        kernels.use({mode!r})
        out = ops.{op}(np.zeros((1, 0, 4, 4), np.float32), np.array([[0, 0, 0, 3, 3]], np.float32),
                       4096)
        assert out.shape == (1, 0, 4096, 4096), out.shape""", None, "", timeout=10)


@native
@pytest.mark.parametrize("call", [
    # forward: 2^40 samples per axis overflowed the sample count and looped for ever
    "_C.roi_align_forward(x, rois, np.empty((1, 1, 2, 2), np.float32), 1.0, 2**40, False)",
    # backward: 20000² taps per cell (~20 GB of table) -> bad_alloc inside OpenMP -> abort
    "_C.roi_align_backward(grad, rois, np.zeros((1, 1, 4, 4), np.float32), 1.0, 20000, False)",
    "_C.roi_align_backward(grad, rois, np.zeros((1, 1, 4, 4), np.float32), 1.0, 2**40, True)",
])
def test_raw_bindings_bound_the_sampling_ratio(call):
    run_expecting("x = np.ones((1, 1, 4, 4), np.float32)\ngrad = np.ones((1, 1, 2, 2), np.float32)\n"
                  "rois = np.array([[0, 0, 0, 3, 3]], np.float32)\n" + call,
                  "ValueError", "sampling_ratio must be <= 256")


@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("ratio", [257, 20000, 2**40])
def test_dispatch_bounds_the_sampling_ratio_in_both_directions(mode, direction, ratio):
    """minidl.kernels.roi_align refuses what the bindings refuse, on the NumPy reference too,
    with the same message."""
    call = ("RA.roi_align_forward(np.ones((1, 1, 4, 4), np.float32), rois, (2, 2), 1.0, {}, False)"
            if direction == "forward" else
            "RA.roi_align_backward(np.ones((1, 1, 2, 2), np.float32), rois, (1, 1, 4, 4), 1.0, {}, False)")
    run_expecting(f"kernels.use({mode!r})\nrois = np.array([[0, 0, 0, 3, 3]], np.float32)\n"
                  + call.format(ratio), "ValueError", "sampling_ratio must be <= 256")


@pytest.mark.parametrize("mode", ["native", "reference"])
def test_ops_name_sampling_ratio_and_accept_the_bound(mode):
    x = np.ones((1, 1, 4, 4), np.float32)
    rois = np.array([[0, 0, 0, 3, 3]], np.float32)
    with kernels.using(mode):
        with pytest.raises(ValueError, match="roi_align: sampling_ratio must be <= 256"):
            ops.roi_align(x, rois, 2, sampling_ratio=20000)
        out = ops.roi_align(x, rois, 2, sampling_ratio=256)            # the bound itself: fine
    np.testing.assert_allclose(out.numpy(), 1.0, rtol=1e-5)


@native
@pytest.mark.skipif(UNDER_ASAN, reason="an address-space limit and ASan's shadow memory clash")
def test_out_of_memory_inside_an_openmp_region_is_a_memory_error():
    """Within the bounds a table can still fail to allocate (memory is short). The error must
    come out as a MemoryError, not abort the process: the 4096² table of bins (512 MB) is
    refused by an address-space limit that still lets the 192 MB output through."""
    run_expecting("""
        import resource
        with open("/proc/self/status") as f:
            used = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (used + 400 * 2**20, resource.RLIM_INFINITY))
        x = np.ones((1, 1, 8, 8), np.float32)
        output = np.empty((1, 1, 4096, 4096), np.float32)
        argmax = np.empty((1, 1, 4096, 4096), np.int64)
        _C.roi_pool_forward(x, np.array([[0, 0, 0, 7, 7]], np.float32), output, argmax, 1.0)
        """, "MemoryError", "")


# ---- 4. misaligned arrays; a RoI outside the map ---------------------------------------------
def misaligned(shape, dtype):
    """A view whose data starts one byte past an aligned address (np.frombuffer offset=1)."""
    count = int(np.prod(shape))
    buffer = bytearray(count * np.dtype(dtype).itemsize + 1)
    view = np.frombuffer(buffer, dtype=dtype, count=count, offset=1).reshape(shape)
    assert not view.flags.aligned
    return view


@native
@pytest.mark.parametrize("call, name", [
    ("_C.im2col(bad((1, 1, 4, 4)), z(9, 4), 3, 3, 1, 1, 0, 0, 1, 1)", "x"),
    ("_C.im2col(z(1, 1, 4, 4), bad((9, 4)), 3, 3, 1, 1, 0, 0, 1, 1)", "cols"),
    ("_C.col2im(bad((9, 4)), z(1, 1, 4, 4), 3, 3, 1, 1, 0, 0, 1, 1)", "cols"),
    ("_C.roi_align_forward(bad((1, 1, 4, 4)), z(1, 5), z(1, 1, 2, 2), 1.0, 2, False)", "input"),
    ("_C.roi_align_forward(z(1, 1, 4, 4), z(1, 5), bad((1, 1, 2, 2)), 1.0, 2, False)", "output"),
    ("_C.roi_pool_forward(z(1, 1, 4, 4), bad((1, 5)), z(1, 1, 2, 2), z(1, 1, 2, 2).astype(np.int64), 1.0)",
     "rois"),
    ("_C.nms(bad((3, 4), np.float64), np.zeros(3), None, np.zeros(3, np.int64), 0.5)", "boxes"),
    ("_C.nms(np.zeros((3, 4)), np.zeros(3), None, bad((3,), np.int64), 0.5)", "keep"),
    ("_C.index_add(np.array([0]), np.ones((1, 2)), bad((3, 2), np.float64))", "out"),
    ("_C.norm_statistics(bad((2, 3, 4)), z(3), z(3), False)", "x"),
])
def test_misaligned_arrays_are_refused_naming_the_argument(call, name):
    """Reading a float at an odd address is undefined behaviour (UBSan: misaligned load)."""
    run_expecting("""
        def bad(shape, dtype=np.float32):   # data one byte past an aligned address
            count = int(np.prod(shape))
            buf = bytearray(count * np.dtype(dtype).itemsize + 1)
            return np.frombuffer(buf, dtype=dtype, count=count, offset=1).reshape(shape)
        def z(*shape):
            return np.zeros(shape, np.float32)
        """ + call, "ValueError", f"{name}: the array's data is not aligned")


@native
def test_dispatch_copies_misaligned_inputs():
    """minidl.kernels hands the bindings an aligned copy: same results as an aligned input."""
    rng = np.random.default_rng(0)
    x = misaligned((2, 3, 6, 5), np.float32)
    x[...] = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(K.im2col(x, 3, padding=1), K.im2col(x.copy(), 3, padding=1))
    cols = misaligned(K.column_shape(x.shape, (3, 3), (1, 1), (1, 1), (1, 1)), np.float32)
    cols[...] = rng.standard_normal(cols.shape)
    np.testing.assert_array_equal(K.col2im(cols, x.shape, 3, padding=1),
                                  K.col2im(cols.copy(), x.shape, 3, padding=1))
    rois = np.array([[1, 0.5, 1, 4, 5]], np.float32)
    np.testing.assert_array_equal(ops.roi_align(x, rois, 2).numpy(), ops.roi_align(x.copy(), rois, 2).numpy())
    np.testing.assert_array_equal(ops.roi_pool(x, rois, 2).numpy(), ops.roi_pool(x.copy(), rois, 2).numpy())


# RoIs wholly outside the 6×5 map along both axes, or along one axis only (then the weight
# table of that axis is empty while the other one is not: the null-pointer offset UBSan found).
OUTSIDE_ROIS = np.array([[0, 100, 100, 120, 130], [1, -60, -50, -20, -30],   # both axes
                         [0, 100, 1, 120, 4], [1, 1, -40, 4, -20],             # x only / y only
                         [0, -9, 1, -3, 4], [1, 1, 50, 4, 70]])


@native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_of_a_roi_outside_the_map_is_zero_like_the_reference(dtype, aligned, sampling_ratio):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    rois = OUTSIDE_ROIS.astype(dtype)
    out = raw.roi_align_forward(x, rois, 1.0, 3, 2, sampling_ratio, aligned)
    np.testing.assert_array_equal(out, roi_align_reference(x, rois, (3, 2), 1.0, sampling_ratio, aligned))
    assert not out.any()                                            # zeros, as torchvision
    grad = rng.standard_normal(out.shape).astype(dtype)
    grad_input = raw.roi_align_backward(grad, rois, 1.0, 2, 6, 5, sampling_ratio, aligned)
    np.testing.assert_array_equal(
        grad_input, roi_align_backward_reference(grad, rois, (2, 3, 6, 5), 1.0, sampling_ratio, aligned))
    assert not grad_input.any()


@native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nms_box_with_a_nan_coordinate_neither_suppresses_nor_is_suppressed(dtype):
    """Its area is NaN, so every IoU with it is NaN (as in torchvision and the reference); the
    C++ area used to be 0, and the box second in score order was suppressed (IoU 100/0)."""
    from minidl.kernels.nms import nms_reference
    boxes = np.array([[0, 0, 10, 10], [np.nan, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, np.nan],
                      [0, 0, 9, 9]], dtype)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype)
    for fast in (True, False):
        keep = raw.nms(boxes, scores, 0.5, fast=fast)
        np.testing.assert_array_equal(keep, nms_reference(boxes, scores, 0.5))
        np.testing.assert_array_equal(keep, [0, 1, 3])


# ---- 5. the sanitizer job --------------------------------------------------------------------
@pytest.mark.skipif(os.environ.get("MINIDL_SANITIZE_TEST") != "1",
                    reason="builds an ASan+UBSan copy and runs the kernel tests (minutes): "
                           "MINIDL_SANITIZE_TEST=1 runs it")
@pytest.mark.skipif(UNDER_ASAN, reason="already running under the sanitizers")
def test_kernel_tests_pass_under_asan_and_ubsan():
    proc = subprocess.run(["bash", os.path.join(ROOT, ".ci", "sanitize")],
                          env=dict(os.environ, PYTHON=sys.executable), cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    assert "runtime error:" not in output and "AddressSanitizer" not in output, output[-5000:]
