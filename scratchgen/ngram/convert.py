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

__all__ = ["label_contexts", "read_model_arpa", "write_label_arpa", "write_model_arpa"]

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


# --- one label of a labelled model: P(w | c, h) written out in full -------------------------------------------


def label_contexts(model) -> list:
    """The histories U_j (j = 0 .. N - 1) on which P(. | c, h) of every label depends, as id rows (M_j, j).

    By labelled.py eq. (3), P(w | c, h) depends on h only through the suffixes h_j that are a context of the
    label-free model (a stored j-gram with a stored continuation, or a backoff weight other than 1) or a history
    label c has seen; the second are among the first, since a label's sentences are sentences of the whole
    corpus. So P(. | c, h) = P(. | c, u) for u the longest suffix of h in U. U is closed under dropping the
    first or the last token, so that every n-gram written has its context and its suffix in the file, as ARPA
    readers expect (the closure is made sure of below).
    """
    keys, _, bow = model._tables()
    V, N = len(model.vocab_), int(model.order)
    U = [np.zeros((1, 0), dtype=np.int64)]
    for j in range(1, N):
        contexts = np.union1d(np.unique(keys[j] // V), np.flatnonzero(bow[j - 1] != 0))  # indices of j-grams
        U.append(model.ngrams(j)[contexts])
    for j in range(N - 1, 1, -1):  # closed: a context's prefix and suffix are contexts too
        U[j - 1] = np.unique(np.concatenate([U[j - 1], U[j][:, :-1], U[j][:, 1:]]), axis=0)
    return U


def write_label_arpa(model, path, label: int, block: int = 4096) -> None:
    """Write P(w | c, h) of one label c of a labelled model as an ARPA file, exactly.

    Eq. (3) of :mod:`.labelled` has no sparse backoff form: below a history, the label-free model and the
    label's tables mix by weights that depend on the whole history, so P(. | c, h) is not a constant times
    P(. | c, h') over the words not seen after h. It is a function of the longest suffix u of h in
    :func:`label_contexts`' U, though, so the file lists, for every u in U, every word w (``<s>`` aside) with
    log10 P(w | c, u), and every backoff weight is 1: a reader finds (u, w) for the longest such u and
    multiplies by nothing. The file has sum_j |U_j| (V - 1) n-grams, V - 1 a context: fine for characters,
    large for words; its memory is checked first.
    """
    from ..resources import check_memory

    V, N = len(model.vocab_), int(model.order)
    U = label_contexts(model)
    words = np.array([w for w in range(V) if w != BOS], dtype=np.int64)  # (V - 1,) <s> is never predicted
    total = sum(len(u) for u in U) * len(words)
    name = model.labels_.names[label]
    check_memory(
        total * (8 * (N + 2) + 80),
        f"the ARPA form of label {name!r} ({total} n-grams: every word after each of {sum(map(len, U))} histories)",
        "P(w | c, h) of a labelled model has no sparse backoff form (scratchgen.ngram.labelled)",
    )
    rows, logp10 = [], []
    for j, contexts in enumerate(U):
        logp = np.empty((len(contexts), len(words)))  # (M_j, V - 1)
        for a in range(0, len(contexts), block):
            history = np.full((len(contexts[a : a + block]), N - 1), -1, dtype=np.int64)  # (B, N - 1), -1: none
            if j:
                history[:, N - 1 - j :] = contexts[a : a + block]
            state = (history, np.full(len(history), label, dtype=np.int64))
            logp[a : a + block] = model.next_logprobs(state)[:, words]  # P(. | c, u), u exactly as given
        grams = np.concatenate([np.repeat(contexts, len(words), axis=0), np.tile(words, len(contexts))[:, None]], 1)
        rows.append(grams)  # (M_j (V - 1), j + 1): each context followed by every word
        logp10.append(logp.reshape(-1) / LN10)
    rows[0] = np.concatenate([rows[0], [[BOS]]])  # <s> as a unigram: only ever a context, as lmplz writes it
    logp10[0] = np.concatenate([logp10[0], [0.0]])
    write_arpa(path, model.vocab_.tokens, rows, logp10, [np.zeros(len(r)) for r in rows[:-1]])
