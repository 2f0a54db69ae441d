"""The grammar's probabilities by their definitions, by enumeration: what the reference is tested against.

:func:`sentence_probabilities` lists P(x) = sum over the trees of x (eq. (3) of rules.py) for a finite
language; :func:`prefix_probability_by_summing` sums P(prefix v) over the continuations v up to a length.
Both are too slow for anything but tests, which is why they are not in scratchgen/grammar/reference.py.
"""

from __future__ import annotations

import itertools
import math

from scratchgen.errors import GrammarError
from scratchgen.grammar import Grammar, Terminal
from scratchgen.grammar.reference import inside_logprob


def prefix_probability_by_summing(grammar: Grammar, prefix, extra: int) -> float:
    """The definition: sum of P(prefix v) over every continuation v of at most ``extra`` terminals.

    A lower bound of Pre(prefix); exact when no sentence is longer than len(prefix) + extra.
    """
    total = 0.0
    for k in range(extra + 1):
        for v in itertools.product(grammar.terminals, repeat=k):
            total += math.exp(inside_logprob(grammar, list(prefix) + list(v)))
    return total


def sentence_probabilities(grammar: Grammar, max_steps: int = 100_000) -> dict:
    """P(x) for every sentence x of a grammar with finitely many derivations: the definition, the sum over trees.

    Leftmost derivations are expanded one rule at a time; a GrammarError after ``max_steps`` of them.

    >>> sentence_probabilities(Grammar.fromstring("S -> 'a' A [0.4] | 'b' [0.6]\\nA -> 'b' [0.5] | '' [0.5]"))
    {('b',): 0.6, ('a',): 0.2, ('a', 'b'): 0.2}
    """
    out: dict = {}
    # (terminals so far, symbols left, probability)
    agenda: list[tuple[tuple[str, ...], tuple[str, ...], float]] = [((), (grammar.start,), 1.0)]
    for _ in range(max_steps):
        if not agenda:
            return out
        done, todo, p = agenda.pop()
        k = 0
        while k < len(todo) and isinstance(todo[k], Terminal):  # move the leading terminals to the output
            k += 1
        done, todo = done + tuple(str(t) for t in todo[:k]), todo[k:]
        if not todo:
            out[done] = out.get(done, 0.0) + p
            continue
        for q in grammar.by_lhs[todo[0]]:  # expand the leftmost nonterminal by each of its rules
            r = grammar.rules[q]
            if r.prob > 0:
                agenda.append((done, tuple(r.rhs) + todo[1:], p * r.prob))
    raise GrammarError(f"more than {max_steps} derivation steps: the language is too large (or infinite) to list")
