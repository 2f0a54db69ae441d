"""The parser of the one command a command line names (``build_parser(argv)``) parses as the parser of every command.

``main`` builds only the parser of the command its argv names (scratchgen/cli/main.py, ``build_parser``): each of
these checks compares it with the whole parser, command by command, and checks that it really is the one command.
"""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest
from cli_paths import command_paths

from scratchgen.cli.main import build_parser

FULL = build_parser()


def commands_of(parser: argparse.ArgumentParser) -> list[str]:
    return [
        name for action in parser._actions if isinstance(action, argparse._SubParsersAction) for name in action.choices
    ]


def output_of(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[str, str, object]:
    """What parsing ``argv`` prints (stdout, stderr) and its exit code (None: it parsed)."""
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            code = e.code
    return out.getvalue(), err.getvalue(), code


def plain(namespace: argparse.Namespace) -> dict:
    """A namespace's values, each function by its name (a bound method of another parser object is not equal)."""
    return {k: getattr(v, "__qualname__", v) if callable(v) else v for k, v in vars(namespace).items()}


PATHS = command_paths(FULL)


def test_every_command_is_checked():
    assert len(PATHS) >= 20 and ("score",) in PATHS and ("train", "ngram") in PATHS and ("grammar", "sample") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_the_help_of_each_command_is_the_same(path):
    argv = [*path, "--help"]
    lazy = build_parser(argv)
    assert output_of(lazy, argv) == output_of(FULL, argv)
    assert output_of(lazy, argv)[0].startswith("usage: scratchgen " + " ".join(path))
    if path != ("train",):  # ``train`` without a family lists them all: every parser built
        assert commands_of(lazy) == [path[0]]  # the one command built, not the others


@pytest.mark.parametrize(
    "argv",
    [
        ["score", "m.npz", "c.txt", "--json"],
        ["score", "m.npz", "c.txt", "--mode", "chunks", "--chunk-size", "9", "--labelled"],
        ["train", "ngram", "c.txt", "-o", "m.npz", "--order", "4", "--smoothing", "witten-bell"],
        ["train", "rnn", "c.txt", "-o", "m.npz", "--cell", "gru", "--epochs", "2"],
        ["train", "random", "c.txt", "-o", "m.npz", "--kind", "unigram"],
        ["generate", "m.npz", "-n", "3", "--temperature", "0.5", "--ban", "x"],
        ["grammar", "sample", "builtin:english", "-n", "2"],
        ["explain", "m.npz", "some text", "--json"],
        ["export-arpa", "m.npz", "m.arpa"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_a_command_line_parses_to_the_same_values(argv):
    lazy = build_parser(argv)
    assert commands_of(lazy) == [argv[0]]
    assert plain(lazy.parse_args(argv)) == plain(FULL.parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["--version"],
        ["scor", "m.npz", "c.txt"],  # a misspelt command: its usage error lists every command
        ["train"],
        ["train", "--help"],
        ["train", "ngrm", "c.txt"],
        ["score", "m.npz"],  # a usage error of the command itself
        ["train", "ngram", "c.txt", "--order", "0"],
    ],
    ids=lambda argv: " ".join(argv) or "(nothing)",
)
def test_help_version_and_usage_errors_are_the_same(argv):
    assert output_of(build_parser(argv), argv) == output_of(FULL, argv)


@pytest.mark.parametrize("argv", [[], ["--help"], ["scor"], ["train"], ["train", "ngrm"]], ids=str)
def test_a_command_line_that_names_no_command_gets_every_command(argv):
    assert commands_of(build_parser(argv)) == commands_of(FULL)


def test_main_run_from_python_leaves_the_garbage_collector_alone(tmp_path):
    """main(argv) called from Python (as here) never freezes objects; only the command line does (argv None)."""
    import gc

    from scratchgen.cli.main import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("abc\nabd\n", encoding="utf-8")
    frozen = gc.get_freeze_count()
    assert main(["train", "ngram", str(corpus), "-o", str(tmp_path / "m.npz"), "--quiet"]) == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_command_line_keeps_collecting_after_its_imports():
    import subprocess
    import sys

    code = (
        "import gc, sys; from scratchgen.cli.main import main; "
        "sys.argv[1:] = ['export-arpa', 'no.npz', 'x.arpa']; main(); "
        "print(gc.isenabled(), gc.get_freeze_count() > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["True", "True"]
