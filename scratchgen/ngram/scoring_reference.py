"""Scoring with a fitted n-gram model one token at a time: eq. (2) of model.py with dicts, as a textbook writes it.

Read it beside ``NGramModel._stream_logprobs`` (model.py), which computes the same numbers for a whole corpus at
once: the stored n-grams found for every position together (:mod:`.lookup`), the backoff walk as array
operations. Here the tables become one dict an order, from the n-gram (a tuple of ids) to its log-probability
and log backoff weight, and each token is scored by the recursion::

    log P(w | h) = log p(h w)                  if h w is stored
                 = log b(h) + log P(w | h')    otherwise (log b(h) = 0 when h is not stored)         (2)

h the last N - 1 tokens before w, back to ``<s>`` at most, h' without its first token. The terms are added in
the order the fast path adds them, the backoff weights of the longest contexts first, so the two agree to the
last bit (tests/ngram/test_lookup.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..text import Vocabulary

__all__ = ["stored_ngrams", "token_logprobs_reference"]


def stored_ngrams(model) -> dict[tuple[int, ...], tuple[float, float]]:
    """Every stored n-gram of a fitted model: its ids -> (log p, log b); log b = 0 at the top order."""
    out = {}
    for n in range(1, model.order + 1):
        grams = model.ngrams(n)  # (U_n, n)
        logp = model.logp_[n - 1]
        bow = model.bow_[n - 1] if n < model.order else np.zeros(len(grams))
        for g, p, b in zip(grams.tolist(), logp.tolist(), bow.tolist()):
            out[tuple(g)] = (p, b)
    return out


def token_logprobs_reference(model, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """log P of every token and ``</s>`` of every id sequence by eq. (2), one token at a time."""
    table = stored_ngrams(model)
    out = []
    for seq in sequences:
        stream = [Vocabulary.bos_id] + [int(i) for i in seq] + [Vocabulary.eos_id]
        scores = []
        for p in range(1, len(stream)):
            history = stream[max(0, p - model.order + 1) : p]  # back to <s> at most
            total = 0.0
            for n in range(len(history) + 1, 0, -1):  # the longest n-gram first
                gram = tuple(stream[p - n + 1 : p + 1])
                if gram in table:
                    total += table[gram][0]
                    break
                context = gram[:-1]
                if context in table:  # h was tried and h w is not stored: its backoff weight
                    total += table[context][1]
            scores.append(total)
        out.append(np.array(scores))
    return out
