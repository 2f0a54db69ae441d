"""Issue 9 for the RNN family: every bad file, option or run ends in one honest line, nothing lost.

Each test reproduces a report of the issue (its number in the test's comment) and failed before the fix.
"""

from __future__ import annotations

import configparser
import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from scratchgen import RNNModel
from scratchgen.cli import main
from scratchgen.errors import ScratchgenError, TrainingError
from scratchgen.nn import layers as layers_module
from scratchgen.nn import train as train_module
from scratchgen.nn.optim import SGD, Adagrad, Adam

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
         "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett"] * 2
SMALL = ["--hidden", "8", "--batch", "4", "--seq-len", "8", "--seed", "1", "--quiet"]


@pytest.fixture
def names(tmp_path) -> Path:
    path = tmp_path / "names.txt"
    path.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return path


def train(corpus, output, *extra) -> int:
    return main(["train", "rnn", str(corpus), "-o", str(output), *SMALL, *extra])


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("scratchgen: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- 1. a binary or Latin-1 corpus ----------------------------------------------------------------------

@pytest.mark.parametrize("data", [bytes(range(256)) * 4, "café crème\n".encode("latin-1") * 20])
def test_binary_or_latin1_corpus_is_one_line_error(tmp_path, capsys, data):
    corpus = tmp_path / "corpus.bin"
    corpus.write_bytes(data)
    assert train(corpus, tmp_path / "m.npz") == 1                # was a UnicodeDecodeError traceback
    assert "is not UTF-8 at byte" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "m.npz").exists()


def test_encoding_option_reaches_the_running_text_check(tmp_path, capsys):
    corpus = tmp_path / "latin.txt"
    corpus.write_bytes("café crème\n\nà la mode\n".encode("latin-1") * 10)
    assert train(corpus, tmp_path / "m.npz", "--epochs", "1", "--encoding", "latin-1") == 0
    assert "running text" in capsys.readouterr().err             # the blank lines were seen


# --- 2. a hidden size that cannot fit -------------------------------------------------------------------

