"""The random generators: exact scores, worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import ScratchgenError, Tokenizer, UniformModel, UnigramModel


@given(train=st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=6),
       test=st.lists(st.text(max_size=10), min_size=1, max_size=6))
@settings(max_examples=100, deadline=None)
def test_uniform_cross_entropy_is_ln_v_on_any_corpus(train, test):
    model = UniformModel().fit(train)
    v = len(model.vocab_) - 1  # every type seen, <unk> and </s>; <s> is never emitted
    score = model.score(test)
    assert score.cross_entropy_nats == pytest.approx(math.log(v), rel=1e-12)
    assert score.perplexity == pytest.approx(v, rel=1e-9)


def test_uniform_perplexity_on_chinese_words():
    model = UniformModel(tokenizer=Tokenizer("word")).fit(["我 爱 北京", "你 好"])
    # types 我 爱 北 京 你 好 (each hanzi a token) + <unk> + </s> = 8
    assert model.score(["北京 欢迎 你", "再见"]).perplexity == pytest.approx(8, rel=1e-12)


def test_unigram_probabilities_by_hand():
    # "aab" and "b": counts a 2, b 2, </s> 2, <unk> 0; N = 6, V' = 4; k = 0.5 -> denominator 6 + 2 = 8
    model = UnigramModel(k=0.5).fit(["aab", "b"])
    p = {t: (c + 0.5) / 8 for t, c in {"a": 2, "b": 2, "</s>": 2, "<unk>": 0}.items()}
    assert model.logprob("ab") == pytest.approx(math.log(p["a"] * p["b"] * p["</s>"]))
    assert model.logprob("z") == pytest.approx(math.log(p["<unk>"] * p["</s>"]))
    assert np.exp(model.logprobs_).sum() == pytest.approx(1.0)


def test_min_count_sends_rare_tokens_to_unk():
    model = UnigramModel(k=1, min_count=2).fit(["aab"])  # b seen once -> <unk>
    assert "b" not in model.vocab_
    # counts a 2, <unk> 1, </s> 1; N = 4, V' = 3 -> (c + 1) / 7
    assert model.logprob("b") == pytest.approx(math.log(2 / 7 * 2 / 7))


@pytest.mark.parametrize("allow_unk", [True, False])
def test_uniform_samples_are_uniform_over_emittable_tokens(allow_unk):
    model = UniformModel().fit(["abc"])  # a b c <unk> </s>: 5 outcomes per step, 4 without <unk>
    samples = model.generate(4000, seed=0, max_tokens=1, allow_unk=allow_unk)
    firsts = [s[0] if s else "</s>" for s in samples]
    outcomes = ["a", "b", "c", "</s>"] + (["<unk>"] if allow_unk else [])
    counts = np.array([firsts.count(t) for t in outcomes])
    expected, p = 4000 / len(outcomes), 1 / len(outcomes)
    assert counts.sum() == 4000 and np.all(np.abs(counts - expected) < 4 * np.sqrt(4000 * p * (1 - p)))


@pytest.mark.parametrize("k", [0, -1, float("inf"), "1"])
def test_bad_k(k):
    with pytest.raises(ScratchgenError, match="k must"):
        UnigramModel(k=k).fit(["ab"])
