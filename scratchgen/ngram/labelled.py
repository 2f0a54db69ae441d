"""The labelled n-gram model P(w | c, h): the label is a context that is never emitted.

Every history is extended with the label c, and backing off ends in the label-free model, so a label with
little data borrows from all the others. The label-free model P(w | h) is the unlabelled model of ALL
sentences (model.py, KenLM-exact, unchanged). h is the history (the last N - 1 tokens, or all of them back to
``<s>``, which counts), of length L; h_j is its last j tokens, so h_L = h and h_0 = () the empty history.

**The label's counts.** For each label c, smoothing.py's interpolated weights on the sentences of label c
alone, over the one shared vocabulary (its counts, adjusted counts and discounts are label c's): alpha_c(w | h_j)
what the counts of (c, h_j w) give, and gamma_c(h_j) the mass the history (c, h_j) passes down (smoothing.py
eqs. (4)-(7)). On its own, label c's chain would end in the uniform distribution, as KenLM's does::

    P_c(w | h_j) = alpha_c(w | h_j) + gamma_c(h_j) P_c(w | h_{j-1}),     P_c(w | h_{-1}) = 1 / V'             (1)

**The labelled model.** A label-extended history (c, h_j) that label c has seen (j >= 1) backs off to two
parents: the label-free history h_j (the same words, the label dropped), with weight m, and (c, h_{j-1}) (the
label kept, the oldest word dropped), with weight 1 - m. One it has never seen is no history of the model and
passes straight to (c, h_{j-1}), as an unseen history does in every backoff model. At the end, (c, ()) backs
off to the label-free model with the whole history::

    P(w | c, h_j) = alpha_c(w | h_j) + gamma_c(h_j) [m P(w | h_j) + (1 - m) P(w | c, h_{j-1})]   (c, h_j) seen
                  = P(w | c, h_{j-1})                                                             otherwise
    P(w | c, ())  = alpha_c(w | ()) + gamma_c(()) P(w | h)                                                 (2)

with m = 1/2 (``MIX``): neither parent preferred. This is generalised parallel backoff (Bilmes and Kirchhoff
2003) with fixed weights; Wood and Teh (2009) learn such weights in a hierarchical Pitman-Yor model for domain
adaptation. With m = 0, (2) is the single chain (1) whose uniform end is replaced by the label-free model.
Unrolled over the seen histories S_c(h) = {j >= 1 : (c, h_j) seen}::

    P(w | c, h) = sum_{j in S_c(h) + {0}} W_j alpha_c(w | h_j)
                + sum_{j in S_c(h)} W_j gamma_c(h_j) m P(w | h_j)  +  W_0 gamma_c(()) P(w | h),
    W_j = prod_{i in S_c(h), i > j} (1 - m) gamma_c(h_i)                                                   (3)

It is a distribution: each line of (2) is alpha_c (>= 0, summing over w to 1 - gamma_c) plus gamma_c times a
mixture of distributions, so by induction from (c, ()) every P(. | c, h_j) is >= 0 and sums to 1. ``<s>`` has
alpha_c = 0 and P(<s> | h_j) = 0: it is never predicted; ``<unk>`` and ``</s>`` are tokens like any other
(``<unk>`` counted only where the corpus writes it). A label with little data has large gammas, so most of (3)
is the label-free model, half of it (m) at the longest history the label has seen and, at a history it never
saw, gamma_c(()) P(w | h) with the full history. A label seen with h many times has small gammas and speaks for
itself. A label never seen with h keeps its own lower orders above the others' data, so text made of another
label's words stays improbable under it: what a classifier needs.

**Why two parents.** The single chain (m = 0) also normalises and borrows, but it ranks every label-extended
history, down to the label's unigrams, above the label-free model with the full history: a label with a few
hundred sentences has small gammas at its short histories, so the long label-free context is hardly heard. On
tinyshakespeare's lines labelled by speaker (the 8 speakers with most lines), held-out character 5-grams, the
chain scored 1.744 nats/token, (2) 1.652 and the unlabelled model 1.578 (word 3-grams: 5.652, 5.503, 5.498);
with two labels of 9,000 sentences each (the English grammar's) the two agree within 0.002
(benchmarks/bench_ngram.py).
(A variant in which unseen histories also mix in their label-free parent scored lower cross-entropy still, but
lets a label claim contexts only other labels have seen: it misclassified text written in another label's
alphabet.)

**Backoff form.** (3) cannot be stored as one probability per label n-gram (it depends on the whole h), but
its label part can. With b_c(h_j) = (1 - m) gamma_c(h_j) for a history label c has seen and 1 for any other
stored n-gram (so b_c < 1 exactly for the seen ones), and for a stored n-gram (c, h_k w)::

    r_c(h_k w) = alpha_c(w | h_k) + b_c(h_k) r_c(h_{k-1} w),        r_c(w) = alpha_c(w | ())                (4)

(smoothing.py's recursion with the uniform share of its eq. (3) left out and each lower order weighted by
1 - m: ``backoff_form(..., uniform=False, keep=1 - m)``), alpha_c(w | h_j) = 0 above the longest stored (c, h_k w),
so the label part of (3) is model.py's backoff walk (its eq. (2)) on the tables (r_c, b_c)::

    sum_j W_j alpha_c(w | h_j) = [prod_{j=k+1}^{L} b_c(h_j)] r_c(h_k w)                                     (5)

and the label-free part is a mixture of the label-free model at the history lengths the label has seen, each
a walk of model.py, with the weights::

    W_j gamma_c(h_j) m = [prod_{i >= j} b_c(h_i)] m / (1 - m),    W_0 gamma_c(()) = [prod_{i >= 1} b_c(h_i)] gamma_c(())
                                                                                                           (6)

**One trie for all labels.** The label tables are one trie whose first level is the pair (label, word), as if
the label were a token before the history: counting.py eq. (2) with::

    index_1(c, w) = c V + w,        key(c, w_1 .. w_n) = index_{n-1}(c, w_1 .. w_{n-1}) V + w_n          (7)

so the tables of label 0 come first, then those of label 1, and so on, and a corpus of sequences with
different labels is scored in one walk an order, as the label-free tables are.

An unlabelled model is untouched: its tables, scores and ARPA file are those of model.py. A labelled model
has no sparse ARPA form: (3) mixes the tables by weights that depend on the whole history, so P(. | c, h) is no
constant multiple of P(. | c, h') over the words unseen after h. One label's P(w | c, h) still is a function of
the longest suffix of h that is a context of the label-free model, so ``to_arpa(path, label=c)`` writes it
exactly by listing every word after each such context (:func:`scratchgen.ngram.convert.write_label_arpa`, all
backoff weights 1); the marginal over the labels is no n-gram model and is refused. Only the interpolated
smoothings (absolute, Witten-Bell, Kneser-Ney, modified Kneser-Ney) give the alpha_c and gamma_c of (2); the
others, and cutoffs, are refused with labels.

Letters: V vocabulary, V' = V - 1, N order, C labels, L history length (< N), m the label-free parent's weight.
"""

