"""The grammars shipped with scratchgen (``scratchgen/grammars/*.cfg``), loaded by name.

>>> "english" in builtin_names() and "chinese" in builtin_names()
True
>>> builtin("english").start
'S'
"""

from __future__ import annotations

import functools
import os
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
        name = name[len("builtin:") :]
    if name not in builtin_names():
        raise GrammarError(f"no built-in grammar {name!r} (known: {', '.join(builtin_names())})")
    return (GRAMMAR_DIR / f"{name}.cfg").read_text(encoding="utf-8")


@functools.cache
def _cached(name: str) -> Grammar:
    return parse_grammar(builtin_text(name))


def builtin(name: str) -> Grammar:
    """The built-in grammar ``name``: 'english' (number agreement, relative clauses) or 'chinese'."""
    return _cached(name[len("builtin:") :] if name.startswith("builtin:") else name)


def resolve_grammar(spec) -> Grammar:
    """The one way a grammar is named, on the command line and in the API: a :class:`Grammar` itself,
    ``builtin:NAME``, a file (Tracery JSON when it ends in ``.json`` or starts with ``{``, else the text
    format), grammar text (it contains ``->``), Tracery JSON text (it starts with ``{``) or a bare
    built-in name when no file of that name exists.

    ``scratchgen grammar ...``, ``scratchgen eval --reference``, :meth:`GrammarModel.from_grammar` and
    the demo all call it, so a grammar one of them accepts, every one accepts.

    >>> resolve_grammar("S -> 'hi'").terminals
    ['hi']
    >>> resolve_grammar('{"origin": ["hello #who#"], "who": ["world"]}').terminals
    ['hello', 'world']
    >>> resolve_grammar("builtin:english") is builtin("english")
    True
    """
    from .tracery import from_tracery

    if isinstance(spec, Grammar):
        return spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise GrammarError(
            f"a grammar is a Grammar, grammar text, a file or a built-in name, got {type(spec).__name__}"
        )
    if spec.startswith("builtin:"):
        return builtin(spec)
    looks_like_text = "\n" in spec or "->" in spec or spec.lstrip().startswith("{")
    if not looks_like_text and os.path.isfile(spec):
        text = _read_grammar_file(spec)
        try:
            if spec.lower().endswith(".json") or text.lstrip().startswith("{"):
                return from_tracery(text)
            return parse_grammar(text)
        except GrammarError as e:  # name the file: "grammar file 'g.cfg': line 3, column 9: ..."
            raise GrammarError(f"grammar file {spec!r}: {e}") from None
    if spec.lstrip().startswith("{"):
        return from_tracery(spec)
    if "->" in spec:
        return parse_grammar(spec)
    if spec in builtin_names():
        return builtin(spec)
    if os.path.isdir(spec):
        raise GrammarError(f"grammar {spec!r} is a folder, not a grammar file")
    raise GrammarError(
        f"no grammar file {spec!r} (and it is neither grammar text nor a built-in grammar: "
        f"{', '.join('builtin:' + n for n in builtin_names())})"
    )


def _read_grammar_file(path: str) -> str:
    """The text of a grammar file, which must be UTF-8 (a byte-order mark is allowed)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise GrammarError(f"cannot read grammar file {path!r}: {(e.strerror or str(e)).lower()}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise GrammarError(
            f"grammar file {path!r} is not UTF-8 at byte {e.start} (0x{data[e.start]:02x}): save it as UTF-8"
        ) from None
