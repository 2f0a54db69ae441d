"""The n-gram model: counts, smoothed, stored in backoff form, scored and stepped vectorised.

The statistical generator of scratchgen: the chain rule of :mod:`scratchgen.model` with a history cut to the
last N - 1 tokens (``<s>`` starts every history and is never padded twice)::

    P(x_t | x_<t) ~= P(x_t | x_{t-N+1} .. x_{t-1})                                              (1)

whatever the smoothing, the fitted model is stored as an ARPA file stores it (eq. (1) of smoothing.py):
per order n the sorted trie keys of the n-grams (counting.py eq. (2)), their log-probabilities and, below
order N, their log backoff weights. Scoring a token is then a search for the longest stored n-gram
that ends with it, plus the backoff weights of the longer contexts that were tried::

    log P(w | h) = log p(h_k w) + sum_{j=k+1}^{N-1} log b(h_j)                                     (2)

where h_j is the context of length j, h_k w the longest stored n-gram ending in w (so the sum runs over the longer
contexts, tried and failed), and a context that is not stored contributes log b = 0. ``token_logprobs`` evaluates
eq. (2) for every token of a corpus at once (one look-up an order, in a direct or hash table built from the keys:
:mod:`.lookup`; one token at a time, with dicts, in :mod:`.scoring_reference`); the stepping state is the last
N - 1 ids, shape (B, N - 1), -1 before ``<s>``, and ``next_logprobs`` builds each row from the unigrams up: add
b(h_j) to the row, then overwrite the words stored after h_j.

A labelled model (``fit(corpus, labels=...)``) models P(w | c, h): the label c extends every history, and
backing off ends in the label-free model of eq. (2). Its mathematics, and the one trie that holds the tables
of every label, are in :mod:`scratchgen.ngram.labelled`; here it is eq. (2) walked on the label trie and on
the label-free tables at each history length, mixed (labelled.py eqs. (5)-(6)), and a stepping state that
carries the label ids.

Letters: V vocabulary, N order, B batch, P tokens in a flat corpus, U_n stored n-grams of order n.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CorpusError, LabelError, ModelFileError, NotFittedError, ScratchgenError
from ..metrics import Score
from ..model import Corpus, LanguageModel, register_model
from ..progress import Progress
from ..schema import ArraySpec
from ..text import Tokenizer, Vocabulary
from .lookup import child_table
from .settings import DEFAULT_ALPHA, MAX_ORDER, SMOOTHINGS, check_settings, legacy_alpha
from .storage import array_schema, check_discounts, save_arrays, tables_from_arrays

if TYPE_CHECKING:
    from .counting import NGramCounts

# Loading and scoring a model need none of counting, fitting, smoothing and the label tables: those modules are
# imported by the methods that fit (or that read a labelled model), so ``scratchgen score`` does not load them.

__all__ = ["NGramModel"]

BOS, EOS = Vocabulary.bos_id, Vocabulary.eos_id
#: Positions of the stream scored at once by ``scratchgen score`` (:meth:`NGramModel._score_encoded`): each of
#: the dozen arrays of a chunk is then 0.5 to 1 MB, so they stay in the cache, and the memory one chunk frees is
#: what the next one takes (the allocator keeps it). Chunks of 2^19 positions took a third more CPU time on the
#: 1 MB file, half of it in the kernel, faulting in fresh pages for every chunk; below 2^16, the Python work of
#: each chunk adds up instead.
STREAM_CHUNK = 1 << 17


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
        order. None: estimated from counts-of-counts. (For stupid backoff, ``discount`` is the deprecated old
        name of ``alpha``: see below.)
    alpha : float
        Stupid backoff's factor in (0, 1] (default 0.4, Brants et al.'s): b(h) of every seen context.
    cutoffs : list of int or None
        cutoffs[n-1]: n-grams of order n seen fewer times are dropped (n >= 2; cutoffs[0] must be 1;
        non-decreasing); the dropped mass goes to the backoff weights (Katz's renormalisation).
    tokenizer : Tokenizer or None

    Model files written before ``alpha`` existed stored stupid backoff's factor as ``discount`` (and have no
    ``alpha``). They still load and score the same: :meth:`_load_state` moves that ``discount`` to ``alpha``,
    so a model saved again carries ``alpha``. Fitting a stupid-backoff model with ``discount`` still works, as
    its alpha, with a ``DeprecationWarning``.

    >>> m = NGramModel(order=2, smoothing="witten-bell").fit(["abab", "ba"])
    >>> bool(np.isclose(np.exp(m.next_logprobs(m.initial_state(1))).sum(), 1.0))
    True
    >>> round(m.score(["ab"]).perplexity, 4) < round(m.score(["bb"]).perplexity, 4)
    True

    With one label a sequence it is a conditional model P(x | c) (:mod:`scratchgen.ngram.labelled`), and a
    classifier:

    >>> m = NGramModel(order=2).fit(["abab", "ba", "xyx", "yy"], labels=["ab", "ab", "xy", "xy"])
    >>> m.logprob("ab", label="ab") > m.logprob("ab", label="xy")
    True
    >>> m.classify(["yxy", "bab"]).labels
    ['xy', 'ab']
    """

    def __init__(
        self,
        *,
        order: int = 3,
        smoothing: str = "modified-kneser-ney",
        k: float = 1.0,
        discount=None,
        alpha: float = DEFAULT_ALPHA,
        cutoffs=None,
        tokenizer: Tokenizer | None = None,
    ):
        super().__init__(tokenizer=tokenizer)
        self.order = order
        self.smoothing = smoothing
        self.k = k
        self.discount = discount
        self.alpha = alpha
        self.cutoffs = cutoffs

    @property
    def normalized(self) -> bool:  # type: ignore[override]
        return self.smoothing != "stupid-backoff"

    # --- fitting ---------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        """What every n-gram model's settings must satisfy, fitted or read from a file; no side effects.

        The smoothing's settings (k, discount, alpha) follow the rules of :func:`.smoothing.check_settings`,
        one per setting; ``fit`` builds the strategy it uses.
        """
        order = self.order
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
            raise ScratchgenError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
        if self.smoothing != "arpa":
            check_settings(self.smoothing, k=self.k, discount=self.discount, alpha=self.alpha)
        if self.cutoffs is not None:
            c = self.cutoffs
            if (
                not isinstance(c, (list, tuple))
                or len(c) != self.order
                or any(not isinstance(x, (int, np.integer)) or isinstance(x, bool) or x < 1 for x in c)
                or c[0] != 1
                or any(b < a for a, b in zip(c, c[1:]))
            ):
                raise ScratchgenError(
                    f"cutoffs must be {self.order} integers >= 1, non-decreasing, the first 1 "
                    f"(unigrams are never cut), got {self.cutoffs!r}"
                )

    def _check_fit_params(self) -> None:
        """:meth:`_check_params`, and a smoothing to fit with (a model read from ARPA has none)."""
        self._check_params()
        if self.smoothing == "arpa":
            raise ScratchgenError(
                f"a model read from an ARPA file cannot be refitted: give a smoothing (one of {SMOOTHINGS})"
            )

    def fit(self, corpus: Corpus, labels=None, progress: Progress | None = None) -> NGramModel:
        """Count the n-grams of a corpus and smooth them; returns ``self``.

        ``labels`` (one str per sequence) makes a labelled model P(x | c) (:mod:`.labelled`): the label-free
        tables are fitted on all sequences exactly as without labels, then each label's tables on its own.

        Every distinct token follows :func:`scratchgen.text.check_tokens`: ``<s>`` and ``</s>`` are refused
        (the model adds them), and a literal ``<unk>`` *is* the unknown token, id 0, counted as such (a
        PTB-style corpus writes ``<unk>`` for its rare words). KenLM's ``lmplz`` refuses ``<unk>`` in its
        corpus instead (unless ``--skip_symbols``, which drops it); on a corpus without ``<unk>`` the two agree.
        ``progress`` (a :class:`scratchgen.progress.Progress`) is advanced once per counted order.
        """
        from .counting import NGramCounts
        from .fitting import build_vocab
        from .labelled import check_labelled_settings, label_tables

        self._check_fit_params()
        if labels is not None:
            check_labelled_settings(self.smoothing, self.cutoffs)
        sequences = self._token_lists(corpus)
        if not sequences:
            raise CorpusError("cannot fit on an empty corpus")
        label_of = self._fit_labels(labels, len(sequences))
        label_set = self.labels_
        vocab, flat, lengths = build_vocab(sequences)
        counts = NGramCounts.from_flat(flat, lengths, self.order, len(vocab), progress=progress)
        self.fit_counts(counts, vocab)  # the label-free model, as without labels
        if label_set is not None and label_of is not None:
            strategy = self._strategy(warn=False)
            keys, logr, bow, below, discounts = label_tables(
                flat, lengths, label_of, len(label_set), len(vocab), self.order, strategy
            )
            self.labels_ = label_set
            self.label_keys_, self.label_logr_, self.label_bow_, self.label_below_ = keys, logr, bow, below
            self.label_discounts_ = discounts
        return self

    def _token_lists(self, corpus: Corpus) -> list:
        """Like ``tokenize_corpus``, but token lists are checked once per distinct token (in build_vocab)."""
        if isinstance(corpus, str):
            return self.tokenize_corpus(corpus)  # the shared error message
        try:
            items = list(corpus)
        except TypeError:
            raise CorpusError(f"a corpus must be iterable, got {type(corpus).__name__}") from None
        tokenize = self.tokenizer_.tokenize
        out: list[Sequence[str]] = []
        for s in items:
            if isinstance(s, str):
                out.append(tokenize(s))
            elif isinstance(s, (list, tuple)):
                out.append(s)
            else:
                out.append(self.tokenize(s))  # raises the shared CorpusError
        return out

    def fit_counts(self, counts: NGramCounts, vocab: Vocabulary) -> NGramModel:
        """Smooth counts made elsewhere (e.g. merged chunk by chunk) with this model's settings."""
        self._check_fit_params()
        if counts.order != self.order or counts.vocab_size != len(vocab):
            raise ScratchgenError(
                f"counts of order {counts.order} over {counts.vocab_size} ids do not fit a model "
                f"of order {self.order} with a vocabulary of {len(vocab)}"
            )
        from .fitting import backoff_tables

        strategy = self._strategy()
        return self._set_tables(backoff_tables(counts, strategy, self.cutoffs), vocab)

    def _strategy(self, warn: bool = True):
        """The smoothing strategy of the settings (stupid backoff's old ``discount`` warned about)."""
        from .smoothing import make_smoothing

        if warn and self.smoothing == "stupid-backoff" and self.discount is not None:
            warnings.warn(
                f"discount={self.discount!r} as stupid backoff's factor is deprecated: give "
                f"alpha={self.discount!r} instead",
                DeprecationWarning,
                stacklevel=3,
            )
        return make_smoothing(self.smoothing, k=self.k, discount=self.discount, alpha=self.alpha)

    def _set_tables(self, tables: tuple, vocab: Vocabulary) -> NGramModel:
        """Keep the fitted (keys, log p, log b, discounts) and the vocabulary; no label tables."""
        self.keys_, self.logp_, self.bow_, self.discounts_ = tables
        self.vocab_ = vocab
        self.labels_ = None  # counts carry no labels: fit(corpus, labels=...) adds the label tables
        self.label_keys_ = self.label_logr_ = self.label_bow_ = self.label_below_ = None
        return self

    def fit_dask(self, source, client=None, **kwargs) -> NGramModel:
        """Count ``source`` (a ``dask.bag`` of texts, or file paths read one sequence a line) on a Dask
        cluster and smooth the merged counts here: the same model as :meth:`fit` on the same text, to the
        last bit. See :mod:`scratchgen.ngram.distributed`; needs ``pip install 'scratchgen[dask]'``."""
        from .distributed import count_with_dask

        self._check_fit_params()
        counts, vocab = count_with_dask(source, self.order, self.tokenizer_, client, **kwargs)
        return self.fit_counts(counts, vocab)

    def fit_file(
        self,
        path: str | os.PathLike,
        *,
        memory: int | None = None,
        temp_dir: str | os.PathLike | None = None,
        encoding: str = "utf-8",
        progress: Progress | None = None,
        report: dict | None = None,
        output: str | os.PathLike | None = None,
    ) -> NGramModel:
        """Fit on a text file read one sequence a line (empty lines skipped), straight into ids.

        The file is counted a chunk of lines at a time (:mod:`scratchgen.ngram.chunked`). ``memory`` (bytes)
        bounds the memory of counting and smoothing: while the distinct n-grams fit it, both run in memory;
        when they outgrow it, the counts spill to disk as sorted runs in a temporary folder under ``temp_dir``
        (removed afterwards) and are merged, as ``lmplz -S`` does (:mod:`scratchgen.ngram.external`, which says
        what the budget covers), and smoothing reads them from that folder a block at a time
        (:mod:`scratchgen.ngram.external_smoothing`, which says what it keeps in memory; with cutoffs above 1
        it runs in memory). The model is identical, to the last bit, to :func:`scratchgen.corpus.read_ids`
        then :meth:`fit_counts` on the whole file. ``progress`` is advanced by the lines read; ``report`` (a
        dict) receives ``spilled``, what the counting reports and the number of ``sequences``.

        With ``output`` (a path) the model is also saved there, as :meth:`save` writes it (the same bytes).
        When the counts spilled, the file is written from the smoothed tables on disk a block at a time, never
        holding them whole, and the model's large arrays are then memory maps of that file (as
        ``scratchgen.load(output, mmap=True)`` gives them): ``--memory`` then bounds the whole fit, the model's
        saving too. Without ``output`` the spilled model's tables are read into memory at the end.
        """
        from . import chunked, external
        from .external_smoothing import streamable
        from .smoothing import make_smoothing

        self._check_fit_params()
        if output is not None:  # a bad output is named before the corpus is read, and the corpus never replaced
            from ..io import check_output

            output = check_output(output, [path])
        report = {} if report is None else report
        if memory is None:
            counts, vocab = chunked.count(path, self.order, self.tokenizer_, None, temp_dir, encoding, progress, report)
        else:
            settings = make_smoothing(self.smoothing, k=self.k, discount=self.discount, alpha=self.alpha)
            stream = streamable(settings, self.cutoffs)  # (without _strategy's warning: it comes below, once)
            cap = external.IN_MEMORY_CAP if stream else None
            counted = chunked.count_within(
                path, self.order, self.tokenizer_, memory, temp_dir, encoding, progress, report, cap
            )
            if counted is None:  # more distinct n-grams than the budget holds: spill them, smooth from disk
                strategy = self._strategy()
                if stream:
                    save = None if output is None else functools.partial(self._save_columns, output)
                    tables, vocab = external.fit_file(
                        path, self.order, strategy, self.tokenizer_, memory, temp_dir, encoding, None, report, save
                    )
                    if tables is None:  # written to output: its arrays mapped, not read
                        return self._map_tables(output, vocab)
                    return self._set_tables(tables, vocab)
                counted = external.count_file(
                    path, self.order, self.tokenizer_, memory, temp_dir, encoding, report=report
                )
            counts, vocab = counted
        report["sequences"] = int(counts.counts[0][Vocabulary.eos_id])  # one </s> a sequence
        self.fit_counts(counts, vocab)
        if output is not None:
            self.save(output)
        return self

    def _save_columns(self, output, tables: tuple, vocab: Vocabulary, block: int) -> None:
        """Save the model of ``tables`` (keys, log p, log b, discounts), whose arrays of orders 2 .. N are
        column files read ``block`` values at a time, to ``output``: the file :meth:`save` writes."""
        from ..io import write_model

        keys, logp, bow, discounts = tables
        self.vocab_, self.labels_, self.discounts_ = vocab, None, discounts
        write_model(self, output, {"discounts": discounts}, save_arrays(keys, logp, bow), block)

    def _map_tables(self, output, vocab: Vocabulary) -> NGramModel:
        """The tables of the file ``output`` just written by :meth:`_save_columns`, its large arrays memory maps
        (:func:`scratchgen.io.read_archive`; the values were checked as they were written)."""
        from ..io import read_archive

        _, arrays = read_archive(output, mmap=True)
        keys, logp, bow = tables_from_arrays(arrays, len(vocab), int(self.order))
        return self._set_tables((keys, logp, bow, self.discounts_), vocab)

    # --- tables ----------------------------------------------------------------------------------------

    def _tables(self):
        if getattr(self, "keys_", None) is None:
            raise NotFittedError("this NGramModel is not fitted yet: call fit(corpus) first")
        return self.keys_, self.logp_, self.bow_

    def _label_tables(self):
        """(keys, log r, log b, log gamma_c(())) of the labels: labelled.py eqs. (4), (6), (7)."""
        return self.label_keys_, self.label_logr_, self.label_bow_, self.label_below_

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

    def _explain(self, ids: np.ndarray, label: int | None = None):
        """The backoff recursion of each token unrolled, and its ``ngram_length``: see :mod:`.explain`. With a
        label, the terms of labelled.py eq. (3); a labelled model's marginal (no label) has no family keys."""
        from .explain import explain_labelled_tokens, explain_tokens

        if self.labels_ is not None:
            if label is None:
                return super()._explain(ids, label)
            return explain_labelled_tokens(self, ids, label), {}
        return explain_tokens(self, ids), {}

    # --- scoring ---------------------------------------------------------------------------------------

    def _token_logprobs(self, sequences: Sequence[np.ndarray], labels=None) -> list[np.ndarray]:
        """log P of every token and ``</s>`` of every sequence: eq. (2), vectorised over the whole corpus.

        With label ids (a labelled model), labelled.py eqs. (5)-(6): the same walk on the label trie (its first
        level c V + w, eq. (7)) and on the label-free tables at every history length, mixed.
        """
        self._tables()
        if len(sequences) == 0:
            return []
        flat, lengths = self._flat_ids(sequences)  # (T,), (S,)
        ids, starts = _stream(flat, lengths)  # (P,) <s> x .. </s> <s> .., (S,)
        total = self._stream_logprobs(ids, lengths + 1, labels)
        first = (starts + 1).tolist()
        return [total[a : a + n] for a, n in zip(first, (lengths + 1).tolist())]  # each sequence's tokens and </s>

    def _flat_ids(self, sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The ids of every sequence one after another (T,) and the length of each (S,), checked: one
        concatenation when every sequence is a 1-d integer array of ids in the vocabulary, else each sequence
        checked by the base class's rule, which names the bad one."""
        V = len(self.vocab_)
        try:
            lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
            flat = np.concatenate(sequences) if len(sequences) else np.zeros(0, np.int64)
            plain = flat.ndim == 1 and flat.dtype.kind in "iu" and len(flat) == lengths.sum()
        except (TypeError, ValueError):
            plain = False
        if not plain:
            checked = [self._check_ids(s) for s in sequences]  # raises, naming the problem
            lengths = np.array([len(s) for s in checked], dtype=np.int64)
            flat = np.concatenate(checked) if checked else np.zeros(0, np.int64)
        flat = flat.astype(np.int64, copy=False)
        if len(flat) and (flat.min() < 0 or flat.max() >= V):
            for s in sequences:
                self._check_ids(s)  # names the bad id
        return flat, lengths

    def _score_encoded(self, encoded):
        """:meth:`score` of a corpus read into ids (:func:`scratchgen.corpus.read_ids`), flat from end to end: the
        stream ``<s> x .. </s> <s> ..`` made from the ids in one pass, eq. (2) at every position, and the sum of
        each sequence as ``np.sum`` gives it (:func:`sequence_sums`), added in order: the Score of :meth:`score`
        to the last bit, with no Python work a sequence. A labelled model is scored as the base class does."""
        if self.labels_ is not None:
            return super()._score_encoded(encoded)
        self._tables()
        lengths = np.asarray(encoded.lengths, dtype=np.int64)
        if not len(lengths):
            raise CorpusError("cannot score an empty corpus")
        flat = self._check_ids(np.asarray(encoded.ids))
        flat = flat.astype(np.int32 if len(self.vocab_) < 1 << 31 else np.int64, copy=False)  # as read: int32
        if int(lengths.sum()) != len(flat) or lengths.min() < 0:
            raise CorpusError(f"{len(lengths)} sequence lengths that sum to {int(lengths.sum())} for {len(flat)} ids")
        sums = np.empty(len(lengths))  # (S,) each sequence's log-probability
        stream_end = np.cumsum(lengths + 2)  # (S,) where each sequence's stream ends
        token_end = np.cumsum(lengths)  # (S,)
        i = 0
        while i < len(lengths):  # a chunk of whole sequences, about STREAM_CHUNK positions: arrays reused, in cache
            before = stream_end[i - 1] if i else 0
            j = max(int(np.searchsorted(stream_end, before + STREAM_CHUNK, side="right")), i + 1)
            a = token_end[i - 1] if i else 0
            ids, starts = _stream(flat[a : token_end[j - 1]], lengths[i:j])  # (P,), (S',)
            total = self._stream_logprobs(ids, lengths[i:j] + 1)  # (P,)
            sums[i:j] = sequence_sums(total, starts + 1, lengths[i:j] + 1)  # each sequence's tokens and </s>
            i = j
        logprob = float(np.cumsum(np.concatenate([[0.0], sums]))[-1])  # Python's sum(), in order
        return Score.from_totals(
            logprob=logprob, sequences=len(lengths), tokens=len(flat) + len(lengths), oov_tokens=int(encoded.oov)
        )

    def _stream_logprobs(self, ids: np.ndarray, lengths: np.ndarray, labels=None) -> np.ndarray:
        """log P of every position of the flat stream ``<s> x .. </s> <s> ..`` (P,) (a meaningless 0 at each
        ``<s>``); ``lengths`` (S,) the tokens of each sequence with its ``</s>``."""
        keys, logp, bow = self._tables()
        V, N = len(self.vocab_), self.order
        hits: list = []
        index = _indices(keys, ids, ids, N, V, self._child_tables(), hits)
        total = _walk(ids, index, logp, bow, N, hits)  # (P,) eq. (2)
        if labels is not None:
            lkeys, logr, lbow, below = self._label_tables()
            label = np.repeat(np.asarray(labels, dtype=np.int64), lengths + 1)  # (P,) the label of each position
            lindex = _indices(lkeys, ids, label * V + ids, N, V)  # labelled.py eq. (7)
            log_label = _walk(ids, lindex, logr, lbow, N)  # (P,) labelled.py eq. (5)
            B, seen = _context_bows(lindex, lbow, N)  # (N - 1, P) log b_c(h_j) of j = 1 .. N - 1
            free = [_walk(ids, index[: j + 1], logp, bow, j + 1) for j in range(1, N)]  # log P(w | h_j)
            free_levels = np.array(free) if free else np.zeros((0, len(ids)))  # (N - 1, P)
            from .labelled import mix

            total = mix(log_label, B, seen, free_levels, total, below[label])  # eq. (6)
        return total

    def _child_tables(self) -> list | None:
        """The constant-time tables that find the stored n-grams of each order n >= 2 (:mod:`.lookup`), built
        the first time the fitted model scores and kept; None for a memory-mapped model, which keeps the binary
        search over its mapped keys (the tables would be read into memory)."""
        keys = self.keys_
        cache = getattr(self, "_child_cache", None)
        if cache is None or cache[0] is not keys:
            V = len(self.vocab_)
            tables = None
            if not any(_is_mapped(k) for k in keys[1:]):
                tables = [None] + [child_table(keys[n], len(keys[n - 1]), V) for n in range(1, len(keys))]
            cache = self._child_cache = (keys, tables)
        return cache[1]

    # --- stepping --------------------------------------------------------------------------------------

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None):
        """The last N - 1 ids of each sequence, (B, N - 1), -1 before ``<s>``; with the label ids (B,) as a
        pair ``(history, labels)`` for a labelled model, which requires them."""
        self._tables()
        state = np.full((batch_size, self.order - 1), -1, dtype=np.int64)  # (B, N-1)
        if self.order > 1:
            state[:, -1] = BOS
        if self.labels_ is None:
            return state
        if labels is None:
            raise LabelError(
                f"this n-gram model is labelled ({', '.join(map(repr, self.labels_.names))}): its initial_state "
                "needs the label id of each sequence (labels=)"
            )
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != batch_size or (labels.size and not (0 <= labels.min() and labels.max() < len(self.labels_))):
            raise LabelError(f"initial_state needs {batch_size} label ids in 0 .. {len(self.labels_) - 1}")
        return state, labels

    def advance(self, state, ids: np.ndarray):
        if isinstance(state, tuple):  # a labelled state: the labels stay
            return self.advance(state[0], ids), state[1]
        ids = np.asarray(ids, dtype=np.int64).reshape(-1, 1)  # (B, 1)
        if self.order == 1:
            return state
        return np.concatenate([state[:, 1:], ids], axis=1)  # (B, N-1)

    def next_logprobs(self, state) -> np.ndarray:
        keys, logp, bow = self._tables()
        V = len(self.vocab_)
        history, labels = state if isinstance(state, tuple) else (state, None)
        zero = np.zeros(len(history), np.int64)
        rows = _rows(history, keys, logp[0][None, :], logp, bow, zero, V)[0]  # (B, V)
        if labels is not None:  # labelled.py eqs. (5)-(6), a row at a time
            lkeys, logr, lbow, below = self._label_tables()
            N = self.order
            first = logr[0].reshape(-1, V)[labels]  # (B, V) r_c of the unigrams of each row's label
            log_label, bows, seen = _rows(history, lkeys, first, logr, lbow, labels * V, V)
            free = [_rows(history[:, N - 1 - j :], keys, logp[0][None, :], logp, bow, zero, V)[0] for j in range(1, N)]
            free_levels = np.array(free).reshape(N - 1, len(history), V)  # (N - 1, B, V) log P(. | h_j)
            from .labelled import mix

            rows = mix(log_label, bows.T, seen.T, free_levels, rows, below[labels])  # (B, V)
        rows[:, BOS] = -np.inf
        return rows

    # --- files (the layout: storage.py) ------------------------------------------------------------------

    def _save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        extra, arrays = {"discounts": getattr(self, "discounts_", [])}, save_arrays(*self._tables())
        if self.labels_ is not None:  # the label trie (labelled.py eq. (7)) and log gamma_c(()) of each label
            keys, logr, bow, below = self._label_tables()
            arrays.update(save_arrays(keys, logr, bow, prefix="label_", logp_name="logr"))
            arrays["label_below"] = below
            extra["label_discounts"] = self.label_discounts_
        return extra, arrays

    def _array_schema(self) -> dict[str, ArraySpec]:
        """The arrays of the file (:func:`.storage.array_schema`); a labelled model's label tables too, with
        C V unigrams (labelled.py eq. (7)) and ``label_below`` (C,) the log gamma_c(()) of each label."""
        V, N = len(self.vocab_), int(self.order)
        schema = array_schema(V, N)
        if self.labels_ is not None:
            C = len(self.labels_)
            schema.update(array_schema(V, N, prefix="label_", logp_name="logr", C=C))
            schema["label_below"] = ArraySpec((C,), allow_neg_inf=True, high=0.0)
        return schema

    def _load_state(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """The tables from validated arrays, after the checks that involve two arrays (:mod:`.storage`).

        A stupid-backoff file of the old layout (its factor stored as ``discount``) is mapped to ``alpha`` here.
        """
        if self.smoothing == "stupid-backoff" and self.discount is not None:
            self.alpha, self.discount = legacy_alpha(self.smoothing, self.discount, self.alpha), None
        keys, logp, bow = tables_from_arrays(arrays, len(self.vocab_), int(self.order))
        check_discounts(extra.get("discounts", []), self.order)
        if self.normalized and self.smoothing != "arpa":  # cheap: the unigrams of a fitted model sum to 1
            total = float(np.exp(logp[0]).sum())
            if not abs(total - 1.0) < 1e-6:
                raise ModelFileError(
                    f"the unigram probabilities of this {self.smoothing} model sum to {total!r}, not 1"
                )
        self.keys_, self.logp_, self.bow_ = keys, logp, bow
        self.discounts_ = extra.get("discounts", [])
        self.label_keys_ = self.label_logr_ = self.label_bow_ = self.label_below_ = None
        if self.labels_ is not None:
            from .labelled import check_labelled_settings

            try:
                check_labelled_settings(self.smoothing, self.cutoffs)
            except ScratchgenError as e:
                raise ModelFileError(f"it is labelled, but {e}") from None
            C, V = len(self.labels_), len(self.vocab_)
            lkeys, logr, lbow = tables_from_arrays(arrays, V, int(self.order), prefix="label_", logp_name="logr", C=C)
            label_discounts = extra.get("label_discounts")
            if not isinstance(label_discounts, list) or len(label_discounts) != C:
                raise ModelFileError(f"its label_discounts are not one list of discounts per label ({C})")
            for d in label_discounts:
                check_discounts(d, self.order)
            self.label_keys_, self.label_logr_, self.label_bow_ = lkeys, logr, lbow
            self.label_below_ = np.asarray(arrays["label_below"], dtype=np.float64)
            self.label_discounts_ = label_discounts

    # --- ARPA ------------------------------------------------------------------------------------------

    def to_arpa(self, path: str | os.PathLike, label: str | None = None) -> None:
        """Write the model as an ARPA file, words as they are, as lmplz writes them (whitespace tokens of a
        character-level vocabulary as stand-ins: see :mod:`scratchgen.ngram.arpa`).

        A labelled model is written one label at a time: ``label`` names it, and the file holds P(w | c, h)
        exactly, with every word listed after each history the label's probabilities depend on
        (:func:`.convert.write_label_arpa`: no sparse backoff form exists, so the file is large for a large
        vocabulary). Without ``label`` a labelled model is refused: its marginal is no n-gram model.
        """
        from .convert import write_label_arpa, write_model_arpa

        if self.labels_ is None and label is not None:
            raise LabelError(f"label {label!r}: this n-gram model has no labels (it was trained without them)")
        if self.labels_ is not None:
            if label is None:
                raise LabelError(
                    "a labelled n-gram model is written one label at a time (label=, --label: one of "
                    f"{', '.join(self.labels_.names)}): its marginal over the labels has no ARPA form"
                )
            write_label_arpa(self, path, self.labels_.id(label))
            return
        write_model_arpa(self, path)

    @classmethod
    def from_arpa(
        cls, path: str | os.PathLike, tokenizer: Tokenizer | None = None, progress: Progress | None = None
    ) -> NGramModel:
        """Read an ARPA file (KenLM, SRILM) into a backoff model that scores as the file says.

        Without a ``tokenizer`` the level is inferred from the file's vocabulary: character level when every
        token but ``<unk>``, ``<s>`` and ``</s>`` is one character, word level otherwise. A character-level
        tokenizer for a file with longer tokens is refused (it would score every word as ``<unk>``).
        ``progress`` (a :class:`scratchgen.progress.Progress`, optional) is advanced by the bytes read.
        """
        from .convert import read_model_arpa

        return read_model_arpa(cls, path, tokenizer, progress)

    def ngram_logprobs(self, rows: np.ndarray) -> np.ndarray:
        """log P(w | h) of n-grams given as rows of ids (M, m), h the first m - 1 ids, by eq. (2)."""
        from .counting import _lookup

        keys, logp, bow = self._tables()
        V = len(self.vocab_)
        rows = np.asarray(rows, dtype=np.int64)
        M, m = rows.shape
        total = np.zeros(M)
        done = np.zeros(M, dtype=bool)
        for k in range(min(m, self.order), 0, -1):  # the longest stored n-gram ending in w
            index = _lookup(keys, rows[:, m - k :], V)
            hit = ~done & (index >= 0)
            total[hit] += logp[k - 1][index[hit]]
            done |= hit
            if k >= 2:  # the context of length k - 1 failed if we go on: its backoff weight
                ctx = _lookup(keys, rows[:, m - k : m - 1], V)
                tried = ~done & (ctx >= 0)
                total[tried] += bow[k - 2][ctx[tried]]
        return total


# --- the backoff walk of eq. (2), shared by the label-free tables and the label trie (labelled.py eq. (7)) -------


def _indices(
    keys: list,
    ids: np.ndarray,
    first: np.ndarray,
    order: int,
    V: int,
    tables: list | None = None,
    hits: list | None = None,
) -> list:
    """index[n-1][p]: the stored n-gram ending at p of the flat stream ``ids`` (P,), -1 if none (never across
    <s>); ``first`` (P,) is the index of the unigram ending at p (the id itself, or c V + id in the label trie).
    ``tables[n-1]`` (:mod:`.lookup`) finds the n-grams in constant time; without them, a binary search.

    An n-gram can only be stored where its context, the (n-1)-gram ending at p - 1, is. Where most contexts are
    stored (low orders, character level) every position is looked up at once; once fewer than half are, only the
    positions after a stored (n-1)-gram, found from the list of those positions, not from all P. ``hits`` (a
    list, optional) receives for n = 2 .. N those positions, ascending, or None where they were not listed.
    """
    index = [first]
    P = len(ids)
    starts = np.flatnonzero(ids == BOS)  # an n-gram never crosses into the next sequence
    after: np.ndarray | None = None  # the positions after a stored (n-1)-gram, once they are listed
    for n in range(2, order + 1):
        if tables is not None and after is not None:  # few: from the list
            q = after[after < P]  # (C,) the last position has none after it
            q = q[np.take(ids, q) != BOS]  # never across <s>
            f = tables[n - 1].find(np.take(index[-1], q - 1), np.take(ids, q))
        elif tables is not None and tables[n - 1].kind == "direct":  # one read a position: every position
            index.append(tables[n - 1].find_next(index[-1], ids, starts))
            if hits is not None:
                hits.append(None)
            continue
        else:
            prev = np.empty(P, dtype=np.int64)
            prev[0] = -1
            prev[1:] = index[-1][:-1]
            prev[starts] = -1
            if tables is None:
                from .counting import _find  # the binary search

                index.append(_find(keys[n - 1], prev, ids, V))
                continue
            stored = prev >= 0  # a stored context: only there can the n-gram be stored
            if n == 2 or 2 * np.count_nonzero(stored) >= P:
                index.append(tables[n - 1].find(prev, ids))
                if hits is not None:
                    hits.append(None)
                continue
            q = np.flatnonzero(stored)  # (C,) most contexts absent (new text at a high order): the others alone
            f = tables[n - 1].find(np.take(prev, q), np.take(ids, q))
        ok = f >= 0
        at = q[ok]  # (H_n,) ascending
        found = np.full(P, -1, dtype=np.int64)
        found[at] = f[ok]
        index.append(found)
        if hits is not None:
            hits.append(at)
        after = at + 1
    return index


def _stream(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat stream ``<s> x .. </s> <s> ..`` (P,) of sequences given as their ids one after another (T,)
    and their lengths (S,), and where each sequence's ``<s>`` is (S,). The ids keep their integer type."""
    starts = np.cumsum(lengths + 2) - (lengths + 2)  # (S,)
    ids = np.empty(len(flat) + 2 * len(lengths), dtype=flat.dtype)  # (P,)
    body = np.ones(len(ids), dtype=bool)
    body[starts] = False
    body[starts + lengths + 1] = False
    ids[body] = flat
    ids[starts] = BOS
    ids[starts + lengths + 1] = EOS
    return ids, starts


def sequence_sums(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``values[a:a + n].sum()`` for every (a, n) of ``starts`` and ``lengths`` (S,), float64, to the last bit,
    without a Python call a sequence: the sequences of one length at a time, as the rows of a (G, n) array that
    NumPy sums along its rows. A row of a C-ordered array is summed as a 1-d array is: by the same pairwise
    summation over its n terms (numpy/_core/src/umath/loops_utils.h.src, ``pairwise_sum``: below 8 terms one
    by one; up to 128, eight running sums; above, the halves apart), so the bits are those of ``.sum()``
    (tests/ngram/test_lookup.py holds them equal at every length up to 300)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    lengths = np.asarray(lengths)
    out = np.empty(len(lengths))
    if not len(lengths):
        return out
    # (S,) the sequences grouped by length; a radix sort of 16-bit lengths, several times faster than of int64
    small = lengths.astype(np.uint16) if lengths.max() < 1 << 16 and lengths.min() >= 0 else lengths
    order = np.argsort(small, kind="stable")
    by_length = lengths[order]  # (S,) ascending
    first = np.asarray(starts)[order]  # (S,) where each sequence starts, in that order
    bounds = [0, *(np.flatnonzero(by_length[1:] != by_length[:-1]) + 1).tolist(), len(order)]
    for a, b in zip(bounds[:-1], bounds[1:]):  # the sequences order[a:b], all of length n
        n = int(by_length[a])
        if n == 0:
            out[order[a:b]] = 0.0
            continue
        # a view, no copy: row i is values[i:i + n] (what np.lib.stride_tricks.as_strided makes, without its
        # Python overhead: one group of a handful of sequences is common)
        windows = np.ndarray((len(values) - n + 1, n), np.float64, values, 0, (8, 8))
        out[order[a:b]] = windows[first[a:b]].sum(axis=1)  # (G, n) C-ordered copies of the sequences, summed
    return out


def _is_mapped(a: np.ndarray) -> bool:
    """Whether an array is (a view of) a memory-mapped file."""
    base: Any = a
    while base is not None:
        if isinstance(base, np.memmap):
            return True
        base = getattr(base, "base", None)
    return False


#: ``_walk`` goes top-down (from the longest order) when at least this share of the positions finds its n-gram of
#: the longest order (character level, text like the training text), bottom-up otherwise (word level, new text).
TOP_DOWN_SHARE = 0.5


def _walk(ids: np.ndarray, index: list, logp: list, bow: list, order: int, hits: list | None = None) -> np.ndarray:
    """log p(h_k w) + the log backoff weights of the longer contexts tried, eq. (2), at every position (P,).

    The terms are added in the order of :mod:`.scoring_reference`: 0.0, the log b of the contexts tried, longest
    first, then log p(h_k w) (the value at a ``<s>`` means nothing). Two ways give the same bits, the cheaper one
    taken: :func:`_walk_down` when most positions find an n-gram of the longest order (``TOP_DOWN_SHARE``),
    :func:`_walk_up` when most back off. ``hits`` (optional): for n = 2 .. N the positions whose n-gram is
    stored, ascending, or None, as :func:`_indices` lists them.
    """
    top = index[order - 1]
    listed = hits[order - 2] if hits and order >= 2 else None
    found = len(listed) if listed is not None else np.count_nonzero(top >= 0)
    if order == 1 or found >= TOP_DOWN_SHARE * len(top):
        return _walk_down(ids, index, logp, bow, order)
    return _walk_up(ids, index, logp, bow, order, hits)


def _walk_down(ids: np.ndarray, index: list, logp: list, bow: list, order: int) -> np.ndarray:
    """:func:`_walk` from the longest order down. The longest order is looked at for every position with
    whole-array operations; the orders below only at the positions that have not found their n-gram yet
    (``alive``), so the walk costs about one pass when most positions find an n-gram of the longest order."""
    top = index[order - 1]
    found = top >= 0
    stored = np.take(logp[order - 1], top, mode="clip") if len(logp[order - 1]) else 0.0  # none of that order
    total = np.where(found, stored, 0.0)  # (P,) 0.0 + log p: the next line
    total += 0.0  # 0.0 + (-0.0) is 0.0, as the per-token sum that starts at 0.0 gives
    alive = np.flatnonzero(~found & (ids != BOS))  # (A,) the positions still looking for their n-gram
    for n in range(order, 0, -1):
        if n < order:
            at = np.take(index[n - 1], alive)  # (A,)
            hit = at >= 0
            total[alive[hit]] += np.take(logp[n - 1], at[hit])
            alive = alive[~hit]
        if n >= 2 and len(alive):  # the context of length n - 1 (ending at p - 1) was tried: its backoff weight
            ctx = np.take(index[n - 2], alive - 1)  # (A,) never p = 0: a <s> is there
            stored = ctx >= 0
            total[alive[stored]] += np.take(bow[n - 2], ctx[stored])
        if not len(alive):
            break
    return total


def _walk_up(ids: np.ndarray, index: list, logp: list, bow: list, order: int, hits: list | None = None) -> np.ndarray:
    """:func:`_walk` from the unigrams up, in work proportional to the stored n-grams found, not to P N.

    The longest stored n-gram ending at p has the length L(p) = the largest n whose n-gram is stored there
    (each order, shortest first, overwrites L and log p where its n-gram is stored); the context of length j
    (ending at p - 1) was tried and failed where it is stored and j >= L(p). Each order's stored n-grams are
    few at word level (most positions back off to a bigram or a unigram), so each order costs in proportion to
    its hits. The log b are added for j = N - 1 down to 1, then log p, as the reference adds them; a position
    where a context is not stored gets nothing (adding 0.0 would not change the bits either: the sum is
    never -0.0).
    """
    P = len(ids)
    longest = np.ones(P, dtype=np.int16)  # (P,) L(p), so far the unigram (order <= MAX_ORDER < 2^15)
    value = np.take(logp[0], index[0])  # (P,) log p of the longest stored n-gram ending at p, so far
    listed = list(hits) if hits else [None] * (order - 1)
    hits = [np.arange(P)]  # hits[n-1]: the positions whose n-gram is stored, ascending
    for n in range(2, order + 1):
        at = listed[n - 2]
        if at is None:
            at = np.flatnonzero(index[n - 1] >= 0)  # (H_n,)
        hits.append(at)
        longest[at] = n
        value[at] = np.take(logp[n - 1], np.take(index[n - 1], at))
    total = np.zeros(P)  # (P,) the per-token sum starts at 0.0
    for j in range(order - 1, 1, -1):  # the contexts of length j >= 2, the longest first
        q = hits[j - 1] + 1  # (H_j,) the positions after a stored j-gram: their context of length j is stored
        if len(q) and q[-1] == P:  # the j-gram ending at the last </s>: no position after it
            q = q[:-1]
        q = q[np.take(longest, q) <= j]  # tried, and the n-gram one longer not stored
        total[q] += np.take(bow[j - 1], np.take(index[j - 1], q - 1))
    if order >= 2:  # the context of length 1, the token before p (stored: a unigram), tried where L(p) = 1
        tried = longest[1:] == 1  # (P - 1,)
        total[1:] += np.where(tried, np.take(bow[0], index[0][:-1]), 0.0)  # + 0.0 elsewhere: the same bits
    total += value
    np.copyto(total, 0.0, where=ids == BOS)  # a <s> is not scored: 0, as the top-down walk leaves it
    return total


def _context_bows(index: list, bow: list, order: int) -> tuple[np.ndarray, np.ndarray]:
    """log b(h_j) of the history of every position for j = 1 .. N - 1, shape (N - 1, P), 0 where h_j is not
    stored, and whether h_j is a history the label has seen: its b < 1 (labelled.py eq. (5))."""
    P = len(index[0])
    out = np.zeros((order - 1, P))
    stored = np.zeros((order - 1, P), dtype=bool)
    for j in range(1, order):
        ctx = np.empty(P, dtype=np.int64)
        ctx[0] = -1
        ctx[1:] = index[j - 1][:-1]  # the j-gram ending just before p
        found = ctx >= 0
        out[j - 1, found] = bow[j - 1][ctx[found]]
        stored[j - 1, found] = out[j - 1, found] < 0  # a history of the label: b = (1 - m) gamma < 1
    return out, stored


def _context_index(keys: list, history: np.ndarray, j: int, first: np.ndarray, V: int) -> np.ndarray:
    """Index of the last j tokens of each history (B, N-1) among the stored j-grams; -1 if not stored.
    ``first`` (B,) is added to the first token's id (the label trie's c V, eq. (7) of labelled.py)."""
    from .counting import _find

    tokens = history[:, history.shape[1] - j :]  # (B, j)
    index = np.where(tokens[:, 0] >= 0, first + tokens[:, 0], -1)
    for i in range(1, j):
        word = tokens[:, i]
        index = _find(keys[i], np.where(word == BOS, -1, index), np.maximum(word, 0), V)
    return index


def _rows(history: np.ndarray, keys: list, unigrams: np.ndarray, logp: list, bow: list, first: np.ndarray, V: int):
    """log P(. | h) of eq. (2) for each history, (B, V), built from ``unigrams`` ((1, V) or (B, V)) up: add b(h_j)
    to the row, then overwrite the words stored after h_j; with log b(h_j) of each level j = 1 .. N - 1, (B, N - 1),
    0 where h_j is not stored, and whether b(h_j) < 1, (B, N - 1): in a label trie, whether the label has seen
    h_j as a history (labelled.py eq. (5))."""
    B, H = history.shape
    rows = np.repeat(unigrams, B, axis=0) if len(unigrams) == 1 else unigrams.copy()  # (B, V)
    weights = np.zeros((B, H))
    stored = np.zeros((B, H), dtype=bool)
    for j in range(1, H + 1):
        ctx = _context_index(keys, history, j, first, V)  # (B,)
        live = np.flatnonzero(ctx >= 0)
        if len(live) == 0:
            break
        c = ctx[live]
        rows[live] += bow[j - 1][c][:, None]  # eq. (1) of smoothing.py: b(h) P(w | h')
        weights[live, j - 1] = bow[j - 1][c]
        stored[live, j - 1] = bow[j - 1][c] < 0  # a history of the label (labelled.py eq. (5)); else b = 1
        table = keys[j]
        lo = np.searchsorted(table, c * V)
        hi = np.searchsorted(table, (c + 1) * V)
        n = hi - lo  # (L,) words stored after each context
        entry = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n - lo, n)  # concatenated lo..hi ranges
        rows[np.repeat(live, n), table[entry] % V] = logp[j][entry]
    return rows, weights, stored
