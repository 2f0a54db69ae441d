"""The labelled n-gram model P(w | c, h) (scratchgen/ngram/labelled.py) against its laws and its reference.

- The fast model (label trie, eq. (5)) equals ``ReferenceLabelledNGram`` (eq. (3) as written) on random small
  labelled corpora: whole next-token distributions through the stepping interface, and the vectorised
  ``token_logprobs``, for every interpolated smoothing, orders 1 to 4, character and word tokens.
- Every row normalises, for every label and many histories; stepping equals the vectorised scores; a saved
  model scores bit-identically once loaded; the label-free tables are those of an unlabelled fit, bit for bit.
- A label seen once borrows the label-free model; labels with different alphabets are classified right; the
  marginal without a label is log sum_c P(c) P(x | c); bad labels are one-line LabelErrors that list the labels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ngram_cli import run

from scratchgen import load
from scratchgen.decoding import beam_search, generate
from scratchgen.errors import LabelError, ModelFileError, ScratchgenError
from scratchgen.model import LanguageModel
from scratchgen.ngram import NGramModel
from scratchgen.ngram.labelled import LABELLED_SMOOTHINGS
from scratchgen.ngram.reference import ReferenceLabelledNGram

CHARS = ("a", "b", "c", "d", "e")
WORDS = ("the", "cat", "sat", "on", "mat", "<unk>")  # word tokens, a literal <unk> among them
OOV = "zz"  # never in a corpus: scored as <unk>
RTOL = 1e-9


@st.composite
def labelled_cases(draw):
    """(corpus, labels, order, smoothing, probes): 1 to 8 sentences of 0 to 7 tokens, 1 to 3 labels."""
    pool = draw(st.sampled_from([CHARS, WORDS]))
    alphabet = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=5, unique=True))
    corpus = draw(st.lists(st.lists(st.sampled_from(alphabet), max_size=7), min_size=1, max_size=8))
    names = draw(st.lists(st.sampled_from(["p", "q", "r"]), min_size=1, max_size=3, unique=True))
    labels = [draw(st.sampled_from(names)) for _ in corpus]
    order = draw(st.integers(1, 4))
    smoothing = draw(st.sampled_from(LABELLED_SMOOTHINGS))
    length = draw(st.integers(0, 5))
    probe = st.lists(st.sampled_from(alphabet + [OOV]), min_size=length, max_size=length)
    probes = draw(st.lists(probe, min_size=1, max_size=3))
    return corpus, labels, order, smoothing, probes


def stepped(model, rows, label_id):
    """exp(next_logprobs) at every prefix of equal-length rows, all with one label: shape (T + 1, B, V)."""
    ids = np.array([model.vocab_.encode(r) for r in rows], dtype=np.int64).reshape(len(rows), -1)  # (B, T)
    state = model.initial_state(len(rows), labels=np.full(len(rows), label_id))
    out = []
    for t in range(ids.shape[1] + 1):
        out.append(np.exp(model.next_logprobs(state)))  # (B, V)
        if t < ids.shape[1]:
            state = model.advance(state, ids[:, t])
    return np.array(out)


# --- the fast model equals the reference -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(case=labelled_cases())
def test_fast_path_equals_reference(case):
    corpus, labels, order, smoothing, probes = case
    model = NGramModel(order=order, smoothing=smoothing).fit(corpus, labels=labels)
    ref = ReferenceLabelledNGram(corpus, labels, order=order, smoothing=smoothing)
    tokens = model.vocab_.tokens
    for c, name in enumerate(model.labels_.names):
        for rows in [probes] + [[s] for s in corpus[:2]]:  # random histories batched, then seen ones
            expected = [[[ref.prob(w, name, r[:t]) for w in tokens] for r in rows] for t in range(len(rows[0]) + 1)]
            np.testing.assert_allclose(stepped(model, rows, c), expected, rtol=RTOL, atol=1e-300)
        sentences = probes + corpus
        ids = [model.vocab_.encode(s) for s in sentences]
        fast = model.token_logprobs(ids, labels=name)
        for s, lp in zip(sentences, fast):
            np.testing.assert_allclose(lp.sum(), ref.logprob(s, name), rtol=RTOL)


def test_a_wrong_reference_is_detected():
    """The comparison can fail: the reference with the uniform end kept (no borrowing) differs."""
    corpus, labels = [list("abab"), list("ba"), list("cc")], ["p", "p", "q"]
    model = NGramModel(order=2).fit(corpus, labels=labels)
    ref = ReferenceLabelledNGram(corpus, labels, order=2)
    chain = ref.chains["q"]  # label q's chain alone, ending in the uniform distribution
    assert model.logprob("ab", label="q") == pytest.approx(ref.logprob(list("ab"), "q"), rel=RTOL)
    assert abs(model.logprob("ab", label="q") - chain.logprob(list("ab"))) > 0.1


# Corpus p: "a"; q: "b", "b". Order 1, Witten-Bell, V' = 4 (<unk>, </s>, a, b). Label-free: a 1, b 2, </s> 3,
# d = 6, T = 3, gamma = 3/9, so P(a) = 1/9 + (1/3)/4 = 7/36 and P(b) = 2/9 + 1/12 = 11/36. Label p: a 1, </s> 1,
# d = 2, T = 2, gamma_p = 2/4: P(a | p) = 1/4 + 1/2 * 7/36 = 25/72 and P(b | p) = 0 + 1/2 * 11/36 = 11/72.
def test_by_hand():
    model = NGramModel(order=1, smoothing="witten-bell").fit(["a", "b", "b"], labels=["p", "q", "q"])
    row = np.exp(model.next_logprobs(model.initial_state(1, labels=np.array([0]))))[0]
    assert row[model.vocab_.index("a")] == pytest.approx(25 / 72, rel=1e-12)
    assert row[model.vocab_.index("b")] == pytest.approx(11 / 72, rel=1e-12)


# --- laws of the fast model ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(case=labelled_cases(), data=st.data())
def test_rows_normalise_for_every_label_and_history(case, data):
    corpus, labels, order, smoothing, probes = case
    model = NGramModel(order=order, smoothing=smoothing).fit(corpus, labels=labels)
    V = len(model.vocab_)
    histories = data.draw(st.lists(st.lists(st.integers(0, V - 1), max_size=6), min_size=1, max_size=6))
    for c in range(len(model.labels_)):
        for h in histories + [list(model.vocab_.encode(s)) for s in corpus]:
            state = model.initial_state(1, labels=np.array([c]))
            for w in h:
                state = model.advance(state, np.array([w]))
            row = model.next_logprobs(state)[0]
            assert row[model.vocab_.bos_id] == -np.inf
            assert math.isclose(np.exp(row).sum(), 1.0, rel_tol=1e-12)


@settings(max_examples=25, deadline=None)
@given(case=labelled_cases())
def test_stepping_equals_vectorised(case):
    corpus, labels, order, smoothing, probes = case
    model = NGramModel(order=order, smoothing=smoothing).fit(corpus, labels=labels)
    ids = [model.vocab_.encode(s) for s in probes + corpus]
    label_ids = np.arange(len(ids)) % len(model.labels_)  # mixed labels in one call
    fast = model._token_logprobs(ids, label_ids)
    slow = LanguageModel._token_logprobs(model, ids, label_ids)  # the stepping default
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_save_load_round_trip_is_bit_identical(tmp_path):
    corpus = ["the cat", "a cat sat", "who sat?", "is it", "it is", "is the cat here?"]
    labels = ["s", "s", "q", "q", "s", "q"]
    model = NGramModel(order=3).fit(corpus, labels=labels)
    model.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.labels_ == model.labels_
    ids, _ = model.encode_corpus(corpus + ["zzz", ""])
    for name in model.labels_.names:
        for a, b in zip(model.token_logprobs(ids, labels=name), loaded.token_logprobs(ids, labels=name)):
            assert np.array_equal(a, b)
    state = loaded.advance(loaded.initial_state(2, labels=np.array([0, 1])), ids[0][:2])
    assert np.array_equal(
        loaded.next_logprobs(state),
        model.next_logprobs(model.advance(model.initial_state(2, np.array([0, 1])), ids[0][:2])),
    )


def test_a_file_without_its_label_tables_is_refused(tmp_path):
    model = NGramModel(order=2).fit(["ab", "ba"], labels=["p", "q"])
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "label_below"}
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(ModelFileError):
        load(tmp_path / "cut.npz")


def test_unlabelled_model_is_unchanged():
    """The label-free tables of a labelled fit are an unlabelled fit's, bit for bit; an unlabelled model
    stores no label table; and its vectorised scores equal eq. (2) evaluated n-gram by n-gram."""
    corpus = ["the cat sat", "on the mat", "a cat", "sat on", "the the cat", "mat"]
    labels = ["x", "y", "x", "y", "y", "x"]
    for order in (1, 2, 3, 5):
        plain = NGramModel(order=order).fit(corpus)
        labelled = NGramModel(order=order).fit(corpus, labels=labels)
        assert plain.labels_ is None and plain.label_logr_ is None
        for a, b in zip(plain.keys_ + plain.logp_ + plain.bow_, labelled.keys_ + labelled.logp_ + labelled.bow_):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        assert plain.discounts_ == labelled.discounts_
        assert not any(k.startswith("label") for k in plain._save_state()[1])
        ids, _ = plain.encode_corpus(corpus + ["xyz"])
        for s, lp in zip(ids, plain.token_logprobs(ids)):
            full = np.concatenate([[plain.vocab_.bos_id], s, [plain.vocab_.eos_id]])
            grams = [full[max(0, t - order + 1) : t + 1] for t in range(1, len(full))]
            rows = [np.concatenate([np.full(order - len(g), -1), g]) for g in grams]  # -1: before <s>
            by_ngram = [plain.ngram_logprobs(np.array([r[r >= 0]]))[0] for r in rows]
            assert np.array_equal(lp, by_ngram)


# --- what labels do ------------------------------------------------------------------------------------------


def test_a_label_seen_once_borrows_the_label_free_model():
    """eq. (3): P(w | c, h) >= the label-free part, large for a label seen once, so on text of the other label
    it scores close to the label-free model, where its own chain (ending in the uniform distribution, eq. (1))
    is far worse."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    table = rng.dirichlet(np.full(len(words), 0.1), size=len(words))  # a sparse bigram process

    def sentence():
        out = [words[rng.integers(len(words))]]
        while len(out) < 8:
            out.append(words[rng.choice(len(words), p=table[words.index(out[-1])])])
        return out

    corpus = [sentence() for _ in range(300)] + [["w1", "w2", "w3"]]
    labels = ["big"] * 300 + ["once"]
    test = [sentence() for _ in range(50)]
    model = NGramModel(order=3).fit(corpus, labels=labels)
    ref = ReferenceLabelledNGram(corpus, labels, order=3)
    n = sum(len(s) + 1 for s in test)
    plain = NGramModel(order=3).fit(corpus)
    free = -sum(plain.logprob(s) for s in test) / n
    once = -sum(model.logprob(s, label="once") for s in test) / n
    alone = -sum(ref.chains["once"].logprob(s) for s in test) / n
    for s in test[:5]:  # eq. (3), token by token
        for t, w in enumerate(s + ["</s>"]):
            h = ref.free.history(s[:t])
            weights = ref.free_weights("once", h)  # of P(w | h_1), .., P(w | h_L), then of P(w | h)
            histories = [h[len(h) - j :] for j in range(1, len(h) + 1)] + [h]
            borrowed = sum(v * ref.free.p(w, g) for v, g in zip(weights, histories))
            assert ref.prob(w, "once", s[:t]) >= borrowed * (1 - 1e-12) > 0
    # At a history the label never saw, P(w | c, h) >= gamma_c(()) P(w | h) = P(w | h) / 2 (D_1 = 1/2).
    assert once - free < math.log(2)  # (seed 0: 0.51 nats/token)
    assert alone - free > 1.0  # without borrowing: close to the uniform over 42 tokens (seed 0: 1.60)


