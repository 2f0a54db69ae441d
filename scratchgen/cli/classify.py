"""``scratchgen classify``: a labelled model used as a classifier, and the label options of other commands.

    scratchgen classify MODEL CORPUS [--labelled] [--json]

A model trained with ``--labelled`` is a generative model of P(x | c) with a prior P(c); Bayes' rule
turns it into a classifier (eq. (2) of :mod:`scratchgen.labels`)::

    c*(x) = argmax_c log P(x | c) + log P(c)

One label a line is printed, in the order of the corpus's non-empty lines. With ``--labelled`` the
corpus is ``LABEL<TAB>TEXT`` and the true labels are compared with the predicted ones: ``--json``
then reports ``accuracy``, ``per_label`` counts and the ``confusion`` matrix; without ``--json`` the
accuracy goes to stderr. With an unlabelled corpus ``--json`` gives each line's label and posterior.

The label helpers of :mod:`.options` (``require_labels``, ``read_labelled_corpus``) word every label
error the same way here as in ``generate --label``, ``score --labelled`` and ``eval --labelled``.
"""

from __future__ import annotations

import argparse
import json
import sys

from .options import add_encoding_option, declare_files, print_json, read_labelled_corpus, require_labels

__all__ = ["register"]

#: Texts classified together: memory stays flat in the corpus size (C scores of this many texts at a time).
CHUNK = 1024


def _classify(args: argparse.Namespace) -> int:
    import numpy as np

    from ..evaluation.labels import classification_report
    from ..io import load

    model = load(args.model)
    known = require_labels(model, "classify")
    true, corpus = read_labelled_corpus(args, model, args.corpus)
    predicted: list[str] = []
    if args.json and true is None:
        sys.stdout.write('{"labels": ' + json.dumps(list(known.names), ensure_ascii=False) + ', "predictions": [')
    for start in range(0, len(corpus), CHUNK):
        result = model.classify(corpus[start : start + CHUNK])
        predicted += result.labels
        if not args.json:
            print("\n".join(result.labels))
        elif true is None:  # each line's label and posterior, written as each chunk is done
            rows = [
                json.dumps({"label": label, "posterior": dict(zip(known.names, map(float, row)))}, ensure_ascii=False)
                for label, row in zip(result.labels, result.posterior)
            ]
            sys.stdout.write(("" if start == 0 else ", ") + ", ".join(rows))
        sys.stdout.flush()
    if args.json and true is None:
        sys.stdout.write("]}\n")
    elif true is not None:
        report = classification_report(known.names, true, predicted)
        if args.json:
            print_json(report)
        else:
            print(
                f"accuracy {report['accuracy']:.4f} ({int(np.trace(report['confusion']['matrix']))} of "
                f"{report['sequences']})",
                file=sys.stderr,
            )
    return 0


def register(commands, train) -> None:
    """Add ``classify``: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = commands.add_parser(
        "classify",
        help="the most probable label of each line under a labelled model (Bayes' rule)",
        description="Classify each non-empty line of CORPUS by argmax_c log P(x | c) + log P(c) under a model "
        "trained with --labelled, and print one label a line. With --labelled the corpus is LABEL<TAB>TEXT and "
        "the predictions are compared with its labels (accuracy on stderr; with --json: accuracy, per_label "
        "counts and the confusion matrix, rows the true labels). With --json and an unlabelled corpus: each "
        "line's label and posterior P(c | x).",
    )
    p.add_argument("model", metavar="MODEL", help="a model trained with --labelled")
    p.add_argument("corpus", metavar="CORPUS", help="one text a line (LABEL<TAB>TEXT with --labelled)")
    p.add_argument(
        "--labelled", action="store_true", help="the corpus is LABEL<TAB>TEXT: report the accuracy of the predictions"
    )
    add_encoding_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object instead of one label a line")
    declare_files(p, inputs=("model", "corpus"))
    p.set_defaults(func=_classify)
