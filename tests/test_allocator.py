"""scratchgen/allocator.py: glibc's malloc keeps freed blocks for reuse once asked (no timing here: the
benchmark deep_transformer --speed measures the effect)."""

from __future__ import annotations

import ctypes.util
import platform
import subprocess
import sys

import pytest

glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not glibc, reason="mallopt is glibc's")
def test_after_the_call_a_freed_large_block_is_reused_without_new_page_faults():
    """Allocate, free and allocate again a 3 MiB array (under the 4 MiB from which NumPy asks for huge pages):
    with the setting the second one reuses the first's pages; without it glibc gets fresh pages from the
    kernel again (768 faults of 4 KiB)."""
    code = """
import resource, sys
import numpy as np
from scratchgen.allocator import reuse_freed_memory
if sys.argv[1] == "on":
    assert reuse_freed_memory() is True and reuse_freed_memory() is True
a = np.ones(3 << 18, dtype=np.float32); del a  # 3 MiB, touched, freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(3 << 18, dtype=np.float32)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    faults = {
        mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True).stdout)
        for mode in ("off", "on")
    }
    assert faults["off"] > 500 and faults["on"] < 100, faults
    assert ctypes.util.find_library("c")


@pytest.mark.skipif(not glibc, reason="mallopt is glibc's")
def test_for_counting_in_chunks_a_second_thread_allocates_from_the_main_heap():
    """steady_chunk_memory (the command's setting while the reader thread of ngram/chunked.py tokenizes):
    glibc gives a new thread an arena of its own unless told otherwise, which would keep what that thread
    frees apart from the main heap. malloc_stats lists the arenas on stderr."""
    code = """
import ctypes, sys, threading
import numpy as np
from scratchgen.allocator import steady_chunk_memory
if sys.argv[1] == "on":
    assert steady_chunk_memory() is True
kept = []
thread = threading.Thread(target=lambda: kept.append(np.ones(1 << 18)))  # 2 MiB: from a heap, under 16 MiB
thread.start(); thread.join()
sys.stderr.flush()
ctypes.CDLL(None).malloc_stats()
"""
    arenas = {
        mode: subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
        ).stderr.count("Arena ")
        for mode in ("off", "on")
    }
    assert arenas == {"off": 2, "on": 1}, arenas
