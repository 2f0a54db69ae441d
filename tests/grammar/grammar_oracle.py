"""Independent, slow reference computations for the grammar tests (no compilation, no matrices)."""

from __future__ import annotations

import itertools

from scratchgen.grammar import Grammar, Terminal


def naive_inside(grammar: Grammar, tokens, sweeps: int = 400) -> float:
    """P(S =>* tokens) by iterating P(A =>* x[i:j]) = sum_rules sum_splits prod over the original rules.

    Every rule's right-hand side is split into all ways of cutting the span into len(rhs) pieces
    (pieces may be empty), and the system is iterated from 0 until it stops changing: this handles
    unit cycles, empty rules and left recursion without any of the tricks of ChartParser.
    """
    n = len(tokens)
    spans = [(i, j) for i in range(n + 1) for j in range(i, n + 1)]
    val = {(a, i, j): 0.0 for a in grammar.nonterminals for (i, j) in spans}

    def piece(sym, i, j, cur):
        if isinstance(sym, Terminal):
            return 1.0 if j == i + 1 and tokens[i] == sym else 0.0
        return cur[(sym, i, j)]

    for _ in range(sweeps):
        new = {}
        for a in grammar.nonterminals:
            for (i, j) in spans:
                total = 0.0
                for ri in grammar.by_lhs[a]:
                    r = grammar.rules[ri]
                    k = len(r.rhs)
                    if k == 0:
                        total += r.prob if i == j else 0.0
                        continue
                    for cuts in itertools.combinations_with_replacement(range(i, j + 1), k - 1):
                        bounds = (i,) + cuts + (j,)
                        prod = r.prob
                        for s, lo, hi in zip(r.rhs, bounds[:-1], bounds[1:]):
                            prod *= piece(s, lo, hi, val)
                            if prod == 0.0:
                                break
                        total += prod
                new[(a, i, j)] = total
        delta = max(abs(new[key] - val[key]) for key in val)
        val = new
        if delta < 1e-15:
            break
    return val[(grammar.start, 0, n)]


def enumerate_sentences(grammar: Grammar, max_steps: int = 100000) -> dict:
    """Every sentence of a grammar with a finite set of derivations, with its probability (sum over trees).

    Leftmost derivations are expanded breadth-first; fails if there are more than max_steps.
    """
    out: dict = {}
    agenda = [((), (grammar.start,), 1.0)]  # (terminals so far, symbols left, probability)
    steps = 0
    while agenda:
        done, todo, p = agenda.pop()
        steps += 1
        if steps > max_steps:
            raise RuntimeError("too many derivations")
        k = 0
        while k < len(todo) and isinstance(todo[k], Terminal):
            k += 1
        done = done + tuple(str(t) for t in todo[:k])
        todo = todo[k:]
        if not todo:
            out[done] = out.get(done, 0.0) + p
            continue
        a, rest = todo[0], todo[1:]
        for ri in grammar.by_lhs[a]:
            r = grammar.rules[ri]
            if r.prob > 0:
                agenda.append((done, tuple(r.rhs) + rest, p * r.prob))
    return out
