"""The pieces every command shares: option types, file declarations, text and decoding options, JSON output.

Option values are checked where they are parsed, by the argparse types here (``positive_int``,
``probability``, ``int_at_least(k)``, ``float_in(...)``...), so a bad value is a usage error (exit 2).
Each command declares the files it reads and writes (:func:`declare_files`); :func:`scratchgen.cli.main`
checks them before the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

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
            left = "(" if low_open or low is None else "["  # an infinite end is never in: the value is finite
            right = ")" if high_open or high is None else "]"
            span = f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"
            raise argparse.ArgumentTypeError(f"must be in {span}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_at_least(1)

_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def byte_size(text: str) -> int:
    """An argparse type: a size in bytes, with an optional binary unit K, M, G or T (``64M``, ``1.5G``).

    >>> byte_size("64M"), byte_size("1k"), byte_size("1000")
    (67108864, 1024, 1000)
    """
    body = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = body[-1:] if body[-1:] in _SIZE_UNITS and body[-1:] else ""
    number = body[: len(body) - len(unit)]
    value = _number(number, float, "a size (a number with an optional unit K, M, G or T, as in 64M)")
    size = int(value * _SIZE_UNITS[unit])
    if size < 1:
        raise argparse.ArgumentTypeError(f"must be a size of at least 1 byte, got {text!r}")
    return size


byte_size.__name__ = "size"
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


def guard_files(args: argparse.Namespace) -> list[str]:
    """The input paths of the command, after checking its outputs against them (see :func:`declare_files`)."""
    from ..io import check_output

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


# --- options and output the commands share --------------------------------------------------------


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
    add_split_options(group)


def add_split_options(parser) -> None:
    """``--mode``, ``--chunk-size`` and ``--encoding``: how a text file is read and cut into sequences
    (the level and case come from the model where one is given: ``score``, ``eval``)."""
    parser.add_argument(
        "--mode",
        choices=("lines", "paragraphs", "chunks"),
        default="lines",
        help="one sequence a line (default), a paragraph, or fixed-length chunks of running text",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=256,
        metavar="T",
        help="tokens a chunk with --mode chunks (default 256)",
    )
    add_encoding_option(parser)


def add_encoding_option(parser) -> None:
    parser.add_argument(
        "--encoding",
        default="utf-8",
        metavar="NAME",
        help="the text files' encoding (default utf-8; e.g. latin-1, cp1252)",
    )


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options every trained network shares (``train rnn``, ``train mlp``): the recipe of
    :class:`~scratchgen.nn.config.TrainConfig`, the dtype, the seed, checkpoints, ``--resume``, the curve."""
    parser.add_argument(
        "--seq-len",
        type=positive_int,
        default=64,
        help="positions a training chunk T (an RNN's steps of truncated BPTT; default 64)",
    )
    parser.add_argument("--batch", type=positive_int, default=32, help="parallel streams or sequences B (default 32)")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="learning rate (default 3e-3)")
    parser.add_argument("--epochs", type=positive_int, default=20, help="passes over the data, at most (default 20)")
    parser.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "adagrad"), default="adam", help="default adam")
    parser.add_argument("--weight-decay", type=nonnegative_float, default=0.01, help="AdamW's decay (default 0.01)")
    parser.add_argument("--dropout", type=fraction, default=0.0, help="dropout rate on the top states (default 0)")
    parser.add_argument(
        "--schedule",
        choices=("constant", "cosine", "step"),
        default="cosine",
        help="learning-rate schedule (default cosine)",
    )
    parser.add_argument("--warmup", type=nonnegative_int, default=0, help="steps of linear warm-up (default 0)")
    parser.add_argument(
        "--clip", type=nonnegative_float, default=5.0, help="largest global gradient norm; 0: no clipping (default 5)"
    )
    parser.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many optimiser steps")
    parser.add_argument(
        "--time-limit", type=positive_float, default=None, metavar="SECONDS", help="stop after this long"
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what --time-limit counts: wall-clock or this process's CPU seconds (default wall)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="threads of a training step, each computing a shard of the batch on its own core (an LSTM's shards "
        "run in worker processes; a Transformer too small for shards overlaps instead: the second core takes the "
        "large products) "
        "(default 1; on an idle 2-core machine 2 made the Transformer at E 128, T 128 and the RNN at H 512 "
        "1.4x faster, the GRU and LSTM at H 256 1.2x, not the RNN at H 256; use it when no other work needs "
        "the cores; results differ only by rounding)",
    )
    parser.add_argument("--valid-fraction", type=fraction, default=0.1, help="held out for validation (default 0.1)")
    parser.add_argument(
        "--patience",
        type=nonnegative_int,
        default=3,
        help="early stopping after this many evaluations without improvement; 0: never (default 3)",
    )
    parser.add_argument(
        "--eval-every",
        type=positive_int,
        default=None,
        metavar="STEPS",
        help="also evaluate every this many steps (default: at the end of each epoch)",
    )
    parser.add_argument("--min-count", type=positive_int, default=1, help="rarer tokens become <unk> (default 1)")
    parser.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="float32 (default: twice as fast) or float64"
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH", help="write a checkpoint here as training goes")
    parser.add_argument("--checkpoint-every", type=positive_int, default=200, metavar="STEPS", help="default 200")
    parser.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue from a checkpoint (same corpus and options): same result as never stopping",
    )
    parser.add_argument(
        "--curve",
        default=None,
        metavar="CSV",
        help="where the learning curve (train and validation loss vs tokens seen) goes; "
        "default MODEL's name with .curve.csv",
    )
    parser.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="also draw the curve as a PNG (needs matplotlib: pip install 'scratchgen[plot]')",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def tokenizer_from_args(args: argparse.Namespace):
    from ..text import Tokenizer

    return Tokenizer(level=args.level, lowercase=args.lowercase)