def test_huge_hidden_is_refused_with_the_estimate_before_allocating(names, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCRATCHGEN_MEMORY_LIMIT", "8G")
    assert main(["train", "rnn", str(names), "-o", str(tmp_path / "m.npz"), "--hidden", "100000"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "hidden 100000" in line and "GiB of memory" in line and "lower --hidden" in line


def test_memory_estimate_grows_with_each_size():
    base = dict(V=65, hidden=256, layers=1, embedding=None, batch=32, seq_len=64, itemsize=4, optimizer="adam",
                eval_rows=32, eval_len=64)
    est = train_module.training_memory(**base)
    # the weights alone: (V H + H H + H + H V + V) numbers, 4 bytes, 8 copies (params, grads, best, good, 2 x 2 Adam)
    n_params = 65 * 256 + 256 * 256 + 256 + 256 * 65 + 65
    assert est >= n_params * 4 * 8
    for key, bigger in [("hidden", 512), ("batch", 64), ("seq_len", 128), ("layers", 2), ("itemsize", 8)]:
        assert train_module.training_memory(**{**base, key: bigger}) > est, key


# --- 4. an edited model file ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved_rnn(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rnn") / "rnn.npz"
    RNNModel(hidden=6, epochs=1, batch_size=4, seq_len=8, seed=0, layers=2).fit(NAMES).save(path)
    return path


def _edit(src: Path, dst: Path, arrays=None, header=None) -> Path:
    with np.load(src) as z:
        data = {k: z[k] for k in z.files}
    data.update(arrays or {})
    for name in [k for k, v in data.items() if v is None]:
        del data[name]
    if header:
        h = json.loads(data["__header__"].tobytes())
        header(h)
        data["__header__"] = np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)
    np.savez(dst, **data)
    return dst


def _set(path: list, value):
    def apply(h):
        target = h
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return apply


EDITS = {
    "W_hh.0 (6, 5)": (dict(arrays={"param/W_hh.0": np.zeros((6, 5))}),
                      "param/W_hh.0 has shape (6, 5), expected (6, 6)"),
    "3-D W_xh": (dict(arrays={"param/W_xh.1": np.zeros((6, 6, 1))}), "param/W_xh.1 has shape (6, 6, 1)"),
    "int array": (dict(arrays={"param/b_h.0": np.zeros(6, dtype=np.int64)}), "dtype int64, expected floating"),
    "complex array": (dict(arrays={"param/W_hy": np.zeros((6, 20), dtype=complex)}), "dtype complex128"),
    "str array": (dict(arrays={"param/b_y": np.array(["x"] * 20)}), "param/b_y has dtype <U1"),
    "NaN": (dict(arrays={"param/b_h.1": np.full(6, np.nan)}), "param/b_h.1 holds NaN"),
    "missing": (dict(arrays={"param/W_hh.1": None}), "the array param/W_hh.1 is missing"),
    "extra": (dict(arrays={"param/W_hh.2": np.zeros((6, 6))}), "unexpected array param/W_hh.2"),
    "hidden true": (dict(header=_set(["params", "hidden"], True)), "hidden (--hidden) must be an integer"),
    "layers 10**12": (dict(header=_set(["params", "layers"], 10**12)), "layers (--layers) must be at most"),
    "history": (dict(header=_set(["state", "history_"], "oops")), "state.history_"),
    "valid loss": (dict(header=_set(["state", "valid_loss_"], [1])), "state.valid_loss_"),
    "running text": (dict(header=_set(["state", "running_text_"], "yes")), "state.running_text_"),
}


@pytest.mark.parametrize("edit", EDITS)
def test_edited_rnn_file_is_refused_by_generate_and_score(saved_rnn, names, tmp_path, capsys, edit):
    kwargs, expected = EDITS[edit]
    if edit == "complex array" or edit == "str array":   # shapes from this file's vocabulary
        with np.load(saved_rnn) as z:
            V = len(z["param/b_y"])
        key = "param/W_hy" if edit == "complex array" else "param/b_y"
        kwargs = dict(arrays={key: kwargs["arrays"][key][..., :1].repeat(V, axis=-1)})
    bad = _edit(saved_rnn, tmp_path / "bad.npz", **kwargs)
    before = bad.read_bytes()
    for command in (["generate", str(bad), "-n", "1", "--seed", "0"], ["score", str(bad), str(names)]):
        assert main(command) == 1
        line = one_error_line(capsys.readouterr().err)
        assert "not a valid scratchgen RNNModel file" in line and expected in line, line
    assert bad.read_bytes() == before


def test_a_valid_file_still_loads_and_the_schema_names_every_array(saved_rnn, names, capsys):
    assert main(["score", str(saved_rnn), str(names)]) == 0
    from scratchgen import load

    model = load(saved_rnn)
    assert set(model._array_schema()) == {f"param/{k}" for k in model.params_}


# --- 6. the NaN guard -----------------------------------------------------------------------------------

def test_lr_1e300_stops_with_a_reason_and_saves_nothing(names, tmp_path, capsys):
    out = tmp_path / "m.npz"
    out.write_bytes(b"the old model")
    assert train(names, out, "--lr", "1e300", "--epochs", "40") == 1   # was: exit 0 and an all-inf model
    err = capsys.readouterr().err
    line = one_error_line(err)
    assert "training diverged" in line and "lower --lr" in line
    assert err.count("restored the last good weights") <= train_module.MAX_RESTORES   # was 1,730 restores
    assert out.read_bytes() == b"the old model"


def test_the_last_good_weights_are_taken_before_the_first_update(monkeypatch):
    # one update to inf weights, then a NaN loss: the restore must bring back the initial (finite) weights
    seen = {}
    real_snapshot = train_module.Trainer._snapshot_good

    def snapshot(self):
        seen.setdefault("first", self.opt.steps)                 # how many updates before the first snapshot
        real_snapshot(self)

    monkeypatch.setattr(train_module.Trainer, "_snapshot_good", snapshot)
    with pytest.raises(TrainingError, match="training diverged"):
        RNNModel(hidden=8, epochs=50, batch_size=4, seq_len=8, lr=1e300, valid_fraction=0, dtype="float32").fit(NAMES)
    assert seen["first"] == 0


def test_an_occasional_nan_is_still_survived(monkeypatch):
    real = layers_module.network_forward
    calls = {"n": 0}

    def flaky(params, inputs):
        calls["n"] += 1
        (loss, hT), cache = real(params, inputs)
        return ((math.nan if calls["n"] in (1, 4) else loss), hT), cache

    monkeypatch.setattr(layers_module, "network_forward", flaky)
    m = RNNModel(hidden=8, epochs=2, batch_size=4, seq_len=8, valid_fraction=0).fit(NAMES)
    assert all(np.isfinite(v).all() for v in m.params_.values())


# --- 13. a loss worse than uniform ----------------------------------------------------------------------

def test_loss_above_ln_v_is_reported_during_and_after(names, tmp_path, capsys):
    assert train(names, tmp_path / "m.npz", "--lr", "1e6", "--epochs", "3") == 0
    err = capsys.readouterr().err
    assert "warning: the validation loss" in err and "worse than a uniform guess" in err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("trained RNN") and "worse than a uniform guess (ln V" in summary


# --- 14. no validation data -----------------------------------------------------------------------------

def test_one_long_line_says_no_validation_data_and_points_to_chunks(tmp_path, capsys):
    corpus = tmp_path / "one.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 20 + "\n")
    assert main(["train", "rnn", str(corpus), "-o", str(tmp_path / "m.npz"), "--hidden", "8", "--batch", "4",
                 "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "nan" not in err                                      # was "val nan", "best validation loss nan"
    assert "no validation data" in err and "--mode chunks" in err


def test_valid_fraction_zero_says_so(names, tmp_path, capsys):
    assert train(names, tmp_path / "m.npz", "--epochs", "1", "--valid-fraction", "0") == 0
    err = capsys.readouterr().err
    assert "nan" not in err and "no validation data (--valid-fraction 0)" in err


# --- 15. resume: every option compared, optimiser state namespaced, a format version -------------------

@pytest.fixture
def checkpoint(names, tmp_path) -> Path:
    ck = tmp_path / "ck.npz"
    assert train(names, tmp_path / "m.npz", "--epochs", "2", "--checkpoint", str(ck)) == 0
    return ck


@pytest.mark.parametrize("extra, expected", [
    (["--hidden", "16"], "--hidden is 8 in the checkpoint, 16 here"),   # was "it was made on another corpus"
    (["--optimizer", "sgd"], "--optimizer is adam in the checkpoint, sgd here"),
    (["--lr", "0.01"], "--lr is 0.003 in the checkpoint, 0.01 here"),
    (["--schedule", "constant"], "--schedule is cosine in the checkpoint, constant here"),
    (["--clip", "0"], "--clip is 5 in the checkpoint, 0 (no clipping) here"),
    (["--dropout", "0.1"], "--dropout is 0 in the checkpoint, 0.1 here"),
    (["--epochs", "5"], "--epochs is 2 in the checkpoint, 5 here: the cosine schedule"),
])
def test_resume_names_the_option_that_differs(names, checkpoint, tmp_path, capsys, extra, expected):
    capsys.readouterr()
    args = ["--epochs", "2", "--checkpoint", str(checkpoint), "--resume", str(checkpoint)]
    assert train(names, tmp_path / "m2.npz", *args, *extra) == 1
    assert expected in one_error_line(capsys.readouterr().err)


def test_resume_with_the_same_options_and_a_constant_schedule_extended(names, tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    base = ["--schedule", "constant", "--checkpoint", str(ck)]
    assert train(names, tmp_path / "m.npz", "--epochs", "1", *base) == 0
    assert train(names, tmp_path / "m.npz", "--epochs", "3", *base, "--resume", str(ck)) == 0
    with np.load(ck) as z:
        header = json.loads(z["__header__"].tobytes())   # checkpoint format 3: the shared header array
    assert header["epoch"] == 3 and header["version"] == train_module.CHECKPOINT_VERSION


def test_resuming_a_finished_run_says_so_and_writes_its_curve(names, checkpoint, tmp_path, capsys):
    curve = tmp_path / "again.csv"
    capsys.readouterr()
    assert train(names, tmp_path / "m.npz", "--epochs", "2", "--checkpoint", str(checkpoint),
                 "--resume", str(checkpoint), "--curve", str(curve)) == 0
    err = capsys.readouterr().err
    assert "had already finished" in err and "nothing trained" in err
    assert curve.exists() and f"learning curve: {curve}" in err  # was: named a curve it did not write


def test_optimiser_state_is_namespaced():
    params = {"W": np.ones(2)}
    grads = {"W": np.full(2, 0.5)}
    keys = {}
    for opt in (SGD(), Adam(), Adam(weight_decay=0.1), Adagrad()):
        opt.step(params, grads, 0.1)
        keys[type(opt).__name__ + str(getattr(opt, "weight_decay", ""))] = sorted(opt.state)
    assert keys == {"SGD": ["sgd.momentum.W"], "Adam0.0": ["adam.m.W", "adam.v.W"],
                    "Adam0.1": ["adam.m.W", "adam.v.W"], "Adagrad": ["adagrad.G.W"]}   # SGD's was "v.W", as Adam's


def test_an_unversioned_checkpoint_is_refused_clearly(names, checkpoint, tmp_path, capsys):
    def drop_version(h):
        del h["version"]

    with np.load(checkpoint) as z:
        data = {k: z[k] for k in z.files}
    h = json.loads(data["__header__"].tobytes())
    drop_version(h)
    data["__header__"] = np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)
    old = tmp_path / "old.npz"
    np.savez(old, **data)
    capsys.readouterr()
    assert train(names, tmp_path / "m2.npz", "--epochs", "2", "--resume", str(old)) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "older scratchgen" in line and "without --resume" in line


def test_a_damaged_checkpoint_is_refused(names, checkpoint, tmp_path, capsys):
    with np.load(checkpoint) as z:
        data = {k: z[k] for k in z.files}
    data["param/W_hh.0"] = np.zeros((8, 7), dtype=np.float32)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **data)
    capsys.readouterr()
    assert train(names, tmp_path / "m2.npz", "--epochs", "2", "--resume", str(bad)) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "cannot resume from" in line and "W_hh.0 has shape (8, 7), expected (8, 8)" in line


# --- 16. interrupted training ---------------------------------------------------------------------------

def _stop_at(monkeypatch, n, stop):
    real = layers_module.network_forward
    calls = {"n": 0}

    def forward(params, inputs):
        calls["n"] += 1
        if calls["n"] == n:
            stop()
        return real(params, inputs)

    monkeypatch.setattr(layers_module, "network_forward", forward)


def _interrupt():
    raise KeyboardInterrupt


def _sigterm():
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("stop, code", [(_interrupt, 130), (_sigterm, 143)])
def test_interrupt_keeps_the_old_model_and_says_how_to_resume(names, tmp_path, capsys, monkeypatch, stop, code):
    out, ck = tmp_path / "m.npz", tmp_path / "ck.npz"
    out.write_bytes(b"the old model")
    _stop_at(monkeypatch, 40, stop)
    assert train(names, out, "--epochs", "20", "--checkpoint", str(ck), "--checkpoint-every", "5") == code
    err = capsys.readouterr().err
    assert f"resume with the same command and --resume {ck}" in err
    assert out.read_bytes() == b"the old model"


def test_interrupt_without_checkpoint_says_the_progress_is_lost(names, tmp_path, capsys, monkeypatch):
    _stop_at(monkeypatch, 10, _interrupt)
    assert train(names, tmp_path / "m.npz", "--epochs", "20") == 130
    assert "progress is lost" in capsys.readouterr().err


# --- 17. the curve's train loss -------------------------------------------------------------------------

def test_curve_train_loss_is_the_bias_corrected_moving_average(monkeypatch):
    real = layers_module.network_forward
    losses = []

    def forward(params, inputs):
        (loss, hT), cache = real(params, inputs)
        losses.append(loss)
        return (loss, hT), cache

    monkeypatch.setattr(layers_module, "network_forward", forward)
    m = RNNModel(hidden=8, batch_size=4, seq_len=8, max_steps=3, valid_fraction=0, seed=2).fit(NAMES)
    assert len(losses) == 3                                      # no validation data: training steps only
    ema = 0.0
    for loss in losses:
        ema = 0.98 * ema + 0.02 * loss
    corrected = ema / (1 - 0.98 ** 3)                            # ~ the mean of the three losses
    assert m.history_[-1]["train_loss"] == pytest.approx(corrected, rel=1e-12)
    assert min(losses) <= corrected <= max(losses)               # the uncorrected start sat near losses[0]


# --- 18. one BLAS thread, always ------------------------------------------------------------------------

def test_training_steps_run_on_one_blas_thread(monkeypatch):
    real = layers_module.network_forward
    threads = []

    def forward(params, inputs):
        threads.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return real(params, inputs)

    monkeypatch.setattr(layers_module, "network_forward", forward)
    RNNModel(hidden=8, batch_size=4, seq_len=8, max_steps=2, valid_fraction=0).fit(NAMES)
    assert threads and set(threads) == {1}


def test_threadpoolctl_and_tqdm_are_runtime_dependencies():
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    required = cfg["options"]["install_requires"]
    assert "threadpoolctl" in required and "tqdm" in required
    threads = (Path(__file__).resolve().parents[2] / "scratchgen" / "threads.py").read_text()
    assert "it is optional" not in threads and "from threadpoolctl import" in threads


# --- 19. progress ---------------------------------------------------------------------------------------

def test_progress_lines_and_quiet(names, tmp_path, capsys):
    assert main(["train", "rnn", str(names), "-o", str(tmp_path / "m.npz"), "--hidden", "8", "--batch", "4",
                 "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "step " in err and "validation loss" in err and "tok/s" in err   # the evaluation lines
    assert "training: " in err and "steps" in err                # the progress report (plain: not a terminal)
    assert train(names, tmp_path / "m.npz", "--epochs", "2") == 0   # --quiet: the summary only
    err = capsys.readouterr().err.strip().splitlines()
    assert all(not line.startswith(("step ", "training:")) for line in err)


# --- 27. messages in the command line's words -----------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    (dict(batch_size=0), "batch_size (--batch)"),
    (dict(clip=-1.0), "(--clip 0)"),
    (dict(lr_schedule="linear"), "lr_schedule (--schedule)"),
    (dict(eval_interval=0), "eval_interval (--eval-every)"),
    (dict(weight_decay=-1.0), "weight_decay (--weight-decay)"),
    (dict(seed=-1), "seed (--seed)"),
])
def test_hyperparameter_messages_name_the_flag(kwargs, words):
    with pytest.raises(ScratchgenError, match=r"^" + r"\S+ \(--"):
        RNNModel(**kwargs).fit(NAMES)
    with pytest.raises(ScratchgenError) as e:
        RNNModel(**kwargs).fit(NAMES)
    assert words in str(e.value)


def test_short_running_text_names_batch(tmp_path, capsys):
    corpus = tmp_path / "short.txt"
    corpus.write_text("ab\n\ncd\n")
    assert main(["train", "rnn", str(corpus), "-o", str(tmp_path / "m.npz"), "--batch", "32", "--quiet"]) == 1
    assert "--batch 32" in one_error_line(capsys.readouterr().err)


def test_clip_zero_turns_clipping_off(names, tmp_path):
    assert train(names, tmp_path / "m.npz", "--epochs", "1", "--clip", "0") == 0


# --- 28. option values checked where parsed (exit 2) ----------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("--hidden", "0"), ("--layers", "0"), ("--embedding", "-1"), ("--seq-len", "0"), ("--batch", "0"),
    ("--lr", "0"), ("--lr", "nan"), ("--lr", "inf"), ("--lr", "-1"), ("--epochs", "0"), ("--weight-decay", "-1"),
    ("--dropout", "1"), ("--dropout", "-0.1"), ("--warmup", "-1"), ("--clip", "-1"), ("--max-steps", "0"),
    ("--time-limit", "0"), ("--valid-fraction", "1"), ("--patience", "-1"), ("--eval-every", "0"),
    ("--min-count", "0"), ("--checkpoint-every", "0"), ("--seed", "-1"), ("--hidden", "x"),
])
def test_bad_train_rnn_option_is_a_usage_error(names, tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as e:
        main(["train", "rnn", str(names), "-o", str(tmp_path / "m.npz"), option, value])
    assert e.value.code == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--hidden", "0"), ("--layers", "0"), ("--embedding", "-1"),
                                           ("--seed", "-1"), ("--tolerance", "0")])
