"""Batch, instance and conditional instance norm: PyTorch's values, gradients and running
statistics (biased variance to normalize, unbiased into the running average), gradient
checks, the style table of conditional instance norm, the layers, and argument errors."""
import numpy as np
import pytest

import minidl
from minidl import Tensor, nn
from minidl import functional as F
from minidl.gradcheck import gradcheck


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is the reference for normalization")


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (3, 3, 4, 5)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(shape, training):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(shape), rng.standard_normal(3), rng.standard_normal(3)
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    t_mean, t_var = torch.tensor(running_mean.copy()), torch.tensor(running_var.copy())
    xs, ws, bs = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.batch_norm(xs, running_mean, running_var, ws, bs, training, momentum=0.3, eps=1e-3)
    grad = rng.standard_normal(shape)
    y.backward(grad)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.batch_norm(tx, t_mean, t_var, tw, tb, training, 0.3, 1e-3)
    ty.backward(torch.tensor(grad))
    for mine, theirs in ((y.numpy(), ty), (xs.grad.numpy(), tx.grad), (ws.grad.numpy(), tw.grad),
                         (bs.grad.numpy(), tb.grad), (running_mean, t_mean), (running_var, t_var)):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_running_variance_is_unbiased():
    x = np.array([[1.0], [2.0], [4.0]])                       # var: biased 14/9, unbiased 7/3
    mean, var = np.zeros(1), np.ones(1)
    y = F.batch_norm(Tensor(x), mean, var, training=True, momentum=1.0, eps=0.0)
    np.testing.assert_allclose(var, [7 / 3])
    np.testing.assert_allclose(mean, [7 / 3])
    np.testing.assert_allclose(y.numpy(), (x - 7 / 3) / np.sqrt(14 / 9))   # normalized: biased


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_gradcheck(training, affine):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 3, 2))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    stats = (rng.standard_normal(3), rng.uniform(0.5, 2, 3))
    if affine:
        gradcheck(lambda x_, w_, b_: F.batch_norm(x_, stats[0].copy(), stats[1].copy(), w_, b_, training),
                  [x, w, b], tol=1e-5)
    else:
        gradcheck(lambda x_: F.batch_norm(x_, None if training else stats[0], None if training else stats[1],
                                          training=training), [x], tol=1e-5)


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_instance_norm_matches_torch(use_input_stats):
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal(3), rng.standard_normal(3)
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    t_mean, t_var = torch.tensor(running_mean.copy()), torch.tensor(running_var.copy())
    xs, ws, bs = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.instance_norm(xs, running_mean, running_var, ws, bs, use_input_stats, 0.2, 1e-4)
    grad = rng.standard_normal(x.shape)
    y.backward(grad)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.instance_norm(tx, t_mean, t_var, tw, tb, use_input_stats, 0.2, 1e-4)
    ty.backward(torch.tensor(grad))
    for mine, theirs in ((y.numpy(), ty), (xs.grad.numpy(), tx.grad), (ws.grad.numpy(), tw.grad),
                         (bs.grad.numpy(), tb.grad), (running_mean, t_mean), (running_var, t_var)):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_instance_norm_gradcheck_and_statistics():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 3)) * 3 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    gradcheck(lambda x_, w_, b_: F.instance_norm(x_, weight=w_, bias=b_), [x, w, b], tol=1e-5)
    gradcheck(lambda x_: F.instance_norm(x_), [x], tol=1e-5)
    y = F.instance_norm(Tensor(x), eps=0).numpy()
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-12)      # every plane: mean 0,
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, rtol=1e-10)        # (biased) variance 1


def test_conditional_instance_norm_picks_and_mixes_styles():
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((3, 4, 5, 5)))
    weight, bias = Tensor(rng.standard_normal((2, 4))), Tensor(rng.standard_normal((2, 4)))
    style = np.array([1, 0, 1])
    y = F.conditional_instance_norm(x, style, weight, bias).numpy()
    normalized = F.instance_norm(x).numpy()
    for n, s in enumerate(style):      # image n: instance norm with style s's (γ, β)
        expected = normalized[n] * weight.numpy()[s][:, None, None] + bias.numpy()[s][:, None, None]
        np.testing.assert_allclose(y[n], expected, rtol=1e-12, atol=1e-12)
    one_hot = np.eye(2)[style]
    np.testing.assert_allclose(F.conditional_instance_norm(x, one_hot, weight, bias).numpy(), y, atol=1e-12)
    # Mixing weights (1 - t, t) interpolate linearly between the two styles.
    t = 0.3
    mixed = F.conditional_instance_norm(x, np.tile([1 - t, t], (3, 1)), weight, bias).numpy()
    ends = [F.conditional_instance_norm(x, np.full(3, s), weight, bias).numpy() for s in (0, 1)]
    np.testing.assert_allclose(mixed, (1 - t) * ends[0] + t * ends[1], rtol=1e-12, atol=1e-12)


def test_conditional_instance_norm_gradcheck():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 3, 4))
    weight, bias = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    mixing = rng.uniform(0, 1, (2, 4))
    gradcheck(lambda x_, w_, b_, m_: F.conditional_instance_norm(x_, m_, w_, b_), [x, weight, bias, mixing],
              tol=1e-5)
    indices = np.array([3, 1])
    gradcheck(lambda x_, w_, b_: F.conditional_instance_norm(x_, indices, w_, b_), [x, weight, bias], tol=1e-5)


