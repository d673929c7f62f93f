"""The normalization kernels alone: each pass of batch and instance norm, with and without a fused
ReLU, against its NumPy reference (minidl/kernels/norm.py), float32, one thread.

    flock /tmp/minidl-bench.lock python benchmarks/bench_norm.py [--rounds 15]

What it is for: the passes are short streaming loops whose speed is decided by whether GCC
vectorized them — in every clone of csrc/common/vector_clones.h, fused ReLU or not. A loop the
compiler left scalar shows here as a pass several times slower than its neighbours on the same
shape (the backward sums without a fused ReLU were, until 2026-12-07: docs/performance.md).
Times are medians of interleaved rounds (benchmarks/common.py), in microseconds per call; one
process is one draw, so compare variants across several runs of this script.
"""
import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")  # before NumPy loads: see common.py

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_medians  # noqa: E402

from minidl.kernels import norm as kernels  # noqa: E402

# (shape, per_instance): the FCN's batch norms (batch 16 at 32², 16², 8²) and fast style's
# instance norms (batch 4 at 64², 32², 16²).
SHAPES = [((16, 16, 32, 32), False), ((16, 32, 16, 16), False), ((16, 64, 8, 8), False),
          ((4, 32, 64, 64), True), ((4, 64, 32, 32), True), ((4, 128, 16, 16), True)]
EPS = 1e-5


def passes(x, dy, per_instance):
    """{name: zero-argument callable} for every pass of the compiled kernels, and the same
    passes' NumPy references (name prefixed "numpy ")."""
    c = x.shape[1]
    weight, bias = np.ones(c, np.float32), np.zeros(c, np.float32)
    mean, var = kernels.norm_statistics(x, per_instance)
    relu_out = kernels.norm_forward(x, mean, var, weight, bias, EPS, per_instance, True)
    sums = kernels.norm_backward_sums(dy, x, mean, var, EPS, per_instance)
    calls = {}
    for prefix, k in (("", kernels), ("numpy ", None)):
        def pick(name, k=k):
            return getattr(kernels, name if k is not None else name + "_reference")
        stats, fwd = pick("norm_statistics"), pick("norm_forward")
        bsums, bin_ = pick("norm_backward_sums"), pick("norm_backward_input")
        calls.update({
            prefix + "statistics": lambda f=stats: f(x, per_instance),
            prefix + "forward": lambda f=fwd: f(x, mean, var, weight, bias, EPS, per_instance, False),
            prefix + "forward+relu": lambda f=fwd: f(x, mean, var, weight, bias, EPS, per_instance, True),
            prefix + "backward sums": lambda f=bsums: f(dy, x, mean, var, EPS, per_instance),
            prefix + "backward sums+relu": lambda f=bsums: f(dy, x, mean, var, EPS, per_instance, relu_out),
            prefix + "backward dx": lambda f=bin_: f(dy, x, mean, var, weight, EPS, *sums, True, per_instance),
            prefix + "backward dx+relu": lambda f=bin_: f(dy, x, mean, var, weight, EPS, *sums, True,
                                                          per_instance, relu_out),
        })

    def two_references():
        s = kernels.norm_backward_sums_reference(dy, x, mean, var, EPS, per_instance, relu_out)
        return kernels.norm_backward_input_reference(dy, x, mean, var, weight, EPS, *s, True,
                                                     per_instance, relu_out)
    # the training backward in one pass over the groups (sums, then dx while the group is cached)
    calls["backward 1-pass+relu"] = lambda: kernels.norm_backward(dy, x, mean, var, weight, EPS,
                                                                  per_instance, relu_out)
    calls["numpy backward 1-pass+relu"] = two_references
    return calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for shape, per_instance in SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        times = interleaved_medians(passes(x, dy, per_instance), rounds=args.rounds, repeats=20)
        kind = "instance" if per_instance else "batch"
        print(f"\n{kind} norm {shape}: µs per call (compiled / NumPy reference)")
        for name in (n for n in times if not n.startswith("numpy ")):
            print(f"  {name:20s} {1e6 * times[name]:8.1f}  /  {1e6 * times['numpy ' + name]:8.1f}")


if __name__ == "__main__":
    main()
