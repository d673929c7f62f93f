"""conv2d and conv_transpose2d: PyTorch's values and gradients, gradient checks over a grid of
stride/padding/dilation/groups, the explicit matrix X (conv = X a, transpose conv = Xᵀ a),
the naive loop version, the layers, and argument errors."""
import itertools

import numpy as np
import pytest

import minidl
from minidl import Tensor, kernels, nn
from minidl import functional as F
from minidl.gradcheck import gradcheck

MODES = ["reference", "native"]


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is the reference for conv semantics")


def random_config(rng, transpose):
    groups = int(rng.choice([1, 2, 3]))
    c, f = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    p = tuple(int(v) for v in rng.integers(0, 3, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    size = [int(max(rng.integers(1, 9), dd * (kk - 1) + 1 - 2 * pp + 1)) for kk, pp, dd in zip(k, p, d)]
    op = tuple(int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d)) if transpose else None
    return groups, c, f, k, s, p, d, size, op


@pytest.mark.parametrize("mode", MODES)
def test_conv2d_matches_torch(mode):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    for _ in range(25):
        g, c, f, k, s, p, d, (h, w), _ = random_config(rng, transpose=False)
        x, wt, b = (rng.standard_normal(shape) for shape in ((2, c, h, w), (f, c // g, *k), (f,)))
        xs, ws, bs = (Tensor(a, requires_grad=True) for a in (x, wt, b))
        with kernels.using(mode):
            y = F.conv2d(xs, ws, bs, s, p, d, g)
            grad = rng.standard_normal(y.shape)
            y.backward(grad)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
        ty = torch.nn.functional.conv2d(tx, tw, tb, s, p, d, g)
        ty.backward(torch.tensor(grad))
        assert y.shape == tuple(ty.shape)
        for mine, theirs in ((y, ty), (xs.grad, tx.grad), (ws.grad, tw.grad), (bs.grad, tb.grad)):
            np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_conv_transpose2d_matches_torch(mode):
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    for _ in range(25):
        g, c, f, k, s, p, d, (h, w), op = random_config(rng, transpose=True)
        out_size = [(n - 1) * ss - 2 * pp + dd * (kk - 1) + o + 1
                    for n, ss, pp, dd, kk, o in zip((h, w), s, p, d, k, op)]
        if min(out_size) < 1:
            continue
        x, wt, b = (rng.standard_normal(shape) for shape in ((2, c, h, w), (c, f // g, *k), (f,)))
        xs, ws, bs = (Tensor(a, requires_grad=True) for a in (x, wt, b))
        with kernels.using(mode):
            y = F.conv_transpose2d(xs, ws, bs, s, p, op, g, d)
            grad = rng.standard_normal(y.shape)
            y.backward(grad)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
        ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, g, d)
        ty.backward(torch.tensor(grad))
        assert y.shape == tuple(ty.shape)
        for mine, theirs in ((y, ty), (xs.grad, tx.grad), (ws.grad, tw.grad), (bs.grad, tb.grad)):
            np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


GRID = list(itertools.product([1, 2], [0, 1], [1, 2], [1, 2]))   # stride, padding, dilation, groups


@pytest.mark.parametrize("stride,padding,dilation,groups", GRID)
def test_conv2d_gradcheck(stride, padding, dilation, groups):
    rng = np.random.default_rng(stride * 100 + padding * 10 + dilation + groups)
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((2 * groups, 4 // groups, 3, 2))
    b = rng.standard_normal(2 * groups)
    gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride, padding, dilation, groups), [x, w, b])


@pytest.mark.parametrize("stride,padding,dilation,groups", GRID)
def test_conv_transpose2d_gradcheck(stride, padding, dilation, groups):
    rng = np.random.default_rng(stride * 100 + padding * 10 + dilation + groups)
    x = rng.standard_normal((2, 4, 3, 4))
    w = rng.standard_normal((4, 4 // groups, 3, 2))
    b = rng.standard_normal(4)
    output_padding = stride - 1
    gradcheck(lambda x_, w_, b_: F.conv_transpose2d(x_, w_, b_, stride, padding, output_padding,
                                                    groups, dilation), [x, w, b])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (2, 1, 2, 2),
                                                            (3, 2, 1, 1)])
def test_conv_is_a_matrix_and_transpose_conv_its_transpose(mode, stride, padding, dilation, groups):
    """Lecture 8: build the matrix X of a small conv column by column (X e_i = conv(e_i)), then
    conv2d(a) == X a and conv_transpose2d(b) == Xᵀ b for random a, b."""
    rng = np.random.default_rng(4)
    c, f, h, w = 2 * groups, 2 * groups, 5, 6
    weight = Tensor(rng.standard_normal((f, c // groups, 3, 3)))

    def conv(a):
        return F.conv2d(Tensor(a.reshape(1, c, h, w)), weight, None, stride, padding, dilation, groups).numpy()

    with kernels.using(mode), minidl.no_grad():
        out_shape = conv(np.zeros(c * h * w)).shape
        basis = np.eye(c * h * w)
        X = np.stack([conv(e).reshape(-1) for e in basis], axis=1)          # (outputs, inputs)
        a = rng.standard_normal(c * h * w)
        np.testing.assert_allclose(conv(a).reshape(-1), X @ a, rtol=1e-12, atol=1e-12)
        b = rng.standard_normal(X.shape[0])
        # The output_padding that maps the conv's output size back onto (h, w).
        op = [n - ((o - 1) * stride - 2 * padding + dilation * 2 + 1) for n, o in zip((h, w), out_shape[2:])]
        back = F.conv_transpose2d(Tensor(b.reshape(out_shape)), weight, None, stride, padding, tuple(op),
                                  groups, dilation).numpy()
        assert back.shape == (1, c, h, w)
        np.testing.assert_allclose(back.reshape(-1), X.T @ b, rtol=1e-12, atol=1e-12)


def test_conv2d_naive_matches_conv2d():
    rng = np.random.default_rng(5)
    x = Tensor(rng.standard_normal((2, 4, 7, 6)))
    w = Tensor(rng.standard_normal((6, 2, 3, 2)))
    b = Tensor(rng.standard_normal(6))
    for stride, padding, dilation in ((1, 0, 1), (2, 1, 1), ((1, 2), (2, 1), (2, 1))):
        expected = F.conv2d(x, w, b, stride, padding, dilation, groups=2).numpy()
        np.testing.assert_allclose(F.conv2d_naive(x, w, b, stride, padding, dilation, groups=2).numpy(),
                                   expected, rtol=1e-12, atol=1e-12)


def test_float32_stays_float32_and_no_bias():
    rng = np.random.default_rng(6)
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w, stride=2, padding=1)
    assert y.dtype == np.float32 and y.shape == (2, 4, 4, 4)
    y.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    z = F.conv_transpose2d(y, Tensor(w.numpy()), stride=2, padding=1, output_padding=1)
    assert z.dtype == np.float32 and z.shape == (2, 3, 8, 8)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_padding_strings_and_unbatched_input():
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((3, 7, 6)), rng.standard_normal((2, 3, 4, 3))   # unbatched, even kernel
    for padding, dilation in (("same", 1), ("same", 2), ("valid", 1)):
        mine = F.conv2d(Tensor(x), Tensor(w), padding=padding, dilation=dilation).numpy()
        theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=padding,
                                            dilation=dilation).numpy()
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="stride 1"):
        F.conv2d(Tensor(x), Tensor(w), stride=2, padding="same")


def test_bad_inputs_raise_errors_that_name_the_argument():
    x = Tensor(np.zeros((1, 3, 5, 5)))
    w = Tensor(np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="channels"):
        F.conv2d(Tensor(np.zeros((1, 2, 5, 5))), w)
    with pytest.raises(ValueError, match="kernel_size"):
        F.conv2d(x, Tensor(np.zeros((4, 3, 7, 3))), padding=0)          # 7 > 5
    with pytest.raises(TypeError, match="stride"):
        F.conv2d(x, w, stride=1.5)
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(x, w, stride=-1)
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, w, padding=-2)
    with pytest.raises(ValueError, match="dilation"):
        F.conv2d(x, w, dilation=0)
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, w, Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match="channels"):
        F.conv2d(x, w, groups=3)                                         # needs weight (4, 1, ...)
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(Tensor(np.zeros((1, 3, 5, 5), dtype=np.float32)), w)
    half = np.float16
    with pytest.raises(TypeError, match=r"input \(float16\).*float32 or float64"):
        F.conv2d(Tensor(np.zeros((1, 3, 5, 5), half)), Tensor(np.zeros((4, 3, 3, 3), half)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv2d(Tensor(np.zeros((5, 5))), w)
    wt = Tensor(np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, wt, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="channels"):
        F.conv_transpose2d(Tensor(np.zeros((1, 4, 5, 5))), wt)
    with pytest.raises(TypeError, match="stride"):
        F.conv_transpose2d(x, wt, stride=(1, 2.0))


def test_conv_layers_follow_pytorch():
    torch = torch_or_skip()
    conv = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, rng=0)
    assert conv.weight.shape == (6, 2, 3, 2) and conv.bias.shape == (6,)
    assert conv.weight.dtype == np.float32
    bound = 1 / np.sqrt(2 * 3 * 2)                      # PyTorch's default: U(±1/sqrt(fan_in))
    assert np.abs(conv.weight.numpy()).max() <= bound and np.abs(conv.bias.numpy()).max() <= bound
    assert np.array_equal(nn.Conv2d(4, 6, (3, 2), groups=2, rng=0).weight.numpy(), conv.weight.numpy())
    up = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, groups=2, bias=False, rng=1)
    assert up.weight.shape == (6, 2, 4, 4) and up.bias is None
    x = np.random.default_rng(8).standard_normal((2, 4, 9, 8)).astype(np.float32)
    t_conv = torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2)
    t_up = torch.nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, groups=2, bias=False)
    with torch.no_grad():
        t_conv.weight.copy_(torch.tensor(conv.weight.numpy()))
        t_conv.bias.copy_(torch.tensor(conv.bias.numpy()))
        t_up.weight.copy_(torch.tensor(up.weight.numpy()))
        expected = t_up(t_conv(torch.tensor(x)), output_size=(11, 10)).numpy()
    got = up(conv(Tensor(x)), output_size=(11, 10)).numpy()
    assert got.shape == expected.shape == (2, 4, 11, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="output_size"):
        up(conv(Tensor(x)), output_size=(20, 20))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    assert "stride=(2, 2)" in repr(conv)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not minidl.cuda_available(), reason="needs a CUDA GPU")])])
