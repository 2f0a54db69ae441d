"""Exact conditional sampling (scratchgen.smc): its samples follow P(x | x in L(G)), masking does not.

Every law is checked on a finite language listed in full (tests/grammar_language.py) and a first-order
Markov chain with a known table (tests/markov.py), so the target P(x) 1[x in L] / P(L) is computed
exactly, apart from the samplers under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from grammar_language import chi2_critical, chi2_statistic, counts, language, masked_probs, model_probs
from hypothesis import given, settings
from hypothesis import strategies as st
from markov import MarkovModel

from scratchgen import DecodingError, LabelError, generate
from scratchgen.constraint import GrammarConstraint
from scratchgen.grammar import GrammarModel
from scratchgen.smc import sample_exact, systematic_resample
from scratchgen.smc_reference import smc_reference
from scratchgen.text import Vocabulary

# A finite language with an empty rule: a, c, b a, c a, a b c, b b b, c b c.
GRAMMAR = """S -> 'a' [0.2] | 'a' 'b' 'c' [0.2] | 'b' 'a' [0.2] | 'b' 'b' 'b' [0.2] | 'c' A [0.2]
A -> 'a' [0.4] | 'b' 'c' [0.3] | '' [0.3]"""
LANGUAGE = language(GRAMMAR, 4)


@pytest.fixture(scope="module")
def chain():
    """A Markov chain over a, b, c whose every sentence of LANGUAGE has conditional probability >= 1%."""
    return MarkovModel.random(np.random.default_rng(1), n_tokens=3)


def test_the_language_is_what_the_grammar_says():
    assert sorted(map(tuple, LANGUAGE)) == sorted(
        [("a",), ("c",), ("b", "a"), ("c", "a"), ("a", "b", "c"), ("b", "b", "b"), ("c", "b", "c")]
    )


def test_exact_samples_follow_the_conditional_and_masked_samples_do_not(chain):
    n = 2000
    target = model_probs(chain, LANGUAGE)  # P(x) for x in L: the conditional up to P(L)
    masked = masked_probs(chain, GRAMMAR, LANGUAGE)
    # The two distributions differ a lot here (total variation > 0.3), so a sampler of the wrong one fails.
    assert 0.5 * np.abs(target / target.sum() - masked).sum() > 0.3
    critical = chi2_critical(len(LANGUAGE) - 1)
    exact = counts(generate(chain, n, grammar=GRAMMAR, exact=True, seed=1), LANGUAGE)
    assert chi2_statistic(exact, target) < critical
    assert chi2_statistic(exact, masked) > critical
    local = counts(generate(chain, n, grammar=GRAMMAR, seed=1), LANGUAGE)
    assert chi2_statistic(local, masked) < critical
    assert chi2_statistic(local, target) > critical


def test_the_estimate_of_P_L_matches_the_enumerated_sum(chain):
    # Z_hat of each run is unbiased (eq. (6)); the mean of R runs has standard error sd / sqrt(R), estimated
    # from the runs. Within 4 standard errors, and the bound is tight: under 10% of P(L) itself.
    Z = model_probs(chain, LANGUAGE).sum()
    for particles in (4, 64):  # 4 particles: the weights grow uneven and resampling happens often
        result = sample_exact(chain, 1000, grammar=GRAMMAR, particles=particles, seed=2)
        assert abs(result.estimate - Z) < 4 * result.standard_error < 0.1 * Z
        assert len(result.log_estimates) == 1000


def test_max_tokens_restricts_the_target_and_the_estimate(chain):
    # With max_tokens = 3 a sentence has at most 2 tokens (</s> is the third step): a, c, b a, c a.
    short = [x for x in LANGUAGE if len(x) < 3]
    result = sample_exact(chain, 1000, grammar=GRAMMAR, max_tokens=3, seed=3)
    target = model_probs(chain, short)
    assert chi2_statistic(counts(result.sequences, short), target) < chi2_critical(len(short) - 1)
    assert abs(result.estimate - target.sum()) < 4 * result.standard_error


def test_a_prompt_conditions_the_target_and_the_estimate(chain):
    # After the prompt "c": the continuations '', a, b c, with P(y | c).
    rest = [[], ["a"], ["b", "c"]]
    result = sample_exact(chain, 1000, grammar=GRAMMAR, prompt=["c"], seed=4)
    target = model_probs(chain, rest, prompt=["c"])
    assert chi2_statistic(counts([s[1:] for s in result.sequences], rest), target) < chi2_critical(2)
    assert abs(result.estimate - target.sum()) < 4 * result.standard_error


def test_fast_path_and_reference_agree_at_the_same_seed(chain):
    constraint = GrammarConstraint(GRAMMAR, chain.vocab_)
    for seed in range(20):
        for particles in (3, 16):
            tokens, logp, log_z = smc_reference(chain, constraint, particles, 10, np.random.default_rng(seed))
            fast = sample_exact(chain, 1, grammar=constraint, particles=particles, max_tokens=10, seed=seed)
            assert chain.vocab_.decode(tokens) == fast.sequences[0]
            assert fast.logprobs[0] == pytest.approx(logp, rel=1e-12)
            assert fast.log_estimates[0] == pytest.approx(log_z, rel=1e-9)


def test_every_exact_sample_is_in_the_grammar_with_every_allowed_control():
    grammar = GrammarModel.from_grammar("builtin:english")
    from scratchgen import NGramModel, Tokenizer

    model = NGramModel(order=3, tokenizer=Tokenizer(level="word")).fit(grammar.sample(300, seed=0))
    cases = [
        {},
        {"prompt": "the"},
        {"banned": ["the"]},
        {"min_tokens": 6},
        {"stop": ["."]},
        {"max_tokens": 8},
        {"allow_unk": True},
    ]
    for controls in cases:
        result = sample_exact(model, 4, grammar="builtin:english", particles=16, seed=5, **controls)
        for sentence in result.sequences:
            assert grammar.logprob(sentence) > -math.inf, (controls, sentence)
        if "banned" in controls:
            assert all("the" not in s for s in result.sequences)
        if "min_tokens" in controls:
            assert all(len(s) >= 6 for s in result.sequences)


@pytest.mark.parametrize(
    "controls, named",
    [
        ({"temperature": 0.5}, "temperature 0.5"),
        ({"top_k": 2}, "top_k 2"),
        ({"top_p": 0.9}, "top_p 0.9"),
        ({"repetition_penalty": 1.2}, "repetition_penalty 1.2"),
    ],
)
def test_controls_that_change_the_target_are_refused(chain, controls, named):
    with pytest.raises(DecodingError, match=named):
        sample_exact(chain, 1, grammar=GRAMMAR, **controls)


def test_exact_needs_a_grammar_and_particles(chain):
    with pytest.raises(DecodingError, match="needs a grammar"):
        generate(chain, 1, exact=True)
    with pytest.raises(DecodingError, match="particles must be an integer >= 1"):
        generate(chain, 1, grammar=GRAMMAR, exact=True, particles=0)


def test_no_sentence_within_max_tokens_is_an_error(chain):
    with pytest.raises(DecodingError, match="max_tokens=1"):
        sample_exact(chain, 1, grammar="S -> 'a' 'b' [1]", max_tokens=1, seed=0)


def test_same_seed_same_samples(chain):
    # (the runs of a batch share the random stream, so the same batch_size too)
    a = sample_exact(chain, 5, grammar=GRAMMAR, particles=8, seed=9, batch_size=2)
    b = sample_exact(chain, 5, grammar=GRAMMAR, particles=8, seed=9, batch_size=2)
    assert a.sequences == b.sequences
    assert np.array_equal(a.log_estimates, b.log_estimates)


def test_sample_exact_takes_the_controls_of_generate_with_the_same_defaults():
    """The keywords sample_exact shares with generate and iter_generate are one block: same names, kinds,
    defaults and annotations (generate passes them on as one dict, so they cannot drift apart)."""
    import inspect

    from scratchgen.decoding import iter_generate

    def block(function, without=()):  # keyword-only: their order is no part of the signature a caller sees
        return {p.name: p for p in inspect.signature(function).parameters.values() if p.name not in without}

    own = ("grammar", "particles")  # sample_exact's own: the grammar is required, N particles
    shared = block(sample_exact, own)
    assert shared == block(iter_generate, ("grammar",))
    assert shared == block(generate, ("grammar", "exact", "particles", "return_logprobs"))
    assert block(sample_exact)["particles"] == block(generate)["particles"]


def test_generate_exact_passes_every_control_on(chain):
    """generate(exact=True) is sample_exact's samples, batch_size included (the runs of a batch share a stream)."""
    kwargs = {"grammar": GRAMMAR, "particles": 8, "seed": 9, "batch_size": 2, "max_tokens": 5}
    assert generate(chain, 5, exact=True, **kwargs) == sample_exact(chain, 5, **kwargs).sequences


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12).filter(lambda w: sum(w) > 0), st.floats(0, 0.999))
def test_systematic_resampling_copies_each_particle_floor_or_ceil_of_N_w_times(weights, u):
    w = np.array([weights])
    N = w.shape[1]
    ancestors = systematic_resample(w, np.array([u]))[0]
    copies = np.bincount(ancestors, minlength=N)
    expected = N * w[0] / w[0].sum()
    assert copies.sum() == N
    assert np.all(copies >= np.floor(expected - 1e-9)) and np.all(copies <= np.ceil(expected + 1e-9))
    assert np.all(np.diff(ancestors) >= 0)