def test_classify_labels_with_different_alphabets():
    rng = np.random.default_rng(1)

    def lines(alphabet, n):
        return ["".join(rng.choice(list(alphabet), size=rng.integers(3, 9))) for _ in range(n)]

    train_lo, train_hi, test_lo, test_hi = (
        lines("abcde", 40),
        lines("vwxyz", 10),
        lines("abcde", 30),
        lines("vwxyz", 30),
    )
    model = NGramModel(order=3).fit(train_lo + train_hi, labels=["lo"] * 40 + ["hi"] * 10)
    result = model.classify(test_lo + test_hi + ["zzz"])
    assert result.labels == ["lo"] * 30 + ["hi"] * 30 + ["hi"]
    np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0, rtol=1e-12)
    assert result.names == ("hi", "lo")


def test_marginal_is_the_prior_weighted_mixture():
    corpus = ["ab", "abb", "ba", "bba", "aaa", "b"]
    labels = ["x", "x", "y", "y", "z", "x"]
    model = NGramModel(order=2).fit(corpus, labels=labels)
    prior = {"x": 3 / 6, "y": 2 / 6, "z": 1 / 6}  # label counts / examples
    for text in ["ab", "ba", "", "abc", "bbbb"]:
        mixture = sum(prior[c] * math.exp(model.logprob(text, label=c)) for c in prior)
        assert model.logprob(text) == pytest.approx(math.log(mixture), rel=1e-12)