def test_conv_runs_on_every_device(device):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4, 7, 6))
    w, wt = rng.standard_normal((6, 2, 3, 3)), rng.standard_normal((6, 2, 3, 3))
    xs, ws, wts = (Tensor(a, requires_grad=True, device=device) for a in (x, w, wt))
    y = F.conv2d(xs, ws, None, 2, 1, 1, 2)
    z = F.conv_transpose2d(y, wts, None, 2, 1, 0, 2)
    (z * z).sum().backward()
    assert y.device == device and xs.grad.device == device
    cpu = [Tensor(a, requires_grad=True) for a in (x, w, wt)]
    z_cpu = F.conv_transpose2d(F.conv2d(cpu[0], cpu[1], None, 2, 1, 1, 2), cpu[2], None, 2, 1, 0, 2)
    (z_cpu * z_cpu).sum().backward()
    np.testing.assert_allclose(z.numpy(), z_cpu.numpy(), rtol=1e-10, atol=1e-10)
    for a, b in zip((xs, ws, wts), cpu):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("padding, dilation, kernel", [(1, 1, (3, 3)), (4, 1, (9, 9)), (2, 2, (3, 2)),
                                                        (0, 1, (3, 3))])
@pytest.mark.parametrize("filters", [2, 5])
def test_stride_one_conv_runs_each_direction_on_the_cheaper_side(padding, dilation, kernel, filters,
                                                                 monkeypatch):
    """A stride-1 conv is the transpose conv of its flipped weights. With F < C (2 filters, 5
    channels) both directions run as that dual: only dy (2 channels) is im2col'ed, col2im
    builds the output. With F = C the forward is the plain im2col(x) GEMM and the backward the
    dual's — one im2col(dy) for dx and dW, no col2im at all. Values and all three gradients
    equal those of the plain path in both directions."""
    from minidl.functional import conv_dual, conv_gemm
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 9, 8))
    w = rng.standard_normal((filters, 5) + kernel)
    b = rng.standard_normal(filters)
    g = rng.standard_normal(F.conv2d(minidl.Tensor(x), minidl.Tensor(w), None, 1, padding,
                                     dilation).shape)

    def run():
        xt, wt, bt = (minidl.Tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(xt, wt, bt, stride=1, padding=padding, dilation=dilation)
        y.backward(g)
        return y.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()

    calls = []
    real_im2col, real_col2im = conv_gemm.im2col_into, conv_gemm.col2im_into
    monkeypatch.setattr(conv_gemm, "im2col_into", lambda a, *args, **kw:
                        calls.append(("im2col", a.shape[1])) or real_im2col(a, *args, **kw))
    monkeypatch.setattr(conv_gemm, "col2im_into", lambda a, *args, **kw:
                        calls.append(("col2im",)) or real_col2im(a, *args, **kw))
    chosen = run()
    if filters == 2:
        assert sorted(calls) == [("col2im",), ("im2col", 2)]           # dual forward + backward
    else:
        assert calls == [("im2col", 5), ("im2col", 5)]                 # im2col(x), then im2col(dy)
    monkeypatch.setattr(conv_dual, "enabled", False)                   # the plain side of conv.py
    plain = run()
    for a, b_ in zip(chosen, plain):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
    monkeypatch.undo()
    gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_, 1, padding, dilation), [x[:1], w, b])


