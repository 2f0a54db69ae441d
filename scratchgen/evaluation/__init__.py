"""Evaluation of generated text, for any model: one call, :func:`evaluate`, and its parts.

- text measures (defined in :mod:`scratchgen.metrics`): :func:`distinct_n`, :func:`repetition_rate`,
  :func:`novelty`, :func:`average_length`;
- exact log-probability under a reference grammar: :func:`reference_logprob` (:mod:`.reference`);
- the adversarial test: :func:`discriminator_accuracy` (:mod:`.discriminator`, logistic regression
  on hashed n-gram features, with its own forward, backward and gradient check);
- a labelled model's per-label figures: :func:`evaluate_labels` (:mod:`.labels`: classification accuracy,
  cross-entropy given the label against an unlabelled twin, label fidelity), :func:`classification_report`;
- pictures of training: :func:`write_curve_csv`, :func:`read_curve_csv`, :func:`plot_curve`, :func:`save_curve`,
  :func:`require_matplotlib` (:mod:`.curves`).

Cross-entropy and perplexity are the protocol's (``model.score(corpus)``); :func:`evaluate` reports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_package

if TYPE_CHECKING:  # what type checkers and editors see; at run time these come from the lazy names below
    from ..metrics import Novelty, average_length, distinct_n, ngrams, novelty, repetition_rate
    from .curves import plot_curve, read_curve_csv, require_matplotlib, save_curve, write_curve_csv
    from .discriminator import discriminator_accuracy
    from .labels import LabelEvaluation, classification_report, evaluate_labels
    from .reference import ReferenceScore, reference_logprob
    from .report import EvalReport, comparison_table, evaluate

__all__ = [
    "evaluate",
    "EvalReport",
    "comparison_table",
    "distinct_n",
    "repetition_rate",
    "novelty",
    "Novelty",
    "average_length",
    "ngrams",
    "reference_logprob",
    "ReferenceScore",
    "discriminator_accuracy",
    "evaluate_labels",
    "LabelEvaluation",
    "classification_report",
    "write_curve_csv",
    "read_curve_csv",
    "plot_curve",
    "save_curve",
    "require_matplotlib",
]

# Each public name by the module that defines it, imported on first use (scratchgen.lazy).
lazy_package(
    __name__,
    {
        "Novelty": "..metrics",
        "average_length": "..metrics",
        "distinct_n": "..metrics",
        "ngrams": "..metrics",
        "novelty": "..metrics",
        "repetition_rate": "..metrics",
        "plot_curve": ".curves",
        "read_curve_csv": ".curves",
        "require_matplotlib": ".curves",
        "save_curve": ".curves",
        "write_curve_csv": ".curves",
        "discriminator_accuracy": ".discriminator",
        "LabelEvaluation": ".labels",
        "classification_report": ".labels",
        "evaluate_labels": ".labels",
        "ReferenceScore": ".reference",
        "reference_logprob": ".reference",
        "EvalReport": ".report",
        "comparison_table": ".report",
        "evaluate": ".report",
    },
)
