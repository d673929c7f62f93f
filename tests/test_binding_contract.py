"""One calling convention for minidl._C and minidl._C_cuda (minidl/kernels/__init__.py):

    _C.<op>(*arrays, *options, fast=...)
    _C_cuda.<op>(*pointers, *sizes, *options, dtype_code, stream, deterministic=...)

Checked on the compiled modules' own signatures (pybind11 writes them into the docstrings), so
a binding that drifts from its twin fails here — on a machine without a GPU too: _C_cuda
imports without one, and its bindings check their arguments before any CUDA call, which the
second half of this file uses to run every CUDA binding's checks with the new argument order.
"""
import re

import pytest

from minidl import kernels

_C = kernels._load("_C")
_C_CUDA = kernels._load("_C_cuda")
needs_both = pytest.mark.skipif(_C is None or _C_CUDA is None,
                                reason="needs minidl._C and minidl._C_cuda built (nvcc)")
needs_cuda_module = pytest.mark.skipif(_C_CUDA is None, reason="minidl._C_cuda is not built")

# CPU-only: the form, and the direct convolution's scratch array for its padded input (the CUDA
# kernels read x with a bounds test); CUDA-only keyword: atomics or not. None has a twin.
CPU_ONLY, CUDA_ONLY = {"fast", "padded"}, {"deterministic"}
# nms is one call on the CPU and two kernels on the GPU (CuPy sorts in between): no twin. The
# norm's one-pass training backward is a CPU cache form of norm_backward_sums + norm_backward_input,
# which the GPU runs as those two kernels (kernels/norm.py's norm_backward): no twin either.
WITHOUT_TWIN = {"nms", "nms_mask", "nms_keep", "norm_backward"}
# The direct convolution's vector-width setting of the CPU form: a setting, not a kernel.
SETTINGS = {"direct_conv_set_lanes", "direct_conv_lanes"}


def signature(module, op):
    """[(name, type)] of a binding, from the first line of its pybind11 docstring."""
    first = getattr(module, op).__doc__.splitlines()[0]
    inside = first[first.index("(") + 1:first.rindex(") ->")]
    return [(name, kind.split("=")[0].strip())
            for name, kind in re.findall(r"(\w+): ([^,]+(?:\[[^\]]*\])?)", inside)]


def ops(module):
    return sorted(name for name in dir(module) if not name.startswith("_") and name not in SETTINGS
                  and callable(getattr(module, name)) and "(" in (getattr(module, name).__doc__ or ""))


@needs_both
def test_both_modules_bind_the_same_ops():
    assert set(ops(_C)) - WITHOUT_TWIN == set(ops(_C_CUDA)) - WITHOUT_TWIN


@needs_both
@pytest.mark.parametrize("op", sorted(set(ops(_C)) - WITHOUT_TWIN) if _C else [])
def test_cuda_binding_takes_the_cpu_arguments_in_the_same_order(op):
    cpu, cuda = signature(_C, op), [name for name, _ in signature(_C_CUDA, op)]
    arrays = [name for name, kind in cpu if kind in ("numpy.ndarray", "object") and name not in CPU_ONLY]
    options = [name for name, kind in cpu if name not in arrays and name not in CPU_ONLY]
    # every array comes before every option on the CPU side (a CPU-only scratch array last)
    assert [name for name, _ in cpu if name not in CPU_ONLY][:len(arrays)] == arrays, cpu
    tail = ["dtype_code", "stream"] + [name for name in cuda if name in CUDA_ONLY]
    assert cuda[:len(arrays)] == arrays, f"pointers: {cuda} vs arrays {arrays}"
    assert cuda[len(cuda) - len(tail):] == tail, cuda
    assert cuda[len(cuda) - len(tail) - len(options):len(cuda) - len(tail)] == options, \
        f"options: {cuda} vs {options}"
    sizes = cuda[len(arrays):len(cuda) - len(tail) - len(options)]
    assert sizes and not set(sizes) & set(arrays + options), f"sizes {sizes}"


@needs_cuda_module
@pytest.mark.parametrize("op", ops(_C_CUDA) if _C_CUDA else [])
def test_every_cuda_binding_ends_with_its_stream(op):
    names = [name for name, _ in signature(_C_CUDA, op) if name not in CUDA_ONLY]
    assert names[-1] == "stream"
    floats = op not in ("nms_keep",)       # the only kernel without a float array
    assert (names[-2] == "dtype_code") == floats, names


@pytest.mark.skipif(_C is None, reason="minidl._C is not built")
def test_cpu_bindings_return_nothing_but_nms_its_count():
    """The caller allocates every output: a binding that returns an array allocated it."""
    for op in ops(_C):
        returns = getattr(_C, op).__doc__.splitlines()[0].rsplit("->", 1)[1].strip()
        assert returns == ("int" if op == "nms" else "None"), f"{op} returns {returns}"


