"""The grammar family on a user's own files (issue 9): long lines, over-long derivations, one grammar
resolver, reserved tokens, renormalised weights, JSON without NaN, model-file checks, option values,
and a fuzz suite of corrupted grammar text and Tracery JSON.

Each test reproduces a report of the issue and fails on the code before the fix.
"""

from __future__ import annotations

import json
import math
import os
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchgen.cli import eval as eval_cli
from scratchgen.cli import main
from scratchgen.errors import (
    GrammarError,
    ModelFileError,
    ResourceError,
    ScratchgenError,
)
from scratchgen.grammar import (
    ChartParser,
    Grammar,
    GrammarModel,
    analyze,
    builtin,
    from_tracery,
    inside,
    parse_grammar,
)
from scratchgen.grammar.builtin import resolve_grammar
from scratchgen.grammar.chart import DEFAULT_MAX_LENGTH, PREFIX_CHECK

BINARY = "S -> S S [0.4] | 'a' [0.6]\n"  # every string of a's, so long sentences are possible
HEAVY = "S -> S S [0.4999] | 'a' [0.5001]\n"  # consistent, but with a very heavy tail of long derivations


def _run(argv, capsys):
    """(exit code, stdout, stderr) of the command line; usage errors (SystemExit) give their code."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("scratchgen: error: "), err
    assert "unexpected" not in err and "Traceback" not in err, err


@pytest.fixture
def chart_sizes(monkeypatch):
    """The length of every chart the parser builds (a spy on the one function that allocates them)."""
    sizes: list[int] = []
    original = inside.chart_batch

    def spy(cg, w, lengths, max_length, with_left=False):
        sizes.append(w.shape[1])
        return original(cg, w, lengths, max_length, with_left)

    monkeypatch.setattr(inside, "chart_batch", spy)
    return sizes


# --- item 11: a long line neither grows memory as N^2 nor passes unchecked ---------------------------------


def test_a_long_line_of_known_words_that_cannot_start_a_sentence_builds_no_long_chart(tmp_path, capsys, chart_sizes):
    # The report: `grammar score builtin:english L`, L one line of 1,000 tokens, took 1.28 GB (a full chart).
    words = builtin("english").terminals
    rng = np.random.default_rng(0)
    line = " ".join(rng.choice(words, size=1000))
    path = tmp_path / "line.txt"
    path.write_text(line + "\n", encoding="utf-8")
    code, out, _ = _run(["grammar", "score", "builtin:english", str(path), "--json"], capsys)
    assert code == 0
    assert json.loads(out)["logprob_nats"] == "-inf"
    assert max(chart_sizes, default=0) < PREFIX_CHECK  # no chart anywhere near the line's length


def test_an_impossible_prefix_stops_before_the_full_chart(chart_sizes):
    # a^k b is the language; a 'b' at position 80 makes every prefix of 81+ tokens impossible.
    p = ChartParser(Grammar.fromstring("S -> 'a' S [0.5] | 'b' [0.5]"))
    sentence = ["a"] * 79 + ["b"] + ["a"] * 300
    assert p.logprob(sentence) == -math.inf
    assert max(chart_sizes) < 2 * PREFIX_CHECK  # stopped at the prefix of 128 tokens, not 380
    assert p.viterbi(sentence) == (-math.inf, None)


def test_the_prefix_check_changes_no_probability():
    # A long possible sentence: the prefix checks pass and the chart gives the same value as without them.
    p = ChartParser(Grammar.fromstring(BINARY))
    sentence = ["a"] * (PREFIX_CHECK + 40)
    w = p.terminal_ids(sentence)
    C, log_s = inside.chart_batch(p.compiled, w[None, :], np.array([len(w)]), p.max_length)
    direct = math.log(C[len(w), 0, 0, p.start]) - len(w) * float(log_s[0])
    assert p.viable(w)
    assert p.logprob(sentence) == pytest.approx(direct, rel=1e-12)


def test_a_sentence_longer_than_max_length_is_refused_with_the_estimate_everywhere_a_chart_is_built():
    m = GrammarModel.from_grammar(BINARY, max_length=100)
    long = ["a"] * 150
    for attempt in (lambda: m.logprob(long), lambda: m.parse(long), lambda: m.score([long]),
                    lambda: GrammarModel(grammar=BINARY, iterations=1, max_length=100).fit([long])):
        with pytest.raises(ResourceError, match=r"sentence has 1\d\d tokens, more than max_length=100 "
                                                r"\(--max-length\).*would need about [\d.]+ [KM]iB"):
            attempt()
    assert math.isfinite(GrammarModel.from_grammar(BINARY, max_length=200).logprob(long))


def test_cli_max_length_and_the_memory_limit(tmp_path, capsys, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("a a\n" + " ".join(["a"] * 500) + "\n", encoding="utf-8")
    grammar = tmp_path / "g.cfg"
    grammar.write_text(BINARY, encoding="utf-8")
    code, _, err = _run(["grammar", "score", str(grammar), str(path)], capsys)
    assert code == 1 and f"sentence 2 has 500 tokens, more than max_length={DEFAULT_MAX_LENGTH} (--max-length)" in err
    _one_line_error(err)
    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "2M")
    code, _, err = _run(["grammar", "score", str(grammar), str(path), "--max-length", "1000"], capsys)
    assert code == 1 and "the chart of 1 sentence(s) of 500 tokens needs about" in err
    _one_line_error(err)
    code, _, err = _run(["grammar", "score", str(grammar), str(path), "--max-length", "0"], capsys)
    assert code == 2 and "--max-length" in err


# --- item 12: one over-long derivation does not cost the whole run --------------------------------------


@pytest.fixture
def heavy(tmp_path):
    path = tmp_path / "heavy.cfg"
    path.write_text(HEAVY, encoding="utf-8")
    return str(path)


def test_sample_skips_over_long_derivations_and_says_how_many(heavy, capsys):
    code, out, err = _run(["grammar", "sample", heavy, "-n", "200", "--max-tokens", "50", "--seed", "0"], capsys)
    assert code == 0
    lines = out.splitlines()
    skipped = int(err.split("skipped ")[1].split(" of 200")[0])
    assert skipped > 0 and len(lines) + skipped == 200
    assert all(1 <= len(line.split()) <= 50 for line in lines)
    assert "--max-tokens" in err and len(err.splitlines()) == 1


def test_sample_truncate_cuts_instead_of_skipping(heavy, capsys):
    code, out, err = _run(["grammar", "sample", heavy, "-n", "200", "--truncate", "7", "--seed", "0"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 200 and max(len(line.split()) for line in lines) == 7


def test_sample_json_counts_the_skipped(heavy, capsys):
    code, out, _ = _run(["grammar", "sample", heavy, "-n", "50", "--max-tokens", "20", "--seed", "1", "--json"],
                        capsys)
    result = json.loads(out)
    assert code == 0 and result["skipped"] > 0 and len(result["samples"]) + result["skipped"] == 50


def test_sample_with_every_derivation_too_long_is_an_error(tmp_path, capsys):
    path = tmp_path / "three.cfg"
    path.write_text("S -> 'a' 'a' 'a'\n", encoding="utf-8")
    code, out, err = _run(["grammar", "sample", str(path), "-n", "3", "--max-tokens", "2", "--seed", "0"], capsys)
    assert code == 1 and out == "" and "skipped 3 of 3" in err and "--max-tokens" in err
    _one_line_error(err)


def test_sample_prints_each_sentence_as_it_comes(capsys, monkeypatch):
    # Interrupt the fourth draw: the three before it are already on stdout (the old code held them all).
    from scratchgen.grammar.sampling import Sampler

    original, calls = Sampler._one, []

    def one(self, trees):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(self, trees)

    monkeypatch.setattr(Sampler, "_one", one)
    code, out, _ = _run(["grammar", "sample", "builtin:english", "-n", "10", "--seed", "0"], capsys)
    assert code == 130 and len(out.splitlines()) == 3


def test_the_api_sample_still_raises_and_takes_truncate():
    m = GrammarModel.from_grammar(HEAVY, max_tokens=10)
    with pytest.raises(GrammarError, match=r"max_tokens=10 \(--max-tokens\)"):
        m.sample(200, seed=0)
    assert all(len(s) <= 3 for s in m.sample(50, seed=0, truncate=3))


# --- item 25: one resolver; check warns on renormalised weights and refuses reserved tokens ---------------


@pytest.fixture
def grammar_files(tmp_path):
    cfg = tmp_path / "g.cfg"
    cfg.write_text("S -> NP 'sleeps' [1]\nNP -> 'the' 'cat' [0.5] | 'a' 'dog' [0.5]\n", encoding="utf-8")
    tracery = tmp_path / "t.json"
    tracery.write_text(json.dumps({"origin": ["#animal# sleeps"], "animal": ["the cat", "a dog"]}), encoding="utf-8")
    return str(cfg), str(tracery)


def test_eval_reference_takes_every_grammar_that_grammar_score_takes(grammar_files, tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sleeps\na dog sleeps\n", encoding="utf-8")
    for spec in grammar_files + ("builtin:english",):
        code, _, err = _run(["grammar", "score", spec, str(corpus)], capsys)
        assert code == 0, err
        reference = eval_cli._load_reference(spec)  # the old eval refused a grammar file
        assert reference.grammar_ == resolve_grammar(spec)
        assert GrammarModel.from_grammar(spec).grammar_ == resolve_grammar(spec)
    assert math.exp(eval_cli._load_reference(grammar_files[1]).logprob(["the", "cat", "sleeps"])) == pytest.approx(0.5)


def test_eval_reference_on_the_command_line(grammar_files, tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sleeps\na dog sleeps\n" * 5, encoding="utf-8")
    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model), "--level", "word"]) == 0
    code, out, err = _run(["eval", str(model), "--train", str(corpus), "--reference", grammar_files[0], "-n", "20",
                           "--no-discriminator", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["reference"]["samples"] == 20


def test_the_model_saves_the_grammar_not_the_file_name(grammar_files, tmp_path):
    m = GrammarModel.from_grammar(grammar_files[0])
    assert "->" in m.get_params()["grammar"]
    m.save(tmp_path / "m.npz")
    os.remove(grammar_files[0])
    from scratchgen import load

    assert load(tmp_path / "m.npz").logprob(["the", "cat", "sleeps"]) == pytest.approx(math.log(0.5))


def test_check_warns_that_weights_are_renormalised(tmp_path, capsys):
    for weights, total in (("[0.3] | 'b' [0.4]", "0.7"), ("[0.9] | 'b' [0.9]", "1.8")):
        path = tmp_path / "w.cfg"
        path.write_text(f"S -> 'a' {weights}\n", encoding="utf-8")
        code, out, err = _run(["grammar", "check", str(path)], capsys)
        assert code == 0 and "ok: consistent" in out
        assert f"warning: the weights of S sum to {total}, not 1: they are renormalised" in err
    path.write_text("S -> 'a' [0.25] | 'b' [0.75]\nT -> 'c' | 'd'\n", encoding="utf-8")
    _, _, err = _run(["grammar", "check", str(path)], capsys)
    assert "renormalised" not in err  # weights that sum to 1, or none written: nothing to say


@pytest.mark.parametrize("token", ["<s>", "</s>"])
def test_check_refuses_the_reserved_tokens(tmp_path, capsys, token):
    path = tmp_path / "r.cfg"
    path.write_text(f"S -> '{token}' 'a' | 'b'\n", encoding="utf-8")
    code, _, err = _run(["grammar", "check", str(path)], capsys)
    assert code == 1 and f"the terminal '{token}' is reserved" in err
    _one_line_error(err)
    with pytest.raises(GrammarError, match="reserved"):
        GrammarModel.from_grammar(str(path))


def test_unk_is_an_ordinary_terminal_by_the_one_token_rule(capsys, tmp_path):
    m = GrammarModel.from_grammar("S -> 'a' S [0.5] | '<unk>' [0.25] | 'b' [0.25]")
    assert m.logprob(["a", "<unk>"]) == pytest.approx(math.log(0.5 * 0.25))
    assert m.logprob(["a", "zebra"]) == pytest.approx(math.log(0.5 * 0.25))  # an unknown word is <unk>
    ids = m.vocab_.encode(["a", "<unk>"])
    assert float(GrammarModel.token_logprobs(m, [ids])[0].sum()) == pytest.approx(math.log(0.5 * 0.25))
    m.save(tmp_path / "u.npz")
    from scratchgen import load

    assert load(tmp_path / "u.npz").logprob(["<unk>"]) == pytest.approx(math.log(0.25))


def test_a_grammar_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin.cfg"
    path.write_bytes("S -> 'café'\n".encode("latin-1"))
    code, _, err = _run(["grammar", "check", str(path)], capsys)
    assert code == 1 and "grammar file" in err and "is not UTF-8 at byte 9 (0xe9)" in err
    _one_line_error(err)


def test_a_grammar_file_error_names_the_file(tmp_path, capsys):
    path = tmp_path / "bad.cfg"
    path.write_text("S -> 'a' [x]\n", encoding="utf-8")
    code, _, err = _run(["grammar", "sample", str(path)], capsys)
    assert code == 1 and f"grammar file {str(path)!r}: line 1, column 10" in err


def test_a_tracery_modifier_applied_recursively_is_refused_at_once():
    # Found by the fuzz suite: "animal": ["#animal.s#"] made animal.s, animal.s.s, ... 10,000 symbols, and
    # then N x N tables of gigabytes.
    with pytest.raises(GrammarError, match="applied recursively"):
        from_tracery({"origin": ["#animal#"], "animal": ["#animal.s#", "cat"]})


def test_compiling_a_grammar_too_large_for_memory_is_refused(monkeypatch):
    text = "\n".join([f"A{i} -> A{i + 1} 'x' | 'y'" for i in range(300)] + ["A300 -> 'x'"])
    grammar = parse_grammar(text)
    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "1M")
    with pytest.raises(ResourceError, match="compiling a grammar of 302 symbols and 300 binary rules needs about"):
        ChartParser(grammar)


# --- item 26: JSON without NaN ------------------------------------------------------------------------------


def test_the_eval_report_has_no_nan_in_its_dict_or_json():
    from scratchgen import UnigramModel
    from scratchgen.evaluation import evaluate

    class Nothing:  # a reference that can produce none of the samples: its means are NaN
        def logprob(self, tokens):
            return -math.inf

    model = UnigramModel().fit([["a", "b"], ["b", "a"]])
    report = evaluate(model, [["a", "b"]], reference=Nothing(), samples=[["a"], ["b"]], discriminator=False)
    assert math.isnan(report.reference.logprob_per_sample)
    d = report.to_dict()
    assert d["reference"]["logprob_per_sample"] is None and d["reference"]["bits_per_token"] is None
    strict = json.loads(report.to_json(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert strict["reference"]["logprob_per_token"] is None and strict["reference"]["impossible"] == 1.0


# --- the model file: no arrays, a valid stored grammar ------------------------------------------------------


def _rewrite(path, edit_header=None, extra_arrays=None):
    from scratchgen.io import HEADER_KEY

    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays[HEADER_KEY].tobytes().decode("utf-8"))
    if edit_header:
        edit_header(header)
    arrays[HEADER_KEY] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    arrays.update(extra_arrays or {})
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit, message", [
    (lambda h: h["state"].update(grammar="S -> 'a' [-1]"), "stored grammar is not valid"),
    (lambda h: h["state"].update(grammar="S -> S S [0.9] | 'a' [0.1]"), "stored grammar is not valid.*inconsistent"),
    (lambda h: h["state"].update(grammar=17), "holds no grammar text"),
    (lambda h: h["state"].pop("grammar"), "holds no grammar text"),
    (lambda h: h["state"].update(grammar="S -> 'zzz'"), "terminals differ from the stored vocabulary"),
    (lambda h: h["state"].update(log_likelihoods=["x"]), "log_likelihoods"),
    (lambda h: h["params"].update(max_length=0), "max_length must be an int >= 1"),
    (lambda h: h["params"].update(grammar=[1]), "grammar must be"),
])
def test_an_edited_grammar_model_file_is_refused_clearly(tmp_path, edit, message):
    path = tmp_path / "m.npz"
    GrammarModel.from_grammar("S -> 'a' [1]").save(path)
    _rewrite(path, edit_header=edit)
    from scratchgen import load

    with pytest.raises(ModelFileError, match="not a valid scratchgen GrammarModel file: .*" + message):
        load(path)


def test_a_grammar_model_file_with_an_array_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    GrammarModel.from_grammar("S -> 'a' [1]").save(path)
    _rewrite(path, extra_arrays={"W": np.zeros(3)})
    from scratchgen import load

    with pytest.raises(ModelFileError, match="GrammarModel"):
        load(path)


# --- item 19: EM progress; --quiet ------------------------------------------------------------------------


def test_train_grammar_reports_em_progress_unless_quiet(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a\na a\na a a\n", encoding="utf-8")
    grammar = tmp_path / "g.cfg"
    grammar.write_text(BINARY, encoding="utf-8")
    out = tmp_path / "m.npz"
    code, _, err = _run(["train", "grammar", str(grammar), str(corpus), "-o", str(out), "--iterations", "3"], capsys)
    assert code == 0 and "EM pass 1: training log-likelihood" in err and "EM: " in err
    code, _, err = _run(["train", "grammar", str(grammar), str(corpus), "-o", str(out), "--iterations", "3",
                         "--quiet"], capsys)
    assert code == 0 and "EM pass" not in err and err.startswith("EM: ")


# --- items 27/28: option values, options after sentences, files declared --------------------------------------


@pytest.mark.parametrize("argv", [
    ["grammar", "sample", "builtin:english", "-n", "0"],
    ["grammar", "sample", "builtin:english", "--seed", "-1"],
    ["grammar", "sample", "builtin:english", "--max-tokens", "0"],
    ["grammar", "sample", "builtin:english", "--max-depth", "x"],
    ["grammar", "sample", "builtin:english", "--truncate", "0"],
    ["train", "grammar", "builtin:english", "c.txt", "-o", "m.npz", "--iterations", "-1"],
    ["train", "grammar", "builtin:english", "c.txt", "-o", "m.npz", "--smoothing", "nan"],
    ["train", "grammar", "builtin:english", "c.txt", "-o", "m.npz", "--smoothing", "-0.5"],
    ["eval", "m.npz", "--train", "c.txt", "-n", "0"],
    ["eval", "m.npz", "--train", "c.txt", "--top-p", "1.5"],
    ["eval", "m.npz", "--train", "c.txt", "--seed", "-3"],
    ["eval", "m.npz", "--train", "c.txt", "--top-k", "0"],
    ["grammar", "parse", "builtin:english"],
    ["grammar", "parse", "builtin:english", "--level", "word"],
])
def test_bad_option_values_are_usage_errors(argv, capsys):
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == "" and "error:" in err


def test_parse_takes_options_after_the_sentence(capsys):
    code, out, err = _run(["grammar", "parse", "builtin:english", "--level", "word", "the cats sleep .", "--json"],
                          capsys)
    assert code == 0, err
    (row,) = json.loads(out)["parses"]
    assert row["tokens"] == ["the", "cats", "sleep", "."] and row["tree"] is not None


def test_train_grammar_refuses_to_overwrite_its_inputs(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a\na a\n", encoding="utf-8")
    grammar = tmp_path / "g.cfg"
    grammar.write_text(BINARY, encoding="utf-8")
    for target in (corpus, grammar):
        before = target.read_bytes()
        code, _, err = _run(["train", "grammar", str(grammar), str(corpus), "-o", str(target)], capsys)
        assert code == 1 and "it is also an input" in err
        assert target.read_bytes() == before


# --- fuzz: corrupted grammar text and Tracery JSON end in a grammar or one ScratchgenError -----------------------

VALID_TEXT = """%start S
S -> NP VP [0.7] | VP [0.3]
NP -> 'the' N [0.6] | 'a' N [0.4]
N -> 'cat' [2] | 'dog' [1] | N 'and' N [0.5]
VP -> 'sleeps' | 'sees' NP | Adv VP
Adv -> 'very' Adv [0.2] | '' [0.8]
"""
VALID_TRACERY = {"origin": ["#animal.a.capitalize# #verb#.", "#animal.s# #verb#"], "animal": ["owl", "cat", "ibis"],
                 "verb": ["sleeps", "hoots #adverb#"], "adverb": ["softly", "loudly"]}

PIECES = ["S", "A", "B", "NP", "->", "|", "'a'", "'b'", "'<s>'", "'</s>'", "'<unk>'", "''", "ε", "[0.5]", "[0]",
          "[-1]", "[nan]", "[inf]", "[1e308]", "[1e-320]", "[", "]", "'", '"', "#", "%start", "%start S", "\n", " ",
          "\x00", "\ud800", "undefined", "Z"]


def _survives(make) -> Grammar | None:
    """Build and use a grammar; any failure must be one ScratchgenError (RecursionError and the rest fail)."""
    try:
        grammar = make()
        report = analyze(grammar)
        model = GrammarModel.from_grammar(grammar, max_depth=200, max_expansions=2000, max_tokens=60)
    except ScratchgenError:
        return None
    assert not report.errors
    sampler = model.sampler()
    for s in sampler.iter_sample(3, seed=0, skip=True):
        if len(s) <= 30:
            assert model.logprob(s) > -math.inf  # what the grammar generates, its chart scores
    grammar.to_text()
    return grammar


def _check_text(text: str) -> None:
    g = _survives(lambda: parse_grammar(text))
    if g is not None:  # a grammar that loads round-trips through its text (rules grouped by left-hand side)
        back = parse_grammar(g.to_text())
        assert back.start == g.start
        assert sorted((r.lhs, r.rhs, r.prob) for r in back.rules) == sorted((r.lhs, r.rhs, r.prob) for r in g.rules)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_fuzz_grammar_text_from_pieces(pieces):
    _check_text(" ".join(pieces))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_corrupted_grammar_text(data):
    raw = bytearray(VALID_TEXT.encode("utf-8"))
    how = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "truncate":
        raw = raw[:at]
    elif how == "flip":
        raw[at] = data.draw(st.integers(0, 255))
    elif how == "insert":
        raw[at:at] = data.draw(st.sampled_from(PIECES)).encode("utf-8", "surrogatepass")
    else:
        raw = raw[:at] + raw[at + data.draw(st.integers(1, 20)):]
    _check_text(raw.decode("utf-8", "replace"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_as_a_grammar_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / ("g.json" if data[:1] == b"{" else "g.cfg")
    path.write_bytes(data)
    _survives(lambda: resolve_grammar(str(path)))


weights = st.one_of(st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, 1e308, 1e-320, 1.0]),
                    st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["S", "A", "B", "C"]),
                          st.lists(st.sampled_from(["S", "A", "B", "C", "D", "a", "b", "<s>", "</s>", "<unk>"]),
                                   max_size=4),
                          weights), min_size=1, max_size=10))
def test_fuzz_weights_cycles_reserved_tokens_and_unknown_symbols(rules):
    lines = []
    for lhs, rhs, w in rules:
        body = " ".join(s if s[0].isupper() else repr(s) for s in rhs) or "''"
        lines.append(f"{lhs} -> {body} [{w!r}]")
    _check_text("\n".join(lines))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(20, 150), st.sampled_from(["chain", "nest", "left", "right"]))
def test_fuzz_deep_recursion(depth, shape):
    if shape == "chain":  # S -> A1, A1 -> A2, ... : a long unit chain
        text = "\n".join([f"A{i} -> A{i + 1}" for i in range(depth)] + [f"A{depth} -> 'x'"])
    elif shape == "nest":  # nested Tracery references
        source = {f"s{i}": [f"#s{i + 1}# y"] for i in range(depth)} | {f"s{depth}": ["x"]}
        _survives(lambda: from_tracery(source, start="s0"))
        return
    elif shape == "left":
        text = "S -> S 'a' [0.3] | 'b' [0.7]"
    else:
        text = "S -> 'a' S [0.3] | 'b' [0.7]"
    g = _survives(lambda: parse_grammar(text))
    assert g is not None
    if shape in ("left", "right"):  # a sentence of `depth` tokens: deep trees, built without recursion
        sentence = ["b"] + ["a"] * (depth - 1) if shape == "left" else ["a"] * (depth - 1) + ["b"]
        _, tree = ChartParser(g).viterbi(sentence)
        assert tree is not None and tree.leaves() == sentence and str(tree).count("(") == depth


tracery_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(alphabet=string.printable + "é\ud800")),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["origin", "a", "b", "x y", "c.d", ""]), tracery_values, max_size=4))
def test_fuzz_tracery_structures(source):
    _survives(lambda: from_tracery(source))
    try:
        text = json.dumps(source)
    except (ValueError, UnicodeEncodeError):
        return
    _survives(lambda: from_tracery(text))


ref_strings = st.lists(st.sampled_from(["#animal#", "#verb#", "#origin#", "#nope#", "#animal.s#", "#animal.bad#",
                                        "#", "[x:#animal#]", "#[y:z]animal#", "word", "<s>", ".", " ", "#animal.a#",
                                        "#animal.capitalize.s.ed#"]), max_size=6).map("".join)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["origin", "animal", "verb"]), st.lists(ref_strings, max_size=3), min_size=1))
def test_fuzz_tracery_references_cycles_and_modifiers(overrides):
    _survives(lambda: from_tracery(VALID_TRACERY | overrides))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_corrupted_tracery_json_text(data):
    text = json.dumps(VALID_TRACERY)
    at = data.draw(st.integers(0, len(text)))
    how = data.draw(st.sampled_from(["truncate", "insert", "nest"]))
    if how == "truncate":
        text = text[:at]
    elif how == "insert":
        junk = data.draw(st.sampled_from(["{", "}", "[", "]", '"', ",", ":", "#", "\\", "null"]))
        text = text[:at] + junk + text[at:]
    else:
        text = "[" * data.draw(st.integers(1, 100_000)) + text
    _survives(lambda: from_tracery(text))


def test_fuzz_cases_are_judged_by_their_errors():
    # The judge itself: a bad grammar is one GrammarError; a good one is used and returned.
    assert _survives(lambda: parse_grammar("S -> 'a' [nan]")) is None
    assert _survives(lambda: from_tracery("[" * 100_000)) is None
    assert _survives(lambda: parse_grammar(VALID_TEXT)) is not None
    assert _survives(lambda: from_tracery(VALID_TRACERY)) is not None
    with pytest.raises(RecursionError):
        _survives(lambda: (_ for _ in ()).throw(RecursionError()))


# --- the same fuzz at 10,000 cases (``pytest -m slow``) ------------------------------------------------------

SLOW = settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@SLOW
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_fuzz_grammar_text_from_pieces_many(pieces):
    test_fuzz_grammar_text_from_pieces.hypothesis.inner_test(pieces)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_fuzz_corrupted_grammar_text_many(data):
    test_fuzz_corrupted_grammar_text.hypothesis.inner_test(data)


@pytest.mark.slow
@SLOW
@given(st.lists(st.tuples(st.sampled_from(["S", "A", "B", "C"]),
                          st.lists(st.sampled_from(["S", "A", "B", "C", "D", "a", "b", "<s>", "</s>", "<unk>"]),
                                   max_size=4),
                          weights), min_size=1, max_size=10))
def test_fuzz_weights_cycles_reserved_tokens_and_unknown_symbols_many(rules):
    test_fuzz_weights_cycles_reserved_tokens_and_unknown_symbols.hypothesis.inner_test(rules)


@pytest.mark.slow
@SLOW
@given(st.dictionaries(st.sampled_from(["origin", "animal", "verb"]), st.lists(ref_strings, max_size=3), min_size=1))
def test_fuzz_tracery_references_cycles_and_modifiers_many(overrides):
    test_fuzz_tracery_references_cycles_and_modifiers.hypothesis.inner_test(overrides)