def read_corpus_args(args: argparse.Namespace, path: str, tokenizer=None) -> list[list[str]]:
    """The corpus at ``path`` read with the text options (or with the given tokenizer)."""
    from ..errors import CorpusError
    from ..text import read_corpus

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


def add_labelled_option(parser, what: str = "train one model of P(text | label)") -> None:
    """``--labelled``: the corpus is one example a line, LABEL<TAB>TEXT."""
    parser.add_argument(
        "--labelled", action="store_true", help=f"the corpus is one example a line, LABEL<TAB>TEXT: {what}"
    )


def read_labelled_args(args: argparse.Namespace, path: str, tokenizer=None) -> tuple[list[str] | None, list[list[str]]]:
    """``(labels, corpus)`` with ``--labelled`` (LABEL<TAB>TEXT lines), else ``(None, corpus)``."""
    from ..errors import CorpusError
    from ..text import read_corpus

    if not getattr(args, "labelled", False):
        return None, read_corpus_args(args, path, tokenizer)
    if getattr(args, "mode", "lines") != "lines":
        raise CorpusError("--labelled reads one example a line: it cannot be used with --mode paragraphs or chunks")
    labels, corpus = read_corpus(
        path, tokenizer or tokenizer_from_args(args), labelled=True, encoding=getattr(args, "encoding", "utf-8")
    )
    if not corpus:
        raise CorpusError(f"corpus {path!r} has no non-empty example")
    return labels, corpus


def require_labels(model, flag: str):
    """The model's :class:`~scratchgen.labels.LabelSet`; a one-line ``LabelError`` naming ``flag`` if it has none."""
    from ..errors import LabelError

    labels = getattr(model, "labels_", None)
    if labels is None:
        raise LabelError(
            f"{flag}: this {type(model).__name__} has no labels; train it on a labelled corpus "
            "(LABEL<TAB>TEXT lines) with --labelled first"
        )
    return labels


def check_label(model, label: str, flag: str = "--label") -> int:
    """The id of ``label`` in a labelled model; a one-line ``LabelError`` naming ``flag`` and the known labels."""
    from ..errors import LabelError

    known = require_labels(model, f"{flag} {label!r}")
    try:
        return known.id(label)
    except LabelError as e:
        raise LabelError(f"{flag}: {e}") from None


def check_corpus_labels(model, labels: list[str], path: str) -> None:
    """Every label of a labelled corpus must be one the model knows; the first that is not is a one-line
    ``LabelError`` that names the corpus and lists the known labels."""
    from ..errors import LabelError

    known = require_labels(model, "--labelled")
    try:
        known.ids(labels, len(labels))
    except LabelError as e:
        raise LabelError(f"corpus {path!r}: {e}") from None


def read_labelled_corpus(args: argparse.Namespace, model, path: str) -> tuple[list[str] | None, list[list[str]]]:
    """``(labels, corpus)`` read with the model's tokenizer: labels only with ``--labelled`` (then each one
    checked against the model's), else ``(None, corpus)`` read as ``score`` reads any corpus."""
    if not getattr(args, "labelled", False):
        return None, read_model_corpus(args, model, path)
    require_labels(model, "--labelled")
    labels, corpus = read_labelled_args(args, path, model.tokenizer_)
    assert labels is not None
    check_corpus_labels(model, labels, path)
    return labels, corpus


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


@functools.cache
def _help_width() -> int:
    """The width argparse's help formatter takes by default (the terminal's columns - 2), asked once: argparse
    makes a formatter at every ``add_argument``, and each asked the terminal (a tenth of start-up)."""
    return shutil.get_terminal_size().columns - 2


