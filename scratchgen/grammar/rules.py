"""Probabilistic context-free grammars: rules, the text format, derivation trees.

A PCFG is a start symbol S, nonterminals N, terminals (word tokens) and rules ``A -> X_1 ... X_k``
each with a probability ``p(A -> alpha)``; the probabilities of the rules of one left-hand side sum
to 1::

    sum_alpha p(A -> alpha) = 1           for every nonterminal A                            (1)
    P(tree) = prod_{rules r used} p(r)    (a rule used twice counts twice)                   (2)
    P(sentence x) = sum_{trees t yielding x} P(t)                                            (3)

Weights in a grammar file are optional and normalised per left-hand side by eq. (1); without any,
the alternatives of a nonterminal are equally likely.

The text format is NLTK's PCFG string format (so ``nltk.PCFG.fromstring`` texts load unchanged)::

    # comment to the end of the line
    %start S                      (optional; default: the first left-hand side)
    S  -> NP VP [0.7] | VP [0.3]
    NP -> 'the' N                 terminals are quoted with ' or " (backslash escapes the quote)
        | 'a' N                   a line starting with | continues the rules of the line above
    N  -> 'cat' [2] | 'dog' [1]   weights: any finite number >= 0, normalised per left-hand side
    Opt -> 'very' | ''            '' (or ε) alone is the empty right-hand side

Errors (:class:`~scratchgen.errors.GrammarError`) give the line and column: an undefined symbol, a
negative or non-finite weight, all weights of a nonterminal zero, an empty alternative (or an empty
rule when ``allow_empty=False``), a duplicate rule, a malformed line. The lines are read by
:mod:`~scratchgen.grammar.textformat`; this module checks and normalises the rules (:func:`_build`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Union

from ..errors import GrammarError

__all__ = ["Terminal", "Rule", "Grammar", "Tree", "parse_grammar"]


class Terminal(str):
    """A terminal symbol (a token) on a right-hand side; a plain ``str`` there is a nonterminal.

    >>> Terminal("cat") == "cat", isinstance(Terminal("cat"), Terminal)
    (True, True)
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Terminal({str.__repr__(self)})"


Symbol = Union[str, Terminal]


@dataclasses.dataclass(frozen=True)
class Rule:
    """``lhs -> rhs`` with its probability (after normalisation) and where it was written."""

    lhs: str
    rhs: tuple  # of str (nonterminal) and Terminal
    prob: float
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.lhs} -> {_rhs_text(self.rhs)} [{self.prob!r}]"


def _quote(token: str) -> str:
    q = "'" if "'" not in token else '"'
    return q + token.replace("\\", "\\\\").replace(q, "\\" + q) + q


def _rhs_text(rhs: Sequence[Symbol]) -> str:
    if not rhs:
        return "''"
    return " ".join(_quote(s) if isinstance(s, Terminal) else s for s in rhs)


@dataclasses.dataclass
class Tree:
    """A derivation tree: ``label`` (a nonterminal) and children (Trees and terminal strings).

    >>> t = Tree("S", [Tree("A", ["a"]), "b"])
    >>> t.leaves(), str(t)
    (['a', 'b'], '(S (A a) b)')
    """

    label: str
    children: list

    def leaves(self) -> list[str]:
        """The sentence the tree yields, left to right (without recursion)."""
        out: list[str] = []
        stack: list = [self]
        while stack:
            node = stack.pop()
            if isinstance(node, Tree):
                stack.extend(reversed(node.children))
            else:
                out.append(node)
        return out

    def rules(self) -> Iterator[tuple[str, tuple]]:
        """(lhs, rhs) of every rule the tree uses (terminal children as Terminal)."""
        stack: list = [self]
        while stack:
            node = stack.pop()
            rhs = tuple(c.label if isinstance(c, Tree) else Terminal(c) for c in node.children)
            yield node.label, rhs
            stack.extend(c for c in node.children if isinstance(c, Tree))

    def __str__(self) -> str:
        # Bracketed form, built iteratively so that deep trees do not recurse.
        parts: list[str] = []
        stack: list = [self]
        while stack:
            node = stack.pop()
            if isinstance(node, Tree):
                parts.append(f"({node.label}")
                stack.append(")")
                stack.extend(reversed(node.children))
            elif node == ")":
                parts[-1] += ")"
            else:
                parts.append(node)
        return " ".join(parts)

    def to_list(self):
        """Nested lists ``[label, child, ...]`` (JSON-able; terminals are strings)."""
        return [self.label] + [c.to_list() if isinstance(c, Tree) else c for c in self.children]


