"""Expected rule counts by inside-outside: the E step of EM (:meth:`scratchgen.grammar.GrammarModel.fit`).

Letters as in :mod:`~scratchgen.grammar.inside`. Z = P(x) is a polynomial in the rule probabilities in
which a derivation using rule r c times contributes a monomial with p_r^c, so the expected number of uses
of r in a derivation of x is

    count(r) = p_r dZ/dp_r / Z                                                                            (5)

and the derivative is reverse-mode differentiation of eqs. (1)-(4): the outside pass. With
alpha[i, j] = dZ/dbeta[i, j] and g[i, j] = dZ/dbase[i, j] = alpha[i, j] (I - U)^-1 (row vectors),
spans are visited from the longest down; eq. (3) sends g to the two children; U collects
G = sum_spans g^T beta; E receives e = dZ/dE through eq. (2) and passes lambda = e (I - J)^-1 back to the
rules of eq. (1), whose Jacobian J equals U. The counts of the compiled rules are finally added up into
the original rules they came from (a binarised rule's helpers carry probability 1 and no count).

Read :func:`expected_counts` first: one sentence, its chart beta[i, j, A] by span and alpha beside it.

**Batched over sentences** (EM's E step over a corpus, :func:`expected_counts_batch`): sentences of
similar length share one chart (:func:`~scratchgen.grammar.inside.fill`, padded to the longest) and one
outside pass with a batch axis. The pass is linear in its seed, so seeding sentence b with
alpha[0, n_b, S] = 1 / Z_b instead of 1 gives its counts already divided by Z_b (eq. (5)), and the batch's
counts, G and e simply add up over b::

    sum_b count_b(r) = p_r d/dp_r sum_b log Z_b                                                           (6)

one pass for the batch instead of one per sentence: the same sums, in another order (equal to rounding).
The batched pass also differs in how it stores things, not in what it computes: charts by (length,
position, sentence), so each length is one matrix product over all its spans; alpha per binary rule in
two layouts (:func:`_outside_batch`); g only at the columns some count reads (:class:`_Plan`); the inside
values only of the symbols it reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..threads import one_blas_thread
from . import inside
from .compile import CompiledGrammar
from .prefix import PREFIX_CHECK, viable

__all__ = ["expected_counts", "expected_counts_batch"]

#: Sentences of one length that share a chart in the E step (fewer if their charts would pass the budget).
EM_BATCH = 256


def expected_counts(cg: CompiledGrammar, tokens: Sequence[str], max_length: int) -> tuple[np.ndarray, float]:
    """Expected uses of each *original* rule in a derivation of ``tokens``, and log P(tokens).

    Returns (counts of shape (rules,), logprob); counts are zero when log P = -inf. This is the readable
    form of the pass, one sentence and one chart beta[i, j, A] by span, alpha beside it; the E step over
    a corpus runs :func:`expected_counts_batch`, which computes the same sums for many sentences at once.
    """
    N, start = cg.N, cg.start
    w = cg.terminal_ids(tokens)
    n = len(w)
    nothing = np.zeros(len(cg.grammar.rules)), -math.inf
    counts = np.zeros(len(cg.rules))  # over compiled rules
    if n == 0:
        z = cg.E[start]
        if z <= 0:
            return nothing
        e = np.zeros(N)  # dZ/dE
        e[start] = 1.0
        logz = math.log(z)
    else:
        if not viable(cg, w, max_length):
            return nothing
        C, log_s = inside.chart_batch(cg, w[None, :], np.array([n]), max_length)
        beta = inside.span_chart(C[:, 0])  # (n+1, n+1, N)
        z = beta[0, n, start]
        if z <= 0:
            return nothing
        logz = math.log(z) - n * float(log_s[0])
        e = _outside_one(cg, w, beta, math.exp(float(log_s[0])), counts)
    _null_uses(cg, e, counts)
    counts /= z  # eq. (5)
    return _original(cg, counts), logz


def _outside_one(cg: CompiledGrammar, w: np.ndarray, beta: np.ndarray, s: float, counts: np.ndarray) -> np.ndarray:
    """The outside pass of one sentence over its spans of length >= 1: adds p dZ/dp to ``counts``; returns
    e = dZ/dE.

    ``beta`` is the scaled span chart (n+1, n+1, N) and ``s`` its per-token scale. Spans are visited from
    the longest down; a span (i, i+L) split at i+d sends its g, through each rule A -> B C, to its left
    child (i, i+d) times the right child's beta and to its right child (i+d, i+L) times the left's.
    """
    n = len(w)
    G = np.zeros((cg.N, cg.N))  # dZ/dU, eq. (2)
    alpha = np.zeros_like(beta)  # (n+1, n+1, N) dZ'/dbeta'
    alpha[0, n, cg.start] = 1.0
    b_counts = np.zeros(cg.R)
    for L in range(n, 0, -1):
        i = np.arange(n - L + 1)[:, None]  # (S, 1)
        a = alpha[i[:, 0], i[:, 0] + L]  # (S, N)
        g = a @ cg.Ustar  # (S, N) dZ/dbase
        G += g.T @ beta[i[:, 0], i[:, 0] + L]  # (N, N)
        if L == 1:  # lexical rules, eq. (3)
            li = cg.l_idx
            hit = cg.r_x[li][None, :] == w[:, None]  # (n, RL)
            counts[li] += (hit * g[:, cg.r_lhs[li]]).sum(axis=0) * cg.prob[li] * s
            continue
        d = np.arange(1, L)[None, :]  # (1, D)
        left = beta[i, i + d][:, :, cg.bB]  # (S, D, R)
        right = beta[i + d, i + L][:, :, cg.bC]  # (S, D, R)
        wgt = g[:, cg.bA] * cg.bp  # (S, R)
        b_counts += np.einsum("sr,sdr,sdr->r", wgt, left, right)
        alpha[i, i + d] += (wgt[:, None, :] * right) @ cg.onehotB  # (S, D, N)
        alpha[i + d, i + L] += (wgt[:, None, :] * left) @ cg.onehotC  # (S, D, N)
    counts[cg.b_idx] += b_counts
    _unit_uses(cg, G, counts)
    return _e_from_G(cg, G)


def expected_counts_batch(
    cg: CompiledGrammar, sentences: Sequence[Sequence[str]], max_length: int, progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """The expected rule uses summed over ``sentences`` (eq. (6)), and log P of each sentence.

    Returns (counts of shape (rules,), logprobs of shape (len(sentences),)). A sentence of probability 0
    (log P = -inf) adds no count: the caller decides whether that is an error (EM says which sentence).
    Sentences of one length share a chart, and runs of rare lengths share one padded chart
    (:func:`_batches`); charts are cut to fit the budget of :func:`~scratchgen.grammar.inside.batch_size`.
    ``progress`` (a
    :class:`~scratchgen.progress.Progress`, optional) advances by the sentences of each batch.
    The sums equal those of :func:`expected_counts` over the sentences, in another order.
    """
    with one_blas_thread():  # many small products: threads would only wait for each other
        return _expected_counts_batch(cg, sentences, max_length, progress)


def _expected_counts_batch(cg, sentences, max_length, progress) -> tuple[np.ndarray, np.ndarray]:
    N, start = cg.N, cg.start
    counts = np.zeros(len(cg.rules))  # over compiled rules, divided by Z already
    e_total = np.zeros(N)  # dZ/dE / Z summed over the sentences
    logprobs = np.full(len(sentences), -math.inf)
    plan = _Plan.of(cg)
    workspace = inside.Workspace()  # one set of buffers for every batch
    ids = [cg.terminal_ids(t) for t in sentences]
    by_length: dict[int, list[int]] = {}
    for k, w in enumerate(ids):
        by_length.setdefault(len(w), []).append(k)
    groups = []  # (n, the viable sentences of length n), n >= 1
    for n, members in sorted(by_length.items()):
        if n == 0:
            z = cg.E[start]
            if z > 0:
                logprobs[members] = math.log(z)
                e_total[start] += len(members) / z
            kept = []
        else:
            kept = _viable(cg, ids, members, max_length)
            groups.append((n, kept))
        if progress is not None:
            progress.update(len(members) - len(kept))  # ruled out at once
    for rows in _batches(cg, groups):
        lengths = np.array([len(ids[k]) for k in rows])  # (B,) ascending
        n = int(lengths[-1])
        w = np.full((len(rows), n), -1)  # (B, n) padded with -1
        for b, k in enumerate(rows):
            w[b, : lengths[b]] = ids[k]
        ch = inside.fill(cg, w, lengths, max_length, plan.symbols, outside=True, workspace=workspace)
        z = ch.C[lengths, 0, np.arange(len(rows)), 0]  # (B,) scaled Z'_b = Z_b s_b^n_b (the start is kept first)
        ok = z > 0
        if ok.any():
            logprobs[np.array(rows)[ok]] = np.log(z[ok]) - lengths[ok] * ch.log_s[ok]
            seed = np.where(ok, 1.0 / np.where(ok, z, 1.0), 0.0)  # a sentence of probability 0 sends nothing
            e_total += _outside_batch(cg, plan, w, lengths, ch, seed, counts, workspace)
        if progress is not None:
            progress.update(len(rows))
    _null_uses(cg, e_total, counts)
    return _original(cg, counts), logprobs


#: The cost model of :func:`_batches`, in units of one span of one sentence: the fixed cost of one length
#: of a chart (its two dozen NumPy calls, whatever the batch) is about that of this many spans.
LEVEL_COST = 25


def _batches(cg: CompiledGrammar, groups: list) -> list[list[int]]:
    """Cuts the sentences into the batches that share a chart: ``groups`` (n, sentences of length n) by
    increasing n; returns lists of sentence indices, each by increasing length (padded to its longest).

    Most sentences share a chart with others of their own length. But a length with few sentences
    costs n chart lengths of NumPy calls for little work, so runs of consecutive lengths may be merged
    into one padded chart when that is cheaper by the cost model: a chart of length n for B sentences
    costs n LEVEL_COST + B n (n+1) / 2 (its fixed cost per length, and its spans). Found by dynamic
    programming over the cuts. A run longer than a chart holds (:func:`~scratchgen.grammar.inside.batch_size`)
    is cut into several batches.
    """
    sizes = [inside.batch_size(cg, n, limit=EM_BATCH, outside=True) for n, _ in groups]
    before = np.cumsum([0] + [len(m) for _, m in groups])  # before[j]: the sentences of groups[:j]

    def cost(i: int, j: int) -> float:  # the run groups[i..j] padded to groups[j]'s length
        n, count = groups[j][0], int(before[j + 1] - before[i])
        return n * LEVEL_COST * -(-count // sizes[j]) + count * n * (n + 1) / 2

    best: list[float] = [0.0]  # best[j]: the cheapest cost of groups[:j]
    cut: list[int] = []  # cut[j - 1]: where the last run of that cheapest cutting starts
    for j in range(len(groups)):
        costs = [best[i] + cost(i, j) for i in range(j + 1)]
        cut.append(int(np.argmin(costs)))
        best.append(costs[cut[-1]])
    batches: list[list[int]] = []
    j = len(groups)
    while j > 0:  # the runs from the last: each cut into charts of the batch size of its longest length
        i = cut[j - 1]
        run = [k for _, members in groups[i:j] for k in members]
        step = -(-len(run) // -(-len(run) // sizes[j - 1])) if run else 1  # as few charts as fit, evenly filled
        batches[:0] = [run[first : first + step] for first in range(0, len(run), step)]
        j = i
    return [rows for rows in batches if rows]


def _viable(cg: CompiledGrammar, ids: list, members: list, max_length: int) -> list:
    """The sentences of one length (n >= 1) that :func:`~scratchgen.grammar.prefix.viable` does not rule
    out. Its cheap tests (a token no rule produces, a first token no sentence starts with) are made for the
    whole group at once; only long sentences go one by one."""
    w = np.stack([ids[k] for k in members])  # (B, n)
    keep = np.all(w >= 0, axis=1)
    if cg.first is not None:
        keep &= cg.first[np.maximum(w[:, 0], 0)]
        if w.shape[1] > PREFIX_CHECK:
            keep &= np.array([viable(cg, x, max_length) for x in w])
    return [k for k, kept in zip(members, keep) if kept]


class _Plan(NamedTuple):
    """What the batched outside pass reads of a grammar, made once per E step.

    g = dZ/dbase of a span is only read at a few columns: bA (scaled by p, the rules' weights ``wgt``),
    the rows of the entries of G = dZ/dU that some count reads (``rows``, ``cols``), and, for spans of
    length 1, the left-hand sides of the lexical rules. So g is never formed: the outside values As
    (as a left child B) and Ae (as a right child C) go to those columns by ``to_left`` and ``to_right``,
    which already hold (I - U)^-1 and the selection.
    """

    rows: np.ndarray  # (P,) the entries of G that are read
    cols: np.ndarray  # (P,)
    symbols: np.ndarray  # (1 + P,) the inside values the pass reads: the start's, then those at cols
    to_left: np.ndarray  # (R, R + P) onehot(B) (I - U)^-1 at [bA scaled by p | rows]
    to_right: np.ndarray  # (R, R + P) the same from onehot(C)
    lex_left: np.ndarray  # (R, H) onehot(B) (I - U)^-1 at the H distinct left-hand sides of lexical rules
    lex_right: np.ndarray  # (R, H)
    seed: np.ndarray  # (R + P,) the row of (I - U)^-1 of the start symbol at the same columns
    lex_seed: np.ndarray  # (H,)
    lex_head: np.ndarray  # (RL,) each lexical rule's left-hand side among the H

    @staticmethod
    def of(cg: CompiledGrammar) -> _Plan:
        rows, cols = _g_entries(cg)
        lhs, lex_head = np.unique(cg.r_lhs[cg.l_idx], return_inverse=True)
        pick = np.concatenate([cg.bA, rows])
        scale = np.concatenate([cg.bp, np.ones(len(rows))])
        left, right = cg.onehotB @ cg.Ustar, cg.onehotC @ cg.Ustar  # (R, N)
        return _Plan(
            rows,
            cols,
            np.concatenate([[cg.start], cols]),
            left[:, pick] * scale,
            right[:, pick] * scale,
            left[:, lhs],
            right[:, lhs],
            cg.Ustar[cg.start, pick] * scale,
            cg.Ustar[cg.start, lhs],
            lex_head,
        )


def _outside_batch(
    cg: CompiledGrammar,
    plan: _Plan,
    w: np.ndarray,
    lengths: np.ndarray,
    ch: inside.Charts,
    seed: np.ndarray,
    counts: np.ndarray,
    workspace: inside.Workspace,
) -> np.ndarray:
    """The outside pass of a batch over the spans of length >= 1: adds p dZ/dp / Z to ``counts``; returns
    e = dZ/dE / Z summed over the batch.

    ``w`` (B, n) terminal ids padded with -1 to the longest, ``lengths`` (B,) the sentences' lengths;
    ``ch`` the inside charts of :func:`~scratchgen.grammar.inside.fill` with C at ``plan.symbols``;
    ``seed`` (B,) 1 / Z'_b, the outside value of the whole sentence (0, n_b) (eq. (6)). A span that runs
    into the padding gets no outside value (its parents run into it too, and none is seeded), so padding
    adds nothing.

    alpha is kept in two layouts like the inside's, per binary rule and not per nonterminal:
    As[L, i, b, r] is what span (i, i+L) of sentence b receives as the left child B of rule r (by start),
    Ae[L, i+L, b, r] as its right child C (by end). A parent (i, i+L) split at i+d then sends to all its
    left children at once (As[d, i]: one slice over d) and to all its right children (Ae[L-d, i+L]); a
    span's g is formed once, when its length comes, from As onehot(B) + Ae onehot(C) (only at the
    columns of the plan). A binary rule's count p dZ/dbase times its sum over splits is summed from the
    children's side: sum over spans of As[., r] times the span's beta at B (each split counted once, by
    its left child).
    """
    Bn, n = w.shape
    R = cg.R
    Gp = np.zeros(len(plan.rows))  # G[rows, cols], summed over the batch
    As = workspace.array("As", (n + 1, n + 1, Bn, R))  # (n+1, n+1, B, R) by (length, start)
    Ae = workspace.array("Ae", (n + 1, n + 1, Bn, R))  # (n+1, n+1, B, R) by (length, end)
    As[1:], Ae[1:] = 0.0, 0.0
    tmp = workspace.array("tmp", (n, n, Bn, R))  # (D, S, B, R) one length's messages
    b_counts = np.zeros(R)
    for L in range(n, 0, -1):
        S = n - L + 1
        a_left = As[L, :S].reshape(S * Bn, R)  # (S B, R)
        a_right = Ae[L, L : L + S].reshape(S * Bn, R)  # (S B, R)
        g = a_left @ plan.to_left + a_right @ plan.to_right  # (S B, R + P) dZ/dbase at the plan's columns
        whole = np.where(lengths == L, seed, 0.0)  # (B,) the sentences of length L: their span (0, L)
        if whole.any():  # the whole sentence: its outside value is the seed
            g[:Bn] += whole[:, None] * plan.seed
        beta = ch.C[L, :S, :, 1:].reshape(S * Bn, -1)  # (S B, P) beta' at the cols
        Gp += np.einsum("kp,kp->p", g[:, R:], beta)  # (P,) eq. (2)
        b_counts += np.einsum("kr,kr->r", a_left, ch.Bs[L, :S].reshape(S * Bn, R))
        if L == 1:  # lexical rules, eq. (3): rule A -> 'a' gets p g[i, A] s for each position i holding a
            gl = a_left @ plan.lex_left + a_right @ plan.lex_right  # (n B, H) g at the lexical heads
            gl[:Bn] += whole[:, None] * plan.lex_seed
            T = cg.lex.shape[0]
            by_token = np.zeros((T + 1, gl.shape[1]))  # (T+1, H) sum of g s over a token's positions; T: padding
            np.add.at(by_token, np.where(w.T >= 0, w.T, T).reshape(-1), gl * np.tile(np.exp(ch.log_s), n)[:, None])
            li = cg.l_idx
            counts[li] += cg.prob[li] * by_token[cg.r_x[li], plan.lex_head]
            continue
        wgt = g[:, :R].reshape(S, Bn, R)  # (S, B, R) p dZ/dbase at A
        msg = tmp[: L - 1, :S]  # (D, S, B, R)
        As[1:L, :S] += np.multiply(wgt, ch.Ce[L - 1 : 0 : -1, L : L + S], out=msg)  # to the left children
        Ae[L - 1 : 0 : -1, L : L + S] += np.multiply(wgt, ch.Bs[1:L, :S], out=msg)  # to the right children
    counts[cg.b_idx] += b_counts
    G = np.zeros((cg.N, cg.N))  # dZ/dU, eq. (2), at the entries read
    G[plan.rows, plan.cols] = Gp
    _unit_uses(cg, G, counts)
    return _e_from_G(cg, G)


def _g_entries(cg: CompiledGrammar) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (row, column) entries of G = dZ/dU that a count reads: (lhs, x) of the unit rules,
    (A, B) of a binary rule A -> B C when E[C] > 0 and (A, C) when E[B] > 0.

    The others are multiplied by E = 0 only: in the counts of :func:`_unit_uses`, and in e (a symbol C
    with E[C] = 0 reaches through U only symbols with E = 0, whose rules' null uses all carry a factor E).
    """
    b = cg.E[cg.bC] > 0
    c = cg.E[cg.bB] > 0
    r = np.concatenate([cg.r_lhs[cg.u_idx], cg.bA[b], cg.bA[c]])
    k = np.concatenate([cg.r_x[cg.u_idx], cg.bB[b], cg.bC[c]])
    flat = np.unique(r * cg.N + k)
    return flat // cg.N, flat % cg.N


