"""The n-gram model: counts, smoothed, stored in backoff form, scored and stepped vectorised.

The statistical generator of scratchgen: the chain rule of :mod:`scratchgen.model` with a history cut to the
last N - 1 tokens (``<s>`` starts every history and is never padded twice)::

    P(x_t | x_<t) ~= P(x_t | x_{t-N+1} .. x_{t-1})                                              (1)

whatever the smoothing, the fitted model is stored as an ARPA file stores it (eq. (1) of smoothing.py):
per order n the sorted trie keys of the n-grams (counting.py eq. (2)), their log-probabilities and, below
order N, their log backoff weights. Scoring a token is then a search for the longest stored n-gram
that ends with it, plus the backoff weights of the longer contexts that were tried::

    log P(w | h) = log p(h_k w) + sum_{j=k}^{N-1} log b(h_j)                                       (2)

where h_j is the context of length j, h_k w the longest stored n-gram ending in w, and a context that is
not stored contributes log b = 0. ``token_logprobs`` evaluates eq. (2) for every token of a corpus at once
(one search an order); the stepping state is the last N - 1 ids, shape (B, N - 1), -1 before ``<s>``, and
``next_logprobs`` builds each row from the unigrams up: add b(h_j) to the row, then overwrite the words
stored after h_j.

Letters: V vocabulary, N order, B batch, P tokens in a flat corpus, U_n stored n-grams of order n.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Sequence

import numpy as np

from ..errors import ArpaError, CorpusError, ModelFileError, NotFittedError, ScratchgenError
from ..io import ArraySpec
from ..model import Corpus, LanguageModel, register_model
from ..progress import Progress
from ..text import Tokenizer, Vocabulary, check_tokens
from .counting import NGramCounts
from .smoothing import SMOOTHINGS, Estimate, make_smoothing

__all__ = ["NGramModel"]

BOS, EOS, UNK = Vocabulary.bos_id, Vocabulary.eos_id, Vocabulary.unk_id
LN10 = np.log(10.0)
#: The longest order accepted (a model file's header is checked against it before its arrays are listed).
MAX_ORDER = 1000
_INT64_MAX = int(np.iinfo(np.int64).max)
_MAX_LOG_BACKOFF = float(np.nextafter(99.0 * LN10, 0.0))  # a backoff weight below 10^99 (arpa.py's rule)


def _find(keys: np.ndarray, context: np.ndarray, words: np.ndarray, V: int) -> np.ndarray:
    """Index of the n-grams (context index, word) among sorted trie ``keys``; -1 where absent or context < 0."""
    if len(keys) == 0:
        return np.full(len(context), -1, dtype=np.int64)
    key = np.maximum(context, 0) * V + words  # counting.py eq. (2)
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


@register_model
class NGramModel(LanguageModel):
    """An n-gram language model with a choice of smoothing, KenLM-compatible.

    Parameters
    ----------
    order : int
        N, the longest n-gram (history of N - 1 tokens).
    smoothing : str
        One of ``mle``, ``add-k``, ``absolute``, ``witten-bell``, ``kneser-ney``, ``modified-kneser-ney``
        (KenLM lmplz's, the default) and ``stupid-backoff``; ``arpa`` for a model read from an ARPA file.
    k : float
        The k of add-k, and of the unigrams of stupid backoff.
    discount : float, tuple of 3 floats or None
        Absolute discounting and Kneser-Ney: D in (0, 1); modified Kneser-Ney: (D_1, D_2, D_3) for every
        order; stupid backoff: its factor alpha (0.4). None: estimated from counts-of-counts.
    cutoffs : list of int or None
        cutoffs[n-1]: n-grams of order n seen fewer times are dropped (n >= 2; cutoffs[0] must be 1;
        non-decreasing); the dropped mass goes to the backoff weights (Katz's renormalisation).
    tokenizer : Tokenizer or None

    >>> m = NGramModel(order=2, smoothing="witten-bell").fit(["abab", "ba"])
    >>> bool(np.isclose(np.exp(m.next_logprobs(m.initial_state(1))).sum(), 1.0))
    True
    >>> round(m.score(["ab"]).perplexity, 4) < round(m.score(["bb"]).perplexity, 4)
    True
    """

    def __init__(self, *, order: int = 3, smoothing: str = "modified-kneser-ney", k: float = 1.0,
                 discount=None, cutoffs=None, tokenizer: Tokenizer | None = None):
        super().__init__(tokenizer=tokenizer)
        self.order = order
        self.smoothing = smoothing
        self.k = k
        self.discount = discount
        self.cutoffs = cutoffs

    @property
    def normalized(self) -> bool:  # type: ignore[override]
        return self.smoothing != "stupid-backoff"

    # --- fitting ---------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        """What every n-gram model's settings must satisfy, fitted or read from a file; no side effects.

        The smoothing's own checks (k, discount) run by building a throw-away strategy, so there is one
        rule per setting (in :mod:`.smoothing`); ``fit`` builds the one it uses.
        """
        order = self.order
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
            raise ScratchgenError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
        if self.smoothing != "arpa" and self.smoothing not in SMOOTHINGS:
            raise ScratchgenError(f"smoothing must be one of {SMOOTHINGS}, got {self.smoothing!r}")
        k = self.k
        if not isinstance(k, (int, float, np.integer, np.floating)) or isinstance(k, bool) or not 0 < k < np.inf:
            raise ScratchgenError(f"k must be a finite number > 0, got {k!r}")
        if self.smoothing != "arpa":
            make_smoothing(self.smoothing, k=self.k, discount=self.discount)  # raises on a bad discount
        if self.cutoffs is not None:
            c = self.cutoffs
            if (not isinstance(c, (list, tuple)) or len(c) != self.order
                    or any(not isinstance(x, (int, np.integer)) or isinstance(x, bool) or x < 1 for x in c)
                    or c[0] != 1 or any(b < a for a, b in zip(c, c[1:]))):
                raise ScratchgenError(f"cutoffs must be {self.order} integers >= 1, non-decreasing, the first 1 "
                                      f"(unigrams are never cut), got {self.cutoffs!r}")

    def _check_fit_params(self) -> None:
        """:meth:`_check_params`, and a smoothing to fit with (a model read from ARPA has none)."""
        self._check_params()
        if self.smoothing == "arpa":
            raise ScratchgenError("a model read from an ARPA file cannot be refitted: give a smoothing "
                                  f"(one of {SMOOTHINGS})")

    def fit(self, corpus: Corpus, progress: Progress | None = None) -> "NGramModel":
        """Count the n-grams of a corpus and smooth them; returns ``self``.

        Every distinct token follows :func:`scratchgen.text.check_tokens`: ``<s>`` and ``</s>`` are refused
        (the model adds them), and a literal ``<unk>`` *is* the unknown token, id 0, counted as such (a
        PTB-style corpus writes ``<unk>`` for its rare words). KenLM's ``lmplz`` refuses ``<unk>`` in its
        corpus instead (unless ``--skip_symbols``, which drops it); on a corpus without ``<unk>`` the two agree.
        ``progress`` (a :class:`scratchgen.progress.Progress`) is advanced once per counted order.
        """
        self._check_fit_params()
        sequences = self._token_lists(corpus)
        if not sequences:
            raise CorpusError("cannot fit on an empty corpus")
        vocab, flat, lengths = _build_vocab(sequences)
        counts = NGramCounts.from_flat(flat, lengths, self.order, len(vocab), progress=progress)
        return self.fit_counts(counts, vocab)

    def _token_lists(self, corpus: Corpus) -> list:
        """Like ``tokenize_corpus``, but token lists are checked once per distinct token (in _build_vocab)."""
        if isinstance(corpus, str):
            return self.tokenize_corpus(corpus)  # the shared error message
        try:
            items = list(corpus)
        except TypeError:
            raise CorpusError(f"a corpus must be iterable, got {type(corpus).__name__}") from None
        tokenize = self.tokenizer_.tokenize
        out = []
        for s in items:
            if isinstance(s, str):
                out.append(tokenize(s))
            elif isinstance(s, (list, tuple)):
                out.append(s)
            else:
                out.append(self._tokens(s))  # raises the shared CorpusError
        return out

    def fit_counts(self, counts: NGramCounts, vocab: Vocabulary) -> "NGramModel":
        """Smooth counts made elsewhere (e.g. merged chunk by chunk) with this model's settings."""
        self._check_fit_params()
        if counts.order != self.order or counts.vocab_size != len(vocab):
            raise ScratchgenError(f"counts of order {counts.order} over {counts.vocab_size} ids do not fit a model "
                                  f"of order {self.order} with a vocabulary of {len(vocab)}")
        smoother = make_smoothing(self.smoothing, k=self.k, discount=self.discount)
        est = smoother.estimate(counts)
        keys = list(counts.keys)
        if self.cutoffs is not None and any(c > 1 for c in self.cutoffs):
            keys, est = _prune(counts, est, list(self.cutoffs), smoother.normalized)
        self.vocab_ = vocab
        with np.errstate(divide="ignore"):
            # A probability computed as 1 + 1e-16 is 1: a log-probability is never above 0 (the file schema).
            self.logp_ = [np.minimum(np.log(p), 0.0) for p in est.prob]
            self.bow_ = [np.log(b) for b in est.bow[:-1]]
        self.keys_ = keys
        self.logp_[0][BOS] = -np.inf
        self.discounts_ = [[float(x) for x in d] if isinstance(d, tuple) else (None if d is None else float(d))
                           for d in est.discounts]  # per order, for the record (JSON-able)
        return self

    # --- tables ----------------------------------------------------------------------------------------

    def _tables(self):
        if getattr(self, "keys_", None) is None:
            raise NotFittedError("this NGramModel is not fitted yet: call fit(corpus) first")
        return self.keys_, self.logp_, self.bow_

    def ngrams(self, n: int) -> np.ndarray:
        """The stored n-grams of order n as rows of ids, shape (U_n, n), in key order."""
        keys, _, _ = self._tables()
        V = len(self.vocab_)
        out = np.empty((len(keys[n - 1]), n), dtype=np.int64)
        index = np.arange(len(keys[n - 1]))
        for j in range(n, 1, -1):
            out[:, j - 1] = keys[j - 1][index] % V
            index = keys[j - 1][index] // V
        out[:, 0] = index
        return out

    def num_ngrams(self) -> list:
        """How many n-grams of each order the model stores."""
        keys, _, _ = self._tables()
        return [len(self.vocab_)] + [len(k) for k in keys[1:]]

    def nbytes(self) -> int:
        """Bytes of the stored tables (keys, log-probabilities, backoff weights)."""
        keys, logp, bow = self._tables()
        return sum(a.nbytes for a in keys[1:] + logp + bow)

    # --- scoring ---------------------------------------------------------------------------------------

    def _indices(self, ids: np.ndarray) -> list:
        """index[n-1][p]: the stored n-gram ending at p of the flat stream, -1 if none (never across <s>)."""
        keys, _, _ = self._tables()
        V = len(self.vocab_)
        index = [ids]
        for n in range(2, self.order + 1):
            prev = np.empty(len(ids), dtype=np.int64)
            prev[0] = -1
            prev[1:] = index[-1][:-1]
            prev[ids == BOS] = -1  # an n-gram never crosses into the next sequence
            index.append(_find(keys[n - 1], prev, ids, V))
        return index

    def token_logprobs(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """log P of every token and ``</s>`` of every sequence: eq. (2), vectorised over the whole corpus."""
        _, logp, bow = self._tables()
        if len(sequences) == 0:
            return []
        seqs = [s if isinstance(s, np.ndarray) and s.ndim == 1 and s.dtype.kind in "iu" else self._check_ids(s)
                for s in sequences]
        ids, lengths = _flatten(seqs)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self.vocab_)):
            for s in seqs:
                self._check_ids(s)  # names the bad id
        index = self._indices(ids)
        P = len(ids)
        total = np.zeros(P)
        done = ids == BOS  # <s> is never scored
        for n in range(self.order, 0, -1):
            hit = ~done & (index[n - 1] >= 0)
            total[hit] += logp[n - 1][index[n - 1][hit]]
            done |= hit
            if n >= 2:  # the context of length n - 1 was tried: its backoff weight
                ctx = np.empty(P, dtype=np.int64)
                ctx[0] = -1
                ctx[1:] = index[n - 2][:-1]
                tried = ~done & (ctx >= 0)
                total[tried] += bow[n - 2][ctx[tried]]
        scored = total[ids != BOS]
        ends = np.cumsum(lengths).tolist()
        return [scored[a:b] for a, b in zip([0] + ends[:-1], ends)]

    # --- stepping --------------------------------------------------------------------------------------

    def initial_state(self, batch_size: int = 1) -> np.ndarray:
        self._tables()
        state = np.full((batch_size, self.order - 1), -1, dtype=np.int64)  # (B, N-1)
        if self.order > 1:
            state[:, -1] = BOS
        return state

    def advance(self, state: np.ndarray, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1, 1)  # (B, 1)
        if self.order == 1:
            return state
        return np.concatenate([state[:, 1:], ids], axis=1)  # (B, N-1)

    def _context_index(self, state: np.ndarray, j: int) -> np.ndarray:
        """Index of the last j tokens of each state among the stored j-grams; -1 if not stored."""
        keys, _, _ = self._tables()
        V = len(self.vocab_)
        tokens = state[:, state.shape[1] - j:]  # (B, j)
        index = np.where(tokens[:, 0] >= 0, tokens[:, 0], -1)
        for i in range(1, j):
            word = tokens[:, i]
            index = _find(keys[i], np.where(word == BOS, -1, index), np.maximum(word, 0), V)
        return index

    def next_logprobs(self, state: np.ndarray) -> np.ndarray:
        keys, logp, bow = self._tables()
        V = len(self.vocab_)
        B = len(state)
        rows = np.repeat(logp[0][None, :], B, axis=0)  # (B, V) the unigrams
        for j in range(1, self.order):
            ctx = self._context_index(state, j)  # (B,)
            live = np.flatnonzero(ctx >= 0)
            if len(live) == 0:
                break
            c = ctx[live]
            rows[live] += bow[j - 1][c][:, None]  # eq. (1) of smoothing.py: b(h) P(w | h')
            table = keys[j]
            lo = np.searchsorted(table, c * V)
            hi = np.searchsorted(table, (c + 1) * V)
            n = hi - lo  # (L,) words stored after each context
            entry = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n - lo, n)  # concatenated lo..hi ranges
            rows[np.repeat(live, n), table[entry] % V] = logp[j][entry]
        rows[:, BOS] = -np.inf
        return rows

    # --- files -----------------------------------------------------------------------------------------

    def _save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        keys, logp, bow = self._tables()
        arrays = {}
        for n in range(1, self.order + 1):
            if n > 1:
                arrays[f"keys_{n}"] = keys[n - 1]
                arrays[f"bow_{n - 1}"] = bow[n - 2]
            arrays[f"logp_{n}"] = logp[n - 1]
        return {"discounts": getattr(self, "discounts_", [])}, arrays

    def _array_schema(self) -> dict[str, ArraySpec]:
        """Per order n: ``logp_n`` log-probabilities (<= 0; -inf for an impossible event, such as ``<s>``
        predicted or an unseen word under MLE), ``keys_n`` (n >= 2) the sorted trie keys (counting.py eq. (2)),
        ``bow_n`` (n < N) log backoff weights (-inf only where MLE gives a context no backoff; below a factor
        of 10^99, as ARPA files are read). The lengths depend on the data; :meth:`_load_state` checks them
        against each other."""
        V, N = len(self.vocab_), int(self.order)
        schema = {"logp_1": ArraySpec((V,), allow_neg_inf=True, high=0.0)}
        for n in range(2, N + 1):
            most = V**n - 1 if n * np.log2(max(V, 2)) < 63 else _INT64_MAX  # counting.py eq. (2): key < V^n
            schema[f"keys_{n}"] = ArraySpec((None,), kind="i", low=0, high=most, increasing=True)
            schema[f"logp_{n}"] = ArraySpec((None,), allow_neg_inf=True, high=0.0)
        for n in range(1, N):
            schema[f"bow_{n}"] = ArraySpec((None,), allow_neg_inf=True, high=_MAX_LOG_BACKOFF)
        return schema

    def _load_state(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """The tables from validated arrays, after the checks that involve two arrays (:meth:`_array_schema`)."""
        V, N = len(self.vocab_), int(self.order)
        keys, logp, bow = [np.arange(V, dtype=np.int64)], [], []
        for n in range(1, N + 1):
            lp = np.asarray(arrays[f"logp_{n}"], dtype=np.float64)
            if n > 1:
                k = np.asarray(arrays[f"keys_{n}"], dtype=np.int64)
                if k.shape != lp.shape:
                    raise ModelFileError(f"keys_{n} holds {len(k)} {n}-grams but logp_{n} {len(lp)}")
                if len(k) and k[-1] >= len(keys[-1]) * V:
                    raise ModelFileError(f"keys_{n} holds {k[-1]}, beyond the {len(keys[-1])} stored "
                                         f"{n - 1}-grams times the vocabulary of {V}")
                keys.append(k)
            logp.append(lp)
        for n in range(1, N):
            b = np.asarray(arrays[f"bow_{n}"], dtype=np.float64)
            if b.shape != logp[n - 1].shape:
                raise ModelFileError(f"bow_{n} has {len(b)} backoff weights for {len(logp[n - 1])} {n}-grams")
            bow.append(b)
        self._check_discounts(extra.get("discounts", []))
        if self.normalized and self.smoothing != "arpa":  # cheap: the unigrams of a fitted model sum to 1
            total = float(np.exp(logp[0]).sum())
            if not abs(total - 1.0) < 1e-6:
                raise ModelFileError(f"the unigram probabilities of this {self.smoothing} model sum to {total!r}, "
                                     "not 1")
        self.keys_, self.logp_, self.bow_ = keys, logp, bow
        self.discounts_ = extra.get("discounts", [])

    def _check_discounts(self, discounts) -> None:
        """The discounts recorded in the header: one entry per order (none for ARPA), each None, a finite
        number or a list of finite numbers."""
        def number(x) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(np.isfinite(x))

        ok = isinstance(discounts, list) and len(discounts) in (0, self.order) and all(
            d is None or number(d) or (isinstance(d, list) and len(d) == 3 and all(map(number, d)))
            for d in discounts)
        if not ok:
            raise ModelFileError(f"its discounts {str(discounts)[:80]} are not one entry per order "
                                 "(None, a number or three numbers)")

    # --- ARPA ------------------------------------------------------------------------------------------

    def to_arpa(self, path: str | os.PathLike) -> None:
        """Write the model as an ARPA file, words as they are, as lmplz writes them (whitespace tokens of a
        character-level vocabulary as stand-ins: see :mod:`scratchgen.ngram.arpa`)."""
        from .arpa import write_arpa

        _, logp, bow = self._tables()
        tokens = self.vocab_.tokens
        rows = [self.ngrams(n) for n in range(1, self.order + 1)]
        logp10 = [lp / LN10 for lp in logp]
        logp10[0] = logp10[0].copy()
        logp10[0][BOS] = 0.0  # as lmplz: <s> has probability 1 as a unigram, it is only ever context
        bow10 = [b / LN10 for b in bow]
        write_arpa(path, tokens, rows, logp10, bow10)

    @classmethod
    def from_arpa(cls, path: str | os.PathLike, tokenizer: Tokenizer | None = None,
                  progress: Progress | None = None) -> "NGramModel":
        """Read an ARPA file (KenLM, SRILM) into a backoff model that scores as the file says.

        Without a ``tokenizer`` the level is inferred from the file's vocabulary: character level when every
        token but ``<unk>``, ``<s>`` and ``</s>`` is one character, word level otherwise. A character-level
        tokenizer for a file with longer tokens is refused (it would score every word as ``<unk>``).
        ``progress`` (a :class:`scratchgen.progress.Progress`, optional) is advanced by the bytes read.
        """
        from .arpa import is_char_level, read_arpa

        tokens, rows, logp10, bow10 = read_arpa(path, progress=progress)
        N = len(rows)
        char_level = is_char_level(tokens)
        if tokenizer is None:
            tokenizer = Tokenizer("char" if char_level else "word")
        elif tokenizer.level == "char" and not char_level:
            longer = next(t for t in tokens if len(t) > 1 and t not in Vocabulary.SPECIALS)
            raise ArpaError(f"{os.fspath(path)} is a word-level file (it holds tokens such as {longer!r}), but "
                            "character level was asked for (--level char): give --level word or leave it out")
        # Some files (pruned by SRILM) lack the context of a stored n-gram; insert it with a NaN probability,
        # filled below with what the backoff rule gives it, and backoff weight 1, so scores do not change.
        for n in range(N, 1, -1):
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
        model = cls(order=N, smoothing="arpa", tokenizer=tokenizer)
        vocab = Vocabulary([t for t in tokens if t not in Vocabulary.SPECIALS])
        index = {t: i for i, t in enumerate(vocab.tokens)}
        remap = np.array([index[t] for t in tokens], dtype=np.int64)  # file order -> vocabulary id
        V = len(vocab)
        lp1 = np.full(V, -100.0 * LN10)  # lmplz's rule for a file without <unk>: log10 P(<unk>) = -100
        b1 = np.zeros(V)
        lp1[remap[rows[0][:, 0]]] = logp10[0] * LN10  # read_arpa keeps log10 values <= 0
        b1[remap[rows[0][:, 0]]] = bow10[0] * LN10
        lp1[BOS] = -np.inf
        keys, logp, bow = [np.arange(V, dtype=np.int64)], [lp1], [b1]
        for n in range(2, N + 1):
            r = remap[rows[n - 1]]  # (M, n)
            prefix = _lookup_rows(keys, r[:, :-1], V)  # every context is present (inserted above)
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
        model.vocab_ = vocab
        model.keys_, model.logp_, model.bow_ = keys, logp, bow[: N - 1]
        model.discounts_ = []
        for n in range(2, N + 1):  # the inserted contexts: P(w | h) by the backoff rule, eq. (1) of smoothing.py
            holes = np.flatnonzero(np.isnan(logp[n - 1]))
            if len(holes):
                r = model.ngrams(n)[holes]  # (M, n)
                ctx = _lookup_rows(keys, r[:, :-1], V)
                b = np.where(ctx >= 0, bow[n - 2][np.maximum(ctx, 0)], 0.0)
                logp[n - 1][holes] = b + model.ngram_logprobs(r[:, 1:])
        return model

    def ngram_logprobs(self, rows: np.ndarray) -> np.ndarray:
        """log P(w | h) of n-grams given as rows of ids (M, m), h the first m - 1 ids, by eq. (2)."""
        keys, logp, bow = self._tables()
        V = len(self.vocab_)
        rows = np.asarray(rows, dtype=np.int64)
        M, m = rows.shape
        total = np.zeros(M)
        done = np.zeros(M, dtype=bool)
        for k in range(min(m, self.order), 0, -1):  # the longest stored n-gram ending in w
            index = _lookup_rows(keys, rows[:, m - k:], V)
            hit = ~done & (index >= 0)
            total[hit] += logp[k - 1][index[hit]]
            done |= hit
            if k >= 2:  # the context of length k - 1 failed if we go on: its backoff weight
                ctx = _lookup_rows(keys, rows[:, m - k:m - 1], V)
                tried = ~done & (ctx >= 0)
                total[tried] += bow[k - 2][ctx[tried]]
        return total


def _lookup_rows(keys: list, rows: np.ndarray, V: int) -> np.ndarray:
    from .counting import _lookup

    return _lookup(keys, rows, V)


def _build_vocab(sequences: list) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
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


def _prune(counts: NGramCounts, est: Estimate, cutoffs: list, normalized: bool):
    """Drop n-grams below their order's cutoff; renormalise the backoff weights (Katz) so rows sum to 1."""
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
        if normalized and cutoffs[n - 1] > 1:  # b(h) = (1 - sum_kept p(w|h)) / (1 - sum_kept P(w|h'))
            size = len(prob[-2])
            left = 1.0 - np.bincount(ctx, weights=p, minlength=size)
            lower = 1.0 - np.bincount(ctx, weights=prob[-2][suffix], minlength=size)
            with np.errstate(divide="ignore", invalid="ignore"):
                bow[-1] = np.where(lower > 1e-12, np.maximum(left, 0.0) / np.maximum(lower, 1e-300), 1.0)
        bow.append(b)
    return keys, Estimate(prob, bow, est.discounts)