from __future__ import annotations

import numpy as np

from ..errors import ScratchgenError
from ..resources import check_memory
from .counting import NGramCounts
from .fitting import discount_record
from .settings import LABELLED_SMOOTHINGS
from .smoothing import backoff_form

__all__ = ["LABELLED_SMOOTHINGS", "LOG_KEEP", "LOG_ODDS", "MIX", "check_labelled_settings", "label_tables", "mix"]

#: m of eq. (2): the weight of the label-free parent h_j of a label-extended history (c, h_j).
MIX = 0.5
#: log(1 - m): the weight of the label-extended parent (c, h_{j-1}), as a log.
LOG_KEEP = float(np.log1p(-MIX))
#: log(m / (1 - m)): from b_c(h_j) = (1 - m) gamma_c(h_j) to gamma_c(h_j) m, the weight of the label-free parent.
LOG_ODDS = float(np.log(MIX) - np.log1p(-MIX))


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
    # The first level of the trie is dense, C V entries (eq. (7)): its r_c and b_c, and their parts before joining.
    check_memory(4 * 8 * C * V, f"the (label, word) table of {C} labels and a vocabulary of {V}", "use fewer labels")
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
        est = backoff_form(strategy, counts, uniform=False, keep=1.0 - MIX)  # eq. (4): r_c and gamma_c
        with np.errstate(divide="ignore"):
            for n in range(1, order + 1):
                if n > 1:  # eq. (7): the context index moves by the (n-1)-grams of the labels before
                    keys[n - 1].append(counts.keys[n - 1] + offset[n - 2] * V)
                logr[n - 1].append(np.minimum(np.log(est.prob[n - 1]), 0.0))
                if n < order:  # eq. (5): b_c = (1 - m) gamma_c for a history of label c, 1 for any other n-gram
                    history = np.zeros(len(est.bow[n - 1]), dtype=bool)
                    history[counts.context(n + 1)] = True
                    bow[n - 1].append(np.where(history, np.log(est.bow[n - 1]) + LOG_KEEP, 0.0))
            below[c] = np.log(est.below)
        offset += [V] + [len(k) for k in counts.keys[1:]]
        discounts.append(discount_record(est.discounts))
    out_keys = [np.arange(C * V, dtype=np.int64)] + [np.concatenate(k) for k in keys[1:]]
    return out_keys, [np.concatenate(r) for r in logr], [np.concatenate(b) for b in bow], below, discounts


def mix(log_label, bows, seen, log_free, log_free_full, below):
    """log P(w | c, h) of eq. (3) from its parts, for any batch shape S (positions, or rows of a vocabulary).

    ``log_label`` (S) the label walk of eq. (5); ``bows`` (N - 1, S') log b_c(h_j) for j = 1 .. N - 1 (0 where
    h_j is not stored) and ``seen`` (N - 1, S') whether label c has seen h_j as a history; ``log_free``
    (N - 1, S) log P(w | h_j); ``log_free_full`` (S) log P(w | h); ``below`` (S') log gamma_c(()). S' is S, or S
    without its last axis (one weight for a whole row of the vocabulary).
    """
    after = np.cumsum(bows[::-1], axis=0)[::-1]  # (N - 1, S') log W_{j-1} = sum_{i >= j} log b_c(h_i)
    total = after[0] if len(bows) else np.zeros_like(below)  # log W_0
    coef = np.where(seen, after + LOG_ODDS, -np.inf)  # (N - 1, S') eq. (6): W_j gamma_c(h_j) m
    bottom = total + below  # W_0 gamma_c(()), the weight of P(w | h)
    if log_label.ndim > below.ndim:  # rows: one weight for every word
        coef, bottom = coef[..., None], bottom[..., None]
    with np.errstate(invalid="ignore"):  # -inf + -inf: a weight and a probability both 0
        parts = np.where(np.isneginf(coef), -np.inf, coef + log_free)
    free = (
        np.logaddexp(np.logaddexp.reduce(parts, axis=0), bottom + log_free_full)
        if len(bows)
        else bottom + log_free_full
    )
    return np.logaddexp(log_label, free)