class LabelledMarkov(MarkovModel):
    """Two Markov chains under one vocabulary, one a label: P(x | c) with the label's own table."""

    def fit(self, corpus):
        from scratchgen.labels import LabelSet

        super().fit(corpus)
        self.labels_ = LabelSet(("x", "y"), (1, 3))
        other = MarkovModel.random(np.random.default_rng(2), n_tokens=len(self.tokens)).table_
        self.tables_ = np.stack([self.table_, other])  # (C, V, V): label x, label y
        return self

    def initial_state(self, batch_size=1, labels=None):
        if labels is None:
            raise LabelError("a label is needed")
        return np.stack([np.full(batch_size, Vocabulary.bos_id), labels], axis=1)  # (B, 2): last token, label

    def advance(self, state, ids):
        return np.stack([np.asarray(ids, dtype=np.int64), state[:, 1]], axis=1)

    def next_logprobs(self, state):
        with np.errstate(divide="ignore"):
            return np.log(self.tables_[state[:, 1], state[:, 0]])  # (B, V)


def test_a_label_conditions_masked_and_exact_samples(chain):
    model = LabelledMarkov(table=chain.table, tokens=chain.tokens).fit(None)
    for label in ("x", "y"):
        ids = [model.vocab_.encode(x) for x in LANGUAGE]
        target = np.exp([lp.sum() for lp in model.token_logprobs(ids, labels=label)])  # P(x | c)
        exact = counts(generate(model, 1000, grammar=GRAMMAR, exact=True, label=label, seed=6), LANGUAGE)
        assert chi2_statistic(exact, target) < chi2_critical(len(LANGUAGE) - 1), label
    masked = generate(model, 200, grammar=GRAMMAR, label="y", seed=7)
    assert {tuple(s) for s in masked} <= {tuple(x) for x in LANGUAGE}
    unlabelled = sample_exact(model, 50, grammar=GRAMMAR, seed=8)  # labels drawn from the prior
    assert {tuple(s) for s in unlabelled.sequences} <= {tuple(x) for x in LANGUAGE}
