"""Counting a corpus file a chunk at a time: the distinct n-grams of each chunk merged into running totals.

:meth:`NGramCounts.from_flat <scratchgen.ngram.counting.NGramCounts.from_flat>` on a whole corpus holds one id
and one key a position: memory grows with the corpus, and its sorts outgrow the caches. Here the file is read a
piece of whole lines at a time straight into ids (the reader of :func:`scratchgen.corpus.read_ids`), each
piece is counted by ``from_flat`` into its sorted tables of distinct n-grams, and the tables are merged into
running totals. Memory then grows with the number of *distinct* n-grams plus one chunk, not with the positions.
The result is the same :class:`NGramCounts` and vocabulary as ``read_ids`` then ``from_flat``, equal to the last
bit (``tests/ngram/test_chunked.py``; :func:`scratchgen.ngram.external.count_in_memory` is the reference).

**Ids while reading.** The vocabulary's ids (by descending count) are known only at the end, so chunks are
counted in *reading ids*: a token's id is 3 + the order in which it was first met (word level: the reader's
provisional id; character level: code points are numbered as they are first met, in code point order within a
chunk), so that ``<unk>``, ``<s>`` and ``</s>`` keep 0, 1 and 2. Keys (counting.py eq. (2)) use a width
C >= the reading ids so far, a power of two; when a chunk brings C over it, C doubles and the totals' keys are
rewritten::

    key'(g) = (key(g) // C) * C' + key(g) % C          (the context's index and the last word kept)      (1)

which keeps their order (both sort by context index, then word).

**Merging two tables** A and B goes up the orders as :meth:`NGramCounts.merge` does (counting.py eq. (5)): once
the (n-1)-grams are numbered in the merged table by increasing maps m_A, m_B, each table's n-gram keys are
renumbered ``m(key // C) * C + key % C`` and stay sorted, so their union is the merge of two sorted runs: a
stable sort of the two concatenated (a run-aware sort: linear), whose permutation also gives each entry's
place in the union (the next order's maps); equal keys' counts are added.

**Merging many.** Tables wait on a stack, and the top two are merged while the lower one is at most twice the
size of the upper (as a binary counter carries): every n-gram goes through about log2(chunks) merges, not one
merge a chunk, and the stack holds at most twice the totals.

**At the end** the vocabulary is numbered from the unigram counts (``_Encoder.numbered``, as ``read_ids``), and
the totals are renamed to its ids and re-sorted (:meth:`NGramCounts.from_keys` builds the suffix and ``<s>``
tables). A file of one chunk skips all this: its ids are renamed and counted once, as ``read_ids`` then
``from_flat`` count them.

**Two threads.** Reading a piece of the file, decoding, normalising and tokenizing it into reading ids is about a
third of the work, counting and merging the chunks the rest; they are independent but for the order of the chunks.
On a machine with a second core the chunks are read by a thread of their own, one chunk ahead of the counting
(:class:`_ReadAhead`). Both sides spend much of their time in NumPy operations and file reads, which let go of the
interpreter lock, so the second core does real work: on 111 MB of English (a busy machine, two runs) the reader
thread took about 4 s of CPU and the main thread (counting, then smoothing and saving) about 8 s, the command's
CPU time about the same as in one thread. The chunks, and so the result and the report, are the same either way
(the tests count both ways). The reader makes a chunk only when the counter has taken the one before, and waits
blocked (it never spins); its pieces are half the size (``READ_AHEAD_CHARS``), because reading one and counting a
chunk now hold their memory at the same time. (The command keeps both threads on one glibc heap,
:func:`scratchgen.allocator.steady_chunk_memory`; in a user's process, which the library leaves alone, the reader
thread's own heap may keep some 10 MiB more at the peak.)

**Memory** is the interpreter with NumPy (about 30 MB), the totals (8 bytes an entry while keys fit uint32 and
counts int32, else up to 16) and, at the peak, one merge's copies of one order, or one piece being read
(``READ_CHARS``), or one chunk being counted (``CHUNK_CHARS``) -- with the reader thread, one chunk counted
while the next one is read: not the corpus. With a budget (:func:`count`),
chunks shrink to fit it, and totals that outgrow it go to the spilling path of :mod:`.external`.

Letters: N order, C key width (a power of two over the reading ids), U_n distinct n-grams of order n.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import numpy as np

from ..errors import CorpusError, ScratchgenError
from ..text import Tokenizer, Vocabulary
from .counting import NGramCounts

__all__ = ["CHUNK_CHARS", "ENTRY_BYTES", "count", "count_chunked", "count_within", "merge_tables"]

#: Characters of text counted at once, by level: about half a million character positions, or 2 MB of English at
#: word level (450 k positions; fewer chunks, fewer merges: a merge costs the totals' size), some 14 and 26 MB at
#: the peak of counting them (tracemalloc on tinyshakespeare; benchmarks/bench_text.py measures the whole
#: command's peak RSS). Halving the character chunk costs no time (its totals are small); the word chunk's would.
CHUNK_CHARS = {"char": 1 << 19, "word": 1 << 21}
#: Characters read and tokenized at a time (a chunk is gathered from such pieces): reading holds the piece's
#: text and the tokenizer's arrays, about 15 bytes a character at word level, so pieces smaller than the word
#: level's chunks keep reading below counting at the peak, at no cost in time.
READ_CHARS = 1 << 19
#: The pieces when a thread of their own reads them (:class:`_ReadAhead`): then reading a piece and counting a
#: chunk hold their memory at the same time, and half the pieces' size keeps the command's peak below lmplz's
#: (the reader has time to spare for the pieces' overhead: it works about half as long as the counting).
READ_AHEAD_CHARS = 1 << 18
#: Bytes an entry (key, count) of the running totals costs at the peak of a merge (its 16 bytes, the merge's
#: copies, and the tables waiting on the stack): with a budget M, the totals may hold M / ENTRY_BYTES entries.
ENTRY_BYTES = 64
#: Bytes a character of a chunk costs at the peak of reading and counting it (text, tokens, from_flat's arrays).
CHUNK_BYTES_PER_CHAR = 128
#: The reserved ids below the reading ids (<unk>, <s>, </s>).
_SPECIALS = len(Vocabulary.SPECIALS)


def _narrow_keys(keys: np.ndarray) -> np.ndarray:
    """Sorted keys as uint32 when the largest fits (half of int64's memory; at word level the keys of a
    table are below U_{n-1} * C, under 2^32 for corpora of a few million distinct n-grams), else int64."""
    return keys.astype(np.uint32) if len(keys) and keys[-1] < 2**32 else keys.astype(np.int64, copy=False)


def _narrow_counts(counts: np.ndarray, total: int) -> np.ndarray:
    """Counts whose sum is ``total`` as int32 when that fits (then every count does), else int64."""
    return counts.astype(np.int32 if total < 2**31 else np.int64, copy=False)


class Table:
    """The distinct n-grams of orders 1 .. N of some text, under key width C: ``counts[0]`` dense (C,), and
    ``keys[n-1]``, ``counts[n-1]`` sorted distinct keys (eq. (2) of counting.py) and their counts (U_n,).

    The keys and counts above the unigrams are held in the narrowest of uint32 / int64 and int32 / int64 that
    holds them (:func:`_narrow_keys`, :func:`_narrow_counts`): 8 bytes an entry instead of 16 while they fit.
    """

    def __init__(self, width: int, keys: list, counts: list):
        self.width, self.keys, self.counts = width, keys, counts

    @property
    def size(self) -> int:
        """Entries held (the dense unigram counts included)."""
        return sum(len(c) for c in self.counts)

    def widened(self, width: int) -> Table:
        """The same table under a larger key width: eq. (1)."""
        C = self.width
        if width == C:
            return self
        c1 = np.zeros(width, dtype=np.int64)
        c1[:C] = self.counts[0]
        b, grow = C.bit_length() - 1, width.bit_length() - C.bit_length()  # C = 2^b, C' = C * 2^grow
        wide = [k.astype(np.int64, copy=False) for k in self.keys[1:]]  # (uint32 keys would overflow the shift)
        keys = [np.arange(width, dtype=np.int64)] + [_narrow_keys((k >> b << (b + grow)) | (k & (C - 1))) for k in wide]
        return Table(width, keys, [c1] + self.counts[1:])


def merge_tables(a: Table, b: Table, consume: bool = False) -> Table:
    """The counts of two tables together (the same key width): "merging two tables" of the module docstring.
    ``consume``: each order of ``a`` and ``b`` is let go as soon as it is merged (the tables are emptied), so
    that the merge holds about one table's worth of memory less at its peak.

    The plain version is :meth:`NGramCounts.merge` (which also carries the suffix and ``<s>`` tables); the tests
    check they agree."""
    if a.width != b.width or len(a.keys) != len(b.keys):
        raise ScratchgenError("can only merge tables of the same order and key width")
    C, N = a.width, len(a.keys)
    bits = C.bit_length() - 1  # C = 2^bits: key // C and key % C are a shift and a mask
    keys, counts = [a.keys[0]], [a.counts[0] + b.counts[0]]
    map_a = map_b = None  # old index -> merged index of the (n-1)-grams (the ids themselves at n = 1)
    for n in range(2, N + 1):
        key_a, key_b = a.keys[n - 1], b.keys[n - 1]
        if map_a is not None and map_b is not None:  # counting.py eq. (5): increasing maps keep each sorted
            key_a = (map_a[key_a >> bits].astype(np.int64) << bits) | (key_a & (C - 1)).astype(np.int64)  # (U_a,)
            key_b = (map_b[key_b >> bits].astype(np.int64) << bits) | (key_b & (C - 1)).astype(np.int64)  # (U_b,)
        U_a = len(key_a)
        both = np.concatenate([key_a, key_b])  # (U_a + U_b,) two sorted runs
        del key_a, key_b
        if consume:
            a.keys[n - 1] = b.keys[n - 1] = None
        perm = np.argsort(both, kind="stable")  # a run-aware merge sort: one merge of two runs
        ordered = both[perm]
        del both
        first = np.empty(len(ordered), dtype=bool)
        first[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        starts = np.flatnonzero(first)  # (U,)
        keys.append(_narrow_keys(ordered[starts]))
        del ordered
        # The counts of each run of equal keys (one entry, or one of each table) added: differences of a cumsum.
        total = np.cumsum(np.concatenate([a.counts[n - 1], b.counts[n - 1]])[perm])  # (U_a + U_b,)
        if consume:
            a.counts[n - 1] = b.counts[n - 1] = None
        ends = total[np.append(starts[1:], len(total)) - 1] if len(starts) else total  # (U,) sums up to each end
        counts.append(_narrow_counts(np.diff(ends, prepend=0), int(ends[-1]) if len(ends) else 0))
        del total, ends, starts
        if n < N:  # each entry's index in the union: the maps of the next order
            place = np.empty(len(perm), dtype=np.int32 if len(perm) < 2**31 - 1 else np.int64)  # (U_a + U_b,)
            place[perm] = np.cumsum(first, dtype=place.dtype)
            place -= 1
            map_a, map_b = place[:U_a], place[U_a:]
        del perm, first
    return Table(C, keys, counts)


class _Totals:
    """The running totals: a stack of tables merged as a binary counter carries (the module docstring)."""

    def __init__(self) -> None:
        self.stack: list[Table] = []
        self.merges = 0

    def add(self, table: Table) -> None:
        self.stack.append(table)
        while len(self.stack) > 1 and self.stack[-2].size <= 2 * self.stack[-1].size:
            top = self.stack.pop()
            self.stack[-1] = merge_tables(self.stack[-1], top, consume=True)
            self.merges += 1

    def widen(self, width: int) -> None:
        self.stack = [t.widened(width) for t in self.stack]

    @property
    def size(self) -> int:
        return sum(t.size for t in self.stack)

    def total(self) -> Table:
        while len(self.stack) > 1:
            top = self.stack.pop()
            self.stack[-1] = merge_tables(self.stack[-1], top, consume=True)
            self.merges += 1
        return self.stack[0]


class _ReadingIds:
    """Reading ids (3 + first-met order) of the reader's provisional ids: at word level the provisional id is
    already the first-met order; at character level it is the code point, numbered here as first met."""

    def __init__(self, char: bool):
        self.char = char
        self.of_code = np.full(0, -1, dtype=np.int64)  # (code points,) reading id of a code point, -1 unmet
        self.codes: list[int] = []  # reading id - 3 -> code point

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        if not self.char:
            return ids.astype(np.int32 if len(ids) < 2**31 - 1 else np.int64) + _SPECIALS
        if len(ids):
            top = int(ids.max()) + 1
            if top > len(self.of_code):
                self.of_code = np.concatenate([self.of_code, np.full(top - len(self.of_code), -1, np.int64)])
            met = np.zeros(top, dtype=bool)
            met[ids] = True
            new = np.flatnonzero(met & (self.of_code[:top] < 0))  # code points met for the first time
            self.of_code[new] = np.arange(len(new)) + len(self.codes) + _SPECIALS
            self.codes.extend(new.tolist())
        return self.of_code[ids].astype(np.int32)

    def count(self, encoder) -> int:
        """Reading ids given so far, the specials included."""
        return _SPECIALS + (len(self.codes) if self.char else len(encoder.seen))


def count(
    path: str | os.PathLike,
    order: int,
    tokenizer: Tokenizer | None = None,
    memory: int | None = None,
    temp_dir: str | os.PathLike | None = None,
    encoding: str = "utf-8",
    progress=None,
    report: dict | None = None,
) -> tuple[NGramCounts, Vocabulary]:
    """The n-grams of a file (one sequence a line) and its vocabulary: what ``scratchgen train ngram`` and
    :meth:`NGramModel.fit_file <scratchgen.ngram.model.NGramModel.fit_file>` count.

    Chunked (:func:`count_chunked`); with ``memory`` (bytes, the budget M), chunks of at most
    M / ``CHUNK_BYTES_PER_CHAR`` characters, and when the running totals outgrow M / ``ENTRY_BYTES`` entries,
    the file is counted again by :func:`scratchgen.ngram.external.count_file`, which spills sorted runs to a
    folder under ``temp_dir``: disk is used only when memory is not enough. Either way the result is the same,
    to the last bit. ``progress`` is advanced by the lines read (the chunked pass). ``report`` receives
    ``spilled`` (bool) and what the counting function reports.
    """
    report = {} if report is None else report
    if memory is None:
        counted = count_chunked(path, order, tokenizer, encoding, progress=progress, report=report)
        report["spilled"] = False
        assert counted is not None  # no limit: never None
        return counted
    counted = count_within(path, order, tokenizer, memory, temp_dir, encoding, progress, report)
    if counted is None:  # the distinct n-grams outgrow the budget: sorted runs on disk
        from . import external

        counted = external.count_file(path, order, tokenizer, memory, temp_dir, encoding, report=report)
    return counted


def count_within(
    path: str | os.PathLike,
    order: int,
    tokenizer: Tokenizer | None,
    memory: int,
    temp_dir: str | os.PathLike | None = None,
    encoding: str = "utf-8",
    progress=None,
    report: dict | None = None,
    estimate_cap: int | None = None,
) -> tuple[NGramCounts, Vocabulary] | None:
    """:func:`count`'s chunked pass within ``memory`` bytes: ``(counts, vocabulary)``, or None as soon as the
    running totals outgrow M / ``ENTRY_BYTES`` entries, or min(M, ``estimate_cap``) / ``external.ESTIMATE_BYTES``
    (the counts returned are smoothed in memory, at that many bytes an n-gram), then the caller spills.
    ``estimate_cap`` (None: the budget) is given when the caller can also smooth from disk: estimation in memory
    is then kept to models that take at most that much (``external.IN_MEMORY_CAP``). ``report["spilled"]``
    says which. A bad budget or temporary folder is named before the file is read."""
    from . import external

    external.Budget(memory)
    if temp_dir is not None and not os.path.isdir(temp_dir):
        raise ScratchgenError(f"the temporary folder {os.fspath(temp_dir)!r} does not exist")
    report = {} if report is None else report
    level = (tokenizer or Tokenizer()).level
    chunk = max(4096, min(CHUNK_CHARS[level], int(memory) // CHUNK_BYTES_PER_CHAR))
    estimating = int(memory) if estimate_cap is None else min(int(memory), int(estimate_cap))
    limit = min(int(memory) // ENTRY_BYTES, estimating // external.ESTIMATE_BYTES)
    counted = count_chunked(path, order, tokenizer, encoding, chunk, progress, report, limit)
    report["spilled"] = counted is None
    return counted


def _width(needed: int) -> int:
    return max(256, 1 << (int(needed) - 1).bit_length())


def count_chunked(
    path: str | os.PathLike,
    order: int,
    tokenizer: Tokenizer | None = None,
    encoding: str = "utf-8",
    chunk_chars: int | None = None,
    progress=None,
    report: dict | None = None,
    limit: int | None = None,
) -> tuple[NGramCounts, Vocabulary] | None:
    """Count the n-grams of orders 1 .. ``order`` of a file (one sequence a line) a chunk of ``chunk_chars``
    characters at a time (default ``CHUNK_CHARS`` of the tokenizer's level), merging each chunk's distinct
    n-grams into running totals (the module docstring).

    Returns ``(counts, vocabulary)``, equal to the last bit to :func:`scratchgen.corpus.read_ids` then
    :meth:`NGramCounts.from_flat` on the same file. ``progress`` is advanced by the lines read. ``report`` (a dict,
    optional) receives ``chunks``, ``merges`` and ``peak_entries`` (the most (key, count) entries held at once).
    ``limit`` (entries, optional): when the running totals hold more, counting stops and None is returned (the
    caller then counts with spills to disk: :func:`scratchgen.ngram.external.count_file`).
    """
    from ..corpus import _Encoder

    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
        raise ScratchgenError(f"order must be an integer >= 1, got {order!r}")
    tokenizer = tokenizer or Tokenizer()
    chunk_chars = CHUNK_CHARS[tokenizer.level] if chunk_chars is None else chunk_chars
    if not isinstance(chunk_chars, (int, np.integer)) or isinstance(chunk_chars, bool) or chunk_chars < 1:
        raise ScratchgenError(f"chunk_chars must be an integer >= 1, got {chunk_chars!r}")
    encoder = _Encoder(tokenizer, None)
    reading = _ReadingIds(encoder.char)
    ahead = _reader_thread()
    piece_chars = min(int(chunk_chars), READ_AHEAD_CHARS if ahead else READ_CHARS)
    read: Generator | _ReadAhead = _chunks(path, encoding, int(chunk_chars), piece_chars, encoder, reading, progress)
    if ahead:
        read = _ReadAhead(read)
    totals, width, chunks, peak = _Totals(), 0, 0, 0
    try:
        for g, lengths, n_ids, last in read:
            if last and not chunks:  # the whole file is one chunk: counted in the final ids at once, as read_ids
                C = _width(n_ids)  # then from_flat
                vocab, rename = _vocabulary(np.bincount(g, minlength=C).astype(np.int64), encoder, reading)
                if report is not None:
                    report.update(chunks=1, merges=0, peak_entries=0)
                return NGramCounts.from_flat(rename[g], lengths, int(order), len(vocab)), vocab
            width = _count_chunk(totals, width, g, lengths, int(order), n_ids)
            del g, lengths
            chunks += 1
            if last:
                break
            peak = max(peak, totals.size)
            if limit is not None and totals.size > limit:
                return None
    finally:
        read.close()  # (a generator, or the reader thread) stopped at an early return or an error: the file closed
    if not chunks:
        raise CorpusError(f"corpus {os.fspath(path)!r} has no non-empty sequence")
    table = totals.total()
    if report is not None:
        report.update(chunks=chunks, merges=totals.merges, peak_entries=max(peak, table.size))
    return _finish(table, encoder, reading)


def _chunks(
    path: str | os.PathLike, encoding: str, chunk_chars: int, piece_chars: int, encoder, reading: _ReadingIds, progress
) -> Generator[tuple[np.ndarray, np.ndarray, int, bool], None, None]:
    """The chunks of a file to count: ``(g, lengths, n_ids, last)``, the reading ids (T,) and line lengths of
    about ``chunk_chars`` characters of whole non-empty lines, the reading ids given so far (the key width is
    chosen from it) and whether it is the file's last chunk.

    A chunk is gathered from pieces of ``piece_chars`` characters (reading a piece holds its text and the
    tokenizer's arrays: a few times its characters in bytes) and is complete when the next piece would take it
    over ``chunk_chars``: the chunks depend on the file alone. Everything this reads and changes (the file,
    ``encoder``, ``reading``, ``progress``) is touched by no one else until it ends, so it may run in a thread
    of its own (:class:`_ReadAhead`)."""
    from ..corpus import _pieces

    pending: list[tuple[np.ndarray, np.ndarray]] = []  # the chunk being gathered: (reading ids, line lengths)
    pending_chars = 0
    for piece in _pieces(path, encoding, piece_chars):
        chars = len(piece)
        ids, lengths = encoder.encode(piece)
        del piece
        if progress is not None:
            progress.update(len(lengths))
        lengths = lengths[lengths > 0]  # empty lines are skipped, as read_ids skips them
        if not len(lengths):
            continue
        g = reading(ids)  # (T,) reading ids
        del ids
        if pending and pending_chars + chars > chunk_chars:  # the chunk is full: the pieces so far go
            full, pending, pending_chars = _joined(pending), [], 0  # (the pieces let go while it is counted)
            yield (*full, reading.count(encoder), False)
            del full
        pending.append((g, lengths))
        pending_chars += chars
        del g
    if pending:
        full, pending = _joined(pending), []
        yield (*full, reading.count(encoder), True)


def _reader_thread() -> bool:
    """Whether to read and tokenize in a thread of its own while counting: when this process may run on more
    than one core (on one, the two threads would only take turns)."""
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # (no sched_getaffinity: macOS, Windows)
        return (os.cpu_count() or 1) > 1


class _ReadAhead:
    """The items of an iterator made by a thread of their own, one item ahead of the caller ("two threads" in
    the module docstring).

    The thread makes an item only once the caller has taken the one before (a semaphore of one place), so at
    any time there is at most one item being used, and one being made or waiting; while the caller is behind,
    the thread waits, blocked (no spinning: on a busy machine it costs nothing). An error of the thread is
    raised in the caller at the item where it happened. :meth:`close` stops the thread and waits for it
    (after the item it is making, if any); the iterator is closed in the thread that uses it.
    """

    _END = object()

    def __init__(self, items: Iterator):
        import queue
        import threading

        self.items = items
        self.queue: queue.SimpleQueue = queue.SimpleQueue()  # never more than one item in it
        self.room = threading.Semaphore(1)  # released when the caller takes an item: the next may be made
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scratchgen-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                self.room.acquire()
                if self.stop.is_set():
                    return
                item = next(self.items, self._END)
                self.queue.put((item, None))
                if item is self._END:
                    return
                del item
        except BaseException as e:  # handed to the caller, raised there
            self.queue.put((self._END, e))
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> _ReadAhead:
        return self

    def __next__(self):
        if not self.thread.is_alive() and self.queue.empty():  # ended (or closed) and all taken
            raise StopIteration
        item, error = self.queue.get()
        self.room.release()
        if error is not None:
            self.thread.join()
            raise error
        if item is self._END:
            self.thread.join()
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the thread and wait for it to end."""
        self.stop.set()
        self.room.release()  # (it may be waiting for room)
        self.thread.join()


def _joined(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The reading ids and line lengths of pieces read one after another, as one chunk."""
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate([g for g, _ in pieces]), np.concatenate([lengths for _, lengths in pieces])


def _count_chunk(totals: _Totals, width: int, g: np.ndarray, lengths: np.ndarray, order: int, n_ids: int) -> int:
    """Count one chunk's reading ids into a table and add it to the totals (widened first when its ids need a
    larger key width, eq. (1)); the key width now."""
    needed = _width(n_ids)
    if needed > width:
        width = needed
        totals.widen(width)
    c = NGramCounts.from_flat(g, lengths, order, width, _tables=True)
    keys = c.keys[:1] + [_narrow_keys(k) for k in c.keys[1:]]
    counts = c.counts[:1] + [_narrow_counts(t, len(g) + 2 * len(lengths)) for t in c.counts[1:]]  # sum <= positions
    del c
    totals.add(Table(width, keys, counts))
    return width


def _vocabulary(c1: np.ndarray, encoder, reading: _ReadingIds) -> tuple[Vocabulary, np.ndarray]:
    """The vocabulary numbered from the counts ``c1`` of the reading ids (as ``read_ids`` numbers it), and the
    map from reading ids to its ids, shape (len(c1),) (a literal ``<unk>`` word to 0)."""
    n_reading = reading.count(encoder) - _SPECIALS
    if reading.char:  # the reader's provisional id is the code point: its counts by code point
        codes = np.asarray(reading.codes, dtype=np.int64)
        by_code = np.zeros(int(codes.max()) + 1 if len(codes) else 0, dtype=np.int64)
        by_code[codes] = c1[_SPECIALS : _SPECIALS + n_reading]
        vocab, new_id, _, _ = encoder.numbered(by_code, 1, None)
        new_id = new_id[codes] if len(codes) else new_id[:0]  # (reading ids - 3,) final ids
    else:
        vocab, new_id, _, _ = encoder.numbered(c1[_SPECIALS : _SPECIALS + n_reading].copy(), 1, None)
    rename = np.zeros(len(c1), dtype=np.int64)  # (C,) reading id -> final id
    rename[:_SPECIALS] = np.arange(_SPECIALS)
    rename[_SPECIALS : _SPECIALS + n_reading] = new_id
    return vocab, rename


def _finish(table: Table, encoder, reading: _ReadingIds) -> tuple[NGramCounts, Vocabulary]:
    """The vocabulary of the unigram counts, and the totals renamed to its ids and re-sorted."""
    C, c1 = table.width, table.counts[0]
    bits = C.bit_length() - 1
    vocab, rename = _vocabulary(c1, encoder, reading)
    V = len(vocab)
    used = np.flatnonzero(c1)  # the ids that occur, renamed one to one (0, unused while reading, included)
    counts1 = np.zeros(V, dtype=np.int64)
    counts1[rename[used]] = c1[used]
    keys, counts = [np.arange(V, dtype=np.int64)], [counts1]
    index = rename  # old index of the (n-1)-grams -> new index
    for n in range(2, len(table.keys) + 1):
        old = table.keys[n - 1].astype(np.int64, copy=False)
        key = index[old >> bits] * V + rename[old & (C - 1)]  # (U_n,) counting.py eq. (2) in the final ids
        perm = np.argsort(key)  # distinct keys: any sort is the one order
        index = np.empty(len(key), dtype=np.int64)
        index[perm] = np.arange(len(key))
        keys.append(key[perm])
        counts.append(table.counts[n - 1][perm].astype(np.int64, copy=False))
    return NGramCounts.from_keys(V, keys, counts), vocab
