"""The incremental Earley state (scratchgen.grammar.earley) gives the prefix chart's numbers, one token at a time.

Compared on random small grammars (unit cycles and empty rules included): the next-token distribution and the
prefix probability of EarleyParser against prefix.next_token_probs (the chart, recomputed for each prefix) and
against reference_earley (Stolcke's parser on the grammar's own rules, closures by iteration). Then the laws of
the state: rows never share a change (take_state with repeated rows), frames are read-only, an impossible prefix
is dead, nothing underflows or grows with the prefix (the frames alive are counted, not timed), and the
stepping default of GrammarModel telescopes to the chart's log-probability.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_grammar_reference import RTOL, SETTINGS, grammars

from scratchgen.errors import GrammarError
from scratchgen.grammar import ChartParser, Grammar, GrammarModel, prefix, reference
from scratchgen.grammar.builtin import resolve_grammar
from scratchgen.grammar.compile import compile_grammar
from scratchgen.grammar.earley import EarleyParser
from scratchgen.grammar.reference_earley import earley_next_token_probabilities, earley_prefix_probability
from scratchgen.text import Vocabulary

RIGHT = "S -> 'a' S [0.9] | 'a' [0.1]"
# Right recursion inside a left child (the subject's PP chain waits for its VP), through a nullable ADJS.
NESTED = """
S    -> NP VP [1.0]
NP   -> DET ADJS N [0.6] | DET ADJS N PP [0.25] | DET ADJS N 'that' VP [0.15]
ADJS -> '' [0.6] | 'big' ADJS [0.4]
DET  -> 'the' [0.7] | 'a' [0.3]
N    -> 'dog' [0.5] | 'cat' [0.5]
PP   -> P NP [1.0]
P    -> 'near' [0.5] | 'with' [0.5]
VP   -> V [0.3] | V NP [0.4] | V 'that' S [0.3]
V    -> 'sees' [0.5] | 'knows' [0.5]
"""
# The longest sentences of the built-in English grammar: object relative clauses, one inside the next.
ENGLISH_CHAIN = "the dog sees the cat".split() + "that chases a bird".split() * 300


def _run(parser: EarleyParser, w: np.ndarray) -> list[np.ndarray]:
    """The state after each prefix of the terminal ids w (B, t): t + 1 states."""
    states = [parser.start(len(w))]
    for k in range(w.shape[1]):
        states.append(parser.advance(states[-1], w[:, k]))
    return states


def _prefixes(g: Grammar, data, t: int) -> np.ndarray:
    """Terminal ids (B, t): random strings of terminals, and prefixes of sentences the grammar samples."""
    cg = compile_grammar(g)
    out = [data.draw(st.lists(st.sampled_from(g.terminals), min_size=t, max_size=t)) for _ in range(2)]
    try:
        sampled = GrammarModel.from_grammar(g, max_tokens=3 * t + 6).sample(6, seed=data.draw(st.integers(0, 99)))
    except GrammarError:  # a draw over the sampler's limits: the random strings remain
        sampled = []
    out += [list(s[:t]) for s in sampled if len(s) >= t][:3]
    return np.array([cg.terminal_ids(x) for x in out], dtype=np.int64).reshape(len(out), t)


@settings(max_examples=40, **SETTINGS)
@given(grammars(), st.data())
def test_each_step_equals_the_chart_and_the_reference(g, data):
    cg = compile_grammar(g)
    t = data.draw(st.integers(0, 4))
    w = _prefixes(g, data, t)
    parser = EarleyParser(cg)
    states = _run(parser, w)
    for k, state in enumerate(states):
        got = parser.next_probs(state)  # (B, T+1)
        want = prefix.next_token_probs(cg, w[:, :k], 1000)  # the chart, recomputed
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)
        np.testing.assert_array_equal(got > 0, want > 0)  # an impossible token is exactly 0 in both
        if k in (0, t):  # the textbook parser, once at the start and once at the end
            for b in range(len(w)):
                x = [g.terminals[a] for a in w[b, :k]]
                ref = earley_next_token_probabilities(g, x)
                np.testing.assert_allclose(got[b], [ref[a] for a in g.terminals] + [ref["</s>"]], rtol=RTOL, atol=0)
                pre = earley_prefix_probability(g, x)
                lp = parser.log_prefix(state)[b]
                assert (lp == -math.inf) if pre == 0 else lp == pytest.approx(math.log(pre), rel=RTOL, abs=1e-12)


@settings(max_examples=25, **SETTINGS)
@given(grammars(), st.data())
def test_long_prefixes_equal_the_chart(g, data):
    """Twelve steps: every completion, tail call and rescaling has happened several times."""
    cg = compile_grammar(g)
    w = _prefixes(g, data, 12)
    parser = EarleyParser(cg)
    for k, state in enumerate(_run(parser, w)):
        want = prefix.next_token_probs(cg, w[:, :k], 1000)
        np.testing.assert_allclose(parser.next_probs(state), want, rtol=RTOL, atol=0)
        np.testing.assert_array_equal(parser.next_probs(state) > 0, want > 0)


@settings(max_examples=15, **SETTINGS)
@given(grammars(), st.data())
def test_the_textbook_earley_parser_equals_the_textbook_chart(g, data):
    """reference_earley (left to right, Earley items) and reference (a chart from the right): two derivations."""
    x = data.draw(st.lists(st.sampled_from(g.terminals), max_size=3))
    want = reference.next_token_probabilities(g, x)
    got = earley_next_token_probabilities(g, x)
    np.testing.assert_allclose([got[a] for a in want], list(want.values()), rtol=RTOL, atol=1e-15)
    assert earley_prefix_probability(g, x) == pytest.approx(reference.prefix_probability(g, x), rel=RTOL, abs=1e-15)


@pytest.mark.parametrize("text, tokens", [(RIGHT, ["a"] * 40),
                                          (NESTED, "the big dog near a cat knows that".split() * 5)])
def test_right_recursive_grammars_equal_the_chart(text, tokens):
    g = Grammar.fromstring(text)
    cg = compile_grammar(g)
    w = cg.terminal_ids(tokens)[None, :]
    parser = EarleyParser(cg)
    for k, state in enumerate(_run(parser, w)):
        np.testing.assert_allclose(parser.next_probs(state), prefix.next_token_probs(cg, w[:, :k], 1000), rtol=RTOL)


def test_a_right_recursion_keeps_two_frames_and_exact_numbers_after_5000_tokens():
    # Pre(a^n) = P(at least n tokens) = 0.9^(n-1); then a with 0.9 and the end with 0.1, whatever n.
    cg = compile_grammar(Grammar.fromstring(RIGHT))
    parser = EarleyParser(cg)
    state = parser.start(1)
    a = np.array([cg.terminal_index["a"]])
    for _ in range(5000):
        state = parser.advance(state, a)
    np.testing.assert_allclose(parser.next_probs(state), [[0.9, 0.1]], rtol=1e-12)
    assert parser.log_prefix(state)[0] == pytest.approx(4999 * math.log(0.9), rel=1e-12)  # no underflow
    assert [f.pos for f in state[0].frames()] == [-1, 5000]  # the bottom and the current frame only


@pytest.mark.parametrize("name, tokens", [
    ("builtin:english", ENGLISH_CHAIN[:1000]),
    ("builtin:chinese", ("我 喜 欢".split() + "猫 看 的 狗 看 的".split() * 200)[:1000]),  # left recursion
    (NESTED, ("the big dog near a cat knows that".split() * 150)[:1000]),
])
def test_the_frames_alive_do_not_grow_with_the_prefix(name, tokens):
    """The work of a step is proportional to the frames it can reach: as many after 1000 tokens as after 100."""
    cg = compile_grammar(resolve_grammar(name) if name.startswith("builtin:") else Grammar.fromstring(name))
    parser = EarleyParser(cg)
    state = parser.start(1)
    alive = []  # after each token: (frames alive, numbers in their return vectors)
    for a in cg.terminal_ids(tokens):
        state = parser.advance(state, np.array([a]))
        assert not state[0].dead
        alive.append((len(state[0].frames()), sum(M.size for f in state[0].frames() for _, M in f.ret)))
    assert max(alive[900:1000]) == max(alive[100:200]) and max(alive)[0] <= 6


def test_english_long_sentence_equals_the_chart():
    cg = compile_grammar(resolve_grammar("builtin:english"))
    w = cg.terminal_ids(ENGLISH_CHAIN[:45])[None, :]
    parser = EarleyParser(cg)
    states = _run(parser, w)
    for k in (0, 1, 5, 17, 30, 45):
        want = prefix.next_token_probs(cg, w[:, :k], 1000)
        np.testing.assert_allclose(parser.next_probs(states[k]), want, rtol=RTOL, atol=0)


# --- the state: rows apart, frames read-only, impossible prefixes ----------------------------------------------


def test_take_state_with_repeated_rows_never_shares_a_change():
    m = GrammarModel.from_grammar("builtin:english")
    ids = m.vocab_.encode
    state = m.initial_state(2)
    for a, b in zip("the dog".split(), "some cats".split()):
        state = m.advance(state, ids([a, b]))
    before = m.next_logprobs(state).copy()
    taken = m.take_state(state, np.array([0, 0, 1, 0]))
    after = m.advance(taken, ids(["sees", "sleeps", "sleep", "that"]))
    np.testing.assert_array_equal(m.next_logprobs(state), before)  # the original rows did not move
    np.testing.assert_array_equal(m.next_logprobs(taken), before[[0, 0, 1, 0]])
    rows = m.next_logprobs(after)
    for r, word in enumerate(["sees", "sleeps", "sleep", "that"]):  # each row equals stepping it alone
        alone = m.initial_state(1)
        for tok in (["the", "dog"] if r != 2 else ["some", "cats"]) + [word]:
            alone = m.advance(alone, ids([tok]))
        np.testing.assert_allclose(rows[r], m.next_logprobs(alone)[0], rtol=1e-12)
    assert not np.allclose(rows[0], rows[1])  # the two copies of row 0 went apart
    frame = after[0]
    with pytest.raises(ValueError, match="read-only"):
        frame.pred[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        frame.ret[0][1][0, 0] = 1.0


def test_an_impossible_prefix_is_dead_and_only_the_end_follows():
    cg = compile_grammar(Grammar.fromstring("S -> 'a' 'b' [0.5] | 'b' [0.5]"))
    parser = EarleyParser(cg)
    a, b = cg.terminal_index["a"], cg.terminal_index["b"]
    state = parser.advance(parser.start(3), np.array([a, b, -1]))  # 'a' fine, 'b' fine, -1: no rule produces it
    state = parser.advance(state, np.array([a, a, a]))  # 'a a', 'b a', then anything after the dead row
    assert [f.dead for f in state] == [True, True, True]
    np.testing.assert_array_equal(parser.next_probs(state), [[0, 0, 1]] * 3)  # as prefix.next_token_probs does
    np.testing.assert_array_equal(parser.log_prefix(state), [-np.inf] * 3)


def test_the_parser_is_a_function_of_its_compiled_grammar():
    """No shared state: two grammars' parsers (one per label, say) stepped in turn give their own numbers."""
    g1, g2 = Grammar.fromstring(RIGHT), Grammar.fromstring("S -> 'a' S [0.5] | 'a' [0.5]")
    p1, p2 = EarleyParser(compile_grammar(g1)), EarleyParser(compile_grammar(g2))
    s1, s2 = p1.start(1), p2.start(1)
    for _ in range(3):
        s1, s2 = p1.advance(s1, np.array([0])), p2.advance(s2, np.array([0]))
    np.testing.assert_allclose(p1.next_probs(s1), [[0.9, 0.1]])
    np.testing.assert_allclose(p2.next_probs(s2), [[0.5, 0.5]])


