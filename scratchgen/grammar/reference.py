"""The grammar family as a textbook writes it: inside, Viterbi and prefix probabilities in plain loops.

Read this first, then :mod:`scratchgen.grammar.chart` and the modules it lists (compile, inside, prefix,
outside, viterbi), which compute the same numbers fast (compiled rules, batched and rescaled charts, a
matrix inverse). Here there are only dicts, one sentence, and the grammar's own rules, binarised on the
fly: a rule ``A -> Y_1 .. Y_k`` is walked left to right, and the item "Y_1..Y_d derive x_{i+1}..x_m" grows
by one symbol and one split point at a time.

Letters: x_1..x_n the sentence; (i, j] the span x_{i+1}..x_j (empty when i = j); r = A -> Y_1..Y_k a
rule of probability p(r); beta(A, i, j) = P(A =>* x_{i+1}..x_j), the inside probability; a terminal Y
covers (b-1, b] with value [x_b = Y]. The equations are numbered as in the fast modules::

    E(A) = beta(A, i, i) = sum_r p(r) prod_d E(Y_d)            (E of a terminal is 0)             (1)
    U(A, B) = sum_r p(r) sum_{d: Y_d = B} prod_{e != d} E(Y_e)   one child covers the whole span    (2)
    base(A, i, j) = sum_r p(r) sum over the cuts i = b_0 <= .. <= b_k = j in which no nonterminal
                    piece is the whole span, of prod_d beta(Y_d, b_{d-1}, b_d)                       (3)
    beta(A, i, j) = base(A, i, j) + sum_B U(A, B) beta(B, i, j)                                      (4)

(1) is iterated from E = 0, rising to its least solution. (4) is iterated as beta <- base + U beta from
0: after s sweeps it holds every chain of fewer than s unit steps (a unit rule, or a rule whose other
children derive ''), so it sums (I + U + U^2 + ...) base = (I - U)^-1 base, which compile.py inverts. Both
converge geometrically at the rate rho(U) < 1 (U <= M, the expected-children matrix of
:mod:`~scratchgen.grammar.analysis`, and rho(M) < 1 for a consistent grammar); we stop when no value
moves by more than TOL of itself, which leaves an error below TOL rho / (1 - rho). Viterbi is (1)-(4)
with max in place of sum, plus back-pointers. Eq. (5) of outside.py (expected counts) has no twin here.

Prefix probabilities: Pre(x_1..x_m) = sum_v P(x_1..x_m v), the total probability of the sentences that
start with the prefix. Let PP(A, i) = P(A derives a string that starts with x_{i+1}..x_m). In a tree, the
child Y_d that holds x_m is unique: Y_1..Y_{d-1} derive x_{i+1}..x_b exactly (b < m), Y_d derives a
string that starts with x_{b+1}..x_m, and Y_{d+1}..Y_k derive anything, which has probability 1 in a
consistent grammar (every derivation ends). That makes "the prefix followed by anything" exact::

    U_pre(A, B) = sum_r p(r) sum_{d: Y_d = B} prod_{e < d} E(Y_e)                                   (6)
    PP(A, i) = sum_r p(r) sum_d sum_{i <= b < m} beta(Y_1..Y_{d-1}, i, b) PP(Y_d, b)
             = base_pre(A, i) + sum_B U_pre(A, B) PP(B, i)        (the terms b > i, and terminals)
    Pre(x) = PP(S, 0),  Pre(()) = 1                                                                   (7)
    P(next = a | x) = Pre(x a) / Pre(x),   P(</s> | x) = P(x) / Pre(x)                               (8)

with PP of a terminal Y at b = [b = m - 1 and x_m = Y]. (The definitions themselves, P(x) as a sum over
derivations and Pre(x) as a sum over continuations, are enumerations that only tests need: they live in
tests/grammar/grammar_by_definition.py.) Each function and the fast code it mirrors:

    inside_logprob             ChartParser.logprob, ChartParser.logprobs, GrammarModel.logprob
    viterbi                    ChartParser.viterbi, GrammarModel.parse
    next_token_probabilities   ChartParser.next_token_probs (GrammarModel.next_logprobs: reference_earley.py)
"""

