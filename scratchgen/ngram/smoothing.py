"""Smoothing strategies: from n-gram counts to a backoff model P(w | h).

Every strategy turns :class:`~scratchgen.ngram.counting.NGramCounts` into the *backoff form* that ARPA
files store: for each counted n-gram ``h w`` a probability p(w | h), and for each context h a backoff
weight b(h), so that for any history (h the last N - 1 tokens, h' = h without its first token)::

    P(w | h) = p(w | h)             if h w was counted                                            (1)
             = b(h) P(w | h')       otherwise (b(h) = 1 when h was never a context)

Interpolated strategies first give each counted n-gram a discounted share u and each context the mass
gamma it leaves to the shorter context, then fold the lower order in (Chen and Goodman 1999, eq. 2)::

    p(w | h) = u(h w) + gamma(h) P(w | h'),         b(h) = gamma(h)                              (2)
    P(w | <empty>) = u(w) + gamma(<empty>) / V'     V' = V - 1 (the vocabulary without <s>)      (3)

so the unigrams are interpolated with the uniform distribution and ``<unk>`` (never counted) gets only
its uniform share. With c the raw count, a the adjusted count of counting.py eq. (3), d(h) = sum_w c(h w)
(or sum_w a(h w)), T(h) = |{w : c(h w) > 0}| and n_j the number of n-grams of an order with count j:

=====================  =========================================  ==========================================
strategy               u(h w)                                     gamma(h)
=====================  =========================================  ==========================================
absolute discounting   max(c - D, 0) / d(h)                       D T(h) / d(h);  D = n1 / (n1 + 2 n2)  (4)
Witten-Bell            c / (d(h) + T(h))                          T(h) / (d(h) + T(h))                   (5)
Kneser-Ney             max(a - D, 0) / d(h)    (adjusted counts)  D T(h) / d(h);  D = n1 / (n1 + 2 n2)  (6)
modified Kneser-Ney    (a - D_a) / d(h)        (adjusted counts)  sum_j D_j T_j(h) / d(h)               (7)
=====================  =========================================  ==========================================

Modified Kneser-Ney is KenLM ``lmplz``'s (``initial_probabilities.cc``, ``interpolate.cc``): D_a = D_min(a,3),
T_j(h) counts the words after h with adjusted count j (3 meaning 3 or more), and per order::

    Y = n1 / (n1 + 2 n2),     D_j = j - (j + 1) Y n_{j+1} / n_j       j = 1, 2, 3                  (8)

with the fallback (D_1, D_2, D_3) = (0.5, 1, 1.5) of ``lmplz --discount_fallback`` when some n_j (j <= 3) is 0
or some D_j falls outside [0, j].

Three strategies do not interpolate:

- maximum likelihood: p(w | h) = c(h w) / d(h) and b(h) = 0 for every seen context, so an unseen word after
  a seen context has probability 0 (infinite perplexity: the price of MLE) while an unseen context uses the
  longest seen one;
- add-k (Lidstone; Laplace for k = 1): P(w | h) = (c(h w) + k) / (d(h) + k V') with h the whole context
  (N - 1 tokens, or all since ``<s>``); an unseen context gives the uniform 1 / V'. In backoff form the
  shorter n-grams carry 1 / V' and the whole contexts b(h) = k V' / (d(h) + k V'), so eq. (1) gives it exactly;
- stupid backoff (Brants et al. 2007): p(w | h) = c(h w) / d(h), b(h) = alpha (0.4), unigrams add-k. Its
  scores do not sum to 1 (it is not a distribution), as the contract suite records.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ScratchgenError
from ..text import Vocabulary
from .counting import NGramCounts

__all__ = [
    "Estimate",
    "Smoothing",
    "MLE",
    "AddK",
    "AbsoluteDiscounting",
    "WittenBell",
    "KneserNey",
    "ModifiedKneserNey",
    "StupidBackoff",
    "SMOOTHINGS",
    "make_smoothing",
    "kenlm_discounts",
]

BOS = Vocabulary.bos_id
FALLBACK = (0.5, 1.0, 1.5)


@dataclasses.dataclass
class Estimate:
    """A model in backoff form, eq. (1): per order n, ``prob[n-1]`` p(w | h) of each counted n-gram (for
    n = 1 all V ids, ``<s>`` 0) and ``bow[n-1]`` b(g) of each n-gram g as a context (1 if it is none)."""

    prob: list
    bow: list
    discounts: list = dataclasses.field(default_factory=list)  # per order, for the record


def _context_sum(counts: NGramCounts, n: int, values: np.ndarray) -> np.ndarray:
    """sum of ``values`` over the n-grams of each context: shape (U_{n-1},), or (1,) for n = 1."""
    size = 1 if n == 1 else len(counts.keys[n - 2])
    return np.bincount(counts.context(n), weights=values, minlength=size).astype(np.float64)


def _safe_div(a: np.ndarray, b: np.ndarray, empty: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), empty)


def _one_discount(c: np.ndarray, given) -> float:
    """D = n1 / (n1 + 2 n2) (eqs. (4), (6)), or the given one; 0.5 where the formula is undefined."""
    if given is not None:
        return float(given)
    n1, n2 = np.count_nonzero(c == 1), np.count_nonzero(c == 2)
    if n1 == 0:
        return 0.5
    return n1 / (n1 + 2.0 * n2)


def kenlm_discounts(adjusted: np.ndarray) -> tuple[tuple[float, float, float], bool]:
    """(D_1, D_2, D_3) of eq. (8) from one order's adjusted counts, and whether the fallback was used."""
    n = [np.count_nonzero(adjusted == j) for j in range(5)]  # n[j]: n-grams with adjusted count j
    if min(n[1], n[2], n[3]) == 0:
        return FALLBACK, True
    y = n[1] / (n[1] + 2.0 * n[2])
    d = tuple(j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3))
    if any(not 0.0 <= d[j - 1] <= j for j in (1, 2, 3)):
        return FALLBACK, True
    return d, False


