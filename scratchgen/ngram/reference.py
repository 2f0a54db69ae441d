"""The n-gram model as a textbook writes it: counts in dicts, and every smoothing as one recursion.

Read it first, then counting.py, smoothing.py and model.py, which compute the same numbers for a whole corpus
at once (sorted integer keys, one vectorised pass an order, a backoff table); tests/ngram/test_ngram_reference.py
checks that both agree on random corpora.

A sentence w_1 .. w_T is read as ``<s> w_1 .. w_T </s>``. ``<s>`` is context only: never predicted, never a
unigram, never padded twice, so the first word's history is ``(<s>,)`` and the n-grams at a sentence start are
the short ones ``<s> w_1 .. w_{n-1}`` (counting.py eq. (1)). The history h of a word is the last N - 1 tokens
before it, or all of them back to ``<s>`` (model.py eq. (1)); h' is h without its first token; below the empty
history () lies the uniform distribution over the V' words that can follow (``<unk>``, ``</s>`` and every word
seen; V' = V - 1, all but ``<s>``). An unseen word is ``<unk>``: no count of its own, only its share of eq. (3).

Every smoothing is one recursion (Chen and Goodman 1998): alpha, what the counts of h w give, and gamma(h), the
mass h leaves to the shorter history. Numbered as in smoothing.py::

    P(w | h) = alpha(w | h) + gamma(h) P(w | h')               interpolated: every strategy but one     (2)
    P(w | h) = alpha(w | h) if h w was seen, else gamma(h) P(w | h')     backoff: stupid backoff         (1)
    P(w | below ()) = 1 / V'                                   the uniform distribution at the bottom  (3)

(in the code, eq. (1) is eq. (2) with gamma = 0 for a seen h w). With c the count a strategy uses, d(h) =
sum_w c(h w), T(h) = |{w : c(h w) > 0}|, n_j the number of n-grams of an order with count j, and alpha = 0,
gamma = 1 whenever d(h) = 0 (h never seen as a history):

==================  ===================================  ====================================================
strategy            alpha(w | h)                         gamma(h)
==================  ===================================  ====================================================
mle                 c / d                                0
add-k               c / (d + k V')                       k V' / (d + k V'); only for the full history (N - 1
                                                         tokens, or from <s>): a shorter one passes through
absolute        (4) max(c - D, 0) / d                    D T(h) / d;  D = n1 / (n1 + 2 n2) an order (n1 = 0: 1/2)
witten-bell     (5) c / (d + T)                          T(h) / (d + T)
kneser-ney      (6) as (4) on the adjusted counts a      as (4)
mod. K-N        (7) (a - D_min(a,3)) / d                 sum_j D_j T_j(h) / d;  T_j: words after h with a = j (3+)
stupid backoff  (1) c / d;  unigrams (c + k)/(d + k V')  the factor ``alpha`` (0.4) for an unseen h w
==================  ===================================  ====================================================

The adjusted count (counting.py eq. (3)) is a(g) = c(g) when g has N words or starts with ``<s>``, otherwise the
number of distinct words seen just before g: Kneser-Ney's continuation count. Modified Kneser-Ney's discounts
of an order are KenLM lmplz's, from that order's counts of adjusted counts::

    Y = n1 / (n1 + 2 n2),     D_j = j - (j + 1) Y n_{j+1} / n_j       j = 1, 2, 3                       (8)

or (0.5, 1, 1.5), lmplz's ``--discount_fallback``, when some n_j is 0 or some D_j falls outside [0, j].

**Cutoffs** drop the n-grams of order n >= 2 seen fewer than cutoffs[n-1] times. A kept n-gram keeps its P; a
dropped one backs off with the weight (Katz) that makes the row sum to 1 again (stupid backoff keeps gamma)::

    b(h) = (1 - sum_{w: h w kept} P(w | h)) / (1 - sum_{w: h w kept} P(w | h'))                        (9)

Letters: N order, V' words that can follow, k add-k's k, D discounts, c counts, a adjusted counts.

>>> lm = ReferenceNGram([["a", "b"], ["b"]], order=2, smoothing="mle")
>>> lm.prob("a", []), lm.prob("b", ["a"]), lm.prob("a", ["b"])    # c(<s> a)/c(<s>), c(a b)/c(a), 0/c(b)
(0.5, 1.0, 0.0)
>>> round(sum(ReferenceNGram([["a", "b"], ["b"]], order=3).distribution(["b"]).values()), 12)
1.0
"""

