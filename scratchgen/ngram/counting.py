"""Counting the n-grams of every order at once, vectorised, the way KenLM's ``lmplz`` sees a corpus.

A sequence w_1 .. w_T is read as ``<s> w_1 .. w_T </s>``: ``<s>`` is context only (it starts n-grams but is
never counted as a token) and is never padded twice, so the n-grams of order n at the start of a sequence
are the shorter ones ``<s> w_1 .. w_{n-1}``. The n-gram of order n ending at position p of the flat stream
exists when it stays inside its sequence::

    valid_n(p)  <=>  pos(p) >= n - 1          pos(p) = p - start of the sequence (0 at <s>)            (1)

**Trie keys.** The distinct n-grams of order n are numbered 0 .. U_n - 1 in lexicographic order, and an
n-gram is stored as the key of its context (its first n - 1 words, an (n-1)-gram) and its last word::

    key(w_1 .. w_n) = index_{n-1}(w_1 .. w_{n-1}) * V + w_n,      index_1(w) = w                         (2)

so sorted keys are in lexicographic order, all n-grams of one context are one contiguous run, and a key
always fits in int64 (U_{n-1} * V is at most the corpus size times V), whatever the order.

**Counting** goes up the orders: the key of the n-gram ending at p is built from the index of the
(n-1)-gram ending at p - 1 by eq. (2); one unique pass numbers the distinct keys. When U_{n-1} * V is small
(character level), the unique pass is a dense table (bincount and cumsum, no sort); otherwise an argsort.
The suffix w_2 .. w_n of an n-gram is the (n-1)-gram ending at the same position, so it comes for free.

**Adjusted counts** (Kneser-Ney's continuation counts, as lmplz computes them, ``adjust_counts.cc``)::

    a(g) = c(g)                          if |g| = N or g starts with <s>                              (3)
    a(g) = |{ x : x g was seen }|        otherwise (distinct words to its left, <s> included)

**Numbering keys by sorting.** The distinct keys of M n-grams and each one's rank among them come from one
sort. A key below 2^k and a position below 2^m travel together as one integer when k + m <= 63::

    packed(i) = key(i) * 2^m + i                                                                       (4)

Sorting the packed integers sorts the keys (ties broken by position) and carries each key's position
along, so a plain integer sort, which NumPy runs with SIMD instructions, does the work of an argsort.

**Merging** two tables goes up the orders too. Once the (n-1)-grams of both are numbered in the merged
table, by maps m_A and m_B that keep their order (a sorted table's place in a sorted union), an n-gram's
key in the merged numbering is::

    key'(g) = m(index_{n-1}(context of g)) * V + w_n                                                    (5)

and since m is increasing, each table's renumbered keys are still sorted: the merged keys are their sorted
union, and the counts of an n-gram found in both add up. No row of words is ever rebuilt.

Letters: V vocabulary size, N order, U_n distinct n-grams of order n, P length of the flat stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..errors import CorpusError, ScratchgenError
from ..text import Vocabulary

__all__ = ["NGramCounts", "unique_inverse"]

BOS, EOS = Vocabulary.bos_id, Vocabulary.eos_id
# Below this many table cells (or 4 per element), numbering keys with a dense table beats sorting them. Kept
# small: the table's pages are all touched (the distinct keys spread over it), so a fixed 2^23 cells held 8 to
# 32 MB for a chunk of half a million positions whose sort needs a few MB, for no time saved (chunked.py).
_DENSE_LIMIT = 1 << 20


def unique_inverse(key: np.ndarray, key_range: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``key`` (ints in [0, key_range]) and each element's index among them;
    the value ``key_range`` itself marks an element to leave out (its index is -1).

    >>> u, inv = unique_inverse(np.array([7, 3, 10, 7, 5]), 10)
    >>> u.tolist(), inv.tolist()
    ([3, 5, 7], [2, 0, -1, 2, 1])
    """
    uniq, inverse, _, _ = _unique_inverse_first(key, key_range)
    assert inverse is not None
    return uniq, inverse