@pytest.mark.parametrize("filters, channels", [(6, 16), (5, 3)])       # F < C: the dual's; F > C
@pytest.mark.parametrize("x_needs_grad", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_1x1_conv_is_one_product_per_image(filters, channels, x_needs_grad, dtype, monkeypatch):
    """A 1×1 stride-1 conv runs as W @ x[n] (conv_pointwise.py): no im2col or col2im at all, in
    either direction. Values and all three gradients equal the plain side's (or the dual side's,
    which the FCN's 16 -> 6 score layer took before) to rounding; the lane leaves a strided or
    padded 1×1 conv to them."""
    from minidl.functional import conv_dual, conv_gemm, conv_pointwise
    rng = np.random.default_rng(21)
    x = rng.standard_normal((3, channels, 5, 7)).astype(dtype)
    w = rng.standard_normal((filters, channels, 1, 1)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    g = rng.standard_normal((3, filters, 5, 7)).astype(dtype)

    def run():
        xt = Tensor(x, requires_grad=x_needs_grad)
        wt, bt = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        y = F.conv2d(xt, wt, bt)
        y.backward(g)
        assert (xt.grad is None) != x_needs_grad
        return [a.numpy() for a in (y, xt.grad, wt.grad, bt.grad) if a is not None]

    calls = []
    for name in ("im2col_into", "col2im_into"):
        real = getattr(conv_gemm, name)
        monkeypatch.setattr(conv_gemm, name, lambda *a, _real=real, _name=name, **k:
                            calls.append(_name) or _real(*a, **k))
    lane = run()
    assert calls == [], f"the 1×1 conv ran {calls}"
    monkeypatch.setattr(conv_pointwise, "enabled", False)
    other_sides = []
    for dual in (True, False):
        monkeypatch.setattr(conv_dual, "enabled", dual)
        other_sides.append(run())
    assert calls, "with the lane off the plain/dual sides should have run"
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for side in other_sides:
        assert [a.dtype for a in lane] == [a.dtype for a in side] == [dtype] * len(lane)
        for a, b_ in zip(lane, side):
            np.testing.assert_allclose(a, b_, rtol=tolerance, atol=tolerance)
    monkeypatch.undo()

    def geometry(**kwargs):
        return conv_module_geometry((1, 1), kwargs.get("stride", 1), kwargs.get("padding", 0),
                                    kwargs.get("groups", 1))
    assert conv_pointwise.takes(geometry())
    assert conv_pointwise.takes(geometry()._replace(dilation=(2, 3)))     # one tap: dilation moot
    assert not conv_pointwise.takes(geometry(stride=2))
    assert not conv_pointwise.takes(geometry(padding=1))
    assert not conv_pointwise.takes(geometry(groups=2))
    if dtype == np.float64 and x_needs_grad:
        gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_), [x[:2], w, b])


