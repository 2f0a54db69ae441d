"""Training curves: CSV round trip, and the PNG with matplotlib (skipped without it)."""

from __future__ import annotations

import sys

import pytest

from scratchgen.errors import ScratchgenError
from scratchgen.evaluation import plot_curve, read_curve_csv, require_matplotlib, save_curve, write_curve_csv

HISTORY = [
    {"tokens_seen": 0, "train_loss": 3.2958368660043291, "valid_loss": 3.3},
    {"tokens_seen": 1000, "train_loss": 0.1 + 0.2, "valid_loss": None},  # 0.30000000000000004 must survive
    {"tokens_seen": 2000, "train_loss": 1 / 3, "valid_loss": 2 / 3},
]


def test_csv_round_trip(tmp_path):
    path = tmp_path / "curve.csv"
    write_curve_csv(HISTORY, path)
    assert path.read_text().splitlines()[:3] == [
        "tokens_seen,train_loss,valid_loss",
        "0,3.295836866004329,3.3",
        "1000,0.30000000000000004,",
    ]
    assert read_curve_csv(path) == HISTORY
    assert [p.name for p in tmp_path.iterdir()] == ["curve.csv"]  # no temporary file left behind


def test_csv_refuses_bad_histories_and_files(tmp_path):
    with pytest.raises(ScratchgenError, match="line 2"):
        (tmp_path / "short.csv").write_text("tokens_seen,train_loss,valid_loss\n1,2.0\n")
        read_curve_csv(tmp_path / "short.csv")
    with pytest.raises(ScratchgenError, match="train_loss"):
        write_curve_csv([{"tokens_seen": 1}], tmp_path / "x.csv")
    with pytest.raises(ScratchgenError, match="dict"):
        write_curve_csv([(1, 2.0, None)], tmp_path / "x.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("step,loss\n1,2\n")
    with pytest.raises(ScratchgenError, match="header"):
        read_curve_csv(bad)
    bad.write_text("tokens_seen,train_loss,valid_loss\n1,abc,\n")
    with pytest.raises(ScratchgenError, match="line 2"):
        read_curve_csv(bad)


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(ScratchgenError, match=r"pip install 'scratchgen\[plot\]'"):
        plot_curve(HISTORY, tmp_path / "curve.png")
    with pytest.raises(ScratchgenError, match=r"pip install 'scratchgen\[plot\]'"):
        require_matplotlib()
    with pytest.raises(ScratchgenError, match="matplotlib"):
        save_curve(HISTORY, tmp_path / "curve.csv", tmp_path / "curve.png")
    assert not (tmp_path / "curve.png").exists()
    assert read_curve_csv(tmp_path / "curve.csv") == HISTORY  # the CSV is written all the same
    save_curve(HISTORY, tmp_path / "only.csv")  # no picture asked for: no matplotlib needed
    assert read_curve_csv(tmp_path / "only.csv") == HISTORY


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    csv_path, png = tmp_path / "curve.csv", tmp_path / "curve.png"
    write_curve_csv(HISTORY, csv_path)
    plot_curve(csv_path, png, title="unigram on names.txt")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    require_matplotlib()  # installed: no error
    save_curve(HISTORY, tmp_path / "s.csv", tmp_path / "s.png", title="t")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    plot_curve(HISTORY, tmp_path / "direct.png")
    assert (tmp_path / "direct.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ScratchgenError, match="empty"):
        plot_curve([], tmp_path / "empty.png")


def test_the_rnn_trainers_history_and_csv_are_read_as_they_are(tmp_path):
    # The RNN trainer (scratchgen.nn) keeps "tokens", NaN for "no validation" and more columns.
    history = [{"step": 1, "epoch": 1, "tokens": 640, "train_loss": 3.1, "valid_loss": float("nan"), "lr": 0.01},
               {"step": 2, "epoch": 1, "tokens": 1280, "train_loss": 2.5, "valid_loss": 2.7, "lr": 0.01}]
    expected = [{"tokens_seen": 640, "train_loss": 3.1, "valid_loss": None},
                {"tokens_seen": 1280, "train_loss": 2.5, "valid_loss": 2.7}]
    write_curve_csv(history, tmp_path / "ours.csv")
    assert read_curve_csv(tmp_path / "ours.csv") == expected
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("step,epoch,tokens,train_loss,valid_loss,lr,grad_norm,seconds\n"
                      "1,1,640,3.1,nan,0.01,1.5,0.2\n2,1,1280,2.5,2.7,0.01,1.2,0.4\n")
    assert read_curve_csv(theirs) == expected


def test_one_format_for_every_family_details_after_the_core_columns(tmp_path):
    # The RNN trainer's rows add step, epoch, lr, ... after the three core columns; NaN is an empty cell.
    history = [{"step": 4, "epoch": 1, "tokens": 80, "train_loss": 3.5, "valid_loss": float("nan"), "lr": 0.01,
                "grad_norm": 0.5, "seconds": 0.1, "cpu_seconds": 0.1}]
    write_curve_csv(history, tmp_path / "rnn.csv")
    assert (tmp_path / "rnn.csv").read_text().splitlines() == [
        "tokens_seen,train_loss,valid_loss,step,epoch,lr,grad_norm,seconds,cpu_seconds",
        "80,3.5,,4,1,0.01,0.5,0.1,0.1",
    ]
    assert read_curve_csv(tmp_path / "rnn.csv") == [{"tokens_seen": 80, "train_loss": 3.5, "valid_loss": None}]
