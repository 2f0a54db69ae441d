"""Pictures of training: the loss curve as a CSV file (always) and a PNG (with matplotlib).

A training history is a list of dicts, one a measurement::

    {"tokens_seen": int, "train_loss": float, "valid_loss": float or None}

losses in nats per token (the convention of :mod:`scratchgen.metrics`). This module is the one
writer and the one reader of curve CSVs, for every family (the RNN trainer included). The CSV's
first three columns are always ``tokens_seen,train_loss,valid_loss`` (a missing validation loss is
an empty cell); a history that also records the RNN trainer's details adds, in this order, the
columns ``step, epoch, lr, grad_norm, seconds, cpu_seconds`` that any of its rows holds. The reader
returns the three core columns. It is lenient, so older files read as they are: the RNN trainer's
CSVs before this format named the column ``tokens`` and wrote ``nan`` for "not measured". Both files
are written atomically (:func:`scratchgen.io.atomic_write`), so a crash never leaves half a file.

matplotlib is optional (``pip install 'scratchgen[plot]'``); it is imported only when a plot is
asked for, with the non-interactive Agg backend.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence

from ..errors import ScratchgenError
from ..io import atomic_write

__all__ = [
    "CURVE_COLUMNS",
    "DETAIL_COLUMNS",
    "write_curve_csv",
    "read_curve_csv",
    "plot_curve",
    "save_curve",
    "require_matplotlib",
]

CURVE_COLUMNS = ("tokens_seen", "train_loss", "valid_loss")
#: Further columns, written when the history holds them (the RNN trainer's record of each evaluation).
DETAIL_COLUMNS = ("step", "epoch", "lr", "grad_norm", "seconds", "cpu_seconds")

History = Sequence[dict]


def _optional_loss(value) -> float | None:
    if value is None or value == "":
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _check_history(history: History) -> list[dict]:
    rows = []
    for i, row in enumerate(history):
        if not isinstance(row, dict):
            raise ScratchgenError(f"history entry {i} must be a dict with keys {CURVE_COLUMNS}, got {row!r}")
        tokens = row.get("tokens_seen", row.get("tokens"))
        if tokens is None or "train_loss" not in row:
            raise ScratchgenError(f"history entry {i} needs tokens_seen (or tokens) and train_loss: {row!r}")
        try:
            rows.append(
                {
                    "tokens_seen": int(tokens),
                    "train_loss": float(row["train_loss"]),
                    "valid_loss": _optional_loss(row.get("valid_loss")),
                }
            )
        except (TypeError, ValueError):
            raise ScratchgenError(f"history entry {i} is not numbers: {row!r}") from None
    return rows


def _cell(value) -> str:
    """A number as the CSV holds it: ``repr`` (the shortest form that reads back exactly), empty for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def write_curve_csv(history: History, path) -> None:
    """Write the history as CSV: ``tokens_seen,train_loss,valid_loss`` then any :data:`DETAIL_COLUMNS` it holds.

    Floats are written with ``repr`` (shortest round-tripping form), so reading gives them back exactly.
    """
    rows = _check_history(history)
    details = [c for c in DETAIL_COLUMNS if any(isinstance(r, dict) and r.get(c) is not None for r in history)]

    def write(f) -> None:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(CURVE_COLUMNS + tuple(details))
        for r, raw in zip(rows, history):
            out.writerow(
                [r["tokens_seen"], repr(r["train_loss"]), _cell(r["valid_loss"])] + [_cell(raw.get(c)) for c in details]
            )

    atomic_write(path, write, mode="w")


def read_curve_csv(path) -> list[dict]:
    """The history a curve CSV holds: columns ``tokens_seen`` (or ``tokens``), ``train_loss`` and
    optionally ``valid_loss`` (an empty or NaN cell becomes None); other columns are ignored."""
    name = os.fspath(path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if not ({"tokens_seen", "tokens"} & set(columns)) or "train_loss" not in columns:
            raise ScratchgenError(
                f"{name!r} is not a training curve: its header is {','.join(columns)!r}, "
                f"expected {','.join(CURVE_COLUMNS)}"
            )
        rows = []
        for line_no, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise ScratchgenError(f"{name!r} line {line_no}: expected {len(columns)} cells")
            try:
                rows.append(
                    {
                        "tokens_seen": int(row["tokens_seen"] if "tokens_seen" in row else row["tokens"]),
                        "train_loss": float(row["train_loss"]),
                        "valid_loss": _optional_loss(row.get("valid_loss")),
                    }
                )
            except ValueError:
                raise ScratchgenError(f"{name!r} line {line_no}: not numbers: {row!r}") from None
    return rows


def require_matplotlib() -> None:
    """Raise a :class:`ScratchgenError` saying how to get matplotlib when it is not installed.

    A command with ``--plot FILE`` calls this before training, so nobody trains for an hour to learn
    at the end that the picture cannot be drawn.
    """
    import importlib.util

    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # a module object of None in sys.modules (how the tests hide it)
        found = False
    if not found:
        raise ScratchgenError("plotting needs matplotlib: pip install 'scratchgen[plot]'")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ScratchgenError("plotting needs matplotlib: pip install 'scratchgen[plot]'") from None
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_curve(history_or_csv: History | str | os.PathLike, png_path, title: str | None = None) -> None:
    """Draw train (and validation) loss against tokens seen into a PNG file.

    Parameters
    ----------
    history_or_csv : a history (list of dicts) or the path of a CSV from :func:`write_curve_csv`
    png_path : where the PNG goes (written atomically)
    title : str or None

    Raises :class:`ScratchgenError` saying ``pip install 'scratchgen[plot]'`` when matplotlib is absent.
    """
    if isinstance(history_or_csv, (str, os.PathLike)):
        rows = read_curve_csv(history_or_csv)
    else:
        rows = _check_history(history_or_csv)
    if not rows:
        raise ScratchgenError("cannot plot an empty training history")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    try:
        x = [r["tokens_seen"] for r in rows]
        ax.plot(x, [r["train_loss"] for r in rows], label="train", color="tab:blue")
        valid = [(r["tokens_seen"], r["valid_loss"]) for r in rows if r["valid_loss"] is not None]
        if valid:
            ax.plot(
                [v[0] for v in valid],
                [v[1] for v in valid],
                label="validation",
                color="tab:orange",
                marker="o",
                markersize=3,
            )
        ax.set_xlabel("tokens seen")
        ax.set_ylabel("loss (nats/token)")
        secondary = ax.secondary_yaxis("right", functions=(lambda y: y / math.log(2), lambda b: b * math.log(2)))
        secondary.set_ylabel("bits/token")
        if title:
            ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    atomic_write(png_path, lambda f: f.write(buffer.getvalue()), mode="wb")


def save_curve(history: History, csv_path, png_path=None, title: str | None = None) -> None:
    """What a training command does with its history: the CSV always, the PNG when ``png_path`` is given."""
    write_curve_csv(history, csv_path)
    if png_path is not None:
        plot_curve(history, png_path, title=title)
