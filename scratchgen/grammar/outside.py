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

**Batched over sentences** (EM's E step over a corpus): sentences of one length share one chart
(:func:`~scratchgen.grammar.inside.chart_batch`) and one outside pass with a leading batch axis. The pass is
linear in its seed, so seeding sentence b with alpha[0, n, S] = 1 / Z_b instead of 1 gives its counts
already divided by Z_b (eq. (5)), and the batch's counts, G and e simply add up over b::

    sum_b count_b(r) = p_r d/dp_r sum_b log Z_b                                                           (6)

one pass for the batch instead of one per sentence: the same sums, in another order (equal to rounding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..threads import one_blas_thread
from . import inside
from .compile import CompiledGrammar
from .prefix import viable

__all__ = ["expected_counts", "expected_counts_batch"]

#: Sentences of one length that share a chart in the E step (fewer if their charts would pass the budget).
EM_BATCH = 256


def expected_counts(cg: CompiledGrammar, tokens: Sequence[str], max_length: int) -> tuple[np.ndarray, float]:
    """Expected uses of each *original* rule in a derivation of ``tokens``, and log P(tokens).

    Returns (counts of shape (rules,), logprob); counts are zero when log P = -inf.
    """
    counts, logprobs = expected_counts_batch(cg, [tokens], max_length)
    return counts, float(logprobs[0])


def expected_counts_batch(
    cg: CompiledGrammar, sentences: Sequence[Sequence[str]], max_length: int, progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """The expected rule uses summed over ``sentences`` (eq. (6)), and log P of each sentence.

    Returns (counts of shape (rules,), logprobs of shape (len(sentences),)). A sentence of probability 0
    (log P = -inf) adds no count: the caller decides whether that is an error (EM says which sentence).
    Sentences are grouped by length, and each group is cut into batches whose charts fit the chart
    budget of :func:`~scratchgen.grammar.inside.batch_size`. ``progress`` (a
    :class:`~scratchgen.progress.Progress`, optional) advances by the sentences of each batch.
    """
    with one_blas_thread():  # many small products: threads would only wait for each other
        return _expected_counts_batch(cg, sentences, max_length, progress)


def _expected_counts_batch(cg, sentences, max_length, progress) -> tuple[np.ndarray, np.ndarray]:
    N, start = cg.N, cg.start
    counts = np.zeros(len(cg.rules))  # over compiled rules, divided by Z already
    e_total = np.zeros(N)  # dZ/dE / Z summed over the sentences
    logprobs = np.full(len(sentences), -math.inf)
    ids = [cg.terminal_ids(t) for t in sentences]
    by_length: dict[int, list[int]] = {}
    for k, w in enumerate(ids):
        by_length.setdefault(len(w), []).append(k)
    for n, members in sorted(by_length.items()):
        if n == 0:
            z = cg.E[start]
            if z > 0:
                logprobs[members] = math.log(z)
                e_total[start] += len(members) / z
            if progress is not None:
                progress.update(len(members))
            continue
        kept = [k for k in members if viable(cg, ids[k], max_length)]
        if progress is not None:
            progress.update(len(members) - len(kept))  # ruled out at once
        members = kept
        step = inside.batch_size(cg, n, limit=EM_BATCH)
        for first in range(0, len(members), step):
            rows = members[first : first + step]
            w = np.stack([ids[k] for k in rows])  # (B, n)
            C, log_s, CL, CRe, P = inside.chart_batch(
                cg, w, np.full(len(rows), n), max_length, with_left=True, with_right=True, with_products=True
            )
            z = C[n, :, 0, start]  # (B,) scaled Z'_b = Z_b s_b^n
            ok = z > 0
            if not ok.any():
                if progress is not None:
                    progress.update(len(rows))
                continue
            logprobs[np.array(rows)[ok]] = np.log(z[ok]) - n * log_s[ok]
            seed = np.where(ok, 1.0 / np.where(ok, z, 1.0), 0.0)  # a sentence of probability 0 sends nothing
            e_total += _outside(cg, w, (C, CL, CRe, P), np.exp(log_s), seed, counts)
            if progress is not None:
                progress.update(len(rows))
    _null_uses(cg, e_total, counts)
    out = np.zeros(len(cg.grammar.rules))
    heads = cg.orig >= 0
    np.add.at(out, cg.orig[heads], counts[heads])
    return out, logprobs


def _outside(
    cg: CompiledGrammar, w: np.ndarray, charts: tuple, s: np.ndarray, seed: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """The outside pass of a batch over the spans of length >= 1: adds p dZ/dp / Z to ``counts``; returns
    e = dZ/dE / Z summed over the batch.

    ``w`` (B, n) terminal ids; ``charts`` the inside charts in the layout of
    :func:`~scratchgen.grammar.inside.chart_batch`, (C, CL, CRe, P) by length: C[L, b, i] = beta'[i, i+L],
    CL by (length, start) at the rules' B, CRe by (length, end) at their C, P the sums over splits of
    eq. (3) (a binary rule's count is p dZ/dbase times its P: no second sum over splits); ``s`` (B,) the per-token
    scales; ``seed`` (B,) 1 / Z'_b, the outside value of the whole sentence (eq. (6)).

    alpha is kept in the same two layouts and per binary rule, not per nonterminal: As[L, b, i, r] is what
    span (i, i+L) receives as the left child B of rule r (by start), Ae[L, b, i+L, r] as its right child C
    (by end). A parent (i, i+L) split at i+d then sends to all its left children at once (As[d, i]: one
    slice over d) and to all its right children (Ae[L-d, i+L]: one slice), with no sum over rules; a
    span's outside value per nonterminal is gathered once, when its length comes:
    alpha[i, i+L] = As[L, i] onehot(B) + Ae[L, i+L] onehot(C).
    """
    C, CL, CRe, P = charts
    Bn, n = w.shape
    N = cg.N
    # Only some entries of G = dZ/dU are ever read: (lhs, x) of the unit rules, (A, B) and (A, C) of the
    # binary ones. They are summed directly, one column of g times one of beta each: far fewer than N^2.
    rows, cols = _g_entries(cg)
    Gp = np.zeros(len(rows))  # G[rows, cols], summed over the batch
    As = np.zeros((n + 1, Bn, n + 1, cg.R))  # (n+1, B, n+1, R) by (length, start)
    Ae = np.zeros((n + 1, Bn, n + 1, cg.R))  # (n+1, B, n+1, R) by (length, end)
    to_g_left, to_g_right = cg.onehotB @ cg.Ustar, cg.onehotC @ cg.Ustar  # (R, N): alpha -> dZ/dbase
    b_counts = np.zeros(cg.R)
    for L in range(n, 0, -1):
        S = n - L + 1
        g = As[L, :, :S] @ to_g_left + Ae[L, :, L : L + S] @ to_g_right  # (B, S, N) dZ/dbase
        if L == n:  # the whole sentence: its outside value is the seed
            g[:, 0] += seed[:, None] * cg.Ustar[cg.start]
        Gp += np.einsum("bsp,bsp->p", g[..., rows], C[L, :, :S][..., cols])  # (P,) eq. (2)
        if L == 1:  # lexical rules, eq. (3)
            li = cg.l_idx
            hit = cg.r_x[li][None, None, :] == w[:, :, None]  # (B, n, RL)
            gs = g[:, :, cg.r_lhs[li]] * s[:, None, None]  # (B, n, RL)
            counts[li] += (hit * gs).sum(axis=(0, 1)) * cg.prob[li]
            continue
        left = CL[1:L, :, :S]  # (D, B, S, R) left children (i, i+d), d = 1..L-1
        right = CRe[L - 1 : 0 : -1, :, L : L + S]  # (D, B, S, R) right children (i+d, i+L)
        wgt = g[..., cg.bA] * cg.bp  # (B, S, R)
        b_counts += np.einsum("bsr,bsr->r", wgt, P[L, :, :S])
        As[1:L, :, :S] += wgt * right  # (D, B, S, R) to the left children
        Ae[L - 1 : 0 : -1, :, L : L + S] += wgt * left  # (D, B, S, R) to the right children
    counts[cg.b_idx] += b_counts
    G = np.zeros((N, N))  # dZ/dU, eq. (2), at the entries read below
    G[rows, cols] = Gp
    # Uses through U (eq. 2): unit rules, and binary rules with one child deriving ''.
    ui, E = cg.u_idx, cg.E
    counts[ui] += cg.prob[ui] * G[cg.r_lhs[ui], cg.r_x[ui]]
    counts[cg.b_idx] += cg.bp * (E[cg.bC] * G[cg.bA, cg.bB] + E[cg.bB] * G[cg.bA, cg.bC])
    e = np.zeros(N)  # dZ/dE
    np.add.at(e, cg.bC, cg.bp * G[cg.bA, cg.bB])
    np.add.at(e, cg.bB, cg.bp * G[cg.bA, cg.bC])
    return e


def _g_entries(cg: CompiledGrammar) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (row, column) entries of G = dZ/dU that the counts read: units (lhs, x), binary (A, B), (A, C)."""
    r = np.concatenate([cg.r_lhs[cg.u_idx], cg.bA, cg.bA])
    c = np.concatenate([cg.r_x[cg.u_idx], cg.bB, cg.bC])
    flat = np.unique(r * cg.N + c)
    return flat // cg.N, flat % cg.N


def _null_uses(cg: CompiledGrammar, e: np.ndarray, counts: np.ndarray) -> None:
    """Uses inside derivations of '' (eq. 1): lambda = e (I - J)^-1 with J = U; added to ``counts``."""
    if not np.any(e):
        return
    lam = e @ cg.Ustar  # (N,)
    E, ei, ui = cg.E, cg.e_idx, cg.u_idx
    counts[ei] += cg.prob[ei] * lam[cg.r_lhs[ei]]
    counts[ui] += cg.prob[ui] * lam[cg.r_lhs[ui]] * E[cg.r_x[ui]]
    counts[cg.b_idx] += cg.bp * lam[cg.bA] * E[cg.bB] * E[cg.bC]