from __future__ import annotations

import math

from ..errors import GrammarError
from .rules import Grammar, Terminal, Tree

__all__ = [
    "inside_chart",
    "inside_logprob",
    "next_token_probabilities",
    "null_probabilities",
    "prefix_probability",
    "viterbi",
]

TOL = 1e-14  # relative change below which an iteration has converged
MAX_SWEEPS = 100_000


def _rules(grammar: Grammar) -> list:
    """(index, rule) for the rules whose left-hand side the start can reach (the others change nothing)."""
    seen, todo = {grammar.start}, [grammar.start]
    while todo:
        for r in grammar.by_lhs[todo.pop()]:
            for Y in grammar.rules[r].rhs:
                if not isinstance(Y, Terminal) and Y not in seen:
                    seen.add(Y)
                    todo.append(Y)
    return [(q, r) for q, r in enumerate(grammar.rules) if r.lhs in seen]


def _iterate(step, start: dict) -> dict:
    """Repeat x <- step(x) from ``start`` until no value moves by more than TOL of itself."""
    x = start
    for _ in range(MAX_SWEEPS):
        new = step(x)
        if all(abs(new[a] - x[a]) <= TOL * abs(new[a]) for a in new):
            return new
        x = new
    raise GrammarError(
        f"the iteration does not converge in {MAX_SWEEPS} sweeps: the grammar is inconsistent or "
        "critical (chains of unit steps, or E of eq. (1), with rho >= 1)"
    )


def null_probabilities(grammar: Grammar) -> dict:
    """E(A) = P(A =>* ''), eq. (1), by iteration from 0.

    >>> null_probabilities(Grammar.fromstring("S -> S S [0.2] | '' [0.8]"))   # E = 0.2 E^2 + 0.8
    {'S': 1.0}
    """
    rules = [r for _, r in _rules(grammar)]

    def step(E):
        new = dict.fromkeys(E, 0.0)
        for r in rules:
            new[r.lhs] += r.prob * math.prod(0.0 if isinstance(Y, Terminal) else E[Y] for Y in r.rhs)  # eq. (1)
        return new

    return _iterate(step, {r.lhs: 0.0 for r in rules})


def _unit_matrix(grammar: Grammar, E: dict, prefix: bool = False) -> dict:
    """U of eq. (2) as a dict of dicts; with ``prefix``, U_pre of eq. (6) (only the left siblings derive '')."""
    U = {A: dict.fromkeys(E, 0.0) for A in E}
    for _, r in _rules(grammar):
        for d, B in enumerate(r.rhs):
            if not isinstance(B, Terminal):
                others = r.rhs[:d] if prefix else r.rhs[:d] + r.rhs[d + 1 :]
                U[r.lhs][B] += r.prob * math.prod(0.0 if isinstance(Y, Terminal) else E[Y] for Y in others)
    return U


def _close(base: dict, U: dict) -> dict:
    """The solution of x = base + U x, eq. (4) (or (7)), by iterating from 0."""
    return _iterate(lambda x: {A: base[A] + sum(U[A][B] * x[B] for B in x) for A in x}, dict.fromkeys(base, 0.0))


def _cover(tokens, chart: dict, Y, b: int, m: int) -> float:
    """The value of symbol Y over (b, m]: [x_m = Y] for a terminal, else chart[(Y, b, m)] (0 if not filled)."""
    if isinstance(Y, Terminal):
        return 1.0 if m == b + 1 and tokens[b] == Y else 0.0
    return chart.get((Y, b, m), 0.0)


def _extend(items: dict, Y, tokens, chart: dict, last: int) -> dict:
    """Items one symbol longer: new[m] = sum over the split b <= m of items[b] * value of Y over (b, m]."""
    return {
        m: sum(v * _cover(tokens, chart, Y, b, m) for b, v in items.items() if b <= m)
        for m in range(min(items), last + 1)
    }


