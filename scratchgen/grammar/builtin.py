"""The grammars shipped with scratchgen (``scratchgen/grammars/*.cfg``), loaded by name.

>>> "english" in builtin_names() and "chinese" in builtin_names()
True
>>> builtin("english").start
'S'
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import GrammarError
from .rules import Grammar, parse_grammar

__all__ = ["builtin", "builtin_names", "builtin_text", "resolve_grammar"]

GRAMMAR_DIR = Path(__file__).resolve().parent.parent / "grammars"


def builtin_names() -> list[str]:
    """Names of the built-in grammars, sorted."""
    return sorted(p.stem for p in GRAMMAR_DIR.glob("*.cfg"))


def builtin_text(name: str) -> str:
    """The text of built-in grammar ``name`` (``builtin:`` prefix allowed)."""
    if name.startswith("builtin:"):
        name = name[len("builtin:"):]
    if name not in builtin_names():
        raise GrammarError(f"no built-in grammar {name!r} (known: {', '.join(builtin_names())})")
    return (GRAMMAR_DIR / f"{name}.cfg").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _cached(name: str) -> Grammar:
    return parse_grammar(builtin_text(name))


def builtin(name: str) -> Grammar:
    """The built-in grammar ``name``: 'english' (number agreement, relative clauses) or 'chinese'."""
    return _cached(name[len("builtin:"):] if name.startswith("builtin:") else name)


def resolve_grammar(spec) -> Grammar:
    """A Grammar from a Grammar, grammar text (it contains '->'), or a built-in name ('builtin:NAME' or NAME)."""
    if isinstance(spec, Grammar):
        return spec
    if not isinstance(spec, str):
        raise GrammarError(f"a grammar is a Grammar, grammar text or a built-in name, got {type(spec).__name__}")
    if "->" in spec:
        return parse_grammar(spec)
    if spec.startswith("builtin:") or spec in builtin_names():
        return builtin(spec)
    raise GrammarError(f"{spec!r} is neither grammar text (no '->') nor a built-in grammar "
                       f"(known: {', '.join(builtin_names())})")
