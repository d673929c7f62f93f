"""A ReLU fused into normalization (``relu=True`` in F.batch_norm / F.instance_norm, and
``nn.fuse_norm_relu`` on a model): the same outputs and running statistics as normalization
followed by ReLU bit for bit, and the same gradients — bit for bit on the references; on the
compiled kernels up to the order in which the backward's per-channel sums are added (the
compiler vectorizes the gated loop apart from the plain one) — a float64 gradient check, and
what fusing does to a model (and leaves alone)."""
import numpy as np
import pytest

from minidl import Tensor, kernels, nn
from minidl import functional as F
from minidl.gradcheck import gradcheck
from minidl.models import pretrained


def same_bits(a, b):
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def norm_then_relu(kind, fused, x0, w0, b0, g0, training):
    """(output, dx, dw, db, running mean, running var) of kind ∘ ReLU, fused or as two ops."""
    x, w, b = (Tensor(a.copy(), requires_grad=True) for a in (x0, w0, b0))
    rng = np.random.default_rng(9)
    rm, rv = rng.standard_normal(x0.shape[1]).astype(x0.dtype), rng.uniform(0.5, 2, x0.shape[1]).astype(x0.dtype)
    norm = F.batch_norm if kind == "batch" else F.instance_norm
    y = norm(x, rm, rv, w, b, training, 0.1, 1e-5, relu=fused)
    if not fused:
        y = F.relu(y)
    (y * Tensor(g0)).sum().backward()
    return y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy(), rm, rv


@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("kind, training", [("batch", True), ("batch", False), ("instance", True),
                                            ("instance", False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_relu_equals_norm_then_relu_bit_for_bit(mode, kind, training, dtype):
    rng = np.random.default_rng(0)
    shape = (4, 5, 7, 9)
    x0 = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w0, b0 = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    g0 = rng.standard_normal(shape).astype(dtype)
    with kernels.using(mode):
        fused = norm_then_relu(kind, True, x0, w0, b0, g0, training)
        apart = norm_then_relu(kind, False, x0, w0, b0, g0, training)
    assert (fused[0] == 0).mean() > 0.2 and (fused[0] > 0).mean() > 0.2   # both sides of the kink
    for name, a, b in zip(("out", "dx", "dw", "db", "running_mean", "running_var"), fused, apart):
        if name in ("out", "running_mean", "running_var") or mode == "reference":
            assert same_bits(a, b), name
        else:
            assert_sums_reordered(a, b, name)


def assert_sums_reordered(a, b, name):
    """Equal but for the order of a sum: a few units in the last place of the largest value."""
    assert a.dtype == b.dtype and a.shape == b.shape, name
    ulp = np.finfo(a.dtype).eps
    np.testing.assert_allclose(a, b, rtol=0, atol=64 * ulp * float(np.abs(b).max()), err_msg=name)


@pytest.mark.parametrize("kind", ["batch", "instance"])
def test_fused_relu_gradcheck(kind):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 4, 5))
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    norm = F.batch_norm if kind == "batch" else F.instance_norm
    gradcheck(lambda x_, w_, b_: norm(x_, None, None, w_, b_, True, relu=True), [x, w, b])


def test_relu_must_be_a_bool():
    x = Tensor(np.ones((2, 3, 4, 4), np.float32))
    with pytest.raises(TypeError, match="relu"):
        F.batch_norm(x, None, None, training=True, relu="yes")


def block(norm, after):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), norm, after)


def test_fuse_norm_relu_fuses_each_norm_then_relu_pair_once():
    model = nn.Sequential(block(nn.BatchNorm2d(4), nn.ReLU()),
                          nn.Sequential(nn.InstanceNorm2d(4, affine=True), nn.ReLU()),
                          block(nn.BatchNorm2d(4), nn.Tanh()),         # not a ReLU: kept
                          nn.ReLU(), nn.Conv2d(4, 4, 1))                 # a ReLU after a Sequential: kept
    keys = list(model.state_dict())
    assert nn.fuse_norm_relu(model) == 2
    assert nn.fuse_norm_relu(model) == 0                                 # already fused
    assert model[0][1].fused_relu and model[1][0].fused_relu and not model[2][1].fused_relu
    assert type(model[0][2]) is nn.Identity and type(model[1][1]) is nn.Identity
    assert type(model[2][2]) is nn.Tanh and type(model[3]) is nn.ReLU
    assert "fused_relu=True" in repr(model[0][1])
    assert list(model.state_dict()) == keys                              # checkpoints unchanged


@pytest.mark.parametrize("training", [True, False])
def test_a_fused_fcn_trains_exactly_as_the_unfused_one(training):
    """The lecture-8 FCN (10 BatchNorm2d -> ReLU pairs): the loss and the running statistics
    equal bit for bit, every gradient up to the order of the backward's sums."""
    rng = np.random.default_rng(2)
    x = rng.random((2, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 6, (2, 32, 32))

    def step(fuse):
        model = pretrained.build("fcn_shapes")
        model.train(training)
        if fuse:
            assert nn.fuse_norm_relu(model) == 10
        loss = F.cross_entropy(model(Tensor(x)), y)
        loss.backward()
        return [loss.numpy()] + [p.grad.numpy() for p in model.parameters()] + \
            [np.asarray(v) for v in model.state_dict().values()]
    fused, apart = step(True), step(False)
    assert same_bits(fused[0], apart[0])                                  # the loss
    n_grads = len(list(pretrained.build("fcn_shapes").parameters()))
    for i, (a, b) in enumerate(zip(fused[1:], apart[1:])):
        if i < n_grads:
            assert_sums_reordered(a, b, f"gradient {i}")
        else:
            assert same_bits(np.asarray(a), np.asarray(b))                # parameters, buffers


def test_transform_net_fuses_its_norms_and_a_swapped_in_norm_gets_its_relu_back():
    """TransformNet's conv-norm-ReLU blocks fuse the ReLU into instance norm; a norm swapped in
    afterwards (a student's own, as assignment 9 does) gets the ReLU applied after it."""
    from minidl.models.transform_net import TransformNet
    net = TransformNet(norm="instance", rng=np.random.default_rng(0))
    block = net.encoder[0]
    assert block.norm.fused_relu
    x = Tensor(np.random.default_rng(1).random((1, 3, 16, 16)).astype(np.float32))

    class PlainInstanceNorm(nn.Module):          # no fused_relu attribute: the ReLU must follow it
        def forward(self, h):
            return F.instance_norm(h)
    fused_out = block(x).numpy()
    block.norm = PlainInstanceNorm()
    plain_out = block(x).numpy()
    assert fused_out.min() >= 0 and plain_out.min() >= 0
    np.testing.assert_allclose(fused_out, plain_out, rtol=1e-5, atol=1e-6)


def test_a_norm_subclass_is_not_fused_and_guided_backprop_refuses_a_fused_relu():
    """A subclass may override forward (and never read fused_relu): fuse_norm_relu leaves it
    alone. An overridden ReLU backward (guided backprop) cannot reach a fused ReLU: refused."""
    import minidl
    from minidl.functional.activation import ReLU as ReLUFunction

    class MyNorm(nn.BatchNorm2d):
        def forward(self, x):
            return super().forward(x) * 1.0
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), MyNorm(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    assert nn.fuse_norm_relu(model) == 1 and not model[1].fused_relu and model[4].fused_relu
    x = Tensor(np.random.default_rng(3).random((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    with minidl.override_backward(ReLUFunction, lambda ctx, g: g):
        with pytest.raises(RuntimeError, match="guided backprop"):
            model(x).sum().backward()
