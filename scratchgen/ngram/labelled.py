"""The labelled n-gram model P(w | c, h): the label is a context that is never emitted.

Every history is extended with the label c, and backing off ends in the label-free model instead of the
uniform distribution, so a label with little data borrows from all the others. The label-free model
P(w | h) is today's unlabelled model of ALL sentences (model.py, KenLM-exact, unchanged); u(w) = 1 / V' is
the uniform distribution over the V' = V - 1 tokens that can follow (every id but ``<s>``, as smoothing.py
eq. (3)). h is the history (the last N - 1 tokens, or all of them back to ``<s>``), of length L; h_j is its
last j tokens, so h_L = h and h_0 = () the empty history.

**The label's own chain.** For each label c, smoothing.py's interpolated recursion on the sentences of label
c alone, over the one shared vocabulary (its counts, adjusted counts and discounts are label c's)::

    P_c(w | h_j) = alpha_c(w | h_j) + gamma_c(h_j) P_c(w | h_{j-1}),    P_c(w | h_{-1}) = u(w)            (1)

where alpha_c(w | h_j) is what the counts of (c, h_j w) give and gamma_c(h_j) the mass (c, h_j) passes down
(smoothing.py eqs. (4)-(7); alpha = 0 and gamma = 1 for a history never seen with c). gamma_c(()) is the mass
label c's unigrams leave to the uniform.

**The labelled model** replaces that uniform end by the label-free model with the whole history::

    P(w | c, h_j) = alpha_c(w | h_j) + gamma_c(h_j) P(w | c, h_{j-1}),  P(w | c, h_{-1}) = P(w | h)       (2)

Unrolled, with Gamma_c(h) the product of every gamma along the label's chain::

    P(w | c, h) = P_c(w | h) + Gamma_c(h) (P(w | h) - u(w)),     Gamma_c(h) = prod_{j=0}^{L} gamma_c(h_j)   (3)

It is a distribution: by (1), P_c(w | h) - Gamma_c(h) u(w) = sum_j [prod_{i>j} gamma_c(h_i)] alpha_c(w | h_j)
is >= 0 and sums over w to 1 - Gamma_c(h), so (3) is >= Gamma_c(h) P(w | h) >= 0 and sums to
1 - Gamma_c(h) + Gamma_c(h) = 1. ``<s>`` has alpha_c = 0 and P(<s> | h) = 0: it is never predicted; ``<unk>``
and ``</s>`` are tokens like any other (``<unk>`` counted only where the corpus writes it). A label with little
data has large gammas, so a large Gamma_c(h), and (3) is close to the label-free model *with its full
history* (1 - Gamma_c(h) bounds the total variation distance between the two); a label seen with h many
times has a small Gamma_c(h) and speaks for itself.

**Backoff form.** (3) cannot be stored as one probability per label n-gram (its end depends on the whole h),
but the label-only part can. For a stored n-gram (c, h_k w), let::

    r_c(h_k w) = alpha_c(w | h_k) + gamma_c(h_k) r_c(h_{k-1} w),        r_c(w) = alpha_c(w | ())          (4)

the mass the counts of (c, h_k w) and of its suffixes give: smoothing.py's recursion with the uniform share
of its eq. (3) left out (``backoff_form(..., uniform=False)``). With b_c(h_j) = gamma_c(h_j) (1 for a context
not stored with c) and k the longest context such that (c, h_k w) is stored, (3) is::

    P(w | c, h) = [prod_{j=k+1}^{L} b_c(h_j)] r_c(h_k w)  +  Gamma_c(h) P(w | h)                          (5)
    log Gamma_c(h) = log gamma_c(()) + sum_{j=1}^{L} log b_c(h_j)                                         (6)

The first term of (5) is model.py's backoff walk (its eq. (2)) on the tables (r_c, b_c); the sum (6) takes
the backoff weight of *every* context of h stored with c, wherever the walk found w. (5) needs no
subtraction, so a token the label never saw (r_c = 0) is scored exactly as Gamma_c(h) P(w | h).

**One trie for all labels.** The label tables are one trie whose first level is the pair (label, word), as if
the label were a token before the history: counting.py eq. (2) with::

    index_1(c, w) = c V + w,        key(c, w_1 .. w_n) = index_{n-1}(c, w_1 .. w_{n-1}) V + w_n          (7)

so the tables of label 0 come first, then those of label 1, and so on, and a corpus of sequences with
different labels is scored in one walk an order, as the label-free tables are.

An unlabelled model is untouched: its tables, scores and ARPA file are those of model.py. A labelled model
has no ARPA form ((3) mixes two tables by a weight that depends on the whole history), so ``to_arpa``
refuses it. Only the interpolated smoothings (absolute, Witten-Bell, Kneser-Ney, modified Kneser-Ney) end
their chain in the uniform distribution that (2) replaces; the others, and cutoffs, are refused with labels.

Letters: V vocabulary, V' = V - 1, N order, C labels, L history length (< N), U_n stored n-grams of order n.
"""

