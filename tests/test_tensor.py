"""The autograd engine: graph building, accumulation, topological order, API shape, errors."""

import numpy as np
import pytest

import minidl
from minidl import Function, Tensor, no_grad, tensor


def test_tensor_factory_dtypes_and_copy():
    a = np.arange(6.0).reshape(2, 3)
    t = tensor(a)
    assert t.dtype == np.float64 and t.shape == (2, 3) and t.device == "cpu"
    a[0, 0] = 100.0
    assert t.data[0, 0] == 0.0                       # tensor() copies
    assert tensor([1.0, 2.0]).dtype == np.float32    # Python floats default to float32
    assert tensor([1, 2]).dtype.kind == "i"
    assert tensor([1.0], dtype=np.float64).dtype == np.float64
    assert np.array_equal(np.asarray(tensor([[1, 2]])), [[1, 2]])


def test_requires_grad_only_for_floats():
    with pytest.raises(TypeError, match="floating"):
        tensor([1, 2], requires_grad=True)


def test_gradient_accumulates_when_a_tensor_is_used_twice():
    x = tensor([2.0, 3.0], requires_grad=True, dtype=np.float64)
    y = x * x + x          # dy/dx = 2x + 1
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), [5.0, 7.0])
    (x * 3).sum().backward()  # a second backward adds to .grad
    assert np.allclose(x.grad.numpy(), [8.0, 10.0])


def test_shared_subexpression_diamond():
    x = tensor([1.5], requires_grad=True, dtype=np.float64)
    h = x.exp()
    y = h * h + h.log()    # = e^{2x} + x  -> dy/dx = 2 e^{2x} + 1
    y.backward()
    assert np.allclose(x.grad.numpy(), 2 * np.exp(3.0) + 1)


def test_deep_graph_has_no_recursion_limit():
    x = tensor([1.0], requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(20000):
        y = y + 1.0
    y.backward()
    assert x.grad.numpy()[0] == 1.0


def test_backward_on_nonscalar_needs_grad_argument():
    x = tensor(np.ones(3), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(np.array([1.0, 2.0, 3.0]))
    assert np.allclose(x.grad.numpy(), [2, 4, 6])
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(4))


def test_backward_without_requires_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tensor([1.0]).sum().backward()


def test_no_grad_and_detach():
    x = tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = x.detach()
    assert not z.requires_grad and z.data is x.data
    assert minidl.is_grad_enabled()


def test_retain_grad_on_intermediate():
    x = tensor([1.0, -2.0], requires_grad=True, dtype=np.float64)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    assert np.allclose(h.grad.numpy(), 2 * h.data)
    assert np.allclose(x.grad.numpy(), 6 * h.data)


def test_multi_output_function_unused_output_gets_zero_gradient():
    class SplitHalves(Function):
        @staticmethod
        def forward(ctx, a):
            n = a.shape[0] // 2
            return a[:n] * 2, a[n:] * 3

        @staticmethod
        def backward(ctx, g1, g2):
            return np.concatenate([g1 * 2, g2 * 3])

    x = tensor(np.ones(4), requires_grad=True)
    first, _ = SplitHalves.apply(x)
    first.sum().backward()
    assert np.allclose(x.grad.numpy(), [2, 2, 0, 0])


def test_backward_shape_mismatch_names_the_function():
    class Broken(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, g):
            return np.ones(7)

    x = tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="Broken.backward"):
        Broken.apply(x).backward()


def test_api_shape_and_conversions():
    x = tensor(np.arange(12.0).reshape(3, 4))
    assert x.numpy().shape == (3, 4) and x.ndim == 2 and x.size == 12 and len(x) == 3
    assert x.T.shape == (4, 3)
    assert x.max(1).shape == (3,) and x.max(axis=1, keepdims=True).shape == (3, 1)
    assert x.sum(dim=0, keepdim=True).shape == (1, 4)
    assert x.argmax(1).numpy().tolist() == [3, 3, 3]
    assert x.to(dtype=np.float32).dtype == np.float32
    assert x.cpu() is x and x.to("cpu") is x
    assert (x > 5).dtype == np.bool_
    assert x[1, 2].item() == 6.0
    assert "tensor(" in repr(x)


