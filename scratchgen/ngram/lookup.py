"""Finding stored n-grams in constant time: a direct table or a hash table an order, built from the sorted keys.

A model stores its n-grams of order n as sorted trie keys (counting.py eq. (2))::

    key(h w) = i(h) V + w                                                                                 (1)

where i(h) is the index of the context h among the stored (n-1)-grams. Scoring asks, at every position of a
corpus, for the index of one key among the U_n stored ones, or -1 when it is absent. The plain answer is a
binary search (:func:`scratchgen.ngram.counting._find`, ``np.searchsorted``): log2 U_n dependent reads a
query, each likely a cache miss. The two structures here answer with one read or two, and are built from the
keys once (in milliseconds) the first time a model scores; they are never saved:

- **direct**: a table of (U_{n-1} + 1) V cells, cell i(h) V + w (the key itself, eq. (1)) holding the index of
  h w (-1 for none). The last row answers the queries whose context is absent: for i(h) = -1 the cell
  -V + w is negative, and a negative index counts from the end, as Python's do, so it lands in that row with
  no test. One read a query. Used when the table is small: at most ``DIRECT_CELLS`` cells, or
  ``DIRECT_RATIO`` cells a stored n-gram (character level, V ~ 100);
- **hash**: open addressing with linear probing (Knuth, TAOCP vol. 3, section 6.4) in 2^b slots, at least
  ``1 / LOAD`` slots a key (an order of more than ``HASH_MAX_KEYS`` keeps the binary search). A key
  starts at the slot of Fibonacci hashing::

      slot(key) = (key * M mod 2^64) >> (64 - b),    M = 2^64 / golden ratio                              (2)

  and walks to the next slot while its own is taken; a query reads from its slot until it finds its key or an
  empty slot. At load factor a = 1/4 a hit reads (1 + 1 / (1 - a)) / 2 = 1.17 slots on average, a miss
  (1 + 1 / (1 - a)^2) / 2 = 1.39. The keys are inserted in the order of their home slots h, where key i of
  that order lands at::

      p_i = max(h_i, p_{i-1} + 1)                                                                         (3)

  a running maximum, so the table is built in one sort; it has slots past 2^b, as many as the last run needs,
  and never wraps around. Queries run vectorised, one round a probe.

Both, and ``_Sorted`` (the binary search itself, kept for an order too large to hash), return exactly what
the binary search returns, the index of the key or -1: tests/ngram/test_lookup.py checks that on random tables.

Letters: V vocabulary, U_n stored n-grams of order n, P queries.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ChildTable", "child_table", "DIRECT_CELLS", "DIRECT_RATIO", "LOAD"]

#: A direct table is used when it has at most this many cells (16 MiB of int32) ...
DIRECT_CELLS = 1 << 22
#: ... or at most this many cells a stored n-gram.
DIRECT_RATIO = 16
#: The hash table's largest load factor a: keys / slots.
LOAD = 0.25
_EMPTY = np.iinfo(np.int64).min  # an empty slot: below every query key (a query's key is at least -V)
_M = np.uint64(0x9E3779B97F4A7C15)  # eq. (2): 2^64 / golden ratio, odd


class ChildTable:
    """The stored n-grams of one order, found by (context index, word): :meth:`find`."""

    kind = ""

    def find(self, context: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Index of each n-gram (context index i(h), word w) among the sorted keys, -1 where it is not
        stored or the context is absent (i(h) < 0); ``context`` and ``words`` int64 of shape (P,). The
        indices are int64, or int32 from a direct table (which holds them so: half the memory read)."""
        raise NotImplementedError


