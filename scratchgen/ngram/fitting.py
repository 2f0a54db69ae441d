"""Fitting an n-gram model: the vocabulary of a corpus, then counts -> smoothed backoff tables.

:func:`build_vocab` numbers the tokens as :meth:`Vocabulary.build` does (by descending count, ties by code
point) in one pass; :func:`backoff_tables` smooths counts (:mod:`.smoothing`), drops the n-grams below the
cutoffs with Katz's renormalisation, and takes logs: what :class:`~scratchgen.ngram.NGramModel` stores.

Cutoffs drop the n-grams of order n >= 2 seen fewer than cutoffs[n-1] times; a dropped one backs off, and the
backoff weight of its context is renormalised so that its row sums to 1 again (Katz)::

    b(h) = (1 - sum_{w: h w kept} p(w | h)) / (1 - sum_{w: h w kept} P(w | h'))                        (1)

Stupid backoff is not a distribution: it keeps its factor alpha.

Letters: V vocabulary, N order, T tokens of a corpus, S sequences, U_n stored n-grams of order n.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import CorpusError
from ..text import Vocabulary, check_tokens
from .counting import NGramCounts
from .smoothing import Estimate

__all__ = ["backoff_tables", "build_vocab", "discount_record", "prune"]

BOS = Vocabulary.bos_id


def backoff_tables(counts: NGramCounts, strategy, cutoffs) -> tuple[list, list, list, list]:
    """(keys, log p, log b, discounts) of the smoothed model: trie keys per order (counting.py eq. (2)),
    natural-log probabilities (<= 0, ``<s>`` -inf), log backoff weights below order N, and the discounts
    used per order (JSON-able, for the record)."""
    est = strategy.estimate(counts)
    keys = list(counts.keys)
    if cutoffs is not None and any(c > 1 for c in cutoffs):
        keys, est = prune(counts, est, list(cutoffs), strategy.normalized)
    with np.errstate(divide="ignore"):
        # A probability computed as 1 + 1e-16 is 1: a log-probability is never above 0 (the file schema).
        logp = [np.minimum(np.log(p), 0.0) for p in est.prob]
        bow = [np.log(b) for b in est.bow[:-1]]
    logp[0][BOS] = -np.inf
    return keys, logp, bow, discount_record(est.discounts)


def discount_record(discounts: list) -> list:
    """The discounts of each order as the model file's header records them (JSON: None, a number or a list)."""
    return [[float(x) for x in d] if isinstance(d, tuple) else (None if d is None else float(d)) for d in discounts]


def build_vocab(sequences: list) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
    """Vocabulary.build's vocabulary (by descending count, ties by code point), the ids of all tokens in one
    flat array (T,) and the sequence lengths (S,): one pass over the tokens."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))  # (S,)
    text = None
    peek = list(itertools.islice(itertools.chain.from_iterable(sequences), 256))
    if all(type(t) is str and len(t) == 1 for t in peek):  # looks like character level
        try:
            text = "".join(map("".join, sequences))
        except TypeError:  # a token that is not a str: the dict path below names it
            text = None
    # Total length = number of tokens and no empty token: every token is one code point.
    if text is not None and len(text) == int(lengths.sum()) and not any("" in s for s in sequences):
        # Every token is one code point (character level): count code points without a dict.
        try:
            flat = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (T,) code points
        except UnicodeEncodeError as e:  # a lone surrogate: the one rule names it
            check_tokens([e.object[e.start]])
            raise
        counts = np.bincount(flat) if len(flat) else np.zeros(0, np.int64)
        seen_codes = np.flatnonzero(counts)
        seen = [chr(c) for c in seen_codes]
        to_seen = np.zeros(len(counts), dtype=np.int64)  # code point -> index in seen
        to_seen[seen_codes] = np.arange(len(seen_codes))
        counts = counts[seen_codes]
        check_tokens(seen)  # the one rule, once per distinct token
    else:
        tokens = list(itertools.chain.from_iterable(sequences))
        to_seen = None
        try:
            index = dict.fromkeys(tokens)  # first-seen order
        except TypeError:
            raise CorpusError("a token must be a str; found an unhashable token") from None
        check_tokens(list(index))  # the one rule, once per distinct token: <unk> stays, id 0
        for i, t in enumerate(index):
            index[t] = i
        seen = list(index)
        flat = np.fromiter(map(index.__getitem__, tokens), dtype=np.int64, count=len(tokens))  # (T,)
        counts = np.bincount(flat, minlength=len(seen))
    specials = {t: i for i, t in enumerate(Vocabulary.SPECIALS)}
    ordinary = [i for i, t in enumerate(seen) if t not in specials]
    count_of = counts.tolist()  # Python ints: sorting on numpy scalars is slow
    ordinary.sort(key=lambda i: (-count_of[i], seen[i]))
    vocab = Vocabulary(seen[i] for i in ordinary)
    remap = np.empty(len(seen), dtype=np.int64)
    remap[ordinary] = np.arange(len(ordinary)) + len(specials)
    for i, t in enumerate(seen):
        if t in specials:
            remap[i] = specials[t]
    table = remap if to_seen is None else remap[to_seen]  # -> vocabulary ids, one gather below
    return vocab, table[flat], lengths


def prune(counts: NGramCounts, est: Estimate, cutoffs: list, normalized: bool):
    """Drop n-grams below their order's cutoff; renormalise the backoff weights by eq. (1) so rows sum to 1."""
    V = counts.vocab_size
    keys, prob, bow = [counts.keys[0]], [est.prob[0]], [est.bow[0].copy()]
    new_index = [np.arange(V)]
    for n in range(2, counts.order + 1):
        keep = counts.counts[n - 1] >= cutoffs[n - 1]
        ctx = new_index[-1][counts.context(n)[keep]]
        suffix = new_index[-1][counts.suffix[n - 1][keep]]
        index = np.full(len(keep), -1, dtype=np.int64)
        index[keep] = np.arange(int(keep.sum()))
        new_index.append(index)
        p = est.prob[n - 1][keep]
        keys.append(ctx * V + counts.keys[n - 1][keep] % V)
        prob.append(p)
        b = est.bow[n - 1][keep].copy()
        if normalized and cutoffs[n - 1] > 1:  # eq. (1)
            size = len(prob[-2])
            left = 1.0 - np.bincount(ctx, weights=p, minlength=size)
            lower = 1.0 - np.bincount(ctx, weights=prob[-2][suffix], minlength=size)
            with np.errstate(divide="ignore", invalid="ignore"):
                bow[-1] = np.where(lower > 1e-12, np.maximum(left, 0.0) / np.maximum(lower, 1e-300), 1.0)
        bow.append(b)
    return keys, Estimate(prob, bow, est.discounts)
