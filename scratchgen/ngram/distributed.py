"""Counting n-grams on a Dask cluster: each partition counted where it lies, the counts merged exactly.

N-gram counts are sums over the corpus, so counting can be split anywhere: count every part on its
own and add the tables. The only thing the parts must agree on is the numbering of the tokens (the
vocabulary ids, which order the trie keys of :mod:`.counting`), and the vocabulary needs the token
frequencies of the whole corpus. So the job runs in three rounds, on Dask's ``distributed``
scheduler (the engine; nothing here schedules, retries or moves data itself):

1. **Count locally.** Each partition (a block of lines of a file, or of a ``dask.bag``) is read and
   tokenized on its worker, numbered with a *local* vocabulary, and counted
   (:meth:`NGramCounts.from_flat`). The counts stay on the worker; only the local vocabulary and its
   unigram counts go to the client.
2. **One vocabulary.** The client adds the unigram counts of all partitions and numbers the tokens as
   :func:`scratchgen.ngram.fitting.build_vocab` does for the whole corpus (by descending count, ties by
   code point), so the ids are those of a single-machine fit.
3. **Remap and merge.** Each worker renumbers its table into the global ids, and the tables are added
   up a binary tree of :meth:`NGramCounts.merge` (each merge is exact: integer counts add), log2(P)
   levels deep for P partitions. Renumbering re-sorts each order's keys once
   (:meth:`NGramCounts.renumber`); a merge is a sorted union of two key arrays an order, linear in the
   tables apart from the union's sort. The client receives one table and smooths it.

The counts, not the text, cross the network: a partition's table of distinct n-grams (8 bytes a key and
8 a count per n-gram and order) and its vocabulary. Since the merged table is bit for bit the table of
the whole corpus, the model smoothed from it is identical to ``NGramModel.fit`` on the same text
(tests/ngram/test_distributed.py checks it). A worker needs memory for one partition's text and ids
and its count table: roughly 30 bytes a token at character level, plus the tables it merges.

Reading files: a file is cut into blocks of ``blocksize`` bytes at line boundaries by
``dask.bag.read_text``; each line loses its ``\\r\\n``/``\\n`` and is one sequence, as
:func:`scratchgen.corpus.iter_corpus` reads it in ``lines`` mode (empty lines are skipped). The workers
must see the files at the same paths (a shared file system) for the text to stay where it is.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import CorpusError, ScratchgenError
from ..text import Tokenizer, Vocabulary, check_tokens
from .counting import NGramCounts
from .fitting import build_vocab

__all__ = ["count_with_dask", "connect", "global_vocabulary"]

#: Bytes of a file per partition when files are read by the workers.
DEFAULT_BLOCKSIZE = 64 * 2**20


def _require_dask():
    try:
        import dask.bag  # noqa: F401
        import distributed
    except ImportError:
        raise ScratchgenError("counting on a Dask cluster needs Dask: pip install 'scratchgen[dask]'") from None
    return distributed


def connect(address: str):
    """A ``distributed.Client`` for a scheduler address, or for ``local:N``, a ``LocalCluster`` of N worker
    processes (one thread each) on this machine. Close it (``client.close()``, and ``client.cluster.close()``
    for a local one) when done, or use it as a context manager."""
    distributed = _require_dask()
    if address.startswith("local:"):
        n = address.partition(":")[2]
        if not n.isdigit() or int(n) < 1:
            raise ScratchgenError(f"--dask local:N needs a number of workers N >= 1, got {address!r}")
        cluster = distributed.LocalCluster(
            n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None
        )
        return distributed.Client(cluster)
    try:
        return distributed.Client(address, timeout="20s")
    except (OSError, TimeoutError) as e:
        raise ScratchgenError(f"cannot reach the Dask scheduler at {address!r}: {e}") from None


# --- the three rounds (each a plain function, run on a worker) --------------------------------------


_SPECIAL_IDS = np.arange(len(Vocabulary.SPECIALS), dtype=np.int64)  # <unk> <s> </s>: the same ids everywhere


def _count_partition(
    texts: Iterable[str], order: int, tokenizer: Tokenizer, lines: bool = False
) -> tuple[list[str], NGramCounts | None]:
    """Round 1: the partition's ordinary tokens in local id order (after the three specials), and its
    counts under that numbering (None for a partition without a sequence).

    ``lines``: the texts are lines of a file, read straight into ids (:func:`scratchgen.corpus.read_ids`,
    the reader of a one-process ``train ngram``); otherwise each text is one sequence, tokenized as it is.
    """
    if lines:
        from ..corpus import read_ids

        enc = read_ids(io.StringIO("".join(t.rstrip("\r\n") + "\n" for t in texts)), tokenizer)
        if not len(enc):
            return [], None
        return enc.vocab.to_list(), NGramCounts.from_flat(enc.ids.astype(np.int64), enc.lengths, order, len(enc.vocab))
    sequences = [t for t in (tokenizer.tokenize(text) for text in texts) if t]
    if not sequences:
        return [], None
    vocab, flat, lengths = build_vocab(sequences)
    return vocab.to_list(), NGramCounts.from_flat(flat, lengths, order, len(vocab))


def _local_vocabulary(part: tuple[list[str], NGramCounts | None]) -> tuple[list[str], np.ndarray]:
    """What round 2 needs from a partition: its ordinary tokens and how often each occurs."""
    tokens, counts = part
    if counts is None:
        return [], np.zeros(0, np.int64)
    return tokens, counts.counts[0][len(_SPECIAL_IDS) :]


def _remap(part: tuple[list[str], NGramCounts | None], table: np.ndarray, vocab_size: int) -> NGramCounts:
    """Round 3: the partition's counts renumbered into the global ids (``table``: local id -> global id)."""
    _, counts = part
    assert counts is not None, "empty partitions are left out of round 3"
    return counts.renumber(table, vocab_size)


