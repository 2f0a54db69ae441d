"""The fast grammar code equals the textbook one (scratchgen.grammar.reference) on random small grammars.

Compared: inside log-probabilities (ChartParser.logprob, ChartParser.logprobs in a batch, expected_counts'
logprob, GrammarModel.logprob, the stepping sum GrammarModel.token_logprobs), Viterbi (ChartParser.viterbi,
GrammarModel.parse: log-probability and tree), and next-token probabilities (ChartParser.next_token_probs,
GrammarModel.initial_state/advance/next_logprobs, batched) against prefix-probability ratios.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from grammar_by_definition import prefix_probability_by_summing, sentence_probabilities
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scratchgen.errors import GrammarError
from scratchgen.grammar import (
    ChartParser,
    Grammar,
    GrammarModel,
    Terminal,
    analyze,
    reference,
)
from scratchgen.text import Vocabulary

RTOL = 1e-9
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.filter_too_much, HealthCheck.too_slow]}


@st.composite
def grammars(draw):
    """2-4 nonterminals, 2-4 terminals, random rules (empty, lexical, unit (cycles too), longer), weights
    normalised per left-hand side; kept only if the analysis finds it consistent (rho(M) < 0.9)."""
    nts = [f"N{i}" for i in range(draw(st.integers(2, 4)))]
    terms = [Terminal(t) for t in "abcd"[: draw(st.integers(2, 4))]]
    symbol = st.sampled_from(terms + nts)
    rules = []
    for a in nts:
        rhss = {(draw(st.sampled_from(terms)),)}  # every symbol has a lexical way out
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["unit", "unit", "empty", "long"]))
            if kind == "unit":
                rhss.add((draw(st.sampled_from(nts)),))  # unit rules, cycles among them included
            elif kind == "empty":
                rhss.add(())
            else:
                rhss.add(tuple(draw(symbol) for _ in range(draw(st.integers(2, 3)))))
        for rhs in sorted(rhss):
            rules.append((a, list(rhs), draw(st.floats(0.05, 1.0))))
    g = Grammar.from_rules(rules, start="N0")
    a = analyze(g)
    assume(not a.errors and a.spectral_radius < 0.9)
    return g


sentences = st.lists(st.sampled_from("abcdz"), max_size=5)  # 'z' is never a terminal


def _sentences(g: Grammar, data) -> list[list[str]]:
    """Random token strings, and (so that not all are impossible) a few drawn from the grammar itself."""
    out = [data.draw(sentences) for _ in range(3)]
    try:
        sampled = GrammarModel.from_grammar(g, max_tokens=8).sample(6, seed=data.draw(st.integers(0, 99)))
    except GrammarError:  # a draw over the sampler's limits: the random strings remain
        sampled = []
    return out + [list(s) for s in sampled if len(s) <= 5]


def _same_logprob(got: float, want: float) -> None:
    if want == -math.inf:
        assert got == -math.inf
    else:
        assert got == pytest.approx(want, rel=RTOL, abs=1e-12)


@settings(max_examples=40, **SETTINGS)
@given(grammars(), st.data())
def test_inside_equals_the_reference(g, data):
    parser, model = ChartParser(g), GrammarModel.from_grammar(g)
    batch = _sentences(g, data)
    batched = parser.logprobs(batch)
    for s, lp_batch in zip(batch, batched):
        want = reference.inside_logprob(g, s)
        _same_logprob(parser.logprob(s), want)
        _same_logprob(float(lp_batch), want)
        _same_logprob(parser.expected_counts(s)[1], want)
        _same_logprob(model.logprob(s), want)
        if set(s) <= set(g.terminals):  # the stepping interface telescopes to the same number: eq. (8)
            _same_logprob(float(model.token_logprobs([model.vocab_.encode(s)])[0].sum()), want)


@settings(max_examples=40, **SETTINGS)
@given(grammars(), st.data())
def test_viterbi_equals_the_reference(g, data):
    parser, model = ChartParser(g), GrammarModel.from_grammar(g)
    for s in _sentences(g, data):
        want, want_tree = reference.viterbi(g, s)
        for got, tree in (parser.viterbi(s), model.parse(s)):
            _same_logprob(got, want)
            if want == -math.inf:
                assert tree is None and want_tree is None
                continue
            assert want_tree.leaves() == s and g.tree_logprob(want_tree) == pytest.approx(want, rel=RTOL)
            if tree != want_tree:  # a tie: another tree of the same, best probability
                assert tree.leaves() == s and g.tree_logprob(tree) == pytest.approx(want, rel=RTOL)
        assert want <= reference.inside_logprob(g, s) + 1e-12  # the best tree is one of the trees


@settings(max_examples=30, **SETTINGS)
@given(grammars(), st.data())
def test_next_token_probabilities_equal_prefix_probability_ratios(g, data):
    model = GrammarModel.from_grammar(g)
    parser = model.parser_
    t = data.draw(st.integers(0, 3))
    prefixes = [data.draw(st.lists(st.sampled_from(g.terminals), min_size=t, max_size=t)) for _ in range(2)]
    prefixes += [s[:t] for s in _sentences(g, data) if len(s) >= t and set(s) <= set(g.terminals)][:2]
    state = model.initial_state(len(prefixes))  # one batch: every prefix has t tokens
    for k in range(t):
        state = model.advance(state, model.vocab_.encode([p[k] for p in prefixes]))
    stepped = np.exp(model.next_logprobs(state))  # (B, V)
    ids = np.array([[g.terminals.index(a) for a in p] for p in prefixes], dtype=np.int64).reshape(len(prefixes), t)
    direct = parser.next_token_probs(ids)  # (B, T+1)
    for b, prefix in enumerate(prefixes):
        want = reference.next_token_probabilities(g, prefix)
        want_row = [want[a] for a in g.terminals] + [want["</s>"]]
        np.testing.assert_allclose(direct[b], want_row, rtol=RTOL, atol=1e-12)
        got = {a: stepped[b, model.vocab_.index(a)] for a in g.terminals} | {"</s>": stepped[b, Vocabulary.eos_id]}
        np.testing.assert_allclose([got[a] for a in want], list(want.values()), rtol=RTOL, atol=1e-12)
        assert stepped[b, Vocabulary.SPECIALS.index("<unk>")] == 0.0


@settings(max_examples=15, **SETTINGS)
@given(grammars(), st.lists(st.sampled_from("ab"), max_size=2))
def test_prefix_probability_is_its_definition(g, prefix):
    """Pre(x) = sum_v P(x v): the sum over continuations of at most K tokens is a lower bound that rises to it."""
    exact = reference.prefix_probability(g, prefix)
    bounds = [prefix_probability_by_summing(g, prefix, k) for k in range(3)]
    assert bounds[0] <= bounds[1] <= bounds[2] <= exact * (1 + 1e-9) + 1e-12


# --- worked examples, and proof that the comparisons can fail --------------------------------------------------


@pytest.mark.parametrize("text, sentence, prob", [
    ("S -> S S [0.4] | 'a' [0.6]", "a a a", 2 * 0.4**2 * 0.6**3),  # two trees
    ("S -> S [0.3] | 'a' [0.7]", "a", 1.0),  # the unit cycle: 0.7 (1 + 0.3 + 0.3^2 + ...) = 1
    ("S -> A B [1]\nA -> '' [0.5] | 'a' [0.5]\nB -> 'b' [0.2] | A [0.8]", "", 0.5 * 0.8 * 0.5),
    ("S -> 'a' S 'b' [0.4] | '' [0.6]", "a a b b", 0.4 * 0.4 * 0.6),  # a longer rule, binarised on the fly
])
def test_worked_examples(text, sentence, prob):
    g = Grammar.fromstring(text)
    assert math.exp(reference.inside_logprob(g, sentence.split())) == pytest.approx(prob, rel=1e-12)
    assert math.exp(ChartParser(g).logprob(sentence.split())) == pytest.approx(prob, rel=1e-12)


@pytest.mark.parametrize("text, prefix, exact, gaps", [
    # a finite language (no sentence longer than 2): Pre(a) = P(a) + P(a b) = (0.5 + 0.06) + 0.09
    ("S -> A B [0.5] | 'a' [0.5]\nA -> 'a' [0.3] | 'b' [0.7]\nB -> 'b' [0.6] | '' [0.4]", "a", 0.5 + 0.5 * 0.3,
     [0.09, 0.0, 0.0]),
    # a^k b: Pre(a) = 0.5, and the continuations of at most K tokens miss P(a^(K+1) ...) = 0.5^(K+1)
    ("S -> 'a' S [0.5] | 'b' [0.5]", "a", 0.5, [0.5, 0.25, 0.125]),
])
def test_prefix_probability_worked_examples(text, prefix, exact, gaps):
    g = Grammar.fromstring(text)
    assert reference.prefix_probability(g, prefix.split()) == pytest.approx(exact, rel=1e-12)
    for k, gap in enumerate(gaps):
        assert exact - prefix_probability_by_summing(g, prefix.split(), k) == pytest.approx(gap, abs=1e-12)


def test_the_comparisons_can_fail(monkeypatch):
    g = Grammar.fromstring("S -> S S [0.2] | A [0.3] | 'a' [0.5]\nA -> S [0.6] | 'b' [0.2] | '' [0.2]")
    changed = Grammar.fromstring("S -> S S [0.2] | A [0.3] | 'a' [0.5]\nA -> S [0.5] | 'b' [0.3] | '' [0.2]")
    parser, s = ChartParser(g), ["a", "b", "a"]
    after_a = parser.next_token_probs(np.array([[g.terminals.index("a")]]))[0]  # (T+1,)

    def row(grammar):
        want = reference.next_token_probabilities(grammar, ["a"])
        return np.array([want[a] for a in g.terminals] + [want["</s>"]])

    assert reference.inside_logprob(g, s) == pytest.approx(parser.logprob(s), rel=RTOL)
    assert reference.viterbi(g, s)[0] == pytest.approx(parser.viterbi(s)[0], rel=RTOL)
    np.testing.assert_allclose(row(g), after_a, rtol=RTOL)
    # Another grammar gives other numbers for every quantity compared above.
    assert reference.inside_logprob(changed, s) != pytest.approx(parser.logprob(s), rel=1e-4)
    assert reference.viterbi(changed, s)[0] != pytest.approx(parser.viterbi(s)[0], rel=1e-4)
    assert not np.allclose(row(changed), after_a, rtol=1e-4)
    # A reference that forgets the unit cycles (eqs. (4) and (7) without their closure) is caught.
    monkeypatch.setattr(reference, "_close", lambda base, U: base)
    assert reference.inside_logprob(g, s) != pytest.approx(parser.logprob(s), rel=1e-4)
    assert not np.allclose(row(g), after_a, rtol=1e-4)


def test_a_critical_grammar_is_refused():
    g = Grammar.fromstring("S -> A [0.5] | 'a' [0.5]\nA -> S [1]")  # S -> A -> S has probability 0.5: fine
    assert math.exp(reference.inside_logprob(g, ["a"])) == pytest.approx(1.0)
    g = Grammar.fromstring("S -> S S [0.5] | '' [0.5]")  # rho(M) = 1: E = 0.5 E^2 + 0.5 crawls towards 1
    with pytest.raises(GrammarError, match="does not converge"):
        reference.null_probabilities(g)


def test_sentence_probabilities_list_a_finite_language():
    # S -> A B, A -> '' | 'a', B -> 'b' | A: sentences '', a, b, a a, a b with their sums over trees.
    g = Grammar.fromstring("S -> A B [1]\nA -> '' [0.5] | 'a' [0.5]\nB -> 'b' [0.2] | A [0.8]")
    got = sentence_probabilities(g)
    want = {(): 0.5 * 0.8 * 0.5, ("a",): 0.5 * 0.8 * 0.5 + 0.5 * 0.8 * 0.5, ("b",): 0.5 * 0.2,
            ("a", "a"): 0.5 * 0.8 * 0.5, ("a", "b"): 0.5 * 0.2}
    assert got.keys() == want.keys()
    for s, p in want.items():
        assert got[s] == pytest.approx(p, rel=1e-12)
        assert math.exp(reference.inside_logprob(g, list(s))) == pytest.approx(p, rel=1e-12)
    assert sum(got.values()) == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(GrammarError, match="too large"):  # an infinite language cannot be listed
        sentence_probabilities(Grammar.fromstring("S -> 'a' S [0.5] | 'b' [0.5]"), max_steps=1000)
