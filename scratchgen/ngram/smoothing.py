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

**One recursion, stateless strategies.** A strategy is a frozen dataclass of its hyperparameters (D, k,
alpha) whose one method ``weights(counts, c, n) -> (u, gamma, D)`` gives, for order n and the count table c it
reads (raw counts, or the adjusted counts for the Kneser-Ney pair), the shares u of the counted n-grams and
gamma of their contexts. The discount D of an order depends on the whole table only through its counts of
counts n_0 .. n_4 (:func:`count_of_counts`): ``order_discount(n_j)`` computes it, and ``weights(..., D=D)``
takes it given, so :mod:`.external_smoothing` runs the same ``weights`` on blocks of whole contexts.
:func:`backoff_form` is the only place that turns them into an :class:`Estimate`:
for an interpolated strategy by eqs. (2)-(3); for the three others u is p(w | h) itself and gamma is b(h)
(maximum likelihood's gamma is 0 for a seen context, add-k's and stupid backoff's unigrams are whole).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from ..text import Vocabulary
from .counting import NGramCounts
from .settings import (  # the rules on the settings live with the names (settings.py), re-exported here
    DEFAULT_ALPHA,
    SMOOTHINGS,
    check_alpha,
    check_discount,
    check_k,
    check_settings,
    legacy_alpha,
)

__all__ = [
    "MLE",
    "SMOOTHINGS",
    "AbsoluteDiscounting",
    "AddK",
    "Estimate",
    "KneserNey",
    "ModifiedKneserNey",
    "Smoothing",
    "StupidBackoff",
    "WittenBell",
    "backoff_form",
    "check_settings",
    "count_of_counts",
    "kenlm_discounts",
    "kenlm_discounts_of",
    "make_smoothing",
]

BOS = Vocabulary.bos_id
FALLBACK = (0.5, 1.0, 1.5)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A model in backoff form, eq. (1): per order n, ``prob[n-1]`` p(w | h) of each counted n-gram (for
    n = 1 all V ids, ``<s>`` 0) and ``bow[n-1]`` b(g) of each n-gram g as a context (1 if it is none)."""

    prob: list
    bow: list
    discounts: list = dataclasses.field(default_factory=list)  # per order, for the record
    below: float = 0.0  # gamma(<empty>): the mass the unigrams leave below them (the uniform of eq. (3))


# --- the one recursion ----------------------------------------------------------------------------------------


def backoff_form(strategy, counts: NGramCounts, uniform: bool = True, keep: float = 1.0) -> Estimate:
    """The model in backoff form, eq. (1), from a strategy's shares u and gamma of every order.

    An interpolated strategy folds the lower order into each counted n-gram, eqs. (2)-(3); any other stores u
    as p(w | h) and gamma as b(h). ``<s>`` is never predicted: its unigram probability is 0.

    ``uniform=False`` (interpolated strategies only) leaves the uniform share of eq. (3) out: p(w | h) is then
    the mass the counts of h w and of its suffixes give, each lower order's weighted by ``keep`` gamma(h)
    instead of gamma(h), and ``Estimate.below`` = gamma(<empty>) says what lies below the unigrams; a labelled
    model puts the label-free model there (:mod:`.labelled` eq. (5)).
    """
    V, N = counts.vocab_size, counts.order
    table = counts.adjusted_counts() if strategy.adjusted else counts.counts
    probs: list[np.ndarray] = []  # probs[n - 1]: p(w | h) of every n-gram of order n, (U_n,)
    gammas: list[np.ndarray] = []  # gammas[n - 1]: gamma(h) of every context of order n - 1, (U_{n-1},)
    discounts: list = []  # D of each order, as the strategy gives it
    for n in range(1, N + 1):
        u, gamma, D = strategy.weights(counts, table[n - 1], n)  # (U_n,), (U_{n-1},), D of order n
        if not strategy.interpolated:
            p = u
        elif n == 1:
            p = u + gamma[0] / (V - 1) if uniform else u.astype(np.float64, copy=True)  # eq. (3)
        else:
            lower = probs[-1][counts.suffix[n - 1]] if uniform else keep * probs[-1][counts.suffix[n - 1]]
            p = u + gamma[counts.context(n)] * lower  # eq. (2)
        if n == 1:
            p[BOS] = 0.0
        probs.append(p)
        gammas.append(gamma)
        discounts.append(D)
    bows = gammas[1:] + [np.ones(len(probs[-1]))]  # gamma of order n + 1 is b of the n-grams
    below = float(gammas[0][0]) if strategy.interpolated else 0.0
    return Estimate(probs, bows, discounts if strategy.records_discounts else [], below)


def _context_sum(counts: NGramCounts, n: int, values: np.ndarray) -> np.ndarray:
    """sum of ``values`` over the n-grams of each context: shape (U_{n-1},), or (1,) for n = 1."""
    size = 1 if n == 1 else len(counts.keys[n - 2])
    return np.bincount(counts.context(n), weights=values, minlength=size).astype(np.float64)


def _safe_div(a: np.ndarray, b: np.ndarray, empty: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), empty)


def count_of_counts(c: np.ndarray) -> list[int]:
    """[n_0, .., n_4]: how many entries of one order's count table ``c`` equal j, for j = 0 .. 4 (what the
    discounts of eqs. (4), (6) and (8) read). Counts of counts add up over blocks of the table."""
    return [int(np.count_nonzero(c == j)) for j in range(5)]


def _one_discount(c: np.ndarray, given) -> float:
    """D = n1 / (n1 + 2 n2) (eqs. (4), (6)), or the given one; 0.5 where the formula is undefined."""
    return _one_discount_of(count_of_counts(c) if given is None else [], given)


def _one_discount_of(n: list, given) -> float:
    """:func:`_one_discount` from the counts of counts ``n`` (n[j]: entries equal to j)."""
    if given is not None:
        return float(given)
    n1, n2 = n[1], n[2]
    if n1 == 0:
        return 0.5
    return n1 / (n1 + 2.0 * n2)


def kenlm_discounts(adjusted: np.ndarray) -> tuple[float, float, float]:
    """(D_1, D_2, D_3) of eq. (8) from one order's adjusted counts, or lmplz's fallback (0.5, 1, 1.5)."""
    return kenlm_discounts_of(count_of_counts(adjusted))


def kenlm_discounts_of(n: list) -> tuple[float, float, float]:
    """:func:`kenlm_discounts` from the counts of counts ``n`` (n[j]: n-grams with adjusted count j)."""
    if min(n[1], n[2], n[3]) == 0:
        return FALLBACK
    y = n[1] / (n[1] + 2.0 * n[2])
    d = tuple(j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3))
    if any(not 0.0 <= d[j - 1] <= j for j in (1, 2, 3)):
        return FALLBACK
    return d


# --- the strategies: hyperparameters and weights ------------------------------------------------------------


class Smoothing:
    """What every strategy shares: its class settings, and ``estimate(counts)`` = :func:`backoff_form`.

    A subclass is a frozen dataclass of its hyperparameters with one pure method,
    ``weights(counts, c, n) -> (u, gamma, D)``; it keeps nothing between calls."""

    name: ClassVar[str] = "?"
    interpolated: ClassVar[bool] = True  # eqs. (2)-(3); otherwise u is p(w | h) and gamma is b(h)
    adjusted: ClassVar[bool] = False  # reads lmplz's adjusted counts (counting.py eq. (3))
    normalized: ClassVar[bool] = True  # False if rows do not sum to 1
    records_discounts: ClassVar[bool] = True  # the Estimate lists a discount (or None) per order

    def estimate(self, counts: NGramCounts) -> Estimate:
        return backoff_form(self, counts)

    def order_discount(self, nj: list):
        """D of one order from its counts of counts ``nj`` (:func:`count_of_counts`), or None if the strategy
        has none: what ``weights`` computes when not given ``D``, so a caller that sees the table a block at a
        time (:mod:`.external_smoothing`) can sum the counts of counts first and pass D to every block."""
        return None


@dataclasses.dataclass(frozen=True)
class AbsoluteDiscounting(Smoothing):
    """Interpolated absolute discounting, eq. (4); ``discount`` D in (0, 1) or None for n1 / (n1 + 2 n2)."""

    discount: float | None = None
    name: ClassVar[str] = "absolute"

    def __post_init__(self):
        check_discount(self.name, self.discount)

    def order_discount(self, nj: list):
        return _one_discount_of(nj, self.discount)

    def weights(self, counts, c, n, D=None):
        c = c.astype(np.float64)
        D = _one_discount(c, self.discount) if D is None else D
        d = _context_sum(counts, n, c)
        seen = _context_sum(counts, n, (c > 0).astype(np.float64))
        u = np.maximum(c - D, 0.0) / np.maximum(d, 1e-300)[counts.context(n)]
        return u, _safe_div(D * seen, d, 1.0), D


@dataclasses.dataclass(frozen=True)
class KneserNey(AbsoluteDiscounting):
    """Interpolated Kneser-Ney with one discount an order, eq. (6): eq. (4) on lmplz's adjusted counts."""

    name: ClassVar[str] = "kneser-ney"
    adjusted: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class WittenBell(Smoothing):
    """Interpolated Witten-Bell, eq. (5)."""

    name: ClassVar[str] = "witten-bell"

    def weights(self, counts, c, n, D=None):
        c = c.astype(np.float64)
        d = _context_sum(counts, n, c)
        T = _context_sum(counts, n, (c > 0).astype(np.float64))
        u = c / np.maximum(d + T, 1e-300)[counts.context(n)]
        return u, _safe_div(T, d + T, 1.0), None


