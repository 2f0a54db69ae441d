"""``scratchgen eval MODEL --train CORPUS [--labelled] [--reference GRAMMAR] [--heldout CORPUS] [-n N] [--json]``.

With ``--labelled`` (a model trained with ``--labelled``) the training and held-out corpora are
``LABEL<TAB>TEXT`` and the report adds the per-label figures of :mod:`scratchgen.evaluation.labels`.
"""

from __future__ import annotations

import argparse
import os

from .options import (
    add_split_options,
    declare_files,
    nonnegative_float,
    nonnegative_int,
    positive_int,
    print_json,
    probability,
    read_labelled_corpus,
)


def _load_reference(spec: str):
    """The reference model named by ``spec``: a saved scratchgen model file (any model with ``logprob``
    serves), or a grammar with its own weights, named as every grammar command names one (a grammar
    file, a Tracery .json or ``builtin:NAME``: :func:`scratchgen.grammar.builtin.resolve_grammar`)."""
    if spec.endswith(".npz") and os.path.isfile(spec):
        from ..io import load

        return load(spec)
    from ..grammar import GrammarModel

    return GrammarModel.from_grammar(spec)


def _eval(args: argparse.Namespace) -> int:
    from ..evaluation.report import evaluate
    from ..io import load

    model = load(args.model)
    labels, train = read_labelled_corpus(args, model, args.train)
    heldout_labels, heldout = read_labelled_corpus(args, model, args.heldout) if args.heldout else (None, None)
    reference = _load_reference(args.reference) if args.reference else None
    decoding = {k: getattr(args, k) for k in ("temperature", "top_k", "top_p") if getattr(args, k) is not None}
    report = evaluate(
        model,
        train,
        reference=reference,
        n=args.n,
        seed=args.seed,
        heldout=heldout,
        max_tokens=args.max_tokens,
        discriminator=not args.no_discriminator,
        labels=labels,
        heldout_labels=heldout_labels,
        **decoding,
    )
    if args.json:
        print_json(report.to_dict(samples=args.samples))
    else:
        print(report.summary())
        if args.samples:
            tok = model.tokenizer_
            for s in report.samples:
                print(tok.detokenize(s))
    return 0


def register(commands, train) -> None:
    """Add this group's commands: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = commands.add_parser(
        "eval",
        help="measure a model's generated text (diversity, novelty, adversarial test)",
        description="Sample from a saved model and report average length, distinct-n, repetition rate, "
        "novelty against the training corpus, the held-out cross-entropy (with --heldout), the "
        "exact log-probability of the samples under a reference grammar (with --reference) and "
        "the held-out accuracy of a discriminator telling real text from the samples "
        "(50% = indistinguishable). A model trained with --labelled is sampled and scored by its marginal "
        "P(x) unless --labelled is given: then --train and --heldout are LABEL<TAB>TEXT and the report adds, "
        "for each label, the cross-entropy given the label against an unlabelled model of the same class and "
        "hyperparameters fitted on the --train text, the classification accuracy (Bayes' rule) and the label "
        "fidelity: the share of -n samples of each label that a classifier trained on the real labelled text "
        "assigns to that label.",
    )
    p.add_argument("model", metavar="MODEL", help="a saved model (.npz)")
    p.add_argument("--train", required=True, metavar="CORPUS", help="the corpus the model was trained on")
    p.add_argument(
        "--heldout",
        default=None,
        metavar="CORPUS",
        help="held-out text: scored by the model, and the discriminator's real text (default: the training corpus)",
    )
    p.add_argument(
        "--reference",
        default=None,
        metavar="GRAMMAR",
        help="the grammar the corpus came from (or any saved model file) to score the samples exactly",
    )
    p.add_argument(
        "--labelled",
        action="store_true",
        help="--train and --heldout are LABEL<TAB>TEXT: add the per-label figures of a labelled model",
    )
    p.add_argument(
        "-n", type=positive_int, default=200, help="how many samples (default 200; with --labelled, also a label)"
    )
    p.add_argument(
        "--seed", type=nonnegative_int, default=0, help="random seed of sampling and of the discriminator (default 0)"
    )
    p.add_argument("--max-tokens", type=positive_int, default=200, help="longest sample in tokens (default 200)")
    p.add_argument(
        "--temperature", type=nonnegative_float, default=None, help="sampling temperature (default 1; 0 is greedy)"
    )
    p.add_argument("--top-k", type=positive_int, default=None, help="sample from the k most probable tokens only")
    p.add_argument(
        "--top-p", type=probability, default=None, help="sample from the smallest set of mass >= p, 0 < p <= 1"
    )
    p.add_argument("--no-discriminator", action="store_true", help="skip the adversarial test")
    add_split_options(p)
    p.add_argument("--samples", action="store_true", help="also print the samples")
    p.add_argument("--json", action="store_true", help="one JSON object with every figure (NaN as null)")
    declare_files(p, inputs=("model", "train", "heldout", "reference"))
    p.set_defaults(func=_eval)