def inside_chart(grammar: Grammar, tokens) -> dict:
    """beta(A, i, j) for every reachable A and every span 0 <= i <= j <= n: a dict keyed (A, i, j)."""
    n, E, rules = len(tokens), null_probabilities(grammar), _rules(grammar)
    U = _unit_matrix(grammar, E)
    beta = {(A, i, i): E[A] for A in E for i in range(n + 1)}  # eq. (1): the empty spans
    for length in range(1, n + 1):  # CYK order: every shorter span is filled first
        for i in range(n - length + 1):
            j = i + length
            base = dict.fromkeys(E, 0.0)
            for _, r in rules:
                items = {i: r.prob}  # p(r) P(Y_1..Y_d =>* x_{i+1}..x_m) by m; d = 0 so far
                for Y in r.rhs:  # binarised on the fly; the loop over the split is in _extend
                    items = _extend(items, Y, tokens, beta, j)
                base[r.lhs] += items.get(j, 0.0)  # eq. (3): this span's own beta is still 0 here
            for A, v in _close(base, U).items():  # eq. (4)
                beta[(A, i, j)] = v
    return beta


def inside_logprob(grammar: Grammar, tokens) -> float:
    """log P(tokens), the sum over every tree; -inf if there is none.

    >>> g = Grammar.fromstring("S -> S S [0.4] | 'a' [0.6]")
    >>> round(math.exp(inside_logprob(g, ["a", "a", "a"])), 12)   # two trees: 2 * 0.4^2 * 0.6^3
    0.06912
    >>> round(math.exp(inside_logprob(Grammar.fromstring("S -> S [0.3] | 'a' [0.7]"), ["a"])), 12)
    1.0
    """
    p = inside_chart(grammar, list(tokens))[(grammar.start, 0, len(tokens))]
    return math.log(p) if p > 0 else -math.inf


def viterbi(grammar: Grammar, tokens) -> tuple:
    """The most probable tree of ``tokens`` and its log-probability: (log p, Tree), or (-inf, None).

    >>> lp, tree = viterbi(Grammar.fromstring("S -> S S [0.4] | 'a' [0.6]"), ["a", "a"])
    >>> round(math.exp(lp), 12), str(tree)
    (0.144, '(S (S a) (S a))')
    """
    tokens = list(tokens)
    n = len(tokens)
    best, back = _viterbi_chart(grammar, tokens)
    if best.get((grammar.start, 0, n), 0.0) <= 0:
        return -math.inf, None

    def tree(A, i, j):  # follow the back-pointers down
        q, cuts = back[(A, i, j)]
        rhs = grammar.rules[q].rhs
        return Tree(
            A, [str(Y) if isinstance(Y, Terminal) else tree(Y, cuts[d], cuts[d + 1]) for d, Y in enumerate(rhs)]
        )

    return math.log(best[(grammar.start, 0, n)]), tree(grammar.start, 0, n)


