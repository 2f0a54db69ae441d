"""Optimisers, batching, training, checkpoints and resume, guards, the model and its command line."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

import scratchgen
from scratchgen import RNNModel, ScratchgenError
from scratchgen.cli import main
from scratchgen.errors import ModelFileError
from scratchgen.nn import Callback, Checkpoint, Curve, ShowProgress
from scratchgen.nn import layers as layers_module
from scratchgen.nn.data import padded_batch, stream_array, stream_chunks
from scratchgen.nn.optim import SGD, Adagrad, Adam, clip_by_global_norm, learning_rate, orthogonal

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
         "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett"]
TEXT = ("the quick brown fox jumps over the lazy dog. " * 12).strip()


# --- optimisers by hand ----------------------------------------------------------------------------

def test_adam_first_step_is_lr_times_sign():
    # step 1: m^ = g, v^ = g^2, so the update is lr * g / (|g| + eps) = lr * sign(g)
    p = {"w": np.array([1.0, 1.0])}
    Adam(eps=0.0).step(p, {"w": np.array([0.5, -3.0])}, lr=0.1)
    assert np.allclose(p["w"], [0.9, 1.1])


def test_adamw_decays_weights_not_biases():
    # zero gradient (eps keeps 0/0 away): only the decoupled decay acts: w <- w (1 - lr lambda) = 2 (1 - 0.1 0.5)
    p = {"W": np.array([[2.0]]), "b_h": np.array([2.0])}
    Adam(weight_decay=0.5).step(p, {"W": np.array([[0.0]]), "b_h": np.array([0.0])}, lr=0.1)
    assert np.allclose(p["W"], [[1.9]]) and np.allclose(p["b_h"], [2.0])


def test_adamw_decays_the_transformers_matrices_not_its_biases_or_layernorms():
    # a Transformer's biases and LayerNorm parameters are named "h.0.attn.b_qkv", "h.0.ln1.g": one axis each
    names = {"C": (3, 2), "h.0.attn.W_qkv": (2, 6), "h.0.attn.b_qkv": (6,), "h.0.ln1.g": (2,), "lnf.b": (2,)}
    p = {k: np.full(s, 2.0) for k, s in names.items()}
    Adam(weight_decay=0.5).step(p, {k: np.zeros(s) for k, s in names.items()}, lr=0.1)
    for k, s in names.items():
        assert np.allclose(p[k], 1.9 if len(s) == 2 else 2.0), k


def test_sgd_momentum_two_steps():
    # v1 = g = 1 -> w = 1 - 0.1 = 0.9; v2 = 0.9 * 1 + 1 = 1.9 -> w = 0.9 - 0.19 = 0.71
    p = {"w": np.array([1.0])}
    opt = SGD(momentum=0.9)
    opt.step(p, {"w": np.array([1.0])}, lr=0.1)
    opt.step(p, {"w": np.array([1.0])}, lr=0.1)
    assert np.allclose(p["w"], [0.71])


def test_adagrad_two_steps():
    # G = 4 -> w = 0 - 1 * 2 / 2 = -1; G = 4 + 4 = 8 -> w = -1 - 2 / sqrt(8) = -1.7071...
    p = {"w": np.array([0.0])}
    opt = Adagrad(eps=0.0)
    opt.step(p, {"w": np.array([2.0])}, lr=1.0)
    opt.step(p, {"w": np.array([2.0])}, lr=1.0)
    assert np.allclose(p["w"], [-1.0 - 2 / math.sqrt(8)])


def test_clipping_keeps_direction_and_leaves_small_gradients():
    g = {"a": np.array([6.0, 8.0])}                              # norm 10
    assert clip_by_global_norm(g, 5.0) == 10.0 and np.allclose(g["a"], [3.0, 4.0])
    assert clip_by_global_norm(g, 100.0) == 5.0 and np.allclose(g["a"], [3.0, 4.0])


def test_schedules():
    # step decay: base 1, gamma 0.5, every 2 steps -> 1, 1, .5, .5, .25
    assert [learning_rate(s, 5, 1.0, "step", step_size=2) for s in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    # cosine halfway between 1 and 0.1: 0.1 + 0.9 * (1 + cos(pi/2)) / 2 = 0.55
    assert np.isclose(learning_rate(5, 11, 1.0, "cosine"), 0.55)
    with pytest.raises(ScratchgenError, match="lr_schedule"):
        learning_rate(0, 1, 1.0, "linear")


def test_orthogonal_init_preserves_norms():
    Q = orthogonal(6, np.random.default_rng(0))
    assert np.allclose(Q @ Q.T, np.eye(6))


# --- batching --------------------------------------------------------------------------------------

def test_streams_cover_the_text_once_with_targets_shifted_by_one():
    ids = np.arange(21)
    rows = stream_array(ids, 4)                                  # n = 20 // 4 = 5 steps a row
    chunks = list(stream_chunks(rows, 2))                        # chunk starts 0, 2, 4
    xs = np.concatenate([x for x, _ in chunks], axis=1)
    ys = np.concatenate([y for _, y in chunks], axis=1)
    assert sorted(xs.ravel().tolist()) == list(range(20))        # every input once
    assert np.array_equal(ys, xs + 1)                            # eq. (1): target = next token
    assert [x.shape[1] for x, _ in chunks] == [2, 2, 1]


def test_padded_batch_masks_the_padding():
    x, y, m = padded_batch([np.array([5]), np.array([6, 7, 8])])
    assert x.tolist() == [[1, 5, 2, 2], [1, 6, 7, 8]]            # <s> = 1 first, </s> = 2 as padding
    assert y.tolist() == [[5, 2, 2, 2], [6, 7, 8, 2]]
    assert m.sum() == 2 + 4                                      # len + 1 targets a sequence


# --- the model --------------------------------------------------------------------------------------

def small(**kw):
    args = dict(hidden=16, epochs=4, batch_size=4, seq_len=5, lr=1e-2, seed=3, valid_fraction=0.2)
    args.update(kw)
    return RNNModel(**args)


def test_training_lowers_the_loss_and_keeps_the_best():
    m = small(epochs=15, patience=None).fit(NAMES)
    first, best = m.history_[0]["valid_loss"], min(h["valid_loss"] for h in m.history_)
    assert best < first
    assert m.valid_loss_ == best
    assert m.score(NAMES).cross_entropy_nats < math.log(len(m.vocab_))   # better than uniform


def test_early_stopping_stops_after_patience_evaluations():
    m = small(epochs=60, lr=0.3, patience=2, optimizer="sgd").fit(NAMES)
    losses = [h["valid_loss"] for h in m.history_]
    best_at = int(np.argmin(losses))
    if m.stopped_.startswith("early"):
        assert len(losses) - 1 - best_at == 2
    else:
        assert len(losses) == 60


@pytest.mark.parametrize("running", [False, True])
def test_resume_from_checkpoint_is_bit_for_bit(tmp_path, running):
    corpus = NAMES if not running else [TEXT[i:i + 40] for i in range(0, len(TEXT), 40)]
    kw = dict(running_text=running, epochs=3, eval_interval=4, dropout=0.2)
    whole = small(**kw).fit(corpus)
    ck = str(tmp_path / "ck.npz")

    class DieAt8(Callback):                                      # a test's own callback, not a hook in fit
        def after_step(self, trainer, epoch_end):
            if trainer.step >= 8:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        small(**kw).fit(corpus, callbacks=[Checkpoint(ck, every=3), DieAt8()])   # dies after step 8; checkpoint at 6
    resumed = small(**kw).fit(corpus, resume=ck, callbacks=[Checkpoint(ck, every=3)])
    for k in whole.params_:
        assert np.array_equal(whole.params_[k], resumed.params_[k]), k
    assert [h["valid_loss"] for h in whole.history_] == [h["valid_loss"] for h in resumed.history_]


def test_resume_refuses_another_corpus(tmp_path):
    ck = str(tmp_path / "ck.npz")
    small(epochs=1).fit(NAMES, callbacks=[Checkpoint(ck)])
    with pytest.raises(ModelFileError, match="another corpus"):
        small(epochs=1).fit(NAMES[:-1] + ["zed"], resume=ck)
    with pytest.raises(ModelFileError, match="hidden"):
        small(epochs=1, hidden=8).fit(NAMES, resume=ck)


def test_nan_guard_restores_lowers_lr_and_says_so(monkeypatch, capsys):
    real = layers_module.network_forward
    calls = {"n": 0}

    def flaky(params, inputs):
        calls["n"] += 1
        (loss, hT), cache = real(params, inputs)
        return ((math.nan if calls["n"] == 5 else loss), hT), cache

    monkeypatch.setattr(layers_module, "network_forward", flaky)
    m = small(epochs=2, valid_fraction=0.0).fit(NAMES, callbacks=[ShowProgress()])
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "lowered the learning rate to 0.5 x lr" in err  # a progress note
    assert m.restores_ == 1  # and counted, for the summary
    assert all(np.isfinite(v).all() for v in m.params_.values())


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_time_limit_stops_training(clock):
    m = small(epochs=1000, time_limit=1e-9, clock=clock).fit(NAMES)
    assert m.stopped_ == "reached time_limit=1e-09s" and len(m.history_) == 1


def test_curve_csv(tmp_path):
    path = tmp_path / "curve.csv"
    m = small(epochs=3).fit(NAMES, callbacks=[Curve(str(path))])
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == len(m.history_) == 3
    assert [int(r["tokens_seen"]) for r in rows] == sorted(int(r["tokens_seen"]) for r in rows)
    assert float(rows[-1]["valid_loss"]) == pytest.approx(m.history_[-1]["valid_loss"])


def test_save_load_and_float32(tmp_path):
    m = small(dtype="float32", embedding=5, layers=2).fit(NAMES)
    assert m.params_["W_hh.0"].dtype == np.float32
    m.save(tmp_path / "m.npz")
    back = scratchgen.load(tmp_path / "m.npz")
    ids = [m.vocab_.encode(list(n)) for n in NAMES[:5]]
    for a, b in zip(m.token_logprobs(ids), back.token_logprobs(ids)):
        assert np.array_equal(a, b)


def test_same_seed_same_model_and_text():
    a, b = small().fit(NAMES), small().fit(NAMES)
    assert all(np.array_equal(a.params_[k], b.params_[k]) for k in a.params_)
    assert a.generate_text(3, seed=7) == b.generate_text(3, seed=7)


@pytest.mark.parametrize("bad, match", [
    (dict(hidden=0), "hidden"), (dict(optimizer="rmsprop"), "optimizer"), (dict(dtype="float16"), "dtype"),
    (dict(valid_fraction=1.5), "valid_fraction"), (dict(dropout=1.0), "dropout"), (dict(lr=-1.0), "lr"),
    (dict(running_text="yes"), "running_text"),
])
def test_bad_hyperparameters_are_named(bad, match):
    with pytest.raises(ScratchgenError, match=match):
        small(**bad).fit(NAMES)


def test_stream_loss_of_running_text():
    pieces = [TEXT[i:i + 40] for i in range(0, len(TEXT), 40)]
    m = small(running_text=True, epochs=6, valid_fraction=0.0).fit(pieces)
    assert m.running_text_ is True
    assert m.stream_loss(pieces) < math.log(len(m.vocab_))


# --- command line ----------------------------------------------------------------------------------

def test_cli_gradcheck(capsys):
    assert main(["gradcheck", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"ok": true' in out and '"h0"' in out


def test_cli_train_generate_score(tmp_path, capsys):
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(NAMES) + "\n")
    model = tmp_path / "rnn.npz"
    curve = tmp_path / "curve.csv"
    ck = tmp_path / "ck.npz"
    args = ["train", "rnn", str(corpus), "-o", str(model), "--hidden", "8", "--epochs", "2", "--batch", "4",
            "--curve", str(curve), "--checkpoint", str(ck), "--seed", "1"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "one sequence a line" in err and "tok/s" in err
    assert curve.exists() and ck.exists()
    assert main(["generate", str(model), "-n", "2", "--seed", "1"]) == 0
    assert main(["score", str(model), str(corpus), "--json"]) == 0
    assert main(args + ["--resume", str(ck)]) == 0
    with pytest.raises(SystemExit) as e:                         # a bad option value is a usage error
        main(["train", "rnn", str(corpus), "-o", str(model), "--hidden", "0"])
    assert e.value.code == 2
