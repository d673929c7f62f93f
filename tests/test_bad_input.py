"""Bad input gets a clear error or the right answer — the cases an outside tester found.

Each test is one finding: small dtypes that overflowed silently in the box ops, NaN dropped by
maximum/minimum, and errors from deep inside (AttributeError, IndexError, unpacking errors)
instead of a ValueError/TypeError that names the op and the argument. The generated version of
these checks (thousands of calls) is tests/test_fuzz.py.
"""
import numpy as np
import pytest

import minidl.functional as F
import minidl.nn as nn
import minidl.ops as ops
from minidl.autograd import Tensor


# ---- small dtypes in the box ops: computed wide, as torchvision's _upcast -------------------------
def test_box_iou_of_float16_boxes_is_finite_and_right():
    # 300 x 300 boxes: the area 90000 overflows float16 (max 65504) — it used to give inf/NaN.
    a = np.array([[0, 0, 300, 300], [10, 10, 200, 250]], np.float16)
    b = np.array([[0, 0, 300, 150], [100, 100, 400, 400]], np.float16)
    got = ops.box_iou(a, b)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ops.box_iou(a.astype(np.float64), b.astype(np.float64)), rtol=1e-6)
    assert got[0, 0] == pytest.approx(0.5)


def test_nms_of_float16_boxes_suppresses_what_float64_suppresses():
    boxes = np.array([[0, 0, 300, 300], [0, 0, 300, 290], [400, 400, 420, 420]], np.float16)
    scores = np.array([0.9, 0.8, 0.7], np.float16)
    keep = ops.nms(boxes, scores, 0.5)
    assert keep.tolist() == [0, 2]               # box 1 overlaps box 0 with IoU 0.97
    assert keep.tolist() == ops.nms(boxes.astype(np.float64), scores.astype(np.float64), 0.5).tolist()
    assert ops.batched_nms(boxes, scores, np.array([0, 0, 1]), 0.5).tolist() == [0, 2]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_box_area_of_small_integer_boxes_does_not_wrap(dtype):
    boxes = np.array([[0, 0, 100, 100], [10, 20, 5, 30]], dtype)    # the second is inverted in x
    area = ops.box_area(boxes)
    assert area.dtype == np.int64
    assert area.tolist() == [10000, 0]
    assert ops.remove_small_boxes(boxes, 1).tolist() == [0]          # the inverted one is empty


def test_box_convert_refuses_integer_results_that_do_not_fit():
    boxes = np.array([[100, 100, 100, 100]], np.int8)                  # x + w = 200 > 127
    with pytest.raises(ValueError, match="do not fit in int8"):
        ops.box_convert(boxes, "xywh", "xyxy")
    assert ops.box_convert(boxes.astype(np.int16), "xywh", "xyxy").tolist() == [[100, 100, 200, 200]]


# ---- NaN propagates through maximum / minimum (NumPy's and PyTorch's rule) ------------------------
@pytest.mark.parametrize("op, reference", [(F.maximum, np.maximum), (F.minimum, np.minimum)])
def test_maximum_minimum_propagate_nan_and_send_its_gradient_there(op, reference):
    a = Tensor(np.array([1.0, np.nan, 3.0, 2.0, np.nan]), requires_grad=True)
    b = Tensor(np.array([np.nan, 2.0, 1.0, 2.0, np.nan]), requires_grad=True)
    out = op(a, b)
    np.testing.assert_array_equal(out.numpy(), reference(a.numpy(), b.numpy()))   # NaN where either is
    out.sum().backward()
    # PyTorch's rule: the winner gets the gradient, ties split it, and where a NaN is involved
    # (no comparison holds) both operands get it in full.
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0, float(op is F.maximum), 0.5, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0, float(op is F.minimum), 0.5, 1.0])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_gradients_match_pytorch_at_nan_and_ties(name):
    torch = pytest.importorskip("torch", reason="torch is only used as the reference here")
    a = np.array([1.0, np.nan, 3.0, 2.0, np.nan, -1.0])
    b = np.array([np.nan, 2.0, 1.0, 2.0, np.nan, 0.0])
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    getattr(F, name)(ta, tb).sum().backward()
    xa, xb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    getattr(torch, name)(xa, xb).sum().backward()
    np.testing.assert_array_equal(ta.grad.numpy(), xa.grad.numpy())
    np.testing.assert_array_equal(tb.grad.numpy(), xb.grad.numpy())


