"""Import of Tracery grammars (JSON objects of symbol -> list of strings) as PCFGs.

Tracery expands ``#symbol#`` by a uniformly chosen string of the symbol's list, so each string is a
rule of probability 1/k (a string listed twice counts twice). Literal text is split into word tokens
with :func:`scratchgen.text.word_tokenize`; a word glued to a reference (``#adj#ly``) becomes two tokens.

Modifiers (``#animal.s#``, ``#noun.a.capitalize#``) act on the whole expansion, yet only on its first
token (``capitalize``, ``a``, ``firstS``), its last token (``s``, ``ed``) or every token (``capitalizeAll``,
``uppercase``, ``lowercase``). So the import stays context-free by creating a derived nonterminal
``animal.s`` whose rules are those of ``animal`` with the modifier pushed onto the last item of each
right-hand side (applied to a token, or passed on to a referenced symbol). The functions mirror the
``tracery`` package's ``base_english`` modifiers. Actions (``[hero:#name#]``) store state between
expansions and are not context-free: they are refused.

>>> g = from_tracery({"origin": ["#animal.a.capitalize# sleeps ."], "animal": ["owl", "cat"]})
>>> from scratchgen.grammar import sample
>>> sorted({" ".join(s) for s in sample(g, 20, seed=0)})
['A cat sleeps .', 'An owl sleeps .']
"""

from __future__ import annotations

import json
import re

from ..errors import GrammarError
from ..text import word_tokenize
from .rules import Grammar, Terminal

__all__ = ["from_tracery"]

#: Most derived symbols an import may create, and most modifiers one may carry. A modifier applied
#: recursively (``"animal": ["#animal.s#"]``) would create animal.s, animal.s.s, ... without end; the
#: limits refuse it early, before a grammar too large to compile (a chart holds N x N tables).
MAX_DERIVED = 2_000
MAX_MODIFIERS = 16


def _s(t: str) -> str:
    if t[-1:] in ("s", "h", "x"):
        return t + "es"
    if t[-1:] == "y" and t[-2:-1] not in tuple("aeiou"):
        return t[:-1] + "ies"
    return t + "s"


def _ed(t: str) -> str:
    if t[-1:] == "e":
        return t + "d"
    if t[-1:] == "y" and t[-2:-1] not in tuple("aeiou"):
        return t[:-1] + "ied"
    return t + "ed"


def _article(t: str) -> str:
    low = t.lower()
    if low[:1] == "u" and len(t) > 2 and low[2] == "i":
        return "a"
    return "an" if low[:1] in tuple("aeiou") else "a"


FIRST = {"capitalize": lambda t: t[:1].upper() + t[1:], "firstS": _s}
LAST = {"s": _s, "ed": _ed}
EVERY = {"capitalizeAll": str.title, "uppercase": str.upper, "lowercase": str.lower}
MODIFIERS = set(FIRST) | set(LAST) | set(EVERY) | {"a"}

_PART = re.compile(r"#([^#]*)#|\[[^\]]*\]|([^#\[]+)")


def _parse_string(text: str, symbol: str, k: int, names: set) -> list:
    """Items of one Tracery string: Terminal tokens and (symbol, modifiers) references."""
    items: list = []
    pos = 0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        pos = m.end()
        if m.group(0).startswith("["):
            raise GrammarError(
                f"Tracery action {m.group(0)!r} in {symbol!r} (string {k}) is not supported: "
                "actions store state between expansions, which a context-free grammar cannot"
            )
        if m.group(1) is not None:
            body = m.group(1)
            if body.startswith("["):
                raise GrammarError(f"Tracery action in #{body}# of {symbol!r} (string {k}) is not supported")
            name, *mods = body.split(".")
            if name not in names:
                raise GrammarError(f"undefined symbol {name!r} in #{body}# of {symbol!r} (string {k})")
            for mod in mods:
                if mod not in MODIFIERS:
                    raise GrammarError(
                        f"unknown Tracery modifier {mod!r} in #{body}# of {symbol!r} (string {k}); "
                        f"known: {', '.join(sorted(MODIFIERS))}"
                    )
            items.append((name, tuple(mods)))
        else:
            items.extend(Terminal(t) for t in word_tokenize(m.group(2)))
    if pos != len(text):
        raise GrammarError(f"unbalanced '#' or '[' in {text!r} of {symbol!r} (string {k})")
    return items


