"""Bengio's MLP as a model (scratchgen/nn/mlp.py): the fast path against the textbook reference, the window
as the state, chunks that change nothing, gradients of the network (labelled or not) against finite
differences, files, checkpoints and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import MLPModel, load
from scratchgen.cli.main import main
from scratchgen.errors import LabelError, ModelFileError, ScratchgenError
from scratchgen.nn import TrainConfig, gradcheck
from scratchgen.nn.mlp import MLPNetwork, chunk_windows, init_mlp_params, label_mlp_params
from scratchgen.nn.mlp_reference import sequence_logprobs

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"] * 3


def small(**kw):
    base = dict(context=3, embedding=4, hidden=8, batch_size=4, seq_len=8, lr=1e-2, epochs=2, valid_fraction=0.0)
    return MLPModel(**{**base, **kw})


@pytest.fixture(scope="module")
def fitted():
    return small().fit(NAMES)


@pytest.fixture(scope="module")
def labelled():
    labels = ["a" if n[0] in "ae" else "b" for n in NAMES]
    return small(epochs=4).fit(NAMES, labels=labels)


def random_params(rng, V, N, E, H, labels=0):
    p = init_mlp_params(V, N, E, H, rng)
    if labels:
        p.update(label_mlp_params(labels, E, H, seed=3))
    return {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in p.items()}  # no zero biases or label rows


# --- the fast path equals the reference -----------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.integers(0, 1000), st.booleans())
def test_token_logprobs_equal_the_reference(N, seed, with_labels):
    """Every window of a padded batch at once (mlp eq. 2) = one token at a time with plain loops."""
    rng = np.random.default_rng(seed)
    m = small(context=N).fit(NAMES[:10], labels=["x", "y"] * 5 if with_labels else None)
    m.params_ = random_params(rng, len(m.vocab_), N, 4, 8, labels=2 if with_labels else 0)
    seqs = [rng.integers(3, len(m.vocab_), size=n) for n in (0, 1, 5, 9)]
    labels = rng.integers(0, 2, size=len(seqs)) if with_labels else None
    fast = m.token_logprobs(seqs, labels=None if labels is None else [m.labels_.names[c] for c in labels])
    for i, s in enumerate(seqs):
        ref = sequence_logprobs(m.params_, s.tolist(), N, None if labels is None else int(labels[i]))
        np.testing.assert_allclose(fast[i], ref, rtol=1e-10, atol=1e-10)


def test_the_state_is_the_last_n_ids(fitted):
    """Only the last N tokens matter: two histories that end alike give the same next distribution."""
    v = fitted.vocab_
    a = fitted.initial_state(1)
    b = fitted.initial_state(1)
    for ch in "olivia":
        a = fitted.advance(a, [v.index(ch)])
    for ch in "via":  # the same last 3 characters
        b = fitted.advance(b, [v.index(ch)])
    assert a.tolist() == b.tolist() == [[v.index("v"), v.index("i"), v.index("a")]]
    np.testing.assert_array_equal(fitted.next_logprobs(a), fitted.next_logprobs(b))
    c = fitted.advance(fitted.initial_state(1), [v.index("m")])  # "m" only: a different window
    assert not np.allclose(fitted.next_logprobs(c), fitted.next_logprobs(b))


def test_chunks_change_nothing():
    """The window carried across chunks (eq. 2): a text in chunks of 3 has the same loss as in one chunk."""
    rng = np.random.default_rng(0)
    N, V = 3, 7
    p = random_params(rng, V, N, 4, 5)
    net = MLPNetwork(N)
    x = rng.integers(0, V, size=(2, 9))
    y = rng.integers(0, V, size=(2, 9))
    (whole, end_whole), _ = net.forward(p, (x, y, None, None))
    state, total = None, 0.0
    for t in range(0, 9, 3):
        (loss, state), _ = net.forward(p, (x[:, t : t + 3], y[:, t : t + 3], None, state))
        total += loss / 3
    assert total == pytest.approx(whole, rel=1e-12)
    np.testing.assert_array_equal(state, end_whole)
    np.testing.assert_array_equal(end_whole, x[:, -N:])


def test_chunk_windows_worked_example():
    # N = 2; the state [7, 8] precedes the chunk [1, 2, 3]: windows (7 8) (8 1) (1 2)... shifted by one
    windows, state = chunk_windows(np.array([[7, 8]]), np.array([[1, 2, 3]]))
    assert windows.tolist() == [[[8, 1], [1, 2], [2, 3]]]  # the window of x_t ends at x_t
    assert state.tolist() == [[2, 3]]


# --- gradients of the whole network ---------------------------------------------------------------


def network_errors(p, inputs, N, broken=False):
    net = MLPNetwork(N)

    def loss_and_grads(q):
        (loss, _), cache = net.forward(q, inputs)
        grads = net.backward(q, cache)[0]
        if broken:
            grads = {**grads, "W_c" if "W_c" in grads else "W_h": 1.01 * grads["W_c" if "W_c" in grads else "W_h"]}
        return loss, grads

    return gradcheck(loss_and_grads, p)


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(0, 1000), st.booleans())
def test_network_gradients_match_finite_differences(N, T, seed, with_labels):
    """Padding mask, a carried window (or the labels' slot), in float64: every parameter within 1e-6."""
    rng = np.random.default_rng(seed)
    V, E, H, B = 6, 3, 4, 3
    p = random_params(rng, V, N, E, H, labels=2 if with_labels else 0)
    x, y = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    mask = rng.random((B, T)) < 0.75
    state = rng.integers(0, V, size=(B, N))
    inputs = (x, y, mask, state, None, rng.integers(0, 2, size=B)) if with_labels else (x, y, mask, state)
    errors = network_errors(p, inputs, N)
    assert set(errors) == set(p)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("with_labels", [False, True])
def test_a_broken_backward_fails_the_check(with_labels):
    rng = np.random.default_rng(1)
    p = random_params(rng, 6, 2, 3, 4, labels=2 if with_labels else 0)
    x, y = rng.integers(0, 6, size=(2, 4)), rng.integers(0, 6, size=(2, 4))
    inputs = (x, y, None, None, None, np.array([0, 1])) if with_labels else (x, y, None, None)
    assert max(network_errors(p, inputs, 2, broken=True).values()) > 1e-3


def test_a_fresh_labelled_network_computes_the_unlabelled_one():
    """L_in starts at zero (eq. 3): before training the label changes nothing, whatever W_c is."""
    rng = np.random.default_rng(2)
    p = init_mlp_params(6, 2, 3, 4, rng)
    p_lab = {**p, **label_mlp_params(3, 3, 4, seed=0)}
    x, y = rng.integers(0, 6, size=(2, 5)), rng.integers(0, 6, size=(2, 5))
    net = MLPNetwork(2)
    (plain, _), _ = net.forward(p, (x, y, None, None))
    (lab, _), _ = net.forward(p_lab, (x, y, None, None, None, np.array([2, 0])))
    assert lab == pytest.approx(plain, rel=1e-12)


# --- training, labels, files ------------------------------------------------------------------------


def test_training_lowers_the_loss_below_uniform():
    m = small(epochs=30, valid_fraction=0.2, patience=None).fit(NAMES)
    assert m.history_[-1]["valid_loss"] < np.log(len(m.vocab_)) - 0.5


def test_labelled_model_needs_its_labels(labelled):
    assert labelled.params_["L_in"].shape == (2, 4) and labelled.params_["W_c"].shape == (4, 8)
    with pytest.raises(LabelError, match="labelled"):
        labelled.initial_state(1)
    window, ids = labelled.initial_state(2, labels=np.array([0, 1]))
    assert window.shape == (2, 3) and ids.tolist() == [0, 1]
    # the label moves the prediction once trained
    a = labelled.next_logprobs(labelled.initial_state(1, labels=np.array([0])))
    b = labelled.next_logprobs(labelled.initial_state(1, labels=np.array([1])))
    assert not np.allclose(a, b)


def test_dropout_is_refused():
    with pytest.raises(ScratchgenError, match="--dropout"):
        small(dropout=0.1).fit(NAMES)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, 5000])
