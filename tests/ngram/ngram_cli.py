"""The command line run in this process, for the n-gram tests."""

from __future__ import annotations

from scratchgen.cli import main


def run(argv, capsys):
    """(exit code, stdout, stderr) of the command line; a usage error's SystemExit gives its code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err
