"""The labelled RNN, P(x | c): label pieces gradient-checked, stepping = vectorised, files, resume, learning.

The label pieces are eqs. (L1)-(L4) of scratchgen/nn/conditioning.py: a label vector added to the input at
every step, and a label start state h_0 = tanh(L_h.l[c]) for every layer.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchgen
from scratchgen import RNNModel
from scratchgen.cli import main
from scratchgen.errors import LabelError, ModelFileError
from scratchgen.io import read_archive, write_archive
from scratchgen.model import LanguageModel
from scratchgen.nn import Callback, Checkpoint, gradcheck_piece
from scratchgen.nn import conditioning as K
from scratchgen.nn import layers as L
from scratchgen.nn import reference as R
from scratchgen.nn.optim import init_params

TOL = 1e-6

# Labels that decide the text: 'a' -> runs of a's, 'b' -> runs of b's (lengths 1 to 6, each 3 times).
AB_TEXTS = ["a" * k for k in range(1, 7)] * 3 + ["b" * k for k in range(1, 7)] * 3
AB_LABELS = ["a"] * 18 + ["b"] * 18


def labelled_params(rng, V, H, layers, E, C):
    """Random parameters of a labelled network; perturbed so that no table is zero and no weight special."""
    p = init_params(V, H, layers, E, rng)
    p.update(K.label_params(C, K.input_label_width(V, H, E), H, layers))
    return {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in p.items()}


shapes = st.fixed_dictionaries({
    "B": st.integers(1, 4), "T": st.integers(1, 5), "H": st.integers(1, 5), "V": st.integers(3, 6),
    "E": st.one_of(st.none(), st.integers(1, 4)), "layers": st.integers(1, 3), "C": st.integers(1, 3),
    "seed": st.integers(0, 10_000), "carried": st.booleans(), "dropout": st.sampled_from([None, 0.3]),
})


# --- 1. the label pieces against central finite differences (float64) --------------------------------

@settings(max_examples=15, deadline=None)
@given(shapes)
def test_label_pieces_gradients_match_finite_differences(s):
    rng = np.random.default_rng(s["seed"])
    B, T, H, C = s["B"], s["T"], s["H"], s["C"]
    D = s["E"] or 2
    labels = rng.integers(0, C, size=B)                          # repeated labels share a row: eq. (L3)
    checks = {
        "input (B, T, D)": gradcheck_piece(K.label_input_forward, K.label_input_backward,
                                           {"L_in": rng.normal(size=(C, D))},
                                           (rng.normal(size=(B, T, D)), labels)),
        "input alone (B, D)": gradcheck_piece(lambda p, x: K.label_input_forward(p, (None, x)),
                                              lambda p, c, d: K.label_input_backward(p, c, d),
                                              {"L_in": rng.normal(size=(C, D))}, labels),
        "state": gradcheck_piece(K.label_state_forward, K.label_state_backward,
                                 {"L_h": rng.normal(size=(C, H))}, labels),
        "states (L layers)": gradcheck_piece(K.label_states_forward, K.label_states_backward,
                                             {f"L_h.{l}": rng.normal(size=(C, H)) for l in range(s["layers"])},
                                             labels),
        "rnn with u": gradcheck_piece(L.rnn_forward, L.rnn_backward,
                                      {"W_xh": rng.normal(size=(D, H)) * 0.5, "W_hh": rng.normal(size=(H, H)) * 0.5,
                                       "b_h": rng.normal(size=H)},
                                      (rng.integers(0, D, size=(B, T)), rng.normal(size=(B, H)),
                                       rng.normal(size=(B, H)))),
    }
    assert set(checks["rnn with u"]) == {"W_xh", "W_hh", "b_h", "input[1]", "input[2]"}   # du is checked
    for name, errors in checks.items():
        assert errors and max(errors.values()) < TOL, (name, errors)


@settings(max_examples=15, deadline=None)
@given(shapes)
def test_labelled_network_gradients_match_finite_differences(s):
    """Every parameter with the label tables, one-hot or embedded, 1-3 layers, a label start or a carried state."""
    rng = np.random.default_rng(s["seed"])
    B, T, V, H, layers = s["B"], s["T"], s["V"], s["H"], s["layers"]
    params = labelled_params(rng, V, H, layers, s["E"], s["C"])
    ids, targets = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    mask = rng.random((B, T)) < 0.7
    mask[0, 0] = True
    h0 = rng.normal(scale=0.5, size=(layers, B, H)) if s["carried"] else None
    drop = (rng.random((B, T, H)) >= s["dropout"], s["dropout"]) if s["dropout"] else None
    labels = rng.integers(0, s["C"], size=B)
    inputs = (ids, targets, mask, h0, drop, labels)
    errors = gradcheck_piece(L.network_forward, L.network_backward, params, inputs, seed=s["seed"])
    assert set(errors) == set(params) | ({"input[3]"} if s["carried"] else set())
    if max(errors.values()) >= TOL:
        # A parameter whose gradient is tiny (one label's start state at H 1, say) meets the round-off of eq. (1),
        # about u |loss| / eps, at eps 1e-5 (seed 126: 1.2e-6). A larger step has less round-off and more
        # truncation (eps^2): a right gradient passes at one of the two steps, a wrong one at neither.
        wider = gradcheck_piece(L.network_forward, L.network_backward, params, inputs, seed=s["seed"], eps=1e-4)
        errors = {key: min(e, wider[key]) for key, e in errors.items()}
    assert max(errors.values()) < TOL, errors


def test_a_deliberately_broken_label_backward_fails_the_check():
    """Two wrong backward passes: the start state without tanh' (eq. L4), and dL_in written, not added,
    for a label that two sequences share (eq. L3). The check must catch both."""
    rng = np.random.default_rng(0)
    labels = np.array([1, 0, 1])                                 # label 1 twice
    p_h, p_in = {"L_h": rng.normal(size=(2, 4))}, {"L_in": rng.normal(size=(2, 3))}
    X = rng.normal(size=(3, 5, 3))
    assert max(gradcheck_piece(K.label_state_forward, K.label_state_backward, p_h, labels).values()) < TOL
    assert max(gradcheck_piece(K.label_input_forward, K.label_input_backward, p_in, (X, labels)).values()) < TOL

    def no_tanh_derivative(params, cache, dh0):
        return K.label_state_backward(params, dict(cache, h0=np.zeros_like(cache["h0"])), dh0)

    def written_not_added(params, cache, dX):
        dL = np.zeros((cache["C"], dX.shape[-1]))
        dL[cache["labels"]] = dX.sum(axis=1)                     # a repeated label keeps only one row's sum
        return {"L_in": dL}, (dX, None)

    assert gradcheck_piece(K.label_state_forward, no_tanh_derivative, p_h, labels)["L_h"] > 1e-2
    assert gradcheck_piece(K.label_input_forward, written_not_added, p_in, (X, labels))["L_in"] > 1e-2


def test_the_gradcheck_command_checks_the_label_tables(capsys):
    assert main(["gradcheck", "--labels", "3", "--layers", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and {"L_in", "L_h.0", "L_h.1"} <= set(out["relative_errors"])
    assert main(["gradcheck", "--labels", "2", "--embedding", "0", "--json"]) == 0   # one-hot: L_in is (C, H)
    assert json.loads(capsys.readouterr().out)["relative_errors"]["L_in"] < TOL


def test_the_gradcheck_command_fails_on_a_broken_label_backward(monkeypatch, capsys):
    """The command's check of the whole labelled network catches a label backward that forgets tanh'."""
    def no_tanh_derivative(params, cache, dh0):
        grads = {}
        for layer, c in enumerate(cache["layers"]):
            dL = np.zeros((c["C"], dh0.shape[-1]))
            np.add.at(dL, c["labels"], dh0[layer])                # dh0 itself, not dh0 * (1 - h0^2)
            grads[f"L_h.{layer}"] = dL
        return grads, None

    monkeypatch.setattr(L, "label_states_backward", no_tanh_derivative)
    assert main(["gradcheck", "--labels", "2", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    # the command's tables start near 0 (scale 0.1), where tanh' = 1 - h0^2 is nearly 1: the error is
    # small, yet thousands of times the tolerance that a right gradient meets by four orders of magnitude
    assert not out["ok"] and out["relative_errors"]["L_h.0"] > 1e3 * TOL and out["relative_errors"]["W_hy"] < TOL


# --- 2. the fast path against the reference, one sequence and one step at a time ---------------------

@settings(max_examples=12, deadline=None)
@given(shapes)
def test_labelled_network_equals_the_reference(s):
    rng = np.random.default_rng(s["seed"])
    B, T, V, H, layers = s["B"], s["T"], s["V"], s["H"], s["layers"]
    params = labelled_params(rng, V, H, layers, s["E"], s["C"])
    ids, targets = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    mask = rng.random((B, T)) < 0.7
    h0 = rng.normal(scale=0.5, size=(layers, B, H)) if s["carried"] else None
    drop = (rng.random((B, T, H)) >= s["dropout"], s["dropout"]) if s["dropout"] else None
    labels = rng.integers(0, s["C"], size=B)
    (loss, h_T), cache = L.network_forward(params, (ids, targets, mask, h0, drop, labels))
    grads, _ = L.network_backward(params, cache)
    ref_loss, ref_h_T, ref_grads, _ = R.batch_forward_backward(params, ids, targets, mask, h0, drop, labels=labels)
    assert math.isclose(loss, ref_loss, rel_tol=1e-12, abs_tol=1e-12)
    np.testing.assert_allclose(h_T, ref_h_T, rtol=0, atol=1e-12)
    assert set(grads) == set(ref_grads) == set(params)
    for k in params:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=0, atol=1e-12, err_msg=k)


def test_a_reference_that_ignores_the_label_is_caught():
    """The comparison can fail: a labelled reference fed no label (zero tables' effect) disagrees."""
    rng = np.random.default_rng(2)
    params = labelled_params(rng, 5, 3, 1, None, 2)
    ids, targets = rng.integers(0, 5, size=(2, 4)), rng.integers(0, 5, size=(2, 4))
    labels = np.array([0, 1])
    (loss, _), _ = L.network_forward(params, (ids, targets, None, None, None, labels))
    assert abs(loss - R.batch_forward_backward(params, ids, targets, labels=labels)[0]) < 1e-12
    assert abs(loss - R.batch_forward_backward(params, ids, targets)[0]) > 1e-6


def test_zero_label_tables_compute_the_unlabelled_network():
    """At initialisation (zero tables) a labelled network is the unlabelled one: tanh(0) = 0, +0 at each step."""
    rng = np.random.default_rng(4)
    for E in (None, 3):
        p = init_params(6, 4, 2, E, np.random.default_rng(1))
        p_lab = {**p, **K.label_params(3, K.input_label_width(6, 4, E), 4, 2)}
        ids, targets = rng.integers(0, 6, size=(3, 5)), rng.integers(0, 6, size=(3, 5))
        (a, ha), _ = L.network_forward(p, (ids, targets, None, np.zeros((2, 3, 4))))
        (b, hb), _ = L.network_forward(p_lab, (ids, targets, None, None, None, np.array([2, 0, 1])))
        assert a == b and np.array_equal(ha, hb)


# --- 3. the model: stepping, scoring, files ----------------------------------------------------------

@pytest.fixture(scope="module")
def ab_model():
    """Trained on runs of a's and of b's whose label decides the letter (a second or so)."""
    return RNNModel(hidden=16, epochs=40, batch_size=6, seq_len=16, lr=2e-2, valid_fraction=0.0,
                    seed=0).fit(AB_TEXTS, labels=AB_LABELS)


@pytest.fixture(scope="module")
def small_models():
    """Briefly trained labelled models: one-hot one layer, and embedded two layers (word level)."""
    texts = ["the cat sat", "a dog ran", "the dog sat on the mat", "cats nap", "a cat", "dogs dig"]
    labels = ["cat", "dog", "dog", "cat", "cat", "dog"]
    return [
        RNNModel(hidden=6, epochs=3, batch_size=2, seq_len=4, lr=1e-2, seed=1,
                 valid_fraction=0.3).fit(texts, labels=labels),
        RNNModel(hidden=5, layers=2, embedding=3, epochs=3, batch_size=3, seq_len=3, lr=1e-2, seed=2,
                 valid_fraction=0.0, tokenizer=scratchgen.Tokenizer(level="word")).fit(texts, labels=labels),
    ]


def test_labelled_training_learns_what_the_label_decides(ab_model):
    m = ab_model
    result = m.classify(["aaa", "b", "aaaaaa", "bbbb", "a", "bbbbbb"])
    assert result.labels == ["a", "b", "a", "b", "a", "b"]       # accuracy 1.0
    assert np.allclose(result.posterior.sum(axis=1), 1.0)
    for label in ("a", "b"):
        # at temperature 0.5: after a second of training the other letter keeps a small probability
        # (below 0.4% at the first step in 20 seeds), and 20 samples at temperature 1 met it in 5 seeds
        # of 15 (e.g. 'abbbbb' for b); at 0.5 in none of 20
        samples = m.generate_text(20, label=label, seed=0, max_tokens=12, temperature=0.5)
        assert all(set(s) <= {label} for s in samples), (label, samples)
        first = m.next_logprobs(m.initial_state(1, labels=np.array([m.labels_.id(label)])))[0]
        other = m.vocab_.encode(["b" if label == "a" else "a"])[0]
        assert np.exp(first[other]) < 0.05                       # P(first token = the other letter | label)
    # the label is worth something: log P(x | its label) is far above log P(x | the other)
    assert m.logprob("aaaa", label="a") > m.logprob("aaaa", label="b") + 5


def test_stepping_default_equals_vectorised(small_models):
    for m in small_models:
        seqs = [m.fitted_vocab().encode(m.tokenize(t)) for t in ["the cat", "a dog sat", "", "zebra"]]
        for c in range(len(m.labels_)):
            ids = np.full(len(seqs), c)
            fast = m._token_logprobs(seqs, ids)
            slow = LanguageModel._token_logprobs(m, seqs, ids)   # the protocol's stepping default
            for f, s in zip(fast, slow):
                np.testing.assert_allclose(f, s, rtol=1e-10, atol=1e-12)
        mixed = np.array([0, 1, 1, 0])
        for f, s in zip(m._token_logprobs(seqs, mixed), LanguageModel._token_logprobs(m, seqs, mixed)):
            np.testing.assert_allclose(f, s, rtol=1e-10, atol=1e-12)


def test_next_token_rows_normalise_for_every_label(small_models):
    for m in small_models:
        C = len(m.labels_)
        state = m.initial_state(C, labels=np.arange(C))
        for token in m.vocab_.encode(m.tokenize("the cat")):
            lp = m.next_logprobs(state)                          # (C, V)
            assert np.allclose(np.exp(lp).sum(axis=1), 1.0)
            state = m.advance(state, np.full(C, token))
        assert np.array_equal(state[-1], np.arange(C))           # the state ends with the label ids


def test_the_label_changes_the_first_prediction(small_models):
    """h0 and the input both depend on c: the two labels' first rows differ once trained."""
    for m in small_models:
        lp = m.next_logprobs(m.initial_state(2, labels=np.array([0, 1])))
        assert not np.allclose(lp[0], lp[1])


def test_save_load_round_trip(small_models, tmp_path):
    for i, m in enumerate(small_models):
        path = tmp_path / f"m{i}.npz"
        m.save(path)
        back = scratchgen.load(path)
        assert back.labels_ == m.labels_
        assert set(back.params_) == set(m.params_) and {"L_in", "L_h.0"} <= set(back.params_)
        for k in m.params_:
            assert np.array_equal(back.params_[k], m.params_[k]), k
        for label in m.labels_.names:
            assert back.logprob("the cat", label=label) == m.logprob("the cat", label=label)
        assert back.logprob("the cat") == m.logprob("the cat")      # the marginal


def test_a_file_whose_label_tables_do_not_fit_its_labels_is_refused(small_models, tmp_path):
    """The schema sizes L_in and L_h.l by len(labels_): a header with a label more is a clear error."""
    path = tmp_path / "m.npz"
    small_models[0].save(path)
    header, arrays = read_archive(str(path), "model", "load")
    header["labels"] = {"names": ["cat", "dog", "eel"], "counts": [3, 3, 1]}
    write_archive(str(tmp_path / "edited.npz"), header, arrays)
    with pytest.raises(ModelFileError, match="L_in"):
        scratchgen.load(tmp_path / "edited.npz")
    header["labels"] = None                                      # an unlabelled header with label tables
    write_archive(str(tmp_path / "edited.npz"), header, arrays)
    with pytest.raises(ModelFileError):
        scratchgen.load(tmp_path / "edited.npz")


def test_marginal_is_the_prior_weighted_mixture(small_models):
    m = small_models[0]
    per_label = [m.logprob("a cat", label=name) for name in m.labels_.names]
    expected = np.logaddexp.reduce(np.array(per_label) + m.labels_.log_prior)
    assert math.isclose(m.logprob("a cat"), expected, rel_tol=1e-10)


# --- 4. resume from a checkpoint, bit for bit, with labels -------------------------------------------

def test_resume_from_checkpoint_is_bit_for_bit_with_labels(tmp_path):
    texts = AB_TEXTS + ["ab" * k for k in range(1, 5)]                 # some sequences longer than T: carried chunks
    labels = AB_LABELS + ["mixed"] * 4
    kw = dict(hidden=8, embedding=3, layers=2, epochs=3, batch_size=4, seq_len=4, lr=1e-2, seed=3,
              valid_fraction=0.2, eval_interval=4, dropout=0.2)
    whole = RNNModel(**kw).fit(texts, labels=labels)
    ck = str(tmp_path / "ck.npz")

    class DieAt8(Callback):
        def after_step(self, trainer, epoch_end):
            if trainer.step >= 8:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RNNModel(**kw).fit(texts, labels=labels, callbacks=[Checkpoint(ck, every=3), DieAt8()])
    assert read_archive(ck, "checkpoint", "resume from")[0]["labels"]["names"] == ["a", "b", "mixed"]
    resumed = RNNModel(**kw).fit(texts, labels=labels, resume=ck)
    assert set(whole.params_) == set(resumed.params_)
    for k in whole.params_:
        assert np.array_equal(whole.params_[k], resumed.params_[k]), k
    assert [h["valid_loss"] for h in whole.history_] == [h["valid_loss"] for h in resumed.history_]
    # the checkpoint belongs to these labels: other labels, or none, are refused by name
    other = ["x" if lab == "mixed" else lab for lab in labels]
    with pytest.raises(ModelFileError, match="labels 'a', 'b', 'mixed'"):
        RNNModel(**kw).fit(texts, labels=other, resume=ck)
    with pytest.raises(ModelFileError, match="no labels"):
        RNNModel(**kw).fit(texts, resume=ck)
    shuffled = labels[1:] + labels[:1]                             # same label set, other assignment
    with pytest.raises(ModelFileError, match="another corpus"):
        RNNModel(**kw).fit(texts, labels=shuffled, resume=ck)


# --- 5. errors ----------------------------------------------------------------------------------------

def test_label_errors(small_models):
    m = small_models[0]
    with pytest.raises(LabelError, match="needs labels="):
        m.initial_state(2)
    with pytest.raises(LabelError, match="label ids run from 0 to 1"):
        m.initial_state(1, labels=np.array([2]))
    with pytest.raises(LabelError, match="2 integer label ids"):
        m.initial_state(2, labels=np.array([0]))
    with pytest.raises(LabelError, match="unknown label 'eel'.*'cat', 'dog'"):
        m.logprob("a cat", label="eel")
    with pytest.raises(LabelError, match="running-text"):
        m.stream_loss(["a cat"])
    unlabelled = RNNModel(hidden=4, epochs=1, batch_size=2, valid_fraction=0.0).fit(["ab", "ba"])
    with pytest.raises(LabelError, match="has no labels"):
        unlabelled.logprob("ab", label="cat")
    assert unlabelled.initial_state(1, labels=np.array([5]))[0].shape == (1, 4)   # ignored, as the protocol says


def test_fit_refuses_bad_labels():
    with pytest.raises(LabelError, match="one label per training sequence"):
        RNNModel(hidden=4, epochs=1).fit(["ab", "ba"], labels="a")
    with pytest.raises(LabelError, match="1 labels for 2 training sequences"):
        RNNModel(hidden=4, epochs=1).fit(["ab", "ba"], labels=["a"])
    with pytest.raises(LabelError, match="one example a line"):
        RNNModel(hidden=4, epochs=1, running_text=True, batch_size=1).fit(["abab", "baba"], labels=["a", "b"])
    # "auto" reads a labelled corpus as lines, however long its lines are
    m = RNNModel(hidden=4, epochs=1, seq_len=2, batch_size=2, valid_fraction=0.0).fit(["abab", "baba"],
                                                                                      labels=["a", "b"])
    assert m.running_text_ is False


def test_cli_train_rnn_labelled(tmp_path, capsys):
    corpus = tmp_path / "ab.tsv"
    corpus.write_text("".join(f"{lab}\t{text}\n" for lab, text in zip(AB_LABELS, AB_TEXTS)))
    model = tmp_path / "m.npz"
    args = ["train", "rnn", "--labelled", str(corpus), "-o", str(model), "--hidden", "8", "--epochs", "2",
            "--batch", "6", "--quiet", "--seed", "1"]
    assert main(args) == 0
    assert "labels a, b" in capsys.readouterr().err
    m = scratchgen.load(model)
    assert m.labels_.names == ("a", "b") and m.labels_.counts == (18, 18)
    assert main(args[:3] + [str(corpus), "-o", str(model), "--mode", "chunks"]) == 1
    assert "one example a line" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\taaa\nno tab here\n")
    assert main(["train", "rnn", "--labelled", str(bad), "-o", str(model), "--quiet"]) == 1
    assert "line 2 has no tab" in capsys.readouterr().err