def test_generation_with_a_label_follows_it():
    model = NGramModel(order=3).fit(
        ["abab", "aabb", "ab"] * 5 + ["xyxy", "yyx", "xy"] * 5, labels=["a"] * 15 + ["x"] * 15
    )
    samples = generate(model, n=40, label="x", seed=0, max_tokens=20)
    letters = [t for s in samples for t in s]
    assert sum(t in "xy" for t in letters) > 0.9 * len(letters)
    ((best, score),) = beam_search(model, 3, label="x", max_tokens=10)  # the beam steps the labelled state too
    assert set(best) <= {"x", "y"} and score == pytest.approx(model.logprob(best, label="x"), rel=1e-12)


# --- errors ------------------------------------------------------------------------------------------------------


def test_unknown_label_lists_the_known_ones():
    model = NGramModel(order=2).fit(["ab", "ba"], labels=["pos", "neg"])
    with pytest.raises(LabelError, match="unknown label 'neutral'.*'neg', 'pos'"):
        model.logprob("ab", label="neutral")
    with pytest.raises(LabelError, match="'neg'"):
        generate(model, n=1, label="neutral", seed=0)
    with pytest.raises(LabelError, match="labels="):
        model.initial_state(2)  # a labelled model needs its labels to step


def test_a_label_for_an_unlabelled_model_is_an_error():
    model = NGramModel(order=2).fit(["ab", "ba"])
    for call in (lambda: model.logprob("ab", label="pos"), lambda: generate(model, n=1, label="pos", seed=0)):
        with pytest.raises(LabelError, match="has no labels"):
            call()
    assert model.initial_state(2, labels=np.array([0, 1])).shape == (2, 1)  # an unlabelled model ignores them


