"""Smoothing strategies as stateless values, pure validators, and stupid backoff's own ``alpha`` (issue 10, item 3).

- a strategy is a frozen dataclass of its hyperparameters; estimating changes nothing in it, and the same
  counts give the same tables every time, whichever strategy ran before;
- :func:`backoff_form` is the one recursion: a strategy only gives its weights (u, gamma);
- ``NGramModel._check_params`` builds no strategy;
- ``alpha`` is stupid backoff's factor; ``discount`` is its deprecated old name (Python and command line), and
  model files of the old layout (the factor stored as ``discount``) load and score the same;
- the command line's deprecation notes are warnings (one line, through :mod:`warnings`), not prints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
from ngram_cli import run

from scratchgen import Tokenizer, Vocabulary, load
from scratchgen.cli import build_parser
from scratchgen.errors import ScratchgenError
from scratchgen.ngram import NGramCounts, NGramModel
from scratchgen.ngram import smoothing as smoothing_module
from scratchgen.ngram.smoothing import SMOOTHINGS, backoff_form, make_smoothing

WORDS = ["the cat sat on the mat", "the dog sat", "a cat and a dog"]
CHARS = ["abcab", "bca", "cab", "abc", "aab"]


def counts_of(corpus, order=3):
    vocab_model = NGramModel(order=order, smoothing="mle").fit(corpus)
    ids = [vocab_model.vocab_.encode(list(s)) for s in corpus]
    return NGramCounts.from_sequences(ids, order, len(vocab_model.vocab_))


def settings_of(name):
    return {"absolute": {"discount": 0.3}, "kneser-ney": {"discount": 0.6}, "add-k": {"k": 0.5},
            "modified-kneser-ney": {"discount": (0.5, 1.0, 1.5)}, "stupid-backoff": {"alpha": 0.7}}.get(name, {})


# --- strategies are values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMOOTHINGS)
def test_a_strategy_is_frozen_and_estimating_leaves_it_as_it_was(name):
    strategy = make_smoothing(name, **settings_of(name))
    before = dict(vars(strategy))
    counts = counts_of(CHARS)
    first = strategy.estimate(counts)
    assert vars(strategy) == before  # nothing stashed (the old Kneser-Ney kept self._adjusted)
    with pytest.raises(dataclasses.FrozenInstanceError):
        strategy.k = 2.0
    again = strategy.estimate(counts)
    for a, b in zip(first.prob + first.bow, again.prob + again.bow):
        assert np.array_equal(a, b)


def test_one_strategy_does_not_leak_into_another():
    counts, other = counts_of(CHARS), counts_of(["ccc", "cab"])
    kn = make_smoothing("kneser-ney")
    alone = kn.estimate(counts)
    kn.estimate(other)  # a second fit with the same strategy object
    assert all(np.array_equal(a, b) for a, b in zip(alone.prob, kn.estimate(counts).prob))


def test_backoff_form_is_the_one_recursion_a_strategy_gives_only_weights():
    @dataclasses.dataclass(frozen=True)
    class Uniform:  # u = 0 and gamma = 1 everywhere: every row is eq. (3)'s uniform 1 / V'
        name = "uniform"
        interpolated, adjusted, normalized, records_discounts = True, False, True, False

        def weights(self, counts, c, n):
            size = 1 if n == 1 else len(counts.keys[n - 2])
            return np.zeros(len(c)), np.ones(size), None

    counts = counts_of(CHARS)
    est = backoff_form(Uniform(), counts)
    V = counts.vocab_size
    for n, p in enumerate(est.prob, start=1):
        expected = np.full(len(p), 1.0 / (V - 1))
        if n == 1:
            expected[Vocabulary.bos_id] = 0.0  # <s> is never predicted
        assert np.allclose(p, expected)
    # Witten-Bell through the same recursion equals its own estimate
    wb = make_smoothing("witten-bell")
    assert all(np.array_equal(a, b) for a, b in zip(backoff_form(wb, counts).prob, wb.estimate(counts).prob))


# --- validators are pure --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMOOTHINGS)
def test_check_params_builds_no_strategy(name, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a validator built a strategy")

    monkeypatch.setattr(smoothing_module, "make_smoothing", refuse)  # model.py imports it from there when fitting
    model = NGramModel(order=2, smoothing=name, **settings_of(name))
    before = dict(vars(model))
    model._check_params()
    assert vars(model) == before


@pytest.mark.parametrize("params,problem", [
    ({"smoothing": "stupid-backoff", "alpha": 1.5}, "alpha must be in"),
    ({"smoothing": "stupid-backoff", "alpha": 0.0}, "alpha must be in"),
    ({"smoothing": "stupid-backoff", "discount": 2.0}, "alpha must be in"),
    ({"smoothing": "stupid-backoff", "alpha": 0.5, "discount": 0.7}, "give alpha alone"),
    ({"smoothing": "kneser-ney", "discount": 1.0}, "Kneser-Ney discount"),
    ({"smoothing": "add-k", "k": float("nan")}, "k must be"),
])
def test_bad_settings_are_named(params, problem):
    with pytest.raises(ScratchgenError, match=problem):
        NGramModel(order=2, **params)._check_params()


# --- alpha is stupid backoff's own setting -----------------------------------------------------------------------


def test_alpha_is_stupid_backoffs_factor():
    m = NGramModel(order=2, smoothing="stupid-backoff", alpha=0.7).fit(["ab", "a"])
    # "ba": P(b|<s>) unseen -> 0.7 * S(b), S(b) = (1+1)/(5+4); S(a|b) unseen -> 0.7 (3/9); S(</s>|a) = 1/2
    assert m.logprob("ba") == pytest.approx(math.log(0.7 * 2 / 9 * 0.7 * 3 / 9 * 0.5))
    assert NGramModel(order=2, smoothing="stupid-backoff").fit(["ab", "a"]).logprob("ba") == pytest.approx(
        math.log(0.4 * 2 / 9 * 0.4 * 3 / 9 * 0.5))


def test_discount_as_stupid_backoffs_factor_still_works_but_warns():
    new = NGramModel(order=3, smoothing="stupid-backoff", alpha=0.7).fit(WORDS)
    with pytest.warns(DeprecationWarning, match="alpha=0.7"):
        old = NGramModel(order=3, smoothing="stupid-backoff", discount=0.7).fit(WORDS)
    for a, b in zip(new.logp_ + new.bow_, old.logp_ + old.bow_):
        assert np.array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # alpha itself warns about nothing
        NGramModel(order=3, smoothing="stupid-backoff", alpha=0.7).fit(WORDS)


def test_a_file_of_the_old_layout_loads_and_scores_the_same(tmp_path):
    model = NGramModel(order=3, smoothing="stupid-backoff", alpha=0.7, tokenizer=Tokenizer("word")).fit(WORDS)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    header = json.loads(content["__header__"].tobytes())
    assert header["params"]["alpha"] == 0.7  # new files carry alpha
    del header["params"]["alpha"]  # the layout before alpha: the factor as discount
    header["params"]["discount"] = 0.7
    content["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an old file is not the user's mistake: no warning
        loaded = load(path)
    assert loaded.alpha == 0.7 and loaded.discount is None
    for text in ("the cat sat on the mat", "a dog sat on a cat", "zebra"):
        assert loaded.logprob(text) == model.logprob(text)
    loaded.save(tmp_path / "again.npz")
    assert load(tmp_path / "again.npz").get_params() == model.get_params()


# --- the command line -------------------------------------------------------------------------------------------




@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


def test_cli_alpha_and_its_deprecated_spelling(tmp_path, capsys, corpus):
    base = ["train", "ngram", corpus, "--level", "word", "--smoothing", "stupid-backoff"]
    code, _, err = run(base + ["--alpha", "0.7", "-o", tmp_path / "a.npz"], capsys)
    assert code == 0 and "warning" not in err
    code, _, err = run(base + ["--discount", "0.7", "-o", tmp_path / "d.npz"], capsys)
    assert code == 0
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "deprecated" in warning[0] and "--alpha 0.7" in warning[0]
    a, d = load(tmp_path / "a.npz"), load(tmp_path / "d.npz")
    assert a.alpha == d.alpha == 0.7 and d.discount is None
    assert a.logprob("the cat sat") == d.logprob("the cat sat") == NGramModel(
        order=3, smoothing="stupid-backoff", alpha=0.7, tokenizer=Tokenizer("word")).fit(WORDS).logprob("the cat sat")


@pytest.mark.parametrize("options,words", [
    (["--smoothing", "stupid-backoff", "--alpha", "1.5"], "--alpha"),
    (["--smoothing", "stupid-backoff", "--alpha", "0"], "--alpha"),
    (["--smoothing", "kneser-ney", "--alpha", "0.5"], "--alpha"),
    (["--smoothing", "stupid-backoff", "--alpha", "0.5", "--discount", "0.7"], "--alpha"),
    (["--smoothing", "stupid-backoff", "--discount", "1.5"], "--alpha"),
])
def test_cli_bad_alpha_is_a_usage_error(tmp_path, capsys, corpus, options, words):
    code, _, err = run(["train", "ngram", corpus, "-o", tmp_path / "m.npz", *options], capsys)
    assert code == 2 and words in err and err.count("\n") == 1
    assert not (tmp_path / "m.npz").exists()


def test_cli_no_escape_note_is_a_one_line_warning(tmp_path, capsys, corpus):
    code, _, _ = run(["train", "ngram", corpus, "-o", tmp_path / "m.npz"], capsys)
    assert code == 0
    code, _, err = run(["export-arpa", tmp_path / "m.npz", tmp_path / "m.arpa", "--no-escape"], capsys)
    assert code == 0 and "scratchgen: warning: --no-escape is deprecated" in err
    args = build_parser().parse_args(["export-arpa", str(tmp_path / "m.npz"), str(tmp_path / "n.arpa"), "--no-escape"])
    with pytest.warns(FutureWarning, match="--no-escape"):
        args.func(args)
