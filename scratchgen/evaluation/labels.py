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

Letters: C labels, S samples a label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import LabelError, ScratchgenError

__all__ = ["confusion_counts", "classification_report"]


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
