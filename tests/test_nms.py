"""nms / batched_nms: C++ == NumPy reference == torchvision, exact-threshold cases, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import kernels, ops
from minidl.kernels.nms import nms_reference

import raw_bindings as raw

native = pytest.mark.skipif(not kernels.available()["cpu"], reason="minidl._C is not built")
THRESHOLDS = [0.0, 0.3, 1 / 3, 0.5, 2 / 3, 0.7, 1.0]


def integer_boxes(rng, n, dtype, span=12):
    """Boxes on a small integer grid: exact ties in IoU, identical boxes, empty and tiny boxes."""
    xy = rng.integers(0, span, (n, 2))
    wh = rng.choice([0, 1, 1, 2, 3, 5, 8, 2 * span], (n, 2))     # empty, tiny and huge boxes
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def random_boxes(rng, n, dtype=np.float32, size=800.0, max_side=200.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, max_side, (n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, size)], axis=1).astype(dtype)


@native
@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 150), seed=st.integers(0, 10**6), threshold=st.sampled_from(THRESHOLDS),
       dtype=st.sampled_from([np.float32, np.float64]), labelled=st.booleans())
def test_native_equals_reference(n, seed, threshold, dtype, labelled):
    rng = np.random.default_rng(seed)
    boxes = integer_boxes(rng, n, dtype)
    scores = rng.integers(0, 4, n).astype(dtype)                  # many equal scores
    labels = rng.integers(0, 3, n) if labelled else None
    expected = nms_reference(boxes, scores, threshold, labels)
    # Both C++ forms: "native" (nms_cpu_fast.cpp, lazy words) and "body" (nms_cpu.cpp, every
    # word by the body of nms.h that the CUDA kernel calls, then the walk).
    for form in ("native", "body"):
        with kernels.using(form):
            got = kernels.nms.nms(boxes, scores, threshold, labels)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected, err_msg=form)


@native
@pytest.mark.parametrize("n, threshold", [(3000, 0.5), (12000, 0.7)])
def test_native_equals_reference_many_boxes(n, threshold):
    """Thousands of boxes: many steps of the walker; from 8,192 boxes on, helper threads too."""
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, n, max_side=120 if n < 5000 else 400)
    scores = rng.random(n).astype(np.float32)
    expected = nms_reference(boxes, scores, threshold)
    for _ in range(3):                                   # whatever the threads' timing
        np.testing.assert_array_equal(kernels.nms.nms(boxes, scores, threshold), expected)
    with kernels.using("body"):                          # the textbook form: the full mask
        np.testing.assert_array_equal(kernels.nms.nms(boxes, scores, threshold), expected)


def test_reference_is_greedy_nms_by_definition():
    """The reference against the textbook O(N²) loop over all pairs."""
    rng = np.random.default_rng(2)
    boxes, scores = random_boxes(rng, 60, np.float64, 100, 50), rng.random(60)
    iou = ops.box_iou(boxes, boxes)
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if all(iou[i, j] <= 0.4 for j in keep):
            keep.append(i)
    np.testing.assert_array_equal(nms_reference(boxes, scores, 0.4), keep)


@pytest.mark.parametrize("mode", ["native", "body", "reference"])
def test_iou_exactly_at_threshold_is_kept(mode):
    boxes = np.array([[0, 0, 4, 1], [0, 0, 2, 1]], np.float32)   # IoU = 2/4 exactly
    scores = np.array([0.9, 0.8], np.float32)
    with kernels.using(mode):
        assert ops.nms(boxes, scores, 0.5).tolist() == [0, 1]      # not > 0.5: kept
        assert ops.nms(boxes, scores, 0.4999).tolist() == [0]


@pytest.mark.parametrize("mode", ["native", "body", "reference"])
def test_threshold_compared_in_float64_like_torchvision(mode):
    """IoU 1/3 in float32 is 0.33333334 > 1/3 in float64: suppressed, as in torchvision's CPU
    kernel; a float32 comparison (0.33333334 > float32(1/3)) would keep it."""
    boxes = np.array([[0, 0, 3, 1], [0, 0, 1, 1]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    with kernels.using(mode):
        assert ops.nms(boxes, scores, 1 / 3).tolist() == [0]


@pytest.mark.parametrize("mode", ["native", "body", "reference"])
def test_equal_scores_break_ties_by_index(mode):
    boxes = np.array([[0, 0, 10, 10]] * 3 + [[50, 50, 60, 60]] * 2, np.float32)
    scores = np.ones(5, np.float32)
    with kernels.using(mode):
        assert ops.nms(boxes, scores, 0.5).tolist() == [0, 3]      # identical boxes: first wins


@pytest.mark.parametrize("mode", ["native", "body", "reference"])
def test_inverted_and_empty_boxes_never_suppress(mode):
    boxes = np.array([[10, 10, 0, 0], [10, 10, 0, 0], [5, 5, 5, 5], [5, 5, 5, 5]], np.float32)
    with kernels.using(mode):
        assert sorted(ops.nms(boxes, np.arange(4, dtype=np.float32), 0.5).tolist()) == [0, 1, 2, 3]
        assert ops.box_area(boxes).tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("mode", ["native", "reference"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_empty_input_gives_empty_int64(mode, as_tensor):
    boxes, scores = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    if as_tensor:
        boxes, scores = minidl.tensor(boxes), minidl.tensor(scores)
    with kernels.using(mode):
        for keep in (ops.nms(boxes, scores, 0.5), ops.batched_nms(boxes, scores, np.zeros(0, np.int64), 0.5)):
            assert isinstance(keep, minidl.Tensor) == as_tensor
            assert keep.shape == (0,) and keep.dtype == np.int64


@pytest.mark.parametrize("mode", ["native", "body", "reference"])
def test_batched_nms_never_suppresses_across_categories(mode):
    boxes = np.array([[0, 0, 10, 10]] * 4, np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    with kernels.using(mode):
        assert ops.batched_nms(boxes, scores, np.array([0, 1, 0, 2]), 0.5).tolist() == [0, 1, 3]


@native
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 10**6), threshold=st.sampled_from(THRESHOLDS),
       categories=st.integers(1, 6))
def test_batched_nms_native_equals_per_category_reference(n, seed, threshold, categories):
    rng = np.random.default_rng(seed)
    boxes = integer_boxes(rng, n, np.float32)
    scores = rng.integers(0, 5, n).astype(np.float32)
    idxs = rng.integers(-2, categories, n)
    expected = np.zeros(n, bool)
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        expected[members[nms_reference(boxes[members], scores[members], threshold)]] = True
    expected = np.flatnonzero(expected)
    expected = expected[np.argsort(-scores[expected], kind="stable")]
    for form in ("native", "body"):
        with kernels.using(form):
            np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, threshold), expected,
                                          err_msg=form)


@pytest.mark.parametrize("n", [200, 1500, 9000])   # coordinate trick / per-category loop; threads
def test_batched_nms_reference_strategies_agree_with_native(n):
    rng = np.random.default_rng(n)
    boxes = random_boxes(rng, n, max_side=150) - 100      # negative coordinates too
    scores, idxs = rng.random(n).astype(np.float32), rng.integers(0, 7, n)
    with kernels.using("reference"):
        reference = ops.batched_nms(boxes, scores, idxs, 0.5)
    np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, 0.5), reference)


# ---- torchvision -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["native", "body", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nms_matches_torchvision(mode, dtype):
    torch = pytest.importorskip("torch", reason="torch is only used to compare with torchvision")
    tv = pytest.importorskip("torchvision", reason="comparison with torchvision's nms")
    rng = np.random.default_rng(3)
    cases = [(random_boxes(rng, 2000, dtype), rng.random(2000).astype(dtype)),
             (integer_boxes(rng, 400, dtype), rng.integers(0, 6, 400).astype(dtype))]  # ties
    for boxes, scores in cases:
        for threshold in (0.3, 1 / 3, 0.5, 0.7):
            expected = tv.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
            with kernels.using(mode):
                np.testing.assert_array_equal(ops.nms(boxes, scores, threshold), expected.numpy())


@pytest.mark.parametrize("n", [300, 3000])
def test_batched_nms_matches_torchvision(n):
    torch = pytest.importorskip("torch", reason="torch is only used to compare with torchvision")
    tv = pytest.importorskip("torchvision", reason="comparison with torchvision's batched_nms")
    rng = np.random.default_rng(n)
    boxes, idxs = random_boxes(rng, n), rng.integers(0, 20, n)
    scores = (rng.permutation(n) / n).astype(np.float32)   # distinct: torchvision's final sort is unstable
    expected = tv.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                  torch.from_numpy(idxs), 0.5).numpy()
    for mode in ("native", "body", "reference"):
        with kernels.using(mode):
            np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, 0.5), expected)


# ---- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("boxes, scores, threshold, error, match", [
    (np.zeros((3, 3), np.float32), np.zeros(3, np.float32), 0.5, ValueError, "boxes"),
    (np.zeros((3, 4), np.float32), np.zeros(2, np.float32), 0.5, ValueError, "scores"),
    (np.zeros((3, 4), np.int64), np.zeros(3, np.float32), 0.5, TypeError, "boxes"),
    (np.array([[0, 0, np.nan, 1]], np.float32), np.zeros(1, np.float32), 0.5, ValueError, "boxes"),
    (np.array([[0, 0, np.inf, 1]], np.float32), np.zeros(1, np.float32), 0.5, ValueError, "boxes"),
    (np.zeros((1, 4), np.float32), np.array([np.nan], np.float32), 0.5, ValueError, "scores"),
    (np.zeros((1, 4), np.float32), np.array([-np.inf], np.float32), 0.5, ValueError, "scores"),
    (np.zeros((1, 4), np.float32), np.zeros(1, np.float32), float("nan"), ValueError, "iou_threshold"),
])
def test_bad_input_raises_naming_the_argument(boxes, scores, threshold, error, match):
    with pytest.raises(error, match=match):
        ops.nms(boxes, scores, threshold)


def test_batched_nms_rejects_bad_idxs():
    boxes, scores = np.zeros((3, 4), np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="idxs"):
        ops.batched_nms(boxes, scores, np.zeros(2, np.int64), 0.5)
    with pytest.raises(ValueError, match="idxs"):
        ops.batched_nms(boxes, scores, np.zeros(3, np.float32), 0.5)


@native
def test_kernel_survives_non_finite_values_given_directly():
    """The op rejects NaN/inf; the C++ kernel called directly must still stay in bounds and give
    a defined, reproducible answer (NaN scores sort last)."""
    rng = np.random.default_rng(4)
    boxes = random_boxes(rng, 300, max_side=300)
    scores = rng.random(300).astype(np.float32)
    boxes[::7, rng.integers(0, 4)] = np.nan
    boxes[3::11, 2] = np.inf
    boxes[5::13, 0] = -np.inf
    scores[::5] = np.nan
    for labels in (None, rng.integers(0, 3, 300)):
        keep = raw.nms(boxes, scores, 0.5, labels)
        assert keep.dtype == np.int64 and len(np.unique(keep)) == len(keep)
        assert ((keep >= 0) & (keep < 300)).all()
        np.testing.assert_array_equal(raw.nms(boxes, scores, 0.5, labels), keep)
        np.testing.assert_array_equal(raw.nms(boxes, scores, 0.5, labels, fast=False), keep)
        finite_first = np.isfinite(scores[keep])
        assert not (~finite_first[:-1] & finite_first[1:]).any()        # NaN scores come last


@native
def test_kernel_checks_shapes_and_dtypes():
    with pytest.raises(ValueError, match="boxes"):
        raw.nms(np.zeros((2, 5), np.float32), np.zeros(2, np.float32), 0.5)
    with pytest.raises(TypeError, match="scores"):
        raw.nms(np.zeros((2, 4), np.float32), np.zeros(2, np.float64), 0.5)
    with pytest.raises(ValueError, match="labels"):
        raw.nms(np.zeros((2, 4), np.float32), np.zeros(2, np.float32), 0.5, np.zeros(3, np.int64))


def test_nms_on_device_matches_cpu(device):
    rng = np.random.default_rng(5)
    boxes, scores = integer_boxes(rng, 500, np.float32), rng.integers(0, 9, 500).astype(np.float32)
    idxs = rng.integers(0, 4, 500)
    expected = ops.nms(boxes, scores, 0.5), ops.batched_nms(boxes, scores, idxs, 0.5)
    b, s, i = (minidl.tensor(a, device=device) for a in (boxes, scores, idxs))
    got = ops.nms(b, s, 0.5), ops.batched_nms(b, s, i, 0.5)
    for e, g in zip(expected, got):
        assert g.device == device
        np.testing.assert_array_equal(g.numpy(), e)