@pytest.mark.parametrize("smoothing", ["mle", "add-k", "stupid-backoff"])
def test_smoothings_without_a_uniform_end_are_refused(smoothing):
    with pytest.raises(ScratchgenError, match="interpolated smoothing"):
        NGramModel(order=2, smoothing=smoothing).fit(["ab"], labels=["p"])
    with pytest.raises(ScratchgenError, match="--cutoffs"):
        NGramModel(order=2, cutoffs=[1, 2]).fit(["ab"], labels=["p"])


# --- explain: the terms of eq. (3) ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(case=labelled_cases())
def test_explain_gives_the_terms_of_eq_3_as_the_reference_computes_them(case):
    """Each token's parts add up to the model's own probability (the stepping rows), and each part is the
    reference's: P(w | h_j) of the label-free model, the weights of eq. (3) (``free_weights``), and the label's
    part as the rest of the reference's P(w | c, h)."""
    from scratchgen.explain import explain

    corpus, labels, order, smoothing, probes = case
    model = NGramModel(order=order, smoothing=smoothing).fit(corpus, labels=labels)
    ref = ReferenceLabelledNGram(corpus, labels, order=order, smoothing=smoothing)
    for name in model.labels_.names:
        for probe in probes:
            records = explain(model, probe, label=name, top=0)["tokens"]
            for t, r in enumerate(records):
                w = r["token"] if r["token"] in ref.free.words else "<unk>"
                h = ref.free.history(probe[:t])
                weights = ref.free_weights(name, h)  # of P(w | h_1) .. P(w | h_L), then of P(w | h)
                label_part, *free_parts, whole = r["parts"]
                assert r["label"] == name and label_part["from"] == "label"
                assert len(label_part["history"]) == r["label_ngram_length"] - 1
                assert [q["from"] for q in free_parts + [whole]] == ["label-free"] * (len(free_parts) + 1)
                assert whole["history"] == list(h)
                assert math.isclose(whole["weight"], weights[-1], rel_tol=RTOL, abs_tol=1e-300)
                seen = {len(q["history"]): q for q in free_parts if q["weight"] > 0}
                assert sorted(seen) == [j for j in range(1, len(h) + 1) if weights[j - 1] > 0]
                for j, q in seen.items():
                    assert q["history"] == list(h[len(h) - j :])
                    assert math.isclose(q["weight"], weights[j - 1], rel_tol=RTOL)
                for q in free_parts + [whole]:
                    n = len(q["history"])
                    assert math.isclose(q["p"], ref.free.p(w, h[len(h) - n :]), rel_tol=RTOL, abs_tol=1e-300)
                P = ref.prob(r["token"], name, probe[:t]) if t < len(probe) else ref.prob("</s>", name, probe)
                free = sum(q["weight"] * q["p"] for q in free_parts + [whole])
                assert label_part["weight"] * label_part["p"] == pytest.approx(P - free, rel=1e-7, abs=1e-12 * P)
                total = sum(q["weight"] * q["p"] for q in r["parts"])
                assert math.isclose(total, math.exp(r["logprob"]), rel_tol=RTOL)  # the stepping rows' P