def test_bad_gradcheck_option_is_a_usage_error(capsys, option, value):
    with pytest.raises(SystemExit) as e:
        main(["gradcheck", option, value])
    assert e.value.code == 2


# --- 7. files: no input overwritten -------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--curve", "--checkpoint", "--plot"])
def test_an_output_that_is_the_corpus_is_refused_before_training(names, tmp_path, capsys, option):
    before = names.read_bytes()
    assert train(names, tmp_path / "m.npz", option, str(names)) == 1
    err = capsys.readouterr().err
    assert "it is also an input" in one_error_line(err) and "step " not in err
    assert names.read_bytes() == before and not (tmp_path / "m.npz").exists()


def test_the_model_may_not_overwrite_the_checkpoint_it_resumes(names, checkpoint, tmp_path, capsys):
    before = checkpoint.read_bytes()
    capsys.readouterr()
    assert train(names, checkpoint, "--epochs", "2", "--resume", str(checkpoint)) == 1
    assert "it is also an input" in one_error_line(capsys.readouterr().err)
    assert checkpoint.read_bytes() == before


def test_the_default_curve_path_may_not_be_the_corpus(tmp_path, capsys):
    corpus = tmp_path / "x.curve.csv"
    corpus.write_text("\n".join(NAMES) + "\n")
    before = corpus.read_bytes()
    assert train(corpus, tmp_path / "x.npz") == 1
    assert "give --curve CSV" in one_error_line(capsys.readouterr().err)
    assert corpus.read_bytes() == before


