"""Command-line subcommands of the grammar family (registered by :func:`scratchgen.cli.build_parser`).

    scratchgen grammar check  GRAMMAR [--json]
    scratchgen grammar sample GRAMMAR [-n N] [--seed S] [--trees] [--json]
    scratchgen grammar score  GRAMMAR CORPUS [--per-sentence] [--json]
    scratchgen grammar parse  GRAMMAR [SENTENCE ...] [--corpus FILE] [--json]
    scratchgen train grammar  GRAMMAR CORPUS -o MODEL [--iterations N]

GRAMMAR is a file in the text format (``.cfg`` or any other name), a Tracery ``.json`` file, or a
built-in grammar: ``builtin:english`` (or the bare name when no such file exists).
"""

from __future__ import annotations

import argparse
import math
import os
import sys


def load_grammar(spec: str):
    """The Grammar named on the command line (file, Tracery JSON file, or built-in)."""
    from ..errors import GrammarError
    from .builtin import builtin, builtin_names
    from .rules import parse_grammar
    from .tracery import from_tracery

    if spec.startswith("builtin:"):
        return builtin(spec)
    if not os.path.exists(spec):
        if spec in builtin_names():
            return builtin(spec)
        raise GrammarError(f"no grammar file {spec!r} (built-in grammars: "
                           f"{', '.join('builtin:' + n for n in builtin_names())})")
    with open(spec, encoding="utf-8") as f:
        text = f.read()
    if spec.endswith(".json"):
        return from_tracery(text)
    return parse_grammar(text)


def _limits(p: argparse.ArgumentParser) -> None:
    from .sampling import DEFAULT_LIMITS

    for name, value in DEFAULT_LIMITS.items():
        p.add_argument("--" + name.replace("_", "-"), type=int, default=value,
                       help=f"stop a derivation past this many {name[4:]} (default {value})")


def _check(args) -> int:
    from ..cli import print_json
    from ..errors import GrammarError
    from .analysis import analyze

    report = analyze(load_grammar(args.grammar))
    if args.json:
        print_json(report.to_dict())
        return 1 if report.errors else 0
    print(f"start {report.start}: {report.nonterminals} nonterminals, {report.terminals} terminals, "
          f"{report.rules} rules")
    for label, names in (("unreachable", report.unreachable), ("non-productive", report.nonproductive),
                         ("nullable", report.nullable), ("left-recursive", report.left_recursive)):
        print(f"{label}: {', '.join(names) if names else '(none)'}")
    print(f"spectral radius of the expected-children matrix: {report.spectral_radius:.6g}")
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if report.errors:
        raise GrammarError("; ".join(report.errors))
    print(f"expected derivation size: {report.expected_derivation_size:.6g} expansions")
    print(f"expected sentence length: {report.expected_length:.6g} tokens")
    print("ok: consistent")
    return 0


def _model(args):
    from .model import GrammarModel

    grammar = load_grammar(args.grammar)
    return GrammarModel(grammar=grammar, max_depth=getattr(args, "max_depth", 10_000),
                        max_expansions=getattr(args, "max_expansions", 1_000_000),
                        max_tokens=getattr(args, "max_tokens", 100_000)).fit([])


def _sample(args) -> int:
    from ..cli import print_json

    model = _model(args)
    tok = model.tokenizer_
    out = model.sample(args.n, seed=args.seed, trees=args.trees)
    rows = []
    for item in out:
        tokens, tree = item if args.trees else (item, None)
        row = {"text": tok.detokenize(tokens), "tokens": tokens}
        if tree is not None:
            row["tree"] = str(tree)
        rows.append(row)
    if args.json:
        print_json({"samples": rows})
    else:
        for row in rows:
            print(row["text"] if "tree" not in row else f"{row['text']}\t{row['tree']}")
    return 0


def _score(args) -> int:
    from ..cli import print_json, read_corpus_args

    model = _model(args)
    corpus = read_corpus_args(args, args.corpus, model.tokenizer_ if args.level is None else None)
    score = model.score(corpus)
    result = {k: v for k, v in score.to_dict().items() if k != "logprob"} | {"logprob_nats": score.logprob}
    if args.per_sentence:
        result["sentence_logprobs"] = model.sentence_logprobs(corpus)
    if args.json:
        print_json(result)
        return 0
    if args.per_sentence:
        for tokens, lp in zip(corpus, result["sentence_logprobs"]):
            print(f"{lp:.6f}\t{model.tokenizer_.detokenize(tokens)}")
    print(f"sequences {score.sequences}  tokens {score.tokens} (</s> included)  oov {score.oov_tokens}")
    print(f"cross-entropy {score.cross_entropy_nats:.6f} nats/token = {score.bits_per_token:.6f} bits/token  "
          f"perplexity {score.perplexity:.6f}")
    if math.isinf(score.logprob):
        impossible = sum(1 for lp in model.sentence_logprobs(corpus) if lp == -math.inf)
        print(f"note: {impossible} sentence(s) cannot be generated by the grammar (probability 0)", file=sys.stderr)
    return 0


