"""A grammar compiled for exact scoring: binary rules, null probabilities and the two unit closures.

Read :mod:`scratchgen.grammar.reference` first: it computes the same numbers on the grammar's own rules.
This module turns a :class:`~scratchgen.grammar.rules.Grammar` into a :class:`CompiledGrammar`, the value
that every algorithm of the chart parser reads (:mod:`~scratchgen.grammar.inside`,
:mod:`~scratchgen.grammar.outside`, :mod:`~scratchgen.grammar.prefix`, :mod:`~scratchgen.grammar.viterbi`).
It is made once per grammar and never changes.

**Compilation** (probability preserving). Every rule is rewritten so that a right-hand side has at
most two symbols, without changing the probability of any tree: a terminal inside a longer rule
becomes a pre-terminal ``<a> -> 'a' [1]``, and ``A -> Y_1 Y_2 ... Y_k [p]`` becomes
``A -> Y_1 @1 [p]``, ``@1 -> Y_2 @2 [1]``, ..., ``@(k-2) -> Y_(k-1) Y_k [1]``. The compiled
grammar has empty rules ``A -> ''``, lexical rules ``A -> 'a'``, unit rules ``A -> B`` and binary
rules ``A -> B C``; empty and unit rules stay (no grammar transformation is needed for them).

Letters: N compiled nonterminals, T terminals, R binary rules ``A -> B C`` with probabilities p,
beta[i, j, A] = P(A =>* x_{i+1}..x_j) the inside probability of A over the span (i, j].

**Empty spans.** E[A] = beta[i, i, A] = P(A =>* '') is the least solution of the polynomial system

    E[A] = sum_{A -> ''} p + sum_{A -> B} p E[B] + sum_{A -> B C} p E[B] E[C]                     (1)

found by fixed-point iteration from 0 then Newton steps (both increase monotonically towards it).

**One child covers the span.** A rule can cover a whole span with one child when its sibling derives
'' (or when it is a unit rule). Collecting those terms into the matrix

    U[A, B] = sum_{A -> B} p + sum_{A -> B C} p E[C] + sum_{A -> C B} p E[C]        (N, N)          (2)

makes the inside recursion over one span linear in its own unknowns, beta = base + U beta, solved by
(I - U)^-1 (eq. (4) of :mod:`~scratchgen.grammar.inside`), which sums every chain of unit steps
(including left-recursive chains through nullable symbols). U <= M elementwise (M the expected-children
matrix of :mod:`~scratchgen.grammar.analysis`), so rho(U) < 1 for every consistent grammar.

**Left corners** (for prefix probabilities, :mod:`~scratchgen.grammar.prefix`): the child that holds
the prefix's last token may be followed by anything (probability 1), so the left closure is

    U_pre[A, B] = sum_{A -> B} p + sum_{A -> B C} p + sum_{A -> C B} p E[C]                   (N, N)      (6)

and (I - U_pre)^-1 exists when left-corner chains have total probability < 1.

Both inverses are exactly 0 where no chain of steps leads from A to B (the closure of U > 0): the
rounding residue of the elimination (about 1e-17) is cleared there, since a token that can never come
next must get probability 0, not e^-39.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import GrammarError
from ..resources import check_memory
from .analysis import _reachable
from .rules import Grammar, Terminal

__all__ = ["BINARY", "EMPTY", "LEX", "UNIT", "CompiledGrammar", "compile_grammar"]

#: The four kinds of compiled rule.
EMPTY, LEX, UNIT, BINARY = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class CompiledGrammar:
    """The compiled rules of a grammar and the tables that every chart algorithm reads.

    Compiled rule q is ``(kind[q], r_lhs[q], r_x[q], r_y[q], prob[q])``: for LEX r_x is a terminal id,
    for UNIT and BINARY r_x (and r_y) are symbol ids; ``orig[q]`` is the index of the original rule
    whose probability it carries (-1 for a rule that compilation added with probability 1).

    >>> c = compile_grammar(Grammar.fromstring("S -> 'a' S 'b' [0.3] | '' [0.7]"))
    >>> c.labels, c.R, round(float(c.E[c.start]), 12)   # '' is the only sentence derivable from nothing
    (('S', '<a>', '<b>', '@0.1'), 2, 0.7)
    """

    grammar: Grammar
    labels: tuple  # (N,) names of the compiled symbols: the grammar's, then '<a>' and '@r.k' helpers
    n_original: int  # symbols 0..n_original-1 are the grammar's own (the others are compiled away in trees)
    start: int
    terminal_index: dict  # terminal -> its id (its row of lex)
    rules: tuple  # compiled rules as (kind, lhs, x, y, prob, orig)
    kind: np.ndarray  # (Q,) EMPTY, LEX, UNIT or BINARY
    prob: np.ndarray  # (Q,)
    orig: np.ndarray  # (Q,)
    r_lhs: np.ndarray  # (Q,)
    r_x: np.ndarray  # (Q,)
    r_y: np.ndarray  # (Q,)
    e_idx: np.ndarray  # indices of the empty, lexical, unit and binary rules among the Q
    l_idx: np.ndarray
    u_idx: np.ndarray
    b_idx: np.ndarray
    bA: np.ndarray  # (R,) the binary rules A -> B C and their probabilities p
    bB: np.ndarray
    bC: np.ndarray
    bp: np.ndarray
    bBC: np.ndarray  # (2R,) bB then bC: one gather for a span's two roles
    onehotB: np.ndarray  # (R, N) scatters rule values into B
    onehotC: np.ndarray  # (R, N) scatters rule values into C
    lex: np.ndarray  # (T, N) lex[a, A] = sum_{A -> 'a'} p
    E: np.ndarray  # (N,) eq. (1)
    U: np.ndarray  # (N, N) eq. (2)
    Ustar: np.ndarray  # (N, N) (I - U)^-1
    UstarT: np.ndarray  # (N, N) its transpose, contiguous
    W: np.ndarray  # (R, N) diag(p) onehot(A) (I - U)^-T: a span's rule products to its closed values
    pC: np.ndarray  # (R, N) diag(p) onehot(C)
    Pstar: np.ndarray | None  # (N, N) (I - U_pre)^-1 of eq. (6); None if it does not exist
    first: np.ndarray | None  # (T,) bool: which terminals some sentence starts with; None with Pstar

    def __post_init__(self):
        for value in vars(self).values():  # a value object: its arrays are read-only too
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    @property
    def N(self) -> int:
        return len(self.labels)

    @property
    def R(self) -> int:
        return len(self.b_idx)

    def terminal_ids(self, tokens: Sequence[str]) -> np.ndarray:
        """Indices of tokens among the grammar's terminals (-1 for a token the grammar never produces).

        When the grammar has the terminal ``<unk>``, every token it does not name is read as ``<unk>``,
        as every model scores an out-of-vocabulary token.
        """
        get = self.terminal_index.get
        unknown = get("<unk>", -1)
        return np.array([get(t, unknown) for t in tokens], dtype=np.int64)


def _binarise(grammar: Grammar, terminal_index: dict) -> tuple[list, list, dict]:
    """(labels, compiled rules, symbol index): the rewriting described in the module docstring."""
    labels = _reachable(grammar)  # symbols the start cannot reach change no probability: left out
    index = {a: i for i, a in enumerate(labels)}
    compiled: list[tuple] = []  # (kind, lhs, x, y, prob, orig)
    preterminal: dict[str, int] = {}

    def sym(s) -> int:
        if not isinstance(s, Terminal):
            return index[s]
        if s not in preterminal:
            preterminal[s] = len(labels)
            labels.append(f"<{s}>")
            compiled.append((LEX, preterminal[s], terminal_index[s], -1, 1.0, -1))
        return preterminal[s]

    for r_i, r in enumerate(grammar.rules):
        if r.lhs not in index:
            continue
        a, k = index[r.lhs], len(r.rhs)
        if k == 0:
            compiled.append((EMPTY, a, -1, -1, r.prob, r_i))
        elif k == 1 and isinstance(r.rhs[0], Terminal):
            compiled.append((LEX, a, terminal_index[r.rhs[0]], -1, r.prob, r_i))
        elif k == 1:
            compiled.append((UNIT, a, index[r.rhs[0]], -1, r.prob, r_i))
        else:
            ys = [sym(s) for s in r.rhs]
            lhs, p, orig = a, r.prob, r_i
            for j in range(k - 2):
                mid = len(labels)
                labels.append(f"@{r_i}.{j + 1}")
                compiled.append((BINARY, lhs, ys[j], mid, p, orig))
                lhs, p, orig = mid, 1.0, -1
            compiled.append((BINARY, lhs, ys[-2], ys[-1], p, orig))
    return labels, compiled, index


class _Rules(NamedTuple):
    """The compiled rules as arrays, for eqs. (1), (2) and (6): N symbols; the empty, unit and binary rules."""

    N: int
    prob: np.ndarray  # (Q,) every compiled rule's probability
    r_lhs: np.ndarray  # (Q,)
    r_x: np.ndarray  # (Q,)
    e_idx: np.ndarray  # the empty rules among the Q
    u_idx: np.ndarray  # the unit rules A -> r_x
    bA: np.ndarray  # (R,) the binary rules A -> B C [p]
    bB: np.ndarray
    bC: np.ndarray
    bp: np.ndarray


def _f(E: np.ndarray, r: _Rules) -> np.ndarray:
    """Right-hand side of eq. (1)."""
    out = np.zeros(r.N)
    np.add.at(out, r.r_lhs[r.e_idx], r.prob[r.e_idx])
    np.add.at(out, r.r_lhs[r.u_idx], r.prob[r.u_idx] * E[r.r_x[r.u_idx]])
    np.add.at(out, r.bA, r.bp * E[r.bB] * E[r.bC])
    return out


def _jacobian(E: np.ndarray, r: _Rules) -> np.ndarray:
    """d f / d E of eq. (1), which is also U of eq. (2): (N, N)."""
    U = np.zeros((r.N, r.N))
    np.add.at(U, (r.r_lhs[r.u_idx], r.r_x[r.u_idx]), r.prob[r.u_idx])
    np.add.at(U, (r.bA, r.bB), r.bp * E[r.bC])
    np.add.at(U, (r.bA, r.bC), r.bp * E[r.bB])
    return U


def _left_corner(E: np.ndarray, r: _Rules) -> np.ndarray:
    """U_pre of eq. (6): (N, N)."""
    U = np.zeros((r.N, r.N))
    np.add.at(U, (r.r_lhs[r.u_idx], r.r_x[r.u_idx]), r.prob[r.u_idx])
    np.add.at(U, (r.bA, r.bB), r.bp)  # B's yield runs past the prefix: C is anything
    np.add.at(U, (r.bA, r.bC), r.bp * E[r.bB])  # B derives '', C starts the prefix
    return U


def _null_probabilities(r: _Rules) -> np.ndarray:
    """E of eq. (1): fixed-point iteration from 0, then Newton steps (both rise towards the least solution)."""
    E = np.zeros(r.N)
    if not len(r.e_idx):
        return E  # nothing derives ''
    for _ in range(50):  # fixed-point iteration from 0: increases towards the least solution
        E = _f(E, r)
    for _ in range(100):  # Newton steps on E = f(E)
        F = _f(E, r) - E
        if np.max(np.abs(F)) < 1e-15:
            break
        try:
            step = np.linalg.solve(np.eye(r.N) - _jacobian(E, r), F)
        except np.linalg.LinAlgError:
            E = _f(E, r)
            continue
        E = np.clip(E + step, 0.0, 1.0)
    return E


def _chains(U: np.ndarray) -> np.ndarray:
    """Which entries of (I - U)^-1 = I + U + U^2 + ... are not 0: the reflexive-transitive closure of U > 0.

    An inverse computed by elimination leaves rounding residue (about 1e-17) where no chain of steps
    exists; such an entry would give a token that can never come next a tiny positive probability.
    Boolean squaring, (N, N), about log2(N) products.
    """
    reach = (U > 0) | np.eye(len(U), dtype=bool)  # (N, N) chains of length 0 or 1
    while True:
        longer = (reach.astype(np.float64) @ reach.astype(np.float64)) > 0  # chains of up to twice the length
        if np.array_equal(longer, reach):
            return reach
        reach = longer


def _unit_closure(U: np.ndarray) -> np.ndarray:
    """(I - U)^-1 of eq. (4), or a GrammarError when unit chains have total probability >= 1."""
    try:
        Ustar = np.linalg.inv(np.eye(len(U)) - U)  # (N, N)
    except np.linalg.LinAlgError:
        raise GrammarError(
            "unit or empty rules form a cycle of probability 1: the grammar is inconsistent "
            "(run 'scratchgen grammar check')"
        ) from None
    if np.any(Ustar < -1e-9) or not np.all(np.isfinite(Ustar)):
        raise GrammarError(
            "chains of unit rules (through symbols deriving '') have total probability >= 1: "
            "the grammar is inconsistent (run 'scratchgen grammar check')"
        )
    return np.where(_chains(U), np.maximum(Ustar, 0.0), 0.0)  # exact zeros where no unit chain exists


def _prefix_closure(U_pre: np.ndarray) -> np.ndarray | None:
    """(I - U_pre)^-1 of eq. (6), or None when left-corner chains have total probability >= 1."""
    try:
        Pstar = np.linalg.inv(np.eye(len(U_pre)) - U_pre)  # (N, N)
    except np.linalg.LinAlgError:
        return None
    if np.any(Pstar < -1e-9) or not np.all(np.isfinite(Pstar)):
        return None
    return np.where(_chains(U_pre), np.maximum(Pstar, 0.0), 0.0)  # exact zeros where no left-corner chain exists


def _onehot(R: int, N: int, cols: np.ndarray) -> np.ndarray:
    out = np.zeros((R, N))  # (R, N)
    out[np.arange(R), cols] = 1.0
    return out


def _check_compile_memory(N: int, R: int) -> None:
    """A ResourceError unless the tables of a compiled grammar (N symbols, R binary rules) fit in memory."""
    # About a dozen (N, N) tables (closures, Viterbi chains) and three (R, N) scatter matrices.
    check_memory(
        8 * (12 * N * N + 3 * R * N),
        f"compiling a grammar of {N} symbols and {R} binary rules",
        "use a smaller grammar",
    )


def compile_grammar(grammar: Grammar) -> CompiledGrammar:
    """Compile ``grammar`` (module docstring): raises GrammarError if its unit chains have probability >= 1."""
    terminal_index = {t: i for i, t in enumerate(grammar.terminals)}
    labels, compiled, index = _binarise(grammar, terminal_index)
    N = len(labels)
    kind = np.array([c[0] for c in compiled], dtype=np.int64)
    r_lhs, r_x, r_y = (np.array([c[i] for c in compiled], dtype=np.int64) for i in (1, 2, 3))
    prob = np.array([c[4] for c in compiled], dtype=np.float64)
    b_idx = np.flatnonzero(kind == BINARY)
    R = len(b_idx)
    _check_compile_memory(N, R)
    e_idx, l_idx, u_idx = (np.flatnonzero(kind == k) for k in (EMPTY, LEX, UNIT))
    bA, bB, bC, bp = r_lhs[b_idx], r_x[b_idx], r_y[b_idx], prob[b_idx]
    lex = np.zeros((len(grammar.terminals), N))  # (T, N)
    np.add.at(lex, (r_x[l_idx], r_lhs[l_idx]), prob[l_idx])
    rules = _Rules(N, prob, r_lhs, r_x, e_idx, u_idx, bA, bB, bC, bp)
    E = _null_probabilities(rules)  # (N,) eq. (1)
    U = _jacobian(E, rules)  # (N, N) eq. (2)
    Ustar = _unit_closure(U)  # (N, N) (I - U)^-1
    Pstar = _prefix_closure(_left_corner(E, rules))  # (N, N) (I - U_pre)^-1, eq. (6)
    onehotA, onehotC = _onehot(R, N, bA), _onehot(R, N, bC)
    start = index[grammar.start]
    first = None if Pstar is None else Pstar[start] @ lex.T > 0  # (T,) Pre(a) > 0, eq. (8) of prefix.py
    UstarT = np.ascontiguousarray(Ustar.T)
    return CompiledGrammar(
        grammar=grammar,
        labels=tuple(labels),
        n_original=len(index),
        start=start,
        terminal_index=terminal_index,
        rules=tuple(compiled),
        kind=kind,
        prob=prob,
        orig=np.array([c[5] for c in compiled], dtype=np.int64),
        r_lhs=r_lhs,
        r_x=r_x,
        r_y=r_y,
        e_idx=e_idx,
        l_idx=l_idx,
        u_idx=u_idx,
        b_idx=b_idx,
        bA=bA,
        bB=bB,
        bC=bC,
        bp=bp,
        bBC=np.concatenate([bB, bC]),
        onehotB=_onehot(R, N, bB),
        onehotC=onehotC,
        lex=lex,
        E=E,
        U=U,
        Ustar=Ustar,
        UstarT=UstarT,
        W=(bp[:, None] * onehotA) @ UstarT,
        pC=bp[:, None] * onehotC,
        Pstar=Pstar,
        first=first,
    )
