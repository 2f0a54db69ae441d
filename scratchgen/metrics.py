"""How generated text and models are measured.

Scoring convention (KenLM's, so figures compare directly): for a corpus of sequences x^(1..S),

    cross-entropy H = -(1/N) sum_s log P(x^(s))      nats per token                          (1)
    N = sum_s (|x^(s)| + 1)                          every token plus one </s> a sequence      (2)
    perplexity = exp(H),  bits per token = H / ln 2                                           (3)

``<s>`` is context only and never counted; an out-of-vocabulary token is scored as ``<unk>``.

Generated text is also measured without a model, from the samples alone. For a list of samples
x^(1..S) and an order n, let G_n(x) be the multiset of the n-grams (x_i, ..., x_{i+n-1}) of one
sample (no padding: a sample of length T has max(T - n + 1, 0) of them). Then

    distinct-n  = |union_s set(G_n(x^(s)))| / sum_s |G_n(x^(s))|                               (4)
    repetition  = sum_s (|G_n(x^(s))| - |set(G_n(x^(s)))|) / sum_s |G_n(x^(s))|                (5)
    novelty_seq = share of samples that are not a sequence of the training corpus                (6)
    novelty_n   = share of the n-gram occurrences sum_s G_n(x^(s)) whose n-gram never occurs
                  in the training corpus                                                         (7)

(4) is corpus-level diversity (1 = no n-gram generated twice anywhere); (5) is within-sample
repetition (0 = no sample repeats one of its own n-grams; "the the the" has 2 repeats of 3
unigrams); (6) and (7) make copying visible: a model that memorised its training set scores 0.
A ratio with nothing to count (no n-grams at all) is nan, not an error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Iterable, Sequence

from .errors import ScratchgenError

__all__ = ["Score", "ngrams", "distinct_n", "repetition_rate", "Novelty", "novelty", "average_length"]


@dataclasses.dataclass(frozen=True)
class Score:
    """The score of a corpus under a model; ``to_dict`` gives the keys ``scratchgen score --json`` prints."""

    sequences: int
    tokens: int
    oov_tokens: int
    logprob: float
    cross_entropy_nats: float
    bits_per_token: float
    perplexity: float

    @classmethod
    def from_totals(cls, logprob: float, sequences: int, tokens: int, oov_tokens: int) -> Score:
        """Eq. (1)-(3) from the total natural-log probability and the counts."""
        h = -logprob / tokens  # eq. (1)
        perplexity = math.exp(h) if h < 709.0 else math.inf
        return cls(
            sequences=sequences,
            tokens=tokens,
            oov_tokens=oov_tokens,
            logprob=logprob,
            cross_entropy_nats=h,
            bits_per_token=h / math.log(2),  # eq. (3)
            perplexity=perplexity,
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- measures of generated text (eq. 4-7); samples are sequences of tokens --------------------------

Samples = Iterable[Sequence[Hashable]]


def _check_order(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ScratchgenError(f"the n-gram order n must be an integer >= 1, got {n!r}")
    return n


def _sequences(samples: Samples) -> list[tuple]:
    if isinstance(samples, str):
        raise ScratchgenError("samples must be a list of token sequences, not one str")
    return [tuple(s) for s in samples]


def ngrams(tokens: Sequence[Hashable], n: int) -> list[tuple]:
    """The n-grams of one sequence, in order, without padding.

    >>> ngrams(["a", "b", "c"], 2)
    [('a', 'b'), ('b', 'c')]
    >>> ngrams(["a"], 2)
    []
    """
    _check_order(n)
    tokens = tuple(tokens)
    return [tokens[i : i + n] for i in range(len(tokens) - n + 1)]


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def distinct_n(samples: Samples, n: int) -> float:
    """Distinct n-grams over all samples divided by all n-grams of all samples: eq. (4).

    >>> distinct_n([["a", "b", "a", "b"], ["a", "b"]], 2)   # ab ba ab + ab: 2 distinct of 4
    0.5
    """
    _check_order(n)
    seen: set = set()
    total = 0
    for s in _sequences(samples):
        grams = ngrams(s, n)
        seen.update(grams)  # eq. (4) numerator: the union over samples
        total += len(grams)
    return _ratio(len(seen), total)


def repetition_rate(samples: Samples, n: int = 1) -> float:
    """Share of n-gram occurrences that repeat an earlier n-gram *of the same sample*: eq. (5).

    Each sample is scanned left to right; an n-gram counts as a repetition when the same sample
    already produced it. Repeats across different samples do not count (that is :func:`distinct_n`).
    Pooled over samples: repeated occurrences / all occurrences.

    >>> repetition_rate([["the", "the", "the"], ["a", "b"]], n=1)   # 2 repeats of 5 unigrams
    0.4
    """
    _check_order(n)
    repeats = total = 0
    for s in _sequences(samples):
        grams = ngrams(s, n)
        repeats += len(grams) - len(set(grams))  # eq. (5)
        total += len(grams)
    return _ratio(repeats, total)


@dataclasses.dataclass(frozen=True)
class Novelty:
    """How much of the generated text is new: eq. (6) and (7).

    Attributes
    ----------
    sequences : float
        Share of samples that are not (exactly) a sequence of the training corpus.
    ngrams : float
        Share of generated n-gram occurrences whose n-gram never occurs in the training corpus.
    n : int
        The order of ``ngrams``.
    """

    sequences: float
    ngrams: float
    n: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def novelty(samples: Samples, train: Samples, n: int = 3) -> Novelty:
    """Share of samples and of sample n-grams not present in ``train`` (eq. 6, 7).

    >>> novelty([["a", "b"], ["a", "c"]], [["a", "b"]], n=1)   # "a b" copied; c is the 1 new of 4 unigrams
    Novelty(sequences=0.5, ngrams=0.25, n=1)
    """
    _check_order(n)
    samples = _sequences(samples)
    train = _sequences(train)
    train_set = set(train)
    train_grams: set = set()
    for s in train:
        train_grams.update(ngrams(s, n))
    new_seq = sum(1 for s in samples if s not in train_set)  # eq. (6)
    new_grams = total = 0
    for s in samples:
        grams = ngrams(s, n)
        new_grams += sum(1 for g in grams if g not in train_grams)  # eq. (7)
        total += len(grams)
    return Novelty(sequences=_ratio(new_seq, len(samples)), ngrams=_ratio(new_grams, total), n=n)


def average_length(samples: Samples) -> float:
    """Mean number of tokens a sample (``</s>`` not counted); nan for no samples.

    >>> average_length([["a", "b"], [], ["c"]])
    1.0
    """
    lengths = [len(s) for s in _sequences(samples)]
    return _ratio(sum(lengths), len(lengths))
