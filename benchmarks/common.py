"""Timing helpers shared by the benchmark scripts.

The machines are noisy (same-function A/B noise about ±7 %), so: warm up, interleave the
candidates round by round and take medians. Each candidate runs once untimed before its timed
block in every round, so it is timed in its own steady state and not in the wake of the one
before: OpenBLAS's idle worker spins ~0.1 s after a call and slows whatever runs next, and a
pause instead lets the cores go cold (both measured: benchmarks/bench_conv.py, docs/conv.md).
Scripts comparing with PyTorch also set ``OPENBLAS_THREAD_TIMEOUT=20`` before NumPy loads.
"""
import statistics
import time


def interleaved_medians(candidates, rounds=15, repeats=1, pause=0.0, warmup=2):
    """candidates: {name: zero-argument callable}. Returns {name: median seconds per call}.
    ``pause`` (seconds of sleep before each candidate's block) is for GPU runs that need it."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            if pause:
                time.sleep(pause)
            fn()                                    # untimed: the switch from the previous one
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            samples[name].append((time.perf_counter() - start) / repeats)
    return {name: statistics.median(s) for name, s in samples.items()}


def try_import_torch():
    try:
        import torch
        return torch
    except ImportError:
        return None