def _parse(args) -> int:
    from ..cli import print_json, read_corpus_args

    model = _model(args)
    if args.corpus:
        sentences = read_corpus_args(args, args.corpus, model.tokenizer_ if args.level is None else None)
    else:
        sentences = [model.tokenizer_.tokenize(s) for s in args.sentences]
    rows = []
    for tokens in sentences:
        vit, tree = model.parse(tokens)
        inside = model.parser_.logprob(tokens)
        rows.append({"tokens": tokens, "viterbi_logprob": vit, "logprob": inside,
                     "tree": tree.to_list() if tree is not None else None})
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
    from ..cli import read_corpus_args
    from .model import GrammarModel

    grammar = load_grammar(args.grammar)
    model = GrammarModel(grammar=grammar, iterations=args.iterations, smoothing=args.smoothing)
    corpus = read_corpus_args(args, args.corpus, model.tokenizer_ if args.level is None else None)
    model.fit(corpus)
    model.save(args.output)
    lls = model.log_likelihoods_
    print(f"EM: {len(lls)} passes, training log-likelihood {lls[0]:.4f} -> {lls[-1]:.4f}: {args.output}",
          file=sys.stderr)
    return 0


def _text_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--level", choices=("char", "word"), default=None,
                   help="token level of the corpus (default word: grammar terminals are word tokens)")
    p.add_argument("--lowercase", action="store_true", help="lowercase the corpus")


def register(commands, train) -> None:
    """Add this family's subcommands: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    g = commands.add_parser("grammar", help="check, sample, score and parse with a probabilistic grammar",
                            description="Probabilistic context-free grammars (NLTK PCFG text format, Tracery "
                                        ".json, or builtin:NAME): static checks, sampling, exact scoring, parsing.")
    sub = g.add_subparsers(dest="grammar_command", metavar="COMMAND")
    sub.required = True
    spec_help = "grammar file (.cfg text, .json Tracery) or builtin:NAME"

    p = sub.add_parser("check", help="static analysis: reachability, productivity, left recursion, consistency",
                       description="Check a grammar before use; exits 1 if it is unusable (non-productive "
                                   "symbols, or inconsistent: spectral radius of the expected-children matrix >= 1).")
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("--json", action="store_true", help="one JSON object with the whole analysis")
    p.set_defaults(func=_check)

    p = sub.add_parser("sample", help="draw sentences top-down", description="Sample sentences from a grammar.")
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("-n", type=int, default=5, help="how many sentences (default 5)")
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed, same sentences)")
    p.add_argument("--trees", action="store_true", help="also print each derivation tree")
    p.add_argument("--json", action="store_true", help="one JSON object with the samples")
    _limits(p)
    p.set_defaults(func=_sample)

    p = sub.add_parser("score", help="exact cross-entropy of a corpus (inside probabilities)",
                       description="Score a corpus, one sentence a line, by the grammar's exact probabilities. "
                                   "Same keys as 'scratchgen score --json'; one </s> a sentence is counted. "
                                   "A sentence the grammar cannot generate has probability 0 (log-probability "
                                   "-inf), and then so is the corpus's.")
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("corpus", metavar="CORPUS", help="text file, one sentence a line")
    p.add_argument("--per-sentence", action="store_true", help="add each sentence's log-probability")
    p.add_argument("--json", action="store_true", help="one JSON object: sequences, tokens, oov_tokens, "
                   "cross_entropy_nats, bits_per_token, perplexity, logprob_nats")
    _text_options(p)
    p.set_defaults(func=_score)

    p = sub.add_parser("parse", help="most probable derivation (Viterbi) of sentences",
                       description="Print the best parse tree of each sentence with its log-probability "
                                   "and the sentence's total (inside) log-probability.")
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences to parse")
    p.add_argument("--corpus", default=None, help="parse every line of this file instead")
    p.add_argument("--json", action="store_true", help="one JSON object with the parses (trees as nested lists)")
    _text_options(p)
    p.set_defaults(func=_parse)

    p = train.add_parser("grammar", help="estimate a grammar's rule probabilities by inside-outside EM",
                         description="Fit the rule probabilities of a grammar to a corpus (EM) and save the model.")
    p.add_argument("grammar", metavar="GRAMMAR", help=spec_help)
    p.add_argument("corpus", metavar="CORPUS", help="text file, one sentence a line")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)")
    p.add_argument("--iterations", type=int, default=20, help="EM iterations (default 20)")
    p.add_argument("--smoothing", type=float, default=0.0, help="pseudo-count added to every rule (default 0)")
    _text_options(p)
    p.set_defaults(func=_train)
