"""``import minidl`` keeps freed memory for the next array (minidl/_memory.py): arrays freed
and made again come back without page faults, where glibc's allocator as it comes hands the
memory back to the kernel and every new array is fresh pages again — and the opt-out."""
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's (Linux)")

# Ten 4 MB arrays made and freed, round after round (as a training step's activations): the
# minor page faults of five rounds, after two untimed ones.
ROUNDS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import minidl
    def one_round():
        arrays = [np.ones(1 << 20, np.float32) for _ in range(10)]
        del arrays
    one_round(); one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        one_round()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def page_faults(**env):
    import os
    done = subprocess.run([sys.executable, "-c", ROUNDS], capture_output=True, text=True, check=True,
                          env={**os.environ, **env})
    return int(done.stdout.strip().splitlines()[-1])


def test_freed_arrays_come_back_without_page_faults():
    pages = 5 * 10 * (4 * 2**20) // 4096                  # every page of every array, 5 rounds
    kept = page_faults()
    returned = page_faults(MINIDL_DEFAULT_MALLOC="1")
    assert kept < pages // 20, (kept, returned)
    assert returned > pages // 4, (kept, returned)        # what the setting is for (fault-around
    #                                                       maps several pages per fault)


def test_the_setting_is_skipped_when_asked_or_set_by_the_user(monkeypatch):
    from minidl import _memory
    monkeypatch.setenv("MINIDL_DEFAULT_MALLOC", "1")
    assert _memory.keep_freed_memory() is False
    monkeypatch.delenv("MINIDL_DEFAULT_MALLOC")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert _memory.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    assert _memory.keep_freed_memory() is True


def test_only_the_value_1_opts_out(monkeypatch):
    from minidl import _memory
    monkeypatch.setenv("MINIDL_DEFAULT_MALLOC", "0")
    assert _memory.keep_freed_memory() is True
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000")
    assert _memory.keep_freed_memory() is False
