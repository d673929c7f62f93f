"""Every op of the engine, gradchecked in float64 (central differences) and value-checked."""
import numpy as np
import pytest

import minidl.functional as F
from minidl import tensor
from minidl.gradcheck import GradcheckError, gradcheck, numerical_grad, rel_error

R = np.random.default_rng(1)


def rand(*shape, positive=False):
    a = R.standard_normal(shape)
    return np.abs(a) + 0.5 if positive else a


UNARY = {
    "neg": (lambda a: -a, rand(3, 4)),
    "exp": (F.exp, rand(3, 4)),
    "log": (F.log, rand(3, 4, positive=True)),
    "sqrt": (F.sqrt, rand(3, 4, positive=True)),
    "abs": (F.abs, rand(3, 4)),
    "pow_scalar": (lambda a: a ** 3, rand(3, 4)),
    "pow_fractional": (lambda a: a ** 1.5, rand(3, 4, positive=True)),
    "rpow": (lambda a: 2.0 ** a, rand(3, 4)),
    "clip": (lambda a: F.clip(a, -0.5, 0.7), rand(5, 4)),
    "clip_min_only": (lambda a: a.clip(min=0.1), rand(5, 4)),
    "relu": (F.relu, rand(4, 5)),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1), rand(4, 5)),
    "sigmoid": (F.sigmoid, rand(4, 5) * 5),
    "tanh": (F.tanh, rand(4, 5)),
    "softmax": (lambda a: F.softmax(a, 1), rand(4, 5)),
    "softmax_axis0": (lambda a: F.softmax(a, dim=0), rand(4, 5)),
    "log_softmax": (lambda a: F.log_softmax(a, axis=-1), rand(4, 5)),
    "sum_all": (lambda a: a.sum(), rand(3, 4)),
    "sum_axis": (lambda a: a.sum(1), rand(3, 4)),
    "sum_axes_keepdims": (lambda a: a.sum((0, 2), keepdims=True), rand(2, 3, 4)),
    "mean_axis": (lambda a: a.mean(axis=0), rand(3, 4)),
    "mean_keepdim": (lambda a: a.mean(dim=-1, keepdim=True), rand(3, 4)),
    "max_axis": (lambda a: a.max(1), rand(3, 4)),
    "min_keepdims": (lambda a: a.min(0, keepdims=True), rand(3, 4)),
    "max_all": (lambda a: a.max(), rand(3, 4)),
    "var_unbiased": (lambda a: a.var(1), rand(3, 4)),
    "var_biased_keepdims": (lambda a: F.var(a, (0, 1), True, unbiased=False), rand(3, 4)),
    "std": (lambda a: a.std(0), rand(3, 4)),
    "reshape": (lambda a, c=rand(4, 3): a.reshape(4, -1) * c, rand(3, 4)),
    "permute": (lambda a, c=rand(4, 2, 3): a.permute(2, 0, 1) * c, rand(2, 3, 4)),
    "transpose": (lambda a, c=rand(4, 3): a.transpose(0, 1) * c, rand(3, 4)),
    "flatten": (lambda a, c=rand(2, 12): a.flatten(1) * c, rand(2, 3, 4)),
    "squeeze_unsqueeze": (lambda a: a.unsqueeze(0).squeeze(0) * 2, rand(3, 4)),
    "index_slices": (lambda a: a[1:, ::2], rand(3, 4)),
    "index_int_array_repeats": (lambda a: a[np.array([0, 2, 0, 0])], rand(3, 4)),
    "index_tuple_arrays": (lambda a: a[np.array([0, 1, 1]), np.array([2, 2, 3])], rand(3, 4)),
    "index_bool_mask": (lambda a: a[a.data > 0], rand(3, 4)),
    "index_negative": (lambda a: a[-1], rand(3, 4)),
    "pad": (lambda a, c=rand(4, 7): F.pad(a, (1, 2, 0, 1)) * c, rand(3, 4)),
    "broadcast_to": (lambda a, c=rand(3, 4): a.expand((3, 4)) * c, rand(1, 4)),
    "dropout_seeded": (lambda a: F.dropout(a, 0.3, rng=np.random.default_rng(5)), rand(4, 5)),
    "gram": (lambda a, c=rand(2, 3, 3): F.gram(a) * c, rand(2, 3, 5)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name, device):
    fn, x = UNARY[name]
    if name == "dropout_seeded" and device == "cuda":
        pytest.skip("the GPU mask comes from CuPy's generator, not the seeded NumPy rng")
    gradcheck(fn, [x], device=device)