# --- 10. one long line read in chunks -------------------------------------------------------------------

def test_one_long_line_in_chunks_trains(tmp_path, capsys):
    corpus = tmp_path / "long.txt"
    corpus.write_text("abcdefghij" * 20_000)                     # one line of 200,000 characters
    assert main(["train", "rnn", str(corpus), "-o", str(tmp_path / "m.npz"), "--mode", "chunks",
                 "--max-steps", "2", *SMALL]) == 0
    assert "vocabulary" in capsys.readouterr().err


def test_a_fresh_network_near_ln_v_is_not_called_worse_than_uniform():
    from scratchgen.nn.train import worse_than_uniform

    V = 30
    assert not worse_than_uniform(math.log(V) + 0.01, V)  # the first losses wander around ln V
    assert worse_than_uniform(74.0, V)                     # the --lr 1e6 report: 74 nats against ln V = 3.4


def test_a_blas_loaded_after_the_first_training_step_is_limited_too():
    """The controller of one_blas_thread is kept between calls, but a BLAS loaded later (SciPy's own)
    must be limited as well: the full suite once saw threads [2, 1, 2, 1]."""
    pytest.importorskip("scipy")
    from threadpoolctl import threadpool_info

    from scratchgen.nn.layers import one_blas_thread

    with one_blas_thread():
        pass
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, if it has its own)

    with one_blas_thread():
        threads = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert threads and set(threads) == {1}
