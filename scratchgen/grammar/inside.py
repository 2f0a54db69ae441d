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

- *Layout by length.* The chart is C[L, i, b, A] = beta[i, i+L, A] for sentence b (:func:`fill`;
  :func:`chart_batch` shows it as C[L, b, i, A]). Each span is also stored gathered at the rules' B, by
  start (Bs), and at their C, by end (Ce): the children of every span of length L split at i+d are then
  two plain slices (Bs[d, i] and Ce[L-d, i+L]), no index arrays, and the sum over splits of eq. (3) is one
  ``einsum`` over (d, s, b, r). The sentence axis inside the span's coordinates makes the spans of one
  length a single block, so eq. (4) is one matrix product for all of them, with
  W = diag(p) onehot(A) (I - U)^-T (R, N) extended by its gathers at B and C: one product writes all three
  layouts.
- *Batching.* Sentences of similar length share one chart, padded with the id -1, which no lexical rule
  covers: no span that contains padding has a non-zero value, so a sentence never sees it.
- *Scaling.* Long sentences underflow float64, so the chart holds beta'[i, j] = beta[i, j] s^(j-i) for a
  per-token scale s. Eqs. (3)-(4) are homogeneous in that factor (a product of two spans of lengths a
  and b is scaled by s^(a+b), the lexical term by s), so the recursion is unchanged with s multiplying
  the lexical term, and log P(x) = log beta'[0, n, S] - n log s. When the values of a length stray
  outside [1e-150, 1e150] every filled span is rescaled by r^(j-i) and s by r.

