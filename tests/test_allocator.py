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