class Parser(argparse.ArgumentParser):
    """argparse with a usage error as one line (exit 2) that says where the help is."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        return self.formatter_class(prog=self.prog, width=_help_width())  # type: ignore[call-arg]  # HelpFormatter takes it

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


# --- training a network and checking its gradients (train rnn, train mlp, gradcheck) ---------------


def report_gradcheck(args: argparse.Namespace, errors: dict, what: str) -> int:
    """Print the relative error of each parameter (or one JSON object with ``--json``); 1 if any is too large."""
    worst = max(errors.values(), key=lambda e: math.inf if math.isnan(e) else e)  # a NaN is the worst
    ok = all(e < args.tolerance for e in errors.values())  # False for NaN too
    if args.json:
        print_json({"relative_errors": errors, "worst": worst, "tolerance": args.tolerance, "ok": ok})
    else:
        print(what)
        for name, err in errors.items():
            print(f"  {name:8s} relative error {err:.2e}")
        print(f"worst {worst:.2e}: {'OK' if ok else 'FAILED'} (tolerance {args.tolerance:g})")
    return 0 if ok else 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python is, so it unwinds exactly like Ctrl-C: every ``finally`` runs (no half-written
    file, no temporary folder left behind)."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within this block SIGTERM stops a command the way Ctrl-C does, by raising :class:`Terminated` (only in the
    main thread: only it may set signal handlers). :func:`scratchgen.cli.main` runs every command in it.

    Python runs a signal's handler between two bytecodes of the main thread, wherever they are: sometimes in a
    destructor or a weak-reference callback (the import system has one for its module locks, run as a module
    finishes importing). An exception raised there is printed as "Exception ignored" and dropped, and the
    signal with it. So while the block runs, a :class:`KeyboardInterrupt` (:class:`Terminated` included) that
    reaches ``sys.unraisablehook`` has its signal sent again, from a helper thread a moment later: its handler
    then runs at the next point, and the command stops."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    def unraisable(info) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            signum = signal.SIGTERM if isinstance(info.exc_value, Terminated) else signal.SIGINT
            # not from here: a handler run inside this hook would be dropped again
            threading.Timer(0.01, os.kill, (os.getpid(), signum)).start()
        else:
            previous_hook(info)

    previous, previous_hook = signal.signal(signal.SIGTERM, handler), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous)


def _stopped_early(args: argparse.Namespace, signal_name: str) -> None:
    """What an interrupted run left behind, and how to go on."""
    print(
        f"scratchgen: {signal_name}: training stopped; {args.output} was not written (any old file there is unchanged)",
        file=sys.stderr,
    )
    if args.checkpoint and os.path.exists(args.checkpoint):
        print(
            f"scratchgen: the last checkpoint is {args.checkpoint}: resume with the same command and "
            f"--resume {args.checkpoint}",
            file=sys.stderr,
        )
    else:
        print(
            "scratchgen: no checkpoint was written, so the progress is lost; use --checkpoint PATH to be able to "
            "resume",
            file=sys.stderr,
        )


def _default_curve(args: argparse.Namespace) -> str:
    """MODEL's name with .curve.csv, refused before training if that is one of the inputs."""
    from ..errors import OutputError
    from ..io import check_output

    curve = os.path.splitext(args.output)[0] + ".curve.csv"
    try:
        check_output(curve, [args.corpus, args.resume])
    except OutputError as e:
        reason = str(e).split(": ", 1)[-1].split("; ")[0]
        raise OutputError(
            f"the learning curve would go to {curve!r} (MODEL's name with .curve.csv), but {reason}; give --curve CSV"
        ) from None
    return curve


def _validation_note(args: argparse.Namespace, corpus) -> str:
    """Why there is no validation loss, in the command line's words."""
    if args.valid_fraction == 0:
        return "no validation data (--valid-fraction 0)"
    note = f"no validation data: {len(corpus)} sequence(s) leave none for --valid-fraction {args.valid_fraction:g}"
    if args.mode != "chunks":
        note += "; --mode chunks cuts a long text into pieces, so that a part can be held out"
    return note


def _train_config(args: argparse.Namespace):
    """The training recipe the options ask for (0 means "none" for --clip and --patience)."""
    from ..nn.config import TrainConfig

    return TrainConfig(
        seq_len=args.seq_len,
        batch_size=args.batch,
        lr=args.lr,
        epochs=args.epochs,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        dropout=args.dropout,
        lr_schedule=args.schedule,
        warmup=args.warmup,
        clip=args.clip or None,
        max_steps=args.max_steps,
        running_text=args.mode == "chunks",
        valid_fraction=args.valid_fraction,
        patience=args.patience or None,
        eval_interval=args.eval_every,
        min_count=args.min_count,
        seed=args.seed,
        time_limit=args.time_limit,
        clock=args.clock,
        threads=args.threads,
    )


