"""The laws of a labelled model P(x | c) (issue 11, section 1), written once, run over every labelled case.

The cases come from ``tests/cases_labelled.py`` (a function a family). Each law is one test; a case
exempt from a law (with its reason) must really break it, so an exemption cannot hide a fix. The
reading of labelled corpora and the label set itself are tested here too: they are the same for
every family.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from cases_labelled import LABELLED_CASES
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchgen
from scratchgen import LabelError, LabelSet, Vocabulary
from scratchgen.errors import ScratchgenError
from scratchgen.labels import label_ids
from scratchgen.model import LanguageModel
from scratchgen.text import Tokenizer, read_corpus

IDS = [c.id for c in LABELLED_CASES]
_FITTED: dict[str, object] = {}


def fitted(case):
    """Each case's model on its own corpus, fitted once per session."""
    if case.id not in _FITTED:
        _FITTED[case.id] = case.make()
    return _FITTED[case.id]


def encoded(model, texts):
    return [model.fitted_vocab().encode(model.tokenize(t)) for t in texts]


def prefixes(model, rng, n=8, length=5):
    """Random id prefixes (never <s> or </s>): seen contexts, unseen ones and <unk>."""
    V = len(model.vocab_)
    choices = np.array([i for i in range(V) if i not in (Vocabulary.bos_id, Vocabulary.eos_id)])
    return rng.choice(choices, size=(n, length))  # (n, length)


# --- the laws ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_every_label_next_token_rows_sum_to_one(case):
    model = fitted(case)
    ids = prefixes(model, np.random.default_rng(0))
    for c in range(len(model.labels_)):
        state = model.initial_state(len(ids), labels=np.full(len(ids), c))
        for t in range(ids.shape[1] + 1):
            rows = model.next_logprobs(state)  # (n, V)
            assert rows.shape == (len(ids), len(model.vocab_))
            np.testing.assert_allclose(np.exp(rows).sum(axis=1), 1.0, atol=1e-9)
            assert np.all(rows[:, Vocabulary.bos_id] == -np.inf), "<s> must never be emitted"
            if t < ids.shape[1]:
                state = model.advance(state, ids[:, t])


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_a_labelled_model_needs_label_ids_to_start(case):
    with pytest.raises(LabelError):
        fitted(case).initial_state(2)


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_token_logprobs_with_labels_equal_the_stepping_default(case):
    model = fitted(case)
    sequences = encoded(model, case.scored)
    C = len(model.labels_)
    labels = np.arange(len(sequences)) % C  # (n,) a mix of labels in one call
    fast = model._token_logprobs(sequences, labels)
    slow = LanguageModel._token_logprobs(model, sequences, labels)
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(f, s, rtol=1e-10, atol=1e-10)
    # and the public method with label names gives the same
    public = model.token_logprobs(sequences, labels=[model.labels_.names[c] for c in labels])
    for f, p in zip(fast, public):
        np.testing.assert_array_equal(f, p)


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_the_marginal_is_the_prior_weighted_sum_over_labels(case):
    model = fitted(case)
    prior = model.labels_.log_prior
    for text in case.scored:
        per_label = np.array([model.logprob(text, label=c) for c in model.labels_.names])  # (C,)
        expected = float(np.logaddexp.reduce(per_label + prior))
        assert model.logprob(text) == pytest.approx(expected, rel=1e-10, abs=1e-10)
        # per token: the marginal's token log-probabilities sum to the same
        ids = encoded(model, [text])
        assert float(model.token_logprobs(ids)[0].sum()) == pytest.approx(expected, rel=1e-10, abs=1e-10)
    score = model.score(case.scored)
    assert score.logprob == pytest.approx(sum(model.logprob(t) for t in case.scored), rel=1e-10)


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_classify_is_bayes_rule(case):
    model = fitted(case)
    result = model.classify(case.scored)
    names = model.labels_.names
    assert result.names == names
    assert result.posterior.shape == (len(case.scored), len(names))
    np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0, atol=1e-12)
    for i, text in enumerate(case.scored):
        joint = np.array([model.logprob(text, label=c) for c in names]) + model.labels_.log_prior  # (C,)
        np.testing.assert_allclose(result.logprob[i], joint - model.labels_.log_prior, rtol=1e-10, atol=1e-10)
        if np.isfinite(joint).any():
            np.testing.assert_allclose(result.posterior[i], np.exp(joint - np.logaddexp.reduce(joint)), atol=1e-12)
            assert result.labels[i] == names[int(np.argmax(joint))]
        else:  # no label can generate it: the posterior is the prior
            np.testing.assert_allclose(result.posterior[i], np.exp(model.labels_.log_prior), atol=1e-12)
            assert result.labels[i] == names[int(np.argmax(model.labels_.log_prior))]


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_save_load_keeps_labels_prior_and_scores_bit_for_bit(case, tmp_path):
    model = fitted(case)
    model.save(tmp_path / "m.npz")
    loaded = scratchgen.load(tmp_path / "m.npz")
    assert loaded.labels_ == model.labels_
    np.testing.assert_array_equal(loaded.labels_.log_prior, model.labels_.log_prior)
    for c in model.labels_.names:
        assert [loaded.logprob(t, label=c) for t in case.scored] == [model.logprob(t, label=c) for t in case.scored]
    assert [loaded.logprob(t) for t in case.scored] == [model.logprob(t) for t in case.scored]
    a, b = model.classify(case.scored), loaded.classify(case.scored)
    assert a.labels == b.labels and np.array_equal(a.posterior, b.posterior)
    for c in model.labels_.names:
        assert loaded.generate(4, seed=3, label=c, max_tokens=15) == model.generate(4, seed=3, label=c, max_tokens=15)


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_same_seed_same_samples_with_a_label(case):
    model = fitted(case)
    for c in model.labels_.names:
        first = model.generate(6, seed=11, label=c, max_tokens=20)
        assert model.generate(6, seed=11, label=c, max_tokens=20) == first
        assert model.generate(6, seed=np.random.default_rng(11), label=c, max_tokens=20) == first
    # without a label the label of each sequence is drawn from the prior, from the same seed too
    assert model.generate(6, seed=5, max_tokens=20) == model.generate(6, seed=5, max_tokens=20)


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_generate_with_a_label_reports_log_p_given_that_label(case):
    """The decoder's log-probability of each finished sample is log P(x | c) of the label asked for."""
    model = fitted(case)
    for c in model.labels_.names:
        samples, logps = model.generate(8, seed=2, label=c, max_tokens=400, return_logprobs=True)
        for sample, lp in zip(samples, logps):
            if len(sample) < 400:  # ended by </s>: the whole sequence was scored
                assert lp == pytest.approx(model.logprob(sample, label=c), rel=1e-9, abs=1e-9)