def test_explain_reads_eq_2_by_hand():
    """test_by_hand's model: P(a | p) = 1/4 (the label's part) + 1/2 * 7/36 (label-free, gamma_p = 1/2)."""
    from scratchgen.explain import explain

    model = NGramModel(order=1, smoothing="witten-bell").fit(["a", "b", "b"], labels=["p", "q", "q"])
    r = explain(model, "a", label="p")["tokens"][0]
    assert [(q["from"], q["history"]) for q in r["parts"]] == [("label", []), ("label-free", [])]
    assert [q["weight"] for q in r["parts"]] == pytest.approx([1.0, 1 / 2], rel=1e-12)
    assert [q["p"] for q in r["parts"]] == pytest.approx([1 / 4, 7 / 36], rel=1e-12)
    assert r["label_ngram_length"] == 1 and r["why"].endswith(f"= {25 / 72:.4g}")
    assert "label" not in explain(model, "a")["tokens"][0]  # the marginal: no family keys


def test_a_labelled_model_is_written_to_arpa_one_label_at_a_time(tmp_path):
    model = NGramModel(order=2).fit(["ab", "ba"], labels=["p", "q"])
    with pytest.raises(LabelError, match="one label at a time.*p, q"):
        model.to_arpa(tmp_path / "m.arpa")
    with pytest.raises(LabelError, match="unknown label 'r'"):
        model.to_arpa(tmp_path / "m.arpa", label="r")
    with pytest.raises(LabelError, match="no labels"):
        NGramModel(order=2).fit(["ab"]).to_arpa(tmp_path / "m.arpa", label="p")
    assert not (tmp_path / "m.arpa").exists()


@settings(max_examples=30, deadline=None)
@given(case=labelled_cases())
def test_one_labels_arpa_file_scores_as_the_label(tmp_path_factory, case):
    """P(w | c, h) written out (every word after each history it depends on) and read back scores every
    sentence as the labelled model does with that label, OOV and unseen histories included."""
    corpus, labels, order, smoothing, probes = case
    model = NGramModel(order=order, smoothing=smoothing).fit(corpus, labels=labels)
    path = tmp_path_factory.mktemp("arpa") / "label.arpa"
    for name in model.labels_.names:
        model.to_arpa(path, label=name)
        back = NGramModel.from_arpa(path)
        for sentence in probes + corpus:
            assert back.logprob(sentence) == pytest.approx(model.logprob(sentence, label=name), rel=RTOL, abs=1e-12)