**Guards.** A chart holds (n+1)^2 (N + 2R) numbers (N + 4R in the E step, with the outside sums), so
memory grows as the square of a sentence's length.
:func:`chart_batch` calls :func:`check_length` before it allocates: a sentence longer than ``max_length``
(``--max-length``) is refused with the memory its chart would need
(:func:`scratchgen.resources.check_memory`).
"""

from __future__ import annotations

import math
import weakref
from typing import NamedTuple

import numpy as np

from ..errors import ResourceError
from ..resources import check_memory, format_bytes
from .compile import CompiledGrammar
from .settings import DEFAULT_MAX_LENGTH

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "Charts",
    "Workspace",
    "batch_size",
    "chart_batch",
    "chart_bytes",
    "check_length",
    "fill",
    "span_chart",
]

_LOW, _HIGH = 1e-150, 1e150  # a length's values outside this range are rescaled


def chart_bytes(cg: CompiledGrammar, n: int, batch: int = 1, outside: bool = False) -> int:
    """Bytes of the charts of ``batch`` sentences of ``n`` tokens: (n+1)^2 B (N + 2R) float64 numbers, or
    (n+1)^2 B (N + 4R) with the outside values of the E step (``outside``)."""
    return (n + 1) ** 2 * batch * (cg.N + (4 if outside else 2) * cg.R) * 8


def check_length(
    cg: CompiledGrammar, n: int, max_length: int, batch: int = 1, which: str = "a sentence", outside: bool = False
) -> None:
    """Refuse a chart for a sentence longer than ``max_length`` or larger than the memory allowed.

    Raises :class:`~scratchgen.errors.ResourceError` with the estimate (see :mod:`scratchgen.resources`);
    ``which`` names the sentence in the message ("sentence 12"); ``outside``: the charts of the E step.
    """
    if n > max_length:
        raise ResourceError(
            f"{which} has {n} tokens, more than max_length={max_length} "
            f"(--max-length), the longest the chart parser takes: its chart would need about "
            f"{format_bytes(chart_bytes(cg, n))}; split the text into sentences, or raise "
            "--max-length"
        )
    check_memory(
        chart_bytes(cg, n, batch, outside),
        f"the chart of {batch} sentence(s) of {n} tokens",
        "split the text into shorter sentences",
    )


def batch_size(cg: CompiledGrammar, n: int, limit: int = 64, budget_bytes: float = 2e8, outside: bool = False) -> int:
    """How many sentences of length n share one chart: at most ``limit``, and charts of
    :func:`chart_bytes` within ``budget_bytes``."""
    return int(max(1, min(limit, budget_bytes // max(chart_bytes(cg, n, outside=outside), 1))))


def chart_batch(cg: CompiledGrammar, w: np.ndarray, lengths: np.ndarray, max_length: int, with_left: bool = False):
    """Charts of B sentences at once, padded to one length n: C[L, b, i, A] of shape (n+1, B, n+1, N).

    ``w`` (B, n) holds terminal ids, -1 for padding or an unknown token (no lexical rule covers it,
    so no span containing it has a non-zero inside value: a sentence's spans never see its padding).
    Returns C and log s (B,), the per-sentence scales (and CL[L, b, i, r], the spans at bB by (length,
    start), if ``with_left``): views of the charts of :func:`fill` in the order (length, sentence, start,
    symbol) that the parser and the prefix probabilities index.
    """
    ch = fill(cg, w, lengths, max_length)
    out = (ch.C.transpose(0, 2, 1, 3), ch.log_s)
    return out + (ch.Bs.transpose(0, 2, 1, 3),) if with_left else out


class Workspace:
    """Memory that the charts of one batch after another reuse (the E step over a corpus).

    A new NumPy array of a few MB comes from fresh pages, and the first write to each page costs a page
    fault: for the E step's many charts of a few hundred sentences each, that costs more than the
    arithmetic. With a workspace, the charts of :func:`fill` and the outside pass's sums are views of
    buffers kept from one batch to the next (grown when a batch needs more). Their entries are left as
    the previous batch wrote them: a pass reads only the positions it wrote first, and the outside pass
    zeroes its sums itself.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The buffer ``name`` as an array of ``shape``, its entries unspecified."""
        size = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            buf = self._buffers[name] = np.zeros(size)
        return buf[:size].reshape(shape)


class Charts(NamedTuple):
    """The inside charts of a batch by (length, position, sentence); see :func:`fill`."""

    C: np.ndarray  # (n+1, n+1, B, K) C[L, i, b, k] = beta'[i, i+L, symbols[k]] by (length, start)
    Bs: np.ndarray  # (n+1, n+1, B, R) the same at the rules' bB (as a left child), by (length, start)
    Ce: np.ndarray  # (n+1, n+1, B, R) at bC (as a right child), by (length, end)
    log_s: np.ndarray  # (B,) the per-token scales


def fill(
    cg: CompiledGrammar,
    w: np.ndarray,
    lengths: np.ndarray,
    max_length: int,
    symbols: np.ndarray | None = None,
    outside: bool = False,
    workspace: Workspace | None = None,
) -> Charts:
    """The inside charts of B sentences padded to one length n, by (length, position, sentence).

    ``w`` (B, n) terminal ids (-1: padding or a token no rule produces), ``lengths`` (B,) the true
    lengths. C[L, i, b, k] = beta'[i, i+L, A] of sentence b for the symbols A = ``symbols[k]`` (default:
    all N, in order; the E step asks only for those it reads). Bs and Ce hold the same spans gathered at
    the rules' left children bB by start i and at their right children bC by end j = i+L, which is how
    eq. (3) reads them: the children of every span of length L split at i+d are the plain slices
    Bs[1:L, i] (lengths d = 1..L-1) and Ce[L-1:0:-1, i+L]. ``outside`` only says, to the memory check, that
    the outside pass of the E step will add two more charts of R columns (:func:`chart_bytes`). With a
    ``workspace`` the charts are views of its buffers, and only the positions that name a span are written.

    The sentence axis sits inside the span's coordinates, so the spans of one length are one contiguous
    block (S, B, .) and each length costs one matrix product over all of them. Positions that name no
    span (i + L > n by start, j < L by end) stay 0, so sums over them add nothing.
    """
    Bn, n = w.shape
    check_length(cg, n, max_length, Bn, outside=outside)
    R = cg.R
    T = cg.lex.shape[0]
    wt = np.where(w.T >= 0, w.T, T)  # (n, B) padding and unknown tokens read the row of zeros, T
    top = np.append(cg.lex.max(axis=1), 0.0)[wt]  # (n, B) each token's largest lexical probability
    real = np.arange(n)[:, None] < lengths[None, :]  # (n, B)
    logtop = np.log(np.where(real & (top > 0), top, 1.0))  # (n, B) 0 where no scale is needed
    log_s = -logtop.sum(axis=0) / np.maximum(lengths, 1)  # (B,)

    def chart(name, width):
        shape = (n + 1, n + 1, Bn, width)  # (n+1, n+1, B, width)
        return np.zeros(shape) if workspace is None else workspace.array(name, shape)

    close_lex, close = _closing(cg, symbols)
    K = close.shape[1] - 2 * R
    ch = Charts(chart("C", K), chart("Bs", R), chart("Ce", R), log_s)
    # Length 1, eqs. (3)-(4): each distinct token's lexical vector closed once, lex[a] (I - U)^-T.
    tokens, at = np.unique(wt, return_inverse=True)  # (V,) the batch's distinct ids (T: padding)
    lex = np.where((tokens < T)[:, None], cg.lex[np.minimum(tokens, T - 1)], 0.0)  # (V, N)
    _store(ch, 1, (lex @ close_lex)[at.reshape(n, Bn)] * np.exp(log_s)[None, :, None])  # (n, B, K + 2R)
    for L in range(2, n + 1):
        S = n - L + 1
        left = ch.Bs[1:L, :S]  # (D, S, B, R)   (i, i+d) at bB, d = 1..L-1
        right = ch.Ce[L - 1 : 0 : -1, L : L + S]  # (D, S, B, R)   (i+d, i+L) at bC
        prod = np.einsum("dsbr,dsbr->sbr", left, right)  # (S, B, R) eq. (3): the sum over splits
        out = (prod.reshape(S * Bn, R) @ close).reshape(S, Bn, K + 2 * R)  # eq. (4)
        _store(ch, L, out)
        m = out.max(axis=(0, 2))  # (B,) every symbol that is stored or read as a child
        need = (m > 0) & ((m < _LOW) | (m > _HIGH))
        if need.any():  # some sentence strays: rescale its spans by r^length
            log_r = np.where(need, -np.log(np.where(need, m, 1.0)) / L, 0.0)  # (B,)
            factor = np.exp(np.arange(1, L + 1)[:, None] * log_r[None, :])[:, :, None]  # (L, B, 1)
            for k in range(1, L + 1):  # the spans of length k
                ch.C[k, : n - k + 1] *= factor[k - 1]
                ch.Bs[k, : n - k + 1] *= factor[k - 1]
                ch.Ce[k, k:] *= factor[k - 1]
            log_s += log_r
    return ch


_CLOSING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # CompiledGrammar -> {symbols: tables}


def _closing(cg: CompiledGrammar, symbols: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The products that close a span (eq. (4)), each followed by its gathers at bB and bC, made once per grammar.

    A product with [M[:, symbols] | M[:, bB] | M[:, bC]] gives a span's values and its two gathered
    layouts at once. Returns ((I - U)^-T so extended (N, K + 2R), for the lexical vectors of length 1; and
    W = diag(p) onehot(A) (I - U)^-T so extended (R, K + 2R), for the longer spans).
    """
    keep = np.arange(cg.N) if symbols is None else np.asarray(symbols)
    cache = _CLOSING.setdefault(cg, {})
    tables = cache.get(keep.tobytes())
    if tables is None:

        def extend(M):
            return np.hstack([M[:, keep], M[:, cg.bB], M[:, cg.bC]])

        tables = cache[keep.tobytes()] = (extend(cg.UstarT), extend(cg.W))
    return tables


def _store(ch: Charts, L: int, out: np.ndarray) -> None:
    """Writes the spans of length L, ``out`` (S, B, K + 2R) = [values | at bB | at bC], into every layout."""
    S, K, R = out.shape[0], ch.C.shape[3], ch.Bs.shape[3]
    ch.C[L, :S] = out[..., :K]
    ch.Bs[L, :S] = out[..., K : K + R]
    ch.Ce[L, L : L + S] = out[..., K + R :]


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
