"""The chart parser split into a compiled grammar and one module per algorithm (issue 10).

Each algorithm is a function of one :class:`CompiledGrammar`, a value that nothing changes; the functions
give the reference's numbers; the guards of issue 9 hold when the functions are called directly; and no
module of the family but its command line prints.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from scratchgen.errors import GrammarError, ResourceError
from scratchgen.grammar import (
    ChartParser,
    Grammar,
    inside,
    outside,
    prefix,
    reference,
    viterbi,
)
from scratchgen.grammar.compile import CompiledGrammar, compile_grammar

# Unit cycles (S -> A -> S), an empty rule and a binary rule: every table of the compiled grammar is used.
TEXT = "S -> S S [0.2] | A [0.3] | 'a' [0.5]\nA -> S [0.6] | 'b' [0.2] | '' [0.2]"
RTOL = 1e-9


@pytest.fixture(scope="module")
def cg() -> CompiledGrammar:
    return compile_grammar(Grammar.fromstring(TEXT))


def test_the_compiled_grammar_is_a_value_that_no_algorithm_changes(cg):
    before = {f.name: np.array(getattr(cg, f.name)) for f in dataclasses.fields(cg)
              if isinstance(getattr(cg, f.name), np.ndarray)}
    s = ["a", "b", "a"]
    inside.chart_batch(cg, cg.terminal_ids(s)[None, :], np.array([3]), max_length=10)
    prefix.next_token_probs(cg, cg.terminal_ids(s)[None, :2], max_length=10)
    outside.expected_counts(cg, s, max_length=10)
    viterbi.viterbi(cg, viterbi.viterbi_tables(cg), s, max_length=10)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(cg, name), value, err_msg=name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cg.E = np.zeros(cg.N)
    with pytest.raises(ValueError, match="read-only"):
        cg.E[0] = 0.5
    assert isinstance(ChartParser(Grammar.fromstring(TEXT)).compiled, CompiledGrammar)


@pytest.mark.parametrize("sentence", [["a"], ["b", "a"], ["a", "b", "a"], [], ["b", "b", "a", "a"]])
def test_each_module_gives_the_reference_numbers(cg, sentence):
    g = cg.grammar
    want = reference.inside_logprob(g, sentence)
    n = len(sentence)
    if n:
        C, log_s = inside.chart_batch(cg, cg.terminal_ids(sentence)[None, :], np.array([n]), max_length=10)
        assert math.log(C[n, 0, 0, cg.start]) - n * log_s[0] == pytest.approx(want, rel=RTOL)
    assert outside.expected_counts(cg, sentence, max_length=10)[1] == pytest.approx(want, rel=RTOL)
    lp, tree = viterbi.viterbi(cg, viterbi.viterbi_tables(cg), sentence, max_length=10)
    want_lp, want_tree = reference.viterbi(g, sentence)
    assert lp == pytest.approx(want_lp, rel=RTOL) and g.tree_logprob(tree) == pytest.approx(lp, rel=RTOL)
    assert tree.leaves() == want_tree.leaves() == sentence
    row = prefix.next_token_probs(cg, cg.terminal_ids(sentence)[None, :], max_length=10)[0]  # (T+1,)
    ref = reference.next_token_probabilities(g, sentence)
    np.testing.assert_allclose(row, [ref[a] for a in g.terminals] + [ref["</s>"]], rtol=RTOL, atol=1e-12)


def test_the_guards_hold_when_the_functions_are_called_directly(cg):
    long = cg.terminal_ids(["a"] * 12)
    with pytest.raises(ResourceError, match=r"has 12 tokens, more than max_length=10 \(--max-length\)"):
        inside.chart_batch(cg, long[None, :], np.array([12]), max_length=10)
    with pytest.raises(ResourceError, match="more than max_length=10"):
        prefix.next_token_probs(cg, long[None, :], max_length=10)
    with pytest.raises(ResourceError, match="more than max_length=10"):
        outside.expected_counts(cg, ["a"] * 12, max_length=10)
    with pytest.raises(ResourceError, match="more than max_length=10"):
        viterbi.viterbi(cg, viterbi.viterbi_tables(cg), ["a"] * 12, max_length=10)
    # A token no rule produces is ruled out before any chart: -inf, not a refusal, at any length.
    assert not prefix.viable(cg, cg.terminal_ids(["a"] * 11 + ["z"]), max_length=10)
    assert outside.expected_counts(cg, ["a"] * 11 + ["z"], max_length=10)[1] == -math.inf


def test_without_prefix_probabilities_scoring_still_works_and_stepping_says_why():
    # S -> A 'x', A -> S 'y': the left-corner chain S -> A -> S has probability 1, so (I - U_pre) is singular;
    # the inside closure exists (no unit chains) and every sentence has probability 0.
    g = Grammar.fromstring("S -> A 'x' [1]\nA -> S 'y' [1]")
    cg = compile_grammar(g)
    assert cg.Pstar is None and cg.first is None
    assert prefix.viable(cg, cg.terminal_ids(["y", "x"]), max_length=10)  # only the cheap tests are made
    assert ChartParser(g).logprob(["y", "x"]) == -math.inf
    with pytest.raises(GrammarError, match="prefix probabilities do not exist"):
        prefix.next_token_probs(cg, cg.terminal_ids(["y"])[None, :], max_length=10)


def test_no_module_of_the_family_prints():
    # Warnings go through `warnings` (or the CLI's own output), never print() or sys.stderr.write().
    folder = Path(__file__).resolve().parents[2] / "scratchgen" / "grammar"
    offenders = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                if (isinstance(f, ast.Name) and f.id == "print") or (
                        isinstance(f, ast.Attribute) and f.attr == "write" and "std" in ast.unparse(f.value)):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders
