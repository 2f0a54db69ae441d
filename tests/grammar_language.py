"""Small finite languages whose every sentence we can list, and the distributions over them we can compute.

For a grammar G with a finite language and a model P, the exact conditional is P(x) 1[x in L] / P(L)
(eq. (1) of scratchgen.smc) and the masked sampler's distribution is the product of the renormalised
masked steps (eq. (2) of scratchgen.constraint); both are computed here by listing L, independently of
the samplers under test (only the grammar's scoring and the mask of eq. (1) are used).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from scratchgen.constraint import GrammarConstraint
from scratchgen.grammar import GrammarModel


def language(grammar: str, max_length: int) -> list[list[str]]:
    """Every sentence of at most ``max_length`` tokens with positive probability under the grammar."""
    g = GrammarModel.from_grammar(grammar)
    terminals = g.vocab_.to_list()
    candidates = [list(x) for k in range(max_length + 1) for x in itertools.product(terminals, repeat=k)]
    candidates = [x for x in candidates if x]
    logps = g.sentence_logprobs(candidates)
    return [x for x, lp in zip(candidates, logps) if lp > -math.inf]


def model_probs(model, sentences: list[list[str]], prompt: list[str] = ()) -> np.ndarray:
    """P_model(y | prompt) of each continuation y (the model's own scoring: prompt + y + </s>)."""
    prompt = list(prompt)
    full = np.array([model.token_logprobs([model.vocab_.encode(prompt + y)])[0].sum() for y in sentences])
    head = model.token_logprobs([model.vocab_.encode(prompt)])[0][: len(prompt)].sum()  # log P(prompt), no </s>
    return np.exp(full - head)


def masked_probs(model, grammar: str, sentences: list[list[str]]) -> np.ndarray:
    """q(x) = prod_t P(x_t | x_<t) m_t(x_t) / sum_a P(a | x_<t) m_t(a): the masked sampler's distribution."""
    constraint = GrammarConstraint(grammar, model.vocab_)
    vocab = model.vocab_
    out = []
    for x in sentences:
        ids = list(vocab.encode(x)) + [vocab.eos_id]
        state, gstate, logq = model.initial_state(1), constraint.initial_state(1), 0.0
        for token in ids:
            logp = model.next_logprobs(state)[0]  # (V,)
            allowed = constraint.allowed(gstate)[0]  # (V,)
            kept = np.where(allowed, logp, -np.inf)
            logq += kept[token] - np.logaddexp.reduce(kept)
            state, gstate = model.advance(state, np.array([token])), constraint.advance(gstate, [token])
        out.append(math.exp(logq))
    return np.array(out)


def counts(samples: list[list[str]], sentences: list[list[str]]) -> np.ndarray:
    """How often each sentence occurs among the samples (every sample must be one of them)."""
    index = {tuple(x): i for i, x in enumerate(sentences)}
    out = np.zeros(len(sentences))
    for s in samples:
        out[index[tuple(s)]] += 1  # a KeyError here is a sample outside the language
    return out


def chi2_critical(df: int, p: float = 1e-4) -> float:
    """The upper p-quantile of chi-square with df degrees of freedom: SciPy's when it is there, else the
    Wilson-Hilferty approximation (chi2 / df is nearly normal after a cube root; within 1% for df >= 3)."""
    try:
        from scipy.stats import chi2
    except ImportError:
        from statistics import NormalDist

        z = NormalDist().inv_cdf(1 - p)
        h = 2.0 / (9.0 * df)
        return df * (1.0 - h + z * math.sqrt(h)) ** 3
    return float(chi2.ppf(1 - p, df))


def chi2_statistic(observed: np.ndarray, probs: np.ndarray) -> float:
    """Pearson's statistic of observed counts against probabilities (every expected count should be >= 5)."""
    expected = observed.sum() * probs / probs.sum()
    return float(((observed - expected) ** 2 / expected).sum())
