"""Smoothing streamed over count tables on disk: the estimation half of ``--memory`` (as ``lmplz``'s passes).

:func:`.fitting.backoff_tables` smooths an :class:`~scratchgen.ngram.counting.NGramCounts` held in memory:
about 120 bytes a distinct n-gram at its peak (:mod:`.external`). Here each order's count table lives in
column files of a temporary folder (``keys``, ``counts``, ``suffix``, ``<s>`` flags: :func:`spill_counts`)
and is read a block at a time, in the order it is stored (sorted by trie key, so every context's n-grams are
one contiguous run: counting.py eq. (2)). Every strategy's own ``weights`` (:mod:`.smoothing`) runs on each
block, so the model is the in-memory one **to the last bit** (``tests/ngram/test_external_smoothing.py``).

**The passes**, for each order n = 1 .. N in turn (a_n is the table the strategy reads: the raw counts c_n,
or for the Kneser-Ney pair lmplz's adjusted counts)::

    L_n(g) = |{ g' of order n + 1 : suffix(g') = g }|     one pass over suffix_{n+1}, summed in L_n     (1)
    a_n(g) = c_n(g)   if n = N or g starts with <s>,   L_n(g) otherwise     (counting.py eq. (3))     (2)
    n_j    = sum over the blocks of |{ g in the block : a_n(g) = j }|,  j = 0 .. 4                   (3)
    D_n    = the strategy's discount from n_0 .. n_4        (smoothing.py eqs. (4), (6), (8))           (4)

then one pass over blocks of whole contexts: a block holds every n-gram of the contexts h0 .. h1 - 1 (a
block is never cut inside a context, so each context sum d(h), T(h), sum_j D_j T_j(h) adds the same numbers
in the same order as the in-memory ``np.bincount``, and is the same float) and gives::

    (u, gamma) = the strategy's weights on the block, with D_n                 (smoothing.py (4)-(7))   (5)
    p_n(g)     = u(g) + gamma(h) p_{n-1}(suffix(g))     (interpolated;  u(g) otherwise)   (smoothing (2)) (6)
    log p_n(g) = min(log p_n(g), 0),       log b_{n-1}(h) = log gamma(h)         (fitting.py)           (7)

written to column files as they come. Unigrams (V of them) are done whole, by smoothing.py eq. (3).

**What is in memory**, besides blocks of ``block`` n-grams (``BYTES_PER_ENTRY`` bytes each: what the budget
leaves, at most :data:`.external.WORKING_CAP` bytes as for counting, :func:`block_entries`; a block is longer
only to hold one context whole, at most V n-grams):

=======================  ===================================  ================================================
array                    bytes                                why it is whole
=======================  ===================================  ================================================
p_{n-1}                  8 an (n-1)-gram, while order n runs  eq. (6) reads it at the random places suffix(g)
L_n                      4 an n-gram, while order n runs      eq. (1) adds to it at random places
unigram tables           a few times 8 V                      V entries: the vocabulary's size
the finished model       24 a distinct n-gram, at the end,    keys, log p, log b, when the caller asks for the
                         only without an output file          tables in memory (:func:`estimate`); with an
                                                              output file they stay column files, and
                                                              :func:`scratchgen.io.write_model` writes the
                                                              model from them a block at a time
=======================  ===================================  ================================================

lmplz instead re-sorts the n-grams in suffix order between passes, so that eqs. (1) and (6) become streaming
joins; that is not done here, so the first two rows are held whole (12 bytes an n-gram of the two largest
adjacent orders); :func:`block_entries` counts them in the budget and gives the blocks what is left. They are
not what bounds the size of a corpus: counting's suffix pass holds 17 bytes an (n-1)-gram whole
(:func:`.external.least_memory`), and at 7 million distinct n-grams and 256 MiB the two rows are 23 MiB of
an estimation peak near 110 MiB (``benchmarks/bench_spill.py``, where the peak was the blocks, 200 MiB, before
they were capped). Katz
cutoffs above 1 are not streamed (their renormalisation reads two orders at random places): :func:`streamable`
says so and the caller smooths in memory. The readable formulation is the in-memory one
(:func:`.fitting.backoff_tables`); the tests compare the two on random corpora with blocks of 1 to 40 n-grams.

Letters: V vocabulary, N order, U_n distinct n-grams of order n, h a context (an (n-1)-gram), g an n-gram.
"""

from __future__ import annotations

import os

import numpy as np

from ..text import Vocabulary
from .counting import NGramCounts
from .external import WORKING_CAP, OrderFiles, _Column
from .fitting import discount_record
from .smoothing import Smoothing, count_of_counts

__all__ = [
    "BYTES_PER_ENTRY",
    "MIN_BLOCK",
    "MODEL_BYTES",
    "OrderFiles",
    "block_entries",
    "estimate",
    "estimate_columns",
    "spill_counts",
    "streamable",
]