@dataclasses.dataclass(frozen=True)
class ModifiedKneserNey(Smoothing):
    """Interpolated modified Kneser-Ney exactly as KenLM's lmplz: eqs. (7)-(8).

    ``discount``: None (eq. (8) per order, with the fallback) or three numbers (D_1, D_2, D_3) for every order.
    """

    discount: tuple | None = None
    name: ClassVar[str] = "modified-kneser-ney"
    adjusted: ClassVar[bool] = True

    def __post_init__(self):
        check_discount(self.name, self.discount)

    def order_discount(self, nj: list):
        return kenlm_discounts_of(nj) if self.discount is None else tuple(float(d) for d in self.discount)

    def weights(self, counts, a, n, D=None):
        if D is None:
            D = kenlm_discounts(a) if self.discount is None else tuple(float(d) for d in self.discount)
        table = np.array((0.0,) + D)  # D_0 = 0, D_1, D_2, D_3+
        klass = np.minimum(a, 3)  # (U_n,) which discount applies
        af = a.astype(np.float64)
        d = _context_sum(counts, n, af)
        mass = _context_sum(counts, n, table[klass] * (a > 0))  # sum_j D_j T_j(h)
        u = (af - table[klass]) / np.maximum(d, 1e-300)[counts.context(n)]
        return u, _safe_div(mass, d, 1.0), D


