"""The grammar text format (NLTK's PCFG strings), read line by line into raw rules.

The format is described in :mod:`scratchgen.grammar.rules`, which turns the raw rules read here into a
:class:`~scratchgen.grammar.rules.Grammar` (:func:`~scratchgen.grammar.rules.parse_grammar`). Each line is
cut into tokens by one regular expression; a rule line is ``NAME -> alternatives``, a line starting with
``|`` continues the rule above, and ``%start NAME`` sets the start symbol. Errors give the line and column.
"""

from __future__ import annotations

import re

from ..errors import GrammarError
from .rules import Terminal, _check_weight, _RawRule

_NAME = r"[^\s'\"\[\]|#%]+"
_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>\#.*)|(?P<arrow>->)|(?P<bar>\|)|(?P<weight>\[[^\]]*\]?)"""
    r"""|(?P<term>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<eps>ε)|(?P<name>""" + _NAME + r")|(?P<bad>.)"
)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def read_rules(text: str, allow_empty: bool) -> tuple[list[_RawRule], str | None]:
    """The raw rules of a grammar text, in order, and the symbol of its ``%start`` directive (or None)."""
    if not isinstance(text, str):
        raise GrammarError(f"grammar text must be a str, got {type(text).__name__}")
    raw: list[_RawRule] = []
    directive_start: str | None = None
    lhs: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("%"):
            directive_start = _start_directive(stripped, line, lineno)
            continue
        tokens = [
            (m.lastgroup, m.group(), m.start() + 1)
            for m in _TOKEN_RE.finditer(line)
            if m.lastgroup not in ("ws", "comment")
        ]
        lhs, alt_tokens, first_col = _rule_head(tokens, lhs, lineno)
        for alt, col0 in _alternatives(alt_tokens, first_col):
            raw.append(_parse_alternative(lhs, alt, lineno, col0, allow_empty))
    if not raw:
        raise GrammarError("the grammar has no rules")
    return raw, directive_start


def _start_directive(stripped: str, line: str, lineno: int) -> str:
    """The symbol of a ``%start SYMBOL`` line; a GrammarError for any other directive."""
    m = re.fullmatch(r"%start\s+(" + _NAME + r")\s*(#.*)?", stripped)
    if not m:
        raise GrammarError(
            f"unknown directive {stripped.split()[0]!r}; the only one is '%start SYMBOL'",
            lineno,
            line.index("%") + 1,
        )
    return m.group(1)


def _rule_head(tokens: list, lhs: str | None, lineno: int) -> tuple[str, list, int]:
    """(left-hand side, tokens of the right-hand side, column where it starts) of one line.

    A line ``NAME -> ...`` starts a rule; a line ``| ...`` continues the rule ``lhs`` of the line above.
    """
    if tokens[0][0] == "bar":
        if lhs is None:
            raise GrammarError("a continuation line '|' with no rule above it", lineno, tokens[0][2])
        return lhs, tokens[1:], tokens[0][2]
    if len(tokens) < 2 or tokens[0][0] != "name" or tokens[1][0] != "arrow":
        kind, value, col = tokens[0] if tokens[0][0] != "name" else tokens[min(1, len(tokens) - 1)]
        raise GrammarError(f"expected 'NAME -> ...' but found {value!r}", lineno, col)
    lhs = tokens[0][1]
    alt_tokens = tokens[2:]
    first_col = tokens[1][2]
    if not alt_tokens:
        raise GrammarError(
            f"empty right-hand side for {lhs!r}: write the alternatives after '->' ('' stands for the empty string)",
            lineno,
            first_col + 2,
        )
    return lhs, alt_tokens, first_col


def _alternatives(tokens: list, first_col: int) -> list[tuple[list, int]]:
    """The tokens of a right-hand side split at each '|': (tokens of one alternative, its column)."""
    alts: list[tuple[list, int]] = [([], first_col)]
    for kind, value, col in tokens:
        if kind == "bar":
            alts.append(([], col))
        else:
            alts[-1][0].append((kind, value, col))
    return alts


def _parse_alternative(lhs: str, alt: list, lineno: int, col0: int, allow_empty: bool) -> _RawRule:
    weight: object = None
    symbols: list = []
    positions: list = []
    empty_at = None
    for i, (kind, value, col) in enumerate(alt):
        if kind == "weight":
            if i != len(alt) - 1:
                raise GrammarError(f"the weight {value} must come last in its alternative", lineno, col)
            if not value.endswith("]"):
                raise GrammarError(f"unclosed weight {value!r}: write [number]", lineno, col)
            body = value[1:-1].strip()
            try:
                weight = float(body)
            except ValueError:
                raise GrammarError(f"the weight {value} is not a number", lineno, col) from None
            _check_weight(weight, body, lineno, col)
        elif kind == "term":
            token = _unquote(value)
            if token == "":
                empty_at = col
            else:
                symbols.append(Terminal(token))
                positions.append((lineno, col))
        elif kind == "eps":
            empty_at = col
        elif kind == "name":
            symbols.append(value)
            positions.append((lineno, col))
        elif kind == "arrow":
            raise GrammarError("a second '->' on one line: put each rule on its own line", lineno, col)
        else:
            raise GrammarError(f"unexpected character {value!r}", lineno, col)
    where = alt[0][2] if alt else col0
    if empty_at is not None:
        if symbols:
            raise GrammarError("'' (the empty string) must stand alone in its alternative", lineno, empty_at)
        if not allow_empty:
            raise GrammarError(f"empty right-hand side for {lhs!r} is not allowed here", lineno, empty_at)
    elif not symbols:
        raise GrammarError(
            f"empty alternative for {lhs!r}: write '' for the empty string, or remove the '|'", lineno, where
        )
    return _RawRule(lhs, tuple(symbols), weight, lineno, where, positions)