# ---- errors that name the op and the argument -------------------------------------------------------
@pytest.mark.parametrize("call, words", [
    (lambda: F.relu(None), ["relu", "x", "NoneType"]),
    (lambda: F.conv2d("image", Tensor(np.ones((1, 1, 3, 3), np.float32))), ["conv2d", "x", "str"]),
    (lambda: F.conv2d(Tensor(np.ones((1, 1, 4, 4), np.float32)), {"w": 1}), ["conv2d", "weight"]),
    (lambda: F.mse_loss(Tensor(np.ones(3)), np.array([1 + 2j, 0, 0])), ["mse_loss", "target", "complex"]),
    (lambda: F.sum(Tensor(np.ones((2, 3))), dim="1"), ["sum", "dim"]),
    (lambda: F.softmax(Tensor(np.ones((2, 3))), dim=(0, 1)), ["softmax", "dim"]),
    (lambda: F.cat(None), ["concat", "tensors"]),
    (lambda: F.cat([Tensor(np.ones(2)), "x"]), ["concat", "tensors[1]"]),
    (lambda: F.transpose(Tensor(np.ones((2, 3))), 0, 5), ["transpose", "dim1"]),
    (lambda: F.reshape(Tensor(np.ones((2, 3))), (3, "2")), ["reshape", "shape[1]"]),
    (lambda: F.pad(Tensor(np.ones((2, 3))), 1.5), ["pad"]),
    (lambda: F.maximum(Tensor(np.ones(3)), None), ["maximum", "b"]),
    (lambda: F.add(Tensor(np.ones((2, 3))), Tensor(np.ones(4))), ["add", "broadcast"]),
    (lambda: F.clamp(Tensor(np.ones(3)), min="0"), ["clip", "min"]),
    (lambda: F.dropout(Tensor(np.ones(3)), p=(0.5,)), ["dropout", "p"]),
    (lambda: F.linear(Tensor(np.ones((2, 3))), Tensor(np.ones(3))), ["linear", "weight"]),
    (lambda: ops.roi_align(Tensor(np.ones((1, 1, 4, 4), np.float32)), np.zeros((1, 5), np.float32),
                           (2, 2, 2)), ["roi_align", "output_size"]),
    (lambda: ops.roi_pool(Tensor(np.ones((1, 1, 4, 4), np.float32)), np.zeros((1, 5), np.float32),
                          "2"), ["roi_pool", "output_size"]),
    (lambda: ops.roi_align(Tensor(np.ones((1, 1, 4, 4), np.float32)), np.zeros((1, 5), np.float32), 2,
                           aligned=np.ones(3)), ["roi_align", "aligned"]),
    (lambda: ops.anchor_grid((3, 3, 3), 4, (8,)), ["feature_size"]),
    (lambda: ops.clip_boxes_to_image(np.zeros((1, 4)), 5), ["size"]),
    (lambda: ops.box_convert(np.zeros((1, 4)), np.array([1, 2]), "xyxy"), ["in_fmt"]),
    (lambda: ops.remove_small_boxes(np.zeros((1, 4)), None), ["min_size"]),
    (lambda: F.max_pool2d(Tensor(np.ones((1, 1, 4, 4))), kernel_size=(2, 2, 2)), ["kernel_size"]),
    (lambda: nn.ConvTranspose2d(3, (4,), 3), ["out_channels"]),
    (lambda: nn.Linear(0, 4), ["in_features"]),
    (lambda: nn.Dropout((0.5,)), ["Dropout", "p"]),
])
def test_bad_arguments_raise_an_error_naming_them(call, words):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"


