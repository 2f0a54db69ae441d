"""The yes/no Earley step (grammar.support) has exactly the zeros of the float one (grammar.earley).

Its reference is the float parser itself: on random small grammars (unit cycles and empty rules included), every
prefix reachable in a few tokens is stepped by both, and after each, the terminals the yes/no node allows and
whether it is a sentence must be where the float next-token distribution is positive; every token the grammar
forbids there (and a token no rule produces) must lead both to a prefix with nothing but the end. The chart
(prefix.next_token_probs, recomputed from scratch) is checked on the same prefixes as a second oracle. Then the
laws the constraint relies on: the seeds are the float frame's, nodes of equal content are met again (a
right-recursive grammar meets finitely many), and the constraint's masks on the English grammar are the float
parser's along sampled sentences.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from test_grammar_reference import SETTINGS, grammars

from scratchgen.constraint import GrammarConstraint
from scratchgen.grammar import Grammar, GrammarModel, prefix
from scratchgen.grammar.compile import compile_grammar
from scratchgen.grammar.earley import EarleyParser
from scratchgen.grammar.support import SupportParser


def _float_allowed(parser: EarleyParser, frame) -> tuple[np.ndarray, bool]:
    """(T,) which terminals have P(a | prefix) > 0, and whether P(end | prefix) > 0, from a float frame."""
    probs = parser.next_probs(np.array([frame], dtype=object))[0]  # (T + 1,)
    return probs[:-1] > 0, bool(probs[-1] > 0)


def _walk(g: Grammar, depth: int, chart: bool) -> int:
    """Compare the two parsers after every prefix of up to ``depth`` allowed terminals (and one forbidden
    step from each); returns how many prefixes were compared."""
    cg = compile_grammar(g)
    floats = EarleyParser(cg)
    support = SupportParser(floats)
    T = cg.lex.shape[0]
    todo = [([], floats.initial, support.start())]
    compared = 0
    while todo:
        w, frame, node = todo.pop()
        allowed, end = _float_allowed(floats, frame)
        np.testing.assert_array_equal(support.allowed(node), allowed, err_msg=str(w))
        assert node.end == end, w
        if not frame.dead:
            assert node.seeds == tuple(frame.seeds.tolist()), w
        if chart:
            probs = prefix.next_token_probs(cg, np.array([w], dtype=np.int64).reshape(1, -1), len(w) + 8)[0]
            np.testing.assert_array_equal(probs[:-1] > 0, allowed, err_msg=str(w))
        compared += 1
        if len(w) == depth:
            continue
        for a in [*range(T), -1]:
            after_frame, after_node = floats._step(frame, a), support.step(node, a)
            if a >= 0 and allowed[a]:
                todo.append((w + [a], after_frame, after_node))
            else:  # a forbidden token: nothing follows but the end, in both
                assert after_frame.dead and after_node.dead, (w, a)
                assert not support.allowed(after_node).any() and after_node.end
    return compared


@settings(max_examples=200, **SETTINGS)
@given(grammars())
def test_the_yes_no_step_has_the_float_step_s_zeros_after_every_prefix(g):
    assert _walk(g, 6, chart=False) >= 1


@settings(max_examples=40, **SETTINGS)
@given(grammars())
def test_the_yes_no_step_has_the_chart_s_zeros(g):
    assert _walk(g, 3, chart=True) >= 1


# Right recursion, left recursion, a centre embedding, and a nullable right child that makes the prefix a sentence.
CHOSEN = [
    "S -> 'a' S [0.9] | 'a' [0.1]",
    "S -> S 'a' [0.4] | 'b' [0.6]",
    "S -> 'a' S 'b' [0.4] | 'c' [0.6]",
    "S -> 'a' T [0.7] | 'b' [0.3]\nT -> '' [0.5] | 'c' T [0.5]",
]


@pytest.mark.parametrize("grammar", CHOSEN)
def test_the_yes_no_step_has_the_float_step_s_zeros_on_chosen_grammars(grammar):
    assert _walk(Grammar.fromstring(grammar), 7, chart=True) > 7


def test_a_right_recursive_grammar_meets_finitely_many_nodes():
    """Equal content, one node: after 'a', 'a a', ... the constraint is in the same node (the frames of the float
    parser are new objects every step, with the same zeros)."""
    constraint = GrammarConstraint("S -> 'a' S [0.9] | 'a' [0.1]", GrammarModel.from_grammar("S -> 'a' [1.0]").vocab_)
    a = constraint.vocab.index("a")
    state = constraint.advance(constraint.initial_state(1), [a])
    first = state[0]
    for _ in range(50):
        state = constraint.advance(state, [a])
    assert state[0] is first
    assert len(constraint._nodes) == 2  # the empty prefix, and 'a'+


def test_the_constraint_s_masks_are_the_float_parser_s_on_english_sentences():
    english = GrammarModel.from_grammar("builtin:english")
    vocab = english.fitted_vocab()
    constraint = GrammarConstraint(english, vocab)
    plain = GrammarModel.from_grammar("builtin:english")  # a parser of its own
    for sentence in english.sample(40, seed=5):
        ids = np.array([vocab.index(w) for w in sentence] + [vocab.eos_id])
        state, frames = constraint.initial_state(1), plain.initial_state(1)
        for token in ids:
            mask = constraint.allowed(state)[0]
            np.testing.assert_array_equal(mask, np.isfinite(plain.next_logprobs(frames)[0]), err_msg=" ".join(sentence))
            assert mask[token]
            if token != vocab.eos_id:
                state, frames = constraint.advance(state, [token]), plain.advance(frames, np.array([token]))