def test_bad_context_is_named(bad):
    with pytest.raises(ScratchgenError, match=r"context \(--context\)"):
        small(context=bad).fit(NAMES)


def test_save_load_round_trip(tmp_path, fitted, labelled):
    for i, m in enumerate((fitted, labelled)):
        path = tmp_path / f"m{i}.npz"
        m.save(path)
        back = load(path)
        assert isinstance(back, MLPModel) and back.get_params() == m.get_params()
        for k, v in m.params_.items():
            np.testing.assert_array_equal(back.params_[k], v)
        assert back.logprob("emma", label="a" if i else None) == m.logprob("emma", label="a" if i else None)


def test_a_file_with_a_wrong_shape_is_refused(tmp_path, fitted):
    from scratchgen.io import read_archive, write_archive

    fitted.save(tmp_path / "m.npz")
    header, arrays = read_archive(str(tmp_path / "m.npz"), "model", "load")
    arrays["param/W_h"] = arrays["param/W_h"][:-1]  # one slot's row short
    write_archive(str(tmp_path / "bad.npz"), header, arrays)
    with pytest.raises(ModelFileError, match="W_h"):
        load(tmp_path / "bad.npz")


@pytest.mark.parametrize("running", [False, True])
def test_resume_is_bit_for_bit(tmp_path, running):
    """Stopped after 7 steps and resumed from the checkpoint = never stopped (the window is part of the state)."""
    from scratchgen.nn import Checkpoint

    text = NAMES if not running else [" ".join(NAMES)] * 2
    cfg = TrainConfig(batch_size=3, seq_len=5, lr=1e-2, epochs=3, max_steps=14, running_text=running,
                      valid_fraction=0.2, eval_interval=4, lr_schedule="constant", patience=None)
    whole = MLPModel(context=2, embedding=3, hidden=5).fit(text, config=cfg)
    ck = str(tmp_path / "ck.npz")
    half = MLPModel(context=2, embedding=3, hidden=5)
    half.fit(text, config=TrainConfig(**{**cfg.__dict__, "max_steps": 7}), callbacks=[Checkpoint(ck, every=7)])
    resumed = MLPModel(context=2, embedding=3, hidden=5).fit(text, config=cfg, resume=ck)
    for k, v in whole.params_.items():
        np.testing.assert_array_equal(resumed.params_[k], v)


