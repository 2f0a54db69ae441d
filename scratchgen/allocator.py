"""Keep freed memory for reuse: a training step's large temporaries then cost no page faults.

A NumPy training step makes and frees the same large arrays every step (a Transformer's (B, A, T, T)
attention weights, its (B, T, 4D) MLP activations). glibc's ``malloc`` serves a request above its
*mmap threshold* (128 KiB at first, raised only as large blocks are freed) with fresh pages from the
kernel, and gives freed memory at the top of the heap back once more than the *trim threshold* is
free. Either way the next step's array lands on pages the kernel must fault in and zero again, one
4 KiB page at a time. Measured here (2-core EPYC, float32, one BLAS thread): a Transformer step of
E 64, 4 layers, T 32, B 32 took about 8,100 minor page faults, a third of its CPU time spent in the
kernel; with :func:`reuse_freed_memory` it took about 50, and the step ran 1.4-1.8 times faster. PyTorch
keeps its own blocks for reuse in the same way (its step: about 640 faults).

The price: freed blocks stay with the process, so its resident size stays at the peak of a step
(which it reached anyway). The setting is per process and cannot be undone exactly (glibc stops
adjusting the threshold once it is set), so the library sets it only where a training loop starts:
the ``fit`` of every neural model (:meth:`scratchgen.nn.neural.NeuralModel.fit`) and the benchmarks that time
such steps.

Counting a file in chunks (``scratchgen train ngram``) has the same pattern at another scale: millions of
arrays of a few MB, made and freed chunk after chunk. :func:`steady_chunk_memory` keeps those below 16 MiB
in the heap and gives memory back past 64 MiB free: the command's system time fell from about 0.30 to
0.12 s on 11 MB of text, with its peak resident memory the same or lower (``benchmarks/bench_text.py``
measures it); a 1 GiB threshold would keep the largest merges' memory resident. Only the command line
sets it. It also keeps every thread on the one heap (glibc's ``M_ARENA_MAX`` of 1): counting reads the file
in a thread of its own (:mod:`scratchgen.ngram.chunked`), and glibc would give that thread an arena of its
own, which keeps what it frees apart from the main heap: the command's peak rose from 89 to 104-106 MiB on
11 MB of English that way, and to 90-96 with the one heap (one run each, a busy machine). The two threads
allocate mostly large NumPy arrays, seldom at the same moment, so they seldom wait for the heap's lock.
:meth:`NGramModel.fit_file <scratchgen.ngram.model.NGramModel.fit_file>` leaves the allocator of
a user's process alone.

On a system without glibc (macOS, Windows, musl) both do nothing.
"""

from __future__ import annotations

import sys

__all__ = ["reuse_freed_memory", "steady_chunk_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers of glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_KEEP = 1 << 30  # 1 GiB: blocks up to this size come from the heap and go back to it
_CHUNK_KEEP, _CHUNK_TRIM = 16 << 20, 64 << 20  # counting in chunks: steady_chunk_memory
_DONE: bool | None = None  # None: not tried yet; then whether glibc accepted the settings


def _mallopt(mmap_threshold: int, trim_threshold: int, arenas: int = 0) -> bool:
    """Set glibc's mmap and trim thresholds (and with ``arenas`` > 0 the most arenas, the heaps threads
    allocate from); whether glibc accepted them all (False without glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here, not at the top: the command line's start-up does not pay for it
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    return done and (arenas <= 0 or bool(mallopt(_M_ARENA_MAX, arenas)))


def reuse_freed_memory() -> bool:
    """Ask glibc to serve blocks up to 1 GiB from the heap and keep freed memory (see the module
    docstring). Returns whether the settings are in force (False without glibc); repeated calls are free."""
    global _DONE
    if _DONE is None:
        _DONE = _mallopt(_KEEP, _KEEP)
    return _DONE


def steady_chunk_memory() -> bool:
    """Serve blocks below 16 MiB from the heap and trim it past 64 MiB free, for counting in chunks (module
    docstring), all threads from one heap; whether glibc accepted the settings."""
    return _mallopt(_CHUNK_KEEP, _CHUNK_TRIM, arenas=1)