def _unique_inverse_first(
    key: np.ndarray, key_range: int, inverse: bool = True, lead: int = 0
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """:func:`unique_inverse`, the position of one element of each distinct value (None when the
    values were numbered by a dense table), and how many elements have each distinct value (int64).
    ``inverse=False``: the sorting path may leave the inverse out (None), which saves a scatter. ``lead``: the
    inverse comes with that many -1 in front (length M + lead), so that a caller who needs them copies nothing.

    Memory: besides ``key`` (M,), a few arrays of M positions at a time, none of them of the whole key range
    beyond the dense table (a range of at most ``max(_DENSE_LIMIT, 4 M)`` cells)."""
    M = len(key)
    small = np.int32 if M + lead < 2**31 - 1 else np.int64  # half the memory traffic when it fits
    if key_range <= max(_DENSE_LIMIT, 4 * M):
        present = np.zeros(key_range + 1, dtype=bool)  # (range + 1,) the last cell is "left out"
        present[key] = True
        present[key_range] = False
        uniq = np.flatnonzero(present)
        del present
        # rank + 1 of each present cell, 0 for "left out": 2 bytes a cell while the ranks fit (a quarter of int64)
        tight = np.uint16 if len(uniq) < 2**16 - 1 else small
        rank = np.empty(key_range + 1, dtype=tight)  # (range + 1,) only present cells are written and read
        rank[uniq] = np.arange(1, len(uniq) + 1)
        rank[key_range] = 0
        index = np.empty(M + lead, dtype=small)  # (M + lead,)
        index[:lead] = 0
        index[lead:] = rank[key]
        del rank
        times = _bincount_blocks(index[lead:], len(uniq) + 1)[1:]
        index -= 1
        return uniq, index, None, times
    shift = max(int(M - 1).bit_length(), 1)  # bits of a position
    if int(key_range).bit_length() + shift <= 63:
        # One plain sort of (key, position) packed into an int64 (eq. (4)): a SIMD sort of integers, several
        # times faster than an argsort, and the positions come out of it in the same order as the keys. Only
        # the elements kept are packed, a block at a time: no (M,) temporaries.
        K = M - int(np.count_nonzero(key == key_range))  # the elements kept
        packed = np.empty(K, dtype=np.int64)  # (K,)
        filled = 0
        for s in range(0, M, _BLOCK):
            block = key[s : s + _BLOCK]
            kept = np.flatnonzero(block != key_range)  # (block's kept,) positions within the block
            end = filled + len(kept)
            np.left_shift(block[kept], shift, out=packed[filled:end], dtype=np.int64)
            packed[filled:end] |= kept + s
            filled = end
        packed.sort()
        sorted_key = packed
        perm = np.empty(K, dtype=small)  # (K,) position of the i-th smallest key
        for s in range(0, K, _BLOCK):
            np.bitwise_and(sorted_key[s : s + _BLOCK], (1 << shift) - 1, out=perm[s : s + _BLOCK], casting="unsafe")
        sorted_key >>= shift
    else:  # too wide to pack: sort the positions by key
        where = np.flatnonzero(key != key_range).astype(small, copy=False)  # (K,) the elements kept
        perm = where[np.argsort(key[where], kind="stable")]
        del where
        sorted_key = packed = key[perm]
        K = len(sorted_key)
    first = np.empty(K, dtype=bool)
    first[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=first[1:])
    starts = np.flatnonzero(first)  # (U,) where each distinct value's run begins in sorted order
    uniq = sorted_key[starts]
    del sorted_key, packed
    counts = np.diff(starts, append=K)  # (U,) the length of each run
    numbered: np.ndarray | None = None
    if inverse:
        group = np.cumsum(first, dtype=small)  # (K,)
        del first
        group -= 1
        numbered = np.full(M + lead, -1, dtype=small)  # (M + lead,) the left-out elements keep -1
        numbered[lead:][perm] = group
    return uniq, numbered, perm[starts], counts


#: Elements a block of the loops that spare (M,) temporaries: large enough that the Python loop costs nothing.
_BLOCK = 1 << 18


def _bincount_blocks(values: np.ndarray, length: int) -> np.ndarray:
    """``np.bincount(values, minlength=length)`` (int64) a block at a time: bincount copies its input to
    int64, so one call on (M,) int32 values would hold another 8 M bytes."""
    times = np.zeros(length, dtype=np.int64)
    for s in range(0, len(values), _BLOCK):
        times += np.bincount(values[s : s + _BLOCK], minlength=length)
    return times


@dataclasses.dataclass
class NGramCounts:
    """Raw counts of every n-gram of orders 1 .. N in a corpus of id sequences.

    Attributes
    ----------
    order : int
        N.
    vocab_size : int
        V (the ids are 0 .. V - 1).
    keys : list of int64 arrays
        ``keys[n-1]``: the sorted trie keys (eq. (2)) of the distinct n-grams, shape (U_n,);
        for n = 1 all V ids (the unigram table is dense).
    counts : list of int64 arrays
        ``counts[n-1]``: how often each n-gram occurs as a token's n-gram, shape (U_n,); ``<s>`` has 0.
    suffix : list of int64 arrays
        ``suffix[n-1]``: the index of w_2 .. w_n among the (n-1)-grams, shape (U_n,) (empty for n = 1).
    bos_start : list of bool arrays
        ``bos_start[n-1]``: the n-gram starts with ``<s>``.

    >>> c = NGramCounts.from_sequences([np.array([3, 4, 3])], order=2, vocab_size=5)
    >>> c.counts[0].tolist()   # <unk> <s> </s> 3 4 : tokens 3 4 3 </s>
    [0, 0, 1, 2, 1]
    >>> c.words(2).tolist(), c.counts[1].tolist()   # <s> 3, 3 </s>, 3 4, 4 3 in lexicographic order
    ([[1, 3], [3, 2], [3, 4], [4, 3]], [1, 1, 1, 1])
    """

    order: int
    vocab_size: int
    keys: list
    counts: list
    suffix: list
    bos_start: list

    # --- counting ---------------------------------------------------------------------------------

    @classmethod
    def from_sequences(cls, sequences: Sequence[np.ndarray], order: int, vocab_size: int) -> NGramCounts:
        """Count every n-gram of orders 1 .. ``order`` of id sequences (without ``<s>``/``</s>``)."""
        seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
        if not seqs:
            raise CorpusError("cannot count the n-grams of an empty corpus")
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        flat = np.concatenate(seqs) if lengths.sum() else np.zeros(0, np.int64)
        return cls.from_flat(flat, lengths, order, vocab_size)

    @classmethod
    def from_flat(
        cls, flat: np.ndarray, lengths: np.ndarray, order: int, vocab_size: int, progress=None, *, _tables=False
    ) -> NGramCounts:
        """Like :meth:`from_sequences` for the sequences concatenated (``flat``) and their ``lengths``;
        ``progress`` (a :class:`scratchgen.progress.Progress`, optional) is advanced by 1 per counted order.
        (``_tables``: the keys and counts only, the suffix and ``<s>`` lists left empty: for :mod:`.chunked`.)"""
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
            raise ScratchgenError(f"order must be an integer >= 1, got {order!r}")
        V = int(vocab_size)
        if len(lengths) == 0:
            raise CorpusError("cannot count the n-grams of an empty corpus")
        lengths = np.asarray(lengths, dtype=np.int64) + 2  # (S,) <s> and </s> added
        P = int(lengths.sum())
        starts = np.cumsum(lengths) - lengths  # (S,)
        small = np.int32 if max(P, V) < 2**31 - 1 else np.int64  # ids and indices: half the memory traffic
        ids = np.empty(P, dtype=small)  # (P,) the flat stream <s> w.. </s> <s> w.. </s>
        body = np.ones(P, dtype=bool)
        body[starts] = False
        body[starts + lengths - 1] = False
        ids[starts] = BOS
        ids[starts + lengths - 1] = EOS
        if len(flat):
            if flat.min() < 0 or flat.max() >= V:
                raise CorpusError(f"token ids must lie in 0 .. {V - 1}")
            ids[body] = flat
        del body
        c1 = _bincount_blocks(ids, V)
        c1[BOS] = 0  # <s> is context only, never a token
        keys = [np.arange(V, dtype=np.int64)]
        counts = [c1]
        suffix = [np.empty(0, dtype=np.int64)]
        bos_start = [np.arange(V) == BOS]
        if progress is not None:
            progress.update(1)
        index = ids  # (P,) index of the (n-1)-gram ending at p, -1 where there is none (eq. (1))
        crossing = ids[1:] == BOS  # (P-1,) an n-gram ending at a <s> would cross into the next sequence
        for n in range(2, order + 1):
            key_range = len(keys[-1]) * V
            # The n-gram ending at p = the (n-1)-gram ending at p-1, then ids[p]: eq. (2), for every p >= 1.
            wide = np.int32 if key_range < 2**31 - 1 else np.int64
            key = index[:-1].astype(wide)  # (P-1,) in place from here: no temporaries of P positions
            key *= V
            key += ids[1:]
            key[(index[:-1] < 0) | crossing] = key_range  # no n-gram ends there
            last = n == order  # no order above: the positions' indices are not needed
            if last:  # what only the next order reads goes before the peak of this one
                del ids, crossing
            if _tables:  # (the positions' indices are read below only for the suffix table)
                del index
            uniq, inverse, where, times = _unique_inverse_first(key, key_range, inverse=not last, lead=1)
            del key
            keys.append(uniq.astype(np.int64, copy=False))
            counts.append(times)
            if not _tables:
                context, word = uniq // V, uniq % V  # (U,) eq. (2) read backwards
                if n == 2:
                    suffix.append(word)  # w_2 is a unigram: its id
                elif where is not None:  # w_2 .. w_n is the (n-1)-gram ending where the n-gram ends: its index
                    suffix.append(index[where + 1].astype(np.int64))
                else:  # (numbered by a table: no position at hand) the key of (suffix of the context) then w_n
                    suffix.append(_search(keys[-2], suffix[-1][context] * V + word))
                bos_start.append(bos_start[-1][context])  # it starts with <s> when its context does
            if inverse is not None:
                index = inverse  # (P,) -1 at p = 0, then the index of the n-gram ending at each p >= 1
            if progress is not None:
                progress.update(1)
        return cls(int(order), V, keys, counts, suffix, bos_start)

    @classmethod
    def from_keys(cls, vocab_size: int, keys: list, counts: list) -> NGramCounts:
        """Counts from the sorted distinct keys of every order (eq. (2); ``keys[0]`` all V ids) and their counts:
        the suffix and ``<s>`` tables are found from the keys, as :meth:`from_flat` finds them from positions.
        The tables of counting in pieces (:mod:`.chunked`, :mod:`.external`) end here."""
        V = int(vocab_size)
        suffix, bos_start = [np.empty(0, dtype=np.int64)], [np.arange(V) == BOS]
        for n in range(2, len(keys) + 1):  # w_2 .. w_n is the suffix of the context, then w_n
            context, word = keys[n - 1] // V, keys[n - 1] % V
            suffix.append(word if n == 2 else _search(keys[n - 2], suffix[-1][context] * V + word))
            bos_start.append(bos_start[-1][context])  # it starts with <s> when its context does
        return cls(len(keys), V, keys, counts, suffix, bos_start)

    @classmethod
    def from_dask(cls, source, order: int, tokenizer=None, client=None, **kwargs):
        """Count a corpus on a Dask cluster: ``(counts, vocabulary)``, identical to a count in one process.

        ``source`` is a ``dask.bag`` of texts or file paths; see
        :func:`scratchgen.ngram.distributed.count_with_dask` (needs ``pip install 'scratchgen[dask]'``).
        """
        from .distributed import count_with_dask

        return count_with_dask(source, order, tokenizer, client, **kwargs)

    # --- views --------------------------------------------------------------------------------------

    def context(self, n: int) -> np.ndarray:
        """Index of each n-gram's context among the (n-1)-grams (all 0 for n = 1: the empty context)."""
        if n == 1:
            return np.zeros(self.vocab_size, dtype=np.int64)
        return self.keys[n - 1] // self.vocab_size

    def words(self, n: int) -> np.ndarray:
        """The n-grams of order n as rows of ids, shape (U_n, n)."""
        out = np.empty((len(self.keys[n - 1]), n), dtype=np.int64)
        index = np.arange(len(self.keys[n - 1]))
        for j in range(n, 0, -1):
            out[:, j - 1] = self.keys[j - 1][index] % self.vocab_size if j > 1 else index
            if j > 1:
                index = self.keys[j - 1][index] // self.vocab_size
        return out

    def adjusted_counts(self) -> list:
        """lmplz's adjusted counts of every order: eq. (3)."""
        adjusted = []
        for n in range(1, self.order + 1):
            c = self.counts[n - 1]
            if n == self.order:
                adjusted.append(c.copy())
                continue
            left = np.bincount(self.suffix[n], minlength=len(c)).astype(np.int64)  # distinct x in x g
            adjusted.append(np.where(self.bos_start[n - 1], c, left))
        return adjusted

    def num_ngrams(self) -> list:
        """How many distinct n-grams of each order were seen (unigrams: ids with a count or <s>)."""
        return [int(np.count_nonzero(self.counts[0]))] + [len(k) for k in self.keys[1:]]

    # --- merging and pruning ------------------------------------------------------------------------

    @classmethod
    def from_words(cls, order: int, vocab_size: int, words: list, counts: list) -> NGramCounts:
        """Counts from rows of ids per order (``words[n-1]`` of shape (U_n, n)); rows must be closed under
        prefixes and suffixes (every n-gram's first and last n - 1 words are (n-1)-grams of the table)."""
        V = int(vocab_size)
        keys = [np.arange(V, dtype=np.int64)]
        c1 = np.zeros(V, dtype=np.int64)
        np.add.at(c1, words[0][:, 0], counts[0])
        out_counts, suffix, bos = [c1], [np.empty(0, np.int64)], [np.arange(V) == BOS]
        for n in range(2, order + 1):
            w = words[n - 1]
            prefix = _lookup(keys, w[:, :-1], V)
            key = prefix * V + w[:, -1]
            uniq, inverse = np.unique(key, return_inverse=True)
            c = np.zeros(len(uniq), dtype=np.int64)
            np.add.at(c, inverse.reshape(-1), counts[n - 1])
            rows = np.empty(len(uniq), dtype=np.int64)
            rows[inverse.reshape(-1)] = np.arange(len(key))
            keys.append(uniq)
            out_counts.append(c)
            suffix.append(_lookup(keys, w[rows, 1:], V))
            bos.append(w[rows, 0] == BOS)
        for n, s in enumerate(suffix[1:], start=2):
            if np.any(s < 0):
                raise ScratchgenError(f"the {n}-grams are not closed under suffixes")
        return cls(int(order), V, keys, out_counts, suffix, bos)

    def merge(self, other: NGramCounts) -> NGramCounts:
        """The counts of two corpora together (same vocabulary ids and order): counts add up.

        Use it to count a corpus too large for memory chunk by chunk (the vocabulary fixed first):

        >>> from scratchgen.ngram import NGramModel
        >>> vocab = Vocabulary(["a", "b"])
        >>> total = None
        >>> for chunk in ([["a", "b"], ["b"]], [["b", "a"]]):
        ...     c = NGramCounts.from_sequences([vocab.encode(s) for s in chunk], order=2, vocab_size=len(vocab))
        ...     total = c if total is None else total.merge(c)
        >>> total.counts[0].tolist()   # <unk> <s> </s> a b
        [0, 0, 3, 2, 3]
        >>> model = NGramModel(order=2).fit_counts(total, vocab)
        """
        if not isinstance(other, NGramCounts) or (other.order, other.vocab_size) != (self.order, self.vocab_size):
            raise ScratchgenError("can only merge NGramCounts of the same order and vocabulary size")
        V = self.vocab_size
        keys, counts = [self.keys[0]], [self.counts[0] + other.counts[0]]
        suffix, bos_start = [self.suffix[0]], [self.bos_start[0]]
        map_a = map_b = self.keys[0]  # old index -> merged index of the (n-1)-grams: the ids at n = 1
        for n in range(2, self.order + 1):
            # eq. (5): the maps are increasing, so the renumbered keys stay sorted and each table's
            # n-grams land in the merged table at the place of their key.
            key_a = map_a[self.context(n)] * V + self.keys[n - 1] % V  # (U_a,) sorted
            key_b = map_b[other.context(n)] * V + other.keys[n - 1] % V  # (U_b,) sorted
            merged = _sorted_union(key_a, key_b)  # (U,)
            at_a, at_b = np.searchsorted(merged, key_a), np.searchsorted(merged, key_b)
            c = np.zeros(len(merged), dtype=np.int64)
            c[at_a] = self.counts[n - 1]
            c[at_b] += other.counts[n - 1]  # no key twice within one table: a plain add
            s_ = np.empty(len(merged), dtype=np.int64)
            s_[at_a] = map_a[self.suffix[n - 1]]  # the suffix is an (n-1)-gram: renumbered by the map
            s_[at_b] = map_b[other.suffix[n - 1]]
            b = np.empty(len(merged), dtype=bool)
            b[at_a] = self.bos_start[n - 1]
            b[at_b] = other.bos_start[n - 1]
            keys.append(merged)
            counts.append(c)
            suffix.append(s_)
            bos_start.append(b)
            map_a, map_b = at_a, at_b
        return NGramCounts(self.order, V, keys, counts, suffix, bos_start)

    def renumber(self, table: np.ndarray, vocab_size: int) -> NGramCounts:
        """The same counts with every token id ``i`` renamed ``table[i]`` (a one-to-one map into
        0 .. ``vocab_size`` - 1 that keeps the three special ids): each order re-sorted by its new keys.

        It is how counts made under a local vocabulary join a global one (:mod:`.distributed`).
        """
        table = np.asarray(table, dtype=np.int64)
        V, W = self.vocab_size, int(vocab_size)
        if table.shape != (V,) or (V and (table.min() < 0 or table.max() >= W)) or len(np.unique(table)) != V:
            raise ScratchgenError(f"renumber needs a one-to-one table of {V} ids in 0 .. {W - 1}")
        if not np.array_equal(table[:3], np.arange(3)):
            raise ScratchgenError("renumber must keep the ids of <unk>, <s> and </s>")
        c1 = np.zeros(W, dtype=np.int64)
        c1[table] = self.counts[0]
        keys, counts = [np.arange(W, dtype=np.int64)], [c1]
        suffix, bos_start = [np.empty(0, np.int64)], [np.arange(W) == BOS]
        new_index = table  # old index of the (n-1)-grams -> new index
        for n in range(2, self.order + 1):
            key = new_index[self.context(n)] * W + table[self.keys[n - 1] % V]  # (U,) eq. (2) in the new ids
            order = np.argsort(key)  # keys are distinct: any sort is the one order
            rank = np.empty(len(key), dtype=np.int64)
            rank[order] = np.arange(len(key))
            keys.append(key[order])
            counts.append(self.counts[n - 1][order])
            suffix.append(new_index[self.suffix[n - 1][order]])
            bos_start.append(self.bos_start[n - 1][order])
            new_index = rank
        return NGramCounts(self.order, W, keys, counts, suffix, bos_start)


def _search(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.searchsorted(table, values)``, the values searched in sorted order (then put back): consecutive
    searches then walk the table forwards, which is about twice as fast as searching in random order."""
    order = np.argsort(values)
    found = np.empty(len(values), dtype=np.int64)
    found[order] = np.searchsorted(table, values[order])
    return found


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted distinct values of two sorted arrays of distinct values (a plain sort, not np.union1d,
    whose hash table is slower on integers)."""
    both = np.concatenate([a, b])
    both.sort()
    keep = np.empty(len(both), dtype=bool)
    keep[:1] = True
    np.not_equal(both[1:], both[:-1], out=keep[1:])
    return both[keep]


def _lookup(keys: list, rows: np.ndarray, V: int) -> np.ndarray:
    """Index of each row of ids (shape (M, m)) among the m-grams of a trie (eq. (2)); -1 where absent."""
    M, m = rows.shape
    if m == 0:
        return np.zeros(M, dtype=np.int64)
    index = rows[:, 0].astype(np.int64)
    ok = (index >= 0) & (index < V)
    for j in range(1, m):
        table = keys[j]
        key = np.where(ok, index, 0) * V + rows[:, j]
        at = np.searchsorted(table, key)
        at_c = np.minimum(at, len(table) - 1) if len(table) else at
        ok &= (at < len(table)) & (table[at_c] == key) if len(table) else np.zeros(M, bool)
        index = at_c
    return np.where(ok, index, -1)


def _find(keys: np.ndarray, context: np.ndarray, words: np.ndarray, V: int) -> np.ndarray:
    """Index of the n-grams (context index, word) among sorted trie ``keys``; -1 where absent or context < 0."""
    if len(keys) == 0:
        return np.full(len(context), -1, dtype=np.int64)
    key = np.maximum(context, 0) * V + words  # eq. (2)
    at = np.searchsorted(keys, key)
    np.minimum(at, len(keys) - 1, out=at)
    return np.where((keys[at] == key) & (context >= 0), at, -1)


def _flatten(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The flat stream ``<s> x .. </s> <s> ..`` (P,) and the lengths of the sequences with ``</s>`` (S,)."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64) + 2
    P = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    ids = np.empty(P, dtype=np.int64)
    body = np.ones(P, dtype=bool)
    body[starts] = False
    body[starts + lengths - 1] = False
    ids[starts] = BOS
    ids[starts + lengths - 1] = EOS
    if P > 2 * len(sequences):
        ids[body] = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    return ids, lengths - 1