def _own_alphabet_share(case, model, label: str) -> float:
    samples = model.generate(40, seed=0, label=label, max_tokens=30)
    tokens = [t for s in samples for t in s]
    return sum(t in case.alphabets[label] for t in tokens) / max(len(tokens), 1)


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_generate_with_a_label_draws_from_that_label_only(case):
    """Labels with disjoint alphabets: the samples of label c are (almost all) in c's alphabet."""
    model = case.make(case.disjoint)
    shares = {label: _own_alphabet_share(case, model, label) for label in case.alphabets}
    holds = all(share > 0.9 for share in shares.values())
    if "label_only" in case.exempt:
        assert not holds, f"{case.id} is exempt from label_only ({case.exempt['label_only']}) but obeys it: {shares}"
    else:
        assert holds, shares


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_the_label_set_is_sorted_and_does_not_depend_on_the_order_of_the_corpus(case):
    model = fitted(case)
    assert list(model.labels_.names) == sorted({label for label, _ in case.corpus})
    counts = {name: sum(label == name for label, _ in case.corpus) for name in model.labels_.names}
    assert dict(zip(model.labels_.names, model.labels_.counts)) == counts
    shuffled = [case.corpus[i] for i in np.random.default_rng(0).permutation(len(case.corpus))]
    other = case.make(shuffled)
    assert other.labels_ == model.labels_  # the same ids whatever the order of the examples
    # A counting model is the same model too; one trained by SGD on batches in corpus order may differ
    # (exempt "corpus_order", which must then really fail).
    same = all(np.allclose([other.logprob(t, label=c) for t in case.scored],
                           [model.logprob(t, label=c) for t in case.scored], rtol=1e-9)
               for c in model.labels_.names)
    if "corpus_order" in case.exempt:
        assert not same, f"{case.id} is exempt from corpus_order ({case.exempt['corpus_order']}) but obeys it"
    else:
        assert same


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
def test_unknown_labels_and_labels_for_an_unlabelled_model_are_one_line_errors(case):
    model = fitted(case)
    with pytest.raises(LabelError, match=r"unknown label 'nope': this model knows '") as e:
        model.logprob("abc", label="nope")
    assert "\n" not in str(e.value)
    with pytest.raises(LabelError, match="unknown label"):
        model.generate(1, label="nope")
    with pytest.raises(LabelError, match="unknown label"):
        model.score(["abc"], labels="nope")
    unlabelled = case.fit([text for _, text in case.corpus], None)
    assert unlabelled.labels_ is None
    with pytest.raises(LabelError, match="has no labels"):
        unlabelled.logprob("abc", label=model.labels_.names[0])
    with pytest.raises(LabelError, match="has no labels"):
        unlabelled.classify(["abc"])
    with pytest.raises(LabelError, match="has no labels"):
        unlabelled.generate(1, label=model.labels_.names[0])


