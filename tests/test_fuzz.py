"""Property-based fuzzing of the public API and of the raw C++ bindings (bad input and faults).

Three properties, each checked by hypothesis over a bounded, reproducible set of generated
cases (``derandomize``; ``MINIDL_FUZZ_EXAMPLES`` scales them up for a longer hunt), each set run
in a child process so that a segfault, an abort or a hang in a kernel fails the test instead of
killing pytest:

1. ``api-arguments``: a public op called with one argument replaced by something bad (None,
   text, complex or object arrays, arrays of the wrong rank or dtype, huge/negative/odd sizes)
   returns, or raises a ValueError/TypeError whose message names the op or the argument — a
   MemoryError is accepted for a size too large to allocate, an IndexError only from indexing.
   Never an AttributeError/IndexError/ZeroDivisionError from inside, a crash or a hang.
2. ``api-values``: valid inputs in every dtype an op accepts (float16/32/64, ints, bool, NaN
   included) agree with the same op computed in float64 within the dtype's precision: nothing
   overflows silently in a small dtype and no NaN is dropped.
3. ``bindings``: ``minidl._C`` called directly with random geometry — zero, negative, huge and
   overflowing sizes, wrongly shaped, non-contiguous and misaligned arrays — raises a
   ValueError/TypeError or returns, and then agrees with the NumPy reference.

The child prints each case before running it, so a crash names the case that caused it; a
failing property is shrunk by hypothesis to a minimal case, printed in the child's output.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

EXAMPLES = int(os.environ.get("MINIDL_FUZZ_EXAMPLES", "0")) or None
PER_CASE_SECONDS = 20       # a case that takes longer is a hang


def run_child(mode, examples, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), mode, str(EXAMPLES or examples)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        out = (error.stdout or b"")
        out = out.decode() if isinstance(out, bytes) else out
        pytest.fail(f"{mode}: the fuzzing child hung (>{timeout} s); last cases:\n{out[-2000:]}")
    tail = (proc.stdout[-3000:] + "\n" + proc.stderr[-3000:]).strip()
    if proc.returncode < 0:
        pytest.fail(f"{mode}: the child crashed with signal {-proc.returncode} — the last case "
                    f"printed caused it:\n{tail}")
    assert proc.returncode == 0, f"{mode}: a property failed:\n{tail}"
    summary = [line for line in proc.stdout.splitlines() if line.startswith("SUMMARY")]
    assert summary, f"{mode}: the child ran no cases:\n{tail}"
    return summary[-1]


@pytest.mark.parametrize("mode, examples", [("api-arguments", 400), ("api-values", 150),
                                            ("bindings", 400)])
def test_fuzz(mode, examples):
    summary = run_child(mode, examples, timeout=600)
    print(summary)
    counts = dict(item.split("=") for item in summary.split()[1:])
    # Not vacuous: both the accepted and the refused outcomes occurred.
    if mode == "api-values":
        assert int(counts["compared"]) >= examples // 2, summary
    else:
        assert int(counts["ok"]) > 0 and int(counts["refused"]) > 0, summary


# ============================ the child: everything below runs there ============================

def _child(mode, examples):
    import resource
    import signal

    # Huge sizes must end in a MemoryError quickly, not in swapping: cap the address space.
    resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    class Hang(Exception):
        pass

    def on_alarm(*_):
        raise Hang(f"a case ran longer than {PER_CASE_SECONDS} s")
    signal.signal(signal.SIGALRM, on_alarm)

    from hypothesis import HealthCheck, Phase, given, settings

    tally = {}

    def record(outcome):
        tally[outcome] = tally.get(outcome, 0) + 1

    def guarded(run_case):
        """Print the case, run it under the per-case alarm (flushing first: a crash must name it)."""
        def wrapper(description, call):
            print("CASE", description[:300], flush=True)
            signal.alarm(PER_CASE_SECONDS)
            try:
                return run_case(call)
            except AssertionError as error:
                if not os.environ.get("MINIDL_FUZZ_COLLECT"):   # survey mode: list every failure
                    raise
                print("FAIL", description[:200], "->", str(error)[:300], flush=True)
                return "failed"
            finally:
                signal.alarm(0)
        return wrapper

    strategies = {"api-arguments": _api_argument_cases, "api-values": _api_value_cases,
                  "bindings": _binding_cases}[mode]
    strategy, check = strategies()
    run = guarded(check)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def property_holds(case):
        description, call = case
        record(run(description, call))

    property_holds()
    print("SUMMARY " + " ".join(f"{k}={v}" for k, v in sorted(tally.items())), flush=True)


# ---- 1. bad arguments to the public API ---------------------------------------------------------
def _api_argument_cases():
    import numpy as np
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    import minidl.functional as F
    import minidl.nn as nn
    import minidl.ops as ops
    from minidl.autograd import Tensor

    rng = np.random.default_rng(0)

    def t(*shape, dtype=np.float32, grad=True):
        return Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=grad)

    def boxes():
        return np.array([[0, 0, 4, 4], [1, 1, 5, 6], [2, 0, 7, 3]], np.float32)

    def rois():
        return np.array([[0, 0, 0, 4, 4], [1, 1, 1, 5, 6]], np.float32)

    # name -> (function, {argument: factory of a valid value}); calls are by keyword.
    table = {
        "relu": (F.relu, {"x": lambda: t(2, 3)}),
        "leaky_relu": (F.leaky_relu, {"x": lambda: t(2, 3), "negative_slope": lambda: 0.1}),
        "sigmoid": (F.sigmoid, {"x": lambda: t(2, 3)}),
        "softmax": (F.softmax, {"x": lambda: t(2, 3), "dim": lambda: 1}),
        "log_softmax": (F.log_softmax, {"x": lambda: t(2, 3), "dim": lambda: -1}),
        "exp": (F.exp, {"a": lambda: t(2, 3)}),
        "add": (F.add, {"a": lambda: t(2, 3), "b": lambda: t(2, 3)}),
        "mul": (F.mul, {"a": lambda: t(2, 3), "b": lambda: 2.0}),
        "pow": (F.pow, {"a": lambda: t(2, 3), "exponent": lambda: 2.0}),
        "maximum": (F.maximum, {"a": lambda: t(2, 3), "b": lambda: t(3)}),
        "clamp": (F.clamp, {"a": lambda: t(2, 3), "min": lambda: -1.0, "max": lambda: 1.0}),
        "where": (F.where, {"condition": lambda: np.ones((2, 3), bool), "a": lambda: t(2, 3),
                            "b": lambda: t(2, 3)}),
        "sum": (F.sum, {"x": lambda: t(2, 3, 4), "dim": lambda: 1}),
        "mean": (F.mean, {"x": lambda: t(2, 3, 4), "dim": lambda: (0, 2)}),
        "var": (F.var, {"x": lambda: t(2, 3, 4), "dim": lambda: 1}),
        "argmax": (F.argmax, {"x": lambda: t(2, 3, 4), "dim": lambda: 1}),
        "reshape": (F.reshape, {"x": lambda: t(2, 3, 4), "shape": lambda: (6, -1)}),
        "transpose": (F.transpose, {"x": lambda: t(2, 3, 4), "dim0": lambda: 0, "dim1": lambda: 2}),
        "flatten": (F.flatten, {"x": lambda: t(2, 3, 4), "start_dim": lambda: 1}),
        "squeeze": (F.squeeze, {"x": lambda: t(2, 1, 4), "axis": lambda: 1}),
        "unsqueeze": (F.unsqueeze, {"x": lambda: t(2, 3), "axis": lambda: 2}),
        "broadcast_to": (F.broadcast_to, {"x": lambda: t(1, 3), "shape": lambda: (4, 3)}),
        "pad": (F.pad, {"x": lambda: t(1, 2, 3, 3), "pad": lambda: (1, 1, 2, 0)}),
        "cat": (F.cat, {"tensors": lambda: [t(2, 3), t(1, 3)], "dim": lambda: 0}),
        "stack": (F.stack, {"tensors": lambda: [t(2, 3), t(2, 3)], "dim": lambda: 1}),
        "linear": (F.linear, {"x": lambda: t(4, 3), "weight": lambda: t(5, 3), "bias": lambda: t(5)}),
        "matmul": (F.matmul, {"a": lambda: t(4, 3), "b": lambda: t(3, 2)}),
        "conv2d": (F.conv2d, {"x": lambda: t(2, 3, 6, 6), "weight": lambda: t(4, 3, 3, 3),
                              "bias": lambda: t(4), "stride": lambda: 1, "padding": lambda: 1,
                              "dilation": lambda: 1, "groups": lambda: 1}),
        "conv_transpose2d": (F.conv_transpose2d, {"x": lambda: t(2, 3, 4, 4),
                                                  "weight": lambda: t(3, 2, 3, 3),
                                                  "stride": lambda: 2, "padding": lambda: 1,
                                                  "output_padding": lambda: 1}),
        "max_pool2d": (F.max_pool2d, {"x": lambda: t(2, 3, 6, 6), "kernel_size": lambda: 2,
                                      "stride": lambda: 2, "padding": lambda: 0}),
        "avg_pool2d": (F.avg_pool2d, {"x": lambda: t(2, 3, 6, 6), "kernel_size": lambda: 3,
                                      "stride": lambda: 1, "padding": lambda: 1}),
        "interpolate": (F.interpolate, {"x": lambda: t(1, 2, 4, 4), "scale_factor": lambda: 2,
                                        "mode": lambda: "bilinear"}),
        "dropout": (F.dropout, {"x": lambda: t(2, 3), "p": lambda: 0.5}),
        "batch_norm": (F.batch_norm, {"x": lambda: t(4, 3, 2, 2), "running_mean": lambda: np.zeros(3, np.float32),
                                      "running_var": lambda: np.ones(3, np.float32),
                                      "weight": lambda: t(3), "bias": lambda: t(3),
                                      "training": lambda: True}),
        "instance_norm": (F.instance_norm, {"x": lambda: t(2, 3, 4, 4)}),
        "cross_entropy": (F.cross_entropy, {"input": lambda: t(4, 3), "target": lambda: np.array([0, 2, 1, 1])}),
        "nll_loss": (F.nll_loss, {"input": lambda: t(4, 3), "target": lambda: np.array([0, 2, 1, 1])}),
        "multi_margin_loss": (F.multi_margin_loss, {"input": lambda: t(4, 3),
                                                    "target": lambda: np.array([0, 2, 1, 1])}),
        "mse_loss": (F.mse_loss, {"input": lambda: t(4, 3), "target": lambda: t(4, 3, grad=False)}),
        "smooth_l1_loss": (F.smooth_l1_loss, {"input": lambda: t(4, 3), "target": lambda: t(4, 3, grad=False)}),
        "bce_with_logits": (F.binary_cross_entropy_with_logits,
                            {"input": lambda: t(4, 3), "target": lambda: np.ones((4, 3), np.float32)}),
        "box_area": (ops.box_area, {"boxes": boxes}),
        "box_iou": (ops.box_iou, {"boxes1": boxes, "boxes2": boxes}),
        "box_convert": (ops.box_convert, {"boxes": boxes, "in_fmt": lambda: "xyxy",
                                          "out_fmt": lambda: "cxcywh"}),
        "clip_boxes_to_image": (ops.clip_boxes_to_image, {"boxes": boxes, "size": lambda: (5, 6)}),
        "remove_small_boxes": (ops.remove_small_boxes, {"boxes": boxes, "min_size": lambda: 1.0}),
        "encode_boxes": (ops.encode_boxes, {"reference_boxes": boxes, "proposals": boxes}),
        "decode_boxes": (ops.decode_boxes, {"rel_codes": lambda: np.zeros((3, 4), np.float32),
                                            "boxes": boxes}),
        "anchor_grid": (ops.anchor_grid, {"feature_size": lambda: (3, 3), "stride": lambda: 4,
                                          "sizes": lambda: (8, 16)}),
        "match_anchors": (ops.match_anchors, {"anchors": boxes, "gt_boxes": boxes}),
        "nms": (ops.nms, {"boxes": boxes, "scores": lambda: np.array([.9, .8, .7], np.float32),
                          "iou_threshold": lambda: 0.5}),
        "batched_nms": (ops.batched_nms, {"boxes": boxes, "scores": lambda: np.array([.9, .8, .7], np.float32),
                                          "idxs": lambda: np.array([0, 1, 0]),
                                          "iou_threshold": lambda: 0.5}),
        "roi_pool": (ops.roi_pool, {"input": lambda: t(2, 3, 8, 8), "boxes": rois,
                                    "output_size": lambda: (2, 2), "spatial_scale": lambda: 1.0}),
        "roi_align": (ops.roi_align, {"input": lambda: t(2, 3, 8, 8), "boxes": rois,
                                      "output_size": lambda: 2, "spatial_scale": lambda: 0.5,
                                      "sampling_ratio": lambda: 2, "aligned": lambda: True}),
        "nn.Conv2d": (nn.Conv2d, {"in_channels": lambda: 3, "out_channels": lambda: 4,
                                  "kernel_size": lambda: 3, "stride": lambda: 1, "padding": lambda: 1}),
        "nn.Linear": (nn.Linear, {"in_features": lambda: 3, "out_features": lambda: 4}),
        "nn.BatchNorm2d": (nn.BatchNorm2d, {"num_features": lambda: 3}),
        "nn.MaxPool2d": (nn.MaxPool2d, {"kernel_size": lambda: 2}),
        "nn.Dropout": (nn.Dropout, {"p": lambda: 0.5}),
    }

    real_dtypes = st.sampled_from([np.bool_, np.int8, np.uint8, np.int64, np.float16, np.float32,
                                   np.float64, np.complex64])
    bad_values = st.one_of(
        st.none(), st.text(max_size=4), st.booleans(), st.complex_numbers(max_magnitude=10),
        st.integers(min_value=-2**70, max_value=2**70),
        st.sampled_from([-1, 0, 1, 2, 3, 2**31, 2**40, 2**63 - 1, -2**63]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.lists(st.integers(min_value=-3, max_value=2**41), max_size=5).map(tuple),
        st.lists(st.one_of(st.integers(-2, 9), st.text(max_size=2), st.none()), max_size=4),
        st.just({"a": 1}), st.just(object()), st.just([[1, 2], [3]]),
        hnp.arrays(real_dtypes, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4)),
        st.just(np.zeros((2, 3), dtype=object)),
        hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4).map(
            lambda shape: Tensor(np.ones(shape, np.float32))),
    )
    cases = st.sampled_from(sorted(table)).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from(sorted(table[name][1])), bad_values))

    def build(case):
        name, slot, bad = case
        fn, factories = table[name]

        def call():
            _current[:] = name, slot            # for the classifier's message check
            kwargs = {k: make() for k, make in factories.items()}
            kwargs[slot] = bad
            out = fn(**kwargs)
            if isinstance(out, Tensor) and out.requires_grad:
                out.sum().backward()             # the backward pass of odd input, too
            return name, slot
        return f"{name}({slot}={bad!r:.120})", call
    return cases.map(build), _classify_argument_outcome


def _classify_argument_outcome(call):
    try:
        call()
    except (ValueError, TypeError) as error:
        name, slot = _current[0], _current[1]
        message = str(error)
        words = {name, name.split(".")[-1], slot, name.replace("bce_with_logits", "binary_cross_entropy")}
        if not any(w.lower() in message.lower() for w in words if w):
            raise AssertionError(f"{name}({slot}=...): {type(error).__name__} without naming the op "
                                 f"or the argument: {message}") from error
        return "refused"
    except MemoryError:
        return "refused"                         # a size too large to allocate: said so
    except Exception as error:
        raise AssertionError(f"{_current[0]}({_current[1]}=...): {type(error).__name__} from "
                             f"inside instead of a ValueError/TypeError: {error}") from error
    return "ok"


_current = ["", ""]


# ---- 2. valid inputs in every dtype vs float64 ----------------------------------------------------
def _api_value_cases():
    import numpy as np
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    import minidl.functional as F
    import minidl.ops as ops
    from minidl.autograd import Tensor

    def close(got, expected, dtype, what):
        got = np.asarray(got.data if isinstance(got, Tensor) else got, dtype=np.float64)
        tol = {2: 2e-3, 4: 2e-5, 8: 1e-12}.get(np.dtype(dtype).itemsize, 2e-5) \
            if np.dtype(dtype).kind == "f" else 2e-5
        assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
        same_nan = np.array_equal(np.isnan(got), np.isnan(expected))
        assert same_nan, f"{what}: NaNs differ: got {got}, float64 gives {expected}"
        fine = np.isfinite(expected)
        assert np.array_equal(np.isfinite(got), fine) or not fine.all(), \
            f"{what}: non-finite results where float64 has none: {got} vs {expected}"
        err = np.abs(got[fine] - expected[fine]) / np.maximum(1, np.abs(expected[fine]))
        assert err.size == 0 or err.max() <= tol, f"{what}: error {err.max():.2e} > {tol:.0e}"

    small = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
    dtypes = st.sampled_from([np.bool_, np.int8, np.uint8, np.int32, np.float16, np.float32,
                              np.float64])
    unary = {"exp": (F.exp, np.exp), "sigmoid": (F.sigmoid, lambda v: 1 / (1 + np.exp(-v))),
             "tanh": (F.tanh, np.tanh), "sqrt": (F.sqrt, lambda v: np.sqrt(np.abs(v))),
             "log": (F.log, lambda v: np.log(np.abs(v) + 1))}

    def elementwise_case(data):
        name, dtype, shape, seed = data
        fn, reference = unary[name]
        values = np.random.default_rng(seed).uniform(-4, 4, shape)
        x = values.astype(dtype)
        if name in ("sqrt", "log"):
            x = np.abs(x) + (1 if name == "log" else 0)
            x = x.astype(dtype)

        def call():
            got = fn(Tensor(x))
            expected = reference(x.astype(np.float64)) if name not in ("sqrt", "log") else \
                (np.sqrt(x.astype(np.float64)) if name == "sqrt" else np.log(x.astype(np.float64)))
            assert got.dtype.kind == "f", f"{name} of {np.dtype(dtype)} gave dtype {got.dtype}"
            close(got, expected, got.dtype if np.dtype(dtype).kind == "f" else np.float32,
                  f"{name}({np.dtype(dtype)})")
        return f"{name} dtype={np.dtype(dtype)} shape={shape} seed={seed}", call

    def select_case(data):
        which, dtype, shape, seed = data
        r = np.random.default_rng(seed)
        a, b = r.integers(-3, 4, shape).astype(np.float64), r.integers(-3, 4, shape).astype(np.float64)
        a[r.random(shape) < 0.3], b[r.random(shape) < 0.3] = np.nan, np.nan
        a, b = a.astype(dtype), b.astype(dtype)

        def call():
            fn, reference = (F.maximum, np.maximum) if which == "maximum" else (F.minimum, np.minimum)
            ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
            out = fn(ta, tb)
            close(out, reference(a.astype(np.float64), b.astype(np.float64)), dtype, which)
            out.sum().backward()
            # PyTorch's rule: split on ties, both in full where a NaN is involved, never lost.
            total = ta.grad.numpy() + tb.grad.numpy()
            expected_total = np.where(np.isnan(a) | np.isnan(b), 2.0, 1.0)
            assert np.array_equal(total, expected_total), f"{which}: gradients sum to {total}"
        return f"{which} dtype={np.dtype(dtype)} shape={shape} seed={seed}", call

    box_dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.uint8, np.int16,
                                  np.int32])

    def random_boxes(r, n, dtype):
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
        high = 300.0 if info is None else min(info.max, 300)
        low = 0.0 if info is None or info.min == 0 else max(info.min, -100)
        xy = r.uniform(low, high, (n, 2))
        wh = r.uniform(0, high - xy.max(), (n, 2)) if high > xy.max() else np.zeros((n, 2))
        b = np.concatenate([xy, np.minimum(xy + wh, high)], axis=1)
        return np.round(b).astype(dtype) if info is not None else b.astype(dtype)

    def boxes_case(data):
        what, dtype, n, seed = data
        r = np.random.default_rng(seed)
        b1, b2 = random_boxes(r, n, dtype), random_boxes(r, n + 1, dtype)

        def call():
            wide1, wide2 = b1.astype(np.float64), b2.astype(np.float64)
            if what == "box_area":
                expected = np.maximum(wide1[:, 2] - wide1[:, 0], 0) * np.maximum(wide1[:, 3] - wide1[:, 1], 0)
                close(ops.box_area(b1), expected, np.float32, f"box_area({np.dtype(dtype)})")
            elif what == "box_iou":
                close(ops.box_iou(b1, b2), ops.box_iou(wide1, wide2), np.float32,
                      f"box_iou({np.dtype(dtype)})")
            elif np.dtype(dtype).kind == "f":      # nms takes floating-point boxes
                scores = r.permutation(n).astype(np.float32)
                iou = ops.box_iou(wide1, wide1)
                if np.any(np.abs(iou - 0.5) < 1e-3):
                    return                          # too close to the threshold to compare
                got = ops.nms(b1, scores, 0.5)
                expected = ops.nms(wide1, scores.astype(np.float64), 0.5)
                assert np.array_equal(got, expected), \
                    f"nms({np.dtype(dtype)}) keeps {got}, float64 keeps {expected}"
        return f"{what} dtype={np.dtype(dtype)} n={n} seed={seed}", call

    def roi_case(data):
        which, seed, ratio, aligned = data
        r = np.random.default_rng(seed)
        x = r.standard_normal((2, 3, 9, 7))
        k = 4
        corners = r.uniform(-6, 14, (k, 4))           # RoIs partly or wholly outside the map too
        rois = np.concatenate([r.integers(0, 2, (k, 1)), np.minimum(corners[:, :2], corners[:, 2:]),
                               np.maximum(corners[:, :2], corners[:, 2:])], axis=1)

        def call():
            if which == "roi_align":
                got = ops.roi_align(Tensor(x.astype(np.float32)), rois.astype(np.float32), (3, 2),
                                    0.75, ratio, aligned)
                expected = ops.roi_align(Tensor(x), rois, (3, 2), 0.75, ratio, aligned)
            else:
                got = ops.roi_pool(Tensor(x.astype(np.float32)), rois.astype(np.float32), (3, 2), 0.75)
                expected = ops.roi_pool(Tensor(x), rois, (3, 2), 0.75)
            close(got, expected.numpy(), np.float32, which)
        return f"{which} seed={seed} sampling_ratio={ratio} aligned={aligned}", call

    def conv_case(data):
        seed, stride, padding, dilation = data
        r = np.random.default_rng(seed)
        x, w, b = r.standard_normal((2, 3, 7, 6)), r.standard_normal((4, 3, 3, 2)), r.standard_normal(4)

        def call():
            try:
                expected = F.conv2d_naive(Tensor(x), Tensor(w), Tensor(b), stride, padding, dilation)
            except ValueError:
                return                             # a kernel larger than the input: refused
            got = F.conv2d(Tensor(x.astype(np.float32)), Tensor(w.astype(np.float32)),
                           Tensor(b.astype(np.float32)), stride, padding, dilation)
            close(got, expected.numpy(), np.float32, "conv2d")
        return f"conv2d seed={seed} stride={stride} padding={padding} dilation={dilation}", call

    seeds = st.integers(0, 2**16)
    cases = st.one_of(
        st.tuples(st.sampled_from(sorted(unary)), dtypes, small, seeds).map(elementwise_case),
        st.tuples(st.sampled_from(["maximum", "minimum"]), st.sampled_from([np.float16, np.float32, np.float64]),
                  small, seeds).map(select_case),
        st.tuples(st.sampled_from(["box_area", "box_iou", "nms"]), box_dtypes, st.integers(1, 12),
                  seeds).map(boxes_case),
        st.tuples(st.sampled_from(["roi_align", "roi_pool"]), seeds, st.sampled_from([-1, 0, 1, 2, 3]),
                  st.booleans()).map(roi_case),
        st.tuples(seeds, st.integers(1, 3), st.integers(0, 2), st.integers(1, 3)).map(conv_case),
    )

    def check(call):
        call()
        return "compared"
    return cases, check


# ---- 3. the raw bindings -------------------------------------------------------------------------
def _binding_cases():
    import functools

    import numpy as np
    import raw_bindings as raw
    from hypothesis import strategies as st

    from minidl import _C
    from minidl.kernels import im2col as im2col_kernels
    from minidl.kernels import nms as nms_kernels
    from minidl.kernels import roi_align as roi_align_kernels
    from minidl.kernels import roi_pool as roi_pool_kernels
    from minidl.kernels import winograd as winograd_kernels

    # Half the cases valid (they must then match the reference), half not (they must be refused).
    sizes = st.one_of(st.integers(-2, 5), st.sampled_from([2**31, 2**32 + 1, 2**62, 2**63 - 1, -2**63]))
    valid_geometry = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2),
                               st.integers(0, 1), st.integers(0, 1), st.integers(1, 2), st.integers(1, 2))
    geometries = st.one_of(valid_geometry, st.tuples(*[sizes] * 8))
    dims = st.integers(0, 4)
    dtypes = st.sampled_from([np.float32, np.float64, np.float32, np.float64, np.float16, np.int32])
    layouts = st.sampled_from(["contiguous"] * 4 + ["transposed", "misaligned", "strided"])

    def array(shape, dtype, layout, r):
        data = r.standard_normal(shape).astype(dtype)
        if layout == "transposed" and data.ndim >= 2:
            return np.swapaxes(np.ascontiguousarray(np.swapaxes(data, -1, -2)), -1, -2)
        if layout == "misaligned" and data.size:
            raw = np.zeros(data.nbytes + 1, np.uint8)
            view = np.frombuffer(raw.data, dtype=data.dtype, count=data.size, offset=1).reshape(shape)
            view[...] = data
            return view
        if layout == "strided" and data.ndim >= 1:
            wide = np.repeat(data, 2, axis=-1)
            return wide[..., ::2]
        return data

    def run_binding(must_accept, fn, *args):
        """Call a binding; a valid call on contiguous float32/64 arrays must not be refused."""
        try:
            return fn(*args)
        except (ValueError, TypeError) as error:
            if must_accept:
                raise AssertionError(f"a valid call was refused: {error}") from error
            raise

    def conv_geometry_case(data):
        op, shape, geometry, rows_delta, dtype, layout, seed = data
        kh, kw, sh, sw, ph, pw, dh, dw = geometry
        r = np.random.default_rng(seed)
        x = array(shape, dtype, layout, r)

        def valid():
            try:
                k, s, p, d = im2col_kernels.check_geometry(shape, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
                rows, cols = im2col_kernels.column_shape(shape, k, s, p, d)
            except (ValueError, TypeError, OverflowError):
                return None
            return (k, s, p, d), (rows, cols)

        def call():
            geom = valid()
            rows, columns = geom[1] if geom and max(geom[1]) < 10**6 else (0, 0)
            cols_shape = (max(rows + rows_delta, 0), columns)
            cols = array(cols_shape, dtype, layout, r)
            args = (kh, kw, sh, sw, ph, pw, dh, dw)
            right_shape = geom is not None and cols_shape == tuple(geom[1])
            must_accept = right_shape and layout in ("contiguous",) \
                and np.dtype(dtype) in (np.float32, np.float64) and max(geom[1]) < 10**6
            binding = functools.partial(getattr(_C, op.split()[0]), fast=op.endswith("fast"))
            if op.startswith("im2col"):
                run_binding(must_accept, binding, x, cols, *args)
                assert right_shape, f"{op} accepted an invalid call (geometry {args}, cols {cols_shape})"
                expected = im2col_kernels.im2col_reference(np.asarray(x, np.float64), *geom[0])
                assert np.allclose(cols, expected, atol=1e-3), f"{op} differs from the reference"
            else:
                out = np.zeros(shape, dtype)
                run_binding(must_accept, binding, cols, out, *args)
                assert right_shape, f"{op} accepted an invalid call (geometry {args}, cols {cols_shape})"
                expected = im2col_kernels.col2im_reference(np.asarray(cols, np.float64), shape, *geom[0])
                assert np.allclose(out, expected, atol=1e-3), f"{op} differs from the reference"
        return (f"{op} x{shape} {np.dtype(dtype)} {layout} geometry={geometry} "
                f"rows_delta={rows_delta}"), call

    def roi_case(data):
        op, channels, pooled, ratio, scale, corners, batch_index, dtype, layout, seed = data
        r = np.random.default_rng(seed)
        x = array((2, channels, 6, 5), dtype, layout, r)
        rois = np.array([[batch_index] + list(corners)], dtype=dtype if dtype != np.int32 else np.float32)

        def call():
            ph, pw = pooled
            if op == "roi_align_forward":
                out = raw.roi_align_forward(x, rois, scale, ph, pw, ratio, True)
                expected = roi_align_kernels.roi_align_reference(np.asarray(x, np.float64),
                                                                 rois.astype(np.float64), (ph, pw),
                                                                 scale, ratio, True)
            elif op == "roi_align_backward":
                grad = array((1, channels, ph, pw) if min(ph, pw) > 0 and ph * pw < 10**6 else (1, channels, 1, 1),
                             dtype, layout, r)
                out = raw.roi_align_backward(grad, rois, scale, 2, 6, 5, ratio, True)
                expected = roi_align_kernels.roi_align_backward_reference(
                    np.asarray(grad, np.float64), rois.astype(np.float64), (2, channels, 6, 5), scale,
                    ratio, True)
            else:
                out, _ = raw.roi_pool_forward(x, rois, scale, ph, pw)
                expected, _ = roi_pool_kernels.roi_pool_reference(np.asarray(x, np.float64),
                                                                  rois.astype(np.float64), (ph, pw), scale)
            assert np.allclose(out, expected, atol=1e-3), f"{op} differs from the reference"
        return (f"{op} C={channels} pooled={pooled} sampling_ratio={ratio} scale={scale} "
                f"corners={corners} batch={batch_index} {np.dtype(dtype)} {layout}"), call

    def nms_case(data):
        n, seed, nan_at, dtype, layout, with_labels, label_shape = data
        r = np.random.default_rng(seed)
        xy = r.uniform(0, 50, (n, 2))
        boxes = np.concatenate([xy, xy + r.uniform(0, 30, (n, 2))], axis=1)
        if n and nan_at is not None:
            boxes[nan_at % n, nan_at % 4] = np.nan
        boxes = array(boxes.shape, dtype, layout, r) * 0 + boxes.astype(dtype) if n else boxes.astype(dtype)
        scores = r.random(n).astype(dtype if dtype != np.int32 else np.float32)
        labels = r.integers(0, 3, label_shape if label_shape else n).astype(np.int64) if with_labels else None

        def call():
            keeps = [raw.nms(boxes, scores, 0.5, labels, fast=fast) for fast in (True, False)]
            expected = nms_kernels.nms_reference(np.asarray(boxes, np.float64), scores.astype(np.float64),
                                                 0.5, labels)
            for fast, keep in zip((True, False), keeps):
                assert np.array_equal(np.sort(keep), np.sort(expected)), \
                    f"nms (fast={fast}) keeps {keep}, reference {expected}"
        return f"nms n={n} nan_at={nan_at} {np.dtype(dtype)} {layout} labels={with_labels} {label_shape}", call

    conv_cases = st.tuples(
        st.sampled_from(["im2col fast", "im2col body", "col2im fast", "col2im body"]),
        st.tuples(dims, dims, st.integers(0, 6), st.integers(0, 6)),
        geometries, st.sampled_from([0, 0, 0, -1, 1]), dtypes, layouts,
        st.integers(0, 2**16)).map(conv_geometry_case)
    roi_cases = st.tuples(
        st.sampled_from(["roi_align_forward", "roi_align_backward", "roi_pool_forward"]),
        st.integers(0, 3), st.one_of(st.tuples(st.integers(1, 3), st.integers(1, 3)), st.tuples(sizes, sizes)),
        st.one_of(st.integers(-2, 4), st.sampled_from([300, 20000, 2**40])),
        st.sampled_from([1.0, 0.5, 1.0, 0.5, 0.0, -1.0, float("nan"), float("inf"), 1e30]),
        st.tuples(*[st.floats(-20, 30)] * 4), st.sampled_from([0, 1, 0, 1, -1, 2, 0.5]), dtypes, layouts,
        st.integers(0, 2**16)).map(roi_case)
    nms_cases = st.tuples(
        st.integers(0, 30), st.integers(0, 2**16), st.one_of(st.none(), st.integers(0, 100)),
        dtypes, layouts, st.booleans(), st.sampled_from([None, None, (3,), (1, 1)])).map(nms_case)

    def winograd_case(data):
        op, shape, padding, fast, dtype, layout, seed = data
        r = np.random.default_rng(seed)
        x = array(shape, dtype, layout, r)

        def call():
            n, c, h, w = shape
            ph, pw = padding
            valid = min(shape) >= 0 and 0 <= ph <= 2 and 0 <= pw <= 2 and h + 2 * ph >= 3 and w + 2 * pw >= 3
            oh, ow = (h + 2 * ph - 2, w + 2 * pw - 2) if valid else (1, 1)
            p = n * (-(-oh // 2)) * (-(-ow // 2))
            must_accept = valid and layout == "contiguous" and np.dtype(dtype) in (np.float32, np.float64)
            out_dtype = dtype if np.dtype(dtype).kind == "f" else np.float32
            if op == "input_transform":
                v = np.full((16, max(c, 0), p), np.nan, out_dtype)
                run_binding(must_accept, functools.partial(_C.winograd_input_transform, fast=fast), x, v, ph, pw)
                assert valid, f"winograd_input_transform accepted padding {padding} for {shape}"
                expected = winograd_kernels.input_transform_reference(np.asarray(x, np.float64), padding)
                assert np.allclose(v, expected, atol=1e-2), "winograd_input_transform differs from the reference"
            else:                                  # the input adjoint: x is dV's (16, C, P) stand-in
                dv = array((16, max(c, 0), p), dtype, layout, r)
                dx = np.full((max(n, 0), max(c, 0), max(h, 0), max(w, 0)), np.nan, out_dtype)
                run_binding(must_accept, functools.partial(_C.winograd_input_adjoint, fast=fast), dv, dx, ph, pw)
                assert valid, f"winograd_input_adjoint accepted padding {padding} for {shape}"
                expected = winograd_kernels.input_adjoint_reference(np.asarray(dv, np.float64), padding,
                                                                   np.empty(dx.shape))
                assert np.allclose(dx, expected, atol=1e-2), "winograd_input_adjoint differs from the reference"
        return (f"winograd {op} x{shape} padding={padding} fast={fast} {np.dtype(dtype)} {layout}"), call

    winograd_cases = st.tuples(
        st.sampled_from(["input_transform", "input_adjoint"]),
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 7), st.integers(0, 7)),
        st.tuples(st.integers(-1, 3), st.integers(-1, 3)), st.booleans(),
        dtypes, layouts, st.integers(0, 2**16)).map(winograd_case)

    def check(call):
        try:
            call()
        except (ValueError, TypeError):
            return "refused"
        except AssertionError:
            raise
        except MemoryError:
            return "refused"
        except Exception as error:
            raise AssertionError(f"{type(error).__name__} from a binding: {error}") from error
        return "ok"
    return st.one_of(conv_cases, roi_cases, nms_cases, winograd_cases), check


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