class Smoothing:
    """A strategy: ``estimate(counts) -> Estimate``. ``normalized`` is False if rows do not sum to 1."""

    name = "?"
    normalized = True

    def estimate(self, counts: NGramCounts) -> Estimate:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Interpolated(Smoothing):
    """Eqs. (2)-(3) from u and gamma; subclasses give ``shares(counts, n) -> (u, gamma, discount)``."""

    def shares(self, counts: NGramCounts, n: int):
        raise NotImplementedError

    def estimate(self, counts: NGramCounts) -> Estimate:
        V, N = counts.vocab_size, counts.order
        probs, gammas, discounts = [], [], []
        for n in range(1, N + 1):
            u, gamma, d = self.shares(counts, n)  # (U_n,), (U_{n-1},)
            discounts.append(d)
            gammas.append(gamma)
            if n == 1:
                p = u + gamma[0] / (V - 1)  # eq. (3)
                p[BOS] = 0.0
            else:
                p = u + gamma[counts.context(n)] * probs[-1][counts.suffix[n - 1]]  # eq. (2)
            probs.append(p)
        bows = [gammas[n] for n in range(1, N)] + [np.ones(len(probs[-1]))]
        return Estimate(probs, bows, discounts)


class AbsoluteDiscounting(_Interpolated):
    """Interpolated absolute discounting, eq. (4); ``discount`` D in (0, 1) or None for n1 / (n1 + 2 n2)."""

    name = "absolute"

    def __init__(self, discount: float | None = None):
        if discount is not None and not (isinstance(discount, (int, float)) and 0 < discount < 1):
            raise ScratchgenError(f"the absolute discount must be a number in (0, 1), got {discount!r}")
        self.discount = discount

    def _counts(self, counts: NGramCounts, n: int) -> np.ndarray:
        return counts.counts[n - 1]

    def shares(self, counts, n):
        c = self._counts(counts, n).astype(np.float64)
        D = _one_discount(c, self.discount)
        d = _context_sum(counts, n, c)
        seen = _context_sum(counts, n, (c > 0).astype(np.float64))
        u = np.maximum(c - D, 0.0) / np.maximum(d, 1e-300)[counts.context(n)]
        return u, _safe_div(D * seen, d, 1.0), D


class KneserNey(AbsoluteDiscounting):
    """Interpolated Kneser-Ney with one discount an order, eq. (6), on lmplz's adjusted counts."""

    name = "kneser-ney"

    def estimate(self, counts):
        self._adjusted = counts.adjusted_counts()
        return super().estimate(counts)

    def _counts(self, counts, n):
        return self._adjusted[n - 1]


class WittenBell(_Interpolated):
    """Interpolated Witten-Bell, eq. (5)."""

    name = "witten-bell"

    def shares(self, counts, n):
        c = counts.counts[n - 1].astype(np.float64)
        d = _context_sum(counts, n, c)
        T = _context_sum(counts, n, (c > 0).astype(np.float64))
        u = c / np.maximum(d + T, 1e-300)[counts.context(n)]
        return u, _safe_div(T, d + T, 1.0), None


