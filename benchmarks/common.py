"""Timing helpers shared by the benchmark scripts.

The machines are noisy (same-function A/B noise about ±7 %), so: warm up, interleave the
candidates round by round and take medians. Each candidate runs once untimed before its timed
block in every round, so it is timed in its own steady state and not in the wake of the one
before: OpenBLAS's idle worker spins ~0.1 s after a call and slows whatever runs next, and a
pause instead lets the cores go cold (both measured: benchmarks/bench_conv.py, docs/conv.md).
Scripts comparing with PyTorch also set ``OPENBLAS_THREAD_TIMEOUT=20`` before NumPy loads.
"""
import os
import statistics
import sys
import time

# Whether the caller chose an OpenMP wait policy. Importing minidl sets one for its process
# (minidl/__init__.py); a child process that times PyTorch alone must not inherit it unless it
# was the caller's. Read when this module loads: the scripts import it before minidl.
CALLERS_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
CALLERS_GOMP_SPINCOUNT = os.environ.get("GOMP_SPINCOUNT")


def only_framework(argv=None):
    """The value of ``--only`` (the framework a child process times alone), or None. Read before
    argparse runs: whether PyTorch must load before minidl depends on it."""
    argv = sys.argv if argv is None else argv
    return argv[argv.index("--only") + 1] if "--only" in argv[:-1] else None


# A process that times PyTorch alone still imports minidl (data, weights, the model to mirror),
# and importing minidl fixes glibc's allocator thresholds (minidl/_memory.py). PyTorch is timed
# with the allocator as it comes: set before minidl loads.
if only_framework() == "torch":
    os.environ.setdefault("MINIDL_DEFAULT_MALLOC", "1")


def child_environment():
    """The environment for a child process that times one framework alone: this one's, without
    the OMP_WAIT_POLICY and GOMP_SPINCOUNT that importing minidl set (unless the caller had set
    them), so that each framework starts OpenMP with its own default."""
    env = dict(os.environ)
    if CALLERS_OMP_WAIT_POLICY is None:
        env.pop("OMP_WAIT_POLICY", None)
    if CALLERS_GOMP_SPINCOUNT is None:
        env.pop("GOMP_SPINCOUNT", None)
    return env


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
