"""The text measures of scratchgen.metrics (eq. 4-7): worked examples and laws."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.errors import ScratchgenError
from scratchgen.metrics import Score, average_length, distinct_n, ngrams, novelty, repetition_rate

SAMPLES = [["a", "b", "c", "a", "b"], ["a", "b", "d"]]


@pytest.mark.parametrize("n, expected", [
    (1, 4 / 8),  # tokens a b c a b | a b d: 8 in all, distinct a b c d
    (2, 4 / 6),  # ab bc ca ab | ab bd: 6 in all, distinct ab bc ca bd
    (3, 4 / 4),  # abc bca cab | abd: all different
    (4, 2 / 2),  # abca bcab | (none: the second sample is too short)
])
def test_distinct_n_worked_example(n, expected):
    assert distinct_n(SAMPLES, n) == pytest.approx(expected)


def test_distinct_n_with_nothing_to_count_is_nan():
    assert math.isnan(distinct_n(SAMPLES, 6))
    assert math.isnan(distinct_n([], 1))


@pytest.mark.parametrize("n, expected", [
    (1, 2 / 8),  # sample 1: a, b seen again (2 repeats of 5); sample 2: none of 3
    (2, 1 / 6),  # sample 1: ab again (1 repeat of 4); sample 2: ab bd, none; ab across samples does not count
    (3, 0 / 4),
])
def test_repetition_rate_worked_example(n, expected):
    assert repetition_rate(SAMPLES, n) == pytest.approx(expected)


def test_novelty_worked_example():
    train = [["a", "b", "c"], ["b", "d"]]  # bigrams ab bc bd
    samples = [["a", "b", "c"], ["a", "b", "d"], ["c", "a"]]
    result = novelty(samples, train, n=2)
    # sequences: "a b c" is copied, the other two are new: 2/3.
    # bigrams: ab bc | ab bd | ca: 5 occurrences, only ca is absent from training: 1/5.
    assert result.sequences == pytest.approx(2 / 3)
    assert result.ngrams == pytest.approx(1 / 5)
    assert result.n == 2
    assert result.to_dict() == {"sequences": pytest.approx(2 / 3), "ngrams": pytest.approx(0.2), "n": 2}


def test_a_copying_model_has_zero_novelty():
    train = [["x", "y", "z"], ["y", "y"]]
    result = novelty(train * 3, train, n=2)
    assert (result.sequences, result.ngrams) == (0.0, 0.0)


def test_average_length():
    assert average_length(SAMPLES) == pytest.approx((5 + 3) / 2)
    assert math.isnan(average_length([]))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_order_is_refused(bad):
    with pytest.raises(ScratchgenError, match="order"):
        distinct_n(SAMPLES, bad)
    with pytest.raises(ScratchgenError, match="order"):
        ngrams(["a"], bad)


def test_one_string_is_not_a_list_of_samples():
    with pytest.raises(ScratchgenError, match="not one str"):
        distinct_n("abc", 1)


def test_score_is_unchanged():
    # H = 6 / 3 = 2 nats per token; bits = 2 / ln 2; perplexity e^2
    s = Score.from_totals(logprob=-6.0, sequences=1, tokens=3, oov_tokens=0)
    assert s.cross_entropy_nats == 2.0
    assert s.bits_per_token == pytest.approx(2 / math.log(2))
    assert s.perplexity == pytest.approx(math.exp(2))
    assert set(s.to_dict()) == {"sequences", "tokens", "oov_tokens", "logprob", "cross_entropy_nats",
                                "bits_per_token", "perplexity"}


sample_lists = st.lists(st.lists(st.sampled_from("abc"), max_size=8), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(samples=sample_lists, n=st.integers(1, 3))
def test_laws_of_the_text_measures(samples, n):
    total = sum(max(len(s) - n + 1, 0) for s in samples)
    d, r = distinct_n(samples, n), repetition_rate(samples, n)
    if total == 0:
        assert math.isnan(d) and math.isnan(r)
        return
    assert 0 < d <= 1 and 0 <= r < 1
    # Repeating the whole list doubles the n-grams but adds no new one, and adds no within-sample repeat.
    assert distinct_n(samples * 2, n) == pytest.approx(d / 2)
    assert repetition_rate(samples * 2, n) == pytest.approx(r)
    # For one sample, a repeat is exactly an n-gram that is not distinct: the two measures add up to 1.
    longest = max(samples, key=len)
    if len(longest) >= n:
        assert distinct_n([longest], n) + repetition_rate([longest], n) == pytest.approx(1.0)
    # Measured against themselves, samples are never novel.
    assert novelty(samples, samples, n).sequences == 0.0
    assert novelty(samples, samples, n).ngrams == 0.0
