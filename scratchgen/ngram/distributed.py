"""Counting n-grams on a Dask cluster: each partition counted where it lies, the counts merged exactly.

N-gram counts are sums over the corpus, so counting can be split anywhere: count every part on its
own and add the tables. The only thing the parts must agree on is the numbering of the tokens (the
vocabulary ids, which order the keys of :mod:`.counting`), and the vocabulary needs the token
frequencies of the whole corpus. So the job runs in three rounds, on Dask's ``distributed``
scheduler (the engine; nothing here schedules, retries or moves data itself):

1. **Count locally.** Each partition is counted on a worker as one process counts a whole file
   (:func:`scratchgen.ngram.chunked.count_chunked`'s steps): a piece of about ``CHUNK_CHARS`` at a time
   is read straight into *reading ids* (3 + the order in which a token was first met), counted into
   sorted tables of distinct n-grams and merged into running totals (:func:`~.chunked.merge_tables`).
   A partition of a file is a byte range ``[start, end)`` that the worker reads itself: it holds the
   lines whose first byte lies in the range. The table stays on the worker; only the partition's
   tokens and their unigram counts go to the client.
2. **One vocabulary.** The client adds the unigram counts of all partitions and numbers the tokens as
   one process numbers them (``corpus._counted_vocabulary``: by descending count, ties by code point),
   so the ids are those of a single-machine fit.
3. **Renumber and merge.** Each worker renames its table's ids to the global ids (the key width C a
   power of two >= V, counting.py eq. (2)) and re-sorts each order once, as ``chunked`` does at its
   end. The tables are then added up a binary tree of :func:`~.chunked.merge_tables` (each merge is
   exact: integer counts add), log2(P) levels deep for P partitions, on the workers. The client
   receives one table, rewrites its keys to width V (eq. (1) below) and smooths it.

Keys under width C (a power of two, a shift and a mask) and under width V (the model's) differ only in
the multiplier of the context's index::

    key_V(g) = (key_C(g) // C) * V + key_C(g) % C                                            (1)

which keeps their order, since every id is below V.

Only counts cross the network: a partition's sorted keys and counts (NumPy arrays, 16 bytes an n-gram
and order, sent as raw buffers) and its tokens. Since the merged table is bit for bit the table of the
whole corpus, the model smoothed from it is identical to ``NGramModel.fit`` on the same text
(tests/ngram/test_distributed.py checks it). A worker holds one piece being counted, its running
totals, and the two tables of a merge.

Reading files: each line loses its ``\\r\\n``/``\\r``/``\\n`` (universal newlines) and is one sequence, as
:func:`scratchgen.corpus.iter_corpus` reads it in ``lines`` mode (empty lines are skipped). Files are cut
at ``\\n`` bytes, so an encoding in which the newline is not the one byte 0x0a (UTF-16, UTF-32) is read
one partition a file. The workers must see the files at the same paths (a shared file system).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..corpus import check_corpus_file
from ..errors import CorpusError, ScratchgenError
from ..text import Tokenizer, Vocabulary, check_tokens
from .chunked import CHUNK_CHARS, Table, _count_chunk, _ReadingIds, _Totals, _width, merge_tables
from .counting import NGramCounts
from .fitting import build_vocab

__all__ = ["count_with_dask", "connect", "global_vocabulary"]

#: Bytes of a file per partition when files are read by the workers.
DEFAULT_BLOCKSIZE = 64 * 2**20

_SPECIALS = len(Vocabulary.SPECIALS)  # <unk> <s> </s>: ids 0, 1, 2 everywhere


def _require_dask():
    try:
        import distributed
    except ImportError:
        raise ScratchgenError("counting on a Dask cluster needs Dask: pip install 'scratchgen[dask]'") from None
    return distributed


#: What Dask's nanny sets in a worker's environment before starting it, and counting does without. Dask sets
#: ``MALLOC_TRIM_THRESHOLD_=65536`` so that workers give freed memory back to the system at once; but setting it
#: turns off glibc's sliding mmap threshold, so every array over 128 KiB is a fresh ``mmap`` whose pages fault in
#: one by one and are unmapped when it is freed. Counting makes many such temporaries (a piece's ids, each
#: order's keys, each merge's copies): with it, a worker spent 2.4x the CPU time of one process on the same
#: ranges (6.1 against 2.6 CPU-s for 24 MB of words, order 5). For a cluster that you start yourself, set it in
#: the Dask configuration of the machines that start the workers (a YAML file in ~/.config/dask:
#: ``distributed: {nanny: {pre-spawn-environ: {MALLOC_TRIM_THRESHOLD_: null}}}``; an environment variable
#: cannot do it, as Dask lowercases the key).
WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


#: Where a local cluster's scheduler serves HTTP: a free port on the loopback interface. Dask's scheduler always
#: starts an HTTP server (health and metrics routes, and the dashboard when asked for); ``LocalCluster`` gives
#: ``dashboard_address=None`` to the scheduler, which turns the dashboard off but still serves HTTP on the default
#: port 8787 of every interface: a second cluster (or anything else on 8787) then meets a warning and another
#: port. Port 0 lets the system choose one that is free.
LOCAL_HTTP_ADDRESS = "127.0.0.1:0"


def connect(address: str):
    """A ``distributed.Client`` for a scheduler address, or for ``local:N``, a ``LocalCluster`` of N worker
    processes (one thread each) on this machine, started without Dask's ``MALLOC_TRIM_THRESHOLD_`` (see
    :data:`WORKER_ENVIRON`) and without a dashboard: its scheduler's HTTP server (which Dask always starts)
    listens on a free loopback port, never on 8787 (:data:`LOCAL_HTTP_ADDRESS`). Close it (``client.close()``,
    and ``client.cluster.close()`` for a local one) when done, or use it as a context manager."""
    distributed = _require_dask()
    if address.startswith("local:"):
        import dask

        n = address.partition(":")[2]
        if not n.isdigit() or int(n) < 1:
            raise ScratchgenError(f"--dask local:N needs a number of workers N >= 1, got {address!r}")
        with dask.config.set(WORKER_ENVIRON):
            cluster = distributed.LocalCluster(
                n_workers=int(n),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,  # no dashboard (the scheduler's dashboard=False) ...
                scheduler_kwargs={"dashboard_address": LOCAL_HTTP_ADDRESS},  # ... nor its HTTP server on :8787
            )
        return distributed.Client(cluster)
    try:
        return distributed.Client(address, timeout="20s")
    except (OSError, TimeoutError) as e:
        raise ScratchgenError(f"cannot reach the Dask scheduler at {address!r}: {e}") from None


# --- reading a byte range of a file --------------------------------------------------------------------


def _splits(path: str, blocksize: int, encoding: str) -> list[tuple[str, int, int]]:
    """The partitions of a file: byte ranges ``(path, start, end)`` of ``blocksize`` bytes, or ``(path, 0, -1)``,
    the whole file read as text, when the encoding's newline is not the byte 0x0a."""
    size = os.path.getsize(path)
    try:
        cuttable = "\n".encode(encoding) == b"\n" and "\r".encode(encoding) == b"\r"
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r} (try utf-8, latin-1 or cp1252)") from None
    if not cuttable:
        return [(path, 0, -1)]
    return [(path, start, min(start + blocksize, size)) for start in range(0, max(size, 1), blocksize)]


