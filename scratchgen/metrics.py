"""How generated text and models are measured.

Scoring convention (KenLM's, so figures compare directly): for a corpus of sequences x^(1..S),

    cross-entropy H = -(1/N) sum_s log P(x^(s))      nats per token                          (1)
    N = sum_s (|x^(s)| + 1)                          every token plus one </s> a sequence      (2)
    perplexity = exp(H),  bits per token = H / ln 2                                           (3)

``<s>`` is context only and never counted; an out-of-vocabulary token is scored as ``<unk>``.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["Score"]


@dataclasses.dataclass(frozen=True)
class Score:
    """The score of a corpus under a model; ``to_dict`` gives the keys ``scratchgen score --json`` prints."""

    sequences: int
    tokens: int
    oov_tokens: int
    logprob: float
    cross_entropy_nats: float
    bits_per_token: float
    perplexity: float

    @classmethod
    def from_totals(cls, logprob: float, sequences: int, tokens: int, oov_tokens: int) -> "Score":
        """Eq. (1)-(3) from the total natural-log probability and the counts."""
        h = -logprob / tokens  # eq. (1)
        perplexity = math.exp(h) if h < 709.0 else math.inf
        return cls(
            sequences=sequences,
            tokens=tokens,
            oov_tokens=oov_tokens,
            logprob=logprob,
            cross_entropy_nats=h,
            bits_per_token=h / math.log(2),  # eq. (3)
            perplexity=perplexity,
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