class _Direct(ChildTable):
    kind = "direct"

    def __init__(self, keys: np.ndarray, contexts: int, V: int):
        self.V = V
        self.cells = np.full((contexts + 1) * V, -1, dtype=np.int32)  # ((U_{n-1} + 1) V,) last row: no context
        self.cells[keys] = np.arange(len(keys), dtype=np.int32)  # cell i(h) V + w, the key

    def find(self, context: np.ndarray, words: np.ndarray) -> np.ndarray:
        cell = context * self.V  # (P,) the row of the context; -V, the last row, for i(h) = -1
        cell += words
        return np.take(self.cells, cell)  # int32

    def find_next(self, previous: np.ndarray, ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """:meth:`find` at every position p of a stream ``ids`` (P,): the context of p is the (n-1)-gram ending
        at p - 1, whose index ``previous`` (P,) holds (-1: not stored); none at p = 0 and at each ``<s>``
        (``starts``), so an n-gram never crosses into the next sequence. The cells are computed in int32 (the
        table has fewer than 2^31): half the bytes of int64 to move, and no context array."""
        cell = np.empty(len(ids), dtype=np.int32)  # (P,) i(h) V + w
        cell[:1] = -self.V  # position 0 (if any): no context, the last row
        np.multiply(previous[:-1], self.V, out=cell[1:], casting="unsafe")  # i(h) V; -V where h is not stored
        np.add(cell, ids, out=cell, casting="unsafe")  # + w (int64 ids cast down: below V)
        found = np.take(self.cells, cell)  # (P,) int32
        found[starts] = -1  # an <s> ends no n-gram of two tokens or more: never across sequences
        return found


class _Hash(ChildTable):
    kind = "hash"

    def __init__(self, keys: np.ndarray, V: int):
        self.V = V
        U = len(keys)
        self.bits = max(int(np.ceil(np.log2(max(U / LOAD, 2.0)))), 1)
        # the keys in the order of their home slots (eq. (2)), ties by index: one sort of home 2^32 + index
        # (np.sort, several times faster than np.argsort)
        order = np.sort((self._slots(keys) << 32) | np.arange(U, dtype=np.int64))  # (U,)
        by_home, home = order & 0xFFFFFFFF, order >> 32
        # eq. (3): inserted in that order, key i of the sorted list lands at p_i = max(h_i, p_{i-1} + 1),
        # so p_i - i = max(h_i - i, p_{i-1} - (i - 1)): a running maximum
        i = np.arange(U)
        place = np.maximum.accumulate(home - i) + i if U else i  # (U,)
        size = max(int(place[-1]) + 2 if U else 1, (1 << self.bits) + 1)  # past the end: never wraps, ends empty
        # a slot holds key 2^s + index (s bits for the index) when that fits in 63 bits: one read a probe
        self.shift = max(int(U - 1).bit_length(), 1)
        most = int(keys[-1]) if U else 0
        self.packed = most.bit_length() + self.shift <= 62
        self.slot_keys = np.full(size, _EMPTY, dtype=np.int64)  # (size,) the key (or key and index) in each slot
        if self.packed:
            self.slot_keys[place] = (keys[by_home] << self.shift) | by_home
        else:
            self.slot_keys[place] = keys[by_home]
            self.slot_index = np.empty(size, dtype=np.int64)  # (size,) the index of the key among the sorted keys
            self.slot_index[place] = by_home

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        """eq. (2): the home slot of each key (a negative key, never stored, gets some slot too)."""
        return ((keys.view(np.uint64) * _M) >> np.uint64(64 - self.bits)).view(np.int64)

    def _read(self, slot: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the slots hold: whether it is the key, the index there, and whether the slot is empty."""
        seen = np.take(self.slot_keys, slot)
        if self.packed:
            hit = (seen >> self.shift) == key  # an empty slot's key (_EMPTY >> s) is below every query key
            return hit, seen & ((1 << self.shift) - 1), seen == _EMPTY
        return seen == key, np.take(self.slot_index, slot), seen == _EMPTY

    def find(self, context: np.ndarray, words: np.ndarray) -> np.ndarray:
        key = context * self.V  # (P,) eq. (1); negative where the context is absent: never stored
        key += words
        slot = self._slots(key)  # (P,)
        hit, index, empty = self._read(slot, key)
        out = np.where(hit, index, -1)  # found at the first probe
        pending = np.flatnonzero(~(hit | empty))  # neither found nor an empty slot: go on
        while len(pending):
            slot_p = slot[pending] + 1  # the next slot (the table ends with an empty one: no wrapping)
            slot[pending] = slot_p
            hit, index, empty = self._read(slot_p, key[pending])
            out[pending[hit]] = index[hit]
            pending = pending[~(hit | empty)]
        return out


class _Sorted(ChildTable):
    """The binary search over the sorted keys (counting.py's ``_find``), for an order too large to hash."""

    kind = "sorted"

    def __init__(self, keys: np.ndarray, V: int):
        self.keys, self.V = keys, V

    def find(self, context: np.ndarray, words: np.ndarray) -> np.ndarray:
        from .counting import _find

        return _find(self.keys, context, words, self.V)


#: The most keys an order hashes (the sort of home 2^32 + index needs 2^b < 2^31).
HASH_MAX_KEYS = 1 << 28


def child_table(keys: np.ndarray, contexts: int, V: int) -> ChildTable:
    """The table that finds the n-grams of ``keys`` (sorted trie keys, eq. (1)) whose contexts are among
    ``contexts`` stored (n-1)-grams: direct when small (module docstring), a hash table otherwise."""
    keys = np.asarray(keys, dtype=np.int64)
    cells = (contexts + 1) * V
    if cells <= max(DIRECT_CELLS, DIRECT_RATIO * len(keys)) and cells < np.iinfo(np.int32).max:
        return _Direct(keys, contexts, V)
    if len(keys) <= HASH_MAX_KEYS:
        return _Hash(keys, V)
    return _Sorted(keys, V)
