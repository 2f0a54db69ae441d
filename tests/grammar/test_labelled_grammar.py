"""A labelled GrammarModel: each label a start symbol with its own rule weights (eq. (3) of grammar/model.py).

The reference for every labelled figure is the unlabelled model of one label: the grammar with start
symbol c, fitted on label c's sentences alone, and the textbook inside probability of grammar/reference.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import scratchgen
from scratchgen import decoding
from scratchgen.errors import LabelError, ModelFileError
from scratchgen.grammar import GrammarModel, builtin, reference
from scratchgen.grammar.labelled import label_grammar, prior_counts, sample_labelled, start_labels
from scratchgen.grammar.rules import parse_grammar

# Two labels over shared rules: 'x' is in both, 'y' only in pos, 'z' only in neg; N is recursive.
TOY = """
S   -> pos [0.6] | neg [0.4]
pos -> N 'y' [0.7] | N [0.3]
neg -> N 'z' [0.5] | N N [0.5]
N   -> 'x' [0.6] | 'x' N [0.3] | 'y' [0.1]
"""


@pytest.fixture(scope="module")
def toy_data():
    g = parse_grammar(TOY)
    labels, sentences = sample_labelled(g, 120, seed=0)
    test_labels, test_sentences = sample_labelled(g, 40, seed=1)
    return g, labels, sentences, test_labels, test_sentences


PARAMS = {"iterations": 4, "prior_weight": 0.5, "smoothing": 0.01}


@pytest.fixture(scope="module")
def toy_model(toy_data):
    g, labels, sentences, _, _ = toy_data
    return GrammarModel(grammar=TOY, **PARAMS).fit(sentences, labels=labels)


def test_each_label_is_the_unlabelled_model_of_its_sentences(toy_data, toy_model):
    """log P(x | c) equals an unlabelled model with start symbol c fitted on c's sentences alone, and the
    textbook inside probability of that model's grammar."""
    g, labels, sentences, test_labels, test_sentences = toy_data
    assert toy_model.labels_.names == ("neg", "pos")
    for c in toy_model.labels_.names:
        own = [x for x, k in zip(sentences, labels) if k == c]
        alone = GrammarModel(grammar=label_grammar(g, c), **PARAMS).fit(own)
        assert [r.prob for r in alone.grammar_.rules] == pytest.approx(
            [r.prob for r in toy_model.label_models_[toy_model.labels_.id(c)].grammar_.rules], abs=1e-12
        )
        for x in test_sentences:
            ours, theirs = toy_model.logprob(x, label=c), alone.logprob(x)
            textbook = reference.inside_logprob(alone.grammar_, x)
            assert ours == pytest.approx(theirs, abs=1e-10) and ours == pytest.approx(textbook, abs=1e-10)


def test_em_learns_different_weights_per_label_and_raises_each_likelihood(toy_data):
    g, labels, sentences, _, _ = toy_data
    model = GrammarModel(grammar=TOY, iterations=6).fit(sentences, labels=labels)
    n_rules = {c: [r.prob for r in m.grammar_.rules] for c, m in zip(model.labels_.names, model.label_models_)}
    assert n_rules["pos"] != n_rules["neg"]  # N is shared by both start symbols but learned apart
    for m in model.label_models_:
        assert np.all(np.diff(m.log_likelihoods_) >= -1e-9)  # Baum's inequality, per label
    # The model's curve adds up the labels' curves.
    last = sum(m.log_likelihoods_[-1] for m in model.label_models_)
    assert model.log_likelihoods_[-1] == pytest.approx(last)


def test_prior_weight_keeps_unseen_rules_possible():
    """A label whose sentences never use N -> 'y' keeps a share of the grammar's weight with prior_weight > 0."""
    sentences, labels = [["x"], ["x", "z"]], ["pos", "neg"]  # pos -> N -> 'x': N -> 'y' is never used by pos
    ml = GrammarModel(grammar=TOY, iterations=3).fit(sentences, labels=labels)
    assert ml.logprob(["y"], label="pos") == -math.inf
    smoothed = GrammarModel(grammar=TOY, iterations=3, prior_weight=2.0).fit(sentences, labels=labels)
    # eq. (1'): p(pos -> N) = (1 + 2 * 0.3) / (1 + 2), p(N -> 'y') = (0 + 2 * 0.1) / (1 + 2)
    assert smoothed.logprob(["y"], label="pos") == pytest.approx(math.log(1.6 / 3 * 0.2 / 3))


