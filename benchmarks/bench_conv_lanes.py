"""Each fast lane of conv2d against the plain im2col side, forward+backward, in fresh processes.

    flock /tmp/minidl-bench.lock python benchmarks/bench_conv_lanes.py [--lane direct] [--shapes fcn]
        [--processes 3] [--repeats 7]

For every shape of bench_conv.py's set (``--shapes standard|vgg16|fcn``, plain 3×3 stride-1 convs
and others alike) the conv's forward+backward (dx and dW, float32) is timed with the lane on and
switched off (``conv_direct.enabled`` / ``conv_winograd.enabled``), interleaved within a process,
each variant once untimed before it is timed; the figures are the median and range over
``--processes`` fresh processes of each process's median. "taken" says whether the lane's rule
takes the shape at all (where it does not, both columns time the same code).

``--avx2`` (direct lane only): instead of lane on / off, the lane with its widest vectors
(AVX-512 where the CPU has it) against the lane kept on AVX2 (``kernels.direct_conv.vector_lanes(8)``).
``--tiles`` (Winograd lane only): F(4×4, 3×3) against F(2×2, 3×3) on the lane (``conv_winograd.TILE``
4 / 2; the rule, ``tile_for``, picks between them by size).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")   # see bench_conv.py

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minidl  # noqa: E402
from minidl import functional as F  # noqa: E402
from minidl.functional import conv_direct, conv_winograd  # noqa: E402
from minidl.functional.conv import Geometry  # noqa: E402
from minidl.kernels import direct_conv as direct_kernels  # noqa: E402
from bench_conv import SHAPE_SETS  # noqa: E402

LANES = {"direct": conv_direct, "winograd": conv_winograd}


def one_process(args):
    lane = LANES[args.lane]
    rng = np.random.default_rng(0)
    rows = []
    for name, n, c, h, w, f, k, s, p, op in SHAPE_SETS[args.shapes]:
        if op is not None:
            continue                                   # transpose convs: no lane
        x = minidl.Tensor(rng.standard_normal((n, c, h, w), dtype=np.float32), requires_grad=True)
        wt = minidl.Tensor(0.1 * rng.standard_normal((f, c, k, k), dtype=np.float32), requires_grad=True)
        grad = np.ones((n, f, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1), np.float32)

        def step():
            x.grad = wt.grad = None
            F.conv2d(x, wt, None, stride=s, padding=p).backward(grad)
        geom = Geometry((k, k), (s, s), (p, p), (1, 1), 1)
        lane.enabled = True
        taken = lane.takes(x.data, wt.data, geom)
        times = {True: [], False: []}
        for _ in range(args.repeats):
            for on in (True, False):
                lane.enabled = on or args.avx2 or args.tiles       # --avx2 / --tiles: both variants on
                if args.tiles:                                     # the lane: the second F(2×2, 3×3),
                    conv_winograd.TILE = 4 if on else 2
                with direct_kernels.vector_lanes(16 if on or not args.avx2 else 8):   # or on AVX2
                    step()
                    start = time.perf_counter()
                    step()
                    times[on].append(1e3 * (time.perf_counter() - start))
        conv_winograd.TILE = None
        rows.append({"name": name, "taken": taken, "on": statistics.median(times[True]),
                     "off": statistics.median(times[False])})
    print(json.dumps(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lane", choices=sorted(LANES), default="direct")
    parser.add_argument("--shapes", choices=sorted(SHAPE_SETS), default="fcn")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--avx2", action="store_true",
                        help="direct lane: widest vectors (AVX-512 where present) vs AVX2 only")
    parser.add_argument("--tiles", action="store_true",
                        help="winograd lane: F(4x4, 3x3) vs F(2x2, 3x3)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.avx2 and args.lane != "direct":
        parser.error("--avx2 compares the direct lane's two vector forms: use it with --lane direct")
    if args.tiles and args.lane != "winograd":
        parser.error("--tiles compares the Winograd lane's two tiles: use it with --lane winograd")
    if args.child:
        return one_process(args)
    runs = []
    for i in range(args.processes):
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--lane", args.lane,
                               "--shapes", args.shapes, "--repeats", str(args.repeats)]
                              + (["--avx2"] if args.avx2 else []) + (["--tiles"] if args.tiles else []),
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"process {i + 1} failed:\n{done.stderr}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"process {i + 1}/{args.processes} done", flush=True)

    def spread(values):
        return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"
    first, second = ((f"{args.lane} (widest)", f"{args.lane} (AVX2)") if args.avx2 else
                     ("F(4x4, 3x3)", "F(2x2, 3x3)") if args.tiles else (args.lane, "im2col"))
    print(f"\n{first} vs {second}, fwd+bwd ms, median [range] over {args.processes} processes")
    print(f"| conv | taken | {first} | {second} | {first} / {second} |")
    print("|---|---|---|---|---|")
    for k, row in enumerate(runs[0]):
        on, off = [r[k]["on"] for r in runs], [r[k]["off"] for r in runs]
        print(f"| {row['name']} | {'yes' if row['taken'] else 'no'} | {spread(on)} | {spread(off)} | "
              f"{spread([a / b for a, b in zip(on, off)])} |")


if __name__ == "__main__":
    main()