class ModifiedKneserNey(_Interpolated):
    """Interpolated modified Kneser-Ney exactly as KenLM's lmplz: eqs. (7)-(8).

    ``discount``: None (eq. (8) per order, with the fallback) or three numbers (D_1, D_2, D_3) for every order.
    """

    name = "modified-kneser-ney"

    def __init__(self, discount=None):
        if discount is not None:
            try:
                ok = len(discount) == 3 and all(0 <= float(d) <= j for j, d in zip((1, 2, 3), discount))
            except TypeError:
                ok = False
            if not ok:
                raise ScratchgenError(f"modified Kneser-Ney discounts are three numbers 0 <= D_j <= j, got {discount!r}")
        self.discount = discount

    def estimate(self, counts):
        self._adjusted = counts.adjusted_counts()
        return super().estimate(counts)

    def shares(self, counts, n):
        a = self._adjusted[n - 1]
        if self.discount is not None:
            D = tuple(float(d) for d in self.discount)
        else:
            D, _ = kenlm_discounts(a)
        table = np.array((0.0,) + D)  # D_0 = 0, D_1, D_2, D_3+
        klass = np.minimum(a, 3)  # (U_n,) which discount applies
        af = a.astype(np.float64)
        d = _context_sum(counts, n, af)
        mass = _context_sum(counts, n, table[klass] * (a > 0))  # sum_j D_j T_j(h)
        u = (af - table[klass]) / np.maximum(d, 1e-300)[counts.context(n)]
        return u, _safe_div(mass, d, 1.0), D


class MLE(Smoothing):
    """Maximum likelihood: p(w | h) = c(h w) / d(h); unseen word after a seen context: probability 0."""

    name = "mle"

    def estimate(self, counts):
        probs, bows = [], []
        for n in range(1, counts.order + 1):
            c = counts.counts[n - 1].astype(np.float64)
            d = _context_sum(counts, n, c)
            probs.append(c / np.maximum(d, 1e-300)[counts.context(n)])
            if n > 1:
                bows.append(np.where(d > 0, 0.0, 1.0))
        bows.append(np.ones(len(probs[-1])))
        return Estimate(probs, bows)


class AddK(Smoothing):
    """Add-k (Lidstone; Laplace for k = 1) on the whole context; see the module docstring."""

    name = "add-k"

    def __init__(self, k: float = 1.0):
        if not isinstance(k, (int, float)) or isinstance(k, bool) or not np.isfinite(k) or k <= 0:
            raise ScratchgenError(f"k must be a finite number > 0, got {k!r}")
        self.k = float(k)

    def estimate(self, counts):
        V, N, k = counts.vocab_size, counts.order, self.k
        Vp = V - 1
        probs, bows = [], []
        for n in range(1, N + 1):
            c = counts.counts[n - 1].astype(np.float64)
            d = _context_sum(counts, n, c)
            whole = np.full(len(c), n == N) | counts.bos_start[n - 1]  # the n-gram's context is whole
            p = np.where(whole, (c + k) / (d[counts.context(n)] + k * Vp), 1.0 / Vp)
            if n == 1:
                p[BOS] = 0.0
            probs.append(p)
            if n > 1:  # the (n-1)-grams as contexts of the n-grams
                whole_ctx = np.full(len(d), n == N) | counts.bos_start[n - 2]
                bows.append(np.where(whole_ctx, k * Vp / (d + k * Vp), 1.0))
        bows.append(np.ones(len(probs[-1])))
        return Estimate(probs, bows)


class StupidBackoff(Smoothing):
    """Stupid backoff: relative frequencies, b(h) = alpha, add-k unigrams. Not normalised."""

    name = "stupid-backoff"
    normalized = False

    def __init__(self, alpha: float = 0.4, k: float = 1.0):
        if not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise ScratchgenError(f"the stupid-backoff factor alpha must be in (0, 1], got {alpha!r}")
        self.alpha, self.k = float(alpha), AddK(k).k

    def estimate(self, counts):
        V = counts.vocab_size
        probs, bows = [], []
        for n in range(1, counts.order + 1):
            c = counts.counts[n - 1].astype(np.float64)
            d = _context_sum(counts, n, c)
            if n == 1:
                p = (c + self.k) / (d[0] + self.k * (V - 1))
                p[BOS] = 0.0
            else:
                p = c / np.maximum(d, 1e-300)[counts.context(n)]
                bows.append(np.where(d > 0, self.alpha, 1.0))
            probs.append(p)
        bows.append(np.ones(len(probs[-1])))
        return Estimate(probs, bows)


SMOOTHINGS = ("mle", "add-k", "absolute", "witten-bell", "kneser-ney", "modified-kneser-ney", "stupid-backoff")


def make_smoothing(name: str, k: float = 1.0, discount=None) -> Smoothing:
    """The strategy called ``name`` (one of :data:`SMOOTHINGS`) with its settings."""
    if name == "mle":
        return MLE()
    if name == "add-k":
        return AddK(k)
    if name == "absolute":
        return AbsoluteDiscounting(discount)
    if name == "witten-bell":
        return WittenBell()
    if name == "kneser-ney":
        if discount is not None and not (isinstance(discount, (int, float)) and 0 < discount < 1):
            raise ScratchgenError(f"the Kneser-Ney discount must be a number in (0, 1), got {discount!r}")
        return KneserNey(discount)
    if name == "modified-kneser-ney":
        return ModifiedKneserNey(discount)
    if name == "stupid-backoff":
        return StupidBackoff(0.4 if discount is None else discount, k)
    raise ScratchgenError(f"smoothing must be one of {SMOOTHINGS}, got {name!r}")