def test_marginal_is_the_mixture_and_the_grammar_itself():
    """from_grammar with the start rules' prior: sum_c P(c) P(x | c) = P_G(S =>* x) (eq. (2) of labelled.py)."""
    g = builtin("labelled")
    model = GrammarModel.from_grammar(g, labels=prior_counts(start_labels(g)))
    whole = GrammarModel.from_grammar(g)
    _, sentences = sample_labelled(g, 30, seed=5)
    for x in sentences:
        mixture = np.logaddexp.reduce([math.log(p) + model.logprob(x, label=c) for c, p in start_labels(g).items()])
        assert model.logprob(x) == pytest.approx(mixture, abs=1e-10)
        assert model.logprob(x) == pytest.approx(whole.logprob(x), abs=1e-10)
    s = model.score(sentences)
    assert s.logprob == pytest.approx(sum(whole.logprob(x) for x in sentences), abs=1e-8)


def test_stepping_normalises_per_label_and_telescopes_to_the_chart(toy_data, toy_model):
    _, _, _, test_labels, test_sentences = toy_data
    vocab = toy_model.vocab_
    ids = [vocab.encode(x) for x in test_sentences[:12]]
    labels = test_labels[:12]
    per_token = toy_model.token_logprobs(ids, labels=labels)
    for lp, x, c in zip(per_token, test_sentences, labels):
        assert lp.sum() == pytest.approx(toy_model.logprob(x, label=c), abs=1e-9)
    marginal = toy_model.token_logprobs(ids)
    for lp, x in zip(marginal, test_sentences):
        assert lp.sum() == pytest.approx(toy_model.logprob(x), abs=1e-9)
    # Every row of every step sums to 1, whatever its label; rows of different labels batch together.
    state = toy_model.initial_state(4, labels=np.array([0, 1, 1, 0]))
    rng = np.random.default_rng(0)
    for _ in range(5):
        logp = toy_model.next_logprobs(state)  # (4, V)
        assert np.exp(logp).sum(axis=1) == pytest.approx(np.ones(4), abs=1e-12)
        probs = np.exp(logp[:, 1:]) / np.exp(logp[:, 1:]).sum(axis=1, keepdims=True)
        nxt = np.array([1 + rng.choice(len(p), p=p) for p in probs])
        nxt[nxt == vocab.eos_id] = vocab.index("x")  # keep stepping: no row ends here
        state = toy_model.advance(state, nxt)


def test_take_state_reorders_rows_of_mixed_labels(toy_model):
    vocab = toy_model.vocab_
    state = toy_model.initial_state(3, labels=np.array([1, 0, 1]))
    state = toy_model.advance(state, np.array([vocab.index("x")] * 3))
    state = toy_model.advance(state, vocab.encode(["x", "y", "y"]))
    before = toy_model.next_logprobs(state)
    rows = np.array([2, 1, 1, 0, 2])
    after = toy_model.next_logprobs(toy_model.take_state(state, rows))
    np.testing.assert_allclose(after, before[rows], atol=1e-12)
    # Keeping only rows of one label leaves the other label's model nothing to step.
    one = toy_model.take_state(state, np.array([2, 0]))
    np.testing.assert_allclose(toy_model.next_logprobs(one), before[[2, 0]], atol=1e-12)
    one = toy_model.advance(one, vocab.encode(["x", "x"]))
    assert np.exp(toy_model.next_logprobs(one)).sum(axis=1) == pytest.approx([1.0, 1.0])


def test_generation_through_the_decoder_stays_in_the_label(toy_model):
    for c in toy_model.labels_.names:
        for x in decoding.generate(toy_model, 8, label=c, seed=3, max_tokens=30):
            assert toy_model.logprob(x, label=c) > -math.inf
        (best, score), *_ = decoding.beam_search(toy_model, 3, label=c)
        assert score == pytest.approx(toy_model.logprob(best, label=c), abs=1e-9)


