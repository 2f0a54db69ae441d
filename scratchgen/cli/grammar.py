"""``scratchgen grammar`` and ``scratchgen train grammar``: the probabilistic grammars on the command line.

    scratchgen grammar check  GRAMMAR [--json]
    scratchgen grammar sample GRAMMAR [-n N] [--seed S] [--trees] [--truncate N] [--labelled] [-o FILE] [--json]
    scratchgen grammar score  GRAMMAR CORPUS [--labelled] [--per-sentence] [--max-length N] [--json]
    scratchgen grammar parse  GRAMMAR [SENTENCE ...] [--corpus FILE] [--max-length N] [--json]
    scratchgen train grammar  GRAMMAR CORPUS -o MODEL [--labelled] [--iterations N] [--prior-weight W] [--quiet]

GRAMMAR is a file in the text format (``.cfg`` or any other name), a Tracery ``.json`` file, or a
built-in grammar: ``builtin:english`` (or the bare name when no such file exists). Every command
names it through the one resolver, :func:`scratchgen.grammar.builtin.resolve_grammar`, which
``scratchgen eval --reference`` uses too.

A chart (scoring, parsing, EM) needs memory quadratic in a sentence's length, so a sentence longer
than ``--max-length`` tokens (default 400: about 200 MiB with the built-in English grammar) is refused
with the estimate, unless a prefix of it already has probability 0 (then it scores -inf at once).

Labels (:mod:`scratchgen.grammar.labelled`): a label names a start symbol. ``sample --labelled`` draws
``LABEL<TAB>TEXT`` lines from a labelled grammar (its start rules are ``S -> label [P(label)]``), the
label being the first rule of each derivation: ``scratchgen grammar sample builtin:labelled --labelled
-n 2000 --seed 0 -o train.tsv`` writes the corpus scratchgen ships
(:func:`scratchgen.datasets.labelled_corpus`). ``score --labelled`` scores such a corpus by the true
log P(x | label) and reports the Bayes-optimal classifier's accuracy on it; ``train grammar --labelled``
learns one set of rule weights a label.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from ..grammar.settings import DEFAULT_LIMITS, DEFAULT_MAX_LENGTH
from .options import (
    Parser,
    add_encoding_option,
    add_labelled_option,
    declare_files,
    nonnegative_float,
    nonnegative_int,
    positive_int,
    print_json,
    read_corpus_args,
    read_labelled_args,
)


def load_grammar(spec: str):
    """The grammar named on the command line: the one resolver (imported here, when a command runs)."""
    from ..grammar.builtin import resolve_grammar

    return resolve_grammar(spec)


def _limits(p: argparse.ArgumentParser) -> None:
    for name, value in DEFAULT_LIMITS.items():
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=positive_int,
            default=value,
            metavar="N",
            help=f"skip a derivation past this many {name[4:]} (default {value:,})",
        )


def _max_length(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-length",
        type=positive_int,
        default=DEFAULT_MAX_LENGTH,
        metavar="N",
        help=f"refuse a sentence longer than this many tokens (default {DEFAULT_MAX_LENGTH}): its "
        "chart needs memory quadratic in its length",
    )


class _IntermixedParser(Parser):
    """A parser that takes options anywhere among its positionals (``parse G the dog --level word``).

    Plain argparse gives a ``nargs="*"`` positional its (empty) share at the first positional and
    then calls the words after an option "unrecognized"; ``parse_known_intermixed_args`` reads
    the options first and the positionals after. It calls ``parse_known_args`` itself, hence the flag.
    """

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            parsed, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False
        if not parsed.sentences and parsed.corpus is None:
            self.error("nothing to parse: give sentences after GRAMMAR, or --corpus FILE")
        if parsed.sentences and parsed.corpus is not None:
            self.error("give sentences or --corpus FILE, not both")
        return parsed, extras


def _check(args) -> int:
    from ..errors import GrammarError
    from ..grammar.analysis import analyze

    report = analyze(load_grammar(args.grammar))
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print_json(report.to_dict())
        return 1 if report.errors else 0
    print(
        f"start {report.start}: {report.nonterminals} nonterminals, {report.terminals} terminals, {report.rules} rules"
    )
    for label, names in (
        ("unreachable", report.unreachable),
        ("non-productive", report.nonproductive),
        ("nullable", report.nullable),
        ("left-recursive", report.left_recursive),
    ):
        print(f"{label}: {', '.join(names) if names else '(none)'}")
    print(f"spectral radius of the expected-children matrix: {report.spectral_radius:.6g}")
    if report.errors:
        raise GrammarError("; ".join(report.errors))
    print(f"expected derivation size: {report.expected_derivation_size:.6g} expansions")
    print(f"expected sentence length: {report.expected_length:.6g} tokens")
    print("ok: consistent" + (f" ({len(report.warnings)} warning(s) above)" if report.warnings else ""))
    return 0


def _model(args):
    from ..grammar.model import GrammarModel

    grammar = load_grammar(args.grammar)
    params = {
        k: getattr(args, k) for k in ("max_depth", "max_expansions", "max_tokens", "max_length") if hasattr(args, k)
    }
    return GrammarModel.from_grammar(grammar, **params)


def _sample(args) -> int:
    """Print each sentence as it is drawn; a derivation past a limit is skipped and counted."""
    from ..errors import GrammarError
    from ..grammar.labelled import start_labels

    model = _model(args)
    tok = model.tokenizer_
    if args.labelled:
        start_labels(model.grammar_)  # a GrammarError unless the start rules are S -> label
    sampler = model.sampler()
    rows, lines = [], []
    trees = args.trees or args.labelled  # the label is the root's child: S -> label
    for item in sampler.iter_sample(args.n, seed=args.seed, trees=trees, truncate=args.truncate, skip=True):
        tokens, tree = item if trees else (item, None)
        row = {"text": tok.detokenize(tokens), "tokens": tokens}
        if args.labelled:
            assert tree is not None
            row["label"] = tree.children[0].label
        if args.trees:
            row["tree"] = str(tree)
        line = "\t".join(row[k] for k in ("label", "text", "tree") if k in row)
        if args.json:
            rows.append(row)
        elif args.output:
            lines.append(line + "\n")
        else:
            print(line, flush=True)
    if sampler.skipped:
        message = (
            f"skipped {sampler.skipped} of {args.n} derivations that passed a limit; the last: "
            f"{sampler.skip_reason} (--truncate N keeps the first N tokens instead)"
        )
        if sampler.skipped == args.n:
            raise GrammarError(message)
        print(f"scratchgen: warning: {message}", file=sys.stderr)
    if args.output:
        from ..io import atomic_write

        text = "".join(lines) if not args.json else "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        atomic_write(args.output, lambda f: f.write(text.encode("utf-8")))
        print(f"wrote {args.n - sampler.skipped} samples: {args.output}", file=sys.stderr)
    elif args.json:
        print_json({"samples": rows, "skipped": sampler.skipped})
    return 0


def _score(args) -> int:
    model = _model(args)
    labels, corpus = read_labelled_args(args, args.corpus, model.tokenizer_ if args.level is None else None)
    bayes = None
    if labels is not None:  # the true labelled model: each label's start symbol, the prior of the start rules
        from ..datasets import bayes_optimal, true_model

        model = true_model(model.grammar_)
        bayes = bayes_optimal(labels, corpus, model.grammar_)
    score, lps = model.score_details(corpus, labels)  # one chart per sentence, for the total and the details
    result = {k: v for k, v in score.to_dict().items() if k != "logprob"} | {"logprob_nats": score.logprob}
    if bayes is not None:
        result["bayes"] = bayes.to_dict()
    if args.per_sentence:
        result["sentence_logprobs"] = lps
    if args.json:
        print_json(result)
        return 0
    if args.per_sentence:
        for tokens, lp in zip(corpus, lps):
            print(f"{lp:.6f}\t{model.tokenizer_.detokenize(tokens)}")
    print(f"sequences {score.sequences}  tokens {score.tokens} (</s> included)  oov {score.oov_tokens}")
    print(
        f"cross-entropy {score.cross_entropy_nats:.6f} nats/token = {score.bits_per_token:.6f} bits/token  "
        f"perplexity {score.perplexity:.6f}"
    )
    if bayes is not None:
        print(
            f"Bayes-optimal accuracy {bayes.accuracy:.4f} on this corpus "
            f"(expected accuracy, mean max_c P(c | x): {bayes.expected_accuracy:.4f})"
        )
        for name, row in bayes.per_label.items():
            print(
                f"  {name}: {row['count']} sentences, prior {row['prior']:.4f}, accuracy {row['accuracy']:.4f}, "
                f"true cross-entropy {row['cross_entropy']:.6f} nats/token"
            )
    if math.isinf(score.logprob):
        impossible = sum(1 for lp in lps if lp == -math.inf)
        print(f"note: {impossible} sentence(s) cannot be generated by the grammar (probability 0)", file=sys.stderr)
    return 0


def _parse(args) -> int:
    from ..text import Tokenizer

    model = _model(args)
    tokenizer = model.tokenizer_
    if args.level is not None or args.lowercase:
        tokenizer = Tokenizer(level=args.level or "word", lowercase=args.lowercase)
    if args.corpus:
        sentences = read_corpus_args(args, args.corpus, tokenizer)
    else:
        sentences = [tokenizer.tokenize(s) for s in args.sentences]
    rows = []
    for tokens in sentences:
        vit, tree = model.parse(tokens)
        inside = model.logprob(tokens) if tree is not None else -math.inf
        rows.append(
            {
                "tokens": tokens,
                "viterbi_logprob": vit,
                "logprob": inside,
                "tree": tree.to_list() if tree is not None else None,
            }
        )
        if not args.json:
            text = model.tokenizer_.detokenize(tokens)
            if tree is None:
                print(f"-inf\t{text}\t(no parse)")
            else:
                print(f"{vit:.6f}\t{inside:.6f}\t{tree}")
    if args.json:
        print_json({"parses": rows})
    return 0


def _train(args) -> int:
    from ..grammar.model import GrammarModel

    grammar = load_grammar(args.grammar)
    model = GrammarModel(
        grammar=grammar,
        iterations=args.iterations,
        smoothing=args.smoothing,
        prior_weight=args.prior_weight,
        max_length=args.max_length,
    )
    labels, corpus = read_labelled_args(args, args.corpus, model.tokenizer_ if args.level is None else None)
    model.fit(corpus, labels=labels, verbose=not args.quiet)
    model.save(args.output)
    lls = model.log_likelihoods_
    shown = f" ({len(model.labels_)} labels: {', '.join(model.labels_.names)})" if model.labels_ is not None else ""
    print(
        f"EM: {len(lls)} passes, training log-likelihood {lls[0]:.4f} -> {lls[-1]:.4f}{shown}: {args.output}",
        file=sys.stderr,
    )
    return 0


def _text_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--level",
        choices=("char", "word"),
        default=None,
        help="token level of the corpus (default word: grammar terminals are word tokens)",
    )
    p.add_argument("--lowercase", action="store_true", help="lowercase the corpus")
    add_encoding_option(p)


def register(commands, train) -> None:
    """Add this group's commands: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    g = commands.add_parser(
        "grammar",
        help="check, sample, score and parse with a probabilistic grammar",
        description="Probabilistic context-free grammars (NLTK PCFG text format, Tracery "
        ".json, or builtin:NAME): static checks, sampling, exact scoring, parsing.",
    )
    sub = g.add_subparsers(dest="grammar_command", metavar="COMMAND")
    sub.required = True
    spec_help = "grammar file (.cfg text, .json Tracery) or builtin:NAME"

    p = sub.add_parser(
        "check",
        help="static analysis: reachability, productivity, left recursion, consistency",
        description="Check a grammar before use; exits 1 if it is unusable (non-productive "
        "symbols, the reserved terminals <s> or </s>, or inconsistent: spectral radius "
        "of the expected-children matrix >= 1). Warns when the weights of a "
        "nonterminal do not sum to 1 (they are renormalised).",
    )
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("--json", action="store_true", help="one JSON object with the whole analysis")
    declare_files(p, inputs=("grammar",))
    p.set_defaults(func=_check)

    p = sub.add_parser(
        "sample",
        help="draw sentences top-down",
        description="Sample sentences from a grammar, each printed as it is drawn. A derivation "
        "that passes a limit (--max-tokens, --max-depth, --max-expansions) is "
        "skipped, and how many were is said on stderr; with --truncate N every "
        "sentence is cut after N tokens instead.",
    )
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("-n", type=positive_int, default=5, help="how many sentences (default 5)")
    p.add_argument("--seed", type=nonnegative_int, default=None, help="random seed (same seed, same sentences)")
    p.add_argument("--trees", action="store_true", help="also print each derivation tree")
    p.add_argument(
        "--truncate",
        type=positive_int,
        default=None,
        metavar="N",
        help="cut each sentence after N tokens (and print its beginning) instead of skipping it",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object with the samples and the skipped count (with -o: one JSON object a line)",
    )
    p.add_argument(
        "--labelled",
        action="store_true",
        help="LABEL<TAB>TEXT lines from a labelled grammar (start rules S -> label): the label is the "
        "first rule of each derivation",
    )
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write the samples to FILE, one a line")
    _limits(p)
    declare_files(p, inputs=("grammar",), outputs=("output",))
    p.set_defaults(func=_sample)

    p = sub.add_parser(
        "score",
        help="exact cross-entropy of a corpus (inside probabilities)",
        description="Score a corpus, one sentence a line, by the grammar's exact probabilities. "
        "Same keys as 'scratchgen score --json'; one </s> a sentence is counted. "
        "A sentence the grammar cannot generate has probability 0 (log-probability "
        "-inf), and then so is the corpus's.",
    )
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("corpus", metavar="CORPUS", help="text file, one sentence a line")
    p.add_argument("--per-sentence", action="store_true", help="add each sentence's log-probability")
    add_labelled_option(
        p,
        "score log P(text | label) with the label's start symbol, and report the Bayes-optimal accuracy "
        "(the grammar must be labelled: start rules S -> label)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: sequences, tokens, oov_tokens, "
        "cross_entropy_nats, bits_per_token, perplexity, logprob_nats",
    )
    _max_length(p)
    _text_options(p)
    declare_files(p, inputs=("grammar", "corpus"))
    p.set_defaults(func=_score)

    p = sub.add_parser(
        "parse",
        help="most probable derivation (Viterbi) of sentences",
        description="Print the best parse tree of each sentence with its log-probability "
        "and the sentence's total (inside) log-probability. Options may come "
        "before or after the sentences.",
    )
    p.__class__ = _IntermixedParser  # argparse makes every subparser of one class; this one reads options anywhere
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences to parse")
    p.add_argument("--corpus", default=None, metavar="FILE", help="parse every line of this file instead")
    p.add_argument("--json", action="store_true", help="one JSON object with the parses (trees as nested lists)")
    _max_length(p)
    _text_options(p)
    declare_files(p, inputs=("grammar", "corpus"))
    p.set_defaults(func=_parse)

    p = train.add_parser(
        "grammar",
        help="estimate a grammar's rule probabilities by inside-outside EM",
        description="Fit the rule probabilities of a grammar to a corpus (EM) and save the model.",
    )
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("corpus", metavar="CORPUS", help="text file, one sentence a line")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)")
    p.add_argument(
        "--iterations",
        type=nonnegative_int,
        default=20,
        help="EM iterations (default 20; 0 keeps the grammar's weights)",
    )
    p.add_argument(
        "--smoothing", type=nonnegative_float, default=0.0, help="pseudo-count added to every rule (default 0)"
    )
    p.add_argument(
        "--prior-weight",
        type=nonnegative_float,
        default=0.0,
        metavar="W",
        help="pseudo-counts each nonterminal's rules share in proportion to the grammar's own weights "
        "(default 0): keeps the rules a label's sentences never use possible",
    )
    add_labelled_option(p, "one set of rule weights a label, each label a start symbol of the grammar")
    p.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    _max_length(p)
    _text_options(p)
    declare_files(p, inputs=("grammar", "corpus"), outputs=("output",))
    p.set_defaults(func=_train)