def test_one_labels_arpa_file_scores_as_the_label_in_kenlm(tmp_path):
    """The file is one KenLM reads (every context and suffix present) and scores as the model (KenLM keeps
    float32: 1e-5 in log10)."""
    kenlm = pytest.importorskip("kenlm")
    from scratchgen.text import Tokenizer

    train = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the end", "a dog sat", "a cat"]
    labels = ["x", "x", "y", "y", "x", "y"]
    texts = train + ["zebra the cat", "cat cat cat dog", "", "the mat mat zebra", "a a a a"]
    for order in (2, 3, 4):
        model = NGramModel(order=order, tokenizer=Tokenizer("word")).fit(train, labels=labels)
        scores = {}
        for name in ("x", "y"):
            path = tmp_path / f"{name}{order}.arpa"
            model.to_arpa(path, label=name)
            lm = kenlm.Model(str(path))
            scores[name] = [lm.score(text, bos=True, eos=True) for text in texts]
            for text, theirs in zip(texts, scores[name]):
                assert theirs == pytest.approx(model.logprob(text, label=name) / math.log(10), abs=1e-5), text
        assert max(abs(a - b) for a, b in zip(scores["x"], scores["y"])) > 0.1  # the labels' files differ


# --- the command line ----------------------------------------------------------------------------------------


def test_cli_train_labelled(tmp_path, capsys):
    corpus = tmp_path / "c.tsv"
    corpus.write_text("q\tis it?\nq\twho is it?\ns\tit is.\ns\tthe cat is here.\n", encoding="utf-8")
    code, _, err = run(["train", "ngram", "--labelled", "--level", "word", corpus, "-o", tmp_path / "m.npz"], capsys)
    assert code == 0, err
    assert "2 labels (q, s)" in err
    model = load(tmp_path / "m.npz")
    texts = ["is it?", "who is it?", "it is.", "the cat is here."]
    same = NGramModel(order=3, tokenizer=model.tokenizer).fit(texts, labels=["q", "q", "s", "s"])
    for name in ("q", "s"):
        assert model.logprob("is the cat?", label=name) == same.logprob("is the cat?", label=name)
    code, _, err = run(["export-arpa", tmp_path / "m.npz", tmp_path / "m.arpa"], capsys)
    assert code == 1 and "no ARPA form" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.arpa").exists()
    code, _, err = run(["export-arpa", tmp_path / "m.npz", tmp_path / "m.arpa", "--label", "s"], capsys)
    assert code == 0, err
    back = NGramModel.from_arpa(tmp_path / "m.arpa", tokenizer=model.tokenizer)
    assert back.logprob("is the cat?") == pytest.approx(model.logprob("is the cat?", label="s"), rel=RTOL)


def test_a_labels_arpa_form_is_checked_against_the_memory_limit(tmp_path, monkeypatch):
    """Every word after each context: V - 1 = 3 n-grams a context here; a tiny limit refuses, naming the count."""
    from scratchgen.errors import ResourceError

    model = NGramModel(order=2).fit(["ab", "ba"], labels=["p", "q"])
    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "100")
    with pytest.raises(ResourceError, match=r"label 'p' \(\d+ n-grams: every word after each of \d+ histories"):
        model.to_arpa(tmp_path / "m.arpa", label="p")
    assert not (tmp_path / "m.arpa").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--smoothing", "stupid-backoff"], "interpolated --smoothing"),
        (["--cutoffs", "1", "2", "2"], "--cutoffs"),
        (["--mode", "paragraphs"], "--mode paragraphs"),
    ],
)
def test_cli_labelled_usage_errors(tmp_path, capsys, extra, message):
    corpus = tmp_path / "c.tsv"
    corpus.write_text("q\tis it\n", encoding="utf-8")
    code, _, err = run(["train", "ngram", "--labelled", corpus, "-o", tmp_path / "m.npz", *extra], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "m.npz").exists()


def test_cli_labelled_corpus_without_a_tab(tmp_path, capsys):
    corpus = tmp_path / "c.tsv"
    corpus.write_text("q\tis it\nno tab here\n", encoding="utf-8")
    code, _, err = run(["train", "ngram", "--labelled", corpus, "-o", tmp_path / "m.npz"], capsys)
    assert code == 1 and "line 2 has no tab" in err and len(err.strip().splitlines()) == 1


def test_the_dense_label_table_is_checked_against_the_memory_limit(monkeypatch):
    """The (label, word) level holds C V entries: 3 labels x V = 6 (a, b, c and 3 specials), 4 x 8 bytes each:
    576 > 500."""
    from scratchgen.errors import ResourceError

    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "500")
    with pytest.raises(ResourceError, match="3 labels and a vocabulary of 6"):
        NGramModel(order=2).fit(["abc", "cab", "bca"], labels=["p", "q", "r"])
    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "1000")
    NGramModel(order=2).fit(["abc", "cab", "bca"], labels=["p", "q", "r"])
