"""The ``scratchgen`` command line: the parser of every command, and :func:`main`, which runs one.

    scratchgen train random --kind uniform|unigram [--level char|word] CORPUS -o MODEL
    scratchgen generate MODEL [--prompt TEXT] [-n N] [--max-tokens N] [--temperature T] ...
    scratchgen score MODEL CORPUS [--labelled] [--json]
    scratchgen classify MODEL CORPUS [--labelled] [--json]
    scratchgen explain MODEL [MODEL2] TEXT [--json] [--html FILE] [--top K] [--label L]
    scratchgen train rnn|mlp|transformer|ngram|grammar ... [--labelled]
    scratchgen demo

Each command group is one module of this package with a ``register(commands, train)`` function,
imported here by name; the model families know nothing of the command line. A user error prints
one line to stderr and exits 1 (2 for a usage error); no traceback. Ctrl-C and ``kill`` (SIGTERM) stop a
command as cleanly as an error does: every ``finally`` runs, so no half-written model file and no temporary
folder is left behind (exit 130 and 143).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import warnings
from collections.abc import Sequence

from ..errors import ScratchgenError
from . import classify, demo, explain, generate, grammar, mlp, ngram, rnn, score, train_random, transformer
from . import eval as evaluation
from .blas import one_blas_thread_if_unused
from .options import Parser, Terminated, guard_files, sigterm_as_interrupt

__all__ = ["main", "build_parser"]

#: The command groups in the order ``scratchgen --help`` lists them.
COMMAND_GROUPS = (
    train_random,
    generate,
    score,
    classify,
    explain,
    demo,
    grammar,
    ngram,
    rnn,
    mlp,
    transformer,
    evaluation,
)


class _Unbuilt:
    """Stands in for the parser of a command this run does not use, and keeps nothing: every method returns it
    again (``add_argument``, ``add_argument_group``, ``add_subparsers``, ``add_parser``, ``set_defaults``) and every
    attribute set on it is dropped."""

    def __getattr__(self, name: str):
        return self._ignore

    def __setattr__(self, name: str, value) -> None:
        pass

    def _ignore(self, *args, **kwargs) -> _Unbuilt:
        return self


_UNBUILT = _Unbuilt()


class _Only:
    """A level of subparsers (the commands, or the families of ``train``) through which only the parser named
    ``wanted`` is built (every parser when ``wanted`` is None); ``found`` says whether a group added it."""

    def __init__(self, subparsers, wanted: str | None):
        self.subparsers, self.wanted, self.found = subparsers, wanted, False

    def add_parser(self, name: str, **kwargs):
        if self.wanted is not None and name != self.wanted:
            return _UNBUILT
        self.found = True
        return self.subparsers.add_parser(name, **kwargs)


def _command_words(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """The command and the word after it (a family of ``train``) as they lead ``argv``; None where an option
    (``--help``, ``--version``) or nothing is there."""
    words: list[str | None] = []
    for word in argv[:2]:
        if word.startswith("-"):
            break
        words.append(word)
    words += [None, None]
    return words[0], words[1]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command: ``train`` and its families, then each group of :data:`COMMAND_GROUPS`.

    With ``argv``, the command line it is to parse, only the parser of the command that argv names is built
    (with ``train``, of the family named): argparse makes every subparser a whole parser, two dozen of them,
    and building them was most of the start-up of ``scratchgen score`` before NumPy (each asks gettext for its
    titles, a dozen file look-ups). Every group still registers; a command not run gets a stand-in that keeps
    nothing (:class:`_Unbuilt`). When argv names no command (empty, ``--help``, ``--version``, a misspelt name,
    ``train`` without a family), every parser is built, so the help and the usage errors list them all.
    """
    if argv is not None:
        command, family = _command_words(argv)
        if command is not None and (command != "train" or family is not None):
            parser = _build(command, family)
            if parser is not None:
                return parser
    parser = _build(None, None)
    assert parser is not None  # every command built: nothing to miss
    return parser


def _build(command: str | None, family: str | None) -> argparse.ArgumentParser | None:
    """The parser of every command (``command`` None), or of ``command`` alone (with ``train``, of the family
    ``family`` alone); None when no group adds that command."""
    parser = Parser(
        prog="scratchgen",
        description="Text generators from scratch in NumPy: random, grammar, n-gram and neural "
        "(RNN, GRU, LSTM, MLP, Transformer).",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"scratchgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    commands = _Only(subparsers, command)

    train_parser = commands.add_parser(
        "train",
        help="train a model on a corpus and save it",
        description="Train a model on a corpus file and save it to one file.",
    )
    families = train_parser.add_subparsers(dest="family", metavar="FAMILY")
    families.required = True
    train = _Only(families, family if command == "train" else None)

    for group in COMMAND_GROUPS:
        group.register(commands, train)
    if not commands.found or (command == "train" and not train.found):
        return None  # no such command (or family): the caller builds them all, for the usage error
    return parser


def _import_numpy_uncollected() -> None:
    """Import NumPy (and the model file reader) with the cyclic garbage collector paused, then freeze what the
    imports made (``gc.freeze``: never scanned again). Importing makes tens of thousands of objects that live
    as long as the process, and the collector, run every few hundred allocations, scanned them again and again:
    about 40 M instructions (some 10 ms) of ``scratchgen score`` on the 1 MB file, 5% of the whole command.
    Only when :func:`main` runs as the command line (``argv`` None) and NumPy is not imported yet: ``main(argv)``
    called from Python leaves the caller's collector alone."""
    gc.disable()
    try:
        import numpy  # noqa: F401

        from .. import io  # noqa: F401
    finally:
        gc.freeze()
        gc.enable()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print("scratchgen: warning: " + " ".join(str(message).split()), file=sys.stderr, flush=True)


def _say(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    print("scratchgen: error: " + " ".join(str(message).split()), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user error is one line on stderr and exit 1 (usage errors: 2, from argparse).

    Set ``SCRATCHGEN_DEBUG=1`` to see the traceback of an unexpected error instead of its one line.
    """
    # Ctrl-C and SIGTERM stop the command at any point from here on, the start-up (parsing, NumPy's import)
    # included: one line, exit 130 or 143 (scratchgen/__main__.py covers the import of this module)
    try:
        with sigterm_as_interrupt():
            return _main(argv)
    except Terminated:
        print("scratchgen: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("scratchgen: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    program = argv is None  # run as the command line (python -m scratchgen, the console script), not from Python
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)  # the parser of the command argv names, not of every command
    args = parser.parse_args(argv)  # --help, --version and usage errors exit here, before NumPy is imported
    one_blas_thread_if_unused(args)  # the n-gram commands: no BLAS thread pool started (cli/blas.py)
    if program and "numpy" not in sys.modules and gc.isenabled():
        _import_numpy_uncollected()
    import numpy as np

    from ..io import protected_inputs

    try:
        inputs = guard_files(args)
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
