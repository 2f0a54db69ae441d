"""An n-gram model to and from an ARPA file: rows of words with log10 values <-> the backoff tables.

An ARPA file (KenLM, SRILM) lists, per order, every stored n-gram as words with its log10 p(w | h) and, below
the top order, its log10 b(h): the backoff form of smoothing.py eq. (1). :class:`~scratchgen.ngram.NGramModel`
stores the same numbers in natural logs, keyed by trie keys (counting.py eq. (2)). Converting is therefore a
change of base and of numbering, plus two rules of the readers:

- a file without ``<unk>`` gives it log10 P = -100 (lmplz's rule); ``<s>`` is written with log10 p = 0, as
  lmplz writes it (it is only ever a context), and read back as never predicted;
- an n-gram whose context is missing (files pruned by SRILM) gets that context inserted with backoff weight
  1 and the probability the backoff rule gives it, so scores do not change.

Letters: V vocabulary, N order, M rows of one order.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import ArpaError
from ..text import Tokenizer, Vocabulary
from .arpa import is_char_level, read_arpa, write_arpa
from .counting import _lookup

__all__ = ["read_model_arpa", "write_model_arpa"]

BOS = Vocabulary.bos_id
LN10 = np.log(10.0)


def write_model_arpa(model, path) -> None:
    """Write a fitted model as an ARPA file (log10 values, words as they are)."""
    _, logp, bow = model._tables()
    rows = [model.ngrams(n) for n in range(1, model.order + 1)]
    logp10 = [lp / LN10 for lp in logp]
    logp10[0] = logp10[0].copy()
    logp10[0][BOS] = 0.0  # as lmplz: <s> has probability 1 as a unigram, it is only ever context
    bow10 = [b / LN10 for b in bow]
    write_arpa(path, model.vocab_.tokens, rows, logp10, bow10)


def read_model_arpa(cls, path, tokenizer=None, progress=None):
    """A model of class ``cls`` (smoothing ``arpa``) that scores as the ARPA file at ``path`` says: see
    :meth:`NGramModel.from_arpa`."""
    tokens, rows, logp10, bow10 = read_arpa(path, progress=progress)
    tokenizer = _level(path, tokens, tokenizer)
    _insert_missing_contexts(rows, logp10, bow10)
    vocab = Vocabulary([t for t in tokens if t not in Vocabulary.SPECIALS])
    model = cls(order=len(rows), smoothing="arpa", tokenizer=tokenizer)
    model.vocab_ = vocab
    model.keys_, model.logp_, model.bow_ = _tables(path, vocab, tokens, rows, logp10, bow10)
    model.discounts_ = []
    _fill_inserted(model)
    return model


def _level(path, tokens: list, tokenizer):
    """The tokenizer: the one given (character level refused for a word-level file), or the inferred level."""
    char_level = is_char_level(tokens)
    if tokenizer is None:
        return Tokenizer("char" if char_level else "word")
    if tokenizer.level == "char" and not char_level:
        longer = next(t for t in tokens if len(t) > 1 and t not in Vocabulary.SPECIALS)
        raise ArpaError(
            f"{os.fspath(path)} is a word-level file (it holds tokens such as {longer!r}), but "
            "character level was asked for (--level char): give --level word or leave it out"
        )
    return tokenizer


def _insert_missing_contexts(rows: list, logp10: list, bow10: list) -> None:
    """Add (in place) the context of every stored n-gram that the file lacks, with a NaN probability (filled
    by :func:`_fill_inserted`) and backoff weight 1 (log 0)."""
    for n in range(len(rows), 1, -1):
        if len(rows[n - 1]) == 0:
            continue
        lower = rows[n - 2]
        prefixes = rows[n - 1][:, :-1]
        _, first = np.unique(np.concatenate([lower, prefixes]), axis=0, return_index=True)
        missing = first[first >= len(lower)] - len(lower)
        if len(missing):
            rows[n - 2] = np.concatenate([lower, prefixes[missing]])
            logp10[n - 2] = np.concatenate([logp10[n - 2], np.full(len(missing), np.nan)])
            bow10[n - 2] = np.concatenate([bow10[n - 2], np.zeros(len(missing))])


def _tables(path, vocab: Vocabulary, tokens: list, rows: list, logp10: list, bow10: list):
    """(keys, natural-log p, natural-log b) per order from the file's rows, in vocabulary ids and key order."""
    N, V = len(rows), len(vocab)
    index = {t: i for i, t in enumerate(vocab.tokens)}
    remap = np.array([index[t] for t in tokens], dtype=np.int64)  # file order -> vocabulary id
    lp1 = np.full(V, -100.0 * LN10)  # lmplz's rule for a file without <unk>: log10 P(<unk>) = -100
    b1 = np.zeros(V)
    lp1[remap[rows[0][:, 0]]] = logp10[0] * LN10  # read_arpa keeps log10 values <= 0
    b1[remap[rows[0][:, 0]]] = bow10[0] * LN10
    lp1[BOS] = -np.inf
    keys, logp, bow = [np.arange(V, dtype=np.int64)], [lp1], [b1]
    for n in range(2, N + 1):
        r = remap[rows[n - 1]]  # (M, n)
        prefix = _lookup(keys, r[:, :-1], V)  # every context is present (inserted above)
        key = prefix * V + r[:, -1]
        order = np.argsort(key, kind="stable")
        key = key[order]
        if np.any(key[1:] == key[:-1]):
            twice = " ".join(vocab.tokens[i] for i in r[order[np.flatnonzero(key[1:] == key[:-1])[0]]])
            raise ArpaError(f"{os.fspath(path)}: the {n}-gram {twice!r} is listed twice")
        keys.append(key)
        logp.append(logp10[n - 1][order] * LN10)
        if n < N:
            bow.append(bow10[n - 1][order] * LN10)
    return keys, logp, bow[: N - 1]


def _fill_inserted(model) -> None:
    """The inserted contexts' P(w | h) by the backoff rule, eq. (1) of smoothing.py (in place)."""
    keys, logp, bow = model.keys_, model.logp_, model.bow_
    V = len(model.vocab_)
    for n in range(2, model.order + 1):
        holes = np.flatnonzero(np.isnan(logp[n - 1]))
        if len(holes):
            r = model.ngrams(n)[holes]  # (M, n)
            ctx = _lookup(keys, r[:, :-1], V)
            b = np.where(ctx >= 0, bow[n - 2][np.maximum(ctx, 0)], 0.0)
            logp[n - 1][holes] = b + model.ngram_logprobs(r[:, 1:])