def test_norm_argument_errors():
    x = Tensor(np.ones((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="weight"):
        F.batch_norm(x, None, None, Tensor(np.ones(4)), training=True)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(x, np.zeros(2), np.ones(3), training=True)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(Tensor(np.ones((1, 3))), None, None, training=True)
    w, b = Tensor(np.ones((2, 3))), Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"style indices must lie in \[0, 2\)"):
        F.conditional_instance_norm(x, np.array([0, 2]), w, b)
    with pytest.raises(ValueError, match="style"):
        F.conditional_instance_norm(x, np.array([0, 1, 1]), w, b)
    with pytest.raises(ValueError, match="style weights"):
        F.conditional_instance_norm(x, np.ones((2, 3)), w, b)
    with pytest.raises(ValueError, match="num_styles"):
        F.conditional_instance_norm(x, np.array([0, 1]), Tensor(np.ones((2, 5))), Tensor(np.ones((2, 5))))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm2d(4)(x)
    with pytest.raises(ValueError, match="4-D"):
        nn.InstanceNorm2d(3)(Tensor(np.ones((2, 3, 4))))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_layer_tracks_like_torch(momentum):
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    layer, t_layer = nn.BatchNorm2d(3, momentum=momentum).double(), torch.nn.BatchNorm2d(3, momentum=momentum).double()
    for _ in range(3):                                          # training steps update the buffers
        x = rng.standard_normal((4, 3, 2, 2)) * 2 + 1
        np.testing.assert_allclose(layer(Tensor(x)).numpy(), t_layer(torch.tensor(x)).detach().numpy(), atol=1e-12)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(layer, name), getattr(t_layer, name).numpy(), rtol=1e-12)
    assert int(layer.num_batches_tracked) == int(t_layer.num_batches_tracked) == 3
    layer.eval()
    t_layer.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), t_layer(torch.tensor(x)).detach().numpy(), atol=1e-12)
    state = layer.state_dict()
    assert set(state) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    fresh = nn.BatchNorm2d(3).double().load_state_dict(state)
    np.testing.assert_array_equal(fresh.running_var, layer.running_var)


def test_norm_layers_defaults():
    assert not list(nn.InstanceNorm2d(3).parameters())               # affine=False, like PyTorch
    assert len(list(nn.InstanceNorm2d(3, affine=True).parameters())) == 2
    cin = nn.ConditionalInstanceNorm2d(3, num_styles=5)
    assert cin.weight.shape == cin.bias.shape == (5, 3)
    x = Tensor(np.random.default_rng(7).standard_normal((2, 3, 4, 4)).astype(np.float32))
    y = cin(x, np.array([4, 0]))
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), F.instance_norm(x).numpy(), atol=1e-6)   # γ=1, β=0
    bn = nn.BatchNorm2d(3)
    bn(x)
    assert "running_mean" in bn.state_dict() and bn.running_mean.dtype == np.float32


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not minidl.cuda_available(), reason="needs a CUDA GPU")])])
def test_norms_run_on_every_device(device):
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    results = {}
    for where in {"cpu", device}:
        xs, ws, bs = (Tensor(a, requires_grad=True, device=where) for a in (x, w, b))
        stats = [minidl.backend.to_device(a, where) for a in (np.zeros(2), np.ones(2))]
        y = (F.batch_norm(xs, *stats, ws[0], bs[0], training=True) ** 2).sum() \
            + (F.conditional_instance_norm(xs, np.array([1, 0, 1]), ws, bs) ** 3).sum()
        y.backward()
        results[where] = (y.numpy(), xs.grad.numpy(), ws.grad.numpy(), minidl.backend.to_numpy(stats[1]))
    for a, c in zip(results["cpu"], results[device]):
        np.testing.assert_allclose(a, c, rtol=1e-10)


def test_eval_backward_uses_the_statistics_of_its_forward():
    """The backward recomputes x_hat from the statistics: a training step that updates the
    running buffers in place between an eval forward and its backward must not change dx."""
    bn = nn.BatchNorm2d(3)
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((4, 3, 5, 5)), requires_grad=True)
    bn.eval()
    y = bn(x)
    bn.train()
    bn(Tensor(rng.standard_normal((4, 3, 5, 5)) * 10 + 5))     # moves running_mean / running_var
    y.backward(np.ones(y.shape))
    np.testing.assert_allclose(x.grad.numpy(), 1 / np.sqrt(1 + bn.eps), rtol=1e-12)


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 0, 4, 4)])
def test_norms_accept_empty_batches_and_channels(shape):
    c = shape[1]
    w, b = Tensor(np.ones(c), requires_grad=True), Tensor(np.zeros(c), requires_grad=True)
    for fn in (lambda t: F.batch_norm(t, np.zeros(c), np.ones(c), w, b, training=False),
               lambda t: F.instance_norm(t, weight=w, bias=b)):
        x = Tensor(np.zeros(shape), requires_grad=True)
        y = fn(x)
        y.sum().backward()
        assert y.shape == shape and x.grad.shape == shape and w.grad.shape == b.grad.shape == (c,)


def test_norms_of_float16_fall_back_to_the_reference():
    x = Tensor(np.random.default_rng(2).standard_normal((4, 3, 5, 5)).astype(np.float16), requires_grad=True)
    y = F.batch_norm(x, None, None, training=True)
    y.sum().backward()
    assert y.dtype == np.float16 and x.grad.dtype == np.float16
    assert F.instance_norm(x).dtype == np.float16
