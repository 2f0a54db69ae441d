"""Prefix probabilities left to right, as a textbook writes it: Stolcke's probabilistic Earley parser.

Read this before :mod:`scratchgen.grammar.earley`, which computes the same numbers one token at a time in
constant time per step. Here there are only dicts, one prefix, and the grammar's own rules (no
binarisation, no closure matrices): every closure is a fixed point found by iteration, as in
:mod:`scratchgen.grammar.reference`.

Stolcke (1995), "An efficient probabilistic context-free parsing algorithm that computes prefix
probabilities", Computational Linguistics 21(2). An Earley *item* (k, r, d) at position i is the rule
r = A -> Y_1..Y_n with a dot after Y_d, started at k: Y_1..Y_d derive x_{k+1}..x_i. It carries two
numbers:

- the *forward* probability alpha: the total probability of the derivations that produce x_1..x_i and
  pass through this item (everything to the left of the dot, and every ancestor, included);
- the *inner* probability gamma: the probability that Y_1..Y_d derive x_{k+1}..x_i, times p(r).

Column i holds the items at position i. It is built from Stolcke's three operations (a start item
(0, S' -> S, 0) with alpha = gamma = 1 stands for the whole sentence)::

    prediction   (i, r', 0) for r' = Y -> nu, when an item at i waits for Y:
                 alpha' += alpha p(r'),   gamma' = p(r')                                              (1)
    scanning     (k, r, d+1) at i+1 from (k, r, d) at i when Y_{d+1} = x_{i+1}:
                 alpha' = alpha,   gamma' = gamma                                                     (2)
    completion   (k, r, d+1) at i from (k, r, d) at j, waiting for Y, and a complete (j, r', end) at i
                 with lhs Y:   alpha' += alpha gamma'',   gamma' += gamma gamma''                    (3)

Prediction and completion feed each other inside one column: a left-recursive rule predicts itself,
a chain of unit rules completes itself, and an empty rule (i, Y -> '', 0) is complete at once, so the
item waiting for Y moves past it (a completion of the empty string). Stolcke sums those chains
in closed form with the matrices R_L = (I - P_L)^-1 and R_U = (I - P_U)^-1; here the column's values
are iterated from the scanned items until nothing moves by more than TOL of itself, which sums the same
geometric series (both converge at the rates rho(P_L), rho(P_U) < 1 of a consistent grammar).

The prefix probability is the forward probability of the items that read x_i, and the next token's
distribution reads column i alone::

    Pre(x_1..x_i) = sum of alpha over the items of column i that scanning made (Pre(()) = 1)          (4)
    Pre(x_1..x_i a) = sum of alpha over the items of column i waiting for the terminal a               (5)
    P(x_1..x_i) = gamma of the complete start item (0, S' -> S, 1) in column i                         (6)
    P(a | x) = Pre(x a) / Pre(x),   P(</s> | x) = P(x) / Pre(x)                                        (7)

(eq. (8) of :mod:`scratchgen.grammar.reference`, which computes Pre by a chart from the right instead.)

    earley_prefix_probability   EarleyParser (earley.py): its log_prefix
    earley_next_token_probabilities   EarleyParser.next_probs, GrammarModel.next_logprobs
"""

from __future__ import annotations

from ..errors import GrammarError
from .reference import MAX_SWEEPS, TOL, _rules
from .rules import Grammar, Terminal

__all__ = ["earley_chart", "earley_next_token_probabilities", "earley_prefix_probability"]

START = "<S'>"  # the left-hand side of the start item S' -> S: not a symbol of any grammar (they are names)


def _rule_list(grammar: Grammar) -> list[tuple]:
    """(lhs, rhs, p) of every rule the start can reach, then the start rule S' -> S [1] last."""
    return [(r.lhs, r.rhs, r.prob) for _, r in _rules(grammar)] + [(START, (grammar.start,), 1.0)]


def _next_symbol(rules: list, item: tuple):
    """The symbol after the dot of ``item`` = (k, r, d), or None when the item is complete."""
    _, r, d = item
    rhs = rules[r][1]
    return rhs[d] if d < len(rhs) else None


