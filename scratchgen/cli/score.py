"""``scratchgen score``: cross-entropy and perplexity of a corpus under a saved model.

    scratchgen score MODEL CORPUS [--labelled] [--json]

With ``--labelled`` the corpus is ``LABEL<TAB>TEXT`` and each text is scored by log P(x | its label);
without it a labelled model scores each text by its marginal log sum_c P(c) P(x | c). One ``</s>`` a
sequence is counted, ``<s>`` never, an OOV token as ``<unk>``. A model whose scores are not probabilities
(stupid backoff) gets its mean negative log score, never called a perplexity.

One sequence a line (the default ``--mode lines``) and no ``--labelled``, a model that scores as the base
protocol does (the n-gram, the networks) reads the file straight into ids (:func:`scratchgen.corpus.read_ids`)
and scores them without lists of tokens (the n-gram flat from end to end): the same figures as ``score`` of the
lines, to the last bit (tests/test_cli_score_ids.py), in a fraction of the time.
"""

from __future__ import annotations

import argparse

from .options import add_split_options, declare_files, print_json, read_labelled_corpus


def _score(args: argparse.Namespace) -> int:
    from ..io import load

    model = load(args.model)
    if not args.labelled and args.mode == "lines" and model._reads_ids():
        labels = None  # a labelled model is scored by its marginal, as below
        score = model._score_encoded(_read_ids(args, model))
    else:
        labels, corpus = read_labelled_corpus(args, model, args.corpus)
        score = model.score(corpus, labels=labels)
    if not model.normalized:  # e.g. stupid backoff: its scores do not sum to 1, so no perplexity (issue 9, item 24)
        return _print_unnormalized_score(args, model, score)
    # A labelled model says which probability was scored: log P(x | its label), or the marginal.
    scored = {} if model.labels_ is None else {"labels": "given" if labels is not None else "marginal"}
    if args.json:
        print_json(
            {k: v for k, v in score.to_dict().items() if k != "logprob"} | {"logprob_nats": score.logprob} | scored
        )
    else:
        print(f"sequences {score.sequences}  tokens {score.tokens} (</s> included)  oov {score.oov_tokens}")
        print(
            f"cross-entropy {score.cross_entropy_nats:.6f} nats/token = {score.bits_per_token:.6f} bits/token  "
            f"perplexity {score.perplexity:.6f}"
        )
        if scored.get("labels") == "marginal":
            print(
                f"(the marginal P(x) = sum_c P(c) P(x | c) over the model's {len(model.labels_)} labels; "
                "--labelled scores each text under its own label)"
            )
    return 0


def _read_ids(args: argparse.Namespace, model):
    """The corpus (one sequence a line) read straight into the model's ids, a chunk of lines at a time: the
    sequences, ids and OOV count that reading it into token lists and encoding them gives, without the lists."""
    from ..corpus import read_ids
    from ..errors import CorpusError

    encoded = read_ids(args.corpus, model.tokenizer_, model.fitted_vocab(), encoding=args.encoding)
    if not len(encoded):
        raise CorpusError(f"corpus {args.corpus!r} has no non-empty sequence")
    return encoded


def _print_unnormalized_score(args: argparse.Namespace, model, score) -> int:
    """A model whose scores are not probabilities: the mean negative log score, never called a perplexity."""
    what = getattr(model, "smoothing", type(model).__name__).replace("-", " ")
    if args.json:
        print_json(
            {
                "sequences": score.sequences,
                "tokens": score.tokens,
                "oov_tokens": score.oov_tokens,
                "normalized": False,
                "score_nats_per_token": score.cross_entropy_nats,
                "score_bits_per_token": score.bits_per_token,
                "log_score_nats": score.logprob,
            }
        )
    else:
        print(f"sequences {score.sequences}  tokens {score.tokens} (</s> included)  oov {score.oov_tokens}")
        print(
            f"score ({what}, not a probability): {score.cross_entropy_nats:.6f} nats/token = "
            f"{score.bits_per_token:.6f} bits/token (no perplexity: the scores do not sum to 1)"
        )
    return 0


def register(commands, train) -> None:
    """Add ``score``: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = commands.add_parser(
        "score",
        help="cross-entropy and perplexity of a corpus under a model",
        description="Score a corpus: one </s> a sequence counted, <s> never, OOV as <unk>. A model trained with "
        "--labelled is scored by its marginal P(text) = sum_c P(c) P(text | c) unless --labelled gives each "
        "text its label (LABEL<TAB>TEXT lines): then log P(text | label).",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("corpus", metavar="CORPUS")
    add_split_options(p)
    p.add_argument(
        "--labelled",
        action="store_true",
        help="the corpus is LABEL<TAB>TEXT: score log P(text | its label). Without it a model trained with "
        "--labelled is scored by its marginal P(text) = sum over labels c of P(c) P(text | c)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: sequences, tokens, oov_tokens, cross_entropy_nats, bits_per_token, perplexity",
    )
    declare_files(p, inputs=("model", "corpus"))
    p.set_defaults(func=_score)