from __future__ import annotations

import math

__all__ = ["ReferenceLabelledNGram", "ReferenceNGram", "adjusted_counts", "count_ngrams", "kenlm_discounts"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FALLBACK = (0.5, 1.0, 1.5)


def count_ngrams(sentences, order):
    """c(g) of every n-gram g (a tuple of tokens) of orders 1 .. N: mirrors ``NGramCounts.from_sequences``."""
    counts = {}
    for sentence in sentences:
        tokens = [BOS] + list(sentence) + [EOS]
        for end in range(1, len(tokens)):  # every token but <s> ends n-grams
            for n in range(1, min(order, end + 1) + 1):  # none reaches back before <s>
                g = tuple(tokens[end - n + 1 : end + 1])
                counts[g] = counts.get(g, 0) + 1
    return counts


def adjusted_counts(counts, order):
    """a(g), counting.py eq. (3): mirrors ``NGramCounts.adjusted_counts``."""
    adjusted = {g: c for g, c in counts.items() if len(g) == order or g[0] == BOS}
    for g in counts:  # each distinct n-gram "x rest" adds one distinct left word x to rest
        if len(g) > 1:
            adjusted[g[1:]] = adjusted.get(g[1:], 0) + 1
    return adjusted


def counts_of_counts(counts, n):
    """n_j for j = 0 .. 4: how many n-grams of order n have count j."""
    return [sum(1 for g, c in counts.items() if len(g) == n and c == j) for j in range(5)]


def one_discount(counts, n):
    """D = n1 / (n1 + 2 n2) of eqs. (4) and (6), 0.5 when n1 = 0: mirrors ``smoothing._one_discount``."""
    nj = counts_of_counts(counts, n)
    return 0.5 if nj[1] == 0 else nj[1] / (nj[1] + 2.0 * nj[2])  # eqs. (4), (6)


def kenlm_discounts(counts, n):
    """(D_1, D_2, D_3) of eq. (8) (as ``smoothing.kenlm_discounts``) and whether the fallback was used."""
    nj = counts_of_counts(counts, n)
    if min(nj[1], nj[2], nj[3]) == 0:
        return FALLBACK, True
    y = nj[1] / (nj[1] + 2.0 * nj[2])
    d = tuple(j - (j + 1) * y * nj[j + 1] / nj[j] for j in (1, 2, 3))  # eq. (8)
    if any(not 0.0 <= d[j - 1] <= j for j in (1, 2, 3)):
        return FALLBACK, True
    return d, False


class ReferenceNGram:
    """An n-gram model fitted on token-list sentences, every probability by the recursion of eqs. (1)-(3).

    Same settings as :class:`~scratchgen.ngram.NGramModel` (stupid backoff's factor is ``alpha``). ``prob`` and
    ``logprob`` mirror ``next_logprobs`` and ``logprob``. ``words``: tokens of a wider vocabulary (a label's
    chain is over the vocabulary of all labels: :class:`ReferenceLabelledNGram`).
    """

    def __init__(
        self,
        sentences,
        order=3,
        smoothing="modified-kneser-ney",
        k=1.0,
        discount=None,
        alpha=0.4,
        cutoffs=None,
        words=None,
    ):
        self.order, self.smoothing, self.k, self.alpha, self.cutoffs = order, smoothing, k, alpha, cutoffs
        self.raw = count_ngrams(sentences, order)
        kneser_ney = smoothing in ("kneser-ney", "modified-kneser-ney")
        self.counts = adjusted_counts(self.raw, order) if kneser_ney else self.raw
        self.after = {}  # after[h][w] = c(h w): the counts grouped by history
        for g, c in self.counts.items():
            self.after.setdefault(g[:-1], {})[g[-1]] = c
        self.words = {UNK, EOS} | {g[0] for g in self.raw if len(g) == 1} | set(words or ())  # words: a wider vocab
        self.V1 = len(self.words)  # V' = V - 1
        self.discounts, self.fell_back = {}, {}  # per order n
        for n in range(1, order + 1):
            if smoothing == "modified-kneser-ney" and discount is None:
                self.discounts[n], self.fell_back[n] = kenlm_discounts(self.counts, n)
            elif smoothing == "modified-kneser-ney":
                self.discounts[n] = tuple(float(x) for x in discount)
            elif smoothing in ("absolute", "kneser-ney"):
                self.discounts[n] = one_discount(self.counts, n) if discount is None else float(discount)
        self.memo = {}  # (w, h) -> P(w | h)

    def alpha_gamma(self, w, h):
        """alpha(w | h) and gamma(h) of the table above: mirrors the ``weights`` of each strategy in smoothing.py."""
        after = self.after.get(h, {})
        c, d, T = after.get(w, 0), sum(after.values()), len(after)
        n, kV = len(h) + 1, self.k * self.V1  # n: the order of h w
        if self.smoothing == "add-k":
            if len(h) < self.order - 1 and h[:1] != (BOS,):
                return 0.0, 1.0  # a shortened history has no counts of its own: straight to eq. (3)
            return c / (d + kV), kV / (d + kV)
        if self.smoothing == "stupid-backoff" and n == 1:
            return (c + self.k) / (d + kV), 0.0  # add-k unigrams
        if d == 0:
            return 0.0, 1.0  # h was never a history: pass through to h'
        if self.smoothing == "mle":
            return c / d, 0.0
        if self.smoothing == "stupid-backoff":
            return (c / d, 0.0) if c > 0 else (0.0, self.alpha)  # eq. (1)
        if self.smoothing == "witten-bell":
            return c / (d + T), T / (d + T)  # eq. (5)
        if self.smoothing in ("absolute", "kneser-ney"):
            D = self.discounts[n]
            return max(c - D, 0.0) / d, D * T / d  # eqs. (4), (6)
        D = (0.0,) + self.discounts[n]  # modified Kneser-Ney: D_0 = 0, D_1, D_2, D_3+
        mass = sum(D[min(a, 3)] for a in after.values())  # sum_j D_j T_j(h)
        return (c - D[min(c, 3)]) / d, mass / d  # eq. (7)

    def p(self, w, h):
        """P(w | h) by eq. (2) (eq. (1) for stupid backoff); ``h = None`` is below the unigrams, eq. (3).

        Mirrors ``backoff_form`` (smoothing.py) and the backoff lookup of model.py eq. (2)."""
        if h is None:
            return 1.0 / self.V1  # eq. (3)
        if (w, h) not in self.memo:
            alpha, gamma = self.alpha_gamma(w, h)
            lower = h[1:] if h else None
            self.memo[w, h] = alpha + (gamma * self.p(w, lower) if gamma else 0.0)  # eq. (2)
        return self.memo[w, h]

    def p_cut(self, w, h):
        """P(w | h) after the cutoffs: P of eq. (2) for a kept n-gram, else b(h) P_cut(w | h').

        It mirrors ``fitting.prune``.
        """
        cut = self.cutoffs[len(h)] if self.cutoffs and h else 1  # the cutoff of the order of h w
        if cut == 1 or self.raw.get(h + (w,), 0) >= cut:  # kept (and nothing of a lower order was cut)
            return self.p(w, h)
        return self.katz_weight(h, cut) * self.p_cut(w, h[1:])

    def katz_weight(self, h, cut):
        """b(h) of eq. (9)."""
        if self.smoothing == "stupid-backoff":  # not a distribution: its factor stays, 1 if h itself was cut
            kept = len(h) == 1 or self.raw.get(h, 0) >= self.cutoffs[len(h) - 1]
            return self.alpha_gamma(None, h)[1] if kept else 1.0
        kept = [w for w in self.after.get(h, {}) if self.raw[h + (w,)] >= cut]
        left = 1.0 - sum(self.p(w, h) for w in kept)
        lower = 1.0 - sum(self.p(w, h[1:]) for w in kept)
        return max(left, 0.0) / lower if lower > 1e-12 else 1.0  # eq. (9)

    def history(self, context):
        """h: the last N - 1 tokens of ``<s>`` + context (unseen words as ``<unk>``): model.py eq. (1)."""
        tokens = [BOS] + [t if t in self.words else UNK for t in context]
        return tuple(tokens[max(len(tokens) - (self.order - 1), 0) :]) if self.order > 1 else ()

    def prob(self, word, context=()):
        """P(word | the sentence so far): mirrors one entry of ``NGramModel.next_logprobs``."""
        if word == BOS:
            return 0.0  # never predicted
        return self.p_cut(word if word in self.words else UNK, self.history(context))

    def distribution(self, context=()):
        """P(w | context) of every word that can follow, as a dict."""
        return {w: self.prob(w, context) for w in sorted(self.words)}

    def logprob(self, sentence):
        """Natural-log probability of a sentence, ``</s>`` included: mirrors ``NGramModel.logprob``."""
        total, context = 0.0, []
        for w in list(sentence) + [EOS]:
            p = self.prob(w, context)
            total += math.log(p) if p > 0 else -math.inf
            context.append(w)
        return total


class ReferenceLabelledNGram:
    """The labelled model P(w | c, h) of :mod:`scratchgen.ngram.labelled`, its eq. (2) as it is written.

    ``free`` is the label-free model of all sentences; ``chains[c]`` label c's own counts (its alpha_c and
    gamma_c, and ``after``: which histories it has seen), fitted on its sentences over the shared vocabulary.
    ``prob`` mirrors one entry of ``NGramModel.next_logprobs`` with a label; the fast model computes the same
    number by eqs. (5)-(6). ``mix`` is m (0 gives the single chain, eq. (1) ending in the label-free model).

    >>> lm = ReferenceLabelledNGram([["a", "b"], ["b"], ["b", "b"]], ["x", "y", "y"], order=2)
    >>> round(sum(lm.prob(w, "x", ["b"]) for w in sorted(lm.free.words)), 12)
    1.0
    """

    def __init__(self, sentences, labels, order=3, smoothing="modified-kneser-ney", discount=None, mix=0.5):
        self.free = ReferenceNGram(sentences, order, smoothing, discount=discount)
        self.names = sorted(set(labels))
        self.mix = mix  # m of eq. (2)
        self.chains = {
            c: ReferenceNGram(
                [s for s, label in zip(sentences, labels) if label == c],
                order,
                smoothing,
                discount=discount,
                words=self.free.words,
            )
            for c in self.names
        }

    def p(self, w, label, h, top=None):
        """P(w | c, h) by eq. (2), from the longest history down; ``top`` is the whole history h."""
        top = h if top is None else top
        chain = self.chains[label]
        if not h:
            alpha, gamma = chain.alpha_gamma(w, ())
            return alpha + gamma * self.free.p(w, top)  # (c, ()) backs off to the label-free model, whole history
        if not chain.after.get(h):  # never a history of label c: straight to (c, h')
            return self.p(w, label, h[1:], top)
        alpha, gamma = chain.alpha_gamma(w, h)
        lower = self.mix * self.free.p(w, h) + (1 - self.mix) * self.p(w, label, h[1:], top)  # two parents
        return alpha + gamma * lower

    def free_weights(self, label, h):
        """The weights of P(w | h_1), .., P(w | h_L) and, last, of P(w | h) in eq. (3)."""
        chain, out, W = self.chains[label], [], 1.0  # W: prod over the seen histories above, (1 - m) gamma_c
        for j in range(len(h), 0, -1):
            if chain.after.get(h[len(h) - j :]):
                gamma = chain.alpha_gamma(None, h[len(h) - j :])[1]
                out.append(W * gamma * self.mix)
                W *= (1 - self.mix) * gamma
            else:
                out.append(0.0)
        return out[::-1] + [W * chain.alpha_gamma(None, ())[1]]

    def prob(self, word, label, context=()):
        """P(word | label, the sentence so far)."""
        if word == BOS:
            return 0.0  # never predicted
        free = self.free
        return self.p(word if word in free.words else UNK, label, free.history(context))

    def logprob(self, sentence, label):
        """Natural-log P(sentence | label), ``</s>`` included."""
        total, context = 0.0, []
        for w in list(sentence) + [EOS]:
            p = self.prob(w, label, context)
            total += math.log(p) if p > 0 else -math.inf
            context.append(w)
        return total
