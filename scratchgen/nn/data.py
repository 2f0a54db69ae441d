"""Mini-batches for training: parallel streams of running text, or padded, masked sequences.

Running text (tinyshakespeare read in chunks) is one long stream of ids ``s``: ``<s>`` followed by
every chunk, then ``</s>``. It is cut into B equal parallel streams (row b starts at b n), and chunk k
of the training is columns ``k T .. k T + T`` of every row, with targets one to the right::

    inputs[b, t] = s[b n + k T + t],   targets[b, t] = s[b n + k T + t + 1]                (1)

so the hidden state at the end of chunk k is the right starting state of chunk k + 1 (truncated
backpropagation through time: the state is carried forward, its gradient is not carried back).

A line corpus (names) gives each sequence its own row: inputs ``<s> x_1 .. x_n``, targets
``x_1 .. x_n </s>``, padded to the longest row of the batch with mask 0 where there is no target::

    mask[b, t] = 1 if t <= n_b else 0                                                       (2)

A batch longer than T is processed in chunks of T steps with the state carried between them.

A labelled corpus (:mod:`scratchgen.labels`) is a line corpus with one label id a sequence, ``c_b``;
its rows are padded batches like any line corpus, and each step of the plan also gives the label ids
of its rows (:func:`chunk_labels`). Running text has no label per chunk (a chunk may cut across
examples), so a labelled corpus is never read as running text (:func:`check_labelled_layout`).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import LabelError
from ..text import Vocabulary

__all__ = [
    "stream_array",
    "stream_chunks",
    "padded_batch",
    "padded_plan",
    "epoch_plan",
    "planned_steps",
    "chunk_batch",
    "chunk_labels",
    "check_labelled_layout",
]

BOS, EOS = Vocabulary.bos_id, Vocabulary.eos_id


def stream_array(ids: np.ndarray, streams: int) -> np.ndarray:
    """Cut one id stream into ``streams`` rows of n + 1 ids (the last id of row b is the first of b + 1).

    >>> stream_array(np.arange(7), 2)
    array([[0, 1, 2, 3],
           [3, 4, 5, 6]])
    """
    n = (len(ids) - 1) // streams  # steps a row, eq. (1)
    if n < 1:
        raise ValueError(f"a stream of {len(ids)} ids is too short for {streams} parallel streams")
    idx = np.arange(streams)[:, None] * n + np.arange(n + 1)[None, :]  # (B, n+1)
    return ids[idx]


def stream_chunks(rows: np.ndarray, seq_len: int):
    """(inputs, targets) of every chunk of T steps of the parallel streams: eq. (1)."""
    n = rows.shape[1] - 1
    for start in range(0, n, seq_len):
        stop = min(start + seq_len, n)
        yield rows[:, start:stop], rows[:, start + 1 : stop + 1]  # (B, T) (B, T)


def padded_batch(sequences: list[np.ndarray]):
    """Inputs, targets and mask of a batch of id sequences: eq. (2).

    >>> x, y, m = padded_batch([np.array([5, 6]), np.array([7])])
    >>> x.tolist(), y.tolist(), m.tolist()
    ([[1, 5, 6], [1, 7, 2]], [[5, 6, 2], [7, 2, 2]], [[True, True, True], [True, True, False]])
    """
    T = max(len(s) for s in sequences) + 1
    inputs = np.full((len(sequences), T), EOS, dtype=np.int64)  # (B, T)
    targets = np.full((len(sequences), T), EOS, dtype=np.int64)  # (B, T)
    mask = np.zeros((len(sequences), T), dtype=bool)  # (B, T)
    for b, s in enumerate(sequences):
        inputs[b, 0] = BOS
        inputs[b, 1 : len(s) + 1] = s
        targets[b, : len(s)] = s
        targets[b, len(s)] = EOS
        mask[b, : len(s) + 1] = True  # eq. (2)
    return inputs, targets, mask


def padded_plan(n_sequences: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of a line corpus: a random permutation cut into batches of sequence indices."""
    order = rng.permutation(n_sequences)
    return [order[i : i + batch_size] for i in range(0, n_sequences, batch_size)]


# --- the steps of an epoch of training ------------------------------------------------------------
# ``data`` is the (B, n+1) array of parallel streams (running text) or the list of id sequences.


def epoch_plan(data, running: bool, seq_len: int, batch_size: int, rng: np.random.Generator) -> list:
    """The steps of one epoch: chunk starts (running text) or (batch, chunk start) pairs."""
    T = seq_len
    if running:
        return list(range(0, data.shape[1] - 1, T))
    plan = []
    for batch in padded_plan(len(data), batch_size, rng):
        longest = max(len(data[i]) for i in batch) + 1
        plan += [(batch, start) for start in range(0, longest, T)]
    return plan


def planned_steps(data, running: bool, seq_len: int, batch_size: int, epochs: int, max_steps: int) -> int:
    """Optimiser steps of a whole run: its epochs' steps, or ``max_steps`` when that is set and fewer."""
    if running:
        per_epoch = math.ceil((data.shape[1] - 1) / seq_len)
    else:  # an estimate (chunks per batch depend on the draw): batches times the mean chunk count
        mean_chunks = float(np.mean([math.ceil((len(s) + 1) / seq_len) for s in data]))
        per_epoch = math.ceil(len(data) / batch_size * mean_chunks)
    total = per_epoch * epochs
    return min(total, max_steps) if max_steps else total


def chunk_batch(data, running: bool, item, seq_len: int):
    """inputs, targets, mask (or None) of one step of :func:`epoch_plan`, and whether the state starts afresh."""
    T = seq_len
    if running:
        start = item
        x = data[:, start : start + T]  # (B, T)
        y = data[:, start + 1 : start + T + 1]  # (B, T)
        return x[:, : y.shape[1]], y, None, start == 0
    batch, start = item
    x, y, mask = padded_batch([data[i] for i in batch])  # (B, T_b)
    sl = slice(start, start + T)
    return x[:, sl], y[:, sl], mask[:, sl], start == 0


def chunk_labels(labels: np.ndarray | None, item) -> np.ndarray | None:
    """The label id of each row of one step of :func:`epoch_plan` (a line corpus), or None unlabelled.

    >>> chunk_labels(np.array([0, 2, 1]), (np.array([2, 0]), 0)).tolist()
    [1, 0]
    """
    if labels is None:
        return None
    batch, _ = item
    return labels[batch]  # (B,) c_b of each row


def check_labelled_layout(running: bool) -> None:
    """Refuse running text with labels in one line: each example of a labelled corpus is its own sequence."""
    if running:
        raise LabelError(
            "a labelled corpus is read one example a line (padded batches of lines): running text cut into "
            "chunks has no label per chunk; use --mode lines (running_text=False)"
        )
