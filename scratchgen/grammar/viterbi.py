"""Viterbi parsing: the most probable tree, by the inside recursion in the (max, +) semiring.

Read :func:`scratchgen.grammar.reference.viterbi` first (dicts, one sentence, back-pointers by rule).
Here eqs. (1)-(4) of :mod:`~scratchgen.grammar.compile` and :mod:`~scratchgen.grammar.inside` run on
log-probabilities with max in place of sum: Emax (the best derivation of '') in place of E, Umax (the best
single step that covers the same span) in place of U, and the best chains of such steps Wmax in place of
(I - U)^-1. Those tables depend on the grammar only (:class:`ViterbiTables`); the chart of one sentence
holds back-pointers (best chain end, best binary rule, its split). The best tree is rebuilt without
recursion and the compilation undone (``@`` nodes spliced out, pre-terminals turned back into tokens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .compile import BINARY, EMPTY, UNIT, CompiledGrammar
from .inside import check_length
from .prefix import viable
from .rules import Tree

__all__ = ["ViterbiTables", "viterbi", "viterbi_tables"]


@dataclass(frozen=True, eq=False)
class ViterbiTables:
    """The (max, +) counterparts of E, U and (I - U)^-1, and the binary rules grouped by left-hand side."""

    Emax: np.ndarray  # (N,) best log-probability of deriving ''
    Echoice: np.ndarray  # (N,) the compiled rule that achieves it
    Urule: np.ndarray  # (N, N) Umax[A, B]'s rule: the best single step from A to B over the same span
    Uside: np.ndarray  # (N, N) 0 if B is that rule's left child, 1 if its right child
    hop: np.ndarray  # (N, N) the first step of the best chain A -> ... -> B
    chain_end: np.ndarray  # (N, W) for each A the chain ends B with a finite Wmax[A, B] (padded)
    chain_val: np.ndarray  # (N, W) their Wmax (-inf in the padding)
    group_table: np.ndarray  # (N, G) indices into the binary rules of A's rules (R pads)
    lexlog: np.ndarray  # (T, N) log lex
    logbp: np.ndarray  # (R,) log p of the binary rules

    def __post_init__(self):
        for value in vars(self).values():  # read-only, as the compiled grammar's
            value.setflags(write=False)


def _best_null(cg: CompiledGrammar, logp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Emax and Echoice: eq. (1) with max, by Bellman-Ford (log-probabilities <= 0: no gainful cycle)."""
    Emax = np.full(cg.N, -np.inf)
    Echoice = np.full(cg.N, -1, dtype=np.int64)
    for _ in range(cg.N + 1):
        changed = False
        for q in np.concatenate([cg.e_idx, cg.u_idx, cg.b_idx]):
            k, a, x, y = cg.kind[q], cg.r_lhs[q], cg.r_x[q], cg.r_y[q]
            v = logp[q] + (0.0 if k == EMPTY else Emax[x]) + (Emax[y] if k == BINARY else 0.0)
            if v > Emax[a] + 1e-12:
                Emax[a], Echoice[a] = v, q
                changed = True
        if not changed:
            break
    return Emax, Echoice


def _best_unit_steps(cg: CompiledGrammar, logp: np.ndarray, Emax: np.ndarray):
    """Umax[A, B] (eq. (2) with max), its rule and the side of B: three (N, N) tables."""
    N = cg.N
    Umax = np.full((N, N), -np.inf)
    Urule = np.full((N, N), -1, dtype=np.int64)
    Uside = np.zeros((N, N), dtype=np.int64)
    for q in cg.u_idx:
        a, b = cg.r_lhs[q], cg.r_x[q]
        if logp[q] > Umax[a, b]:
            Umax[a, b], Urule[a, b], Uside[a, b] = logp[q], q, 0
    for q in cg.b_idx:
        a, b, c = cg.r_lhs[q], cg.r_x[q], cg.r_y[q]
        v = logp[q] + Emax[c]  # B covers the span, C derives ''
        if v > Umax[a, b]:
            Umax[a, b], Urule[a, b], Uside[a, b] = v, q, 0
        v = logp[q] + Emax[b]  # C covers the span, B derives ''
        if v > Umax[a, c]:
            Umax[a, c], Urule[a, c], Uside[a, c] = v, q, 1
    return Umax, Urule, Uside