@dataclasses.dataclass(frozen=True)
class MLE(Smoothing):
    """Maximum likelihood: p(w | h) = c(h w) / d(h), b(h) = 0 for a seen context (an unseen word after it has
    probability 0), 1 for a context never seen as one."""

    name: ClassVar[str] = "mle"
    interpolated: ClassVar[bool] = False
    records_discounts: ClassVar[bool] = False

    def weights(self, counts, c, n, D=None):
        c = c.astype(np.float64)
        d = _context_sum(counts, n, c)
        return c / np.maximum(d, 1e-300)[counts.context(n)], np.where(d > 0, 0.0, 1.0), None


@dataclasses.dataclass(frozen=True)
class AddK(Smoothing):
    """Add-k (Lidstone; Laplace for k = 1) on the whole context; see the module docstring."""

    k: float = 1.0
    name: ClassVar[str] = "add-k"
    interpolated: ClassVar[bool] = False
    records_discounts: ClassVar[bool] = False

    def __post_init__(self):
        check_k(self.k)

    def weights(self, counts, c, n, D=None):
        k, N, Vp = float(self.k), counts.order, counts.vocab_size - 1
        c = c.astype(np.float64)
        d = _context_sum(counts, n, c)
        whole = np.full(len(c), n == N) | counts.bos_start[n - 1]  # the n-gram's context is whole
        p = np.where(whole, (c + k) / (d[counts.context(n)] + k * Vp), 1.0 / Vp)
        if n == 1:
            return p, np.ones(1), None  # the empty context is never backed off from
        whole_ctx = np.full(len(d), n == N) | counts.bos_start[n - 2]  # the (n-1)-grams as contexts
        return p, np.where(whole_ctx, k * Vp / (d + k * Vp), 1.0), None


@dataclasses.dataclass(frozen=True)
class StupidBackoff(Smoothing):
    """Stupid backoff: relative frequencies, b(h) = alpha, add-k unigrams. Not normalised."""

    alpha: float = DEFAULT_ALPHA
    k: float = 1.0
    name: ClassVar[str] = "stupid-backoff"
    interpolated: ClassVar[bool] = False
    normalized: ClassVar[bool] = False
    records_discounts: ClassVar[bool] = False

    def __post_init__(self):
        check_alpha(self.alpha)
        check_k(self.k)

    def weights(self, counts, c, n, D=None):
        c = c.astype(np.float64)
        d = _context_sum(counts, n, c)
        if n == 1:
            k = float(self.k)
            return (c + k) / (d[0] + k * (counts.vocab_size - 1)), np.ones(1), None
        return c / np.maximum(d, 1e-300)[counts.context(n)], np.where(d > 0, float(self.alpha), 1.0), None


_STRATEGIES = {
    s.name: s for s in (MLE, AddK, AbsoluteDiscounting, WittenBell, KneserNey, ModifiedKneserNey, StupidBackoff)
}


def make_smoothing(name: str, k: float = 1.0, discount=None, alpha: float = DEFAULT_ALPHA):
    """The strategy called ``name`` (one of :data:`SMOOTHINGS`) with its settings (each takes only its own)."""
    check_settings(name, k, discount, alpha)
    if name == "add-k":
        return AddK(k)
    if name == "stupid-backoff":
        return StupidBackoff(legacy_alpha(name, discount, alpha), k)
    if name == "absolute":
        return AbsoluteDiscounting(discount)
    if name == "kneser-ney":
        return KneserNey(discount)
    if name == "modified-kneser-ney":
        return ModifiedKneserNey(discount)
    return _STRATEGIES[name]()
