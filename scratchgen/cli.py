"""The ``scratchgen`` command line.

    scratchgen train random --kind uniform|unigram [--level char|word] CORPUS -o MODEL
    scratchgen generate MODEL [--prompt TEXT] [-n N] [--max-tokens N] [--temperature T] ...
    scratchgen score MODEL CORPUS [--json]
    scratchgen demo

Each model family adds its own subcommands through ``register(commands, train)`` in its ``cli``
module. A user error prints one line to stderr and exits 1 (2 for a usage error); no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .errors import ScratchgenError

__all__ = ["main", "build_parser"]

FAMILY_CLIS = ("scratchgen.grammar.cli", "scratchgen.ngram.cli", "scratchgen.nn.cli", "scratchgen.evaluation.cli")


# --- option values: checked where the options are parsed, so a bad value is a usage error (exit 2) ---


def _number(text: str, cast, what: str):
    try:
        value = cast(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_at_least(low: int):
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        value = _number(text, int, "an integer")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def int_in(low: int, high: int):
    """An argparse type: an integer from ``low`` to ``high``."""

    def parse(text: str) -> int:
        value = _number(text, int, "an integer")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}, got {value}")
        return value

    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


def float_in(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite float in [low, high] (``low_open``/``high_open`` exclude the ends)."""

    def parse(text: str) -> float:
        value = _number(text, float, "a number")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            span = f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"
            raise argparse.ArgumentTypeError(f"must be in {span}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
positive_float = float_in(0.0, low_open=True)
nonnegative_float = float_in(0.0)
probability = float_in(0.0, 1.0, low_open=True)
fraction = float_in(0.0, 1.0, high_open=True)


def declare_files(parser: argparse.ArgumentParser, inputs: Sequence[str] = (), outputs: Sequence[str] = ()) -> None:
    """Name the arguments that hold files the command reads and writes.

    Before the command runs, :func:`main` refuses an output that is the same file as an input, is
    read-only, is a folder, or sits in a folder that does not exist; while it runs, every writer
    (:func:`scratchgen.io.atomic_write`) refuses to replace any input. One guard for every command.
    """
    parser.set_defaults(file_inputs=tuple(inputs), file_outputs=tuple(outputs))


def _guard_files(args: argparse.Namespace) -> list[str]:
    """The input paths of the command, after checking its outputs against them (see :func:`declare_files`)."""
    from .io import check_output

    def paths(names: Sequence[str]) -> list[str]:
        out: list[str] = []
        for name in names:
            value = getattr(args, name, None)
            if isinstance(value, (list, tuple)):
                out.extend(v for v in value if isinstance(v, str))
            elif isinstance(value, str):
                out.append(value)
        return out

    inputs = [p for p in paths(getattr(args, "file_inputs", ())) if not p.startswith("builtin:")]
    for output in paths(getattr(args, "file_outputs", ())):
        check_output(output, inputs)
    return inputs


# --- helpers the families share --------------------------------------------------------------------


def add_text_options(parser: argparse.ArgumentParser, level_default: str = "char") -> None:
    """``--level``, ``--lowercase``, ``--mode`` and ``--chunk-size``: how a corpus file is read."""
    group = parser.add_argument_group("reading the corpus")
    group.add_argument(
        "--level",
        choices=("char", "word"),
        default=level_default,
        help=f"character or word tokens (default {level_default})",
    )
    group.add_argument("--lowercase", action="store_true", help="lowercase the text after NFC normalisation")
    group.add_argument(
        "--mode",
        choices=("lines", "paragraphs", "chunks"),
        default="lines",
        help="one sequence a line (default), a paragraph, or fixed-length chunks of running text",
    )
    group.add_argument(
        "--chunk-size",
        type=positive_int,
        default=256,
        metavar="T",
        help="tokens a chunk with --mode chunks (default 256)",
    )
    add_encoding_option(group)


def add_encoding_option(parser) -> None:
    parser.add_argument(
        "--encoding",
        default="utf-8",
        metavar="NAME",
        help="the text files' encoding (default utf-8; e.g. latin-1, cp1252)",
    )


def tokenizer_from_args(args: argparse.Namespace):
    from .text import Tokenizer

    return Tokenizer(level=args.level, lowercase=args.lowercase)


def read_corpus_args(args: argparse.Namespace, path: str, tokenizer=None) -> list[list[str]]:
    """The corpus at ``path`` read with the text options (or with the given tokenizer)."""
    from .errors import CorpusError
    from .text import read_corpus

    tokenizer = tokenizer or tokenizer_from_args(args)
    corpus = read_corpus(
        path,
        tokenizer,
        mode=getattr(args, "mode", "lines"),
        chunk_size=getattr(args, "chunk_size", 256),
        encoding=getattr(args, "encoding", "utf-8"),
    )
    if not corpus:
        raise CorpusError(f"corpus {path!r} has no non-empty sequence")
    return corpus


def read_model_corpus(args: argparse.Namespace, model, path: str) -> list[list[str]]:
    """A corpus read with the tokenizer the model remembers (``score``, ``eval``)."""
    return read_corpus_args(args, path, model.tokenizer_)


def print_json(obj: Any) -> None:
    """One JSON object on stdout; a NaN becomes null and an infinity the string "inf" or "-inf"
    (JSON has neither; an infinite log-probability is a fact worth keeping, a NaN is "no value")."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None if math.isnan(value) else str(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    print(json.dumps(clean(obj), ensure_ascii=False))


def add_decoding_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("-n", type=positive_int, default=None, help="how many sequences (default 5; 1 with --beam)")
    group.add_argument("--prompt", default=None, help="text the sequences start with (conditional generation)")
    group.add_argument(
        "--max-tokens", type=nonnegative_int, default=200, help="longest sequence in tokens (default 200)"
    )
    group.add_argument(
        "--min-tokens", type=nonnegative_int, default=0, help="no </s> before this many tokens (default 0)"
    )
    group.add_argument("--temperature", type=nonnegative_float, default=1.0, help="0 is greedy; default 1")
    group.add_argument("--top-k", type=positive_int, default=None, help="sample from the k most probable tokens only")
    group.add_argument(
        "--top-p", type=probability, default=None, help="sample from the smallest set of mass >= p, 0 < p <= 1"
    )
    group.add_argument(
        "--repetition-penalty",
        type=positive_float,
        default=1.0,
        help="divide the probability of tokens already generated by this (>1 discourages)",
    )
    group.add_argument("--ban", action="append", default=[], metavar="TOKEN", help="never emit this token")
    group.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TOKEN",
        help="end a sequence at this token (kept at its end); </s> always ends one",
    )
    group.add_argument("--allow-unk", action="store_true", help="let the model emit <unk> (by default it never does)")
    group.add_argument(
        "--beam",
        type=positive_int,
        default=None,
        metavar="WIDTH",
        help="beam search of this width instead of sampling (prints log-probabilities)",
    )
    group.add_argument(
        "--unk-prompt",
        action="store_true",
        help="map prompt tokens outside the vocabulary to <unk> instead of refusing them",
    )
    group.add_argument("--seed", type=nonnegative_int, default=None, help="random seed (same seed, same text)")


# --- the built-in commands -------------------------------------------------------------------------


def _train_random(args: argparse.Namespace) -> int:
    from .baseline import UniformModel, UnigramModel

    tokenizer = tokenizer_from_args(args)
    corpus = read_corpus_args(args, args.corpus, tokenizer)
    model: UniformModel | UnigramModel
    if args.kind == "uniform":
        model = UniformModel(min_count=args.min_count, tokenizer=tokenizer)
    else:
        model = UnigramModel(k=args.k, min_count=args.min_count, tokenizer=tokenizer)
    model.fit(corpus)
    model.save(args.output)
    print(
        f"trained {args.kind} model on {len(corpus)} sequences, vocabulary {len(model.vocab_)}: {args.output}",
        file=sys.stderr,
    )
    return 0


def _generate(args: argparse.Namespace) -> int:
    """Print samples as each batch is done, so memory stays flat in -n (JSON too: written row by row)."""
    from .decoding import beam_search, iter_generate
    from .io import load

    model = load(args.model)
    tok = model.tokenizer_
    prompt = tok.tokenize(args.prompt) if args.prompt else None
    unk = "unk" if args.unk_prompt else "error"
    if args.min_tokens > args.max_tokens:
        raise ScratchgenError(f"--min-tokens {args.min_tokens} is more than --max-tokens {args.max_tokens}")
    if args.beam is not None:
        if args.n is not None and args.n > args.beam:
            raise ScratchgenError(f"-n {args.n} asks for more sequences than the beam keeps (--beam {args.beam})")
        results = beam_search(
            model,
            width=args.beam,
            prompt=prompt,
            max_tokens=args.max_tokens,
            min_tokens=args.min_tokens,
            banned=args.ban,
            n=args.n or 1,
            prompt_oov=unk,
            allow_unk=args.allow_unk,
        )
        batches = iter([[{"text": tok.detokenize(t), "tokens": t, "logprob": lp} for t, lp in results]])
    else:
        samples = iter_generate(
            model,
            n=5 if args.n is None else args.n,
            prompt=prompt,
            max_tokens=args.max_tokens,
            min_tokens=args.min_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            repetition_penalty=args.repetition_penalty,
            banned=args.ban,
            stop=args.stop,
            allow_unk=args.allow_unk,
            seed=args.seed,
            prompt_oov=unk,
        )
        batches = ([{"text": tok.detokenize(t), "tokens": t} for t in batch] for batch, _ in samples)
    first = True
    if args.json:
        sys.stdout.write('{"samples": [')
    for batch in batches:
        for row in batch:
            if args.json:
                sys.stdout.write(("" if first else ", ") + json.dumps(row, ensure_ascii=False))
            else:
                print(row["text"] if "logprob" not in row else f"{row['logprob']:.4f}\t{row['text']}")
            first = False
        sys.stdout.flush()
    if args.json:
        sys.stdout.write("]}\n")
    return 0


def _score(args: argparse.Namespace) -> int:
    from .io import load

    model = load(args.model)
    score = model.score(read_model_corpus(args, model, args.corpus))
    if not model.normalized:  # e.g. stupid backoff: its scores do not sum to 1, so no perplexity (issue 9, item 24)
        return _print_unnormalized_score(args, model, score)
    if args.json:
        print_json({k: v for k, v in score.to_dict().items() if k != "logprob"} | {"logprob_nats": score.logprob})
    else:
        print(f"sequences {score.sequences}  tokens {score.tokens} (</s> included)  oov {score.oov_tokens}")
        print(
            f"cross-entropy {score.cross_entropy_nats:.6f} nats/token = {score.bits_per_token:.6f} bits/token  "
            f"perplexity {score.perplexity:.6f}"
        )
    return 0


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


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def _add_demo(commands) -> None:
    p = commands.add_parser(
        "demo",
        help="train every generator on a built-in corpus and compare them",
        description="Train the generators on a built-in corpus (or --corpus FILE), "
        "print samples and held-out scores side by side.",
    )
    p.add_argument("--corpus", default=None, help="your own text instead of the built-in grammar's")
    p.add_argument(
        "--level",
        choices=("char", "word"),
        default=None,
        help="token level (default: word for the built-in grammar, char for --corpus)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="save the trained models and a report here")
    add_encoding_option(p)
    p.add_argument("--quick", action="store_true", help="smaller corpus and shorter training")
    declare_files(p, inputs=("corpus",), outputs=())
    p.set_defaults(func=_demo)


class _Parser(argparse.ArgumentParser):
    """argparse with a usage error as one line (exit 2) that says where the help is."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scratchgen",
        description="Text generators from scratch in NumPy: random, grammar, n-gram and RNN.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"scratchgen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    train_parser = commands.add_parser(
        "train",
        help="train a model on a corpus and save it",
        description="Train a model on a corpus file and save it to one file.",
    )
    train = train_parser.add_subparsers(dest="family", metavar="FAMILY")
    train.required = True

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
    declare_files(p, inputs=("corpus",), outputs=("output",))
    p.set_defaults(func=_train_random)

    p = commands.add_parser(
        "generate",
        help="sample text from a saved model",
        description="Sample (or beam-search) sequences from a saved model.",
    )
    p.add_argument("model", metavar="MODEL")
    add_decoding_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object with the samples")
    declare_files(p, inputs=("model",))
    p.set_defaults(func=_generate)

    p = commands.add_parser(
        "score",
        help="cross-entropy and perplexity of a corpus under a model",
        description="Score a corpus: one </s> a sequence counted, <s> never, OOV as <unk>.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("corpus", metavar="CORPUS")
    p.add_argument(
        "--mode",
        choices=("lines", "paragraphs", "chunks"),
        default="lines",
        help="how the corpus is cut into sequences (default lines)",
    )
    p.add_argument("--chunk-size", type=positive_int, default=256, metavar="T")
    add_encoding_option(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: sequences, tokens, oov_tokens, cross_entropy_nats, bits_per_token, perplexity",
    )
    declare_files(p, inputs=("model", "corpus"))
    p.set_defaults(func=_score)

    _add_demo(commands)
    for name in FAMILY_CLIS:
        importlib.import_module(name).register(commands, train)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print("scratchgen: warning: " + " ".join(str(message).split()), file=sys.stderr, flush=True)


def _say(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    print("scratchgen: error: " + " ".join(str(message).split()), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user error is one line on stderr and exit 1 (usage errors: 2, from argparse).

    Set ``SCRATCHGEN_DEBUG=1`` to see the traceback of an unexpected error instead of its one line.
    """
    import numpy as np

    from .io import protected_inputs

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        inputs = _guard_files(args)
        # A warning is one line in the command line's words; NumPy's floating-point warnings are not
        # for a user (the commands check their results: a diverged model is an error of its own).
        with protected_inputs(inputs), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except ScratchgenError as e:
        _say(str(e))
        return 1
    except BrokenPipeError:  # the reader went away (``scratchgen generate ... | head``): nothing to say
        sys.stderr.close()
        return 0
    except OSError as e:
        _say(f"{(e.strerror or str(e)).lower()}: {e.filename or ''}".rstrip(": "))
        return 1
    except KeyboardInterrupt:
        print("scratchgen: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        _say(
            "out of memory: try a smaller model or corpus (SCRATCHGEN_MEMORY_LIMIT sets the limit checked "
            "before large allocations)"
        )
        return 1
    except Exception as e:  # a bug: still one line, and the way to see more
        if os.environ.get("SCRATCHGEN_DEBUG"):
            raise
        _say(
            f"unexpected {type(e).__name__}: {e} (this is a bug in scratchgen; run again with "
            "SCRATCHGEN_DEBUG=1 for the traceback and please report it)"
        )
        return 1