BINARY = {
    "add_broadcast": (lambda a, b: a + b, rand(3, 4), rand(4)),
    "sub_broadcast": (lambda a, b: a - b, rand(3, 1), rand(1, 4)),
    "mul_broadcast": (lambda a, b: a * b, rand(2, 3, 4), rand(3, 1)),
    "div": (lambda a, b: a / b, rand(3, 4), rand(3, 4, positive=True)),
    "pow_tensor": (lambda a, b: a ** b, rand(3, 4, positive=True), rand(3, 4)),
    "maximum": (F.maximum, rand(3, 4), rand(3, 4)),
    "minimum_broadcast": (F.minimum, rand(3, 4), rand(4)),
    "matmul": (F.matmul, rand(3, 4), rand(4, 5)),
    "matmul_batched_broadcast": (lambda a, b: a @ b, rand(2, 3, 4), rand(4, 5)),
    "matmul_vector": (lambda a, b: a @ b, rand(3, 4), rand(4)),
    "matmul_vec_mat": (lambda a, b: a @ b, rand(4), rand(4, 2)),
    "linear": (lambda a, w: F.linear(a, w), rand(5, 4), rand(3, 4)),
    "concat": (lambda a, b: F.concat([a, b], 1), rand(3, 2), rand(3, 4)),
    "stack": (lambda a, b: F.stack([a, b], axis=1), rand(3, 4), rand(3, 4)),
    "where": (lambda a, b: F.where(a.data > 0, a, b), rand(3, 4), rand(3, 4)),
    "where_broadcast": (lambda a, b: F.where(a.data > 0, a, b), rand(3, 4), rand(4)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(name, device):
    fn, a, b = BINARY[name]
    gradcheck(fn, [a, b], device=device)


def test_linear_with_bias_gradcheck():
    gradcheck(F.linear, [rand(5, 4), rand(3, 4), rand(3)])


def test_reused_tensor_in_one_expression():
    gradcheck(lambda a: a * a.sum(0) + (a @ a.T).mean(), [rand(3, 3)])


def test_values_match_numpy():
    a, b = rand(3, 4), rand(4, 5)
    assert np.allclose((tensor(a) @ tensor(b)).numpy(), a @ b)
    assert np.allclose(F.softmax(tensor(a), 1).numpy().sum(1), 1)
    assert np.allclose(F.var(tensor(a), 1).numpy(), a.var(1, ddof=1))
    assert np.allclose(F.var(tensor(a), 1, unbiased=False).numpy(), a.var(1))
    big = tensor(np.array([[1000.0, 0.0], [-1000.0, 0.0]]))
    assert np.all(np.isfinite(F.log_softmax(big, 1).numpy()))
    assert np.allclose(F.sigmoid(tensor(np.array([-1000.0, 1000.0]))).numpy(), [0, 1])


def test_max_ties_share_the_gradient():
    x = tensor(np.array([[1.0, 3.0, 3.0]]), requires_grad=True)
    x.max(1).sum().backward()
    assert np.allclose(x.grad.numpy(), [[0, 0.5, 0.5]])


def test_dropout_scales_and_is_identity_in_eval():
    x = tensor(np.ones((200, 200)))
    y = F.dropout(x, 0.25, rng=0).numpy()
    assert set(np.unique(y)) <= {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.01
    assert F.dropout(x, 0.25, training=False) is x
    with pytest.raises(ValueError, match="p must"):
        F.dropout(x, 1.0)


def test_gradcheck_reports_a_wrong_gradient():
    from minidl import Function

    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            return g * ctx.saved_tensors[0]  # missing the factor 2

    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2, 3\)\).*worst at index"):
        gradcheck(WrongSquare.apply, [rand(2, 3)])


def test_gradcheck_rejects_float32_downcast():
    with pytest.raises(GradcheckError, match="float64"):
        gradcheck(lambda a: a.to(dtype=np.float32), [rand(2)])


def test_numerical_grad_and_rel_error():
    x = np.array([1.0, 2.0, 3.0])
    g = numerical_grad(lambda v: float((v ** 3).sum()), x)
    assert np.allclose(g, 3 * x ** 2, rtol=1e-8)
    assert np.array_equal(x, [1.0, 2.0, 3.0])   # restored after perturbation
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(np.zeros(2), np.zeros(2)) == 0


BAD = [
    (lambda: tensor(np.ones((3, 4))) @ tensor(np.ones((5, 6))), ValueError, r"\(3, 4\) and \(5, 6\)"),
    (lambda: tensor(np.ones((3, 4))).reshape(5, 3), ValueError, r"cannot reshape .*\(3, 4\)"),
    (lambda: tensor(np.ones(3)).sum(axis=2), ValueError, "out of range"),
    (lambda: tensor(np.ones(3)).sum(axis=1.5), TypeError, "axis"),
    (lambda: F.concat([tensor(np.ones((2, 3))), tensor(np.ones((3, 3)))], 1), ValueError, "tensor 1"),
    (lambda: F.stack([tensor(np.ones(2)), tensor(np.ones(3))]), ValueError, "one shape"),
    (lambda: F.softmax(tensor(np.ones(3))), TypeError, "axis"),
    (lambda: F.linear(tensor(np.ones((2, 3))), tensor(np.ones((4, 5)))), ValueError, r"\(N, 5\)"),
    (lambda: F.pad(tensor(np.ones(3)), (1,)), ValueError, "pairs"),
    (lambda: F.gram(tensor(np.ones((3, 4)))), ValueError, r"gram: x must have shape \(N, C, L\)"),
    (lambda: F.clip(tensor(np.ones(3))), ValueError, "min"),
    (lambda: tensor(np.ones(3)).permute(0, 0), ValueError, "permutation"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_input_raises_clear_errors(i):
    fn, err, pattern = BAD[i]
    with pytest.raises(err, match=pattern):
        fn()


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint8, np.bool_])
def test_float_functions_of_int_and_bool_inputs_compute_in_float32(name, dtype):
    """sigmoid of an int array used to round to zeros, exp of a bool array came out as float16."""
    x = np.array([1, 2, 3, 1], dtype=dtype) if dtype is not np.bool_ else np.array([True, False, True, True])
    out = getattr(F, name)(tensor(x))
    assert out.data.dtype == np.float32
    reference = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
                 "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[name]
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(out.data, reference(x.astype(np.float64)), rtol=1e-6)


def test_pow_zero_exponent_and_std_of_a_constant_have_zero_gradients():
    """PyTorch's values: d(x**0)/dx = 0 even at x = 0 (was 0·∞ = NaN), and a constant row's std has
    gradient 0 (was ∞·0 = NaN); away from those points the gradients are unchanged."""
    x = tensor(np.array([0.0, 2.0, -1.5]), requires_grad=True)
    (x ** 0).sum().backward()
    assert np.array_equal(x.grad.data, np.zeros(3))
    x = tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** tensor(np.array([0.0, 3.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 12.0])
    x = tensor(np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]]), requires_grad=True)
    F.std(x, axis=1).sum().backward()
    assert np.isfinite(x.grad.data).all() and not x.grad.data[1].any()
    a = np.random.default_rng(0).uniform(0.5, 2.0, (3, 4))
    gradcheck(lambda t: F.std(t, axis=1), [tensor(a, requires_grad=True)])
    gradcheck(lambda t: t ** 3, [tensor(a, requires_grad=True)])


def test_gradcheck_projection_is_not_a_seed_0_input():
    """A projection equal to the input (both drawn from default_rng(0)) makes a normalization's projected
    gradient Jᵀx vanish (J x = 0 for a scale-invariant op with a symmetric Jacobian): gradcheck salts its
    stream so a correct backward passes on the input everyone draws first."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    gradcheck(lambda t: F.instance_norm(t, eps=1e-5), [x])


def test_gram_equals_x_times_its_transpose_in_values_and_gradient():
    """F.gram's single-product backward, (dG + dGᵀ) X, is the sum of MatMul's two gradients."""
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 3))
    a, b = tensor(x, requires_grad=True), tensor(x, requires_grad=True)
    ga, gb = F.gram(a), b @ b.permute(0, 2, 1)
    np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-14)
    ga.backward(g)
    gb.backward(g)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)