BOS = Vocabulary.bos_id
#: Bytes an n-gram of a block costs at the peak of a block's work (its key, count, suffix, flag read; the
#: strategy's temporaries; p, log p written): 60 to 125 measured with tracemalloc, order 5, blocks of 5k and
#: 50k n-grams, all seven strategies; tests/ngram/test_external_smoothing.py checks the bound.
BYTES_PER_ENTRY = 160
#: The smallest block of n-grams (a block grows past it only to hold one context whole).
MIN_BLOCK = 1 << 12
#: Bytes a distinct n-gram of the finished model costs in memory (key, log p, log b: int64 and two float64).
MODEL_BYTES = 24


def block_entries(memory: int, sizes: list) -> int:
    """n-grams a block: what the budget ``memory`` leaves after the largest resident pair of eqs. (1) and (6)
    (8 U_{n-1} + 4 U_n bytes; ``sizes`` [U_1, .., U_N]), at most ``WORKING_CAP`` bytes (as counting's blocks),
    at ``BYTES_PER_ENTRY`` an n-gram; at least ``MIN_BLOCK``."""
    resident = max([8 * a + 4 * b for a, b in zip(sizes, sizes[1:])] + [8 * sizes[0]])
    return max(MIN_BLOCK, min(memory - resident, WORKING_CAP) // BYTES_PER_ENTRY)


def spill_counts(counts: NGramCounts, folder: str) -> tuple[np.ndarray, list]:
    """Write the tables of orders 2 .. N to column files in ``folder``: ``(unigram counts, [files of order 2,
    .., files of order N])``, the files that :mod:`.external`'s counting writes a block at a time (this writes
    them from tables in memory: the tests' way in)."""
    files = []
    for n in range(2, counts.order + 1):
        f = OrderFiles(folder, n)
        for name, values in zip(
            ("keys", "counts", "suffix", "bos"), (counts.keys, counts.counts, counts.suffix, counts.bos_start)
        ):
            f.columns[name].append(values[n - 1])
        files.append(f)
    return counts.counts[0].copy(), files


def streamable(strategy, cutoffs) -> bool:
    """Whether :func:`estimate` gives this strategy's model: a built-in strategy, no cutoff above 1."""
    return isinstance(strategy, Smoothing) and not (cutoffs is not None and any(c > 1 for c in cutoffs))


def _context_blocks(files: OrderFiles, V: int, contexts: int, size: int):
    """(start, stop, h0, h1, keys): the n-grams start .. stop - 1 are every n-gram of the contexts h0 .. h1 - 1
    (contexts with no n-gram included); the blocks cover all n-grams and all ``contexts`` in order. A block
    has at most ``size`` n-grams, unless one context has more: it is then a block of its own, read whole."""
    start, h0, U = 0, 0, files.length
    while True:
        if U - start <= size:  # the last block: it closes every remaining context
            yield start, U, h0, contexts, files.read("keys", start, U)
            return
        k = files.read("keys", start, start + size + 1)  # one more: does the block's last context go on?
        ctx = k // V
        change = np.flatnonzero(ctx[1:] != ctx[:-1])  # a new context starts at change + 1
        if len(change):
            cut = int(change[-1]) + 1  # the block ends before the last context that starts inside it
        else:  # one context fills the block: read on until it ends
            m = 2 * (size + 1)
            while True:
                k = files.read("keys", start, start + m)
                ctx = k // V
                if ctx[-1] != ctx[0] or start + len(k) >= U:
                    cut = int(np.searchsorted(ctx, ctx[0], side="right"))
                    break
                m *= 2
            if start + cut >= U:
                yield start, U, h0, contexts, k
                return
        h1 = int(ctx[cut - 1]) + 1
        yield start, start + cut, h0, h1, k[:cut]
        start, h0 = start + cut, h1


def _left_counts(files: OrderFiles, size: int, block: int) -> np.ndarray:
    """Eq. (1): L_n of the ``size`` n-grams from the suffix column of order n + 1, a block at a time."""
    left = np.zeros(size, dtype=np.int32 if files.length < 2**31 - 1 else np.int64)
    for s in range(0, files.length, block):
        where, times = np.unique(files.read("suffix", s, s + block), return_counts=True)
        left[where] += times.astype(left.dtype)
    return left


def _table(files: OrderFiles, left: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """a_n of the n-grams start .. stop - 1: the counts, or eq. (2) when ``left`` (L_n) is given."""
    c = files.read("counts", start, stop)
    if left is None:
        return c
    return np.where(files.read("bos", start, stop), c, left[start:stop].astype(np.int64))


def _stub(N: int, V: int, n: int, keys: np.ndarray, contexts: int, bos_ctx, bos: np.ndarray) -> NGramCounts:
    """The n-grams of one block as the :class:`NGramCounts` a strategy's ``weights`` reads: their keys with the
    contexts renumbered from 0 (``context(n)`` is local), ``contexts`` contexts, and the ``<s>`` flags."""
    fill: list = [None] * (n - 2)
    return NGramCounts(N, V, fill + [np.zeros(contexts, np.int8), keys], [], [], fill + [bos_ctx, bos])


def estimate(
    unigrams: np.ndarray, files: list, V: int, strategy, folder: str, block: int = 1 << 16
) -> tuple[list, list, list, list]:
    """(keys, log p, log b, discounts): :func:`.fitting.backoff_tables` without cutoffs, the count tables of
    orders 2 .. N read from ``files`` (:func:`spill_counts`) ``block`` n-grams at a time: eqs. (1)-(7).

    ``unigrams`` are the counts of order 1, shape (V,). :func:`estimate_columns` does the passes; the final
    arrays are then read back whole (the model holds them). The files are removed as they are used up.
    """
    logp1, out_logp, out_bow, discounts = estimate_columns(unigrams, files, V, strategy, folder, block)
    keys = [np.arange(V, dtype=np.int64)]
    for f in files:
        keys.append(f.read("keys", 0, f.length))
        f.remove()
    logp = [logp1] + [c.read(0, c.length) for c in out_logp]
    bow = [c.read(0, c.length) for c in out_bow]
    for c in out_logp + out_bow:
        c.remove()
    return keys, logp, bow, discount_record(discounts if strategy.records_discounts else [])


def estimate_columns(unigrams: np.ndarray, files: list, V: int, strategy, folder: str, block: int):
    """The passes of eqs. (1)-(7): ``(log p of the unigrams, [log p columns of orders 2 .. N], [log b columns
    of orders 1 .. N - 1], [D of each order])``; only the keys columns of ``files`` are left."""
    N = len(files) + 1
    block = max(int(block), 1)
    bos1 = np.arange(V) == BOS
    # Order 1, whole (V entries): eqs. (1)-(2), then smoothing.py eq. (3) as backoff_form computes it.
    if strategy.adjusted and N > 1:
        table1 = np.where(bos1, unigrams, _left_counts(files[0], V, block).astype(np.int64))
    else:
        table1 = unigrams.copy()
    one = NGramCounts(N, V, [np.arange(V, dtype=np.int64)], [table1], [np.empty(0, np.int64)], [bos1])
    u, gamma, D = strategy.weights(one, table1, 1)
    p = u + gamma[0] / (V - 1) if strategy.interpolated else u  # smoothing.py eq. (3)
    p[BOS] = 0.0
    with np.errstate(divide="ignore"):
        logp1 = np.minimum(np.log(p), 0.0)
    logp1[BOS] = -np.inf
    discounts, out_logp, out_bow = [D], [], []
    for n in range(2, N + 1):
        pc, lp, bw, D = _order_pass(n, files, V, bos1, p, strategy, folder, block)
        p = np.zeros(0)  # p_{n-1} is used up: freed before p_n is read back
        if pc is not None:
            p = pc.read(0, pc.length)
            pc.remove()
        discounts.append(D)
        out_logp.append(lp)
        out_bow.append(bw)
    return logp1, out_logp, out_bow, discounts


def _order_pass(n: int, files: list, V: int, bos1: np.ndarray, prev_p: np.ndarray, strategy, folder: str, block: int):
    """Order n >= 2: eqs. (1)-(4), then eqs. (5)-(7) over blocks of whole contexts. ``prev_p`` is p_{n-1};
    returns (the p_n column, None at n = N; the log p_n column; the log b_{n-1} column; D_n)."""
    N = len(files) + 1
    f = files[n - 2]
    left = _left_counts(files[n - 1], f.length, block) if strategy.adjusted and n < N else None  # eq. (1)
    nj = [0] * 5
    for s in range(0, f.length, block):  # eq. (3)
        nj = [a + b for a, b in zip(nj, count_of_counts(_table(f, left, s, s + block)))]
    D = strategy.order_discount(nj)  # eq. (4)
    lp = _Column(os.path.join(folder, f"logp{n}"), np.float64)
    bw = _Column(os.path.join(folder, f"bow{n - 1}"), np.float64)
    pc = _Column(os.path.join(folder, f"p{n}"), np.float64) if n < N else None
    for start, stop, h0, h1, k in _context_blocks(f, V, len(prev_p), block):
        a = _table(f, left, start, stop)  # eq. (2)
        bos_ctx = bos1[h0:h1] if n == 2 else files[n - 3].read("bos", h0, h1)  # the contexts' flags
        local = k - h0 * V  # keys with the contexts numbered from h0
        stub = _stub(N, V, n, local, h1 - h0, bos_ctx, f.read("bos", start, stop))
        u, gamma, _ = strategy.weights(stub, a, n, D=D)  # eq. (5)
        if strategy.interpolated:
            p = u + gamma[local // V] * prev_p[f.read("suffix", start, stop)]  # eq. (6)
        else:
            p = u
        with np.errstate(divide="ignore"):
            lp.append(np.minimum(np.log(p), 0.0))  # eq. (7)
            bw.append(np.log(gamma))
        if pc is not None:
            pc.append(p)
        del a, u, gamma, p, stub, local
    f.remove("counts", "suffix")
    if n > 2:
        files[n - 3].remove("bos")  # the flags of order n - 1 served as contexts: used up
    return pc, lp, bw, D