def _range_pieces(path: str, start: int, end: int, encoding: str, piece_bytes: int) -> Iterator[str]:
    """The lines of ``path`` whose first byte lies in ``[start, end)``, decoded, in pieces of about
    ``piece_bytes`` bytes of whole lines, each ending in a newline (universal newlines, as ``open`` reads
    them: a piece is cut after a ``\\n`` byte, so no ``\\r\\n`` is split)."""
    from ..corpus import _decode_error, _pieces

    if end < 0:  # the whole file, as one process reads it
        yield from _pieces(path, encoding, piece_bytes)
        return
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()  # the line holding byte start - 1 belongs to the partition before
        pos, carry = f.tell(), b""
        while pos < end or carry:
            block = f.read(min(piece_bytes, end - pos)) if pos < end else b""
            pos = pos + len(block) if block else end  # (a file cut short: its end)
            if pos >= end and block[-1:] != b"\n" and (block or carry):
                block += f.readline()  # the last line started in the range: read it to its end
            data = carry + block
            cut = data.rfind(b"\n") + 1 if pos < end else len(data)
            if cut == 0:  # a line longer than a piece: keep reading
                carry = data
                continue
            carry = data[cut:]
            try:
                text = data[:cut].decode(encoding)  # a whole number of lines: no character is split
            except UnicodeError as e:
                raise _decode_error(path, path, encoding, e) from None
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            yield text if text.endswith("\n") else text + "\n"


