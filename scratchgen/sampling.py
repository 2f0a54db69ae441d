"""The sampler behind :mod:`scratchgen.decoding`: the controls applied one step at a time, for a batch.

Each step takes the model's l = log P(. | x_<t) of shape (B, V), masks it (step 1 of
:mod:`scratchgen.decoding`'s docstring), applies the repetition penalty (its eq. (1)), the temperature,
top-k and top-p (steps 3-5), and draws one token a row (its eq. (2)). The equation numbers below are
that docstring's.

Letters: B batch (the rows still generating), V vocabulary.
"""

from __future__ import annotations

import math

import numpy as np

from .controls import DecodingSettings
from .errors import DecodingError
from .labels import start_state
from .text import Vocabulary

__all__ = ["filter_logits"]

NEG_INF = -np.inf


# --- the pieces ------------------------------------------------------------------------------------


def _start(model, batch: int, prompt: np.ndarray, labels: np.ndarray | None = None):
    """The state of ``batch`` copies of the prompt (each with its label id, for a labelled model); a prompt
    the model gives probability 0 is refused, since nothing can be conditioned on it."""
    state = start_state(model, batch, labels)
    for t, token in enumerate(prompt):
        if not np.isfinite(model.next_logprobs(model.take_state(state, np.zeros(1, np.int64)))[0, token]):
            shown = " ".join(model.fitted_vocab().decode(prompt[: t + 1]))
            raise DecodingError(f"the prompt has probability 0 under this model (at {shown!r}): nothing can follow it")
        state = model.advance(state, np.full(batch, token, dtype=np.int64))
    return state


def _mask(logprobs: np.ndarray, banned: np.ndarray) -> np.ndarray:
    out = np.array(logprobs, dtype=np.float64, copy=True)  # (B, V) never modify the model's array
    out[:, Vocabulary.bos_id] = NEG_INF
    if banned.size:
        out[:, banned] = NEG_INF
    return out


def _nothing_left(model, raw: np.ndarray, logits: np.ndarray) -> str:
    """The error of a step at which no token is left to draw (a row of ``logits`` (B, V) all -inf), naming the
    tokens the model itself gave a probability there (``raw``), which the controls then took away."""
    message = "every token is banned or excluded (or outside the grammar) at this step: nothing can be generated"
    row = int(np.flatnonzero(~np.isfinite(logits.max(axis=1)))[0])
    allowed = np.flatnonzero(np.isfinite(raw[row]))
    allowed = allowed[allowed != Vocabulary.bos_id]  # (k,) never drawn: not the controls' doing
    if not len(allowed):
        return message
    shown = ", ".join(repr(token) for token in model.fitted_vocab().decode(allowed[:5]))
    more = f" and {len(allowed) - 5} more" if len(allowed) > 5 else ""
    they = "it is" if len(allowed) == 1 else "they are"
    hint = " (allow_unk=True, or --allow-unk, lets the model emit <unk>)" if Vocabulary.unk_id in allowed else ""
    return (
        f"nothing can be generated at this step: the model allows only {shown}{more}, and {they} banned or excluded"
        + hint
    )


def filter_logits(logits: np.ndarray, top_k: int | None, top_p: float | None) -> np.ndarray:
    """Steps 4-5 of :mod:`scratchgen.decoding` on unnormalised log-probabilities of shape (B, V), in place."""
    B, V = logits.shape
    if top_k is not None and top_k < V:
        # Stable order: by descending score, lower id first among equals.
        order = np.argsort(-logits, axis=1, kind="stable")  # (B, V)
        np.put_along_axis(logits, order[:, top_k:], NEG_INF, axis=1)
    if top_p is not None and top_p < 1:
        order = np.argsort(-logits, axis=1, kind="stable")  # (B, V)
        sorted_logits = np.take_along_axis(logits, order, axis=1)  # (B, V)
        probs = np.exp(sorted_logits - sorted_logits[:, :1])  # (B, V)
        cum = np.cumsum(probs, axis=1)  # (B, V)
        cum /= cum[:, -1:]
        # Keep token j when the mass before it is still short of p: the smallest set reaching p.
        before = cum - probs / probs.sum(axis=1, keepdims=True)  # (B, V)
        drop = before >= top_p * (1 - 1e-12)
        drop[:, 0] = False
        np.put_along_axis(logits, order, np.where(drop, NEG_INF, sorted_logits), axis=1)
    return logits