# --- the command line -------------------------------------------------------------------------------


def test_cli_train_mlp_and_generate(tmp_path, capsys):
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(NAMES) + "\n")
    out = tmp_path / "m.npz"
    assert main(["train", "mlp", "--context", "2", "--embedding", "4", "--hidden", "8", "--epochs", "2",
                 "--batch", "4", "--quiet", str(corpus), "-o", str(out)]) == 0
    assert "trained MLP (context 2" in capsys.readouterr().err
    m = load(out)
    assert isinstance(m, MLPModel) and m.context == 2 and m.embedding == 4 and m.hidden == 8
    assert main(["generate", str(out), "-n", "2", "--seed", "0"]) == 0


def test_cli_bad_context_is_a_usage_error(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("ab\n")
    with pytest.raises(SystemExit) as e:
        main(["train", "mlp", "--context", "0", str(corpus), "-o", str(tmp_path / "m.npz")])
    assert e.value.code == 2


@pytest.mark.parametrize("labels", ["0", "3"])
def test_cli_gradcheck_mlp_json(capsys, labels):
    assert main(["gradcheck", "--model", "mlp", "--labels", labels, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["worst"] < 1e-6
    expected = {"C", "W_h", "b_h", "W_y", "b_y"} | ({"L_in", "W_c"} if labels != "0" else set())
    assert set(report["relative_errors"]) == expected