class Grammar:
    """A PCFG: a start symbol and rules whose probabilities obey eq. (1).

    Build one from text (:meth:`fromstring`, :func:`parse_grammar`), from a Tracery JSON grammar
    (:func:`scratchgen.grammar.from_tracery`) or programmatically (:meth:`from_rules`).

    >>> g = Grammar.fromstring("S -> S S [0.4] | 'a' [0.6]")
    >>> g.start, [str(r) for r in g.rules]
    ('S', ['S -> S S [0.4]', "S -> 'a' [0.6]"])
    """

    def __init__(self, rules: Sequence[Rule], start: str):
        self.rules: list[Rule] = list(rules)
        self.start = start
        self.nonterminals: list[str] = list(dict.fromkeys(r.lhs for r in self.rules))
        if start not in self.nonterminals:
            raise GrammarError(f"the start symbol {start!r} has no rule")
        terminals = dict.fromkeys(s for r in self.rules for s in r.rhs if isinstance(s, Terminal))
        self.terminals: list[str] = [str(t) for t in terminals]
        #: Nonterminals whose weights, as written in the text format, did not sum to 1: {name: their sum}.
        #: The probabilities are those weights divided by the sum (eq. (1)); ``grammar check`` warns.
        self.renormalised: dict[str, float] = {}
        self.by_lhs: dict[str, list[int]] = {a: [] for a in self.nonterminals}
        for i, r in enumerate(self.rules):
            self.by_lhs[r.lhs].append(i)

    # --- constructors ----------------------------------------------------------------------------

    @classmethod
    def fromstring(cls, text: str, start: str | None = None, allow_empty: bool = True) -> Grammar:
        """Parse the text format of the module docstring."""
        return parse_grammar(text, start=start, allow_empty=allow_empty)

    @classmethod
    def from_rules(cls, rules: Iterable[tuple], start: str | None = None) -> Grammar:
        """Build from ``(lhs, rhs, weight)`` triples (weight optional, default 1, normalised per lhs).

        On a right-hand side a :class:`Terminal` is a token and a plain ``str`` a nonterminal.

        >>> g = Grammar.from_rules([("S", ["A", Terminal("b")], 3), ("S", [], 1), ("A", [Terminal("a")])])
        >>> [round(r.prob, 2) for r in g.rules]
        [0.75, 0.25, 1.0]
        """
        raw = []
        for item in rules:
            if len(item) == 2:
                lhs, rhs = item
                weight = 1.0
            elif len(item) == 3:
                lhs, rhs, weight = item
            else:
                raise GrammarError(f"a rule is (lhs, rhs) or (lhs, rhs, weight), got {item!r}")
            if isinstance(rhs, str):
                raise GrammarError(f"the right-hand side of {lhs!r} must be a sequence of symbols, got the str {rhs!r}")
            raw.append(_RawRule(str(lhs), tuple(rhs), weight, None, None, None))
        if not raw:
            raise GrammarError("a grammar needs at least one rule")
        return _build(raw, start or raw[0].lhs, None)

    def with_probs(self, probs: Iterable[float]) -> Grammar:
        """The same rules with new probabilities (one per rule, each left-hand side summing to 1)."""
        return Grammar([dataclasses.replace(r, prob=float(p)) for r, p in zip(self.rules, probs)], self.start)

    # --- views ------------------------------------------------------------------------------------

    def to_text(self) -> str:
        """The grammar in the text format; ``fromstring(g.to_text())`` gives the same grammar back."""
        lines = [f"%start {self.start}"]
        for a in self.nonterminals:
            alts = [f"{_rhs_text(self.rules[i].rhs)} [{self.rules[i].prob!r}]" for i in self.by_lhs[a]]
            lines.append(f"{a} -> " + " | ".join(alts))
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return (
            f"<Grammar start={self.start!r}: {len(self.nonterminals)} nonterminals, "
            f"{len(self.terminals)} terminals, {len(self.rules)} rules>"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Grammar)
            and self.start == other.start
            and [(r.lhs, r.rhs, r.prob) for r in self.rules] == [(r.lhs, r.rhs, r.prob) for r in other.rules]
        )

    def tree_logprob(self, tree: Tree) -> float:
        """log P(tree) by eq. (2); -inf if the tree uses a rule the grammar lacks."""
        index = {(r.lhs, r.rhs): r.prob for r in self.rules}
        total = 0.0
        for lhs, rhs in tree.rules():
            p = index.get((lhs, rhs), 0.0)
            if p <= 0.0:
                return -math.inf
            total += math.log(p)
        return total


