"""Issue 10 for the deep family: architecture apart from the training recipe, a Trainer with callbacks,
one .npz + JSON-header writer for models and checkpoints, one curve format, warnings not prints.

The files in ``data/`` were written by scratchgen before this change (commit 6f82f23), with
``hidden=6, layers=2, embedding=4`` and the recipe ``KW`` below on ``NAMES``:
a model file (header format 1 with all 28 constructor options), its learning-curve CSV (the
trainer's own columns), and a version-2 checkpoint of a run interrupted after step 8.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest

import scratchgen
from scratchgen import RNNModel
from scratchgen.errors import ModelFileError
from scratchgen.evaluation.curves import read_curve_csv
from scratchgen.io import read_archive, write_archive
from scratchgen.nn import (
    Callback,
    Checkpoint,
    Curve,
    ShowProgress,
    TrainConfig,
    TrainingWarning,
)
from scratchgen.nn import checkpoint as checkpoint_module

DATA = Path(__file__).parent / "data"
NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
         "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett"]
ARCH = dict(hidden=6, layers=2, embedding=4)
KW = dict(epochs=3, batch_size=4, seq_len=5, lr=1e-2, seed=3, valid_fraction=0.2, eval_interval=4, dropout=0.2)


def header_of(path) -> dict:
    with np.load(path) as z:
        return json.loads(z["__header__"].tobytes())


# --- 1. the architecture is saved, the recipe and the session are not ----------------------------

def test_a_model_file_holds_the_architecture_only(tmp_path):
    m = RNNModel(**ARCH, **KW).fit(NAMES)
    m.save(tmp_path / "m.npz")
    params = header_of(tmp_path / "m.npz")["params"]
    assert params == {"hidden": 6, "layers": 2, "embedding": 4, "dtype": "float64"}   # was 28 options,
    # curve_csv, clock, verbose and checkpoint among them


def test_a_model_file_written_before_the_split_still_loads():
    path = DATA / "rnn_format1_before_split.npz"
    old_params = header_of(path)["params"]
    assert {"curve_csv", "clock", "verbose", "checkpoint", "lr"} <= set(old_params)   # the old layout
    m = scratchgen.load(path)
    assert m.get_params() == {"hidden": 6, "layers": 2, "embedding": 4, "dtype": "float64"}
    again = RNNModel(**ARCH, **KW).fit(NAMES)          # the same run today gives the same weights
    # (to rounding: the file was written on another machine, whose BLAS may round the last bit differently)
    for k in again.params_:
        np.testing.assert_allclose(m.params_[k], again.params_[k], rtol=1e-11, atol=1e-13)
    assert [h["step"] for h in m.history_] == [h["step"] for h in again.history_]
    for key in ("train_loss", "valid_loss"):
        assert [h[key] for h in m.history_] == pytest.approx([h[key] for h in again.history_], rel=1e-11)


def test_the_recipe_through_config_or_keywords_is_the_same_run():
    by_config = RNNModel(**ARCH).fit(NAMES, config=TrainConfig(**KW))
    by_keywords = RNNModel(**ARCH, **KW).fit(NAMES)
    assert by_keywords.config == TrainConfig(**KW)
    for k in by_config.params_:
        np.testing.assert_array_equal(by_config.params_[k], by_keywords.params_[k])


def test_unknown_options_are_refused_by_name():
    with pytest.raises(TypeError, match="'curve_csv'"):
        RNNModel(hidden=4, curve_csv="x.csv")                   # a callback now: Curve(path)


def test_no_test_hooks_or_session_flags_in_production_signatures():
    assert list(inspect.signature(RNNModel.fit).parameters) == ["self", "corpus", "labels", "config", "resume",
                                                                "callbacks"]
    assert list(inspect.signature(scratchgen.nn.Trainer.run).parameters) == ["self", "callbacks"]


# --- 2. a Trainer whose progress, checkpoints and curve are callbacks ------------------------------

def test_a_callback_sees_every_step_and_the_end():
    class Count(Callback):
        steps, ended = 0, False

        def on_step(self, trainer):
            self.steps += 1

        def on_end(self, trainer):
            self.ended = True

    count = Count()
    m = RNNModel(hidden=4).fit(NAMES, config=TrainConfig(max_steps=7, batch_size=4, valid_fraction=0),
                               callbacks=[count])
    assert count.steps == 7 and count.ended and m.stopped_ == "reached max_steps=7"


def test_progress_is_a_callback(capsys):
    RNNModel(hidden=4, max_steps=3, batch_size=4).fit(NAMES)
    assert capsys.readouterr().err == ""                        # no callback: nothing shown
    RNNModel(hidden=4, max_steps=3, batch_size=4).fit(NAMES, callbacks=[ShowProgress()])
    assert "step 3" in capsys.readouterr().err


# --- 3. warnings through `warnings` (or the progress display), not print ---------------------------

def test_a_loss_worse_than_uniform_is_a_warning_not_a_print(capsys):
    with pytest.warns(TrainingWarning, match="worse than a uniform guess"):
        RNNModel(hidden=8, batch_size=4, seq_len=8, epochs=2, lr=50.0, optimizer="sgd", clip=None,
                 valid_fraction=0, seed=0).fit(NAMES)
    assert "warning" not in capsys.readouterr().err


def test_no_print_in_the_deep_family():
    package = Path(scratchgen.__file__).parent / "nn"
    for path in package.glob("*.py"):
        calls = [node for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"]
        assert not calls, f"{path.name} prints at line {calls[0].lineno}"


# --- 4. one learning-curve format -----------------------------------------------------------------

def test_the_rnn_curve_is_the_one_curve_format(tmp_path):
    path = tmp_path / "curve.csv"
    m = RNNModel(**ARCH, **KW).fit(NAMES, callbacks=[Curve(str(path))])
    header = path.read_text().splitlines()[0]
    assert header == "tokens_seen,train_loss,valid_loss,step,epoch,lr,grad_norm,seconds,cpu_seconds"
    assert read_curve_csv(path) == [{"tokens_seen": h["tokens"], "train_loss": h["train_loss"],
                                     "valid_loss": h["valid_loss"]} for h in m.history_]


def test_an_rnn_curve_written_before_the_one_format_still_reads():
    rows = read_curve_csv(DATA / "rnn_curve_before_one_format.csv")
    history = scratchgen.load(DATA / "rnn_format1_before_split.npz").history_
    assert rows == [{"tokens_seen": h["tokens"], "train_loss": h["train_loss"],
                     "valid_loss": None if math.isnan(h["valid_loss"]) else h["valid_loss"]} for h in history]


# --- 5. one .npz + JSON-header writer for models and checkpoints ----------------------------------

class StopAt8(Callback):
    def after_step(self, trainer, epoch_end):
        if trainer.step >= 8:
            raise KeyboardInterrupt


def test_a_checkpoint_is_written_by_the_one_writer(tmp_path):
    ck = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        RNNModel(**ARCH, **KW).fit(NAMES, callbacks=[Checkpoint(str(ck), every=3), StopAt8()])
    header, arrays = read_archive(ck, "checkpoint")
    assert header["version"] == checkpoint_module.CHECKPOINT_VERSION == 3
    assert header["model"] == {"hidden": 6, "layers": 2, "embedding": 4, "dtype": "float64"}
    assert header["config"]["lr"] == 1e-2 and "curve_csv" not in header["config"]
    assert "param/W_hh.0" in arrays and "__checkpoint__" not in arrays


def test_a_checkpoint_names_its_model_class_and_another_class_cannot_resume_from_it(tmp_path):
    from scratchgen.nn.mlp import MLPModel

    ck = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        RNNModel(**ARCH, **KW).fit(NAMES, callbacks=[Checkpoint(str(ck), every=3), StopAt8()])
    header, _ = read_archive(ck, "checkpoint")
    assert (header["format"], header["model_class"]) == ("scratchgen-checkpoint", "RNNModel")
    with pytest.raises(ModelFileError, match="written by a run training RNNModel, this run trains MLPModel"):
        MLPModel(context=2, embedding=3, hidden=5).fit(NAMES, resume=str(ck))


def test_a_version_2_checkpoint_from_before_resumes_to_the_same_model(tmp_path):
    old = DATA / "rnn_checkpoint_format2.npz"
    with np.load(old) as z:
        assert json.loads(z["__checkpoint__"].tobytes())["version"] == 2
    whole = RNNModel(**ARCH, **KW).fit(NAMES)
    resumed = RNNModel(**ARCH, **KW).fit(NAMES, resume=str(old))
    # The file was written on another machine, whose BLAS kernels may round the last bit differently
    # (seen: 1 ulp on an AMD EPYC): equal to rounding, not bit for bit. Bit-for-bit resume on one machine
    # is the test above; a wrong state read from the file (a step, a rate, a generator) is far larger.
    for k in whole.params_:
        np.testing.assert_allclose(resumed.params_[k], whole.params_[k], rtol=1e-11, atol=1e-13)
    expected = [h["valid_loss"] for h in whole.history_]
    assert [h["valid_loss"] for h in resumed.history_] == pytest.approx(expected, rel=1e-11)


def test_a_version_2_checkpoint_with_other_options_names_the_option():
    with pytest.raises(ModelFileError, match="--lr is 0.01 in the checkpoint, 0.02 here"):
        RNNModel(**ARCH, **{**KW, "lr": 2e-2}).fit(NAMES, resume=str(DATA / "rnn_checkpoint_format2.npz"))


def test_the_archive_reader_checks_before_reading(tmp_path):
    write_archive(tmp_path / "a.npz", {"x": 1}, {"w": np.arange(3.0)})
    header, arrays = read_archive(tmp_path / "a.npz", "checkpoint", "resume from")
    assert header == {"x": 1} and arrays["w"].tolist() == [0.0, 1.0, 2.0]
    np.savez(tmp_path / "o.npz", __header__=np.frombuffer(b"{}", dtype=np.uint8), o=np.array([{}], dtype=object))
    with pytest.raises(ModelFileError, match=r"^cannot resume from checkpoint .*holds Python objects"):
        read_archive(tmp_path / "o.npz", "checkpoint", "resume from")
    with pytest.raises(ModelFileError, match="no such file"):
        read_archive(tmp_path / "missing.npz", "checkpoint", "resume from")
    (tmp_path / "t.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:100])
    with pytest.raises(ModelFileError, match="not a scratchgen checkpoint file"):
        read_archive(tmp_path / "t.npz", "checkpoint", "resume from")
