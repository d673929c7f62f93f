"""GPU timings: conv2d forward+backward, nms, roi_pool and roi_align — minidl vs PyTorch/torchvision CUDA.

Run through ``bash benchmarks/gpu.sh`` on a machine with a CUDA GPU and CuPy. Prints a Markdown
table (ms, medians of interleaved rounds, GPU synchronized around each call) to paste into
docs/gpu.md. PyTorch/torchvision columns are skipped when they are not installed.

Targets (issue 6): conv2d fwd+bwd at batch 64, 64 channels, 32×32 ≤ 2× PyTorch (cuDNN); nms and
the RoI ops no slower than torchvision CUDA.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_medians  # noqa: E402

import minidl  # noqa: E402
import minidl.functional as F  # noqa: E402
from minidl import backend, ops  # noqa: E402


def synced(fn, sync):
    def run():
        fn()
        sync()
    return run


def random_boxes(rng, n, size=800.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(10, 200, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def cases(rng):
    """name -> (minidl callable factory, torch callable factory)."""
    x = rng.standard_normal((64, 64, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
    feat = rng.standard_normal((2, 256, 50, 50)).astype(np.float32)
    k = 512
    img = rng.integers(0, 2, k)
    b = random_boxes(rng, k, 800.0)
    rois = np.concatenate([img[:, None], b], 1).astype(np.float32)
    out = {}
    for n in (1000, 5000, 20000):
        boxes, scores = random_boxes(rng, n), rng.random(n).astype(np.float32)
        out[f"nms N={n} iou=0.5"] = ("nms", boxes, scores)
    out["conv2d fwd+bwd 64x64x32x32->64 k3"] = ("conv", x, w)
    out["roi_pool fwd+bwd (2,256,50,50) 512 RoIs 7x7"] = ("roi_pool", feat, rois)
    out["roi_align fwd+bwd (2,256,50,50) 512 RoIs 7x7"] = ("roi_align", feat, rois)
    return out


def minidl_fn(kind, a, b):
    if kind == "nms":
        boxes, scores = minidl.tensor(a, device="cuda"), minidl.tensor(b, device="cuda")
        return lambda: ops.nms(boxes, scores, 0.5)
    x = minidl.tensor(a, device="cuda", requires_grad=True)
    if kind == "conv":
        w = minidl.tensor(b, device="cuda", requires_grad=True)
        return lambda: F.conv2d(x, w, None, 1, 1).sum().backward()
    rois = minidl.tensor(b, device="cuda")
    op = ops.roi_pool if kind == "roi_pool" else ops.roi_align
    return lambda: op(x, rois, (7, 7), 1 / 16).sum().backward()


def torch_fn(torch, tv, kind, a, b):
    dev = "cuda"
    if kind == "nms":
        boxes, scores = torch.tensor(a, device=dev), torch.tensor(b, device=dev)
        return lambda: tv.ops.nms(boxes, scores, 0.5)
    x = torch.tensor(a, device=dev, requires_grad=True)
    if kind == "conv":
        w = torch.tensor(b, device=dev, requires_grad=True)
        return lambda: torch.nn.functional.conv2d(x, w, None, 1, 1).sum().backward()
    rois = torch.tensor(b, device=dev)
    op = tv.ops.roi_pool if kind == "roi_pool" else tv.ops.roi_align
    return lambda: op(x, rois, (7, 7), 1 / 16).sum().backward()


def main():
    if not minidl.cuda_available():
        print("no CUDA GPU available (CuPy + device): nothing to time")
        return 1
    try:
        import torch
        import torchvision as tv
        has_torch = torch.cuda.is_available()
    except ImportError:
        torch = tv = None
        has_torch = False
    import cupy
    print(f"GPU: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}, "
          f"minidl kernels {minidl.kernels.available()}")
    rng = np.random.default_rng(0)
    print("| case | minidl ms | torch ms | ratio |")
    print("|---|---|---|---|")
    for name, (kind, a, b) in cases(rng).items():
        cands = {"minidl": synced(minidl_fn(kind, a, b), backend.synchronize)}
        if has_torch:
            cands["torch"] = synced(torch_fn(torch, tv, kind, a, b), torch.cuda.synchronize)
        t = interleaved_medians(cands, rounds=15, repeats=3, pause=0.05)
        tt = t.get("torch")
        ratio = f"{t['minidl'] / tt:.2f}" if tt else "-"
        print(f"| {name} | {t['minidl'] * 1e3:.3f} | {tt * 1e3 if tt else float('nan'):.3f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
