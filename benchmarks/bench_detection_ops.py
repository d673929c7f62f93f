"""Detection kernels: nms, batched_nms, roi_pool, roi_align — NumPy reference vs minidl's native
(C++/OpenMP) path vs torchvision's CPU kernels (when installed).

Cases (medians of interleaved runs, milliseconds):
  nms         N = 1,000 / 5,000 / 20,000 random boxes in an 800×800 image, IoU 0.5 and 0.7;
              boxes: top-left corner uniform in the image, width and height uniform in
              [8, 200] px, clipped to the image; scores uniform in [0, 1)
  batched_nms N = 5,000 such boxes, 20 classes, IoU 0.5
  roi_pool / roi_align forward and backward: input (2, 256, 50, 50), 512 RoIs (800×800 image,
              corners uniform, sides uniform in [16, 400] px), 7×7 output, spatial_scale 1/16
              (roi_align: sampling_ratio -1 = adaptive, aligned=False). Backward = the backward
              kernel alone (torchvision: torch.ops.torchvision._roi_*_backward).
Targets: native / torchvision <= 1.0 everywhere; nms at N = 20,000 at least 2× faster than
torchvision; roi_align backward at least 2× faster than torchvision's.

    python benchmarks/bench_detection_ops.py            (run under flock /tmp/minidl-bench.lock)
"""
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")  # before NumPy loads: see common.py

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_medians, try_import_torch  # noqa: E402

from minidl import kernels  # noqa: E402
from minidl.kernels import nms as nms_k  # noqa: E402
from minidl.kernels import roi_align as align_k  # noqa: E402
from minidl.kernels import roi_pool as pool_k  # noqa: E402

IMAGE = 800.0


def random_boxes(rng, n, min_side, max_side):
    xy = rng.uniform(0, IMAGE, (n, 2))
    wh = rng.uniform(min_side, max_side, (n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, IMAGE)], axis=1).astype(np.float32)


def nms_candidates(boxes, scores, threshold, torch, tv):
    """The three nms implementations on one input (a function, so each lambda keeps its own)."""
    fns = {"reference": lambda: nms_k.nms_reference(boxes, scores, threshold),
           "native": lambda: nms_k.nms(boxes, scores, threshold)}
    if tv:
        tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
        fns["torchvision"] = lambda: tv.ops.nms(tb, ts, threshold)
    return fns


def batched_candidates(boxes, scores, idxs, torch, tv):
    from minidl import ops

    def batched(mode):
        with kernels.using(mode):
            return ops.batched_nms(boxes, scores, idxs, 0.5)
    fns = {"reference": lambda: batched("reference"), "native": lambda: batched("native")}
    if tv:
        tb, ts, ti = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs)
        fns["torchvision"] = lambda: tv.ops.batched_nms(tb, ts, ti, 0.5)
    return fns


def nms_cases(rng, torch, tv):
    rows = []
    for n in (1000, 5000, 20000):
        boxes, scores = random_boxes(rng, n, 8, 200), rng.random(n).astype(np.float32)
        for threshold in (0.5, 0.7):
            kept = len(nms_k.nms(boxes, scores, threshold))
            rows.append((f"nms N={n:,} IoU {threshold} ({kept:,} kept)",
                         nms_candidates(boxes, scores, threshold, torch, tv), 9 if n == 20000 else 15))
    n = 5000
    boxes, scores = random_boxes(rng, n, 8, 200), rng.random(n).astype(np.float32)
    idxs = rng.integers(0, 20, n)
    rows.append((f"batched_nms N={n:,}, 20 classes, IoU 0.5",
                 batched_candidates(boxes, scores, idxs, torch, tv), 11))
    return rows


def roi_cases(rng, torch, tv):
    x = rng.standard_normal((2, 256, 50, 50)).astype(np.float32)
    rois = np.concatenate([rng.integers(0, 2, (512, 1)).astype(np.float32),
                           random_boxes(rng, 512, 16, 400)], axis=1)
    size, scale = (7, 7), 1 / 16
    grad = rng.standard_normal((512, 256, 7, 7)).astype(np.float32)
    out, argmax = pool_k.roi_pool_forward(x, rois, size, scale)
    rows = [
        ("roi_pool forward", {
            "reference": lambda: pool_k.roi_pool_reference(x, rois, size, scale),
            "native": lambda: pool_k.roi_pool_forward(x, rois, size, scale)}),
        ("roi_pool backward", {
            "reference": lambda: pool_k.roi_pool_backward_reference(grad, argmax, rois, x.shape),
            "native": lambda: pool_k.roi_pool_backward(grad, argmax, rois, x.shape)}),
        ("roi_align forward", {
            "reference": lambda: align_k.roi_align_reference(x, rois, size, scale, -1, False),
            "native": lambda: align_k.roi_align_forward(x, rois, size, scale, -1, False)}),
        ("roi_align backward", {
            "reference": lambda: align_k.roi_align_backward_reference(grad, rois, x.shape, scale, -1, False),
            "native": lambda: align_k.roi_align_backward(grad, rois, x.shape, scale, -1, False)}),
    ]
    if tv:
        tx, tr, tg = torch.from_numpy(x), torch.from_numpy(rois), torch.from_numpy(grad)
        _, targmax = torch.ops.torchvision.roi_pool(tx, tr, scale, 7, 7)
        tvops = torch.ops.torchvision
        rows[0][1]["torchvision"] = lambda: tvops.roi_pool(tx, tr, scale, 7, 7)
        rows[1][1]["torchvision"] = lambda: tvops._roi_pool_backward(tg, tr, targmax, scale, 7, 7, 2, 256, 50, 50)
        rows[2][1]["torchvision"] = lambda: tvops.roi_align(tx, tr, scale, 7, 7, -1, False)
        rows[3][1]["torchvision"] = lambda: tvops._roi_align_backward(tg, tr, scale, 7, 7, 2, 256, 50, 50, -1, False)
    return [(name, fns, 7) for name, fns in rows]


def main():
    rng = np.random.default_rng(0)
    torch = try_import_torch()
    tv = None
    if torch is not None:
        try:
            import torchvision as tv
            torch.set_num_threads(2)
        except ImportError:
            tv = None
    if not kernels.available()["cpu"]:
        print("minidl._C is not built: only the reference runs")
    columns = ["reference", "native"] + (["torchvision"] if tv else [])
    header = "| case | " + " | ".join(f"{c} ms" for c in columns) + (" | native / torchvision |" if tv else " |")
    print(header)
    print("|" + "---|" * (len(columns) + 1 + bool(tv)))
    for name, fns, rounds in nms_cases(rng, torch, tv) + roi_cases(rng, torch, tv):
        times = interleaved_medians(fns, rounds=rounds, warmup=1)
        cells = [f"{times[c] * 1e3:.1f}" for c in columns]
        ratio = f" | {times['native'] / times['torchvision']:.2f} |" if tv else " |"
        print(f"| {name} | " + " | ".join(cells) + ratio, flush=True)


if __name__ == "__main__":
    main()
