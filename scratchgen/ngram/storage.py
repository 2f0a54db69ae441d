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


def save_arrays(keys: list, logp: list, bow: list, prefix: str = "", logp_name: str = "logp") -> dict[str, np.ndarray]:
    """The arrays of the tables by their names in the file (``prefix`` and ``logp_name``: see
    :func:`array_schema`)."""
    arrays = {}
    for n in range(1, len(logp) + 1):
        if n > 1:
            arrays[f"{prefix}keys_{n}"] = keys[n - 1]
            arrays[f"{prefix}bow_{n - 1}"] = bow[n - 2]
        arrays[f"{prefix}{logp_name}_{n}"] = logp[n - 1]
    return arrays


def array_schema(V: int, N: int, prefix: str = "", logp_name: str = "logp", C: int = 1) -> dict[str, ArraySpec]:
    """Per order n: ``logp_n`` log-probabilities (<= 0; -inf for an impossible event, such as ``<s>``
    predicted or an unseen word under MLE), ``keys_n`` (n >= 2) the sorted trie keys (counting.py eq. (2)),
    ``bow_n`` (n < N) log backoff weights (-inf only where MLE gives a context no backoff; below a factor
    of 10^99, as ARPA files are read). The lengths depend on the data: :func:`tables_from_arrays` checks
    them against each other.

    The label tables of a labelled model (:mod:`.labelled`) have the same layout with names that start with
    ``prefix`` (``label_``), ``logr`` for ``logp``, and C V unigrams: the trie's first level is (label, word).
    """
    schema = {f"{prefix}{logp_name}_1": ArraySpec((C * V,), allow_neg_inf=True, high=0.0)}
    for n in range(2, N + 1):
        # counting.py eq. (2): key < C V^n
        most = C * V**n - 1 if n * np.log2(max(V, 2)) + np.log2(C) < 63 else _INT64_MAX
        schema[f"{prefix}keys_{n}"] = ArraySpec((None,), kind="i", low=0, high=most, increasing=True)
        schema[f"{prefix}{logp_name}_{n}"] = ArraySpec((None,), allow_neg_inf=True, high=0.0)
    for n in range(1, N):
        schema[f"{prefix}bow_{n}"] = ArraySpec((None,), allow_neg_inf=True, high=_MAX_LOG_BACKOFF)
    return schema


def tables_from_arrays(
    arrays: dict[str, np.ndarray], V: int, N: int, prefix: str = "", logp_name: str = "logp", C: int = 1
) -> tuple[list, list, list]:
    """(keys, logp, bow) from arrays that passed :func:`array_schema`, after the checks between arrays."""
    keys, logp, bow = [np.arange(C * V, dtype=np.int64)], [], []
    lp_name, k_name, b_name = f"{prefix}{logp_name}", f"{prefix}keys", f"{prefix}bow"
    for n in range(1, N + 1):
        lp = np.asarray(arrays[f"{lp_name}_{n}"], dtype=np.float64)
        if n > 1:
            k = np.asarray(arrays[f"{k_name}_{n}"], dtype=np.int64)
            if k.shape != lp.shape:
                raise ModelFileError(f"{k_name}_{n} holds {len(k)} {n}-grams but {lp_name}_{n} {len(lp)}")
            if len(k) and k[-1] >= len(keys[-1]) * V:
                raise ModelFileError(
                    f"{k_name}_{n} holds {k[-1]}, beyond the {len(keys[-1])} stored "
                    f"{n - 1}-grams times the vocabulary of {V}"
                )
            keys.append(k)
        logp.append(lp)
    for n in range(1, N):
        b = np.asarray(arrays[f"{b_name}_{n}"], dtype=np.float64)
        if b.shape != logp[n - 1].shape:
            raise ModelFileError(f"{b_name}_{n} has {len(b)} backoff weights for {len(logp[n - 1])} {n}-grams")
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
