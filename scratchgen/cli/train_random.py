"""``scratchgen train random``: the uniform and unigram baselines.

    scratchgen train random --kind uniform|unigram [--level char|word] CORPUS -o MODEL

The uniform model gives every token of the vocabulary the same probability, the unigram model its
add-k smoothed frequency: the floor every other generator must beat.
"""

from __future__ import annotations

import argparse
import sys

from .options import (
    add_labelled_option,
    add_text_options,
    declare_files,
    positive_float,
    positive_int,
    read_labelled_args,
    tokenizer_from_args,
)


def _train_random(args: argparse.Namespace) -> int:
    from ..baseline import UniformModel, UnigramModel

    tokenizer = tokenizer_from_args(args)
    labels, corpus = read_labelled_args(args, args.corpus, tokenizer)
    model: UniformModel | UnigramModel
    if args.kind == "uniform":
        model = UniformModel(min_count=args.min_count, tokenizer=tokenizer)
    else:
        model = UnigramModel(k=args.k, min_count=args.min_count, tokenizer=tokenizer)
    model.fit(corpus, labels=labels)
    model.save(args.output)
    shown = f", {len(model.labels_)} labels" if model.labels_ is not None else ""
    print(
        f"trained {args.kind} model on {len(corpus)} sequences, vocabulary {len(model.vocab_)}{shown}: {args.output}",
        file=sys.stderr,
    )
    return 0


def register(commands, train) -> None:
    """Add ``train random``: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = train.add_parser(
        "random",
        help="uniform or unigram random generator",
        description="The random generators: uniform over the vocabulary, or unigram frequencies with add-k smoothing.",
    )
    p.add_argument("corpus", metavar="CORPUS", help="text file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)")
    p.add_argument("--kind", choices=("uniform", "unigram"), default="unigram", help="default unigram")
    p.add_argument("--k", type=positive_float, default=1.0, help="add-k smoothing of the unigram model (default 1)")
    p.add_argument("--min-count", type=positive_int, default=1, help="rarer tokens become <unk> (default 1)")
    add_text_options(p)
    add_labelled_option(p)
    declare_files(p, inputs=("corpus",), outputs=("output",))
    p.set_defaults(func=_train_random)
