"""The E step batched over a corpus (issue 13, section 5): the counts of each sentence alone, added up.

Eq. (6) of scratchgen/grammar/outside.py: seeding each sentence's outside pass with 1 / Z makes the batch's
counts the sum of the sentences' expected counts. These tests compare a batch with the same sentences
counted one at a time (different batch shapes, other sums), and with finite differences of sum log Z.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_grammar_reference import SETTINGS, _sentences, grammars

from scratchgen import GrammarModel
from scratchgen.errors import CorpusError, GrammarError
from scratchgen.grammar import outside, parse_grammar
from scratchgen.grammar.compile import compile_grammar
from scratchgen.grammar.outside import expected_counts, expected_counts_batch


def _one_at_a_time(cg, sentences):
    pairs = [expected_counts(cg, s, 40) for s in sentences]
    return sum(c for c, _ in pairs), np.array([lp for _, lp in pairs])


@settings(max_examples=30, **SETTINGS)
@given(g=grammars())
def test_a_batch_counts_what_its_sentences_count_alone(g):
    cg = compile_grammar(g)
    try:
        sampled = GrammarModel.from_grammar(g, max_tokens=8).sample(12, seed=3)
    except GrammarError:  # a draw over the sampler's limits: the fixed sentences remain
        sampled = []
    sentences = [list(s) for s in sampled]
    sentences += [["a"], [], ["z", "a"]]  # an unknown token: probability 0, no count
    batch, lp_batch = expected_counts_batch(cg, sentences, 40)
    alone, lp_alone = _one_at_a_time(cg, sentences)
    assert np.array_equal(np.isfinite(lp_batch), np.isfinite(lp_alone))
    finite = np.isfinite(lp_alone)
    np.testing.assert_allclose(lp_batch[finite], lp_alone[finite], rtol=1e-10)
    np.testing.assert_allclose(batch, alone, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, **SETTINGS)
@given(g=grammars(), data=st.data(), level_cost=st.sampled_from([0, 25, 10**9]), em_batch=st.sampled_from([1, 2, 256]))
def test_every_cut_into_charts_counts_what_the_readable_pass_counts(g, data, level_cost, em_batch):
    """Random grammars (empty rules, unit cycles) and random or sampled sentences of mixed lengths; the
    batches cut three ways: each length alone (level_cost 0), everything padded into one chart (10**9),
    the cost model (25), with charts of 1, 2 or many sentences. The readable one-sentence pass is the oracle."""
    cg = compile_grammar(g)
    sentences = _sentences(g, data) + _sentences(g, data)
    alone, lp_alone = _one_at_a_time(cg, sentences)
    with mock.patch.object(outside, "LEVEL_COST", level_cost), mock.patch.object(outside, "EM_BATCH", em_batch):
        batch, lp_batch = expected_counts_batch(cg, sentences, 40)
    assert np.array_equal(np.isfinite(lp_batch), np.isfinite(lp_alone))
    finite = np.isfinite(lp_alone)
    np.testing.assert_allclose(lp_batch[finite], lp_alone[finite], rtol=1e-10)
    np.testing.assert_allclose(batch, alone, rtol=1e-9, atol=1e-12)


def test_batched_counts_are_derivatives_of_the_corpus_log_likelihood():
    g = parse_grammar(
        "S -> S 'a' [0.3] | A [0.3] | B S C [0.2] | ''\nA -> S [0.5] | 'a' | B A\n"
        "B -> '' [0.4] | 'b' [0.6]\nC -> 'c' 'a' B | B"
    )
    p0 = np.array([r.prob for r in g.rules])
    corpus = [["b", "a", "c", "a"], ["a"], ["a", "a", "a"], ["b", "a"], []]
    counts, _ = expected_counts_batch(compile_grammar(g), corpus, 40)

    def loglik(p):
        return float(expected_counts_batch(compile_grammar(g.with_probs(p)), corpus, 40)[1].sum())

    for k in range(len(p0)):  # sum_b count_b(r) = p_r d sum_b log Z_b / d p_r, eq. (6)
        h = 1e-5
        up, down = p0.copy(), p0.copy()
        up[k] *= math.exp(h)
        down[k] *= math.exp(-h)
        assert counts[k] == pytest.approx((loglik(up) - loglik(down)) / (2 * h), abs=1e-7)


def test_em_on_the_builtin_grammar_moves_as_one_sentence_at_a_time_would():
    g = GrammarModel.from_grammar("builtin:english")
    corpus = g.sample(300, seed=5)
    cg = compile_grammar(g._checked_grammar())
    batch, lp = expected_counts_batch(cg, corpus, 400)
    alone, lp_alone = _one_at_a_time(cg, corpus)
    np.testing.assert_allclose(batch, alone, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(lp, lp_alone, rtol=1e-12)
    fitted = GrammarModel(grammar="builtin:english", iterations=2, tol=0).fit(corpus)
    assert fitted.log_likelihoods_[-1] >= fitted.log_likelihoods_[0]


def test_em_names_the_first_sentence_it_cannot_use():
    with pytest.raises(CorpusError, match=r"sentence 3 \('the the'"):
        GrammarModel(grammar="builtin:english", iterations=1).fit(["the dog runs .", "a cat sleeps .", "the the"])
