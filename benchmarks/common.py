"""Timing helpers shared by the benchmark scripts.

The machines are noisy (same-function A/B noise about ±7 %), so: warm up, interleave the
candidates round by round, take medians, and pause between timed blocks because OpenBLAS
threads keep spinning ~0.1 s after a call and slow whatever runs next.
"""
import statistics
import time


def interleaved_medians(candidates, rounds=15, repeats=1, pause=0.15, warmup=2):
    """candidates: {name: zero-argument callable}. Returns {name: median seconds per call}."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            time.sleep(pause)
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
