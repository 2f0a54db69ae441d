"""Why an n-gram model gave each token its probability: the backoff recursion unrolled, with its numbers.

The model stores, for each n-gram h w, p(h w), and for each context h, a backoff weight b(h) (eq. (1) of
:mod:`~scratchgen.ngram.smoothing`). Scoring w after the history h_{N-1} (the last N - 1 tokens, ``<s>``
included) reads the orders from the longest down. Written as one recursion over the orders j = N .. 1,
with h_{j-1} the last j - 1 tokens of the history::

    P_j = alpha_j + gamma_j P_{j-1},          P_1 = p(w)   (the stored unigram: the recursion ends)   (1)

    h_{j-1} w stored, interpolated:   alpha_j = p(h_{j-1} w) - gamma_j P_{j-1},  gamma_j = b(h_{j-1})  (2)
    h_{j-1} w stored, backoff:        alpha_j = p(h_{j-1} w),                    gamma_j = 0          (3)
    h_{j-1} w not stored:             alpha_j = 0,  gamma_j = b(h_{j-1})  (1 if h_{j-1} is not stored)  (4)

In an interpolated model (absolute discounting, Witten-Bell, Kneser-Ney, modified Kneser-Ney, and an ARPA
file, which KenLM's lmplz writes interpolated) the stored p(h w) is alpha(w | h) + gamma(h) P(w | h'), so
eq. (2) recovers alpha, the discounted share of the counted n-gram (Chen and Goodman 1999, eq. 2), and
gamma(h) = b(h) is the mass left to the shorter context. In a backoff model (maximum likelihood, add-k,
stupid backoff) the stored p(h w) is the whole probability: eq. (3). For an ARPA file not written
interpolated, eq. (2) still adds up, but alpha may be negative.

The longest stored n-gram h_{k-1} w that ends in w gives ``ngram_length`` = k, the number KenLM's
``query`` prints (``<s>`` counts as a token of the n-gram, as KenLM counts it). P_N is the token's
probability (eq. (2) of :mod:`~scratchgen.ngram.model`: the stored p of order k times the backoff weights
of the longer contexts).

A labelled model with a label c (:mod:`~scratchgen.ngram.labelled`) is explained by the terms of its eq. (3)
instead: the label's own part (its eq. (5), the walk on the label's tables) and the label-free model's
P(w | h_j) at each history h_j the label has seen and at the whole history h, each with its weight
(:func:`explain_labelled_tokens`). Without a label the model is the marginal of :mod:`scratchgen.explain`
eq. (5), a mixture over the labels: it has no family keys.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..text import Vocabulary
from .counting import _lookup
from .smoothing import make_smoothing

__all__ = ["explain_labelled_tokens", "explain_tokens", "is_interpolated"]

BOS, EOS = Vocabulary.bos_id, Vocabulary.eos_id


def is_interpolated(model) -> bool:
    """Whether the stored p(h w) folds the lower order in (eq. (2)) or is the whole probability (eq. (3))."""
    if model.smoothing == "arpa":
        return True
    return bool(make_smoothing(model.smoothing, k=model.k, discount=model.discount, alpha=model.alpha).interpolated)


def explain_tokens(model, ids: np.ndarray) -> list[dict[str, Any]]:
    """For each token of ``ids`` and ``</s>``: ``ngram_length``, the recursion's ``steps`` and a ``why`` line.

    Each step (highest order first) is ``{"order": j, "ngram": [tokens of h_{j-1} w], "stored": bool,
    "alpha": alpha_j, "gamma": gamma_j, "lower": P_{j-1}, "p": P_j}`` by eqs. (1)-(4) (probabilities, not
    logs; ``lower`` and ``gamma`` are None at j = 1).
    """
    keys, bow = model.keys_, model.bow_
    V = len(model.vocab_)
    names = model.vocab_.tokens
    interpolated = is_interpolated(model)
    stream = np.concatenate([[BOS], np.asarray(ids, dtype=np.int64), [EOS]])  # (T + 2,)
    positions = np.arange(1, len(stream))  # (T + 1,) where each scored token sits
    N = int(model.order)
    steps: list[list[dict]] = [[] for _ in positions]
    lengths = np.ones(len(positions), dtype=np.int64)  # (T + 1,) the unigram is always stored
    lower = np.full(len(positions), np.nan)  # (T + 1,) P_{j-1} of every token (none below the unigram)
    for j in range(1, N + 1):
        live = np.flatnonzero(positions - j + 1 >= 0)  # the tokens with j - 1 tokens of history
        rows = np.stack([stream[positions[live] - j + 1 + i] for i in range(j)], axis=1)  # (L, j)
        P = np.exp(model.ngram_logprobs(rows))  # (L,) P_j
        index = _lookup(keys, rows, V)  # (L,) the stored n-gram h_{j-1} w, -1 if not stored
        stored = index >= 0
        lengths[live[stored]] = j
        if j == 1:
            alpha, gamma = P, np.full(len(live), np.nan)
        else:
            ctx = _lookup(keys, rows[:, :-1], V)  # (L,) the stored context h_{j-1}, -1 if not stored
            b = np.where(ctx >= 0, np.exp(bow[j - 2][np.maximum(ctx, 0)]), 1.0)  # (L,) b(h), 1 if unstored
            below = lower[live]  # (L,) P_{j-1}
            if interpolated:
                gamma = b
                alpha = np.where(stored, P - b * below, 0.0)  # eqs. (2), (4)
                alpha[np.abs(alpha) <= 1e-12 * P] = 0.0  # a share of 0 (a count discounted to nothing), not rounding
            else:
                gamma = np.where(stored, 0.0, b)  # eqs. (3), (4)
                alpha = np.where(stored, P, 0.0)
        new_lower = lower.copy()
        for r, t in enumerate(live.tolist()):
            steps[t].append(
                {
                    "order": j,
                    "ngram": [names[v] for v in rows[r].tolist()],
                    "stored": bool(stored[r]),
                    "alpha": float(alpha[r]),
                    "gamma": None if j == 1 else float(gamma[r]),
                    "lower": None if j == 1 else float(lower[t]),
                    "p": float(P[r]),
                }
            )
            new_lower[t] = P[r]
        lower = new_lower
    out = []
    for t in range(len(positions)):
        unrolled = steps[t][::-1]  # highest order first
        out.append({"ngram_length": int(lengths[t]), "steps": unrolled, "why": _why(int(lengths[t]), unrolled)})
    return out


def _why(k: int, steps: list[dict]) -> str:
    """The sum a learner checks by hand: P = alpha + gamma * (alpha' + gamma' * (... p(w)))."""
    expr = ""
    for step in reversed(steps):  # from the unigram up
        if step["order"] == 1:
            expr = f"{step['p']:.4g}"
        elif step["stored"] and step["gamma"] == 0.0:
            expr = f"{step['alpha']:.4g}"  # eq. (3): the lower order is not used
        elif step["stored"]:
            expr = f"{step['alpha']:.4g} + {step['gamma']:.4g}*({expr})"
        elif step["gamma"] != 1.0:
            expr = f"{step['gamma']:.4g}*({expr})"
    return f"{k}-gram matched; P = {expr} = {steps[0]['p']:.4g}"


# --- a labelled model with a label c: the terms of labelled.py eq. (3) --------------------------------------


def explain_labelled_tokens(model, ids: np.ndarray, label: int) -> list[dict[str, Any]]:
    """For each token of ``ids`` and ``</s>`` under the label c: the terms of :mod:`.labelled` eq. (3).

    P(w | c, h) is the label's part (eq. (5): its own tables walked like eq. (2) of model.py) plus the
    label-free model at the history lengths the label has seen, and at the whole history (eq. (6)). Each token
    gets ``label`` (c's name), ``label_ngram_length`` (the longest stored (c, h_{k-1} w), counted as
    ``ngram_length`` counts; 1 when the label's unigram is all it has), ``parts`` (a list, the label's part
    first, then the label-free ones from the longest history down: ``{"from": "label" or "label-free",
    "history": [tokens], "weight": W, "p": p}``, probabilities, not logs; P = sum of W p) and a ``why`` line.

    The label's part has ``p`` = r_c(h_{k-1} w) and ``W`` = the product of the b_c of the longer label
    contexts tried (eq. (5)); a label-free part at a history h_j that the label has seen has
    ``W`` = W_j gamma_c(h_j) m and ``p`` = P(w | h_j); the last part, ``W`` = W_0 gamma_c(()) and ``p`` = P(w | h).
    """
    from .labelled import LOG_ODDS
    from .model import _context_bows, _indices, _walk  # (model.py eq. (2), shared with the scoring)

    keys, logp, bow = model._tables()
    lkeys, logr, lbow, below = model._label_tables()
    V, N = len(model.vocab_), int(model.order)
    names = model.vocab_.tokens
    stream = np.concatenate([[BOS], np.asarray(ids, dtype=np.int64), [EOS]])  # (T + 2,)
    index = _indices(keys, stream, stream, N, V)
    free = [_walk(stream, index[:j], logp, bow, j) for j in range(1, N + 1)]  # free[j]: log P(w | h_j), (T + 2,)
    lindex = _indices(lkeys, stream, label * V + stream, N, V)  # labelled.py eq. (7)
    B, seen = _context_bows(lindex, lbow, N)  # (N - 1, T + 2) log b_c(h_j), j = 1 .. N - 1
    after = np.cumsum(B[::-1], axis=0)[::-1]  # (N - 1, T + 2) log W_{j-1} = sum_{i >= j} log b_c(h_i)
    log_w0 = after[0] if N > 1 else np.zeros(len(stream))  # (T + 2,) log W_0
    out = []
    for p in range(1, len(stream)):
        k = max(n for n in range(1, N + 1) if lindex[n - 1][p] >= 0)  # the unigram level is dense: k >= 1
        label_weight = math.exp(float(B[k - 1 :, p].sum())) if k < N else 1.0  # the b_c of contexts j >= k tried
        r = float(np.exp(logr[k - 1][lindex[k - 1][p]]))
        parts = [{"from": "label", "history": _names(names, stream[p - k + 1 : p]), "weight": label_weight, "p": r}]
        for j in range(N - 1, 0, -1):  # eq. (6): W_j gamma_c(h_j) m at the histories the label has seen
            if seen[j - 1, p]:
                weight = math.exp(float(after[j - 1, p]) + LOG_ODDS)
                parts.append(_part(names, stream[p - j : p], weight, free[j][p]))
        whole = stream[max(p - N + 1, 0) : p]  # h, back to <s>
        parts.append(_part(names, whole, math.exp(float(log_w0[p] + below[label])), free[N - 1][p]))
        record = {"label": model.labels_.names[label], "label_ngram_length": k, "parts": parts}
        record["why"] = _why_labelled(record, float(np.exp(_total(parts))))
        out.append(record)
    return out


def _names(names: list, ids: np.ndarray) -> list:
    return [names[v] for v in ids.tolist()]


def _part(names: list, history: np.ndarray, weight: float, logp: float) -> dict[str, Any]:
    return {"from": "label-free", "history": _names(names, history), "weight": weight, "p": math.exp(float(logp))}


def _total(parts: list) -> float:
    """log of sum W p over the parts (labelled.py eq. (3))."""
    with np.errstate(divide="ignore"):
        return float(np.logaddexp.reduce([np.log(q["weight"]) + np.log(q["p"]) for q in parts]))


def _why_labelled(record: dict, P: float) -> str:
    """The sum a learner checks: P = W p (the label's n-gram) + W p (label-free after h_j) + ..."""
    parts = record["parts"]
    terms = [f"{parts[0]['weight']:.4g}*{parts[0]['p']:.4g} (label)"]
    terms += [f"{q['weight']:.4g}*{q['p']:.4g} (free, h_{len(q['history'])})" for q in parts[1:-1]]
    terms.append(f"{parts[-1]['weight']:.4g}*{parts[-1]['p']:.4g} (free, h)")
    k = record["label_ngram_length"]
    return f"label {record['label']!r}: {k}-gram of the label matched; P = {' + '.join(terms)} = {P:.4g}"
