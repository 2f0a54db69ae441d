"""The command line is one package at the top of the import graph (issue 10, section 2, first bullet).

The families (grammar, ngram, nn, evaluation) hold no command-line code and import nothing from
``scratchgen.cli``; the CLI names its command modules in plain imports (no importlib strings); and
``import scratchgen`` does not load the CLI. The imports are read from the source with :mod:`ast`.
"""

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import scratchgen

PACKAGE = Path(scratchgen.__file__).resolve().parent
FAMILIES = ("grammar", "ngram", "nn", "evaluation")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, as an absolute name (``from . import x`` gives both the package and x)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_cli_package_and_main_import_the_cli():
    allowed = {PACKAGE / "__main__.py"} | set((PACKAGE / "cli").glob("*.py"))
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in sources()
        if path not in allowed
        for module in sorted(imported_modules(path))
        if module == "scratchgen.cli" or module.startswith("scratchgen.cli.")
    ]
    assert not offenders, offenders


def test_the_families_hold_no_command_line_code():
    for family in FAMILIES:
        folder = PACKAGE / family
        assert folder.is_dir()
        assert not (folder / "cli.py").exists(), f"scratchgen/{family}/cli.py is still there"
        for path in folder.glob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "argparse" not in text and "add_parser" not in text, f"{path.relative_to(PACKAGE)} parses options"


def test_the_cli_dispatches_by_plain_imports_only():
    cli_sources = [path for path in sources() if module_name(path).split(".")[:2] == ["scratchgen", "cli"]]
    assert cli_sources
    for path in cli_sources:
        modules = imported_modules(path)
        assert "importlib" not in modules, f"{path.name} imports importlib"
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("__import__", "import_module")
        ]
        assert not calls, f"{path.name} imports a module by its name at line {calls[0].lineno}"


def test_main_is_at_the_top_and_registers_every_command_module():
    main_module = importlib.import_module("scratchgen.cli.main")
    folder = PACKAGE / "cli"
    helpers = {"options", "blas"}  # main's helpers, not command groups
    commands = {p.stem for p in folder.glob("*.py")} - {"__init__", "main"} - helpers
    assert {m.__name__.rpartition(".")[2] for m in main_module.COMMAND_GROUPS} == commands
    for name in commands | helpers:  # below main: none imports it (or the package that re-exports it)
        modules = imported_modules(folder / f"{name}.py")
        assert not modules & {"scratchgen.cli", "scratchgen.cli.main"}, f"cli/{name}.py imports the entry point"
        assert not any(m.startswith("scratchgen.cli.") and m.rpartition(".")[2] in commands for m in modules), name


def test_importing_scratchgen_does_not_load_the_cli():
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "import sys, scratchgen; print(sorted(m for m in sys.modules if m.startswith('scratchgen.cli')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "[]"
