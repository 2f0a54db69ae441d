"""``scratchgen train ngram`` and ``scratchgen export-arpa``: the n-gram models on the command line.

    scratchgen train ngram --order N --smoothing NAME [--k K] [--discount D] [--alpha A] [--level char|word]
                           [--labelled] CORPUS -o MODEL
    scratchgen train ngram ... [--memory SIZE [--temp-dir DIR]] CORPUS -o MODEL
    scratchgen train ngram --from-arpa FILE [--level char|word] -o MODEL
    scratchgen export-arpa MODEL OUT.arpa

Option values are checked where they are parsed (a bad one is a usage error, exit 2); the checks that need two
options together (--discount and --alpha against --smoothing, --cutoffs against --order, --labelled against
--smoothing, --cutoffs, --from-arpa and --mode) run first thing in the command and end the same way.

``--labelled`` reads the corpus as LABEL<TAB>TEXT lines and fits P(x | c) (:mod:`scratchgen.ngram.labelled`);
it takes an interpolated smoothing only (the label's chain ends in the label-free model where theirs ends in
the uniform distribution).

``--discount A`` with ``--smoothing stupid-backoff`` (its factor, before ``--alpha`` existed) still works as a
deprecated alias of ``--alpha A``, with a one-line warning. Warnings go through :mod:`warnings` (as
``FutureWarning``, meant for users of the command line), which ``scratchgen`` prints as one line.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from ..allocator import steady_chunk_memory
from ..errors import CorpusError, ScratchgenError
from ..ngram.settings import DEFAULT_ALPHA, LABELLED_SMOOTHINGS, MAX_ORDER, SMOOTHINGS
from .options import (
    add_text_options,
    byte_size,
    declare_files,
    float_in,
    int_in,
    nonnegative_float,
    positive_float,
    positive_int,
    tokenizer_from_args,
)

#: A corpus (or ARPA) file at least this large is read with a progress bar (smaller ones take a second or two).
PROGRESS_MIN_BYTES = 8 * 2**20


def _usage_checks(args: argparse.Namespace) -> None:
    """The checks that involve two options: a usage error (exit 2) in argparse's format, naming the flags."""
    error = args.usage_error
    if args.from_arpa and args.corpus:
        error("give either a CORPUS to count or --from-arpa FILE, not both")
    if not args.from_arpa and not args.corpus:
        error("give a CORPUS to count (or --from-arpa FILE to read an ARPA model)")
    if args.labelled and args.from_arpa:
        error("argument --labelled: an ARPA file has no labels; give a labelled CORPUS instead of --from-arpa")
    if args.from_arpa:
        if args.dask:
            error("--dask counts a CORPUS; it cannot be used with --from-arpa")
        if args.memory is not None:
            error("--memory bounds the counting of a CORPUS; it cannot be used with --from-arpa")
        return
    if args.temp_dir is not None and args.memory is None:
        error("argument --temp-dir: holds the runs of --memory; give --memory SIZE too")
    if args.memory is not None:
        if args.labelled or args.dask or args.mode != "lines":
            what = "--labelled" if args.labelled else "--dask" if args.dask else f"--mode {args.mode}"
            error(f"argument --memory: counts an unlabelled corpus, one sequence a line, not with {what}")
    d, smoothing = args.discount, args.smoothing
    if args.labelled and args.dask:
        error("argument --labelled: counting on Dask (--dask) is for unlabelled corpora")
    if args.labelled:
        if smoothing not in LABELLED_SMOOTHINGS:
            error(
                f"argument --labelled: needs an interpolated --smoothing ({', '.join(LABELLED_SMOOTHINGS)}), whose "
                f"chain ends in the uniform distribution that the label-free model replaces; got {smoothing}"
            )
        if args.cutoffs is not None and any(c > 1 for c in args.cutoffs):
            error("argument --labelled: does not take --cutoffs")
        if args.mode != "lines":
            error(f"argument --labelled: a labelled corpus is read one LABEL<TAB>TEXT a line, not --mode {args.mode}")
    if args.alpha is not None and smoothing != "stupid-backoff":
        error(f"argument --alpha: --smoothing {smoothing} has no factor alpha (stupid-backoff's)")
    if d is not None:
        if smoothing in ("mle", "add-k", "witten-bell"):
            error(f"argument --discount: --smoothing {smoothing} has no discount")
        if smoothing in ("absolute", "kneser-ney") and not (len(d) == 1 and 0 < d[0] < 1):
            error(
                f"argument --discount: --smoothing {smoothing} takes one discount D with 0 < D < 1, got "
                f"{' '.join(map(str, d))}"
            )
        if smoothing == "modified-kneser-ney" and not (len(d) == 3 and all(0 <= x <= j for j, x in zip((1, 2, 3), d))):
            error(
                f"argument --discount: --smoothing modified-kneser-ney takes three discounts D1 D2 D3 with "
                f"0 <= Dj <= j, got {' '.join(map(str, d))}"
            )
        if smoothing == "stupid-backoff":
            _discount_as_alpha(args)
    c = args.cutoffs
    if c is not None and (len(c) != args.order or c[0] != 1 or any(b < a for a, b in zip(c, c[1:]))):
        error(
            f"argument --cutoffs: give {args.order} counts (one per order of --order {args.order}), the first 1, "
            f"non-decreasing; got {' '.join(map(str, c))}"
        )


