"""The constraint's cache (scratchgen.constraint: one node per support of the Earley frame, stepped once per
token class) gives the mask the grammar's own stepping gives, after every prefix.

The law behind it (Frame.support: equal zeros, equal futures of zeros) is checked where it is used: on random
small grammars (unit cycles and empty rules included), every prefix the decoder can reach is stepped through the
cached nodes and through GrammarModel's plain Earley state, and the two masks must agree; with the cache
forgotten at every new node too. Then: the cache is shared (two English sentences of one parse end in one node),
and the token classes group exactly the terminals with the same zeros in Ustar lex[a].
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from test_grammar_reference import SETTINGS, grammars

from scratchgen import constraint as constraint_module
from scratchgen.constraint import GrammarConstraint
from scratchgen.grammar import GrammarModel
from scratchgen.text import Vocabulary

VOCAB = Vocabulary(["a", "b", "c", "d", "z"])  # 'z': a model token no grammar uses


def _plain_mask(model: GrammarModel, grammar_id: np.ndarray, prefix: list[int]) -> np.ndarray:
    """Eq. (1) of scratchgen.constraint from the grammar's own state after ``prefix`` (model ids), no cache."""
    state = model.initial_state(1)
    for token in prefix:
        state = model.advance(state, np.array([grammar_id[token]]))
    logp = model.next_logprobs(state)[0]  # (V_G,)
    return np.isfinite(np.append(logp, -np.inf)[grammar_id])  # (V,)


def _check_every_reachable_prefix(constraint: GrammarConstraint, depth: int) -> int:
    """Walk every prefix of up to ``depth`` allowed tokens; the cached mask must be the plain one. Returns
    how many prefixes were compared."""
    plain = GrammarModel.from_grammar(constraint.grammar_model.grammar_)  # a parser of its own: no shared frame
    todo = [([], constraint.initial_state(1))]
    compared = 0
    while todo:
        prefix, state = todo.pop()
        mask = constraint.allowed(state)[0]
        np.testing.assert_array_equal(mask, _plain_mask(plain, constraint.grammar_id, prefix), err_msg=str(prefix))
        compared += 1
        if len(prefix) < depth:
            for token in np.flatnonzero(mask):
                if token != Vocabulary.eos_id:
                    todo.append((prefix + [int(token)], constraint.advance(state, [token])))
    return compared


@settings(max_examples=30, **SETTINGS)
@given(grammars())
def test_the_cached_mask_is_the_grammar_s_mask_after_every_prefix(g):
    constraint = GrammarConstraint(GrammarModel.from_grammar(g), VOCAB)
    assert _check_every_reachable_prefix(constraint, 4) >= 1


# After 'a' and after 'b' the frames have the same seed (T) returning to the sentence, but only 'b' is a
# sentence: a cache that forgot whether the prefix is complete would give them one mask.
ENDS = "S -> 'a' T [0.4] | 'b' T [0.3] | 'b' [0.3]\nT -> 'c' [0.5] | 'c' T [0.5]"


@pytest.mark.parametrize("grammar", [ENDS, "S -> 'a' S [0.9] | 'a' [0.1]", "S -> S 'a' [0.4] | 'b' [0.6]"])
def test_the_cached_mask_is_the_grammar_s_mask_on_chosen_grammars(grammar):
    constraint = GrammarConstraint(GrammarModel.from_grammar(grammar), VOCAB)
    assert _check_every_reachable_prefix(constraint, 6) > 6


@settings(max_examples=10, **SETTINGS)
@given(grammars())
def test_forgetting_the_nodes_changes_no_mask(g):
    old = constraint_module.MAX_BYTES
    constraint_module.MAX_BYTES = 1  # every new support forgets the others
    try:
        constraint = GrammarConstraint(GrammarModel.from_grammar(g), VOCAB)
        _check_every_reachable_prefix(constraint, 3)
    finally:
        constraint_module.MAX_BYTES = old


def test_sentences_of_one_parse_share_a_node():
    english = GrammarModel.from_grammar("builtin:english")
    vocab = english.fitted_vocab()
    constraint = GrammarConstraint(english, vocab)

    def node(words: str):
        state = constraint.initial_state(1)
        for w in words.split():
            state = constraint.advance(state, [vocab.index(w)])
        return state[0]

    assert node("the dog sees the cat") is node("a cat chases a bird")
    assert node("the dog sees the cat") is not node("the dog sees the cat that chases")


@pytest.mark.parametrize("grammar", ["builtin:english", "S -> 'a' S [0.9] | 'a' [0.1]"])
def test_token_classes_group_the_terminals_with_the_same_zeros(grammar):
    model = GrammarModel.from_grammar(grammar)
    parser = model.prefix_parser()
    classes = parser.terminal_classes()  # (T,)
    zeros = parser.v_of_terminal == 0  # (T, N)
    for a in range(len(classes)):
        for b in range(len(classes)):
            assert (classes[a] == classes[b]) == bool(np.array_equal(zeros[a], zeros[b]))
