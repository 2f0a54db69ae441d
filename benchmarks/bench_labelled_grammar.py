"""The shipped labelled corpus: the truth (Bayes-optimal figures) and a labelled grammar learned by EM.

The corpus is drawn from ``builtin:labelled`` (:mod:`scratchgen.datasets`), so the best any model can do
is known exactly: the Bayes-optimal classifier (the true P(x | c) and P(c)) and the true cross-entropy.
Against them, in the same run: a labelled GrammarModel fitted by inside-outside on the training split
(one set of rule weights a label, the grammar's structure given), the same grammar fitted without
labels, and the time each takes. Other families' label-conditional models compare to the first rows.

    python -m benchmarks.bench_labelled_grammar [--quick]
"""

from __future__ import annotations

import sys

import numpy as np

from benchmarks.common import Section, Timer, table, write_section
from scratchgen.datasets import HELD_OUT, LABELLED_GRAMMAR, TRAIN, bayes_optimal, labelled_corpus, true_model
from scratchgen.grammar import GrammarModel


def run(quick: bool) -> Section:
    n_train = TRAIN[0] // 4 if quick else TRAIN[0]
    train_labels, train_texts = labelled_corpus(n_train, TRAIN[1])  # the first n_train of the training split
    test_labels, test_texts = labelled_corpus(*HELD_OUT)
    iterations = 2 if quick else 5
    truth = bayes_optimal(test_labels, test_texts)
    true = true_model()
    rows = [
        [
            "truth (builtin:labelled)",
            truth.accuracy,
            truth.expected_accuracy,
            truth.cross_entropy,
            true.score(test_texts).cross_entropy_nats,
            "",
            "",
        ]
    ]
    with Timer() as t_fit:
        labelled = GrammarModel(grammar=LABELLED_GRAMMAR, iterations=iterations, prior_weight=1.0).fit(
            train_texts, labels=train_labels
        )
    with Timer() as t_classify:
        predicted = labelled.classify(test_texts).labels
    accuracy = float(np.mean(np.array(predicted) == np.array(test_labels)))
    rows.append(
        [
            "labelled GrammarModel, EM",
            accuracy,
            float("nan"),
            labelled.score(test_texts, labels=test_labels).cross_entropy_nats,
            labelled.score(test_texts).cross_entropy_nats,
            t_fit.seconds,
            len(test_texts) / t_classify.seconds,
        ]
    )
    with Timer() as t_plain:
        plain = GrammarModel(grammar=LABELLED_GRAMMAR, iterations=iterations, prior_weight=1.0).fit(train_texts)
    rows.append(
        ["unlabelled GrammarModel, EM", float("nan"), float("nan"), float("nan"),
         plain.score(test_texts).cross_entropy_nats, t_plain.seconds, ""]
    )
    per_label = table(
        ["label", "prior P(c)", "held-out count", "Bayes-optimal recall", "true cross-entropy given c, nats/token"],
        [[c, r["prior"], r["count"], r["accuracy"], r["cross_entropy"]] for c, r in truth.per_label.items()],
    )
    body = (
        f"Held-out: `labelled_corpus({HELD_OUT[0]}, seed={HELD_OUT[1]})`; training: the first {n_train} examples "
        f"of `labelled_corpus({TRAIN[0]}, seed={TRAIN[1]})`; EM {iterations} iterations, prior_weight 1. "
        "Cross-entropies in nats a token (</s> counted). 'given c' scores log P(x | its label); 'marginal' "
        "scores log sum_c P(c) P(x | c), which is what an unlabelled model is compared with. Expected accuracy: "
        "the mean of max_c P(c | x) under the truth, the Bayes-optimal accuracy with less sampling noise.\n\n"
        + table(
            ["model", "accuracy", "expected accuracy", "cross-entropy given c", "cross-entropy, marginal",
             "fit s", "classified / s"],
            rows,
        )
        + "\n\n"
        + per_label
    )
    command = "python -m benchmarks.bench_labelled_grammar" + (" --quick" if quick else "")
    return Section(name="labelled_grammar", title="Labelled corpus: the truth and a labelled grammar",
                   body=body, command=command)


if __name__ == "__main__":
    section = run(quick="--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
