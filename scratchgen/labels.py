"""Labels: the condition c of a conditional generator P(x | c), and the class prior P(c).

A labelled corpus is one example a line, ``LABEL<TAB>TEXT`` (:func:`scratchgen.corpus.read_corpus` with
``labelled=True``). Every family models P(x | c) over one shared vocabulary; the label is a condition,
never a token: it is not in the vocabulary and is never emitted. The prior is learned from the label
counts,

    P(c) = n_c / sum_c' n_c'                                                                     (1)

and with it a generative model is also a classifier (Bayes' rule):

    P(c | x) = P(x | c) P(c) / sum_c' P(x | c') P(c')                                           (2)

:class:`LabelSet` holds the label names in a fixed order (sorted, so the same corpus gives the same ids
in any process) and their counts; a model keeps one in ``labels_`` (``None`` for an unlabelled model).
It is saved in the model file's header and checked when loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import LabelError

__all__ = ["LabelSet", "Classification", "check_label_name", "label_ids", "required_label_ids", "start_state"]

#: Characters a label may not contain: it is one field of a tab-separated line.
_FORBIDDEN = ("\t", "\n", "\r")


def check_label_name(label: object) -> str:
    """A label is a non-empty str without tabs or newlines, and not only spaces."""
    if not isinstance(label, str):
        raise LabelError(f"a label is a str, got {type(label).__name__}")
    if not label.strip() or any(c in label for c in _FORBIDDEN):
        raise LabelError(f"a label must be non-empty text without tabs or newlines, got {label!r}")
    return label


def _shown(names: Sequence[str], limit: int = 20) -> str:
    listed = ", ".join(repr(n) for n in names[:limit])
    return listed + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass(frozen=True)
class LabelSet:
    """The labels of a model, in id order, and how many training examples each had.

    >>> labels, ids = LabelSet.from_labels(["b", "a", "b"])
    >>> labels.names, ids.tolist()
    (('a', 'b'), [1, 0, 1])
    >>> labels.id("c")
    Traceback (most recent call last):
    ...
    scratchgen.errors.LabelError: unknown label 'c': this model knows 'a', 'b'
    """

    names: tuple[str, ...]
    counts: tuple[int, ...]

    def __post_init__(self):
        if not self.names:
            raise LabelError("a labelled model needs at least one label")
        for name in self.names:
            check_label_name(name)
        if len(set(self.names)) != len(self.names):
            raise LabelError("the label names must be distinct")
        if len(self.counts) != len(self.names) or any(
            not isinstance(c, (int, np.integer)) or isinstance(c, bool) or c < 1 for c in self.counts
        ):
            raise LabelError("every label needs a count >= 1 (the number of its training examples)")

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> tuple[LabelSet, np.ndarray]:
        """The label set of a corpus's labels (sorted names) and the id of each example."""
        labels = [check_label_name(label) for label in labels]
        if not labels:
            raise LabelError("a labelled corpus needs at least one example")
        counts = Counter(labels)
        names = tuple(sorted(counts))
        index = {name: i for i, name in enumerate(names)}
        return cls(names, tuple(counts[n] for n in names)), np.array([index[x] for x in labels], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def log_prior(self) -> np.ndarray:
        """log P(c) of eq. (1), shape (C,)."""
        counts = np.asarray(self.counts, dtype=np.float64)
        return np.log(counts) - np.log(counts.sum())

    def id(self, label: str) -> int:
        """The id of one label; a :class:`LabelError` that lists the known labels if it is not one."""
        try:
            return self.names.index(label)
        except ValueError:
            raise LabelError(f"unknown label {label!r}: this model knows {_shown(self.names)}") from None

    def ids(self, labels: str | Iterable[str], n: int) -> np.ndarray:
        """Ids of ``n`` labels: one label for all n, or a sequence of n labels."""
        if isinstance(labels, str):
            return np.full(n, self.id(labels), dtype=np.int64)
        labels = list(labels)
        if len(labels) != n:
            raise LabelError(f"{len(labels)} labels for {n} sequences: give one label a sequence, or one for all")
        return np.array([self.id(x) for x in labels], dtype=np.int64)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "counts": [int(c) for c in self.counts]}

    @classmethod
    def from_dict(cls, d: object) -> LabelSet:
        if not isinstance(d, dict) or not isinstance(d.get("names"), list) or not isinstance(d.get("counts"), list):
            raise LabelError("its labels are not {'names': [...], 'counts': [...]}")
        names = d["names"]
        if all(isinstance(n, str) for n in names) and names != sorted(names):
            # ids follow the sorted names (from_labels); names in another order would pair labels with wrong rows
            raise LabelError(f"its label names are not in sorted order: {names!r}")
        return cls(tuple(names), tuple(d["counts"]))


@dataclass(frozen=True)
class Classification:
    """What :meth:`LanguageModel.classify` returns for n texts and C labels.

    Attributes
    ----------
    labels : list of str
        argmax_c log P(x | c) + log P(c) for each text (the lower id on ties).
    posterior : float array (n, C)
        P(c | x) of eq. (2); each row sums to 1.
    logprob : float array (n, C)
        log P(x | c), natural log.
    names : tuple of str
        The label of each column.
    """

    labels: list[str]
    posterior: np.ndarray
    logprob: np.ndarray
    names: tuple[str, ...]


def label_ids(model, labels, n: int) -> np.ndarray | None:
    """Label ids of ``n`` sequences of ``model`` from None, a label, or one label (str) or id (int) a sequence.

    Only the public ``labels_`` attribute is read (``None`` or absent: an unlabelled model), so a model
    written outside scratchgen works too. A label given to an unlabelled model, an unknown label and an
    id out of range are :class:`LabelError` s that name the labels the model knows.
    """
    if labels is None:
        return None
    known: LabelSet | None = getattr(model, "labels_", None)
    if known is None:
        raise LabelError(
            f"this {type(model).__name__} has no labels (it was trained without --labelled / labels=), "
            "so it cannot be given one"
        )
    if isinstance(labels, np.ndarray) and np.issubdtype(labels.dtype, np.integer):
        ids = labels.astype(np.int64).reshape(-1)
        if len(ids) != n:
            raise LabelError(f"{len(ids)} label ids for {n} sequences")
        if ids.size and (ids.min() < 0 or ids.max() >= len(known)):
            raise LabelError(f"label ids run from 0 to {len(known) - 1}, got {ids.min()}..{ids.max()}")
        return ids
    return known.ids(labels, n)


def required_label_ids(model, labels, n: int) -> np.ndarray:
    """The (n,) int label ids a labelled model's stepping state needs: a one-line :class:`LabelError` for
    none (naming the labels the model knows), a wrong shape or type, or an id out of range."""
    known: LabelSet = model.labels_
    if labels is None:
        raise LabelError(
            f"this {type(model).__name__} is labelled (it knows {', '.join(map(repr, known.names))}): its "
            "initial_state needs labels=, the label id of each sequence"
        )
    ids = np.asarray(labels)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise LabelError(f"labels= must be {n} integer label ids, got shape {ids.shape} {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= len(known)):
        raise LabelError(f"label ids run from 0 to {len(known) - 1}, got {ids.min()}..{ids.max()}")
    return ids.astype(np.int64)


def start_state(model, batch_size: int, labels: np.ndarray | None = None):
    """``model.initial_state(batch_size)``, with the label ids passed only to a labelled model."""
    if labels is None:
        return model.initial_state(batch_size)
    return model.initial_state(batch_size, labels=np.asarray(labels, dtype=np.int64))