def _callbacks(args: argparse.Namespace, curve_writer) -> list:
    """Progress (unless --quiet), checkpoints (with --checkpoint) and the learning curve."""
    from ..nn.callbacks import Callback, Checkpoint, ShowProgress

    callbacks: list[Callback] = [] if args.quiet else [ShowProgress()]
    if args.checkpoint:
        callbacks.append(Checkpoint(args.checkpoint, every=args.checkpoint_every))
    return callbacks + [curve_writer]


def train_network(args: argparse.Namespace, make_model, family: str, shape: str) -> int:
    """Read the corpus, train ``make_model(tokenizer)`` by the options of :func:`add_training_options`, save it.

    ``family`` ("RNN", "MLP") and ``shape`` ("hidden 256, 1 layer(s)") name the model in the summary line.
    """
    from ..corpus import read_corpus as read_labelled
    from ..errors import CorpusError
    from ..io import check_output
    from ..nn.callbacks import Curve
    from ..text import is_running_text

    if args.resume:  # --checkpoint CK --resume CK is fine
        for output in (args.output, args.curve, args.plot):
            if output:
                check_output(output, [args.resume])
    curve = args.curve or _default_curve(args)
    if args.labelled and args.mode == "chunks":
        from ..errors import LabelError

        raise LabelError("--labelled reads one example a line (LABEL<TAB>TEXT): it cannot be --mode chunks")
    if args.labelled:
        args.mode, read_as = "lines", " of labelled lines"
    elif args.mode is None:
        args.mode = "chunks" if is_running_text(args.corpus, args.encoding) else "lines"
        read_as = f" read as {'running text' if args.mode == 'chunks' else 'one sequence a line'} (--mode {args.mode})"
    else:
        read_as = ""
    if args.plot:
        from ..evaluation.curves import require_matplotlib

        require_matplotlib()  # before training, not after an hour of it
    tokenizer = tokenizer_from_args(args)
    labels = None
    if args.labelled:
        labels, corpus = read_labelled(args.corpus, tokenizer, labelled=True, encoding=args.encoding)
        if not corpus:
            raise CorpusError(f"corpus {args.corpus!r} has no non-empty labelled example")
    else:
        corpus = read_corpus_args(args, args.corpus, tokenizer)
    model = make_model(tokenizer)
    curve_writer = Curve(curve)
    try:
        model.fit(
            corpus,
            labels=labels,
            config=_train_config(args),
            resume=args.resume,
            callbacks=_callbacks(args, curve_writer),
        )
    except Terminated:
        _stopped_early(args, "terminated (SIGTERM)")
        return 143
    except KeyboardInterrupt:
        _stopped_early(args, "interrupted")
        return 130
    model.save(args.output)
    written = [curve] if curve_writer.written else []
    if args.plot and written:
        from ..evaluation.curves import plot_curve

        plot_curve(curve, args.plot, title=f"{family} training curve: {os.path.basename(args.output)}")
        written.append(args.plot)
    if written:
        print(f"learning curve: {', '.join(written)}", file=sys.stderr)
    print(_summary(args, model, corpus, read_as, f"{family} ({shape}"), file=sys.stderr)
    return 0


def _summary(args: argparse.Namespace, model, corpus, read_as: str, what: str) -> str:
    """The one line a training command ends with: the data, the vocabulary, the loss and the file."""
    from ..nn.train import worse_than_uniform

    V = len(model.vocab_)
    if not model.has_validation_:
        loss = _validation_note(args, corpus)
        if model.worse_than_uniform_:
            loss += f"; the training loss went well above ln V = {math.log(V):.2f} (worse than uniform): lower --lr"
    elif math.isfinite(model.valid_loss_):
        loss = f"best validation loss {model.valid_loss_:.4f} nats/token"
        if worse_than_uniform(model.valid_loss_, V):
            loss += (
                f", worse than a uniform guess (ln V = {math.log(V):.2f}): the network did not learn; "
                f"lower --lr (it is {args.lr:g})"
            )
    else:
        loss = "no finite validation loss"
    finished = "resumed a finished run, nothing trained; " if model.resumed_finished_ else ""
    if model.restores_:
        loss += (
            f"; the weights became non-finite {model.restores_} time(s) and were restored with a lower "
            "learning rate (consider a lower --lr)"
        )
    labelled = f", labels {', '.join(model.labels_.names)}" if model.labels_ is not None else ""
    return (
        f"trained {what}{labelled}) on {len(corpus)} sequences{read_as}, "
        f"vocabulary {V}, {finished}{loss}: {args.output}"
    )
