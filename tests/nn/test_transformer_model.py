"""The Transformer as a model (scratchgen/nn/transformer.py): causality, the key/value cache against full
recomputation, the windows past the context (eq. T4), the fast path against the textbook reference,
gradients of the network (labelled or not) against finite differences, files, checkpoints, the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import TransformerModel, load
from scratchgen.cli.main import main
from scratchgen.errors import LabelError, ModelFileError, ScratchgenError
from scratchgen.nn import TrainConfig, gradcheck
from scratchgen.nn.transformer import (
    TransformerNetwork,
    _trunk_forward,
    init_transformer,
    network_gradcheck,
    window_starts,
)
from scratchgen.nn.transformer_reference import sequence_logprobs

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"] * 3


def small(**kw):
    base = dict(layers=2, heads=2, embedding=8, context=6, batch_size=4, lr=1e-2, epochs=2, valid_fraction=0.0)
    return TransformerModel(**{**base, **kw})


@pytest.fixture(scope="module")
def fitted():
    return small().fit(NAMES)


@pytest.fixture(scope="module")
def labelled():
    labels = ["a" if n[0] in "ae" else "b" for n in NAMES]
    return small(epochs=4).fit(NAMES, labels=labels)


def random_params(rng, V=7, D=4, L=2, T=5, tied=True, labels=0):
    p = init_transformer(V, D, L, T, rng, tied=tied, labels=labels)
    return {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in p.items()}  # far from the initial point


def stepped(model, ids, label=None):
    """log P of each token and </s> by initial_state / next_logprobs / advance (the key/value cache)."""
    labels = None if label is None else np.array([label])
    state = model.initial_state(1, labels=labels)
    out = []
    for tok in [*ids, 2]:
        out.append(model.next_logprobs(state)[0, tok])
        state = model.advance(state, [tok])
    return np.array(out)


# --- causality and the cache ------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 5), st.integers(0, 10_000))
def test_changing_token_t_never_changes_the_outputs_before_t(t, seed):
    rng = np.random.default_rng(seed)
    p = random_params(rng, T=6)
    ids = rng.integers(0, 7, (2, 6))
    changed = ids.copy()
    changed[:, t] = (changed[:, t] + 1 + rng.integers(0, 6)) % 7
    before, _ = _trunk_forward(p, ids, 2)
    after, _ = _trunk_forward(p, changed, 2)
    np.testing.assert_array_equal(before[:, :t], after[:, :t])  # exactly: the mask gives the future weight 0
    assert not np.allclose(before[:, t], after[:, t])  # and position t does see its own token


def test_the_cache_gives_the_logits_of_full_recomputation(fitted):
    """Within the context, each cached step equals one forward pass over the whole prefix."""
    rng = np.random.default_rng(0)
    ids = rng.integers(3, len(fitted.vocab_), size=fitted.context - 1)
    state = fitted.initial_state(2)
    prefix = [1]
    for tok in ids:
        XL, _ = _trunk_forward(fitted.params_, np.array([prefix, prefix]), fitted.heads)
        full = fitted.next_logprobs((XL[:, -1],))  # next_logprobs reads only the top of the stream
        np.testing.assert_allclose(fitted.next_logprobs(state), full, atol=1e-12)
        assert state[1].shape == (2, len(prefix)) and state[2].shape == (2, 2, len(prefix), 4)  # K_0 (B, A, t, d)
        state = fitted.advance(state, [tok, tok])
        prefix.append(int(tok))


def test_advance_leaves_the_given_state_unchanged(fitted):
    state = fitted.initial_state(1)
    copies = [a.copy() for a in state]
    fitted.advance(state, [3])
    for a, b in zip(state, copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n, context", [(1, 1), (5, 1), (7, 4), (10, 4), (23, 6), (30, 5)])
def test_windows_answer_every_position_once_from_enough_context(n, context):
    answered = []
    H = max(1, context // 2)
    for s, first, stop in window_starts(n, context):
        assert s <= first and stop <= s + context  # inside the window
        assert first - s + 1 >= min(context - H + 1, first + 1)  # at least T - H + 1 tokens seen, eq. (T4)
        answered += range(first, stop)
    assert answered == list(range(n))


@pytest.mark.parametrize("n, context, stride", [(7, 4, 1), (10, 4, 3), (23, 6, 6), (30, 5, 2)])
def test_windows_of_a_given_stride_answer_every_position_once(n, context, stride):
    answered = []
    for s, first, stop in window_starts(n, context, stride):
        assert s <= first and stop <= s + context
        assert first - s + 1 >= min(context - stride + 1, first + 1)  # at least T - stride + 1 tokens seen
        answered += range(first, stop)
    assert answered == list(range(n))


@pytest.mark.parametrize("stride", [0, 7])
def test_a_stride_outside_the_context_is_refused(stride):
    with pytest.raises(ScratchgenError, match="stride"):
        window_starts(10, 6, stride)


def test_stride_one_gives_every_prediction_the_full_context():
    """Sliding windows (stride 1): position i is predicted from exactly x[max(0, i - T + 1) .. i]."""
    rng = np.random.default_rng(4)
    T, A, V = 5, 2, 7
    p = init_transformer(V, 8, 2, T, rng)
    p = {k: v + rng.normal(scale=0.2, size=v.shape) for k, v in p.items()}
    ids = rng.integers(0, V, size=17)
    logp = TransformerNetwork(A).stream_loss(p, ids, stride=1)[0]
    expected = []
    for i in range(len(ids) - 1):
        window = ids[max(0, i - T + 1) : i + 1]
        XL, _ = _trunk_forward(p, window[None], A)
        logits = final_logits(p, XL[0, -1])
        expected.append(logits[ids[i + 1]] - np.log(np.exp(logits).sum()))
    assert logp == pytest.approx(-np.mean(expected), abs=1e-10)
    assert logp != pytest.approx(TransformerNetwork(A).stream_loss(p, ids)[0], abs=1e-6)  # eq. (T4) sees less


def final_logits(p, x):
    """The logits of one position from its top residual vector (eq. (T3)), written out."""
    n = (x - x.mean()) / np.sqrt(x.var() + 1e-5) * p["lnf.g"] + p["lnf.b"]
    return n @ p["C"].T + p["b_out"]


# --- fast = reference = stepping ----------------------------------------------------------------------


@pytest.mark.parametrize("tied", [True, False])
def test_fast_equals_the_reference_and_stepping_past_the_context(tied):
    """Sequences shorter and longer than the context (T = 6): the windows of eq. (T4) in all three."""
    rng = np.random.default_rng(1)
    m = small(tie_weights=tied).fit(NAMES)
    m.params_ = {k: v + rng.normal(scale=0.2, size=v.shape) for k, v in m.params_.items()}
    seqs = [rng.integers(0, len(m.vocab_), size=n) for n in (0, 1, 4, 5, 6, 9, 17)]
    fast = m.token_logprobs(seqs)
    for s, f in zip(seqs, fast):
        np.testing.assert_allclose(f, sequence_logprobs(m.params_, m.heads, list(s)), atol=1e-10)
        np.testing.assert_allclose(f, stepped(m, s), atol=1e-10)


def test_labelled_fast_equals_the_reference_and_stepping(labelled):
    rng = np.random.default_rng(2)
    seqs = [rng.integers(0, len(labelled.vocab_), size=n) for n in (3, 8, 13)]
    for c in (0, 1):
        fast = labelled.token_logprobs(seqs, labels=[labelled.labels_.names[c]] * len(seqs))
        for s, f in zip(seqs, fast):
            np.testing.assert_allclose(f, sequence_logprobs(labelled.params_, 2, list(s), label=c), atol=1e-10)
            np.testing.assert_allclose(f, stepped(labelled, s, label=c), atol=1e-10)


def test_a_labelled_model_needs_labels_to_start(labelled):
    with pytest.raises(LabelError, match="labelled"):
        labelled.initial_state(1)
    assert labelled.params_["L_in"].shape == (2, 8)  # (C, D)
    a = labelled.next_logprobs(labelled.initial_state(1, labels=np.array([0])))
    b = labelled.next_logprobs(labelled.initial_state(1, labels=np.array([1])))
    assert not np.allclose(a, b)  # the label moved the first prediction


# --- gradients ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [0, 3])
@pytest.mark.parametrize("tied", [True, False])
def test_network_gradients_match_finite_differences(tied, labels):
    rng = np.random.default_rng(3)
    p = random_params(rng, tied=tied, labels=labels)
    ids, targets = rng.integers(0, 7, (3, 5)), rng.integers(0, 7, (3, 5))
    mask = rng.random((3, 5)) < 0.75
    inputs = (ids, targets, mask, None) + ((None, rng.integers(0, labels, 3)) if labels else ())
    net = TransformerNetwork(2)

    def loss_and_grads(q):
        (loss, _), cache = net.forward(q, inputs)
        return loss, net.backward(q, cache)[0]

    errors = gradcheck(loss_and_grads, p, seed=0)
    assert set(errors) == set(p)
    assert max(errors.values()) < 1e-6, errors


def test_a_wrong_gradient_fails_the_check():
    """The check can fail: the tied output's half of C's gradient left out is caught."""
    rng = np.random.default_rng(4)
    p = random_params(rng)
    ids, targets = rng.integers(0, 7, (2, 5)), rng.integers(0, 7, (2, 5))
    net = TransformerNetwork(2)

    def broken(q):
        (loss, _), cache = net.forward(q, (ids, targets, None, None))
        grads = net.backward(q, cache)[0]
        from scratchgen.nn.attention import embed_backward

        grads["C"] = embed_backward(q, cache["emb"], np.zeros((2, 5, 4)))[0]["C"] * 0  # drop the output's use
        return loss, grads

    assert gradcheck(broken, p, seed=0)["C"] > 1e-2


def test_the_cli_gradcheck_passes(capsys):
    errors, what = network_gradcheck(layers=2, embedding=4, labels=2)
    assert max(errors.values()) < 1e-6 and "2 labels" in what
    assert main(["gradcheck", "--model", "transformer", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


# --- training, files and checkpoints --------------------------------------------------------------------


def test_training_lowers_the_loss_and_the_chunks_are_the_context():
    m = small(epochs=6, seq_len=99).fit(NAMES)
    assert m.history_[-1]["train_loss"] < m.history_[0]["train_loss"]
    state = m.initial_state(1)
    assert state[1].shape == (1, 1)  # after <s>: one position


def test_bad_architectures_are_refused_by_name():
    with pytest.raises(ScratchgenError, match=r"embedding \(--embedding\) 10 must be a multiple of heads"):
        small(embedding=10, heads=4).fit(NAMES)
    with pytest.raises(ScratchgenError, match=r"context \(--context\)"):
        small(context=0).fit(NAMES)
    with pytest.raises(ScratchgenError, match="no dropout"):
        small(dropout=0.1).fit(NAMES)


@pytest.mark.parametrize("labelled_model", [False, True])
def test_save_load_round_trips(tmp_path, fitted, labelled, labelled_model):
    m = labelled if labelled_model else fitted
    path = str(tmp_path / "t.npz")
    m.save(path)
    back = load(path)
    assert back.get_params() == m.get_params()
    for k, v in m.params_.items():
        np.testing.assert_array_equal(back.params_[k], v)
    seqs = [m.vocab_.encode(list("isabellamia"))]
    lab = None if not labelled_model else ["a"]
    np.testing.assert_array_equal(back.token_logprobs(seqs, labels=lab)[0], m.token_logprobs(seqs, labels=lab)[0])


def test_a_file_with_a_wrong_shape_is_refused(tmp_path, fitted):
    path = str(tmp_path / "t.npz")
    fitted.save(path)
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    arrays["param/P_pos"] = arrays["param/P_pos"][:-1]
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="P_pos"):
        load(path)


@pytest.mark.parametrize("running", [False, True])
def test_resume_is_bit_for_bit(tmp_path, running):
    from scratchgen.nn import Checkpoint

    text = NAMES if not running else [" ".join(NAMES)] * 2
    cfg = TrainConfig(batch_size=3, lr=1e-2, epochs=3, max_steps=14, running_text=running, valid_fraction=0.2,
                      eval_interval=4, lr_schedule="constant", patience=None)  # fmt: skip
    arch = dict(layers=1, heads=2, embedding=4, context=5)
    whole = TransformerModel(**arch).fit(text, config=cfg)
    ck = str(tmp_path / "ck.npz")
    TransformerModel(**arch).fit(text, config=TrainConfig(**{**cfg.__dict__, "max_steps": 7}),
                                 callbacks=[Checkpoint(ck, every=7)])  # fmt: skip
    resumed = TransformerModel(**arch).fit(text, config=cfg, resume=ck)
    for k, v in whole.params_.items():
        np.testing.assert_array_equal(resumed.params_[k], v)
    assert resumed.valid_loss_ == whole.valid_loss_


# --- the command line -------------------------------------------------------------------------------


def test_cli_train_transformer_and_generate(tmp_path, capsys):
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(NAMES) + "\n")
    out = tmp_path / "m.npz"
    assert main(["train", "transformer", "--layers", "1", "--heads", "2", "--embedding", "4", "--context", "8",
                 "--epochs", "2", "--batch", "4", "--quiet", str(corpus), "-o", str(out)]) == 0  # fmt: skip
    assert "trained Transformer (1 block(s), 2 heads" in capsys.readouterr().err
    m = load(str(out))
    assert isinstance(m, TransformerModel) and m.context == 8
    assert main(["generate", str(out), "-n", "2", "--seed", "1"]) == 0
    assert main(["train", "transformer", "--heads", "3", "--embedding", "4", str(corpus), "-o", str(out)]) == 1
    assert "multiple of heads" in capsys.readouterr().err
