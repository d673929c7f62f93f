"""Kernel dispatch and the index_add kernel: C++ vs NumPy reference, bounds, dtypes, switching."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import kernels
from minidl.kernels.index_add import index_add, index_add_reference

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")


def test_available_reports_backends():
    av = kernels.available()
    assert av["reference"] is True and set(av) == {"reference", "cpu", "cuda"}
    assert av["cuda"] is (av["cuda"] and minidl.cuda_available())


def test_use_switches_and_rejects_unknown():
    assert kernels.mode() == "native"
    with kernels.using("reference"):
        assert kernels.mode() == "reference"
        assert kernels.native_for(np.zeros(1)) is None
    assert kernels.mode() == "native"
    with pytest.raises(ValueError, match="kernel mode"):
        kernels.use("fast")


@native
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 7), n=st.integers(0, 20), inner=st.sampled_from([(), (1,), (3,), (2, 5)]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 10**6))
def test_index_add_native_equals_reference(rows, n, inner, dtype, seed):
    rng = np.random.default_rng(seed)
    index = rng.integers(-rows, rows, n)
    src = rng.standard_normal((n,) + inner).astype(dtype)
    out0 = rng.standard_normal((rows,) + inner).astype(dtype)
    ref = index_add_reference(out0.copy(), index, src)
    got = index_add(out0.copy(), index, src)
    # Same additions in the same order per element: bit-identical.
    assert np.array_equal(ref, got)


@native
def test_index_add_binding_rejects_bad_input_without_crashing():
    from minidl import _C
    out = np.zeros((3, 2))
    with pytest.raises(ValueError, match="out of range"):
        _C.index_add(np.array([3]), np.ones((1, 2)), out)
    with pytest.raises(ValueError, match="src has 2 rows"):
        _C.index_add(np.array([0]), np.ones((2, 2)), out)
    with pytest.raises(TypeError, match="float32"):
        _C.index_add(np.array([0]), np.ones((1, 2)), out.astype(np.float32))
    with pytest.raises(TypeError, match="int64"):
        _C.index_add(np.array([0], dtype=np.int32), np.ones((1, 2)), out)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.index_add(np.array([0]), np.ones((1, 2)), np.zeros((2, 3)).T)


def test_import_works_without_compiled_modules(tmp_path):
    """The NumPy reference path is complete: hide _C/_C_cuda and train a step."""
    code = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in ("minidl._C", "minidl._C_cuda"):
            raise ImportError("hidden for the test")
sys.meta_path.insert(0, Block())
import numpy as np, minidl
assert minidl.kernels.available()["cpu"] is False
x = minidl.tensor(np.ones((3, 2)), requires_grad=True)
x[np.array([0, 0, 2])].sum().backward()
assert x.grad.numpy()[:, 0].tolist() == [2.0, 0.0, 1.0]
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.skipif(not kernels.available()["cuda"], reason="no CUDA GPU")
def test_index_add_cuda_equals_reference():
    import cupy as cp
    rng = np.random.default_rng(0)
    index = rng.integers(-5, 5, 40)
    src = rng.standard_normal((40, 3, 7))
    out0 = rng.standard_normal((5, 3, 7))
    got = index_add(cp.asarray(out0), cp.asarray(index), cp.asarray(src))
    assert np.allclose(cp.asnumpy(got), index_add_reference(out0.copy(), index, src))