def test_to_cuda_without_gpu_raises_clearly():
    if minidl.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no usable GPU"):
        tensor([1.0]).to("cuda")
    with pytest.raises(ValueError, match="device"):
        tensor([1.0]).to("tpu")


def test_ndarray_on_the_left_calls_tensor_operator():
    x = tensor(np.ones(3), requires_grad=True)
    y = np.full(3, 2.0) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), 2.0)


def test_override_backward_applies_to_every_call_site_and_restores():
    import minidl.functional as F
    from minidl import nn, override_backward
    from minidl.functional.activation import ReLU

    def guided(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (out > 0) * (g > 0)

    x = tensor(np.array([1.0, 2.0, -1.0]), requires_grad=True)
    upstream = np.array([-3.0, 4.0, 5.0])
    with override_backward(ReLU, guided):
        nn.ReLU()(x).backward(upstream)        # module call
        F.relu(x).backward(upstream)           # functional call
    assert np.allclose(x.grad.numpy(), [0.0, 8.0, 0.0])
    x.grad = None
    F.relu(x).backward(upstream)               # restored: plain ReLU rule
    assert np.allclose(x.grad.numpy(), [-3.0, 4.0, 0.0])


def test_get_array_module_on_cupy_like_arrays():
    """A raw CuPy array must be recognised directly (its .data is a memory pointer, not an array)."""
    from minidl import backend

    assert backend.get_array_module(np.ones(2), tensor([1.0])) is np
    assert backend.get_array_module(3.0, None) is np

    class FakeCupyArray:            # what the check sees of a cupy.ndarray: its module name
        __module__ = "cupy._core.core"
        data = object()             # like cupy's MemoryPointer

    if backend._import_cupy() is None:
        assert backend.is_cupy_array(FakeCupyArray()) is False   # no CuPy installed: never a GPU array
    else:
        import cupy
        try:
            a = cupy.zeros(2)
        except Exception:
            pytest.skip("CuPy is installed but cannot allocate without a GPU")
        assert backend.get_array_module(a) is cupy
        assert backend.get_array_module(Tensor._wrap(a)) is cupy


def _returning(make_grads, n_inputs=1, fresh=False):
    """A Function of n_inputs arrays whose backward returns make_grads(ctx, g); ``fresh``: it
    declares ``returns_fresh_grads``."""
    class Probe(Function):
        returns_fresh_grads = fresh

        @staticmethod
        def forward(ctx, *arrays):
            ctx.kept = np.full(arrays[0].shape, 5.0)
            return arrays[0] * 1.0

        @staticmethod
        def backward(ctx, g):
            return make_grads(ctx, g)
    return Probe


def test_a_leaf_adopts_a_fresh_gradient_without_copying():
    import weakref
    made = []

    def fresh(ctx, g):
        out = g * 3.0
        made.append(weakref.ref(out))      # a weak reference holds nothing
        return out
    x = tensor(np.ones(4), requires_grad=True)
    _returning(fresh, fresh=True).apply(x).backward(np.ones(4))
    assert x.grad.data is made[0](), "the declared fresh array should have been adopted, not copied"
    assert np.array_equal(x.grad.data, [3.0] * 4)

    y = tensor(np.ones(4), requires_grad=True)       # the same backward, undeclared: copied
    _returning(fresh).apply(y).backward(np.ones(4))
    assert made[1]() is None and np.array_equal(y.grad.data, [3.0] * 4)


def test_a_declared_fresh_array_given_to_two_inputs_is_copied_for_each():
    x, y = tensor(np.ones(4), requires_grad=True), tensor(np.ones(4), requires_grad=True)
    _returning(lambda ctx, g: (lambda a: (a, a))(g * 2.0), 2, fresh=True).apply(x, y).backward(np.ones(4))
    assert not np.shares_memory(x.grad.data, y.grad.data)
    x.grad.data[...] = -1.0
    assert np.array_equal(y.grad.data, [2.0] * 4)


def test_the_layers_that_declare_fresh_gradients_hand_them_over_uncopied():
    import weakref
    from minidl.functional.conv import Conv2d, ConvTranspose2d
    from minidl.functional.matmul import Linear, MatMul
    from minidl.functional.norm import _Normalize
    from minidl.functional.elementwise import Add
    assert all(f.returns_fresh_grads for f in (Conv2d, ConvTranspose2d, Linear, MatMul, _Normalize))
    assert not Add.returns_fresh_grads          # its backward passes the incoming gradient on
    made = {}

    class SpyLinear(Linear):                    # Linear's own backward, its arrays watched
        @staticmethod
        def backward(ctx, g):
            grads = Linear.backward(ctx, g)
            made.update({name: weakref.ref(a) for name, a in zip("xwb", grads)})
            return grads
    rng = np.random.default_rng(0)
    x, w, b = (tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((5, 3), (4, 3), (4,)))
    SpyLinear.apply(x, w, b).backward(np.ones((5, 4)))
    assert x.grad.data is made["x"]() and w.grad.data is made["w"]() and b.grad.data is made["b"]()
    np.testing.assert_allclose(w.grad.data, np.ones((4, 5)) @ x.data)


def test_a_leaf_copies_a_fresh_gradient_of_another_layout():
    x = tensor(np.ones((3, 4)), requires_grad=True)
    _returning(lambda ctx, g: np.asfortranarray(g * 2.0)).apply(x).backward(np.ones((3, 4)))
    assert x.grad.data.flags.c_contiguous and np.array_equal(x.grad.data, np.full((3, 4), 2.0))


@pytest.mark.parametrize("case", ["same array for two inputs", "array kept on ctx",
                                  "incoming gradient itself", "view of the incoming gradient"])
def test_a_leaf_copies_a_gradient_someone_else_holds(case):
    """Whatever the backward returns, writing into one .grad must not change anything else."""
    two = case == "same array for two inputs"
    make = {"same array for two inputs": lambda ctx, g: (lambda a: (a, a))(g * 2.0),
            "array kept on ctx": lambda ctx, g: ctx.kept,
            "incoming gradient itself": lambda ctx, g: g,
            "view of the incoming gradient": lambda ctx, g: g.reshape(2, 2).reshape(4)}[case]
    x, y = tensor(np.ones(4), requires_grad=True), tensor(np.ones(4), requires_grad=True)
    node = _returning(make, 2).apply(x, y) if two else _returning(make).apply(x)
    seed = np.ones(4)
    node.backward(seed)
    others = [seed, node._ctx.kept] + ([y.grad.data] if two else [])
    assert not any(np.shares_memory(x.grad.data, o) for o in others)
    x.grad.data[...] = -1.0                 # an optimizer writing in place may do this
    assert np.array_equal(seed, np.ones(4)) and np.array_equal(node._ctx.kept, np.full(4, 5.0))
    if two:
        assert np.array_equal(y.grad.data, [2.0] * 4)


def test_an_adopted_gradient_is_not_changed_by_later_accumulation_elsewhere():
    # x and w each receive two contributions in one backward (x*w is used twice), then x a third
    # in a second backward: every addition after the first gradient is out of place
    x = tensor(np.arange(3.0), requires_grad=True)
    w = tensor(np.ones(3), requires_grad=True)
    ((x * w) + (x * w) * 2).sum().backward()
    assert np.array_equal(x.grad.data, [3.0] * 3) and np.array_equal(w.grad.data, 3 * np.arange(3.0))
    first = x.grad.data
    (x * 4).sum().backward()                # accumulating makes a new array; the old one stays
    assert np.array_equal(first, [3.0] * 3) and np.array_equal(x.grad.data, [7.0] * 3)


def test_the_engine_is_a_module_that_imports_no_op():
    """``import minidl.autograd`` is the engine module (``minidl.tensor`` is the function), and the
    engine depends on no op module: the ops import the engine, never the other way round."""
    import ast
    import inspect
    import types
    import minidl
    import minidl.autograd as engine
    assert isinstance(engine, types.ModuleType) and callable(minidl.tensor)
    imported = {node.module or alias.name                  # "from .x import y" or "from . import x"
                for node in ast.walk(ast.parse(inspect.getsource(engine)))
                if isinstance(node, ast.ImportFrom) and node.level > 0 for alias in node.names}
    assert imported == {"backend"}, imported
