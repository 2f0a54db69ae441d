"""Inside probabilities: the chart of eqs. (3)-(4), batched over sentences and rescaled against underflow.

Read :func:`scratchgen.grammar.reference.inside_chart` first (a triple loop over spans, one sentence, dicts);
this module computes the same beta on the :class:`~scratchgen.grammar.compile.CompiledGrammar`.

Letters: x_1..x_n the sentence, N compiled nonterminals, R binary rules ``A -> B C`` with probabilities p,
beta[i, j, A] = P(A =>* x_{i+1}..x_j) the inside probability of A over the span (i, j], E and U of
eqs. (1)-(2) of :mod:`~scratchgen.grammar.compile`. For a span of length >= 1::

    base[i, j, A] = [j = i + 1] sum_{A -> x_j} p + sum_{A -> B C} p sum_{i < k < j} beta[i,k,B] beta[k,j,C]   (3)
    beta[i, j] = base[i, j] + U beta[i, j]   =>   beta[i, j] = (I - U)^-1 base[i, j]                        (4)

P(x) = beta[0, n, S]. Spans are filled by increasing length, all spans of one length (and of every
sentence of the batch) in one vectorised step: O(n^3 R).

**The transformations from the reference, and why.**

- *Layout by length.* The chart is C[L, b, i, A] = beta[i, i+L, A] for sentence b: the children of every
  span of length L, split at i+d, are then two plain slices (left C[d, i], right C[L-d, i+d]), no index
  arrays. Each span is also stored gathered at the rules' B (by start) and C (by end), so the sum over
  splits of eq. (3) is one ``einsum`` over (d, b, s, r), and eq. (4) one product with
  W = diag(p) onehot(A) (I - U)^-T of shape (R, N).
- *Batching.* Sentences of similar length share one chart, padded with the id -1, which no lexical rule
  covers: no span that contains padding has a non-zero value, so a sentence never sees it.
- *Scaling.* Long sentences underflow float64, so the chart holds beta'[i, j] = beta[i, j] s^(j-i) for a
  per-token scale s. Eqs. (3)-(4) are homogeneous in that factor (a product of two spans of lengths a
  and b is scaled by s^(a+b), the lexical term by s), so the recursion is unchanged with s multiplying
  the lexical term, and log P(x) = log beta'[0, n, S] - n log s. When the values of a length stray
  outside [1e-150, 1e150] every filled span is rescaled by r^(j-i) and s by r.

**Guards.** A chart holds (n+1)^2 (N + 2R) numbers, so memory grows as the square of a sentence's length.
:func:`chart_batch` calls :func:`check_length` before it allocates: a sentence longer than ``max_length``
(``--max-length``) is refused with the memory its chart would need
(:func:`scratchgen.resources.check_memory`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ResourceError
from ..resources import check_memory, format_bytes
from .compile import CompiledGrammar
from .settings import DEFAULT_MAX_LENGTH

__all__ = ["DEFAULT_MAX_LENGTH", "batch_size", "chart_batch", "chart_bytes", "check_length", "span_chart"]

_LOW, _HIGH = 1e-150, 1e150  # a length's values outside this range are rescaled


def chart_bytes(cg: CompiledGrammar, n: int, batch: int = 1) -> int:
    """Bytes of the charts of ``batch`` sentences of ``n`` tokens: (n+1)^2 B (N + 2R) float64 numbers."""
    return (n + 1) ** 2 * batch * (cg.N + 2 * cg.R) * 8


def check_length(cg: CompiledGrammar, n: int, max_length: int, batch: int = 1, which: str = "a sentence") -> None:
    """Refuse a chart for a sentence longer than ``max_length`` or larger than the memory allowed.

    Raises :class:`~scratchgen.errors.ResourceError` with the estimate (see :mod:`scratchgen.resources`);
    ``which`` names the sentence in the message ("sentence 12").
    """
    if n > max_length:
        raise ResourceError(
            f"{which} has {n} tokens, more than max_length={max_length} "
            f"(--max-length), the longest the chart parser takes: its chart would need about "
            f"{format_bytes(chart_bytes(cg, n))}; split the text into sentences, or raise "
            "--max-length"
        )
    check_memory(
        chart_bytes(cg, n, batch),
        f"the chart of {batch} sentence(s) of {n} tokens",
        "split the text into shorter sentences",
    )


def batch_size(cg: CompiledGrammar, n: int, limit: int = 64, budget_bytes: float = 2e8) -> int:
    """How many sentences of length n share one chart: at most ``limit``, and charts of (n+1)^2 B (N + 2R)
    numbers within ``budget_bytes``."""
    return int(max(1, min(limit, budget_bytes // max(chart_bytes(cg, n), 1))))


def chart_batch(
    cg: CompiledGrammar,
    w: np.ndarray,
    lengths: np.ndarray,
    max_length: int,
    with_left: bool = False,
    with_right: bool = False,
    with_products: bool = False,
):
    """Charts of B sentences at once, padded to one length n: C[L, b, i, A] of shape (n+1, B, n+1, N).

    ``w`` (B, n) holds terminal ids, -1 for padding or an unknown token (no lexical rule covers it,
    so no span containing it has a non-zero inside value: a sentence's spans never see its padding).
    Returns C and log s (B,), the per-sentence scales; then CL, the spans at bB by (length, start), if
    ``with_left``, CRe, the spans at bC by (length, end), if ``with_right``, and P[L, b, i, r], the sum over
    splits of eq. (3) for each binary rule r (before its probability), if ``with_products`` (the outside
    pass reads all three).
    """
    Bn, n = w.shape
    check_length(cg, n, max_length, Bn)
    lex = np.where((w >= 0)[:, :, None], cg.lex[np.maximum(w, 0)], 0.0)  # (B, n, N)
    top = lex.max(axis=2)  # (B, n)
    real = np.arange(n)[None, :] < lengths[:, None]  # (B, n)
    logtop = np.log(np.where(real & (top > 0), top, 1.0))  # (B, n) 0 where no scale is needed
    log_s = -logtop.sum(axis=1) / np.maximum(lengths, 1)  # (B,)
    C = np.zeros((n + 1, Bn, n + 1, cg.N))  # (n+1, B, n+1, N)
    R = cg.R
    # Each span's values as a left child (gathered at bB, indexed by start) and as a right child
    # (at bC, indexed by end), stored once when the span is filled. Then the children of all spans
    # of length L are two plain slices: left C[d, i] = CL[1:L, :S], right C[L-d, i+d] = CRe[L-1:0:-1, L:L+S].
    CL = np.zeros((n + 1, Bn, n + 1, R))  # (n+1, B, n+1, R) by (length, start)
    CRe = np.zeros((n + 1, Bn, n + 1, R))  # (n+1, B, n+1, R) by (length, end)
    P = np.zeros((n + 1, Bn, n + 1, R)) if with_products else None  # (n+1, B, n+1, R) by (length, start)
    C[1, :, :n] = (lex * np.exp(log_s)[:, None, None]) @ cg.UstarT  # eqs. (3)-(4) for length 1
    both = C[1, :, :n][..., cg.bBC]  # (B, n, 2R) one gather for both roles
    CL[1, :, :n], CRe[1, :, 1:] = both[..., :R], both[..., R:]
    for L in range(2, n + 1):
        S = n - L + 1
        left = CL[1:L, :, :S]  # (D, B, S, R)   d = 1..L-1
        right = CRe[L - 1 : 0 : -1, :, L : L + S]  # (D, B, S, R)   lengths L-1..1, ends i+L
        prod = np.einsum("dbsr,dbsr->bsr", left, right)  # (B, S, R)
        if P is not None:
            P[L, :, :S] = prod
        span = prod @ cg.W  # (B, S, N) eqs. (3)-(4): W = diag(p) onehot(A) (I - U)^-T
        C[L, :, :S] = span
        both = span[..., cg.bBC]  # (B, S, 2R)
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
            C[1 : L + 1] *= factor
            CL[1 : L + 1] *= factor
            CRe[1 : L + 1] *= factor
            if P is not None:
                P[1 : L + 1] *= factor
            log_s += log_r
    return (C, log_s) + ((CL,) if with_left else ()) + ((CRe,) if with_right else ()) + ((P,) if with_products else ())


def span_chart(C: np.ndarray) -> np.ndarray:
    """One sentence's chart by length, C[L, i, A] = beta'[i, i+L, A], in span layout beta'[i, j, A].

    Shape (n+1, n+1, N); the empty spans (i = j) stay 0 (the outside pass handles them through E).
    """
    n = C.shape[0] - 1
    beta = np.zeros_like(C)  # (n+1, n+1, N)
    L, i = np.nonzero(np.ones((n + 1, n + 1), dtype=bool))
    keep = (L >= 1) & (i + L <= n)
    beta[i[keep], i[keep] + L[keep]] = C[L[keep], i[keep]]
    return beta