def _discount_as_alpha(args: argparse.Namespace) -> None:
    """``--discount A`` with stupid backoff: the deprecated spelling of ``--alpha A`` (a warning), or an error."""
    d = args.discount
    if args.alpha is not None:
        args.usage_error(
            "argument --discount: --smoothing stupid-backoff has no discount; its factor is --alpha, given already"
        )
    if not (len(d) == 1 and 0 < d[0] <= 1):
        args.usage_error(
            f"argument --discount: --smoothing stupid-backoff takes one factor alpha with 0 < alpha <= 1 "
            f"(give it as --alpha), got {' '.join(map(str, d))}"
        )
    warnings.warn(
        f"--discount {d[0]:g} with --smoothing stupid-backoff is deprecated: its factor is --alpha {d[0]:g}",
        FutureWarning,
        stacklevel=2,
    )
    args.alpha, args.discount = d[0], None


def _read_corpus(args: argparse.Namespace, tokenizer, quiet: bool) -> list:
    """The corpus, read with the text options; a progress bar for a large file (issue 9, item 19)."""
    from ..progress import Progress
    from ..text import iter_corpus

    total = None
    if args.mode == "lines" and not quiet:
        with open(args.corpus, "rb") as f:  # counting newlines is fast next to tokenizing them
            total = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b"")) + 1
    corpus = []
    with Progress(total=total, desc=f"reading {args.corpus}", unit="lines", quiet=quiet) as progress:
        for sequence in iter_corpus(
            args.corpus, tokenizer, mode=args.mode, chunk_size=args.chunk_size, encoding=args.encoding
        ):
            corpus.append(sequence)
            progress.update(1)
        if total is not None and progress.n < total:  # the empty lines, read and skipped
            progress.update(total - progress.n)
    if not corpus:
        raise CorpusError(f"corpus {args.corpus!r} has no non-empty sequence")
    return corpus


def _fit_file(args: argparse.Namespace, model, quiet: bool) -> int:
    """Count the corpus a chunk of lines at a time straight into ids, merging each chunk's distinct n-grams into
    running totals, then smooth (:meth:`NGramModel.fit_file <scratchgen.ngram.model.NGramModel.fit_file>`); with
    ``--memory SIZE`` within that budget, spilling sorted runs to ``--temp-dir`` and smoothing from them only
    when the distinct n-grams outgrow it. The number of sequences."""
    from ..corpus import check_corpus_file
    from ..progress import Progress

    check_corpus_file(args.corpus)
    steady_chunk_memory()  # the command only: the library leaves a user's allocator alone (scratchgen/allocator.py)
    total = None
    if not quiet:
        with open(args.corpus, "rb") as f:  # counting newlines is fast next to tokenizing them
            total = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b"")) + 1
    report: dict = {}
    with Progress(total=total, desc=f"reading and counting {args.corpus}", unit="lines", quiet=quiet) as progress:
        try:
            model.fit_file(
                args.corpus,
                memory=args.memory,
                temp_dir=args.temp_dir,
                encoding=args.encoding,
                progress=progress,
                report=report,
                output=args.output,  # saved by fit_file: a spilled model is written a block at a time
            )
        except CorpusError as e:  # e.g. a literal <s>: say which file holds it
            message = str(e)
            raise CorpusError(message if args.corpus in message else f"corpus {args.corpus!r}: {message}") from None
    return report["sequences"]


