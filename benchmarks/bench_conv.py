"""Benchmark: conv2d / conv_transpose2d forward and forward+backward, minidl vs PyTorch CPU.

    flock /tmp/minidl-bench.lock python benchmarks/bench_conv.py [--repeats 7] [--quick] [--processes 5]
        [--shapes standard|vgg16|fcn] [--no-reference]

For every shape it times three paths, interleaved (A B C A B C ...) so that machine noise hits
them alike, and reports medians:

    reference   minidl with the NumPy im2col/col2im (``minidl.kernels.use("reference")``)
    native      minidl with the C++ im2col/col2im (minidl._C)
    torch       torch.nn.functional on the CPU (only when PyTorch is installed)

GEMMs are NumPy's matmul (OpenBLAS) in both minidl paths. GFLOP/s counts 2 flops per
multiply-add of the convolution (forward), three times that for forward+backward (dx and dW).
The ceiling is NumPy's float32 matmul on 2048×2048 matrices (the best of 7 or more calls).

Fairness between the paths (measured 2026-12-01 on 32×64×32×32 → 64, fwd+bwd): OpenBLAS's idle
worker keeps spinning for 2^28 cycles (~0.1 s) after every call before it sleeps, and in an
interleaved run that spin takes a core from whichever path runs next — PyTorch took 41 ms alone
but 78–117 ms right after a minidl call, so every earlier version of this benchmark flattered
minidl. A pause does not cure it (after 0.2 s idle both paths ran ~10 ms slower than back to
back: the idle vCPUs wake slowly). So this script sets ``OPENBLAS_THREAD_TIMEOUT=20`` (2^20
cycles, ~0.4 ms; minidl alone is as fast either way) before NumPy loads, and in every round
runs each path once untimed before timing it, so each is timed in its own steady state.
(PyTorch's 32×64 fwd+bwd is still bimodal on the 2-core Xeon — 39 or 103 ms from run to run,
its forward always 9 ms: that is PyTorch's own, not the method's.)

One process is one draw, and the two frameworks want OpenMP set differently (minidl/__init__.py asks
for threads that sleep soon after a kernel; PyTorch runs slower with them): ``--processes N`` — the
form the docs report — runs each framework alone in its own fresh processes, N of each. (Without it
both run in this process, PyTorch loaded first with its default, which slows minidl's OpenMP
kernels: a quick look only.) The same build runs 7–15 % faster or slower from one process to the
next (where its large buffers land in memory), while rounds within a process agree within a
few percent. ``--processes N`` runs the whole measurement in N fresh processes, one after the
other, and prints each shape's ratio and % of the ceiling as the median and range over them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")  # read once, when NumPy loads OpenBLAS

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import child_environment, only_framework  # noqa: E402  (before minidl: see there)

# --only minidl / --only torch: one framework in this process (the children of --processes).
ONLY = only_framework()

torch = None
if ONLY != "minidl":
    try:   # before minidl, so that OpenMP (shared with minidl's kernels) starts with PyTorch's default
        import torch
        import torch.nn.functional as TF
    except ImportError:  # PyTorch is only a point of comparison, never a dependency
        torch = None

import minidl  # noqa: E402
from minidl.kernels.im2col import batch_chunks  # noqa: E402
from minidl import functional as F  # noqa: E402
from minidl import kernels  # noqa: E402

# (name, N, C, H, W, F, k, stride, pad, output_padding or None for a plain conv)
SHAPES = [
    ("conv 64x3x32x32 -> 32, k3 s1 p1", 64, 3, 32, 32, 32, 3, 1, 1, None),
    ("conv 32x64x32x32 -> 64, k3 s1 p1", 32, 64, 32, 32, 64, 3, 1, 1, None),
    ("conv 16x128x16x16 -> 128, k3 s1 p1", 16, 128, 16, 16, 128, 3, 1, 1, None),
    ("conv 8x64x64x64 -> 64, k3 s2 p1", 8, 64, 64, 64, 64, 3, 2, 1, None),
    ("tconv 16x64x16x16 -> 32, k3 s2 p1 op1", 16, 64, 16, 16, 32, 3, 2, 1, 1),
]
# --shapes vgg16: issue 22's VGG16 layers (the lecture-12 loss network), batch 1 and 4; those with
# run on the Winograd lane (functional/conv_winograd.py; conv1_2's 64 channels since the evening of
# 2026-12-07, for its >= 8192 outputs per filter; on the direct lane before).
VGG16_SHAPES = [(f"VGG16 {layer}, batch {n}: {n}x{c}x{size}x{size} -> {c}", n, c, size, size, c, 3, 1, 1, None)
                for n in (1, 4) for layer, c, size in
                (("conv1_2", 64, 128), ("conv2_2", 128, 64), ("conv3_3", 256, 32), ("conv4_3", 512, 16))]
# --shapes fcn: every convolution of one training step of the lecture-8 FCN
# (benchmarks/bench_fcn_epoch.py: fcn_shapes, batch 16 of 64x64 images).
FCN_SHAPES = [
    ("FCN conv 16x3x64x64 -> 16, s2", 16, 3, 64, 64, 16, 3, 2, 1, None),
    ("FCN conv 16x16x32x32 -> 16 (twice)", 16, 16, 32, 32, 16, 3, 1, 1, None),
    ("FCN conv 16x16x32x32 -> 32, s2", 16, 16, 32, 32, 32, 3, 2, 1, None),
    ("FCN conv 16x32x16x16 -> 32 (twice)", 16, 32, 16, 16, 32, 3, 1, 1, None),
    ("FCN conv 16x32x16x16 -> 64, s2", 16, 32, 16, 16, 64, 3, 2, 1, None),
    ("FCN conv 16x64x8x8 -> 64", 16, 64, 8, 8, 64, 3, 1, 1, None),
    ("FCN tconv 16x64x8x8 -> 32, k4 s2 p1", 16, 64, 8, 8, 32, 4, 2, 1, 0),
    ("FCN tconv 16x32x16x16 -> 16, k4 s2 p1", 16, 32, 16, 16, 16, 4, 2, 1, 0),
    ("FCN conv 16x16x32x32 -> 6, k1", 16, 16, 32, 32, 6, 1, 1, 0, None),
]
SHAPE_SETS = {"standard": SHAPES, "vgg16": VGG16_SHAPES, "fcn": FCN_SHAPES}


def timed(fn):
    fn()          # untimed: the switch from another path (its thread pools, its cache lines)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def flops_of(shape):
    """Multiply-adds × 2 of the forward pass."""
    _, n, c, h, w, f, k, s, p, op = shape
    if op is None:  # conv: every output pixel of every filter sees C*k*k inputs
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        return 2.0 * n * f * c * k * k * oh * ow
    return 2.0 * n * c * f * k * k * h * w  # tconv: every input pixel feeds F*k*k outputs


def make_cases(shape, rng):
    """For each path: (forward, forward_backward) closures on the same data."""
    _, n, c, h, w, f, k, s, p, op = shape
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wshape = (f, c, k, k) if op is None else (c, f, k, k)
    weight = (rng.standard_normal(wshape, dtype=np.float32) * 0.1).astype(np.float32)
    bias = rng.standard_normal(f, dtype=np.float32)

    def minidl_case(mode):
        xt = minidl.Tensor(x, requires_grad=True)
        wt = minidl.Tensor(weight, requires_grad=True)
        bt = minidl.Tensor(bias, requires_grad=True)

        def run():
            if op is None:
                return F.conv2d(xt, wt, bt, stride=s, padding=p)
            return F.conv_transpose2d(xt, wt, bt, stride=s, padding=p, output_padding=op)

        with minidl.no_grad():
            grad = np.ones(run().shape, dtype=np.float32)

        def forward():
            with kernels.using(mode), minidl.no_grad():
                run()

        def forward_backward():
            with kernels.using(mode):
                xt.grad = wt.grad = bt.grad = None
                run().backward(grad)
        return forward, forward_backward

    cases = {"reference": minidl_case("reference"), "native": minidl_case("native")}
    if torch is not None:
        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(weight, requires_grad=True)
        tb = torch.tensor(bias, requires_grad=True)

        def trun():
            if op is None:
                return TF.conv2d(tx, tw, tb, stride=s, padding=p)
            return TF.conv_transpose2d(tx, tw, tb, stride=s, padding=p, output_padding=op)

        with torch.no_grad():
            tgrad = torch.ones_like(trun())

        def tforward():
            with torch.no_grad():
                trun()

        def tforward_backward():
            tx.grad = tw.grad = tb.grad = None
            trun().backward(tgrad)
        cases["torch"] = (tforward, tforward_backward)
    return cases


def gemm_floor(shape, rng, repeats):
    """The three GEMMs of a conv's forward+backward alone (operands ready, no im2col/col2im/
    transposes), run the way conv2d runs them: chunk by chunk, each chunk's columns in one
    reused buffer of at most MAX_COLUMN_BYTES (whole-batch GEMMs are slower once the columns
    leave the cache: 127 vs 190 GFLOP/s for 32x64x32x32's forward). What im2col + BLAS cannot
    go below at this shape."""
    _, n, c, h, w, f, k, s, p, op = shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    rows, pixels = c * k * k, oh * ow
    chunks = batch_chunks(n, rows * pixels * 4)
    m = chunks[0].stop - chunks[0].start                                 # the largest chunk
    cols = rng.standard_normal((rows, m * pixels), dtype=np.float32)     # one chunk's buffers
    weight = rng.standard_normal((f, rows), dtype=np.float32)
    dy = rng.standard_normal((f, m * pixels), dtype=np.float32)
    outs = [np.empty((f, cols.shape[1]), np.float32), np.empty(cols.shape, np.float32),
            np.empty((rows, f), np.float32)]

    def three():
        for chunk in chunks:                            # each chunk at its own size
            q = (chunk.stop - chunk.start) * pixels     # this chunk's columns
            np.matmul(weight, cols[:, :q], out=outs[0][:, :q])        # forward
            np.matmul(weight.T, dy[:, :q], out=outs[1][:, :q])        # dx's columns
            np.matmul(cols[:, :q], dy[:, :q].T, out=outs[2])          # dWᵀ
    three()
    return statistics.median(timed(three) for _ in range(repeats))


def matmul_ceiling(repeats):
    """The best of at least 7 timed 2048³ matmuls: a ceiling is what BLAS *can* reach here, and
    the best time is the one that one disturbed call cannot spoil (a median of 3 once read
    153 GFLOP/s instead of ~280)."""
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    a @ a
    best = min(timed(lambda: a @ a) for _ in range(max(repeats, 7)))
    return 2 * 2048 ** 3 / best / 1e9


def naive_cost():
    """conv2d_naive vs conv2d on one small batch: what the loops cost."""
    rng = np.random.default_rng(1)
    x = minidl.Tensor(rng.standard_normal((2, 3, 32, 32), dtype=np.float32))
    w = minidl.Tensor(rng.standard_normal((32, 3, 3, 3), dtype=np.float32))
    naive = timed(lambda: F.conv2d_naive(x, w, None, 1, 1))
    with minidl.no_grad():
        fast = statistics.median(timed(lambda: F.conv2d(x, w, None, 1, 1)) for _ in range(5))
    return naive, fast


def across_processes(count, child_args, shapes):
    """Runs this script ``count`` times in fresh processes (``--json``) and prints, per shape,
    the median and range over them of the native/torch ratio and of the % of the ceiling.

    Each framework runs alone in its own processes (minidl, then torch, per round): in one process they
    would share one OpenMP runtime, which minidl wants sleeping soon after each kernel (its kernels
    and OpenBLAS are two thread pools) and PyTorch spinning (one pool) — either setting handicaps
    one of them (docs/performance.md)."""
    env = child_environment()                  # each child's framework sets its own default

    def child(only):
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--json", "--only", only,
                               *child_args], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"process {i + 1} ({only}) failed (exit code {done.returncode}):\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    runs = []
    for i in range(count):
        run = child("minidl")
        if torch is not None:
            for mine, theirs in zip(run["shapes"], child("torch")["shapes"]):
                mine["torch"] = theirs["torch"]
        runs.append(run)
        print(f"process {i + 1}/{count}: ceiling {runs[-1]['ceiling']:.0f} GFLOP/s", flush=True)

    def spread(values, fmt):
        return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"
    print(f"\nmedian [range] over {count} processes:")
    print("| shape | native fwd+bwd ms | torch fwd+bwd ms | native / torch (issue 22: <= 1.0 on 3x3 stride 1, else <= 1.3) | % of ceiling |")
    print("|---|---|---|---|---|")
    for k, (name, *_rest) in enumerate(shapes):
        rows = [r["shapes"][k] for r in runs]
        native = [r["native"] for r in rows]
        percent = [100 * r["rate"] / run["ceiling"] for r, run in zip(rows, runs)]
        cells = [spread(native, "{:.2f}"), "-", "-", spread(percent, "{:.0f}")]
        if rows[0].get("torch") is not None:
            cells[1] = spread([r["torch"] for r in rows], "{:.2f}")
            cells[2] = spread([r["native"] / r["torch"] for r in rows], "{:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repeats, for a smoke test")
    parser.add_argument("--processes", type=int, default=1,
                        help="repeat the whole measurement in this many fresh processes")
    parser.add_argument("--shapes", choices=sorted(SHAPE_SETS), default="standard",
                        help="standard: the five shapes of issue 22's table; vgg16: VGG16's conv1_2 ... "
                             "conv4_3 at batch 1 and 4; fcn: the convolutions of the FCN's training step")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the NumPy-reference path (slow at VGG16 shapes)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # for --processes
    parser.add_argument("--only", choices=["minidl", "torch"], help=argparse.SUPPRESS)  # for --processes
    args = parser.parse_args()
    shapes = SHAPE_SETS[args.shapes]
    if args.processes > 1:
        return across_processes(args.processes, ["--repeats", str(args.repeats), "--shapes", args.shapes] +
                                (["--quick"] if args.quick else []) +
                                (["--no-reference"] if args.no_reference else []), shapes)
    repeats = 3 if args.quick else args.repeats
    rng = np.random.default_rng(0)
    print(f"minidl kernels available: {kernels.available()}; torch: "
          f"{torch.__version__ if torch is not None else 'not installed'}; "
          f"threads: {os.cpu_count()}; repeats: {repeats} (medians)")
    ceiling = matmul_ceiling(repeats)
    print(f"NumPy float32 matmul 2048^3: {ceiling:.0f} GFLOP/s (the ceiling)\n")
    paths = ([] if args.no_reference else ["reference"]) + ["native"] + (["torch"] if torch is not None else [])
    if args.only:
        paths = ["torch"] if args.only == "torch" else [p for p in paths if p != "torch"]
    header = "| shape | " + " | ".join(f"{p} fwd ms (GF/s) | {p} fwd+bwd ms (GF/s)" for p in paths)
    rows = []
    for shape in shapes:
        cases = {p: case for p, case in make_cases(shape, rng).items() if p in paths}
        for fwd, fb in cases.values():  # warm-up: buffers, thread pools, page faults
            fwd()
            fb()
        times = {p: ([], []) for p in paths}
        for _ in range(repeats):
            for p in paths:  # interleaved A/B/C
                times[p][0].append(timed(cases[p][0]))
                times[p][1].append(timed(cases[p][1]))
        flops = flops_of(shape)
        cells, medians = [], {}
        for p in paths:
            tf, tb = statistics.median(times[p][0]), statistics.median(times[p][1])
            medians[p] = (tf, tb)
            cells.append(f"{tf * 1e3:.2f} ({flops / tf / 1e9:.0f}) | {tb * 1e3:.2f} ({3 * flops / tb / 1e9:.0f})")
        rows.append((shape[0], cells, medians))
        print(f"{shape[0]}: " + "; ".join(
            f"{p} fwd {m[0] * 1e3:.2f} ms, fwd+bwd {m[1] * 1e3:.2f} ms" for p, m in medians.items()),
            flush=True)
    print("\n" + header)
    print("|---" * (1 + 2 * len(paths)) + "|")
    for name, cells, _ in rows:
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:   # one line for across_processes (no GEMM floor, no naive loop: not reported)
        print(json.dumps({"ceiling": ceiling, "shapes": [
            {"native": m["native"][1] * 1e3 if "native" in m else None,
             "torch": m["torch"][1] * 1e3 if "torch" in m else None,
             "rate": 3 * flops_of(shape) / m["native"][1] / 1e9 if "native" in m else None}
            for (_, _, m), shape in zip(rows, shapes)]}))
        return
    if torch is not None and "native" in paths:
        print("\nnative fwd+bwd time / torch fwd+bwd time (issue 22: <= 1.0 on 3x3 stride 1, else <= 1.3); "
              "native fwd+bwd rate / ceiling:")
        for (name, _, m), shape in zip(rows, shapes):
            ratio = m["native"][1] / m["torch"][1]
            rate = 3 * flops_of(shape) / m["native"][1] / 1e9
            line = f"  {name}: {ratio:.2f}x torch, {rate:.0f} GFLOP/s = {100 * rate / ceiling:.0f}% of ceiling"
            if shape[-1] is None:      # plain convs: how close the GEMMs alone would come
                floor = gemm_floor(shape, rng, repeats)
                line += (f"; the 3 GEMMs alone {floor * 1e3:.2f} ms = {floor / m['torch'][1]:.2f}x torch, "
                         f"{100 * 3 * flops_of(shape) / floor / 1e9 / ceiling:.0f}% of ceiling")
            print(line)
    naive, fast = naive_cost()
    print(f"\nconv2d_naive (Python loops) on 2x3x32x32 -> 32, k3: {naive * 1e3:.0f} ms vs conv2d "
          f"{fast * 1e3:.2f} ms ({naive / fast:.0f}x)")


if __name__ == "__main__":
    main()
