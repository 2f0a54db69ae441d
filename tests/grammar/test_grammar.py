"""Tests of the grammar family: format, analysis, sampling, exact scoring, learning, model, CLI."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from grammar_by_definition import sentence_probabilities
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scratchgen import load
from scratchgen.errors import CorpusError, GrammarError
from scratchgen.grammar import (
    ChartParser,
    Grammar,
    GrammarModel,
    Sampler,
    Terminal,
    Tree,
    analyze,
    builtin,
    builtin_names,
    from_tracery,
    parse_grammar,
    reference,
    sample,
)
from scratchgen.text import word_tokenize

# --- the text format ---------------------------------------------------------------------------------


def test_weights_are_normalised_per_lhs_and_default_uniform():
    g = parse_grammar("""
        # comment
        S -> A 'x' [3] | 'y' [1]   # trailing comment
        A -> 'a' | 'b'
           | "c'd"
    """)
    probs = {(r.lhs, tuple(map(str, r.rhs))): r.prob for r in g.rules}
    assert probs[("S", ("A", "x"))] == 0.75  # 3 / (3 + 1)
    assert probs[("S", ("y",))] == 0.25
    assert probs[("A", ("c'd",))] == pytest.approx(1 / 3)  # three unweighted alternatives
    assert isinstance(g.rules[0].rhs[1], Terminal) and not isinstance(g.rules[0].rhs[0], Terminal)


def test_start_directive_and_round_trip():
    g = parse_grammar("%start B\nA -> 'a' [0.3] | B [0.7]\nB -> '' [0.1] | A 'b' [0.9]")
    assert g.start == "B"
    assert parse_grammar(g.to_text()) == g


@pytest.mark.parametrize("text, line, column, words", [
    ("S -> A", 1, 6, "undefined symbol 'A'"),
    ("S -> 'a'\n\nT -> 'b' [-0.5]", 3, 10, "negative"),
    ("S -> 'a' [nan]", 1, 10, "not finite"),
    ("S -> 'a' [inf] | 'b'", 1, 10, "not finite"),
    ("S -> 'a' [0] | 'b' [0.0]", 1, 6, "all weights of 'S' are zero"),
    ("S ->", 1, 5, "empty right-hand side"),
    ("S -> 'a' | | 'b'", 1, 10, "empty alternative"),
    ("S -> 'a'\nS -> 'b' | 'a'", 2, 12, "duplicate rule"),
    ("S -> 'a' [x]", 1, 10, "not a number"),
    ("S 'a'", 1, 3, "expected 'NAME -> ...'"),
])
def test_errors_name_line_column_and_problem(text, line, column, words):
    with pytest.raises(GrammarError) as info:
        parse_grammar(text)
    assert (info.value.line, info.value.column) == (line, column)
    assert words in str(info.value)


def test_empty_rule_can_be_forbidden():
    assert parse_grammar("S -> 'a' | ''").rules[1].rhs == ()
    with pytest.raises(GrammarError, match="not allowed") as info:
        parse_grammar("S -> 'a' | ''", allow_empty=False)
    assert info.value.column == 12


def test_nltk_reads_the_same_probabilities():
    nltk = pytest.importorskip("nltk")
    text = "S -> NP VP [0.7] | VP [0.3]\nNP -> 'the' N [1.0]\nVP -> 'runs' [0.4] | 'sits' [0.6]\nN -> 'dog' [1.0]"
    ours = {(r.lhs, tuple(map(str, r.rhs))): r.prob for r in parse_grammar(text).rules}
    productions = nltk.PCFG.fromstring(text).productions()
    theirs = {(str(p.lhs()), tuple(str(s) for s in p.rhs())): p.prob() for p in productions}
    assert ours == theirs


def test_programmatic_constructor():
    g = Grammar.from_rules([("S", ["A", Terminal("b")], 2), ("S", [Terminal("c")], 2), ("A", [])])
    assert [r.prob for r in g.rules] == [0.5, 0.5, 1.0]
    with pytest.raises(GrammarError, match="undefined symbol 'B'"):
        Grammar.from_rules([("S", ["B"])])


# --- static analysis -----------------------------------------------------------------------------------


def test_done_when_consistency():
    # S -> S S [q] | 'a': M = [2q]. q = 0.6: rho = 1.2, rejected naming S.
    bad = analyze(parse_grammar("S -> S S [0.6] | 'a' [0.4]"))
    assert not bad.consistent and bad.spectral_radius == pytest.approx(1.2)
    assert "S" in bad.errors[0] and "1.2" in bad.errors[0]
    # q = 0.4: E[expansions] = 1 / (1 - 0.8) = 5, E[length] = 5 * 0.6 = 3.
    good = analyze(parse_grammar("S -> S S [0.4] | 'a' [0.6]"))
    assert good.errors == [] and good.expected_derivation_size == pytest.approx(5)
    assert good.expected_length == pytest.approx(3)


def test_analysis_finds_unreachable_nonproductive_left_recursive():
    g = parse_grammar("S -> A B | 'x'\nA -> A 'a' | ''\nB -> 'b' B\nC -> 'c'")
    a = analyze(g)
    assert a.unreachable == ["C"]
    assert a.nonproductive == ["S", "B"] or set(a.nonproductive) == {"B"}
    assert "B" in a.errors[0]
    assert a.left_recursive == ["A"]
    assert a.nullable == ["A"]


def test_inconsistency_names_only_the_culprits():
    # T -> T T T [0.5] | 'b' has M = 1.5; S only calls T once.
    a = analyze(parse_grammar("S -> T 'a' [0.5] | 'a' [0.5]\nT -> T T T [0.5] | 'b' [0.5]"))
    assert "of T has spectral radius 1.5" in a.errors[0]


def test_expected_length_matches_sampling():
    g = builtin("english")
    a = analyze(g)
    lengths = [len(s) for s in sample(g, 4000, seed=0)]
    # Standard error of the mean is about std / sqrt(4000) < 0.1 tokens here.
    assert abs(np.mean(lengths) - a.expected_length) < 0.3


# --- sampling ------------------------------------------------------------------------------------------


def test_same_seed_same_sentences_and_trees_yield_the_tokens():
    g = builtin("chinese")
    assert sample(g, 20, seed=3) == sample(g, 20, seed=3)
    assert sample(g, 20, seed=3) != sample(g, 20, seed=4)
    for tokens, tree in sample(g, 20, seed=3, trees=True):
        assert tree.leaves() == tokens
        assert g.tree_logprob(tree) > -math.inf


def test_deep_derivations_need_no_recursion():
    g = parse_grammar("S -> 'a' S [0.9995] | 'b' [0.0005]")  # mean depth 2000 > Python's recursion limit
    out = sample(g, 5, seed=0, trees=True)
    assert max(len(t) for t, _ in out) > sys.getrecursionlimit()
    assert str(out[0][1]).startswith("(S a (S a")


@pytest.mark.parametrize("limit, match", [({"max_tokens": 50}, "max_tokens"),
                                          ({"max_expansions": 50}, "max_expansions"),
                                          ({"max_depth": 20}, "max_depth")])
def test_limits_raise_clear_errors(limit, match):
    g = parse_grammar("S -> 'a' S [0.99] | 'b' [0.01]")
    with pytest.raises(GrammarError, match=match):
        Sampler(g, **limit).sample(50, seed=0)


# --- exact scoring -------------------------------------------------------------------------------------


@st.composite
def acyclic_grammars(draw):
    """Small grammars whose nonterminal i only calls j > i: a finite language (empty and unit rules allowed)."""
    n = draw(st.integers(1, 4))
    rules = []
    for i in range(n):
        k = draw(st.integers(1, 3))
        seen = set()
        for _ in range(k):
            length = draw(st.integers(0, 3))
            rhs = tuple(draw(st.sampled_from([Terminal("a"), Terminal("b")] + [f"N{j}" for j in range(i + 1, n)]))
                        for _ in range(length))
            if rhs not in seen:
                seen.add(rhs)
                rules.append((f"N{i}", list(rhs), draw(st.floats(0.05, 1.0))))
    return Grammar.from_rules(rules, start="N0")


@settings(max_examples=40, deadline=None)
@given(acyclic_grammars())
def test_finite_language_probabilities_sum_to_one_and_match_enumeration(g):
    truth = sentence_probabilities(g)  # sum over trees, by enumerating leftmost derivations
    parser = ChartParser(g)
    total = 0.0
    for sentence, p in truth.items():
        lp = parser.logprob(list(sentence))
        assert math.exp(lp) == pytest.approx(p, rel=1e-9)
        vit, tree = parser.viterbi(list(sentence))
        assert vit <= lp + 1e-12  # Viterbi <= inside
        assert tree.leaves() == list(sentence) and g.tree_logprob(tree) == pytest.approx(vit)
        total += math.exp(lp)
    assert total == pytest.approx(1.0, abs=1e-9)


@st.composite
def cyclic_grammars(draw):
    """Small grammars with any calls: unit cycles, left recursion, empty rules."""
    n = draw(st.integers(1, 3))
    rules = []
    for i in range(n):
        seen = set()
        for _ in range(draw(st.integers(1, 4))):
            rhs = tuple(draw(st.sampled_from([Terminal("a"), Terminal("b")] + [f"N{j}" for j in range(n)]))
                        for _ in range(draw(st.integers(0, 3))))
            if rhs not in seen:
                seen.add(rhs)
                rules.append((f"N{i}", list(rhs), draw(st.floats(0.05, 1.0))))
    g = Grammar.from_rules(rules, start="N0")
    a = analyze(g)
    assume(not a.errors and a.spectral_radius < 0.9)
    return g


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(cyclic_grammars(), st.lists(st.lists(st.sampled_from("ab"), max_size=3), min_size=1, max_size=3))
def test_inside_matches_the_reference_on_cyclic_grammars(g, sentences):
    parser = ChartParser(g)
    for s in sentences:
        lp = parser.logprob(s)
        want = math.exp(reference.inside_logprob(g, s))  # the triple loop over spans, iterated to a fixed point
        assert (math.exp(lp) if lp > -math.inf else 0.0) == pytest.approx(want, rel=1e-7, abs=1e-300)
        vit, tree = parser.viterbi(s)
        assert vit <= lp + 1e-9
        if tree is not None:
            assert tree.leaves() == s and g.tree_logprob(tree) == pytest.approx(vit)


def test_unambiguous_grammar_inside_equals_derivation_probability():
    g = parse_grammar("S -> 'a' S [0.3] | 'b' S [0.2] | 'c' [0.5]")
    # "a b a c" has one tree: 0.3 * 0.2 * 0.3 * 0.5
    assert math.exp(ChartParser(g).logprob(list("abac"))) == pytest.approx(0.3 * 0.2 * 0.3 * 0.5)


def test_hand_computed_ambiguous_and_unit_cycle_cases():
    # S -> S [0.3] | 'a' [0.7]: P('a') = 0.7 * sum_k 0.3^k = 1.
    assert ChartParser(parse_grammar("S -> S [0.3] | 'a' [0.7]")).logprob(["a"]) == pytest.approx(0.0, abs=1e-12)
    # S -> S S [0.4] | 'a' [0.6]: 'a a a' has 2 trees of probability 0.4^2 * 0.6^3 each = 0.06912.
    p = ChartParser(parse_grammar("S -> S S [0.4] | 'a' [0.6]"))
    assert math.exp(p.logprob(["a"] * 3)) == pytest.approx(0.06912)
    assert math.exp(p.viterbi(["a"] * 3)[0]) == pytest.approx(0.03456)
    # A nullable sibling: S -> A 'x' [1], A -> '' [0.25] | 'y' [0.75]: P('x') = 0.25.
    assert math.exp(ChartParser(parse_grammar("S -> A 'x'\nA -> '' [0.25] | 'y' [0.75]")).logprob(["x"])) == \
        pytest.approx(0.25)


def test_long_sentences_do_not_underflow():
    g = parse_grammar("S -> S A [0.01] | A [0.99]\nA -> 'a'")
    n = 250  # one tree: P = 0.01^(n-1) * 0.99 = exp(-1146.6), far below float64's smallest number
    assert ChartParser(g).logprob(["a"] * n) == pytest.approx((n - 1) * math.log(0.01) + math.log(0.99), rel=1e-10)


def test_sampled_frequencies_match_computed_probabilities():
    g = parse_grammar("S -> A B [0.6] | B [0.4]\n"
                      "A -> 'a' [0.5] | 'a' 'a' [0.3] | '' [0.2]\n"
                      "B -> 'b' [0.7] | A 'b' [0.3]")
    parser = ChartParser(g)
    draws = sample(g, 20000, seed=12345)
    counts: dict = {}
    for s in draws:
        counts[tuple(s)] = counts.get(tuple(s), 0) + 1
    probs = {s: math.exp(parser.logprob(list(s))) for s in counts}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)  # every sentence of this finite language was seen
    chi2 = sum((counts[s] - 20000 * p) ** 2 / (20000 * p) for s, p in probs.items())
    dof = len(probs) - 1
    # 99.9% quantile of chi-square with dof <= 12 is below 33; a wrong probability of even 1% would blow it.
    assert dof <= 12 and chi2 < 33


# --- learning --------------------------------------------------------------------------------------------


def test_expected_counts_are_derivatives():
    g = parse_grammar("S -> S 'a' [0.3] | A [0.3] | B S C [0.2] | ''\nA -> S [0.5] | 'a' | B A\n"
                      "B -> '' [0.4] | 'b' [0.6]\nC -> 'c' 'a' B | B")
    p0 = np.array([r.prob for r in g.rules])
    sent = ["b", "a", "c", "a"]
    counts, lp = ChartParser(g).expected_counts(sent)
    for k in range(len(p0)):  # count(r) = p_r d log Z / d p_r by central differences in log p_r
        h = 1e-5
        up, down = p0.copy(), p0.copy()
        up[k] *= math.exp(h)
        down[k] *= math.exp(-h)
        fd = (ChartParser(g.with_probs(up)).logprob(sent) - ChartParser(g.with_probs(down)).logprob(sent)) / (2 * h)
        assert counts[k] == pytest.approx(fd, abs=1e-7)


def test_em_never_lowers_the_training_likelihood():
    truth = parse_grammar("S -> S S [0.3] | A [0.7]\nA -> 'a' [0.5] | 'b' [0.3] | A 'a' [0.2]")
    corpus = sample(truth, 60, seed=1)
    start = parse_grammar("S -> S S [0.4] | A [0.6]\nA -> 'a' [0.2] | 'b' [0.2] | A 'a' [0.6]")
    model = GrammarModel(grammar=start, iterations=15, tol=0).fit(corpus)
    ll = model.log_likelihoods_
    assert len(ll) == 16
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(ll, ll[1:]))
    assert ll[-1] > ll[0]


def test_fit_from_trees_is_relative_frequency():
    g = parse_grammar("S -> 'a' S | 'b'")
    trees = [Tree("S", ["a", Tree("S", ["b"])]), Tree("S", ["b"])]  # rules used: a-S once, b twice
    m = GrammarModel(grammar=g).fit(trees)
    assert [r.prob for r in m.grammar_.rules] == [1 / 3, 2 / 3]
    with pytest.raises(CorpusError, match="does not have"):
        GrammarModel(grammar=g).fit([Tree("S", ["c"])])


def test_em_refuses_impossible_sentences():
    with pytest.raises(CorpusError, match="cannot be generated"):
        GrammarModel(grammar="S -> 'a'").fit([["b"]])


# --- the model -------------------------------------------------------------------------------------------


def test_model_scores_save_load_and_oov(tmp_path):
    m = GrammarModel.from_grammar("builtin:english")
    sents = m.sample(30, seed=0)
    path = tmp_path / "g.npz"
    m.save(path)
    m2 = load(path)
    assert m2.grammar_ == m.grammar_
    assert [m2.logprob(s) for s in sents] == [m.logprob(s) for s in sents]
    assert m.logprob("the cat flies .") == -math.inf  # 'flies' is not a terminal
    s = m.score(["the cat sleeps ."])
    # one tree: 0.42 (S) * .7*.5 (NP the N) *.75/16 (cat) * .3/7 (sleeps) ; P('.')=1
    assert s.tokens == 5 and s.logprob == pytest.approx(math.log(0.42 * 0.7 * 0.5 * 0.75 / 16 * 0.3 / 7))


@pytest.mark.parametrize("name", ["english", "chinese"])
def test_builtin_grammars_fit_the_demo(name):
    g = builtin(name)
    a = analyze(g)
    assert not a.errors and not a.warnings
    assert 6 <= a.expected_length <= 12 and 50 <= len(g.terminals) <= 150
    for s in sample(g, 200, seed=0):  # terminals are exactly the word tokenizer's tokens
        text = " ".join(s) if name == "english" else "".join(s)
        assert word_tokenize(text) == s
    assert name in builtin_names()


def test_tracery_import():
    g = from_tracery(json.dumps({"origin": ["#animal.a.capitalize# #verb.s# .", "#animal.s# sleep ."],
                                 "animal": ["owl", "fox", "owl"], "verb": ["catch", "see"]}))
    out = {" ".join(s) for s in sample(g, 300, seed=0)}
    assert out == {"An owl catches .", "An owl sees .", "A fox catches .", "A fox sees .",
                   "owls sleep .", "foxes sleep ."}
    p = ChartParser(g)
    # origin 1/2, owl listed twice of three: 2/3, verb 1/2
    assert math.exp(p.logprob("An owl sees .".split())) == pytest.approx(0.5 * 2 / 3 * 0.5)
    with pytest.raises(GrammarError, match="action"):
        from_tracery({"origin": ["[hero:#name#]#hero#"], "name": ["a"]})
    with pytest.raises(GrammarError, match="undefined symbol 'nme'"):
        from_tracery({"origin": ["#nme#"], "name": ["a"]})


def test_tracery_package_gives_the_same_sentences():
    tracery = pytest.importorskip("tracery")
    from tracery.modifiers import base_english

    rules = {"origin": ["#animal.a.capitalize# #verb.ed# the #thing.s#."], "animal": ["owl", "unicorn", "cat"],
             "verb": ["chase", "carry", "kick"], "thing": ["box", "fly", "key"]}
    grammar = tracery.Grammar(rules)
    grammar.add_modifiers(base_english)
    import random

    random.seed(0)
    theirs = {tuple(word_tokenize(grammar.flatten("#origin#"))) for _ in range(400)}
    ours = {tuple(s) for s in sample(from_tracery(rules), 400, seed=0)}
    assert theirs == ours and len(ours) == 27


# --- command line ------------------------------------------------------------------------------------------


def test_cli_check_and_score(tmp_path, capsys):
    from scratchgen.cli import main

    bad, good = tmp_path / "bad.cfg", tmp_path / "good.cfg"
    bad.write_text("S -> S S [0.6] | 'a' [0.4]\n")
    good.write_text("S -> S S [0.4] | 'a' [0.6]\n")
    assert main(["grammar", "check", str(bad)]) == 1
    assert "S has spectral radius 1.2" in capsys.readouterr().err
    assert main(["grammar", "check", str(good)]) == 0
    out = capsys.readouterr().out
    assert "expected derivation size: 5 expansions" in out and "expected sentence length: 3 tokens" in out
    corpus = tmp_path / "c.txt"
    corpus.write_text("a\na a\n")
    assert main(["grammar", "score", str(good), str(corpus), "--json", "--per-sentence"]) == 0
    res = json.loads(capsys.readouterr().out)
    # P(a) = 0.6, P(a a) = 0.4 * 0.36; tokens = 1 + 1 + 2 + 1 = 5
    assert res["tokens"] == 5 and res["sequences"] == 2 and res["oov_tokens"] == 0
    assert res["cross_entropy_nats"] == pytest.approx(-(math.log(0.6) + math.log(0.144)) / 5)
    assert res["sentence_logprobs"] == pytest.approx([math.log(0.6), math.log(0.144)])
    assert {"bits_per_token", "perplexity"} <= set(res)
    assert main(["grammar", "sample", "builtin:chinese", "-n", "2", "--seed", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["samples"]) == 2
    assert main(["grammar", "parse", "english", "alice sleeps ."]) == 0
    assert "(S (NP_SG (NAME alice))" in capsys.readouterr().out


# --- prefix probabilities and the stepping interface ----------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(acyclic_grammars())
def test_next_token_probabilities_match_enumerated_prefix_probabilities(g):
    truth = sentence_probabilities(g)

    def pre(prefix):  # total probability of the sentences starting with prefix
        return sum(p for s, p in truth.items() if s[: len(prefix)] == prefix)

    parser = ChartParser(g)
    prefixes = {s[:k] for s in truth for k in range(len(s) + 1)}
    for prefix in sorted(prefixes)[:12]:
        got = parser.next_token_probs(parser.terminal_ids(list(prefix))[None, :])[0]
        want = [pre(prefix + (a,)) / pre(prefix) for a in g.terminals] + [truth.get(prefix, 0.0) / pre(prefix)]
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_stepping_logprob_equals_the_chart_and_rows_sum_to_one():
    m = GrammarModel.from_grammar("builtin:english")
    sents = m.sample(30, seed=4) + [["the", "cat", "flies", "."]]
    chart = m.parser_.logprobs(sents)
    stepped = [m.logprob(s) for s in sents]
    np.testing.assert_allclose(stepped[:-1], chart[:-1], rtol=1e-10)
    assert stepped[-1] == chart[-1] == -math.inf
    state = m.advance(m.initial_state(2), m.vocab_.encode(["the", "the"]))
    state = m.advance(state, m.vocab_.encode(["cat", "alice"]))
    rows = np.exp(m.next_logprobs(state))  # (2, V)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-12)
    assert rows[0, 2] == 0.0 and rows[0, m.vocab_.index("sleeps")] > 0  # "the cat" goes on
    assert rows[1, 2] == 1.0  # "the alice" is impossible: by convention only the end follows


def test_decoding_controls_work_on_the_grammar():
    from scratchgen import beam_search, generate

    m = GrammarModel.from_grammar("builtin:english")
    out = generate(m, 5, seed=0, prompt="the cats", top_k=3, max_tokens=20)
    for s in out:
        assert s[:2] == ["the", "cats"]
        assert m.logprob(s) > -math.inf or len(s) == 22  # a complete sentence, or cut at max_tokens
    (best, lp), = beam_search(m, width=4, max_tokens=10)
    assert lp == pytest.approx(m.logprob(best))


def test_cli_train_and_tracery_file(tmp_path, capsys):
    from scratchgen.cli import main

    spec = tmp_path / "g.json"
    spec.write_text(json.dumps({"origin": ["#animal.capitalize# #verb.s# ."], "animal": ["owl", "fox"],
                                "verb": ["hoot", "run"]}))
    assert main(["grammar", "sample", str(spec), "-n", "3", "--seed", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.split()[0] in ("Owl", "Fox") for line in lines)
    cfg = tmp_path / "g.cfg"
    cfg.write_text("S -> 'a' S [0.5] | 'b' [0.5]\n")
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b\nb\nb\na a b\n")  # rule a-S used 3 times, b 4 times: EM (one tree each) gives 3/7
    out = tmp_path / "m.npz"
    assert main(["train", "grammar", str(cfg), str(corpus), "-o", str(out)]) == 0
    m = load(out)
    assert m.grammar_.rules[0].prob == pytest.approx(3 / 7)
    assert main(["score", str(out), str(corpus), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["tokens"] == 11 and res["logprob_nats"] == pytest.approx(3 * math.log(3 / 7) + 4 * math.log(4 / 7))


def test_a_sentence_too_long_for_memory_is_refused_clearly(monkeypatch):
    from scratchgen.errors import ResourceError

    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "1M")
    p = ChartParser(Grammar.fromstring("S -> S S [0.4] | 'a' [0.6]"))
    with pytest.raises(ResourceError, match=r"the chart of 1 sentence\(s\) of 300 tokens needs about"):
        p.logprob(["a"] * 300)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(cyclic_grammars(), st.integers(0, 2**32 - 1))
def test_next_token_distribution_sums_to_the_prefix_probability_on_cyclic_grammars(g, seed):
    # Pre(x) = sum_a Pre(x a) + P(x): if the prefix probabilities of eqs. (6)-(8) were wrong, the product
    # of the normalised steps would not telescope to the chart's P(x). Unit cycles, '' and left recursion.
    m = GrammarModel.from_grammar(g)
    parser = m.parser_
    for s in m.sample(4, seed=seed):
        if len(s) > 6:
            continue
        stepped = float(GrammarModel.token_logprobs(m, [m.vocab_.encode(s)])[0].sum())
        assert stepped == pytest.approx(parser.logprob(s), rel=1e-8, abs=1e-10)


def test_inside_equals_nltks_sum_over_all_parses():
    nltk = pytest.importorskip("nltk")
    g = builtin("english")
    parser = nltk.InsideChartParser(nltk.PCFG.fromstring(g.to_text()))
    ours = ChartParser(g)
    sents = [s for s in sample(g, 60, seed=8) if 6 <= len(s) <= 10][:5]
    assert len(sents) == 5
    for s in sents:  # NLTK lists every parse with its probability; their sum is the sentence's
        theirs = math.log(sum(t.prob() for t in parser.parse(s)))
        assert ours.logprob(s) == pytest.approx(theirs, rel=1e-12)
