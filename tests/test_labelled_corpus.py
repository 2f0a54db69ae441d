"""The shipped labelled corpus (scratchgen.datasets): deterministic, in its grammar, and with known Bayes figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from scratchgen.cli import main
from scratchgen.datasets import (
    HELD_OUT,
    LABELLED_GRAMMAR,
    TRAIN,
    bayes_optimal,
    labelled_corpus,
    standard_split,
    true_model,
    write_labelled_corpus,
)
from scratchgen.errors import GrammarError, LabelError
from scratchgen.grammar import GrammarModel, builtin, reference
from scratchgen.grammar.analysis import analyze
from scratchgen.grammar.chart import ChartParser
from scratchgen.grammar.labelled import label_grammar, start_labels
from scratchgen.text import Tokenizer, read_corpus


def run(argv, capsys):
    """(exit code, stdout, stderr) of the command line run in-process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_the_labelled_grammar_is_consistent_and_labelled():
    g = builtin("labelled")
    report = analyze(g)
    assert not report.errors and not report.warnings
    prior = start_labels(g)
    assert sorted(prior) == ["animals", "farm", "royalty"] and sum(prior.values()) == pytest.approx(1.0)


def test_same_seed_same_corpus():
    assert labelled_corpus(60, seed=3) == labelled_corpus(60, seed=3)
    assert labelled_corpus(60, seed=3) != labelled_corpus(60, seed=4)
    labels, texts = labelled_corpus(60, seed=3)
    assert len(labels) == len(texts) == 60 and all("\t" not in t and "\n" not in t for t in texts)


def test_every_example_parses_under_its_own_start_symbol():
    """Positive inside probability under the label's start symbol, by a parser built apart from the model."""
    g = builtin("labelled")
    parsers = {c: ChartParser(label_grammar(g, c)) for c in start_labels(g)}
    tokenizer = Tokenizer(level="word")
    labels, texts = labelled_corpus(300, seed=0)
    for c, text in zip(labels, texts):
        tokens = tokenizer.tokenize(text)
        assert tokenizer.detokenize(tokens) == text
        assert parsers[c].logprob(tokens) > -math.inf
    for c, text in list(zip(labels, texts))[:5]:  # and the textbook agrees
        tokens = tokenizer.tokenize(text)
        assert parsers[c].logprob(tokens) == pytest.approx(reference.inside_logprob(label_grammar(g, c), tokens))


def test_label_frequencies_follow_the_prior():
    """Chi-square goodness of fit of the label counts to p(S -> c), 2 degrees of freedom, at the 0.001 level."""
    prior = start_labels(builtin("labelled"))
    labels, _ = labelled_corpus(*TRAIN)
    n = len(labels)
    chi2 = sum((labels.count(c) - n * p) ** 2 / (n * p) for c, p in prior.items())
    assert chi2 < 13.82


def test_the_command_line_writes_the_same_corpus(tmp_path, capsys):
    path = tmp_path / "train.tsv"
    code, _, err = run(["grammar", "sample", LABELLED_GRAMMAR, "--labelled", "-n", 200, "--seed", 0, "-o", path],
                       capsys)
    assert code == 0, err
    labels, texts = labelled_corpus(200, seed=0)
    assert path.read_text(encoding="utf-8") == "".join(f"{c}\t{t}\n" for c, t in zip(labels, texts))
    read_labels, sequences = read_corpus(path, Tokenizer(level="word"), labelled=True)
    assert read_labels == labels and len(sequences) == 200
    written = tmp_path / "written.tsv"  # the library's writer gives the same file
    write_labelled_corpus(written, labels, texts)
    assert written.read_bytes() == path.read_bytes()


def test_standard_split_is_the_two_named_samples():
    (train_labels, train_texts), (test_labels, test_texts) = standard_split()
    assert (train_labels, train_texts) == labelled_corpus(*TRAIN) and len(train_texts) == TRAIN[0]
    assert (test_labels, test_texts) == labelled_corpus(*HELD_OUT) and len(test_texts) == HELD_OUT[0]


def test_sample_labelled_refuses_a_grammar_that_is_not_labelled(capsys):
    code, _, err = run(["grammar", "sample", "builtin:english", "--labelled", "-n", 2], capsys)
    assert code == 1 and "not labelled" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(GrammarError, match="not labelled"):
        labelled_corpus(3, grammar="builtin:english")


def test_bayes_figures_are_those_of_the_true_model():
    labels, texts = labelled_corpus(400, seed=7)
    figures = bayes_optimal(labels, texts)
    model = true_model()
    result = model.classify(texts)
    assert figures.accuracy == pytest.approx(np.mean(np.array(result.labels) == np.array(labels)))
    assert figures.expected_accuracy == pytest.approx(result.posterior.max(axis=1).mean())
    # The labels overlap a little: the best classifier errs, but rarely.
    assert 0.0 < 1.0 - figures.expected_accuracy < 0.1
    score = model.score(texts, labels=labels)
    assert figures.cross_entropy == pytest.approx(score.cross_entropy_nats)
    for c, row in figures.per_label.items():
        own = [t for t, k in zip(texts, labels) if k == c]
        assert row["count"] == len(own)
        assert row["cross_entropy"] == pytest.approx(model.score(own, labels=c).cross_entropy_nats)
    with pytest.raises(LabelError, match="unknown label 'zoo'"):
        bayes_optimal(["zoo"], texts[:1])


def test_score_labelled_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "test.tsv"
    labels, texts = labelled_corpus(100, seed=2)
    write_labelled_corpus(path, labels, texts)
    code, out, err = run(["grammar", "score", LABELLED_GRAMMAR, path, "--labelled", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    figures = bayes_optimal(labels, texts)
    assert result["bayes"]["accuracy"] == pytest.approx(figures.accuracy)
    assert result["cross_entropy_nats"] == pytest.approx(figures.cross_entropy)


def test_a_model_trained_on_the_shipped_corpus_classifies_near_the_bayes_optimum(tmp_path, capsys):
    """train grammar --labelled on the first half of the standard training sample; classify the held-out one."""
    train = tmp_path / "train.tsv"
    write_labelled_corpus(train, *labelled_corpus(TRAIN[0] // 2, TRAIN[1]))
    model_path = tmp_path / "m.npz"
    argv = ["train", "grammar", LABELLED_GRAMMAR, train, "--labelled", "-o", model_path, "--quiet"]
    code, _, err = run(argv + ["--iterations", 2, "--prior-weight", 1], capsys)
    assert code == 0, err
    from scratchgen import load

    model = load(model_path)
    assert isinstance(model, GrammarModel) and model.labels_.names == ("animals", "farm", "royalty")
    labels, texts = labelled_corpus(*HELD_OUT)
    accuracy = np.mean(np.array(model.classify(texts).labels) == np.array(labels))
    bayes = bayes_optimal(labels, texts).accuracy
    assert accuracy >= bayes - 0.02
    # A learned model of P(x | c) may come close to the truth on held-out data, not far below it.
    truth = bayes_optimal(labels, texts).cross_entropy
    assert truth - 0.02 < model.score(texts, labels=labels).cross_entropy_nats < truth + 0.1
