"""The labelled corpus scratchgen ships, and the best any model of it can do.

The corpus is generated, not stored: :func:`labelled_corpus` samples ``LABEL<TAB>TEXT`` examples from the
built-in labelled grammar ``builtin:labelled`` (three topics, ``animals``, ``farm`` and ``royalty``, over
one syntax; see ``scratchgen/grammars/labelled.cfg`` and :mod:`scratchgen.grammar.labelled`) with a fixed
seed, so the same call gives the same corpus on every machine, and its true distribution is known:

    P(c) = p(S -> c) = 0.40, 0.35, 0.25 for animals, farm, royalty                                 (1)
    P(x | c) = the inside probability of the start symbol c over x                                 (2)

The standard split is ``labelled_corpus(2000, seed=0)`` to train and ``labelled_corpus(1000, seed=1)``
held out (:data:`TRAIN`, :data:`HELD_OUT`, :func:`standard_split`; :func:`write_labelled_corpus` writes
one as a file); on the command line,
``scratchgen grammar sample builtin:labelled --labelled -n 2000 --seed 0 -o train.tsv``.

Because the truth is known, so is the ceiling of every model trained on it (:func:`bayes_optimal`): no
classifier does better on average than the Bayes-optimal one, argmax_c log P(x | c) + log P(c) with the
true (1) and (2), whose expected accuracy is E_x[max_c P(c | x)]; no model of P(x | c) has a lower
expected cross-entropy than the true one, whose value on the sentences of label c,

    H_c = -sum_{x of label c} log P(x | c) / sum_{x of label c} (|x| + 1)       nats a token          (3)

estimates the entropy rate of label c (``</s>`` counted once a sentence, as every score in scratchgen).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CorpusError, LabelError
from .grammar.builtin import resolve_grammar
from .grammar.labelled import prior_counts, sample_labelled, start_labels
from .grammar.model import GrammarModel
from .text import Tokenizer

__all__ = [
    "HELD_OUT",
    "LABELLED_GRAMMAR",
    "TRAIN",
    "BayesFigures",
    "bayes_optimal",
    "labelled_corpus",
    "standard_split",
    "true_model",
    "write_labelled_corpus",
]

#: The grammar the shipped labelled corpus is drawn from.
LABELLED_GRAMMAR = "builtin:labelled"
#: (n, seed) of the standard training and held-out samples.
TRAIN = (2000, 0)
HELD_OUT = (1000, 1)


def labelled_corpus(n: int = TRAIN[0], seed: int = TRAIN[1], grammar=LABELLED_GRAMMAR) -> tuple[list[str], list[str]]:
    """``(labels, texts)``: ``n`` examples drawn from a labelled grammar, the same for the same seed.

    Each text is a sentence detokenized as ``scratchgen grammar sample`` prints it; the word tokenizer
    gives its tokens back. Write ``LABEL<TAB>TEXT`` lines with ``scratchgen grammar sample --labelled``.

    >>> labels, texts = labelled_corpus(3, seed=0)
    >>> len(texts), set(labels) <= {"animals", "farm", "royalty"}
    (3, True)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise CorpusError(f"n must be an int >= 1, got {n!r}")
    labels, sentences = sample_labelled(resolve_grammar(grammar), int(n), seed=seed)
    tokenizer = Tokenizer(level="word")
    return labels, [tokenizer.detokenize(x) for x in sentences]


def true_model(grammar=LABELLED_GRAMMAR) -> GrammarModel:
    """The labelled model of the true distribution: eqs. (1) and (2), the grammar's own weights and prior."""
    g = resolve_grammar(grammar)
    return GrammarModel.from_grammar(g, labels=prior_counts(start_labels(g)))


