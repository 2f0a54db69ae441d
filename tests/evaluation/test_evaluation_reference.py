"""Exact log-probabilities of samples under a reference model (a duck-typed ``logprob``)."""

from __future__ import annotations

import math

import pytest

from scratchgen import UnigramModel
from scratchgen.errors import ScratchgenError
from scratchgen.evaluation import reference_logprob


class Geometric:
    """A tiny stand-in for a grammar, S -> h S (1/2) | t (1/2): it makes h^k t with probability (1/2)^(k+1)."""

    def logprob(self, tokens):
        tokens = list(tokens)
        if not tokens or tokens[-1] != "t" or any(t != "h" for t in tokens[:-1]):
            return -math.inf
        return len(tokens) * math.log(0.5)


def test_worked_example():
    r = reference_logprob([["t"], ["h", "t"], ["t", "h"]], Geometric())
    # "t h" is impossible: 1 of 3. Possible: ln(1/2) and 2 ln(1/2).
    assert r.samples == 3
    assert r.impossible == pytest.approx(1 / 3)
    assert r.logprob_per_sample == pytest.approx(1.5 * math.log(0.5))  # (ln .5 + 2 ln .5) / 2
    # per token: 3 ln(1/2) over (1 + 1) + (2 + 1) = 5 tokens, </s> counted once a sequence
    assert r.logprob_per_token == pytest.approx(3 * math.log(0.5) / 5)
    assert r.bits_per_token == pytest.approx(3 / 5)  # -3 log2(1/2) / 5
    assert r.to_dict()["bits_per_token"] == pytest.approx(0.6)


def test_nothing_possible_gives_nan_means():
    r = reference_logprob([["h"], ["t", "t"]], Geometric())
    assert r.impossible == 1.0
    assert math.isnan(r.logprob_per_sample) and math.isnan(r.logprob_per_token)


def test_agrees_with_the_protocols_score_for_a_model_reference():
    # Another route to eq. (3): a LanguageModel as the reference; its score() computes the same ratio.
    train = [["a", "b"], ["b", "b", "a"], ["c"]]
    model = UnigramModel(k=0.5).fit(train)
    samples = [["a"], ["b", "c", "a"], []]
    r = reference_logprob(samples, model)
    assert r.impossible == 0.0
    assert -r.logprob_per_token == pytest.approx(model.score(samples).cross_entropy_nats)


def test_bad_references_and_inputs():
    with pytest.raises(ScratchgenError, match="logprob"):
        reference_logprob([["a"]], object())
    with pytest.raises(ScratchgenError, match="empty"):
        reference_logprob([], Geometric())

    class Broken:
        def logprob(self, tokens):
            return 0.5  # a probability above 1

    with pytest.raises(ScratchgenError, match="<= 0"):
        reference_logprob([["a"]], Broken())