def _close_column(rules: list, chart: list, i: int, scanned: dict) -> dict:
    """Column i: the scanned items and everything prediction (1) and completion (3) make from them.

    ``chart`` holds the finished columns 0..i-1. Values are [alpha, gamma]; the column is recomputed
    from the scanned items and its own previous values until it stops moving (the closures of the
    module docstring).
    """
    by_lhs: dict = {}
    for r, (lhs, _, _) in enumerate(rules):
        by_lhs.setdefault(lhs, []).append(r)
    column = {item: list(v) for item, v in scanned.items()}
    for _ in range(MAX_SWEEPS):
        new = {item: list(v) for item, v in scanned.items()}
        for item, (alpha, gamma) in column.items():
            Y = _next_symbol(rules, item)
            if Y is not None and not isinstance(Y, Terminal):  # eq. (1): predict Y's rules
                for r2 in by_lhs.get(Y, ()):
                    entry = new.setdefault((i, r2, 0), [0.0, rules[r2][2]])
                    entry[0] += alpha * rules[r2][2]
            if Y is None:  # eq. (3): item complete, its lhs spans (k, i]; move the items at k waiting for it
                k, lhs = item[0], rules[item[1]][0]
                waiting = chart[k] if k < i else column
                for (k2, r2, d2), (alpha2, gamma2) in waiting.items():
                    Y2 = _next_symbol(rules, (k2, r2, d2))
                    if Y2 == lhs and not isinstance(Y2, Terminal):
                        entry = new.setdefault((k2, r2, d2 + 1), [0.0, 0.0])
                        entry[0] += alpha2 * gamma
                        entry[1] += gamma2 * gamma
        if new.keys() == column.keys() and all(
            abs(new[x][v] - column[x][v]) <= TOL * abs(new[x][v]) for x in new for v in (0, 1)
        ):
            return new
        column = new
    raise GrammarError(f"an Earley column does not converge in {MAX_SWEEPS} sweeps: the grammar is inconsistent")


def earley_chart(grammar: Grammar, prefix) -> tuple[list, list]:
    """The Earley columns 0..m of ``prefix``: a list of dicts item -> [alpha, gamma], and the rule list.

    >>> columns, rules = earley_chart(Grammar.fromstring("S -> 'a' S [0.25] | 'b' [0.75]"), ["a"])
    >>> [(k, " ".join(rules[r][1]), d, v) for (k, r, d), v in columns[1].items() if d == 1]   # eq. (2): 'a' read
    [(0, 'a S', 1, [0.25, 0.25])]
    """
    rules, x = _rule_list(grammar), list(prefix)
    chart = [_close_column(rules, [], 0, {(0, len(rules) - 1, 0): [1.0, 1.0]})]
    for i, token in enumerate(x):
        scanned = {}
        for item, (alpha, gamma) in chart[i].items():  # eq. (2)
            Y = _next_symbol(rules, item)
            if Y == token and isinstance(Y, Terminal):
                k, r, d = item
                scanned[(k, r, d + 1)] = [alpha, gamma]
        chart.append(_close_column(rules, chart, i + 1, scanned))
    return chart, rules


def _waiting_mass(rules: list, column: dict) -> dict:
    """Eq. (5): the forward probability of the items of a column waiting for each terminal."""
    out: dict = {}
    for item, (alpha, _) in column.items():
        Y = _next_symbol(rules, item)
        if isinstance(Y, Terminal):
            out[Y] = out.get(Y, 0.0) + alpha
    return out


def earley_prefix_probability(grammar: Grammar, prefix) -> float:
    """Pre(prefix) by eq. (4): the forward probability of the items that read the prefix's last token.

    >>> g = Grammar.fromstring("S -> 'a' S [0.25] | 'b' [0.75]")
    >>> [earley_prefix_probability(g, x.split()) for x in ("a", "a a", "b a")]
    [0.25, 0.0625, 0.0]
    """
    x = list(prefix)
    if not x:
        return 1.0
    columns, rules = earley_chart(grammar, x)
    return sum(
        (
            alpha
            for (k, r, d), (alpha, _) in columns[-1].items()
            if d > 0 and rules[r][1][d - 1] == x[-1] and isinstance(rules[r][1][d - 1], Terminal)
        ),
        0.0,
    )


def earley_next_token_probabilities(grammar: Grammar, prefix) -> dict:
    """P(a | prefix) for every terminal a and P('</s>' | prefix) from the prefix's last column: eqs. (5)-(7).

    Normalised by their sum (which is Pre(prefix) for a consistent grammar); {'</s>': 1} when it is 0.

    >>> earley_next_token_probabilities(Grammar.fromstring("S -> 'a' S [0.25] | 'b' [0.75]"), ["a"])
    {'a': 0.25, 'b': 0.75, '</s>': 0.0}
    """
    columns, rules = earley_chart(grammar, prefix)
    mass = _waiting_mass(rules, columns[-1])
    out = {a: mass.get(a, 0.0) for a in grammar.terminals}
    out["</s>"] = columns[-1].get((0, len(rules) - 1, 1), [0.0, 0.0])[1]  # eq. (6)
    total = sum(out.values())
    if total <= 0:
        return {**dict.fromkeys(grammar.terminals, 0.0), "</s>": 1.0}
    return {a: v / total for a, v in out.items()}
