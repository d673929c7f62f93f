"""ReLU's kernels (minidl/kernels/relu.py, csrc/relu/): the C++ passes against the NumPy
reference bit for bit — special values, every length of the vector loops' tails, float32 and
float64 — which arrays take the kernel, the binding's errors on bad input, the CUDA twin."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import kernels
from minidl.kernels import relu as K

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")
SPECIAL = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45, 1.0, -1.0, 3e38, -3e38]


def assert_same_bits(a, b):
    """Equal values *and* signs of zero, NaN where NaN (assert_array_equal treats -0 == 0)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    np.testing.assert_array_equal(a[~nan].view(np.uint8), b[~nan].view(np.uint8))


@native
@settings(max_examples=120, deadline=None)
@given(length=st.integers(1, 300), dtype=st.sampled_from([np.float32, np.float64]),
       special=st.floats(0, 1), seed=st.integers(0, 10**6))
def test_native_passes_equal_the_reference_bit_for_bit(length, dtype, special, seed):
    """Any length (the vector loops' remainders), values sprinkled with ±0, ±inf, NaN and
    subnormals; gradients too (an inf gradient on a unit that was off gives NaN, as g·0)."""
    rng = np.random.default_rng(seed)
    x, g = (rng.standard_normal(length).astype(dtype) for _ in range(2))
    for a in (x, g):
        where = rng.random(length) < special
        a[where] = rng.choice(np.array(SPECIAL, dtype=dtype), where.sum())
    out = K.relu_forward(x)
    assert K._native(x) is not None
    with np.errstate(invalid="ignore"):
        assert_same_bits(out, K.relu_forward_reference(x))
        assert_same_bits(K.relu_backward(g, out), K.relu_backward_reference(g, out))


@native
def test_the_kernel_takes_any_shape_and_returns_new_arrays():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7)).astype(np.float32)
    before = x.copy()
    out = K.relu_forward(x)
    assert out.shape == x.shape and out is not x and not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)                # the input is never written
    np.testing.assert_array_equal(out, np.maximum(x, 0))


@pytest.mark.parametrize("make", [
    lambda x: x.astype(np.float16),                         # not a kernel dtype
    lambda x: (x * 10).astype(np.int32),
    lambda x: x[:, ::2],                                    # not contiguous
    lambda x: x[:0],                                        # empty
])
def test_other_arrays_run_the_reference(make):
    x = make(np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32))
    assert K._native(x) is None
    out = K.relu_forward(x)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, np.maximum(x, 0))


@native
def test_a_gradient_of_another_dtype_or_layout_runs_the_reference():
    rng = np.random.default_rng(2)
    out = K.relu_forward(rng.standard_normal((3, 4)).astype(np.float32))
    g64 = rng.standard_normal((3, 4))
    assert K._native(g64, out) is None
    grad = K.relu_backward(g64, out)
    assert grad.dtype == np.float64                         # NumPy's promotion, as the reference
    np.testing.assert_array_equal(grad, g64 * (out > 0))
    g_t = rng.standard_normal((4, 3)).astype(np.float32).T  # a transposed (F-ordered) view
    np.testing.assert_array_equal(K.relu_backward(g_t, out), g_t * (out > 0))


@native
def test_relu_binding_rejects_bad_input_without_crashing():
    C = kernels._load("_C")
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="x: expected dtype float32 or float64"):
        C.relu_forward(x.astype(np.int64), np.empty((2, 3), np.int64))
    with pytest.raises(ValueError, match="relu_forward: out has shape"):
        C.relu_forward(x, np.empty((3, 2), np.float32))
    with pytest.raises(TypeError, match="out: expected dtype float32"):
        C.relu_forward(x, np.empty((2, 3), np.float64))
    read_only = np.empty((2, 3), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        C.relu_forward(x, read_only)
    with pytest.raises(ValueError, match="grad_input has shape"):
        C.relu_backward(x, x, np.empty(6, np.float32))
    with pytest.raises(ValueError, match="output has shape"):
        C.relu_backward(x, x[:1], np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        C.relu_backward(np.ones((3, 2), np.float32).T, x, np.empty((2, 3), np.float32))


@native
def test_relu_through_autograd_equals_the_reference_path():
    """F.relu forward and backward on the kernels equal the same graph on the references."""
    rng = np.random.default_rng(3)
    x0, g0 = rng.standard_normal((4, 5, 6)).astype(np.float32), rng.standard_normal((4, 5, 6)).astype(np.float32)

    def run():
        x = minidl.tensor(x0, requires_grad=True)
        y = minidl.functional.relu(x)
        (y * minidl.tensor(g0)).sum().backward()
        return y.numpy(), x.grad.numpy()
    got = run()
    with kernels.using("reference"):
        ref = run()
    for a, b in zip(got, ref):
        assert_same_bits(a, b)


@pytest.mark.skipif(not kernels.available()["cuda"], reason="no CUDA GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_passes_equal_the_reference_bit_for_bit(dtype):
    """The CUDA twin (not yet taken by the dispatcher: see minidl/kernels/relu.py) called directly."""
    import cupy
    rng = np.random.default_rng(4)
    x, g = (rng.standard_normal(1000).astype(dtype) for _ in range(2))
    x[:len(SPECIAL)] = SPECIAL
    g[-len(SPECIAL):] = SPECIAL
    C_cuda = kernels._load("_C_cuda")
    xd, gd = cupy.asarray(x), cupy.asarray(g)
    out, grad = cupy.empty_like(xd), cupy.empty_like(xd)
    kernels.launch(C_cuda, "relu_forward", (xd, out), sizes=(x.size,))
    kernels.launch(C_cuda, "relu_backward", (gd, out, grad), sizes=(x.size,))
    cupy.cuda.get_current_stream().synchronize()
    with np.errstate(invalid="ignore"):
        ref_out = K.relu_forward_reference(x)
        assert_same_bits(cupy.asnumpy(out), ref_out)
        assert_same_bits(cupy.asnumpy(grad), K.relu_backward_reference(g, ref_out))
