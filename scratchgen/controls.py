"""The decoder's controls, checked once and turned into token ids, before any step is taken.

:mod:`scratchgen.decoding` holds the algorithm (mask, penalise, temper, filter, draw; beam search);
this module holds what comes before it: a :class:`DecodingSettings` whose every field is validated
on construction, the random generator of a seed, and the vocabulary-dependent controls (banned and
stop tokens, the prompt) as id arrays. Every fault is a :class:`~scratchgen.errors.DecodingError`
naming the bad value, raised before the first token is drawn.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np

from .errors import DecodingError
from .text import Vocabulary

__all__ = ["DecodingSettings", "check_count", "make_rng", "prepare_ids"]


def make_rng(seed) -> np.random.Generator:
    """The random generator of a ``seed``: an int >= 0, ``None`` (fresh entropy) or a Generator (used as it is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise DecodingError(f"seed must be a non-negative int, None or a numpy.random.Generator, got {seed!r}")


@dataclasses.dataclass(frozen=True)
class DecodingSettings:
    """The sampling controls, validated once (see :mod:`scratchgen.decoding` for their meaning)."""

    max_tokens: int = 200
    min_tokens: int = 0
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        def is_int(v: object) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if not is_int(self.max_tokens) or self.max_tokens < 0:
            raise DecodingError(f"max_tokens must be an integer >= 0, got {self.max_tokens!r}")
        if not is_int(self.min_tokens) or not 0 <= self.min_tokens <= self.max_tokens:
            raise DecodingError(
                f"min_tokens must be an integer from 0 to max_tokens ({self.max_tokens}), got {self.min_tokens!r}"
            )
        if (
            not isinstance(self.temperature, (int, float))
            or not math.isfinite(self.temperature)
            or self.temperature < 0
        ):
            raise DecodingError(f"temperature must be a finite number >= 0 (0 is greedy), got {self.temperature!r}")
        if self.top_k is not None and (not is_int(self.top_k) or self.top_k < 1):
            raise DecodingError(f"top_k must be None or an integer >= 1, got {self.top_k!r}")
        if self.top_p is not None and (not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1):
            raise DecodingError(f"top_p must be None or a number in (0, 1], got {self.top_p!r}")
        if (
            not isinstance(self.repetition_penalty, (int, float))
            or not math.isfinite(self.repetition_penalty)
            or self.repetition_penalty <= 0
        ):
            raise DecodingError(f"repetition_penalty must be a finite number > 0, got {self.repetition_penalty!r}")


def _token_ids(vocab: Vocabulary, tokens: Iterable[str], what: str) -> np.ndarray:
    """The ids of named tokens (one str is one token); a token outside the vocabulary is an error."""
    if isinstance(tokens, str):
        tokens = [tokens]
    ids = []
    for token in tokens:
        if token not in vocab:
            raise DecodingError(f"{what} token {token!r} is not in the model's vocabulary")
        ids.append(vocab.index(token))
    return np.array(ids, dtype=np.int64)


def check_count(name: str, value: object) -> None:
    """``n``, ``batch_size``, ``width``: an integer >= 1 (not a bool)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise DecodingError(f"{name} must be an integer >= 1, got {value!r}")


def prepare_ids(model, prompt, prompt_oov: str, banned: Iterable[str], stop: Iterable[str], allow_unk: bool):
    """The controls that depend on the vocabulary, as ids: ``(vocab, banned, stop, prompt)``.

    Checked in this order, so the first fault is the one reported: the model is fitted, the banned
    and stop tokens are in its vocabulary, the prompt obeys the token rule and (unless
    ``prompt_oov="unk"``) is in the vocabulary too.
    """
    vocab = model.fitted_vocab()  # NotFittedError before anything else
    banned_ids = _banned_ids(vocab, banned, allow_unk)
    stop_ids = _token_ids(vocab, stop, "stop")
    return vocab, banned_ids, stop_ids, _prompt_ids(model, prompt, prompt_oov)


def _banned_ids(vocab: Vocabulary, banned: Iterable[str], allow_unk: bool) -> np.ndarray:
    """The ids never emitted: the banned tokens, and ``<unk>`` unless it is allowed."""
    ids = _token_ids(vocab, banned, "banned")
    if not allow_unk:
        ids = np.union1d(ids, [Vocabulary.unk_id]).astype(np.int64)
    return ids


def _prompt_ids(model, prompt, prompt_oov: str) -> np.ndarray:
    """The prompt as ids, tokenized by the model; an out-of-vocabulary token is refused or becomes ``<unk>``."""
    if prompt is None:
        return np.zeros(0, dtype=np.int64)
    vocab = model.fitted_vocab()
    if prompt_oov not in ("error", "unk"):
        raise DecodingError(f"prompt_oov must be 'error' or 'unk', got {prompt_oov!r}")
    tokens = model.tokenize(prompt)  # the one token rule: no <s> or </s>
    for token in tokens:
        if prompt_oov == "error" and token not in vocab:
            raise DecodingError(
                f"prompt token {token!r} is not in the model's vocabulary (to map it to <unk>, "
                "give --unk-prompt on the command line, prompt_oov='unk' in Python)"
            )
    return vocab.encode(tokens)
