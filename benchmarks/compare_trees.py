"""Before/after timing of two minidl trees: conv, detection ops and an FCN epoch, interleaved.

    flock /tmp/minidl-bench.lock python benchmarks/compare_trees.py BEFORE_ROOT AFTER_ROOT [--processes 10]

For a refactor that must not lose speed (issue 21): each root is a checkout with its minidl._C
built in place (``MINIDL_NO_CUDA=1 python setup.py build_ext --inplace``; ``git worktree add``
gives the old commit). One process is one draw (memory layout, machine phase: the same build
varies 7-15 % between processes), so the script runs BEFORE, AFTER, BEFORE, AFTER, ... in fresh
processes and reports, per case, the median and range of the per-process medians.

Cases: bench_conv.py's five convolutions (fwd+bwd, float32), bench_detection_ops.py's nms
(20,000 boxes), batched_nms (5,000, 20 classes), roi_align / roi_pool forward and backward
(2x256x50x50, 512 RoIs, 7x7), and one epoch of the lecture-8 FCN (bench_fcn_epoch.py's network,
128 images, batch 16). Only APIs both trees share are used.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def one_draw(root):
    """Time every case once in this process against the minidl found at ``root``."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")   # see bench_conv.py
    import numpy as np
    sys.path.insert(0, root)
    import minidl
    from minidl import functional as F, optim, kernels
    from minidl.kernels import nms as NK, roi_align as RA, roi_pool as RP
    assert minidl.__file__.startswith(os.path.abspath(root)), minidl.__file__
    assert kernels.available()["cpu"], f"build minidl._C in {root} first"

    def med(fn, n):
        fn()
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1e3

    out = {}
    rng = np.random.default_rng(0)
    # conv fwd+bwd (bench_conv.py's shapes)
    for name, n, c, h, w, f, k, s, p, op in [
            ("conv 64x3x32x32->32", 64, 3, 32, 32, 32, 3, 1, 1, None),
            ("conv 32x64x32x32->64", 32, 64, 32, 32, 64, 3, 1, 1, None),
            ("conv 16x128x16x16->128", 16, 128, 16, 16, 128, 3, 1, 1, None),
            ("conv 8x64x64x64->64 s2", 8, 64, 64, 64, 64, 3, 2, 1, None),
            ("tconv 16x64x16x16->32 s2", 16, 64, 16, 16, 32, 3, 2, 1, 1)]:
        x = minidl.Tensor(rng.standard_normal((n, c, h, w), dtype=np.float32), requires_grad=True)
        wt = minidl.Tensor((rng.standard_normal((f, c, k, k) if op is None else (c, f, k, k), dtype=np.float32) * 0.1).astype(np.float32), requires_grad=True)
        b = minidl.Tensor(rng.standard_normal(f, dtype=np.float32), requires_grad=True)
        run = (lambda: F.conv2d(x, wt, b, stride=s, padding=p)) if op is None else \
              (lambda: F.conv_transpose2d(x, wt, b, stride=s, padding=p, output_padding=op))
        with minidl.no_grad():
            g = np.ones(run().shape, np.float32)
        def fb():
            x.grad = wt.grad = b.grad = None
            run().backward(g)
        out[name + " fwd+bwd"] = med(fb, 7)
    # detection ops (bench_detection_ops.py's cases)
    IMAGE = 800.0
    def boxes_of(n, lo, hi):
        xy = rng.uniform(0, IMAGE, (n, 2)); wh = rng.uniform(lo, hi, (n, 2))
        return np.concatenate([xy, np.minimum(xy + wh, IMAGE)], 1).astype(np.float32)
    bx = boxes_of(20000, 8, 200); sc = rng.random(20000).astype(np.float32)
    out["nms 20000 iou0.5"] = med(lambda: NK.nms(bx, sc, 0.5), 5)
    bx5 = boxes_of(5000, 8, 200); sc5 = rng.random(5000).astype(np.float32); ids = rng.integers(0, 20, 5000)
    out["batched nms 5000"] = med(lambda: NK.nms(bx5, sc5, 0.5, ids), 5)
    xm = rng.standard_normal((2, 256, 50, 50)).astype(np.float32)
    rois = np.concatenate([rng.integers(0, 2, (512, 1)).astype(np.float32), boxes_of(512, 16, 400)], 1)
    grad = rng.standard_normal((512, 256, 7, 7)).astype(np.float32)
    out["roi_align fwd"] = med(lambda: RA.roi_align_forward(xm, rois, (7, 7), 1 / 16, -1, False), 5)
    out["roi_align bwd"] = med(lambda: RA.roi_align_backward(grad, rois, xm.shape, 1 / 16, -1, False), 5)
    _, am = RP.roi_pool_forward(xm, rois, (7, 7), 1 / 16)
    out["roi_pool fwd"] = med(lambda: RP.roi_pool_forward(xm, rois, (7, 7), 1 / 16), 5)
    out["roi_pool bwd"] = med(lambda: RP.roi_pool_backward(grad, am, rois, xm.shape), 5)
    # one FCN epoch (bench_fcn_epoch.py's network, 128 images, batch 16)
    from minidl.data import ShapesDataset
    from minidl.models import pretrained
    ds = ShapesDataset(128, 64, "scene", seed=0, target_keys="semantic_mask")
    X = np.stack([ds[i][0] for i in range(len(ds))]); Y = np.stack([ds[i][1] for i in range(len(ds))])
    model = pretrained.build("fcn_shapes"); model.train()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    def epoch():
        for s0 in range(0, 128, 16):
            loss = F.cross_entropy(model(minidl.Tensor(X[s0:s0 + 16])), Y[s0:s0 + 16])
            opt.zero_grad(); loss.backward(); opt.step()
    out["fcn epoch 128 img"] = med(epoch, 3)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--processes", type=int, default=10, help="fresh processes per tree")
    parser.add_argument("--one", help=argparse.SUPPRESS)        # a child: one draw of this root
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_draw(args.one)))
        return
    runs = {"before": [], "after": []}
    for i in range(args.processes):
        for label in ("before", "after"):
            root = os.path.abspath(getattr(args, label))
            done = subprocess.run([sys.executable, __file__, args.before, args.after, "--one", root],
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{label} process failed:\n{done.stderr}")
            runs[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"pair {i + 1}/{args.processes} done", file=sys.stderr, flush=True)
    print(f"{'case (ms)':34s} {'before: median [range]':>28s} {'after: median [range]':>28s}  ratio")
    for case in runs["before"][0]:
        a, b = ([r[case] for r in runs[k]] for k in ("before", "after"))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{case:34s} {ma:9.2f} [{min(a):8.2f}, {max(a):8.2f}] {mb:9.2f} [{min(b):8.2f}, "
              f"{max(b):8.2f}]  {mb / ma:.3f}")


if __name__ == "__main__":
    main()
