"""Evaluating a labelled model (scratchgen.evaluation.labels): classification report, per-label
cross-entropy against the unlabelled twin, label fidelity, and their place in evaluate()'s report."""

from __future__ import annotations

import numpy as np
import pytest

from scratchgen import LabelError, UniformModel, UnigramModel
from scratchgen.errors import ScratchgenError
from scratchgen.evaluation import evaluate, evaluate_labels
from scratchgen.evaluation.labels import classification_report, confusion_counts, unlabelled_twin


def _disjoint(n=60, seed=0):
    """Label "a" writes with a, b, c; label "z" with x, y, z (character level)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = "a" if i % 2 else "z"
        texts.append("".join(rng.choice(list("abc" if label == "a" else "xyz"), size=rng.integers(3, 9))))
        labels.append(label)
    return texts, labels


def test_confusion_and_report_worked_example():
    names = ("a", "b", "c")
    true = ["a", "a", "b", "c", "c", "c"]
    pred = ["a", "b", "b", "c", "a", "c"]
    assert confusion_counts(names, true, pred).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    r = classification_report(names, true, pred)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_label"]["c"] == {"examples": 3, "correct": 2, "predicted": 2, "accuracy": 2 / 3}
    assert r["per_label"]["b"]["predicted"] == 2
    with pytest.raises(LabelError, match="'d' is not one of a, b, c"):
        confusion_counts(names, ["d"], ["a"])


def test_per_label_cross_entropy_is_the_models_score_and_the_twins():
    texts, labels = _disjoint()
    model = UnigramModel(k=0.5).fit(texts, labels=labels)
    twin = unlabelled_twin(model, model.tokenize_corpus(texts))
    assert type(twin) is UnigramModel and twin.labels_ is None and twin.get_params() == model.get_params()
    plain = UnigramModel(k=0.5).fit(texts)
    np.testing.assert_array_equal(twin.logprobs_, plain.logprobs_)
    held_texts, held_labels = _disjoint(20, seed=1)
    r = evaluate_labels(model, texts, labels, held_texts, held_labels, fidelity=False)
    assert r.data == "heldout" and r.fidelity is None
    for name in ("a", "z"):
        mine = [t for t, c in zip(held_texts, held_labels) if c == name]
        ce = r.cross_entropy[name]
        assert ce["examples"] == len(mine)
        assert ce["labelled_nats"] == pytest.approx(model.score(mine, labels=name).cross_entropy_nats)
        assert ce["unlabelled_nats"] == pytest.approx(plain.score(mine).cross_entropy_nats)
        assert ce["gain_nats"] > 0.3  # three letters of six: knowing the label halves the alphabet (ln 2 at best)
    assert r.classification["accuracy"] == 1.0


def test_fidelity_is_high_for_a_model_that_follows_its_labels_and_not_for_one_that_cannot():
    texts, labels = _disjoint(120)
    good = evaluate_labels(UnigramModel(k=0.1).fit(texts, labels=labels), texts, labels, samples_per_label=60,
                           max_tokens=20)
    assert good.discriminator_accuracy is not None and good.discriminator_accuracy > 0.95
    assert min(good.fidelity.values()) > 0.9
    # The uniform model has one row for every label: its samples of "a" and of "z" come from the same
    # distribution, so the discriminator's verdicts on both split alike and the two fidelities sum to about 1.
    blind = evaluate_labels(UniformModel().fit(texts, labels=labels), texts, labels, samples_per_label=100,
                            max_tokens=20)
    assert abs(sum(blind.fidelity.values()) - 1.0) < 0.25
    assert max(blind.fidelity.values()) < 0.9


def test_the_same_seed_gives_the_same_evaluation():
    texts, labels = _disjoint()
    model = UnigramModel().fit(texts, labels=labels)
    a = evaluate_labels(model, texts, labels, samples_per_label=20, seed=4, max_tokens=12)
    b = evaluate_labels(model, texts, labels, samples_per_label=20, seed=4, max_tokens=12)
    assert a.to_dict() == b.to_dict()


def test_bad_arguments_are_one_line_errors():
    texts, labels = _disjoint(10)
    model = UnigramModel().fit(texts, labels=labels)
    with pytest.raises(LabelError, match="has no labels"):
        evaluate_labels(UnigramModel().fit(texts), texts, labels)
    with pytest.raises(LabelError, match="unknown label 'q'"):
        evaluate_labels(model, texts, ["q"] + labels[1:])
    with pytest.raises(LabelError, match="9 labels for 10 training texts"):
        evaluate_labels(model, texts, labels[1:])
    with pytest.raises(LabelError, match="needs its labels"):
        evaluate_labels(model, texts, labels, heldout=texts)
    with pytest.raises(ScratchgenError, match="samples_per_label"):
        evaluate_labels(model, texts, labels, samples_per_label=0)


def test_evaluate_adds_the_per_label_figures_only_when_labels_are_given():
    texts, labels = _disjoint(40)
    model = UnigramModel().fit(texts, labels=labels)
    plain = evaluate(model, texts, n=10, seed=0, max_tokens=12)
    assert plain.labels is None and "labels" not in plain.to_dict()
    full = evaluate(model, texts, n=10, seed=0, max_tokens=12, labels=labels, heldout=texts, heldout_labels=labels)
    d = full.to_dict()
    assert d["labels"]["labels"] == ["a", "z"] and d["labels"]["samples_per_label"] == 10
    assert set(d["labels"]["fidelity"]) == {"a", "z"}
    assert "fidelity" in full.summary() and "marginal" in full.summary()  # the held-out score is of P(x)
    assert d["labels"]["data"] == "heldout"
    quick = evaluate(model, texts, n=10, seed=0, max_tokens=12, labels=labels, discriminator=False)
    assert quick.labels.fidelity is None and quick.discriminator_accuracy is None
