"""Prefix probabilities (Jelinek and Lafferty's, for the compiled form) and the next-token distribution.

Read :func:`scratchgen.grammar.reference.prefix_probability` first: the same recursion on the grammar's own
rules, one prefix at a time. Letters as in :mod:`~scratchgen.grammar.inside`; U_pre and P* = (I - U_pre)^-1
are eq. (6) of :mod:`~scratchgen.grammar.compile`.

PP[k, A] is the total probability that A derives a string *starting with* x_{k+1}..x_m (anything may
follow). For a binary rule either B's yield runs to the end of the prefix (C is then anything:
probability 1), or B yields exactly x_{k+1}..x_j with j < m and C's yield starts with the rest; B
deriving '' (j = k) stays in the closure U_pre::

    PP[m-1] = P* lex[x_m],   PP[k] = P* sum_{A -> B C} p sum_{k<j<m} beta[k,j,B] PP[j,C]              (7)

and Pre(x_1..x_m) = PP[0, S]. Every PP[k] is linear in the last token's lexical vector, so for all
tokens a at once Pre(x_1..x_{m-1} a) = h . lex[a], with h obtained by one backward (adjoint) pass
through eq. (7) from dPre/dPP[0] = e_S::

    Pre(x_<m a) = h . lex[a]   for every terminal a: one matrix product, (T, N) @ (N,)               (8)

which gives the next-token distribution of the stepping interface of :class:`~scratchgen.grammar.GrammarModel`:
P(a | prefix) = Pre(prefix a) / Pre(prefix), P(end | prefix) = P(prefix) / Pre(prefix).

**The guard** :func:`viable` uses them to refuse a sentence cheaply: a prefix whose probability is 0
makes the whole sentence's probability 0, and a prefix's chart is smaller than the sentence's.
"""

from __future__ import annotations

import numpy as np

from ..errors import GrammarError, ResourceError
from . import inside
from .compile import CompiledGrammar

__all__ = ["PREFIX_CHECK", "next_token_probs", "viable"]

#: Prefixes of this many tokens, then twice as many, and so on, are checked before a longer sentence's
#: chart is built: one that has probability 0 makes the sentence's probability 0 at once.
PREFIX_CHECK = 64


def next_token_probs(cg: CompiledGrammar, w: np.ndarray, max_length: int) -> np.ndarray:
    """P(next = a | prefix) for every terminal a, and P(end | prefix) last: (B, T+1) from prefixes (B, t).

    ``w`` holds terminal ids (-1: a token no rule produces). Eqs. (7)-(8): the prefix probability of
    the prefix extended by a is h . lex[a], with h the adjoint of eq. (7) with respect to the last
    position's lexical vector; the end has probability P(prefix), and each row is normalised by
    their sum, which is P(prefix) for a consistent grammar. An impossible prefix gets the end with
    probability 1.
    """
    if cg.Pstar is None:
        raise GrammarError(
            "left-corner chains have total probability >= 1, so prefix probabilities do not "
            "exist (the grammar is inconsistent: run 'scratchgen grammar check')"
        )
    Bn, t = w.shape
    T = cg.lex.shape[0]
    out = np.zeros((Bn, T + 1))
    if t == 0:
        h = np.broadcast_to(cg.Pstar[cg.start], (Bn, cg.N))  # (B, N) e_S (I - U_pre)^-1
        end = np.full(Bn, cg.E[cg.start])
    else:
        C, _, CL = inside.chart_batch(cg, w, np.full(Bn, t), max_length, with_left=True)  # CL: (t+1, B, t+1, R)
        m = t + 1
        bar = np.zeros((Bn, m, cg.N))  # (B, m, N) dz/dPP[k]
        bar[:, 0, cg.start] = 1.0
        for k in range(m - 1):
            qbar = bar[:, k] @ cg.Pstar  # (B, N) eq. (8) backwards through the closure
            # Eq. (7): PP[k] gets p beta[k, j, B] PP[j, C] for k < j < m: send qbar to every such PP[j].
            beta_left = CL[1 : m - k, :, k]  # (J, B, R) beta'[k, k+1..t] at bB
            wgt = beta_left * qbar[None, :, :][:, :, cg.bA]  # (J, B, R)
            bar[:, k + 1 : m] += np.einsum("jbr,rn->bjn", wgt, cg.pC)
        h = bar[:, m - 1] @ cg.Pstar  # (B, N)
        end = C[t, :, 0, cg.start]  # (B,) P(prefix) s^t, the same scale as h . lex[a]
    out[:, :T] = h @ cg.lex.T  # (B, T) prefix probabilities of prefix + a (times s^t)
    out[:, T] = end
    if t > 0:
        out[np.any(w < 0, axis=1)] = 0.0
    out = np.maximum(out, 0.0)
    total = out.sum(axis=1, keepdims=True)  # (B, 1)
    dead = total[:, 0] <= 0
    out = np.where(dead[:, None], 0.0, out / np.where(dead, 1.0, total[:, 0])[:, None])
    out[dead, T] = 1.0
    return out


def viable(cg: CompiledGrammar, w: np.ndarray, max_length: int) -> bool:
    """False when some prefix of the sentence ``w`` (terminal ids) surely has probability 0.

    Cheap tests first: a token no rule produces (id -1), a first token no sentence starts with. Then,
    for a sentence longer than ``PREFIX_CHECK`` tokens, its prefixes of 64, 128, 256, ... tokens (up to
    ``max_length``) by their prefix probabilities (eqs. (7)-(8)), each costing a chart of its own
    length only: a line the grammar cannot even begin is scored -inf without the chart of its whole
    length. True means "not ruled out": the full chart decides. Without prefix probabilities (an
    inconsistent grammar, ``cg.first`` is None) only the first test is made.
    """
    n = len(w)
    if n == 0:
        return True
    if np.any(w < 0):
        return False
    if cg.first is None:
        return True
    if not cg.first[w[0]]:
        return False
    k = PREFIX_CHECK
    while k < n:
        k = min(k, max_length)
        try:
            if next_token_probs(cg, w[None, : k - 1], max_length)[0, w[k - 1]] <= 0:  # Pre(x_1..x_k) = 0
                return False
        except ResourceError:  # even the prefix's chart is too large: the full check will say so
            break
        if k == max_length:
            break
        k *= 2
    return True
