"""What ``import scratchgen`` and the command line load (issue 13, section 1: the CLI imports in <= 0.2 s).

Not timings (benchmarks/bench_text.py measures those): each test runs a fresh interpreter and reads
``sys.modules``, so it fails the day someone adds a top-level ``import numpy`` on the way to the parser. Then
the lazy names of the packages (:mod:`scratchgen.lazy`): each resolves to the object its module defines, and
agrees with the imports the type checkers read under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_paths import command_paths

import scratchgen

ROOT = Path(scratchgen.__file__).resolve().parent.parent
LAZY_PACKAGES = ("scratchgen", "scratchgen.grammar", "scratchgen.ngram", "scratchgen.nn", "scratchgen.evaluation")


def run_python(code: str) -> str:
    """The standard output of ``python -c code`` in a fresh process that imports this checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return done.stdout


def test_building_the_parser_does_not_import_numpy():
    out = run_python("""
        import sys
        import scratchgen.cli.main
        from scratchgen.cli.main import build_parser
        build_parser()
        print('numpy' in sys.modules)
    """)
    assert out.split() == ["False"]


def test_import_scratchgen_loads_neither_numpy_nor_a_family():
    out = run_python("""
        import sys, scratchgen
        print('numpy' in sys.modules, sorted(m for m in sys.modules if m.startswith('scratchgen.')))
    """)
    assert out.split(" ", 1)[0] == "False", out
    assert set(eval(out.split(" ", 1)[1])) <= {"scratchgen.errors", "scratchgen.lazy"}, out


def test_help_usage_errors_and_version_of_every_command_run_without_numpy():
    # Each command's --help (every subcommand too), a usage error, --version: none of them runs a model, so
    # none imports NumPy. The words are built from the parser, so a new command is checked without listing it.
    from scratchgen.cli.main import build_parser

    argvs = [[*path, "--help"] for path in command_paths(build_parser())]
    argvs += [["--help"], ["--version"], ["train", "ngram", "--order", "0", "corpus.txt"], ["no-such-command"]]
    out = run_python(f"""
        import contextlib, io, sys
        from scratchgen.cli.main import main
        for argv in {argvs!r}:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    main(argv)
                except SystemExit:
                    pass
            if 'numpy' in sys.modules:
                print(' '.join(argv))
                break
        else:
            print('none')
    """)
    assert out.strip() == "none", f"`scratchgen {out.strip()}` imported NumPy"


def test_scratchgen_help_lists_every_command():
    from scratchgen.cli.main import build_parser

    out = subprocess.run(
        [sys.executable, "-m", "scratchgen", "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    commands = [path[0] for path in command_paths(build_parser()) if len(path) == 1]
    assert len(commands) >= 10 and "train" in commands and "generate" in commands
    for command in commands:
        assert f"\n    {command} " in out or f"\n    {command}\n" in out, command
    train = subprocess.run(
        [sys.executable, "-m", "scratchgen", "train", "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    for family in ("random", "ngram", "grammar", "rnn", "mlp", "transformer"):
        assert f"\n    {family} " in train or f"\n    {family}\n" in train, family


def type_checking_imports(package: str) -> dict[str, str]:
    """name -> the module it is imported from in ``if TYPE_CHECKING:`` of ``package``'s __init__.py (resolved)."""
    path = Path(importlib.import_module(package).__file__)
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom), ast.dump(imp)
                where = importlib.util.resolve_name("." * imp.level + (imp.module or ""), package)
                found.update({alias.name: where for alias in imp.names})
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_lazy_name_is_the_object_its_module_defines(package):
    module = importlib.import_module(package)
    lazy = {name: importlib.util.resolve_name(where, package) for name, where in module._lazy_names.items()}
    assert lazy == type_checking_imports(package)  # what type checkers read is what runs
    assert set(lazy) <= set(module.__all__) and set(module.__all__) <= set(dir(module))
    for name in module.__all__:
        value = getattr(module, name)
        if name in lazy:
            assert value is getattr(importlib.import_module(lazy[name]), name), name
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_a_function_named_like_its_module_keeps_its_name_whichever_is_imported_first():
    # Importing scratchgen/explain.py binds the module to scratchgen.explain; the package keeps the function.
    out = run_python("""
        import json
        import scratchgen.explain, scratchgen.grammar.builtin, scratchgen.nn.gradcheck
        import scratchgen
        from scratchgen.grammar import builtin
        print(json.dumps([callable(scratchgen.explain), callable(builtin), callable(scratchgen.nn.gradcheck),
                          callable(scratchgen.gradcheck), scratchgen.grammar.builtin.__module__]))
    """)
    assert json.loads(out) == [True, True, True, True, "scratchgen.grammar.builtin"]


def test_submodules_load_on_first_use_and_are_listed():
    out = run_python("""
        import sys, scratchgen.ngram
        before = 'scratchgen.ngram.counting' in sys.modules
        counts = scratchgen.ngram.counting.NGramCounts
        print(before, 'scratchgen.ngram.counting' in sys.modules, 'counting' in dir(scratchgen.ngram))
    """)
    assert out.split() == ["False", "True", "True"]


def test_loading_and_scoring_an_ngram_model_imports_no_fitting_code(tmp_path):
    # scratchgen score of an n-gram model: counting, fitting, the smoothing strategies, the label tables, decoding
    # and the labels module are for fitting and generating; loading a model file and scoring a file need none.
    from scratchgen.ngram import NGramModel

    model_path, corpus = tmp_path / "m.npz", tmp_path / "c.txt"
    NGramModel(order=3).fit(["abcab", "bca"]).save(model_path)
    corpus.write_text("abc\nba\n", encoding="utf-8")
    out = run_python(f"""
        import sys
        from scratchgen.cli.main import main
        main(["score", {str(model_path)!r}, {str(corpus)!r}, "--json"])
        fitting = ("scratchgen.ngram.counting", "scratchgen.ngram.fitting", "scratchgen.ngram.smoothing",
                   "scratchgen.ngram.labelled", "scratchgen.decoding", "scratchgen.labels")
        print(sorted(m for m in fitting if m in sys.modules), "scratchgen.ngram.model" in sys.modules)
    """)
    assert out.strip().splitlines()[-1] == "[] True", out