def _draw(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token a row from softmax(logits) by inverting the cumulative distribution: eq. (2)."""
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))  # (B, V) exp(-inf) = 0
    cum = np.cumsum(probs, axis=1)  # (B, V)
    target = rng.random(len(logits)) * cum[:, -1]  # (B,)
    return (cum <= target[:, None]).sum(axis=1)  # (B,) first w with cum_w > target


# --- sampling ----------------------------------------------------------------------------------------


def _sample(model, n, prompt, settings: DecodingSettings, banned, stop, rng, labels=None):
    """The sampling loop; returns generated id lists and the model's log P of each (controls aside)."""
    V = len(model.fitted_vocab())
    eos = Vocabulary.eos_id
    enders = np.unique(np.concatenate([[eos], stop])).astype(np.int64)  # tokens that end a sequence
    state = _start(model, n, prompt, labels)
    log_theta = math.log(settings.repetition_penalty)
    seen = None  # (B, V) tokens already in each sequence, kept only when the penalty needs it
    if log_theta != 0.0:
        seen = np.zeros((n, V), dtype=bool)
        seen[:, prompt] = True
    # The tokens kept at each step, as (rows, ids) pairs: memory in proportion to what is generated,
    # not to n x max_tokens (a --max-tokens of 10^8 costs nothing until the tokens exist).
    kept_rows: list[np.ndarray] = []
    kept_ids: list[np.ndarray] = []
    logp = np.zeros(n)
    active = np.arange(n)  # rows of the batch still generating
    for t in range(settings.max_tokens):
        raw = model.next_logprobs(state)  # (b, V)
        logits = _mask(raw, banned)
        if t < settings.min_tokens:
            logits[:, enders] = NEG_INF
        if seen is not None:
            logits -= log_theta * seen[active]  # eq. (1)
        if not np.isfinite(logits.max(axis=1)).all():
            raise DecodingError(_nothing_left(model, raw, logits))
        if settings.temperature == 0:
            ids = logits.argmax(axis=1)  # (b,) greedy; lowest id on ties
        else:
            logits /= settings.temperature
            ids = _draw(filter_logits(logits, settings.top_k, settings.top_p), rng)
        logp[active] += raw[np.arange(len(active)), ids]
        kept = ids != eos  # a stop token stays at the end of its sequence; </s> does not
        kept_rows.append(active[kept])
        kept_ids.append(ids[kept])
        if seen is not None:
            seen[active, ids] = True
        keep = ~np.isin(ids, enders)
        if not keep.any():
            break
        if not keep.all():
            state = model.take_state(state, np.flatnonzero(keep))
            ids, active = ids[keep], active[keep]
        state = model.advance(state, ids)
    return _rows(n, kept_rows, kept_ids), logp


def _rows(n: int, kept_rows: list[np.ndarray], kept_ids: list[np.ndarray]) -> list[list[int]]:
    """The id list of each of n rows from the (rows, ids) of every step, in time order."""
    if not kept_rows:
        return [[] for _ in range(n)]
    rows = np.concatenate(kept_rows)  # (tokens,) the row of each generated token, step by step
    ids = np.concatenate(kept_ids).astype(np.int64)  # (tokens,)
    order = np.argsort(rows, kind="stable")  # grouped by row, time order kept within a row
    ends = np.cumsum(np.bincount(rows, minlength=n))  # (n,) where each row's tokens end
    return [part.tolist() for part in np.split(ids[order], ends[:-1])]
