"""The protocol every scratchgen generator speaks, and what follows from it by default.

Every model is a model of the chain rule over token ids::

    P(x) = prod_{t=1..T+1} P(x_t | x_<t),     x_{T+1} = </s>,  x_0 = <s> (context only)     (1)

and exposes the conditional through a left-to-right *stepping interface*, batched over B sequences:

- ``initial_state(B)``: the state before any token (after ``<s>``);
- ``next_logprobs(state)``: an array of shape (B, V) whose rows are log P(. | x_<t); each row's exp
  sums to 1 (the ``<s>`` entry is -inf: it is never emitted);
- ``advance(state, ids)``: the state after appending ids, shape (B,);
- ``take_state(state, rows)``: the state of the chosen rows (beam search reorders and copies them).

From these, ``token_logprobs`` gives log P(x_t | x_<t) for every token of every sequence by eq. (1),
and ``logprob`` and ``score`` sum them. A model may override ``token_logprobs`` with a vectorised
version; the contract tests check that it agrees with the stepping default.

Letters: V vocabulary size (``len(vocab_)``, special tokens included), B batch, T sequence length.

Subclasses follow scikit-learn's conventions: the constructor only stores its keyword arguments,
``fit`` validates and learns, learned state ends in an underscore (``vocab_``), and ``fit`` returns
``self``. A built-in class is listed in :mod:`scratchgen.registry` (so :func:`scratchgen.load` finds it
without importing every family); a class of your own is made loadable with :func:`register_model`.

Tokenization and the fitted vocabulary are public, since the decoder and the scoring functions use
them: ``tokenize(sequence)`` applies the model's tokenizer and the one token rule, and
``fitted_vocab()`` is ``vocab_`` or, before ``fit``, a :class:`~scratchgen.errors.NotFittedError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Union

import numpy as np

from .errors import CorpusError, LabelError, NotFittedError, VocabularyError
from .io import save_model
from .metrics import Score

# Re-exported: a model module imports its base class and register_model together; older code reads
# MODEL_REGISTRY and model_class here.
from .registry import MODEL_REGISTRY, model_class, register_model  # noqa: F401
from .text import Tokenizer, Vocabulary, check_tokens

if TYPE_CHECKING:
    from .labels import Classification, LabelSet

# Decoding (scratchgen.decoding) and labels (scratchgen.labels) are imported by the methods that use them: loading
# a model and scoring it need neither (``scratchgen score`` does not import them).

__all__ = ["LanguageModel", "register_model", "Corpus"]

#: A corpus: texts (tokenized by the model's tokenizer) or token sequences.
Corpus = Iterable[Union[str, Sequence[str]]]


class LanguageModel:
    """Base class of every generator: the protocol and its defaults.

    Parameters
    ----------
    tokenizer : Tokenizer or None
        How texts given to ``fit``, ``logprob``, ``score`` and the decoder are split into tokens;
        default character level. Token sequences (lists of str) are used as they are.
    """

    #: False for a model whose next-token scores knowingly do not sum to 1 (stupid backoff): its
    #: ``score`` is then a mean negative log score, not a cross-entropy, and ``scratchgen score``
    #: prints no perplexity for it.
    normalized: ClassVar[bool] = True

    tokenizer: Tokenizer | None
    vocab_: Vocabulary
    #: The labels of a conditional model P(x | c) (see :mod:`scratchgen.labels`), ``None`` when unlabelled.
    labels_: LabelSet | None = None

    def __init__(self, *, tokenizer: Tokenizer | None = None):
        self.tokenizer = tokenizer

    # --- hyperparameters (scikit-learn style) ------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments as stored (the tokenizer apart)."""
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name not in ("self", "tokenizer") and p.kind is not p.VAR_KEYWORD
        ]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def tokenizer_(self) -> Tokenizer:
        """The tokenizer in use (character level when none was given)."""
        return self.tokenizer or Tokenizer()

    # --- text -> ids ---------------------------------------------------------------------------------

    def tokenize(self, sequence: str | Sequence[str]) -> list[str]:
        """The tokens of one text or token list, checked by the one rule (:func:`scratchgen.text.check_tokens`).

        A str is split by the model's tokenizer; a list of str is taken as it is.

        >>> LanguageModel().tokenize("hi!")
        ['h', 'i', '!']
        """
        if isinstance(sequence, str):
            tokens = self.tokenizer_.tokenize(sequence)
        elif isinstance(sequence, np.ndarray) or not isinstance(sequence, Sequence):
            raise CorpusError(f"a sequence is a str or a list of str tokens, got {type(sequence).__name__}")
        else:
            tokens = list(sequence)
        check_tokens(tokens)
        return tokens

    def tokenize_corpus(self, corpus: Corpus) -> list[list[str]]:
        """Token sequences of a corpus: texts are tokenized, token lists kept."""
        if isinstance(corpus, str):
            raise CorpusError(
                "a corpus is a list of texts or of token sequences, not one str "
                "(use scratchgen.text.split_text to cut a text into lines)"
            )
        try:
            return [self.tokenize(s) for s in corpus]
        except TypeError:
            raise CorpusError(f"a corpus must be iterable, got {type(corpus).__name__}") from None

    def encode_corpus(self, corpus: Corpus) -> tuple[list[np.ndarray], int]:
        """Id arrays of a corpus (out-of-vocabulary tokens as ``<unk>``) and the number of OOV tokens."""
        vocab = self.fitted_vocab()
        sequences = self.tokenize_corpus(corpus)
        oov = sum(vocab.count_oov(s) for s in sequences)
        return [vocab.encode(s) for s in sequences], oov

    def fitted_vocab(self) -> Vocabulary:
        """The vocabulary learned by ``fit`` (``vocab_``); a :class:`NotFittedError` before ``fit``."""
        vocab = getattr(self, "vocab_", None)
        if vocab is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(corpus) first")
        return vocab

    # --- learning ------------------------------------------------------------------------------------

    def fit(self, corpus: Corpus) -> LanguageModel:
        """Learn from a corpus and return ``self``."""
        raise NotImplementedError

    # --- the stepping interface ----------------------------------------------------------------------

    def _abstract(self, method: str) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} must define {method} (every model steps)")

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None) -> Any:
        """The state of ``batch_size`` sequences before any token.

        A labelled model takes ``labels``, the label id of each sequence (int array of shape (B,)); the
        decoder and the scoring functions pass it only to a labelled model, so an unlabelled family may
        define ``initial_state(self, batch_size)`` alone.
        """
        raise self._abstract("initial_state")

    def advance(self, state: Any, ids: np.ndarray) -> Any:
        """The state after appending ``ids`` (shape (B,)) to each sequence. Must not modify ``state``."""
        raise self._abstract("advance")

    def next_logprobs(self, state: Any) -> np.ndarray:
        """log P(next token | state) of shape (B, V); each row's exp sums to 1."""
        raise self._abstract("next_logprobs")

    def take_state(self, state: Any, rows: np.ndarray) -> Any:
        """The state of the given rows (an int array; rows may repeat).

        The default handles a state that is an array with the batch first, or a tuple/list/dict of them.
        """
        if isinstance(state, np.ndarray):
            return state[rows]
        if isinstance(state, (tuple, list)):
            return type(state)(self.take_state(s, rows) for s in state)
        if isinstance(state, dict):
            return {k: self.take_state(v, rows) for k, v in state.items()}
        raise TypeError(f"{type(self).__name__} must override take_state for states of type {type(state)}")

    # --- scoring -------------------------------------------------------------------------------------

    def token_logprobs(self, sequences: Sequence[np.ndarray], labels=None) -> list[np.ndarray]:
        """log P(x_t | x_<t) of every token of every id sequence, ``</s>`` appended: eq. (1).

        Parameters
        ----------
        sequences : list of int arrays of shape (T_i,), without ``<s>`` or ``</s>``
        labels : None, a label (str), or one label (str) or label id (int) per sequence
            For a labelled model, the condition c of each sequence: log P(x_t | x_<t, c). ``None`` on a
            labelled model gives the marginal P(x) = sum_c P(x | c) P(c), whose per-token values are
            log P(x_<=t) - log P(x_<t) under it. A label given to an unlabelled model is an error.

        Returns
        -------
        list of float64 arrays of shape (T_i + 1,)

        Families override :meth:`_token_logprobs` (the label ids already checked), not this method.
        """
        ids = self._label_ids(labels, len(sequences))
        if ids is None and self.labels_ is not None:
            return self._marginal_token_logprobs(sequences)
        return self._token_logprobs(sequences, ids)

    def _marginal_token_logprobs(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per-token log-probabilities of the mixture sum_c P(c) P(x | c): the differences of its prefix logs."""
        labels = self.labels_
        assert labels is not None
        per_label = [self._token_logprobs(sequences, np.full(len(sequences), c)) for c in range(len(labels))]
        out = []
        for i in range(len(sequences)):
            cum = np.stack([np.cumsum(lp[i]) for lp in per_label]) + labels.log_prior[:, None]  # (C, T+1)
            prefix = np.logaddexp.reduce(cum, axis=0)  # (T+1,) log P(x_<=t) under the mixture
            with np.errstate(invalid="ignore"):
                step = np.diff(prefix, prepend=0.0)  # -inf - -inf after a token of probability 0: nan
            out.append(np.where(np.isnan(step), -np.inf, step))  # once impossible, every later token is too
        return out

    def _token_logprobs(self, sequences: Sequence[np.ndarray], labels: np.ndarray | None = None) -> list[np.ndarray]:
        """:meth:`token_logprobs` with checked label ids (or ``None`` for an unlabelled model).

        The default runs the stepping interface over batches of sequences of similar length.
        """
        from .labels import start_state

        eos = Vocabulary.eos_id
        out: list[np.ndarray] = [np.empty(0)] * len(sequences)
        order = np.argsort([len(s) for s in sequences], kind="stable")
        k = 0
        while k < len(order):
            lookahead = order[min(k + 255, len(order) - 1)]  # the longest a batch can reach
            rows = order[k : k + self._scoring_batch_size(len(sequences[lookahead]) + 1)]
            k += len(rows)
            T = max(len(sequences[i]) for i in rows) + 1
            ids = np.full((len(rows), T), eos, dtype=np.int64)  # (B, T) padded with </s>
            for r, i in enumerate(rows):
                ids[r, : len(sequences[i])] = sequences[i]
            scores = np.empty((len(rows), T))  # (B, T)
            state = start_state(self, len(rows), None if labels is None else labels[rows])
            arange = np.arange(len(rows))
            for t in range(T):
                scores[:, t] = self.next_logprobs(state)[arange, ids[:, t]]
                if t + 1 < T:
                    state = self.advance(state, ids[:, t])
            for r, i in enumerate(rows):
                out[i] = scores[r, : len(sequences[i]) + 1]
        return out

    def _scoring_batch_size(self, length: int) -> int:
        """How many sequences of up to ``length`` steps the stepping default scores together (1 to 256)."""
        return 256

    def logprob(self, sequence: str | Sequence[str], label: str | None = None) -> float:
        """Natural-log probability of one sequence, ``</s>`` included, ``<s>`` not counted.

        Out-of-vocabulary tokens are scored as ``<unk>``. A labelled model gives log P(x | label), or
        the marginal log sum_c P(x | c) P(c) without a label.
        """
        ids = self.fitted_vocab().encode(self.tokenize(sequence))
        return float(self.token_logprobs([ids], labels=None if label is None else [label])[0].sum())

    def score(self, corpus: Corpus, labels=None):
        """Cross-entropy, bits per token and perplexity of a corpus: see :class:`scratchgen.metrics.Score`.

        ``labels`` (a labelled model only): one label for the whole corpus, or one a sequence; the score
        is then of log P(x | its label). Without labels a labelled model is scored by its marginal.
        """
        ids, oov = self.encode_corpus(corpus)
        if not ids:
            raise CorpusError("cannot score an empty corpus")
        total = float(sum(lp.sum() for lp in self.token_logprobs(ids, labels=labels)))
        n_tokens = sum(len(s) + 1 for s in ids)
        return Score.from_totals(logprob=total, sequences=len(ids), tokens=n_tokens, oov_tokens=oov)

    def _reads_ids(self) -> bool:
        """Whether :meth:`score` of a file read straight into ids (:func:`scratchgen.corpus.read_ids`, one
        sequence a line) is :meth:`score` of its lines: the model tokenizes, encodes and scores as this base
        class does, with a plain :class:`~scratchgen.text.Tokenizer`. ``scratchgen score`` then reads that way."""
        cls = type(self)
        return (
            all(getattr(cls, name) is getattr(LanguageModel, name) for name in ("score", "tokenize", "encode_corpus"))
            and type(getattr(self, "tokenizer_", None)) is Tokenizer
        )

    def _score_encoded(self, encoded) -> Score:
        """:meth:`score` of a corpus already read into ids (a :class:`scratchgen.corpus.EncodedCorpus` made with
        this model's tokenizer and vocabulary; no labels): the same Score, to the last bit, as :meth:`score` of
        its texts. Families with a faster flat scorer override it."""
        if not len(encoded):
            raise CorpusError("cannot score an empty corpus")
        ids = encoded.sequences()
        total = float(sum(lp.sum() for lp in self.token_logprobs(ids)))
        n_tokens = int(encoded.lengths.sum()) + len(ids)
        return Score.from_totals(logprob=total, sequences=len(ids), tokens=n_tokens, oov_tokens=int(encoded.oov))

    # --- labels (a conditional model P(x | c); see scratchgen.labels) ---------------------------------

    def _label_ids(self, labels, n: int) -> np.ndarray | None:
        """Checked label ids of ``n`` sequences: see :func:`scratchgen.labels.label_ids`."""
        if labels is not None:
            self.fitted_vocab()
        from .labels import label_ids

        return label_ids(self, labels, n)

    def _fit_labels(self, labels, n: int) -> np.ndarray | None:
        """Set ``labels_`` from the training labels (or to None without them); the id of each example."""
        from .labels import LabelSet

        if labels is None:
            self.labels_ = None
            return None
        if isinstance(labels, str):
            raise LabelError("labels= takes one label per training sequence, not one str")
        label_set, ids = LabelSet.from_labels(labels)
        if len(ids) != n:
            raise LabelError(f"{len(ids)} labels for {n} training sequences: give one label a sequence")
        self.labels_ = label_set
        return ids

    def classify(self, texts: Corpus) -> Classification:
        """The most probable label of each text, argmax_c log P(x | c) + log P(c), with the posterior.

        A generative model used as a classifier: eq. (2) of :mod:`scratchgen.labels`. A text that no label
        can generate (P(x | c) = 0 for every c) tells nothing: its posterior is the prior, its label the
        most probable a priori. Ties go to the lower label id.
        """
        labels = self.labels_
        if labels is None:
            self.fitted_vocab()
            raise LabelError(f"this {type(self).__name__} has no labels: train it with --labelled to classify")
        ids, _ = self.encode_corpus(texts)
        if not ids:
            raise CorpusError("there is nothing to classify: the corpus is empty")
        logp = self._label_logprobs(ids)  # (n, C) log P(x | c)
        joint = logp + labels.log_prior  # (n, C)
        norm = np.logaddexp.reduce(joint, axis=1, keepdims=True)  # (n, 1)
        with np.errstate(invalid="ignore"):
            posterior = np.where(np.isfinite(norm), np.exp(joint - norm), np.exp(labels.log_prior))
        best = np.argmax(posterior, axis=1)
        from .labels import Classification

        return Classification([labels.names[c] for c in best], posterior, logp, labels.names)

    def _label_logprobs(self, ids: list[np.ndarray]) -> np.ndarray:
        """log P(x | c) of each id sequence under each label, shape (n, C): what :meth:`classify` needs.

        The default sums :meth:`token_logprobs`; a family with a faster exact sequence score (the
        grammar's chart) overrides it.
        """
        assert self.labels_ is not None
        C = len(self.labels_)
        return np.stack(
            [[lp.sum() for lp in self.token_logprobs(ids, labels=np.full(len(ids), c))] for c in range(C)], axis=1
        )  # (n, C)

    def _explain(self, ids: np.ndarray, label: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The family's "why" for each token of ``ids`` and ``</s>`` (one dict a token), and for the whole text.

        :func:`scratchgen.explain.explain` adds these keys to its per-token records (``label``: a checked
        label id, or None for an unlabelled model or a labelled model's marginal). The base class has none.
        """
        return [{} for _ in range(len(ids) + 1)], {}

    # --- decoding (convenience; all the work is in scratchgen.decoding) ------------------------------

    def generate(self, n: int = 1, **kwargs) -> list[list[str]]:
        """``n`` token sequences drawn by :func:`scratchgen.decoding.generate`."""
        from .decoding import generate

        return generate(self, n=n, **kwargs)

    def generate_text(self, n: int = 1, **kwargs) -> list[str]:
        """Like :meth:`generate`, each sequence detokenized into a string."""
        return [self.tokenizer_.detokenize(s) for s in self.generate(n=n, **kwargs)]

    # --- files ---------------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the model to one ``.npz`` file (atomically): see :mod:`scratchgen.io`."""
        save_model(self, path)

    def _save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned state as (JSON-able dict, dict of arrays), the vocabulary and params apart."""
        return {}, {}

    def _load_state(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_save_state` returned (``vocab_`` is already set, the arrays validated)."""

    def _check_params(self) -> None:
        """Validate the constructor's arguments (no side effects): run by ``fit`` and by ``load``."""

    def _array_schema(self) -> dict[str, Any] | None:
        """What each saved array must be, given the params and ``vocab_``: ``{name: ArraySpec}``.

        :func:`scratchgen.io.load` checks every array against it before ``_load_state`` sees any, and
        ``save`` checks before writing, so a non-finite model is never saved.
        """
        return None

    # --- checks shared by subclasses -----------------------------------------------------------------

    def _check_ids(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise VocabularyError(f"token ids must be a 1-d integer array, got shape {ids.shape} {ids.dtype}")
        V = len(self.fitted_vocab())
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            bad = ids[(ids < 0) | (ids >= V)][0]
            raise VocabularyError(f"token id {bad} is outside the vocabulary (0 to {V - 1})")
        return ids