# --- the text format -------------------------------------------------------------------------------


@dataclasses.dataclass
class _RawRule:
    lhs: str
    rhs: tuple
    weight: object
    line: int | None
    column: int | None
    rhs_pos: list | None  # (line, column) of each rhs symbol


def parse_grammar(text: str, start: str | None = None, allow_empty: bool = True) -> Grammar:
    """Parse a grammar in the text format of the module docstring.

    Parameters
    ----------
    text : str
    start : str or None
        The start symbol; default the ``%start`` directive, else the first left-hand side.
    allow_empty : bool
        Whether empty right-hand sides (``''`` or ``ε``) are allowed.

    >>> g = parse_grammar("S -> 'a' S | ''   # a*")
    >>> [str(r) for r in g.rules]
    ["S -> 'a' S [0.5]", "S -> '' [0.5]"]
    >>> parse_grammar("S -> 'a' [-1]")
    Traceback (most recent call last):
    ...
    scratchgen.errors.GrammarError: line 1, column 10: the weight -1 is negative; a weight is a finite number >= 0
    """
    # The text format reads into _RawRule, which this module defines, so it is imported here, not above.
    from .textformat import read_rules

    raw, directive_start = read_rules(text, allow_empty)
    return _build(raw, start or directive_start or raw[0].lhs, text)


def _check_weight(weight, shown, line, col) -> float:
    """The weight as a float; a GrammarError (showing ``shown``) unless it is a finite number >= 0."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise GrammarError(f"the weight {shown!r} is not a number", line, col) from None
    if not math.isfinite(weight):
        raise GrammarError(f"the weight {shown} is not finite; a weight is a finite number >= 0", line, col)
    if weight < 0:
        raise GrammarError(f"the weight {shown} is negative; a weight is a finite number >= 0", line, col)
    return float(weight)


def _build(raw: list[_RawRule], start: str, text: str | None) -> Grammar:
    defined = {r.lhs for r in raw}
    weighted = {r.lhs for r in raw if r.weight is not None}  # nonterminals with a weight written
    seen: dict[tuple, _RawRule] = {}
    weights: list[float] = []  # weights[i]: the weight of raw[i] as a float (1 when none is written)
    for r in raw:
        if not isinstance(r.lhs, str) or not r.lhs:
            raise GrammarError(f"a left-hand side must be a non-empty str, got {r.lhs!r}", r.line, r.column)
        key = (r.lhs, r.rhs)
        if key in seen:
            first = seen[key]
            at = f" (first at line {first.line})" if first.line is not None else ""
            raise GrammarError(f"duplicate rule {r.lhs} -> {_rhs_text(r.rhs)}{at}", r.line, r.column)
        seen[key] = r
        for k, s in enumerate(r.rhs):
            if not isinstance(s, str):
                raise GrammarError(f"a symbol must be a str or Terminal, got {s!r}", r.line, r.column)
            if not isinstance(s, Terminal) and s not in defined:
                line, col = r.rhs_pos[k] if r.rhs_pos else (r.line, r.column)
                hint = f"; did you mean the terminal '{s}'?" if s.islower() or not s.isascii() else ""
                raise GrammarError(f"undefined symbol {s!r}: it has no rule{hint}", line, col)
        weights.append(1.0 if r.weight is None else _check_weight(r.weight, r.weight, r.line, r.column))
    if start not in defined:
        raise GrammarError(f"the start symbol {start!r} has no rule")
    totals: dict[str, float] = {}
    for r, w in zip(raw, weights):
        totals[r.lhs] = totals.get(r.lhs, 0.0) + w
    for r in raw:
        if not math.isfinite(totals[r.lhs]):
            raise GrammarError(
                f"the weights of {r.lhs!r} sum to more than a float holds; use smaller weights", r.line, r.column
            )
        if totals[r.lhs] <= 0.0:
            raise GrammarError(f"all weights of {r.lhs!r} are zero; at least one must be > 0", r.line, r.column)
    # Weights that already sum to 1 (up to rounding) are kept as they are, so to_text() round-trips exactly.
    for a, total in totals.items():
        if abs(total - 1.0) < 1e-12:
            totals[a] = 1.0
    rules = [Rule(r.lhs, r.rhs, w / totals[r.lhs], r.line, r.column) for r, w in zip(raw, weights)]  # eq. (1)
    grammar = Grammar(rules, start)
    if text is not None:  # the text format: weights a person wrote, perhaps meaning probabilities
        grammar.renormalised = {a: t for a, t in totals.items() if a in weighted and abs(t - 1.0) > 1e-9}
    return grammar
