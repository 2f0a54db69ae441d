"""A tiny model with a known transition table, for testing the decoder on its own.

P(x_t | x_<t) = T[x_{t-1}] (x_0 = <s>): a first-order Markov chain over a small vocabulary.
"""

from __future__ import annotations

import numpy as np

from scratchgen.model import LanguageModel
from scratchgen.text import Vocabulary


class MarkovModel(LanguageModel):
    def __init__(self, *, table=None, tokens=None, tokenizer=None):
        super().__init__(tokenizer=tokenizer)
        self.table = table
        self.tokens = tokens

    @classmethod
    def random(cls, rng: np.random.Generator, n_tokens: int = 4, eos_weight: float = 0.3, sharp: float = 1.0):
        """A random chain over the letters a, b, c, ...; </s> gets ``eos_weight`` of the mass on average."""
        tokens = [chr(ord("a") + i) for i in range(n_tokens)]
        V = n_tokens + 3
        logits = rng.normal(scale=sharp, size=(V, V))  # (V, V)
        table = np.exp(logits)
        table[:, Vocabulary.bos_id] = 0.0  # never emitted
        table[:, Vocabulary.unk_id] = 0.0  # keeps the outcomes of the tests to the letters
        table /= table.sum(axis=1, keepdims=True)
        table[:, Vocabulary.eos_id] += eos_weight
        table /= table.sum(axis=1, keepdims=True)
        model = cls(table=table.tolist(), tokens=tokens)
        return model.fit(None)

    def fit(self, corpus):
        self.vocab_ = Vocabulary(self.tokens)
        self.table_ = np.array(self.table, dtype=np.float64)  # (V, V)
        return self

    def initial_state(self, batch_size=1):
        return np.full(batch_size, Vocabulary.bos_id, dtype=np.int64)  # (B,) the last token

    def advance(self, state, ids):
        return np.asarray(ids, dtype=np.int64).copy()

    def next_logprobs(self, state):
        with np.errstate(divide="ignore"):
            return np.log(self.table_[state])  # (B, V)


def chi2_critical(df: int, z: float = 3.719) -> float:
    """Upper quantile of the chi-square distribution (Wilson-Hilferty); z = 3.719 is p = 1e-4."""
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * np.sqrt(h)) ** 3


def chi2_statistic(observed: np.ndarray, expected_probs: np.ndarray) -> float:
    n = observed.sum()
    expected = n * expected_probs
    return float(((observed - expected) ** 2 / expected).sum())