from __future__ import annotations

import numpy as np

from ..errors import ScratchgenError
from .counting import NGramCounts
from .fitting import discount_record
from .smoothing import backoff_form

__all__ = ["LABELLED_SMOOTHINGS", "check_labelled_settings", "label_tables", "mix"]

#: The smoothings whose chain ends in the uniform distribution: the ones a label can extend.
LABELLED_SMOOTHINGS = ("absolute", "witten-bell", "kneser-ney", "modified-kneser-ney")


def check_labelled_settings(smoothing: str, cutoffs) -> None:
    """A labelled model needs an interpolated smoothing and no cutoffs (one-line errors naming the flags)."""
    if smoothing not in LABELLED_SMOOTHINGS:
        raise ScratchgenError(
            f"--labelled needs an interpolated smoothing ({', '.join(LABELLED_SMOOTHINGS)}), whose chain ends in "
            f"the uniform distribution that the label-free model replaces; got --smoothing {smoothing}"
        )
    if cutoffs is not None and any(c > 1 for c in cutoffs):
        raise ScratchgenError(f"--labelled does not take --cutoffs (got {' '.join(map(str, cutoffs))}): drop them")


def label_tables(flat: np.ndarray, lengths: np.ndarray, label_of: np.ndarray, C: int, V: int, order: int, strategy):
    """The label tables of eqs. (4) and (7): (keys, log r, log b, log gamma_c(()), discounts per label).

    ``flat`` (T,) the ids of all sentences, ``lengths`` (S,) their lengths, ``label_of`` (S,) their label ids.
    keys[n-1] (n >= 2) are the sorted keys of eq. (7); log r[0] has C V entries (label c's unigrams at
    c V .. c V + V - 1); log b[n-1] the backoff weights of the stored n-grams as contexts (n < N).
    """
    by_label = np.argsort(label_of, kind="stable")  # (S,) the sentences of label 0 first, then label 1, ..
    label_of_token = np.repeat(label_of, lengths)  # (T,)
    flat = flat[np.argsort(label_of_token, kind="stable")]  # (T,) the same order, token by token
    lengths = lengths[by_label]
    sentences = np.bincount(label_of, minlength=C)  # (C,)
    tokens = np.bincount(label_of_token, minlength=C) if len(flat) else np.zeros(C, np.int64)
    keys: list[list] = [[] for _ in range(order)]
    logr: list[list] = [[] for _ in range(order)]
    bow: list[list] = [[] for _ in range(order - 1)]
    below, discounts = np.empty(C), []
    offset = np.zeros(order, dtype=np.int64)  # offset[n-1]: stored n-grams of the labels before this one
    s0 = t0 = 0
    for c in range(C):
        counts = NGramCounts.from_flat(
            flat[t0 : t0 + tokens[c]], lengths[s0 : s0 + sentences[c]], order, V
        )  # label c's counts over the shared vocabulary
        s0, t0 = s0 + sentences[c], t0 + tokens[c]
        est = backoff_form(strategy, counts, uniform=False)  # eq. (4): r_c and gamma_c
        with np.errstate(divide="ignore"):
            for n in range(1, order + 1):
                if n > 1:  # eq. (7): the context index moves by the (n-1)-grams of the labels before
                    keys[n - 1].append(counts.keys[n - 1] + offset[n - 2] * V)
                logr[n - 1].append(np.minimum(np.log(est.prob[n - 1]), 0.0))
                if n < order:
                    bow[n - 1].append(np.log(est.bow[n - 1]))
            below[c] = np.log(est.below)
        offset += [V] + [len(k) for k in counts.keys[1:]]
        discounts.append(discount_record(est.discounts))
    out_keys = [np.arange(C * V, dtype=np.int64)] + [np.concatenate(k) for k in keys[1:]]
    return out_keys, [np.concatenate(r) for r in logr], [np.concatenate(b) for b in bow], below, discounts


def mix(log_label: np.ndarray, log_gamma: np.ndarray, log_free: np.ndarray) -> np.ndarray:
    """log P(w | c, h) of eq. (5) from the label walk, log Gamma_c(h) (eq. (6)) and log P(w | h)."""
    return np.logaddexp(log_label, log_gamma + log_free)
