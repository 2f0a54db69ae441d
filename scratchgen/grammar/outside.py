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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import inside
from .compile import CompiledGrammar
from .prefix import viable

__all__ = ["expected_counts"]


def expected_counts(cg: CompiledGrammar, tokens: Sequence[str], max_length: int) -> tuple[np.ndarray, float]:
    """Expected uses of each *original* rule in a derivation of ``tokens``, and log P(tokens).

    Returns (counts of shape (rules,), logprob); counts are zero when log P = -inf.
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
        e = _outside(cg, w, beta, math.exp(float(log_s[0])), counts)
    _null_uses(cg, e, counts)
    counts /= z  # eq. (5)
    out = np.zeros(len(cg.grammar.rules))
    heads = cg.orig >= 0
    np.add.at(out, cg.orig[heads], counts[heads])
    return out, logz


def _outside(cg: CompiledGrammar, w: np.ndarray, beta: np.ndarray, s: float, counts: np.ndarray) -> np.ndarray:
    """The outside pass over the spans of length >= 1: adds p dZ/dp to ``counts``; returns e = dZ/dE.

    ``beta`` is the scaled span chart (n+1, n+1, N) and ``s`` its per-token scale.
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
    # Uses through U (eq. 2): unit rules, and binary rules with one child deriving ''.
    ui, E = cg.u_idx, cg.E
    counts[ui] += cg.prob[ui] * G[cg.r_lhs[ui], cg.r_x[ui]]
    counts[cg.b_idx] += cg.bp * (E[cg.bC] * G[cg.bA, cg.bB] + E[cg.bB] * G[cg.bA, cg.bC])
    e = np.zeros(cg.N)  # dZ/dE
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