# --- the three rounds (each a plain function, run on a worker) --------------------------------------

#: A partition counted in round 1: its ordinary tokens (token i has local id 3 + i) and its table of
#: distinct n-grams under those ids; None for a partition without a sequence.
Part = tuple[list[str], Table] | None


def _count_range(path: str, start: int, end: int, order: int, tokenizer: Tokenizer, encoding: str) -> Part:
    """Round 1 for a byte range of a file: :func:`~.chunked.count_chunked`'s loop over the range's pieces,
    kept in reading ids (the client numbers the vocabulary)."""
    from ..corpus import _Encoder

    encoder = _Encoder(tokenizer, None)
    reading = _ReadingIds(encoder.char)
    totals, width = _Totals(), 0
    for piece in _range_pieces(path, start, end, encoding, CHUNK_CHARS[tokenizer.level]):
        ids, lengths = encoder.encode(piece)
        del piece
        lengths = lengths[lengths > 0]  # empty lines are skipped, as read_ids skips them
        if not len(lengths):
            continue
        width = _count_chunk(totals, width, reading(ids), lengths, order, reading.count(encoder))
        del ids
    if not totals.stack:
        return None
    tokens = [chr(c) for c in reading.codes] if encoder.char else list(encoder.seen)
    return tokens, totals.total()


def _count_texts(texts: Iterable[str], order: int, tokenizer: Tokenizer) -> Part:
    """Round 1 for a partition of a bag: each text one sequence, tokenized as it is, in the partition's
    vocabulary ids (``build_vocab``)."""
    sequences = [t for t in (tokenizer.tokenize(text) for text in texts) if t]
    if not sequences:
        return None
    vocab, flat, lengths = build_vocab(sequences)
    width = _width(len(vocab))
    c = NGramCounts.from_flat(flat, lengths, order, width, _tables=True)
    return vocab.to_list(), Table(width, c.keys, c.counts)


def _unigrams(part: Part) -> tuple[list[str], np.ndarray] | None:
    """What round 2 needs from a partition: its ordinary tokens and how often each occurs."""
    if part is None:
        return None
    tokens, table = part
    return tokens, table.counts[0][_SPECIALS : _SPECIALS + len(tokens)]


def _renumber(part: Part, rename: np.ndarray, width: int) -> Table:
    """Round 3: the partition's table with its ids renamed by ``rename`` (local id -> global id, one to one
    on the ids that occur) under key width ``width``, each order re-sorted (chunked's ``_finish``)."""
    assert part is not None, "empty partitions are left out of round 3"
    table = part[1]
    C, bits, new_bits = table.width, table.width.bit_length() - 1, width.bit_length() - 1
    rename = np.concatenate([rename, np.zeros(C - len(rename), np.int64)])  # (C,) ids never given: unused
    c1 = np.zeros(width, dtype=np.int64)
    used = np.flatnonzero(table.counts[0])
    c1[rename[used]] = table.counts[0][used]
    keys, counts = [np.arange(width, dtype=np.int64)], [c1]
    index = rename  # old index of the (n-1)-grams -> new index
    for n in range(2, len(table.keys) + 1):
        old = table.keys[n - 1].astype(np.int64, copy=False)  # stored narrow (uint32) while they fit: chunked.py
        key = (index[old >> bits] << new_bits) | rename[old & (C - 1)]  # (U_n,) eq. (2) in the global ids
        perm = np.argsort(key)  # distinct keys: any sort gives the one order
        index = np.empty(len(key), dtype=np.int64)
        index[perm] = np.arange(len(key))
        keys.append(key[perm])
        counts.append(table.counts[n - 1][perm])
    return Table(width, keys, counts)


def _merge(a: Table, b: Table) -> Table:
    return merge_tables(a, b)


def _to_counts(table: Table, vocab_size: int) -> NGramCounts:
    """The merged table as :class:`NGramCounts` over V = ``vocab_size`` ids: keys rewritten by eq. (1)."""
    V, C, bits = vocab_size, table.width, table.width.bit_length() - 1
    wide = [k.astype(np.int64, copy=False) for k in table.keys[1:]]  # merged tables may hold uint32 keys
    keys = [np.arange(V, dtype=np.int64)] + [(k >> bits) * V + (k & (C - 1)) for k in wide]  # eq. (1)
    counts = [c.astype(np.int64, copy=False) for c in [table.counts[0][:V]] + table.counts[1:]]  # and int32 counts
    return NGramCounts.from_keys(V, keys, counts)


