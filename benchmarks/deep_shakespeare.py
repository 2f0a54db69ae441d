"""tinyshakespeare, the last 10% held out: the best deep models within 10 CPU-minutes of training (issue 12's
target: <= 1.50 nats/char; nanoGPT's GPU "baby" model, 6 layers of width 384 trained on a GPU, 1.4697).

Rows for ``benchmarks/bench_deep.py`` (:func:`shakespeare_rows`). Every run counts the CPU seconds of the
training process (``time_limit`` with ``clock="cpu"``, one BLAS thread, as ``bench_nn.py --quality``), its
cosine schedule spanning that time, and keeps the model of its best validation loss. The held-out loss is
then shown two ways:

- as the training loop measured it (what chose the model kept): 32 streams, each starting cold;
- the best way the protocol allows, after training (not counted in the 10 minutes): the whole held-out
  text read as one stream, the state carried from the first character to the last.

The Transformer's row is ``benchmarks/deep_transformer.py``'s (read there through windows sliding by one
token, every prediction with the full context it was trained for).

    python -m benchmarks --only deep                  # with the rest of the deep section (about an hour)
    python -m benchmarks.deep_shakespeare [--quick]   # these rows alone
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .common import data_file, table

NANOGPT = 1.4697  # nanoGPT's shakespeare_char "baby GPT" (its README): validation loss on the same 10%

#: The recurrent recipes measured (the best found in session 17, and the vanilla RNN's record for reference).
RECURRENT = (
    dict(cell="gru", hidden=384, embedding=64, dropout=0.1, lr=3e-3),
    dict(cell="tanh", hidden=512, embedding=128, dropout=0.2, lr=3e-3),
)


def corpus():
    from scratchgen import read_corpus

    return read_corpus(data_file("tinyshakespeare.txt"), mode="chunks", chunk_size=256)


def held_out_stream(model, pieces, valid_fraction: float = 0.1) -> np.ndarray:
    """The validation ids of a running-text fit exactly as the training split took them (``nn/rnn.py``'s
    ``_split``: one stream, ``<s>`` first, ``</s>`` last; the last ``valid_fraction`` and the token before)."""
    from scratchgen.nn.data import BOS, EOS

    ids = [model.vocab_.encode(s) for s in model.tokenize_corpus(pieces)]
    stream = np.concatenate([[BOS], *ids, [EOS]]).astype(np.int64)
    n_valid = int(len(stream) * valid_fraction)
    return stream[len(stream) - n_valid - 1 :]


def recurrent_row(cpu_seconds: float, cell: str, hidden: int, embedding: int, dropout: float, lr: float,
                  seq_len: int = 64, batch: int = 32) -> list:  # fmt: skip
    """One RNNModel run of ``cpu_seconds``; its held-out loss as trained and with the state carried throughout."""
    from scratchgen import RNNModel

    pieces = corpus()
    t = time.perf_counter()
    m = RNNModel(cell=cell, hidden=hidden, layers=1, embedding=embedding, dropout=dropout, seq_len=seq_len,
                 batch_size=batch, lr=lr, lr_schedule="cosine", epochs=1000, running_text=True, valid_fraction=0.1,
                 patience=None, dtype="float32", seed=0, time_limit=cpu_seconds, clock="cpu").fit(pieces)  # fmt: skip
    wall, last = time.perf_counter() - t, m.history_[-1]
    one_stream, n = m.network().stream_loss(m.params_, held_out_stream(m, pieces), streams=1, seq_len=256)
    return [f"{cell.upper() if cell != 'tanh' else 'RNN (tanh)'} H {hidden}, E {embedding}, dropout {dropout:g}, "
            f"T {seq_len}, B {batch}, Adam {lr:g} cosine, float32", f"{last['tokens']:,}",
            f"{last['cpu_seconds']:.0f} CPU, {wall:.0f} wall", f"{m.valid_loss_:.4f}",
            f"{one_stream:.4f} (one stream, {n:,} chars)", f"{one_stream - NANOGPT:+.4f}"]  # fmt: skip


def shakespeare_rows(quick: bool) -> str:
    """The part of the deep section (markdown). Quick: the first recipe at H 64 for 3 CPU-seconds (the code
    path, not the figure)."""
    seconds = 3.0 if quick else 600.0
    rows = [recurrent_row(seconds, **r) for r in ([dict(RECURRENT[0], hidden=64)] if quick else RECURRENT)]
    head = ["model and recipe", "tokens trained", "seconds", "held-out loss as trained", "held-out loss, best read",
            "- nanoGPT's 1.4697"]  # fmt: skip
    return "\n".join([
        f"### tinyshakespeare, last 10% held out: the best deep models in {seconds:g} CPU-seconds of training "
        "(nats/char; target <= 1.50)\n",
        "One BLAS thread, `time_limit` on the process's CPU clock, cosine schedule over that time, the model of the "
        "best validation loss kept. \"As trained\": the loop's validation (32 streams, each starting cold); "
        "\"best read\": after training, the whole held-out text as one stream, the state carried throughout. "
        "The Transformer's row is in its own table.\n",
        table(head, rows),
    ])  # fmt: skip


if __name__ == "__main__":
    print(shakespeare_rows("--quick" in sys.argv))
