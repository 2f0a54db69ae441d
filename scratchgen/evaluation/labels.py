"""Evaluating a labelled model P(x | c): classification, per-label cross-entropy, and label fidelity.

A labelled model is judged three ways (issue 11, section 1):

1. **As a classifier** (Bayes' rule, eq. (2) of :mod:`scratchgen.labels`): the share of held-out texts
   whose most probable label argmax_c log P(x | c) + log P(c) is their true one, per label and in all,
   with the confusion matrix N[i, j] = #{texts of label i classified as j}::

       accuracy = sum_i N[i, i] / sum_ij N[i, j]                                             (1)

2. **Per-label cross-entropy against an unlabelled twin.** For the held-out texts X_c of label c::

       H_c(labelled)   = -sum_{x in X_c} log P(x | c) / sum_{x in X_c} (|x| + 1)            (2)
       H_c(unlabelled) = -sum_{x in X_c} log Q(x)     / sum_{x in X_c} (|x| + 1)            (3)

   where Q is a model of the same class with the same hyperparameters (``get_params()``), fitted on
   the same training texts without their labels. ``gain_c = H_c(unlabelled) - H_c(labelled)`` nats
   per token is what knowing the label is worth to the model on label c's text (> 0: it helps).

3. **Label fidelity.** For each label c, draw S samples from P(x | c) and classify them with a
   discriminator trained on the *real* labelled training text (the multi-class logistic regression
   of :mod:`.discriminator`, eq. (6)-(9) there; independent of the model being judged)::

       fidelity_c = #{samples of label c that the discriminator classifies as c} / S         (4)

   1.0 means every sample of c reads like real text of c (to this discriminator); 1/C is chance for
   balanced labels. The discriminator's own held-out accuracy on real text is reported beside it
   (it bounds what fidelity can show: a discriminator that cannot tell the real labels apart cannot
   tell the samples' labels apart either).

The discriminator sees at most ``max_real`` real texts (a seeded random subset; its hashed features
are a dense (M, 4096) array), and, without held-out text, 30% of them are held out for its accuracy.

Letters: C labels, S samples a label.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import LabelError, ScratchgenError

__all__ = ["confusion_counts", "classification_report", "LabelEvaluation", "evaluate_labels", "unlabelled_twin"]


def confusion_counts(names: Sequence[str], true: Sequence[str], predicted: Sequence[str]) -> np.ndarray:
    """The (C, C) confusion matrix of eq. (1): entry [i, j] counts the texts of label i classified as j.

    >>> confusion_counts(("a", "b"), ["a", "a", "b"], ["a", "b", "b"]).tolist()
    [[1, 1], [0, 1]]
    """
    index = {name: i for i, name in enumerate(names)}
    if len(true) != len(predicted):
        raise ScratchgenError(f"{len(true)} true labels for {len(predicted)} predictions")
    counts = np.zeros((len(names), len(names)), dtype=np.int64)  # (C, C) true x predicted
    for t, p in zip(true, predicted):
        if t not in index or p not in index:
            raise LabelError(f"label {t if t not in index else p!r} is not one of {', '.join(names)}")
        counts[index[t], index[p]] += 1
    return counts


def classification_report(names: Sequence[str], true: Sequence[str], predicted: Sequence[str]) -> dict:
    """``sequences``, ``accuracy`` (eq. 1), ``per_label`` counts and the ``confusion`` matrix as a dict.

    >>> r = classification_report(("a", "b"), ["a", "a", "b"], ["a", "b", "b"])
    >>> r["accuracy"], r["per_label"]["a"]
    (0.6666666666666666, {'examples': 2, 'correct': 1, 'predicted': 1, 'accuracy': 0.5})
    """
    counts = confusion_counts(names, true, predicted)
    n = int(counts.sum())
    if n == 0:
        raise ScratchgenError("there is nothing to score: no labelled text")
    per_label = {
        name: {
            "examples": int(counts[i].sum()),
            "correct": int(counts[i, i]),
            "predicted": int(counts[:, i].sum()),
            "accuracy": float(counts[i, i] / counts[i].sum()) if counts[i].sum() else None,
        }
        for i, name in enumerate(names)
    }
    return {
        "sequences": n,
        "accuracy": float(np.trace(counts) / n),  # eq. (1)
        "per_label": per_label,
        "confusion": {"labels": list(names), "matrix": counts.tolist()},
    }


@dataclasses.dataclass
class LabelEvaluation:
    """What :func:`evaluate_labels` measured, a figure a label; ``to_dict`` gives JSON-able values.

    Attributes
    ----------
    names : tuple of str
        The model's labels, in id order.
    data : str
        Which real text the cross-entropies and the classification are measured on: "heldout" or "train".
    cross_entropy : dict label -> dict
        ``examples``, ``tokens``, ``labelled_nats`` (eq. 2), ``unlabelled_nats`` (eq. 3) and ``gain_nats``
        (their difference) of each label with text (None for a label without any).
    classification : dict
        :func:`classification_report` of the model used as a classifier (Bayes' rule) on that text.
    fidelity : dict label -> float, or None when skipped
        eq. (4) for each label.
    samples_per_label : int
    discriminator_accuracy : float or None
        The fidelity discriminator's accuracy on held-out *real* labelled text.
    """

    names: tuple[str, ...]
    data: str
    cross_entropy: dict[str, Any]
    classification: dict[str, Any]
    fidelity: dict[str, float] | None = None
    samples_per_label: int = 0
    discriminator_accuracy: float | None = None

    def to_dict(self) -> dict:
        return {
            "labels": list(self.names),
            "data": self.data,
            "cross_entropy": self.cross_entropy,
            "classification": self.classification,
            "fidelity": self.fidelity,
            "samples_per_label": self.samples_per_label,
            "fidelity_discriminator_accuracy": self.discriminator_accuracy,
        }

    def summary(self) -> str:
        """A few lines: the classification accuracy, then one line a label."""
        lines = [
            f"labels: {len(self.names)}; as a classifier (Bayes' rule) on {self.data} text: accuracy "
            f"{self.classification['accuracy']:.1%}"
            + (
                f"; fidelity discriminator accuracy on real text {self.discriminator_accuracy:.1%}"
                if self.discriminator_accuracy is not None
                else ""
            )
        ]
        for name in self.names:
            ce = self.cross_entropy[name]
            parts = [f"  {name}:"]
            if ce is not None:
                parts.append(
                    f"cross-entropy {ce['labelled_nats']:.4f} nats/token given the label vs "
                    f"{ce['unlabelled_nats']:.4f} unlabelled (gain {ce['gain_nats']:+.4f})"
                )
            else:
                parts.append("no text of this label")
            acc = self.classification["per_label"][name]["accuracy"]
            if acc is not None:
                parts.append(f"classified right {acc:.1%}")
            if self.fidelity is not None:
                parts.append(f"fidelity {self.fidelity[name]:.1%} of {self.samples_per_label} samples")
            lines.append(f"{parts[0]} " + "; ".join(parts[1:]))
        return "\n".join(lines)


def unlabelled_twin(model, train_sequences: Sequence[Sequence[str]]):
    """A model of the same class and hyperparameters (``get_params()``, the tokenizer too), fitted on the
    same training sequences without their labels: the Q of eq. (3)."""
    twin = type(model)(**model.get_params(), tokenizer=model.tokenizer)
    return twin.fit(list(train_sequences))


def _per_label_cross_entropy(model, twin, names, sequences, labels) -> dict[str, Any]:
    """eq. (2)-(3) for each label's texts among ``sequences``."""
    out: dict[str, Any] = {}
    for name in names:
        texts = [s for s, label in zip(sequences, labels) if label == name]
        if not texts:
            out[name] = None
            continue
        given = model.score(texts, labels=name)  # eq. (2)
        plain = twin.score(texts)  # eq. (3)
        out[name] = {
            "examples": given.sequences,
            "tokens": given.tokens,
            "labelled_nats": given.cross_entropy_nats,
            "unlabelled_nats": plain.cross_entropy_nats,
            "gain_nats": plain.cross_entropy_nats - given.cross_entropy_nats,
        }
    return out


def _labelled(model, corpus, labels, what: str) -> tuple[list, np.ndarray]:
    """Token sequences and label ids of a labelled corpus; each label checked (a one-line error listing them)."""
    sequences = model.tokenize_corpus(corpus)
    labels = list(labels)
    if len(labels) != len(sequences):
        raise LabelError(f"{len(labels)} labels for {len(sequences)} {what} texts: give one label a text")
    return sequences, model.labels_.ids(labels, len(sequences))


def _fidelity(model, names, real, real_heldout, S: int, rng: np.random.Generator, max_real: int, decoding: dict):
    """eq. (4) for each label, and the discriminator's accuracy on held-out real text."""
    from ..decoding import generate
    from .discriminator import TextClassifier

    train, train_ids = real
    rows = rng.permutation(len(train))[:max_real]  # a random subset of the real text, in random order
    if real_heldout is None:  # hold out 30% of it to measure the discriminator itself
        n_test = int(round(0.3 * len(rows))) if len(rows) >= 4 else 0
        test_rows, rows = rows[:n_test], rows[n_test:]
        heldout, heldout_ids = [train[i] for i in test_rows], train_ids[test_rows]
    else:
        keep = rng.permutation(len(real_heldout[0]))[:max_real]
        heldout, heldout_ids = [real_heldout[0][i] for i in keep], real_heldout[1][keep]
    clf = TextClassifier.fit([train[i] for i in rows], train_ids[rows], len(names))
    accuracy = float(np.mean(clf.predict(heldout) == heldout_ids)) if len(heldout) else None
    fidelity = {}
    for c, name in enumerate(names):
        samples = generate(model, n=S, label=name, seed=rng, **decoding)
        fidelity[name] = float(np.mean(clf.predict(samples) == c))  # eq. (4)
    return fidelity, accuracy


def evaluate_labels(
    model,
    train: Sequence,
    train_labels: Sequence[str],
    heldout: Sequence | None = None,
    heldout_labels: Sequence[str] | None = None,
    samples_per_label: int = 200,
    seed: int | None = 0,
    fidelity: bool = True,
    max_real: int = 2000,
    twin=None,
    **decoding,
) -> LabelEvaluation:
    """Evaluate a labelled model: classification (eq. 1), per-label cross-entropy against its unlabelled
    twin (eq. 2-3) and label fidelity (eq. 4).

    Parameters
    ----------
    model : a fitted LanguageModel with ``labels_``
    train, train_labels : the labelled corpus the model was trained on (texts or token lists, one label each)
    heldout, heldout_labels : labelled held-out text, or None (then the training text is used, and said so)
    samples_per_label : S of eq. (4)
    seed : seeds the sampling and the discriminator's subset and split
    fidelity : False skips eq. (4) (sampling and the discriminator are its slow part)
    max_real : at most this many real texts train the discriminator (and as many test it)
    twin : the unlabelled model Q of eq. (3) if already fitted (default: :func:`unlabelled_twin`)
    **decoding : passed to :func:`scratchgen.decoding.generate` (max_tokens, temperature, top_k, top_p)

    >>> from scratchgen import UnigramModel
    >>> texts, labels = ["aaa", "aab", "bbb", "bba"], ["A", "A", "B", "B"]
    >>> m = UnigramModel().fit(texts, labels=labels)
    >>> r = evaluate_labels(m, texts, labels, fidelity=False)
    >>> r.classification["accuracy"], r.cross_entropy["A"]["gain_nats"] > 0
    (1.0, True)
    """
    known = getattr(model, "labels_", None)
    if known is None:
        raise LabelError(f"this {type(model).__name__} has no labels: only a labelled model has per-label figures")
    if isinstance(samples_per_label, bool) or not isinstance(samples_per_label, (int, np.integer)):
        raise ScratchgenError(f"samples_per_label must be an integer >= 1, got {samples_per_label!r}")
    if samples_per_label < 1:
        raise ScratchgenError(f"samples_per_label must be an integer >= 1, got {samples_per_label!r}")
    train_seqs, train_ids = _labelled(model, train, train_labels, "training")
    held: tuple[list, np.ndarray] | None = None
    if heldout is not None:
        if heldout_labels is None:
            raise LabelError("held-out text for a labelled evaluation needs its labels (heldout_labels=)")
        held = _labelled(model, heldout, heldout_labels, "held-out")
    data_seqs, data_ids = held if held is not None else (train_seqs, train_ids)
    if not data_seqs:
        raise ScratchgenError("there is no labelled text to evaluate on")
    data_labels = [known.names[c] for c in data_ids]
    twin = unlabelled_twin(model, train_seqs) if twin is None else twin
    report = LabelEvaluation(
        names=known.names,
        data="heldout" if held is not None else "train",
        cross_entropy=_per_label_cross_entropy(model, twin, known.names, data_seqs, data_labels),
        classification=classification_report(known.names, data_labels, model.classify(data_seqs).labels),
    )
    if fidelity:
        rng = np.random.default_rng(seed)
        report.fidelity, report.discriminator_accuracy = _fidelity(
            model, known.names, (train_seqs, train_ids), held, int(samples_per_label), rng, max_real, decoding
        )
        report.samples_per_label = int(samples_per_label)
    return report