def global_vocabulary(parts: Sequence[tuple[list[str], np.ndarray]]) -> tuple[Vocabulary, dict[str, int]]:
    """Round 2: the vocabulary of the whole corpus from the partitions' tokens and their counts, numbered as
    one process numbers it (by descending count, ties by code point), and each token's id in it (a literal
    ``<unk>`` word is id 0, as in one process)."""
    from ..corpus import _counted_vocabulary

    total: dict[str, int] = {}
    for tokens, counts in parts:
        for token, count in zip(tokens, counts.tolist()):
            total[token] = total.get(token, 0) + count
    seen = [t for t, c in total.items() if c > 0]
    check_tokens(seen)
    vocab, new_id = _counted_vocabulary(seen, np.array([total[t] for t in seen], dtype=np.int64), 1, None)
    return vocab, dict(zip(seen, new_id.tolist()))


def count_with_dask(
    source: Any,
    order: int,
    tokenizer: Tokenizer | None = None,
    client=None,
    blocksize: int = DEFAULT_BLOCKSIZE,
    encoding: str = "utf-8",
) -> tuple[NGramCounts, Vocabulary]:
    """Count the n-grams of orders 1 .. ``order`` of a corpus on a Dask cluster: the three rounds above.

    Parameters
    ----------
    source : dask.bag.Bag of str, a path, or a list of paths
        A bag of texts (one sequence each), or text files read one sequence a line by the workers.
    order : int
    tokenizer : Tokenizer, default character level
    client : distributed.Client, optional
        The cluster; by default the current client (``distributed.get_client()``).
    blocksize : int
        Bytes of a file per partition.
    encoding : str
        The files' encoding.

    Returns
    -------
    (counts, vocabulary): the counts of the whole corpus over the vocabulary's ids, identical to
    ``build_vocab`` and ``NGramCounts.from_flat`` on the whole corpus in one process.
    """
    distributed = _require_dask()
    tokenizer = tokenizer or Tokenizer()
    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
        raise ScratchgenError(f"order must be an integer >= 1, got {order!r}")
    if not isinstance(blocksize, (int, np.integer)) or isinstance(blocksize, bool) or blocksize < 1:
        raise ScratchgenError(f"blocksize must be a number of bytes >= 1, got {blocksize!r}")
    if client is None:
        try:
            client = distributed.get_client()
        except ValueError:
            raise ScratchgenError("no Dask client: pass client= (see scratchgen.ngram.distributed.connect)") from None
    order = int(order)
    if isinstance(source, (str, os.PathLike)) or (
        isinstance(source, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in source)
    ):
        paths = [os.path.abspath(p) for p in ([source] if isinstance(source, (str, os.PathLike)) else source)]
        for path in paths:
            check_corpus_file(path)
        splits = [s for path in paths for s in _splits(path, int(blocksize), encoding)]
        # Round 1: count each byte range on a worker; the tables stay there (futures).
        local = [client.submit(_count_range, *s, order, tokenizer, encoding, pure=False) for s in splits]
    elif _is_bag(source):
        local = [client.submit(_count_texts, p, order, tokenizer) for p in client.compute(source.to_delayed())]
    else:
        raise CorpusError(f"a Dask corpus is a dask.bag of str or file paths, got {type(source).__name__}")
    # Round 2: only the tokens and their unigram counts come back.
    parts = client.gather([client.submit(_unigrams, f) for f in local])
    vocab, ids = global_vocabulary([p for p in parts if p is not None])
    # Round 3: renumber on the workers (empty partitions left out), then add the tables up a binary tree.
    width = _width(len(vocab))
    tables = []
    for future, part in zip(local, parts):
        if part is not None:
            rename = np.array([0, 1, 2] + [ids[t] for t in part[0]], dtype=np.int64)  # local id -> global id
            tables.append(client.submit(_renumber, future, rename, width))
    del local
    if not tables:
        raise CorpusError("cannot count the n-grams of an empty corpus")
    while len(tables) > 1:
        odd = tables[-1:] if len(tables) % 2 else []
        tables = [client.submit(_merge, a, b) for a, b in zip(tables[::2], tables[1::2])] + odd
    return _to_counts(client.gather(tables[0]), len(vocab)), vocab


def _is_bag(source: Any) -> bool:
    try:
        import dask.bag as db
    except ImportError:
        return False
    return isinstance(source, db.Bag)
