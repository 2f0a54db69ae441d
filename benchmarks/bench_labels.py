"""Benchmark of label-conditional models on the shipped labelled corpus, beside the truth.

The corpus is ``scratchgen.datasets.standard_split()``: 2,000 training and 1,000 held-out sentences drawn from
the built-in labelled grammar (``builtin:labelled``: animals, farm, royalty over one syntax; quick: 600 and 300).
Since the grammar is the true distribution, the best any model can do is known exactly
(``datasets.bayes_optimal``): the Bayes-optimal accuracy and the true cross-entropy given the label.

For a labelled word 3-gram (modified Kneser-Ney), a labelled RNN (word level), and the labelled grammar fitted
by EM, each measured by ``scratchgen.evaluation.evaluate_labels`` on the held-out sentences:

- held-out cross-entropy given the label (nats/token), against an unlabelled model of the same class and size
  trained on the same sentences (its "twin");
- classification accuracy (argmax_c log P(x|c) + log P(c)) against the Bayes-optimal accuracy on the same
  sentences;
- label fidelity: samples of each label classified by a softmax discriminator trained on the real labelled
  text (the discriminator's own accuracy on real held-out text is its ceiling).

Run ``python -m benchmarks.bench_labels [--quick]`` from the repository root.
"""

from __future__ import annotations

import sys
import time

from benchmarks.common import Section, table, write_section


def run(quick: bool = False) -> Section:
    from scratchgen import GrammarModel, NGramModel, RNNModel, Tokenizer, datasets
    from scratchgen.evaluation.labels import evaluate_labels

    (train_labels, train), (test_labels, test) = datasets.standard_split()
    if quick:
        train_labels, train, test_labels, test = train_labels[:600], train[:600], test_labels[:300], test[:300]
    bayes = datasets.bayes_optimal(test_labels, test)
    word = Tokenizer(level="word")
    samples = 60 if quick else 200
    models = {
        "3-gram (modified Kneser-Ney)": lambda: NGramModel(order=3, tokenizer=word),
        "RNN (word, hidden 64)": lambda: RNNModel(
            hidden=64, embedding=32, max_steps=300 if quick else 1500, batch_size=32, lr=3e-3, seed=0,
            valid_fraction=0.0, tokenizer=word,
        ),
        "grammar (builtin:labelled, EM, prior weight 1)": lambda: GrammarModel(
            grammar=datasets.LABELLED_GRAMMAR, iterations=3, prior_weight=1.0
        ),
    }
    rows, notes = [], []
    for name, make in models.items():
        start = time.process_time()
        model = make().fit(train, labels=train_labels)
        twin = make().fit(train)
        report = evaluate_labels(
            model, train, train_labels, test, test_labels, samples_per_label=samples, seed=0, twin=twin, max_tokens=40
        )
        ce = report.cross_entropy
        tokens = sum(ce[c]["tokens"] for c in report.names if ce[c])
        given = sum(ce[c]["labelled_nats"] * ce[c]["tokens"] for c in report.names if ce[c]) / tokens
        plain = sum(ce[c]["unlabelled_nats"] * ce[c]["tokens"] for c in report.names if ce[c]) / tokens
        fidelity = report.fidelity or {}
        rows.append([
            name, given, plain, plain - given, report.classification["accuracy"],
            " / ".join(f"{fidelity[c]:.2f}" for c in report.names) if fidelity else "-",
            time.process_time() - start,
        ])
        notes.append(f"{name}: discriminator accuracy on real held-out text {report.discriminator_accuracy:.3f}")
    rows.append(["truth (the labelled grammar)", bayes.cross_entropy, float("nan"), float("nan"), bayes.accuracy, "-",
                 float("nan")])
    body = (table(["model", "H given label (nats/token)", "H unlabelled twin", "gain", "accuracy",
                   "fidelity " + " / ".join(sorted(set(train_labels))), "CPU s"], rows)
            + f"\n\n- {len(train)} training and {len(test)} held-out sentences of `builtin:labelled`; "
              f"{samples} samples a label for fidelity (max 40 tokens)."
            + f"\n- Bayes-optimal accuracy on these held-out sentences: {bayes.accuracy:.3f}; true cross-entropy "
              f"given the label {bayes.cross_entropy:.4f} nats/token (the floor of the first column)."
            + "\n- " + "\n- ".join(notes))
    command = "python -m benchmarks.bench_labels" + (" --quick" if quick else "")
    return Section("labels", "labels: conditional models on the shipped labelled corpus", body, command)


if __name__ == "__main__":
    section = run("--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