def test_an_inconsistent_left_corner_closure_is_refused():
    cg = compile_grammar(Grammar.fromstring(RIGHT))
    with pytest.raises(GrammarError, match="left-corner chains"):
        EarleyParser(type(cg)(**{**{f: getattr(cg, f) for f in cg.__dataclass_fields__}, "Pstar": None}))


# --- the model: stepping telescopes to the chart -------------------------------------------------------------


@pytest.mark.parametrize("name, sentences", [
    ("builtin:english", [ENGLISH_CHAIN[:41] + ["."], "does alice sleep ?".split(), "the dog".split()]),
    ("builtin:chinese", ["我 喜 欢 猫 。".split(), "我 喜 欢 猫 看 的 狗 看 的 狗 。".split(), "我 喜 欢".split()]),
])
def test_the_stepping_default_equals_the_charts_logprob(name, sentences):
    m = GrammarModel.from_grammar(name)
    stepped = m.token_logprobs([m.vocab_.encode(s) for s in sentences])
    for s, lp in zip(sentences, stepped):
        want = ChartParser(m.grammar_).logprob(s)
        if want == -math.inf:
            assert lp.sum() == -math.inf
        else:
            assert lp.sum() == pytest.approx(want, rel=1e-9)
    assert math.isfinite(stepped[0].sum()) and stepped[2].sum() == -math.inf  # a prefix, not a sentence


