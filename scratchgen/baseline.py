"""The random generators: the textbook "random generation model", and the floor every model must beat.

Two models of eq. (1) of :mod:`scratchgen.model` whose conditional ignores the context:

- **uniform**: every token the model can emit is equally likely::

      P(x_t = w | x_<t) = 1 / V'     for w in the vocabulary without <s>                      (1)

  where V' = V - 1 counts the types seen in training, ``<unk>`` and ``</s>``. Its cross-entropy is
  ln V' nats per token on any corpus, and its perplexity is V'.

- **unigram**: token frequencies from ``fit``, add-k smoothed::

      P(x_t = w | x_<t) = (c(w) + k) / (N + k V')                                            (2)

  where c(w) counts w in the training corpus (``</s>`` once a sequence, ``<unk>`` zero unless
  ``min_count`` maps rare tokens to it) and N = sum_w c(w).

**Labelled** (``fit(corpus, labels=...)``): one row per label c over the one shared vocabulary, the
same smoothing: the uniform row is the same for every label (it cannot tell labels apart: it
classifies by the prior alone), the unigram row of label c counts c's sequences only::

      P(x_t = w | x_<t, c) = (c_c(w) + k) / (N_c + k V')                                    (3)

Without ``</s>`` in the way, a uniform sample would run forever; ``</s>`` has probability 1/V' at
every step, so the lengths are geometric with mean V' - 1 (the decoder's ``max_tokens`` also stops it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import CorpusError, LabelError, ModelFileError, ScratchgenError
from .model import Corpus, LanguageModel, register_model
from .schema import ArraySpec
from .text import Tokenizer, Vocabulary

__all__ = ["UniformModel", "UnigramModel"]


class _ContextFree(LanguageModel):
    """Shared machinery: one log-probability row, the same in every state."""

    logprobs_: np.ndarray  # (V,), or (C, V) with one row a label

    def __init__(self, *, min_count: int = 1, tokenizer: Tokenizer | None = None):
        super().__init__(tokenizer=tokenizer)
        self.min_count = min_count

    def _check_params(self) -> None:
        m = self.min_count
        if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
            raise ScratchgenError(f"min_count must be an integer >= 1, got {m!r}")

    def _array_schema(self) -> dict[str, ArraySpec]:
        # one log-probability a token (a row a label): <= 0, -inf allowed (<s> is never emitted)
        shape = (len(self.vocab_),) if self.labels_ is None else (len(self.labels_), len(self.vocab_))
        return {"logprobs": ArraySpec(shape, allow_neg_inf=True, high=0.0)}

    def _fit_vocab(self, corpus: Corpus, labels=None) -> tuple[list[list[str]], np.ndarray | None]:
        """The token sequences, the vocabulary, and the label id of each sequence (None unlabelled)."""
        self._check_params()
        sequences = self.tokenize_corpus(corpus)
        if not sequences:
            raise CorpusError("cannot fit on an empty corpus")
        label_ids = self._fit_labels(labels, len(sequences))
        self.vocab_ = Vocabulary.build(sequences, min_count=self.min_count)
        return sequences, label_ids

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None) -> np.ndarray:
        """The state is the label id of each row (0 for an unlabelled model): the context never matters."""
        if self.labels_ is None:
            return np.zeros(batch_size, dtype=np.int64)  # (B,)
        if labels is None:
            raise LabelError(f"this labelled {type(self).__name__} needs a label id for each sequence")
        return np.asarray(labels, dtype=np.int64).copy()  # (B,)

    def advance(self, state: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return state

    def next_logprobs(self, state: np.ndarray) -> np.ndarray:
        if self.logprobs_.ndim == 2:
            return self.logprobs_[state]  # (B, V) the row of each sequence's label
        return np.broadcast_to(self.logprobs_, (len(state), len(self.logprobs_)))  # (B, V)

    def _token_logprobs(self, sequences, labels=None):
        # The context does not matter, so each token's score is one lookup in its label's row.
        eos = np.array([Vocabulary.eos_id])
        if labels is None:
            return [self.logprobs_[np.concatenate([s, eos])] for s in sequences]
        return [self.logprobs_[c, np.concatenate([s, eos])] for s, c in zip(sequences, labels)]

    def _explain(self, ids: np.ndarray, label: int | None = None):
        """The "why" of each token (:func:`explain_context_free`); a labelled model's marginal has none."""
        if self.labels_ is not None and label is None:
            return super()._explain(ids, label)
        row = self.logprobs_ if label is None else self.logprobs_[label]  # (V,)
        return explain_context_free(self, row, ids), {}

    def _save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"logprobs": self.logprobs_}

    def _load_state(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        logprobs = np.asarray(arrays["logprobs"], dtype=np.float64)  # (V,) or (C, V), <= 0 by the schema
        for row in np.atleast_2d(logprobs):
            _check_distribution(row)
        self.logprobs_ = logprobs


def recover_counts(row: np.ndarray, k: float) -> tuple[np.ndarray, float] | None:
    """The counts c(w) and the denominator N + k V' of eq. (2), read back from a row of log P.

    A model file stores log P only. When some token was never counted (``<unk>`` with ``min_count`` 1 and
    no literal ``<unk>`` in the corpus; or else the rarest token, tried with counts 0 to 100), eq. (2)
    gives N + k V' = (c_min + k) / P_min and then c(w) = P(w) (N + k V') - k for every w. The first
    c_min that makes every count a whole number is taken; None when none does.
    """
    p = np.exp(row)  # (V,)
    p[Vocabulary.bos_id] = np.nan  # <s> is never counted
    rarest = float(np.nanmin(p))
    for c_min in range(101):
        denominator = (c_min + k) / rarest
        counts = p * denominator - k  # (V,)
        whole = np.round(counts)
        if np.nanmax(np.abs(counts - whole) / np.maximum(1.0, whole)) < 1e-6:
            whole[Vocabulary.bos_id] = 0.0
            return whole, float(denominator)
    return None


def explain_context_free(model: _ContextFree, row: np.ndarray, ids: np.ndarray) -> list[dict[str, Any]]:
    """The "why" of a random model: the number of types of eq. (1), or the count and smoothing of eq. (2).

    Uniform: ``types`` (V'). Unigram: ``count`` c(w), ``k``, ``total`` N and ``types`` V', so that
    P(w) = (count + k) / (total + k types); ``count`` and ``total`` are None when the file's numbers do not
    give whole counts back (:func:`recover_counts`).
    """
    types = len(model.vocab_) - 1  # V': every token but <s>
    targets = np.concatenate([np.asarray(ids, dtype=np.int64), [Vocabulary.eos_id]])  # (T + 1,)
    if not isinstance(model, UnigramModel):
        return [{"types": types, "why": f"uniform: P = 1/V' = 1/{types}"} for _ in targets]
    k = float(model.k)
    recovered = recover_counts(row, k)
    out = []
    for w in targets.tolist():
        if recovered is None:
            out.append({"count": None, "k": k, "total": None, "types": types, "why": "unigram: (c + k)/(N + k V')"})
            continue
        counts, denominator = recovered
        c, total = int(counts[w]), int(round(denominator - k * types))
        why = f"unigram: P = (c + k)/(N + k V') = ({c} + {k:g})/({total} + {k:g}*{types})"
        out.append({"count": c, "k": k, "total": total, "types": types, "why": why})
    return out


def _check_distribution(logprobs: np.ndarray) -> None:
    """What the schema cannot say about a saved row: ``<s>`` alone has probability 0 (both models give
    every other token a share: 1/V' or a count plus k > 0), and the probabilities sum to 1."""
    bos = Vocabulary.bos_id
    if logprobs[bos] != -np.inf:
        raise ModelFileError(
            f"logprobs[{bos}] (the token <s>) is {float(logprobs[bos])!r}, expected -inf: <s> is never emitted"
        )
    impossible = np.flatnonzero(np.isneginf(logprobs))
    impossible = impossible[impossible != bos]
    if impossible.size:
        raise ModelFileError(f"logprobs[{impossible[0]}] is -inf: only <s> may have probability 0")
    total = float(np.exp(logprobs).sum())
    if not abs(total - 1.0) <= 1e-6:
        raise ModelFileError(f"the probabilities in logprobs sum to {total!r}, not 1")


@register_model
class UniformModel(_ContextFree):
    """Every emittable token equally likely: eq. (1).

    >>> m = UniformModel().fit(["ab", "ba"])   # types a, b plus <unk> and </s>: V' = 4
    >>> round(m.score(["zz"]).perplexity, 12)
    4.0
    """

    def fit(self, corpus: Corpus, labels=None) -> UniformModel:
        """Learn the vocabulary (and, with ``labels``, one label a sequence, the label set and prior)."""
        self._fit_vocab(corpus, labels)
        V = len(self.vocab_)
        logprobs = np.full(V, -np.log(V - 1))  # (V,) eq. (1)
        logprobs[Vocabulary.bos_id] = -np.inf
        labels_set = self.labels_
        self.logprobs_ = logprobs if labels_set is None else np.tile(logprobs, (len(labels_set), 1))
        return self


@register_model
class UnigramModel(_ContextFree):
    """Token frequencies with add-k smoothing: eq. (2).

    Parameters
    ----------
    k : float
        Added to every count (1 is Laplace's rule, 0 < k < 1 Lidstone's); must be > 0 so that
        ``<unk>`` and unseen tokens keep a non-zero probability.
    min_count : int
        Tokens seen fewer times are left out of the vocabulary (and counted as ``<unk>``).

    >>> m = UnigramModel(k=1).fit([["a", "a"]])  # counts a:2 </s>:1 <unk>:0, N = 3, V' = 3
    >>> round(float(np.exp(m.logprob(["a"]))), 6)  # (3/6) * (2/6)
    0.166667
    """

    def __init__(self, *, k: float = 1.0, min_count: int = 1, tokenizer: Tokenizer | None = None):
        super().__init__(min_count=min_count, tokenizer=tokenizer)
        self.k = k

    def _check_params(self) -> None:
        super()._check_params()
        k = self.k
        if not isinstance(k, (int, float, np.number)) or isinstance(k, bool) or not np.isfinite(k) or k <= 0:
            raise ScratchgenError(f"k must be a finite number > 0, got {k!r}")

    def fit(self, corpus: Corpus, labels=None) -> UnigramModel:
        """Count the tokens: eq. (2), or with ``labels`` (one a sequence) eq. (3), one row a label."""
        sequences, label_ids = self._fit_vocab(corpus, labels)
        if label_ids is None:
            self.logprobs_ = self._row(sequences)
        else:
            rows = [[s for s, c in zip(sequences, label_ids) if c == label] for label in range(label_ids.max() + 1)]
            self.logprobs_ = np.stack([self._row(r) for r in rows])  # (C, V) every label has a sequence
        return self

    def _row(self, sequences: list[list[str]]) -> np.ndarray:
        """log P(w) of eq. (2) from the given sequences' counts, over the whole vocabulary."""
        V = len(self.vocab_)
        ids = np.concatenate([self.vocab_.encode(s) for s in sequences] + [np.zeros(0, np.int64)])  # (N_tokens,)
        counts = np.bincount(ids, minlength=V).astype(np.float64)  # (V,)
        counts[Vocabulary.eos_id] = len(sequences)
        counts[Vocabulary.bos_id] = 0.0
        probs = (counts + self.k) / (counts.sum() + self.k * (V - 1))  # eq. (2)
        with np.errstate(divide="ignore"):
            logprobs = np.log(probs)
        logprobs[Vocabulary.bos_id] = -np.inf
        return logprobs