def _merge(a: NGramCounts, b: NGramCounts) -> NGramCounts:
    return a.merge(b)


def global_vocabulary(parts: Sequence[tuple[list[str], np.ndarray]]) -> Vocabulary:
    """Round 2: the vocabulary of the whole corpus from the partitions' token counts, numbered as
    :func:`~scratchgen.ngram.fitting.build_vocab` numbers it (by descending count, ties by code point)."""
    total: dict[str, int] = {}
    for tokens, counts in parts:
        for token, count in zip(tokens, counts.tolist()):
            total[token] = total.get(token, 0) + count
    specials = set(Vocabulary.SPECIALS)
    seen = [t for t, c in total.items() if t not in specials and c > 0]
    check_tokens(seen)
    seen.sort(key=lambda t: (-total[t], t))
    return Vocabulary(seen)


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

    Returns
    -------
    (counts, vocabulary): the counts of the whole corpus over the vocabulary's ids, identical to
    ``build_vocab`` and ``NGramCounts.from_flat`` on the whole corpus in one process.
    """
    distributed = _require_dask()
    import dask
    import dask.bag as db

    tokenizer = tokenizer or Tokenizer()
    if client is None:
        try:
            client = distributed.get_client()
        except ValueError:
            raise ScratchgenError("no Dask client: pass client= (see scratchgen.ngram.distributed.connect)") from None
    if isinstance(source, (str, os.PathLike)) or (
        isinstance(source, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in source)
    ):
        paths = [os.fspath(p) for p in ([source] if isinstance(source, (str, os.PathLike)) else source)]
        for path in paths:
            if not os.path.isfile(path):
                raise CorpusError(f"cannot read corpus {path!r}: no such file")
        bag, lines = db.read_text(paths, blocksize=blocksize, encoding=encoding), True
    elif isinstance(source, db.Bag):
        bag, lines = source, False
    else:
        raise CorpusError(f"a Dask corpus is a dask.bag of str or file paths, got {type(source).__name__}")
    # Round 1: count each partition where it is; keep the results on the workers (futures).
    local = client.compute([dask.delayed(_count_partition)(p, order, tokenizer, lines) for p in bag.to_delayed()])
    # Round 2: only the vocabularies come back.
    parts = client.gather([client.submit(_local_vocabulary, f) for f in local])
    vocab = global_vocabulary(parts)
    # Round 3: renumber on the workers (empty partitions left out), then add the tables up a binary tree.
    tables = [
        client.submit(_remap, f, np.concatenate([_SPECIAL_IDS, vocab.encode(tokens)]), len(vocab))
        for f, (tokens, _) in zip(local, parts)
        if tokens
    ]
    if not tables:
        raise CorpusError("cannot count the n-grams of an empty corpus")
    while len(tables) > 1:
        odd = tables[-1:] if len(tables) % 2 else []
        tables = [client.submit(_merge, a, b) for a, b in zip(tables[::2], tables[1::2])] + odd
    return client.gather(tables[0]), vocab
