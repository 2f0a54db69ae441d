"""Counting the n-grams of a corpus bigger than memory: sorted runs on disk, merged (as ``lmplz -S``).

:meth:`NGramCounts.from_flat <scratchgen.ngram.counting.NGramCounts.from_flat>` holds the whole corpus as
ids, and one key an n-gram per position, in memory. Here the corpus and every per-position array live in
files of a temporary folder, read a block at a time, and only the tables of *distinct* n-grams are held
(the model is made of them). The result is the same :class:`NGramCounts`, equal to the last bit, so the
smoothed model is identical to the in-memory fit (``tests/ngram/test_external.py`` checks it).

**Passes.** With P the positions of the flat stream ``<s> w .. </s> <s> ..`` (counting.py eq. (1)):

1. *Read.* The file is read a piece of whole lines at a time and tokenized into *provisional* ids
   (the reader of :func:`scratchgen.corpus.read_ids`), appended to a file; the token counts are summed.
2. *Vocabulary.* The counts give the vocabulary (by descending count, ties by code point), exactly as
   ``read_ids`` numbers it; the provisional ids are rewritten as the flat stream of final ids (``ids``).
3. *Orders 2 .. N*, each in two sweeps over blocks of positions. The key of the n-gram ending at p
   (counting.py eq. (2)) needs only ``index_{n-1}[p-1]``, the rank of the (n-1)-gram ending at p - 1,
   which the previous order wrote to a file, and ``ids[p]``::

       key_n(p) = index_{n-1}(p - 1) * V + ids(p)        (no n-gram ends at p when index_{n-1}(p - 1) < 0
                                                           or ids(p) is <s>)                         (1)

   *Count*: each block's keys are sorted and counted (``np.unique``); the (key, count) pairs of blocks
   pile up in memory and, when the pile is bigger than its share of the budget, it is summed into one
   sorted **run** and written as two ``.npy`` files (keys, counts). *Merge*: the runs are merged (below)
   into the sorted distinct keys of order n and their counts, appended a block at a time to the column
   files of order n (:class:`OrderFiles`). *Rank*: a second sweep recomputes eq. (1) and writes
   ``index_n(p)`` = the rank of key_n(p) among the distinct keys (``searchsorted``, the block's keys searched
   in sorted order, three times faster than in the order of the text; the distinct keys are read back for it,
   8 bytes an n-gram), -1 where none ends.
4. *Suffixes*: the suffix and ``<s>`` columns of every order, a block of keys at a time (:func:`_suffixes`,
   eqs. (2)-(3); :meth:`NGramCounts.from_keys <scratchgen.ngram.counting.NGramCounts.from_keys>` is the
   readable version on whole tables). Then :func:`fit_file` smooths the column files a block at a time
   (:mod:`.external_smoothing`) and may write the model file from its output columns a block at a time;
   :func:`count_file` reads the columns into an :class:`NGramCounts` for :mod:`.fitting` to smooth in memory.

**The merge** of k sorted runs is read in blocks: each run has a buffer of the next m of its keys. Every
key up to the smallest *last buffered key* of the runs not read to their end is final (no unread key of any
run can be smaller), so those entries of all buffers are concatenated, sorted, their equal keys' counts
added, and passed on; the buffers are refilled. When k runs do not each get a buffer of ``MIN_MERGE``
entries, groups of runs are merged into longer runs first (several passes, as a merge sort on tape).
:func:`merge_reference` is the plain version: concatenate everything and ``np.unique``.

**The budget** M (``--memory``) is shared as follows. What a phase must hold whole is *resident*, R
(:func:`_resident`): the unigram counts and ids (16 V bytes) always; while order n is ranked, its distinct
keys (8 U_n); while order n gets its suffixes, order n - 1's keys, suffixes and flags (17 U_{n-1}: eqs. (2)
and (3) read them at random places). No phase holds the tables of every order. What remains, up to
``WORKING_CAP``, W = min(M - R, ``WORKING_CAP``), is the *working* memory. The budget is a ceiling, as
``lmplz -S`` is: working memory past 64 MiB makes no phase faster (NumPy's cost a call is nothing at half a
million entries, and a bigger sort only leaves the caches), it only raises the peak (the estimation table of
``benchmarks/bench_spill.py`` measures it stage by stage):

=================  ==============================================================================
reading            a piece of ``min(W / 4 / BYTES_PER_CHAR, CHUNK_CHARS)`` characters (its text,
                   tokens and ids: ``BYTES_PER_CHAR`` = 40 bytes a character at most)
counting           blocks of W / 2 / ``BYTES_PER_POSITION`` positions (64 bytes a position: ids,
                   previous ranks, keys, the sort's copies) and a pile of W / 2 / 72 entries
merging            buffers of W / 72 entries in all (``BYTES_PER_ENTRY``: 16 bytes an entry, and the
                   concatenation, permutation and sorted copies of the sort that sums equal keys)
suffixes           blocks of W / 2 / ``BYTES_PER_POSITION`` keys
=================  ==============================================================================

When W is smaller than ``MIN_WORKING`` bytes, nothing can progress: a :class:`ResourceError` names the
budget needed (:func:`least_memory` gives it from the table sizes). Outside the budget (the *documented
constant* of the benchmark): the interpreter with NumPy and scratchgen imported (about 34 MiB), and the
vocabulary (a Python dict: about 150 bytes a distinct token). **Estimation** streamed (:func:`fit_file`,
what ``--memory`` and ``fit_file(memory=)`` use) works in blocks from the budget too, and with an output
file (``fit_file(output=)``, which ``scratchgen train ngram`` gives) the model is written from the smoothed
column files a block at a time (:func:`scratchgen.io.write_model`): what it holds whole is listed in
:mod:`.external_smoothing` (12 bytes an n-gram of the two orders being smoothed). Without an output file the
finished model's arrays are read into memory at the end (24 bytes a distinct n-gram, a warning when they
exceed the budget). In memory (:func:`count_file`, then :func:`.fitting.backoff_tables`, the path of Katz
cutoffs above 1) the count tables take 33 bytes a distinct n-gram (key, count, suffix index, ``<s>`` flag)
and smoothing 40 to 48 bytes more at its peak (tracemalloc, order 5: tinyshakespeare x 10 at word level,
674k n-grams; 200 kB at character level, 77k); ``ESTIMATE_BYTES`` = 120 bytes a distinct n-gram is the
documented bound, with room for the model's saving, and ``count_file`` warns when it exceeds the budget.
Either way this is the size of the model, not of the corpus: 1 GB of shuffled tinyshakespeare lines has
300 million positions but fewer than a million distinct n-grams of each order.

``scratchgen train ngram --memory`` and ``NGramModel.fit_file(memory=...)`` come here only when counting in
chunks (:func:`scratchgen.ngram.chunked.count`) finds more distinct n-grams than the budget holds, or than
``IN_MEMORY_CAP`` when the model can be smoothed here.

The temporary folder (under ``temp_dir``, or the system's) is removed when counting ends, whether it
succeeded, failed or was interrupted (Ctrl-C).

Letters: V vocabulary size, N order, P positions of the flat stream, M the budget in bytes, R resident
bytes, W working bytes, k runs, m entries a buffer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator

import numpy as np

from ..errors import CorpusError, ResourceError, ScratchgenError
from ..text import Tokenizer, Vocabulary
from .counting import NGramCounts
from .fitting import discount_record

__all__ = [
    "Budget",
    "OrderFiles",
    "count_file",
    "count_in_memory",
    "fit_file",
    "least_memory",
    "merge_reference",
    "merge_runs",
    "spill_folder",
]

BOS, EOS = Vocabulary.bos_id, Vocabulary.eos_id
#: Bytes a character of a piece of text read at once costs at most (the str, its normal form, tokens, ids).
BYTES_PER_CHAR = 40
#: Bytes a position of a counting block costs (ids, previous ranks, keys, the sort's copies and masks).
BYTES_PER_POSITION = 64
#: Bytes an entry (key, count) costs while piles are summed and runs merged: its 16 bytes, the concatenated
#: parts, the sort's permutation and sorted copies, the sums (70 to 74 measured with tracemalloc, a merge of
#: four runs and a pile of four blocks; tests/ngram/test_external.py checks the bound).
BYTES_PER_ENTRY = 72
#: Bytes a distinct n-gram costs at the peak of estimation (in memory, outside the budget's control).
ESTIMATE_BYTES = 120
#: The smallest buffer a run gets in a merge; fewer and the runs are merged in several passes.
MIN_MERGE = 16
#: The smallest working memory: a block of 64 positions and a merge of two runs.
MIN_WORKING = 64 * BYTES_PER_POSITION * 2
#: The largest piece of text read at once (as read_ids reads it).
CHUNK_CHARS = 1 << 22
#: The most working memory W any phase takes, whatever the budget (bytes). Past blocks of half a million
#: positions NumPy's cost a call is nothing and a bigger sort only leaves the caches, so a larger budget would
#: buy no speed, only resident memory (the budget is a ceiling, as ``lmplz -S`` is).
WORKING_CAP = 64 << 20
#: The largest in-memory estimation ``--memory`` allows when the model can be smoothed from disk instead
#: (:func:`.external_smoothing.streamable`), bytes (``ESTIMATE_BYTES`` a distinct n-gram: about 1.1 million
#: n-grams). Past it the streamed path is as fast (7.1 million word n-grams: 6.2 CPU-s streamed, 6.6 in memory)
#: and its peak stays near ``WORKING_CAP`` plus the resident tables whatever the budget, as lmplz's does
#: (at ``--memory 1G`` the in-memory fit of those n-grams peaked at 484 MiB, lmplz ``-S 1G`` at 258).
IN_MEMORY_CAP = 2 * WORKING_CAP


def _size(n: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}G"


class Budget:
    """The memory budget M and how it is shared (the table of the module docstring).

    >>> b = Budget(2**20)
    >>> b.block_positions(0), b.pile_entries(0), b.merge_entries(0)
    (8192, 7281, 14563)
    """

    def __init__(self, memory: int):
        if not isinstance(memory, (int, np.integer)) or isinstance(memory, bool) or memory < 1:
            raise ScratchgenError(f"memory must be a number of bytes >= 1, got {memory!r}")
        self.memory = int(memory)

    def working(self, resident: int) -> int:
        """W = min(M - R, ``WORKING_CAP``), or a :class:`ResourceError` naming the budget needed when
        M - R < ``MIN_WORKING``."""
        w = self.memory - resident
        if w < MIN_WORKING:
            need = resident + MIN_WORKING
            raise ResourceError(
                f"a memory budget of {_size(self.memory)} is too small to count this corpus: the n-gram tables "
                f"held at once take {_size(resident)} and counting needs {_size(MIN_WORKING)} more; give at least "
                f"{_size(need)} ({need} bytes)"
            )
        return min(w, WORKING_CAP)

    def chunk_chars(self, resident: int) -> int:
        return int(max(256, min(CHUNK_CHARS, self.working(resident) // 4 // BYTES_PER_CHAR)))

    def block_positions(self, resident: int) -> int:
        return self.working(resident) // 2 // BYTES_PER_POSITION

    def pile_entries(self, resident: int) -> int:
        return self.working(resident) // 2 // BYTES_PER_ENTRY

    def merge_entries(self, resident: int) -> int:
        return self.working(resident) // BYTES_PER_ENTRY


@contextlib.contextmanager
def spill_folder(temp_dir: str | os.PathLike | None = None) -> Iterator[str]:
    """A fresh folder for the runs, under ``temp_dir`` (default: the system's), removed on leaving, whether
    the block ends normally, by an error or by Ctrl-C (``KeyboardInterrupt``)."""
    if temp_dir is not None and not os.path.isdir(temp_dir):
        raise ScratchgenError(f"the temporary folder {os.fspath(temp_dir)!r} does not exist")
    path = tempfile.mkdtemp(prefix="scratchgen-spill-", dir=temp_dir)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- files read a slice at a time (plain reads: no memory map, whose pages would count as resident) --------


class _Column:
    """A raw file of one dtype, appended to and read by slices."""

    def __init__(self, path: str, dtype):
        self.path, self.dtype, self.length = path, np.dtype(dtype), 0
        open(path, "wb").close()

    def append(self, values: np.ndarray) -> None:
        with open(self.path, "ab") as f:
            np.ascontiguousarray(values, dtype=self.dtype).tofile(f)
        self.length += len(values)

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(start, 0), min(stop, self.length)
        if stop <= start:
            return np.zeros(0, self.dtype)
        with open(self.path, "rb") as f:
            return np.fromfile(f, dtype=self.dtype, count=stop - start, offset=start * self.dtype.itemsize)

    def remove(self) -> None:
        os.remove(self.path)


class _Run:
    """A sorted run: distinct int64 keys and their int64 counts, as two ``.npy`` files written a block at a
    time (the data after a header of ``_HEADER`` bytes, written when the run is closed and its length known)."""

    def __init__(self, folder: str, name: str):
        self.paths = (os.path.join(folder, name + ".keys.npy"), os.path.join(folder, name + ".counts.npy"))
        self.length = 0
        for path in self.paths:
            with open(path, "wb") as f:
                f.write(b"\0" * _HEADER)

    def append(self, keys: np.ndarray, counts: np.ndarray) -> None:
        for path, values in zip(self.paths, (keys, counts)):
            with open(path, "ab") as f:
                np.ascontiguousarray(values, dtype=np.int64).tofile(f)
        self.length += len(keys)

    def close(self) -> _Run:
        """Write the ``.npy`` headers (format 1.0, shape (length,)): the files then load with ``np.load``."""
        text = f"{{'descr': '<i8', 'fortran_order': False, 'shape': ({self.length},), }}"
        text = text.ljust(_HEADER - 10 - 1) + "\n"
        header = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")
        for path in self.paths:
            with open(path, "r+b") as f:
                f.write(header)
        return self

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        count = max(0, min(stop, self.length) - start)
        out = []
        for path in self.paths:
            with open(path, "rb") as f:
                out.append(np.fromfile(f, dtype=np.int64, count=count, offset=_HEADER + 8 * start))
        return out[0], out[1]

    def remove(self) -> None:
        for p in self.paths:
            os.remove(p)


#: Bytes of a run file's ``.npy`` header (a multiple of 64, as the format aligns its data).
_HEADER = 128


class OrderFiles:
    """The count table of one order n >= 2 as four column files: sorted trie keys (int64), counts (int64),
    suffix indices (int64) and ``<s>`` flags (bool), each appended to and read a slice at a time (no memory
    map). Counting writes them (pass 3 the keys and counts, pass 4 the rest); estimation reads them."""

    FIELDS = (("keys", np.int64), ("counts", np.int64), ("suffix", np.int64), ("bos", np.bool_))

    def __init__(self, folder: str, n: int):
        self.columns = {name: _Column(os.path.join(folder, f"table{n}.{name}"), dt) for name, dt in self.FIELDS}

    @property
    def length(self) -> int:
        return self.columns["keys"].length

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        return self.columns[name].read(start, stop)

    def whole(self, name: str) -> np.ndarray:
        """The whole column ``name`` in memory."""
        return self.columns[name].read(0, self.columns[name].length)

    def remove(self, *names: str) -> None:
        """Remove the columns ``names`` (all by default) once they are used up."""
        for name in names or tuple(self.columns):
            column = self.columns[name]
            if os.path.exists(column.path):
                column.remove()


def _sum_equal(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and the sum of the counts of each (the entries need not be sorted)."""
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return keys[starts], np.add.reduceat(counts, starts) if len(keys) else counts


# --- the merge -------------------------------------------------------------------------------------------------


def merge_reference(runs: list) -> tuple[np.ndarray, np.ndarray]:
    """The plain merge: every (keys, counts) pair concatenated, equal keys' counts added, sorted."""
    if not runs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = np.concatenate([np.asarray(k, np.int64) for k, _ in runs])
    counts = np.concatenate([np.asarray(c, np.int64) for _, c in runs])
    uniq, inverse = np.unique(keys, return_inverse=True)
    total = np.zeros(len(uniq), dtype=np.int64)
    np.add.at(total, inverse.reshape(-1), counts)
    return uniq, total


def _merge_blocks(runs: list, buffer_entries: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The k-way merge of sorted runs (objects with ``length`` and ``read(start, stop)``) in blocks of sorted
    distinct keys and summed counts, each block's keys above the previous block's."""
    m = max(MIN_MERGE, buffer_entries // max(len(runs), 1))  # entries a buffer
    pos = [0] * len(runs)
    bufs = [r.read(0, m) for r in runs]
    while True:
        live = [i for i, r in enumerate(runs) if len(bufs[i][0])]
        if not live:
            return
        # Every key <= bound is final: no run still holds an unread key below its buffer's last one.
        unread = [bufs[i][0][-1] for i in live if pos[i] + len(bufs[i][0]) < runs[i].length]
        bound = min(unread) if unread else None
        parts_k, parts_c = [], []
        for i in live:
            k, c = bufs[i]
            take = len(k) if bound is None else int(np.searchsorted(k, bound, side="right"))
            parts_k.append(k[:take])
            parts_c.append(c[:take])
            if take == len(k):  # the buffer is used up: refill it
                pos[i] += take
                bufs[i] = runs[i].read(pos[i], pos[i] + m)
            else:
                pos[i] += take
                bufs[i] = (k[take:], c[take:])
        yield _sum_equal(np.concatenate(parts_k), np.concatenate(parts_c))


class _Memory:
    """An in-memory run (the last pile of an order), read like a run file."""

    def __init__(self, keys: np.ndarray, counts: np.ndarray):
        self.keys, self.counts, self.length = keys, counts, len(keys)

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        return self.keys[start:stop], self.counts[start:stop]

    def remove(self) -> None:
        pass


def merge_runs(
    runs: list,
    buffer_entries: int,
    folder: str | None = None,
    report: dict | None = None,
    out: OrderFiles | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge sorted runs into one table (sorted distinct keys, summed counts), in blocks: "the merge" of the
    module docstring. When k runs cannot each have ``MIN_MERGE`` entries of ``buffer_entries``, groups
    of runs are first merged into new run files in ``folder`` (and the merged ones removed). With ``out``
    (an :class:`OrderFiles`) each merged block is appended to its keys and counts columns as it comes, and
    empty arrays are returned: the table is never whole in memory."""
    fan_in = max(2, buffer_entries // MIN_MERGE)
    level = 0
    while len(runs) > fan_in:
        assert folder is not None, "several merge passes need a folder for their runs"
        merged = []
        for g in range(0, len(runs), fan_in):
            group = runs[g : g + fan_in]
            run = _Run(folder, f"pass{level}-{g}")
            for keys, counts in _merge_blocks(group, buffer_entries):  # a pass writes its output as one run
                run.append(keys, counts)
            merged.append(run.close())
            for r in group:
                r.remove()
        runs, level = merged, level + 1
    if report is not None:
        report.setdefault("merge_passes", []).append(level)
    blocks = []
    for keys, counts in _merge_blocks(runs, buffer_entries):
        if out is None:
            blocks.append((keys, counts))
        else:
            out.columns["keys"].append(keys)
            out.columns["counts"].append(counts)
    for r in runs:
        r.remove()
    if not blocks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate([k for k, _ in blocks]), np.concatenate([c for _, c in blocks])


class _Pile:
    """The (key, count) pairs of the blocks of one order, summed in memory while they fit in ``capacity``
    entries and written as a sorted run when they do not."""

    def __init__(self, folder: str, name: str, capacity: int):
        self.folder, self.name, self.capacity = folder, name, max(capacity, MIN_MERGE)
        self.chunks: list = []
        self.size = 0
        self.runs: list = []

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self.chunks.append((keys, counts))
        self.size += len(keys)
        if self.size <= self.capacity:
            return
        keys, counts = self._summed()
        if len(keys) > self.capacity // 2:  # summing did not free enough: spill it as a run
            run = _Run(self.folder, f"{self.name}-run{len(self.runs)}")
            run.append(keys, counts)
            self.runs.append(run.close())
            self.chunks, self.size = [], 0
        else:
            self.chunks, self.size = [(keys, counts)], len(keys)

    def _summed(self) -> tuple[np.ndarray, np.ndarray]:
        return _sum_equal(np.concatenate([k for k, _ in self.chunks]), np.concatenate([c for _, c in self.chunks]))

    def finish(self) -> list:
        """The runs on disk and the last pile (in memory), to merge."""
        if self.chunks:
            self.runs.append(_Memory(*self._summed()))
            self.chunks, self.size = [], 0
        return self.runs


# --- the passes --------------------------------------------------------------------------------------------------


def count_file(
    path: str | os.PathLike,
    order: int,
    tokenizer: Tokenizer | None = None,
    memory: int = 1 << 30,
    temp_dir: str | os.PathLike | None = None,
    encoding: str = "utf-8",
    progress=None,
    report: dict | None = None,
) -> tuple[NGramCounts, Vocabulary]:
    """Count the n-grams of orders 1 .. ``order`` of a file (one sequence a line) within ``memory`` bytes,
    spilling to a temporary folder under ``temp_dir``: the passes of the module docstring, then the tables
    read from their files into memory (for an estimation in memory: 33 bytes a distinct n-gram and more,
    outside the budget; :func:`fit_file` streams it instead).

    Returns ``(counts, vocabulary)``, equal to the last bit to ``read_ids`` and ``NGramCounts.from_flat`` on
    the same file in memory (:func:`count_in_memory`, the reference). ``progress`` is advanced by 1 an order.
    ``report`` (a dict, optional) receives what happened: ``positions`` P, ``runs`` (runs written to disk
    per order 2 .. N), ``merge_passes`` (extra merge passes per order) and ``spilled_bytes`` (the most the
    temporary folder held at once).
    """
    budget = Budget(memory)
    with _spilled_counts(path, order, tokenizer, budget, temp_dir, encoding, progress, report) as (c1, files, vocab, _):
        V = len(vocab)
        counts = NGramCounts(
            len(files) + 1,
            V,
            [np.arange(V, dtype=np.int64)] + [f.whole("keys") for f in files],
            [c1] + [f.whole("counts") for f in files],
            [np.empty(0, dtype=np.int64)] + [f.whole("suffix") for f in files],
            [np.arange(V) == BOS] + [f.whole("bos") for f in files],
        )
    distinct = sum(len(k) for k in counts.keys)
    if ESTIMATE_BYTES * distinct > budget.memory:
        warnings.warn(
            f"smoothing the {distinct:,} distinct n-grams takes about {_size(ESTIMATE_BYTES * distinct)} of memory, "
            f"more than the budget of {_size(budget.memory)}: estimation runs in memory",
            UserWarning,
            stacklevel=2,
        )
    return counts, vocab


@contextlib.contextmanager
def _spilled_counts(
    path,
    order: int,
    tokenizer: Tokenizer | None,
    budget: Budget,
    temp_dir,
    encoding: str,
    progress,
    report: dict | None,
) -> Iterator[tuple[np.ndarray, list, Vocabulary, str]]:
    """Passes 1 to 4 in a fresh spill folder: ``(unigram counts, [OrderFiles of orders 2 .. N], vocabulary,
    folder)``, the folder removed on leaving."""
    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
        raise ScratchgenError(f"order must be an integer >= 1, got {order!r}")
    with spill_folder(temp_dir) as folder:
        vocab, stream, c1 = _read(path, tokenizer or Tokenizer(), encoding, budget, folder)
        report = {} if report is None else report
        report.update(positions=stream.length, runs=[], merge_passes=[], spilled_bytes=0)
        files = _count_orders(stream, c1, int(order), len(vocab), budget, folder, progress, report)
        stream.remove()
        _suffixes(files, len(vocab), budget)
        yield c1, files, vocab, folder


def least_memory(sizes: list) -> int:
    """The smallest budget :func:`count_file` accepts for tables of ``sizes`` = [U_1 = V, U_2, .., U_N]
    distinct n-grams: the most that is resident at once (:func:`_resident`) and ``MIN_WORKING``."""
    phases = [(n, phase) for n in range(2, len(sizes) + 1) for phase in ("count", "rank", "suffix")]
    return max([16 * sizes[0]] + [_resident(sizes, n, phase) for n, phase in phases]) + MIN_WORKING


def _resident(sizes: list, n: int, phase: str) -> int:
    """R, the bytes held whole while order n is counted (``"count"``), ranked (``"rank"``: its distinct keys,
    below the top order) or given its suffixes (``"suffix"``: the keys, suffixes and ``<s>`` flags of order
    n - 1): see the module docstring. The unigram counts and ids (16 V) are always resident."""
    V = sizes[0]
    if phase == "rank":
        return 16 * V + (8 * sizes[n - 1] if n < len(sizes) else 0)
    if phase == "suffix":
        return 16 * V + (17 * sizes[n - 2] if n > 2 else 0)
    return 16 * V


def count_in_memory(path, order: int, tokenizer: Tokenizer | None = None, encoding: str = "utf-8", progress=None):
    """The reference: the file read into ids and counted in memory, ``(counts, vocabulary)``."""
    from ..corpus import read_ids

    enc = read_ids(path, tokenizer or Tokenizer(), encoding=encoding)
    if not len(enc):
        raise CorpusError(f"corpus {os.fspath(path)!r} has no non-empty sequence")
    return NGramCounts.from_flat(enc.ids, enc.lengths, order, len(enc.vocab), progress=progress), enc.vocab


def _read(path, tokenizer: Tokenizer, encoding: str, budget: Budget, folder: str):
    """Passes 1 and 2: the vocabulary, the flat stream of final ids (a column file of int32) and the unigram
    counts (``<s>`` 0), as ``read_ids`` and ``from_flat`` make them."""
    from ..corpus import _Encoder, _pieces

    encoder = _Encoder(tokenizer, None)
    provisional = _Column(os.path.join(folder, "provisional.ids"), np.uint32)
    lengths = _Column(os.path.join(folder, "lengths.i8"), np.int64)
    total = np.zeros(0, dtype=np.int64)  # (provisional ids,) how often each occurs
    for piece in _pieces(path, encoding, budget.chunk_chars(0)):
        ids, lens = encoder.encode(piece)
        provisional.append(ids)
        lengths.append(lens)
        if len(ids):
            seen = np.bincount(ids)
            if len(seen) > len(total):
                total = np.concatenate([total, np.zeros(len(seen) - len(total), np.int64)])
            total[: len(seen)] += seen
    if provisional.length == 0:
        raise CorpusError(f"corpus {os.fspath(path)!r} has no non-empty sequence")
    # Pass 2, the vocabulary: as _Encoder.finish numbers it.
    vocab, new_id, _, _ = encoder.numbered(total, 1, None)
    new_id = new_id.astype(np.int32)
    V = len(vocab)
    stream = _Column(os.path.join(folder, "stream.ids"), np.int32)
    c1 = np.zeros(V, dtype=np.int64)
    block = budget.block_positions(8 * V)
    token, line = 0, 0
    while line < lengths.length:
        lens = lengths.read(line, line + max(1, block // 4))
        line += len(lens)
        lens = lens[lens > 0]  # empty lines are skipped
        ends = np.cumsum(lens)
        start = 0
        while start < len(lens):  # lines of at most ``block`` tokens together (and one long line alone)
            stop = max(start + 1, int(np.searchsorted(ends, (ends[start - 1] if start else 0) + block, "right")))
            part = lens[start:stop]
            n_tokens = int(part.sum())
            if n_tokens <= block:
                flat = new_id[provisional.read(token, token + n_tokens)]
                stream.append(_with_markers(flat, part))
                c1 += np.bincount(flat, minlength=V)
            else:  # one line longer than a block: <s>, its ids a block at a time, </s>
                stream.append(np.array([BOS], np.int32))
                for s in range(token, token + n_tokens, block):
                    flat = new_id[provisional.read(s, min(s + block, token + n_tokens))]
                    stream.append(flat)
                    c1 += np.bincount(flat, minlength=V)
                stream.append(np.array([EOS], np.int32))
            c1[EOS] += len(part)
            token += n_tokens
            start = stop
    provisional.remove()
    lengths.remove()
    c1[BOS] = 0  # <s> is context only, never a token
    return vocab, stream, c1


def _folder_bytes(folder: str) -> int:
    return sum(e.stat().st_size for e in os.scandir(folder) if e.is_file())


def _with_markers(flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``<s> x .. </s> <s> ..``: the ids of sequences of ``lengths`` with their markers (counting.py)."""
    lengths = lengths + 2
    starts = np.cumsum(lengths) - lengths
    out = np.empty(int(lengths.sum()), dtype=np.int32)
    body = np.ones(len(out), dtype=bool)
    body[starts] = False
    body[starts + lengths - 1] = False
    out[starts] = BOS
    out[starts + lengths - 1] = EOS
    out[body] = flat
    return out


def _keys(previous: _Column, stream: _Column, s: int, e: int, V: int) -> tuple[np.ndarray, np.ndarray]:
    """Eq. (1) for the positions s .. e - 1 (s >= 1): the keys, and where an n-gram ends."""
    prev = previous.read(s - 1, e - 1)  # index_{n-1}(p - 1)
    ids = stream.read(s, e)  # ids(p)
    key = prev.astype(np.int64) * V + ids  # eq. (1)
    return key, (prev >= 0) & (ids != BOS)


def _count_orders(
    stream: _Column, c1: np.ndarray, N: int, V: int, budget: Budget, folder: str, progress, report: dict
) -> list:
    """Pass 3, orders 2 .. N: count, merge (into the keys and counts columns of an :class:`OrderFiles`, a block
    at a time), rank. Only the distinct keys of the order being ranked are held whole."""
    from .counting import _search

    sizes = [V]
    if progress is not None:
        progress.update(1)
    P = stream.length
    previous = stream  # index_1 = ids
    files = []
    for n in range(2, N + 1):
        resident = _resident(sizes, n, "count")
        block = budget.block_positions(resident)
        pile = _Pile(folder, f"order{n}", budget.pile_entries(resident))
        for s in range(1, P, block):  # count: nothing ends at position 0 (<s>)
            key, valid = _keys(previous, stream, s, min(s + block, P), V)
            distinct, times = np.unique(key[valid], return_counts=True)
            del key, valid  # the block's memory, before the pile may be summed
            pile.add(distinct, times)
        runs = pile.finish()
        report["runs"].append(sum(isinstance(r, _Run) for r in runs))
        report["spilled_bytes"] = max(report["spilled_bytes"], _folder_bytes(folder))
        table = OrderFiles(folder, n)
        merge_runs(runs, budget.merge_entries(resident), folder, report, out=table)
        del runs, pile
        files.append(table)
        sizes.append(table.length)
        if n < N:  # rank: index_n of every position, for the next order
            block = budget.block_positions(_resident(sizes, n, "rank"))  # (the budget is checked first)
            uniq = table.whole("keys")  # (U_n,) resident while ranking
            index = _Column(os.path.join(folder, f"index{n}.ids"), np.int32 if len(uniq) < 2**31 - 1 else np.int64)
            index.append(np.array([-1]))
            for s in range(1, P, block):
                key, valid = _keys(previous, stream, s, min(s + block, P), V)
                rank = _search(uniq, key)  # searchsorted, the keys searched in sorted order
                rank[~valid] = -1
                index.append(rank)
            del uniq
            if previous is not stream:
                previous.remove()
            previous = index
        if progress is not None:
            progress.update(1)
    if previous is not stream:
        previous.remove()
    return files


def _suffixes(files: list, V: int, budget: Budget) -> None:
    """Pass 4: the suffix and ``<s>`` columns of every order, a block of keys at a time, as
    :meth:`NGramCounts.from_keys <scratchgen.ngram.counting.NGramCounts.from_keys>` (the readable version)
    finds them from whole tables::

        suffix_n(g) = w_n                                                  (n = 2)
                    = rank of  suffix_{n-1}(context(g)) V + w_n  in keys_{n-1}   (n > 2)               (2)
        bos_n(g)    = bos_{n-1}(context(g))                                                               (3)

    with context(g) = key // V and w_n = key % V. Order n - 1's keys, suffixes and flags are held whole
    (17 bytes an (n-1)-gram: eqs. (2) and (3) read them at random places)."""
    from .counting import _search

    sizes = [V] + [f.length for f in files]
    prev_keys, prev_suffix, prev_bos = np.zeros(0, np.int64), np.zeros(0, np.int64), np.arange(V) == BOS
    for n, f in enumerate(files, start=2):
        block = budget.block_positions(_resident(sizes, n, "suffix"))
        for s in range(0, f.length, block):
            key = f.read("keys", s, s + block)
            context, word = key // V, key % V
            suffix = word if n == 2 else _search(prev_keys, prev_suffix[context] * V + word)  # eq. (2)
            f.columns["suffix"].append(suffix)
            f.columns["bos"].append(prev_bos[context])  # eq. (3)
            del key, context, word, suffix
        if n < len(sizes):  # order n's tables, for order n + 1 (order n - 1's dropped first)
            del prev_keys, prev_suffix, prev_bos
            prev_keys, prev_suffix, prev_bos = f.whole("keys"), f.whole("suffix"), f.whole("bos")


# --- counting, then estimation streamed from the same folder ---------------------------------------------------


def fit_file(
    path: str | os.PathLike,
    order: int,
    strategy,
    tokenizer: Tokenizer | None = None,
    memory: int = 1 << 30,
    temp_dir: str | os.PathLike | None = None,
    encoding: str = "utf-8",
    progress=None,
    report: dict | None = None,
    save=None,
) -> tuple[tuple[list, list, list, list] | None, Vocabulary]:
    """:func:`count_file`'s passes, then the smoothing of ``strategy`` (no cutoffs) streamed over the count
    tables in the same temporary folder (:mod:`.external_smoothing`, which says what stays in memory):
    ``((keys, log p, log b, discounts), vocabulary)``, as :func:`.fitting.backoff_tables` gives them from the
    counts in memory, to the last bit. ``report`` as for :func:`count_file`, and ``sequences``.

    Without ``save`` the finished tables are read into memory whole (24 bytes a distinct n-gram, a warning when
    that is more than the budget). With ``save``, a callable, ``save(tables, vocabulary, block)`` is called
    while the folder still exists, with the tables of orders 2 .. N as column files (objects with ``dtype``,
    ``length`` and ``read(start, stop)``: :class:`_Column`) and ``block`` the entries a read may take: it
    writes the model file from them a block at a time (:meth:`NGramModel.fit_file
    <scratchgen.ngram.model.NGramModel.fit_file>` with ``output``). The tables returned are then None.
    """
    from . import external_smoothing

    budget = Budget(memory)
    report = {} if report is None else report
    with _spilled_counts(path, order, tokenizer, budget, temp_dir, encoding, progress, report) as (
        c1,
        files,
        vocab,
        folder,
    ):
        report["sequences"] = int(c1[EOS])  # one </s> a sequence
        V = len(vocab)
        sizes = [V] + [f.length for f in files]
        block = external_smoothing.block_entries(budget.memory, sizes)
        report["estimate_block"] = block
        if save is None:
            tables = external_smoothing.estimate(c1, files, V, strategy, folder, block)
        else:
            logp1, logp, bow, discounts = external_smoothing.estimate_columns(c1, files, V, strategy, folder, block)
            keys = [np.arange(V, dtype=np.int64)] + [f.columns["keys"] for f in files]
            record = discount_record(discounts if strategy.records_discounts else [])
            save((keys, [logp1] + logp, bow, record), vocab, block)
            return None, vocab
    final = external_smoothing.MODEL_BYTES * sum(sizes)
    if final > budget.memory:
        warnings.warn(
            f"the model's {sum(sizes):,} n-grams take {_size(final)} of memory, more than the budget of "
            f"{_size(budget.memory)}: its final arrays are held in memory (give an output file to write them "
            "a block at a time)",
            UserWarning,
            stacklevel=2,
        )
    return tables, vocab