def test_a_1x1_conv_of_an_empty_batch():
    """N = 0 through the 1×1 lane: an empty output, an empty dx and zero dW and db."""
    x = Tensor(np.zeros((0, 4, 3, 5)), requires_grad=True)
    w = Tensor(np.ones((2, 4, 1, 1)), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    y = F.conv2d(x, w, b)
    assert y.shape == (0, 2, 3, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 4, 3, 5)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((2, 4, 1, 1)))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(2))


def conv_module_geometry(kernel, stride, padding, groups=1):
    from minidl.functional.conv import Geometry
    return Geometry(kernel, (stride, stride), (padding, padding), (1, 1), groups)


@pytest.mark.parametrize("op, wshape, kwargs", [
    ("conv2d", (4, 4, 3, 3), dict(stride=1, padding=1)),                 # F = C: plain dW
    ("conv2d", (2, 5, 3, 3), dict(stride=1, padding=1)),                 # F < C: the dual's dW
    ("conv2d", (6, 2, 3, 2), dict(stride=2, padding=1, groups=2)),
    ("conv_transpose2d", (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
])
def test_weight_gradient_alone_equals_the_full_backward(op, wshape, kwargs, monkeypatch):
    """A first layer's input needs no gradient: the backward then computes dW (and db) alone
    (``_conv_weight_grad``), on the plain or the dual side. They equal the full backward's."""
    from minidl.functional import conv as conv_module, conv_dual
    rng = np.random.default_rng(12)
    c_in = wshape[1] * kwargs.get("groups", 1) if op == "conv2d" else wshape[0]
    x = rng.standard_normal((3, c_in, 7, 6))
    w = rng.standard_normal(wshape)
    fn = getattr(F, op)
    out_channels = wshape[0] if op == "conv2d" else wshape[1] * kwargs.get("groups", 1)
    b = rng.standard_normal(out_channels)

    def grads(x_needs_grad):
        xt = Tensor(x, requires_grad=x_needs_grad)
        wt, bt = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        y = fn(xt, wt, bt, **kwargs)
        (y * y).sum().backward()
        assert (xt.grad is not None) == x_needs_grad
        return wt.grad.numpy(), bt.grad.numpy()

    calls = []
    real = conv_module._conv_weight_grad
    for module in (conv_module, conv_dual):     # the plain side or the dual side
        monkeypatch.setattr(module, "_conv_weight_grad", lambda *a, **k: calls.append(1) or real(*a, **k))
    alone = grads(False)
    assert calls, "the weight-only branch did not run"
    full = grads(True)
    for a, b_ in zip(alone, full):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transpose", [False, True])
def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients(transpose):
    x = Tensor(np.zeros((0, 3, 6, 6)), requires_grad=True)
    w = Tensor(np.ones((3, 4, 3, 3) if transpose else (4, 3, 3, 3)), requires_grad=True)
    b = Tensor(np.ones(4), requires_grad=True)
    y = (F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1) if transpose
         else F.conv2d(x, w, b, stride=2, padding=1))
    assert y.shape == ((0, 4, 12, 12) if transpose else (0, 4, 3, 3))
    y.sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(w.shape))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(4))