def _viterbi_chart(grammar: Grammar, tokens: list) -> tuple[dict, dict]:
    """The Viterbi chart: eqs. (1)-(4) with max in place of sum.

    best[(A, i, j)] is the probability of the most probable derivation of x_{i+1}..x_j from A, and
    back[(A, i, j)] = (its rule's index, its cut points b_0..b_k).
    """
    rules, n, best, back = _rules(grammar), len(tokens), dict[tuple, float](), dict[tuple, tuple]()

    def offer(A, i, j, v, q, cuts):  # keep a candidate for (A, i, j) if it beats the best so far
        if v > best.get((A, i, j), 0.0):
            best[(A, i, j)], back[(A, i, j)] = v, (q, cuts)
            return True
        return False

    changed = True
    while changed:  # eq. (1) with max, at every position: no cycle helps, as no probability exceeds 1
        changed = False
        for q, r in rules:
            for i in range(n + 1):
                v = r.prob * math.prod(_cover(tokens, best, Y, i, i) for Y in r.rhs)
                changed |= offer(r.lhs, i, i, v, q, (i,) * (len(r.rhs) + 1))
    for length in range(1, n + 1):
        for i in range(n - length + 1):
            j = i + length
            for q, r in rules:  # eq. (3) with max: items[m] = (best p(r) prod so far, its cut points)
                items: dict[int, tuple] = {i: (r.prob, (i,))}
                for Y in r.rhs:  # as _extend, with max over the split b, keeping the cut points
                    items = {
                        m: max(
                            (v * _cover(tokens, best, Y, b, m), cuts + (m,)) for b, (v, cuts) in items.items() if b <= m
                        )
                        for m in range(i, j + 1)
                    }
                v, cuts = items.get(j, (0.0, ()))
                offer(r.lhs, i, j, v, q, cuts)
            changed = True
            while changed:  # eq. (4) with max: child d covers the span, the others derive ''
                changed = False
                for q, r in rules:
                    for d in range(len(r.rhs)):  # child d covers the span
                        cuts = (i,) * (d + 1) + (j,) * (len(r.rhs) - d)  # Y_d over (i, j], the rest empty
                        v = r.prob * math.prod(
                            _cover(tokens, best, Y, cuts[e], cuts[e + 1]) for e, Y in enumerate(r.rhs)
                        )
                        changed |= offer(r.lhs, i, j, v, q, cuts)
    return best, back


def prefix_probability(grammar: Grammar, prefix) -> float:
    """Pre(prefix) = sum_v P(prefix v) by eqs. (6)-(7): exact for a consistent grammar.

    >>> g = Grammar.fromstring("S -> 'a' S [0.25] | 'b' [0.75]")
    >>> prefix_probability(g, ["a"]), prefix_probability(g, ["a", "a"]), prefix_probability(g, ["b", "a"])
    (0.25, 0.0625, 0.0)
    """
    x, m = list(prefix), len(prefix)
    if m == 0:
        return 1.0  # every sentence starts with the empty prefix
    beta, E, rules = inside_chart(grammar, x), null_probabilities(grammar), _rules(grammar)
    U_pre = _unit_matrix(grammar, E, prefix=True)  # eq. (6)
    PP: dict = {}  # PP[(A, i, m)]: A derives a string that starts with x_{i+1}..x_m
    for i in range(m - 1, -1, -1):  # right to left: PP(., i) needs PP(., b) for b > i
        base = dict.fromkeys(E, 0.0)
        for _, r in rules:
            items = {i: r.prob}  # p(r) P(Y_1..Y_{d-1} =>* x_{i+1}..x_b exactly), b < m
            for Y in r.rhs:  # Y holds x_m (a terminal: it is x_m); the symbols after Y derive anything
                base[r.lhs] += sum(v * _cover(x, PP, Y, b, m) for b, v in items.items())  # PP(., i) still 0
                items = _extend(items, Y, x, beta, m - 1)
        for A, v in _close(base, U_pre).items():  # eq. (7)
            PP[(A, i, m)] = v
    return PP[(grammar.start, 0, m)]


def next_token_probabilities(grammar: Grammar, prefix) -> dict:
    """P(a | prefix) for every terminal a and P('</s>' | prefix), eq. (8); {'</s>': 1} if Pre(prefix) = 0.

    >>> next_token_probabilities(Grammar.fromstring("S -> 'a' S [0.25] | 'b' [0.75]"), ["a"])
    {'a': 0.25, 'b': 0.75, '</s>': 0.0}
    """
    pre = prefix_probability(grammar, prefix)
    if pre <= 0:  # no sentence starts so: by convention (as in the fast code) only the end follows
        return {**dict.fromkeys(grammar.terminals, 0.0), "</s>": 1.0}
    out = {a: prefix_probability(grammar, list(prefix) + [a]) / pre for a in grammar.terminals}
    out["</s>"] = math.exp(inside_logprob(grammar, prefix)) / pre
    return out
