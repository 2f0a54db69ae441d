"""Command-line subcommands of the n-gram family.

    scratchgen train ngram --order N --smoothing NAME [--k K] [--discount D] [--level char|word] CORPUS -o MODEL
    scratchgen train ngram --from-arpa FILE [--level char|word] -o MODEL
    scratchgen export-arpa MODEL OUT.arpa
"""

from __future__ import annotations

import argparse
import sys

from ..cli import add_text_options, read_corpus_args, tokenizer_from_args
from ..errors import ScratchgenError
from .smoothing import SMOOTHINGS


def _train(args: argparse.Namespace) -> int:
    from .model import NGramModel

    tokenizer = tokenizer_from_args(args)
    if args.from_arpa:
        if args.corpus:
            raise ScratchgenError("give either a CORPUS to count or --from-arpa FILE, not both")
        model = NGramModel.from_arpa(args.from_arpa, tokenizer=tokenizer, escape=not args.no_escape)
        model.save(args.output)
        print(f"read a {model.order}-gram model from {args.from_arpa} (n-grams per order "
              f"{model.num_ngrams()}): {args.output}", file=sys.stderr)
        return 0
    if not args.corpus:
        raise ScratchgenError("give a CORPUS file to count (or --from-arpa FILE)")
    discount = args.discount
    if discount is not None and len(discount) == 1:
        discount = discount[0]
    cutoffs = args.cutoffs
    model = NGramModel(order=args.order, smoothing=args.smoothing, k=args.k, discount=discount,
                       cutoffs=cutoffs, tokenizer=tokenizer)
    corpus = read_corpus_args(args, args.corpus, tokenizer)
    model.fit(corpus)
    model.save(args.output)
    print(f"trained a {args.order}-gram {args.smoothing} model on {len(corpus)} sequences, vocabulary "
          f"{len(model.vocab_)}, n-grams per order {model.num_ngrams()}: {args.output}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..io import load
    from .model import NGramModel

    model = load(args.model)
    if not isinstance(model, NGramModel):
        raise ScratchgenError(f"{args.model!r} holds a {type(model).__name__}, not an n-gram model")
    model.to_arpa(args.output, escape=not args.no_escape)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def register(commands, train) -> None:
    """Add this family's subcommands: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = train.add_parser("ngram", help="n-gram model (counting + smoothing, KenLM-compatible)",
                         description="Count the n-grams of a corpus and smooth them, or read an ARPA file.")
    p.add_argument("corpus", metavar="CORPUS", nargs="?", help="text file (one sequence a line by default)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)")
    p.add_argument("--order", type=int, default=3, help="N, the longest n-gram (default 3)")
    p.add_argument("--smoothing", choices=SMOOTHINGS, default="modified-kneser-ney",
                   help="default modified-kneser-ney (as KenLM's lmplz)")
    p.add_argument("--k", type=float, default=1.0, help="k of add-k (and of stupid backoff's unigrams); default 1")
    p.add_argument("--discount", type=float, nargs="+", default=None, metavar="D",
                   help="absolute/kneser-ney: D; modified-kneser-ney: D1 D2 D3; stupid-backoff: alpha "
                        "(default: estimated from counts-of-counts; alpha 0.4)")
    p.add_argument("--cutoffs", type=int, nargs="+", default=None, metavar="C",
                   help="one minimum count per order, the first 1, non-decreasing (default: keep all)")
    p.add_argument("--from-arpa", default=None, metavar="FILE",
                   help="read this ARPA file instead of counting (give --level word for a word-level file)")
    p.add_argument("--no-escape", action="store_true",
                   help="ARPA words are literal (no backslash escapes; see scratchgen.ngram.arpa)")
    add_text_options(p)
    p.set_defaults(func=_train)

    p = commands.add_parser("export-arpa", help="write an n-gram model as an ARPA file (KenLM, SRILM)",
                            description="Write a saved n-gram model as an ARPA file (log10 probabilities).")
    p.add_argument("model", metavar="MODEL", help="a saved n-gram model (.npz)")
    p.add_argument("output", metavar="OUT.arpa", help="the ARPA file to write")
    p.add_argument("--no-escape", action="store_true",
                   help="write words literally (refused for tokens holding whitespace)")
    p.set_defaults(func=_export)