def test_arrays_and_numbers_are_still_accepted_where_tensors_are():
    # The check refuses only what cannot be computed on: plain arrays and numbers still work.
    x = np.array([[-1.0, 2.0]])
    assert F.relu(x).numpy().tolist() == [[0.0, 2.0]]
    assert F.relu(x).dtype == np.float64                     # an array keeps its dtype
    assert F.sigmoid([0.0]).numpy().tolist() == [0.5]        # a list becomes float32
    assert F.where(np.array([True, False]), Tensor(np.ones(2)), 0.0).numpy().tolist() == [1.0, 0.0]
    assert F.clamp(Tensor(np.arange(4)), max=2).numpy().tolist() == [0, 1, 2, 2]   # ints stay ints


@pytest.mark.parametrize("case", ["pow_zero_at_zero", "std_of_a_constant", "all_targets_ignored",
                                  "sigmoid_of_ints"])
def test_edge_case_results_and_gradients_match_pytorch(case):
    torch = pytest.importorskip("torch", reason="torch is only used as the reference here")
    x = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    calls = {
        "pow_zero_at_zero": (lambda t: F.pow(t, 0.0), lambda t: t ** 0.0),
        "std_of_a_constant": (lambda t: F.std(t[1]), lambda t: t[1].std()),
        "all_targets_ignored": (lambda t: F.cross_entropy(t, np.array([-100, -100])),
                                lambda t: torch.nn.functional.cross_entropy(t, torch.tensor([-100, -100]))),
    }
    if case == "sigmoid_of_ints":
        ints = np.array([-2, 0, 3])
        np.testing.assert_allclose(F.sigmoid(ints).numpy(), torch.sigmoid(torch.tensor(ints)).numpy(),
                                   rtol=1e-6)
        return
    ours, theirs = calls[case]
    t = Tensor(x, requires_grad=True)
    y = ours(t)
    y.sum().backward()
    r = torch.tensor(x, requires_grad=True)
    z = theirs(r)
    z.sum().backward()
    np.testing.assert_array_equal(y.numpy(), z.detach().numpy())    # NaN where torch has NaN
    np.testing.assert_array_equal(t.grad.numpy(), r.grad.numpy())


def test_one_int_pair_check_serves_every_layer_op_and_kernel():
    """kernel_size / stride / padding / output_size go through minidl.pairs.as_pair everywhere:
    TypeError for a non-int, ValueError below the minimum, the argument named."""
    import inspect
    import minidl.pairs
    from minidl import nn, ops
    from minidl import functional as F
    from minidl.kernels.im2col import im2col
    from minidl.pairs import as_pair
    assert as_pair(3, "k") == (3, 3) and as_pair((2, np.int64(5)), "k", 1) == (2, 5)
    for bad, error in (((1, 2, 3), TypeError), (1.5, TypeError), (True, TypeError), ("3", TypeError),
                       ((0, 1), ValueError)):
        with pytest.raises(error, match="stride"):
            as_pair(bad, "stride", 1)
    x = np.zeros((1, 2, 8, 8), np.float32)
    for call in (lambda: F.conv2d(Tensor(x), Tensor(np.zeros((2, 2, 3, 3), np.float32)), stride=1.5),
                 lambda: F.max_pool2d(Tensor(x), 2, stride=1.5), lambda: nn.Conv2d(2, 2, 3, stride=1.5),
                 lambda: im2col(x, 3, stride=1.5),
                 lambda: ops.roi_pool(Tensor(x), Tensor(np.zeros((1, 5), np.float32)), (2, 1.5))):
        with pytest.raises(TypeError, match="must be an int or a pair of ints"):
            call()
    # no module keeps a private copy of the rule
    import minidl.functional.conv, minidl.kernels.im2col, minidl.ops._utils, minidl.vis.receptive_field  # noqa: E401
    for module in (minidl.functional.conv, minidl.kernels.im2col, minidl.ops._utils):
        assert "isinstance(v, numbers.Integral)" not in inspect.getsource(module), module.__name__
    assert "numbers.Integral" in inspect.getsource(minidl.pairs)
