"""The arrays of an n-gram model file, their schema, and the checks that involve two of them.

A fitted :class:`~scratchgen.ngram.NGramModel` is its backoff table (model.py): per order n, ``keys_n`` the
sorted trie keys of the stored n-grams (counting.py eq. (2); none for n = 1, whose key is the word id),
``logp_n`` their natural-log probabilities and, below the top order, ``bow_n`` their log backoff weights. The
header's state holds ``discounts``, one entry per order (for the record). :func:`array_schema` is what
:func:`scratchgen.io.load` checks each array against; :func:`tables_from_arrays` then checks the lengths
against each other.

Letters: V vocabulary, N order.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError
from ..schema import ArraySpec

__all__ = ["array_schema", "check_discounts", "save_arrays", "tables_from_arrays"]

_INT64_MAX = int(np.iinfo(np.int64).max)
_MAX_LOG_BACKOFF = float(np.nextafter(99.0 * np.log(10.0), 0.0))  # a backoff weight below 10^99 (arpa.py's rule)


def save_arrays(keys: list, logp: list, bow: list) -> dict[str, np.ndarray]:
    """The arrays of the tables by their names in the file."""
    arrays = {}
    for n in range(1, len(logp) + 1):
        if n > 1:
            arrays[f"keys_{n}"] = keys[n - 1]
            arrays[f"bow_{n - 1}"] = bow[n - 2]
        arrays[f"logp_{n}"] = logp[n - 1]
    return arrays


def array_schema(V: int, N: int) -> dict[str, ArraySpec]:
    """Per order n: ``logp_n`` log-probabilities (<= 0; -inf for an impossible event, such as ``<s>``
    predicted or an unseen word under MLE), ``keys_n`` (n >= 2) the sorted trie keys (counting.py eq. (2)),
    ``bow_n`` (n < N) log backoff weights (-inf only where MLE gives a context no backoff; below a factor
    of 10^99, as ARPA files are read). The lengths depend on the data: :func:`tables_from_arrays` checks
    them against each other."""
    schema = {"logp_1": ArraySpec((V,), allow_neg_inf=True, high=0.0)}
    for n in range(2, N + 1):
        most = V**n - 1 if n * np.log2(max(V, 2)) < 63 else _INT64_MAX  # counting.py eq. (2): key < V^n
        schema[f"keys_{n}"] = ArraySpec((None,), kind="i", low=0, high=most, increasing=True)
        schema[f"logp_{n}"] = ArraySpec((None,), allow_neg_inf=True, high=0.0)
    for n in range(1, N):
        schema[f"bow_{n}"] = ArraySpec((None,), allow_neg_inf=True, high=_MAX_LOG_BACKOFF)
    return schema


def tables_from_arrays(arrays: dict[str, np.ndarray], V: int, N: int) -> tuple[list, list, list]:
    """(keys, logp, bow) from arrays that passed :func:`array_schema`, after the checks between arrays."""
    keys, logp, bow = [np.arange(V, dtype=np.int64)], [], []
    for n in range(1, N + 1):
        lp = np.asarray(arrays[f"logp_{n}"], dtype=np.float64)
        if n > 1:
            k = np.asarray(arrays[f"keys_{n}"], dtype=np.int64)
            if k.shape != lp.shape:
                raise ModelFileError(f"keys_{n} holds {len(k)} {n}-grams but logp_{n} {len(lp)}")
            if len(k) and k[-1] >= len(keys[-1]) * V:
                raise ModelFileError(
                    f"keys_{n} holds {k[-1]}, beyond the {len(keys[-1])} stored "
                    f"{n - 1}-grams times the vocabulary of {V}"
                )
            keys.append(k)
        logp.append(lp)
    for n in range(1, N):
        b = np.asarray(arrays[f"bow_{n}"], dtype=np.float64)
        if b.shape != logp[n - 1].shape:
            raise ModelFileError(f"bow_{n} has {len(b)} backoff weights for {len(logp[n - 1])} {n}-grams")
        bow.append(b)
    return keys, logp, bow


def check_discounts(discounts, order: int) -> None:
    """The discounts recorded in the header: one entry per order (none for ARPA), each None, a finite
    number or a list of finite numbers."""

    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(np.isfinite(x))

    ok = (
        isinstance(discounts, list)
        and len(discounts) in (0, order)
        and all(
            d is None or number(d) or (isinstance(d, list) and len(d) == 3 and all(map(number, d))) for d in discounts
        )
    )
    if not ok:
        raise ModelFileError(
            f"its discounts {str(discounts)[:80]} are not one entry per order (None, a number or three numbers)"
        )
