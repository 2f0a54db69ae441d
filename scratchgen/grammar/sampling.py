"""Top-down sampling of a PCFG with an explicit stack.

A sentence is drawn by eq. (2) of :mod:`scratchgen.grammar.rules`: start from S, repeatedly take
the leftmost unexpanded nonterminal A and replace it by the right-hand side of a rule drawn with
probability p(A -> alpha); the terminals read left to right are the sentence. The leftmost symbol
is the top of a stack (right-hand sides are pushed in reverse), so no Python recursion is needed
and a deep derivation cannot raise RecursionError.

Grammars may come from untrusted users, so three limits stop a derivation with a
:class:`~scratchgen.errors.GrammarError` instead of hanging or exhausting memory: the depth of the
derivation tree, the number of expansions and the number of output tokens. A consistent grammar can
still draw an over-long derivation now and then (``S -> S S [0.4999] | 'a' [0.5001]`` has an expected
length of 5,000 tokens and a heavy tail): :meth:`Sampler.iter_sample` with ``skip=True`` drops such a
draw, counts it, and goes on, so one long derivation does not cost the others.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate

import numpy as np

from ..errors import GrammarError
from .rules import Grammar, Terminal, Tree
from .settings import DEFAULT_LIMITS

__all__ = ["Sampler", "sample"]


class Sampler:
    """A grammar compiled for fast sampling: per nonterminal, cumulative probabilities and rules.

    Parameters
    ----------
    grammar : Grammar
    max_depth, max_expansions, max_tokens : int
        Limits of one derivation (see the module docstring).

    >>> g = Grammar.fromstring("S -> 'a' S [0.5] | 'b' [0.5]")
    >>> s = Sampler(g)
    >>> s.sample(3, seed=0) == s.sample(3, seed=0)
    True
    """

    def __init__(
        self,
        grammar: Grammar,
        max_depth: int = DEFAULT_LIMITS["max_depth"],
        max_expansions: int = DEFAULT_LIMITS["max_expansions"],
        max_tokens: int = DEFAULT_LIMITS["max_tokens"],
    ):
        for name, value in (("max_depth", max_depth), ("max_expansions", max_expansions), ("max_tokens", max_tokens)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise GrammarError(f"{name} must be an int >= 1, got {value!r}")
        self.grammar = grammar
        self.max_depth, self.max_expansions, self.max_tokens = int(max_depth), int(max_expansions), int(max_tokens)
        index = {a: i for i, a in enumerate(grammar.nonterminals)}
        self.labels = grammar.nonterminals
        # A symbol on the stack is an int: >= 0 a nonterminal index, < 0 a terminal (~k = index in terminals).
        terminal_index = {t: i for i, t in enumerate(grammar.terminals)}
        self.terminals = grammar.terminals
        self.cum: list[list[float]] = []
        self.rhs: list[list[tuple]] = []
        for a in grammar.nonterminals:
            rules = [grammar.rules[i] for i in grammar.by_lhs[a]]
            cum = list(accumulate(r.prob for r in rules))
            cum[-1] = float("inf")  # rounding can leave the total a hair under 1
            self.cum.append(cum)
            self.rhs.append(
                [
                    tuple(~terminal_index[s] if isinstance(s, Terminal) else index[s] for s in reversed(r.rhs))
                    for r in rules
                ]
            )
        self.start = index[grammar.start]

    def sample(self, n: int = 1, seed=None, trees: bool = False, truncate: int | None = None) -> list:
        """``n`` sentences (token lists), or ``(tokens, Tree)`` pairs when ``trees`` is True.

        ``seed``: None, an int or a ``numpy.random.Generator``. ``truncate``: stop a sentence after this
        many tokens and return its beginning (the decoder's ``max_tokens``; no error, unlike the limits).
        A derivation past a limit raises :class:`GrammarError` (see :meth:`iter_sample` to skip it).
        """
        return list(self.iter_sample(n, seed=seed, trees=trees, truncate=truncate))

    def iter_sample(
        self, n: int = 1, seed=None, trees: bool = False, truncate: int | None = None, skip: bool = False
    ) -> Iterator:
        """The draws of :meth:`sample`, one at a time (a caller can print each as it comes).

        With ``skip=True`` a derivation that passes a limit is dropped instead of raising: fewer than
        ``n`` sentences come out, ``self.skipped`` counts the dropped ones and ``self.skip_reason`` holds
        the last limit's message.

        >>> s = Sampler(Grammar.fromstring("S -> S S [0.4999] | 'a' [0.5001]"), max_tokens=10)
        >>> out = list(s.iter_sample(100, seed=0, skip=True))
        >>> len(out) + s.skipped, all(len(x) <= 10 for x in out), s.skipped > 0
        (100, True, True)
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise GrammarError(f"n must be an int >= 0, got {n!r}")
        if truncate is not None and (
            isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)) or truncate < 0
        ):
            raise GrammarError(f"truncate must be None or an int >= 0, got {truncate!r}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._rng = rng
        self._u = rng.random(4096).tolist()
        self._truncate = truncate
        self.skipped = 0
        self.skip_reason: str | None = None
        for _ in range(n):
            try:
                yield self._one(trees)
            except _LimitPassed as e:
                if not skip:
                    raise GrammarError(str(e)) from None
                self.skipped += 1
                self.skip_reason = str(e)

    def _uniform(self) -> float:
        if not self._u:
            self._u = self._rng.random(4096).tolist()
        return self._u.pop()

    def _one(self, trees: bool):
        cum, rhs, terminals = self.cum, self.rhs, self.terminals
        max_depth, max_expansions, max_tokens = self.max_depth, self.max_expansions, self.max_tokens
        tokens: list[str] = []
        expansions = 0
        root = Tree(self.labels[self.start], []) if trees else None
        stack: list = [(self.start, 0, root)]
        if self._truncate == 0:
            stack = []
        while stack:
            sym, depth, node = stack.pop()
            if sym < 0:
                token = terminals[~sym]
                tokens.append(token)
                if trees:
                    node.children.append(token)
                if len(tokens) == self._truncate:
                    break
                if len(tokens) > max_tokens:
                    raise _LimitPassed(
                        f"sampling stopped: the sentence passed max_tokens={max_tokens} "
                        "(--max-tokens) tokens (raise the limit, or lower the weights of "
                        "recursive rules)"
                    )
                continue
            expansions += 1
            if expansions > max_expansions:
                raise _LimitPassed(
                    f"sampling stopped: more than max_expansions={max_expansions} "
                    "(--max-expansions) rule expansions (the grammar may be inconsistent: run "
                    "'scratchgen grammar check')"
                )
            if depth >= max_depth:
                raise _LimitPassed(
                    f"sampling stopped: the derivation tree passed max_depth={max_depth} (--max-depth) levels"
                )
            k = bisect_right(cum[sym], self._uniform())
            if trees:
                if depth > 0:
                    child = Tree(self.labels[sym], [])
                    node.children.append(child)
                    node = child
            for s in rhs[sym][k]:
                stack.append((s, depth + 1, node))
        return (tokens, root) if trees else tokens


class _LimitPassed(Exception):
    """A derivation passed a limit (internal: :meth:`Sampler.iter_sample` raises or skips it)."""


def sample(grammar: Grammar, n: int = 1, seed=None, trees: bool = False, **limits) -> list:
    """``n`` sentences drawn from ``grammar``: :meth:`Sampler.sample`.

    >>> sample(Grammar.fromstring("S -> 'hi' 'there'"), 2, seed=1)
    [['hi', 'there'], ['hi', 'there']]
    """
    return Sampler(grammar, **limits).sample(n, seed=seed, trees=trees)