def _train(args: argparse.Namespace) -> int:
    from ..ngram.model import NGramModel
    from ..progress import Progress
    from ..text import Tokenizer

    _usage_checks(args)
    if args.no_escape:
        warnings.warn(
            "--no-escape is deprecated and does nothing: ARPA words are always read as they are (as KenLM reads them)",
            FutureWarning,
            stacklevel=2,
        )
    if args.from_arpa:
        given = args.level is not None
        tokenizer = Tokenizer(args.level, lowercase=args.lowercase) if given else None
        size = os.path.getsize(args.from_arpa) if os.path.isfile(args.from_arpa) else 0
        quiet = args.quiet or size < PROGRESS_MIN_BYTES
        with Progress(total=size, desc=f"reading {args.from_arpa}", unit="B", quiet=quiet) as progress:
            model = NGramModel.from_arpa(args.from_arpa, tokenizer=tokenizer, progress=progress)
        if not given and args.lowercase:
            model.tokenizer = Tokenizer(model.tokenizer_.level, lowercase=True)
        model.save(args.output)
        level = model.tokenizer_.level
        how = "as --level says" if given else "inferred from its tokens; --level overrides"
        print(
            f"read a {model.order}-gram {level}-level model from {args.from_arpa} ({level} level {how}; n-grams "
            f"per order {model.num_ngrams()}): {args.output}",
            file=sys.stderr,
        )
        return 0
    args.level = args.level or "char"
    tokenizer = tokenizer_from_args(args)
    discount = args.discount
    if discount is not None and len(discount) == 1:
        discount = discount[0]
    alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
    model = NGramModel(
        order=args.order,
        smoothing=args.smoothing,
        k=args.k,
        discount=discount,
        alpha=alpha,
        cutoffs=args.cutoffs,
        tokenizer=tokenizer,
    )
    model._check_fit_params()  # before reading a large corpus
    if args.dask:
        return _train_dask(args, model)
    quiet = args.quiet or not os.path.isfile(args.corpus) or os.path.getsize(args.corpus) < PROGRESS_MIN_BYTES
    if args.labelled:
        from ..corpus import read_corpus

        labels, corpus = read_corpus(args.corpus, tokenizer, labelled=True, encoding=args.encoding)
        if not corpus:
            raise CorpusError(f"corpus {args.corpus!r} has no labelled example")
        n_sequences = len(corpus)
        with Progress(total=args.order, desc="counting n-grams", unit="orders", quiet=quiet) as progress:
            try:
                model.fit(corpus, labels=labels, progress=progress)
            except CorpusError as e:  # e.g. a literal <s>: say which file holds it
                raise CorpusError(f"corpus {args.corpus!r}: {e}") from None
    elif args.mode == "lines":  # one sequence a line: chunks straight to ids (--memory: spilled only if needed)
        n_sequences = _fit_file(args, model, quiet)  # saves the model to args.output too
    else:
        corpus = _read_corpus(args, tokenizer, quiet)
        n_sequences = len(corpus)
        with Progress(total=args.order, desc="counting n-grams", unit="orders", quiet=quiet) as progress:
            try:
                model.fit(corpus, progress=progress)
            except CorpusError as e:  # e.g. a literal <s>: say which file holds it
                raise CorpusError(f"corpus {args.corpus!r}: {e}") from None
    if args.labelled or args.mode != "lines":
        model.save(args.output)
    which = "" if model.labels_ is None else f" with {len(model.labels_)} labels ({_label_list(model.labels_)})"
    print(
        f"trained a {args.order}-gram {args.smoothing} model{which} on {n_sequences} sequences, vocabulary "
        f"{len(model.vocab_)}, n-grams per order {model.num_ngrams()}: {args.output}",
        file=sys.stderr,
    )
    return 0


def _train_dask(args: argparse.Namespace, model) -> int:
    """``--dask ADDRESS``: the workers read and count the corpus, this process smooths the merged counts."""
    from ..ngram.distributed import connect

    if args.mode != "lines":
        raise CorpusError("--dask reads the corpus one sequence a line: it cannot be used with --mode")
    from ..corpus import check_corpus_file

    check_corpus_file(args.corpus)
    client = connect(args.dask)
    try:
        workers = len(client.scheduler_info().get("workers", {}))
        print(f"counting {args.corpus} on {args.dask} ({workers} workers)", file=sys.stderr)
        model.fit_dask(
            os.path.abspath(args.corpus), client=client, blocksize=args.partition_size, encoding=args.encoding
        )
    finally:
        client.close()
        if args.dask.startswith("local:"):
            client.cluster.close()
    model.save(args.output)
    print(
        f"trained a {args.order}-gram {args.smoothing} model on Dask ({args.dask}), vocabulary "
        f"{len(model.vocab_)}, n-grams per order {model.num_ngrams()}: {args.output}",
        file=sys.stderr,
    )
    return 0


