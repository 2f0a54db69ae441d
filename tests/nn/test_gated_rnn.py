"""GRU and LSTM cells in RNNModel (issue 12): the network's gradients, chunks that compose, the fast
path against the one-sequence reference, stepping, labels, files, resume and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

import scratchgen
from scratchgen import RNNModel
from scratchgen.cli import main
from scratchgen.errors import ModelFileError, ScratchgenError
from scratchgen.io import read_archive, write_archive
from scratchgen.model import LanguageModel
from scratchgen.nn import Callback, Checkpoint, gradcheck_piece
from scratchgen.nn import gated as G
from scratchgen.nn import gated_reference as R
from scratchgen.nn.memory import training_memory

TEXTS = ["abab", "abba", "baba", "aab", "bbbaa", "ab", "ba ab"]
LABELS = ["x", "y", "x", "y", "x", "x", "y"]
CELLS = ("gru", "lstm")


def _params(cell, V, H, L, E, C, rng):
    p = G.init_gated_params(cell, V, H, L, E, rng)
    if C:
        p.update(G.gated_label_params(cell, C, G.gated_label_width(V, E), H, L))
    return {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in p.items()}  # no zero biases or tables


def _state(cell, L, B, H, rng):
    return rng.normal(scale=0.5, size=(L, B, H) if cell == "gru" else (2, L, B, H))


# --- 1. gradients: every parameter and the carried state, against finite differences -------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("E", [None, 3])
@pytest.mark.parametrize("labels", [0, 2])
def test_network_gradients_match_finite_differences(cell, E, labels):
    rng = np.random.default_rng(1)
    V, B, T, H, L = 6, 3, 4, 5, 2
    p = _params(cell, V, H, L, E, labels, rng)
    ids, targets = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    mask = rng.random((B, T)) < 0.75
    keep = rng.random((B, T, H)) >= 0.3
    net = G.GatedNetwork(cell, L)
    if labels:  # a fresh labelled start: the gradient reaches L_h (and an LSTM's L_c) and L_in
        inputs = (ids, targets, mask, None, (keep, 0.3), rng.integers(0, labels, size=B))
    else:
        inputs = (ids, targets, mask, _state(cell, L, B, H, rng), (keep, 0.3))
    errors = gradcheck_piece(net.forward, net.backward, p, inputs, seed=0)
    expected = set(p) | ({"input[3]"} if not labels else set())
    assert set(errors) == expected
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell", CELLS)
def test_a_carried_labelled_state_sends_no_gradient_to_the_start_tables(cell):
    rng = np.random.default_rng(2)
    p = _params(cell, 5, 4, 1, 3, 2, rng)
    net = G.GatedNetwork(cell, 1)
    ids = rng.integers(0, 5, size=(2, 3))
    state = _state(cell, 1, 2, 4, rng)
    (_, _), cache = net.forward(p, (ids, ids, None, state, None, np.array([0, 1])))
    grads, d_in = net.backward(p, cache)
    assert d_in[3].shape == state.shape
    tables = [k for k in p if k.startswith(("L_h.", "L_c."))]
    assert tables and all(not grads[k].any() for k in tables)
    assert grads["L_in"].any()


# --- 2. chunks compose: two chunks with the state carried are one long chunk ----------------------


@pytest.mark.parametrize("cell", CELLS)
def test_two_chunks_with_the_state_carried_equal_one(cell):
    rng = np.random.default_rng(3)
    V, B, T, H, L = 7, 2, 6, 5, 2
    p = _params(cell, V, H, L, 4, 0, rng)
    net = G.GatedNetwork(cell, L)
    ids, targets = rng.integers(0, V, size=(B, 2 * T)), rng.integers(0, V, size=(B, 2 * T))
    (whole, s_whole), cache = net.forward(p, (ids, targets, None, None))
    (first, s1), c1 = net.forward(p, (ids[:, :T], targets[:, :T], None, None))
    (second, s2), c2 = net.forward(p, (ids[:, T:], targets[:, T:], None, s1))
    assert np.isclose(whole, (first + second) / 2, rtol=1e-12)
    assert np.allclose(s_whole, s2, rtol=1e-12, atol=1e-14)
    # backward: the second chunk's state gradient, fed to the first, gives the long chunk's gradients
    g_whole, _ = net.backward(p, cache)
    g2, (_, _, _, d_s1) = net.backward(p, c2, (0.5, None))
    g1, _ = net.backward(p, c1, (0.5, d_s1))
    for k in p:
        assert np.allclose(g_whole[k], g1[k] + g2[k], rtol=1e-9, atol=1e-12), k


# --- 3. the fast path equals the one-sequence reference; stepping equals both ---------------------


def _fit(cell, embedding=None, labels=None, layers=2, **kw):
    options = dict(hidden=8, layers=layers, embedding=embedding, epochs=3, batch_size=3, seq_len=8, lr=1e-2,
                   valid_fraction=0, seed=0)
    options.update(kw)
    return RNNModel(cell=cell, **options).fit(TEXTS, labels=labels)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("embedding", [None, 4])
@pytest.mark.parametrize("labelled", [False, True])
def test_fast_token_logprobs_equal_the_reference_and_stepping(cell, embedding, labelled):
    m = _fit(cell, embedding, LABELS if labelled else None)
    seqs = [m.vocab_.encode(list(t)) for t in ["abab", "b", "", "aabba"]]
    label_ids = np.array([0, 1, 1, 0]) if labelled else None
    fast = m.token_logprobs(seqs, labels=label_ids)
    stepped = LanguageModel._token_logprobs(m, seqs, label_ids)  # the protocol's default, by stepping
    for k, s in enumerate(seqs):
        ref = R.sequence_logprobs(cell, m.params_, m.layers, s, None if label_ids is None else int(label_ids[k]))
        assert np.allclose(fast[k], ref, rtol=1e-10, atol=1e-12)
        assert np.allclose(stepped[k], ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_stepping_state_layout_and_take_state(cell):
    m = _fit(cell, 4)
    state = m.initial_state(3)
    assert len(state) == (2 if cell == "gru" else 4)  # h^0, h^1 (and c^0, c^1)
    state = m.advance(state, np.array([3, 4, 3]))
    lp = m.next_logprobs(state)
    assert np.allclose(np.exp(lp).sum(axis=1), 1.0)
    taken = m.take_state(state, np.array([2, 0]))
    assert np.array_equal(m.next_logprobs(taken), lp[[2, 0]])


# --- 4. labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_labelled_model_tables_and_start_states(cell):
    m = _fit(cell, None, LABELS, layers=1)
    V = len(m.vocab_)
    assert m.params_["L_in"].shape == (2, V)  # one-hot inputs: the label joins the one-hot row
    assert ("L_c.0" in m.params_) == (cell == "lstm")
    with pytest.raises(scratchgen.errors.LabelError, match="labelled"):
        m.initial_state(1)
    # the two labels give different next-token distributions from the very start
    a, b = (m.next_logprobs(m.initial_state(1, labels=np.array([c]))) for c in (0, 1))
    assert not np.allclose(a, b)


# --- 5. files: save/load round trip, the schema, old files are tanh --------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("labelled", [False, True])
def test_save_load_round_trip(cell, labelled, tmp_path):
    m = _fit(cell, 4, LABELS if labelled else None)
    path = str(tmp_path / "m.npz")
    m.save(path)
    back = scratchgen.load(path)
    assert back.cell == cell and set(back.params_) == set(m.params_)
    labels = {"label": "x"} if labelled else {}
    assert back.logprob("abba", **labels) == m.logprob("abba", **labels)


def test_a_file_with_a_wrong_gate_width_is_refused(tmp_path):
    m = _fit("gru", 4)
    path = str(tmp_path / "m.npz")
    m.save(path)
    header, arrays = read_archive(path, "model", "load")
    header["params"]["cell"] = "lstm"  # a GRU's arrays under an LSTM header
    write_archive(path, header, arrays)
    with pytest.raises(ModelFileError, match="W_xg.0"):
        scratchgen.load(path)


def test_a_file_without_cell_loads_as_tanh(tmp_path):
    m = RNNModel(hidden=6, epochs=2, batch_size=3, valid_fraction=0, seed=0).fit(TEXTS)
    path = str(tmp_path / "m.npz")
    m.save(path)
    header, arrays = read_archive(path, "model", "load")
    assert "cell" not in header["params"]  # a tanh header is as it was before cells existed
    header["params"]["cell"] = "tanh"  # and one that names the cell reads the same
    write_archive(path, header, arrays)
    assert scratchgen.load(path).logprob("abab") == m.logprob("abab")
    del header["params"]["cell"]
    write_archive(path, header, arrays)
    back = scratchgen.load(path)
    assert back.cell == "tanh" and back.logprob("abab") == m.logprob("abab")


def test_a_bad_cell_names_the_flag():
    with pytest.raises(ScratchgenError, match=r"cell \(--cell\) must be one of tanh, gru, lstm, got 'rnn'"):
        RNNModel(cell="rnn").fit(TEXTS)


# --- 6. resume bit for bit; a checkpoint of another cell is refused --------------------------------


class DieAt(Callback):
    def __init__(self, step):
        self.step = step

    def after_step(self, trainer, epoch_end):
        if trainer.step >= self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("running", [True, False])
def test_resume_is_bit_for_bit(cell, running, tmp_path):
    texts = TEXTS * 3
    kw = dict(cell=cell, hidden=6, embedding=3, layers=2, epochs=3, batch_size=2, seq_len=4, lr=1e-2, seed=3,
              valid_fraction=0.2, eval_interval=4, dropout=0.2, running_text=running)
    whole = RNNModel(**kw).fit(texts)
    ck = str(tmp_path / "ck.npz")
    with pytest.raises(KeyboardInterrupt):
        RNNModel(**kw).fit(texts, callbacks=[Checkpoint(ck, every=3), DieAt(7)])
    resumed = RNNModel(**kw).fit(texts, resume=ck)
    for k in whole.params_:
        assert np.array_equal(whole.params_[k], resumed.params_[k]), k
    assert [h["valid_loss"] for h in whole.history_] == [h["valid_loss"] for h in resumed.history_]
    other = "lstm" if cell == "gru" else "gru"
    with pytest.raises(ModelFileError, match=f"--cell is {cell} in the checkpoint, {other} here"):
        RNNModel(**{**kw, "cell": other}).fit(texts, resume=ck)


# --- 7. the memory estimate counts the gates --------------------------------------------------------


def test_memory_estimate_grows_with_the_gates():
    tanh, gru, lstm = (training_memory(65, 256, 2, 64, 32, 64, 4, "adam", 32, 64, 0, k) for k in (1, 3, 4))
    assert tanh < gru < lstm
    assert training_memory(65, 256, 2, 64, 32, 64, 4, "adam", 32, 64) == tanh  # tanh's default unchanged


def test_memory_estimate_counts_the_worker_processes():
    """At --threads k the LSTM runs k - 1 shards in worker processes (nn/process_shards.py): each adds an
    interpreter, two shared blocks and its own gradients (3 P numbers) and the activations of its ceil(B / k) rows."""
    from scratchgen.nn.memory import WORKER_BASE_BYTES

    V, H, L, E, B, T = 65, 256, 2, 64, 32, 64
    args = (V, H, L, E, B, T, 4, "adam", B, T, 0, 4)
    one, two, three = (training_memory(*args, processes=k) for k in (1, 2, 3))
    assert training_memory(*args) == one  # one process: unchanged
    P = sum(int(np.prod(shape)) for shape in G.gated_shapes("lstm", V, H, L, E).values())
    per_token = 14 * L * H + 3 * V + 2 * E  # numbers a token of the step keeps (the docstring's count)
    assert two - one == WORKER_BASE_BYTES + 3 * P * 4 + 16 * T * per_token * 4  # one worker, 16 of 32 rows
    assert three - one == 2 * (WORKER_BASE_BYTES + 3 * P * 4 + 11 * T * per_token * 4)  # two, ceil(32 / 3) rows


@pytest.mark.parametrize("cell, threads, processes", [("lstm", 2, 2), ("lstm", 1, 1), ("gru", 2, 1)])
def test_the_memory_check_counts_the_lstm_workers(cell, threads, processes, monkeypatch):
    """RNNModel's check before a run asks for the workers' memory where its network runs shards in processes."""
    import scratchgen.nn.rnn as rnn_module

    asked = []

    class Stop(Exception):
        pass

    def recorder(*args, **kwargs):
        asked.append(args[12] if len(args) > 12 else kwargs.get("processes", 1))
        raise Stop  # the check is all this test needs: no worker starts

    monkeypatch.setattr(rnn_module, "training_memory", recorder)
    with pytest.raises(Stop):
        RNNModel(cell=cell, hidden=4, threads=threads, max_steps=1, seed=0).fit(TEXTS)
    assert asked == [processes]


def test_a_worker_fits_in_its_share_of_the_estimate():
    """The worker process's peak resident memory after a step (VmHWM, Linux) is within what the estimate
    counts for one worker."""
    import os

    from scratchgen.nn.memory import WORKER_BASE_BYTES
    from scratchgen.nn.process_shards import ProcessShards

    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc: the peak resident memory of a process is read from /proc/PID/status")
    V, H, E, B, T = 65, 64, 16, 8, 16
    p = G.init_gated_params("lstm", V, H, 1, E, np.random.default_rng(0), np.float32)
    net = G.GatedNetwork("lstm", 1)
    x = np.random.default_rng(1).integers(3, V, size=(B, T))
    with ProcessShards(net, processes=2, min_work=0) as shards:
        shards.step(p, (x, x, None, net.start_state(p, B)))
        (process, _), = shards.workers
        with open(f"/proc/{process.pid}/status") as f:
            peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    args = (V, H, 1, E, B, T, 4, "adam", B, T, 0, 4)
    per_worker = training_memory(*args, processes=2) - training_memory(*args)
    assert WORKER_BASE_BYTES < per_worker
    assert peak <= per_worker, (peak, per_worker)


# --- 8. the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("labels", ["0", "2"])
def test_gradcheck_json_for_each_model(model, labels, capsys):
    assert main(["gradcheck", "--model", model, "--labels", labels, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"relative_errors", "worst", "tolerance", "ok"} and out["ok"] is True
    assert ("W_hg.0" in out["relative_errors"]) == (model != "rnn")
    assert ("L_c.0" in out["relative_errors"]) == (model == "lstm" and labels != "0")


def test_train_rnn_cell_gru_and_generate(tmp_path, capsys):
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(TEXTS * 4) + "\n")
    out = str(tmp_path / "m.npz")
    assert main(["train", "rnn", "--cell", "lstm", "--hidden", "8", "--epochs", "2", "--batch", "4",
                 str(corpus), "-o", out]) == 0
    assert scratchgen.load(out).cell == "lstm"
    with pytest.raises(SystemExit) as e:
        main(["train", "rnn", "--cell", "rnn", str(corpus), "-o", out])
    assert e.value.code == 2


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T, B", [(16, 8), (48, 24)])
def test_memory_estimate_covers_the_peak_of_a_training_step(cell, T, B):
    import tracemalloc

    from scratchgen.nn.optim import make_optimizer

    V, H, E = 30, 48, 16
    p = G.init_gated_params(cell, V, H, 1, E, np.random.default_rng(0), np.float32)
    net, opt = G.GatedNetwork(cell, 1), make_optimizer("adam")
    x = np.random.default_rng(1).integers(3, V, size=(B, T))
    tracemalloc.start()
    (_, _), cache = net.forward(p, (x, x, None, net.start_state(p, B)))
    grads, _ = net.backward(p, cache)
    opt.step(p, grads, 1e-3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= training_memory(V, H, 1, E, B, T, 4, "adam", B, T, 0, G.GATES[cell])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_folded_embedding_equals_the_embedding_read_first(cell, monkeypatch):
    """eq. (6) of gated: layer 0 reading rows of C W_xg.0 gives the loss and every gradient of the plain
    path (embedding rows first, then the product), in float64."""
    rng = np.random.default_rng(5)
    V, H, E, B, T = 6, 5, 4, 3, 7  # V < T B: the fold applies
    p = G.init_gated_params(cell, V, H, 2, E, rng)
    net = G.GatedNetwork(cell, 2)
    x, y = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    state = rng.normal(size=net.start_state(p, B).shape)
    assert G.folds_embedding(p, x, None)
    (loss, state_T), cache = net.forward(p, (x, y, None, state))
    grads, _ = net.backward(p, cache)
    monkeypatch.setattr(G, "folds_embedding", lambda *args: False)
    (loss_plain, state_plain), cache = net.forward(p, (x, y, None, state))
    assert "fold" not in cache
    plain, _ = net.backward(p, cache)
    assert loss == pytest.approx(loss_plain, rel=1e-13)
    np.testing.assert_allclose(state_T, state_plain, rtol=1e-12, atol=1e-14)
    for key in plain:
        np.testing.assert_allclose(grads[key], plain[key], rtol=1e-10, atol=1e-13, err_msg=key)