def _unit_uses(cg: CompiledGrammar, G: np.ndarray, counts: np.ndarray) -> None:
    """Uses through U (eq. 2): unit rules, and binary rules with one child deriving ''; added to ``counts``."""
    ui, E = cg.u_idx, cg.E
    counts[ui] += cg.prob[ui] * G[cg.r_lhs[ui], cg.r_x[ui]]
    counts[cg.b_idx] += cg.bp * (E[cg.bC] * G[cg.bA, cg.bB] + E[cg.bB] * G[cg.bA, cg.bC])


def _e_from_G(cg: CompiledGrammar, G: np.ndarray) -> np.ndarray:
    """e = dZ/dE (eq. 2): a binary rule's term p E[C] G[A, B] sends p G[A, B] to E[C], and likewise for B."""
    e = np.zeros(cg.N)
    np.add.at(e, cg.bC, cg.bp * G[cg.bA, cg.bB])
    np.add.at(e, cg.bB, cg.bp * G[cg.bA, cg.bC])
    return e


def _null_uses(cg: CompiledGrammar, e: np.ndarray, counts: np.ndarray) -> None:
    """Uses inside derivations of '' (eq. 1): lambda = e (I - J)^-1 with J = U; added to ``counts``."""
    if not np.any(e):
        return
    lam = e @ cg.Ustar  # (N,)
    E, ei, ui = cg.E, cg.e_idx, cg.u_idx
    counts[ei] += cg.prob[ei] * lam[cg.r_lhs[ei]]
    counts[ui] += cg.prob[ui] * lam[cg.r_lhs[ui]] * E[cg.r_x[ui]]
    counts[cg.b_idx] += cg.bp * lam[cg.bA] * E[cg.bB] * E[cg.bC]


def _original(cg: CompiledGrammar, counts: np.ndarray) -> np.ndarray:
    """The counts of the compiled rules added up into the original rules they came from (helpers carry none)."""
    out = np.zeros(len(cg.grammar.rules))
    heads = cg.orig >= 0
    np.add.at(out, cg.orig[heads], counts[heads])
    return out