def _best_chains(Umax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wmax[A, B], the best chain A -> ... -> B of length >= 1, and hop[A, B] its first step.

    Max-plus Floyd-Warshall; log-probabilities are <= 0, so no cycle gains.
    """
    N = len(Umax)
    Wmax = Umax.copy()  # (N, N)
    hop = np.where(np.isfinite(Umax), np.arange(N)[None, :], -1)  # (N, N)
    for k in range(N):
        cand = Wmax[:, k : k + 1] + Wmax[k : k + 1, :]  # (N, N) through k
        better = cand > Wmax + 1e-12
        Wmax = np.where(better, cand, Wmax)
        hop = np.where(better, hop[:, k : k + 1], hop)
    return Wmax, hop


def _padded_rows(rows: list, fill, dtype) -> np.ndarray:
    """The lists ``rows`` as one (len(rows), longest) array, padded with ``fill``."""
    out = np.full((len(rows), max([len(r) for r in rows] + [1])), fill, dtype=dtype)
    for a, r in enumerate(rows):
        out[a, : len(r)] = r
    return out


def viterbi_tables(cg: CompiledGrammar) -> ViterbiTables:
    """The grammar's (max, +) tables: made once per grammar, before any sentence."""
    with np.errstate(divide="ignore"):
        logp = np.log(cg.prob)
    Emax, Echoice = _best_null(cg, logp)
    Umax, Urule, Uside = _best_unit_steps(cg, logp, Emax)
    Wmax, hop = _best_chains(Umax)
    ends = [np.flatnonzero(np.isfinite(Wmax[a])) for a in range(cg.N)]  # Wmax is sparse
    groups: list[list[int]] = [[] for _ in range(cg.N)]  # binary rules by left-hand side
    for r in range(cg.R):
        groups[cg.bA[r]].append(r)
    lexlog = np.full(cg.lex.shape, -np.inf)
    np.log(cg.lex, out=lexlog, where=cg.lex > 0)
    with np.errstate(divide="ignore"):
        logbp = np.log(cg.bp)
    return ViterbiTables(
        Emax=Emax,
        Echoice=Echoice,
        Urule=Urule,
        Uside=Uside,
        hop=hop,
        chain_end=_padded_rows(ends, 0, np.int64),
        chain_val=_padded_rows([Wmax[a, e] for a, e in enumerate(ends)], -np.inf, np.float64),
        group_table=_padded_rows(groups, cg.R, np.int64),  # R points at a padding column of -inf
        lexlog=lexlog,
        logbp=logbp,
    )


def _closure_max(vt: ViterbiTables, base: np.ndarray):
    """best[A] = max(base[A], max_B Wmax[A, B] + base[B]): (S, N) values and (S, N) chain ends (-1: none)."""
    cand = base[:, vt.chain_end] + vt.chain_val  # (S, N, W) padding is -inf
    k = cand.argmax(axis=2)  # (S, N)
    val = cand.max(axis=2)  # (S, N)
    better = val > base + 1e-12
    end = vt.chain_end[np.arange(base.shape[1])[None, :], k]  # (S, N)
    return np.where(better, val, base), np.where(better, end, -1)


def viterbi(
    cg: CompiledGrammar, vt: ViterbiTables, tokens: Sequence[str], max_length: int
) -> tuple[float, Tree | None]:
    """The most probable derivation of ``tokens``: (log-probability, Tree); (-inf, None) if none."""
    w = cg.terminal_ids(tokens)
    n = len(w)
    if n == 0:
        if vt.Emax[cg.start] == -np.inf:
            return -math.inf, None
        return float(vt.Emax[cg.start]), _build(cg, vt, None, None, None, 0)
    if not viable(cg, w, max_length):
        return -math.inf, None
    check_length(cg, n, max_length)
    N, R = cg.N, cg.R
    # Back-pointers by (length, start, symbol): end of the best unit chain (-1: none), binary rule
    # (index into b_idx; -1: none) and its split point.
    came = np.full((n + 1, n, N), -1, dtype=np.int64)  # (n+1, n, N)
    brule = np.full((n + 1, n, N), -1, dtype=np.int64)  # (n+1, n, N)
    bsplit = np.zeros((n + 1, n, N), dtype=np.int64)  # (n+1, n, N)
    # Best log inside of each span as a left child (at bB, by start) and a right child (at bC, by end).
    VL = np.full((n + 1, n + 1, R), -np.inf)  # (n+1, n+1, R) by (length, start)
    VRe = np.full((n + 1, n + 1, R), -np.inf)  # (n+1, n+1, R) by (length, end)
    valpad = np.full((n, R + 1), -np.inf)  # (n, R+1) the last column pads group_table
    kpad = np.zeros((n, R + 1), dtype=np.int64)  # (n, R+1)
    ar = np.arange(n)
    best, c = _closure_max(vt, vt.lexlog[w])
    came[1] = c
    VL[1, :n], VRe[1, 1:] = best[:, cg.bB], best[:, cg.bC]
    for L in range(2, n + 1):
        S = n - L + 1
        tot = VL[1:L, :S] + VRe[L - 1 : 0 : -1, L : L + S]  # (D, S, R) left C[d, i] + right C[L-d, i+d]
        kpad[:S, :R] = tot.argmax(axis=0)  # (S, R) best split offset - 1
        valpad[:S, :R] = tot.max(axis=0) + vt.logbp  # (S, R)
        grouped = valpad[:S][:, vt.group_table]  # (S, N, W)
        g_arg = grouped.argmax(axis=2)  # (S, N)
        base = grouped.max(axis=2)  # (S, N) eq. (3) in (max, +)
        rule = vt.group_table[np.arange(N)[None, :], g_arg]  # (S, N) index into b_idx (R = none)
        best, c = _closure_max(vt, base)
        starts = ar[:S, None]  # (S, 1)
        came[L, :S] = c
        VL[L, :S], VRe[L, L:] = best[:, cg.bB], best[:, cg.bC]
        brule[L, :S] = np.where(rule < R, rule, -1)
        bsplit[L, :S] = starts + 1 + kpad[starts, rule]
    score = float(best[0, cg.start])  # the last length filled is n: the whole sentence
    if score == -np.inf:
        return -math.inf, None
    return score, _build(cg, vt, came, brule, bsplit, n, w)


def _build(cg: CompiledGrammar, vt: ViterbiTables, came, brule, bsplit, n, w=None) -> Tree:
    """Rebuild the best tree from back-pointers (explicit stack) and undo the compilation."""
    root = Tree(cg.labels[cg.start], [])
    # Work items: (node to fill, symbol, i, j, closed); j == i means "derive ''".
    stack = [(root, cg.start, 0, n, True)]
    while stack:
        node, a, i, j, closed = stack.pop()
        if i == j:  # the best derivation of '' (Echoice)
            q = vt.Echoice[a]
            kind = cg.kind[q]
            kids = [] if kind == EMPTY else [cg.r_x[q]] + ([cg.r_y[q]] if kind == BINARY else [])
            items = [(s, i, i) for s in kids]
        elif closed and came[j - i, i, a] >= 0:  # first step of the best unit chain, eq. (4)
            b = vt.hop[a, came[j - i, i, a]]
            q, side = vt.Urule[a, b], vt.Uside[a, b]
            if cg.kind[q] == UNIT:
                items = [(b, i, j)]
            elif side == 0:
                items = [(b, i, j), (cg.r_y[q], j, j)]
            else:
                items = [(cg.r_x[q], i, i), (b, i, j)]
        elif j == i + 1:  # lexical rule
            node.children.append(cg.grammar.terminals[w[i]])
            continue
        else:  # binary rule at its best split, eq. (3)
            r, k = brule[j - i, i, a], bsplit[j - i, i, a]
            items = [(cg.bB[r], i, k), (cg.bC[r], k, j)]
        for s, ci, cj in items:  # children appended left to right now; filled later
            child = (Tree if s < cg.n_original else _Hidden)(cg.labels[s], [])
            node.children.append(child)
            stack.append((child, s, ci, cj, True))
    return _splice(root)


class _Hidden(Tree):
    """A node of a compiled-away symbol ('@' binarisation or '<a>' pre-terminal)."""


def _splice(root: Tree) -> Tree:
    """Replace every _Hidden node by its children (post-order, without recursion)."""
    order: list[Tree] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(c for c in node.children if isinstance(c, Tree))
    for node in reversed(order):  # children before parents
        flat: list = []
        for c in node.children:
            if isinstance(c, _Hidden):
                flat.extend(c.children)
            else:
                flat.append(c)
        node.children = flat
    return root