# --- a damaged labels header ---------------------------------------------------------------------------


def _with_header(data: bytes, edit) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays["__header__"].tobytes())
    edit(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _labels(edit):
    """A corruption of the header's ``labels`` object {"names": [...], "counts": [...]}, whatever its labels."""

    def apply(h):
        edit(h["labels"])

    return apply


def _set(key, value):
    return _labels(lambda d: d.__setitem__(key, value(d) if callable(value) else value))


LABEL_CORRUPTIONS = {
    "not-a-dict": lambda h: h.__setitem__("labels", h["labels"]["names"]),
    "names-not-a-list": _set("names", lambda d: d["names"][0]),
    "counts-missing": _labels(lambda d: d.pop("counts")),
    "count-zero": _set("counts", lambda d: [0] + d["counts"][1:]),
    "count-negative": _set("counts", lambda d: [-1] + d["counts"][1:]),
    "count-not-int": _set("counts", lambda d: [1.5] + d["counts"][1:]),
    "count-bool": _set("counts", lambda d: [True] + d["counts"][1:]),
    "fewer-counts": _set("counts", lambda d: d["counts"][:-1]),
    "duplicate-names": _set("names", lambda d: [d["names"][0]] * len(d["names"])),
    "names-reordered": _set("names", lambda d: d["names"][::-1]),  # would pair each label with another's row
    "name-with-tab": _set("names", lambda d: ["\t" + d["names"][0]] + d["names"][1:]),
    "name-empty": _set("names", lambda d: [""] + d["names"][1:]),
    "name-not-str": _set("names", lambda d: [1] + d["names"][1:]),
    "no-names": _labels(lambda d: d.update(names=[], counts=[])),
    "one-label-fewer": _labels(lambda d: d.update(names=d["names"][:-1], counts=d["counts"][:-1])),
    "one-label-more": _labels(lambda d: d.update(names=d["names"] + ["~more"], counts=d["counts"] + [1])),
    "labels-removed": lambda h: h.pop("labels"),  # the arrays of a labelled model, no labels
}


@pytest.mark.parametrize("case", LABELLED_CASES, ids=IDS)
@pytest.mark.parametrize("damage", sorted(LABEL_CORRUPTIONS))
def test_a_damaged_labels_header_is_refused_with_one_line(case, damage, tmp_path, capsys):
    model = fitted(case)
    assert len(model.labels_) >= 2, "the corruptions need two labels or more"
    model.save(tmp_path / "good.npz")
    path = tmp_path / "bad.npz"
    path.write_bytes(_with_header((tmp_path / "good.npz").read_bytes(), LABEL_CORRUPTIONS[damage]))
    with pytest.raises(ScratchgenError) as e:
        scratchgen.load(path)
    message = str(e.value)
    assert "\n" not in message and "bad.npz" in message, message
    from scratchgen.cli import main

    capsys.readouterr()
    assert main(["generate", str(path), "-n", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("scratchgen: error:") and err.count("\n") == 1, err


# --- the label set -------------------------------------------------------------------------------------

label_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"), min_size=1,
                      max_size=4).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(st.lists(label_names, min_size=1, max_size=20), st.randoms(use_true_random=False))
def test_label_set_is_sorted_deterministic_and_maps_back(labels, random):
    label_set, ids = LabelSet.from_labels(labels)
    assert list(label_set.names) == sorted(set(labels))
    assert [label_set.names[i] for i in ids] == labels
    assert sum(label_set.counts) == len(labels)
    np.testing.assert_allclose(np.exp(label_set.log_prior).sum(), 1.0)
    shuffled = list(labels)
    random.shuffle(shuffled)
    assert LabelSet.from_labels(shuffled)[0] == label_set
    assert LabelSet.from_dict(json.loads(json.dumps(label_set.to_dict()))) == label_set


def test_label_prior_worked_example():
    label_set, ids = LabelSet.from_labels(["b", "a", "b", "b"])
    assert label_set.names == ("a", "b") and label_set.counts == (1, 3)
    np.testing.assert_allclose(label_set.log_prior, [math.log(1 / 4), math.log(3 / 4)])  # n_c / n
    assert ids.tolist() == [1, 0, 1, 1]


def test_label_ids_checks_ids_and_counts():
    model = scratchgen.UnigramModel().fit(["ab", "cd"], labels=["x", "y"])
    assert label_ids(model, np.array([1, 0]), 2).tolist() == [1, 0]
    with pytest.raises(LabelError, match="label ids run from 0 to 1"):
        label_ids(model, np.array([2, 0]), 2)
    with pytest.raises(LabelError, match="3 labels for 2 sequences"):
        label_ids(model, ["x", "y", "x"], 2)
    with pytest.raises(LabelError, match="one label per training sequence"):
        scratchgen.UnigramModel().fit(["ab", "cd"], labels="x")
    with pytest.raises(LabelError, match="1 labels for 2 training sequences"):
        scratchgen.UnigramModel().fit(["ab", "cd"], labels=["x"])


# --- reading a labelled corpus ---------------------------------------------------------------------------


def _read(tmp_path, data: bytes, **kwargs):
    path = tmp_path / "labelled.txt"
    path.write_bytes(data)
    return read_corpus(path, Tokenizer("word"), labelled=True, **kwargs)


def test_labelled_corpus_splits_at_the_first_tab_only(tmp_path):
    labels, texts = _read(tmp_path, b"pos\tgood\tfun\nneg\tbad\n")
    assert labels == ["pos", "neg"]
    assert texts == [["good", "fun"], ["bad"]]  # the second tab is part of the text (whitespace between words)
    labels, texts = read_corpus(io.StringIO("pos\ta\tb\n"), Tokenizer("char"), labelled=True)
    assert (labels, texts) == (["pos"], [["a", "\t", "b"]])  # at character level the tab is a token of the text


def test_labelled_corpus_crlf_spaces_and_blank_lines(tmp_path):
    labels, texts = _read(tmp_path, b"  pos \tgood day\r\n\r\n\n neg\tbad\r\n")
    assert labels == ["pos", "neg"]  # spaces around the label stripped; CR not kept; blank lines skipped
    assert texts == [["good", "day"], ["bad"]]


def test_labelled_corpus_empty_text_is_skipped_unless_kept(tmp_path):
    labels, texts = _read(tmp_path, b"pos\t\nneg\tbad\nneu\t   \n")
    assert (labels, texts) == (["neg"], [["bad"]])
    labels, texts = _read(tmp_path, b"pos\t\nneg\tbad\n", keep_empty=True)
    assert (labels, texts) == (["pos", "neg"], [[], ["bad"]])


@pytest.mark.parametrize(
    "data, match",
    [
        (b"pos\tgood\nno tab here\n", r"line 2 has no tab"),
        (b"\tgood\n", r"line 1 has an empty label"),
        (b"   \tgood\n", r"line 1 has an empty label"),
    ],
)
def test_labelled_corpus_errors_name_the_line(tmp_path, data, match):
    with pytest.raises(LabelError, match=match) as e:
        _read(tmp_path, data)
    assert "\n" not in str(e.value)


def test_labelled_corpus_refuses_other_modes(tmp_path):
    with pytest.raises(ScratchgenError, match="one example a line"):
        _read(tmp_path, b"pos\tgood\n", mode="paragraphs")