def test_top_down_sample_per_label_and_from_the_prior(toy_model):
    for c in toy_model.labels_.names:
        xs = toy_model.sample(20, seed=1, label=c)
        assert xs == toy_model.sample(20, seed=1, label=c)
        assert all(toy_model.logprob(x, label=c) > -math.inf for x in xs)
    mixed = toy_model.sample(30, seed=2)
    assert mixed == toy_model.sample(30, seed=2) and all(toy_model.logprob(x) > -math.inf for x in mixed)


def test_save_load_round_trip(tmp_path, toy_data, toy_model):
    *_, test_labels, test_sentences = toy_data
    path = tmp_path / "labelled.npz"
    toy_model.save(path)
    loaded = scratchgen.load(path)
    assert loaded.labels_ == toy_model.labels_ and loaded.log_likelihoods_ == toy_model.log_likelihoods_
    for x in test_sentences[:10]:
        for c in toy_model.labels_.names:
            assert loaded.logprob(x, label=c) == toy_model.logprob(x, label=c)
        assert loaded.logprob(x) == toy_model.logprob(x)
    assert loaded.sample(5, seed=0, label="pos") == toy_model.sample(5, seed=0, label="pos")
    assert loaded.classify(test_sentences).labels == toy_model.classify(test_sentences).labels


def test_a_file_whose_label_weights_do_not_sum_to_one_is_refused(tmp_path, toy_model):
    path, bad = tmp_path / "m.npz", tmp_path / "bad.npz"
    toy_model.save(path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["label_probs"] = arrays["label_probs"] * 0.5  # every rule halved: no left-hand side sums to 1
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match="do not sum to 1"):
        scratchgen.load(bad)


def test_classify_uses_the_prior_and_the_labels(toy_data, toy_model):
    *_, test_labels, test_sentences = toy_data
    result = toy_model.classify(test_sentences)
    assert result.posterior.sum(axis=1) == pytest.approx(np.ones(len(test_sentences)))
    expected = np.array([[toy_model.logprob(x, label=c) for c in result.names] for x in test_sentences])
    np.testing.assert_allclose(result.logprob, expected, atol=1e-10)
    # 'y' at the end only comes from pos, 'z' only from neg.
    assert toy_model.classify([["x", "z"]]).labels == ["neg"]


def test_label_errors(toy_data, toy_model):
    g, labels, sentences, *_ = toy_data
    with pytest.raises(LabelError, match="label 'zoo' names no nonterminal.*'pos', 'neg'"):
        GrammarModel(grammar=TOY).fit(sentences, labels=["zoo"] + labels[1:])
    with pytest.raises(LabelError, match="unknown label 'zoo'.*'neg', 'pos'"):
        toy_model.logprob(["x"], label="zoo")
    with pytest.raises(LabelError, match="needs a label"):
        toy_model.initial_state(2)
    with pytest.raises(LabelError, match="needs a label|give one of"):
        toy_model.sampler()
    with pytest.raises(LabelError, match="has no labels"):
        GrammarModel.from_grammar(TOY).logprob(["x"], label="pos")
    with pytest.raises(LabelError, match="not one str"):
        GrammarModel.from_grammar(TOY, labels="pos")
    with pytest.raises(LabelError, match="labels for"):
        GrammarModel(grammar=TOY).fit(sentences, labels=labels[:-1])
    with pytest.raises(LabelError, match="its nonterminals are 'S'"):  # a grammar that is not labelled
        GrammarModel.from_grammar("S -> 'a'", labels=["T"])


def test_train_grammar_labelled_on_the_command_line(tmp_path, capsys):
    from scratchgen.cli import main
    from scratchgen.datasets import labelled_corpus, write_labelled_corpus

    corpus, model_path = tmp_path / "train.tsv", tmp_path / "m.npz"
    write_labelled_corpus(corpus, *labelled_corpus(150, seed=0))
    argv = ["train", "grammar", "builtin:labelled", str(corpus), "--labelled", "-o", str(model_path), "--quiet"]
    assert main(argv + ["--iterations", "1"]) == 0
    model = scratchgen.load(model_path)
    assert model.labels_.names == ("animals", "farm", "royalty") and len(model.label_models_) == 3
    capsys.readouterr()
    # The English grammar has no start symbol named after these labels: one line that lists its nonterminals.
    code = main(["train", "grammar", "builtin:english", str(corpus), "--labelled", "-o", str(tmp_path / "e.npz")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "label 'animals' names no nonterminal" in err and "'NP_SG'" in err