# The CUDA bindings' checks run before any CUDA call: with null pointers and sizes that would
# overflow or exceed a bound (or a misaligned pointer), each refuses with a ValueError naming the
# quantity — which also shows that the arguments land where the signature says (a misplaced one
# gives another error, or reaches the launch: without a GPU a RuntimeError).
REFUSALS = [
    ("im2col", (0, 0, 1, 1, 4, 4, 2**33, 2**31, 1, 1, 0, 0, 1, 1, 0, 0), "larger than the padded input"),
    ("col2im", (0, 0, 1, 1, 4, 4, 3, 3, 1, 1, 0, 0, 2**62, 1, 0, 0), "dilation * (kernel_size - 1)"),
    ("roi_pool_forward", (0, 0, 0, 0, 1, 1, 4, 4, 1, 2**20, 2, 1.0, 0, 0), "output_size must be in [1, 4096]"),
    ("roi_pool_backward", (0, 4, 0, 0, 1, 1, 1, 4, 4, 2, 2, 0, 0), "argmax: the device pointer is not aligned"),
    ("roi_align_forward", (0, 0, 0, 1, 1, 4, 4, 1, 2, 2, 1.0, 2**40, False, 0, 0), "sampling_ratio must be <= 256"),
    ("roi_align_backward", (0, 0, 0, 1, 1, 1, 4, 4, 2, 2, -1.0, 2, False, 0, 0), "spatial_scale"),
    ("adaptive_max_pool2d_forward", (0, 0, 0, 1, 2, 4, 4, 2**62, 1, 0, 0), "overflows"),
    ("adaptive_max_pool2d_backward", (0, 0, 0, 1, 2, 0, 4, 2, 2, 0, 0), "height and width"),
    ("index_add", (0, 0, 0, 2**62, 1, 4, 0, 0), "the size of src (n * inner)"),
    ("norm_statistics", (0, 0, 0, -1, 3, 4, False, 0, 0), "must be >= 0"),
    ("norm_forward", (0, 0, 0, 0, 0, 0, 2**40, 2**40, 4, 1e-5, False, True, 0, 0), "the size of x"),
    ("norm_backward_sums", (0, 4, 0, 0, 0, 0, 0, 1, 3, 4, 1e-5, False, 1, 0), "relu_out: the device pointer"),
    ("norm_backward_input", (0, 0, 0, 0, 0, 0, 0, 0, 0, 1, -3, 4, 1e-5, True, False, 0, 0), "must be >= 0"),
    ("nms_mask", (0, 0, 0, 0, 0, 0, 0, -1, 0.5, 0, 0), "n must be >= 0"),
    ("nms_keep", (0, 0, 0, -1, 0), "n must be >= 0"),
    ("winograd_input_transform", (0, 0, 1, 2, 4, 4, 3, 1, 2, 0, 0), "padding must be in [0, 2]"),
    ("winograd_output_transform", (0, 0, 0, 2**40, 2**40, 4, 4, 4, 0, 0), "the size of y"),
    ("winograd_output_adjoint", (0, 0, -1, 2, 4, 4, 2, 0, 0), "y's sizes must be >= 0"),
    ("winograd_input_adjoint", (0, 0, 1, 2, 1, 1, 0, 0, 2, 0, 0), "larger than the padded input"),
    ("winograd_input_adjoint", (0, 0, 1, 2, 4, 4, 1, 1, 3, 0, 0), "tile must be 2"),
    ("direct_conv", (0, 0, 0, 0, 1, 2, 4, 4, 3, 3, 1, 1, 3, 0, 0), "stride must be 1 or 2"),
    ("direct_conv_weight_grad", (0, 0, 0, 1, 2, 1, 1, 3, 3, 0, 0, 1, 0, 0), "larger than the padded input"),
    ("direct_conv_weight_grad", (0, 0, 0, 1, 2, 4, 4, 3, 4, 1, 1, 1, 0, 0), "kernel must be 3x3, 5x5, 7x7 or 9x9"),
    ("relu_forward", (0, 0, -1, 0, 0), "count must be >= 0"),
    ("relu_backward", (0, 0, 4, 2**62, 0, 0), "too many for one launch"),
]


@needs_cuda_module
def test_every_cuda_binding_is_exercised_below():
    assert sorted({op for op, _, _ in REFUSALS}) == ops(_C_CUDA)


@needs_cuda_module
@pytest.mark.parametrize("op, args, match", REFUSALS, ids=[op for op, _, _ in REFUSALS])
def test_cuda_bindings_refuse_bad_sizes_before_any_launch(op, args, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        getattr(_C_CUDA, op)(*args)


class DeviceArray:
    """What launch reads of a CuPy array: its dtype and its device pointer (.data.ptr)."""

    def __init__(self, dtype, ptr=0):
        import numpy as np
        self.dtype, self.data = np.dtype(dtype), type("Memory", (), {"ptr": ptr})()


@needs_cuda_module
def test_launch_hands_the_cuda_module_pointers_sizes_options_dtype_and_stream():
    """minidl.kernels.launch's CUDA branch, against the real bindings: the dtype code comes from
    the first float array (float64 -> 1), pointers in array order (a misaligned output is named),
    then sizes and options (a bound on an option is named)."""
    f64, i64 = DeviceArray("float64"), DeviceArray("int64")
    with pytest.raises(ValueError, match="output: the device pointer is not aligned to 8 bytes"):
        kernels.launch(_C_CUDA, "roi_pool_forward", (f64, f64, DeviceArray("float64", 4), i64),
                       sizes=(1, 1, 4, 4, 1, 2, 2), options=(1.0,))
    with pytest.raises(ValueError, match="sampling_ratio must be <= 256"):
        kernels.launch(_C_CUDA, "roi_align_backward", (f64, f64, f64),
                       sizes=(1, 1, 1, 4, 4, 2, 2), options=(1.0, 300, True), deterministic=True)
    with pytest.raises(ValueError, match="n must be >= 0"):     # no float array: no dtype code
        kernels.launch(_C_CUDA, "nms_keep", (i64, i64, DeviceArray("uint8")), sizes=(-1,))