def test_padded_column_rows_give_the_same_results(monkeypatch):
    """4 images of 16×16 make column rows of 1024 float32 — 4 KB, so column_workspace pads
    them (minidl/kernels/im2col.py). Forward and all gradients of conv2d (plain and dual
    backward, stride 2) and conv_transpose2d equal those computed with contiguous columns."""
    from minidl.functional import conv_gemm
    from minidl.kernels import im2col as K
    rng = np.random.default_rng(13)
    x = rng.standard_normal((4, 3, 16, 16), dtype=np.float32)
    x2 = rng.standard_normal((4, 4, 32, 32), dtype=np.float32)

    def run():
        results = []
        for inp, w_shape, op, kwargs in [(x, (8, 3, 3, 3), F.conv2d, dict(padding=1)),
                                         (x, (3, 3, 3, 3), F.conv2d, dict(padding=1)),
                                         (x2, (5, 4, 3, 3), F.conv2d, dict(stride=2, padding=1)),
                                         (x, (3, 2, 3, 3), F.conv_transpose2d,
                                          dict(stride=2, padding=1, output_padding=1))]:
            xt = Tensor(inp, requires_grad=True)
            wt = Tensor(np.random.default_rng(14).standard_normal(w_shape, dtype=np.float32),
                        requires_grad=True)
            y = op(xt, wt, None, **kwargs)
            (y * y).sum().backward()
            results += [y.numpy(), xt.grad.numpy(), wt.grad.numpy()]
        return results

    seen = []
    real = K.column_workspace

    def spy(*args, **kwargs):
        buffer = real(*args, **kwargs)
        seen.append(buffer.flags.c_contiguous)
        return buffer
    monkeypatch.setattr(conv_gemm, "column_workspace", spy)
    padded = run()
    assert not all(seen), "no column buffer was padded: the test does not test padding"
    monkeypatch.setattr(K, "COLUMN_ROW_PAD_BYTES", 0)
    contiguous = run()
    for a, b in zip(padded, contiguous):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dual", [False, True])
def test_float32_conv_under_a_float64_loss_gets_float32_gradients(dual, monkeypatch):
    """y - target promotes to float64 (NumPy's rule), so a float64 gradient reaches the float32
    conv; the engine hands each Function gradients of its outputs' dtype, so the conv's float32
    column buffers are never mixed with a float64 image (the plain side used to raise a TypeError
    from the im2col binding, and on a GPU would have written float32 bytes into a float64 buffer)."""
    from minidl.functional import conv_dual
    monkeypatch.setattr(conv_dual, "enabled", dual)
    rng = np.random.default_rng(3)
    x64, w64 = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    target = rng.standard_normal((2, 4, 6, 5))                      # float64

    def grads(dtype):
        x = minidl.Tensor(x64.astype(dtype), requires_grad=True)
        w = minidl.Tensor(w64.astype(dtype), requires_grad=True)
        ((F.conv2d(x, w, padding=1) - target) ** 2).sum().backward()
        return x.grad, w.grad

    (gx, gw), (ex, ew) = grads(np.float32), grads(np.float64)
    assert gx.dtype == gw.dtype == np.float32
    np.testing.assert_allclose(gx.numpy(), ex.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw.numpy(), ew.numpy(), rtol=1e-4, atol=1e-4)