def _label_list(labels, limit: int = 5) -> str:
    shown = ", ".join(labels.names[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def _export(args: argparse.Namespace) -> int:
    from ..io import load
    from ..ngram.model import NGramModel

    if args.no_escape:
        warnings.warn(
            "--no-escape is deprecated and does nothing: ARPA words are always written as they are "
            "(as KenLM's lmplz writes them)",
            FutureWarning,
            stacklevel=2,
        )
    model = load(args.model)
    if not isinstance(model, NGramModel):
        raise ScratchgenError(f"{args.model!r} holds a {type(model).__name__}, not an n-gram model")
    model.to_arpa(args.output, label=args.label)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def register(commands, train) -> None:
    """Add this group's commands: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = train.add_parser(
        "ngram",
        help="n-gram model (counting + smoothing, KenLM-compatible)",
        description="Count the n-grams of a corpus and smooth them, or read an ARPA file.",
    )
    p.add_argument("corpus", metavar="CORPUS", nargs="?", help="text file (one sequence a line by default)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)")
    p.add_argument("--order", type=int_in(1, MAX_ORDER), default=3, help="N, the longest n-gram (default 3)")
    p.add_argument(
        "--smoothing",
        choices=SMOOTHINGS,
        default="modified-kneser-ney",
        help="default modified-kneser-ney (as KenLM's lmplz)",
    )
    p.add_argument(
        "--k", type=positive_float, default=1.0, help="k > 0 of add-k (and of stupid backoff's unigrams); default 1"
    )
    p.add_argument(
        "--discount",
        type=nonnegative_float,
        nargs="+",
        default=None,
        metavar="D",
        help="absolute/kneser-ney: D in (0, 1); modified-kneser-ney: D1 D2 D3 (0 <= Dj <= j) "
        "(default: estimated from counts-of-counts)",
    )
    p.add_argument(
        "--alpha",
        type=float_in(0, 1, low_open=True),
        default=None,
        metavar="A",
        help="stupid-backoff: its backoff factor alpha in (0, 1] (default 0.4)",
    )
    p.add_argument(
        "--cutoffs",
        type=positive_int,
        nargs="+",
        default=None,
        metavar="C",
        help="one minimum count per order, the first 1, non-decreasing (default: keep all)",
    )
    p.add_argument(
        "--from-arpa",
        default=None,
        metavar="FILE",
        help="read this ARPA file instead of counting; its level (char or word) is inferred from its "
        "tokens unless --level is given",
    )
    p.add_argument("--no-escape", action="store_true", help=argparse.SUPPRESS)  # deprecated: words are always raw
    p.add_argument(
        "--labelled",
        action="store_true",
        help="the corpus is one LABEL<TAB>TEXT example a line: fit P(x | label), each label backing off to the "
        "label-free model (interpolated smoothings only)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar while reading and counting a large corpus (or ARPA file)",
    )
    dask = p.add_argument_group("counting on a Dask cluster (pip install 'scratchgen[dask]')")
    dask.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="count on the Dask scheduler at ADDRESS (e.g. tcp://host:8786), or local:N for N worker "
        "processes on this machine; the workers read CORPUS at the same path, only counts move",
    )
    dask.add_argument(
        "--partition-size",
        type=byte_size,
        default=64 * 2**20,
        metavar="SIZE",
        help="bytes of the corpus a worker counts at a time (default 64M)",
    )
    spill = p.add_argument_group("corpora bigger than memory")
    spill.add_argument(
        "--memory",
        type=byte_size,
        default=None,
        metavar="SIZE",
        help="bound the memory of counting and smoothing to SIZE (e.g. 500M, 4G): the corpus is counted in "
        "chunks as without it, and when the distinct n-grams outgrow SIZE the counts spill to disk as sorted runs "
        "and are merged, as lmplz -S does, then are smoothed from disk a block at a time (the finished model is "
        "held in memory); the same model either way (default: chunks of 1M characters, 2M at word level, no spill)",
    )
    spill.add_argument(
        "--temp-dir",
        default=None,
        metavar="DIR",
        help="where --memory writes its runs (a temporary folder inside DIR, removed at the end; "
        "default: the system's temporary folder)",
    )
    add_text_options(p)
    p.set_defaults(level=None, usage_error=p.error, func=_train)  # level None: "char", or inferred from an ARPA file
    declare_files(p, inputs=("corpus", "from_arpa"), outputs=("output",))

    p = commands.add_parser(
        "export-arpa",
        help="write an n-gram model as an ARPA file (KenLM, SRILM)",
        description="Write a saved n-gram model as an ARPA file (log10 probabilities), "
        "words as KenLM's lmplz writes them.",
    )
    p.add_argument("model", metavar="MODEL", help="a saved n-gram model (.npz)")
    p.add_argument("output", metavar="OUT.arpa", help="the ARPA file to write")
    p.add_argument(
        "--label",
        default=None,
        metavar="L",
        help="a labelled model is written one label at a time: P(w | L, h) exactly, every word listed after "
        "each history it depends on (large for a word vocabulary)",
    )
    p.add_argument("--no-escape", action="store_true", help=argparse.SUPPRESS)  # deprecated: words are always raw
    declare_files(p, inputs=("model",), outputs=("output",))
    p.set_defaults(func=_export)
