"""Why a model gave each probability: the per-token story of one text (issue 14).

A text x_1..x_T is scored by the chain rule of :mod:`scratchgen.model`, ``</s>`` = x_{T+1} included.
:func:`explain` walks the stepping interface once and gives every token the record

    logprob_t = log P(x_t | x_<t)                               natural log                          (1)
    bits_t    = -logprob_t / ln 2                               surprisal in bits                    (2)
    rank_t    = 1 + |{v : P(v | x_<t) > P(x_t | x_<t)}|         1 = the most probable token          (3)
    top_t     = the K most probable tokens v, with P(v | x_<t)  ties in order of vocabulary id      (4)

Ties in (3) share the best rank (competition ranking, "1224"): a token tied with two others for the
highest probability has rank 1, as do they. ``<s>`` (never emitted, probability 0) is never in ``top``, nor
is any token of probability 0. An out-of-vocabulary token is scored as ``<unk>`` (its record says
``"oov": true``) and its rank is ``<unk>``'s.

The family's "why" comes from the model itself: ``model._explain(ids, label)`` returns one dict of
family keys a token and one dict for the whole sentence (the base class: no keys). Each family writes
its hook in its own package (``scratchgen/ngram/explain.py``, ``scratchgen/grammar/explain.py``,
``scratchgen/nn/explain.py``, the random models in :mod:`scratchgen.baseline`); a key ``why`` holds the
family's one-line reading of the numbers, which the command line prints.

**A labelled model** with a label c gives P(x_t | x_<t, c). Without one it gives the marginal
P(x) = sum_c P(c) P(x | c), whose next-token distribution is a mixture weighted by the posterior
of the label given the prefix::

    P(v | x_<t) = sum_c P(c | x_<t) P(v | x_<t, c),      P(c | x_<t) ∝ P(c) P(x_<t | c)          (5)

so the log P of (1) sum to the marginal log P(x), as :meth:`~scratchgen.model.LanguageModel.logprob` gives it.
The family keys of a marginal are the family's choice (the families here give none per token).

**Two models** (``other``): both explain the same tokens (their tokenizers must be equal), and each token
also gets the second model's record under ``"other"`` and

    bits_difference_t = bits_t(other) - bits_t(model)       > 0: the second model is more surprised  (6)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .errors import LabelError, ScratchgenError
from .labels import start_state

__all__ = ["explain", "token_records"]

LN2 = math.log(2.0)


def _bits(logprob: float) -> float:
    """Surprisal in bits of a natural-log probability: eq. (2) (``inf`` for an impossible token)."""
    return 0.0 - logprob / LN2 if logprob > -math.inf else math.inf  # 0.0 - : no -0.0 for a certain token


def _next_rows(model, ids: np.ndarray, label: int | None) -> Iterator[np.ndarray]:
    """The next-token log-probabilities (V,) before each token of ``ids`` and before ``</s>``.

    A labelled model without a label steps every label at once and mixes the rows by eq. (5).
    """
    labels = model.labels_
    T = len(ids)
    if labels is None or label is not None:
        state = start_state(model, 1, None if label is None else np.array([label]))
        for t in range(T + 1):
            yield model.next_logprobs(state)[0]  # (V,)
            if t < T:
                state = model.advance(state, ids[t : t + 1])
        return
    C = len(labels)
    state = start_state(model, C, np.arange(C))
    joint = labels.log_prior.copy()  # (C,) log P(c) + log P(x_<t | c)
    for t in range(T + 1):
        rows = model.next_logprobs(state)  # (C, V)
        with np.errstate(invalid="ignore", divide="ignore"):
            posterior = joint - np.logaddexp.reduce(joint)  # (C,) log P(c | x_<t)
            row = np.logaddexp.reduce(posterior[:, None] + rows, axis=0)  # (V,) eq. (5)
        yield np.where(np.isnan(row), -np.inf, row)  # an impossible prefix: every next token impossible
        if t < T:
            joint = joint + rows[:, ids[t]]
            state = model.advance(state, np.full(C, ids[t], dtype=np.int64))


def _record(row: np.ndarray, target: int, names: list[str], top: int) -> dict[str, Any]:
    """Eqs. (1)-(4) for one token: its log P, bits, rank and the ``top`` most probable tokens."""
    logprob = float(row[target])
    rank = 1 + int(np.count_nonzero(row > row[target]))  # eq. (3): ties share the best rank
    order = _top_ids(row, top)
    return {
        "logprob": logprob,
        "bits": _bits(logprob),
        "rank": rank,
        "top": [[names[v], float(np.exp(row[v]))] for v in order.tolist()],
    }


def _top_ids(row: np.ndarray, top: int) -> np.ndarray:
    """The ids of the ``top`` most probable tokens, ties in order of id, none of probability 0: eq. (4).

    O(V): the candidates are the tokens at least as probable as the top-th (all ties included), then sorted.
    """
    if top == 0:
        return np.zeros(0, dtype=np.int64)
    k = min(top, len(row))
    threshold = np.partition(row, len(row) - k)[len(row) - k]  # the k-th largest log P
    candidates = np.flatnonzero((row >= threshold) & np.isfinite(row))  # ascending ids
    order = candidates[np.argsort(-row[candidates], kind="stable")]  # by probability, ties by id
    return order[:k]


def token_records(model, tokens: Sequence[str], top: int = 5, label: str | None = None) -> tuple[list, dict]:
    """The records of eqs. (1)-(4) and the family's keys for the tokens of one text, and its sentence keys.

    Returns ``(records, sentence)``: one dict a token, ``</s>`` last, and the family's dict for the whole
    text (e.g. the grammar's parse).
    """
    vocab = model.fitted_vocab()
    label_id = None
    if label is not None:
        if model.labels_ is None:
            raise LabelError(
                f"label {label!r}: this {type(model).__name__} has no labels (it was trained without "
                "--labelled / labels=)"
            )
        label_id = model.labels_.id(label)
    ids = vocab.encode(list(tokens))  # (T,) an OOV token as <unk>
    family, sentence = model._explain(ids, label_id)
    shown = list(tokens) + ["</s>"]
    names = vocab.tokens
    targets = ids.tolist() + [vocab.eos_id]
    records = []
    for t, row in enumerate(_next_rows(model, ids, label_id)):
        rec = {"token": shown[t], **_record(row, targets[t], names, top)}
        rec["oov"] = t < len(tokens) and shown[t] not in vocab
        rec.update(family[t])
        records.append(rec)
    return records, sentence


def _check_top(top) -> int:
    if not isinstance(top, (int, np.integer)) or isinstance(top, bool) or top < 0:
        raise ScratchgenError(f"top must be an integer >= 0 (how many alternatives to show), got {top!r}")
    return int(top)


def explain(model, text, other=None, top: int = 5, label: str | None = None) -> dict[str, Any]:
    """The per-token story of why ``model`` (and ``other``) gave each probability to ``text``.

    Parameters
    ----------
    model : LanguageModel
        A fitted model.
    text : str or list of str
        One sequence: a str is split by the model's tokenizer; a token list is taken as it is.
    other : LanguageModel or None
        A second model with the same tokenizer, explained beside the first: eq. (6).
    top : int
        How many alternatives each record lists (0: none).
    label : str or None
        For a labelled model, the condition c; without it, the marginal of eq. (5). It applies to both
        models; a label given to an unlabelled model is a :class:`~scratchgen.errors.LabelError`.

    Returns
    -------
    dict
        ``{"text", "logprob", "tokens": [records], ...sentence keys}``; with ``other`` also
        ``"other": {"logprob", ...sentence keys}`` and, in each record, ``"other"`` (the second model's
        record) and ``"bits_difference"``. Every value is JSON-ready (an impossible token has
        ``logprob = -inf`` and ``bits = inf``).

    >>> from scratchgen import UnigramModel
    >>> m = UnigramModel(k=1).fit([["a", "a"]])
    >>> e = explain(m, ["a"], top=2)
    >>> [(r["token"], r["rank"], round(r["bits"], 3)) for r in e["tokens"]]
    [('a', 1, 1.0), ('</s>', 2, 1.585)]
    >>> bool(np.isclose(e["logprob"], m.logprob(["a"])))
    True
    """
    top = _check_top(top)
    tokens = model.tokenize(text)  # the empty text is a sequence too: its one token is </s>
    if other is not None and other.tokenizer_ != model.tokenizer_:
        raise ScratchgenError(
            f"the two models split text differently ({type(model).__name__}: {_tokenizer_name(model)}, "
            f"{type(other).__name__}: {_tokenizer_name(other)}), so their tokens cannot be compared"
        )
    records, sentence = token_records(model, tokens, top, label)
    out: dict[str, Any] = {
        "text": text if isinstance(text, str) else " ".join(tokens),
        "logprob": float(sum(r["logprob"] for r in records)),
        "tokens": records,
        **sentence,
    }
    if other is not None:
        theirs, their_sentence = token_records(other, tokens, top, label)
        for mine, rec in zip(records, theirs):
            del rec["token"]
            mine["other"] = rec
            mine["bits_difference"] = _difference(rec["bits"], mine["bits"])  # eq. (6)
        out["other"] = {"logprob": float(sum(r["logprob"] for r in theirs)), **their_sentence}
    return out


def _difference(a: float, b: float) -> float:
    """a - b, with inf - inf read as 0 (both models find the token impossible: no difference)."""
    return 0.0 if a == b else a - b


def _tokenizer_name(model) -> str:
    t = model.tokenizer_
    return f"{t.level} level" + (", lowercased" if t.lowercase else "")