def _apply(items: list, mod: str) -> list:
    """Push one modifier into a right-hand side (see the module docstring)."""
    items = list(items)
    if mod in EVERY:
        return [Terminal(EVERY[mod](x)) if isinstance(x, Terminal) else (x[0], x[1] + (mod,)) for x in items]
    if mod == "a":
        if not items:
            return [Terminal("a")]
        first = items[0]
        if isinstance(first, Terminal):
            return [Terminal(_article(first))] + items
        return [(first[0], first[1] + ("a",))] + items[1:]
    if not items:
        return items
    at = 0 if mod in FIRST else -1
    fn = FIRST.get(mod) or LAST[mod]
    x = items[at]
    items[at] = Terminal(fn(x)) if isinstance(x, Terminal) else (x[0], x[1] + (mod,))
    return items


def from_tracery(source, start: str = "origin") -> Grammar:
    """A Grammar from a Tracery grammar: a dict, or its JSON text.

    Parameters
    ----------
    source : dict or str
        ``{"origin": ["#greeting#, world!"], "greeting": ["hello", "hi"]}`` (a value may also be one string).
    start : str
        The start symbol (Tracery's convention is ``origin``).
    """
    alternatives = _read_source(source, start)
    weights, order = _derive_rules(alternatives, start)
    rank = {name: i for i, name in enumerate(order)}
    rules = sorted(weights.items(), key=lambda kv: rank[kv[0][0]])
    return Grammar.from_rules([(lhs, list(rhs), w) for (lhs, rhs), w in rules], start=start)


def _read_source(source, start: str) -> dict[str, list]:
    """The parsed alternatives of each Tracery symbol, after checking the JSON, the names and the start."""
    if isinstance(source, str):
        try:
            source = json.loads(source)
        except json.JSONDecodeError as e:
            raise GrammarError(f"not valid JSON: {e.msg}", e.lineno, e.colno) from None
        except RecursionError:  # json nests by recursion: thousands of '[' exhaust the stack
            raise GrammarError("not a Tracery grammar: the JSON is nested too deeply") from None
    if not isinstance(source, dict) or not source:
        raise GrammarError("a Tracery grammar is a non-empty JSON object of symbol -> list of strings")
    names = set(source)
    for name in names:
        if not re.fullmatch(r"[^\s'\"\[\]|#%.]+", name):
            raise GrammarError(
                f"Tracery symbol name {name!r} cannot be a nonterminal name "
                "(no spaces, quotes, brackets, '|', '#', '%' or '.')"
            )
    if start not in names:
        raise GrammarError(f"the start symbol {start!r} is not in the Tracery grammar (symbols: {sorted(names)[:10]})")
    alternatives: dict[str, list] = {}
    for name, strings in source.items():
        if isinstance(strings, str):
            strings = [strings]
        if not isinstance(strings, list) or not strings or not all(isinstance(s, str) for s in strings):
            raise GrammarError(f"the value of {name!r} must be a non-empty list of strings")
        alternatives[name] = [_parse_string(s, name, k, names) for k, s in enumerate(strings)]
    return alternatives


def _derive_rules(alternatives: dict[str, list], start: str) -> tuple[dict[tuple, float], list[str]]:
    """Weights of the rules (lhs, rhs), with a derived symbol per (symbol, modifiers), and the lhs in order.

    The derived symbols are made on demand from a work list, starting from the start symbol.
    """
    weights: dict[tuple, float] = {}
    order: list[str] = []
    todo: list[tuple[str, tuple[str, ...]]] = [(start, ())]
    made = {(start, ())}
    while todo:
        name, mods = todo.pop()
        lhs = ".".join((name,) + mods)
        order.append(lhs)
        for items in alternatives[name]:
            for mod in mods:
                items = _apply(items, mod)
            rhs: list[str] = []  # Terminals and derived symbols' names
            for x in items:
                if isinstance(x, Terminal):
                    rhs.append(x)
                else:
                    rhs.append(".".join((x[0],) + x[1]))
                    if x not in made:
                        if len(x[1]) > MAX_MODIFIERS:
                            raise GrammarError(
                                f"#{x[0]}.{'.'.join(x[1][:3])}...# carries more than {MAX_MODIFIERS} "
                                "modifiers: a modifier is applied recursively (a symbol whose "
                                "expansion refers to itself with a modifier)"
                            )
                        made.add(x)
                        todo.append(x)
                        if len(made) > MAX_DERIVED:
                            raise GrammarError(
                                f"the modifiers create more than {MAX_DERIVED} derived symbols "
                                "(a modifier applied recursively?)"
                            )
            key = (lhs, tuple(rhs))
            weights[key] = weights.get(key, 0.0) + 1.0  # a string listed twice counts twice
    return weights, order
