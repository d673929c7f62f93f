"""The normalization kernels (minidl/kernels/norm.py, csrc/norm/): C++ and CUDA against the
NumPy reference for batch and instance norm, with and without (γ, β), statistics from the input
or fixed, with and without a fused ReLU, float32 and float64 — and the binding's errors on bad
input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import kernels
from minidl.kernels import norm as K

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")
# float32 results are compared with the reference computed in float64 from the same inputs (the
# kernels accumulate in double; a float32 reference would itself be off by ~1e-4 at offset 100).
TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-12, atol=1e-12)}


def as64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


def run_all_passes(x, dy, weight, bias, per_instance, input_stats, eps=1e-5, relu=False):
    """Every pass of the kernel family on one input: statistics, forward, backward sums, dx
    (``relu``: with a ReLU fused onto the output, whose sign then gates dy)."""
    mean, var = K.norm_statistics(x, per_instance)
    out = K.norm_forward(x, mean, var, weight, bias, eps, per_instance, relu)
    relu_out = out if relu else None
    sums = K.norm_backward_sums(dy, x, mean, var, eps, per_instance, relu_out)
    dx = K.norm_backward_input(dy, x, mean, var, weight, eps, *sums, input_stats=input_stats,
                               per_instance=per_instance, relu_out=relu_out)
    return mean, var, out, sums[0], sums[1], dx


@native
@settings(max_examples=80, deadline=None)
@given(shape=st.sampled_from([(5, 3), (1, 4, 1), (4, 3, 6), (3, 2, 4, 5), (2, 7, 1, 9), (6, 1, 3, 3)]),
       per_instance=st.booleans(), affine=st.booleans(), input_stats=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), offset=st.sampled_from([0.0, 100.0]),
       relu=st.booleans(), seed=st.integers(0, 10**6))
def test_native_passes_equal_the_reference(shape, per_instance, affine, input_stats, dtype, offset,
                                           relu, seed):
    if per_instance and len(shape) < 3:
        return                                      # instance norm needs spatial axes
    rng = np.random.default_rng(seed)
    # offset: a large mean next to a unit spread, where E[x²] - E[x]² would lose all digits
    x = (rng.standard_normal(shape) + offset).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    weight, bias = ((rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype))
                    if affine else (None, None))
    got = run_all_passes(x, dy, weight, bias, per_instance, input_stats, relu=relu)
    with kernels.using("reference"):
        # the fused ReLU gates with the kernel's own output: a float64 output could differ in
        # sign from it where y rounds to 0 in float32
        x64, dy64, w64, b64 = as64(x, dy, weight, bias)
        dy64 = dy64 * (got[2] > 0) if relu else dy64
        ref = run_all_passes(x64, dy64, w64, b64, per_instance, input_stats)
        ref = ref[:2] + (np.maximum(ref[2], 0) if relu else ref[2],) + ref[3:]
    for name, a, b in zip(("mean", "var", "out", "sum_dy", "sum_dy_xhat", "dx"), got, ref):
        assert a.dtype == x.dtype and a.shape == b.shape, name
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=TOLERANCE[dtype]["rtol"],
                                   atol=TOLERANCE[dtype]["atol"] * scale, err_msg=name)


@native
def test_statistics_are_taken_per_channel_or_per_plane():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 4, 5))
    mean, var = K.norm_statistics(x, per_instance=False)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3)), rtol=1e-12)
    mean, var = K.norm_statistics(x, per_instance=True)
    np.testing.assert_allclose(mean, x.mean(axis=(2, 3)).reshape(-1), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=(2, 3)).reshape(-1), rtol=1e-12)


@native
@settings(max_examples=60, deadline=None)
@given(shape=st.sampled_from([(5, 3), (1, 4, 1), (4, 3, 6), (3, 2, 4, 5), (2, 7, 1, 9), (16, 4, 8, 8)]),
       per_instance=st.booleans(), affine=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       relu=st.booleans(), seed=st.integers(0, 10**6))
def test_one_pass_backward_equals_sums_then_input_bit_for_bit(shape, per_instance, affine, dtype,
                                                              relu, seed):
    """norm_backward (each group's sums, then at once its dx) is the training backward's fast
    form: the same helpers in the same order as norm_backward_sums followed by
    norm_backward_input, so dx and both sums are identical, not merely close."""
    if per_instance and len(shape) < 3:
        return
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) + 3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    weight, bias = ((rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype))
                    if affine else (None, None))
    mean, var = K.norm_statistics(x, per_instance)
    relu_out = K.norm_forward(x, mean, var, weight, bias, 1e-5, per_instance, True) if relu else None
    sums = K.norm_backward_sums(dy, x, mean, var, 1e-5, per_instance, relu_out)
    dx = K.norm_backward_input(dy, x, mean, var, weight, 1e-5, *sums, input_stats=True,
                               per_instance=per_instance, relu_out=relu_out)
    got = K.norm_backward(dy, x, mean, var, weight, 1e-5, per_instance, relu_out)
    for name, a, b in zip(("dx", "sum_dy", "sum_dy_xhat"), got, (dx, *sums)):
        np.testing.assert_array_equal(a, b, err_msg=name)
    with pytest.raises(ValueError, match="dx has shape"):
        from minidl import _C
        _C.norm_backward(dy, relu_out, x, mean, var, weight, *[np.empty_like(s) for s in sums],
                         np.empty(shape[:-1] + (shape[-1] + 1,), dtype), 1e-5, per_instance)


@native
def test_norm_binding_rejects_bad_input_without_crashing():
    from minidl import _C
    x = np.zeros((2, 3, 4))
    mean, var = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match=r"mean has shape \(2,\), expected \(3,\)"):
        _C.norm_forward(x, np.zeros(2), var, None, None, np.empty_like(x), 1e-5, False, False)
    with pytest.raises(ValueError, match="expected \\(6,\\)"):      # instance norm: N*C groups
        _C.norm_statistics(x, mean, var, True)
    with pytest.raises(ValueError, match="weight has shape"):
        _C.norm_forward(x, mean, var, np.ones(4), None, np.empty_like(x), 1e-5, False, False)
    with pytest.raises(ValueError, match="out has shape"):
        _C.norm_forward(x, mean, var, None, None, np.empty((2, 3, 5)), 1e-5, False, False)
    with pytest.raises(TypeError, match="float64"):
        _C.norm_forward(x, mean.astype(np.float32), var, None, None, np.empty_like(x), 1e-5, False,
                        False)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.norm_backward_sums(np.zeros((4, 3, 2)).transpose(2, 1, 0), None, x, mean, var,
                              np.empty(3), np.empty(3), 1e-5, False)
    with pytest.raises(ValueError, match=r"relu_out has shape \(2, 3, 5\), expected \(2, 3, 4\)"):
        _C.norm_backward_sums(x, np.zeros((2, 3, 5)), x, mean, var, np.empty(3), np.empty(3), 1e-5,
                              False)
    with pytest.raises(TypeError, match="relu_out must be an ndarray or None"):
        _C.norm_backward_input(x, [0.0], x, mean, var, None, np.zeros(3), np.zeros(3),
                               np.empty_like(x), 1e-5, True, False)
    with pytest.raises(TypeError, match="relu_out: expected dtype float64"):
        _C.norm_backward_input(x, x.astype(np.float32), x, mean, var, None, np.zeros(3),
                               np.zeros(3), np.empty_like(x), 1e-5, True, False)
    with pytest.raises(TypeError, match="weight must be an ndarray or None"):   # no temporary copy
        _C.norm_forward(x, mean, var, [1.0, 1.0, 1.0], None, np.empty_like(x), 1e-5, False, False)
    with pytest.raises(ValueError, match="shape \\(N, C, ...\\)"):
        _C.norm_statistics(np.zeros(3), mean, var, False)
    with pytest.raises(ValueError, match="no values"):
        _C.norm_statistics(np.zeros((0, 3)), mean, var, False)


@pytest.mark.skipif(not kernels.available()["cuda"], reason="no CUDA GPU")
@pytest.mark.parametrize("fused_relu_on_gpu", [False, True])
@pytest.mark.parametrize("per_instance, planes_route", [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_passes_equal_the_reference(per_instance, planes_route, dtype, fused_relu_on_gpu,
                                         monkeypatch):
    """fused_relu_on_gpu=True runs the CUDA kernels' gated form (the dispatchers keep it off
    until this test has passed on a GPU: K.FUSED_RELU_ON_GPU)."""
    import cupy as cp
    monkeypatch.setattr(K, "FUSED_RELU_ON_GPU", fused_relu_on_gpu)
    # batch norm's two GPU routes: one block per channel, or the planes combined (large inputs)
    monkeypatch.setattr(K, "PLANES_ROUTE_MIN_VALUES", 0 if planes_route else 10**12)
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((5, 3, 17, 13)) + 10).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    weight, bias = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    for input_stats, relu in ((True, False), (False, False), (True, True)):
        got = run_all_passes(*(cp.asarray(a) for a in (x, dy, weight, bias)), per_instance,
                             input_stats, relu=relu)
        with kernels.using("reference"):
            x64, dy64, w64, b64 = as64(x, dy, weight, bias)
            dy64 = dy64 * (cp.asnumpy(got[2]) > 0) if relu else dy64     # see the CPU test
            ref = run_all_passes(x64, dy64, w64, b64, per_instance, input_stats)
            ref = ref[:2] + (np.maximum(ref[2], 0) if relu else ref[2],) + ref[3:]
        for a, b in zip(got, ref):
            scale = max(1.0, float(np.abs(b).max()))
            np.testing.assert_allclose(cp.asnumpy(a), b, rtol=TOLERANCE[dtype]["rtol"],
                                       atol=TOLERANCE[dtype]["atol"] * scale)


@native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 3, 17, 13), (1, 4, 8, 8), (7, 2, 3, 30)])
def test_batch_norm_through_the_planes_equals_the_direct_reduction(shape, dtype):
    """The GPU's route for batch norm (per-plane kernels, then the N planes of each channel
    combined) gives the statistics and sums of the one-block-per-channel route. Checked on the
    CPU kernels, which share the bodies; on a GPU it is the route batch norm takes."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 3 + rng.standard_normal((1, shape[1], 1, 1)) * 50).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    mean, var = K.norm_statistics(x, per_instance=False)
    mean_p, var_p = K.batch_statistics_by_planes(x)
    np.testing.assert_allclose(mean_p, mean, **TOLERANCE[dtype])
    np.testing.assert_allclose(var_p, var, rtol=TOLERANCE[dtype]["rtol"], atol=TOLERANCE[dtype]["atol"] * 10)
    sums = K.norm_backward_sums(dy, x, mean, var, 1e-5, per_instance=False)
    sums_p = K.batch_backward_sums_by_planes(dy, x, mean, var, 1e-5)
    for got, want in zip(sums_p, sums):
        np.testing.assert_allclose(got, want, rtol=TOLERANCE[dtype]["rtol"],
                                   atol=TOLERANCE[dtype]["atol"] * np.sqrt(x.size))


def test_only_gpu_arrays_of_large_planes_take_the_planes_route(monkeypatch):
    big = np.zeros((32, 64, 64, 64), np.float32)              # 2^17 values per channel
    assert not K.use_planes_for_batch_norm(big)               # NumPy: the C++ kernel, never
    monkeypatch.setattr(K.backend, "is_cupy_array", lambda a: True)   # as if on the GPU
    assert K.use_planes_for_batch_norm(big)
    assert not K.use_planes_for_batch_norm(np.zeros((16, 128, 32, 32), np.float32))   # 2^14
    assert not K.use_planes_for_batch_norm(np.zeros((4096, 64, 7, 7), np.float32))    # planes < 64
    assert not K.use_planes_for_batch_norm(np.zeros((2**18, 8), np.float32))           # (N, C)