@dataclass(frozen=True)
class BayesFigures:
    """What the true distribution scores on a labelled sample (see the module docstring).

    Attributes
    ----------
    accuracy : float
        How often argmax_c P(c | x) is the true label on this sample.
    expected_accuracy : float
        mean over the sample of max_c P(c | x): an estimate of the Bayes-optimal accuracy with less variance.
    cross_entropy : float
        -sum log P(x | its label) / tokens, nats a token (``</s>`` counted): eq. (3) over every label.
    per_label : dict
        For each label: ``count``, ``prior`` (P(c) of eq. (1)), ``accuracy`` (recall of the
        Bayes-optimal classifier on that label), ``cross_entropy`` (H_c of eq. (3), nats a token) and
        ``nats_per_sentence`` (-mean log P(x | c)).
    """

    accuracy: float
    expected_accuracy: float
    cross_entropy: float
    per_label: dict

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "expected_accuracy": self.expected_accuracy,
            "cross_entropy_nats": self.cross_entropy,
            "per_label": self.per_label,
        }


def bayes_optimal(labels, texts, grammar=LABELLED_GRAMMAR) -> BayesFigures:
    """The Bayes-optimal classifier's accuracy and the true cross-entropies on a labelled sample.

    ``labels`` and ``texts`` as :func:`labelled_corpus` returns them (texts or token lists), drawn from
    ``grammar``; every log-probability is exact (the chart). A label the grammar does not have is a
    :class:`LabelError`.
    """
    model = true_model(grammar)
    labels = list(labels)
    sequences = model.tokenize_corpus(texts)
    if len(labels) != len(sequences) or not sequences:
        raise LabelError(f"{len(labels)} labels for {len(sequences)} texts: give one label a text, at least one")
    assert model.labels_ is not None and model.label_models_ is not None
    names = model.labels_.names
    y = np.array([model.labels_.id(c) for c in labels])  # (n,)
    logp = np.stack([m._chart_logprobs(sequences) for m in model.label_models_], axis=1)  # (n, C) log P(x | c)
    joint = logp + model.labels_.log_prior  # (n, C)
    posterior = np.exp(joint - np.logaddexp.reduce(joint, axis=1, keepdims=True))  # (n, C) P(c | x)
    correct = np.argmax(joint, axis=1) == y  # (n,)
    own = logp[np.arange(len(y)), y]  # (n,) log P(x | its label)
    tokens = np.array([len(s) + 1 for s in sequences])  # (n,) </s> counted
    per_label = {}
    for c, name in enumerate(names):
        rows = y == c
        if not rows.any():
            continue
        per_label[name] = {
            "count": int(rows.sum()),
            "prior": float(np.exp(model.labels_.log_prior[c])),
            "accuracy": float(correct[rows].mean()),
            "cross_entropy": float(-own[rows].sum() / tokens[rows].sum()),
            "nats_per_sentence": float(-own[rows].mean()),
        }
    return BayesFigures(
        accuracy=float(correct.mean()),
        expected_accuracy=float(posterior.max(axis=1).mean()),
        cross_entropy=float(-own.sum() / tokens.sum()),
        per_label=per_label,
    )


def standard_split() -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    """``((labels, texts) to train, (labels, texts) held out)``: :data:`TRAIN` and :data:`HELD_OUT`."""
    return labelled_corpus(*TRAIN), labelled_corpus(*HELD_OUT)


def write_labelled_corpus(path, labels, texts) -> None:
    """Write ``LABEL<TAB>TEXT`` lines (UTF-8, atomically), as :func:`scratchgen.corpus.read_corpus` reads them."""
    from .io import atomic_write
    from .labels import check_label_name

    labels, texts = list(labels), list(texts)
    if len(labels) != len(texts):
        raise LabelError(f"{len(labels)} labels for {len(texts)} texts: give one label a text")
    lines = []
    for label, text in zip(labels, texts):
        if "\n" in text or "\r" in text:
            raise CorpusError(f"a text of a labelled corpus is one line, got {text[:40]!r}")
        lines.append(f"{check_label_name(label)}\t{text}\n")
    atomic_write(path, lambda f: f.write("".join(lines).encode("utf-8")))