def test_stepping_has_no_max_length():
    """The chart refuses 150 tokens with max_length=100; stepping builds no chart, so it goes on."""
    m = GrammarModel.from_grammar(RIGHT, max_length=100)
    state = m.initial_state(1)
    for _ in range(150):
        state = m.advance(state, m.vocab_.encode(["a"]))
    np.testing.assert_allclose(np.exp(m.next_logprobs(state))[0, [m.vocab_.index("a"), Vocabulary.eos_id]], [0.9, 0.1])


def test_a_token_that_can_never_come_first_has_probability_exactly_zero():
    """The known failure of test_inside_equals_the_reference: 'c' only ever follows an 'a', but the closure
    (I - U_pre)^-1 computed by elimination held 1e-17 where no left-corner chain exists, so 'c' alone scored
    -38.8 by stepping. The reference's -inf is right; compile.py now clears the entries no chain reaches."""
    g = Grammar.fromstring(
        "N0 -> N0 [0.3333333333333333] | N2 [0.3333333333333333] | 'a' [0.3333333333333333]\n"
        "N2 -> '' [0.2] | N0 [0.26666666666666666] | 'a' [0.26666666666666666] | 'a' N0 'c' [0.26666666666666666]"
    )
    assert reference.inside_logprob(g, ["c"]) == -math.inf
    cg = compile_grammar(g)
    c = cg.terminal_index["c"]
    assert cg.Pstar[cg.start, cg.labels.index("<c>")] == 0.0  # no chain: exactly 0
    assert prefix.next_token_probs(cg, np.zeros((1, 0), dtype=np.int64), 10)[0, c] == 0.0
    assert EarleyParser(cg).next_probs(EarleyParser(cg).start(1))[0, c] == 0.0
    m = GrammarModel.from_grammar(g)
    assert m.token_logprobs([m.vocab_.encode(["c"])])[0].sum() == -math.inf
