"""Exact scoring of sentences: inside probabilities, Viterbi parses and expected rule counts.

**Compilation** (probability preserving). Every rule is rewritten so that a right-hand side has at
most two symbols, without changing the probability of any tree: a terminal inside a longer rule
becomes a pre-terminal ``<a> -> 'a' [1]``, and ``A -> Y_1 Y_2 ... Y_k [p]`` becomes
``A -> Y_1 @1 [p]``, ``@1 -> Y_2 @2 [1]``, ..., ``@(k-2) -> Y_(k-1) Y_k [1]``. The compiled
grammar has empty rules ``A -> ''``, lexical rules ``A -> 'a'``, unit rules ``A -> B`` and binary
rules ``A -> B C``; empty and unit rules stay (no grammar transformation is needed for them).

Letters: x_1..x_n the sentence, N compiled nonterminals, beta[i, j, A] = P(A =>* x_{i+1}..x_j)
(the inside probability of A over the span (i, j]), R binary rules, p their probabilities.

**Empty spans.** E[A] = beta[i, i, A] = P(A =>* '') is the least solution of the polynomial system

    E[A] = sum_{A -> ''} p + sum_{A -> B} p E[B] + sum_{A -> B C} p E[B] E[C]                     (1)

found by fixed-point iteration from 0 then Newton steps (both increase monotonically towards it).

**Spans of length >= 1.** A rule can cover the whole span with one child when its sibling derives
'' (or when it is a unit rule). Collecting those terms into the matrix

    U[A, B] = sum_{A -> B} p + sum_{A -> B C} p E[C] + sum_{A -> C B} p E[C]        (N, N)          (2)

the inside recursion over a span is linear in its own unknowns:

    base[i, j, A] = [j = i + 1] sum_{A -> x_j} p + sum_{A -> B C} p sum_{i < k < j} beta[i,k,B] beta[k,j,C]   (3)
    beta[i, j] = base[i, j] + U beta[i, j]   =>   beta[i, j] = (I - U)^-1 base[i, j]                        (4)

(I - U)^-1 is computed once per grammar: it sums every chain of unit steps (including left-recursive
chains through nullable symbols). U <= M elementwise (M the expected-children matrix of
:mod:`~scratchgen.grammar.analysis`), so rho(U) < 1 for every consistent grammar. P(x) = beta[0, n, S].
Spans are filled by increasing length, all spans of one length in a vectorised step: O(n^3 R).

**Scaling.** Long sentences underflow float64, so the chart holds beta'[i, j] = beta[i, j] s^(j-i) for a
per-token scale s. Eqs. (3)-(4) are homogeneous in that factor (a product of two spans of lengths a and
b is scaled by s^(a+b), the lexical term by s), so the recursion is unchanged with s multiplying the
lexical term, and log P(x) = log beta'[0, n, S] - n log s. When the values of a length stray outside
[1e-150, 1e150] every filled span is rescaled by r^(j-i) and s by r.

**Viterbi.** The same recursion in the (max, +) semiring on log-probabilities, with Emax and Umax in
place of E and U (best instead of total) and back-pointers; the best tree is rebuilt without
recursion and the compilation undone (``@`` nodes spliced out, pre-terminals turned back into tokens).

**Expected counts (inside-outside).** Z = P(x) is a polynomial in the rule probabilities in which a
derivation using rule r c times contributes a monomial with p_r^c, so the expected number of uses of r
in a derivation of x is

    count(r) = p_r dZ/dp_r / Z                                                                            (5)

and the derivative is reverse-mode differentiation of eqs. (1)-(4): the outside pass. With
alpha[i, j] = dZ/dbeta[i, j] and g[i, j] = dZ/dbase[i, j] = alpha[i, j] (I - U)^-1 (row vectors),
spans are visited from the longest down; eq. (3) sends g to the two children; U collects
G = sum_spans g^T beta; E receives e = dZ/dE through eq. (2) and passes lambda = e (I - J)^-1 back to the
rules of eq. (1), whose Jacobian J equals U.

**Prefix probabilities** (Jelinek and Lafferty's, for this compiled form). PP[k, A] is the total
probability that A derives a string *starting with* x_{k+1}..x_m (anything may follow). For a binary
rule either B's yield runs to the end of the prefix (C is then anything: probability 1), or B yields
exactly x_{k+1}..x_j with j < m and C's yield starts with the rest; B deriving '' (j = k) stays in
the closure::

    U_pre[A, B] = sum_{A -> B} p + sum_{A -> B C} p + sum_{A -> C B} p E[C]                   (N, N)      (6)
    PP[m-1] = (I - U_pre)^-1 lex[x_m],   PP[k] = (I - U_pre)^-1 sum_{A -> B C} p sum_{k<j<m} beta[k,j,B] PP[j,C]   (7)

and Pre(x_1..x_m) = PP[0, S]. Every PP[k] is linear in the last token's lexical vector, so for all
tokens a at once Pre(x_1..x_{m-1} a) = h . lex[a], with h obtained by one backward (adjoint) pass
through eq. (7) from dPre/dPP[0] = e_S::

    Pre(x_<m a) = h . lex[a]   for every terminal a: one matrix product, (T, N) @ (N,)               (8)

which gives the next-token distribution of the stepping interface of :class:`~scratchgen.grammar.GrammarModel`.

**Guards.** A chart holds (n+1)^2 (N + 2R) numbers, so memory grows as the square of a sentence's length.
Before any chart is built, :meth:`ChartParser.viable` rules out a sentence with a token no rule produces,
a first token no sentence starts with, or (for a long sentence) a prefix of 64, 128, ... tokens whose
prefix probability is 0: each costs a chart of the prefix's length only, and the sentence scores -inf.
A sentence that passes and is longer than ``max_length`` (``--max-length``) is refused with the memory
its chart would need (:meth:`ChartParser.check_length`, :func:`scratchgen.resources.check_memory`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import GrammarError, ResourceError
from ..resources import check_memory, format_bytes
from .analysis import _reachable
from .rules import Grammar, Terminal, Tree

__all__ = ["ChartParser"]

EMPTY, LEX, UNIT, BINARY = 0, 1, 2, 3
_LOW, _HIGH = 1e-150, 1e150
#: The longest sentence (in tokens) a chart is built for, unless ``max_length`` says otherwise
#: (``--max-length`` on the command line). A chart holds (n+1)^2 (N + 2R) float64 numbers: with the
#: built-in English grammar (N + 2R = 160) 400 tokens take about 200 MiB, 1,000 tokens 1.2 GiB.
DEFAULT_MAX_LENGTH = 400
#: Prefixes of this many tokens, then twice as many, and so on, are checked before a longer sentence's
#: chart is built: one that has probability 0 makes the sentence's probability 0 at once.
PREFIX_CHECK = 64


class ChartParser:
    """A grammar compiled for exact scoring, Viterbi parsing and inside-outside counts.

    >>> g = Grammar.fromstring("S -> S S [0.4] | 'a' [0.6]")
    >>> p = ChartParser(g)
    >>> round(math.exp(p.logprob(["a", "a"])), 12)   # one tree: 0.4 * 0.6 * 0.6
    0.144
    >>> round(math.exp(p.logprob(["a", "a", "a"])), 12)   # two trees: 2 * 0.4^2 * 0.6^3
    0.06912
    """

    def __init__(self, grammar: Grammar, max_length: int = DEFAULT_MAX_LENGTH):
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
            raise GrammarError(f"max_length must be an int >= 1, got {max_length!r}")
        self.grammar = grammar
        self.max_length = int(max_length)
        labels = _reachable(grammar)  # symbols the start cannot reach change no probability: left out
        index = {a: i for i, a in enumerate(labels)}
        self.terminal_index = {t: i for i, t in enumerate(grammar.terminals)}
        # Compiled rules: (kind, lhs, x, y, prob, orig) with x, y symbol indices (x the terminal for LEX).
        compiled: list[tuple] = []
        preterminal: dict[str, int] = {}

        def sym(s) -> int:
            if not isinstance(s, Terminal):
                return index[s]
            if s not in preterminal:
                preterminal[s] = len(labels)
                labels.append(f"<{s}>")
                compiled.append((LEX, preterminal[s], self.terminal_index[s], -1, 1.0, -1))
            return preterminal[s]

        for r_i, r in enumerate(grammar.rules):
            if r.lhs not in index:
                continue
            a = index[r.lhs]
            k = len(r.rhs)
            if k == 0:
                compiled.append((EMPTY, a, -1, -1, r.prob, r_i))
            elif k == 1 and isinstance(r.rhs[0], Terminal):
                compiled.append((LEX, a, self.terminal_index[r.rhs[0]], -1, r.prob, r_i))
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
        self.labels = labels
        self.n_original = len(index)
        self.start = index[grammar.start]
        self.rules = compiled
        N = len(labels)
        self.N = N
        R = sum(1 for c in compiled if c[0] == BINARY)
        # About a dozen (N, N) tables (closures, Viterbi chains) and three (R, N) scatter matrices.
        check_memory(8 * (12 * N * N + 3 * R * N), f"compiling a grammar of {N} symbols and {R} binary rules",
                     "use a smaller grammar")
        kind = np.array([c[0] for c in compiled], dtype=np.int64)
        cols = [np.array([c[i] for c in compiled], dtype=np.int64) for i in (1, 2, 3)]
        prob = np.array([c[4] for c in compiled], dtype=np.float64)
        self.orig = np.array([c[5] for c in compiled], dtype=np.int64)
        self.kind, self.prob = kind, prob
        self.r_lhs, self.r_x, self.r_y = cols
        self.b_idx = np.flatnonzero(kind == BINARY)
        self.u_idx = np.flatnonzero(kind == UNIT)
        self.e_idx = np.flatnonzero(kind == EMPTY)
        self.l_idx = np.flatnonzero(kind == LEX)
        self.bA, self.bB, self.bC, self.bp = (self.r_lhs[self.b_idx], self.r_x[self.b_idx], self.r_y[self.b_idx],
                                              prob[self.b_idx])
        R = len(self.b_idx)
        self.onehotA = np.zeros((R, N))  # (R, N) scatters rule values into their left-hand sides
        self.onehotA[np.arange(R), self.bA] = 1.0
        self.onehotB = np.zeros((R, N))
        self.onehotB[np.arange(R), self.bB] = 1.0
        self.onehotC = np.zeros((R, N))
        self.onehotC[np.arange(R), self.bC] = 1.0
        self.bBC = np.concatenate([self.bB, self.bC])  # (2R,)
        # Lexical probabilities: (terminals, N).
        self.lex = np.zeros((len(grammar.terminals), N))
        np.add.at(self.lex, (self.r_x[self.l_idx], self.r_lhs[self.l_idx]), prob[self.l_idx])
        self._null_probabilities()
        self._unit_closure()
        self._viterbi_tables()

    # --- eqs. (1), (2) -------------------------------------------------------------------------------

    def _f(self, E: np.ndarray) -> np.ndarray:
        """Right-hand side of eq. (1)."""
        out = np.zeros(self.N)
        np.add.at(out, self.r_lhs[self.e_idx], self.prob[self.e_idx])
        np.add.at(out, self.r_lhs[self.u_idx], self.prob[self.u_idx] * E[self.r_x[self.u_idx]])
        np.add.at(out, self.bA, self.bp * E[self.bB] * E[self.bC])
        return out

    def _jacobian(self, E: np.ndarray) -> np.ndarray:
        """d f / d E of eq. (1), which is also U of eq. (2): (N, N)."""
        U = np.zeros((self.N, self.N))
        np.add.at(U, (self.r_lhs[self.u_idx], self.r_x[self.u_idx]), self.prob[self.u_idx])
        np.add.at(U, (self.bA, self.bB), self.bp * E[self.bC])
        np.add.at(U, (self.bA, self.bC), self.bp * E[self.bB])
        return U

    def _null_probabilities(self) -> None:
        E = np.zeros(self.N)
        if len(self.e_idx):
            for _ in range(50):  # fixed-point iteration from 0: increases towards the least solution
                E = self._f(E)
            for _ in range(100):  # Newton steps on E = f(E)
                F = self._f(E) - E
                if np.max(np.abs(F)) < 1e-15:
                    break
                try:
                    step = np.linalg.solve(np.eye(self.N) - self._jacobian(E), F)
                except np.linalg.LinAlgError:
                    E = self._f(E)
                    continue
                E = np.clip(E + step, 0.0, 1.0)
        self.E = E  # (N,) eq. (1)

    def _unit_closure(self) -> None:
        self.U = self._jacobian(self.E)  # (N, N) eq. (2)
        try:
            self.Ustar = np.linalg.inv(np.eye(self.N) - self.U)  # (N, N) (I - U)^-1 of eq. (4)
        except np.linalg.LinAlgError:
            raise GrammarError("unit or empty rules form a cycle of probability 1: the grammar is inconsistent "
                               "(run 'scratchgen grammar check')") from None
        if np.any(self.Ustar < -1e-9) or not np.all(np.isfinite(self.Ustar)):
            raise GrammarError("chains of unit rules (through symbols deriving '') have total probability >= 1: "
                               "the grammar is inconsistent (run 'scratchgen grammar check')")
        self.Ustar = np.maximum(self.Ustar, 0.0)
        self.UstarT = np.ascontiguousarray(self.Ustar.T)
        self.W = (self.bp[:, None] * self.onehotA) @ self.UstarT  # (R, N)

    # --- inside ----------------------------------------------------------------------------------------

    def terminal_ids(self, tokens: Sequence[str]) -> np.ndarray:
        """Indices of tokens among the grammar's terminals (-1 for a token the grammar never produces).

        When the grammar has the terminal ``<unk>``, every token it does not name is read as ``<unk>``,
        as every model scores an out-of-vocabulary token.
        """
        get = self.terminal_index.get
        unknown = get("<unk>", -1)
        return np.array([get(t, unknown) for t in tokens], dtype=np.int64)

    # --- guards: refuse or short-cut before a chart is allocated -----------------------------------------

    def chart_bytes(self, n: int, batch: int = 1) -> int:
        """Bytes of the charts of ``batch`` sentences of ``n`` tokens: (n+1)^2 B (N + 2R) float64 numbers."""
        return (n + 1) ** 2 * batch * (self.N + 2 * len(self.bB)) * 8

    def check_length(self, n: int, batch: int = 1, which: str = "a sentence") -> None:
        """Refuse a chart for a sentence longer than ``max_length`` or larger than the memory allowed.

        Raises :class:`~scratchgen.errors.ResourceError` with the estimate (see :mod:`scratchgen.resources`);
        ``which`` names the sentence in the message ("sentence 12").
        """
        need = self.chart_bytes(n, batch)
        if n > self.max_length:
            raise ResourceError(f"{which} has {n} tokens, more than max_length={self.max_length} "
                                f"(--max-length), the longest the chart parser takes: its chart would need about "
                                f"{format_bytes(self.chart_bytes(n))}; split the text into sentences, or raise "
                                "--max-length")
        check_memory(need, f"the chart of {batch} sentence(s) of {n} tokens",
                     "split the text into shorter sentences")

    def viable(self, w: np.ndarray) -> bool:
        """False when some prefix of the sentence ``w`` (terminal ids) surely has probability 0.

        Cheap tests first: a token no rule produces (id -1), a first token no sentence starts with. Then,
        for a sentence longer than ``PREFIX_CHECK`` tokens, its prefixes of 64, 128, 256, ... tokens (up to
        ``max_length``) by their prefix probabilities (eqs. (6)-(8)), each costing a chart of its own
        length only: a line the grammar cannot even begin is scored -inf without the chart of its whole
        length. True means "not ruled out": the full chart decides.
        """
        n = len(w)
        if n == 0:
            return True
        if np.any(w < 0):
            return False
        first = self._first_tokens()
        if first is not None and not first[w[0]]:
            return False
        k = PREFIX_CHECK
        while k < n and first is not None:
            k = min(k, self.max_length)
            try:
                if self.next_token_probs(w[None, :k - 1])[0, w[k - 1]] <= 0:  # Pre(x_1..x_k) = 0
                    return False
            except ResourceError:  # even the prefix's chart is too large: the full check will say so
                break
            if k == self.max_length:
                break
            k *= 2
        return True

    def _first_tokens(self):
        """(T,) bool: which terminals some sentence starts with; None if prefix probabilities do not exist."""
        if not hasattr(self, "_first"):
            try:
                self._first = self.next_token_probs(np.zeros((1, 0), dtype=np.int64))[0, :-1] > 0
            except GrammarError:
                self._first = None
        return self._first

    def _chart(self, w: np.ndarray):
        """Scaled inside chart of one sentence by length, C[L, i, A] = beta'[i, i+L, A], and log s.

        None if the sentence surely has probability 0 (see :meth:`viable`).
        """
        if len(w) == 0 or not self.viable(w):
            return None
        C, log_s = self._chart_batch(w[None, :], np.array([len(w)]))
        return C[:, 0], float(log_s[0])

    def _chart_batch(self, w: np.ndarray, lengths: np.ndarray, with_left: bool = False):
        """Charts of B sentences at once, padded to one length n: C[L, b, i, A] of shape (n+1, B, n+1, N).

        ``w`` (B, n) holds terminal ids, -1 for padding or an unknown token (no lexical rule covers it,
        so no span containing it has a non-zero inside value: a sentence's spans never see its padding).
        Layout by length makes the children of every span of one length two slices of the chart (no
        index arrays): the left child of (i, i+L) split at i+d is C[d, i], the right one C[L-d, i+d].
        Returns C and log s (B,), the per-sentence scales (and CL, the spans at bB, if ``with_left``).
        """
        Bn, n = w.shape
        self.check_length(n, Bn)
        lex = np.where((w >= 0)[:, :, None], self.lex[np.maximum(w, 0)], 0.0)  # (B, n, N)
        top = lex.max(axis=2)  # (B, n)
        real = np.arange(n)[None, :] < lengths[:, None]  # (B, n)
        logtop = np.log(np.where(real & (top > 0), top, 1.0))  # (B, n) 0 where no scale is needed
        log_s = -logtop.sum(axis=1) / np.maximum(lengths, 1)  # (B,)
        C = np.zeros((n + 1, Bn, n + 1, self.N))  # (n+1, B, n+1, N)
        R = len(self.bB)
        # Each span's values as a left child (gathered at bB, indexed by start) and as a right child
        # (at bC, indexed by end), stored once when the span is filled. Then the children of all spans
        # of length L are two plain slices: left C[d, i] = CL[1:L, :S], right C[L-d, i+d] = CRe[L-1:0:-1, L:L+S].
        CL = np.zeros((n + 1, Bn, n + 1, R))  # (n+1, B, n+1, R) by (length, start)
        CRe = np.zeros((n + 1, Bn, n + 1, R))  # (n+1, B, n+1, R) by (length, end)
        C[1, :, :n] = (lex * np.exp(log_s)[:, None, None]) @ self.UstarT  # eqs. (3)-(4) for length 1
        both = C[1, :, :n][..., self.bBC]  # (B, n, 2R) one gather for both roles
        CL[1, :, :n], CRe[1, :, 1:] = both[..., :R], both[..., R:]
        for L in range(2, n + 1):
            S = n - L + 1
            left = CL[1:L, :, :S]  # (D, B, S, R)   d = 1..L-1
            right = CRe[L - 1:0:-1, :, L:L + S]  # (D, B, S, R)   lengths L-1..1, ends i+L
            prod = np.einsum("dbsr,dbsr->bsr", left, right)  # (B, S, R)
            span = prod @ self.W  # (B, S, N) eqs. (3)-(4): W = diag(p) onehot(A) (I - U)^-T
            C[L, :, :S] = span
            both = span[..., self.bBC]  # (B, S, 2R)
            CL[L, :, :S], CRe[L, :, L:] = both[..., :R], both[..., R:]
            if Bn == 1:  # scalar test: the common case costs one reduction
                top = float(span.max())
                stray = top > 0 and (top < _LOW or top > _HIGH)
            else:
                m = span.reshape(Bn, -1).max(axis=1)  # (B,)
                need = (m > 0) & ((m < _LOW) | (m > _HIGH))
                stray = bool(need.any())
            if stray:  # some sentence strays: rescale its spans by r^length
                m = span.reshape(Bn, -1).max(axis=1)  # (B,)
                need = (m > 0) & ((m < _LOW) | (m > _HIGH))
                log_r = np.where(need, -np.log(np.where(need, m, 1.0)) / L, 0.0)  # (B,)
                factor = np.exp(np.arange(1, L + 1)[:, None] * log_r[None, :])[:, :, None, None]  # (L, B, 1, 1)
                C[1:L + 1] *= factor
                CL[1:L + 1] *= factor
                CRe[1:L + 1] *= factor
                log_s += log_r
        return (C, log_s, CL) if with_left else (C, log_s)

    def batch_size(self, n: int, limit: int = 64, budget_bytes: float = 2e8) -> int:
        """How many sentences of length n share one chart: at most ``limit``, and charts of (n+1)^2 B (N + 2R)
        numbers within ``budget_bytes``."""
        return int(max(1, min(limit, budget_bytes // max(self.chart_bytes(n), 1))))

    def logprobs(self, sentences: Sequence[Sequence[str]], batch: int = 64) -> np.ndarray:
        """log P of many sentences: sentences of similar length share one batched chart. Shape (S,).

        A sentence ruled out by :meth:`viable` gets -inf without a chart; one longer than ``max_length``
        is refused (:meth:`check_length`).
        """
        ids = [self.terminal_ids(s) for s in sentences]
        out = np.full(len(ids), -np.inf)
        alive = [k for k, x in enumerate(ids) if self.viable(x)]
        for k in alive:
            self.check_length(len(ids[k]), which=f"sentence {k + 1}" if len(ids) > 1 else "the sentence")
        order = np.array(alive, dtype=np.int64)[np.argsort([len(ids[k]) for k in alive], kind="stable")]
        k = 0
        while k < len(order):
            longest = len(ids[order[min(k + batch, len(order)) - 1]])  # sorted: the last is the longest
            rows = order[k:k + self.batch_size(longest, batch)]
            k += len(rows)
            lengths = np.array([len(ids[r]) for r in rows])
            n = int(lengths.max())
            if n == 0:
                out[rows] = math.log(self.E[self.start]) if self.E[self.start] > 0 else -np.inf
                continue
            w = np.full((len(rows), n), -1, dtype=np.int64)  # (B, n)
            for b, r in enumerate(rows):
                w[b, : lengths[b]] = ids[r]
            C, log_s = self._chart_batch(w, lengths)
            z = C[lengths, np.arange(len(rows)), 0, self.start]  # (B,)
            with np.errstate(divide="ignore"):
                lp = np.where(z > 0, np.log(np.where(z > 0, z, 1.0)) - lengths * log_s, -np.inf)
            empty = lengths == 0
            if empty.any():
                lp[empty] = math.log(self.E[self.start]) if self.E[self.start] > 0 else -np.inf
            bad = np.array([np.any(ids[r] < 0) for r in rows])
            lp[bad] = -np.inf
            out[rows] = lp
        return out

    def _inside(self, w: np.ndarray):
        """The chart of :meth:`_chart` in span layout beta'[i, j, A] (what the outside pass reads)."""
        res = self._chart(w)
        if res is None:
            return None
        C, log_s = res
        n = len(w)
        beta = np.zeros_like(C)  # (n+1, n+1, N)
        L, i = np.nonzero(np.ones((n + 1, n + 1), dtype=bool))
        keep = (L >= 1) & (i + L <= n)
        beta[i[keep], i[keep] + L[keep]] = C[L[keep], i[keep]]
        return beta, log_s

    def logprob(self, tokens: Sequence[str]) -> float:
        """log P(tokens) by eqs. (1)-(4): the sum over every derivation; -inf if none exists."""
        w = self.terminal_ids(tokens)
        n = len(w)
        if n == 0:
            e = self.E[self.start]
            return math.log(e) if e > 0 else -math.inf
        res = self._chart(w)  # None when a prefix surely has probability 0 (no chart built)
        if res is None:
            return -math.inf
        C, log_s = res
        z = C[n, 0, self.start]
        return math.log(z) - n * log_s if z > 0 else -math.inf

    # --- prefix probabilities (eqs. 6-8) ---------------------------------------------------------------

    def _prefix_tables(self) -> None:
        """U_pre of eq. (7) and (I - U_pre)^-1, made on first use."""
        if hasattr(self, "Pstar"):
            return
        U = np.zeros((self.N, self.N))  # (N, N)
        np.add.at(U, (self.r_lhs[self.u_idx], self.r_x[self.u_idx]), self.prob[self.u_idx])
        np.add.at(U, (self.bA, self.bB), self.bp)  # B's yield runs past the prefix: C is anything
        np.add.at(U, (self.bA, self.bC), self.bp * self.E[self.bB])  # B derives '', C starts the prefix
        try:
            Pstar = np.linalg.inv(np.eye(self.N) - U)  # (N, N)
        except np.linalg.LinAlgError:
            Pstar = None
        if Pstar is None or np.any(Pstar < -1e-9) or not np.all(np.isfinite(Pstar)):
            raise GrammarError("left-corner chains have total probability >= 1, so prefix probabilities do not "
                               "exist (the grammar is inconsistent: run 'scratchgen grammar check')")
        self.Pstar = np.maximum(Pstar, 0.0)
        self.pC = self.bp[:, None] * self.onehotC  # (R, N)

    def next_token_probs(self, w: np.ndarray) -> np.ndarray:
        """P(next = a | prefix) for every terminal a, and P(end | prefix) last: (B, T+1) from prefixes (B, t).

        ``w`` holds terminal ids (-1: a token no rule produces). Eqs. (6)-(8): the prefix probability of
        the prefix extended by a is h . lex[a], with h the adjoint of eq. (6) with respect to the last
        position's lexical vector; the end has probability P(prefix), and each row is normalised by
        their sum, which is P(prefix) for a consistent grammar. An impossible prefix gets the end with
        probability 1.
        """
        self._prefix_tables()
        Bn, t = w.shape
        T = self.lex.shape[0]
        out = np.zeros((Bn, T + 1))
        if t == 0:
            h = np.broadcast_to(self.Pstar[self.start], (Bn, self.N))  # (B, N) e_S (I - U_pre)^-1
            end = np.full(Bn, self.E[self.start])
        else:
            C, log_s, CL = self._chart_batch(w, np.full(Bn, t), with_left=True)  # CL: (t+1, B, t+1, R)
            m = t + 1
            bar = np.zeros((Bn, m, self.N))  # (B, m, N) dz/dPP[k]
            bar[:, 0, self.start] = 1.0
            for k in range(m - 1):
                qbar = bar[:, k] @ self.Pstar  # (B, N) eq. (8) backwards through the closure
                # Eq. (6): PP[k] gets p beta[k, j, B] PP[j, C] for k < j < m: send qbar to every such PP[j].
                beta_left = CL[1:m - k, :, k]  # (J, B, R) beta'[k, k+1..t] at bB
                wgt = beta_left * qbar[None, :, :][:, :, self.bA]  # (J, B, R)
                bar[:, k + 1:m] += np.einsum("jbr,rn->bjn", wgt, self.pC)
            h = bar[:, m - 1] @ self.Pstar  # (B, N)
            end = C[t, :, 0, self.start]  # (B,) P(prefix) s^t, the same scale as h . lex[a]
        out[:, :T] = h @ self.lex.T  # (B, T) prefix probabilities of prefix + a (times s^t)
        out[:, T] = end
        if t > 0:
            out[np.any(w < 0, axis=1)] = 0.0
        out = np.maximum(out, 0.0)
        total = out.sum(axis=1, keepdims=True)  # (B, 1)
        dead = total[:, 0] <= 0
        out = np.where(dead[:, None], 0.0, out / np.where(dead, 1.0, total[:, 0])[:, None])
        out[dead, T] = 1.0
        return out

    # --- outside: expected counts (eq. 5) --------------------------------------------------------------

    def expected_counts(self, tokens: Sequence[str]) -> tuple[np.ndarray, float]:
        """Expected uses of each *original* rule in a derivation of ``tokens``, and log P(tokens).

        Returns (counts of shape (rules,), logprob); counts are zero when log P = -inf.
        """
        N = self.N
        w = self.terminal_ids(tokens)
        n = len(w)
        counts = np.zeros(len(self.rules))  # over compiled rules
        G = np.zeros((N, N))  # dZ/dU, eq. (2)
        if n == 0:
            z = self.E[self.start]
            if z <= 0:
                return np.zeros(len(self.grammar.rules)), -math.inf
            e = np.zeros(N)
            e[self.start] = 1.0
            logz = math.log(z)
        else:
            res = self._inside(w)
            if res is None or res[0][0, n, self.start] <= 0:
                return np.zeros(len(self.grammar.rules)), -math.inf
            beta, log_s = res
            s = math.exp(log_s)
            z = beta[0, n, self.start]
            logz = math.log(z) - n * log_s
            alpha = np.zeros_like(beta)  # (n+1, n+1, N) dZ'/dbeta'
            alpha[0, n, self.start] = 1.0
            b_counts = np.zeros(len(self.b_idx))
            for L in range(n, 0, -1):
                i = np.arange(n - L + 1)[:, None]  # (S, 1)
                a = alpha[i[:, 0], i[:, 0] + L]  # (S, N)
                g = a @ self.Ustar  # (S, N) dZ/dbase
                G += g.T @ beta[i[:, 0], i[:, 0] + L]  # (N, N)
                if L == 1:
                    lex = self.lex[w] * s  # (n, N)
                    li = self.l_idx
                    hit = self.r_x[li][None, :] == w[:, None]  # (n, RL)
                    counts[li] += (hit * g[:, self.r_lhs[li]]).sum(axis=0) * self.prob[li] * s
                    continue
                d = np.arange(1, L)[None, :]  # (1, D)
                left = beta[i, i + d][:, :, self.bB]  # (S, D, R)
                right = beta[i + d, i + L][:, :, self.bC]  # (S, D, R)
                wgt = g[:, self.bA] * self.bp  # (S, R)
                b_counts += np.einsum("sr,sdr,sdr->r", wgt, left, right)
                alpha[i, i + d] += (wgt[:, None, :] * right) @ self.onehotB  # (S, D, N)
                alpha[i + d, i + L] += (wgt[:, None, :] * left) @ self.onehotC  # (S, D, N)
            counts[self.b_idx] += b_counts
            # Uses through U (eq. 2): unit rules, and binary rules with one child deriving ''.
            ui = self.u_idx
            counts[ui] += self.prob[ui] * G[self.r_lhs[ui], self.r_x[ui]]
            E = self.E
            counts[self.b_idx] += self.bp * (E[self.bC] * G[self.bA, self.bB] + E[self.bB] * G[self.bA, self.bC])
            e = np.zeros(N)  # dZ/dE
            np.add.at(e, self.bC, self.bp * G[self.bA, self.bB])
            np.add.at(e, self.bB, self.bp * G[self.bA, self.bC])
        # Uses inside derivations of '' (eq. 1): lambda = e (I - J)^-1 with J = U.
        if np.any(e):
            lam = e @ self.Ustar  # (N,)
            E = self.E
            ei, ui = self.e_idx, self.u_idx
            counts[ei] += self.prob[ei] * lam[self.r_lhs[ei]]
            counts[ui] += self.prob[ui] * lam[self.r_lhs[ui]] * E[self.r_x[ui]]
            counts[self.b_idx] += self.bp * lam[self.bA] * E[self.bB] * E[self.bC]
        counts /= z  # eq. (5)
        out = np.zeros(len(self.grammar.rules))
        heads = self.orig >= 0
        np.add.at(out, self.orig[heads], counts[heads])
        return out, logz

    # --- Viterbi ---------------------------------------------------------------------------------------

    def _viterbi_tables(self) -> None:
        N = self.N
        with np.errstate(divide="ignore"):
            logp = np.log(self.prob)
        self.logp = logp
        # Emax: best log-probability of deriving '' and the rule that achieves it (Bellman-Ford; probs <= 1).
        Emax = np.full(N, -np.inf)
        Echoice = np.full(N, -1, dtype=np.int64)
        for _ in range(N + 1):
            changed = False
            for q in np.concatenate([self.e_idx, self.u_idx, self.b_idx]):
                k, a, x, y = self.kind[q], self.r_lhs[q], self.r_x[q], self.r_y[q]
                v = logp[q] + (0.0 if k == EMPTY else Emax[x]) + (Emax[y] if k == BINARY else 0.0)
                if v > Emax[a] + 1e-12:
                    Emax[a], Echoice[a] = v, q
                    changed = True
            if not changed:
                break
        self.Emax, self.Echoice = Emax, Echoice
        # Umax[A, B]: best single step from A to B covering the same span; Uarg: (rule, side of B).
        Umax = np.full((N, N), -np.inf)
        Urule = np.full((N, N), -1, dtype=np.int64)
        Uside = np.zeros((N, N), dtype=np.int64)
        for q in self.u_idx:
            a, b = self.r_lhs[q], self.r_x[q]
            if logp[q] > Umax[a, b]:
                Umax[a, b], Urule[a, b], Uside[a, b] = logp[q], q, 0
        for q in self.b_idx:
            a, b, c = self.r_lhs[q], self.r_x[q], self.r_y[q]
            v = logp[q] + Emax[c]  # B covers the span, C derives ''
            if v > Umax[a, b]:
                Umax[a, b], Urule[a, b], Uside[a, b] = v, q, 0
            v = logp[q] + Emax[b]  # C covers the span, B derives ''
            if v > Umax[a, c]:
                Umax[a, c], Urule[a, c], Uside[a, c] = v, q, 1
        self.Umax, self.Urule, self.Uside = Umax, Urule, Uside
        # Best chains of unit steps (max-plus Floyd-Warshall; log-probabilities <= 0, so no gainful cycle):
        # Wmax[A, B] best log-probability of a chain A -> ... -> B of length >= 1, hop[A, B] its first step.
        Wmax = Umax.copy()  # (N, N)
        hop = np.where(np.isfinite(Umax), np.arange(N)[None, :], -1)  # (N, N)
        for k in range(N):
            cand = Wmax[:, k:k + 1] + Wmax[k:k + 1, :]  # (N, N) through k
            better = cand > Wmax + 1e-12
            Wmax = np.where(better, cand, Wmax)
            hop = np.where(better, hop[:, k:k + 1], hop)
        self.Wmax, self.hop = Wmax, hop
        # Wmax is sparse: for each A the (padded) list of chain ends B with a finite Wmax[A, B].
        ends = [np.flatnonzero(np.isfinite(Wmax[a])) for a in range(N)]
        width = max([len(e) for e in ends] + [1])
        self.chain_end = np.zeros((N, width), dtype=np.int64)  # (N, W)
        self.chain_val = np.full((N, width), -np.inf)  # (N, W)
        for a, e in enumerate(ends):
            self.chain_end[a, : len(e)] = e
            self.chain_val[a, : len(e)] = Wmax[a, e]
        # Binary rules grouped by left-hand side for the (max, +) version of eq. (3).
        R = len(self.b_idx)
        groups: list[list[int]] = [[] for _ in range(N)]
        for r in range(R):
            groups[self.bA[r]].append(r)
        width = max([len(g) for g in groups] + [1])
        table = np.full((N, width), R, dtype=np.int64)  # R points at a padding column of -inf
        for a, g in enumerate(groups):
            table[a, : len(g)] = g
        self.group_table = table
        self.lexlog = np.full(self.lex.shape, -np.inf)
        np.log(self.lex, out=self.lexlog, where=self.lex > 0)

    def _closure_max(self, base: np.ndarray):
        """best[A] = max(base[A], max_B Wmax[A, B] + base[B]): (S, N) values and (S, N) chain ends (-1: none)."""
        cand = base[:, self.chain_end] + self.chain_val  # (S, N, W) padding is -inf
        k = cand.argmax(axis=2)  # (S, N)
        val = cand.max(axis=2)  # (S, N)
        better = val > base + 1e-12
        end = self.chain_end[np.arange(self.N)[None, :], k]  # (S, N)
        return np.where(better, val, base), np.where(better, end, -1)

    def viterbi(self, tokens: Sequence[str]) -> tuple[float, Tree | None]:
        """The most probable derivation of ``tokens``: (log-probability, Tree); (-inf, None) if none."""
        w = self.terminal_ids(tokens)
        n = len(w)
        if n == 0:
            if self.Emax[self.start] == -np.inf:
                return -math.inf, None
            return float(self.Emax[self.start]), self._build(None, None, None, 0)
        if not self.viable(w):
            return -math.inf, None
        self.check_length(n)
        N = self.N
        # Back-pointers by (length, start, symbol): end of the best unit chain (-1: none), binary rule
        # (index into b_idx; -1: none) and its split point.
        came = np.full((n + 1, n, N), -1, dtype=np.int64)  # (n+1, n, N)
        brule = np.full((n + 1, n, N), -1, dtype=np.int64)  # (n+1, n, N)
        bsplit = np.zeros((n + 1, n, N), dtype=np.int64)  # (n+1, n, N)
        R = len(self.b_idx)
        # Best log inside of each span as a left child (at bB, by start) and a right child (at bC, by end).
        VL = np.full((n + 1, n + 1, R), -np.inf)  # (n+1, n+1, R) by (length, start)
        VRe = np.full((n + 1, n + 1, R), -np.inf)  # (n+1, n+1, R) by (length, end)
        logbp = np.log(self.bp)
        valpad = np.full((n, R + 1), -np.inf)  # (n, R+1) the last column pads group_table
        kpad = np.zeros((n, R + 1), dtype=np.int64)  # (n, R+1)
        ar = np.arange(n)
        best, c = self._closure_max(self.lexlog[w])
        came[1] = c
        VL[1, :n], VRe[1, 1:] = best[:, self.bB], best[:, self.bC]
        for L in range(2, n + 1):
            S = n - L + 1
            tot = VL[1:L, :S] + VRe[L - 1:0:-1, L:L + S]  # (D, S, R) left C[d, i] + right C[L-d, i+d]
            kpad[:S, :R] = tot.argmax(axis=0)  # (S, R) best split offset - 1
            valpad[:S, :R] = tot.max(axis=0) + logbp  # (S, R)
            grouped = valpad[:S][:, self.group_table]  # (S, N, W)
            g_arg = grouped.argmax(axis=2)  # (S, N)
            base = grouped.max(axis=2)  # (S, N) eq. (3) in (max, +)
            rule = self.group_table[np.arange(N)[None, :], g_arg]  # (S, N) index into b_idx (R = none)
            best, c = self._closure_max(base)
            starts = ar[:S, None]  # (S, 1)
            came[L, :S] = c
            VL[L, :S], VRe[L, L:] = best[:, self.bB], best[:, self.bC]
            brule[L, :S] = np.where(rule < R, rule, -1)
            bsplit[L, :S] = starts + 1 + kpad[starts, rule]
        score = float(best[0, self.start])  # the last length filled is n: the whole sentence
        if score == -np.inf:
            return -math.inf, None
        return score, self._build(came, brule, bsplit, n, w)

    def _build(self, came, brule, bsplit, n, w=None) -> Tree:
        """Rebuild the best tree from back-pointers (explicit stack) and undo the compilation."""
        root = Tree(self.labels[self.start], [])
        # Work items: (node to fill, symbol, i, j, closed); j == i means "derive ''".
        stack = [(root, self.start, 0, n, True)]
        while stack:
            node, a, i, j, closed = stack.pop()
            if i == j:  # the best derivation of '' (Echoice)
                q = self.Echoice[a]
                kind = self.kind[q]
                kids = [] if kind == EMPTY else [self.r_x[q]] + ([self.r_y[q]] if kind == BINARY else [])
                items = [(s, i, i) for s in kids]
            elif closed and came[j - i, i, a] >= 0:  # first step of the best unit chain, eq. (4)
                b = self.hop[a, came[j - i, i, a]]
                q, side = self.Urule[a, b], self.Uside[a, b]
                if self.kind[q] == UNIT:
                    items = [(b, i, j)]
                elif side == 0:
                    items = [(b, i, j), (self.r_y[q], j, j)]
                else:
                    items = [(self.r_x[q], i, i), (b, i, j)]
            elif j == i + 1:  # lexical rule
                node.children.append(self.grammar.terminals[w[i]])
                continue
            else:  # binary rule at its best split, eq. (3)
                r, k = brule[j - i, i, a], bsplit[j - i, i, a]
                items = [(self.bB[r], i, k), (self.bC[r], k, j)]
            for s, ci, cj in items:  # children appended left to right now; filled later
                child = (Tree if s < self.n_original else _Hidden)(self.labels[s], [])
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
